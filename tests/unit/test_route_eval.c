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

static void strings_compare_by_code_point(void **state)
{
	WITH(sample, {
		assert_eval("'a' < 'b'", m, T);
		assert_eval("'B' < 'a'", m, T);
		assert_eval("'ab' > 'a'", m, T);
		assert_eval("'a' <= 'a'", m, T);
		assert_eval("'abc' = 'abc'", m, T);
		assert_eval("'abc' != 'abd'", m, T);
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
	});
}

static void a_missing_property_is_undefined(void **state)
{
	WITH(sample, {
		assert_eval("is_defined(none)", m, F);
		assert_eval("none = 'value1'", m, U);
	});
}

static void a_property_without_a_value_is_null(void **state)
{
	WITH(sample, {
		assert_eval("is_null(null_value)", m, T);
		assert_eval("is_defined(null_value)", m, T);
		assert_eval("null_value = 'x'", m, U);
		assert_eval("'a' || null_value || 'd' = 'ad'", m, T);
	});
}

static void system_properties_by_name(void **state)
{
	WITH(sample, {
		assert_eval("$messageId = 'mid-1'", m, T);
		assert_eval("$correlationId = 'corr-1'", m, T);
		assert_eval("$connectionDeviceId = 'dev1'", m, T);
		assert_eval("$connectionModuleId = 'sensor'", m, T);
		assert_eval("$outputName = 'out1'", m, T);
		assert_eval("$contentType = 'text/plain'", m, T);
		assert_eval("$CONNECTIONmoduleID = 'sensor'", m, T);
		assert_eval("is_defined($userId)", m, F);
		assert_eval("is_defined($noSuchProperty)", m, F);
	});
}

static void system_properties_also_answer_to_edgehub_internal_names(void **state)
{
	WITH(sample, {
		assert_eval("$cid = 'corr-1'", m, T);
		msg_set_sys(m, MSG_SYS_CREATION_TIME, "2024-01-01T00:00:00Z");
		assert_eval("$creationTime = $creationTimeUtc", m, T);
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
		assert_eval("length('h\\u00e9llo') = 5", m, T); /* characters, not bytes */
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

static void case_mapping_changes_ascii_letters_only(void **state)
{
	WITH(sample, { assert_eval("upper('\\u00e9a') = '\\u00e9A'", m, T); });
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
		assert_eval("is_defined(substring('abc', 3, 0))", m, F);
		assert_eval("is_defined(substring('abc', 1, 3))", m, F);
		assert_eval("is_defined(substring('abc', 1, -1))", m, F);
		assert_eval("substring(key1, 1, 1) = 'a'", m, T);
		assert_eval("substring('h\\u00e9llo', 1, 2) = '\\u00e9l'", m, T);
		assert_eval("is_defined(substring(null_value, 0))", m, F);
	});
}

static void fn_index_of(void **state)
{
	WITH(sample, {
		assert_eval("index_of('abcdef', 'cd') = 2", m, T);
		assert_eval("index_of('abc', 'xz') = -1", m, T);
		assert_eval("index_of('abc', '') = 0", m, T);
		assert_eval("index_of('\\u00e9a', 'a') = 1", m, T);
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
		assert_eval("starts_with(none, 'a')", m, U);
	});
}

static void fn_ends_with(void **state)
{
	WITH(sample, {
		assert_eval("ends_with('abc', 'bc')", m, T);
		assert_eval("ends_with('abc', 'ab')", m, F);
		assert_eval("ends_with(key1, 'e1')", m, T);
		assert_eval("ends_with(null_value, '1')", m, U);
	});
}

static void fn_contains(void **state)
{
	WITH(sample, {
		assert_eval("contains('abc', 'b')", m, T);
		assert_eval("contains('abc', 'xz')", m, F);
		assert_eval("contains('value1value1', key1)", m, T);
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

static void body_bracketed_quoted_keys(void **state)
{
	WITH(json_sample, { assert_eval("$body.message[\"odd key\"]['a.b'] = 1", m, T); });
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
	WITH(json_sample, {
		assert_eval("$body.message.Weather.NullValue = null", m, T);
		assert_eval("is_null($body.message.Weather.NullValue)", m, T);
		assert_eval("is_null($body.message.Weather.Temperature)", m, F);
	});
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
		/* big-endian with a byte order mark */
		buf[0] = 0xFE;
		buf[1] = 0xFF;
		n = 2 + widen("{\"a\": \"y\"}", 2, true, buf + 2);
		msg_set_body(m, buf, n);
		assert_eval("$body.a = 'y'", m, T);
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
		assert_eval("'\\uD83D' = '\xef\xbf\xbd'", m, T);	    /* lone surrogate */
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
	    cmocka_unit_test(strings_compare_by_code_point),
	    cmocka_unit_test(bools_and_nulls_compare),
	    cmocka_unit_test(application_property_names_ignore_case),
	    cmocka_unit_test(a_missing_property_is_undefined),
	    cmocka_unit_test(a_property_without_a_value_is_null),
	    cmocka_unit_test(system_properties_by_name),
	    cmocka_unit_test(system_properties_also_answer_to_edgehub_internal_names),
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
	    cmocka_unit_test(fn_is_bool),
	    cmocka_unit_test(fn_is_defined),
	    cmocka_unit_test(fn_is_null),
	    cmocka_unit_test(fn_is_number),
	    cmocka_unit_test(fn_is_string),
	    cmocka_unit_test(fn_concat),
	    cmocka_unit_test(fn_length),
	    cmocka_unit_test(fn_lower),
	    cmocka_unit_test(fn_upper),
	    cmocka_unit_test(case_mapping_changes_ascii_letters_only),
	    cmocka_unit_test(fn_substring),
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
	    cmocka_unit_test(body_bracketed_quoted_keys),
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
	    cmocka_unit_test(hex_literals),
	    cmocka_unit_test(real_literals),
	    cmocka_unit_test(string_literals_in_both_quotes),
	    cmocka_unit_test(string_literal_escapes),
	    cmocka_unit_test(strings_built_beyond_the_scratch_buffer_are_undefined),
	    cmocka_unit_test(concat_can_fill_the_scratch_buffer_exactly),
	    cmocka_unit_test(concat_of_many_arguments_uses_no_intermediate_copies),
	    cmocka_unit_test(the_deepest_conditions_evaluate_in_a_small_stack),
	};
	return cmocka_run_group_tests_name("route conditions", tests, NULL, NULL);
}
