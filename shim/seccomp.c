/* Seccomp filters: built with libseccomp, exported to BPF, given a prologue
 * that answers ENOSYS for syscalls newer than the profile, and loaded with
 * seccomp(2). The default profile's program is kept once built, so a shim
 * can build it before fork and the instance's process only loads it. */
#include "shim/security.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "shim/seccomp_internal.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

int sc_build_init(struct sc_build *b, uint32_t default_action, struct berr *err)
{
	memset(b, 0, sizeof(*b));
	b->ctx = seccomp_init(default_action);
	if (!b->ctx)
		return berr_set(err, 0, "seccomp: cannot create a filter (default action %#x)",
				default_action);
	b->arches[0] = seccomp_arch_native();
	b->max_nr[0] = -1;
	b->n_arches = 1;
	return 0;
}

int sc_build_add_arch(struct sc_build *b, uint32_t arch, struct berr *err)
{
	for (int i = 0; i < b->n_arches; i++)
		if (b->arches[i] == arch)
			return 0;
	if (b->n_arches >= SC_MAX_ARCHES)
		return berr_set(err, 0, "seccomp: more than %d architectures", SC_MAX_ARCHES);
	int rc = seccomp_arch_add(b->ctx, arch);
	if (rc < 0 && rc != -EEXIST)
		return berr_set(err, -rc, "seccomp: add architecture %#x", arch);
	b->arches[b->n_arches] = arch;
	b->max_nr[b->n_arches] = -1;
	b->n_arches++;
	return 0;
}

void sc_build_note_name(struct sc_build *b, const char *name)
{
	for (int i = 0; i < b->n_arches; i++) {
		int nr = seccomp_syscall_resolve_name_arch(b->arches[i], name);
		if (nr >= 0 && nr > b->max_nr[i])
			b->max_nr[i] = nr;
	}
}

void sc_build_free(struct sc_build *b)
{
	if (b->ctx)
		seccomp_release(b->ctx);
	b->ctx = NULL;
}

void sc_prog_free(struct sc_prog *prog)
{
	free(prog->insns);
	prog->insns = NULL;
	prog->len = 0;
}

/* libseccomp writes BPF to a file descriptor only. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **out, size_t *n,
		      struct berr *err)
{
	cleanup_close int fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "seccomp: memfd_create");
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0)
		return berr_set(err, -rc, "seccomp: export the filter");
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0)
		return berr_set(err, errno, "seccomp: exported filter");
	if (size == 0 || size % sizeof(struct sock_filter) ||
	    (size_t)size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return berr_set(err, 0, "seccomp: exported filter has %lld bytes", (long long)size);
	struct sock_filter *insns = malloc(size);
	if (!insns)
		return berr_set(err, ENOMEM, "seccomp: exported filter");
	ssize_t r = pread(fd, insns, size, 0);
	if (r != size) {
		free(insns);
		return berr_set(err, r < 0 ? errno : EIO, "seccomp: read the exported filter");
	}
	*out = insns;
	*n = (size_t)size / sizeof(struct sock_filter);
	return 0;
}

/* Jump targets in the prologue, resolved once its length is known. */
enum { TO_NEXT = 0, TO_ENOSYS = 256, TO_FILTER = 257 };
#define PROLOGUE_MAX (3 + 5 * SC_MAX_ARCHES)

struct prologue {
	struct sock_filter insns[PROLOGUE_MAX];
	uint16_t jt[PROLOGUE_MAX], jf[PROLOGUE_MAX];
	size_t n;
};

static void emit(struct prologue *p, uint16_t code, uint32_t k, uint16_t jt, uint16_t jf)
{
	if (p->n >= PROLOGUE_MAX)
		return;
	p->insns[p->n] = (struct sock_filter){ code, 0, 0, k };
	p->jt[p->n] = jt;
	p->jf[p->n] = jf;
	p->n++;
}

static bool has_arch(const struct sc_build *b, uint32_t arch)
{
	for (int i = 0; i < b->n_arches; i++)
		if (b->arches[i] == arch)
			return true;
	return false;
}

static int64_t max_for(const struct sc_build *b, uint32_t arch)
{
	for (int i = 0; i < b->n_arches; i++)
		if (b->arches[i] == arch)
			return b->max_nr[i];
	return -1;
}

/* For each architecture the filter knows: a syscall number above the highest
 * one the profile names returns ENOSYS; everything else goes on to the
 * libseccomp program, which checks the architecture itself. */
static void build_prologue(const struct sc_build *b, struct prologue *p)
{
	const uint16_t ld_w = BPF_LD | BPF_W | BPF_ABS, jeq = BPF_JMP | BPF_JEQ | BPF_K,
		       jgt = BPF_JMP | BPF_JGT | BPF_K, jset = BPF_JMP | BPF_JSET | BPF_K;
	emit(p, ld_w, offsetof(struct seccomp_data, arch), TO_NEXT, TO_NEXT);
	for (int i = 0; i < b->n_arches; i++) {
		uint32_t arch = b->arches[i];
		if (arch == SCMP_ARCH_X32 || b->max_nr[i] < 0)
			continue; /* x32 shares AUDIT_ARCH_X86_64, handled with it */
		if (arch == SCMP_ARCH_X86_64) {
			int64_t max32 = has_arch(b, SCMP_ARCH_X32) ? max_for(b, SCMP_ARCH_X32) : -1;
			emit(p, jeq, arch, TO_NEXT, max32 >= 0 ? 4 : 3);
			emit(p, ld_w, offsetof(struct seccomp_data, nr), TO_NEXT, TO_NEXT);
			if (max32 >= 0) {
				emit(p, jset, __X32_SYSCALL_BIT, TO_NEXT, 1);
				emit(p, jgt, (uint32_t)max32, TO_ENOSYS, TO_FILTER);
			} else {
				emit(p, jset, __X32_SYSCALL_BIT, TO_FILTER, TO_NEXT);
			}
			emit(p, jgt, (uint32_t)b->max_nr[i], TO_ENOSYS, TO_FILTER);
			continue;
		}
		emit(p, jeq, arch, TO_NEXT, 2);
		emit(p, ld_w, offsetof(struct seccomp_data, nr), TO_NEXT, TO_NEXT);
		emit(p, jgt, (uint32_t)b->max_nr[i], TO_ENOSYS, TO_FILTER);
	}
	emit(p, BPF_JMP | BPF_JA, 1, TO_NEXT, TO_NEXT); /* over the ENOSYS return */
	emit(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA), TO_NEXT,
	     TO_NEXT);
	size_t enosys = p->n - 1, filter = p->n;
	for (size_t i = 0; i < p->n; i++) {
		uint16_t t[2] = { p->jt[i], p->jf[i] };
		for (int k = 0; k < 2; k++) {
			if (t[k] == TO_ENOSYS)
				t[k] = (uint16_t)(enosys - i - 1);
			else if (t[k] == TO_FILTER)
				t[k] = (uint16_t)(filter - i - 1);
		}
		p->insns[i].jt = (uint8_t)t[0];
		p->insns[i].jf = (uint8_t)t[1];
	}
}

int sc_compile(struct sc_build *b, struct sc_prog *out, struct berr *err)
{
	struct sock_filter *body = NULL;
	size_t n_body = 0;
	if (export_bpf(b->ctx, &body, &n_body, err) < 0)
		return -1;
	struct prologue p = { .n = 0 };
	if (b->enosys_above_known)
		build_prologue(b, &p);
	if (n_body + p.n > BPF_MAXINSNS) {
		free(body);
		return berr_set(err, 0, "seccomp: filter has %zu instructions (limit %d)",
				n_body + p.n, BPF_MAXINSNS);
	}
	struct sock_filter *all = malloc((n_body + p.n) * sizeof(*all));
	if (!all) {
		free(body);
		return berr_set(err, ENOMEM, "seccomp: filter");
	}
	memcpy(all, p.insns, p.n * sizeof(*all));
	memcpy(all + p.n, body, n_body * sizeof(*all));
	free(body);
	out->insns = all;
	out->len = n_body + p.n;
	return 0;
}

int sc_prog_load(const struct sc_prog *prog, struct berr *err)
{
	struct sock_fprog fprog = { .len = (unsigned short)prog->len, .filter = prog->insns };
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog->flags, &fprog);
	if (rc < 0 && errno == ENOSYS && prog->flags == 0)
		rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
	if (rc < 0) {
		if (errno == EACCES)
			return berr_set(err, errno,
					"seccomp: load the filter (needs no_new_privs or CAP_SYS_ADMIN)");
		if (errno == EINVAL && prog->flags)
			return berr_set(err, errno,
					"seccomp: load the filter (flags %#x not supported by this kernel)",
					prog->flags);
		return berr_set(err, errno, "seccomp: load the filter");
	}
	return 0;
}

/* The default profile's program for one set of relevant capabilities. */
static struct {
	bool valid;
	uint64_t caps;
	struct sc_prog prog;
} default_memo;

static int default_prog(uint64_t effective_caps, const struct sc_prog **out, struct berr *err)
{
	uint64_t caps = effective_caps & sc_default_caps_mask();
	if (default_memo.valid && default_memo.caps == caps) {
		*out = &default_memo.prog;
		return 0;
	}
	struct sc_build b;
	if (sc_default_build(caps, &b, err) < 0)
		return -1;
	struct sc_prog prog = { 0 };
	int rc = sc_compile(&b, &prog, err);
	sc_build_free(&b);
	if (rc < 0)
		return -1;
	if (default_memo.valid)
		sc_prog_free(&default_memo.prog);
	default_memo.prog = prog;
	default_memo.caps = caps;
	default_memo.valid = true;
	*out = &default_memo.prog;
	return 0;
}

int seccomp_prepare_default(uint64_t effective_caps, struct berr *err)
{
	const struct sc_prog *prog;
	return default_prog(effective_caps, &prog, err);
}

int seccomp_load_default(uint64_t effective_caps, struct berr *err)
{
	const struct sc_prog *prog;
	if (default_prog(effective_caps, &prog, err) < 0)
		return -1;
	return sc_prog_load(prog, err);
}

int seccomp_load_oci(yajl_val seccomp, struct berr *err)
{
	struct sc_build b;
	unsigned int flags = 0;
	if (sc_oci_build(seccomp, &b, &flags, err) < 0)
		return -1;
	struct sc_prog prog = { 0 };
	int rc = sc_compile(&b, &prog, err);
	sc_build_free(&b);
	if (rc < 0)
		return berr_wrap(err, "linux.seccomp");
	prog.flags = flags;
	rc = sc_prog_load(&prog, err);
	sc_prog_free(&prog);
	return rc < 0 ? berr_wrap(err, "linux.seccomp") : 0;
}
