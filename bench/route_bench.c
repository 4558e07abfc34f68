/* Route compilation and matching: time per message, allocations per
 * message, and the memory a compiled deployment holds. Built and run by
 * bench/route.sh against build/libberth.a; the allocator is wrapped to count
 * calls and live bytes. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hub/message.h"
#include "hub/route.h"

/* Calls to the allocator, and bytes live on the heap. */
static size_t n_allocs, n_bytes;
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n)
{
	void *p = __real_malloc(n);
	n_allocs++;
	n_bytes += p ? malloc_usable_size(p) : 0;
	return p;
}
void *__wrap_calloc(size_t k, size_t n)
{
	void *p = __real_calloc(k, n);
	n_allocs++;
	n_bytes += p ? malloc_usable_size(p) : 0;
	return p;
}
void *__wrap_realloc(void *p, size_t n)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q = __real_realloc(p, n);
	n_allocs++;
	if (q)
		n_bytes += malloc_usable_size(q) - old;
	return q;
}
void __wrap_free(void *p)
{
	if (p)
		n_bytes -= malloc_usable_size(p);
	__real_free(p);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct route_def property_routes[] = {
    {"all", "FROM /messages/* INTO $upstream", ROUTE_DEFAULT_PRIORITY, 0},
    {"alerts",
     "FROM /messages/modules/sensor/outputs/alerts INTO "
     "BrokeredEndpoint(\"/modules/alarm/inputs/in\")",
     0, 600},
    {"hot",
     "FROM /messages/modules/sensor/* WHERE as_number(temperature) > 30 AND unit = 'C' INTO "
     "BrokeredEndpoint(\"/modules/cooler/inputs/in\")",
     1, 0},
    {"site",
     "FROM /messages/* WHERE starts_with(site, 'hann') OR site = 'berlin' INTO "
     "BrokeredEndpoint(\"/modules/archive/inputs/in\")",
     5, 3600},
    {"notTest",
     "FROM /messages/* WHERE NOT is_defined(test) AND $connectionModuleId <> 'simulator' INTO "
     "BrokeredEndpoint(\"/modules/report/inputs/in\")",
     ROUTE_DEFAULT_PRIORITY, 0},
    {"label",
     "FROM /messages/modules/sensor/outputs/* WHERE concat(site, '-', unit) = 'hannover-C' INTO "
     "BrokeredEndpoint(\"/modules/label/inputs/in\")",
     ROUTE_DEFAULT_PRIORITY, 0},
    {"other",
     "FROM /messages/modules/camera/* INTO BrokeredEndpoint(\"/modules/vision/inputs/in\")",
     ROUTE_DEFAULT_PRIORITY, 0},
    {"dup", "FROM /* WHERE lower(unit) = 'c' INTO $upstream", 2, 60},
};

static const struct route_def body_routes[] = {
    {"bodyHot",
     "FROM /messages/* WHERE $body.machine.temperature > 30 INTO "
     "BrokeredEndpoint(\"/modules/cooler/inputs/in\")",
     1, 0},
    {"bodyPressure",
     "FROM /messages/* WHERE $body.machine.pressure[2] < 5 OR $body.ambient.humidity >= 40 INTO "
     "$upstream",
     3, 0},
    {"bodyName",
     "FROM /messages/* WHERE upper($body.machine.name) = 'PRESS-7' INTO "
     "BrokeredEndpoint(\"/modules/label/inputs/in\")",
     ROUTE_DEFAULT_PRIORITY, 0},
};

static void add_prop(struct hub_message *m, const char *k, const char *v)
{
	m->props = realloc(m->props, (m->n_props + 1) * sizeof(*m->props));
	m->props[m->n_props].key = strdup(k);
	m->props[m->n_props].value = strdup(v);
	m->n_props++;
}

static void count_hit(const struct route_hit *hit, void *arg)
{
	(void)hit;
	++*(size_t *)arg;
}

static void run(const char *what, const struct route_def *defs, size_t n,
		const struct hub_message *m, long iters)
{
	struct berr err;
	struct route_table *t;
	size_t a0 = n_allocs, b0 = n_bytes;
	double t0 = now();
	for (int i = 0; i < 1000; i++) {
		if (route_table_build(defs, n, &t, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			exit(1);
		}
		route_table_free(t);
	}
	double build_us = (now() - t0) / 1000 * 1e6;
	a0 = n_allocs, b0 = n_bytes;
	route_table_build(defs, n, &t, &err);
	size_t table_bytes = n_bytes - b0;
	/* The machine is shared: the best of five rounds. */
	size_t hits = 0;
	long per = iters / 5 ? iters / 5 : 1;
	double best = 1e9;
	a0 = n_allocs;
	for (int round = 0; round < 5; round++) {
		t0 = now();
		for (long i = 0; i < per; i++)
			route_table_match(t, m, count_hit, &hits);
		double dt = (now() - t0) / (double)per;
		if (dt < best)
			best = dt;
	}
	printf("%-30s %2zu routes  build %5.1f us  table %5zu B live  "
	       "match %8.0f ns/msg (%6.0f k msg/s)  %3.1f allocs/msg  %zu sinks/msg\n",
	       what, n, build_us, table_bytes, best * 1e9, 1 / best / 1e3,
	       (double)(n_allocs - a0) / (double)(5 * per), hits / (size_t)(5 * per));
	route_table_free(t);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1000000;
	struct hub_message *m = calloc(1, sizeof(*m));
	m->sys[MSG_SYS_CONNECTION_DEVICE_ID] = strdup("Hannover01");
	m->sys[MSG_SYS_CONNECTION_MODULE_ID] = strdup("sensor");
	m->sys[MSG_SYS_OUTPUT_NAME] = strdup("telemetry");
	m->sys[MSG_SYS_CONTENT_TYPE] = strdup("application/json");
	m->sys[MSG_SYS_CONTENT_ENCODING] = strdup("utf-8");
	add_prop(m, "temperature", "31.5");
	add_prop(m, "unit", "C");
	add_prop(m, "site", "hannover");
	add_prop(m, "batch", "2024-11-26");
	add_prop(m, "x-request-id", "9f1c");
	const char *body =
	    "{\"machine\": {\"name\": \"press-7\", \"temperature\": 31.5, "
	    "\"pressure\": [1.2, 3.4, 4.8, 2.2]}, \"ambient\": {\"temperature\": 21, "
	    "\"humidity\": 44}, \"timeCreated\": \"2024-11-26T10:00:00Z\"}";
	m->body = (unsigned char *)strdup(body);
	m->body_len = strlen(body);

	run("property conditions", property_routes, 8, m, iters);
	run("$body conditions", body_routes, 3, m, iters / 4);
	struct route_def all[11];
	memcpy(all, property_routes, sizeof(property_routes));
	memcpy(all + 8, body_routes, sizeof(body_routes));
	run("both (one pass over the body)", all, 11, m, iters / 4);

	/* A 256 KiB body: 30000 readings before the member the routes ask for. */
	char *big = malloc(MSG_MAX_BODY), *o = big;
	o += sprintf(o, "{\"readings\": [");
	for (int i = 0; i < 30000; i++)
		o += sprintf(o, "%s%d.%d", i ? "," : "", i % 1000, i % 7);
	o += sprintf(o, "], \"machine\": {\"name\": \"press-7\", \"temperature\": 31.5, "
			"\"pressure\": [1, 2, 4.8]}, \"ambient\": {\"humidity\": 44}}");
	free(m->body);
	m->body = (unsigned char *)big;
	m->body_len = (size_t)(o - big);
	char label[64];
	snprintf(label, sizeof(label), "$body, %zu KiB body", m->body_len / 1024);
	run(label, body_routes, 3, m, iters / 1000 > 10 ? iters / 1000 : 10);
	hub_message_free(m);
	return 0;
}
