/* OCI "linux.seccomp" objects from a bundle's config.json: parsed and built
 * into a BPF program (never loaded). Any input must either be refused with a
 * message or give a program the kernel's size limit admits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "shim/seccomp_internal.h"
#include "shim/security.h"

/* libseccomp 2.5.4 itself leaks 384 bytes when a syscall multiplexed on
 * 32-bit x86 (socket through socketcall) gets an unconditional rule after
 * conditional ones, even after seccomp_release(): not berth's to free.
 * tests/unit/test_seccomp*.c, under a sanitizer build, watch berth's own. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libseccomp.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	yajl_val v;
	struct berr err;
	if (json_parse((const char *)data, size, 64 * 1024, "fuzz", &v, &err) < 0)
		return 0;
	struct seccomp_filter *f = NULL;
	if (seccomp_filter_oci(v, &f, &err) == 0) {
		if (!f || f->len == 0 || f->len > BPF_MAXINSNS)
			abort();
		seccomp_filter_free(f);
	} else if (f || err.msg[0] == '\0') {
		abort();
	}
	yajl_tree_free(v);
	return 0;
}
