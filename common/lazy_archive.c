/* libarchive, loaded on first use (see common/lazy.h). */
#include <archive.h>
#include <archive_entry.h>

#include "common/lazy.h"

LAZY_FN(LAZY_ARCHIVE, const char *, archive_version_string, (void), ())

/* Reading layers (oci/unpack.c). */
LAZY_FN(LAZY_ARCHIVE, struct archive *, archive_read_new, (void), ())
LAZY_FN(LAZY_ARCHIVE, int, archive_read_support_format_tar, (struct archive *a), (a))
LAZY_FN(LAZY_ARCHIVE, int, archive_read_support_format_empty, (struct archive *a), (a))
LAZY_FN(LAZY_ARCHIVE, int, archive_read_open,
	(struct archive *a, void *data, archive_open_callback *open_cb,
	 archive_read_callback *read_cb, archive_close_callback *close_cb),
	(a, data, open_cb, read_cb, close_cb))
LAZY_FN(LAZY_ARCHIVE, int, archive_read_next_header,
	(struct archive *a, struct archive_entry **e), (a, e))
LAZY_FN(LAZY_ARCHIVE, int, archive_read_data_block,
	(struct archive *a, const void **buf, size_t *size, la_int64_t *offset),
	(a, buf, size, offset))
LAZY_FN(LAZY_ARCHIVE, int, archive_read_free, (struct archive *a), (a))
LAZY_FN(LAZY_ARCHIVE, const char *, archive_error_string, (struct archive *a), (a))
LAZY_FN(LAZY_ARCHIVE, const char *, archive_entry_pathname, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, const char *, archive_entry_hardlink, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, const char *, archive_entry_symlink, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, __LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, __LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, la_int64_t, archive_entry_uid, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, la_int64_t, archive_entry_gid, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, time_t, archive_entry_mtime, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, long, archive_entry_mtime_nsec, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, int, archive_entry_mtime_is_set, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, time_t, archive_entry_atime, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, long, archive_entry_atime_nsec, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, int, archive_entry_atime_is_set, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, la_int64_t, archive_entry_size, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, int, archive_entry_size_is_set, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, int, archive_entry_xattr_reset, (struct archive_entry *e), (e))
LAZY_FN(LAZY_ARCHIVE, int, archive_entry_xattr_next,
	(struct archive_entry *e, const char **name, const void **value, size_t *size),
	(e, name, value, size))
