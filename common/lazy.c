#include "common/lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Sonames come from the build (Makefile reads them from the libraries the
 * build compiles against); these defaults match Debian 12. */
#ifndef LAZY_SONAME_CRYPTO
#define LAZY_SONAME_CRYPTO "libcrypto.so.3"
#endif
#ifndef LAZY_SONAME_SSL
#define LAZY_SONAME_SSL "libssl.so.3"
#endif
#ifndef LAZY_SONAME_CURL
#define LAZY_SONAME_CURL "libcurl.so.4"
#endif
#ifndef LAZY_SONAME_ARCHIVE
#define LAZY_SONAME_ARCHIVE "libarchive.so.13"
#endif
#ifndef LAZY_SONAME_MOSQUITTO
#define LAZY_SONAME_MOSQUITTO "libmosquitto.so.1"
#endif
#ifndef LAZY_SONAME_Z
#define LAZY_SONAME_Z "libz.so.1"
#endif
#ifndef LAZY_SONAME_ZSTD
#define LAZY_SONAME_ZSTD "libzstd.so.1"
#endif
#ifndef LAZY_SONAME_ISAL
#define LAZY_SONAME_ISAL "libisal.so.2"
#endif
#ifndef LAZY_SONAME_SECCOMP
#define LAZY_SONAME_SECCOMP "libseccomp.so.2"
#endif
#ifndef LAZY_SONAME_CAP
#define LAZY_SONAME_CAP "libcap.so.2"
#endif
#ifndef LAZY_SONAME_M
#define LAZY_SONAME_M "libm.so.6"
#endif

static const char *const sonames[LAZY_COUNT] = {
	[LAZY_CRYPTO] = LAZY_SONAME_CRYPTO,   [LAZY_SSL] = LAZY_SONAME_SSL,
	[LAZY_CURL] = LAZY_SONAME_CURL,	      [LAZY_ARCHIVE] = LAZY_SONAME_ARCHIVE,
	[LAZY_MOSQUITTO] = LAZY_SONAME_MOSQUITTO,
	[LAZY_Z] = LAZY_SONAME_Z,	      [LAZY_ZSTD] = LAZY_SONAME_ZSTD,
	[LAZY_ISAL] = LAZY_SONAME_ISAL,	      [LAZY_SECCOMP] = LAZY_SONAME_SECCOMP,
	[LAZY_CAP] = LAZY_SONAME_CAP,	      [LAZY_M] = LAZY_SONAME_M,
};

static void *handles[LAZY_COUNT];
static pthread_mutex_t lazy_lock = PTHREAD_MUTEX_INITIALIZER;

int lazy_require(enum lazy_lib lib, struct berr *err)
{
	if (__atomic_load_n(&handles[lib], __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&lazy_lock);
	void *h = handles[lib];
	if (!h) {
		h = dlopen(sonames[lib], RTLD_NOW | RTLD_GLOBAL);
		if (h)
			__atomic_store_n(&handles[lib], h, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lazy_lock);
	if (!h) {
		const char *why = dlerror();
		return berr_set(err, 0, "cannot load %s: %s (is the library installed?)", sonames[lib],
				why ? why : "unknown error");
	}
	return 0;
}

void *lazy_sym(enum lazy_lib lib, const char *name)
{
	struct berr err;
	if (lazy_require(lib, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.msg);
		_exit(127);
	}
	void *p = dlsym(handles[lib], name);
	if (!p) {
		fprintf(stderr, "berth: %s has no symbol %s\n", sonames[lib], name);
		_exit(127);
	}
	return p;
}
