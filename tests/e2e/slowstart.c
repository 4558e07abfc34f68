/* LD_PRELOAD library for the daemon's tests: a `berth hub` process it is
 * loaded in sleeps $SLOWSTART_MS before main(), so a test can reach the hub
 * in the moment between its start and the setup of its signal handling. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void slow_start(void)
{
	const char *ms = getenv("SLOWSTART_MS");
	char cmd[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (!ms || fd < 0)
		return;
	ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return;
	for (ssize_t i = 0; i + 4 < n; i++)
		if (!memcmp(cmd + i, "\0hub\0", 5)) {
			usleep((useconds_t)atoi(ms) * 1000);
			return;
		}
}
