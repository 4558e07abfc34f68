/* LD_PRELOAD library for the daemon's clock tests. The file $CLOCKSHIFT_FILE
 * holds "WALL [BOOT]", read at every call: the wall clock (CLOCK_REALTIME,
 * time(), gettimeofday()) of the processes it is loaded in moves by WALL
 * seconds, as if the system time had been set; the boot and monotonic clocks
 * move by BOOT seconds, as if that much time had passed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The shift in seconds of the wall clock (which 0) or of the others (1). */
static long long shift_seconds(int which)
{
	const char *path = getenv("CLOCKSHIFT_FILE");
	if (!path)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	long long wall = strtoll(buf, &end, 10);
	return which == 0 ? wall : strtoll(end, NULL, 10);
}

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int rc = real_clock_gettime(id, ts);
	if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += shift_seconds(0);
	else if (rc == 0 && (id == CLOCK_BOOTTIME || id == CLOCK_MONOTONIC ||
			     id == CLOCK_MONOTONIC_COARSE))
		ts->tv_sec += shift_seconds(1);
	return rc;
}

time_t time(time_t *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out)
		*out = ts.tv_sec;
	return ts.tv_sec;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	(void)tz;
	return 0;
}
