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
	cleanup_free char *out = g && ok ? json_gen_finish(g, NULL) : NULL;
	if (g)
		yajl_gen_free(g);
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
		req = json_gen_finish(g, NULL);
	yajl_gen_free(g);
	yajl_val v;
	if (!req || hubctl_ask(ctx, "twin", req, &v) < 0)
		return 1;
	g = json_gen_new(true);
	return print_generated(g, g && json_gen_val(g, json_get(v, "twin")) == 0, v);
}
BERTH_COMMAND(twin, "twin MODULE", "print a module's twin as the hub holds it", cmd_twin);

static int cmd_queues(struct berth_ctx *ctx, int argc, char **argv)
{
	bool as_json = argc == 2 && !strcmp(argv[1], "--json");
	if (argc != 1 && !as_json)
		return berth_usage("queues");
	yajl_val v;
	if (hubctl_ask(ctx, "queues", "{\"op\":\"status\"}", &v) < 0)
		return 1;
	yajl_val q = json_get(v, "queues");
	if (as_json) {
		/* The queues and the cloud link, as the hub reports them. */
		yajl_gen g = json_gen_new(true);
		int rc = !g || yajl_gen_map_open(g) != yajl_gen_status_ok ||
			 json_gen_str(g, "queues") < 0 || json_gen_val(g, q) < 0;
		yajl_val up = json_get(v, "upstream");
		if (!rc && up)
			rc = json_gen_str(g, "upstream") < 0 || json_gen_val(g, up) < 0;
		return print_generated(g, !rc && yajl_gen_map_close(g) == yajl_gen_status_ok, v);
	}
	printf("%-40s %10s %10s\n", "ENDPOINT", "MESSAGES", "IN FLIGHT");
	for (size_t i = 0; q && YAJL_IS_OBJECT(q) && i < q->u.object.len; i++) {
		yajl_val e = q->u.object.values[i];
		yajl_val m = json_get(e, "messages"), l = json_get(e, "leased");
		printf("%-40s %10lld %10lld\n", q->u.object.keys[i],
		       m && YAJL_IS_INTEGER(m) ? YAJL_GET_INTEGER(m) : 0,
		       l && YAJL_IS_INTEGER(l) ? YAJL_GET_INTEGER(l) : 0);
	}
	yajl_tree_free(v);
	return 0;
}
BERTH_COMMAND(queues, "queues [--json]",
	      "messages the hub holds for each endpoint ($upstream, module inputs)", cmd_queues);
