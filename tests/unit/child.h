/* Running a check in a forked child: capabilities and seccomp filters cannot
 * be taken back, so each test changes a child and the runner stays as it was.
 * Inside the child, CHILD_CHECK reports the failed condition and exits 1;
 * cmocka's asserts (which longjmp into the runner) are for the parent only. */
#ifndef BERTH_TEST_CHILD_H
#define BERTH_TEST_CHILD_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_CHECK(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: child check failed: %s (errno %d: %s)\n",          \
				__FILE__, __LINE__, #cond, errno, strerror(errno));                \
			fflush(stderr);                                                            \
			_exit(1);                                                                  \
		}                                                                                  \
	} while (0)

/* Runs fn in a child; returns the child's wait status. */
static inline int child_run(void (*fn)(void *), void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* Runs fn in a child and asserts that it exited with status 0. */
#define CHILD_OK(fn, arg)                                                                          \
	do {                                                                                       \
		int st_ = child_run((fn), (arg));                                                  \
		assert_true(WIFEXITED(st_));                                                       \
		assert_int_equal(WEXITSTATUS(st_), 0);                                             \
	} while (0)

/* The hex value of a "Name:\t<hex>" line of /proc/self/status, or -1. */
static inline long long proc_status_hex(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t n = strlen(name);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 16);
			break;
		}
	}
	fclose(f);
	return v;
}

#endif
