/* The multi-call binary's command table. Each folder registers its commands
 * where it implements them:
 *
 *   static int cmd_pull(struct berth_ctx *ctx, int argc, char **argv) { ... }
 *   BERTH_COMMAND(pull, "pull [--insecure] REF", "pull an image", cmd_pull);
 *
 * argv[0] is the command name; return the process exit status. The linker
 * gathers the entries into one section that main() walks. */
#ifndef BERTH_COMMAND_H
#define BERTH_COMMAND_H

#define BERTH_DEFAULT_ROOT "/var/lib/berth"
#define BERTH_DEFAULT_RUN  "/run/berth"

struct berth_ctx {
	const char *root;  /* state directory (--root) */
	const char *run;   /* runtime directory (--run) */
	const char *argv0; /* path this binary was started as */
	int root_set;	   /* --root given on the command line */
	int run_set;	   /* --run given on the command line */
};

struct berth_command {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(struct berth_ctx *ctx, int argc, char **argv);
};

#define BERTH_COMMAND(id, usage_, summary_, fn)                                                    \
	static const struct berth_command berth_cmd_##id                                           \
	    __attribute__((used, section("berth_cmds"), aligned(sizeof(void *)))) = {              \
		.name = #id, .usage = usage_, .summary = summary_, .run = fn}

/* The same for a command whose name is no C identifier ("support-bundle"). */
#define BERTH_COMMAND_NAMED(id, name_, usage_, summary_, fn)                                       \
	static const struct berth_command berth_cmd_##id                                           \
	    __attribute__((used, section("berth_cmds"), aligned(sizeof(void *)))) = {              \
		.name = name_, .usage = usage_, .summary = summary_, .run = fn}

/* Path of the running berth binary (/proc/self/exe resolved once), used to
 * start shims and the hub. */
const char *berth_self_exe(void);

/* Prints "usage: berth <usage>" for a command to stderr; returns 2. */
int berth_usage(const char *name);

#endif
