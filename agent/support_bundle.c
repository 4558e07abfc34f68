/* `berth support-bundle`: one .tar.gz with what diagnosing a device takes,
 * as `iotedge support-bundle` gathers it: the daemon's and each module's
 * logs, `berth check`, `berth list --json`, `berth queues --json`, the
 * config and the deployment with their secrets taken out (agent/redact.h),
 * and the kernel's and the cgroups' facts. Each part is gathered on its own:
 * one that fails (no daemon, no hub) leaves its error in its file and the
 * rest still comes. Every file is scrubbed of the secrets before it enters
 * the archive, which is written with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "agent/config.h"
#include "agent/redact.h"
#include "common/cleanup.h"
#include "common/clock.h"
#include "common/command.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/lazy.h"
#include "common/strbuf.h"

#define BUNDLE_USAGE                                                                               \
	"support-bundle [--config FILE] [--since DURATION] [--daemon-log FILE] [-o FILE]"
#define BUNDLE_FILE_MAX	 (64 * 1024 * 1024) /* of one part; a longer log keeps its end */
#define BUNDLE_FILES_MAX 256
#define BUNDLE_CMD_SECS	 60

struct bundle {
	struct berth_ctx *ctx;
	const char *root, *run;
	char dir[64];
	char *files[BUNDLE_FILES_MAX];
	size_t n_files;
	struct redact_secrets secrets;
	char since[32]; /* Unix seconds for `berth logs --since`; "" for all */
};

static void note(struct bundle *b, const char *name)
{
	if (b->n_files < BUNDLE_FILES_MAX)
		b->files[b->n_files++] = strdup(name);
}

static int open_part(struct bundle *b, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", b->dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		note(b, name);
	return fd;
}

static void write_part(struct bundle *b, const char *name, const char *text, size_t len)
{
	int fd = open_part(b, name);
	if (fd < 0)
		return;
	if (fs_write_all(fd, text, len, -1) < 0)
		fprintf(stderr, "berth: support-bundle: %s: %s\n", name, strerror(errno));
	close(fd);
}

/* The end of a file, at most BUNDLE_FILE_MAX of it. */
static void copy_part(struct bundle *b, const char *name, const char *src)
{
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		char line[600];
		int n = snprintf(line, sizeof(line), "%s: %s\n", src, strerror(errno));
		write_part(b, name, line, (size_t)n);
		return;
	}
	if (S_ISREG(st.st_mode) && st.st_size > BUNDLE_FILE_MAX)
		lseek(in, st.st_size - BUNDLE_FILE_MAX, SEEK_SET);
	int out = open_part(b, name);
	char buf[65536];
	ssize_t n;
	size_t total = 0;
	while (out >= 0 && total < BUNDLE_FILE_MAX && (n = read(in, buf, sizeof(buf))) > 0) {
		if (fs_write_all(out, buf, (size_t)n, -1) < 0)
			break;
		total += (size_t)n;
	}
	if (out >= 0)
		close(out);
}

/* Runs argv (a path, or a name looked up in PATH) with its stdout and
 * stderr into fd and no stdin, for at most BUNDLE_CMD_SECS; its pid (or -1)
 * once it has ended, with its wait status. */
static pid_t run_into(int fd, const char *const *argv, int *status)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		alarm(BUNDLE_CMD_SECS);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	*status = 0;
	while (pid > 0 && waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return pid;
}

/* `berth --root R --run R ARGS...`, its stdout and stderr into the part;
 * a failure is written at its end. */
static void capture(struct bundle *b, const char *name, const char *const *args)
{
	int fd = open_part(b, name);
	if (fd < 0)
		return;
	const char *argv[16] = {berth_self_exe(), "--root", b->root, "--run", b->run};
	size_t n = 5;
	for (size_t i = 0; args[i] && n + 1 < ARRAY_SIZE(argv); i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int status = 0;
	pid_t pid = run_into(fd, argv, &status);
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		char line[128];
		int len = snprintf(line, sizeof(line), "\n(berth %s: %s %d)\n", args[0],
				   pid < 0	       ? "could not start:"
				   : WIFEXITED(status) ? "exit status"
						       : "killed by signal",
				   pid < 0	       ? errno
				   : WIFEXITED(status) ? WEXITSTATUS(status)
						       : WTERMSIG(status));
		if (fs_write_all(fd, line, (size_t)len, -1) < 0)
			fprintf(stderr, "berth: support-bundle: %s: %s\n", name, strerror(errno));
	}
	close(fd);
}

static void redacted_json(struct bundle *b, const char *name, const char *src)
{
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	struct strbuf out = STRBUF_INIT;
	if (fs_read_file(src, BUNDLE_FILE_MAX, &text, &len, &err) < 0 ||
	    redact_json(text, len, src, &b->secrets, &out, &err) < 0) {
		/* Not JSON: nothing of it goes in, as anything in it may be secret. */
		strbuf_reset(&out);
		if (strbuf_printf(&out, "%s\n", err.msg) < 0) {
			strbuf_release(&out);
			return;
		}
	} else if (strbuf_puts(&out, "\n") < 0) {
		strbuf_release(&out);
		return;
	}
	write_part(b, name, out.buf, out.len);
	strbuf_release(&out);
}

static void module_logs(struct bundle *b)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/list.json", b->dir);
	yajl_val list = NULL;
	struct berr err;
	if (json_parse_file(path, BUNDLE_FILE_MAX, &list, &err) < 0)
		return;	      /* list.json says why */
	yajl_val mods = list; /* an array of modules, as edgeAgent reports them */
	for (size_t i = 0; mods && YAJL_IS_ARRAY(mods) && i < mods->u.array.len; i++) {
		const char *name = json_str(json_get(mods->u.array.values[i], "name"));
		if (!name || !fs_name_is_plain(name) || strlen(name) > 128)
			continue;
		char part[200];
		snprintf(part, sizeof(part), "logs/%s.log", name);
		const char *args[] = {
		    "logs", name, "--timestamps", "--since", b->since[0] ? b->since : "0", NULL};
		capture(b, part, args);
	}
	yajl_tree_free(list);
}

static void daemon_log(struct bundle *b, const char *file)
{
	if (file) {
		copy_part(b, "logs/daemon.log", file);
		return;
	}
	/* systemd's journal, else the log file of packaging/berth.init. */
	if (access("/run/systemd/system", F_OK) == 0) {
		int fd = open_part(b, "logs/daemon.log");
		if (fd < 0)
			return;
		char since[40];
		snprintf(since, sizeof(since), "@%s", b->since[0] ? b->since : "0");
		const char *argv[] = {"journalctl",	   "--no-pager", "-o",
				      "short-iso-precise", "-u",	 "berth",
				      "--since",	   since,	 NULL};
		int status;
		if (run_into(fd, argv, &status) < 0)
			dprintf(fd, "journalctl: %s\n", strerror(errno));
		close(fd);
		return;
	}
	copy_part(b, "logs/daemon.log", "/var/log/berth.log");
}

static void host_facts(struct bundle *b, const struct agent_config *cfg)
{
	struct utsname u;
	struct strbuf t = STRBUF_INIT;
	if (uname(&u) == 0)
		(void)strbuf_printf(&t, "%s %s %s %s %s\n", u.sysname, u.nodename, u.release,
				    u.version, u.machine);
	const char *dirs[] = {b->root, cfg ? cfg->hub_store : NULL, "/sys/fs/cgroup"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct statvfs sv;
		if (dirs[i] && statvfs(dirs[i], &sv) == 0)
			(void)strbuf_printf(
			    &t, "%s: %llu of %llu bytes free, %llu of %llu inodes\n", dirs[i],
			    (unsigned long long)sv.f_bavail * sv.f_frsize,
			    (unsigned long long)sv.f_blocks * sv.f_frsize,
			    (unsigned long long)sv.f_favail, (unsigned long long)sv.f_files);
	}
	if (t.buf)
		write_part(b, "host/uname-and-disks.txt", t.buf, t.len);
	strbuf_release(&t);
	static const char *const files[][2] = {
	    {"host/os-release", "/etc/os-release"},
	    {"host/proc-version", "/proc/version"},
	    {"host/proc-cgroups", "/proc/cgroups"},
	    {"host/proc-self-cgroup", "/proc/self/cgroup"},
	    {"host/mountinfo", "/proc/self/mountinfo"},
	    {"host/meminfo", "/proc/meminfo"},
	    {"host/loadavg", "/proc/loadavg"},
	    {"host/uptime", "/proc/uptime"},
	    {"host/filesystems", "/proc/filesystems"},
	    {"host/cgroup2-controllers", "/sys/fs/cgroup/cgroup.controllers"},
	    {"host/cgroup2-unified-controllers", "/sys/fs/cgroup/unified/cgroup.controllers"},
	    {"host/pid-max", "/proc/sys/kernel/pid_max"},
	    {"host/user-namespaces-max", "/proc/sys/user/max_user_namespaces"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (access(files[i][1], R_OK) == 0)
			copy_part(b, files[i][0], files[i][1]);
}

/* Reads a part back, scrubbed. */
static int scrubbed(struct bundle *b, const char *name, struct strbuf *out)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", b->dir, name);
	cleanup_free char *text = NULL;
	size_t len = 0;
	struct berr err;
	if (fs_read_file(path, BUNDLE_FILE_MAX + 4096, &text, &len, &err) < 0)
		return strbuf_printf(out, "%s\n", err.msg);
	return redact_text(text, len, &b->secrets, out);
}

static int write_archive(struct bundle *b, const char *output, const char *top, struct berr *err)
{
	if (lazy_require(LAZY_ARCHIVE, err) < 0)
		return -1;
	struct archive *a = LAZY(archive_write_new)();
	if (!a)
		return berr_set(err, ENOMEM, "%s", output);
	int rc = LAZY(archive_write_add_filter_gzip)(a) != ARCHIVE_OK ||
			 LAZY(archive_write_set_format_pax_restricted)(a) != ARCHIVE_OK ||
			 (strcmp(output, "-") ? LAZY(archive_write_open_filename)(a, output)
					      : LAZY(archive_write_open_fd)(a, 1)) != ARCHIVE_OK
		     ? -1
		     : 0;
	time_t now = time(NULL);
	for (size_t i = 0; rc == 0 && i < b->n_files; i++) {
		struct strbuf body = STRBUF_INIT;
		struct archive_entry *e = LAZY(archive_entry_new)();
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", top, b->files[i]);
		if (!e || scrubbed(b, b->files[i], &body) < 0) {
			rc = -1;
		} else {
			LAZY(archive_entry_set_pathname)(e, path);
			LAZY(archive_entry_set_filetype)(e, AE_IFREG);
			LAZY(archive_entry_set_perm)(e, 0600);
			LAZY(archive_entry_set_size)(e, (la_int64_t)body.len);
			LAZY(archive_entry_set_mtime)(e, now, 0);
			if (LAZY(archive_write_header)(a, e) != ARCHIVE_OK ||
			    (body.len && LAZY(archive_write_data)(a, body.buf, body.len) !=
					     (la_ssize_t)body.len))
				rc = -1;
		}
		if (e)
			LAZY(archive_entry_free)(e);
		strbuf_release(&body);
	}
	if (LAZY(archive_write_close)(a) != ARCHIVE_OK)
		rc = -1;
	if (rc < 0)
		berr_set(err, 0, "%s: %s", output,
			 LAZY(archive_error_string)(a) ? LAZY(archive_error_string)(a)
						       : "out of memory");
	LAZY(archive_write_free)(a);
	return rc;
}

static void bundle_free(struct bundle *b)
{
	struct berr err;
	if (b->dir[0] && fs_remove_tree(b->dir, &err) < 0)
		fprintf(stderr, "berth: support-bundle: %s\n", err.msg);
	for (size_t i = 0; i < b->n_files; i++)
		free(b->files[i]);
	redact_secrets_free(&b->secrets);
}

static int cmd_support_bundle(struct berth_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"since", required_argument, NULL, 's'},
					     {"daemon-log", required_argument, NULL, 'l'},
					     {"output", required_argument, NULL, 'o'},
					     {NULL, 0, NULL, 0}};
	const char *config = CONFIG_DEFAULT_PATH, *since = NULL, *dlog = NULL, *output = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			since = optarg;
			break;
		case 'l':
			dlog = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			return berth_usage("support-bundle");
		}
	}
	if (optind != argc)
		return berth_usage("support-bundle");
	struct bundle b = {.ctx = ctx, .root = ctx->root, .run = ctx->run};
	if (since) {
		int64_t ns;
		if (time_arg_parse(since, wall_ns(), &ns) < 0) {
			fprintf(stderr,
				"berth: support-bundle: --since %s: expected a duration back from "
				"now (10m, 1h30m), a Unix time or an RFC 3339 time\n",
				since);
			return 2;
		}
		snprintf(b.since, sizeof(b.since), "%lld.%09lld", (long long)(ns / 1000000000),
			 (long long)(ns % 1000000000));
	}
	char stamp[32], top[64], def_out[96];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(top, sizeof(top), "berth-support-bundle-%s", stamp);
	snprintf(def_out, sizeof(def_out), "%s.tar.gz", top);
	if (!output)
		output = def_out;
	umask(077);
	snprintf(b.dir, sizeof(b.dir), "/tmp/berth-bundle.XXXXXX");
	struct berr err;
	char logs[128];
	snprintf(logs, sizeof(logs), "%s/logs", b.dir);
	if (!mkdtemp(b.dir) || (snprintf(logs, sizeof(logs), "%s/logs", b.dir) < 0) ||
	    mkdir(logs, 0700) < 0 || (snprintf(logs, sizeof(logs), "%s/host", b.dir) < 0) ||
	    mkdir(logs, 0700) < 0) {
		fprintf(stderr, "berth: support-bundle: a directory under /tmp: %s\n",
			strerror(errno));
		b.dir[0] = '\0';
		return 1;
	}

	/* The config first: its secrets are what every other part is scrubbed of. */
	struct agent_config *cfg = NULL;
	if (agent_config_load(config, &cfg, &err) < 0)
		cfg = NULL;
	if (cfg && !ctx->root_set)
		b.root = cfg->root;
	if (cfg && !ctx->run_set)
		b.run = cfg->run;
	redacted_json(&b, "config.json", config);
	char path[4200];
	snprintf(path, sizeof(path), "%s/agent/deployment.json", b.root);
	redacted_json(&b, "deployment.json", path);
	if (cfg && cfg->deployment_file)
		redacted_json(&b, "deployment-file.json", cfg->deployment_file);

	const char *check[] = {"check", "--config", config, NULL};
	const char *list[] = {"list", "--json", NULL};
	const char *queues[] = {"queues", "--json", NULL};
	const char *version[] = {"version", NULL};
	capture(&b, "version.txt", version);
	capture(&b, "check.txt", check);
	capture(&b, "list.json", list);
	capture(&b, "queues.json", queues);
	module_logs(&b);
	daemon_log(&b, dlog);
	host_facts(&b, cfg);
	agent_config_free(cfg);

	int rc = 0;
	if (b.secrets.overflow) {
		char msg[160];
		int n =
		    snprintf(msg, sizeof(msg),
			     "more secrets than the bundle keeps track of: the other files were "
			     "scrubbed of the first %d only\n",
			     REDACT_SECRETS_MAX);
		write_part(&b, "WARNING.txt", msg, (size_t)n);
	}
	if (write_archive(&b, output, top, &err) < 0) {
		fprintf(stderr, "berth: support-bundle: %s\n", err.msg);
		if (strcmp(output, "-"))
			unlink(output);
		rc = 1;
	} else if (strcmp(output, "-")) {
		fprintf(stderr, "support bundle written to %s\n", output);
	}
	bundle_free(&b);
	return rc;
}
BERTH_COMMAND_NAMED(support_bundle, "support-bundle", BUNDLE_USAGE,
		    "gather logs, status, redacted config and host facts into one .tar.gz",
		    cmd_support_bundle);
