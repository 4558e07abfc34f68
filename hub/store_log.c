/* The durable store (store.h) over an append-only log of segment files
 * (store_record.h). The event loop thread encodes records into a batch and
 * writes it at the end of each round; the sync thread (store_writer.c)
 * syncs it; completions come back through the eventfd. Queues read the log
 * with cursors (store_log.h): memory does not grow with the number of
 * messages held. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/array.h"
#include "common/log.h"
#include "hub/crc32c.h"
#include "hub/route.h"
#include "hub/store_log.h"

#define HANDLES_OPEN_MAX 16 /* sealed segments kept open for reading */

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t bucket_of(uint32_t priority)
{
	return priority <= 9 ? (uint8_t)priority : STORE_PRIORITY_NONE;
}

static uint32_t priority_of(uint8_t bucket)
{
	return bucket < STORE_PRIORITY_NONE ? bucket : ROUTE_DEFAULT_PRIORITY;
}

static uint64_t sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

const char *store_full_policy_name(enum store_full_policy p)
{
	return p == STORE_FULL_DROP_OLDEST ? "drop-oldest" : "reject";
}

/* ---- endpoints and queues ---- */

struct endpoint *store_endpoint_get(struct store *s, const char *name, bool create)
{
	struct endpoint **ep = &s->endpoints;
	for (; *ep; ep = &(*ep)->next)
		if (!strcmp((*ep)->name, name))
			return *ep;
	if (!create)
		return NULL;
	struct endpoint *e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name))) {
		free(e);
		return NULL;
	}
	for (int b = 0; b < STORE_BUCKETS; b++) {
		e->q[b].ep = e;
		e->q[b].bucket = (uint8_t)b;
	}
	*ep = e;
	return e;
}

static struct endpoint *endpoint_by_id(struct store *s, uint32_t id)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		if (ep->id == id)
			return ep;
	return NULL;
}

static void mark_dirty(struct store *s, struct queue *q)
{
	if (q->dirty)
		return;
	q->dirty = true;
	q->dirty_next = s->dirty;
	s->dirty = q;
}

static void clear_dirty(struct store *s)
{
	while (s->dirty) {
		struct queue *q = s->dirty;
		s->dirty = q->dirty_next;
		q->dirty = false;
	}
}

/* ---- segments ---- */

static int seg_handle(struct store *s, struct segment *seg)
{
	if (seg->h < 0) {
		char name[STORE_SEG_NAME_MAX];
		struct berr err;
		store_seg_name(seg->id, name);
		seg->h = s->io->ops->open(s->io, name, false, &err);
		if (seg->h < 0)
			log_error("store: %s", err.msg);
	}
	return seg->h;
}

/* Sealed segments whose writes are all done need no open handle. */
static void close_idle_handles(struct store *s)
{
	size_t open = 0;
	for (struct segment *seg = s->segs; seg; seg = seg->next)
		open += seg->h >= 0 && seg != s->active;
	for (struct segment *seg = s->segs; seg && open > HANDLES_OPEN_MAX; seg = seg->next) {
		if (seg->h >= 0 && seg != s->active && seg->committed == seg->size &&
		    seg->sync_gen <= s->done_gen) {
			s->io->ops->close(s->io, seg->h);
			seg->h = -1;
			open--;
		}
	}
}

static uint8_t *reserve(struct store *s, struct segment *seg, size_t len)
{
	uint8_t *p = batch_reserve(s->fill, seg, len);
	if (p) {
		s->bytes += len;
		s->grown += len;
	}
	return p;
}

/* Makes sure the next reserves of the filled batch cannot fail. */
static int room(struct store *s, size_t bytes, size_t dones)
{
	struct batch *b = s->fill;
	size_t need = b->len + bytes + 2 * STORE_END_MARK;
	if (array_reserve(&b->buf, &b->cap, need, 1, 4096) < 0)
		return -1;
	if (array_reserve(&b->chunks, &b->cap_chunks, b->n_chunks + 2, sizeof(*b->chunks), 8) < 0 ||
	    array_reserve(&b->dones, &b->cap_dones, b->n_dones + dones, sizeof(*b->dones), 16) < 0)
		return -1;
	return 0;
}

/* A queue's state as an ACK record (acked points to STORE_ACKED_MAX room). */
static void ack_state(const struct queue *q, struct rec_ack *a)
{
	a->endpoint = q->ep->id;
	a->bucket = q->bucket;
	a->n_acked = 0;
	if (q->n_out) {
		a->floor_seq = q->out[0].seq;
		a->floor = q->out[0].pos;
	} else {
		a->floor_seq = q->done_below;
		a->floor = q->cursor;
	}
	for (size_t i = 0; i < q->n_out && a->n_acked < STORE_ACKED_MAX; i++) {
		if (q->out[i].state == ENTRY_DONE) {
			a->acked[a->n_acked].seq = q->out[i].seq;
			a->acked[a->n_acked++].seg = q->out[i].pos.seg;
		}
	}
	for (size_t i = 0; i < q->n_ahead && a->n_acked < STORE_ACKED_MAX; i++) {
		if (q->ahead[i] > a->floor_seq &&
		    (a->n_acked == 0 || q->ahead[i] > a->acked[a->n_acked - 1].seq)) {
			a->acked[a->n_acked].seq = q->ahead[i];
			a->acked[a->n_acked++].seg = q->cursor.seg;
		}
	}
}

static int write_ack(struct store *s, struct queue *q)
{
	struct rec_ack a = {.acked = s->ack_tmp};
	ack_state(q, &a);
	size_t len = rec_encode_ack(NULL, &a);
	if (room(s, len, 0) < 0)
		return -1;
	rec_encode_ack(reserve(s, s->active, len), &a);
	return 0;
}

static size_t opening_size(struct store *s, struct rec_header *h)
{
	size_t len = rec_encode_header(NULL, h);
	struct rec_ack a = {.acked = s->ack_tmp};
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		len += rec_encode_endpoint(NULL, ep->id, ep->name);
		for (int b = 0; b < STORE_BUCKETS; b++) {
			if (ep->q[b].known) {
				ack_state(&ep->q[b], &a);
				len += rec_encode_ack(NULL, &a);
			}
		}
	}
	return len;
}

static bool keep_file(struct store *s);

/* A prepared segment that a newer one overtook: only its header is in it,
 * and it goes (kept again, or removed) after the next sync. */
static void prep_discard(struct store *s)
{
	if (s->prep_state != PREP_READY || !s->prep_obsolete)
		return;
	s->io->ops->close(s->io, s->prep_h);
	bool keep = keep_file(s);
	if (batch_add_unlink(s->fill, s->prep_id, 0, keep) < 0)
		log_error("store: out of memory: segment %" PRIu64 " stays on disk", s->prep_id);
	else if (keep)
		s->pool_coming++;
	s->prep_state = PREP_NONE;
	s->prep_obsolete = false;
}

/* Once the active segment is half full, the oldest kept file is made the
 * next one, by the sync thread after this batch's sync. */
static void prep_ask(struct store *s, struct batch *b)
{
	if (s->prep_state != PREP_NONE || !s->n_pool || !s->active ||
	    s->active->size < s->seg_bytes / 2)
		return;
	struct rec_header hdr = {STORE_LOG_VERSION, s->next_seg_id, s->next_seq, s->now_ms};
	size_t len = rec_encode_header(NULL, &hdr);
	if (len + STORE_END_MARK > sizeof(b->prep.header))
		return;
	b->prep.on = true;
	b->prep.id = s->prep_id = s->next_seg_id++;
	b->prep.from = s->pool[0].seg;
	b->prep.max_size = s->seg_bytes;
	rec_encode_header(b->prep.header, &hdr);
	rec_end_mark(b->prep.header + len, rec_mask_of(b->prep.id));
	b->prep.len = len + STORE_END_MARK;
	memmove(s->pool, s->pool + 1, --s->n_pool * sizeof(*s->pool));
	s->prep_state = PREP_ASKED;
	s->prep_obsolete = false;
	s->prep_size = len;
}

/* The sync thread did what prep_ask asked. */
static void prep_done(struct store *s, struct prep_job *p)
{
	if (!p->on)
		return;
	if (p->status < 0) {
		log_warn("store: %s; the next segment is a new file", p->err.msg);
		s->prep_state = PREP_NONE;
		return;
	}
	s->prep_h = p->h;
	s->prep_state = PREP_READY;
	prep_discard(s);
}

/* Files kept for reuse go, their space back to the device. */
static void pool_release(struct store *s)
{
	for (size_t i = 0; i < s->n_pool; i++) {
		char free_name[STORE_SEG_NAME_MAX];
		struct berr err;
		store_free_name(s->pool[i].seg, free_name);
		if (s->io->ops->unlink(s->io, free_name, &err) < 0)
			log_warn("store: %s", err.msg);
		s->avail += s->seg_bytes > s->pool[i].bytes ? s->seg_bytes : s->pool[i].bytes;
	}
	s->n_pool = 0;
}

/* A new active segment, opening with its header, every endpoint's name and
 * every queue's acknowledgements: the newest segment alone always says
 * what is done, so any older one may be removed. */
static int seg_new(struct store *s, struct berr *err)
{
	struct rec_header hdr = {STORE_LOG_VERSION, s->next_seg_id, s->next_seq, s->now_ms};
	size_t len = opening_size(s, &hdr);
	if (room(s, len, 0) < 0)
		return berr_set(err, ENOMEM, "store: new segment");
	char name[STORE_SEG_NAME_MAX];
	store_seg_name(s->next_seg_id, name);
	struct segment *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return berr_set(err, ENOMEM, "store: new segment");
	bool prepared = s->prep_state == PREP_READY && !s->prep_obsolete;
	if (prepared) {
		seg->id = hdr.segment = s->prep_id;
		seg->h = s->prep_h;
		seg->size = seg->committed = s->prep_size;
		s->bytes += s->prep_size;
		s->prep_state = PREP_NONE;
	} else {
		seg->h = s->io->ops->open(s->io, name, true, err);
		if (seg->h < 0) {
			free(seg);
			return berr_wrap(err, "store");
		}
		seg->id = s->next_seg_id++;
		if (s->prep_state != PREP_NONE)
			s->prep_obsolete = true;
		prep_discard(s);
		/* Allocated up front, a full device shows here rather than as
		 * a failed sync, and a sync need not grow the file (on ext4
		 * under load group commits ran up to twice as fast as appends
		 * growing it). */
		struct berr aerr;
		if (s->io->ops->allocate(s->io, seg->h, s->seg_bytes, &aerr) < 0)
			log_debug("store: %s (segments grow as they are written)", aerr.msg);
	}
	seg->mask = rec_mask_of(seg->id);
	seg->first_seq = s->next_seq;
	struct segment **sp = &s->segs;
	while (*sp)
		sp = &(*sp)->next;
	*sp = seg;
	if (s->active)
		s->active->sealed = true;
	s->active = seg;
	if (!prepared) {
		s->fill->new_file = true;
		rec_encode_header(reserve(s, seg, rec_encode_header(NULL, &hdr)), &hdr);
	}
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		size_t n = rec_encode_endpoint(NULL, ep->id, ep->name);
		rec_encode_endpoint(reserve(s, seg, n), ep->id, ep->name);
		ep->defined_in = seg->id;
	}
	clear_dirty(s);
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		for (int b = 0; b < STORE_BUCKETS; b++)
			if (ep->q[b].known)
				write_ack(s, &ep->q[b]);
	seg->opening = seg->size;
	return 0;
}

static void cursor_to(struct queue *q, struct segment *seg)
{
	q->cursor.seg = seg->id;
	q->cursor.off = 0;
	if (seg->first_seq > q->done_below)
		q->done_below = seg->first_seq;
}

/* Takes a segment out of the store; its file goes once the batch that made
 * it useless is synced. */
static void seg_remove(struct store *s, struct segment *seg, bool keep)
{
	struct segment **sp = &s->segs;
	while (*sp && *sp != seg)
		sp = &(*sp)->next;
	if (!*sp)
		return;
	*sp = seg->next;
	/* A sync may still be on its way to this handle: closed after it. */
	if (seg->h >= 0 && batch_add_close(s->fill, seg->h) < 0)
		s->io->ops->close(s->io, seg->h);
	s->bytes = sub(s->bytes, seg->size);
	if (!keep)
		s->unlinking += seg->size;
	if (batch_add_unlink(s->fill, seg->id, seg->size, keep) < 0)
		log_error("store: out of memory: segment %" PRIu64 " stays on disk", seg->id);
	else if (keep)
		s->pool_coming++;
	struct segment *next = seg->next ? seg->next : s->active;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		for (int b = 0; b < STORE_BUCKETS; b++)
			if (ep->q[b].cursor.seg == seg->id && next)
				cursor_to(&ep->q[b], next);
	if (s->rseg == seg->id)
		s->rlen = 0;
	free(seg->holes);
	free(seg->qs);
	free(seg);
}

static bool seg_useless(const struct store *s, const struct segment *seg)
{
	if (seg == s->active || !seg->sealed || seg->committed != seg->size)
		return false;
	for (size_t i = 0; i < seg->n_qs; i++)
		if (seg->qs[i].live)
			return false;
	return true;
}

static const char *no_room(struct store *s, size_t len, char *why, size_t cap);

/* A removed segment's file is kept for reuse while fewer than
 * STORE_POOL_MAX are, and the store would have room for them as log. */
static bool keep_file(struct store *s)
{
	size_t kept = s->n_pool + s->pool_coming;
	char why[160];
	return kept < STORE_POOL_MAX && !no_room(s, (kept + 1) * s->seg_bytes, why, sizeof(why));
}

static void sweep(struct store *s)
{
	struct segment *seg = s->segs;
	while (seg) {
		struct segment *next = seg->next;
		if (seg_useless(s, seg))
			seg_remove(s, seg, keep_file(s));
		seg = next;
	}
}

/* ---- reading ---- */

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const uint8_t *cached(struct store *s, struct segment *seg, uint64_t off, size_t need)
{
	if (s->rlen && s->rseg == seg->id && off >= s->roff && off + need <= s->roff + s->rlen)
		return s->rbuf + (off - s->roff);
	size_t want = need > STORE_READ_CHUNK ? need : STORE_READ_CHUNK;
	if (want > seg->committed - off)
		want = (size_t)(seg->committed - off);
	if (want > s->rcap) {
		uint8_t *p = realloc(s->rbuf, want);
		if (!p)
			return NULL;
		s->rbuf = p;
		s->rcap = want;
	}
	s->rlen = 0;
	int h = seg_handle(s, seg);
	struct berr err;
	ssize_t n = h < 0 ? -1 : s->io->ops->pread(s->io, h, s->rbuf, want, off, &err);
	if (n < 0) {
		if (h >= 0)
			log_error("store: %s", err.msg);
		return NULL;
	}
	s->rseg = seg->id;
	s->roff = off;
	s->rlen = (size_t)n;
	return (size_t)n >= need ? s->rbuf : NULL;
}

/* The frame at off among seg's written bytes: *state 1 intact, 0 nothing
 * written there yet, -1 damaged (or unreadable). */
static const uint8_t *read_frame(struct store *s, struct segment *seg, uint64_t off, size_t *fl,
				 int *state)
{
	*state = 0;
	if (off + STORE_FRAME_HEAD > seg->committed)
		return NULL;
	*state = -1;
	const uint8_t *h = cached(s, seg, off, STORE_FRAME_HEAD);
	if (!h)
		return NULL;
	uint32_t len = get32(h);
	if (len == 0 || len > STORE_RECORD_MAX || off + STORE_FRAME_HEAD + len > seg->committed)
		return NULL;
	const uint8_t *f = cached(s, seg, off, STORE_FRAME_HEAD + len);
	if (!f || rec_frame_check(f, STORE_FRAME_HEAD + len, fl, off ? seg->mask : 0) != 1)
		return NULL;
	*state = 1;
	return f;
}

static bool target_of(const struct rec_message *m, uint32_t endpoint, uint8_t bucket, uint32_t *ttl)
{
	const uint8_t *it = m->targets;
	struct rec_target t;
	while (rec_next_target(m, &it, &t) > 0) {
		if (t.endpoint == endpoint && t.bucket == bucket) {
			*ttl = t.ttl_secs;
			return true;
		}
	}
	return false;
}

/* A message at the cursor that is done already (or just expired): counted
 * out of the segment and the queue as the cursor passes it. */
static void pass_done(struct queue *q, struct seg_queue *sq, size_t fl)
{
	if (sq->unread) {
		sq->unread--;
		sq->unread_bytes = sub(sq->unread_bytes, fl);
	}
	if (sq->live)
		sq->live--;
	q->unread = sub(q->unread, 1);
	q->held = sub(q->held, 1);
	q->bytes = sub(q->bytes, fl);
}

static bool ahead_take(struct queue *q, uint64_t seq)
{
	for (size_t i = 0; i < q->n_ahead; i++) {
		if (q->ahead[i] == seq) {
			memmove(&q->ahead[i], &q->ahead[i + 1],
				(q->n_ahead - i - 1) * sizeof(*q->ahead));
			q->n_ahead--;
			return true;
		}
	}
	return false;
}

static int out_push(struct queue *q, const struct entry *e)
{
	if (array_reserve(&q->out, &q->cap_out, q->n_out + 1, sizeof(*q->out), 8) < 0)
		return -1;
	q->out[q->n_out++] = *e;
	return 0;
}

/* What is left unread of q in a segment (sq) goes without being read:
 * damaged, or expired as a whole. */
static void drop_unread(struct store *s, struct queue *q, struct seg_queue *sq)
{
	q->unread = sub(q->unread, sq->unread);
	q->held = sub(q->held, sq->unread);
	q->bytes = sub(q->bytes, sq->unread_bytes);
	sq->live = sub(sq->live, sq->unread);
	sq->unread = 0;
	sq->unread_bytes = 0;
	mark_dirty(s, q);
}

/* Finds the queue's next message at or after its cursor, skipping what is
 * done or expired and whole segments holding nothing of it. */
static bool queue_peek(struct store *s, struct queue *q)
{
	if (q->have_next)
		return true;
	while (q->unread > 0) {
		struct segment *seg = store_seg_at_or_after(s, q->cursor.seg);
		if (!seg) {
			q->unread = 0;
			break;
		}
		if (seg->id != q->cursor.seg)
			cursor_to(q, seg);
		struct seg_queue *sq = store_seg_queue(seg, q->ep, q->bucket, false);
		if (!sq || sq->unread == 0) {
			if (!seg->next)
				break;
			cursor_to(q, seg->next);
			continue;
		}
		bool hole = false;
		for (size_t i = 0; i < seg->n_holes && !hole; i++) {
			if (seg->holes[i].from == q->cursor.off) {
				q->cursor.off = seg->holes[i].to;
				hole = true;
			}
		}
		if (hole)
			continue;
		size_t fl;
		int st;
		const uint8_t *f = read_frame(s, seg, q->cursor.off, &fl, &st);
		if (st == 0)
			break;
		if (st < 0) {
			/* Damaged since the store was opened: what is left of this
			 * queue in the segment is lost. */
			log_error("store: segment %" PRIu64 " is damaged at offset %" PRIu64
				  "; %u message(s) for %s lost",
				  seg->id, q->cursor.off, sq->unread, q->ep->name);
			q->ep->dropped_damaged += sq->unread;
			drop_unread(s, q, sq);
			continue;
		}
		struct rec_message m;
		uint32_t ttl;
		if (f[STORE_FRAME_HEAD] == REC_MESSAGE &&
		    rec_decode_message(f + STORE_FRAME_HEAD, fl - STORE_FRAME_HEAD, &m) == 0 &&
		    target_of(&m, q->ep->id, q->bucket, &ttl)) {
			int64_t expires = m.enqueued_ms + (int64_t)ttl * 1000;
			bool done = m.seq < q->done_below || ahead_take(q, m.seq);
			if (done || expires <= s->now_ms) {
				pass_done(q, sq, fl);
				if (!done) {
					q->ep->expired++;
					mark_dirty(s, q);
				}
				/* Above the floor, it stays listed as done. */
				struct entry d = {.seq = m.seq,
						  .pos = q->cursor,
						  .len = (uint32_t)fl,
						  .state = ENTRY_DONE};
				if (q->n_out && out_push(q, &d) < 0)
					mark_dirty(s, q);
			} else {
				q->next = (struct entry){.seq = m.seq,
							 .pos = q->cursor,
							 .len = (uint32_t)fl,
							 .enqueued_ms = m.enqueued_ms,
							 .expires_ms = expires};
				q->have_next = true;
				return true;
			}
			if (m.seq >= q->done_below)
				q->done_below = m.seq + 1;
		}
		q->cursor.off += fl;
	}
	return false;
}

static struct entry *find_entry(struct queue *q, uint64_t seq)
{
	size_t lo = 0, hi = q->n_out;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (q->out[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->n_out && q->out[lo].seq == seq ? &q->out[lo] : NULL;
}

static struct entry *first_released(struct queue *q)
{
	if (!q->n_released)
		return NULL;
	for (size_t i = 0; i < q->n_out; i++)
		if (q->out[i].state == ENTRY_RELEASED)
			return &q->out[i];
	return NULL;
}

static void trim(struct queue *q)
{
	size_t n = 0;
	while (n < q->n_out && q->out[n].state == ENTRY_DONE)
		n++;
	if (n) {
		memmove(q->out, q->out + n, (q->n_out - n) * sizeof(*q->out));
		q->n_out -= n;
	}
	if (q->n_out == 0 && q->cap_out > 64) {
		free(q->out);
		q->out = NULL;
		q->cap_out = 0;
	}
}

/* The entry is done (acknowledged, expired, dropped): its segment share
 * and the queue's counts go down. */
static void entry_done(struct store *s, struct queue *q, struct entry *e)
{
	if (e->state == ENTRY_LEASED)
		q->n_leased--;
	else if (e->state == ENTRY_RELEASED)
		q->n_released--;
	else
		return;
	e->state = ENTRY_DONE;
	hub_message_free(e->msg);
	e->msg = NULL;
	q->held = sub(q->held, 1);
	q->bytes = sub(q->bytes, e->len);
	if (!e->gone) {
		struct segment *seg = store_seg_find(s, e->pos.seg);
		struct seg_queue *sq = seg ? store_seg_queue(seg, q->ep, q->bucket, false) : NULL;
		if (sq && sq->live)
			sq->live--;
	}
	mark_dirty(s, q);
}

/* Reads and decodes a leased message: 0, -1 damaged, -2 out of memory. */
static int load(struct store *s, struct queue *q, struct entry *e)
{
	struct segment *seg = store_seg_find(s, e->pos.seg);
	size_t fl;
	int st;
	const uint8_t *f = seg ? read_frame(s, seg, e->pos.off, &fl, &st) : NULL;
	struct rec_message m;
	uint32_t ttl;
	if (!f || rec_decode_message(f + STORE_FRAME_HEAD, fl - STORE_FRAME_HEAD, &m) < 0 ||
	    m.seq != e->seq || !target_of(&m, q->ep->id, q->bucket, &ttl))
		return -1;
	struct hub_message *msg = calloc(1, sizeof(*msg));
	if (!msg)
		return -2;
	int rc = rec_decode_content(&m, msg);
	if (rc < 0) {
		free(msg);
		return rc;
	}
	msg->priority = q->bucket;
	msg->ttl_secs = ttl;
	e->msg = msg;
	return 0;
}

/* The message at the cursor becomes leased: the cursor moves past it. */
static struct entry *take_next(struct store *s, struct queue *q)
{
	if (out_push(q, &q->next) < 0)
		return NULL;
	struct entry *e = &q->out[q->n_out - 1];
	e->state = ENTRY_LEASED;
	q->n_leased++;
	q->have_next = false;
	q->cursor.off = e->pos.off + e->len;
	q->done_below = e->seq + 1;
	q->unread = sub(q->unread, 1);
	struct segment *seg = store_seg_find(s, e->pos.seg);
	struct seg_queue *sq = seg ? store_seg_queue(seg, q->ep, q->bucket, false) : NULL;
	if (sq) {
		sq->unread = (uint32_t)sub(sq->unread, 1);
		sq->unread_bytes = sub(sq->unread_bytes, e->len);
	}
	return e;
}

static bool has_pending(const struct endpoint *ep)
{
	for (int b = 0; b < STORE_BUCKETS; b++)
		if (ep->q[b].unread || ep->q[b].n_released)
			return true;
	return false;
}

int store_lease(struct store *s, const char *prefix,
		bool (*accept)(const char *endpoint, void *arg), void *arg, int64_t now_ms,
		struct store_item *item)
{
	if (s->failed)
		return 1;
	s->now_ms = now_ms;
	size_t plen = strlen(prefix);
	for (;;) {
		struct queue *best = NULL;
		struct entry *cand = NULL;
		for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
			if (strncmp(ep->name, prefix, plen) || !has_pending(ep) ||
			    (accept && !accept(ep->name, arg)))
				continue;
			for (int b = 0; b < STORE_BUCKETS && (!best || b <= best->bucket); b++) {
				struct queue *q = &ep->q[b];
				struct entry *e = first_released(q);
				if (!e && q->n_out < STORE_ACKED_MAX && queue_peek(s, q))
					e = &q->next;
				if (!e)
					continue;
				if (!best || b < best->bucket || e->seq < cand->seq) {
					best = q;
					cand = e;
				}
				break;
			}
		}
		if (!best)
			return 1;
		struct entry *e = cand;
		if (cand != &best->next) {
			e->state = ENTRY_LEASED;
			best->n_released--;
			best->n_leased++;
		} else if (!(e = take_next(s, best))) {
			return 1;
		}
		int rc = load(s, best, e);
		if (rc == -2) {
			e->state = ENTRY_RELEASED;
			best->n_leased--;
			best->n_released++;
			log_error("store: out of memory reading a message for %s", best->ep->name);
			return 1;
		}
		if (rc < 0) {
			log_error("store: a message for %s (seq %" PRIu64
				  ") cannot be read; dropped",
				  best->ep->name, e->seq);
			best->ep->dropped_damaged++;
			entry_done(s, best, e);
			trim(best);
			continue;
		}
		item->endpoint = best->ep->name;
		item->seq = e->seq;
		item->msg = e->msg;
		item->priority = priority_of(best->bucket);
		item->expires_ms = e->expires_ms;
		item->redelivery = e->redelivery;
		return 0;
	}
}

/* ---- acknowledgements ---- */

static struct orphan *orphan_take(struct store *s, const char *endpoint, uint64_t seq)
{
	for (struct orphan **op = &s->orphans; *op; op = &(*op)->next) {
		struct orphan *o = *op;
		if (o->seq == seq && !strcmp(o->endpoint, endpoint)) {
			*op = o->next;
			return o;
		}
	}
	return NULL;
}

static void orphan_free(struct orphan *o)
{
	hub_message_free(o->msg);
	free(o->endpoint);
	free(o);
}

/* An acknowledgement the queue cannot place (its lease came before a
 * reopen): the cursor skips that message when it reads it again. */
static void ahead_add(struct store *s, struct queue *q, uint64_t seq)
{
	if (seq < q->done_below || q->n_ahead >= STORE_ACKED_MAX / 2)
		return;
	if (q->have_next && q->next.seq == seq)
		q->have_next = false; /* read again, and passed */
	uint64_t *p = realloc(q->ahead, (q->n_ahead + 1) * sizeof(*p));
	if (!p)
		return;
	q->ahead = p;
	size_t i = q->n_ahead;
	while (i > 0 && q->ahead[i - 1] > seq) {
		q->ahead[i] = q->ahead[i - 1];
		i--;
	}
	q->ahead[i] = seq;
	q->n_ahead++;
	mark_dirty(s, q);
}

static struct entry *leased(struct endpoint *ep, uint64_t seq, struct queue **qp)
{
	for (int b = 0; b < STORE_BUCKETS; b++) {
		struct entry *e = ep->q[b].n_leased ? find_entry(&ep->q[b], seq) : NULL;
		if (e && e->state == ENTRY_LEASED) {
			*qp = &ep->q[b];
			return e;
		}
	}
	return NULL;
}

/* Something waits to be written: done at the next store_dispatch(), which
 * the event fd asks for (once per round however many appends came). */
static void request_flush(struct store *s)
{
	if (s->signaled)
		return;
	s->signaled = true;
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof(one));
	(void)w;
}

static void after_change(struct store *s, uint64_t seg_id)
{
	struct segment *seg = store_seg_find(s, seg_id);
	if (seg && seg_useless(s, seg))
		seg_remove(s, seg, keep_file(s));
	request_flush(s);
}

void store_ack(struct store *s, const char *endpoint, uint64_t seq)
{
	struct endpoint *ep = store_endpoint_get(s, endpoint, false);
	struct queue *q;
	struct entry *e = ep ? leased(ep, seq, &q) : NULL;
	if (e) {
		uint64_t seg = e->pos.seg;
		entry_done(s, q, e);
		trim(q);
		after_change(s, seg);
		return;
	}
	struct orphan *o = orphan_take(s, endpoint, seq);
	if (o) {
		if (ep)
			ahead_add(s, &ep->q[o->bucket], seq);
		orphan_free(o);
		request_flush(s);
	}
}

void store_release(struct store *s, const char *endpoint, uint64_t seq)
{
	struct endpoint *ep = store_endpoint_get(s, endpoint, false);
	struct queue *q;
	struct entry *e = ep ? leased(ep, seq, &q) : NULL;
	if (!e) {
		struct orphan *o = orphan_take(s, endpoint, seq);
		if (o)
			orphan_free(o);
		return;
	}
	if (e->gone) {
		uint64_t seg = e->pos.seg;
		entry_done(s, q, e);
		trim(q);
		after_change(s, seg);
		return;
	}
	hub_message_free(e->msg);
	e->msg = NULL;
	e->state = ENTRY_RELEASED;
	e->redelivery = true;
	q->n_leased--;
	q->n_released++;
}

void store_write_acks(struct store *s)
{
	if (!s->active || s->failed)
		return;
	if (s->dirty && s->active->size >= s->seg_bytes && s->active->size > s->active->opening) {
		struct berr err;
		if (seg_new(s, &err) < 0)
			log_error("%s", err.msg); /* the records go to the old one */
		else
			return;
	}
	while (s->dirty) {
		struct queue *q = s->dirty;
		if (write_ack(s, q) < 0) {
			log_error("store: out of memory writing acknowledgements");
			return;
		}
		s->dirty = q->dirty_next;
		q->dirty = false;
	}
}

/* ---- space ---- */

static void refresh_space(struct store *s)
{
	struct berr err;
	uint64_t avail, total;
	if (s->io->ops->space(s->io, &avail, &total, &err) < 0)
		return;
	s->avail = avail;
	s->total = total;
	s->grown = s->fill->len;
}

/* "" when len more bytes fit, else why not. */
static const char *no_room(struct store *s, size_t len, char *why, size_t cap)
{
	if (s->opt.max_bytes && s->bytes + len > s->opt.max_bytes) {
		snprintf(why, cap, "max_store_bytes %zu reached", s->opt.max_bytes);
		return why;
	}
	if (s->opt.min_free_percent && s->total) {
		uint64_t floor = s->total / 100 * s->opt.min_free_percent;
		uint64_t avail = sub(s->avail + s->unlinking, s->grown);
		if (avail < floor + len) {
			snprintf(why, cap,
				 "%" PRIu64 " bytes free on its device, %u%% are kept free", avail,
				 s->opt.min_free_percent);
			return why;
		}
	}
	return NULL;
}

/* Drop-oldest: the oldest segment goes, with everything in it. */
static void drop_segment(struct store *s, struct segment *seg)
{
	uint64_t dropped = 0;
	for (size_t i = 0; i < seg->n_qs; i++) {
		struct seg_queue *sq = &seg->qs[i];
		struct queue *q = &sq->ep->q[sq->bucket];
		sq->ep->dropped_full += sq->unread;
		dropped += sq->unread;
		q->unread = sub(q->unread, sq->unread);
		q->held = sub(q->held, sq->unread);
		q->bytes = sub(q->bytes, sq->unread_bytes);
		if (q->have_next && q->next.pos.seg == seg->id)
			q->have_next = false;
		mark_dirty(s, q);
	}
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		for (int b = 0; b < STORE_BUCKETS; b++) {
			struct queue *q = &ep->q[b];
			for (size_t i = 0; i < q->n_out; i++) {
				struct entry *e = &q->out[i];
				if (e->pos.seg != seg->id || e->state == ENTRY_DONE || e->gone)
					continue;
				ep->dropped_full++;
				dropped++;
				if (e->state == ENTRY_RELEASED)
					entry_done(s, q, e);
				e->gone = true;
			}
			trim(q);
		}
	}
	s->t.dropped_full += dropped;
	log_warn("store %s full: the oldest %" PRIu64 " message(s) dropped (segment %" PRIu64
		 ", store_full drop-oldest)",
		 s->io->where, dropped, seg->id);
	seg_remove(s, seg, false);
}

static bool active_done(const struct store *s)
{
	const struct segment *a = s->active;
	for (size_t i = 0; i < a->n_qs; i++)
		if (a->qs[i].live)
			return false;
	return a->size > a->opening && a->committed == a->size;
}

/* Room for len bytes, dropping the oldest under drop-oldest. */
static bool make_room(struct store *s, size_t len, char *why, size_t cap)
{
	while (no_room(s, len, why, cap)) {
		struct berr err;
		if (s->n_pool) {
			pool_release(s);
			continue;
		}
		if (active_done(s)) {
			/* Everything in the active segment is done: a new one lets
			 * its bytes go. */
			if (seg_new(s, &err) < 0)
				return false;
			sweep(s);
			continue;
		}
		if (s->opt.full != STORE_FULL_DROP_OLDEST)
			return false;
		struct segment *old = s->segs;
		if (old == s->active) {
			if (old->size == old->opening || seg_new(s, &err) < 0)
				return false;
			continue;
		}
		if (!old || old->committed != old->size)
			return false; /* still being written: after the next commit */
		drop_segment(s, old);
	}
	return true;
}

/* ---- appending ---- */

/* Places a message of len bytes for these endpoints at the end of the log
 * (a new segment when the active one is full, names first where needed)
 * and returns where its frame goes in the batch. */
static uint8_t *place(struct store *s, struct endpoint **eps, size_t n, size_t len,
		      struct store_pos *pos, struct berr *err)
{
	size_t defs = 0;
	for (size_t i = 0; i < n; i++)
		if (eps[i]->defined_in != s->active->id)
			defs += rec_encode_endpoint(NULL, eps[i]->id, eps[i]->name);
	if (s->active->size + defs + len > s->seg_bytes && s->active->size > s->active->opening) {
		if (seg_new(s, err) < 0)
			return NULL;
		defs = 0;
	}
	if (room(s, defs + len, 1) < 0) {
		berr_set(err, ENOMEM, "store: append");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct endpoint *ep = eps[i];
		if (ep->defined_in != s->active->id) {
			size_t dl = rec_encode_endpoint(NULL, ep->id, ep->name);
			rec_encode_endpoint(reserve(s, s->active, dl), ep->id, ep->name);
			ep->defined_in = s->active->id;
		}
	}
	pos->seg = s->active->id;
	pos->off = s->active->size;
	return reserve(s, s->active, len);
}

static int add_done(struct store *s, store_append_cb cb, void *arg, struct store_pos pos,
		    size_t len)
{
	struct done d = {cb, arg, pos, (size_t)(s->fill->len - len), (uint32_t)len};
	return batch_add_done(s->fill, &d);
}

/* Appends that waited for space, in order, while there is some. */
static void admit_waiting(struct store *s)
{
	char why[160];
	while (s->wait_head && !s->failed && make_room(s, s->wait_head->len, why, sizeof(why))) {
		struct waiting *w = s->wait_head;
		struct rec_message m;
		struct endpoint *eps[STORE_TARGETS_MAX];
		size_t n = 0;
		struct berr err;
		rec_renumber(w->frame, s->next_seq);
		if (rec_decode_message(w->frame + STORE_FRAME_HEAD, w->len - STORE_FRAME_HEAD, &m) <
		    0)
			return;
		const uint8_t *it = m.targets;
		struct rec_target t;
		while (rec_next_target(&m, &it, &t) > 0)
			if ((eps[n] = endpoint_by_id(s, t.endpoint)))
				n++;
		struct store_pos pos;
		uint8_t *dst = place(s, eps, n, w->len, &pos, &err);
		if (!dst) {
			log_error("%s", err.msg);
			return;
		}
		memcpy(dst, w->frame, w->len);
		s->next_seq++;
		add_done(s, w->cb, w->arg, pos, w->len);
		s->wait_head = w->next;
		if (!s->wait_head)
			s->wait_tail = &s->wait_head;
		s->wait_bytes -= w->len;
		free(w);
	}
	if (!s->wait_head && s->full_logged) {
		log_info("store %s: there is space again; held-back messages are stored",
			 s->io->where);
		s->full_logged = false;
	}
}

static int wait_for_space(struct store *s, const struct hub_message *m, const struct rec_target *rt,
			  size_t nt, size_t len, store_append_cb cb, void *arg, const char *why,
			  struct berr *err)
{
	if (s->wait_bytes + len > STORE_WAIT_MAX) {
		s->t.refused++;
		return berr_set(err, ENOSPC, "store full (%s), and %zu bytes already wait", why,
				s->wait_bytes);
	}
	struct waiting *w = malloc(sizeof(*w) + len);
	if (!w)
		return berr_set(err, ENOMEM, "store: append");
	rec_encode_message(w->frame, 0, m, rt, nt);
	w->next = NULL;
	w->cb = cb;
	w->arg = arg;
	w->len = len;
	*s->wait_tail = w;
	s->wait_tail = &w->next;
	s->wait_bytes += len;
	s->t.held_back++;
	if (!s->full_logged) {
		log_warn("store %s full (%s): messages wait without PUBACK, their publishers are "
			 "held back (store_full reject)",
			 s->io->where, why);
		s->full_logged = true;
	}
	return 0;
}

int store_append(struct store *s, const struct hub_message *m, const struct store_target *targets,
		 size_t n, store_append_cb cb, void *arg, struct berr *err)
{
	if (s->failed)
		return berr_set(err, 0, "%s", s->fatal.msg);
	if (n > STORE_TARGETS_MAX)
		return berr_set(err, 0, "store: %zu endpoints for one message, at most %d", n,
				STORE_TARGETS_MAX);
	struct rec_target rt[STORE_TARGETS_MAX];
	struct endpoint *eps[STORE_TARGETS_MAX];
	size_t nt = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(targets[i].endpoint, STORE_ENDPOINT_MAX + 1);
		if (len == 0 || len > STORE_ENDPOINT_MAX)
			return berr_set(err, 0, "store: bad endpoint name");
		struct endpoint *ep = store_endpoint_get(s, targets[i].endpoint, true);
		if (!ep)
			return berr_set(err, ENOMEM, "store: append");
		if (!ep->id)
			ep->id = s->next_endpoint_id++;
		uint8_t bucket = bucket_of(targets[i].priority);
		uint32_t ttl = targets[i].ttl_secs ? targets[i].ttl_secs : s->opt.default_ttl_secs;
		size_t j = 0;
		while (j < nt && !(rt[j].endpoint == ep->id && rt[j].bucket == bucket))
			j++;
		if (j < nt) {
			if (ttl > rt[j].ttl_secs)
				rt[j].ttl_secs = ttl;
			continue;
		}
		eps[nt] = ep;
		rt[nt++] = (struct rec_target){ep->id, bucket, ttl};
	}
	if (nt == 0) {
		struct done d = {cb, arg, {0, 0}, 0, 0};
		if (batch_add_done(s->fill, &d) < 0)
			return berr_set(err, ENOMEM, "store: append");
		request_flush(s);
		return 0;
	}
	size_t len = rec_encode_message(NULL, 0, m, rt, nt);
	if (len - STORE_FRAME_HEAD > STORE_RECORD_MAX)
		return berr_set(err, 0,
				"store: a message of %zu bytes with its properties is over "
				"the store's record limit",
				len);
	char why[160];
	if (s->wait_head || !make_room(s, len, why, sizeof(why)))
		return wait_for_space(s, m, rt, nt, len, cb, arg,
				      s->wait_head ? "earlier messages wait" : why, err);
	struct store_pos pos;
	uint8_t *dst = place(s, eps, nt, len, &pos, err);
	if (!dst)
		return -1;
	rec_encode_message(dst, s->next_seq++, m, rt, nt);
	if (add_done(s, cb, arg, pos, len) < 0)
		return berr_set(err, ENOMEM, "store: append"); /* room() made this impossible */
	request_flush(s);
	return 0;
}

/* ---- completions ---- */

/* A message is on disk: its queues count it. */
static void commit_message(struct store *s, struct segment *seg, const uint8_t *frame, size_t len)
{
	struct rec_message m;
	if (rec_decode_message(frame + STORE_FRAME_HEAD, len - STORE_FRAME_HEAD, &m) < 0)
		return;
	const uint8_t *it = m.targets;
	struct rec_target t;
	while (rec_next_target(&m, &it, &t) > 0) {
		struct endpoint *ep = endpoint_by_id(s, t.endpoint);
		struct seg_queue *sq = ep ? store_seg_queue(seg, ep, t.bucket, true) : NULL;
		if (!sq) {
			log_error("store: out of memory counting a message; it stays on disk");
			continue;
		}
		store_seg_queue_count(seg, sq, 1, len, m.enqueued_ms + (int64_t)t.ttl_secs * 1000);
		struct queue *q = &ep->q[t.bucket];
		q->unread++;
		q->held++;
		q->bytes += len;
		q->known = true;
		ep->ready = true;
	}
}

/* The batch is written: what it holds can be read, and its messages are
 * counted (and may be leased before they are synced). */
static void publish(struct store *s, struct batch *b)
{
	for (size_t i = 0; i < b->n_chunks; i++) {
		struct segment *seg = store_seg_find(s, b->chunks[i].seg);
		uint64_t end = b->chunks[i].off + b->chunks[i].len;
		if (seg && end > seg->committed)
			seg->committed = end;
	}
	for (size_t i = 0; i < b->n_dones; i++) {
		struct segment *seg = store_seg_find(s, b->dones[i].pos.seg);
		if (b->dones[i].len && seg)
			commit_message(s, seg, b->buf + b->dones[i].start, b->dones[i].len);
	}
}

static void tell_ready(struct store *s)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		if (ep->ready) {
			ep->ready = false;
			if (s->ready_cb)
				s->ready_cb(s->ready_arg, ep->name);
		}
	}
}

static void run_callbacks(const struct done *d, size_t n, int status, const struct berr *err)
{
	for (size_t i = 0; i < n; i++)
		if (d[i].cb)
			d[i].cb(d[i].arg, status, err);
}

static void free_segments(struct store *s)
{
	while (s->segs) {
		struct segment *seg = s->segs;
		s->segs = seg->next;
		if (seg->h >= 0)
			s->io->ops->close(s->io, seg->h);
		free(seg->holes);
		free(seg->qs);
		free(seg);
	}
	s->active = NULL;
	if (s->prep_state == PREP_READY)
		s->io->ops->close(s->io, s->prep_h);
	s->prep_state = PREP_NONE;
	s->prep_obsolete = false;
}

/* Everything a queue holds in memory goes; its leases become orphans. */
static void reset_queues(struct store *s, bool keep_leases)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		ep->defined_in = 0;
		ep->ready = false;
		for (int b = 0; b < STORE_BUCKETS; b++) {
			struct queue *q = &ep->q[b];
			for (size_t i = 0; i < q->n_out; i++) {
				struct orphan *o =
				    keep_leases && q->out[i].msg ? calloc(1, sizeof(*o)) : NULL;
				if (o && (o->endpoint = strdup(ep->name))) {
					o->seq = q->out[i].seq;
					o->bucket = (uint8_t)b;
					o->msg = q->out[i].msg;
					o->next = s->orphans;
					s->orphans = o;
				} else {
					free(o);
					hub_message_free(q->out[i].msg);
				}
			}
			free(q->out);
			free(q->ahead);
			memset(q, 0, sizeof(*q));
			q->ep = ep;
			q->bucket = (uint8_t)b;
		}
	}
	s->dirty = NULL;
}

/* Writes and syncs the filled batch now (at open, nothing else running). */
static int write_now(struct store *s, struct berr *err)
{
	store_write_acks(s);
	struct batch *b = s->fill;
	struct store_io *io = s->io;
	int rc = batch_write(s, b, err);
	for (size_t i = 0; i < b->n_chunks && rc == 0; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = b->chunks[k].h == b->chunks[i].h;
		if (!seen)
			rc = io->ops->sync(io, b->chunks[i].h, err);
	}
	if (rc == 0 && b->new_file)
		rc = io->ops->sync_dir(io, err);
	if (rc == 0)
		publish(s, b);
	batch_reset(b);
	return rc;
}

/* The log as it is on disk, with a new active segment. */
static int open_log(struct store *s, struct berr *err)
{
	int64_t t0 = clock_ms(CLOCK_MONOTONIC);
	s->t.damaged = s->t.cut_bytes = 0;
	if (store_scan(s, err) < 0)
		return -1;
	if (seg_new(s, err) < 0 || write_now(s, err) < 0)
		return berr_wrap(err, "store %s: cannot write", s->io->where);
	uint64_t held = 0;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		ep->ready = false;
		for (int b = 0; b < STORE_BUCKETS; b++) {
			queue_peek(s, &ep->q[b]);
			held += ep->q[b].held;
		}
	}
	sweep(s);
	close_idle_handles(s);
	s->t.recovered = held;
	s->t.opened_ms = (uint64_t)(clock_ms(CLOCK_MONOTONIC) - t0);
	return 0;
}

/* A write or a sync failed: what it held is not acknowledged, and the store
 * is opened again from the files. Jobs synced before it complete as they
 * are; callbacks run once the store is whole again. */
static void reopen_after_failure(struct store *s, struct sync_job *jobs, const struct berr *why)
{
	s->t.write_errors++;
	sync_drain(s);
	struct sync_job **tail = &jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = sync_take_completed(s);
	struct batch unwritten = *s->fill;
	memset(s->fill, 0, sizeof(*s->fill));
	struct waiting *waiting = s->wait_head;
	s->wait_head = NULL;
	s->wait_tail = &s->wait_head;
	s->wait_bytes = 0;
	s->full_logged = false;
	size_t lost = unwritten.n_dones;
	for (struct sync_job *j = jobs; j; j = j->next)
		lost += j->status ? j->n_dones : 0;
	for (struct waiting *w = waiting; w; w = w->next)
		lost++;
	log_error("store %s: %s; %zu message(s) not stored and not acknowledged; reopening the "
		  "store from what is on disk",
		  s->io->where, why->msg, lost);
	for (struct sync_job *j = jobs; j; j = j->next) {
		for (size_t i = 0; i < j->n_closes; i++)
			s->io->ops->close(s->io, j->closes[i]);
		if (j->prep.on && j->prep.status == 0)
			s->io->ops->close(s->io, j->prep.h);
	}
	for (size_t i = 0; i < unwritten.n_closes; i++)
		s->io->ops->close(s->io, unwritten.closes[i]);
	reset_queues(s, true);
	free_segments(s);
	s->bytes = s->unlinking = s->grown = 0;
	s->rlen = 0;
	s->sync_failed = false;
	s->done_gen = s->next_gen;
	struct berr err;
	if (open_log(s, &err) < 0) {
		s->failed = true;
		s->fatal = err;
		log_error("%s", err.msg);
	} else {
		log_info("store %s reopened: %" PRIu64 " message(s) held", s->io->where,
			 s->t.recovered);
	}
	while (jobs) {
		struct sync_job *j = jobs;
		jobs = j->next;
		run_callbacks(j->dones, j->n_dones, j->status ? -1 : 0, j->status ? why : NULL);
		sync_job_free(j);
	}
	run_callbacks(unwritten.dones, unwritten.n_dones, -1, why);
	batch_free(&unwritten);
	while (waiting) {
		struct waiting *w = waiting;
		waiting = w->next;
		w->cb(w->arg, -1, why);
		free(w);
	}
}

/* Synced jobs: their senders' completions, and the files they removed. */
static void complete(struct store *s, struct sync_job *jobs)
{
	while (jobs) {
		struct sync_job *j = jobs;
		jobs = j->next;
		s->done_gen = j->gen;
		s->unlinking = sub(s->unlinking, j->unlink_bytes);
		prep_done(s, &j->prep);
		for (size_t i = 0; i < j->n_unlinks; i++) {
			if (j->unlinks[i].keep)
				s->pool_coming = sub(s->pool_coming, 1);
			if (j->unlinks[i].kept && s->n_pool < STORE_POOL_MAX)
				s->pool[s->n_pool++] = j->unlinks[i];
		}
		for (size_t i = 0; i < j->n_closes; i++)
			s->io->ops->close(s->io, j->closes[i]);
		run_callbacks(j->dones, j->n_dones, 0, NULL);
		sync_job_free(j);
	}
}

/* Writes the filled batch; its messages become leasable, and a job waits
 * for the sync that completes them. */
static void flush(struct store *s)
{
	struct batch *b = s->fill;
	/* Acknowledgements alone wait while a sync runs: its end brings the
	 * next write, which takes them along. (Written alone, each would cost
	 * the device a block of its own.) */
	if (s->jobs_out && !b->len && !b->n_dones && !b->n_unlinks && !b->n_closes)
		return;
	store_write_acks(s);
	prep_ask(s, b);
	if (!b->len && !b->n_dones && !b->n_unlinks && !b->n_closes && !b->prep.on)
		return;
	struct berr err;
	if (batch_write(s, b, &err) < 0) {
		reopen_after_failure(s, NULL, &err);
		return;
	}
	s->t.commits++;
	publish(s, b);
	if (b->n_dones || b->new_file || b->n_unlinks || b->n_closes || b->prep.on) {
		if (sync_submit(s, b, &err) < 0) {
			reopen_after_failure(s, NULL, &err);
			return;
		}
		s->t.syncs++;
		for (size_t i = 0; i < b->n_chunks; i++) {
			struct segment *seg = store_seg_find(s, b->chunks[i].seg);
			if (seg)
				seg->sync_gen = s->next_gen;
		}
	}
	batch_reset(b);
	tell_ready(s);
}

void store_dispatch(struct store *s)
{
	uint64_t v;
	ssize_t r = read(s->efd, &v, sizeof(v));
	(void)r;
	s->signaled = false;
	/* Without a sync thread a round syncs at once: go on until nothing
	 * is left (bounded, should callbacks keep appending). */
	for (int round = 0; round < 64 && !s->failed; round++) {
		struct sync_job *jobs = sync_take_completed(s);
		struct sync_job *bad = jobs;
		while (bad && bad->status == 0)
			bad = bad->next;
		if (bad) {
			struct berr why = bad->err;
			reopen_after_failure(s, jobs, &why);
			continue;
		}
		complete(s, jobs);
		refresh_space(s);
		admit_waiting(s);
		bool work = s->fill->len || s->fill->n_dones || s->fill->n_unlinks || s->dirty;
		if (!s->failed)
			flush(s);
		if (s->threaded || (!work && !s->completed))
			break;
	}
}

void store_set_ready_cb(struct store *s, store_ready_cb cb, void *arg)
{
	s->ready_cb = cb;
	s->ready_arg = arg;
}

int store_error(const struct store *s, struct berr *err)
{
	if (!s->failed)
		return 0;
	*err = s->fatal;
	return -1;
}

/* ---- expiry, limits, statistics ---- */

size_t store_expire(struct store *s, int64_t now_ms)
{
	if (s->failed)
		return 0;
	s->now_ms = now_ms;
	uint64_t before = 0, after = 0;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		before += ep->expired;
	for (struct segment *seg = s->segs; seg; seg = seg->next) {
		for (size_t i = 0; i < seg->n_qs; i++) {
			struct seg_queue *sq = &seg->qs[i];
			if (!sq->unread || sq->max_expires > now_ms)
				continue;
			struct queue *q = &sq->ep->q[sq->bucket];
			sq->ep->expired += sq->unread;
			drop_unread(s, q, sq);
			if (q->have_next && q->next.pos.seg == seg->id)
				q->have_next = false;
		}
	}
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		for (int b = 0; b < STORE_BUCKETS; b++) {
			struct queue *q = &ep->q[b];
			for (size_t i = 0; q->n_released && i < q->n_out; i++) {
				if (q->out[i].state == ENTRY_RELEASED &&
				    q->out[i].expires_ms <= now_ms) {
					entry_done(s, q, &q->out[i]);
					ep->expired++;
				}
			}
			trim(q);
			if (q->have_next && q->next.expires_ms <= now_ms)
				q->have_next = false;
			queue_peek(s, q);
		}
		after += ep->expired;
	}
	sweep(s);
	refresh_space(s);
	admit_waiting(s);
	if (s->rcap > STORE_READ_CHUNK) {
		free(s->rbuf);
		s->rbuf = NULL;
		s->rcap = s->rlen = 0;
	}
	close_idle_handles(s);
	request_flush(s);
	if (after > before)
		log_info("store: %" PRIu64 " message(s) expired", after - before);
	return (size_t)(after - before);
}

static uint64_t segment_bytes(const struct store_options *o, uint64_t device)
{
	uint64_t seg = o->segment_bytes ? o->segment_bytes : SEGMENT_BYTES_DEFAULT;
	if (o->max_bytes && seg > o->max_bytes / SEGMENTS_PER_BOUND)
		seg = o->max_bytes / SEGMENTS_PER_BOUND;
	/* A small device (a tmpfs, a small volume) gets small segments, so
	 * that space comes back a little at a time. */
	if (device && seg > device / SEGMENTS_PER_DEVICE)
		seg = device / SEGMENTS_PER_DEVICE;
	return seg < SEGMENT_BYTES_MIN ? SEGMENT_BYTES_MIN : seg;
}

void store_set_limits(struct store *s, size_t max_bytes, unsigned min_free_percent,
		      enum store_full_policy full, uint32_t default_ttl_secs)
{
	s->opt.max_bytes = max_bytes;
	s->opt.min_free_percent = min_free_percent;
	s->opt.full = full;
	s->opt.default_ttl_secs = default_ttl_secs;
	s->seg_bytes = segment_bytes(&s->opt, s->total);
	if (!s->failed) {
		admit_waiting(s);
		request_flush(s);
	}
}

void store_foreach(struct store *s, void (*fn)(const struct store_stats *st, void *arg), void *arg)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		struct store_stats st = {.endpoint = ep->name,
					 .expired = ep->expired,
					 .dropped_full = ep->dropped_full,
					 .dropped_damaged = ep->dropped_damaged};
		for (int b = 0; b < STORE_BUCKETS; b++) {
			struct queue *q = &ep->q[b];
			st.messages += q->held;
			st.leased += q->n_leased;
			st.bytes += q->bytes;
			int64_t oldest = 0;
			if (q->n_out)
				oldest = q->out[0].enqueued_ms;
			else if (!s->failed && queue_peek(s, q))
				oldest = q->next.enqueued_ms;
			if (oldest && (!st.oldest_ms || oldest < st.oldest_ms))
				st.oldest_ms = oldest;
		}
		fn(&st, arg);
	}
}

size_t store_bytes(const struct store *s)
{
	return s->bytes;
}

void store_get_totals(struct store *s, struct store_totals *t)
{
	*t = s->t;
	t->bytes = s->bytes;
	t->max_bytes = s->opt.max_bytes;
	t->free_bytes = s->avail;
	t->floor_bytes = s->total / 100 * s->opt.min_free_percent;
	t->full = s->wait_head != NULL;
	t->segments = 0;
	for (struct segment *seg = s->segs; seg; seg = seg->next)
		t->segments++;
}

/* ---- open and close ---- */

int store_event_fd(struct store *s)
{
	return s->efd;
}

int store_open_io(const struct store_options *opt, struct store_io *io, bool threaded,
		  struct store **out, struct berr *err)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return berr_set(err, ENOMEM, "store");
	s->efd = -1;
	s->opt = *opt;
	s->opt.dir = NULL;
	s->io = io;
	s->threaded = threaded;
	s->fill = &s->fill_batch;
	s->wait_tail = &s->wait_head;
	s->now_ms = clock_ms(CLOCK_REALTIME);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->ack_tmp = malloc(STORE_ACKED_MAX * sizeof(*s->ack_tmp));
	if (s->efd < 0 || !s->ack_tmp) {
		berr_set(err, s->efd < 0 ? errno : ENOMEM, "store");
		goto fail;
	}
	refresh_space(s);
	s->seg_bytes = segment_bytes(&s->opt, s->total);
	if (writer_start(s, err) < 0 || open_log(s, err) < 0)
		goto fail;
	log_info("store %s: %" PRIu64 " message(s) held in %" PRIu64 " bytes, opened in %" PRIu64
		 " ms (CRC32C: %s)",
		 io->where, s->t.recovered, (uint64_t)s->bytes, s->t.opened_ms, crc32c_impl());
	request_flush(s);
	*out = s;
	return 0;
fail:
	store_close(s);
	return -1;
}

int store_open(const struct store_options *opt, struct store **out, struct berr *err)
{
	struct store_io *io;
	if (!opt->dir)
		return berr_set(err, 0, "store: no directory");
	if (store_io_posix(opt->dir, true, &io, err) < 0)
		return -1;
	if (store_open_io(opt, io, true, out, err) < 0) {
		io->ops->destroy(io);
		return -1;
	}
	(*out)->own_io = true;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	struct berr stopping;
	berr_set(&stopping, 0, "the hub is stopping");
	if (!s->failed && s->io && s->active) {
		/* What waits is written and synced (no acknowledgement lost on a
		 * clean stop); its senders are gone, the callbacks only free. */
		for (int i = 0; i < 3 && !s->failed; i++) {
			flush(s);
			sync_drain(s);
			store_dispatch(s);
		}
		struct berr err;
		if (!s->failed && s->active && s->active->h >= 0 &&
		    s->io->ops->sync(s->io, s->active->h, &err) < 0)
			log_error("store: %s", err.msg);
	}
	writer_stop(s);
	complete(s, sync_take_completed(s));
	while (s->wait_head) {
		struct waiting *w = s->wait_head;
		s->wait_head = w->next;
		w->cb(w->arg, -1, &stopping);
		free(w);
	}
	reset_queues(s, false);
	while (s->endpoints) {
		struct endpoint *ep = s->endpoints;
		s->endpoints = ep->next;
		free(ep->name);
		free(ep);
	}
	while (s->orphans) {
		struct orphan *o = s->orphans;
		s->orphans = o->next;
		orphan_free(o);
	}
	if (s->io) {
		for (size_t i = 0; i < s->fill->n_closes; i++)
			s->io->ops->close(s->io, s->fill->closes[i]);
		free_segments(s);
	}
	run_callbacks(s->fill->dones, s->fill->n_dones, -1, &stopping);
	batch_free(s->fill);
	free(s->rbuf);
	free(s->ack_tmp);
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	if (s->own_io)
		s->io->ops->destroy(s->io);
	free(s);
}
