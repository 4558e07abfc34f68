/* Runs a program as if on a Linux older than 5.2: every system call added
 * since (the new mount API, clone3, openat2, close_range, pidfds, ...)
 * fails with ENOSYS, so berth takes its fallback paths. Built by the tests
 * (gcc ... -lseccomp); the filter stays on for everything the program runs.
 *
 *   old_kernel PROGRAM [ARG...] */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const newer[] = {
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",    /* 5.2 */
    "clone3", "pidfd_open", "pidfd_send_signal",			     /* 5.1-5.3 */
    "openat2", "pidfd_getfd", "faccessat2", "close_range", "epoll_pwait2",   /* 5.6-5.11 */
    "mount_setattr", "process_madvise", "landlock_create_ruleset",	     /* 5.10-5.13 */
    "landlock_add_rule", "landlock_restrict_self", "memfd_secret", "futex_waitv",
    "process_mrelease", "set_mempolicy_home_node", "cachestat", "fchmodat2",
    "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "statmount",
    "listmount", "mseal",
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: old_kernel PROGRAM [ARG...]\n");
		return 2;
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return 1;
	for (size_t i = 0; i < sizeof(newer) / sizeof(newer[0]); i++) {
		int nr = seccomp_syscall_resolve_name(newer[i]);
		if (nr != __NR_SCMP_ERROR &&
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0) < 0) {
			fprintf(stderr, "old_kernel: rule for %s\n", newer[i]);
			return 1;
		}
	}
	if (seccomp_load(ctx) < 0) {
		fprintf(stderr, "old_kernel: cannot load the filter\n");
		return 1;
	}
	seccomp_release(ctx);
	/* The filter must be in force, or the test would prove nothing. */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS ||
	    syscall(SYS_open_tree, -1, "", 0) != -1 || errno != ENOSYS) {
		fprintf(stderr, "old_kernel: the filter is not in force\n");
		return 1;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "old_kernel: exec %s: %s\n", argv[1], strerror(errno));
	return 127;
}
