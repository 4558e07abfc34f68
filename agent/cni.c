/* Running the CNI plugins of a network configuration list (see cni.h). A
 * plugin is a program found in CNI_PATH by its "type"; it gets its
 * configuration on stdin and answers on stdout, and it may take a while
 * (iptables waits for the xtables lock), so its output is read with a bound
 * and within CNI_TIMEOUT_MS, after which it is killed. */
#include "agent/cni.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/names.h"
#include "common/strbuf.h"

#define CNI_CONFIG_MAX (1024 * 1024)
#define CNI_STDERR_MAX 2048
#define DEFAULT_PATH   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

/* What a finished plugin left. */
struct run_output {
	struct strbuf out; /* stdout, at most CNI_RESULT_MAX */
	char err[CNI_STDERR_MAX];
	size_t err_len;
	int status; /* as waitpid gives it */
};

/* The first of path's directories that holds an executable `name`. */
static int find_program(const char *path, const char *name, bool plugin, char *out, size_t cap,
			struct berr *err)
{
	if (!chars_valid(name, "_.-", 64))
		return berr_set(err, 0, "CNI plugin type \"%.64s\" is not a program name", name);
	for (const char *dir = path; *dir;) {
		size_t n = strcspn(dir, ":");
		if (n && (size_t)snprintf(out, cap, "%.*s/%s", (int)n, dir, name) < cap &&
		    access(out, X_OK) == 0)
			return 0;
		dir += n + (dir[n] == ':');
	}
	if (!plugin)
		return berr_set(err, ENOENT, "%s not found in %s", name, path);
	return berr_set(err, ENOENT,
			"CNI plugin %s not found in %s (install containernetworking-plugins, or "
			"set cni_path in the config)",
			name, path);
}

static void close_pipes(int p[3][2])
{
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (p[i][j] >= 0) {
				close(p[i][j]);
				p[i][j] = -1;
			}
}

/* Feeds input to the child, collects its output, waits for its exit;
 * kills it at the deadline or when it says too much. */
static int collect(pid_t pid, int in, int out, int errfd, const char *input, struct run_output *o,
		   const char *what, struct berr *err)
{
	size_t in_len = input ? strlen(input) : 0, in_off = 0;
	int64_t deadline = boot_ms() + CNI_TIMEOUT_MS;
	const char *failed = NULL;
	int fail_code = 0;
	if (!in_len) {
		close(in);
		in = -1;
	}
	while ((out >= 0 || errfd >= 0) && !failed) {
		struct pollfd pf[3] = {{.fd = in, .events = POLLOUT},
				       {.fd = out, .events = POLLIN},
				       {.fd = errfd, .events = POLLIN}};
		int64_t left = deadline - boot_ms();
		if (left <= 0) {
			failed = "did not finish in time";
			fail_code = ETIMEDOUT;
			break;
		}
		int n = poll(pf, 3, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			failed = "poll";
			fail_code = errno;
			break;
		}
		if (in >= 0 && (pf[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(in, input + in_off, in_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if (w < 0 || in_off == in_len) {
				close(in);
				in = -1;
			}
		}
		if (out >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[8192];
			ssize_t r = read(out, buf, sizeof(buf));
			if (r > 0 && strbuf_append(&o->out, buf, (size_t)r) < 0) {
				failed = "answered more than the limit";
				fail_code = EFBIG;
			}
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				close(out);
				out = -1;
			}
		}
		if (errfd >= 0 && (pf[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[2048];
			ssize_t r = read(errfd, buf, sizeof(buf));
			if (r > 0) {
				size_t room = sizeof(o->err) - 1 - o->err_len;
				size_t take = (size_t)r < room ? (size_t)r : room;
				memcpy(o->err + o->err_len, buf, take);
				o->err_len += take;
				o->err[o->err_len] = '\0';
			}
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				close(errfd);
				errfd = -1;
			}
		}
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (errfd >= 0)
		close(errfd);
	if (failed)
		kill(pid, SIGKILL);
	while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
		;
	if (failed)
		return berr_set(err, fail_code, "%s: %s", what, failed);
	return 0;
}

/* Runs prog with argv and env, input on its stdin. */
static int run_program(const char *prog, char *const argv[], char *const envp[], const char *input,
		       struct run_output *o, const char *what, struct berr *err)
{
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			int e = errno;
			close_pipes(p);
			return berr_set(err, e, "%s: pipe", what);
		}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
	posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
	/* The daemon's signal handling is its own; the plugin starts clean. */
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, prog, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		close_pipes(p);
		return berr_set(err, rc, "%s: run %s", what, prog);
	}
	int in = take_fd(&p[0][1]), out = take_fd(&p[1][0]), errfd = take_fd(&p[2][0]);
	close_pipes(p);
	fcntl(in, F_SETFL, O_NONBLOCK);
	return collect(pid, in, out, errfd, input, o, what, err);
}

/* Why a plugin failed: its error object, else its stderr, else its status. */
static int plugin_failed(const struct run_output *o, const char *what, struct berr *err)
{
	char msg[700];
	cni_error_message(o->out.buf ? o->out.buf : "", o->out.len, msg, sizeof(msg));
	if (!msg[0] && o->err_len) {
		size_t n = strcspn(o->err, "\n");
		snprintf(msg, sizeof(msg), "%.*s", (int)(n < 600 ? n : 600), o->err);
	}
	if (!msg[0]) {
		if (WIFSIGNALED(o->status))
			snprintf(msg, sizeof(msg), "killed by signal %d", WTERMSIG(o->status));
		else
			snprintf(msg, sizeof(msg), "exited with status %d", WEXITSTATUS(o->status));
	}
	return berr_set(err, 0, "%s: %s", what, msg);
}

static int env_add(char **env, size_t *n, const char *key, const char *value)
{
	if (asprintf(&env[*n], "%s=%s", key, value) < 0) {
		env[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* One plugin's configuration: its object from the list, with the list's
 * name and cniVersion, and prevResult when there is one. */
static char *plugin_config(yajl_val plugin, const char *name, const char *version, yajl_val prev)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return NULL;
	int bad = yajl_gen_map_open(g) != yajl_gen_status_ok;
	for (size_t i = 0; !bad && i < plugin->u.object.len; i++) {
		const char *k = plugin->u.object.keys[i];
		if (!strcmp(k, "name") || !strcmp(k, "cniVersion") || !strcmp(k, "prevResult"))
			continue;
		bad = json_gen_str(g, k) < 0 || json_gen_val(g, plugin->u.object.values[i]) < 0;
	}
	if (!bad)
		bad = json_gen_key_str(g, "cniVersion", version) < 0 ||
		      json_gen_key_str(g, "name", name) < 0;
	if (!bad && prev)
		bad = json_gen_str(g, "prevResult") < 0 || json_gen_val(g, prev) < 0;
	if (!bad)
		bad = yajl_gen_map_close(g) != yajl_gen_status_ok;
	char *text = bad ? NULL : json_gen_done(g, NULL);
	return text;
}

/* Runs one plugin for call; on success *out is its stdout. */
static int run_plugin(const struct cni_call *call, yajl_val plugin, const char *net_name,
		      const char *version, yajl_val prev, char **out, struct berr *err)
{
	const char *type = json_str(json_get(plugin, "type"));
	if (!type)
		return berr_set(err, 0, "CNI network %s: a plugin without a type", net_name);
	char what[160];
	snprintf(what, sizeof(what), "CNI plugin %s %s", type, call->command);
	char prog[PATH_MAX];
	if (find_program(call->path, type, true, prog, sizeof(prog), err) < 0)
		return -1;
	cleanup_free char *config = plugin_config(plugin, net_name, version, prev);
	if (!config)
		return berr_set(err, ENOMEM, "%s: configuration", what);
	const char *path_env = getenv("PATH");
	char *env[8] = {0};
	size_t n = 0;
	int bad = env_add(env, &n, "CNI_COMMAND", call->command) < 0 ||
		  env_add(env, &n, "CNI_CONTAINERID", call->container_id) < 0 ||
		  env_add(env, &n, "CNI_NETNS", call->netns) < 0 ||
		  env_add(env, &n, "CNI_IFNAME", call->ifname) < 0 ||
		  env_add(env, &n, "CNI_PATH", call->path) < 0 ||
		  env_add(env, &n, "PATH", path_env && *path_env ? path_env : DEFAULT_PATH) < 0;
	int rc = -1;
	struct run_output o = {.out = STRBUF_INIT};
	o.out.max = CNI_RESULT_MAX;
	if (bad) {
		berr_set(err, ENOMEM, "%s", what);
	} else {
		char *argv[] = {prog, NULL};
		rc = run_program(prog, argv, env, config, &o, what, err);
		if (rc == 0 && !(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0))
			rc = plugin_failed(&o, what, err);
	}
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	if (rc == 0)
		*out = strbuf_detach(&o.out);
	strbuf_release(&o.out);
	return rc;
}

int cni_run(const struct cni_call *call, const char *conflist, const char *prev_result,
	    char **result, struct berr *err)
{
	if (result)
		*result = NULL;
	cleanup_yajl yajl_val list = NULL, prev = NULL;
	if (json_parse(conflist, strlen(conflist), CNI_CONFIG_MAX, "CNI configuration", &list,
		       err) < 0)
		return -1;
	const char *name = json_str(json_get(list, "name"));
	const char *version = json_str(json_get(list, "cniVersion"));
	yajl_val plugins = json_get(list, "plugins");
	if (!name || !version || !YAJL_IS_ARRAY(plugins))
		return berr_set(err, 0, "CNI configuration: expected name, cniVersion and plugins");
	if (prev_result && json_parse_limited(prev_result, strlen(prev_result), CNI_RESULT_MAX,
					      CNI_RESULT_MAX, "CNI result", &prev, err) < 0)
		return -1;
	size_t np = plugins->u.array.len;
	bool add = !strcmp(call->command, "ADD"), del = !strcmp(call->command, "DEL");
	cleanup_free char *last = NULL;
	int rc = 0;
	for (size_t k = 0; k < np; k++) {
		yajl_val plugin = plugins->u.array.values[del ? np - 1 - k : k];
		if (!YAJL_IS_OBJECT(plugin))
			return berr_set(err, 0, "CNI network %s: plugin %zu is not an object", name,
					k);
		const char *type = json_str(json_get(plugin, "type"));
		if (call->skip && type && !strcmp(type, call->skip))
			continue;
		char *out = NULL;
		struct berr e;
		if (run_plugin(call, plugin, name, version, prev, &out, &e) < 0) {
			if (rc == 0)
				*err = e;
			rc = -1;
			if (!del)
				return -1;
			continue;
		}
		if (!add) {
			free(out);
			continue;
		}
		/* Each result is the next plugin's prevResult, so it is checked
		 * before it goes on. */
		struct cni_result r;
		if (cni_result_parse(out, strlen(out), &r, &e) < 0) {
			free(out);
			return berr_set(err, e.code, "CNI network %s: plugin %zu: %s", name, k,
					e.msg);
		}
		if (prev)
			yajl_tree_free(prev);
		prev = NULL;
		if (json_parse_limited(out, strlen(out), CNI_RESULT_MAX, CNI_RESULT_MAX,
				       "CNI result", &prev, err) < 0) {
			free(out);
			return -1;
		}
		free(last);
		last = out;
	}
	if (add && result) {
		if (!last)
			return berr_set(err, 0, "CNI network %s: no plugins", name);
		*result = take_ptr(last);
	}
	return rc;
}

void cni_plugins_missing(const char *path, const char *const *names, char *missing, size_t cap,
			 bool *iptables)
{
	char prog[PATH_MAX];
	struct berr err;
	size_t n = 0;
	missing[0] = '\0';
	for (size_t i = 0; names[i]; i++)
		if (find_program(path, names[i], true, prog, sizeof(prog), &err) < 0 && n < cap)
			n += (size_t)snprintf(missing + n, cap - n, "%s%s", n ? " " : "", names[i]);
	const char *path_env = getenv("PATH");
	*iptables = find_program(path_env && *path_env ? path_env : DEFAULT_PATH, "iptables", false,
				 prog, sizeof(prog), &err) == 0;
}

int cni_run_tool(char *const argv[], struct berr *err)
{
	const char *path_env = getenv("PATH");
	char prog[PATH_MAX], what[128];
	snprintf(what, sizeof(what), "%s", argv[0]);
	if (find_program(path_env && *path_env ? path_env : DEFAULT_PATH, argv[0], false, prog,
			 sizeof(prog), err) < 0)
		return -1;
	struct run_output o = {.out = STRBUF_INIT};
	o.out.max = CNI_STDERR_MAX;
	int rc = run_program(prog, argv, environ, NULL, &o, what, err);
	if (rc == 0 && !(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0))
		rc = plugin_failed(&o, what, err);
	strbuf_release(&o.out);
	return rc;
}
