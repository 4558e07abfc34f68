/* Private to shim/: health checks, run by the instance's shim through exec (exec.h), so they
 * cost the daemon nothing. Docker's rules: the first check runs an interval
 * after the start (the start interval during the start period), the next an
 * interval after the previous one ended; exit 0 is a success, anything else
 * (a check killed at its timeout included) a failure; `retries` failures in
 * a row make the instance unhealthy, a success makes it healthy, and while
 * it is still starting, failures within the start period do not count.
 * A check's output is kept up to HEALTH_OUTPUT_MAX bytes; past
 * HEALTH_READ_MAX the shim stops reading, so a check that floods its output
 * blocks and is killed at its timeout. */
#ifndef BERTH_SHIM_HEALTH_H
#define BERTH_SHIM_HEALTH_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shim/shim.h"

#define HEALTH_OUTPUT_MAX	      4096 /* as Docker keeps of a check's output */
#define HEALTH_READ_MAX		      (1 << 20)
#define HEALTH_INTERVAL_DEFAULT	      30000
#define HEALTH_TIMEOUT_DEFAULT	      30000
#define HEALTH_START_INTERVAL_DEFAULT 5000
#define HEALTH_RETRIES_DEFAULT	      3

/* The state the checks' results decide; pure functions of their inputs. */
struct health_check {
	enum health_status status;
	int failing_streak;
};

/* A check that started since_start_ms after the instance did ended with
 * exit_code (-1: killed at its timeout): the new state. True when status
 * or streak changed. */
bool health_apply(const struct instance_health *cfg, struct health_check *h, int exit_code,
		  int64_t since_start_ms);
/* How long after the previous check (or the start) the next one runs. */
int64_t health_delay_ms(const struct instance_health *cfg, const struct health_check *h,
			int64_t since_start_ms);

/* The checks of one instance, in the shim's loop. */
struct health_monitor {
	const struct instance_health *cfg;
	const struct instance_spec *spec;
	const char *dir;
	pid_t pid1;
	struct health_check state;
	int64_t start_mono;
	int64_t next_mono; /* the next check is due; 0: checks are off */
	/* The check under way. */
	pid_t pid;  /* 0: none */
	int out_fd; /* its stdout and stderr, -1 once closed */
	int64_t began_mono;
	int64_t deadline_mono;
	bool timed_out;
	size_t read_total;
	size_t out_len;
	char out[HEALTH_OUTPUT_MAX];
	/* The last result. */
	int last_exit;
	int64_t last_end_ms; /* Unix ms */
};

/* Starts the monitor for an instance whose pid 1 runs from now (no-op
 * without a check: health stays HEALTH_NONE). */
void health_init(struct health_monitor *m, const struct instance_spec *spec, const char *dir,
		 pid_t pid1);
/* Starts a check that is due, kills one past its timeout; *changed when a
 * check that could not start changed the state. Returns the next moment it
 * needs to run (monotonic ms; INT64_MAX: never). */
int64_t health_tick(struct health_monitor *m, int64_t now, bool *changed);
size_t health_poll(struct health_monitor *m, struct pollfd *pf, size_t cap);
void health_events(struct health_monitor *m, const struct pollfd *pf, size_t n);
/* A child of the shim exited: 1 when it was the check and the state
 * changed, 0 when it was the check and nothing changed, -1 when it was not
 * the check. */
int health_reaped(struct health_monitor *m, pid_t pid, int status);
/* Kills a check under way (the instance is stopping). */
void health_stop(struct health_monitor *m);
/* Copies the state into st for state.json. */
void health_to_state(const struct health_monitor *m, struct instance_state *st);

#endif
