/* `berth hub --config FILE [--listen-fd N]`: the hub process, started (and
 * restarted) by the daemon. Logs go to stderr. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/command.h"
#include "common/format.h"
#include "common/log.h"
#include "hub/broker.h"

#define HUB_USAGE "hub --config FILE [--listen-fd N]"

static int cmd_hub(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen-fd", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int listen_fd = -1;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'c') {
			config = optarg;
		} else if (o == 'l') {
			int64_t v;
			if (parse_int(optarg, 0, 65535, &v) < 0) {
				fprintf(stderr,
					"berth hub: --listen-fd %s is not a file descriptor\n",
					optarg);
				return 2;
			}
			listen_fd = (int)v;
		} else {
			return berth_usage("hub");
		}
	}
	if (!config || optind != argc)
		return berth_usage("hub");
	log_set_name("hub");
	struct broker b;
	struct berr err;
	int rc = 1;
	if (broker_init(&b, config, listen_fd, &err) < 0)
		log_error("%s", err.msg);
	else
		rc = broker_run(&b) < 0 ? 1 : 0;
	broker_fini(&b);
	return rc;
}
BERTH_COMMAND(hub, HUB_USAGE, NULL, cmd_hub);
