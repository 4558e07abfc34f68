/* `berth twin MODULE` and `berth queues`: what the hub holds, asked over its
 * control socket (<run>/hubctl.sock, root only). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/command.h"
#include "common/json.h"
#include "hub/hub.h"

#define HUBCTL_TIMEOUT_MS 10000
#define HUBCTL_REPLY_MAX  (1024 * 1024)

/* Sends req and returns the parsed answer when its status is 200. */
static int hubctl_ask(struct berth_ctx *ctx, const char *cmd, const char *req, yajl_val *out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/hubctl.sock", ctx->run);
	cleanup_free char *reply = NULL;
	struct berr err;
	if (hub_control_call(path, req, HUBCTL_TIMEOUT_MS, &reply, &err) < 0) {
		fprintf(stderr, "berth %s: %s (is berth daemon running?)\n", cmd, err.msg);
		return -1;
	}
	long long status = 0;
	if (json_parse(reply, strlen(reply), HUBCTL_REPLY_MAX, "hub answer", out, &err) < 0 ||
	    json_get_int(*out, "status", "answer", true, &status, &err) < 0) {
		fprintf(stderr, "berth %s: %s\n", cmd, err.msg);
		return -1;
	}
	if (status != 200) {
		const char *why = json_str(json_get(*out, "error"));
		fprintf(stderr, "berth %s: %s (status %lld)\n", cmd, why ? why : "the hub refused",
			status);
		yajl_tree_free(*out);
		return -1;
	}
	return 0;
}

/* Prints what g holds (when ok) and frees g and the answer v. */
static int print_generated(yajl_gen g, bool ok, yajl_val v)
{
	cleanup_free char *out = json_gen_done_if(g, g && ok, NULL);
	yajl_tree_free(v);
	if (!out)
		return 1;
	printf("%s\n", out);
	return 0;
}

static int cmd_twin(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-')
		return berth_usage("twin");
	yajl_gen g = json_gen_new(false);
	if (!g)
		return 1;
	cleanup_free char *req = NULL;
	if (yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_key_str(g, "op", "twin") == 0 &&
	    json_gen_key_str(g, "module", argv[1]) == 0 &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok)
		req = json_gen_done(g, NULL);
	yajl_val v;
	if (!req || hubctl_ask(ctx, "twin", req, &v) < 0)
		return 1;
	g = json_gen_new(true);
	return print_generated(g, g && json_gen_val(g, json_get(v, "twin")) == 0, v);
}
BERTH_COMMAND(twin, "twin MODULE", "print a module's twin as the hub holds it", cmd_twin);

static long long int_of(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : 0;
}

/* The store, the queues and the cloud link, as the hub reports them. */
static int print_queues_json(yajl_val v)
{
	yajl_gen g = json_gen_new(true);
	bool ok = g && yajl_gen_map_open(g) == yajl_gen_status_ok;
	static const char *const keys[] = {"store", "queues", "upstream"};
	for (size_t i = 0; ok && i < sizeof(keys) / sizeof(keys[0]); i++) {
		yajl_val e = json_get(v, keys[i]);
		if (e)
			ok = json_gen_str(g, keys[i]) == 0 && json_gen_val(g, e) == 0;
	}
	return print_generated(g, ok && yajl_gen_map_close(g) == yajl_gen_status_ok, v);
}

static int cmd_queues(struct berth_ctx *ctx, int argc, char **argv)
{
	bool json = argc == 2 && !strcmp(argv[1], "--json");
	if (argc != 1 && !json)
		return berth_usage("queues");
	yajl_val v;
	if (hubctl_ask(ctx, "queues", "{\"op\":\"status\"}", &v) < 0)
		return 1;
	if (json)
		return print_queues_json(v);
	yajl_val q = json_get(v, "queues");
	printf("%-40s %9s %12s %8s %9s %8s %12s %15s\n", "ENDPOINT", "MESSAGES", "BYTES", "OLDEST",
	       "IN FLIGHT", "EXPIRED", "DROPPED-FULL", "DROPPED-DAMAGED");
	for (size_t i = 0; q && YAJL_IS_OBJECT(q) && i < q->u.object.len; i++) {
		yajl_val e = q->u.object.values[i];
		char oldest[24] = "-";
		long long age = int_of(e, "oldest_age_secs");
		if (age >= 0 && int_of(e, "messages"))
			snprintf(oldest, sizeof(oldest), "%llds", age);
		printf("%-40s %9lld %12lld %8s %9lld %8lld %12lld %15lld\n", q->u.object.keys[i],
		       int_of(e, "messages"), int_of(e, "bytes"), oldest, int_of(e, "leased"),
		       int_of(e, "expired"), int_of(json_get(e, "dropped"), "full"),
		       int_of(json_get(e, "dropped"), "damaged"));
	}
	yajl_val st = json_get(v, "store");
	if (st && YAJL_IS_OBJECT(st)) {
		const char *full = json_str(json_get(st, "store_full"));
		printf("\nstore %s: %lld bytes in %lld segment(s)", json_str(json_get(st, "dir")),
		       int_of(st, "bytes"), int_of(st, "segments"));
		if (int_of(st, "max_bytes"))
			printf(" of at most %lld", int_of(st, "max_bytes"));
		printf("; %lld bytes free on its device (%lld%% kept free); when full: %s\n",
		       int_of(st, "free_bytes"), int_of(st, "min_free_percent"),
		       full ? full : "reject");
		yajl_val f = json_get(st, "full");
		if (f && YAJL_IS_TRUE(f))
			printf("store is FULL: new messages wait without PUBACK\n");
		printf("held back for space %lld, refused %lld, dropped to make room %lld, write "
		       "errors %lld\n",
		       int_of(st, "held_back"), int_of(st, "refused"), int_of(st, "dropped_full"),
		       int_of(st, "write_errors"));
	}
	yajl_tree_free(v);
	return 0;
}
BERTH_COMMAND(queues, "queues [--json]",
	      "messages the hub's store holds for each endpoint ($upstream, module inputs)",
	      cmd_queues);
