/* The store's files in a directory: pread/pwrite on descriptors, fdatasync,
 * and a lock so that two hubs never write one log.
 *
 * Writes go to the device with O_DIRECT, a logical block (usually 512 bytes)
 * at a time, where the file system allows it: through the page cache, every
 * group commit would write whole 4 KiB pages again, since the page holding
 * the last partial record is clean after fdatasync and dirtied again by the
 * next batch. A write is widened to whole blocks: the partial block at each
 * end comes from a copy of the append tail kept from the previous write, or
 * is read from the file first, so the bytes around the write stay as they
 * were. Reads go through the page cache (the kernel drops the pages a
 * direct write covers). Where O_DIRECT is refused or the alignment cannot be
 * learnt, a file is written through the page cache as before. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "hub/store_io.h"

#define LOCK_NAME "LOCK"
/* A larger write goes to the device in pieces of this size, so the bounce
 * buffer stays bounded whatever the batch. */
#define DIRECT_PIECE	 (256 * 1024)
#define DIRECT_ALIGN_MAX (64 * 1024)

enum file_mode { MODE_UNKNOWN, MODE_DIRECT, MODE_BUFFERED };

/* Per handle (the buffered descriptor's number), under the lock. The
 * direct descriptor is opened at the first write. */
struct posix_file {
	bool open;
	enum file_mode mode;
	int dfd;      /* O_DIRECT, on the same open file; -1 when none */
	uint32_t blk; /* the device's write granularity for this file */
	uint64_t size;
};

struct posix_io {
	struct store_io io;
	pthread_mutex_t mu;
	char *dir;
	int dirfd;
	int lockfd;
	struct posix_file *files; /* indexed by handle */
	size_t n_files;
	uint8_t *bounce; /* aligned to bounce_align */
	size_t bounce_cap;
	size_t bounce_align;
	/* The block holding the end of the last direct write (the append tail),
	 * as the file has it now. */
	uint8_t *tail;
	size_t tail_cap;
	size_t tail_align;
	int tail_h; /* -1 when there is none */
	uint64_t tail_off;
	/* The last piece written with O_DIRECT is still in the bounce buffer:
	 * reads of what was just written (a receiver takes a message before
	 * its sync) come from there, since the write dropped those pages from
	 * the page cache. */
	int last_h; /* -1 when there is none */
	uint64_t last_off;
	size_t last_len;
	bool told_buffered;
};

static struct posix_io *pio(struct store_io *io)
{
	return (struct posix_io *)io;
}

static struct posix_file *pfile(struct posix_io *p, int h)
{
	return h >= 0 && (size_t)h < p->n_files && p->files[h].open ? &p->files[h] : NULL;
}

/* What is kept of h's file no longer holds. */
static void forget(struct posix_io *p, int h)
{
	if (p->tail_h == h)
		p->tail_h = -1;
	if (p->last_h == h)
		p->last_h = -1;
}

static int open_locked(struct store_io *io, const char *name, bool create, struct berr *err)
{
	struct posix_io *p = pio(io);
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
	int fd = openat(p->dirfd, name, flags, 0600);
	if (fd < 0)
		return berr_set(err, errno, "%s %s/%s", create ? "create" : "open", io->where,
				name);
	if ((size_t)fd >= p->n_files) {
		size_t n = p->n_files ? p->n_files : 16;
		while (n <= (size_t)fd)
			n *= 2;
		struct posix_file *f = realloc(p->files, n * sizeof(*f));
		if (!f) {
			close(fd);
			return berr_set(err, ENOMEM, "open %s/%s", io->where, name);
		}
		memset(f + p->n_files, 0, (n - p->n_files) * sizeof(*f));
		p->files = f;
		p->n_files = n;
	}
	p->files[fd] = (struct posix_file){.open = true, .mode = MODE_UNKNOWN, .dfd = -1};
	forget(p, fd);
	return fd;
}

static ssize_t read_fd(struct store_io *io, int fd, void *buf, size_t len, uint64_t off,
		       struct berr *err)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berr_set(err, errno, "read %s", io->where);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static ssize_t pread_locked(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
			    struct berr *err)
{
	struct posix_io *p = pio(io);
	uint64_t end = off + len, last_end = p->last_off + p->last_len;
	if (p->last_h != h || end <= p->last_off || end > last_end)
		return read_fd(io, h, buf, len, off, err);
	/* Ends inside the last write: what comes before it from the file. */
	size_t before = off < p->last_off ? (size_t)(p->last_off - off) : 0;
	ssize_t n = read_fd(io, h, buf, before, off, err);
	if (n < (ssize_t)before)
		return n;
	uint64_t from = off + before;
	memcpy((uint8_t *)buf + before, p->bounce + (from - p->last_off), (size_t)(end - from));
	return (ssize_t)len;
}

/* The alignment direct I/O needs on h's file: statx where the kernel says
 * (Linux 6.1+), else the logical block size of the device under it; 0 when
 * neither tells (no direct I/O then). */
static uint32_t direct_align(int h, const struct stat *st)
{
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(h, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN)) {
		uint32_t a = sx.stx_dio_offset_align;
		return a > sx.stx_dio_mem_align ? a : sx.stx_dio_mem_align;
	}
#endif
	/* A partition has no queue of its own: its disk's is one level up. */
	for (int up = 0; up < 2; up++) {
		char path[96];
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%squeue/logical_block_size",
			 major(st->st_dev), minor(st->st_dev), up ? "../" : "");
		cleanup_fclose FILE *f = fopen(path, "re");
		unsigned v = 0;
		if (f && fscanf(f, "%u", &v) == 1)
			return v;
	}
	return 0;
}

static void use_buffered(struct posix_io *p, struct posix_file *f, const char *why, int code)
{
	if (f->dfd >= 0)
		close(f->dfd);
	f->dfd = -1;
	f->mode = MODE_BUFFERED;
	if (!p->told_buffered)
		log_info("store %s: writing through the page cache (%s%s%s)", p->io.where, why,
			 code ? ": " : "", code ? strerror(code) : "");
	p->told_buffered = true;
}

/* At the first write to a file: its size, alignment and direct descriptor,
 * opened again through /proc so that it is the same file whatever its name
 * is by then. */
static void direct_start(struct posix_io *p, int h, struct posix_file *f)
{
	struct stat st;
	if (fstat(h, &st) < 0) {
		use_buffered(p, f, "stat a segment", errno);
		return;
	}
	f->size = (uint64_t)st.st_size;
	uint32_t a = direct_align(h, &st);
	if (a == 0 || a > DIRECT_ALIGN_MAX || (a & (a - 1))) {
		use_buffered(p, f, "the file system tells no alignment for O_DIRECT", 0);
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", h);
	f->dfd = open(path, O_RDWR | O_CLOEXEC | O_DIRECT);
	struct stat dst;
	if (f->dfd < 0 || fstat(f->dfd, &dst) < 0) {
		use_buffered(p, f, "open with O_DIRECT", errno);
		return;
	}
	if (dst.st_ino != st.st_ino || dst.st_dev != st.st_dev) {
		use_buffered(p, f, "open with O_DIRECT: another file", 0);
		return;
	}
	f->blk = a;
	f->mode = MODE_DIRECT;
}

/* *buf holds at least need bytes, aligned to a; -1 with errno when not. */
static int grow_aligned(uint8_t **buf, size_t *cap, size_t *align, size_t need, size_t a)
{
	if (need <= *cap && a <= *align)
		return 0;
	size_t n = *cap > need ? *cap : need;
	size_t na = a > *align ? a : *align;
	void *q;
	if (posix_memalign(&q, na, n))
		return (errno = ENOMEM), -1;
	free(*buf);
	*buf = q;
	*cap = n;
	*align = na;
	return 0;
}

/* The block at off of h's file into dst (aligned): from the tail copy when
 * it is that block, else read from the file (zeros past its end). */
static int fill_block(struct posix_io *p, int h, struct posix_file *f, uint8_t *dst, uint64_t off)
{
	if (p->tail_h == h && p->tail_off == off) {
		memcpy(dst, p->tail, f->blk);
		return 0;
	}
	ssize_t n;
	do
		n = pread(f->dfd, dst, f->blk, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	memset(dst + n, 0, f->blk - (size_t)n);
	return 0;
}

/* [off, off + len) written as the whole blocks [a, b) through the bounce
 * buffer, a piece at a time; -1 with errno. */
static int direct_write(struct posix_io *p, int h, struct posix_file *f, const uint8_t *buf,
			size_t len, uint64_t off, uint64_t a, uint64_t b)
{
	uint64_t bs = f->blk, end = off + len;
	uint64_t piece = DIRECT_PIECE - DIRECT_PIECE % bs;
	if (grow_aligned(&p->tail, &p->tail_cap, &p->tail_align, bs, sizeof(void *)) < 0)
		return -1;
	for (uint64_t s = a; s < b;) {
		uint64_t e = b - s > piece ? s + piece : b;
		size_t n = (size_t)(e - s);
		if (grow_aligned(&p->bounce, &p->bounce_cap, &p->bounce_align, n, bs) < 0)
			return -1;
		p->last_h = -1;
		bool head = s < off;
		if (head && fill_block(p, h, f, p->bounce, s) < 0)
			return -1;
		if (e > end && !(head && e - bs == s) &&
		    fill_block(p, h, f, p->bounce + n - bs, e - bs) < 0)
			return -1;
		uint64_t from = off > s ? off : s, to = end < e ? end : e;
		memcpy(p->bounce + (from - s), buf + (from - off), (size_t)(to - from));
		if (fs_write_all(f->dfd, p->bounce, n, (off_t)s) < 0)
			return -1;
		p->last_h = h;
		p->last_off = s;
		p->last_len = n;
		if (p->tail_h == h && p->tail_off >= s && p->tail_off < e)
			memcpy(p->tail, p->bounce + (p->tail_off - s), bs);
		/* The last partial block is where the next append starts, unless
		 * this write went below the tail already kept (a header). */
		if (e == b && b > end && (p->tail_h != h || p->tail_off <= e - bs)) {
			memcpy(p->tail, p->bounce + n - bs, bs);
			p->tail_h = h;
			p->tail_off = e - bs;
		}
		s = e;
	}
	return 0;
}

static int pwrite_locked(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
			 struct berr *err)
{
	struct posix_io *p = pio(io);
	struct posix_file *f = pfile(p, h);
	if (f && f->mode == MODE_UNKNOWN)
		direct_start(p, h, f);
	uint64_t end = off + len;
	if (f && f->mode == MODE_DIRECT && len) {
		uint64_t a = off - off % f->blk, b = end + (f->blk - end % f->blk) % f->blk;
		/* Whole blocks inside the file only: a write that moves its end
		 * goes through the page cache, so that the size is off + len
		 * (the log's segments are preallocated: that is a full disk). */
		if (b <= f->size) {
			if (direct_write(p, h, f, buf, len, off, a, b) == 0)
				return 0;
			int e = errno;
			forget(p, h);
			if (e != EINVAL)
				return berr_set(err, e, "write %s", io->where);
			use_buffered(p, f, "a write with O_DIRECT", e);
		}
	}
	if (fs_write_all(h, buf, len, (off_t)off) < 0)
		return berr_set(err, errno, "write %s", io->where);
	forget(p, h);
	if (f && end > f->size)
		f->size = end;
	return 0;
}

static int p_sync(struct store_io *io, int h, struct berr *err)
{
	if (fdatasync(h) < 0)
		return berr_set(err, errno, "fdatasync in %s", io->where);
	return 0;
}

static int truncate_locked(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	if (ftruncate(h, (off_t)len) < 0)
		return berr_set(err, errno, "truncate in %s", io->where);
	struct posix_file *f = pfile(pio(io), h);
	if (f)
		f->size = len;
	forget(pio(io), h);
	return 0;
}

static int allocate_locked(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	int rc = posix_fallocate(h, 0, (off_t)len);
	if (rc)
		return berr_set(err, rc, "allocate in %s", io->where);
	struct posix_file *f = pfile(pio(io), h);
	if (f && len > f->size)
		f->size = len;
	return 0;
}

static int size_locked(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	struct stat st;
	if (fstat(h, &st) < 0)
		return berr_set(err, errno, "stat in %s", io->where);
	*len = (uint64_t)st.st_size;
	return 0;
}

static void close_locked(struct store_io *io, int h)
{
	struct posix_file *f = pfile(pio(io), h);
	if (f) {
		if (f->dfd >= 0)
			close(f->dfd);
		*f = (struct posix_file){.dfd = -1};
	}
	forget(pio(io), h);
	close(h);
}

static int p_unlink(struct store_io *io, const char *name, struct berr *err)
{
	if (unlinkat(pio(io)->dirfd, name, 0) < 0 && errno != ENOENT)
		return berr_set(err, errno, "remove %s/%s", io->where, name);
	return 0;
}

static int p_sync_dir(struct store_io *io, struct berr *err)
{
	if (fsync(pio(io)->dirfd) < 0)
		return berr_set(err, errno, "fsync %s", io->where);
	return 0;
}

static int p_list(struct store_io *io, int (*fn)(const char *name, void *arg), void *arg,
		  struct berr *err)
{
	int fd = openat(pio(io)->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_closedir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return berr_set(err, errno, "list %s", io->where);
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && fn(e->d_name, arg) < 0)
			return -1;
	return 0;
}

static int p_space(struct store_io *io, uint64_t *avail, uint64_t *total, struct berr *err)
{
	struct statvfs sv;
	if (fstatvfs(pio(io)->dirfd, &sv) < 0)
		return berr_set(err, errno, "statvfs %s", io->where);
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}

static int p_rename(struct store_io *io, const char *from, const char *to, struct berr *err)
{
	int dfd = pio(io)->dirfd;
	if (renameat(dfd, from, dfd, to) < 0)
		return berr_set(err, errno, "rename %s/%s to %s", io->where, from, to);
	return 0;
}

/* The sync thread prepares a segment (open, size, truncate, pwrite, close
 * on a file the event loop does not use yet) while the loop reads and
 * writes: the handle table, the bounce buffer and the tail copy are shared,
 * so every call that touches them holds the lock. */
static int p_open(struct store_io *io, const char *name, bool create, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = open_locked(io, name, create, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static ssize_t p_pread(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
		       struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	ssize_t rc = pread_locked(io, h, buf, len, off, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_pwrite(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
		    struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = pwrite_locked(io, h, buf, len, off, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_truncate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = truncate_locked(io, h, len, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_allocate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = allocate_locked(io, h, len, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_size(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = size_locked(io, h, len, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static void p_close(struct store_io *io, int h)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	close_locked(io, h);
	pthread_mutex_unlock(&p->mu);
}

static void p_destroy(struct store_io *io)
{
	struct posix_io *p = pio(io);
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].open && p->files[i].dfd >= 0)
			close(p->files[i].dfd);
	free(p->files);
	free(p->bounce);
	free(p->tail);
	free(p->dir);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static const struct store_io_ops posix_ops = {
    .open = p_open,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .sync = p_sync,
    .truncate = p_truncate,
    .allocate = p_allocate,
    .size = p_size,
    .close = p_close,
    .unlink = p_unlink,
    .sync_dir = p_sync_dir,
    .list = p_list,
    .space = p_space,
    .destroy = p_destroy,
    .rename = p_rename,
};

int store_io_posix(const char *dir, struct store_io **out, struct berr *err)
{
	struct posix_io *p = calloc(1, sizeof(*p));
	if (!p || !(p->dir = strdup(dir))) {
		free(p);
		return berr_set(err, ENOMEM, "store %s", dir);
	}
	p->io.ops = &posix_ops;
	p->io.where = p->dir;
	pthread_mutex_init(&p->mu, NULL);
	p->dirfd = p->lockfd = p->tail_h = p->last_h = -1;
	if (fs_mkdir_p(dir, 0700, err) < 0) {
		p_destroy(&p->io);
		return berr_wrap(err, "store %s: cannot create it", dir);
	}
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		int e = errno;
		p_destroy(&p->io);
		return berr_set(err, e, "store %s: cannot open it", dir);
	}
	p->lockfd = openat(p->dirfd, LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->lockfd < 0 || flock(p->lockfd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		p_destroy(&p->io);
		if (e == EWOULDBLOCK)
			return berr_set(err, 0, "store %s is in use by another hub", dir);
		return berr_set(err, e, "store %s: lock", dir);
	}
	*out = &p->io;
	return 0;
}
