/* Seccomp filters: built with libseccomp (binary-tree layout), exported to
 * BPF, given a prologue that answers ENOSYS for syscalls newer than the
 * profile, and loaded with seccomp(2). Building costs milliseconds, loading
 * a fraction of one, so compiled programs are kept in a cache directory and
 * a shim can build before clone and load in the instance's process. */
#include "shim/security.h"

#include <errno.h>
#include <linux/seccomp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/lazy.h"
#include "shim/seccomp_internal.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif

int sc_build_init(struct sc_build *b, uint32_t default_action, struct berr *err)
{
	memset(b, 0, sizeof(*b));
	b->ctx = LAZY(seccomp_init)(default_action);
	if (!b->ctx)
		return berr_set(err, 0, "seccomp: cannot create a filter (default action %#x)",
				default_action);
	b->arches[0] = LAZY(seccomp_arch_native)();
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
	int rc = LAZY(seccomp_arch_add)(b->ctx, arch);
	if (rc < 0 && rc != -EEXIST)
		return berr_set(err, -rc, "seccomp: add architecture %#x", arch);
	b->arches[b->n_arches] = arch;
	b->max_nr[b->n_arches] = -1;
	b->n_arches++;
	return 0;
}

/* x32 keeps its own entry points for calls whose structures differ from
 * x86_64's at 512..547; new syscalls get numbers in the shared range below. */
#define X32_LEGACY_FIRST (__X32_SYSCALL_BIT | 512)

void sc_build_note_name(struct sc_build *b, const char *name)
{
	for (int i = 0; i < b->n_arches; i++) {
		int nr = LAZY(seccomp_syscall_resolve_name_arch)(b->arches[i], name);
		if (b->arches[i] == SCMP_ARCH_X32 && nr >= X32_LEGACY_FIRST)
			continue;
		if (nr >= 0 && nr > b->max_nr[i])
			b->max_nr[i] = nr;
	}
}

void sc_build_free(struct sc_build *b)
{
	if (b->ctx)
		LAZY(seccomp_release)(b->ctx);
	b->ctx = NULL;
}

void seccomp_filter_free(struct seccomp_filter *f)
{
	if (!f)
		return;
	free(f->insns);
	free(f);
}

/* libseccomp writes BPF to a file descriptor only. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_filter **out, size_t *n, struct berr *err)
{
	cleanup_close int fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return berr_set(err, errno, "seccomp: memfd_create");
	int rc = LAZY(seccomp_export_bpf)(ctx, fd);
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
#define PROLOGUE_MAX (3 + 6 * SC_MAX_ARCHES) /* at most 6 instructions per architecture */

struct prologue {
	struct sock_filter insns[PROLOGUE_MAX];
	uint16_t jt[PROLOGUE_MAX], jf[PROLOGUE_MAX];
	size_t n;
};

static void emit(struct prologue *p, uint16_t code, uint32_t k, uint16_t jt, uint16_t jf)
{
	if (p->n >= PROLOGUE_MAX)
		return;
	p->insns[p->n] = (struct sock_filter){code, 0, 0, k};
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
		       jgt = BPF_JMP | BPF_JGT | BPF_K, jge = BPF_JMP | BPF_JGE | BPF_K,
		       jset = BPF_JMP | BPF_JSET | BPF_K;
	emit(p, ld_w, offsetof(struct seccomp_data, arch), TO_NEXT, TO_NEXT);
	for (int i = 0; i < b->n_arches; i++) {
		uint32_t arch = b->arches[i];
		if (arch == SCMP_ARCH_X32 || b->max_nr[i] < 0)
			continue; /* x32 shares AUDIT_ARCH_X86_64, handled with it */
		if (arch == SCMP_ARCH_X86_64) {
			int64_t max32 = has_arch(b, SCMP_ARCH_X32) ? max_for(b, SCMP_ARCH_X32) : -1;
			emit(p, jeq, arch, TO_NEXT, max32 >= 0 ? 5 : 3);
			emit(p, ld_w, offsetof(struct seccomp_data, nr), TO_NEXT, TO_NEXT);
			if (max32 >= 0) {
				emit(p, jset, __X32_SYSCALL_BIT, TO_NEXT, 2);
				emit(p, jge, X32_LEGACY_FIRST, TO_FILTER, TO_NEXT);
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
	emit(p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA), TO_NEXT, TO_NEXT);
	size_t enosys = p->n - 1, filter = p->n;
	for (size_t i = 0; i < p->n; i++) {
		uint16_t t[2] = {p->jt[i], p->jf[i]};
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

int sc_compile(struct sc_build *b, struct seccomp_filter *out, struct berr *err)
{
	struct sock_filter *body = NULL;
	size_t n_body = 0;
	if (export_bpf(b->ctx, &body, &n_body, err) < 0)
		return -1;
	struct prologue p = {.n = 0};
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

int seccomp_filter_load(const struct seccomp_filter *f, struct berr *err)
{
	struct sock_fprog fprog = {.len = (unsigned short)f->len, .filter = f->insns};
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->flags, &fprog);
	if (rc < 0 && errno == ENOSYS && f->flags == 0)
		rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
	if (rc < 0) {
		if (errno == EACCES)
			return berr_set(
			    err, errno,
			    "seccomp: load the filter (needs no_new_privs or CAP_SYS_ADMIN)");
		if (errno == EINVAL && f->flags)
			return berr_set(
			    err, errno,
			    "seccomp: load the filter (flags %#x not supported by this kernel)",
			    f->flags);
		return berr_set(err, errno, "seccomp: load the filter");
	}
	return 0;
}

#ifndef BERTH_VERSION
#define BERTH_VERSION "unversioned" /* fuzz builds */
#endif

/* Bumped whenever the way a build becomes a program changes (prologue,
 * optimisation), so cached programs of an older layout are not reused. */
#define SC_LAYOUT 2

/* Everything besides the profile that decides the program: cache keys
 * carry it. */
static const char *build_id(void)
{
	static char id[96];
	if (!id[0]) {
		const struct scmp_version *sv = LAZY(seccomp_version)();
		snprintf(id, sizeof(id), "arch=%x libseccomp=%u.%u.%u layout=%d berth=%s",
			 LAZY(seccomp_arch_native)(), sv->major, sv->minor, sv->micro, SC_LAYOUT,
			 BERTH_VERSION);
	}
	return id;
}

/* Compiles a finished build into a new filter; frees the build. */
static int finish(struct sc_build *b, unsigned int flags, struct seccomp_filter **out,
		  struct berr *err)
{
	/* A binary tree of syscall numbers: slower to build, but shorter to run
	 * on every syscall and to load (the kernel evaluates the filter for each
	 * syscall number at load time to build its cache). */
	LAZY(seccomp_attr_set)(b->ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	struct seccomp_filter *f = calloc(1, sizeof(*f));
	if (!f) {
		sc_build_free(b);
		return berr_set(err, ENOMEM, "seccomp: filter");
	}
	int rc = sc_compile(b, f, err);
	sc_build_free(b);
#ifdef __GLIBC__
	/* libseccomp's rule database takes about 1 MB while it builds; give it
	 * back, since a shim keeps running for the instance's lifetime. */
	malloc_trim(0);
#endif
	if (rc < 0) {
		free(f);
		return -1;
	}
	f->flags = flags;
	*out = f;
	return 0;
}

/* Looks the key up in the cache, or builds with `build` and stores it. */
static int cached(const char *kind, const char *key, size_t key_len,
		  int (*build)(void *arg, struct seccomp_filter **out, struct berr *err), void *arg,
		  struct seccomp_filter **out, struct berr *err)
{
	char name[64];
	snprintf(name, sizeof(name), "%s-%016llx.bpf", kind,
		 (unsigned long long)fnv1a(FNV1A_INIT, key, key_len));
	struct seccomp_filter *f = calloc(1, sizeof(*f));
	if (!f)
		return berr_set(err, ENOMEM, "seccomp: filter");
	if (sc_cache_get(name, key, key_len, f) == 0) {
		*out = f;
		return 0;
	}
	free(f);
	if (build(arg, out, err) < 0)
		return -1;
	sc_cache_put(name, key, key_len, *out);
	return 0;
}

static int build_default(void *arg, struct seccomp_filter **out, struct berr *err)
{
	struct sc_build b;
	if (sc_default_build(*(uint64_t *)arg, &b, err) < 0)
		return -1;
	return finish(&b, 0, out, err);
}

int seccomp_filter_default(uint64_t effective_caps, struct seccomp_filter **out, struct berr *err)
{
	if (lazy_require(LAZY_SECCOMP, err) < 0)
		return -1;
	uint64_t caps = effective_caps & sc_default_caps_mask();
	char key[256];
	int n = snprintf(key, sizeof(key), "%s caps=%llx %s", sc_default_profile_id(),
			 (unsigned long long)caps, build_id());
	return cached("default", key, (size_t)n, build_default, &caps, out, err);
}

/* Loads a filter its builder just made (built: the builder's result). */
static int load_built(int built, struct seccomp_filter *f, struct berr *err)
{
	if (built < 0)
		return -1;
	int rc = seccomp_filter_load(f, err);
	seccomp_filter_free(f);
	return rc;
}

int seccomp_load_default(uint64_t effective_caps, struct berr *err)
{
	struct seccomp_filter *f = NULL;
	int built = seccomp_filter_default(effective_caps, &f, err);
	return load_built(built, f, err);
}

static int build_oci(void *arg, struct seccomp_filter **out, struct berr *err)
{
	struct sc_build b;
	unsigned int flags = 0;
	if (sc_oci_build(arg, &b, &flags, err) < 0)
		return -1;
	if (finish(&b, flags, out, err) < 0)
		return berr_wrap(err, "linux.seccomp");
	return 0;
}

/* Cache keys for OCI profiles are the profile's JSON text itself, up to this
 * size; larger profiles are built every time. */
#define OCI_KEY_MAX (256 * 1024)

int seccomp_filter_oci(yajl_val seccomp, struct seccomp_filter **out, struct berr *err)
{
	if (lazy_require(LAZY_SECCOMP, err) < 0)
		return -1;
	yajl_gen g = json_gen_new(false);
	if (!g)
		return berr_set(err, ENOMEM, "linux.seccomp");
	char head[128];
	int hn = snprintf(head, sizeof(head), "oci %s ", build_id());
	size_t len = 0;
	char *text = NULL;
	if (json_gen_val(g, seccomp) == 0)
		text = json_gen_done(g, &len);
	if (!text || len > OCI_KEY_MAX) {
		free(text);
		return build_oci(seccomp, out, err);
	}
	char *key = malloc((size_t)hn + len + 1);
	if (!key) {
		free(text);
		return berr_set(err, ENOMEM, "linux.seccomp");
	}
	memcpy(key, head, (size_t)hn);
	memcpy(key + hn, text, len + 1);
	free(text);
	int rc = cached("oci", key, (size_t)hn + len, build_oci, seccomp, out, err);
	free(key);
	return rc;
}

int seccomp_load_oci(yajl_val seccomp, struct berr *err)
{
	struct seccomp_filter *f = NULL;
	int built = seccomp_filter_oci(seccomp, &f, err);
	if (built == 0 && load_built(built, f, err) < 0)
		return berr_wrap(err, "linux.seccomp");
	return built;
}
