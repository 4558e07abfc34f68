/* The store's files in a directory: pread/pwrite on descriptors, fdatasync,
 * and a lock so that two hubs never write one log.
 *
 * pwrite takes the bytes into memory (a run per file, appends growing it)
 * and returns: the event loop never waits for the device. The io's writer
 * thread writes what was taken, in order, as soon as it can, and a sync
 * writes what is left first; so the writes of one batch overlap the
 * fdatasync of the one before, and neither holds up the event loop. Reads
 * see what was taken at once: the file's bytes with the runs laid over
 * them. The runs of the last flush are kept for reads too, since a
 * direct write drops those pages from the page cache and a receiver reads a
 * message right after it is written. Taken bytes beyond HELD_MAX are
 * flushed by the caller, so memory stays bounded whatever the rate.
 *
 * Writes go to the device with O_DIRECT, a logical block (usually 512 bytes)
 * at a time, where the file system allows it: through the page cache, every
 * group commit would write whole 4 KiB pages again, since the page holding
 * the last partial record is clean after fdatasync and dirtied again by the
 * next batch. A write is widened to whole blocks: the partial block at its
 * start comes from a copy of the append tail kept from the previous write,
 * or is read from the file first, so the bytes before the write stay as
 * they were; the rest of its last block is written as zeros (the log
 * writes only at its end, so nothing lies there, and no read waits for the
 * device). Where O_DIRECT is refused or the alignment cannot be learnt, a file
 * is written through the page cache as before.
 *
 * A failed write is not tried again: every file open then is lost (its
 * writes, flushes and syncs fail, and what was taken is dropped) until it
 * is closed, so the log is opened again from what is on disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/log.h"
#include "hub/store_io.h"

#define LOCK_NAME "LOCK"
/* A larger write goes to the device in pieces of this size, so the bounce
 * buffer stays bounded whatever the batch. */
#define DIRECT_PIECE	 (256 * 1024)
#define DIRECT_ALIGN_MAX (64 * 1024)
/* Taken bytes past this are flushed by the pwrite that takes them. */
#define HELD_MAX (1024 * 1024)
/* Written runs kept for reads: the newest flush's, and older ones up to
 * this much; none once the writer thread has had nothing to do for a
 * second. */
#define DONE_KEEP (32 * 1024)

enum file_mode { MODE_UNKNOWN, MODE_DIRECT, MODE_BUFFERED };

/* Per handle (the buffered descriptor's number), under mu. The direct
 * descriptor is opened at the first write. */
struct posix_file {
	bool open;
	enum file_mode mode;
	int dfd;      /* O_DIRECT, on the same open file; -1 when none */
	uint32_t blk; /* the device's write granularity for this file */
	uint64_t size;
	int lost; /* the errno of a failed write while it was open; 0 */
	/* The block holding the end of the last direct write (the append
	 * tail), as the file has it now. */
	uint8_t *tail;
	size_t tail_cap, tail_align;
	uint64_t tail_off;
	bool tail_ok;
};

/* Bytes taken for file h from off. */
struct run {
	int h;
	uint64_t off;
	size_t len, cap;
	uint8_t *data;
};

struct runs {
	struct run *v;
	size_t n, cap;
	size_t bytes;
};

struct posix_io {
	struct store_io io;
	/* wmu: one writer of files at a time; it guards the bounce buffer.
	 * mu: the handle table and the runs. A flush works on a copy of a
	 * file's entry, which nobody else touches while runs of that file are
	 * held or being written. wmu is taken before mu, and mu is never held
	 * while the device writes. */
	pthread_mutex_t wmu, mu;
	pthread_cond_t wake;	/* the writer thread's, with mu */
	pthread_cond_t settled; /* a flush ended, with mu */
	pthread_t writer;
	bool writer_on, writer_idle, stop;
	bool writing; /* a flush is writing what it took */
	/* pwrite calls taken, and how many of them are written (or lost) */
	uint64_t taken, written;
	uint64_t drops; /* counts the times runs left done or lost */
	char *dir;
	int dirfd;
	int lockfd;
	struct posix_file *files; /* indexed by handle */
	size_t n_files;
	struct runs held;  /* taken, not yet written; newest last */
	struct runs going; /* being written by a flush */
	struct runs done;  /* written lately; oldest first */
	struct runs lost;  /* taken for files lost since, never written */
	uint8_t *bounce;   /* aligned to bounce_align */
	size_t bounce_cap;
	size_t bounce_align;
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

static void runs_clear(struct runs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].data);
	r->n = 0;
	r->bytes = 0;
}

static void runs_free(struct runs *r)
{
	runs_clear(r);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* The runs of h go (its file is closed, or its bytes are no longer those). */
static void runs_drop(struct runs *r, int h)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].h == h) {
			free(r->v[i].data);
			r->bytes -= r->v[i].len;
		} else
			r->v[n++] = r->v[i];
	}
	r->n = n;
}

/* [off, off + len) of h taken: appended to h's newest run when it starts
 * inside or at the end of it, else a run of its own. */
static int runs_take(struct posix_io *p, int h, const void *buf, size_t len, uint64_t off)
{
	struct runs *r = &p->held;
	struct run *last = NULL;
	for (size_t i = r->n; i-- > 0 && !last;)
		if (r->v[i].h == h)
			last = &r->v[i];
	/* Only the newest run of all may grow: an older one would then cover
	 * bytes a later run has, and win over them. */
	if (last && last != &r->v[r->n - 1])
		last = NULL;
	if (!last || off < last->off || off > last->off + last->len) {
		if (array_reserve(&r->v, &r->cap, r->n + 1, sizeof(*r->v), 8) < 0)
			return -1;
		last = &r->v[r->n++];
		*last = (struct run){.h = h, .off = off};
	}
	size_t need = (size_t)(off - last->off) + len;
	if (array_reserve(&last->data, &last->cap, need, 1, 4096) < 0) {
		if (!last->len)
			r->n--;
		return -1;
	}
	memcpy(last->data + (off - last->off), buf, len);
	if (need > last->len) {
		r->bytes += need - last->len;
		last->len = need;
	}
	return 0;
}

/* The runs of h laid over buf ([off, off + len)), oldest first; the end of
 * what they cover is raised in *got. */
static void runs_lay(const struct runs *r, int h, uint8_t *buf, size_t len, uint64_t off,
		     size_t *got)
{
	uint64_t end = off + len;
	for (size_t i = 0; i < r->n; i++) {
		const struct run *u = &r->v[i];
		uint64_t from = u->off > off ? u->off : off;
		uint64_t to = u->off + u->len < end ? u->off + u->len : end;
		if (u->h != h || from >= to)
			continue;
		if (from - off > *got)
			memset(buf + *got, 0, (size_t)(from - off) - *got);
		memcpy(buf + (from - off), u->data + (from - u->off), (size_t)(to - from));
		if (to - off > *got)
			*got = (size_t)(to - off);
	}
}

/* Whether the runs of h together hold all of [off, off + len). */
static bool runs_cover(struct runs *const *lists, size_t n_lists, int h, size_t len, uint64_t off)
{
	uint64_t at = off, end = off + len;
	bool moved = true;
	while (at < end && moved) {
		moved = false;
		for (size_t l = 0; l < n_lists; l++) {
			for (size_t i = 0; i < lists[l]->n; i++) {
				const struct run *u = &lists[l]->v[i];
				if (u->h == h && u->off <= at && at < u->off + u->len) {
					at = u->off + u->len;
					moved = true;
				}
			}
		}
	}
	return at >= end;
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

/* The runs of h laid over buf, oldest first (mu held). */
static size_t lay_all(struct runs *const lists[4], int h, uint8_t *buf, size_t len, uint64_t off,
		      size_t got)
{
	for (size_t l = 0; l < 4; l++)
		runs_lay(lists[l], h, buf, len, off, &got);
	return got;
}

/* The file's bytes with the runs laid over them: those written lately,
 * those being written, those taken since. A read the runs hold whole (a
 * receiver reading what was just written) needs no file read; a file read
 * holds no lock, and is made again under it when runs it might have needed
 * left meanwhile. */
static ssize_t p_pread(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
		       struct berr *err)
{
	struct posix_io *p = pio(io);
	struct runs *const lists[] = {&p->done, &p->lost, &p->going, &p->held};
	pthread_mutex_lock(&p->mu);
	if (len && runs_cover(lists, 4, h, len, off)) {
		size_t got = lay_all(lists, h, buf, len, off, 0);
		pthread_mutex_unlock(&p->mu);
		return (ssize_t)got;
	}
	uint64_t drops = p->drops;
	pthread_mutex_unlock(&p->mu);
	ssize_t n = read_fd(io, h, buf, len, off, err);
	pthread_mutex_lock(&p->mu);
	if (n >= 0 && p->drops != drops)
		n = read_fd(io, h, buf, len, off, err);
	if (n >= 0)
		n = (ssize_t)lay_all(lists, h, buf, len, off, (size_t)n);
	pthread_mutex_unlock(&p->mu);
	return n;
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
	if (f->tail_ok && f->tail_off == off) {
		memcpy(dst, f->tail, f->blk);
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
	if (grow_aligned(&f->tail, &f->tail_cap, &f->tail_align, bs, sizeof(void *)) < 0)
		return -1;
	for (uint64_t s = a; s < b;) {
		uint64_t e = b - s > piece ? s + piece : b;
		size_t n = (size_t)(e - s);
		if (grow_aligned(&p->bounce, &p->bounce_cap, &p->bounce_align, n, bs) < 0)
			return -1;
		bool head = s < off;
		if (head && fill_block(p, h, f, p->bounce, s) < 0)
			return -1;
		if (e > end) /* nothing of the log lies past its end */
			memset(p->bounce + (end - s), 0, (size_t)(e - end));
		uint64_t from = off > s ? off : s, to = end < e ? end : e;
		memcpy(p->bounce + (from - s), buf + (from - off), (size_t)(to - from));
		if (fs_write_all(f->dfd, p->bounce, n, (off_t)s) < 0)
			return -1;
		if (f->tail_ok && f->tail_off >= s && f->tail_off < e)
			memcpy(f->tail, p->bounce + (f->tail_off - s), bs);
		/* The last partial block is where the next append starts, unless
		 * this write went below the tail already kept (a header). */
		if (e == b && b > end && (!f->tail_ok || f->tail_off <= e - bs)) {
			memcpy(f->tail, p->bounce + n - bs, bs);
			f->tail_ok = true;
			f->tail_off = e - bs;
		}
		s = e;
	}
	return 0;
}

/* One run to the file (wmu held; f a copy of its entry): direct where it
 * can, else through the page cache. -1 with errno. */
static int write_run(struct posix_io *p, const struct run *u, struct posix_file *f)
{
	if (f->mode == MODE_UNKNOWN)
		direct_start(p, u->h, f);
	uint64_t off = u->off, end = u->off + u->len;
	if (f->mode == MODE_DIRECT && u->len) {
		uint64_t a = off - off % f->blk, b = end + (f->blk - end % f->blk) % f->blk;
		/* Whole blocks inside the file only: a write that moves its end
		 * goes through the page cache, so that the size is off + len
		 * (the log's segments are preallocated: that is a full disk). */
		if (b <= f->size) {
			if (direct_write(p, u->h, f, u->data, u->len, off, a, b) == 0)
				return 0;
			int e = errno;
			f->tail_ok = false;
			if (e != EINVAL)
				return (errno = e), -1;
			use_buffered(p, f, "a write with O_DIRECT", e);
		}
	}
	f->tail_ok = false;
	if (fs_write_all(u->h, u->data, u->len, (off_t)off) < 0)
		return -1;
	if (end > f->size)
		f->size = end;
	return 0;
}

/* The runs of from move to the end of to (mu held); -1 when there is no
 * room to list them. */
static int runs_move(struct runs *to, struct runs *from)
{
	if (array_reserve(&to->v, &to->cap, to->n + from->n, sizeof(*to->v), 8) < 0)
		return -1;
	memcpy(to->v + to->n, from->v, from->n * sizeof(*to->v));
	to->n += from->n;
	to->bytes += from->bytes;
	from->n = 0;
	from->bytes = 0;
	return 0;
}

/* The runs just written join the kept ones; only the last DONE_KEEP bytes
 * stay (mu held). -1 when there is no room to list them. */
static int keep_done(struct posix_io *p)
{
	struct runs *d = &p->done;
	if (runs_move(d, &p->going) < 0)
		return -1;
	size_t drop = 0;
	while (d->n - drop > 1 && d->bytes - d->v[drop].len >= DONE_KEEP) {
		d->bytes -= d->v[drop].len;
		free(d->v[drop++].data);
	}
	memmove(d->v, d->v + drop, (d->n - drop) * sizeof(*d->v));
	d->n -= drop;
	/* What is left of the oldest, its last bytes only. */
	if (d->n && d->bytes > DONE_KEEP) {
		struct run *u = &d->v[0];
		size_t cut = d->bytes - DONE_KEEP; /* under u->len, as the loop left it */
		memmove(u->data, u->data + cut, u->len - cut);
		u->off += cut;
		u->len -= cut;
		d->bytes -= cut;
		drop++;
	}
	if (drop)
		p->drops++;
	return 0;
}

/* Writes what was taken, in order (wmu held). After a failure every file
 * open is lost and nothing taken is written. */
static int write_held(struct posix_io *p, struct berr *err)
{
	pthread_mutex_lock(&p->mu);
	if (!p->held.n) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	struct runs t = p->going; /* empty */
	p->going = p->held;
	p->held = t;
	uint64_t upto = p->taken;
	p->writing = true;
	pthread_mutex_unlock(&p->mu);
	int code = 0;
	for (size_t i = 0; i < p->going.n && !code; i++) {
		const struct run *u = &p->going.v[i];
		pthread_mutex_lock(&p->mu);
		struct posix_file *pf = pfile(p, u->h);
		struct posix_file f = pf ? *pf : (struct posix_file){0};
		pthread_mutex_unlock(&p->mu);
		if (!f.open)
			continue; /* closed before it was written: nothing to keep */
		if (f.lost)
			code = f.lost;
		else if (write_run(p, u, &f) < 0)
			code = errno ? errno : EIO;
		pthread_mutex_lock(&p->mu);
		if ((pf = pfile(p, u->h))) {
			uint64_t size = pf->size > f.size ? pf->size : f.size;
			*pf = f;
			pf->size = size;
		}
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	if (code) {
		for (size_t i = 0; i < p->n_files; i++)
			if (p->files[i].open && !p->files[i].lost)
				p->files[i].lost = code;
		/* Never written, but a reader given those records before
		 * reads them until the files are closed. */
		if (runs_move(&p->lost, &p->going) < 0 || runs_move(&p->lost, &p->held) < 0) {
			runs_clear(&p->going);
			runs_clear(&p->held);
			p->drops++;
		}
		upto = p->taken;
	} else if (keep_done(p) < 0) {
		runs_clear(&p->going);
		p->drops++;
	}
	p->written = upto;
	p->writing = false;
	pthread_cond_broadcast(&p->settled);
	pthread_mutex_unlock(&p->mu);
	if (code)
		return berr_set(err, code, "write %s", p->io.where);
	return 0;
}

static int flush_all(struct posix_io *p, struct berr *err)
{
	pthread_mutex_lock(&p->wmu);
	int rc = write_held(p, err);
	pthread_mutex_unlock(&p->wmu);
	return rc;
}

/* 0, or -1 when h's file is lost (err says how). */
static int check_lost(struct posix_io *p, int h, struct berr *err)
{
	struct posix_file *f = pfile(p, h);
	if (f && f->lost)
		return berr_set(err, f->lost, "write %s (an earlier write failed)", p->io.where);
	return 0;
}

/* Whether runs of h are held or being written (mu held). */
static bool has_runs(struct posix_io *p, int h)
{
	const struct runs *lists[] = {&p->held, &p->going};
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (lists[l]->v[i].h == h)
				return true;
	return false;
}

/* mu taken, with nothing of h held or being written: what was taken for
 * it is in the file (or lost), and no flush touches its entry. */
static void lock_settled(struct posix_io *p, int h)
{
	pthread_mutex_lock(&p->mu);
	while (has_runs(p, h)) {
		pthread_mutex_unlock(&p->mu);
		struct berr err;
		(void)flush_all(p, &err); /* a failure is kept as the file's loss */
		pthread_mutex_lock(&p->mu);
	}
}

/* h's bytes in the file change under the kept runs and tail. */
static void forget(struct posix_io *p, int h)
{
	runs_drop(&p->done, h);
	runs_drop(&p->lost, h);
	p->drops++;
	struct posix_file *f = pfile(p, h);
	if (f)
		f->tail_ok = false;
}

static int p_open(struct store_io *io, const char *name, bool create, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = open_locked(io, name, create, err);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_pwrite(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
		    struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	int rc = check_lost(p, h, err);
	if (rc == 0 && !pfile(p, h))
		rc = berr_set(err, EBADF, "write %s", io->where);
	if (rc == 0 && len && runs_take(p, h, buf, len, off) < 0)
		rc = berr_set(err, ENOMEM, "write %s", io->where);
	if (rc == 0 && len)
		p->taken++;
	bool over = p->held.bytes > HELD_MAX, wake = rc == 0 && p->writer_idle;
	pthread_mutex_unlock(&p->mu);
	if (rc == 0 && over)
		rc = flush_all(p, err);
	else if (wake)
		pthread_cond_signal(&p->wake);
	return rc;
}

/* What was taken before the call is written first: by this thread when
 * nobody is writing, else by the flush under way (or the next) whose end
 * it waits for; it never queues behind the writer thread for wmu. */
static int p_sync(struct store_io *io, int h, struct berr *err)
{
	struct posix_io *p = pio(io);
	pthread_mutex_lock(&p->mu);
	uint64_t target = p->taken;
	while (p->written < target) {
		if (p->writing) {
			pthread_cond_wait(&p->settled, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		if (pthread_mutex_trylock(&p->wmu) == 0) {
			int rc = write_held(p, err);
			pthread_mutex_unlock(&p->wmu);
			if (rc < 0)
				return -1;
		} else {
			sched_yield(); /* a flush is about to say it writes */
		}
		pthread_mutex_lock(&p->mu);
	}
	int rc = check_lost(p, h, err);
	pthread_mutex_unlock(&p->mu);
	if (rc == 0 && fdatasync(h) < 0)
		rc = berr_set(err, errno, "fdatasync in %s", io->where);
	return rc;
}

static int p_truncate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct posix_io *p = pio(io);
	lock_settled(p, h);
	int rc = 0;
	if (ftruncate(h, (off_t)len) < 0)
		rc = berr_set(err, errno, "truncate in %s", io->where);
	struct posix_file *f = pfile(p, h);
	if (f && rc == 0)
		f->size = len;
	forget(p, h);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int p_allocate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct posix_io *p = pio(io);
	int rc = posix_fallocate(h, 0, (off_t)len);
	if (rc)
		return berr_set(err, rc, "allocate in %s", io->where);
	pthread_mutex_lock(&p->mu);
	struct posix_file *f = pfile(p, h);
	if (f && len > f->size)
		f->size = len;
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int p_size(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	struct posix_io *p = pio(io);
	lock_settled(p, h);
	struct stat st;
	int rc = fstat(h, &st) < 0 ? berr_set(err, errno, "stat in %s", io->where) : 0;
	pthread_mutex_unlock(&p->mu);
	*len = rc == 0 ? (uint64_t)st.st_size : 0;
	return rc;
}

static void p_close(struct store_io *io, int h)
{
	struct posix_io *p = pio(io);
	lock_settled(p, h);
	forget(p, h);
	struct posix_file *f = pfile(p, h);
	if (f) {
		if (f->dfd >= 0)
			close(f->dfd);
		free(f->tail);
		*f = (struct posix_file){.dfd = -1};
	}
	close(h);
	pthread_mutex_unlock(&p->mu);
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

/* The writer thread: what is taken is written as soon as it can be. A
 * failure is kept as the loss of the files open then (write_held), which
 * the next write or sync of them reports. */
static void *writer_main(void *arg)
{
	struct posix_io *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		if (!p->held.n) {
			p->writer_idle = true;
			if (p->done.n) {
				struct timespec until;
				clock_gettime(CLOCK_MONOTONIC, &until);
				until.tv_sec++;
				if (pthread_cond_timedwait(&p->wake, &p->mu, &until) == ETIMEDOUT &&
				    !p->held.n) {
					runs_clear(&p->done);
					p->drops++;
				}
			} else {
				pthread_cond_wait(&p->wake, &p->mu);
			}
			p->writer_idle = false;
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		struct berr err;
		(void)flush_all(p, &err);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void p_destroy(struct store_io *io)
{
	struct posix_io *p = pio(io);
	if (p->writer_on) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->writer, NULL);
	}
	struct berr err;
	if (p->dirfd >= 0 && flush_all(p, &err) < 0)
		log_error("store: %s", err.msg);
	if (p->lockfd >= 0)
		close(p->lockfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	for (size_t i = 0; i < p->n_files; i++) {
		if (p->files[i].open && p->files[i].dfd >= 0)
			close(p->files[i].dfd);
		free(p->files[i].tail);
	}
	runs_free(&p->held);
	runs_free(&p->going);
	runs_free(&p->done);
	runs_free(&p->lost);
	free(p->files);
	free(p->bounce);
	free(p->dir);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->wmu);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->settled);
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

int store_io_posix(const char *dir, bool writer, struct store_io **out, struct berr *err)
{
	struct posix_io *p = calloc(1, sizeof(*p));
	if (!p || !(p->dir = strdup(dir))) {
		free(p);
		return berr_set(err, ENOMEM, "store %s", dir);
	}
	p->io.ops = &posix_ops;
	p->io.where = p->dir;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->wmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->settled, NULL);
	p->dirfd = p->lockfd = -1;
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
	if (writer) {
		/* Signals go to the event loop's signalfd, never to this thread. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		int rc = pthread_create(&p->writer, NULL, writer_main, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc) {
			p_destroy(&p->io);
			return berr_set(err, rc, "store %s: writer thread", dir);
		}
		p->writer_on = true;
	}
	*out = &p->io;
	return 0;
}
