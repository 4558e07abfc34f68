/* The clocks berth reads, each named for what it is good for. Times that are
 * shown, stored or compared with another machine's (token expiry, twin
 * metadata, `lastStartTimeUtc`) are wall-clock times; intervals, timeouts and
 * deadlines use a clock that a change of the system time does not move. */
#ifndef BERTH_CLOCK_H
#define BERTH_CLOCK_H

#include <stdint.h>

/* CLOCK_REALTIME, Unix time in ms. It jumps when the system time is set. */
int64_t wall_ms(void);
/* CLOCK_MONOTONIC in ms: timeouts within one process. It stops while the
 * system is suspended. */
int64_t mono_ms(void);
/* CLOCK_BOOTTIME in ms: intervals that must count a suspend too (backoff,
 * uptime). It is the clock of a process's start time in /proc/<pid>/stat. */
int64_t boot_ms(void);
/* A past wall-clock time on the boot clock (0 stays 0; a time in the future
 * counts as now, one before the boot as the boot). */
int64_t boot_from_wall(int64_t wall);

/* CLOCK_REALTIME, Unix time in ns. */
int64_t wall_ns(void);

/* A point in time as `docker logs --since` takes it, in Unix ns: a duration
 * back from now_ns ("10m", "1h30m", "1.5s", Go's units ns us ms s m h), a
 * Unix time in seconds ("1714560000.5"), or RFC 3339 and its shorter forms
 * ("2024-05-01", "2024-05-01T12:00", "2024-05-01T12:00:00.5Z",
 * "...+02:00"; without a zone, local time). 0, or -1 when it is none of
 * these (at most 64 characters). */
int time_arg_parse(const char *s, int64_t now_ns, int64_t *out_ns);

#endif
