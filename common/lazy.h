/* Libraries that only some commands need are loaded on first use (dlopen),
 * so the long-running processes (daemon, hub, shims) do not carry them: with
 * Debian's builds, mapping libcurl and its dependencies alone costs a process
 * about 1.5 MB of private memory.
 *
 * Code calls these libraries' functions by their usual names; each lazily
 * loaded function is defined once in common/lazy_<lib>.c by a LAZY_FN line
 * that resolves it on first call. Call lazy_require() at the entry point of a
 * code path (e.g. when a registry client is created) so a missing library
 * becomes a clear error instead of an exit in the middle of the work.
 *
 * libseccomp and libcap are needed only where an instance is started, and
 * libm only by routes that compute: the daemon, the hub and the shims do not
 * map them while they idle. Code that calls them after pivot_root (an
 * instance's capabilities) must have loaded them before; resolving a symbol
 * of a library already loaded reads no file. libm ships with the C library,
 * so its functions need no lazy_require(). */
#ifndef BERTH_LAZY_H
#define BERTH_LAZY_H

#include "common/err.h"

enum lazy_lib {
	LAZY_CRYPTO,	/* libcrypto: digests, HMAC */
	LAZY_SSL,	/* libssl: the hub's TLS listener */
	LAZY_CURL,	/* libcurl: registry client */
	LAZY_ARCHIVE,	/* libarchive: layer unpacking */
	LAZY_MOSQUITTO,	/* libmosquitto: upstream MQTT client */
	LAZY_Z,		/* zlib: gzip layers */
	LAZY_ZSTD,	/* libzstd: zstd layers */
	LAZY_ISAL,	/* ISA-L: faster gzip layers, where available */
	LAZY_SECCOMP,	/* libseccomp: building an instance's filter */
	LAZY_CAP,	/* libcap: an instance's capability sets */
	LAZY_M,		/* libm: the route functions power, exp, sqrt and % */
	LAZY_COUNT
};

/* Loads the library (once; thread-safe). 0, or -1 with err naming the
 * library and dlerror(). */
int lazy_require(enum lazy_lib lib, struct berr *err);

/* Resolves a symbol, loading the library if needed; exits with status 127
 * and a message when either fails (a lazy_require() was missing). */
void *lazy_sym(enum lazy_lib lib, const char *name);

/* Defines `ret name params` as a call through the lazily resolved symbol.
 * Example: LAZY_FN(LAZY_CURL, CURL *, curl_easy_init, (void), ()) */
#define LAZY_FN(lib, ret, name, params, args)                                               \
	ret name params                                                                     \
	{                                                                                   \
		static ret(*fp) params;                                                     \
		ret(*f) params = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);                    \
		if (!f) {                                                                   \
			f = (ret(*) params)lazy_sym(lib, #name);                            \
			__atomic_store_n(&fp, f, __ATOMIC_RELEASE);                         \
		}                                                                           \
		return f args;                                                              \
	}

#define LAZY_VOID_FN(lib, name, params, args)                                               \
	void name params                                                                    \
	{                                                                                   \
		static void(*fp) params;                                                    \
		void(*f) params = __atomic_load_n(&fp, __ATOMIC_ACQUIRE);                   \
		if (!f) {                                                                   \
			f = (void(*) params)lazy_sym(lib, #name);                           \
			__atomic_store_n(&fp, f, __ATOMIC_RELEASE);                         \
		}                                                                           \
		f args;                                                                     \
	}

#endif
