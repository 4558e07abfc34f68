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

#endif
