/* The user commands that talk to the daemon: list, logs, restart, deploy,
 * token, version. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/client.h"
#include "agent/daemon.h"
#include "agent/deployment.h"
#include "agent/upstream_view.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/command.h"
#include "common/format.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/version.h"
#include "shim/shim.h"

static int fail(const char *cmd, const struct berr *err)
{
	fprintf(stderr, "berth: %s%s%s\n", cmd ? cmd : "", cmd ? ": " : "", err->msg);
	return 1;
}

/* Builds {"op":op, key:value...} with string values. */
static char *request(const char *op, const char *key, const char *value, const char *ikey,
		     long long ivalue)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "op", op);
	if (key)
		json_gen_key_str(g, key, value);
	if (ikey)
		json_gen_key_int(g, ikey, ivalue);
	yajl_gen_map_close(g);
	char *s = json_gen_done(g, NULL);
	return s;
}

static int simple_call(struct berth_ctx *ctx, const char *op, const char *key, const char *value,
		       yajl_val *reply, struct berr *err)
{
	cleanup_free char *req = request(op, key, value, NULL, 0);
	if (!req)
		return berr_set(err, ENOMEM, "request");
	return daemon_request(ctx->run, req, reply, err);
}

static const char *str_or(yajl_val obj, const char *key, const char *dflt)
{
	const char *s = json_str(json_get(obj, key));
	return s ? s : dflt;
}

/* The one operand of a command that names a module (argv[first], which
 * must be the last argument); NULL once it said what is wrong (the command
 * then exits 2). */
static const char *module_arg(int argc, char **argv, int first, const char *cmd)
{
	if (first != argc - 1) {
		berth_usage(cmd);
		return NULL;
	}
	if (!module_name_valid(argv[first])) {
		fprintf(stderr, "berth: %s: \"%s\" is not a module name\n", cmd, argv[first]);
		return NULL;
	}
	return argv[first];
}

/* The cloud link under the modules: the hub's connection state and what
 * waits for it, and the module identities in IoT Hub. */
static void print_upstream(struct berth_ctx *ctx, yajl_val up)
{
	char line[1200];
	cleanup_yajl yajl_val st = NULL;
	struct berr err;
	yajl_val hub_up = NULL;
	if (upstream_query(ctx->run, &st, &err) == 0)
		hub_up = json_get(st, "upstream");
	if (hub_up) {
		upstream_describe(hub_up, wall_ms(), line, sizeof(line));
		printf("\n%s\n", line);
	} else {
		printf("\nupstream %s: the hub does not say (%s)\n", str_or(up, "url", "?"),
		       st ? "it has no upstream yet" : err.msg);
	}
	upstream_identities_describe(up, line, sizeof(line));
	printf("%s\n", line);
}

static int cmd_list(struct berth_ctx *ctx, int argc, char **argv)
{
	bool as_json = false;
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			as_json = true;
		else
			return berth_usage("list");
	}
	if (optind != argc)
		return berth_usage("list");
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (simple_call(ctx, "list", NULL, NULL, &reply, &err) < 0)
		return fail(NULL, &err);
	yajl_val mods = json_get(reply, "modules");
	size_t n = mods && YAJL_IS_ARRAY(mods) ? mods->u.array.len : 0;
	if (as_json) {
		yajl_gen g = json_gen_new(true);
		json_gen_val(g, mods);
		char *s = json_gen_done(g, NULL);
		printf("%s\n", s ? s : "[]");
		free(s);
		return 0;
	}
	int w_name = 4, w_status = 6, w_desc = 11;
	for (size_t i = 0; i < n; i++) {
		yajl_val m = mods->u.array.values[i];
		int a = (int)strlen(str_or(m, "name", "")),
		    b = (int)strlen(str_or(m, "runtimeStatus", "")),
		    d = (int)strlen(str_or(m, "description", ""));
		w_name = a > w_name ? a : w_name;
		w_status = b > w_status ? b : w_status;
		w_desc = d > w_desc ? d : w_desc;
	}
	printf("%-*s   %-*s   %-*s   %s\n", w_name, "NAME", w_status, "STATUS", w_desc,
	       "DESCRIPTION", "CONFIG");
	for (size_t i = 0; i < n; i++) {
		yajl_val m = mods->u.array.values[i];
		printf("%-*s   %-*s   %-*s   %s\n", w_name, str_or(m, "name", ""), w_status,
		       str_or(m, "runtimeStatus", ""), w_desc, str_or(m, "description", ""),
		       str_or(m, "image", ""));
	}
	yajl_val up = json_get(reply, "upstream");
	if (up && YAJL_IS_OBJECT(up))
		print_upstream(ctx, up);
	return 0;
}
BERTH_COMMAND(list, "list [--json]", "list the deployed modules and their status", cmd_list);

static int cmd_restart(struct berth_ctx *ctx, int argc, char **argv)
{
	if (!module_arg(argc, argv, 1, "restart"))
		return 2;
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (simple_call(ctx, "restart", "module", argv[1], &reply, &err) < 0)
		return fail("restart", &err);
	printf("%s\n", argv[1]);
	return 0;
}
BERTH_COMMAND(restart, "restart NAME", "restart a module", cmd_restart);

static int cmd_deploy(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc != 2)
		return berth_usage("deploy");
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	if (fs_read_file(argv[1], DEPLOYMENT_MAX_BYTES, &text, &len, &err) < 0)
		return fail("deploy", &err);
	if (memchr(text, '\0', len)) {
		fprintf(stderr, "berth: deploy: %s: contains a NUL byte\n", argv[1]);
		return 1;
	}
	yajl_gen g = json_gen_new(false);
	if (!g)
		return 1;
	yajl_gen_map_open(g);
	json_gen_key_str(g, "op", "deploy");
	json_gen_key_str(g, "name", argv[1]);
	/* yajl refuses invalid UTF-8; the daemon then reports it as a bad manifest. */
	if (json_gen_key_str(g, "manifest", text) < 0) {
		yajl_gen_free(g);
		fprintf(stderr, "berth: deploy: %s: not valid UTF-8 text\n", argv[1]);
		return 1;
	}
	yajl_gen_map_close(g);
	cleanup_free char *req = json_gen_done(g, NULL);
	cleanup_yajl yajl_val reply = NULL;
	if (!req || daemon_request(ctx->run, req, &reply, &err) < 0)
		return fail("deploy", &err);
	yajl_val warns = json_get(reply, "warnings");
	for (size_t i = 0; warns && YAJL_IS_ARRAY(warns) && i < warns->u.array.len; i++) {
		const char *w = json_str(warns->u.array.values[i]);
		if (w)
			fprintf(stderr, "berth: warning: %s\n", w);
	}
	yajl_val nm = json_get(reply, "modules");
	printf("deployed %s: %lld module(s)\n", argv[1],
	       nm && YAJL_IS_INTEGER(nm) ? (long long)YAJL_GET_INTEGER(nm) : 0LL);
	return 0;
}
BERTH_COMMAND(deploy, "deploy FILE", "validate and apply a deployment manifest", cmd_deploy);

static int cmd_token(struct berth_ctx *ctx, int argc, char **argv)
{
	int64_t ttl = 3600;
	static const struct option opts[] = {{"ttl", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 't')
			return berth_usage("token");
		if (parse_int(optarg, 1, 365LL * 24 * 3600, &ttl) < 0) {
			fprintf(stderr, "berth: token: --ttl wants 1 to 31536000 seconds\n");
			return 2;
		}
	}
	const char *name = module_arg(argc, argv, optind, "token");
	if (!name)
		return 2;
	cleanup_free char *req = request("token", "module", name, "ttl", ttl);
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (!req || daemon_request(ctx->run, req, &reply, &err) < 0)
		return fail("token", &err);
	printf("%s\n", str_or(reply, "token", ""));
	return 0;
}
BERTH_COMMAND(token, "token NAME [--ttl SECONDS]", "print a SAS token for a module (root only)",
	      cmd_token);

static int cmd_version(struct berth_ctx *ctx, int argc, char **argv)
{
	printf("berth %s (revision %s)\n", berth_version, berth_revision);
	cleanup_yajl yajl_val reply = NULL;
	struct berr err;
	if (simple_call(ctx, "info", NULL, NULL, &reply, &err) == 0) {
		yajl_val pid = json_get(reply, "pid");
		printf("daemon %s (pid %lld, device %s)\n", str_or(reply, "version", "?"),
		       pid && YAJL_IS_INTEGER(pid) ? (long long)YAJL_GET_INTEGER(pid) : 0LL,
		       str_or(reply, "device_id", "?"));
	}
	return 0;
}
BERTH_COMMAND(version, "version", "print the version (and the running daemon's)", cmd_version);

/* --- logs --- */

/* --since / --until as `docker logs` takes them, into Unix ns. */
static int time_option(const char *opt, const char *arg, int64_t *out)
{
	if (time_arg_parse(arg, wall_ns(), out) == 0)
		return 0;
	fprintf(stderr,
		"berth: logs: --%s %s: expected a duration back from now (10m, 1h30m), a Unix "
		"time or an RFC 3339 time (2024-05-01T12:00:00Z)\n",
		opt, arg);
	return -1;
}

static int cmd_logs(struct berth_ctx *ctx, int argc, char **argv)
{
	struct shim_log_query q = {.tail = -1};
	static const struct option opts[] = {
	    {"follow", no_argument, NULL, 'f'},	     {"tail", required_argument, NULL, 'n'},
	    {"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 'u'},
	    {"timestamps", no_argument, NULL, 't'},  {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ftn:", opts, NULL)) != -1) {
		if (c == 'f') {
			q.follow = true;
		} else if (c == 't') {
			q.timestamps = true;
		} else if (c == 's' || c == 'u') {
			if (time_option(c == 's' ? "since" : "until", optarg,
					c == 's' ? &q.since_ns : &q.until_ns) < 0)
				return 2;
		} else if (c == 'n') {
			int64_t tail;
			if (!strcmp(optarg, "all"))
				q.tail = -1;
			else if (parse_int(optarg, 0, LONG_MAX, &tail) == 0)
				q.tail = (long)tail;
			else {
				fprintf(stderr, "berth: logs: --tail wants a number of lines\n");
				return 2;
			}
		} else {
			return berth_usage("logs");
		}
	}
	const char *name = module_arg(argc, argv, optind, "logs");
	if (!name)
		return 2;
	/* The daemon knows its state directory; without one answering, --root. */
	char root[PATH_MAX];
	daemon_state_root(ctx->run, ctx->root, ctx->root_set, root, sizeof(root));
	struct berr err;
	if (shim_logs(root, name, &q, STDOUT_FILENO, &err) < 0)
		return fail("logs", &err);
	return 0;
}
BERTH_COMMAND(logs, "logs NAME [-f] [--tail N] [--since TIME] [--until TIME] [-t|--timestamps]",
	      "show a module's output", cmd_logs);
