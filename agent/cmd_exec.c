/* `berth exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] NAME CMD...`: a program
 * in a running module, as `docker exec`; the module's shim enters the
 * instance (shim/exec.c says how and why there). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/client.h"
#include "agent/deployment.h"
#include "common/cleanup.h"
#include "common/command.h"
#include "common/names.h"
#include "common/strv.h"
#include "shim/shim.h"

#define EXEC_USAGE "exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] NAME CMD..."

/* -e K=V, or -e K for the caller's own value of K (as docker); a later K
 * replaces an earlier one, as the shim applies them. */
static int add_env(char ***env, const char *arg)
{
	if (strchr(arg, '='))
		return strv_env_set(env, arg);
	const char *v = getenv(arg);
	return v ? strv_env_set_kv(env, arg, v) : 0;
}

static int cmd_exec(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interactive", no_argument, NULL, 'i'},   {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},     {"user", required_argument, NULL, 'u'},
	    {"workdir", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
	struct shim_exec_options o = {0};
	cleanup_strv char **env = NULL;
	int c;
	optind = 1;
	/* "+": options end at NAME, so the command's own options stay its own. */
	while ((c = getopt_long(argc, argv, "+ite:u:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.interactive = true;
			break;
		case 't':
			o.tty = true;
			break;
		case 'e':
			if (optarg[0] == '=' || add_env(&env, optarg) < 0) {
				fprintf(stderr, "berth: exec: -e %s: expected KEY=VALUE\n", optarg);
				return 125;
			}
			break;
		case 'u':
			o.user = optarg;
			break;
		case 'w':
			if (optarg[0] != '/') {
				fprintf(stderr, "berth: exec: -w %s: expected an absolute path\n",
					optarg);
				return 125;
			}
			o.cwd = optarg;
			break;
		default:
			berth_usage("exec");
			return 125;
		}
	}
	if (argc - optind < 2) {
		berth_usage("exec");
		return 125;
	}
	const char *name = argv[optind];
	if (!module_name_valid(name)) {
		fprintf(stderr, "berth: exec: \"%s\" is not a module name\n", name);
		return 125;
	}
	o.args = argv + optind + 1;
	o.env = env;
	char root[PATH_MAX];
	daemon_state_root(ctx->run, ctx->root, ctx->root_set, root, sizeof(root));
	int status = 125;
	struct berr err;
	if (shim_exec(root, name, &o, &status, &err) < 0)
		fprintf(stderr, "berth: exec %s: %s\n", name, err.msg);
	return status;
}
BERTH_COMMAND(exec, EXEC_USAGE, "run a program in a running module", cmd_exec);
