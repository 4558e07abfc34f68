#include "agent/status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *runtime_status_name(enum runtime_status s)
{
	static const char *const names[] = {
	    [RT_UNKNOWN] = "unknown", [RT_RUNNING] = "running", [RT_STOPPED] = "stopped",
	    [RT_BACKOFF] = "backoff", [RT_FAILED] = "failed",	[RT_UNHEALTHY] = "unhealthy"};
	return (size_t)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

int64_t backoff_delay_ms(int64_t unit_ms, unsigned restart_count)
{
	if (unit_ms <= 0)
		return 0;
	int64_t d = unit_ms;
	for (unsigned i = 0; i < restart_count; i++) {
		if (d >= BACKOFF_MAX_MS)
			break;
		d *= 2;
	}
	return d > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d;
}

bool restart_policy_restarts(enum restart_policy p, int exit_code)
{
	switch (p) {
	case RESTART_NEVER:
		return false;
	case RESTART_ON_FAILURE:
	case RESTART_ON_UNHEALTHY:
		return exit_code != 0;
	case RESTART_ALWAYS:
		return true;
	}
	return false;
}

enum runtime_status status_after_exit(enum restart_policy p, int exit_code, unsigned restart_count)
{
	if (restart_policy_restarts(p, exit_code))
		return restart_count >= RESTARTS_MAX ? RT_FAILED : RT_BACKOFF;
	return exit_code ? RT_FAILED : RT_STOPPED;
}

enum runtime_status status_after_unhealthy_stop(unsigned restart_count)
{
	return restart_count >= RESTARTS_MAX ? RT_FAILED : RT_BACKOFF;
}

void status_add_health(char *desc, size_t cap, const char *health)
{
	size_t len = strlen(desc);
	if (!health || !strcmp(health, "none") || len >= cap)
		return;
	snprintf(desc + len, cap - len, !strcmp(health, "starting") ? " (health: %s)" : " (%s)",
		 health);
}

void format_duration(int64_t ms, char *out, size_t cap)
{
	int64_t s = ms < 0 ? 0 : ms / 1000;
	static const struct {
		int64_t secs;
		const char *unit;
	} units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s >= units[i].secs || units[i].secs == 1) {
			long long n = (long long)(s / units[i].secs);
			snprintf(out, cap, "%lld %s%s", n, units[i].unit, n == 1 ? "" : "s");
			return;
		}
	}
}

void status_description(enum runtime_status s, int exit_code, int64_t started_ms, int64_t exited_ms,
			int64_t now_ms, char *out, size_t cap)
{
	char d[64];
	switch (s) {
	case RT_RUNNING:
		format_duration(now_ms - started_ms, d, sizeof(d));
		snprintf(out, cap, "Up %s", d);
		return;
	case RT_STOPPED:
		if (!exited_ms) {
			snprintf(out, cap, "Stopped");
			return;
		}
		format_duration(now_ms - exited_ms, d, sizeof(d));
		snprintf(out, cap, "Stopped %s ago", d);
		return;
	case RT_FAILED:
	case RT_BACKOFF:
		if (!exited_ms) {
			snprintf(out, cap, "%s", s == RT_FAILED ? "Failed" : "Backoff");
			return;
		}
		format_duration(now_ms - exited_ms, d, sizeof(d));
		snprintf(out, cap, "%s (%d) %s ago", s == RT_FAILED ? "Failed" : "Backoff",
			 exit_code, d);
		return;
	case RT_UNHEALTHY:
		snprintf(out, cap, "Unhealthy");
		return;
	case RT_UNKNOWN:
		break;
	}
	snprintf(out, cap, "Unknown");
}

void format_utc(int64_t ms, char *out, size_t cap)
{
	if (ms <= 0) {
		snprintf(out, cap, "%s", "");
		return;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
