/* Device access of an instance. On v1 the devices controller takes rule
 * lines; on v2 the same rules become a BPF_PROG_TYPE_CGROUP_DEVICE program,
 * generated here and loaded with the raw bpf() syscall (no libbpf). */
#include "shim/cgroup_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

#define ANY (-1)

const struct cgroup_device cgroup_default_devices[] = {
    {'c', ANY, ANY, "m", true}, /* mknod; CAP_MKNOD still decides */
    {'b', ANY, ANY, "m", true},
    {'c', 1, 3, "rwm", true}, /* null */
    {'c', 1, 5, "rwm", true}, /* zero */
    {'c', 1, 7, "rwm", true}, /* full */
    {'c', 1, 8, "rwm", true}, /* random */
    {'c', 1, 9, "rwm", true}, /* urandom */
    {'c', 5, 0, "rwm", true}, /* tty */
    /* Not the console (5:1): with CAP_MKNOD an instance would make the
     * host's and read what is typed on it; runc dropped it in 2020. */
    {'c', 5, 2, "rwm", true},	  /* ptmx */
    {'c', 136, ANY, "rwm", true}, /* pts */
};
const size_t cgroup_default_devices_count = ARRAY_SIZE(cgroup_default_devices);

/* Access bits as the kernel passes them to the program (BPF_DEVCG_ACC_*);
 * 0 when access is empty, repeats a letter or holds another one. */
static int access_bits(const char *access)
{
	int bits = 0;
	size_t n = strnlen(access, sizeof(((struct cgroup_device *)0)->access));
	if (n == 0 || n == sizeof(((struct cgroup_device *)0)->access))
		return 0;
	for (size_t i = 0; i < n; i++) {
		int b = access[i] == 'r'   ? BPF_DEVCG_ACC_READ
			: access[i] == 'w' ? BPF_DEVCG_ACC_WRITE
			: access[i] == 'm' ? BPF_DEVCG_ACC_MKNOD
					   : 0;
		if (!b || (bits & b))
			return 0;
		bits |= b;
	}
	return bits;
}

int cgroup_device_check(const struct cgroup_device *d, struct berr *err)
{
	if (d->type != 'c' && d->type != 'b' && d->type != 'a')
		return berr_set(err, EINVAL, "device rule: type '%c' is not c, b or a",
				d->type >= 0x20 && d->type < 0x7f ? d->type : '?');
	if (d->major < ANY || d->major > INT32_MAX || d->minor < ANY || d->minor > INT32_MAX)
		return berr_set(err, ERANGE, "device rule %c %lld:%lld: number out of range",
				d->type, (long long)d->major, (long long)d->minor);
	if (!access_bits(d->access))
		return berr_set(err, EINVAL,
				"device rule %c %lld:%lld: access is not a subset of rwm", d->type,
				(long long)d->major, (long long)d->minor);
	return 0;
}

static int number(char *out, size_t cap, int64_t v)
{
	return v == ANY ? snprintf(out, cap, "*") : snprintf(out, cap, "%lld", (long long)v);
}

int cgroup_device_v1_line(const struct cgroup_device *d, char *out, size_t cap)
{
	char maj[24], min[24];
	number(maj, sizeof(maj), d->major);
	number(min, sizeof(min), d->minor);
	int n = snprintf(out, cap, "%c %s:%s %.3s", d->type, maj, min, d->access);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The few instruction forms the program needs (the kernel's own macros are
 * not part of the uapi headers). */
static struct bpf_insn ldx_w(int dst, int src, int off)
{
	return (struct bpf_insn){
	    .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = dst, .src_reg = src, .off = (short)off};
}
static struct bpf_insn alu32_imm(int op, int dst, int imm)
{
	return (struct bpf_insn){.code = BPF_ALU | op | BPF_K, .dst_reg = dst, .imm = imm};
}
static struct bpf_insn mov32_reg(int dst, int src)
{
	return (struct bpf_insn){.code = BPF_ALU | BPF_MOV | BPF_X, .dst_reg = dst, .src_reg = src};
}
static struct bpf_insn mov64_imm(int dst, int imm)
{
	return (struct bpf_insn){.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = imm};
}
static struct bpf_insn jne_imm(int dst, int imm, int off)
{
	return (struct bpf_insn){
	    .code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = dst, .off = (short)off, .imm = imm};
}
static struct bpf_insn jeq_imm(int dst, int imm, int off)
{
	return (struct bpf_insn){
	    .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = dst, .off = (short)off, .imm = imm};
}
static struct bpf_insn exit_insn(void)
{
	return (struct bpf_insn){.code = BPF_JMP | BPF_EXIT};
}

/* Registers after the prologue: r2 type, r3 access, r4 major, r5 minor
 * (struct bpf_cgroup_dev_ctx: access_type = access << 16 | type). */
enum { R0, R1, R2_TYPE, R3_ACCESS, R4_MAJOR, R5_MINOR, R6_TMP };

int cgroup_devices_program(const struct cgroup_device *rules, size_t n, struct bpf_insn *out,
			   size_t cap)
{
	size_t pc = 0;
#define EMIT(i)                                                                                    \
	do {                                                                                       \
		if (pc >= cap)                                                                     \
			return -1;                                                                 \
		out[pc++] = (i);                                                                   \
	} while (0)
	EMIT(ldx_w(R2_TYPE, R1, 0));
	EMIT(alu32_imm(BPF_AND, R2_TYPE, 0xffff));
	EMIT(ldx_w(R3_ACCESS, R1, 0));
	EMIT(alu32_imm(BPF_RSH, R3_ACCESS, 16));
	EMIT(ldx_w(R4_MAJOR, R1, 4));
	EMIT(ldx_w(R5_MINOR, R1, 8));
	/* The last matching rule decides, as writing them in order to a v1
	 * cgroup after "deny a" would: walk them from the end. */
	for (size_t k = n; k-- > 0;) {
		const struct cgroup_device *d = &rules[k];
		int acc = access_bits(d->access);
		bool check_type = d->type != 'a';
		bool check_access =
		    acc != (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
		bool check_major = d->major != ANY;
		bool check_minor = d->minor != ANY;
		/* Block length, to jump past it when a test fails. */
		int len = check_type + 3 * check_access + check_major + check_minor + 2;
		int at = 0;
		if (check_type) {
			int t = d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
			EMIT(jne_imm(R2_TYPE, t, len - ++at));
		}
		if (check_access) {
			/* As the v1 controller decides: an allow rule covers a
			 * request whose bits are all among its own, a deny rule
			 * one that asks for any of its bits. */
			EMIT(mov32_reg(R6_TMP, R3_ACCESS));
			if (d->allow) {
				EMIT(alu32_imm(BPF_AND, R6_TMP, ~acc & 7));
				at += 2;
				EMIT(jne_imm(R6_TMP, 0, len - ++at));
			} else {
				EMIT(alu32_imm(BPF_AND, R6_TMP, acc));
				at += 2;
				EMIT(jeq_imm(R6_TMP, 0, len - ++at));
			}
		}
		if (check_major)
			EMIT(jne_imm(R4_MAJOR, (int)d->major, len - ++at));
		if (check_minor)
			EMIT(jne_imm(R5_MINOR, (int)d->minor, len - ++at));
		EMIT(mov64_imm(R0, d->allow ? 1 : 0));
		EMIT(exit_insn());
	}
	EMIT(mov64_imm(R0, 0));
	EMIT(exit_insn());
#undef EMIT
	return (int)pc;
}

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int cgroup_devices_detach_all(int cgroup_fd, const char *path, struct berr *err)
{
	uint32_t ids[64];
	union bpf_attr q;
	memset(&q, 0, sizeof(q));
	q.query.target_fd = (uint32_t)cgroup_fd;
	q.query.attach_type = BPF_CGROUP_DEVICE;
	q.query.prog_ids = (uint64_t)(uintptr_t)ids;
	q.query.prog_cnt = ARRAY_SIZE(ids);
	if (bpf(BPF_PROG_QUERY, &q) < 0)
		return berr_set(err, errno, "query device programs of %s", path);
	for (uint32_t i = 0; i < q.query.prog_cnt && i < ARRAY_SIZE(ids); i++) {
		union bpf_attr g;
		memset(&g, 0, sizeof(g));
		g.prog_id = ids[i];
		cleanup_close int prog = bpf(BPF_PROG_GET_FD_BY_ID, &g);
		if (prog < 0) {
			if (errno == ENOENT) /* detached meanwhile */
				continue;
			return berr_set(err, errno, "open device program %u of %s", ids[i], path);
		}
		union bpf_attr d;
		memset(&d, 0, sizeof(d));
		d.target_fd = (uint32_t)cgroup_fd;
		d.attach_bpf_fd = (uint32_t)prog;
		d.attach_type = BPF_CGROUP_DEVICE;
		if (bpf(BPF_PROG_DETACH, &d) < 0 && errno != ENOENT)
			return berr_set(err, errno, "detach device program %u from %s", ids[i],
					path);
	}
	return 0;
}

int cgroup_devices_attach(int cgroup_fd, const char *path, const struct cgroup_device *rules,
			  size_t n, struct berr *err)
{
	for (size_t i = 0; i < n; i++)
		if (cgroup_device_check(&rules[i], err) < 0)
			return -1;
	cleanup_free struct bpf_insn *insns = calloc(CGROUP_BPF_MAX_INSNS, sizeof(*insns));
	if (!insns)
		return berr_set(err, ENOMEM, "device program for %s", path);
	int count = cgroup_devices_program(rules, n, insns, CGROUP_BPF_MAX_INSNS);
	if (count < 0)
		return berr_set(err, E2BIG, "device rules for %s: %zu rules are too many", path, n);

	union bpf_attr load;
	memset(&load, 0, sizeof(load));
	load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	load.insns = (uint64_t)(uintptr_t)insns;
	load.insn_cnt = (uint32_t)count;
	load.license = (uint64_t)(uintptr_t) "GPL";
	cleanup_close int prog = bpf(BPF_PROG_LOAD, &load);
	if (prog < 0) {
		int e = errno;
		/* Load again with the verifier's log, for the message. */
		char log[1024] = "";
		load.log_buf = (uint64_t)(uintptr_t)log;
		load.log_size = sizeof(log);
		load.log_level = 1;
		int again = bpf(BPF_PROG_LOAD, &load);
		if (again >= 0)
			close(again);
		log[sizeof(log) - 1] = '\0';
		char *nl = strrchr(log, '\n');
		if (nl && nl[1] == '\0')
			*nl = '\0';
		if (log[0])
			return berr_set(err, e, "load device program for %s (%s)", path, log);
		return berr_set(err, e, "load device program for %s", path);
	}
	if (cgroup_devices_detach_all(cgroup_fd, path, err) < 0)
		return -1;
	union bpf_attr at;
	memset(&at, 0, sizeof(at));
	at.target_fd = (uint32_t)cgroup_fd;
	at.attach_bpf_fd = (uint32_t)prog;
	at.attach_type = BPF_CGROUP_DEVICE;
	at.attach_flags = BPF_F_ALLOW_MULTI;
	if (bpf(BPF_PROG_ATTACH, &at) < 0)
		return berr_set(err, errno, "attach device program to %s", path);
	/* The attachment holds the program until the cgroup is removed. */
	return 0;
}
