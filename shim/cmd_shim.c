/* `berth shim ...`: the shim interface of shim.h on the command line, for
 * tests and for looking at an instance by hand. Hidden from `berth help`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/command.h"
#include "oci/oci.h"
#include "shim/shim.h"
#include "shim/state.h"

static int fail(const struct berr *err)
{
	fprintf(stderr, "berth: %s\n", err->msg);
	return 1;
}

static int cmd_shim(struct berth_ctx *ctx, int argc, char **argv)
{
	struct berr err;
	if (argc == 3 && !strcmp(argv[1], "start")) {
		struct instance_spec *spec = NULL;
		if (instance_spec_read(argv[2], &spec, &err) < 0)
			return fail(&err);
		pid_t pid = 0;
		int rc = shim_start(ctx->root, spec, &pid, &err);
		instance_spec_free(spec);
		if (rc < 0)
			return fail(&err);
		printf("%d\n", (int)pid);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "state")) {
		struct instance_state st;
		if (shim_state_read(ctx->root, argv[2], &st, &err) < 0)
			return fail(&err);
		printf("status=%s\nshim_pid=%d\nalive=%d\npid=%d\nexit_code=%d\nexit_signal=%d\n"
		       "oom_killed=%d\nstarted_at=%lld\nfinished_at=%lld\nerror=%s\n",
		       instance_status_name(st.status), (int)st.shim_pid, shim_alive(&st),
		       (int)st.pid, st.exit_code, st.exit_signal, st.oom_killed,
		       (long long)st.started_at, (long long)st.finished_at, st.error);
		return 0;
	}
	if ((argc == 3 || argc == 5) && !strcmp(argv[1], "stop")) {
		int grace = 10;
		const char *name = argv[2];
		if (argc == 5) {
			if (strcmp(argv[2], "--grace"))
				return berth_usage("shim");
			char *end;
			long g = strtol(argv[3], &end, 10);
			if (*end || g < 0 || g > 86400)
				return berth_usage("shim");
			grace = (int)g;
			name = argv[4];
		}
		return shim_stop(ctx->root, name, grace, &err) < 0 ? fail(&err) : 0;
	}
	if (argc == 3 && !strcmp(argv[1], "rm")) {
		if (shim_remove(ctx->root, argv[2], &err) < 0)
			return fail(&err);
		/* The image lease `berth run` took for a kept instance. */
		struct oci_store *store;
		if (oci_store_open(ctx->root, &store, &err) < 0)
			return fail(&err);
		int rc = oci_lease_remove(store, argv[2], &err);
		oci_store_close(store);
		return rc < 0 ? fail(&err) : 0;
	}
	return berth_usage("shim");
}
BERTH_COMMAND(shim, "shim start SPEC.json | state NAME | stop [--grace S] NAME | rm NAME", NULL,
	      cmd_shim);
