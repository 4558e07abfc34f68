/* The store's file I/O (private to hub/): the log reaches files only through
 * these calls, so unit tests can run it over a simulated disk that loses
 * unsynced bytes, tears writes and flips bits at a power cut, and the hub
 * runs it over a directory (store_io_posix.c). Files are named by plain
 * names inside the log's directory; a file is an int handle.
 *
 * The sync thread calls sync, sync_dir, unlink and rename while the event
 * loop calls pread and pwrite on the same files, and it prepares the next
 * segment (open, size, truncate, pwrite, close on a file the loop does not
 * use yet): an implementation used with the thread must allow that. */
#ifndef BERTH_HUB_STORE_IO_H
#define BERTH_HUB_STORE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "hub/store.h"

struct store_io;

struct store_io_ops {
	/* Read and write; create makes a new file (it must not exist). */
	int (*open)(struct store_io *io, const char *name, bool create, struct berr *err);
	/* Bytes read (short only at the end of the file), or -1. */
	ssize_t (*pread)(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
			 struct berr *err);
	/* All of it, or -1 (err->code ENOSPC when the device is full). The
	 * bytes from its end to the end of the device block holding it may
	 * read as zeros afterwards (the log writes only at its end). An
	 * implementation may keep the bytes in memory for a while (reads see
	 * them at once, sync writes them first); a failure to write them then
	 * comes from the next pwrite or sync of a file open then. */
	int (*pwrite)(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
		      struct berr *err);
	/* fdatasync: what was written is on stable storage. */
	int (*sync)(struct store_io *io, int h, struct berr *err);
	int (*truncate)(struct store_io *io, int h, uint64_t len, struct berr *err);
	/* Reserves len bytes (reading as zeros) so that later writes change
	 * neither the size nor the allocation: a sync then writes the data
	 * alone. -1 where the file system cannot (the store goes on without). */
	int (*allocate)(struct store_io *io, int h, uint64_t len, struct berr *err);
	int (*size)(struct store_io *io, int h, uint64_t *len, struct berr *err);
	void (*close)(struct store_io *io, int h);
	int (*unlink)(struct store_io *io, const char *name, struct berr *err);
	/* Makes creations and removals of files durable. */
	int (*sync_dir)(struct store_io *io, struct berr *err);
	/* Calls fn for every file name; a negative return from fn stops. */
	int (*list)(struct store_io *io, int (*fn)(const char *name, void *arg), void *arg,
		    struct berr *err);
	/* Bytes free for an unprivileged writer, and the device's size. */
	int (*space)(struct store_io *io, uint64_t *avail, uint64_t *total, struct berr *err);
	void (*destroy)(struct store_io *io);
	/* Gives a file another name (to must not exist): durable after
	 * sync_dir, like creations and removals. */
	int (*rename)(struct store_io *io, const char *from, const char *to, struct berr *err);
};

struct store_io {
	const struct store_io_ops *ops;
	const char *where; /* for messages: the directory */
};

/* The log in dir (created 0700 when missing), locked against a second hub:
 * a store another process holds is refused, never shared. With writer, a
 * thread of the io writes what pwrite takes as soon as it can (the hub);
 * without, only sync (and a pwrite past what the io holds) writes. */
NODISCARD int store_io_posix(const char *dir, bool writer, struct store_io **out, struct berr *err);

/* store_open() over io (not destroyed by store_close). With threaded false
 * there is no writer thread: store_dispatch() writes and syncs what waits,
 * so a test decides where power is cut. */
NODISCARD int store_open_io(const struct store_options *opt, struct store_io *io, bool threaded,
			    struct store **out, struct berr *err);

#endif
