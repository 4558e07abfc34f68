/* `berth invoke MODULE METHOD JSON [--timeout S]`: calls a module's direct
 * method through the hub's control socket (<run>/hubctl.sock) and prints
 * the module's JSON answer. Exit status 0 for a 2xx answer, 1 otherwise
 * (with a line saying why: not deployed or not connected (404), no answer
 * in time (504), the module's own error status). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/command.h"
#include "common/format.h"
#include "common/json.h"
#include "hub/hub.h"

#define INVOKE_DEFAULT_TIMEOUT_S 30
#define INVOKE_MAX_TIMEOUT_S	 300

static char *build_request(const char *module, const char *method, yajl_val payload,
			   long long timeout_ms)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	char *out = NULL;
	if (yajl_gen_map_open(g) == yajl_gen_status_ok &&
	    json_gen_key_str(g, "op", "invoke") == 0 &&
	    json_gen_key_str(g, "module", module) == 0 &&
	    json_gen_key_str(g, "method", method) == 0 && json_gen_str(g, "payload") == 0 &&
	    json_gen_val(g, payload) == 0 && json_gen_key_int(g, "timeout_ms", timeout_ms) == 0 &&
	    yajl_gen_map_close(g) == yajl_gen_status_ok)
		out = json_gen_done(g, NULL);
	return out;
}

static int print_json(yajl_val v)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return -1;
	char *out = json_gen_done_if(g, json_gen_val(g, v) == 0, NULL);
	if (!out)
		return -1;
	printf("%s\n", out);
	free(out);
	return 0;
}

/* --timeout S, before or after the arguments. */
static int timeout_option(const char *arg, int64_t *out)
{
	if (parse_int(arg, 1, INVOKE_MAX_TIMEOUT_S, out) == 0)
		return 0;
	fprintf(stderr, "berth invoke: --timeout takes 1 to %d seconds\n", INVOKE_MAX_TIMEOUT_S);
	return -1;
}

#define INVOKE_USAGE "invoke MODULE METHOD JSON [--timeout S]"

static int cmd_invoke(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	int64_t timeout_s = INVOKE_DEFAULT_TIMEOUT_S;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (o != 't')
			return berth_usage("invoke");
		if (timeout_option(optarg, &timeout_s) < 0)
			return 2;
	}
	/* Options may also follow the arguments. */
	if (argc - optind == 5 && !strcmp(argv[optind + 3], "--timeout")) {
		if (timeout_option(argv[optind + 4], &timeout_s) < 0)
			return 2;
		argc -= 2;
	}
	if (argc - optind != 3)
		return berth_usage("invoke");
	const char *module = argv[optind], *method = argv[optind + 1], *json = argv[optind + 2];
	yajl_val payload;
	struct berr err;
	if (json_parse(json, strlen(json), 128 * 1024, "payload", &payload, &err) < 0) {
		fprintf(stderr, "berth invoke: %s\n", err.msg);
		return 2;
	}
	cleanup_free char *req = build_request(module, method, payload, timeout_s * 1000);
	yajl_tree_free(payload);
	if (!req) {
		fprintf(stderr, "berth invoke: out of memory\n");
		return 1;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/hubctl.sock", ctx->run);
	cleanup_free char *reply = NULL;
	if (hub_control_call(path, req, (int)(timeout_s * 1000) + 5000, &reply, &err) < 0) {
		fprintf(stderr, "berth invoke: %s %s: %s\n", module, method, err.msg);
		return 1;
	}
	yajl_val v;
	long long status = 0;
	if (json_parse(reply, strlen(reply), 1024 * 1024, "hub answer", &v, &err) < 0 ||
	    json_get_int(v, "status", "answer", true, &status, &err) < 0) {
		fprintf(stderr, "berth invoke: %s %s: %s\n", module, method, err.msg);
		if (v)
			yajl_tree_free(v);
		return 1;
	}
	int rc = 0;
	const char *error = json_str(json_get(v, "error"));
	if (status >= 200 && status < 300) {
		if (print_json(json_get(v, "payload")) < 0) {
			fprintf(stderr, "berth invoke: cannot print the answer\n");
			rc = 1;
		}
	} else if (error) {
		fprintf(stderr, "berth invoke: %s %s: %s (status %lld)\n", module, method, error,
			status);
		rc = 1;
	} else {
		/* The module answered with an error status: show what it said. */
		print_json(json_get(v, "payload"));
		fprintf(stderr, "berth invoke: %s %s: the module answered status %lld\n", module,
			method, status);
		rc = 1;
	}
	yajl_tree_free(v);
	return rc;
}
BERTH_COMMAND(invoke, INVOKE_USAGE, "call a module's direct method and print its answer",
	      cmd_invoke);
