/* libseccomp, loaded on first use (see common/lazy.h): only building an
 * instance's seccomp filter needs it. */
#include <seccomp.h>

#include "common/lazy.h"

LAZY_FN(LAZY_SECCOMP, scmp_filter_ctx, seccomp_init, (uint32_t def_action), (def_action))
LAZY_VOID_FN(LAZY_SECCOMP, seccomp_release, (scmp_filter_ctx ctx), (ctx))
LAZY_FN(LAZY_SECCOMP, int, seccomp_arch_add, (scmp_filter_ctx ctx, uint32_t arch_token),
	(ctx, arch_token))
LAZY_FN(LAZY_SECCOMP, uint32_t, seccomp_arch_native, (void), ())
LAZY_FN(LAZY_SECCOMP, uint32_t, seccomp_arch_resolve_name, (const char *arch_name), (arch_name))
LAZY_FN(LAZY_SECCOMP, int, seccomp_attr_set,
	(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value), (ctx, attr, value))
LAZY_FN(LAZY_SECCOMP, int, seccomp_export_bpf, (const scmp_filter_ctx ctx, int fd), (ctx, fd))
LAZY_FN(LAZY_SECCOMP, int, seccomp_rule_add_array,
	(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
	 const struct scmp_arg_cmp *arg_array),
	(ctx, action, syscall, arg_cnt, arg_array))
LAZY_FN(LAZY_SECCOMP, int, seccomp_syscall_resolve_name, (const char *name), (name))
LAZY_FN(LAZY_SECCOMP, int, seccomp_syscall_resolve_name_arch,
	(uint32_t arch_token, const char *name), (arch_token, name))
LAZY_FN(LAZY_SECCOMP, const struct scmp_version *, seccomp_version, (void), ())
