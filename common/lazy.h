/* Libraries that only some commands need are loaded on first use (dlopen),
 * so the long-running processes (daemon, hub, shims) do not carry them: with
 * Debian's builds, mapping libcurl and its dependencies alone costs a process
 * about 1.5 MB of private memory. `ldd build/berth` therefore shows only
 * yajl and the C library; docs/HACKING.md lists what a package depends on.
 *
 * Each library has one list of the functions berth calls in it
 * (common/lazy_libs.h), and a call goes through LAZY():
 *   CURL *h = LAZY(curl_easy_init)();
 *   LAZY(curl_easy_setopt)(h, CURLOPT_URL, url);
 * with the function's type taken from the library's own header, variadic
 * functions included. The first call loads the library and resolves every
 * function of its list.
 *
 * Where a code path starts (a registry client is created, an instance is
 * started) it calls lazy_require(), so a missing library or function is a
 * clear error there instead of an exit in the middle of the work; a LAZY()
 * call that cannot load its library exits with status 127 and says why.
 *
 * Loading is refused, loudly, where it would be wrong:
 * - in the child of a fork() taken while other threads ran (the loader's
 *   locks may have been held by one of them);
 * - after lazy_seal(): the instance process calls it before pivot_root, since
 *   a library opened after that would be read from the image.
 * What such a process needs is loaded before (lazy_require() in the parent).
 * libseccomp and libcap are needed only where an instance is started, and
 * libm only by routes that compute: the daemon, the hub and the shims do not
 * map them while they idle. */
#ifndef BERTH_LAZY_H
#define BERTH_LAZY_H

#include "common/err.h"
#include "common/lazy_libs.h"

enum lazy_lib {
#define LAZY_LIB_ID(id, soname, syms) LAZY_##id,
	LAZY_LIBRARIES(LAZY_LIB_ID)
#undef LAZY_LIB_ID
	    LAZY_COUNT
};

enum lazy_sym {
#define LAZY_SYM_ID(name)		LAZY_SYM_##name,
#define LAZY_LIB_SYMS(id, soname, syms) syms(LAZY_SYM_ID)
	LAZY_LIBRARIES(LAZY_LIB_SYMS)
#undef LAZY_LIB_SYMS
#undef LAZY_SYM_ID
	    LAZY_SYM_COUNT
};

/* Loads the library and resolves every function of its list (once;
 * thread-safe). 0, or -1 with err naming the library and what failed. */
NODISCARD int lazy_require(enum lazy_lib lib, struct berr *err);

/* From now on this process loads nothing more; `why` is said when something
 * tries ("after pivot_root into the instance's root"). */
void lazy_seal(const char *why);

/* The machinery behind LAZY(). */
extern void *lazy_fns[LAZY_SYM_COUNT];
void *lazy_resolve(enum lazy_sym sym);
static inline void *lazy_fn(enum lazy_sym sym)
{
	void *f = __atomic_load_n(&lazy_fns[sym], __ATOMIC_ACQUIRE);
	return f ? f : lazy_resolve(sym);
}
#define LAZY(name) (*(__typeof__(&name))lazy_fn(LAZY_SYM_##name))

/* For tests and messages. */
const char *lazy_soname(enum lazy_lib lib);
const char *lazy_sym_name(enum lazy_sym sym);
enum lazy_lib lazy_sym_lib(enum lazy_sym sym);

#endif
