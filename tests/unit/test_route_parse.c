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

static void source_star_inside_the_path_is_refused(void **state)
{
	assert_string_equal(must_refuse("FROM /messages/modules/*/outputs/x INTO $upstream"),
			    "position 25: '*' can only end the source path");
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

static void sink_brokered_endpoint_must_name_a_module_input(void **state)
{
	const char *want = "position 31: expected an endpoint of the form "
			   "\"/modules/<module>/inputs/<input>\"";
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/outputs/x\")"),
			    want);
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs\")"),
			    want);
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m/inputs/a/b\")"),
			    want);
	assert_string_equal(must_refuse("FROM /* INTO BrokeredEndpoint(\"/modules/m#/inputs/a\")"),
			    want);
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

static void keywords_ignore_case(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(
	    route_text_matches("from /* wHeRe true AnD NOT false oR false into $upstream", m));
	hub_message_free(m);
}

static void blanks_and_comments_between_tokens_are_ignored(void **state)
{
	struct hub_message *m = msg_from(NULL, NULL);
	assert_true(
	    route_text_matches("\tFROM\n/*\r\nWHERE /* a comment */ true\n\nINTO   $upstream ", m));
	hub_message_free(m);
}

static void a_source_ending_in_star_does_not_open_a_comment(void **state)
{
	/* Read as a comment, the source's star would swallow the condition. */
	struct hub_message *m = msg_from("a", "o");
	msg_add_prop(m, "x", "1");
	assert_false(route_text_matches(
	    "FROM /messages/modules/a/* WHERE x = '2' /* note */ INTO $upstream", m));
	assert_true(route_text_matches(
	    "FROM /messages/modules/a/* WHERE x = '1' /* note */ INTO $upstream", m));
	hub_message_free(m);
}

static void literal_keywords_are_lowercase_only(void **state)
{
	/* As in edgeHub, TRUE is an application property, not the literal. */
	struct hub_message *m = msg_from(NULL, NULL);
	msg_add_prop(m, "TRUE", "yes");
	assert_eval("TRUE = 'yes'", m, T);
	assert_eval("true", m, T);
	hub_message_free(m);
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
	    {"FROM /* INTO $upstream extra",
	     "position 24: expected the end of the route after the sink, found 'extra'"},
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
	assert_contains(cond_refused("$body.a[99999999999] = 1"),
			"array index too large in the $body query");
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
	    cmocka_unit_test(source_star_inside_the_path_is_refused),
	    cmocka_unit_test(sink_upstream_in_any_case),
	    cmocka_unit_test(sink_brokered_endpoint_with_double_quotes),
	    cmocka_unit_test(sink_brokered_endpoint_with_single_quotes_and_any_case),
	    cmocka_unit_test(sink_brokered_endpoint_slashes_at_the_ends_are_optional),
	    cmocka_unit_test(sink_brokered_endpoint_must_name_a_module_input),
	    cmocka_unit_test(sink_other_than_upstream_or_brokered_endpoint_is_refused),
	    cmocka_unit_test(select_star_before_from_is_accepted),
	    cmocka_unit_test(keywords_ignore_case),
	    cmocka_unit_test(blanks_and_comments_between_tokens_are_ignored),
	    cmocka_unit_test(a_source_ending_in_star_does_not_open_a_comment),
	    cmocka_unit_test(literal_keywords_are_lowercase_only),
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
