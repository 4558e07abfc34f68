/* `berth oci run --bundle DIR ID`: an OCI runtime bundle in the foreground. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/command.h"
#include "common/log.h"
#include "shim/bundle.h"
#include "shim/foreground.h"
#include "shim/instance.h"

static int oci_run(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"bundle", required_argument, NULL, 'b'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *bundle = ".";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+b:h", opts, NULL)) != -1) {
		if (c == 'b')
			bundle = optarg;
		else
			return berth_usage("oci");
	}
	if (optind != argc - 1)
		return berth_usage("oci");
	const char *id = argv[optind];
	struct berr err;
	struct sandbox *sb = NULL;
	if (bundle_load(bundle, id, &sb, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		return 125;
	}
	/* The id is an instance name: one lock and one cgroup per name (and
	 * what a killed run of the same id left is taken back first). */
	char dir[PATH_MAX];
	int lock = -1;
	if (instance_dir_path(ctx->root, id, dir, sizeof(dir), &err) < 0 ||
	    shim_reclaim(ctx->root, id, &err) < 0 ||
	    (lock = instance_lock(dir, id, true, false, &err)) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		sandbox_free(sb);
		return 125;
	}
	struct foreground_result res;
	int rc = sandbox_run_foreground(sb, &res, &err);
	if (rc < 0)
		fprintf(stderr, "berth: %s\n", err.msg);
	else if (res.oom_killed)
		fprintf(stderr, "berth: container %s was killed by the out-of-memory killer\n", id);
	sandbox_free(sb);
	rmdir(dir);
	close(lock);
	return rc < 0 ? 125 : res.exit_code;
}

static int cmd_oci(struct berth_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "run"))
		return berth_usage("oci");
	return oci_run(ctx, argc - 1, argv + 1);
}
BERTH_COMMAND(oci, "oci run [--bundle DIR] ID",
	      "run an OCI runtime bundle (config.json) in the foreground", cmd_oci);
