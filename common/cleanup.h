/* Scope-bound cleanup, so early returns cannot leak: a variable declared
 * with cleanup_free, cleanup_close, cleanup_fclose, cleanup_closedir,
 * cleanup_yajl (a parsed JSON tree) or cleanup_strv (a string vector) is
 * released when it goes out of scope, whichever return is taken.
 *
 * Ownership leaves such a variable through take_ptr() and take_fd(), which
 * return the value and leave NULL / -1 behind:
 *   *out = take_ptr(buf);
 *   return take_fd(&fd);
 *
 * goto-cleanup is right only where leaving has to undo work that no single
 * variable owns: an output the function filled halfway (free it on failure,
 * keep it on success), or steps to reverse in order (a mount, a cgroup, a
 * registration). Then one label at the end does the undoing, and every
 * failure path goes there. What a variable owns is released by its cleanup
 * attribute, not by the label. */
#ifndef BERTH_CLEANUP_H
#define BERTH_CLEANUP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/strv.h"

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}
static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void cleanup_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void cleanup_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
static inline void cleanup_yajlp(yajl_val *v)
{
	if (*v)
		yajl_tree_free(*v);
}
static inline void cleanup_strvp(char ***v)
{
	strv_free(*v);
}

#define cleanup_free	 __attribute__((cleanup(cleanup_freep)))
#define cleanup_close	 __attribute__((cleanup(cleanup_closep)))
#define cleanup_fclose	 __attribute__((cleanup(cleanup_fclosep)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedirp)))
#define cleanup_yajl	 __attribute__((cleanup(cleanup_yajlp)))
#define cleanup_strv	 __attribute__((cleanup(cleanup_strvp)))

/* The descriptor, leaving -1 behind. */
static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* The pointer, leaving NULL behind. */
#define take_ptr(p)                                                                                \
	({                                                                                         \
		__typeof__(p) taken_ = (p);                                                        \
		(p) = NULL;                                                                        \
		taken_;                                                                            \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Frees each pointer given (NULL ones too): what a struct owns, in one
 * statement instead of a line per field. strv_free_many() does the same for
 * string vectors. */
#define free_many(...) free_each((void *[]){__VA_ARGS__}, ARRAY_SIZE(((void *[]){__VA_ARGS__})))
#define strv_free_many(...)                                                                        \
	strv_free_each((char **[]){__VA_ARGS__}, ARRAY_SIZE(((char **[]){__VA_ARGS__})))
static inline void free_each(void *const *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i]);
}
static inline void strv_free_each(char **const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		strv_free(v[i]);
}

#endif
