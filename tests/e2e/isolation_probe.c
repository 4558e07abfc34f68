/* Runs inside an instance and reports whether privileged operations work.
 * Built statically by the tests (gcc -static) and put into a test image.
 * Each check prints "<name> ok" or "<name> <errno name>". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long rc)
{
	if (rc < 0)
		printf("%s %s\n", name, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	else
		printf("%s ok\n", name);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *what = argv[1];
	if (!strcmp(what, "mount")) {
		report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
	} else if (!strcmp(what, "keyctl")) {
		/* KEYCTL_JOIN_SESSION_KEYRING with a new anonymous keyring */
		report("keyctl", syscall(SYS_keyctl, 1, NULL, 0, 0, 0));
		report("add_key", syscall(SYS_add_key, "user", "probe", "x", 1, -3));
	} else if (!strcmp(what, "kexec")) {
		report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
	} else if (!strcmp(what, "ptrace") && argc > 2) {
		report("ptrace", ptrace(PTRACE_ATTACH, atoi(argv[2]), NULL, NULL));
	} else if (!strcmp(what, "write") && argc > 2) {
		int fd = open(argv[2], O_WRONLY);
		report("open", fd);
		if (fd >= 0)
			report("write", write(fd, "0", 1));
	} else if (!strcmp(what, "exe")) {
		/* Every /proc/<pid>/exe reachable, opened for writing. */
		DIR *d = opendir("/proc");
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			char p[64], name[80], target[256] = "";
			snprintf(p, sizeof(p), "/proc/%s/exe", de->d_name);
			ssize_t n = readlink(p, target, sizeof(target) - 1);
			if (n > 0)
				target[n] = '\0';
			snprintf(name, sizeof(name), "exe %s %s", de->d_name, target);
			int fd = open(p, O_WRONLY | O_APPEND);
			report(name, fd);
			if (fd >= 0)
				close(fd);
		}
	} else if (!strcmp(what, "fds")) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		int self = dirfd(d);
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || atoi(de->d_name) == self)
				continue;
			char p[64], target[256] = "";
			snprintf(p, sizeof(p), "/proc/self/fd/%s", de->d_name);
			ssize_t n = readlink(p, target, sizeof(target) - 1);
			if (n > 0)
				target[n] = '\0';
			printf("fd %s %s\n", de->d_name, target);
		}
	} else if (!strcmp(what, "zombies") && argc > 3) {
		/* Forks children that exit at once and are never waited for,
		 * until a fork fails or there are argv[2]; then lives argv[3] s. */
		int n = 0, want = atoi(argv[2]);
		while (n < want) {
			pid_t pid = fork();
			if (pid == 0)
				_exit(0);
			if (pid < 0)
				break;
			n++;
		}
		printf("zombies %d %s\n", n, n < want ? strerrorname_np(errno) : "ok");
		fflush(stdout);
		sleep((unsigned)atoi(argv[3]));
	} else {
		return 2;
	}
	return 0;
}
