/* Writing and syncing the store's log. The event loop encodes records into
 * one batch and writes it at the end of each round: the io takes the bytes
 * (store_io_posix.c holds them in memory, readable at once, until its
 * writer thread has written them), so from then on its messages can be
 * leased. A batch that holds messages (or creates or removes files)
 * becomes a job for the sync thread, whose fdatasync covers every job
 * written before it started (group commit); only then do the senders get
 * their completions. Acknowledgement records are written but not synced:
 * the next sync covers them, and a power cut (or a hub killed before the
 * writer thread got to them) at worst redelivers.
 *
 * After a failed sync the kernel may have dropped pages it will never
 * write again (the lesson of PostgreSQL's fsync errors): that job and every
 * later one fail, and the store is opened again from the files. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/array.h"
#include "hub/store_log.h"

#define BATCH_KEEP (256 * 1024) /* a larger buffer is freed once written */

void batch_reset(struct batch *b)
{
	b->len = b->n_chunks = b->n_dones = b->n_unlinks = b->n_closes = 0;
	b->unlink_bytes = 0;
	b->new_file = false;
	b->prep.on = false;
	if (b->cap > BATCH_KEEP) {
		free(b->buf);
		b->buf = NULL;
		b->cap = 0;
	}
}

void batch_free(struct batch *b)
{
	free(b->buf);
	free(b->chunks);
	free(b->dones);
	free(b->unlinks);
	free(b->closes);
	memset(b, 0, sizeof(*b));
}

uint8_t *batch_reserve(struct batch *b, struct segment *seg, size_t len)
{
	if (array_reserve(&b->buf, &b->cap, b->len + len + STORE_END_MARK, 1, 16) < 0)
		return NULL;
	struct chunk *last = b->n_chunks ? &b->chunks[b->n_chunks - 1] : NULL;
	if (last && last->h == seg->h && last->off + last->len == seg->size &&
	    last->start + last->len == b->len) {
		last->len += len;
	} else {
		if (array_reserve(&b->chunks, &b->cap_chunks, b->n_chunks + 1, sizeof(*b->chunks),
				  16) < 0)
			return NULL;
		if (last) {
			/* Room for the previous chunk's end mark. */
			last->end = STORE_END_MARK;
			b->len += STORE_END_MARK;
			if (array_reserve(&b->buf, &b->cap, b->len + len + STORE_END_MARK, 1, 16) <
			    0)
				return NULL;
		}
		b->chunks[b->n_chunks++] =
		    (struct chunk){seg->id, seg->h, seg->size, b->len, len, 0};
	}
	uint8_t *p = b->buf + b->len;
	b->len += len;
	seg->size += len;
	return p;
}

int batch_add_done(struct batch *b, const struct done *d)
{
	if (array_reserve(&b->dones, &b->cap_dones, b->n_dones + 1, sizeof(*b->dones), 16) < 0)
		return -1;
	b->dones[b->n_dones++] = *d;
	return 0;
}

int batch_add_unlink(struct batch *b, uint64_t seg, uint64_t bytes, bool keep)
{
	if (array_reserve(&b->unlinks, &b->cap_unlinks, b->n_unlinks + 1, sizeof(*b->unlinks), 16) <
	    0)
		return -1;
	b->unlinks[b->n_unlinks++] = (struct unlink){seg, bytes, keep, false};
	if (!keep)
		b->unlink_bytes += bytes;
	return 0;
}

int batch_add_close(struct batch *b, int h)
{
	if (array_reserve(&b->closes, &b->cap_closes, b->n_closes + 1, sizeof(*b->closes), 16) < 0)
		return -1;
	b->closes[b->n_closes++] = h;
	return 0;
}

/* The frames of a chunk get their segment's mask, all but the HEADER
 * record that opens the file. */
static void chunk_mask(struct batch *b, const struct chunk *c)
{
	uint8_t *p = b->buf + c->start;
	size_t len = c->len;
	if (c->off == 0 && len >= STORE_FRAME_HEAD) {
		size_t fl = STORE_FRAME_HEAD + ((size_t)p[0] | (size_t)p[1] << 8 |
						(size_t)p[2] << 16 | (size_t)p[3] << 24);
		if (fl > len)
			return;
		p += fl;
		len -= fl;
	}
	rec_frames_mask(p, len, rec_mask_of(c->seg));
}

int batch_write(struct store *s, struct batch *b, struct berr *err)
{
	if (b->n_chunks) {
		struct chunk *c = &b->chunks[b->n_chunks - 1];
		if (array_reserve(&b->buf, &b->cap, b->len + STORE_END_MARK, 1, 16) < 0)
			return berr_set(err, ENOMEM, "store: write");
		c->end = STORE_END_MARK;
	}
	/* Each write ends with the mark of where the segment's frames end:
	 * past it the file may hold anything (an earlier life's frames). */
	for (size_t i = 0; i < b->n_chunks; i++) {
		const struct chunk *c = &b->chunks[i];
		chunk_mask(b, c);
		rec_end_mark(b->buf + c->start + c->len, rec_mask_of(c->seg));
		if (s->io->ops->pwrite(s->io, c->h, b->buf + c->start, c->len + c->end, c->off,
				       err) < 0)
			return -1;
	}
	return 0;
}

void sync_job_free(struct sync_job *j)
{
	if (!j)
		return;
	free(j->dones);
	free(j->handles);
	free(j->unlinks);
	free(j->closes);
	free(j);
}

/* A kept file becomes segment p->id, its header synced (the directory
 * after). A failure leaves no file of that name behind to be read. */
static void prepare(struct store_io *io, struct prep_job *p, bool *renamed)
{
	char from[STORE_SEG_NAME_MAX], to[STORE_SEG_NAME_MAX];
	store_free_name(p->from, from);
	store_seg_name(p->id, to);
	p->h = -1;
	p->status = -1;
	if (io->ops->rename(io, from, to, &p->err) < 0)
		return;
	*renamed = true;
	int h = io->ops->open(io, to, false, &p->err);
	uint64_t size;
	if (h < 0 || io->ops->size(io, h, &size, &p->err) < 0 ||
	    (size > p->max_size && io->ops->truncate(io, h, p->max_size, &p->err) < 0) ||
	    io->ops->pwrite(io, h, p->header, p->len, 0, &p->err) < 0 ||
	    io->ops->sync(io, h, &p->err) < 0) {
		struct berr e;
		if (h >= 0)
			io->ops->close(io, h);
		(void)io->ops->unlink(io, to, &e);
		return;
	}
	p->h = h;
	p->status = 0;
}

/* One sync round over jobs (in the sync thread, or in the loop without
 * one): no malloc, no log lines, only the files. */
static void sync_run(struct store *s, struct sync_job *jobs)
{
	struct store_io *io = s->io;
	struct berr err = {0};
	int rc = s->sync_failed ? -1 : 0;
	if (rc)
		berr_set(&err, EIO, "an earlier sync of the store failed");
	bool new_file = false;
	for (struct sync_job *j = jobs; j; j = j->next)
		new_file |= j->new_file;
	if (rc == 0 && new_file)
		rc = io->ops->sync_dir(io, &err);
	int seen[64];
	size_t n_seen = 0;
	for (struct sync_job *j = jobs; j && rc == 0; j = j->next) {
		for (size_t i = 0; i < j->n_handles && rc == 0; i++) {
			bool dup = false;
			for (size_t k = 0; k < n_seen && !dup; k++)
				dup = seen[k] == j->handles[i];
			if (dup)
				continue;
			if (n_seen < sizeof(seen) / sizeof(seen[0]))
				seen[n_seen++] = j->handles[i];
			rc = io->ops->sync(io, j->handles[i], &err);
		}
	}
	bool unlinked = false;
	for (struct sync_job *j = jobs; j && rc == 0; j = j->next) {
		for (size_t i = 0; i < j->n_unlinks && rc == 0; i++) {
			struct unlink *u = &j->unlinks[i];
			char name[STORE_SEG_NAME_MAX], free_name[STORE_SEG_NAME_MAX];
			store_seg_name(u->seg, name);
			store_free_name(u->seg, free_name);
			struct berr rerr;
			u->kept = u->keep && io->ops->rename(io, name, free_name, &rerr) == 0;
			if (!u->kept) /* not asked, or removed instead */
				rc = io->ops->unlink(io, name, &err);
			unlinked = true;
		}
	}
	for (struct sync_job *j = jobs; j; j = j->next) {
		if (j->prep.on && rc == 0)
			prepare(io, &j->prep, &unlinked);
		else if (j->prep.on)
			j->prep.status = -1, j->prep.h = -1, j->prep.err = err;
	}
	if (rc == 0 && unlinked)
		rc = io->ops->sync_dir(io, &err);
	if (rc < 0)
		s->sync_failed = true;
	for (struct sync_job *j = jobs; j; j = j->next) {
		j->status = rc;
		if (rc < 0)
			j->err = err;
	}
}

static void *sync_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->queued && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->queued)
			break;
		struct sync_job *jobs = s->queued;
		s->queued = NULL;
		s->queued_tail = &s->queued;
		s->syncing = true;
		pthread_mutex_unlock(&s->mu);
		sync_run(s, jobs);
		pthread_mutex_lock(&s->mu);
		s->syncing = false;
		*s->completed_tail = jobs;
		while (jobs->next)
			jobs = jobs->next;
		s->completed_tail = &jobs->next;
		uint64_t one = 1;
		ssize_t w = write(s->efd, &one, sizeof(one));
		(void)w;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int writer_start(struct store *s, struct berr *err)
{
	s->queued_tail = &s->queued;
	s->completed_tail = &s->completed;
	if (!s->threaded)
		return 0;
	/* Signals go to the event loop's signalfd, never to this thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, sync_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return berr_set(err, rc, "store: sync thread");
	s->thread_running = true;
	return 0;
}

void writer_stop(struct store *s)
{
	if (!s->thread_running)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	s->thread_running = false;
}

/* The handles of the chunks, each once. */
static int job_handles(struct sync_job *j, const struct batch *b)
{
	if (b->n_chunks && !(j->handles = malloc(b->n_chunks * sizeof(int))))
		return -1;
	for (size_t i = 0; i < b->n_chunks; i++) {
		bool seen = false;
		for (size_t k = 0; k < j->n_handles && !seen; k++)
			seen = j->handles[k] == b->chunks[i].h;
		if (!seen)
			j->handles[j->n_handles++] = b->chunks[i].h;
	}
	return 0;
}

static void *copy(const void *src, size_t n, size_t size, bool *fail)
{
	if (!n)
		return NULL;
	void *p = malloc(n * size);
	if (!p)
		*fail = true;
	else
		memcpy(p, src, n * size);
	return p;
}

int sync_submit(struct store *s, struct batch *b, struct berr *err)
{
	struct sync_job *j = calloc(1, sizeof(*j));
	bool fail = !j;
	if (j) {
		fail = job_handles(j, b) < 0;
		j->dones = copy(b->dones, b->n_dones, sizeof(*b->dones), &fail);
		j->n_dones = b->n_dones;
		j->unlinks = copy(b->unlinks, b->n_unlinks, sizeof(*b->unlinks), &fail);
		j->n_unlinks = b->n_unlinks;
		j->closes = copy(b->closes, b->n_closes, sizeof(*b->closes), &fail);
		j->n_closes = b->n_closes;
		j->unlink_bytes = b->unlink_bytes;
		j->new_file = b->new_file;
		j->prep = b->prep;
	}
	if (fail) {
		sync_job_free(j);
		return berr_set(err, ENOMEM, "store: sync");
	}
	j->gen = ++s->next_gen;
	s->jobs_out++;
	if (!s->threaded) {
		/* Tests: synced at once, so a test decides where power is cut. */
		sync_run(s, j);
		*s->completed_tail = j;
		s->completed_tail = &j->next;
		return 0;
	}
	pthread_mutex_lock(&s->mu);
	*s->queued_tail = j;
	s->queued_tail = &j->next;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

struct sync_job *sync_take_completed(struct store *s)
{
	if (s->threaded)
		pthread_mutex_lock(&s->mu);
	struct sync_job *list = s->completed;
	s->completed = NULL;
	s->completed_tail = &s->completed;
	if (s->threaded)
		pthread_mutex_unlock(&s->mu);
	for (struct sync_job *j = list; j; j = j->next)
		s->jobs_out--;
	return list;
}

void sync_drain(struct store *s)
{
	if (!s->threaded)
		return;
	pthread_mutex_lock(&s->mu);
	while (s->queued || s->syncing)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}
