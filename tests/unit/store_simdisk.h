/* A simulated disk under the store's I/O interface (hub/store_io.h), in the
 * manner of LevelDB's fault-injection environment and SQLite's crash tests:
 * what was written is kept apart from what was synced, and a power cut
 * (sim_cut) keeps only the synced bytes, or those plus the unsynced writes
 * with the last one torn at any offset, or a random subset of them torn and
 * with bits flipped. Names created, renamed or removed since the last
 * directory sync may come back or vanish. The cut itself can be set to happen at the Nth
 * write-side operation (sim_arm): that operation and everything after it
 * fail with EIO until sim_cut.
 *
 * Header-only, for tests and fuzz targets; single-threaded (the store opened
 * with threaded false). */
#ifndef BERTH_TEST_STORE_SIMDISK_H
#define BERTH_TEST_STORE_SIMDISK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/store_io.h"

#define SIM_FILES   256
#define SIM_HANDLES 512

enum sim_cut_mode {
	SIM_LOSE_UNSYNCED, /* only what was synced survives */
	SIM_TEAR_LAST,	   /* the unsynced writes survive, the last one torn */
	SIM_REORDER,	   /* any subset of them survives, one torn */
	SIM_FLIP_BITS,	   /* SIM_REORDER, and bits flip in what survived */
	SIM_MODES
};

struct sim_write {
	uint64_t off;
	size_t len;
	uint8_t *data; /* NULL: a truncate to off */
};

struct sim_file {
	bool used;
	char name[64];
	char durable_name[64]; /* its name after a power cut */
	bool linked;	       /* in the directory now */
	bool linked_durable;   /* in the directory after a power cut */
	uint8_t *data;
	size_t len, cap;
	uint8_t *synced;
	size_t synced_len;
	struct sim_write *w; /* writes since the last sync */
	size_t n_w, cap_w;
};

struct sim_disk {
	struct store_io io;
	struct sim_file f[SIM_FILES];
	int handle[SIM_HANDLES]; /* file index, -1 closed */
	uint64_t rng;
	long ops_left; /* write-side operations before the power goes; <0 never */
	bool dead;
	uint64_t capacity; /* bytes; 0 unbounded */
	long fail_sync_at; /* the Nth sync fails with EIO (once); 0 never */
	long syncs;
	long writes, synced_writes; /* counters for tests */
};

static inline uint64_t sim_rand(struct sim_disk *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

static inline struct sim_disk *sim_of(struct store_io *io)
{
	return (struct sim_disk *)io;
}

/* A write-side operation: false when the power is (now) gone. */
static inline bool sim_op(struct sim_disk *d, struct berr *err)
{
	if (!d->dead && d->ops_left >= 0 && d->ops_left-- == 0)
		d->dead = true;
	if (d->dead)
		berr_set(err, EIO, "simulated power cut");
	return !d->dead;
}

static inline struct sim_file *sim_file_of(struct sim_disk *d, int h)
{
	if (h < 0 || h >= SIM_HANDLES || d->handle[h] < 0)
		return NULL;
	return &d->f[d->handle[h]];
}

static inline int sim_find(struct sim_disk *d, const char *name)
{
	for (int i = 0; i < SIM_FILES; i++)
		if (d->f[i].used && d->f[i].linked && !strcmp(d->f[i].name, name))
			return i;
	return -1;
}

static inline uint64_t sim_used(struct sim_disk *d)
{
	uint64_t n = 0;
	for (int i = 0; i < SIM_FILES; i++)
		if (d->f[i].used && (d->f[i].linked || d->f[i].linked_durable))
			n += d->f[i].len > d->f[i].synced_len ? d->f[i].len : d->f[i].synced_len;
	return n;
}

static inline int sim_open(struct store_io *io, const char *name, bool create, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	if (create && !sim_op(d, err))
		return -1;
	if (!create && d->dead)
		return berr_set(err, EIO, "simulated power cut");
	int fi = sim_find(d, name);
	if (create) {
		if (fi >= 0)
			return berr_set(err, EEXIST, "create %s", name);
		for (fi = 0; fi < SIM_FILES && d->f[fi].used; fi++)
			;
		if (fi == SIM_FILES)
			return berr_set(err, ENFILE, "simulated disk: too many files");
		struct sim_file *f = &d->f[fi];
		memset(f, 0, sizeof(*f));
		f->used = f->linked = true;
		snprintf(f->name, sizeof(f->name), "%s", name);
		snprintf(f->durable_name, sizeof(f->durable_name), "%s", name);
	} else if (fi < 0) {
		return berr_set(err, ENOENT, "open %s", name);
	}
	for (int h = 0; h < SIM_HANDLES; h++) {
		if (d->handle[h] < 0) {
			d->handle[h] = fi;
			return h;
		}
	}
	return berr_set(err, EMFILE, "simulated disk: too many handles");
}

static inline ssize_t sim_pread(struct store_io *io, int h, void *buf, size_t len, uint64_t off,
				struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (d->dead || !f)
		return berr_set(err, EIO, "simulated read");
	if (off >= f->len)
		return 0;
	size_t n = f->len - off < len ? f->len - off : len;
	memcpy(buf, f->data + off, n);
	return (ssize_t)n;
}

static inline int sim_grow(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	uint8_t *q = realloc(*p, c);
	if (!q)
		return -1;
	memset(q + *cap, 0, c - *cap);
	*p = q;
	*cap = c;
	return 0;
}

static inline void sim_record(struct sim_file *f, uint64_t off, const void *data, size_t len)
{
	if (f->n_w == f->cap_w) {
		f->cap_w = f->cap_w ? f->cap_w * 2 : 16;
		f->w = realloc(f->w, f->cap_w * sizeof(*f->w));
	}
	struct sim_write *w = &f->w[f->n_w++];
	w->off = off;
	w->len = len;
	w->data = NULL;
	if (data) {
		w->data = malloc(len ? len : 1);
		memcpy(w->data, data, len);
	}
}

static inline void sim_apply(uint8_t **data, size_t *len, size_t *cap, const struct sim_write *w,
			     size_t n)
{
	if (!w->data) {
		if (w->off < *len)
			*len = (size_t)w->off;
		return;
	}
	sim_grow(data, cap, (size_t)w->off + n);
	if (w->off > *len)
		memset(*data + *len, 0, (size_t)w->off - *len);
	memcpy(*data + w->off, w->data, n);
	if (w->off + n > *len)
		*len = (size_t)w->off + n;
}

static inline int sim_pwrite(struct store_io *io, int h, const void *buf, size_t len, uint64_t off,
			     struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (!f)
		return berr_set(err, EBADF, "simulated write");
	if (!sim_op(d, err))
		return -1;
	if (d->capacity && off + len > f->len && sim_used(d) + (off + len - f->len) > d->capacity)
		return berr_set(err, ENOSPC, "simulated write");
	struct sim_write w = {off, len, (uint8_t *)buf};
	sim_apply(&f->data, &f->len, &f->cap, &w, len);
	sim_record(f, off, buf, len);
	d->writes++;
	return 0;
}

static inline void sim_forget_writes(struct sim_file *f)
{
	for (size_t i = 0; i < f->n_w; i++)
		free(f->w[i].data);
	f->n_w = 0;
}

static inline int sim_sync(struct store_io *io, int h, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (!f)
		return berr_set(err, EBADF, "simulated sync");
	if (!sim_op(d, err))
		return -1;
	if (d->fail_sync_at && ++d->syncs == d->fail_sync_at)
		return berr_set(err, EIO, "simulated fdatasync");
	f->synced = realloc(f->synced, f->len ? f->len : 1);
	if (f->len)
		memcpy(f->synced, f->data, f->len);
	f->synced_len = f->len;
	d->synced_writes += (long)f->n_w;
	sim_forget_writes(f);
	return 0;
}

static inline int sim_truncate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (!f)
		return berr_set(err, EBADF, "simulated truncate");
	if (!sim_op(d, err))
		return -1;
	if (len < f->len)
		f->len = (size_t)len;
	sim_record(f, len, NULL, 0);
	return 0;
}

/* Preallocation: the file grows with zeros at once, and durably (it is
 * metadata, in the journal before any data written into it). */
static inline int sim_allocate(struct store_io *io, int h, uint64_t len, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (!f)
		return berr_set(err, EBADF, "simulated allocate");
	if (!sim_op(d, err))
		return -1;
	if (len <= f->len)
		return 0;
	if (d->capacity && sim_used(d) + (len - f->len) > d->capacity)
		return berr_set(err, ENOSPC, "simulated allocate");
	sim_grow(&f->data, &f->cap, len);
	memset(f->data + f->len, 0, len - f->len);
	f->len = len;
	if (f->synced_len < len) {
		f->synced = realloc(f->synced, len);
		memset(f->synced + f->synced_len, 0, len - f->synced_len);
		f->synced_len = len;
	}
	return 0;
}

static inline int sim_size(struct store_io *io, int h, uint64_t *len, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	struct sim_file *f = sim_file_of(d, h);
	if (!f || d->dead)
		return berr_set(err, EIO, "simulated stat");
	*len = f->len;
	return 0;
}

static inline void sim_close(struct store_io *io, int h)
{
	struct sim_disk *d = sim_of(io);
	if (h >= 0 && h < SIM_HANDLES)
		d->handle[h] = -1;
}

static inline int sim_unlink(struct store_io *io, const char *name, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	if (!sim_op(d, err))
		return -1;
	int fi = sim_find(d, name);
	if (fi >= 0)
		d->f[fi].linked = false;
	return 0;
}

static inline int sim_rename(struct store_io *io, const char *from, const char *to,
			     struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	if (!sim_op(d, err))
		return -1;
	int fi = sim_find(d, from);
	if (fi < 0)
		return berr_set(err, ENOENT, "rename %s", from);
	if (sim_find(d, to) >= 0)
		return berr_set(err, EEXIST, "rename %s to %s", from, to);
	snprintf(d->f[fi].name, sizeof(d->f[fi].name), "%s", to);
	return 0;
}

static inline void sim_file_free(struct sim_file *f)
{
	sim_forget_writes(f);
	free(f->w);
	free(f->data);
	free(f->synced);
	memset(f, 0, sizeof(*f));
}

static inline int sim_sync_dir(struct store_io *io, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	if (!sim_op(d, err))
		return -1;
	for (int i = 0; i < SIM_FILES; i++) {
		struct sim_file *f = &d->f[i];
		if (!f->used)
			continue;
		f->linked_durable = f->linked;
		memcpy(f->durable_name, f->name, sizeof(f->name));
		bool open = false;
		for (int h = 0; h < SIM_HANDLES && !open; h++)
			open = d->handle[h] == i;
		if (!f->linked && !open)
			sim_file_free(f);
	}
	return 0;
}

static inline int sim_list(struct store_io *io, int (*fn)(const char *name, void *arg), void *arg,
			   struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	if (d->dead)
		return berr_set(err, EIO, "simulated list");
	for (int i = 0; i < SIM_FILES; i++)
		if (d->f[i].used && d->f[i].linked && fn(d->f[i].name, arg) < 0)
			return -1;
	return 0;
}

static inline int sim_space(struct store_io *io, uint64_t *avail, uint64_t *total, struct berr *err)
{
	struct sim_disk *d = sim_of(io);
	uint64_t cap = d->capacity ? d->capacity : (uint64_t)1 << 40;
	uint64_t used = sim_used(d);
	*avail = used < cap ? cap - used : 0;
	*total = cap;
	return 0;
}

static inline void sim_destroy(struct store_io *io)
{
	(void)io;
}

static const struct store_io_ops sim_ops = {
    .open = sim_open,
    .pread = sim_pread,
    .pwrite = sim_pwrite,
    .sync = sim_sync,
    .truncate = sim_truncate,
    .allocate = sim_allocate,
    .size = sim_size,
    .close = sim_close,
    .unlink = sim_unlink,
    .sync_dir = sim_sync_dir,
    .list = sim_list,
    .space = sim_space,
    .destroy = sim_destroy,
    .rename = sim_rename,
};

static inline void sim_init(struct sim_disk *d, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->io.ops = &sim_ops;
	d->io.where = "simdisk";
	d->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	d->ops_left = -1;
	for (int h = 0; h < SIM_HANDLES; h++)
		d->handle[h] = -1;
}

static inline void sim_free(struct sim_disk *d)
{
	for (int i = 0; i < SIM_FILES; i++)
		if (d->f[i].used)
			sim_file_free(&d->f[i]);
}

/* The power goes at the nth write-side operation from now. */
static inline void sim_arm(struct sim_disk *d, long n)
{
	d->ops_left = n;
}

/* The power is cut (if it was not already) and comes back: each file keeps
 * what mode lets survive; every handle is gone. */
static inline void sim_cut(struct sim_disk *d, enum sim_cut_mode mode)
{
	for (int i = 0; i < SIM_FILES; i++) {
		struct sim_file *f = &d->f[i];
		if (!f->used)
			continue;
		uint8_t *data = NULL;
		size_t len = 0, cap = 0;
		sim_grow(&data, &cap, f->synced_len + 1);
		if (f->synced_len)
			memcpy(data, f->synced, f->synced_len);
		len = f->synced_len;
		size_t torn = f->n_w ? (size_t)(sim_rand(d) % f->n_w) : 0;
		if (mode == SIM_TEAR_LAST)
			torn = f->n_w ? f->n_w - 1 : 0;
		for (size_t k = 0; k < f->n_w && mode != SIM_LOSE_UNSYNCED; k++) {
			const struct sim_write *w = &f->w[k];
			if (mode != SIM_TEAR_LAST && k != torn && sim_rand(d) % 2)
				continue;
			size_t n = w->len;
			if (k == torn && w->data)
				n = (size_t)(sim_rand(d) % (w->len + 1));
			sim_apply(&data, &len, &cap, w, n);
			if (mode == SIM_FLIP_BITS && w->data && n && sim_rand(d) % 2) {
				size_t at = (size_t)w->off + (size_t)(sim_rand(d) % n);
				if (at < len)
					data[at] ^= (uint8_t)(1u << (sim_rand(d) % 8));
			}
		}
		free(f->data);
		f->data = data;
		f->len = len;
		f->cap = cap;
		sim_forget_writes(f);
		free(f->synced);
		f->synced = malloc(len ? len : 1);
		if (len)
			memcpy(f->synced, data, len);
		f->synced_len = len;
		f->linked = f->linked_durable;
		memcpy(f->name, f->durable_name, sizeof(f->name));
	}
	for (int h = 0; h < SIM_HANDLES; h++)
		d->handle[h] = -1;
	for (int i = 0; i < SIM_FILES; i++)
		if (d->f[i].used && !d->f[i].linked)
			sim_file_free(&d->f[i]);
	d->dead = false;
	d->ops_left = -1;
}

/* A file's current bytes, for tests that damage them by hand. */
static inline struct sim_file *sim_named(struct sim_disk *d, const char *name)
{
	int fi = sim_find(d, name);
	return fi < 0 ? NULL : &d->f[fi];
}

/* Makes the current content of every file durable (as if synced). */
static inline void sim_settle(struct sim_disk *d)
{
	for (int i = 0; i < SIM_FILES; i++) {
		struct sim_file *f = &d->f[i];
		if (!f->used)
			continue;
		free(f->synced);
		f->synced = malloc(f->len ? f->len : 1);
		if (f->len)
			memcpy(f->synced, f->data, f->len);
		f->synced_len = f->len;
		sim_forget_writes(f);
		f->linked_durable = f->linked;
		memcpy(f->durable_name, f->name, sizeof(f->name));
	}
}

/* SIGKILL: everything written survives (the kernel holds it), and the
 * killed store writes nothing more; sim_revive() after its store_close(). */
static inline void sim_kill(struct sim_disk *d)
{
	sim_settle(d);
	d->dead = true;
}

static inline void sim_revive(struct sim_disk *d)
{
	d->dead = false;
	d->ops_left = -1;
	for (int h = 0; h < SIM_HANDLES; h++)
		d->handle[h] = -1;
}

/* Files (segments) in the directory now. */
static inline int sim_count(struct sim_disk *d)
{
	int n = 0;
	for (int i = 0; i < SIM_FILES; i++)
		n += d->f[i].used && d->f[i].linked;
	return n;
}

/* Files in the directory now whose names end in suffix. */
static inline int sim_count_named(struct sim_disk *d, const char *suffix)
{
	int n = 0;
	size_t sl = strlen(suffix);
	for (int i = 0; i < SIM_FILES; i++) {
		size_t nl = strlen(d->f[i].name);
		n += d->f[i].used && d->f[i].linked && nl >= sl &&
		     !strcmp(d->f[i].name + nl - sl, suffix);
	}
	return n;
}

#endif
