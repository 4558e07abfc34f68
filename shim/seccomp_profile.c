/* The default seccomp profile: the allow-list container engines ship
 * (moby's profiles/seccomp/default.json, containerd's RuntimeDefault),
 * written out here by purpose. docs/SECCOMP.md explains each group and every
 * place where berth differs from the engines. Everything not listed fails
 * with EPERM. Names unknown to the installed libseccomp are skipped; names
 * missing on an architecture apply where they exist. */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/lazy.h"
#include "shim/seccomp_internal.h"

/* Older toolchains' kernel headers (Buildroot, Yocto) lack these. */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* The native architectures a group is limited to (none: every one). */
enum {
	NAT_X86_64 = 1 << 0,
	NAT_X32 = 1 << 1,
	NAT_X86 = 1 << 2,
	NAT_AARCH64 = 1 << 3,
	NAT_ARM = 1 << 4,
	NAT_S390 = 1 << 5, /* s390 and s390x */
	NAT_PPC64LE = 1 << 6,
	NAT_RISCV64 = 1 << 7,
};

#define NO_CAP (-1)

struct sc_group {
	const char *what;	  /* for docs and errors */
	const char *const *names; /* NULL-terminated */
	int need_cap;		  /* only when this capability is effective */
	int without_cap;	  /* only when this capability is not effective */
	unsigned int natives;	  /* NAT_* mask, 0 for all */
	unsigned int no_natives;  /* NAT_* mask excluded */
	uint32_t action;	  /* SCMP_ACT_ALLOW unless said otherwise */
	unsigned int n_args;
	struct scmp_arg_cmp args[1];
};

#define ARG(i, o, a, b)                                                                            \
	{                                                                                          \
		.arg = (i), .op = (o), .datum_a = (a), .datum_b = (b)                              \
	}
#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The lists are laid out by hand, many names to a line. */
/* clang-format off */

/* Files, directories, descriptors and extended attributes. */
static const char *const files[] = {
	"access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close",
	"close_range", "read", "readv", "pread64", "preadv", "preadv2", "write", "writev",
	"pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "dup", "dup2", "dup3", "fcntl",
	"fcntl64", "flock", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
	"fadvise64", "fadvise64_64", "readahead", "fallocate", "truncate", "truncate64",
	"ftruncate", "ftruncate64", "copy_file_range", "sendfile", "sendfile64", "splice", "tee",
	"vmsplice", "pipe", "pipe2", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64",
	"fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
	"cachestat", "getcwd", "chdir", "fchdir", "getdents", "getdents64", "mkdir", "mkdirat",
	"rmdir", "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat", "unlink",
	"unlinkat", "rename", "renameat", "renameat2", "readlink", "readlinkat", "chmod",
	"fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat",
	"lchown", "lchown32", "umask", "utime", "utimes", "utimensat", "utimensat_time64",
	"futimesat", "name_to_handle_at", "ioctl", "getxattr", "lgetxattr", "fgetxattr",
	"setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr",
	"removexattr", "lremovexattr", "fremovexattr", NULL,
};

/* Waiting for events: poll/select/epoll, eventfd, signalfd, timerfd,
 * inotify, fanotify marks (fanotify_init needs CAP_SYS_ADMIN), and Linux AIO.
 * io_uring is left out, as the engines have since 2023: its operations
 * bypass seccomp. */
static const char *const events[] = {
	"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait",
	"epoll_wait_old", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
	"signalfd4", "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
	"timerfd_gettime64", "inotify_init", "inotify_init1", "inotify_add_watch",
	"inotify_rm_watch", "fanotify_mark", "io_setup", "io_destroy", "io_submit", "io_cancel",
	"io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
	NULL,
};

/* Memory. */
static const char *const memory[] = {
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
	"mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
	"memfd_create", "memfd_secret", "membarrier", "pkey_alloc", "pkey_free",
	"pkey_mprotect", "map_shadow_stack", NULL,
};

/* Processes, threads, scheduling, resource limits, credentials. */
static const char *const processes[] = {
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
	"waitpid", "getpid", "getppid", "gettid", "getpgid", "getpgrp", "setpgid", "getsid",
	"setsid", "set_tid_address", "set_robust_list", "get_robust_list", "set_thread_area",
	"get_thread_area", "rseq", "restart_syscall", "futex", "futex_time64", "futex_waitv",
	"futex_wait", "futex_wake", "futex_requeue", "prctl", "seccomp", "capget", "capset",
	"getpriority", "setpriority", "sched_yield", "sched_getaffinity", "sched_setaffinity",
	"sched_getattr", "sched_setattr", "sched_getparam", "sched_setparam",
	"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
	"sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
	"getcpu", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage", "times",
	"uname", "sysinfo", "getrandom", "pidfd_open", "pidfd_send_signal", "process_mrelease",
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "getuid",
	"getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
	"getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
	"setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid",
	"setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid",
	"setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32", NULL,
};

/* Signals and time. Setting the clock needs CAP_SYS_TIME (below); adjtimex
 * and clock_adjtime only read it without that capability. */
static const char *const signals_time[] = {
	"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigpending",
	"rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack", "sigprocmask", "sigreturn",
	"pause", "alarm", "getitimer", "setitimer", "nanosleep", "clock_nanosleep",
	"clock_nanosleep_time64", "clock_gettime", "clock_gettime64", "clock_getres",
	"clock_getres_time64", "gettimeofday", "time", "adjtimex", "clock_adjtime",
	"clock_adjtime64", "timer_create", "timer_delete", "timer_settime", "timer_settime64",
	"timer_gettime", "timer_gettime64", "timer_getoverrun", NULL,
};

/* Sockets (socket itself is below, without AF_VSOCK) and System V / POSIX IPC. */
static const char *const ipc[] = {
	"socketpair", "socketcall", "bind", "listen", "accept", "accept4", "connect",
	"shutdown", "getsockname", "getpeername", "getsockopt", "setsockopt", "send", "sendto",
	"sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
	"ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open",
	"mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_notify", "mq_getsetattr", NULL,
};

#define AF_VSOCK_NR 40
/* CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
 * CLONE_NEWPID | CLONE_NEWNET */
#define CLONE_NS_FLAGS 0x7E020000ULL

static const struct sc_group groups[] = {
	{ "files", files, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "events", events, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "memory", memory, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "processes", processes, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "signals and time", signals_time, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "sockets and ipc", ipc, NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	/* vsock reaches the hypervisor host: not for a module. */
	{ "socket", NAMES("socket"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_NE, AF_VSOCK_NR, 0) } },
	/* personality: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
	 * the query 0xffffffff; other domains change how the kernel treats the
	 * process (e.g. READ_IMPLIES_EXEC). */
	{ "personality", NAMES("personality"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_EQ, 0x0, 0) } },
	{ "personality", NAMES("personality"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_EQ, 0x8, 0) } },
	{ "personality", NAMES("personality"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_EQ, 0x20000, 0) } },
	{ "personality", NAMES("personality"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_EQ, 0x20008, 0) } },
	{ "personality", NAMES("personality"), NO_CAP, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_EQ, 0xffffffff, 0) } },

	/* Per architecture. */
	{ "x86", NAMES("arch_prctl"), NO_CAP, NO_CAP, NAT_X86_64 | NAT_X32, 0, SCMP_ACT_ALLOW,
	  0, {} },
	{ "x86", NAMES("modify_ldt"), NO_CAP, NO_CAP, NAT_X86_64 | NAT_X32 | NAT_X86, 0,
	  SCMP_ACT_ALLOW, 0, {} },
	{ "arm", NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
		       "breakpoint", "cacheflush", "set_tls"),
	  NO_CAP, NO_CAP, NAT_ARM | NAT_AARCH64, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "ppc64le", NAMES("sync_file_range2", "swapcontext"), NO_CAP, NO_CAP, NAT_PPC64LE, 0,
	  SCMP_ACT_ALLOW, 0, {} },
	{ "s390", NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
	  NO_CAP, NO_CAP, NAT_S390, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "riscv64", NAMES("riscv_flush_icache"), NO_CAP, NO_CAP, NAT_RISCV64, 0,
	  SCMP_ACT_ALLOW, 0, {} },

	/* Allowed only with the capability the kernel checks for them. */
	{ "CAP_DAC_READ_SEARCH", NAMES("open_by_handle_at"), CAP_DAC_READ_SEARCH, NO_CAP, 0, 0,
	  SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_ADMIN",
	  NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
		"fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
		"perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
		"setns", "syslog", "umount", "umount2", "unshare"),
	  CAP_SYS_ADMIN, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_BOOT", NAMES("reboot"), CAP_SYS_BOOT, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_CHROOT", NAMES("chroot"), CAP_SYS_CHROOT, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0,
	  {} },
	{ "CAP_SYS_MODULE", NAMES("init_module", "finit_module", "delete_module"),
	  CAP_SYS_MODULE, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_PACCT", NAMES("acct"), CAP_SYS_PACCT, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	/* The engines allow ptrace and process_vm_* to everyone on kernels from
	 * 4.8; berth keeps them behind CAP_SYS_PTRACE (docs/SECCOMP.md). */
	{ "CAP_SYS_PTRACE",
	  NAMES("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
		"process_madvise"),
	  CAP_SYS_PTRACE, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_RAWIO", NAMES("iopl", "ioperm"), CAP_SYS_RAWIO, NO_CAP, 0, 0, SCMP_ACT_ALLOW,
	  0, {} },
	{ "CAP_SYS_TIME", NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"),
	  CAP_SYS_TIME, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_TTY_CONFIG", NAMES("vhangup"), CAP_SYS_TTY_CONFIG, NO_CAP, 0, 0,
	  SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYS_NICE",
	  NAMES("get_mempolicy", "set_mempolicy", "mbind", "set_mempolicy_home_node"),
	  CAP_SYS_NICE, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_SYSLOG", NAMES("syslog"), CAP_SYSLOG, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_BPF", NAMES("bpf"), CAP_BPF, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0, {} },
	{ "CAP_PERFMON", NAMES("perf_event_open"), CAP_PERFMON, NO_CAP, 0, 0, SCMP_ACT_ALLOW, 0,
	  {} },

	/* Without CAP_SYS_ADMIN: clone only without namespace flags (threads and
	 * fork), and clone3 fails with ENOSYS, whose flags sit in memory where
	 * seccomp cannot look, so libc falls back to clone. s390 passes the
	 * flags in the second argument. */
	{ "clone", NAMES("clone"), NO_CAP, CAP_SYS_ADMIN, 0, NAT_S390, SCMP_ACT_ALLOW, 1,
	  { ARG(0, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0) } },
	{ "clone", NAMES("clone"), NO_CAP, CAP_SYS_ADMIN, NAT_S390, 0, SCMP_ACT_ALLOW, 1,
	  { ARG(1, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0) } },
	{ "clone3", NAMES("clone3"), NO_CAP, CAP_SYS_ADMIN, 0, 0, SCMP_ACT_ERRNO(ENOSYS), 0, {} },
};

/* Syscalls the profile names without allowing them, so the ENOSYS prologue
 * treats them as known (EPERM) rather than newer than the profile (ENOSYS). */
static const char *const denied_known[] = {
	"add_key", "keyctl", "request_key", "kexec_load", "kexec_file_load", "swapon",
	"swapoff", "pivot_root", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "vm86",
	"vm86old", "get_kernel_syms", "query_module", "create_module", "move_pages",
	"migrate_pages", "nice", NULL,
};

/* clang-format on */

static unsigned int native_family(uint32_t arch)
{
	switch (arch) {
	case SCMP_ARCH_X86_64:
		return NAT_X86_64;
	case SCMP_ARCH_X32:
		return NAT_X32;
	case SCMP_ARCH_X86:
		return NAT_X86;
	case SCMP_ARCH_AARCH64:
		return NAT_AARCH64;
	case SCMP_ARCH_ARM:
		return NAT_ARM;
	case SCMP_ARCH_S390:
	case SCMP_ARCH_S390X:
		return NAT_S390;
	case SCMP_ARCH_PPC64LE:
		return NAT_PPC64LE;
#ifdef SCMP_ARCH_RISCV64
	case SCMP_ARCH_RISCV64:
		return NAT_RISCV64;
#endif
	default:
		return 0;
	}
}

/* The architectures a process of the native one can also call the kernel
 * with (the engines' archMap): 32-bit and x32 binaries on x86_64, 32-bit ARM
 * on aarch64, and the MIPS ABIs among themselves. */
static void companion_arches(uint32_t native, uint32_t out[3], int *n)
{
	*n = 0;
	switch (native) {
	case SCMP_ARCH_X86_64:
		out[(*n)++] = SCMP_ARCH_X86;
		out[(*n)++] = SCMP_ARCH_X32;
		break;
	case SCMP_ARCH_AARCH64:
		out[(*n)++] = SCMP_ARCH_ARM;
		break;
	case SCMP_ARCH_MIPS64:
	case SCMP_ARCH_MIPS64N32:
		out[(*n)++] = SCMP_ARCH_MIPS;
		out[(*n)++] = native == SCMP_ARCH_MIPS64 ? SCMP_ARCH_MIPS64N32 : SCMP_ARCH_MIPS64;
		break;
	case SCMP_ARCH_MIPSEL64:
	case SCMP_ARCH_MIPSEL64N32:
		out[(*n)++] = SCMP_ARCH_MIPSEL;
		out[(*n)++] =
		    native == SCMP_ARCH_MIPSEL64 ? SCMP_ARCH_MIPSEL64N32 : SCMP_ARCH_MIPSEL64;
		break;
	case SCMP_ARCH_S390X:
		out[(*n)++] = SCMP_ARCH_S390;
		break;
	default:
		break;
	}
}

static bool group_applies(const struct sc_group *g, uint64_t caps, unsigned int native)
{
	if (g->need_cap != NO_CAP && !(caps & (UINT64_C(1) << g->need_cap)))
		return false;
	if (g->without_cap != NO_CAP && (caps & (UINT64_C(1) << g->without_cap)))
		return false;
	if (g->natives && !(g->natives & native))
		return false;
	if (g->no_natives & native)
		return false;
	return true;
}

uint64_t sc_default_caps_mask(void)
{
	uint64_t m = 0;
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		if (groups[i].need_cap != NO_CAP)
			m |= UINT64_C(1) << groups[i].need_cap;
		if (groups[i].without_cap != NO_CAP)
			m |= UINT64_C(1) << groups[i].without_cap;
	}
	return m;
}

const char *sc_default_profile_id(void)
{
	static char id[40];
	if (id[0])
		return id;
	uint64_t h = FNV1A_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		const struct sc_group *g = &groups[i];
		for (size_t j = 0; g->names[j]; j++)
			h = fnv1a(h, g->names[j], strlen(g->names[j]) + 1);
		int v[5] = {g->need_cap, g->without_cap, (int)g->natives, (int)g->no_natives,
			    (int)g->n_args};
		h = fnv1a(h, v, sizeof(v));
		h = fnv1a(h, &g->action, sizeof(g->action));
		h = fnv1a(h, g->args, g->n_args * sizeof(g->args[0]));
	}
	for (size_t j = 0; denied_known[j]; j++)
		h = fnv1a(h, denied_known[j], strlen(denied_known[j]) + 1);
	snprintf(id, sizeof(id), "default-%016llx", (unsigned long long)h);
	return id;
}

static int add_group(struct sc_build *b, const struct sc_group *g, struct berr *err)
{
	for (size_t j = 0; g->names[j]; j++) {
		int nr = LAZY(seccomp_syscall_resolve_name)(g->names[j]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* newer than this libseccomp: the prologue answers ENOSYS */
		int rc = LAZY(seccomp_rule_add_array)(b->ctx, g->action, nr, g->n_args,
						      g->n_args ? g->args : NULL);
		if (rc < 0 && rc != -EEXIST)
			return berr_set(err, -rc, "seccomp: default profile, %s: rule for %s",
					g->what, g->names[j]);
	}
	return 0;
}

int sc_default_build(uint64_t effective_caps, struct sc_build *b, struct berr *err)
{
	if (sc_build_init(b, SCMP_ACT_ERRNO(EPERM), err) < 0)
		return -1;
	b->enosys_above_known = true;
	uint32_t native = LAZY(seccomp_arch_native)();
	uint32_t extra[3];
	int n_extra;
	companion_arches(native, extra, &n_extra);
	for (int i = 0; i < n_extra; i++)
		if (sc_build_add_arch(b, extra[i], err) < 0)
			goto fail;
	unsigned int fam = native_family(native);
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++) {
		for (size_t j = 0; groups[i].names[j]; j++)
			sc_build_note_name(b, groups[i].names[j]);
		if (group_applies(&groups[i], effective_caps, fam) &&
		    add_group(b, &groups[i], err) < 0)
			goto fail;
	}
	for (size_t j = 0; denied_known[j]; j++)
		sc_build_note_name(b, denied_known[j]);
	return 0;
fail:
	sc_build_free(b);
	return -1;
}
