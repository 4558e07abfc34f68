/* Route syntax: sources, sinks, keywords, tokens, error positions, limits. */
#include "route_test.h"

/* ---- sources ---- */

static void source_all_matches_every_message(void **state)
{
	struct hub_message *tele = msg_from(NULL, NULL), *out = msg_from("sensor", "temp");
	assert_true(route_text_matches("FROM /* INTO $upstream", tele));
	assert_true(route_text_matches("FROM /* INTO $upstream", out));
	hub_message_free(tele);
	hub_message_free(out);
}

static void source_messages_matches_device_telemetry_and_module_outputs(void **state)
{
	struct hub_message *tele = msg_from(NULL, NULL), *out = msg_from("sensor", "temp");
	assert_true(route_text_matches("FROM /messages/* INTO $upstream", tele));
	assert_true(route_text_matches("FROM /messages/* INTO $upstream", out));
	hub_message_free(tele);
	hub_message_free(out);
}

static void source_module_star_matches_every_output_of_that_module_only(void **state)
{
	const char *route = "FROM /messages/modules/sensor/* INTO $upstream";
	struct hub_message *a = msg_from("sensor", "temp"), *b = msg_from("sensor", NULL),
			   *other = msg_from("sensor2", "temp"), *tele = msg_from(NULL, NULL);
	assert_true(route_text_matches(route, a));
	assert_true(route_text_matches(route, b));
	assert_false(route_text_matches(route, other));
	assert_false(route_text_matches(route, tele));
	hub_message_free(a);
	hub_message_free(b);
	hub_message_free(other);
	hub_message_free(tele);
}

static void source_module_outputs_star_needs_an_output(void **state)
{
	const char *route = "FROM /messages/modules/sensor/outputs/* INTO $upstream";
	struct hub_message *a = msg_from("sensor", "temp"), *b = msg_from("sensor", NULL);
	assert_true(route_text_matches(route, a));
	assert_false(route_text_matches(route, b));
	hub_message_free(a);
	hub_message_free(b);
}

static void source_module_output_matches_that_output_only(void **state)
{
	const char *route = "FROM /messages/modules/sensor/outputs/temp INTO $upstream";
	struct hub_message *a = msg_from("sensor", "temp"), *b = msg_from("sensor", "temp2"),
			   *c = msg_from("sensor", "hum");
	assert_true(route_text_matches(route, a));
	assert_false(route_text_matches(route, b));
	assert_false(route_text_matches(route, c));
	hub_message_free(a);
	hub_message_free(b);
	hub_message_free(c);
}

static void source_matching_ignores_case(void **state)
{
	struct hub_message *a = msg_from("Sensor", "Temp");
	assert_true(
	    route_text_matches("FROM /Messages/MODULES/sensor/outputs/TEMP INTO $upstream", a));
	hub_message_free(a);
}

static void source_segments_may_be_separated_by_blanks(void **state)
{
	struct hub_message *a = msg_from("sensor-1.x", "out_2");
	assert_true(route_text_matches(
	    "FROM / messages / modules / sensor-1.x / outputs / out_2 INTO $upstream", a));
	hub_message_free(a);
}

static void source_star_inside_the_path_is_a_character(void **state)
{
	/* edgeHub trims only the stars at the end: inside, '*' is matched as
	 * itself (no module is named so), it is no wildcard. */
	const char *route = "FROM /messages/modules/*/outputs/x INTO $upstream";
	struct hub_message *a = msg_from("a", "x"), *star = msg_from("*", "x");
	assert_false(route_text_matches(route, a));
	assert_true(route_text_matches(route, star));
	hub_message_free(a);
	hub_message_free(star);
}

static void source_trailing_stars_are_trimmed_even_inside_a_name(void **state)
{
	/* "sen*" is one name token; its star is trimmed, and the source then
	 * ends with one '/', so it takes module sen and not sensor. */
	struct hub_message *sen = msg_from("sen", "o"), *sensor = msg_from("sensor", "o");
	assert_true(route_text_matches("FROM /messages/modules/sen* INTO $upstream", sen));
	assert_false(route_text_matches("FROM /messages/modules/sen* INTO $upstream", sensor));
	assert_true(route_text_matches("FROM /messages/modules/sen/** INTO $upstream", sen));
	hub_message_free(sen);
	hub_message_free(sensor);
}

static void source_items_are_names_or_stars_only(void **state)
{
	/* edgeHub's path takes ID and '*' tokens: a number, a keyword or a
	 * $name is no path segment. */
	assert_contains(must_refuse("FROM /messages/modules/123 INTO $upstream"),
			"position 24: expected a path segment or '*' after '/', found '123'");
	assert_contains(must_refuse("FROM /messages/modules/and INTO $upstream"),
			"expected a path segment or '*' after '/', found 'and'");
	assert_contains(must_refuse("FROM /messages/true INTO $upstream"),
			"expected a path segment or '*' after '/', found 'true'");
	assert_contains(must_refuse("FROM /$edge INTO $upstream"),
			"expected a path segment or '*' after '/', found '$edge'");
	assert_contains(must_refuse("FROM /m[0] INTO $upstream"),
			"expected a path segment or '*' after '/', found 'm[0]'");
	struct route *r = must_parse("FROM /messages/modules/m-1.x_2/outputs/o INTO $upstream");
	route_free(r);
}

static void source_matching_ignores_case_beyond_ascii(void **state)
{
	/* OrdinalIgnoreCase: Unicode's simple uppercase mappings. */
	struct hub_message *a = msg_from("m", "\xc3\xa9t\xc3\xa9"); /* été */
	assert_true(route_text_matches(
	    "FROM /messages/modules/m/outputs/\xc3\x89T\xc3\x89 INTO $upstream", a)); /* ÉTÉ */
	assert_false(route_text_matches("FROM /messages/modules/m/outputs/ETE INTO $upstream", a));
	hub_message_free(a);
}

/* ---- sinks ---- */

static void sink_upstream_in_any_case(void **state)
{
	struct route *r = must_parse("FROM /* INTO $UpStream");
	assert_int_equal(route_get_sink(r)->kind, SINK_UPSTREAM);
	route_free(r);
}

static void sink_brokered_endpoint_with_double_quotes(void **state)
{
	struct route *r =
	    must_parse("FROM /* INTO BrokeredEndpoint(\"/modules/filter/inputs/in1\")");
	const struct route_sink *s = route_get_sink(r);
	assert_int_equal(s->kind, SINK_MODULE_INPUT);
	assert_string_equal(s->module, "filter");
	assert_string_equal(s->input, "in1");
	route_free(r);
}

static void sink_brokered_endpoint_with_single_quotes_and_any_case(void **state)
{
	struct route *r =
	    must_parse("from /* into brokeredendpoint ( '/modules/filter/inputs/in1' )");
	assert_string_equal(route_get_sink(r)->module, "filter");
	assert_string_equal(route_get_sink(r)->input, "in1");
	route_free(r);
}

static void sink_brokered_endpoint_slashes_at_the_ends_are_optional(void **state)
{
	struct route *r = must_parse("FROM /* INTO BrokeredEndpoint(\"modules/m/inputs/i/\")");
	assert_string_equal(route_get_sink(r)->module, "m");
	assert_string_equal(route_get_sink(r)->input, "i");
	route_free(r);
}

static void sink_brokered_endpoint_takes_its_second_and_fourth_parts(void **state)
{
	/* edgeHub splits the trimmed address in four at '/' and does not look
	 * at the first and third part. */
	struct route *r = must_parse("FROM /* INTO BrokeredEndpoint(\"/modules/m/outputs/x\")");
	assert_string_equal(route_get_sink(r)->module, "m");
	assert_string_equal(route_get_sink(r)->input, "x");
	route_free(r);
	r = must_parse("FROM /* INTO BrokeredEndpoint(\" \t/a/m/b/i \")");
	assert_string_equal(route_get_sink(r)->module, "m");
	assert_string_equal(route_get_sink(r)->input, "i");
	route_free(r);
	const char *want = "position 31: expected an endpoint of the form "
			   "\"/modules/<module>/inputs/<input>\"";
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs\")"),
			    want);
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs/a/b\")"),
			    want);
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\" \")"), want);
}

static void sink_module_and_input_must_fit_a_topic(void **state)
{
	/* A bound of berth's (edgeHub accepts these and never delivers): the
	 * names become MQTT topic levels. */
	const char *want = "position 31: the module and input of an endpoint must be non-empty";
	assert_contains(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m#/inputs/a\")"),
			want);
	assert_contains(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs/a+\")"),
			want);
	assert_contains(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules//inputs/a\")"), want);
	assert_contains(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/a b/inputs/a\")"),
			want);
}

static void text_after_the_sink_is_not_read(void **state)
{
	/* edgeHub's grammar ends with the sink, without an end of input. */
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("FROM /* INTO $upstream WHERE false", m));
	assert_true(
	    route_text_matches("FROM /* INTO BrokeredEndpoint('/modules/m/inputs/i') ;'", m));
	hub_message_free(m);
}

static void sink_other_than_upstream_or_brokered_endpoint_is_refused(void **state)
{
	assert_contains(must_refuse("FROM /* INTO $downstream"),
			"position 14: unknown sink '$downstream'");
	assert_contains(must_refuse("FROM /* INTO Endpoint(\"/modules/m/inputs/i\")"),
			"position 14: unknown sink 'Endpoint'");
}

static void select_star_before_from_is_accepted(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("SELECT * FROM /messages/* WHERE true INTO $upstream", m));
	hub_message_free(m);
}

/* ---- keywords and tokens ---- */

static void keyword_select_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("select * FROM /* INTO $upstream", m));
	assert_true(route_text_matches("SeLeCt * FROM /* INTO $upstream", m));
	hub_message_free(m);
}

static void keyword_from_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("from /* INTO $upstream", m));
	assert_true(route_text_matches("fROM /* INTO $upstream", m));
	hub_message_free(m);
}

static void keyword_where_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("FROM /messages where true INTO $upstream", m));
	assert_false(route_text_matches("FROM /messages wHeRe false INTO $upstream", m));
	hub_message_free(m);
}

static void keyword_into_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches("FROM /* into $upstream", m));
	assert_true(route_text_matches("FROM /* InTo $upstream", m));
	hub_message_free(m);
}

static void keyword_and_ignores_case(void **state)
{
	/* The route edgeHub routes and berth once refused. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "a", "x");
	msg_add_prop(m, "b", "y");
	assert_true(
	    route_text_matches("FROM /messages WHERE a = 'x' and b = 'y' INTO $upstream", m));
	assert_true(
	    route_text_matches("FROM /messages WHERE a = 'x' AnD b = 'y' INTO $upstream", m));
	assert_false(
	    route_text_matches("FROM /messages WHERE a = 'x' and b = 'z' INTO $upstream", m));
	hub_message_free(m);
}

static void keyword_or_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("false or true", m, T);
	assert_eval("false Or false", m, F);
	hub_message_free(m);
}

static void keyword_not_ignores_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("not false", m, T);
	assert_eval("nOT true", m, F);
	hub_message_free(m);
}

static void keywords_are_names_when_longer_text_follows(void **state)
{
	/* Longest match: "andy" and "notes" are names, "select*from" one name. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "andy", "1");
	msg_add_prop(m, "notes", "2");
	assert_eval("andy = '1' AND notes = '2'", m, T);
	assert_contains(must_refuse("select*from /* INTO $upstream"),
			"position 1: expected FROM, found 'select*from'");
	hub_message_free(m);
}

static void blanks_and_comments_between_tokens_are_ignored(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(route_text_matches(
	    "\tFROM\n/messages\r\nWHERE /* a comment */ true\n\nINTO   $upstream ", m));
	assert_true(route_text_matches("FROM/messages WHERE/**/true INTO $upstream", m));
	hub_message_free(m);
}

static void only_four_characters_are_blanks(void **state)
{
	/* Blank, tab, CR and LF separate tokens; a form feed is part of a name. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "a\f", "x");
	assert_eval("a\f= 'x'", m, T);
	hub_message_free(m);
}

static void a_source_ending_in_star_opens_a_comment_that_a_later_one_closes(void **state)
{
	/* As in edgeHub, "/" "*" at the end of the source opens a comment that
	 * the star-slash after "note" closes: the WHERE clause is part of it, and
	 * the source is /messages/modules/a. */
	struct hub_message *m = msg_from("a", "o"), *b = msg_from("b", "o");
	msg_add_prop(m, "x", "1");
	assert_true(route_text_matches(
	    "FROM /messages/modules/a/* WHERE x = '2' /* note */ INTO $upstream", m));
	assert_false(route_text_matches(
	    "FROM /messages/modules/a/* WHERE x = '2' /* note */ INTO $upstream", b));
	/* Without a later comment it is a star. */
	assert_false(
	    route_text_matches("FROM /messages/modules/a/* WHERE x = '2' INTO $upstream", m));
	hub_message_free(m);
	hub_message_free(b);
}

static void literal_true_is_lowercase_only(void **state)
{
	/* As in edgeHub, TRUE is an application property, not the literal. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "TRUE", "yes");
	assert_eval("TRUE = 'yes'", m, T);
	assert_eval("true", m, T);
	hub_message_free(m);
}

static void literal_false_is_lowercase_only(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "False", "no");
	assert_eval("False = 'no'", m, T);
	assert_eval("false", m, F);
	hub_message_free(m);
}

static void literal_null_is_lowercase_only(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("is_defined(NULL)", m, F); /* a property nobody set */
	assert_eval("is_null(null)", m, T);
	hub_message_free(m);
}

static void literal_undefined_is_lowercase_only(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "Undefined", "u");
	assert_eval("Undefined = 'u'", m, T);
	assert_eval("is_defined(undefined)", m, F);
	hub_message_free(m);
}

static void string_token_in_either_quote(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("'it\"s' = \"it\\\"s\"", m, T);
	assert_eval("\"it's\" = 'it\\'s'", m, T);
	assert_eval("'a\nb' = \"a\nb\"", m, T); /* a raw line break is a character */
	hub_message_free(m);
}

static void string_token_escapes(void **state)
{
	/* \" \' \\ and \uXXXX (lowercase u, four hex digits); nothing else. */
	assert_contains(cond_refused("'a\\nb' = 'a'"),
			"position 17: invalid escape sequence in string");
	assert_contains(cond_refused("'\\U0041' = 'A'"),
			"position 16: invalid escape sequence in string");
	assert_contains(cond_refused("'\\u004' = 'A'"),
			"position 16: invalid escape sequence in string");
	assert_contains(cond_refused("'abc"), "position 15: unterminated string");
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("'\\u0041\\u00e9\\\\\\'' = 'A\xc3\xa9\\\\\\''", m, T);
	hub_message_free(m);
}

static void integer_token(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("0042 = 42", m, T);
	assert_eval("-0 = 0", m, T);
	assert_eval("99999999999999999999 = 1e20", m, T);
	hub_message_free(m);
}

static void hex_token(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("0x1F = 31 AND 0X1f = 31", m, T);
	/* "0x1G" is a name, no hex number; so is "-0x1". */
	msg_add_prop(m, "0x1G", "n");
	assert_eval("0x1G = 'n'", m, T);
	assert_eval("is_defined(-0x1)", m, F);
	hub_message_free(m);
}

static void real_token(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("1.25 = 5 / 4 AND .5 = 0.5 AND 5e-1 = 0.5 AND -2E2 = -200", m, T);
	/* "5." is a name: a real needs digits after the point. */
	msg_add_prop(m, "5.", "five");
	assert_eval("5. = 'five'", m, T);
	hub_message_free(m);
}

static void operator_tokens_need_no_blanks_around_them(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "a", "x");
	assert_eval("a='x'", m, T);
	assert_eval("a<>'y'", m, T);
	assert_eval("(1)*(3)=3", m, T);
	/* "*3" would be a name: an operator character starts one. */
	assert_contains(cond_refused("(1)*3=3"), "expected INTO, found '*3'");
	assert_eval("1<2", m, T);
	assert_eval("2>=2", m, T);
	assert_eval("({$to}?"
		    "?'t')='t'",
		    m, T);
	hub_message_free(m);
}

static void name_characters_include_operator_characters(void **state)
{
	/* A name runs over every character but blanks and ()<>@,;:\"/[]?={}:
	 * "3*2", "a!" and even "'x'||'y'" are names (the longest token wins). */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "3*2", "six");
	msg_add_prop(m, "a!", "bang");
	assert_eval("3*2 = 'six'", m, T);
	assert_eval("a!= 'bang'", m, T);
	assert_eval("'x'||'y' = 'xy'", m, U);
	msg_add_prop(m, "'x'||'y'", "xy");
	assert_eval("'x'||'y' = 'xy'", m, T);
	hub_message_free(m);
}

static void a_bracketed_name_is_no_expression(void **state)
{
	/* "a[0]" is edgeHub's QUERY_PATH token, which no rule takes. */
	assert_contains(cond_refused("a[0] = 'x'"),
			"position 15: expected an expression, found 'a[0]'");
}

static void dollar_alone_is_a_name(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "$", "d");
	assert_eval("$ = 'd'", m, T);
	hub_message_free(m);
}

static void characters_no_token_takes_are_refused(void **state)
{
	assert_contains(cond_refused("a ; b"), "expected INTO, found ';'");
	assert_contains(cond_refused("@a = 'x'"), "position 15: expected an expression, found '@'");
	assert_contains(cond_refused("a : b"), "expected INTO, found ':'");
	assert_contains(cond_refused("a ? b"), "expected INTO, found '?'");
	assert_contains(cond_refused("\\a = 'x'"), "expected an expression, found '\\'");
}

static void property_names_may_contain_dashes_and_dots(void **state)
{
	/* Names are maximal runs of name characters: x-request-id is one name,
	 * not x minus request minus id. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "x-request-id", "42");
	msg_add_prop(m, "unit.name", "C");
	assert_eval("x-request-id = '42' AND unit.name = 'C'", m, T);
	hub_message_free(m);
}

static void minus_before_digits_is_part_of_the_number(void **state)
{
	/* edgeHub reads "-2" as one number token, so "3 -2" is two operands. */
	struct hub_message *m = msg_from(NULL, NULL);
	assert_eval("3 - 2 = 1", m, T);
	assert_eval("-2 = 0 - 2", m, T);
	assert_contains(cond_refused("3 -2 = 1"), "position 17: expected INTO, found '-2'");
	hub_message_free(m);
}

/* ---- errors ---- */

static void malformed_routes_report_position_and_expectation(void **state)
{
	static const struct {
		const char *route, *error;
	} cases[] = {
	    {"FORM /* INTO $upstream", "position 1: expected FROM, found 'FORM'"},
	    {"SELECT FROM /* INTO $upstream", "position 8: expected '*' after SELECT"},
	    {"FROM messages/* INTO $upstream",
	     "position 6: expected a source path starting with '/'"},
	    {"FROM / INTO $upstream", "position 8: expected a path segment or '*' after '/'"},
	    {"FROM /* $upstream", "position 9: expected WHERE or INTO"},
	    {"FROM /* WHERE INTO $upstream", "position 15: expected a condition after WHERE"},
	    {"FROM /messages/* WHERE a = 'x' b INTO $upstream",
	     "position 32: expected INTO, found 'b'"},
	    {"FROM /* WHERE (a = 'b' INTO $upstream", "position 24: expected ')', found 'INTO'"},
	    {"FROM /* WHERE a = 'b') INTO $upstream",
	     "position 22: expected INTO (unmatched ')'), found ')'"},
	    {"FROM /* WHERE a = INTO $upstream",
	     "position 19: expected an expression, found 'INTO'"},
	    {"FROM /* WHERE a == 'b' INTO $upstream",
	     "position 18: expected an expression, found '='"},
	    {"FROM /* WHERE a = 'b' && c = 'd' INTO $upstream",
	     "position 23: expected INTO, found '&&'"},
	    {"FROM /* INTO", "position 13: expected a sink"},
	    {"", "position 1: expected FROM, found the end of the route"},
	    {"FROM /* INTO BrokeredEndpoint \"/modules/m/inputs/i\"", "position 31: expected '('"},
	    {"FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs/i\"", "position 52: expected ')'"},
	    {"FROM /* WHERE foo(1) INTO $upstream", "position 15: unknown function 'foo'"},
	    {"FROM /* WHERE abs(1, 2) = 1 INTO $upstream",
	     "position 15: abs() takes 1 argument, not 2"},
	    {"FROM /* WHERE abs(1 INTO $upstream", "position 21: expected ',' or ')'"},
	    {"FROM /* WHERE {sys} = 'a' INTO $upstream",
	     "position 16: expected a $name inside '{ }'"},
	    {"FROM /* WHERE {$sys = 'a' INTO $upstream", "position 21: expected '}'"},
	    {"FROM /* WHERE a = 'abc INTO $upstream", "position 19: unterminated string"},
	    {"FROM /* WHERE a = 'a\\qb' INTO $upstream",
	     "position 21: invalid escape sequence in string"},
	    {"FROM /* WHERE a ; b INTO $upstream", "position 17: expected INTO, found ';'"},
	    {"FROM /* WHERE temperature > 50 INTO $upstream",
	     "position 27: invalid operands to '>': have string and number, expected string "
	     "and string (application and system properties are strings: use as_number())"},
	    {"FROM /* WHERE NOT 'a' INTO $upstream",
	     "position 15: invalid operand to 'NOT': have string, expected bool"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *got = must_refuse(cases[i].route);
		if (strncmp(got, cases[i].error, strlen(cases[i].error)) != 0)
			fail_msg("`%s`:\n got  \"%s\"\n want \"%s\"", cases[i].route, got,
				 cases[i].error);
	}
}

static void errors_show_control_characters_as_question_marks(void **state)
{
	assert_contains(must_refuse("FROM /* INTO $up\x01\x1b[2J"), "unknown sink '$up??[2J'");
}

static void error_positions_count_characters_not_bytes(void **state)
{
	/* ä is two bytes in UTF-8 but one character. */
	assert_string_equal(must_refuse("FROM /* WHERE \xc3\xa4 = 'x' y INTO $upstream"),
			    "position 23: expected INTO, found 'y'");
}

/* ---- limits ---- */

static char *repeat(const char *head, const char *unit, size_t n, const char *mid,
		    const char *unit2, size_t n2, const char *tail)
{
	size_t len =
	    strlen(head) + strlen(unit) * n + strlen(mid) + strlen(unit2) * n2 + strlen(tail) + 1;
	char *s = malloc(len), *o = s;
	o = stpcpy(o, head);
	for (size_t i = 0; i < n; i++)
		o = stpcpy(o, unit);
	o = stpcpy(o, mid);
	for (size_t i = 0; i < n2; i++)
		o = stpcpy(o, unit2);
	stpcpy(o, tail);
	return s;
}

static void deep_parentheses_are_refused_without_exhausting_the_stack(void **state)
{
	char *s = repeat("FROM /* WHERE ", "(", 2000, "true", ")", 2000, " INTO $upstream");
	assert_true(strlen(s) <= ROUTE_TEXT_MAX);
	assert_string_equal(must_refuse(s),
			    "position 143: condition nested deeper than 128 levels");
	free(s);
	s = repeat("FROM /* WHERE ", "(", 4000, "", "", 0, "");
	assert_contains(must_refuse(s), "condition nested deeper than 128 levels");
	free(s);
}

static void deep_unary_operators_are_refused(void **state)
{
	char *s = repeat("FROM /* WHERE ", "NOT ", 900, "true", "", 0, " INTO $upstream");
	assert_contains(must_refuse(s), "condition nested deeper than 128 levels");
	free(s);
	s = repeat("FROM /* WHERE ", "- ", 1500, "1 = 1", "", 0, " INTO $upstream");
	assert_contains(must_refuse(s), "condition nested deeper than 128 levels");
	free(s);
}

static void long_operator_chains_are_refused(void **state)
{
	char *s = repeat("FROM /* WHERE ", "1 = 1 OR ", 300, "true", "", 0, " INTO $upstream");
	assert_contains(must_refuse(s), "condition has more than 256 levels of operators");
	free(s);
	/* 100 alternatives are fine. */
	struct hub_message *m = msg_from(NULL, NULL);
	s = repeat("FROM /* WHERE ", "1 = 2 OR ", 100, "true", "", 0, " INTO $upstream");
	assert_true(route_text_matches(s, m));
	free(s);
	hub_message_free(m);
}

static void conditions_with_too_many_terms_are_refused(void **state)
{
	/* Wide rather than deep: seven calls of 255 arguments each. */
	char call[600] = "concat(a";
	for (int i = 1; i < 255; i++)
		strcat(call, ",a");
	strcat(call, ")");
	char *s = malloc(ROUTE_TEXT_MAX + 1);
	strcpy(s, "FROM /* WHERE ");
	for (int i = 0; i < 7; i++) {
		strcat(s, call);
		strcat(s, i < 6 ? " || " : " = 'x' INTO $upstream");
	}
	assert_true(strlen(s) <= ROUTE_TEXT_MAX);
	assert_contains(must_refuse(s), "condition has more than 1024 terms");
	free(s);
}

static void route_text_over_the_limit_is_refused(void **state)
{
	char *s = repeat("FROM /* WHERE ", "a = 'b' OR ", 500, "true", "", 0, " INTO $upstream");
	assert_true(strlen(s) > ROUTE_TEXT_MAX);
	assert_string_equal(must_refuse(s), "route is longer than 4096 bytes");
	free(s);
}

static void long_string_literals_are_refused(void **state)
{
	char *s = repeat("FROM /* WHERE a = '", "x", 1100, "'", "", 0, " INTO $upstream");
	assert_string_equal(must_refuse(s), "position 19: string literal longer than 1024 bytes");
	free(s);
	s = repeat("FROM /* WHERE a = '", "x", 1024, "'", "", 0, " INTO $upstream");
	struct route *r = must_parse(s);
	route_free(r);
	free(s);
}

static void bad_body_queries_are_refused(void **state)
{
	assert_contains(cond_refused("$body. = 1"), "position 15: empty $body query");
	assert_contains(cond_refused("$body.a..b = 1"),
			"position 23: expected a member name in the $body query");
	assert_contains(cond_refused("$body.a[x] = 1"),
			"position 22: expected [index] in the $body query");
	assert_contains(cond_refused("$body.0 = 1"),
			"position 21: expected a member name in the $body query");
	assert_contains(cond_refused("$body.a.[0] = 1"),
			"position 23: expected a member name in the $body query");
	assert_contains(cond_refused("$body.a[-1] = 1"),
			"position 22: expected [index] in the $body query");
	assert_contains(cond_refused("$body.a['b'] = 1"),
			"position 22: expected [index] in the $body query");
	assert_contains(cond_refused("$body.a[0 = 1"), "expected [index] in the $body query");
	/* A bound of berth's: 32 steps. */
	char q[200] = "FROM /* WHERE $body.a";
	for (int i = 0; i < 31; i++)
		strcat(q, "[0]");
	strcat(q, " = 1 INTO $upstream");
	route_free(must_parse(q));
	strcpy(strstr(q, " = 1"), "[0] = 1 INTO $upstream");
	assert_contains(must_refuse(q), "position 15: $body query has more than 32 steps");
}

static void a_route_may_repeat_a_body_query_but_not_use_too_many(void **state)
{
	char *s = malloc(ROUTE_TEXT_MAX + 1), *o = s;
	o = stpcpy(o, "FROM /* WHERE ");
	for (int i = 0; i < 200; i++)
		o = stpcpy(o, "$body.same = 1 OR ");
	stpcpy(o, "false INTO $upstream");
	struct route *r = must_parse(s);
	route_free(r);
	o = stpcpy(s, "FROM /* WHERE ");
	for (int i = 0; i < 129; i++)
		o += sprintf(o, "$body.k%d = 1 OR ", i);
	stpcpy(o, "false INTO $upstream");
	assert_contains(must_refuse(s), "more than 128 different $body queries");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(source_all_matches_every_message),
	    cmocka_unit_test(source_messages_matches_device_telemetry_and_module_outputs),
	    cmocka_unit_test(source_module_star_matches_every_output_of_that_module_only),
	    cmocka_unit_test(source_module_outputs_star_needs_an_output),
	    cmocka_unit_test(source_module_output_matches_that_output_only),
	    cmocka_unit_test(source_matching_ignores_case),
	    cmocka_unit_test(source_segments_may_be_separated_by_blanks),
	    cmocka_unit_test(source_star_inside_the_path_is_a_character),
	    cmocka_unit_test(source_trailing_stars_are_trimmed_even_inside_a_name),
	    cmocka_unit_test(source_items_are_names_or_stars_only),
	    cmocka_unit_test(source_matching_ignores_case_beyond_ascii),
	    cmocka_unit_test(sink_upstream_in_any_case),
	    cmocka_unit_test(sink_brokered_endpoint_with_double_quotes),
	    cmocka_unit_test(sink_brokered_endpoint_with_single_quotes_and_any_case),
	    cmocka_unit_test(sink_brokered_endpoint_slashes_at_the_ends_are_optional),
	    cmocka_unit_test(sink_brokered_endpoint_takes_its_second_and_fourth_parts),
	    cmocka_unit_test(sink_module_and_input_must_fit_a_topic),
	    cmocka_unit_test(text_after_the_sink_is_not_read),
	    cmocka_unit_test(sink_other_than_upstream_or_brokered_endpoint_is_refused),
	    cmocka_unit_test(select_star_before_from_is_accepted),
	    cmocka_unit_test(keyword_select_ignores_case),
	    cmocka_unit_test(keyword_from_ignores_case),
	    cmocka_unit_test(keyword_where_ignores_case),
	    cmocka_unit_test(keyword_into_ignores_case),
	    cmocka_unit_test(keyword_and_ignores_case),
	    cmocka_unit_test(keyword_or_ignores_case),
	    cmocka_unit_test(keyword_not_ignores_case),
	    cmocka_unit_test(keywords_are_names_when_longer_text_follows),
	    cmocka_unit_test(blanks_and_comments_between_tokens_are_ignored),
	    cmocka_unit_test(only_four_characters_are_blanks),
	    cmocka_unit_test(a_source_ending_in_star_opens_a_comment_that_a_later_one_closes),
	    cmocka_unit_test(literal_true_is_lowercase_only),
	    cmocka_unit_test(literal_false_is_lowercase_only),
	    cmocka_unit_test(literal_null_is_lowercase_only),
	    cmocka_unit_test(literal_undefined_is_lowercase_only),
	    cmocka_unit_test(string_token_in_either_quote),
	    cmocka_unit_test(string_token_escapes),
	    cmocka_unit_test(integer_token),
	    cmocka_unit_test(hex_token),
	    cmocka_unit_test(real_token),
	    cmocka_unit_test(operator_tokens_need_no_blanks_around_them),
	    cmocka_unit_test(name_characters_include_operator_characters),
	    cmocka_unit_test(a_bracketed_name_is_no_expression),
	    cmocka_unit_test(dollar_alone_is_a_name),
	    cmocka_unit_test(characters_no_token_takes_are_refused),
	    cmocka_unit_test(property_names_may_contain_dashes_and_dots),
	    cmocka_unit_test(minus_before_digits_is_part_of_the_number),
	    cmocka_unit_test(malformed_routes_report_position_and_expectation),
	    cmocka_unit_test(errors_show_control_characters_as_question_marks),
	    cmocka_unit_test(error_positions_count_characters_not_bytes),
	    cmocka_unit_test(deep_parentheses_are_refused_without_exhausting_the_stack),
	    cmocka_unit_test(deep_unary_operators_are_refused),
	    cmocka_unit_test(long_operator_chains_are_refused),
	    cmocka_unit_test(conditions_with_too_many_terms_are_refused),
	    cmocka_unit_test(route_text_over_the_limit_is_refused),
	    cmocka_unit_test(long_string_literals_are_refused),
	    cmocka_unit_test(bad_body_queries_are_refused),
	    cmocka_unit_test(a_route_may_repeat_a_body_query_but_not_use_too_many),
	};
	return cmocka_run_group_tests_name("route syntax", tests, NULL, NULL);
}
