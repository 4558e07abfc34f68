#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/command.h"
#include "common/command_table.h"
#include "common/log.h"
#include "common/version.h"

static int compare_commands(const void *a, const void *b)
{
	const struct berth_command *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: berth [--root DIR] [--run DIR] [--debug] COMMAND [ARGS...]\n\n"
		     "berth runs OCI images as IoT Edge modules on small devices.\n\n"
		     "Commands:\n");
	size_t n = command_count();
	const struct berth_command **sorted = calloc(n ? n : 1, sizeof(*sorted));
	if (!sorted)
		return;
	for (size_t i = 0; i < n; i++)
		sorted[i] = command_at(i);
	qsort(sorted, n, sizeof(*sorted), compare_commands);
	for (size_t i = 0; i < n; i++)
		if (sorted[i]->summary)
			fprintf(out, "  %-10s %s\n", sorted[i]->name, sorted[i]->summary);
	fprintf(out, "\nOptions:\n"
		     "  --root DIR  state directory (default " BERTH_DEFAULT_ROOT ")\n"
		     "  --run DIR   runtime directory (default " BERTH_DEFAULT_RUN ")\n"
		     "  --debug     verbose logging\n");
	free(sorted);
}

static int cmd_version(struct berth_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	printf("berth %s (revision %s)\n", berth_version, berth_revision);
	return 0;
}

static int cmd_help(struct berth_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc > 1) {
		const struct berth_command *c = command_find(argv[1]);
		if (!c) {
			fprintf(stderr, "berth: unknown command \"%s\"\n", argv[1]);
			return 2;
		}
		printf("usage: berth %s\n%s\n", c->usage, c->summary ? c->summary : "");
		return 0;
	}
	usage(stdout);
	return 0;
}
BERTH_COMMAND(help, "help [COMMAND]", "show commands or one command's usage", cmd_help);

int main(int argc, char **argv)
{
	struct berth_ctx ctx = {.root = BERTH_DEFAULT_ROOT, .run = BERTH_DEFAULT_RUN};
	ctx.argv0 = argv[0];
	int i = 1;
	/* Global options stop at the first word that is not one, so command
	 * options (and a module's own arguments) are never taken here. */
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];
		if (!strcmp(a, "--root") || !strcmp(a, "--run")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "berth: %s needs a directory\n", a);
				return 2;
			}
			if (a[2] == 'r' && a[3] == 'o') {
				ctx.root = argv[i + 1];
				ctx.root_set = 1;
			} else {
				ctx.run = argv[i + 1];
				ctx.run_set = 1;
			}
			i += 2;
		} else if (!strncmp(a, "--root=", 7)) {
			ctx.root = a + 7;
			ctx.root_set = 1;
			i++;
		} else if (!strncmp(a, "--run=", 6)) {
			ctx.run = a + 6;
			ctx.run_set = 1;
			i++;
		} else if (!strcmp(a, "--debug")) {
			log_set_level(LOG_LVL_DEBUG);
			i++;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			return cmd_version(&ctx, 0, NULL);
		} else {
			fprintf(stderr, "berth: unknown option \"%s\"\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const struct berth_command *c = command_find(argv[i]);
	if (!c) {
		fprintf(stderr, "berth: unknown command \"%s\" (see berth help)\n", argv[i]);
		return 2;
	}
	return c->run(&ctx, argc - i, argv + i);
}
