/* Private to agent/: a module's runtime status as edgeAgent reports it, the restart policy
 * with edgeAgent's backoff, and the DESCRIPTION column of `berth list`.
 * Pure functions of their inputs, so they are tested without a daemon. */
#ifndef BERTH_AGENT_STATUS_H
#define BERTH_AGENT_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/deployment.h"

#define BACKOFF_MAX_MS	 (300 * 1000)
#define HEALTHY_RESET_MS (10 * 60 * 1000) /* running this long resets restartCount */
#define RESTARTS_MAX	 20		  /* then the module is failed */

enum runtime_status {
	RT_UNKNOWN,
	RT_RUNNING,
	RT_STOPPED,
	RT_BACKOFF,
	RT_FAILED,
	RT_UNHEALTHY,
};

const char *runtime_status_name(enum runtime_status s);

/* min(unit * 2^restart_count, 300 s), without overflow. */
int64_t backoff_delay_ms(int64_t unit_ms, unsigned restart_count);

/* Whether the policy restarts a module that exited with exit_code:
 * on-unhealthy restarts what on-failure restarts, and an instance its shim
 * stopped for being unhealthy (status_after_unhealthy_stop). */
bool restart_policy_restarts(enum restart_policy p, int exit_code);

/* What follows an exit: RT_BACKOFF (restart after the delay), RT_FAILED (a
 * non-zero exit not restarted, or too many restarts) or RT_STOPPED. */
enum runtime_status status_after_exit(enum restart_policy p, int exit_code, unsigned restart_count);

/* After the shim stopped an unhealthy instance (only under on-unhealthy):
 * RT_BACKOFF, or RT_FAILED after too many restarts, whatever its exit code. */
enum runtime_status status_after_unhealthy_stop(unsigned restart_count);

/* Appends " (healthy)", " (unhealthy)" or " (health: starting)" as Docker
 * shows a running container with a health check; nothing for "none". */
void status_add_health(char *desc, size_t cap, const char *health);

/* "Up 3 minutes", "Stopped", "Stopped 2 hours ago", "Failed (137) 2 minutes ago",
 * "Backoff (1) 4 seconds ago". Times are Unix ms; 0 means unknown. */
void status_description(enum runtime_status s, int exit_code, int64_t started_ms, int64_t exited_ms,
			int64_t now_ms, char *out, size_t cap);

/* "3 minutes", "1 hour", "12 seconds" for a duration in ms. */
void format_duration(int64_t ms, char *out, size_t cap);

/* "2024-05-01T12:00:00.000Z", or "" for 0. */
void format_utc(int64_t ms, char *out, size_t cap);

#endif
