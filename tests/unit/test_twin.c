/* Module twins: JSON merge patches, versions, metadata and bounds, and the
 * saved form. Times are fixed so metadata can be checked exactly. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "hub/twin.h"

#define T0 1764000000000LL /* 2025-11-24T16:00:00.000Z */
#define T1 (T0 + 1500)

static yajl_val parse(const char *json)
{
	yajl_val v;
	struct berr err;
	if (json_parse(json, strlen(json), 1 << 20, "test", &v, &err) < 0)
		fail_msg("%s", err.msg);
	return v;
}

/* The twin as GET returns it, parsed. */
static yajl_val get(const struct twin *t)
{
	char *json = twin_get_json(t, NULL);
	assert_non_null(json);
	yajl_val v = parse(json);
	free(json);
	return v;
}

static yajl_val at(yajl_val v, const char *a, const char *b, const char *c)
{
	v = json_get(v, a);
	if (b)
		v = json_get(v, b);
	if (c)
		v = json_get(v, c);
	return v;
}

static struct twin *new_twin(const char *desired)
{
	yajl_val d = desired ? parse(desired) : NULL;
	struct twin *t;
	struct berr err;
	assert_int_equal(twin_new("gen1", d, T0, &t, &err), 0);
	yajl_tree_free(d);
	return t;
}

static int patch(struct twin *t, const char *json, int64_t now, int64_t *version)
{
	struct berr err;
	return twin_patch_reported(t, json, strlen(json), now, version, &err);
}

static void new_twin_starts_at_version_1_with_the_deployment_desired(void **state)
{
	struct twin *t = new_twin("{\"interval\":5,\"site\":{\"name\":\"n\"}}");
	assert_int_equal(twin_desired_version(t), 1);
	assert_int_equal(twin_reported_version(t), 1);
	yajl_val v = get(t);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "interval", NULL)), 5);
	assert_string_equal(json_str(at(v, "desired", "site", "name")), "n");
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "$version", NULL)), 1);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "reported", "$version", NULL)), 1);
	assert_string_equal(json_str(at(v, "desired", "$metadata", "$lastUpdated")),
			    "2025-11-24T16:00:00.000Z");
	assert_int_equal(YAJL_GET_INTEGER(at(at(v, "desired", "$metadata", "site"), "name",
					     "$lastUpdatedVersion", NULL)),
			 1);
	yajl_tree_free(v);
	twin_free(t);
}

static void reported_patch_adds_and_versions_go_up_by_one(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t v1, v2;
	assert_int_equal(patch(t, "{\"fw\":\"1.0\",\"temp\":{\"max\":30}}", T1, &v1), 0);
	assert_int_equal(v1, 2);
	assert_int_equal(patch(t, "{\"temp\":{\"min\":-5}}", T1 + 1000, &v2), 0);
	assert_int_equal(v2, 3);
	yajl_val v = get(t);
	assert_string_equal(json_str(at(v, "reported", "fw", NULL)), "1.0");
	assert_int_equal(YAJL_GET_INTEGER(at(v, "reported", "temp", "max")), 30);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "reported", "temp", "min")), -5);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "reported", "$version", NULL)), 3);
	/* Desired is untouched. */
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "$version", NULL)), 1);
	yajl_tree_free(v);
	twin_free(t);
}

static void reported_patch_null_deletes(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t ver;
	assert_int_equal(patch(t, "{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", T1, &ver), 0);
	assert_int_equal(patch(t, "{\"a\":null,\"b\":{\"c\":null},\"gone\":null}", T1, &ver), 0);
	yajl_val v = get(t);
	assert_null(at(v, "reported", "a", NULL));
	assert_null(at(v, "reported", "b", "c"));
	assert_int_equal(YAJL_GET_INTEGER(at(v, "reported", "b", "d")), 3);
	assert_null(at(v, "reported", "$metadata", "a"));
	yajl_tree_free(v);
	twin_free(t);
}

static void reported_patch_replaces_a_value_by_an_object_and_back(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t ver;
	assert_int_equal(patch(t, "{\"x\":1}", T1, &ver), 0);
	assert_int_equal(patch(t, "{\"x\":{\"y\":[1,2,{\"z\":null}]}}", T1, &ver), 0);
	yajl_val v = get(t);
	yajl_val arr = at(v, "reported", "x", "y");
	assert_true(YAJL_IS_ARRAY(arr));
	assert_int_equal(arr->u.array.len, 3);
	/* Inside arrays null is a value, not a deletion. */
	assert_true(YAJL_IS_NULL(json_get(arr->u.array.values[2], "z")));
	yajl_tree_free(v);
	assert_int_equal(patch(t, "{\"x\":\"s\"}", T1, &ver), 0);
	v = get(t);
	assert_string_equal(json_str(at(v, "reported", "x", NULL)), "s");
	yajl_tree_free(v);
	twin_free(t);
}

static void metadata_marks_only_the_nodes_a_patch_reached(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t ver;
	assert_int_equal(patch(t, "{\"a\":1,\"b\":{\"c\":2}}", T0, &ver), 0);
	assert_int_equal(patch(t, "{\"b\":{\"d\":3}}", T1, &ver), 0);
	yajl_val v = get(t);
	yajl_val meta = at(v, "reported", "$metadata", NULL);
	assert_string_equal(json_str(at(meta, "a", "$lastUpdated", NULL)),
			    "2025-11-24T16:00:00.000Z");
	assert_string_equal(json_str(at(meta, "b", "c", "$lastUpdated")),
			    "2025-11-24T16:00:00.000Z");
	assert_string_equal(json_str(at(meta, "b", "d", "$lastUpdated")),
			    "2025-11-24T16:00:01.500Z");
	assert_string_equal(json_str(at(meta, "b", "$lastUpdated", NULL)),
			    "2025-11-24T16:00:01.500Z");
	assert_string_equal(json_str(at(meta, "$lastUpdated", NULL, NULL)),
			    "2025-11-24T16:00:01.500Z");
	/* Reported metadata has no $lastUpdatedVersion. */
	assert_null(at(meta, "a", "$lastUpdatedVersion", NULL));
	yajl_tree_free(v);
	twin_free(t);
}

static void refused_patches_leave_the_twin_as_it_was(void **state)
{
	static const char *bad[] = {
	    "not json",
	    "[1,2]",
	    "\"s\"",
	    "{\"$version\":7}",
	    "{\"a.b\":1}",
	    "{\"a b\":1}",
	    "{\"\":1}",
	    "{\"ok\":{\"$meta\":1}}",
	    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{\"k\":1}}}}}}}}"
	    "}}}",
	};
	struct twin *t = new_twin(NULL);
	int64_t ver;
	assert_int_equal(patch(t, "{\"keep\":1}", T0, &ver), 0);
	char *before = twin_get_json(t, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (patch(t, bad[i], T1, &ver) != -1)
			fail_msg("patch %s was accepted", bad[i]);
		char *after = twin_get_json(t, NULL);
		assert_string_equal(before, after);
		free(after);
	}
	assert_int_equal(twin_reported_version(t), 2);
	free(before);
	twin_free(t);
}

static void nesting_up_to_the_limit_is_accepted(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t ver;
	/* Ten levels of objects below the section. */
	static const char ten[] =
	    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":1}}}}}}}}}}";
	assert_int_equal(patch(t, ten, T0, &ver), 0);
	twin_free(t);
}

static void a_section_over_32_kib_is_refused(void **state)
{
	struct twin *t = new_twin(NULL);
	static char json[TWIN_SECTION_MAX + 64];
	int n = snprintf(json, sizeof(json), "{\"big\":\"");
	memset(json + n, 'x', TWIN_SECTION_MAX - 20);
	strcpy(json + n + TWIN_SECTION_MAX - 20, "\"}");
	int64_t ver;
	assert_int_equal(patch(t, json, T0, &ver), 0);
	struct berr err;
	const char *more = "{\"more\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}";
	assert_int_equal(twin_patch_reported(t, more, strlen(more), T1, &ver, &err), -1);
	assert_non_null(strstr(err.msg, "over the limit"));
	assert_int_equal(twin_reported_version(t), 2);
	twin_free(t);
}

static void unchanged_desired_gives_no_patch(void **state)
{
	struct twin *t = new_twin("{\"a\":1,\"o\":{\"p\":[1,2]}}");
	yajl_val same = parse("{\"o\":{\"p\":[1,2]},\"a\":1}");
	char *p = NULL;
	struct berr err;
	assert_int_equal(twin_set_desired(t, same, T1, &p, &err), 0);
	assert_null(p);
	assert_int_equal(twin_desired_version(t), 1);
	yajl_tree_free(same);
	twin_free(t);
}

static void changed_desired_gives_the_difference_as_a_merge_patch(void **state)
{
	struct twin *t = new_twin("{\"a\":1,\"b\":2,\"o\":{\"p\":1,\"q\":2},\"s\":\"x\"}");
	yajl_val next =
	    parse("{\"a\":1,\"o\":{\"p\":1,\"q\":3,\"r\":4},\"s\":{\"now\":\"obj\"},\"n\":true}");
	char *p = NULL;
	struct berr err;
	assert_int_equal(twin_set_desired(t, next, T1, &p, &err), 0);
	assert_non_null(p);
	yajl_val pv = parse(p);
	assert_true(YAJL_IS_NULL(json_get(pv, "b")));
	assert_null(json_get(pv, "a"));
	assert_null(at(pv, "o", "p", NULL));
	assert_int_equal(YAJL_GET_INTEGER(at(pv, "o", "q", NULL)), 3);
	assert_int_equal(YAJL_GET_INTEGER(at(pv, "o", "r", NULL)), 4);
	assert_string_equal(json_str(at(pv, "s", "now", NULL)), "obj");
	assert_true(YAJL_IS_TRUE(json_get(pv, "n")));
	assert_int_equal(YAJL_GET_INTEGER(json_get(pv, "$version")), 2);
	yajl_tree_free(pv);
	free(p);
	/* The twin now holds exactly the new desired properties. */
	yajl_val v = get(t);
	assert_null(at(v, "desired", "b", NULL));
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "o", "q")), 3);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "$version", NULL)), 2);
	yajl_val meta = at(v, "desired", "$metadata", NULL);
	assert_int_equal(YAJL_GET_INTEGER(at(meta, "o", "q", "$lastUpdatedVersion")), 2);
	assert_int_equal(YAJL_GET_INTEGER(at(meta, "o", "p", "$lastUpdatedVersion")), 1);
	assert_int_equal(YAJL_GET_INTEGER(at(meta, "a", "$lastUpdatedVersion", NULL)), 1);
	yajl_tree_free(v);
	yajl_tree_free(next);
	twin_free(t);
}

static void saved_twin_loads_back_the_same(void **state)
{
	struct twin *t = new_twin("{\"a\":1.50,\"o\":{\"p\":\"q\"}}");
	int64_t ver;
	assert_int_equal(patch(t, "{\"r\":[true,false,null],\"s\":{\"t\":1e3}}", T1, &ver), 0);
	size_t len;
	char *saved = twin_save(t, &len);
	assert_non_null(saved);
	struct twin *back;
	struct berr err;
	assert_int_equal(twin_load(saved, len, "saved", &back, &err), 0);
	assert_string_equal(twin_generation_id(back), "gen1");
	assert_int_equal(twin_reported_version(back), 2);
	char *a = twin_get_json(t, NULL), *b = twin_get_json(back, NULL);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(saved);
	twin_free(back);
	twin_free(t);
}

/* A JSON object of at most `size` bytes made of the smallest members there
 * are ("k":0), nested three deep so that one-character names suffice: the
 * most $metadata a section of that size can carry. */
static char *small_members(size_t size)
{
	static const char names[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const size_t n = sizeof(names) - 1;
	char *out = malloc(size + 1);
	assert_non_null(out);
	size_t len = 0;
	out[len++] = '{';
	/* Each step leaves room for the member it adds and the braces that
	 * close the levels open after it. */
	for (size_t i = 0; i < n && len + 6 + 6 + 6 + 3 <= size; i++) {
		len += (size_t)sprintf(out + len, "%s\"%c\":{", i ? "," : "", names[i]);
		for (size_t j = 0; j < n && len + 6 + 6 + 3 <= size; j++) {
			len += (size_t)sprintf(out + len, "%s\"%c\":{", j ? "," : "", names[j]);
			for (size_t k = 0; k < n && len + 6 + 3 <= size; k++)
				len += (size_t)sprintf(out + len, "%s\"%c\":0", k ? "," : "",
						       names[k]);
			out[len++] = '}';
		}
		out[len++] = '}';
	}
	out[len++] = '}';
	out[len] = '\0';
	assert_true(len <= size);
	return out;
}

static void a_twin_full_of_small_properties_saves_and_loads_back(void **state)
{
	char *full = small_members(TWIN_SECTION_MAX);
	struct twin *t = new_twin(full);
	int64_t ver;
	assert_int_equal(patch(t, full, T1, &ver), 0);
	size_t len;
	char *saved = twin_save(t, &len);
	assert_non_null(saved);
	if (len > TWIN_FILE_MAX)
		fail_msg("saved twin of %zu bytes is over TWIN_FILE_MAX (%d)", len, TWIN_FILE_MAX);
	struct twin *back;
	struct berr err;
	if (twin_load(saved, len, "saved", &back, &err) < 0)
		fail_msg("%s", err.msg);
	char *a = twin_get_json(t, NULL), *b = twin_get_json(back, NULL);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(saved);
	free(full);
	twin_free(back);
	twin_free(t);
}

static void desired_properties_over_32_kib_are_refused(void **state)
{
	static char big[TWIN_SECTION_MAX + 64];
	int n = sprintf(big, "{\"big\":\"");
	memset(big + n, 'x', TWIN_SECTION_MAX);
	strcpy(big + n + TWIN_SECTION_MAX, "\"}");
	yajl_val d = parse(big);
	struct twin *t = NULL;
	struct berr err;
	assert_int_equal(twin_new("gen1", d, T0, &t, &err), -1);
	assert_non_null(strstr(err.msg, "desired properties of"));
	assert_non_null(strstr(err.msg, "over the limit of 32768"));
	/* And a deployment that grows them past the limit changes nothing. */
	t = new_twin("{\"a\":1}");
	char *p = NULL;
	assert_int_equal(twin_set_desired(t, d, T1, &p, &err), -1);
	assert_null(p);
	assert_int_equal(twin_desired_version(t), 1);
	twin_free(t);
	yajl_tree_free(d);
}

static void malformed_saved_twins_are_refused(void **state)
{
	static const char *bad[] = {
	    "{}",
	    "{\"generation_id\":\"g\"}",
	    "{\"generation_id\":\"g\",\"desired\":{},\"reported\":{\"$version\":1}}",
	    "{\"generation_id\":1,\"desired\":{\"$version\":1},\"reported\":{\"$version\":1}}",
	    "[",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct twin *t;
		struct berr err;
		if (twin_load(bad[i], strlen(bad[i]), "saved", &t, &err) != -1)
			fail_msg("saved twin %s was accepted", bad[i]);
	}
}

static void times_are_iso_8601_utc_with_milliseconds(void **state)
{
	char s[32];
	twin_format_time(T0 + 7, s);
	assert_string_equal(s, "2025-11-24T16:00:00.007Z");
	twin_format_time(0, s);
	assert_string_equal(s, "1970-01-01T00:00:00.000Z");
}

/* The twin cache (hub/upstream_twin.c). */
static void the_clouds_desired_section_is_taken_at_its_version(void **state)
{
	struct twin *t = new_twin("{\"a\":1,\"b\":2}");
	yajl_val cloud = parse("{\"a\":1,\"c\":{\"d\":3},\"$metadata\":{},\"$version\":9}");
	char *p = NULL;
	struct berr err;
	assert_int_equal(twin_sync_desired(t, cloud, 9, T1, &p, &err), 0);
	assert_int_equal(twin_desired_version(t), 9);
	assert_string_equal(p, "{\"c\":{\"d\":3},\"b\":null,\"$version\":9}");
	free(p);
	/* The same values at a new version: the version moves, no patch. */
	assert_int_equal(twin_sync_desired(t, cloud, 10, T1, &p, &err), 0);
	assert_null(p);
	assert_int_equal(twin_desired_version(t), 10);
	assert_int_equal(twin_sync_desired(t, cloud, 0, T1, &p, &err), -1);
	yajl_tree_free(cloud);
	twin_free(t);
}

static void the_clouds_desired_patch_applies_at_its_version(void **state)
{
	struct twin *t = new_twin("{\"a\":1}");
	struct berr err;
	const char *p = "{\"a\":null,\"b\":{\"c\":1},\"$version\":2}";
	assert_int_equal(twin_patch_desired(t, p, strlen(p), 2, T1, &err), 0);
	yajl_val v = get(t);
	assert_null(at(v, "desired", "a", NULL));
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "b", "c")), 1);
	assert_int_equal(YAJL_GET_INTEGER(at(v, "desired", "$version", NULL)), 2);
	yajl_tree_free(v);
	assert_int_equal(twin_patch_desired(t, "[1]", 3, 3, T1, &err), -1);
	assert_int_equal(twin_desired_version(t), 2);
	twin_free(t);
}

static void reported_changes_the_cloud_lacks_are_one_merge_patch(void **state)
{
	struct twin *t = new_twin(NULL);
	int64_t v;
	struct berr err;
	assert_int_equal(patch(t, "{\"n\":1,\"gone\":true,\"o\":{\"x\":1}}", T0, &v), 0);
	char *base = twin_reported_values(t);
	assert_string_equal(base, "{\"n\":1,\"gone\":true,\"o\":{\"x\":1}}");
	assert_int_equal(patch(t, "{\"n\":2}", T1, &v), 0);
	assert_int_equal(patch(t, "{\"n\":3,\"gone\":null,\"o\":{\"y\":2}}", T1, &v), 0);
	yajl_val b = parse(base);
	char *p = NULL;
	assert_int_equal(twin_reported_diff(t, b, &p, &err), 0);
	assert_string_equal(p, "{\"n\":3,\"o\":{\"y\":2},\"gone\":null}");
	free(p);
	yajl_tree_free(b);
	/* Against what the twin holds: nothing. */
	char *now = twin_reported_values(t);
	b = parse(now);
	assert_int_equal(twin_reported_diff(t, b, &p, &err), 0);
	assert_null(p);
	/* Set whole (the daemon's report): version + 1 only when it changes. */
	int64_t before = twin_reported_version(t);
	assert_int_equal(twin_set_reported(t, b, 0, T1, &err), 0);
	assert_int_equal(twin_reported_version(t), before);
	yajl_tree_free(b);
	b = parse("{\"only\":1}");
	assert_int_equal(twin_set_reported(t, b, 0, T1, &err), 0);
	assert_int_equal(twin_reported_version(t), before + 1);
	free(p);
	p = twin_reported_values(t);
	assert_string_equal(p, "{\"only\":1}");
	free(p);
	yajl_tree_free(b);
	free(now);
	free(base);
	twin_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(new_twin_starts_at_version_1_with_the_deployment_desired),
	    cmocka_unit_test(reported_patch_adds_and_versions_go_up_by_one),
	    cmocka_unit_test(reported_patch_null_deletes),
	    cmocka_unit_test(reported_patch_replaces_a_value_by_an_object_and_back),
	    cmocka_unit_test(metadata_marks_only_the_nodes_a_patch_reached),
	    cmocka_unit_test(refused_patches_leave_the_twin_as_it_was),
	    cmocka_unit_test(nesting_up_to_the_limit_is_accepted),
	    cmocka_unit_test(a_section_over_32_kib_is_refused),
	    cmocka_unit_test(unchanged_desired_gives_no_patch),
	    cmocka_unit_test(changed_desired_gives_the_difference_as_a_merge_patch),
	    cmocka_unit_test(saved_twin_loads_back_the_same),
	    cmocka_unit_test(a_twin_full_of_small_properties_saves_and_loads_back),
	    cmocka_unit_test(desired_properties_over_32_kib_are_refused),
	    cmocka_unit_test(malformed_saved_twins_are_refused),
	    cmocka_unit_test(times_are_iso_8601_utc_with_milliseconds),
	    cmocka_unit_test(the_clouds_desired_section_is_taken_at_its_version),
	    cmocka_unit_test(the_clouds_desired_patch_applies_at_its_version),
	    cmocka_unit_test(reported_changes_the_cloud_lacks_are_one_merge_patch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
