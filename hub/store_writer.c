/* The store's writer: batches of records go to the segment files in one
 * write per segment and one fdatasync (group commit): everything appended
 * while a sync runs waits in the next batch. A batch without messages
 * (acknowledgements only) is written but not synced: a killed hub loses
 * none of it, a power cut at worst redelivers. Segments are removed only
 * after the batch that made them useless is synced. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "hub/store_log.h"

#define BATCH_KEEP (256 * 1024) /* a larger buffer is freed after its batch */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

void batch_reset(struct batch *b)
{
	b->len = b->n_chunks = b->n_dones = b->n_unlinks = 0;
	b->unlink_bytes = 0;
	b->new_file = b->sync = false;
	b->status = 0;
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
	memset(b, 0, sizeof(*b));
}

uint8_t *batch_reserve(struct batch *b, struct segment *seg, size_t len)
{
	if (grow((void **)&b->buf, &b->cap, b->len + len, 1) < 0)
		return NULL;
	struct chunk *last = b->n_chunks ? &b->chunks[b->n_chunks - 1] : NULL;
	if (last && last->h == seg->h && last->off + last->len == seg->size &&
	    last->start + last->len == b->len) {
		last->len += len;
	} else {
		if (grow((void **)&b->chunks, &b->cap_chunks, b->n_chunks + 1, sizeof(*b->chunks)) <
		    0)
			return NULL;
		b->chunks[b->n_chunks++] = (struct chunk){seg->id, seg->h, seg->size, b->len, len};
	}
	uint8_t *p = b->buf + b->len;
	b->len += len;
	seg->size += len;
	return p;
}

int batch_add_done(struct batch *b, const struct done *d)
{
	if (grow((void **)&b->dones, &b->cap_dones, b->n_dones + 1, sizeof(*b->dones)) < 0)
		return -1;
	b->dones[b->n_dones++] = *d;
	b->sync = true;
	return 0;
}

int batch_add_unlink(struct batch *b, uint64_t seg, uint64_t bytes)
{
	if (grow((void **)&b->unlinks, &b->cap_unlinks, b->n_unlinks + 1, sizeof(*b->unlinks)) < 0)
		return -1;
	b->unlinks[b->n_unlinks++] = seg;
	b->unlink_bytes += bytes;
	b->sync = true;
	return 0;
}

/* Runs in the writer thread (or in the loop without one): no malloc, no
 * log lines, only the files. */
void writer_run_batch(struct store *s, struct batch *b)
{
	struct store_io *io = s->io;
	b->status = 0;
	for (size_t i = 0; i < b->n_chunks && b->status == 0; i++) {
		const struct chunk *c = &b->chunks[i];
		b->status = io->ops->pwrite(io, c->h, b->buf + c->start, c->len, c->off, &b->err);
	}
	if (b->status == 0 && b->new_file)
		b->status = io->ops->sync_dir(io, &b->err);
	for (size_t i = 0; i < b->n_chunks && b->status == 0 && b->sync; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = b->chunks[j].h == b->chunks[i].h;
		if (!seen)
			b->status = io->ops->sync(io, b->chunks[i].h, &b->err);
	}
	if (b->status == 0 && b->n_unlinks) {
		for (size_t i = 0; i < b->n_unlinks && b->status == 0; i++) {
			char name[STORE_SEG_NAME_MAX];
			store_seg_name(b->unlinks[i], name);
			b->status = io->ops->unlink(io, name, &b->err);
		}
		if (b->status == 0)
			b->status = io->ops->sync_dir(io, &b->err);
	}
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->go && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->go)
			break;
		s->go = false;
		struct batch *b = s->flight;
		pthread_mutex_unlock(&s->mu);
		writer_run_batch(s, b);
		pthread_mutex_lock(&s->mu);
		s->finished = true;
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
	if (!s->threaded)
		return 0;
	/* Signals go to the event loop's signalfd, never to this thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&s->thread, NULL, writer_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return berr_set(err, rc, "store: writer thread");
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

static bool batch_empty(const struct batch *b)
{
	return b->len == 0 && b->n_dones == 0 && b->n_unlinks == 0;
}

void writer_kick(struct store *s)
{
	if (s->busy || s->failed)
		return;
	store_write_acks(s);
	if (batch_empty(s->fill))
		return;
	struct batch *b = s->fill;
	s->fill = s->flight;
	s->flight = b;
	s->busy = true;
	s->t.commits++;
	if (b->sync)
		s->t.syncs++;
	if (!s->threaded) {
		/* Tests: the batch is written when store_dispatch() runs. */
		uint64_t one = 1;
		ssize_t w = write(s->efd, &one, sizeof(one));
		(void)w;
		return;
	}
	pthread_mutex_lock(&s->mu);
	s->go = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

struct batch *writer_finished(struct store *s)
{
	if (!s->busy)
		return NULL;
	if (!s->threaded) {
		writer_run_batch(s, s->flight);
		s->busy = false;
		return s->flight;
	}
	pthread_mutex_lock(&s->mu);
	bool fin = s->finished;
	s->finished = false;
	pthread_mutex_unlock(&s->mu);
	if (!fin)
		return NULL;
	s->busy = false;
	return s->flight;
}

/* Waits for the batch with the writer (store_close, a reopen). */
struct batch *writer_wait(struct store *s)
{
	if (!s->busy)
		return NULL;
	if (s->threaded) {
		pthread_mutex_lock(&s->mu);
		while (!s->finished)
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
	}
	return writer_finished(s);
}
