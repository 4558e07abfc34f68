/* state.json: what the shim records about its instance, written atomically
 * on every change, read by the daemon (also after a restart of its own). */
#include "shim/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "shim/instance.h"

#define STATE_MAX (64 * 1024)

static const char *const status_names[] = {
    [INSTANCE_CREATED] = "created",
    [INSTANCE_RUNNING] = "running",
    [INSTANCE_EXITED] = "exited",
    [INSTANCE_UNKNOWN] = "unknown",
};

const char *instance_status_name(enum instance_status s)
{
	return s <= INSTANCE_UNKNOWN ? status_names[s] : "unknown";
}

/* The state letter and start time (field 22, clock ticks since boot) of a
 * process from /proc/<pid>/stat. */
static int proc_stat(pid_t pid, char *state, int64_t *start)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char buf[1024];
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields start after
	 * the last ')', with field 3 (the state) first. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -1;
	*state = p[2];
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	*start = strtoll(p + 1, NULL, 10);
	return 0;
}

int64_t proc_start_time(pid_t pid)
{
	char state;
	int64_t start;
	return proc_stat(pid, &state, &start) == 0 ? start : -1;
}

bool shim_alive(const struct instance_state *st)
{
	char state;
	int64_t start;
	if (st->shim_pid <= 0 || st->shim_start_time <= 0 ||
	    proc_stat(st->shim_pid, &state, &start) < 0)
		return false;
	/* An exited shim nobody has reaped yet is not alive. */
	return start == st->shim_start_time && state != 'Z' && state != 'X';
}

/* "health": {"status", "failing_streak", "exit_code", "checked_at",
 * "output"} and "stopped_unhealthy", when the instance has a check. */
static int gen_health(yajl_gen g, const struct instance_state *st)
{
	if (st->health == HEALTH_NONE)
		return 0;
	if (json_gen_str(g, "health") < 0 || yajl_gen_map_open(g) != yajl_gen_status_ok ||
	    json_gen_key_str(g, "status", health_status_name(st->health)) < 0 ||
	    json_gen_key_int(g, "failing_streak", st->health_failing_streak) < 0 ||
	    json_gen_key_int(g, "exit_code", st->health_exit_code) < 0 ||
	    json_gen_key_int(g, "checked_at", st->health_checked_at) < 0 ||
	    json_gen_key_str(g, "output", st->health_output) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok)
		return -1;
	return json_gen_key_bool(g, "stopped_unhealthy", st->stopped_unhealthy);
}

static int parse_health(yajl_val v, struct instance_state *st, struct berr *err)
{
	yajl_val h = NULL;
	const char *status = NULL, *output = NULL;
	int64_t streak = 0, code = 0;
	if (json_get_obj(v, "health", "state", false, &h, err) < 0)
		return -1;
	if (!h)
		return 0;
	if (json_get_str(h, "status", "state.health", true, &status, err) < 0 ||
	    json_get_i64(h, "failing_streak", "state.health", false, &streak, err) < 0 ||
	    json_get_i64(h, "exit_code", "state.health", false, &code, err) < 0 ||
	    json_get_i64(h, "checked_at", "state.health", false, &st->health_checked_at, err) < 0 ||
	    json_get_str(h, "output", "state.health", false, &output, err) < 0 ||
	    json_get_bool(v, "stopped_unhealthy", "state", false, &st->stopped_unhealthy, err) < 0)
		return -1;
	if (streak < 0 || streak > INT32_MAX || code < -1 || code > 255)
		return berr_set(err, 0, "state.health: value out of range");
	for (int s = HEALTH_STARTING; s <= HEALTH_UNHEALTHY; s++)
		if (!strcmp(status, health_status_name((enum health_status)s)))
			st->health = (enum health_status)s;
	st->health_failing_streak = (int)streak;
	st->health_exit_code = (int)code;
	if (output)
		snprintf(st->health_output, sizeof(st->health_output), "%s", output);
	return 0;
}

int state_write(const char *dir, const struct instance_state *st, struct berr *err)
{
	yajl_gen g = json_gen_new(false);
	if (!g)
		return berr_set(err, ENOMEM, "state");
	int rc = yajl_gen_map_open(g) == yajl_gen_status_ok &&
			 json_gen_key_str(g, "status", instance_status_name(st->status)) == 0 &&
			 json_gen_key_int(g, "shim_pid", st->shim_pid) == 0 &&
			 json_gen_key_int(g, "shim_start_time", st->shim_start_time) == 0 &&
			 json_gen_key_int(g, "pid", st->pid) == 0 &&
			 json_gen_key_int(g, "exit_code", st->exit_code) == 0 &&
			 json_gen_key_int(g, "exit_signal", st->exit_signal) == 0 &&
			 json_gen_key_bool(g, "oom_killed", st->oom_killed) == 0 &&
			 json_gen_key_int(g, "started_at", st->started_at) == 0 &&
			 json_gen_key_int(g, "finished_at", st->finished_at) == 0 &&
			 json_gen_key_str(g, "error", st->error) == 0 && gen_health(g, st) == 0 &&
			 yajl_gen_map_close(g) == yajl_gen_status_ok
		     ? 0
		     : -1;
	if (rc < 0) {
		yajl_gen_free(g);
		return berr_set(err, EINVAL, "state: cannot write JSON");
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/state.json", dir);
	return json_gen_write_file(g, path, 0644, "state", err);
}

int state_parse(const char *buf, size_t len, const char *what, struct instance_state *st,
		struct berr *err)
{
	memset(st, 0, sizeof(*st));
	st->status = INSTANCE_UNKNOWN;
	cleanup_yajl yajl_val v = NULL;
	if (json_parse(buf, len, STATE_MAX, what, &v, err) < 0)
		return -1;
	const char *status = NULL, *error = NULL;
	int64_t shim_pid = 0, pid = 0, code = 0, sig = 0;
	if (!YAJL_IS_OBJECT(v))
		return berr_set(err, 0, "%s: expected an object", what);
	if (json_get_str(v, "status", "state", true, &status, err) < 0 ||
	    json_get_str(v, "error", "state", false, &error, err) < 0 ||
	    json_get_i64(v, "shim_pid", "state", false, &shim_pid, err) < 0 ||
	    json_get_i64(v, "shim_start_time", "state", false, &st->shim_start_time, err) < 0 ||
	    json_get_i64(v, "pid", "state", false, &pid, err) < 0 ||
	    json_get_i64(v, "exit_code", "state", false, &code, err) < 0 ||
	    json_get_i64(v, "exit_signal", "state", false, &sig, err) < 0 ||
	    json_get_bool(v, "oom_killed", "state", false, &st->oom_killed, err) < 0 ||
	    json_get_i64(v, "started_at", "state", false, &st->started_at, err) < 0 ||
	    json_get_i64(v, "finished_at", "state", false, &st->finished_at, err) < 0 ||
	    parse_health(v, st, err) < 0)
		return berr_wrap(err, "%s", what);
	if (shim_pid < 0 || shim_pid > INT32_MAX || pid < 0 || pid > INT32_MAX || code < 0 ||
	    code > 255 || sig < 0 || sig > 64)
		return berr_set(err, 0, "%s: value out of range", what);
	st->shim_pid = (pid_t)shim_pid;
	st->pid = (pid_t)pid;
	st->exit_code = (int)code;
	st->exit_signal = (int)sig;
	if (error)
		snprintf(st->error, sizeof(st->error), "%s", error);
	for (int s = INSTANCE_CREATED; s <= INSTANCE_UNKNOWN; s++)
		if (!strcmp(status, status_names[s]))
			st->status = (enum instance_status)s;
	return 0;
}

int shim_state_read(const char *root, const char *name, struct instance_state *st, struct berr *err)
{
	memset(st, 0, sizeof(*st));
	st->status = INSTANCE_UNKNOWN;
	char dir[PATH_MAX], path[PATH_MAX + 16];
	if (instance_dir_path(root, name, dir, sizeof(dir), err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (fs_read_file(path, STATE_MAX, &data, &len, err) < 0)
		return berr_wrap(err, "instance %s", name);
	if (state_parse(data, len, path, st, err) < 0)
		return -1;
	if ((st->status == INSTANCE_CREATED || st->status == INSTANCE_RUNNING) && !shim_alive(st)) {
		st->status = INSTANCE_EXITED;
		st->exit_code = 255;
		snprintf(st->error, sizeof(st->error),
			 "the shim (pid %d) died without recording the instance's exit",
			 (int)st->shim_pid);
	}
	return 0;
}
