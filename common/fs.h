/* File-system helpers. Paths that come from outside (image layers, container
 * roots) are walked with fs_open_in_root(), never by joining strings. */
#ifndef BERTH_FS_H
#define BERTH_FS_H

#include <stdbool.h>
#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Reads a whole file, refusing files larger than max_len. *out is
 * NUL-terminated (the NUL is not counted in *len). */
NODISCARD int fs_read_file(const char *path, size_t max_len, char **out, size_t *len,
			   struct berr *err);
NODISCARD int fs_read_file_at(int dirfd, const char *name, size_t max_len, char **out, size_t *len,
			      struct berr *err);
/* The same for what remains to be read on fd (a pipe), to its end; `what`
 * names it in errors. */
NODISCARD int fs_read_fd(int fd, const char *what, size_t max_len, char **out, size_t *len,
			 struct berr *err);

/* Writes data to path so that a reader sees the old or the new content, never
 * a mix, even across a power cut: temporary file, fsync, rename, fsync dir. */
NODISCARD int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
				   struct berr *err);
NODISCARD int fs_write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len,
				      mode_t mode, struct berr *err);

/* Writes all of data to fd at offset off (pwrite), or at its file position
 * when off is negative, again after EINTR and short writes; -1 with errno
 * on failure. */
NODISCARD int fs_write_all(int fd, const void *data, size_t len, off_t off);

/* A directory stream over the directory dirfd, opened again so its
 * position is its own; NULL with err (naming `what`) when it cannot be. */
DIR *fs_opendir_at(int dirfd, const char *what, struct berr *err);

/* mkdir -p; existing directories are fine. */
NODISCARD int fs_mkdir_p(const char *path, mode_t mode, struct berr *err);

/* Removes name under dirfd and everything below it, never following symlinks
 * and never crossing into another mount. Missing is not an error. */
NODISCARD int fs_remove_tree_at(int dirfd, const char *name, struct berr *err);
NODISCARD int fs_remove_tree(const char *path, struct berr *err);

NODISCARD int fs_fsync_dir(const char *path, struct berr *err);

/* Opens `path` (relative or absolute, interpreted inside the root) under the
 * directory root_fd, resolving every component inside it: "..", absolute
 * symlinks and symlinks pointing out stay within the root, as chroot would
 * resolve them. Uses openat2(RESOLVE_IN_ROOT) and falls back to a walk one
 * component at a time with O_NOFOLLOW when openat2 is missing. Returns an fd
 * or -1 with err set. */
NODISCARD int fs_open_in_root(int root_fd, const char *path, int flags, mode_t mode,
			      struct berr *err);

/* Like fs_open_in_root() for the parent of path, creating missing parent
 * directories with mode 0755; *base gets the last component (pointing into
 * path). */
NODISCARD int fs_open_parent_in_root(int root_fd, const char *path, bool create, const char **base,
				     struct berr *err);

/* Tests: makes fs_open_in_root() use its fallback walk, as on kernels
 * without openat2 (before 5.6). */
void fs_disable_openat2(void);

/* True when the name is safe as a single path component: not empty, ".", ".."
 * and without '/'. */
bool fs_name_is_plain(const char *name);

#endif
