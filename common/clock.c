#include "common/clock.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t boot_ms(void)
{
	return clock_ms(CLOCK_BOOTTIME);
}

int64_t boot_from_wall(int64_t wall)
{
	if (!wall)
		return 0;
	int64_t boot = boot_ms(), age = wall_ms() - wall;
	if (age < 0)
		age = 0;
	if (age >= boot)
		age = boot - 1;
	return boot - age;
}
