/* shim/seccomp*.c: the default profile and OCI profiles, each loaded in a
 * forked child that then tries syscalls. Calls that the filter must refuse
 * are made with arguments the kernel would reject harmlessly, so a filter
 * that let them through cannot change the machine. */
#include "unit.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <netinet/in.h>

#include "child.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "shim/seccomp_internal.h"
#include "shim/security.h"

#define BIT(c) (UINT64_C(1) << (c))

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* The capabilities of the engines' default set. */
static uint64_t default_caps(void)
{
	struct cap_sets s;
	struct berr err;
	if (caps_default_sets(NULL, NULL, false, &s, &err) < 0)
		abort();
	return s.effective;
}

static void load_default_or_die(uint64_t caps)
{
	struct berr err;
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	if (seccomp_load_default(caps, &err) < 0) {
		fprintf(stderr, "seccomp_load_default: %s\n", err.msg);
		_exit(2);
	}
}

/* ---- the default profile: status and refused calls ---- */

static void status_shows_filter(void *arg)
{
	load_default_or_die(default_caps());
	CHILD_CHECK(proc_status_hex("Seccomp") == 2);
	CHILD_CHECK(proc_status_hex("NoNewPrivs") == 1);
}

static void default_filter_shows_seccomp_2_in_proc_status(void **state)
{
	CHILD_OK(status_shows_filter, NULL);
}

/* One refused syscall: `call` runs after the default filter (with the
 * engines' default capabilities) and must fail with `want`. */
struct refusal {
	long (*call)(void);
	int want;
};

static void refused_in_child(void *arg)
{
	const struct refusal *r = arg;
	load_default_or_die(default_caps());
	errno = 0;
	long rc = r->call();
	CHILD_CHECK(rc == -1);
	CHILD_CHECK(errno == r->want);
}

#define REFUSED(test, errno_want, expr)                                                            \
	static long call_##test(void)                                                              \
	{                                                                                          \
		return (long)(expr);                                                               \
	}                                                                                          \
	static void test(void **state)                                                             \
	{                                                                                          \
		struct refusal r = {call_##test, errno_want};                                      \
		CHILD_OK(refused_in_child, &r);                                                    \
	}

REFUSED(mount_fails_with_eperm, EPERM,
	syscall(SYS_mount, "none", "/nonexistent-berth-test", "tmpfs", 0UL, NULL))
REFUSED(umount2_fails_with_eperm, EPERM, syscall(SYS_umount2, "/nonexistent-berth-test", 0))
REFUSED(keyctl_fails_with_eperm, EPERM, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0))
REFUSED(add_key_fails_with_eperm, EPERM,
	syscall(SYS_add_key, "no-such-type", "berth", "x", 1UL, -2))
REFUSED(request_key_fails_with_eperm, EPERM,
	syscall(SYS_request_key, "no-such-type", "berth", NULL, 0))
REFUSED(kexec_load_fails_with_eperm, EPERM, syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xdead0000UL))
REFUSED(unshare_user_namespace_fails_with_eperm, EPERM, unshare(CLONE_NEWUSER))
REFUSED(unshare_mount_namespace_fails_with_eperm, EPERM, unshare(CLONE_NEWNS))
REFUSED(setns_fails_with_eperm, EPERM, setns(-1, 0))
REFUSED(bpf_fails_with_eperm, EPERM, syscall(SYS_bpf, -1, NULL, 0))
REFUSED(perf_event_open_fails_with_eperm, EPERM, syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0))
REFUSED(open_by_handle_at_fails_with_eperm, EPERM, syscall(SYS_open_by_handle_at, -1, NULL, 0))
REFUSED(init_module_fails_with_eperm, EPERM, syscall(SYS_init_module, NULL, 0UL, ""))
REFUSED(finit_module_fails_with_eperm, EPERM, syscall(SYS_finit_module, -1, "", 0))
REFUSED(delete_module_fails_with_eperm, EPERM,
	syscall(SYS_delete_module, "no_such_module_berth", 0))
REFUSED(swapon_fails_with_eperm, EPERM, syscall(SYS_swapon, "/nonexistent-berth-test", 0))
REFUSED(swapoff_fails_with_eperm, EPERM, syscall(SYS_swapoff, "/nonexistent-berth-test"))
REFUSED(reboot_fails_with_eperm, EPERM, syscall(SYS_reboot, 0, 0, 0, NULL))
REFUSED(pivot_root_fails_with_eperm, EPERM,
	syscall(SYS_pivot_root, "/nonexistent-berth-a", "/nonexistent-berth-b"))
REFUSED(settimeofday_fails_with_eperm, EPERM, syscall(SYS_settimeofday, NULL, NULL))
REFUSED(clock_settime_fails_with_eperm, EPERM, syscall(SYS_clock_settime, -1, NULL))
REFUSED(acct_fails_with_eperm, EPERM, syscall(SYS_acct, "/nonexistent-berth-test"))
REFUSED(userfaultfd_fails_with_eperm, EPERM, syscall(SYS_userfaultfd, -1))
REFUSED(io_uring_setup_fails_with_eperm, EPERM, syscall(SYS_io_uring_setup, 0, NULL))
/* A length over HOST_NAME_MAX: the kernel would refuse it too. */
REFUSED(sethostname_fails_with_eperm, EPERM, syscall(SYS_sethostname, "berth-test", 1000UL))
REFUSED(vsock_socket_fails_with_eperm, EPERM, socket(AF_VSOCK, SOCK_STREAM, 0))
REFUSED(personality_read_implies_exec_fails_with_eperm, EPERM,
	syscall(SYS_personality, (unsigned long)READ_IMPLIES_EXEC))
REFUSED(clone_with_new_mount_namespace_fails_with_eperm, EPERM,
	syscall(SYS_clone, (unsigned long)(CLONE_NEWNS | SIGCHLD), NULL, NULL, NULL, 0))
REFUSED(clone_with_new_user_namespace_fails_with_eperm, EPERM,
	syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0))
REFUSED(clone3_fails_with_enosys_so_libc_falls_back, ENOSYS, syscall(SYS_clone3, NULL, 0))
#ifdef __x86_64__
REFUSED(iopl_fails_with_eperm, EPERM, syscall(SYS_iopl, 99))
#endif
/* mseal (462 on every architecture since Linux 6.10) is newer than every
 * syscall the profile names: ENOSYS, where the default action would say EPERM,
 * so a libc that tries it falls back. */
REFUSED(syscall_newer_than_the_profile_fails_with_enosys, ENOSYS, syscall(462, 0UL, 0UL, 0UL))

/* ptrace(PTRACE_ATTACH) against a sibling that only sleeps: refused by the
 * filter, and even if it were not, nothing the runner cares about. */
static void ptrace_attach(void *arg)
{
	pid_t target = *(pid_t *)arg;
	load_default_or_die(default_caps());
	errno = 0;
	CHILD_CHECK(ptrace(PTRACE_ATTACH, target, NULL, NULL) == -1);
	CHILD_CHECK(errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(SYS_process_vm_readv, target, NULL, 0UL, NULL, 0UL, 0UL) == -1);
	CHILD_CHECK(errno == EPERM);
}

static void ptrace_attach_fails_with_eperm(void **state)
{
	pid_t target = fork();
	assert_true(target >= 0);
	if (target == 0) {
		pause();
		_exit(0);
	}
	int st = child_run(ptrace_attach, &target);
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- ordinary work goes on ---- */

static void *thread_main(void *arg)
{
	int *v = arg;
	__atomic_store_n(v, 42, __ATOMIC_SEQ_CST);
	return NULL;
}

static void ordinary_work(void *arg)
{
	load_default_or_die(default_caps());

	/* files, pipes, memory */
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	char buf[64];
	CHILD_CHECK(read(fd, buf, sizeof(buf)) > 0);
	close(fd);
	int p[2];
	CHILD_CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHILD_CHECK(write(p[1], "x", 1) == 1);
	CHILD_CHECK(read(p[0], buf, 1) == 1 && buf[0] == 'x');
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(m != MAP_FAILED);
	memset(m, 1, 1 << 20);
	CHILD_CHECK(munmap(m, 1 << 20) == 0);

	/* sockets: inet and unix */
	int s4 = socket(AF_INET, SOCK_STREAM, 0);
	CHILD_CHECK(s4 >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHILD_CHECK(bind(s4, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHILD_CHECK(listen(s4, 1) == 0);
	close(s4);
	int sp[2];
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	CHILD_CHECK(send(sp[0], "y", 1, 0) == 1);
	CHILD_CHECK(recv(sp[1], buf, 1, 0) == 1 && buf[0] == 'y');

	/* epoll */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHILD_CHECK(ep >= 0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = sp[1]};
	CHILD_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sp[1], &ev) == 0);
	CHILD_CHECK(send(sp[0], "z", 1, 0) == 1);
	CHILD_CHECK(epoll_wait(ep, &ev, 1, 1000) == 1);

	/* threads (clone, or clone3 then clone) and futex (join) */
	pthread_t t;
	int v = 0;
	CHILD_CHECK(pthread_create(&t, NULL, thread_main, &v) == 0);
	CHILD_CHECK(pthread_join(t, NULL) == 0);
	CHILD_CHECK(__atomic_load_n(&v, __ATOMIC_SEQ_CST) == 42);

	/* randomness for libc and language runtimes */
	CHILD_CHECK(syscall(SYS_getrandom, buf, 16UL, 0U) == 16);

	/* the personality query and PER_LINUX */
	CHILD_CHECK(personality(0xffffffff) >= 0);
	CHILD_CHECK(personality(PER_LINUX) >= 0);

	/* fork and exec */
	pid_t pid = fork();
	CHILD_CHECK(pid >= 0);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st;
	CHILD_CHECK(waitpid(pid, &st, 0) == pid);
	CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void ordinary_syscalls_work_under_the_default_filter(void **state)
{
	CHILD_OK(ordinary_work, NULL);
}

/* ---- capabilities open syscalls ---- */

static void admin_may_mount(void *arg)
{
	load_default_or_die(default_caps() | BIT(CAP_SYS_ADMIN));
	/* The filter lets mount through; the kernel then finds no such path. */
	errno = 0;
	CHILD_CHECK(syscall(SYS_mount, "none", "/nonexistent-berth-test", "tmpfs", 0UL, NULL) ==
		    -1);
	CHILD_CHECK(errno == ENOENT);
	errno = 0;
	CHILD_CHECK(syscall(SYS_umount2, "/nonexistent-berth-test", 0) == -1);
	CHILD_CHECK(errno == ENOENT);
	/* clone with namespace flags is allowed too. */
	pid_t pid =
	    (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWNS | SIGCHLD), NULL, NULL, NULL, 0);
	CHILD_CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	int st;
	CHILD_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
}

static void with_cap_sys_admin_mount_and_namespace_clone_pass_the_filter(void **state)
{
	CHILD_OK(admin_may_mount, NULL);
}

static void ptrace_may_attach(void *arg)
{
	load_default_or_die(default_caps() | BIT(CAP_SYS_PTRACE));
	/* pid 0 does not exist: ESRCH comes from the kernel, past the filter. */
	errno = 0;
	CHILD_CHECK(ptrace(PTRACE_ATTACH, 0, NULL, NULL) == -1);
	CHILD_CHECK(errno == ESRCH);
}

static void with_cap_sys_ptrace_ptrace_passes_the_filter(void **state)
{
	CHILD_OK(ptrace_may_attach, NULL);
}

#ifdef __x86_64__
/* ---- 32-bit calls on x86_64 go through the same list ---- */

static long int80(long nr, long a, long b, long c)
{
	long rc;
	__asm__ volatile("int $0x80" : "=a"(rc) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return rc;
}

static void i386_calls_are_filtered(void *arg)
{
	/* i386 numbers: getpid 20, umount2 52, kexec_load 283. */
	long before = int80(20, 0, 0, 0);
	load_default_or_die(default_caps());
	if (before == getpid()) {
		CHILD_CHECK(int80(20, 0, 0, 0) == getpid());
		CHILD_CHECK(int80(52, 0, 0, 0) == -EPERM);
		CHILD_CHECK(int80(283, 0, 0, 0xdead0000L) == -EPERM);
		CHILD_CHECK(int80(1000, 0, 0, 0) == -ENOSYS);
	} else {
		/* No 32-bit emulation in this kernel: such calls cannot run at all. */
		CHILD_CHECK(int80(52, 0, 0, 0) < 0);
	}
}

static void int80_getpid(void *arg)
{
	signal(SIGSEGV, SIG_DFL); /* not cmocka's handler, which would go on in the child */
	_exit(int80(20, 0, 0, 0) == getpid() ? 0 : 1);
}

static void i386_syscalls_are_filtered_like_native_ones(void **state)
{
	/* A kernel built without IA32 emulation, or booted with
	 * ia32_emulation=0, answers int $0x80 with SIGSEGV: nothing to filter. */
	int st = child_run(int80_getpid, NULL);
	if (WIFSIGNALED(st)) {
		printf(
		    "    skipped: this kernel runs no 32-bit system calls (ia32_emulation off)\n");
		skip();
	}
	CHILD_OK(i386_calls_are_filtered, NULL);
}

/* x32 calls are x86_64 numbers with bit 30 set: mount is 165 there too. */
static void x32_calls_are_filtered(void *arg)
{
	load_default_or_die(default_caps());
	errno = 0;
	CHILD_CHECK(syscall(0x40000000L | 165, "none", "/nonexistent-berth-test", "tmpfs", 0UL,
			    NULL) == -1);
	CHILD_CHECK(errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(0x40000000L | 462 /* mseal */, 0UL, 0UL, 0UL) == -1);
	CHILD_CHECK(errno == ENOSYS);
}

static void x32_syscalls_are_filtered_like_native_ones(void **state)
{
	CHILD_OK(x32_calls_are_filtered, NULL);
}
#endif

/* Without no_new_privs the shim loads the filter while still root, then
 * switches ids and applies the capabilities under it. */
static void filter_then_uid_switch(void *arg)
{
	struct berr err;
	struct cap_sets s;
	CHILD_CHECK(caps_default_sets(NULL, NULL, false, &s, &err) == 0);
	if (seccomp_load_default(s.effective, &err) < 0) {
		fprintf(stderr, "seccomp_load_default: %s\n", err.msg);
		_exit(2);
	}
	CHILD_CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0);
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
	CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
	if (caps_apply(&s, &err) < 0) {
		fprintf(stderr, "caps_apply: %s\n", err.msg);
		_exit(3);
	}
	CHILD_CHECK(prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == 0);
	execl("/bin/sh", "sh", "-c",
	      "grep -q '^Seccomp:[[:space:]]*2$' /proc/self/status && "
	      "grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status",
	      (char *)NULL);
	_exit(4);
}

static void uid_switch_and_caps_apply_work_under_the_filter(void **state)
{
	CHILD_OK(filter_then_uid_switch, NULL);
}

static void without_no_new_privs_and_admin(void *arg)
{
	struct berr err;
	struct cap_sets s;
	CHILD_CHECK(caps_default_sets(NULL, NULL, false, &s, &err) == 0);
	CHILD_CHECK(caps_apply(&s, &err) == 0);
	CHILD_CHECK(seccomp_load_default(s.effective, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "no_new_privs") != NULL);
}

static void loading_without_no_new_privs_or_cap_sys_admin_is_explained(void **state)
{
	CHILD_OK(without_no_new_privs_and_admin, NULL);
}

/* ---- cost ---- */

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

struct timed {
	const char *what;
	struct seccomp_filter *prebuilt; /* NULL: build in the child */
};

static void timed_load(void *arg)
{
	const struct timed *t = arg;
	struct berr err;
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	long long t0 = now_us();
	if (t->prebuilt)
		CHILD_CHECK(seccomp_filter_load(t->prebuilt, &err) == 0);
	else
		CHILD_CHECK(seccomp_load_default(default_caps(), &err) == 0);
	long long t1 = now_us();
	CHILD_CHECK(proc_status_hex("Seccomp") == 2);
	printf("    %s: %lld us\n", t->what, t1 - t0);
	fflush(stdout);
}

static char *make_temp_dir(void)
{
	char tmpl[] = "/tmp/berth-seccomp-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static void remove_temp_dir(char *dir)
{
	struct berr err;
	assert_int_equal(seccomp_set_cache_dir(NULL, &err), 0);
	assert_int_equal(fs_remove_tree(dir, &err), 0);
	free(dir);
}

static void build_and_load_cost_is_reported(void **state)
{
	struct timed cold = {"build + load, no cache", NULL};
	for (int i = 0; i < 3; i++)
		CHILD_OK(timed_load, &cold);

	char *dir = make_temp_dir();
	assert_non_null(dir);
	char cache[512];
	snprintf(cache, sizeof(cache), "%s/seccomp", dir);
	struct berr err;
	assert_int_equal(seccomp_set_cache_dir(cache, &err), 0);
	struct seccomp_filter *f;
	long long t0 = now_us();
	assert_int_equal(seccomp_filter_default(default_caps(), &f, &err), 0);
	printf("    build, cache miss (and store): %lld us\n", now_us() - t0);
	seccomp_filter_free(f);
	t0 = now_us();
	assert_int_equal(seccomp_filter_default(default_caps(), &f, &err), 0);
	printf("    build, cache hit: %lld us\n", now_us() - t0);
	struct timed hit = {"load of a filter built before fork", f};
	for (int i = 0; i < 3; i++)
		CHILD_OK(timed_load, &hit);
	struct timed warm = {"build from the cache + load", NULL};
	for (int i = 0; i < 3; i++)
		CHILD_OK(timed_load, &warm);
	seccomp_filter_free(f);
	remove_temp_dir(dir);
}

/* ---- the cache of compiled filters ---- */

static bool same_program(const struct seccomp_filter *a, const struct seccomp_filter *b)
{
	return a->len == b->len && a->flags == b->flags &&
	       !memcmp(a->insns, b->insns, a->len * sizeof(a->insns[0]));
}

static void cache_hit_gives_the_program_a_build_gives(void **state)
{
	char *dir = make_temp_dir();
	assert_non_null(dir);
	struct berr err;
	struct seccomp_filter *fresh, *stored, *again;
	assert_int_equal(seccomp_filter_default(default_caps(), &fresh, &err), 0);
	assert_int_equal(seccomp_set_cache_dir(dir, &err), 0);
	assert_int_equal(seccomp_filter_default(default_caps(), &stored, &err), 0);
	assert_int_equal(seccomp_filter_default(default_caps(), &again, &err), 0);
	assert_true(same_program(fresh, stored));
	assert_true(same_program(fresh, again));
	/* One entry for the default profile with these capabilities. */
	cleanup_closedir DIR *d = opendir(dir);
	assert_non_null(d);
	int files = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			files++;
	assert_int_equal(files, 1);
	seccomp_filter_free(fresh);
	seccomp_filter_free(stored);
	seccomp_filter_free(again);
	remove_temp_dir(dir);
}

static void capabilities_that_change_the_filter_get_their_own_entry(void **state)
{
	char *dir = make_temp_dir();
	assert_non_null(dir);
	struct berr err;
	assert_int_equal(seccomp_set_cache_dir(dir, &err), 0);
	struct seccomp_filter *plain, *admin;
	assert_int_equal(seccomp_filter_default(default_caps(), &plain, &err), 0);
	assert_int_equal(seccomp_filter_default(default_caps() | BIT(CAP_SYS_ADMIN), &admin, &err),
			 0);
	assert_false(same_program(plain, admin));
	seccomp_filter_free(plain);
	seccomp_filter_free(admin);
	remove_temp_dir(dir);
}

static void damaged_cache_entry_is_rebuilt(void **state)
{
	char *dir = make_temp_dir();
	assert_non_null(dir);
	struct berr err;
	struct seccomp_filter *fresh, *f;
	assert_int_equal(seccomp_filter_default(default_caps(), &fresh, &err), 0);
	assert_int_equal(seccomp_set_cache_dir(dir, &err), 0);
	assert_int_equal(seccomp_filter_default(default_caps(), &f, &err), 0);
	seccomp_filter_free(f);
	/* Cut every entry short. */
	cleanup_closedir DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(dirfd(d), e->d_name, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, 100), 0);
		close(fd);
	}
	assert_int_equal(seccomp_filter_default(default_caps(), &f, &err), 0);
	assert_true(same_program(fresh, f));
	seccomp_filter_free(fresh);
	seccomp_filter_free(f);
	remove_temp_dir(dir);
}

static void cache_dir_others_may_write_is_refused(void **state)
{
	char *dir = make_temp_dir();
	assert_non_null(dir);
	assert_int_equal(chmod(dir, 0777), 0);
	struct berr err;
	assert_int_equal(seccomp_set_cache_dir(dir, &err), -1);
	assert_non_null(strstr(err.msg, dir));
	remove_temp_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(default_filter_shows_seccomp_2_in_proc_status),
	    cmocka_unit_test(mount_fails_with_eperm),
	    cmocka_unit_test(umount2_fails_with_eperm),
	    cmocka_unit_test(keyctl_fails_with_eperm),
	    cmocka_unit_test(add_key_fails_with_eperm),
	    cmocka_unit_test(request_key_fails_with_eperm),
	    cmocka_unit_test(kexec_load_fails_with_eperm),
	    cmocka_unit_test(ptrace_attach_fails_with_eperm),
	    cmocka_unit_test(unshare_user_namespace_fails_with_eperm),
	    cmocka_unit_test(unshare_mount_namespace_fails_with_eperm),
	    cmocka_unit_test(setns_fails_with_eperm),
	    cmocka_unit_test(bpf_fails_with_eperm),
	    cmocka_unit_test(perf_event_open_fails_with_eperm),
	    cmocka_unit_test(open_by_handle_at_fails_with_eperm),
	    cmocka_unit_test(init_module_fails_with_eperm),
	    cmocka_unit_test(finit_module_fails_with_eperm),
	    cmocka_unit_test(delete_module_fails_with_eperm),
	    cmocka_unit_test(swapon_fails_with_eperm),
	    cmocka_unit_test(swapoff_fails_with_eperm),
	    cmocka_unit_test(reboot_fails_with_eperm),
	    cmocka_unit_test(pivot_root_fails_with_eperm),
	    cmocka_unit_test(settimeofday_fails_with_eperm),
	    cmocka_unit_test(clock_settime_fails_with_eperm),
	    cmocka_unit_test(acct_fails_with_eperm),
	    cmocka_unit_test(userfaultfd_fails_with_eperm),
	    cmocka_unit_test(io_uring_setup_fails_with_eperm),
	    cmocka_unit_test(sethostname_fails_with_eperm),
	    cmocka_unit_test(vsock_socket_fails_with_eperm),
	    cmocka_unit_test(personality_read_implies_exec_fails_with_eperm),
	    cmocka_unit_test(clone_with_new_mount_namespace_fails_with_eperm),
	    cmocka_unit_test(clone_with_new_user_namespace_fails_with_eperm),
	    cmocka_unit_test(clone3_fails_with_enosys_so_libc_falls_back),
#ifdef __x86_64__
	    cmocka_unit_test(iopl_fails_with_eperm),
#endif
	    cmocka_unit_test(syscall_newer_than_the_profile_fails_with_enosys),
	    cmocka_unit_test(ordinary_syscalls_work_under_the_default_filter),
	    cmocka_unit_test(with_cap_sys_admin_mount_and_namespace_clone_pass_the_filter),
	    cmocka_unit_test(with_cap_sys_ptrace_ptrace_passes_the_filter),
#ifdef __x86_64__
	    cmocka_unit_test(i386_syscalls_are_filtered_like_native_ones),
	    cmocka_unit_test(x32_syscalls_are_filtered_like_native_ones),
#endif
	    cmocka_unit_test(uid_switch_and_caps_apply_work_under_the_filter),
	    cmocka_unit_test(loading_without_no_new_privs_or_cap_sys_admin_is_explained),
	    cmocka_unit_test(cache_hit_gives_the_program_a_build_gives),
	    cmocka_unit_test(capabilities_that_change_the_filter_get_their_own_entry),
	    cmocka_unit_test(damaged_cache_entry_is_rebuilt),
	    cmocka_unit_test(cache_dir_others_may_write_is_refused),
	    cmocka_unit_test(build_and_load_cost_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
