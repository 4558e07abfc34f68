/* Route conditions: precedence, three-valued logic, types, functions,
 * properties, $body queries and literals. */
#include "route_test.h"

#include <pthread.h>

/* key1..key3, a property without a value, system properties, and an
 * application property that looks like a system property. */
static struct hub_message *sample(void)
{
	struct hub_message *m = msg_from("sensor", "out1");
	msg_add_prop(m, "key1", "value1");
	msg_add_prop(m, "key2", "3");
	msg_add_prop(m, "key3", "VALUE3");
	msg_add_prop(m, "null_value", NULL);
	msg_add_prop(m, "$sys4", "app4");
	msg_set_sys(m, MSG_SYS_MESSAGE_ID, "mid-1");
	msg_set_sys(m, MSG_SYS_CORRELATION_ID, "corr-1");
	msg_set_sys(m, MSG_SYS_CONTENT_TYPE, "text/plain");
	return m;
}

static const char weather[] =
    "{\"message\": {\"Weather\": {\"Temperature\": 50, \"Precise\": -50.4,"
    " \"PrevTemperatures\": [20, 30, 40], \"IsEnabled\": true, \"NullValue\": null,"
    " \"Location\": {\"Street\": \"One Way\", \"City\": \"Redmond\", \"State\": \"WA\"},"
    " \"HistoricalData\": [{\"Month\": \"Feb\", \"Temperature\": 40},"
    " {\"Month\": \"Jan\", \"Temperature\": 30}]},"
    " \"odd key\": {\"a.b\": 1}}}";

static struct hub_message *json_sample(void)
{
	struct hub_message *m = sample();
	msg_set_json(m, weather);
	return m;
}

/* Runs the block with m set to a fresh message from make(). */
#define WITH(make, ...)                                                                            \
	do {                                                                                       \
		struct hub_message *m = make();                                                    \
		__VA_ARGS__;                                                                       \
		hub_message_free(m);                                                               \
	} while (0)

/* ---- precedence ---- */

static void and_binds_tighter_than_or(void **state)
{
	WITH(sample, {
		assert_eval("true OR false AND false", m, T);
		assert_eval("(true OR false) AND false", m, F);
	});
}

static void not_binds_tighter_than_comparison(void **state)
{
	WITH(sample, {
		/* (NOT null) = true; NOT (null = true) would compare null with a bool. */
		assert_eval("NOT null = true", m, T);
		assert_contains(cond_refused("NOT 'a' = 'b'"),
				"invalid operand to 'NOT': have string, expected bool");
	});
}

static void multiplication_binds_tighter_than_addition(void **state)
{
	WITH(sample, {
		assert_eval("1 + 2 * 3 = 7", m, T);
		assert_eval("(1 + 2) * 3 = 9", m, T);
		assert_eval("10 - 4 / 2 = 8", m, T);
		assert_eval("1 + 7 % 4 = 4", m, T);
	});
}

static void unary_minus_binds_tighter_than_multiplication(void **state)
{
	WITH(sample, {
		assert_eval("-2 * 3 = -6", m, T);
		assert_eval("- 3 + 4 = 1", m, T);
		assert_eval("-(3 + 4) = -7", m, T);
	});
}

static void binary_operators_associate_to_the_left(void **state)
{
	WITH(sample, {
		assert_eval("7 - 2 - 1 = 4", m, T);
		assert_eval("8 / 2 / 2 = 2", m, T);
		assert_eval("7 % 4 * 2 = 6", m, T);
	});
}

static void concatenation_binds_tighter_than_equality(void **state)
{
	WITH(sample, {
		assert_eval("'a' || 'b' = 'ab'", m, T);
		assert_eval("'a' || key1 || 'd' = 'avalue1d'", m, T);
	});
}

static void ordering_binds_tighter_than_equality(void **state)
{
	WITH(sample, { assert_eval("1 < 2 = true", m, T); });
}

static void coalesce_binds_loosest(void **state)
{
	WITH(sample, {
		/* false ?? (false OR true), not (false ?? false) OR true */
		assert_eval("false ?? false OR true", m, F);
	});
}

/* ---- undefined and three-valued logic ---- */

static void comparison_with_an_undefined_operand_is_undefined(void **state)
{
	WITH(sample, {
		assert_eval("none = 'x'", m, U);
		assert_eval("none <> 'x'", m, U);
		assert_eval("'a' < none", m, U);
		assert_eval("as_number(none) = 3", m, U);
		assert_eval("undefined < undefined", m, U);
	});
}

static void and_follows_three_valued_logic(void **state)
{
	WITH(sample, {
		assert_eval("true AND true", m, T);
		assert_eval("true AND false", m, F);
		assert_eval("true AND undefined", m, U);
		assert_eval("false AND true", m, F);
		assert_eval("false AND false", m, F);
		assert_eval("false AND undefined", m, F);
		assert_eval("undefined AND true", m, U);
		assert_eval("undefined AND false", m, F);
		assert_eval("undefined AND undefined", m, U);
		assert_eval("none = 'x' AND false", m, F);
	});
}

static void or_follows_three_valued_logic(void **state)
{
	WITH(sample, {
		assert_eval("true OR true", m, T);
		assert_eval("true OR false", m, T);
		assert_eval("true OR undefined", m, T);
		assert_eval("false OR true", m, T);
		assert_eval("false OR false", m, F);
		assert_eval("false OR undefined", m, U);
		assert_eval("undefined OR true", m, T);
		assert_eval("undefined OR false", m, U);
		assert_eval("undefined OR undefined", m, U);
		assert_eval("none = 'x' OR true", m, T);
	});
}

static void not_follows_three_valued_logic(void **state)
{
	WITH(sample, {
		assert_eval("NOT true", m, F);
		assert_eval("NOT false", m, T);
		assert_eval("NOT (none = 'x')", m, U);
	});
}

static void null_is_false_as_a_condition_and_absorbs_and(void **state)
{
	WITH(sample, {
		assert_eval("null", m, F);
		assert_eval("null AND true", m, F);
		assert_eval("(null AND true) = null", m, T);
		assert_eval("null OR true", m, T);
		assert_eval("null OR false", m, F);
		assert_eval("NOT null", m, T);
	});
}

static void only_a_true_condition_routes(void **state)
{
	WITH(sample, {
		assert_false(route_text_matches("FROM /* WHERE 3 INTO $upstream", m));
		assert_false(route_text_matches("FROM /* WHERE 'true' INTO $upstream", m));
		assert_false(route_text_matches("FROM /* WHERE key1 INTO $upstream", m));
		assert_false(route_text_matches("FROM /* WHERE undefined INTO $upstream", m));
		assert_false(route_text_matches("FROM /* WHERE false INTO $upstream", m));
		assert_true(route_text_matches("FROM /* WHERE true INTO $upstream", m));
		assert_true(route_text_matches("FROM /* INTO $upstream", m));
	});
}

static void arithmetic_without_numbers_is_undefined(void **state)
{
	WITH(sample, {
		assert_eval("is_defined(3 + as_number(none))", m, F);
		assert_eval("is_defined(3 * as_number(key1))", m, F);
		assert_eval("is_defined(-undefined)", m, F);
		assert_eval("(as_number(none) + 1 ?? 7) = 7", m, T);
	});
}

static void division_by_zero_is_infinite_and_modulo_by_zero_undefined(void **state)
{
	WITH(sample, {
		assert_eval("3 / 0 = 1 / 0", m, T);
		assert_eval("-3 / 0 < 0", m, T);
		assert_eval("is_defined(3 / 0)", m, T);
		assert_eval("is_defined(3 % 0)", m, F);
		assert_eval("(3 % 0 ?? 12.34) = 12.34", m, T);
	});
}

static void coalesce_takes_the_first_defined_operand(void **state)
{
	WITH(sample, {
		assert_eval("(key1 ?? 'hello') = 'value1'", m, T);
		assert_eval("(none ?? 'hello') = 'hello'", m, T);
		assert_eval("(none ?? none2 ?? 'hello') = 'hello'", m, T);
		assert_eval("(none ?? none2) = 'x'", m, U);
		assert_eval("undefined ?? undefined", m, U);
	});
}

/* ---- types ---- */

static void comparing_a_property_with_a_number_is_refused(void **state)
{
	/* Property values are strings on the wire; edgeHub refuses this route
	 * rather than guessing, and so does berth. */
	assert_contains(cond_refused("temperature > 50"),
			"invalid operands to '>': have string and number");
	assert_contains(cond_refused("50 = key2"), "have number and string");
}

static void as_number_makes_a_property_comparable_with_numbers(void **state)
{
	WITH(sample, {
		assert_eval("as_number(key2) = 3", m, T);
		assert_eval("as_number(key2) > 2.5", m, T);
		assert_eval("as_number(key1) = 3", m, U);
	});
}

static void operands_of_the_wrong_type_are_refused(void **state)
{
	assert_contains(cond_refused("'a' + 'b' = 'ab'"),
			"invalid operands to '+': have string and string");
	assert_contains(cond_refused("3 + undefined = 3"), "have number and undefined");
	assert_contains(cond_refused("3 + null = 3"), "have number and null");
	assert_contains(cond_refused("true * 3 = 3"), "have bool and number");
	assert_contains(cond_refused("'a' || 3 = 'a3'"), "expected string and string");
	assert_contains(cond_refused("key1 AND true"),
			"have string and bool, expected bool and bool");
	assert_contains(cond_refused("(key1 ?? 12.34) = 1"), "invalid operands to '?"
							     "?'");
	assert_contains(cond_refused("- key1 = 1"), "invalid operand to '-': have string");
	assert_contains(cond_refused("NOT undefined"), "have undefined, expected bool");
	assert_contains(cond_refused("true = 1"), "have bool and number");
	assert_contains(cond_refused("key1 = null"), "have string and null");
}

static void unary_minus_takes_numbers_only(void **state)
{
	/* edgeHub has no unary minus for $body values or undefined. */
	assert_contains(cond_refused("- $body.a = 1"), "invalid operand to '-': have $body value");
	assert_contains(cond_refused("- undefined = 1"), "invalid operand to '-': have undefined");
	assert_contains(cond_refused("- null = 1"), "invalid operand to '-': have null");
	WITH(sample, { assert_eval("- (2) = -2", m, T); });
}

static void modulo_of_a_body_value_is_refused(void **state)
{
	/* edgeHub's $body values have + - * / but no %. */
	assert_contains(cond_refused("$body.a % 2 = 1"), "'%' is not defined for $body values");
	assert_contains(cond_refused("7 % $body.a = 1"), "'%' is not defined for $body values");
	WITH(json_sample,
	     { assert_eval("$body.message.Weather.Temperature * 2 / 4 - 1 + 1 = 25", m, T); });
}

static void and_or_take_bools_nulls_and_undefined(void **state)
{
	WITH(sample, {
		assert_eval("undefined OR true", m, T);
		assert_eval("null OR (undefined AND false)", m, F);
		assert_eval("(null AND null) = null", m, T);
	});
	/* No operator joins undefined and null in edgeHub. */
	assert_contains(cond_refused("undefined AND null"), "AND of undefined and null");
	assert_contains(cond_refused("null OR undefined"), "OR of undefined and null");
	assert_contains(cond_refused("true AND 1"), "have bool and number, expected bool and bool");
}

static void and_or_with_a_body_value_on_the_left_take_any_right_operand(void **state)
{
	/* edgeHub checks the right operand against the left one's type; with a
	 * $body value on the left anything passes, and a non-bool is undefined. */
	WITH(json_sample, {
		assert_eval("$body.message.Weather.IsEnabled AND 'x'", m, U);
		assert_eval("$body.message.Weather.IsEnabled OR 5", m, U);
		assert_eval("$body.message.Weather.IsEnabled OR null", m, U);
		assert_eval("$body.message.Weather.IsEnabled AND true", m, T);
		assert_eval("$body.message.Weather.IsEnabled AND undefined", m, U);
	});
	assert_contains(cond_refused("$body.a AND null"), "AND of a $body value and null");
}

static void and_or_with_a_body_value_on_the_right_only_are_refused(void **state)
{
	assert_contains(cond_refused("true AND $body.a"),
			"have bool and $body value, expected bool and bool");
	assert_contains(cond_refused("null OR $body.a"), "have null and $body value");
	WITH(json_sample, {
		assert_eval("$body.message.Weather.IsEnabled = true AND true", m, T);
		assert_eval("true AND ($body.message.Weather.IsEnabled = true)", m, T);
	});
}

static void strings_compare_by_utf16_code_units(void **state)
{
	WITH(sample, {
		assert_eval("'a' < 'b'", m, T);
		assert_eval("'B' < 'a'", m, T);
		assert_eval("'ab' > 'a'", m, T);
		assert_eval("'a' <= 'a'", m, T);
		assert_eval("'abc' = 'abc'", m, T);
		assert_eval("'abc' != 'abd'", m, T);
		/* U+1F600 is the pair D83D DE00, which orders before U+FFFD. */
		assert_eval("'\xf0\x9f\x98\x80' < '\xef\xbf\xbd'", m, T);
		assert_eval("'\xf0\x9f\x98\x80' < '\xee\x80\x80'", m, T);
	});
}

static void bools_and_nulls_compare(void **state)
{
	WITH(sample, {
		assert_eval("true = true", m, T);
		assert_eval("false < true", m, T);
		assert_eval("true <> false", m, T);
		assert_eval("null = null", m, T);
		assert_eval("null < null", m, F);
		assert_eval("null >= null", m, T);
	});
}

/* ---- properties ---- */

static void application_property_names_ignore_case(void **state)
{
	WITH(sample, {
		assert_eval("key1 = 'value1'", m, T);
		assert_eval("KEY1 = 'value1'", m, T);
		assert_eval("Key1 = 'VALUE1'", m, F);
		/* .NET's simple case mappings, except for the Turkish i's and
		 * the long s, which its invariant casing leaves alone. */
		msg_add_prop(m, "\xc3\xa9t\xc3\xa9", "summer"); /* été */
		msg_add_prop(m, "\xc4\xb1", "dotless");		/* ı */
		msg_add_prop(m, "\xc5\xbf", "long");		/* ſ */
		assert_eval("\xc3\x89T\xc3\x89 = 'summer'", m, T);
		assert_eval("is_defined(I) OR is_defined(S)", m, F);
	});
}

static void a_missing_property_is_undefined(void **state)
{
	WITH(sample, {
		assert_eval("is_defined(none)", m, F);
		assert_eval("none = 'value1'", m, U);
	});
}

static void a_property_without_a_value_is_a_null_string(void **state)
{
	/* .NET's null string: defined, is_null, no string, compares to nothing,
	 * empty when joined. */
	WITH(sample, {
		assert_eval("is_null(null_value)", m, T);
		assert_eval("is_defined(null_value)", m, T);
		assert_eval("is_string(null_value)", m, F);
		assert_eval("null_value = 'x'", m, U);
		assert_eval("null_value = null_value", m, U);
		assert_eval("'a' || null_value || 'd' = 'ad'", m, T);
		assert_eval("is_defined(length(null_value))", m, F);
		assert_eval("(null_value ?? 'x') = 'x'", m, U);
	});
	/* As a $body value (an application property of that name) it is a
	 * string that orders before every other string. */
	WITH(json_sample, {
		msg_add_prop(m, "$body.n", NULL);
		assert_eval("$body.n < $body.message.Weather.Location.City", m, T);
		assert_eval("$body.n = $body.n", m, T);
		assert_eval("$body.n = null", m, F);
	});
}

static void system_properties_by_name(void **state)
{
	WITH(sample, {
		assert_eval("$messageId = 'mid-1'", m, T);
		assert_eval("$connectionDeviceId = 'dev1'", m, T);
		assert_eval("$connectionModuleId = 'sensor'", m, T);
		assert_eval("$outputName = 'out1'", m, T);
		assert_eval("$contentType = 'text/plain'", m, T);
		assert_eval("$CONNECTIONmoduleID = 'sensor'", m, T);
		assert_eval("is_defined($userId)", m, F);
		assert_eval("is_defined($noSuchProperty)", m, F);
	});
}

static void system_properties_go_by_edgehub_names(void **state)
{
	/* The names edgeHub keeps them under: $.cid is "cid", $.exp
	 * "absolute-expiry-time", $.ctime "creationTime". */
	WITH(sample, {
		msg_set_sys(m, MSG_SYS_CREATION_TIME, "2024-01-01T00:00:00Z");
		msg_set_sys(m, MSG_SYS_EXPIRY, "2024-01-02T00:00:00Z");
		msg_set_sys(m, MSG_SYS_SCHEMA, "s1");
		assert_eval("$cid = 'corr-1'", m, T);
		assert_eval("$creationTime = '2024-01-01T00:00:00Z'", m, T);
		assert_eval("$absolute-expiry-time = '2024-01-02T00:00:00Z'", m, T);
		assert_eval("$messageSchema = 's1'", m, T);
		assert_eval("is_defined($correlationId)", m, F);
		assert_eval("is_defined($creationTimeUtc)", m, F);
		assert_eval("is_defined($absoluteExpiryTime)", m, F);
	});
}

static void an_application_property_named_like_a_system_property_wins(void **state)
{
	WITH(sample, {
		msg_add_prop(m, "$messageId", "app-mid");
		assert_eval("$messageId = 'app-mid'", m, T);
		assert_eval("$sys4 = 'app4'", m, T);
	});
}

static void braces_force_the_system_property(void **state)
{
	WITH(sample, {
		msg_add_prop(m, "$messageId", "app-mid");
		assert_eval("{$messageId} = 'mid-1'", m, T);
		assert_eval("{ $messageId } = 'mid-1'", m, T);
		assert_eval("is_defined({$sys4})", m, F);
	});
}

static void a_bracketed_name_that_is_no_body_query_is_undefined(void **state)
{
	WITH(sample, { assert_eval("is_defined($key1[0])", m, F); });
}

/* ---- functions ---- */

static void fn_abs(void **state)
{
	WITH(sample, {
		assert_eval("abs(-12) = 12", m, T);
		assert_eval("abs(12) = 12", m, T);
		assert_eval("abs(as_number(key2)) = 3", m, T);
		assert_eval("is_defined(abs(as_number(key1)))", m, F);
		assert_eval("is_defined(abs(3 / 0))", m, T);
	});
}

static void fn_exp(void **state)
{
	WITH(sample, {
		assert_eval("exp(0) = 1", m, T);
		assert_eval("abs(exp(1) - 2.718281) < 1e-6", m, T);
		assert_eval("exp(4000) = 3 / 0", m, T);
	});
}

static void fn_power(void **state)
{
	WITH(sample, {
		assert_eval("power(2, 3) = 8", m, T);
		assert_eval("power(10, 4000) = 3 / 0", m, T);
		assert_eval("power(as_number(key2), 2) = 9", m, T);
		assert_eval("is_defined(power(-8, 1 / 3))", m, F);
	});
}

static void fn_square(void **state)
{
	WITH(sample, {
		assert_eval("square(3) = 9", m, T);
		assert_eval("square(-1.5) = 2.25", m, T);
	});
}

static void fn_ceiling(void **state)
{
	WITH(sample, {
		assert_eval("ceiling(2) = 2", m, T);
		assert_eval("ceiling(2.1) = 3", m, T);
		assert_eval("ceiling(-2.1) = -2", m, T);
	});
}

static void fn_floor(void **state)
{
	WITH(sample, {
		assert_eval("floor(2.9) = 2", m, T);
		assert_eval("floor(-2.1) = -3", m, T);
	});
}

static void fn_sign(void **state)
{
	WITH(sample, {
		assert_eval("sign(0) = 0", m, T);
		assert_eval("sign(2.1) = 1", m, T);
		assert_eval("sign(-2.1) = -1", m, T);
		assert_eval("sign(-3 / 0) = -1", m, T);
		assert_eval("is_defined(sign(3 % 0))", m, F);
	});
}

static void fn_sqrt(void **state)
{
	WITH(sample, {
		assert_eval("sqrt(4) = 2", m, T);
		assert_eval("sqrt(-4) = -2", m, U);
	});
}

static void fn_as_number(void **state)
{
	WITH(sample, {
		assert_eval("as_number('3') = 3", m, T);
		assert_eval("AS_NUMBER(' -2.5e3 ') = -2500", m, T);
		assert_eval("as_number('1,000.5') = 1000.5", m, T);
		assert_eval("as_number('.5') = 0.5", m, T);
		assert_eval("as_number('10e1000') = 1 / 0", m, T);
		assert_eval("as_number('-Infinity') < 0", m, T);
		assert_eval("as_number(as_number(4)) = 4", m, T);
		assert_eval("is_defined(as_number('apple'))", m, F);
		assert_eval("is_defined(as_number('0x10'))", m, F);
		assert_eval("is_defined(as_number('1e'))", m, F);
		assert_eval("is_defined(as_number(''))", m, F);
		assert_eval("is_defined(as_number(null_value))", m, F);
	});
}

static void as_number_reads_what_dotnet_reads(void **state)
{
	/* double.TryParse with NumberStyles.Any and the invariant culture. */
	WITH(sample, {
		assert_eval("as_number('(5)') = -5", m, T);
		assert_eval("as_number('5-') = -5 AND as_number('5 +') = 5", m, T);
		assert_eval("as_number('\xc2\xa4 7') = 7 AND as_number('-\xc2\xa4"
			    "7') = -7",
			    m, T);
		assert_eval("as_number('\t\\u000b 12 \\u000c') = 12", m, T);
		assert_eval("as_number('5.') = 5 AND as_number('1,,2') = 12", m, T);
		assert_eval("as_number('1e0000000001') = 10", m, T);
		assert_eval("as_number('+infinity') = 1 / 0", m, T);
		assert_eval("is_defined(as_number('NaN'))", m, F);
		assert_eval("is_defined(as_number('- 5'))", m, F);
		assert_eval("is_defined(as_number('(5'))", m, F);
		assert_eval("is_defined(as_number(',5'))", m, F);
		assert_eval("is_defined(as_number('-5-'))", m, F);
		assert_eval("is_defined(as_number('\\u00a05'))", m, F);
		/* 800 digits: rounded once, correctly */
		char text[900] = "as_number('0.";
		for (int i = 0; i < 780; i++)
			strcat(text, "3");
		strcat(text, "') = 1 / 3");
		assert_eval(text, m, T);
	});
}

static void fn_is_bool(void **state)
{
	WITH(sample, {
		assert_eval("is_bool(true)", m, T);
		assert_eval("is_bool(false)", m, T);
		assert_eval("is_bool(12.34)", m, F);
		assert_eval("is_bool('true')", m, F);
		assert_eval("is_bool(none)", m, F);
		assert_eval("is_bool(undefined)", m, F);
		assert_eval("is_bool(none = 'x')", m, U);
	});
}

static void fn_is_defined(void **state)
{
	WITH(sample, {
		assert_eval("is_defined(key1)", m, T);
		assert_eval("is_defined(none)", m, F);
		assert_eval("is_defined(null)", m, T);
		assert_eval("is_defined(undefined)", m, F);
		assert_eval("is_defined(undefined AND true)", m, F);
		assert_eval("is_defined(as_number('3'))", m, T);
	});
}

static void fn_is_null(void **state)
{
	WITH(sample, {
		assert_eval("is_null(null)", m, T);
		assert_eval("is_null(null_value)", m, T);
		assert_eval("is_null(key1)", m, F);
		assert_eval("is_null(none)", m, F);
		assert_eval("is_null(3 / 0)", m, F);
		assert_eval("is_null(true)", m, F);
	});
}

static void fn_is_number(void **state)
{
	WITH(sample, {
		assert_eval("is_number(12.34)", m, T);
		assert_eval("is_number(as_number(key2))", m, T);
		assert_eval("is_number(3 / 0)", m, F);
		assert_eval("is_number(as_number(key1))", m, F);
		assert_eval("is_number('3')", m, F);
		assert_eval("is_number(true)", m, F);
	});
}

static void fn_is_string(void **state)
{
	WITH(sample, {
		assert_eval("is_string('a')", m, T);
		assert_eval("is_string(key1)", m, T);
		assert_eval("is_string('a' || 'b')", m, T);
		assert_eval("is_string(null_value)", m, F);
		assert_eval("is_string(none)", m, F);
		assert_eval("is_string(12.34)", m, F);
	});
}

static void fn_concat(void **state)
{
	WITH(sample, {
		assert_eval("concat('a', 'b') = 'ab'", m, T);
		assert_eval("concat('a', key1, 'd') = 'avalue1d'", m, T);
		assert_eval("concat('a', null_value, 'd') = 'ad'", m, T);
		assert_eval("is_defined(concat('a', none, 'd'))", m, F);
		assert_eval(
		    "concat('1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12') = "
		    "'123456789101112'",
		    m, T);
		assert_eval("concat(concat('a', 'b'), concat('c', 'd')) = 'abcd'", m, T);
	});
}

static void fn_length(void **state)
{
	WITH(sample, {
		assert_eval("length('HELLO') = 5", m, T);
		assert_eval("length('') = 0", m, T);
		assert_eval("length(key3) = 6", m, T);
		/* UTF-16 code units: é is one, U+1F600 two. */
		assert_eval("length('h\\u00e9llo') = 5", m, T);
		assert_eval("length('\xf0\x9f\x98\x80') = 2", m, T);
		assert_eval("is_defined(length(null_value))", m, F);
		assert_eval("is_defined(length(none))", m, F);
	});
}

static void fn_lower(void **state)
{
	WITH(sample, {
		assert_eval("lower('HeLLo 1') = 'hello 1'", m, T);
		assert_eval("lower(key3) = 'value3'", m, T);
		assert_eval("is_defined(lower(none))", m, F);
	});
}

static void fn_upper(void **state)
{
	WITH(sample, {
		assert_eval("upper('hello') = 'HELLO'", m, T);
		assert_eval("upper(key1) = 'VALUE1'", m, T);
		assert_eval("is_defined(upper(null_value))", m, F);
	});
}

static void case_mapping_follows_dotnet_invariant_casing(void **state)
{
	/* Unicode's simple mappings, one code point to one (ß stays ß), as
	 * .NET's ToUpperInvariant; the Turkish i's and the long s stay. */
	WITH(sample, {
		assert_eval("upper('\\u00e9a') = '\\u00c9A'", m, T);
		assert_eval("lower('\\u0394\\u0418') = '\\u03b4\\u0438'", m,
			    T); /* Greek, Cyrillic */
		assert_eval("upper('\\u00df') = '\\u00df'", m, T);
		assert_eval("upper('\\u01c6') = '\\u01c4' AND lower('\\u01c5') = '\\u01c6'", m, T);
		assert_eval("upper('\\u0131\\u017f') = '\\u0131\\u017f'", m, T);
		assert_eval("lower('\\u0130') = '\\u0130'", m, T);
		assert_eval("upper('\\u0250') = '\\u2c6f'", m, T); /* two bytes to three */
		assert_eval("lower('\\ud801\\udc00') = '\\ud801\\udc28'", m, T); /* Deseret */
		assert_eval("upper('\\u1c90') = '\\u1c90' AND lower('\\u1c90') = '\\u10d0'", m, T);
	});
}

static void fn_substring(void **state)
{
	WITH(sample, {
		assert_eval("substring('abc', 1) = 'bc'", m, T);
		assert_eval("substring('abc', 3) = ''", m, T);
		assert_eval("is_defined(substring('abc', 4))", m, F);
		assert_eval("is_defined(substring('abc', -1))", m, F);
		assert_eval("is_defined(substring('abc', 1 % 0))", m, F);
		assert_eval("substring('hello', 1, 3) = 'ell'", m, T);
		assert_eval("substring('hello', 4, 0) = ''", m, T);
		assert_eval("substring('hello', 0, 5) = 'hello'", m, T);
		assert_eval("substring('hello', 1.9, 2.5) = 'el'", m, T);
		assert_eval("is_defined(substring('abc', 3, 0))", m, F);
		assert_eval("is_defined(substring('abc', 1, 3))", m, F);
		assert_eval("is_defined(substring('abc', 1, -1))", m, F);
		assert_eval("substring(key1, 1, 1) = 'a'", m, T);
		assert_eval("substring('h\\u00e9llo', 1, 2) = '\\u00e9l'", m, T);
		assert_eval("is_defined(substring(null_value, 0))", m, F);
	});
}

static void substring_counts_utf16_units_and_can_split_a_pair(void **state)
{
	WITH(sample, {
		/* U+1F600 is two units; cutting between them leaves lone halves. */
		assert_eval("substring('a\\ud83d\\ude00b', 3) = 'b'", m, T);
		assert_eval("substring('a\\ud83d\\ude00b', 2) = '\\ude00b'", m, T);
		assert_eval("substring('a\\ud83d\\ude00b', 0, 2) = 'a\\ud83d'", m, T);
		assert_eval("substring('a\\ud83d\\ude00b', 2, 0) = ''", m, T);
		assert_eval("length(substring('\\ud83d\\ude00', 1)) = 1", m, T);
		/* Joined again, the halves are the character. */
		assert_eval("substring('\\ud83d\\ude00', 0, 1) || substring('\\ud83d\\ude00', 1) = "
			    "'\xf0\x9f\x98\x80'",
			    m, T);
		assert_eval("'\\ud83d' || '\\ude00' = '\\ud83d\\ude00'", m, T);
	});
}

static void fn_index_of(void **state)
{
	WITH(sample, {
		assert_eval("index_of('abcdef', 'cd') = 2", m, T);
		assert_eval("index_of('abc', 'xz') = -1", m, T);
		assert_eval("index_of('abc', '') = 0", m, T);
		assert_eval("index_of('\\u00e9a', 'a') = 1", m, T);
		assert_eval("index_of('\\ud83d\\ude00a', 'a') = 2", m, T);	/* UTF-16 units */
		assert_eval("index_of('\\ud83d\\ude00', '\\ude00') = 1", m, T); /* half a pair */
		assert_eval("INDEX_OF(key1, 'val') = 0", m, T);
		assert_eval("is_defined(index_of(null_value, '1'))", m, F);
	});
}

static void fn_starts_with(void **state)
{
	WITH(sample, {
		assert_eval("starts_with('abc', 'ab')", m, T);
		assert_eval("starts_with('abc', 'bc')", m, F);
		assert_eval("starts_with('ab', 'abc')", m, F);
		assert_eval("starts_with('\\ud83d\\ude00', '\\ud83d')", m, T);
		assert_eval("starts_with(none, 'a')", m, U);
	});
}

static void fn_ends_with(void **state)
{
	WITH(sample, {
		assert_eval("ends_with('abc', 'bc')", m, T);
		assert_eval("ends_with('abc', 'ab')", m, F);
		assert_eval("ends_with(key1, 'e1')", m, T);
		assert_eval("ends_with('x\\ud83d\\ude00', '\\ude00')", m, T);
		assert_eval("ends_with(null_value, '1')", m, U);
	});
}

static void fn_contains(void **state)
{
	WITH(sample, {
		assert_eval("contains('abc', 'b')", m, T);
		assert_eval("contains('abc', 'xz')", m, F);
		assert_eval("contains('value1value1', key1)", m, T);
		assert_eval("contains('\\ud83d\\ude00', '\\ud83d')", m, T);
		assert_eval("contains(none, '1')", m, U);
	});
}

static void function_names_ignore_case(void **state)
{
	WITH(sample,
	     { assert_eval("ABS(-1) = 1 AND Is_Defined(key1) AND UpPeR('a') = 'A'", m, T); });
}

static void functions_with_the_wrong_number_of_arguments_are_refused(void **state)
{
	assert_contains(cond_refused("abs() = 1"), "abs() takes 1 argument, not 0");
	assert_contains(cond_refused("power(1) = 1"), "power() takes 2 arguments, not 1");
	assert_contains(cond_refused("substring('a') = 'a'"),
			"substring() takes 2 or 3 arguments, not 1");
	assert_contains(cond_refused("substring('a', 1, 2, 3) = 'a'"),
			"substring() takes 2 or 3 arguments, not 4");
	assert_contains(cond_refused("concat('a') = 'a'"),
			"concat() takes at least 2 arguments, not 1");
	assert_contains(cond_refused("is_defined()"), "is_defined() takes 1 argument, not 0");
	assert_contains(cond_refused("contains('a', 'b', 'c')"),
			"contains() takes 2 arguments, not 3");
}

static void functions_with_arguments_of_the_wrong_type_are_refused(void **state)
{
	assert_contains(cond_refused("abs('x') = 1"), "invalid arguments to abs(string)");
	assert_contains(cond_refused("is_defined(abs(key1))"), "invalid arguments to abs(string)");
	assert_contains(cond_refused("length(3) = 1"), "invalid arguments to length(number)");
	assert_contains(cond_refused("concat('a', null) = 'a'"),
			"invalid arguments to concat(string, null)");
	assert_contains(cond_refused("substring('a', 'b') = 'a'"),
			"invalid arguments to substring(string, string)");
	assert_contains(cond_refused("starts_with('a', true)"),
			"invalid arguments to starts_with(string, bool)");
}

static void functions_given_body_values_of_the_wrong_type_are_undefined(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"name\": \"x\", \"n\": 5, \"flag\": true}");
		assert_eval("is_defined(abs($body.name))", m, F);
		assert_eval("is_defined(length($body.n))", m, F);
		assert_eval("is_defined(upper($body.flag))", m, F);
		assert_eval("is_defined(concat('a', $body.n))", m, F);
		assert_eval("abs($body.n) = 5 AND length($body.name) = 1", m, T);
	});
}

static void unknown_functions_are_refused(void **state)
{
	assert_contains(cond_refused("twin_change_includes('a')"),
			"unknown function 'twin_change_includes'");
}

/* ---- $body ---- */

static void body_member_paths(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather.Temperature = 50", m, T);
		assert_eval("$body.message.Weather.Location.City = 'Redmond'", m, T);
		assert_eval("50 >= $body.message.Weather.Temperature", m, T);
		assert_eval("$body.message.weather.Temperature = 50", m,
			    F); /* keys keep their case */
	});
}

static void body_array_indexes(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather.PrevTemperatures[1] = 30", m, T);
		assert_eval("$body.message.Weather.HistoricalData[1].Month = 'Jan'", m, T);
		assert_eval("$body.message.Weather.HistoricalData[0].Temperature - 10 = "
			    "$body.message.Weather.HistoricalData[1].Temperature",
			    m, T);
	});
}

static void body_path_that_leads_nowhere_is_null(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather.Nope = null", m, T);
		assert_eval("$body.message.Weather.PrevTemperatures[9] = null", m, T);
		assert_eval("$body.message.Weather.Temperature.Deeper = null", m, T);
		assert_eval("$body.message.Weather.Nope <> 'x'", m, T);
	});
}

static void body_json_null_is_null(void **state)
{
	WITH(json_sample, { assert_eval("$body.message.Weather.NullValue = null", m, T); });
}

static void body_objects_and_arrays_are_undefined(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather <> null", m, U);
		assert_eval("is_defined($body.message.Weather.PrevTemperatures)", m, F);
	});
}

static void body_values_of_different_types_are_never_equal(void **state)
{
	WITH(json_sample, {
		/* No conversion; values of different types order by type:
		 * bool < number < string < null. */
		assert_eval("$body.message.Weather.Temperature = '50'", m, F);
		assert_eval("$body.message.Weather.Temperature <> '50'", m, T);
		assert_eval("$body.message.Weather.Temperature < 'a'", m, T);
		assert_eval("$body.message.Weather.IsEnabled < 0", m, T);
	});
}

static void body_bool_is_a_condition(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather.IsEnabled", m, T);
		assert_eval("NOT $body.message.Weather.IsEnabled", m, F);
		assert_eval("$body.message.Weather.IsEnabled AND $body.message.Weather.IsEnabled",
			    m, T);
		assert_eval("$body.message.Weather.Temperature AND true", m, U);
	});
}

static void body_values_in_arithmetic_and_functions(void **state)
{
	WITH(json_sample, {
		assert_eval("$body.message.Weather.PrevTemperatures[0] + "
			    "$body.message.Weather.PrevTemperatures[1] = 50",
			    m, T);
		assert_eval("abs($body.message.Weather.Precise) = 50.4", m, T);
		assert_eval("$body.message.Weather.Location.City || '!' = 'Redmond!'", m, T);
		assert_eval("concat($body.message.Weather.Location.Street, ', ', "
			    "$body.message.Weather.Location.City) = 'One Way, Redmond'",
			    m, T);
		assert_eval("substring($body.message.Weather.Location.Street, 4) = 'Way'", m, T);
		assert_eval("power($body.message.Weather.Temperature, 2) = 2500", m, T);
	});
}

static void body_prefix_ignores_case(void **state)
{
	WITH(json_sample, { assert_eval("$BODY.message.Weather.Temperature = 50", m, T); });
}

static void body_needs_the_json_content_type(void **state)
{
	WITH(json_sample, {
		msg_set_sys(m, MSG_SYS_CONTENT_TYPE, "text/plain");
		assert_eval("$body.message.Weather.Temperature = 50", m, U);
		msg_set_sys(m, MSG_SYS_CONTENT_TYPE, NULL);
		assert_eval("$body.message.Weather.Temperature = 50", m, U);
		msg_set_sys(m, MSG_SYS_CONTENT_TYPE, "Application/JSON");
		assert_eval("$body.message.Weather.Temperature = 50", m, T);
	});
}

static void body_needs_a_utf_encoding(void **state)
{
	WITH(json_sample, {
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "latin1");
		assert_eval("$body.message.Weather.Temperature = 50", m, U);
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, NULL);
		assert_eval("$body.message.Weather.Temperature = 50", m, U);
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "UTF-8");
		assert_eval("$body.message.Weather.Temperature = 50", m, T);
	});
}

/* ASCII text with each character widened to `width` bytes. */
static size_t widen(const char *s, int width, bool big_endian, unsigned char *out)
{
	size_t o = 0;
	for (; *s; s++)
		for (int i = 0; i < width; i++)
			out[o++] = (unsigned char)((big_endian ? i == width - 1 : i == 0) ? *s : 0);
	return o;
}

static void body_in_utf16_and_utf32(void **state)
{
	WITH(sample, {
		unsigned char buf[256];
		msg_set_sys(m, MSG_SYS_CONTENT_TYPE, "application/json");
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "utf-16");
		size_t n = widen("{\"a\": \"x\", \"b\": 2}", 2, false, buf);
		msg_set_body(m, buf, n);
		assert_eval("$body.a = 'x' AND $body.b = 2", m, T);
		/* always little-endian: a byte order mark is a character the
		 * JSON reader refuses, as in .NET */
		buf[0] = 0xFE;
		buf[1] = 0xFF;
		n = 2 + widen("{\"a\": \"y\"}", 2, true, buf + 2);
		msg_set_body(m, buf, n);
		assert_eval("$body.a = 'y'", m, U);
		buf[0] = 0xFF;
		buf[1] = 0xFE;
		n = 2 + widen("{\"a\": \"y\"}", 2, false, buf + 2);
		msg_set_body(m, buf, n);
		assert_eval("$body.a = 'y'", m, U);
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "UTF-32");
		n = widen("{\"a\": \"z\"}", 4, false, buf);
		msg_set_body(m, buf, n);
		assert_eval("$body.a = 'z'", m, T);
		/* a non-ASCII character: e with acute accent, U+00E9 */
		msg_set_sys(m, MSG_SYS_CONTENT_ENCODING, "utf-16");
		n = widen("{\"a\": \"?\"}", 2, false, buf);
		buf[14] = 0xE9;
		msg_set_body(m, buf, n);
		assert_eval("$body.a = '\\u00e9'", m, T);
	});
}

static void body_that_is_not_a_json_object_is_undefined(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": 1");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "[1, 2]");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "");
		assert_eval("$body.a = 1", m, U);
	});
}

static void body_strings_with_escapes(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"q\": \"say \\\"hi\\\"\", \"e\": \"\\u00e9\", \"k\\u0041\": 1}");
		assert_eval("$body.q = 'say \"hi\"'", m, T);
		assert_eval("$body.e = '\\u00e9'", m, T);
		assert_eval("$body.kA = 1", m, T); /* member names are unescaped too */
	});
}

static void body_long_escaped_strings_are_kept_whole(void **state)
{
	WITH(sample, {
		/* 20000 escaped characters: more than the scratch buffer holds */
		size_t n = 20000;
		char *json = malloc(n * 2 + 32), *o = json;
		o = stpcpy(o, "{\"long\": \"");
		for (size_t i = 0; i < n; i++)
			o = stpcpy(o, "\\/");
		stpcpy(o, "\", \"short\": \"a\\tb\"}");
		msg_set_json(m, json);
		free(json);
		assert_eval("length($body.long) = 20000 AND starts_with($body.long, '//')", m, T);
		assert_eval("length($body.short) = 3", m, T);
	});
}

static void body_duplicate_members_the_last_wins(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": 1, \"b\": {\"c\": true}, \"a\": 2}");
		assert_eval("$body.a = 2", m, T);
		assert_eval("$body.b.c", m, T);
	});
}

static void body_nested_deeper_than_64_levels_is_undefined(void **state)
{
	WITH(sample, {
		char json[256] = "{\"a\": 1, \"d\": ";
		for (int i = 0; i < 64; i++)
			strcat(json, "[");
		for (int i = 0; i < 64; i++)
			strcat(json, "]");
		strcat(json, "}");
		msg_set_json(m, json);
		assert_eval("$body.a = 1", m, U);
		json[strlen(json) - 66] = ' '; /* one level less: 1 object + 63 arrays */
		json[strlen(json) - 2] = ' ';
		msg_set_json(m, json);
		assert_eval("$body.a = 1", m, T);
	});
}

static void body_that_is_more_than_one_json_object_is_undefined(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": 1} x");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "{\"a\": 1}{\"a\": 1}");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "3");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "  ");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, " {\"a\": 1}\n");
		assert_eval("$body.a = 1", m, T);
	});
}

static void body_query_loses_to_an_application_property_of_that_name(void **state)
{
	WITH(json_sample, {
		msg_add_prop(m, "$body.message.Weather.Temperature", "100");
		assert_eval("$body.message.Weather.Temperature = '100'", m, T);
		assert_eval("{$body.message.Weather.Temperature} = 50", m, T);
	});
}

static void body_is_null_answers_as_edgehub(void **state)
{
	/* edgeHub's is_null compares a $body value by reference with its one
	 * "path led nowhere" null: that one is not null, everything else is. */
	WITH(json_sample, {
		assert_eval("is_null($body.message.Weather.NullValue)", m, T);
		assert_eval("is_null($body.message.Weather.Temperature)", m, T);
		assert_eval("is_null($body.message.Weather.Nope)", m, F);
		assert_eval("$body.message.Weather.Nope = null", m, T);
		assert_eval("is_null($body.message.Weather)", m, U);
	});
}

static void body_numbers_that_are_not_numbers(void **state)
{
	/* Arithmetic on $body values keeps NaN as a number (edgeHub's
	 * QueryValue), which sorts before every number and is defined. */
	WITH(sample, {
		msg_set_json(m, "{\"big\": 1e400, \"z\": -0, \"nz\": -0.0}");
		assert_eval("$body.big = 1 / 0", m, T);
		assert_eval("is_defined($body.big - $body.big)", m, T);
		assert_eval("$body.big - $body.big < -1e300", m, T);
		assert_eval("$body.big - $body.big = $body.big - $body.big", m, T);
		assert_eval("is_number($body.big - $body.big)", m, F);
		assert_eval("is_defined(abs($body.big - $body.big))", m, F);
		assert_eval("is_defined(sign($body.big - $body.big))", m, F);
		/* an integer -0 is read as the integer 0 */
		assert_eval("1 / $body.z > 0 AND 1 / $body.nz < 0", m, T);
	});
}

static void body_strings_newtonsoft_reads_as_dates_are_undefined(void **state)
{
	WITH(sample, {
		msg_set_json(
		    m, "{\"t\": \"2017-03-09T00:00:00.000Z\", \"u\": \"2017-03-09T10:00:00+01:00\","
		       " \"v\": \"2017-03-09T10:00:00\", \"w\": \"2017-02-30T00:00:00Z\","
		       " \"x\": \"2017-03-09 10:00:00\", \"y\": \"/Date(1489017600000)/\","
		       " \"z\": \"/Date(x)/\", \"n9\": \"2017-03-09T00:00:00.123456789\","
		       " \"n8\": \"2017-03-09T00:00:00.12345678\"}");
		assert_eval("is_defined($body.t) OR is_defined($body.u) OR is_defined($body.v)", m,
			    F);
		assert_eval("is_defined($body.y) OR is_defined($body.n9)", m, F);
		/* not dates: no 30 February, no 'T', no number of ticks, 8 digits */
		assert_eval("$body.w = '2017-02-30T00:00:00Z' AND $body.x = '2017-03-09 10:00:00'",
			    m, T);
		assert_eval("$body.z = '/Date(x)/' AND $body.n8 = '2017-03-09T00:00:00.12345678'",
			    m, T);
	});
}

static void body_with_a_date_dotnet_cannot_hold_is_undefined(void **state)
{
	/* Newtonsoft throws on these, so nothing of the body is read. */
	WITH(sample, {
		msg_set_json(m, "{\"a\": 1, \"t\": \"9999-12-31T24:00:00\"}");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "{\"a\": 1, \"t\": \"9999-12-30T24:00:00\"}");
		assert_eval("$body.a = 1", m, T);
		msg_set_json(m, "{\"a\": 1, \"t\": \"/Date(999999999999999)/\"}");
		assert_eval("$body.a = 1", m, U);
	});
}

static void body_with_a_byte_order_mark_is_undefined(void **state)
{
	/* .NET's decoders keep the mark, which the JSON reader refuses. */
	WITH(sample, {
		msg_set_json(m, "\xef\xbb\xbf{\"a\": 1}");
		assert_eval("$body.a = 1", m, U);
		msg_set_json(m, "{\"a\": 1}");
		assert_eval("$body.a = 1", m, T);
	});
}

static void body_with_invalid_utf8_reads_replacement_characters(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": \"x\xff\xe2\x82y\", \"b\": 2}");
		assert_eval("$body.a = 'x\\ufffd\\ufffdy' AND $body.b = 2", m, T);
	});
}

static void body_with_comments(void **state)
{
	WITH(sample, {
		msg_set_json(m, "/* c */ {\"a\": // line\n 1 /* x */} // end");
		assert_eval("$body.a = 1", m, T);
	});
}

static void body_wildcards(void **state)
{
	/* Newtonsoft's .* and [*]: one value reached is that value, none is
	 * null, more than one is undefined. */
	WITH(sample, {
		msg_set_json(m, "{\"one\": {\"only\": 7}, \"two\": [1, 2], \"lone\": [5],"
				" \"none\": {}}");
		assert_eval("$body.one.* = 7", m, T);
		assert_eval("$body.lone[0][*] = null", m, T);
		assert_eval("$body.none.* = null", m, T);
		assert_eval("is_defined($body.*)", m, F);
		assert_eval("is_defined($body.two[0][*])", m, T);
		msg_set_json(m, "{\"x\": [[1, 2]], \"y\": [[3]]}");
		assert_eval("is_defined($body.x[0][*])", m, F);
		assert_eval("$body.y[0][*] = 3", m, T);
	});
}

static void body_index_steps(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": [[1, 2], [3, {\"k\": 4, \"k.l\": 5}]]}");
		assert_eval("$body.a[1][0] = 3", m, T); /* more [i] after the first */
		assert_eval("$body.a[1][1]['k'] = 4", m, T);
		assert_eval("$body.a[1][1]['k.l'] = 5", m, T);
		assert_eval("$body.a[0][-1] = null", m, T);
		/* accepted as edgeHub accepts them, but its JSON library refuses
		 * them per message: always undefined */
		assert_eval("is_defined($body.a[99999999999])", m, F);
		assert_eval("is_defined($body.a[0]b)", m, F);
		assert_eval("is_defined($body.a])", m, F);
	});
}

static void body_query_may_start_at_the_root(void **state)
{
	WITH(sample, {
		msg_set_json(m, "{\"a\": 1, \"$b\": 2}");
		assert_eval("$body.$.a = 1", m, T);
		assert_eval("$body.$b = 2", m, T);
		assert_eval("is_defined($body.$)", m, F); /* the whole object */
	});
}

static void body_query_with_brackets_ignores_application_properties(void **state)
{
	/* A name with brackets is never an application property's. */
	WITH(json_sample, {
		msg_add_prop(m, "$body.message.Weather.PrevTemperatures[0]", "x");
		assert_eval("$body.message.Weather.PrevTemperatures[0] = 20", m, T);
	});
}

/* ---- literals ---- */

static void hex_literals(void **state)
{
	WITH(sample, {
		assert_eval("0x1F = 31", m, T);
		assert_eval("0XfF = 255", m, T);
		assert_eval("0xFFFFFFFFFFFFFFFF = -1", m, T); /* 64-bit two's complement */
		assert_eval("is_defined(0x10000000000000000)", m, F);
	});
}

static void real_literals(void **state)
{
	WITH(sample, {
		assert_eval("1.5 = 3 / 2", m, T);
		assert_eval(".5 = 0.5", m, T);
		assert_eval("-.5 = -0.5", m, T);
		assert_eval("1e3 = 1000", m, T);
		assert_eval("2.5E-1 = 0.25", m, T);
		assert_eval("-1.5e+2 = -150", m, T);
		assert_eval("10e1000 = 1 / 0", m, T);
		/* "e5" is a real token without digits, undefined as in edgeHub */
		assert_eval("is_defined(e5)", m, F);
	});
}

static void string_literals_in_both_quotes(void **state)
{
	WITH(sample, {
		assert_eval("'abc' = \"abc\"", m, T);
		assert_eval("\"it's\" = 'it\\'s'", m, T);
		assert_eval("'say \"hi\"' = \"say \\\"hi\\\"\"", m, T);
	});
}

static void string_literal_escapes(void **state)
{
	WITH(sample, {
		assert_eval("length('a\\\\b') = 3", m, T);
		assert_eval("'\\u00e9' = '\xc3\xa9'", m, T);
		assert_eval("'\\uD83D\\uDE00' = '\xf0\x9f\x98\x80'", m, T); /* surrogate pair */
		/* A lone surrogate is a character of its own. */
		assert_eval("'\\uD83D' = '\xef\xbf\xbd'", m, F);
		assert_eval("length('\\uD83D') = 1", m, T);
	});
}

static void string_literals_unescape_in_two_passes(void **state)
{
	/* edgeHub replaces every \uXXXX first, then \" \' and \\, so an escaped
	 * backslash before "u0041" still makes an A, and the backslash a \u005c
	 * makes escapes what follows it. */
	WITH(sample, {
		assert_eval("'\\\\u0041' = '\\\\A'", m, T);
		assert_eval("length('\\\\u0041') = 2", m, T);
		assert_eval("'\\u005c\\'' = '\\\\\\''", m, T);
		assert_eval("'\\u005c\"' = '\"'", m, T);
	});
}

/* ---- evaluation limits ---- */

static void concat_can_fill_the_scratch_buffer_exactly(void **state)
{
	WITH(sample, {
		/* 8191 + 8191 + 1 characters and a NUL: exactly 16 KiB */
		char half[8192];
		memset(half, 'x', 8191);
		half[8191] = '\0';
		msg_add_prop(m, "half", half);
		assert_eval("length(concat(half, half, 'y')) = 16383", m, T);
		assert_eval("is_defined(concat(half, half, 'yy'))", m, F);
		assert_eval("length(half || half || 'y') = 16383", m, T);
		assert_eval("is_defined(half || 'yy' || half)", m, F);
	});
}

static void concat_of_many_arguments_uses_no_intermediate_copies(void **state)
{
	WITH(sample, {
		char part[1401];
		memset(part, 'p', 1400);
		part[1400] = '\0';
		msg_add_prop(m, "p", part);
		assert_eval("length(concat(p, p, p, p, p, p, p, p, p, p, p)) = 15400", m, T);
		assert_eval("is_defined(concat(p, p, p, p, p, p, p, p, p, p, p, p))", m, F);
		assert_eval(
		    "concat(p, upper('a'), concat('b', lower('C')), substring(upper('xyz'), 1)) = "
		    "concat(p, 'AbcYZ')",
		    m, T);
	});
}

static void strings_built_beyond_the_scratch_buffer_are_undefined(void **state)
{
	WITH(sample, {
		char *big = malloc(10001);
		memset(big, 'x', 10000);
		big[10000] = '\0';
		msg_add_prop(m, "big", big);
		free(big);
		assert_eval("length(concat(big, 'y')) = 10001", m, T);
		assert_eval("is_defined(concat(big, big))", m, F);
		assert_eval("is_defined(upper(big) || lower(big))", m, F);
	});
}

struct deep_case {
	const char *text;
	bool matched;
};

static void *match_deep(void *arg)
{
	struct deep_case *c = arg;
	struct hub_message *m = msg_from(NULL, NULL);
	c->matched = route_text_matches(c->text, m);
	hub_message_free(m);
	return NULL;
}

/* "FROM /" "* WHERE " + head + unit * n + mid + unit2 * n2 + tail + " INTO $upstream" */
static char *condition_route(const char *head, const char *unit, size_t n, const char *mid,
			     const char *unit2, size_t n2, const char *tail)
{
	char *s = malloc(ROUTE_TEXT_MAX + 1), *o = s;
	o = stpcpy(o, "FROM /* WHERE ");
	o = stpcpy(o, head);
	for (size_t i = 0; i < n; i++)
		o = stpcpy(o, unit);
	o = stpcpy(o, mid);
	for (size_t i = 0; i < n2; i++)
		o = stpcpy(o, unit2);
	o = stpcpy(o, tail);
	stpcpy(o, " INTO $upstream");
	assert_true(strlen(s) <= ROUTE_TEXT_MAX);
	return s;
}

static void the_deepest_conditions_evaluate_in_a_small_stack(void **state)
{
	/* The deepest conditions the compiler accepts, evaluated on a thread
	 * with a 256 KiB stack (more under AddressSanitizer, whose frames are
	 * several times larger). */
#if defined(__SANITIZE_ADDRESS__)
	size_t stack = 4 << 20;
#else
	size_t stack = 256 << 10;
#endif
	char *texts[] = {
	    /* 255 ORs: 256 levels */
	    condition_route("false", " OR false", 254, " OR true", "", 0, ""),
	    /* 254 concatenations and a comparison: 256 levels */
	    condition_route("''", " || ''", 253, " || 'a'", "", 0, " = 'a'"),
	    /* 126 nested calls */
	    condition_route("", "concat('', ", 126, "'a'", ")", 126, " = 'a'"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		pthread_attr_t attr;
		pthread_t th;
		struct deep_case c = {texts[i], false};
		assert_int_equal(pthread_attr_init(&attr), 0);
		assert_int_equal(pthread_attr_setstacksize(&attr, stack), 0);
		assert_int_equal(pthread_create(&th, &attr, match_deep, &c), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		pthread_attr_destroy(&attr);
		if (!c.matched)
			fail_msg("deep condition %zu did not route", i);
		free(texts[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(and_binds_tighter_than_or),
	    cmocka_unit_test(not_binds_tighter_than_comparison),
	    cmocka_unit_test(multiplication_binds_tighter_than_addition),
	    cmocka_unit_test(unary_minus_binds_tighter_than_multiplication),
	    cmocka_unit_test(binary_operators_associate_to_the_left),
	    cmocka_unit_test(concatenation_binds_tighter_than_equality),
	    cmocka_unit_test(ordering_binds_tighter_than_equality),
	    cmocka_unit_test(coalesce_binds_loosest),
	    cmocka_unit_test(comparison_with_an_undefined_operand_is_undefined),
	    cmocka_unit_test(and_follows_three_valued_logic),
	    cmocka_unit_test(or_follows_three_valued_logic),
	    cmocka_unit_test(not_follows_three_valued_logic),
	    cmocka_unit_test(null_is_false_as_a_condition_and_absorbs_and),
	    cmocka_unit_test(only_a_true_condition_routes),
	    cmocka_unit_test(arithmetic_without_numbers_is_undefined),
	    cmocka_unit_test(division_by_zero_is_infinite_and_modulo_by_zero_undefined),
	    cmocka_unit_test(coalesce_takes_the_first_defined_operand),
	    cmocka_unit_test(comparing_a_property_with_a_number_is_refused),
	    cmocka_unit_test(as_number_makes_a_property_comparable_with_numbers),
	    cmocka_unit_test(operands_of_the_wrong_type_are_refused),
	    cmocka_unit_test(unary_minus_takes_numbers_only),
	    cmocka_unit_test(modulo_of_a_body_value_is_refused),
	    cmocka_unit_test(and_or_take_bools_nulls_and_undefined),
	    cmocka_unit_test(and_or_with_a_body_value_on_the_left_take_any_right_operand),
	    cmocka_unit_test(and_or_with_a_body_value_on_the_right_only_are_refused),
	    cmocka_unit_test(strings_compare_by_utf16_code_units),
	    cmocka_unit_test(bools_and_nulls_compare),
	    cmocka_unit_test(application_property_names_ignore_case),
	    cmocka_unit_test(a_missing_property_is_undefined),
	    cmocka_unit_test(a_property_without_a_value_is_a_null_string),
	    cmocka_unit_test(system_properties_by_name),
	    cmocka_unit_test(system_properties_go_by_edgehub_names),
	    cmocka_unit_test(an_application_property_named_like_a_system_property_wins),
	    cmocka_unit_test(braces_force_the_system_property),
	    cmocka_unit_test(a_bracketed_name_that_is_no_body_query_is_undefined),
	    cmocka_unit_test(fn_abs),
	    cmocka_unit_test(fn_exp),
	    cmocka_unit_test(fn_power),
	    cmocka_unit_test(fn_square),
	    cmocka_unit_test(fn_ceiling),
	    cmocka_unit_test(fn_floor),
	    cmocka_unit_test(fn_sign),
	    cmocka_unit_test(fn_sqrt),
	    cmocka_unit_test(fn_as_number),
	    cmocka_unit_test(as_number_reads_what_dotnet_reads),
	    cmocka_unit_test(fn_is_bool),
	    cmocka_unit_test(fn_is_defined),
	    cmocka_unit_test(fn_is_null),
	    cmocka_unit_test(fn_is_number),
	    cmocka_unit_test(fn_is_string),
	    cmocka_unit_test(fn_concat),
	    cmocka_unit_test(fn_length),
	    cmocka_unit_test(fn_lower),
	    cmocka_unit_test(fn_upper),
	    cmocka_unit_test(case_mapping_follows_dotnet_invariant_casing),
	    cmocka_unit_test(fn_substring),
	    cmocka_unit_test(substring_counts_utf16_units_and_can_split_a_pair),
	    cmocka_unit_test(fn_index_of),
	    cmocka_unit_test(fn_starts_with),
	    cmocka_unit_test(fn_ends_with),
	    cmocka_unit_test(fn_contains),
	    cmocka_unit_test(function_names_ignore_case),
	    cmocka_unit_test(functions_with_the_wrong_number_of_arguments_are_refused),
	    cmocka_unit_test(functions_with_arguments_of_the_wrong_type_are_refused),
	    cmocka_unit_test(functions_given_body_values_of_the_wrong_type_are_undefined),
	    cmocka_unit_test(unknown_functions_are_refused),
	    cmocka_unit_test(body_member_paths),
	    cmocka_unit_test(body_array_indexes),
	    cmocka_unit_test(body_path_that_leads_nowhere_is_null),
	    cmocka_unit_test(body_json_null_is_null),
	    cmocka_unit_test(body_objects_and_arrays_are_undefined),
	    cmocka_unit_test(body_values_of_different_types_are_never_equal),
	    cmocka_unit_test(body_bool_is_a_condition),
	    cmocka_unit_test(body_values_in_arithmetic_and_functions),
	    cmocka_unit_test(body_prefix_ignores_case),
	    cmocka_unit_test(body_needs_the_json_content_type),
	    cmocka_unit_test(body_needs_a_utf_encoding),
	    cmocka_unit_test(body_in_utf16_and_utf32),
	    cmocka_unit_test(body_that_is_not_a_json_object_is_undefined),
	    cmocka_unit_test(body_strings_with_escapes),
	    cmocka_unit_test(body_long_escaped_strings_are_kept_whole),
	    cmocka_unit_test(body_duplicate_members_the_last_wins),
	    cmocka_unit_test(body_nested_deeper_than_64_levels_is_undefined),
	    cmocka_unit_test(body_that_is_more_than_one_json_object_is_undefined),
	    cmocka_unit_test(body_query_loses_to_an_application_property_of_that_name),
	    cmocka_unit_test(body_is_null_answers_as_edgehub),
	    cmocka_unit_test(body_numbers_that_are_not_numbers),
	    cmocka_unit_test(body_strings_newtonsoft_reads_as_dates_are_undefined),
	    cmocka_unit_test(body_with_a_date_dotnet_cannot_hold_is_undefined),
	    cmocka_unit_test(body_with_a_byte_order_mark_is_undefined),
	    cmocka_unit_test(body_with_invalid_utf8_reads_replacement_characters),
	    cmocka_unit_test(body_with_comments),
	    cmocka_unit_test(body_wildcards),
	    cmocka_unit_test(body_index_steps),
	    cmocka_unit_test(body_query_may_start_at_the_root),
	    cmocka_unit_test(body_query_with_brackets_ignores_application_properties),
	    cmocka_unit_test(hex_literals),
	    cmocka_unit_test(real_literals),
	    cmocka_unit_test(string_literals_in_both_quotes),
	    cmocka_unit_test(string_literal_escapes),
	    cmocka_unit_test(string_literals_unescape_in_two_passes),
	    cmocka_unit_test(strings_built_beyond_the_scratch_buffer_are_undefined),
	    cmocka_unit_test(concat_can_fill_the_scratch_buffer_exactly),
	    cmocka_unit_test(concat_of_many_arguments_uses_no_intermediate_copies),
	    cmocka_unit_test(the_deepest_conditions_evaluate_in_a_small_stack),
	};
	return cmocka_run_group_tests_name("route conditions", tests, NULL, NULL);
}
