/* The Prometheus text the daemon and the hub write, and the hub's table of
 * counter series: label values escaped, the table bounded whatever modules
 * name their outputs. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "common/prom.h"
#include "hub/metrics.h"

static void label_values_are_escaped_as_the_format_requires(void **state)
{
	struct strbuf out = STRBUF_INIT;
	struct prom_label l[] = {
	    {"id", "a\"b\\c\nd", NULL}, {"to", "m", "dev/"}, {"e", "", "dev/"}};
	assert_int_equal(prom_series(&out, "x_total", l, 3, 5), 0);
	assert_string_equal(out.buf, "x_total{id=\"a\\\"b\\\\c\\nd\",to=\"dev/m\",e=\"\"} 5\n");
	strbuf_release(&out);
}

static void a_series_without_labels_has_no_braces(void **state)
{
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(prom_head(&out, "up", "gauge", "Whether it is up"), 0);
	assert_int_equal(prom_series(&out, "up", NULL, 0, 0.25), 0);
	assert_string_equal(out.buf, "# HELP up Whether it is up\n# TYPE up gauge\nup 0.25\n");
	strbuf_release(&out);
}

static void increments_of_one_label_set_land_in_one_series(void **state)
{
	struct hub_metrics m;
	assert_int_equal(hub_metrics_init(&m), 0);
	for (int i = 0; i < 10; i++)
		HUB_METRICS_ADD(&m, RECEIVED, "out1", "sender");
	HUB_METRICS_ADD(&m, RECEIVED, "out2", "sender");
	HUB_METRICS_ADD(&m, CONNECT_SUCCESS, "sender");
	assert_int_equal(m.n, 3);
	assert_int_equal(m.overflow, 0);
	hub_metrics_fini(&m);
}

static void the_table_stops_growing_at_its_bound(void **state)
{
	struct hub_metrics m;
	assert_int_equal(hub_metrics_init(&m), 0);
	char output[32];
	for (int i = 0; i < HUB_SERIES_MAX + 100; i++) {
		snprintf(output, sizeof(output), "out%d", i);
		HUB_METRICS_ADD(&m, RECEIVED, output, "flooder");
	}
	assert_int_equal(m.n, HUB_SERIES_MAX);
	assert_int_equal(m.overflow, 100);
	/* A label set already there still counts (the positive control). */
	HUB_METRICS_ADD(&m, RECEIVED, "out0", "flooder");
	assert_int_equal(m.overflow, 100);
	hub_metrics_fini(&m);
}

static void long_label_values_are_cut(void **state)
{
	struct hub_metrics m;
	assert_int_equal(hub_metrics_init(&m), 0);
	char a[HUB_LABEL_VALUE_MAX + 50], b[HUB_LABEL_VALUE_MAX + 50];
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 2] = 'y'; /* differs only past the cut: the same series */
	HUB_METRICS_ADD(&m, RECEIVED, a, "m");
	HUB_METRICS_ADD(&m, RECEIVED, b, "m");
	assert_int_equal(m.n, 1);
	hub_metrics_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(label_values_are_escaped_as_the_format_requires),
	    cmocka_unit_test(a_series_without_labels_has_no_braces),
	    cmocka_unit_test(increments_of_one_label_set_land_in_one_series),
	    cmocka_unit_test(the_table_stops_growing_at_its_bound),
	    cmocka_unit_test(long_label_values_are_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
