#include "shim/health.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "common/log.h"
#include "shim/exec.h"
#include "shim/foreground.h"

const char *health_status_name(enum health_status s)
{
	static const char *const names[] = {[HEALTH_NONE] = "none",
					    [HEALTH_STARTING] = "starting",
					    [HEALTH_HEALTHY] = "healthy",
					    [HEALTH_UNHEALTHY] = "unhealthy"};
	return (size_t)s < ARRAY_SIZE(names) ? names[s] : "none";
}

static int64_t or_default(int64_t v, int64_t dflt)
{
	return v > 0 ? v : dflt;
}

bool health_apply(const struct instance_health *cfg, struct health_check *h, int exit_code,
		  int64_t since_start_ms)
{
	struct health_check before = *h;
	if (exit_code == 0) {
		h->failing_streak = 0;
		h->status = HEALTH_HEALTHY;
	} else if (!(h->status == HEALTH_STARTING && since_start_ms < cfg->start_period_ms)) {
		h->failing_streak++;
		if (h->failing_streak >= (cfg->retries > 0 ? cfg->retries : HEALTH_RETRIES_DEFAULT))
			h->status = HEALTH_UNHEALTHY;
	}
	return before.status != h->status || before.failing_streak != h->failing_streak;
}

int64_t health_delay_ms(const struct instance_health *cfg, const struct health_check *h,
			int64_t since_start_ms)
{
	if (h->status == HEALTH_STARTING && since_start_ms < cfg->start_period_ms)
		return or_default(cfg->start_interval_ms, HEALTH_START_INTERVAL_DEFAULT);
	return or_default(cfg->interval_ms, HEALTH_INTERVAL_DEFAULT);
}

void health_init(struct health_monitor *m, const struct instance_spec *spec, const char *dir,
		 pid_t pid1)
{
	memset(m, 0, sizeof(*m));
	m->out_fd = -1;
	m->cfg = &spec->health;
	m->spec = spec;
	m->dir = dir;
	m->pid1 = pid1;
	m->start_mono = mono_ms();
	if (!spec->health.test)
		return;
	m->state.status = HEALTH_STARTING;
	m->next_mono = m->start_mono + health_delay_ms(m->cfg, &m->state, 0);
}

/* The check's output as it arrives: the first HEALTH_OUTPUT_MAX bytes are
 * kept; after HEALTH_READ_MAX the pipe is closed. */
static void read_output(struct health_monitor *m)
{
	char buf[4096];
	while (m->out_fd >= 0) {
		ssize_t n = read(m->out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				close(m->out_fd);
				m->out_fd = -1;
			}
			return;
		}
		size_t room = sizeof(m->out) - m->out_len;
		size_t keep = (size_t)n < room ? (size_t)n : room;
		memcpy(m->out + m->out_len, buf, keep);
		m->out_len += keep;
		m->read_total += (size_t)n;
		if (m->read_total >= HEALTH_READ_MAX) {
			close(m->out_fd);
			m->out_fd = -1;
		}
	}
}

static void finish_check(struct health_monitor *m, int exit_code, int64_t now)
{
	m->last_exit = exit_code;
	m->last_end_ms = wall_ms();
	m->pid = 0;
	m->next_mono = now + health_delay_ms(m->cfg, &m->state, now - m->start_mono);
}

/* Starts a check: stdin an empty pipe, stdout and stderr one pipe the shim
 * reads. A check that cannot be started counts as a failed one, with the
 * status a shell would give (*code). */
static bool start_check(struct health_monitor *m, int64_t now, int *code)
{
	m->out_len = 0;
	m->read_total = 0;
	m->timed_out = false;
	m->began_mono = now;
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	struct berr err;
	bool started = false;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0) {
		berr_set(&err, errno, "health check: pipe");
	} else {
		/* The program's end blocks (the read end alone is non-blocking). */
		int fl = fcntl(out[1], F_GETFL);
		fcntl(out[1], F_SETFL, fl & ~O_NONBLOCK);
		close(in[1]);
		in[1] = -1;
		struct exec_request req = {.args = m->cfg->test};
		const int fds[3] = {in[0], out[1], out[1]};
		int64_t timeout = or_default(m->cfg->timeout_ms, HEALTH_TIMEOUT_DEFAULT);
		struct exec_proc p;
		if (exec_start(m->spec, m->dir, m->pid1, &req, fds,
			       timeout < EXEC_START_MS ? (int)timeout : EXEC_START_MS, &p,
			       &err) == 0) {
			m->pid = p.pid;
			m->out_fd = out[0];
			out[0] = -1;
			m->deadline_mono = now + timeout;
			started = true;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	if (!started) {
		*code = exec_status_of_error(&err);
		int n = snprintf(m->out, sizeof(m->out), "%s", err.msg);
		m->out_len = n > 0 ? (size_t)n : 0;
		if (m->out_len >= sizeof(m->out))
			m->out_len = sizeof(m->out) - 1;
	}
	return started;
}

static bool apply(struct health_monitor *m, int exit_code, int64_t now);

int64_t health_tick(struct health_monitor *m, int64_t now, bool *changed)
{
	*changed = false;
	if (!m->next_mono)
		return INT64_MAX;
	if (m->pid) {
		if (!m->timed_out && now >= m->deadline_mono) {
			/* The check and whatever it started in its session. */
			kill(-m->pid, SIGKILL);
			kill(m->pid, SIGKILL);
			m->timed_out = true;
		}
		return m->timed_out ? INT64_MAX : m->deadline_mono;
	}
	if (now < m->next_mono)
		return m->next_mono;
	int code = 0;
	if (!start_check(m, now, &code)) {
		*changed = apply(m, code, now);
		return m->next_mono;
	}
	return m->deadline_mono;
}

size_t health_poll(struct health_monitor *m, struct pollfd *pf, size_t cap)
{
	if (m->out_fd < 0 || cap == 0)
		return 0;
	pf[0] = (struct pollfd){.fd = m->out_fd, .events = POLLIN};
	return 1;
}

void health_events(struct health_monitor *m, const struct pollfd *pf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (pf[i].revents && pf[i].fd == m->out_fd)
			read_output(m);
}

static bool apply(struct health_monitor *m, int exit_code, int64_t now)
{
	bool changed = health_apply(m->cfg, &m->state, exit_code, m->began_mono - m->start_mono);
	finish_check(m, exit_code, now);
	if (changed)
		log_info("health check: %s (%d failing in a row; exit %d)",
			 health_status_name(m->state.status), m->state.failing_streak, exit_code);
	return changed;
}

int health_reaped(struct health_monitor *m, pid_t pid, int status)
{
	if (!m->pid || pid != m->pid)
		return -1;
	read_output(m);
	if (m->out_fd >= 0) {
		close(m->out_fd);
		m->out_fd = -1;
	}
	int code = m->timed_out ? -1 : exit_status_of(status);
	if (m->timed_out) {
		int n =
		    snprintf(m->out, sizeof(m->out), "health check exceeded its timeout (%lld ms)",
			     (long long)or_default(m->cfg->timeout_ms, HEALTH_TIMEOUT_DEFAULT));
		m->out_len = n > 0 && (size_t)n < sizeof(m->out) ? (size_t)n : 0;
	}
	return apply(m, code, mono_ms()) ? 1 : 0;
}

void health_stop(struct health_monitor *m)
{
	if (m->pid) {
		kill(-m->pid, SIGKILL);
		kill(m->pid, SIGKILL);
	}
	if (m->out_fd >= 0) {
		close(m->out_fd);
		m->out_fd = -1;
	}
	m->next_mono = 0;
}

void health_to_state(const struct health_monitor *m, struct instance_state *st)
{
	st->health = m->state.status;
	st->health_failing_streak = m->state.failing_streak;
	st->health_exit_code = m->last_exit;
	st->health_checked_at = m->last_end_ms;
	size_t n =
	    m->out_len < sizeof(st->health_output) - 1 ? m->out_len : sizeof(st->health_output) - 1;
	memcpy(st->health_output, m->out, n);
	st->health_output[n] = '\0';
	/* Output is shown on one line in listings. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)st->health_output[i] < 0x20 && st->health_output[i] != '\n')
			st->health_output[i] = ' ';
}
