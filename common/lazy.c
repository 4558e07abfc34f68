#include "common/lazy.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const sonames[LAZY_COUNT] = {
#define LAZY_LIB_SONAME(id, soname, syms) [LAZY_##id] = soname,
    LAZY_LIBRARIES(LAZY_LIB_SONAME)
#undef LAZY_LIB_SONAME
};

static const char *const sym_names[LAZY_SYM_COUNT] = {
#define LAZY_SYM_NAME(name)		[LAZY_SYM_##name] = #name,
#define LAZY_LIB_SYMS(id, soname, syms) syms(LAZY_SYM_NAME)
    LAZY_LIBRARIES(LAZY_LIB_SYMS)
#undef LAZY_LIB_SYMS
#undef LAZY_SYM_NAME
};

/* How many functions each list has: the lists follow each other in enum
 * lazy_sym in the order of LAZY_LIBRARIES. */
static const unsigned short sym_counts[LAZY_COUNT] = {
#define LAZY_ONE(name)			 +1
#define LAZY_LIB_COUNT(id, soname, syms) [LAZY_##id] = 0 syms(LAZY_ONE),
    LAZY_LIBRARIES(LAZY_LIB_COUNT)
#undef LAZY_LIB_COUNT
#undef LAZY_ONE
};

void *lazy_fns[LAZY_SYM_COUNT];
static void *handles[LAZY_COUNT];
static pthread_mutex_t lazy_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *sealed; /* why loading is refused; NULL: it is not */
static bool fork_with_threads;

const char *lazy_soname(enum lazy_lib lib)
{
	return sonames[lib];
}

const char *lazy_sym_name(enum lazy_sym sym)
{
	return sym_names[sym];
}

static size_t first_sym(enum lazy_lib lib)
{
	size_t first = 0;
	for (size_t i = 0; i < (size_t)lib; i++)
		first += sym_counts[i];
	return first;
}

enum lazy_lib lazy_sym_lib(enum lazy_sym sym)
{
	size_t first = 0, lib = 0;
	while (lib + 1 < LAZY_COUNT && (size_t)sym >= first + sym_counts[lib])
		first += sym_counts[lib++];
	return (enum lazy_lib)lib;
}

void lazy_seal(const char *why)
{
	__atomic_store_n(&sealed, why, __ATOMIC_RELEASE);
}

/* Threads of this process, from /proc/self/stat (field 20); 1 when it
 * cannot be read. */
static long thread_count(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	/* The command name (field 2) may hold blanks: count after its ')'. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 20; field++)
		p = strchr(p + 1, ' ');
	return p ? strtol(p + 1, NULL, 10) : 1;
}

static void before_fork(void)
{
	fork_with_threads = thread_count() > 1;
}

static void in_fork_child(void)
{
	if (fork_with_threads)
		lazy_seal("a fork() taken while other threads ran");
}

__attribute__((constructor)) static void lazy_init(void)
{
	pthread_atfork(before_fork, NULL, in_fork_child);
}

int lazy_require(enum lazy_lib lib, struct berr *err)
{
	if (__atomic_load_n(&handles[lib], __ATOMIC_ACQUIRE))
		return 0;
	const char *why = __atomic_load_n(&sealed, __ATOMIC_ACQUIRE);
	if (why)
		return berr_set(err, 0, "cannot load %s after %s: it must be loaded before",
				sonames[lib], why);
	int rc = 0;
	pthread_mutex_lock(&lazy_lock);
	if (!handles[lib]) {
		void *h = dlopen(sonames[lib], RTLD_NOW | RTLD_GLOBAL);
		if (!h) {
			const char *e = dlerror();
			rc = berr_set(err, 0, "cannot load %s: %s (is the library installed?)",
				      sonames[lib], e ? e : "unknown error");
		}
		size_t first = first_sym(lib);
		for (size_t i = first; h && i < first + sym_counts[lib]; i++) {
			void *f = dlsym(h, sym_names[i]);
			if (!f) {
				rc = berr_set(err, 0, "%s has no function %s (too old a version?)",
					      sonames[lib], sym_names[i]);
				dlclose(h);
				h = NULL;
				break;
			}
			__atomic_store_n(&lazy_fns[i], f, __ATOMIC_RELEASE);
		}
		if (h)
			__atomic_store_n(&handles[lib], h, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lazy_lock);
	return rc;
}

void *lazy_resolve(enum lazy_sym sym)
{
	struct berr err;
	if (lazy_require(lazy_sym_lib(sym), &err) < 0) {
		fprintf(stderr, "berth: %s: %s\n", sym_names[sym], err.msg);
		_exit(127);
	}
	return lazy_fns[sym];
}
