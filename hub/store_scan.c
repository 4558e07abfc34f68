/* Opening the log: every segment is read from start to end and every record
 * checked. A frame cut short at the end of a file (a write torn by a crash)
 * is cut off, with a line saying how many bytes; a damaged frame followed
 * by good ones costs only itself. The last ACK record of each queue says
 * where its cursor starts; per segment and queue the messages are counted,
 * so that nothing per message stays in memory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "hub/hub.h"
#include "hub/store_log.h"

#define SCAN_CHUNK (256 * 1024)

void store_seg_name(uint64_t id, char *out)
{
	snprintf(out, STORE_SEG_NAME_MAX, "%016" PRIx64 ".log", id);
}

void store_free_name(uint64_t id, char *out)
{
	snprintf(out, STORE_SEG_NAME_MAX, "%016" PRIx64 ".free", id);
}

/* <16 hex digits><suffix>, the number not 0. */
static bool name_parse(const char *name, const char *suffix, uint64_t *id)
{
	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix))
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return v != 0;
}

static bool seg_name_parse(const char *name, uint64_t *id)
{
	return name_parse(name, ".log", id);
}

struct segment *store_seg_find(struct store *s, uint64_t id)
{
	for (struct segment *seg = s->segs; seg && seg->id <= id; seg = seg->next)
		if (seg->id == id)
			return seg;
	return NULL;
}

struct segment *store_seg_at_or_after(struct store *s, uint64_t id)
{
	for (struct segment *seg = s->segs; seg; seg = seg->next)
		if (seg->id >= id)
			return seg;
	return NULL;
}

void store_seg_queue_count(struct segment *seg, struct seg_queue *sq, uint32_t count,
			   uint64_t bytes, int64_t max_expires)
{
	sq->unread += count;
	sq->unread_bytes += bytes;
	sq->live += count;
	if (max_expires > sq->max_expires)
		sq->max_expires = max_expires;
	if (max_expires > seg->max_expires)
		seg->max_expires = max_expires;
}

struct seg_queue *store_seg_queue(struct segment *seg, struct endpoint *ep, uint8_t bucket,
				  bool create)
{
	for (size_t i = 0; i < seg->n_qs; i++)
		if (seg->qs[i].ep == ep && seg->qs[i].bucket == bucket)
			return &seg->qs[i];
	if (!create)
		return NULL;
	if (array_reserve(&seg->qs, &seg->cap_qs, seg->n_qs + 1, sizeof(*seg->qs), 4) < 0)
		return NULL;
	struct seg_queue *sq = &seg->qs[seg->n_qs++];
	memset(sq, 0, sizeof(*sq));
	sq->ep = ep;
	sq->bucket = bucket;
	return sq;
}

/* A message's target whose endpoint number no ENDPOINT record named yet (a
 * damaged one): counted once the whole log has been read, since numbers
 * are never reused and every segment names every endpoint again. */
struct pend_target {
	struct segment *seg;
	uint32_t id;
	uint8_t bucket;
	uint32_t count;
	uint64_t bytes;
	int64_t max_expires;
};

/* The same for an ACK record; it counts if no later one for its queue. */
struct pend_ack {
	uint64_t at;
	uint32_t id;
	uint8_t bucket;
	uint64_t floor_seq;
	struct store_pos floor;
	uint32_t n_acked;
	uint64_t *acked;
};

/* What the scan of all segments collects. */
struct scan {
	struct store *s;
	uint64_t *ids;
	size_t n_ids, cap_ids;
	uint64_t *frees; /* files kept from removed segments */
	size_t n_frees, cap_frees;
	struct {
		uint32_t id;
		struct endpoint *ep;
	} * map; /* endpoint numbers of the log */
	size_t n_map, cap_map;
	struct rec_acked *acked; /* room for one ACK record's list */
	uint64_t max_seq;
	uint64_t max_seg;
	uint32_t max_endpoint;
	bool oom;
	uint64_t records;
	struct pend_target *pend;
	size_t n_pend, cap_pend;
	struct pend_ack *packs;
	size_t n_packs, cap_packs;
};

static int collect_name(const char *name, void *arg)
{
	struct scan *sc = arg;
	uint64_t id;
	if (name_parse(name, ".free", &id)) {
		if (array_reserve(&sc->frees, &sc->cap_frees, sc->n_frees + 1, sizeof(*sc->frees),
				  4) < 0) {
			sc->oom = true;
			return -1;
		}
		sc->frees[sc->n_frees++] = id;
		return 0;
	}
	if (!seg_name_parse(name, &id))
		return 0;
	if (array_reserve(&sc->ids, &sc->cap_ids, sc->n_ids + 1, sizeof(*sc->ids), 16) < 0) {
		sc->oom = true;
		return -1;
	}
	sc->ids[sc->n_ids++] = id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static struct endpoint *map_get(struct scan *sc, uint32_t id)
{
	for (size_t i = 0; i < sc->n_map; i++)
		if (sc->map[i].id == id)
			return sc->map[i].ep;
	return NULL;
}

static int map_set(struct scan *sc, uint32_t id, struct endpoint *ep)
{
	for (size_t i = 0; i < sc->n_map; i++) {
		if (sc->map[i].id == id) {
			sc->map[i].ep = ep;
			return 0;
		}
	}
	if (array_reserve(&sc->map, &sc->cap_map, sc->n_map + 1, sizeof(*sc->map), 8) < 0)
		return -1;
	sc->map[sc->n_map].id = id;
	sc->map[sc->n_map].ep = ep;
	sc->n_map++;
	return 0;
}

/* A window of one segment file in the store's read buffer. */
struct reader {
	struct store *s;
	int h;
	uint64_t size;
	uint64_t base; /* file offset of rbuf[0] */
	size_t len;    /* bytes in rbuf */
	uint32_t mask; /* of the frames after the header */
	uint64_t id;
};

/* Makes [off, off + need) readable; returns a pointer to off, or NULL when
 * the file ends first (*got says how much there is) or on a read error. */
static const uint8_t *reader_at(struct reader *r, uint64_t off, size_t need, size_t *got,
				struct berr *err)
{
	struct store *s = r->s;
	uint64_t left = r->size > off ? r->size - off : 0;
	*got = left < need ? (size_t)left : need;
	if (off >= r->base && off + *got <= r->base + r->len)
		return *got == need ? s->rbuf + (off - r->base) : NULL;
	size_t want = need > SCAN_CHUNK ? need : SCAN_CHUNK;
	if (want > left)
		want = (size_t)left;
	if (want > s->rcap) {
		uint8_t *p = realloc(s->rbuf, want);
		if (!p) {
			berr_set(err, ENOMEM, "store: read buffer");
			return NULL;
		}
		s->rbuf = p;
		s->rcap = want;
	}
	s->rlen = 0; /* the lease cache no longer holds what it thought */
	ssize_t n = s->io->ops->pread(s->io, r->h, s->rbuf, want, off, err);
	if (n < 0) {
		r->len = 0;
		return NULL;
	}
	r->base = off;
	r->len = (size_t)n;
	if ((size_t)n < *got)
		*got = (size_t)n;
	return *got == need ? s->rbuf : NULL;
}

/* The frame at off: 1 intact (*fl bytes), 2 the end of the segment's
 * frames (in a version 2 log: the end mark, or an intact frame of an
 * earlier life of the file, with the mask of a smaller segment number), 0
 * cut short by the end of the file, -1 not a frame, -2 read error. */
static int frame_at(struct reader *r, uint64_t off, size_t *fl, const uint8_t **p, struct berr *err)
{
	size_t got;
	err->code = 0;
	const uint8_t *h = reader_at(r, off, STORE_FRAME_HEAD, &got, err);
	if (!h)
		return err->code ? -2 : 0;
	uint32_t len =
	    (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	if (len == 0 && r->mask && off && rec_is_end_mark(h, r->mask))
		return 2;
	if (len == 0 || len > STORE_RECORD_MAX)
		return -1;
	const uint8_t *f = reader_at(r, off, STORE_FRAME_HEAD + len, &got, err);
	if (!f)
		return err->code ? -2 : 0;
	uint32_t mask;
	int rc = rec_frame_mask(f, got, fl, &mask);
	if (rc <= 0 || f[STORE_FRAME_HEAD] < REC_HEADER || f[STORE_FRAME_HEAD] > REC_ACK)
		return -1;
	*p = f;
	if (mask == (off ? r->mask : 0))
		return 1;
	/* Where the file had an earlier life, its frames follow this one's. */
	if (r->mask && off && (!mask || rec_mask_segment(mask) < (uint32_t)r->id))
		return 2;
	return -1;
}

/* Where the bytes from off on stop being zeros (r->size when they never
 * do): a preallocated segment reads as zeros past its last record. */
static uint64_t zeros_end(struct reader *r, uint64_t off, struct berr *err)
{
	uint64_t last = off; /* one past the last non-zero byte seen */
	while (off < r->size) {
		size_t got,
		    want = r->size - off > SCAN_CHUNK ? SCAN_CHUNK : (size_t)(r->size - off);
		const uint8_t *p = reader_at(r, off, want, &got, err);
		if (!p)
			return off;
		for (size_t i = 0; i < want; i++)
			if (p[i])
				last = off + i + 1;
		off += want;
	}
	return last;
}

/* The next offset after from where an intact frame starts, or 0; *old
 * says whether it is one of an earlier life of the file. */
static uint64_t resync(struct reader *r, uint64_t from, bool *old, struct berr *err)
{
	for (uint64_t off = from; off + STORE_FRAME_HEAD < r->size; off++) {
		size_t fl;
		const uint8_t *p;
		int rc = frame_at(r, off, &fl, &p, err);
		if (rc == 1 || rc == 2) {
			*old = rc == 2;
			return off;
		}
		if (rc == -2)
			return 0;
	}
	return 0;
}

static void pend_target(struct scan *sc, struct segment *seg, const struct rec_target *t, size_t fl,
			int64_t exp)
{
	struct pend_target *p = NULL;
	for (size_t i = sc->n_pend; i > 0 && !p; i--)
		if (sc->pend[i - 1].seg == seg && sc->pend[i - 1].id == t->endpoint &&
		    sc->pend[i - 1].bucket == t->bucket)
			p = &sc->pend[i - 1];
	if (!p) {
		if (array_reserve(&sc->pend, &sc->cap_pend, sc->n_pend + 1, sizeof(*sc->pend), 8) <
		    0) {
			sc->oom = true;
			return;
		}
		p = &sc->pend[sc->n_pend++];
		*p = (struct pend_target){seg, t->endpoint, t->bucket, 0, 0, 0};
	}
	p->count++;
	p->bytes += fl;
	if (exp > p->max_expires)
		p->max_expires = exp;
}

static void scan_message(struct scan *sc, struct segment *seg, const uint8_t *payload, size_t len,
			 size_t fl)
{
	struct store *s = sc->s;
	struct rec_message m;
	if (rec_decode_message(payload, len, &m) < 0) {
		s->t.damaged++;
		return;
	}
	if (m.seq > sc->max_seq)
		sc->max_seq = m.seq;
	const uint8_t *it = m.targets;
	struct rec_target t;
	while (rec_next_target(&m, &it, &t) > 0) {
		int64_t exp = m.enqueued_ms + (int64_t)t.ttl_secs * 1000;
		if (t.endpoint > sc->max_endpoint)
			sc->max_endpoint = t.endpoint;
		struct endpoint *ep = map_get(sc, t.endpoint);
		if (!ep) {
			pend_target(sc, seg, &t, fl, exp);
			continue;
		}
		struct seg_queue *sq = store_seg_queue(seg, ep, t.bucket, true);
		if (!sq) {
			sc->oom = true;
			continue;
		}
		store_seg_queue_count(seg, sq, 1, fl, exp);
	}
}

static void apply_ack(struct queue *q, uint64_t at, uint64_t floor_seq, struct store_pos floor,
		      uint64_t *ahead, uint32_t n)
{
	free(q->ahead);
	q->ahead = ahead;
	q->n_ahead = n;
	q->done_below = floor_seq;
	q->cursor = floor;
	q->scanned_ack = true;
	q->scanned_at = at;
	q->known = true;
}

static void scan_ack(struct scan *sc, const uint8_t *payload, size_t len)
{
	struct rec_ack a = {.acked = sc->acked};
	if (rec_decode_ack(payload, len, &a) < 0) {
		sc->s->t.damaged++;
		return;
	}
	uint64_t *ahead = NULL;
	if (a.n_acked && !(ahead = malloc(a.n_acked * sizeof(*ahead)))) {
		sc->oom = true;
		return;
	}
	for (uint32_t i = 0; i < a.n_acked; i++) {
		ahead[i] = a.acked[i].seq;
		if (ahead[i] > sc->max_seq)
			sc->max_seq = ahead[i];
	}
	if (a.floor_seq && a.floor_seq - 1 > sc->max_seq)
		sc->max_seq = a.floor_seq - 1;
	if (a.endpoint > sc->max_endpoint)
		sc->max_endpoint = a.endpoint;
	struct endpoint *ep = map_get(sc, a.endpoint);
	if (ep) {
		apply_ack(&ep->q[a.bucket], sc->records, a.floor_seq, a.floor, ahead, a.n_acked);
		return;
	}
	if (array_reserve(&sc->packs, &sc->cap_packs, sc->n_packs + 1, sizeof(*sc->packs), 8) < 0) {
		free(ahead);
		sc->oom = true;
		return;
	}
	sc->packs[sc->n_packs++] = (struct pend_ack){sc->records, a.endpoint, a.bucket, a.floor_seq,
						     a.floor,	  a.n_acked,  ahead};
}

/* What waited for an endpoint's name, now that the whole log was read. */
static void resolve_pending(struct scan *sc)
{
	for (size_t i = 0; i < sc->n_pend; i++) {
		struct pend_target *p = &sc->pend[i];
		struct endpoint *ep = map_get(sc, p->id);
		struct seg_queue *sq = ep ? store_seg_queue(p->seg, ep, p->bucket, true) : NULL;
		if (!sq) {
			sc->s->t.damaged += p->count;
			continue;
		}
		store_seg_queue_count(p->seg, sq, p->count, p->bytes, p->max_expires);
	}
	for (size_t i = 0; i < sc->n_packs; i++) {
		struct pend_ack *p = &sc->packs[i];
		struct endpoint *ep = map_get(sc, p->id);
		struct queue *q = ep ? &ep->q[p->bucket] : NULL;
		if (q && (!q->scanned_ack || q->scanned_at < p->at)) {
			apply_ack(q, p->at, p->floor_seq, p->floor, p->acked, p->n_acked);
			p->acked = NULL;
		}
		free(p->acked);
		p->acked = NULL;
	}
}

static int scan_record(struct scan *sc, struct segment *seg, const uint8_t *f, size_t fl,
		       bool first, struct berr *err)
{
	struct store *s = sc->s;
	sc->records++;
	const uint8_t *p = f + STORE_FRAME_HEAD;
	size_t len = fl - STORE_FRAME_HEAD;
	char name[STORE_SEG_NAME_MAX];
	switch (p[0]) {
	case REC_HEADER: {
		struct rec_header h;
		if (rec_decode_header(p, len, &h) < 0) {
			s->t.damaged++;
			return 0;
		}
		if (h.version < STORE_LOG_VERSION_MIN || h.version > STORE_LOG_VERSION) {
			store_seg_name(seg->id, name);
			return berr_set(
			    err, 0,
			    "store %s: %s is a log of version %u; this hub reads versions "
			    "%d to %d (move the directory aside, or run the berth that wrote it)",
			    s->io->where, name, h.version, STORE_LOG_VERSION_MIN,
			    STORE_LOG_VERSION);
		}
		if (first) {
			seg->first_seq = h.next_seq;
			if (h.next_seq && h.next_seq - 1 > sc->max_seq)
				sc->max_seq = h.next_seq - 1;
		}
		return 0;
	}
	case REC_ENDPOINT: {
		struct rec_endpoint e;
		struct endpoint *ep;
		if (rec_decode_endpoint(p, len, &e) < 0) {
			s->t.damaged++;
			return 0;
		}
		if (!(ep = store_endpoint_get(s, e.name, true)) || map_set(sc, e.id, ep) < 0)
			return berr_set(err, ENOMEM, "store: endpoints");
		ep->id = e.id;
		if (e.id > sc->max_endpoint)
			sc->max_endpoint = e.id;
		return 0;
	}
	case REC_MESSAGE:
		scan_message(sc, seg, p, len, fl);
		return 0;
	case REC_ACK:
		scan_ack(sc, p, len);
		return 0;
	}
	return 0;
}

/* The first frame of a segment: false when it is the header of a version 2
 * log naming another segment (a kept file renamed for a new segment whose
 * header was not written yet: nothing of the new one is in it). Else the
 * masks of the frames that follow are known. */
static bool header_of(struct reader *r, const uint8_t *f, size_t fl)
{
	struct rec_header h;
	if (f[STORE_FRAME_HEAD] != REC_HEADER ||
	    rec_decode_header(f + STORE_FRAME_HEAD, fl - STORE_FRAME_HEAD, &h) < 0 ||
	    h.version < 2 || h.version > STORE_LOG_VERSION) {
		return true; /* version 1: unmasked; a newer one: refused later */
	}
	if (h.segment != r->id)
		return false;
	r->mask = rec_mask_of(r->id);
	return true;
}

static int scan_segment(struct scan *sc, uint64_t id, struct berr *err)
{
	struct store *s = sc->s;
	struct store_io *io = s->io;
	char name[STORE_SEG_NAME_MAX];
	store_seg_name(id, name);
	int h = io->ops->open(io, name, false, err);
	if (h < 0)
		return berr_wrap(err, "store");
	struct segment *seg = calloc(1, sizeof(*seg));
	if (!seg) {
		io->ops->close(io, h);
		return berr_set(err, ENOMEM, "store: segment");
	}
	seg->id = id;
	seg->h = h;
	seg->sealed = true;
	struct reader r = {.s = s, .h = h, .id = id};
	if (io->ops->size(io, h, &r.size, err) < 0)
		goto fail;
	uint64_t off = 0;
	size_t n_good = 0;
	while (off < r.size) {
		size_t fl;
		const uint8_t *f;
		int rc = frame_at(&r, off, &fl, &f, err);
		if (rc == -2)
			goto fail;
		if (rc == 1 && n_good == 0 && !header_of(&r, f, fl))
			break; /* a kept file whose new header never made it */
		if (rc == 1) {
			if (scan_record(sc, seg, f, fl, n_good == 0, err) < 0)
				goto fail;
			n_good++;
			off += fl;
			continue;
		}
		if (off == 0 && !r.mask) {
			/* No header: the frames after it, if any, are masked. */
			r.mask = rec_mask_of(id);
			r.id = id;
		}
		if (rc == 2) {
			/* The end mark, or an earlier life of the file. */
			if (io->ops->truncate(io, h, off, err) < 0)
				goto fail;
			r.size = off;
			break;
		}
		/* Zeros to the end: the preallocated rest, not damage. */
		uint64_t dirty = zeros_end(&r, off, err);
		if (err->code)
			goto fail;
		if (dirty == off) {
			if (io->ops->truncate(io, h, off, err) < 0)
				goto fail;
			r.size = off;
			break;
		}
		bool old = false;
		uint64_t next = resync(&r, off + 1, &old, err);
		if (err->code)
			goto fail;
		if (next && !old) {
			void *holes = realloc(seg->holes, (seg->n_holes + 1) * sizeof(*seg->holes));
			if (!holes) {
				berr_set(err, ENOMEM, "store: segment");
				goto fail;
			}
			seg->holes = holes;
			seg->holes[seg->n_holes].from = off;
			seg->holes[seg->n_holes++].to = next;
			log_warn("store %s: %s: %" PRIu64 " damaged bytes at offset %" PRIu64
				 " skipped",
				 io->where, name, next - off, off);
			s->t.damaged++;
			off = next;
			continue;
		}
		uint64_t end = next ? next : dirty;
		log_warn("store %s: %s: torn tail of %" PRIu64 " bytes cut at offset %" PRIu64,
			 io->where, name, end - off, off);
		s->t.cut_bytes += end - off;
		if (io->ops->truncate(io, h, off, err) < 0)
			goto fail;
		r.size = off;
		break;
	}
	if (n_good == 0) {
		/* Created, but not one record of it made it: nothing can be in it. */
		io->ops->close(io, h);
		free(seg->holes);
		free(seg->qs);
		free(seg);
		if (io->ops->unlink(io, name, err) < 0 || io->ops->sync_dir(io, err) < 0)
			return berr_wrap(err, "store");
		log_info("store %s: %s held no record; removed", io->where, name);
		return 0;
	}
	seg->size = seg->committed = seg->opening = r.size;
	seg->mask = r.mask;
	s->bytes += r.size;
	struct segment **sp = &s->segs;
	while (*sp)
		sp = &(*sp)->next;
	*sp = seg;
	return 0;
fail:
	io->ops->close(io, h);
	free(seg->holes);
	free(seg->qs);
	free(seg);
	return berr_wrap(err, "store %s: %s", io->where, name);
}

/* Files kept from removed segments: the oldest STORE_POOL_MAX stay for
 * reuse, any others go. */
static void keep_frees(struct scan *sc)
{
	struct store *s = sc->s;
	if (sc->n_frees)
		qsort(sc->frees, sc->n_frees, sizeof(*sc->frees), cmp_u64);
	s->n_pool = s->pool_coming = 0;
	for (size_t i = 0; i < sc->n_frees; i++) {
		if (s->n_pool < STORE_POOL_MAX) {
			s->pool[s->n_pool++] = (struct unlink){sc->frees[i], 0, true, true};
			continue;
		}
		char name[STORE_SEG_NAME_MAX];
		struct berr err;
		store_free_name(sc->frees[i], name);
		if (s->io->ops->unlink(s->io, name, &err) < 0)
			log_warn("store: %s", err.msg);
	}
}

/* Each queue from its last ACK record (or from the start of the log). */
static void settle_queues(struct store *s)
{
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next) {
		for (int b = 0; b < STORE_BUCKETS; b++) {
			struct queue *q = &ep->q[b];
			if (q->scanned_ack) {
				/* Everything of it before the floor's segment is done;
				 * within that segment the seqs tell. */
				for (struct segment *seg = s->segs; seg && seg->id < q->cursor.seg;
				     seg = seg->next) {
					struct seg_queue *sq = store_seg_queue(seg, ep, b, false);
					if (sq)
						sq->unread = sq->live = 0, sq->unread_bytes = 0;
				}
				q->cursor.off = 0;
				q->scanned_ack = false;
			} else {
				q->cursor.seg = s->segs ? s->segs->id : 0;
				q->cursor.off = 0;
				q->done_below = 0;
			}
			q->unread = q->held = q->bytes = 0;
			for (struct segment *seg = s->segs; seg; seg = seg->next) {
				struct seg_queue *sq = store_seg_queue(seg, ep, b, false);
				if (sq) {
					q->unread += sq->unread;
					q->bytes += sq->unread_bytes;
				}
			}
			q->held = q->unread;
			if (q->unread)
				q->known = true;
		}
	}
}

int store_scan(struct store *s, struct berr *err)
{
	struct scan sc = {.s = s};
	struct store_io *io = s->io;
	int rc = -1;
	sc.acked = malloc(STORE_ACKED_MAX * sizeof(*sc.acked));
	if (!sc.acked) {
		berr_set(err, ENOMEM, "store");
		goto out;
	}
	if (io->ops->list(io, collect_name, &sc, err) < 0) {
		if (sc.oom)
			berr_set(err, ENOMEM, "store %s: list", io->where);
		goto out;
	}
	if (sc.n_ids)
		qsort(sc.ids, sc.n_ids, sizeof(*sc.ids), cmp_u64);
	for (size_t i = 0; i < sc.n_ids; i++) {
		if (scan_segment(&sc, sc.ids[i], err) < 0)
			goto out;
		if (sc.ids[i] > sc.max_seg)
			sc.max_seg = sc.ids[i];
	}
	keep_frees(&sc);
	resolve_pending(&sc);
	if (sc.oom) {
		berr_set(err, ENOMEM, "store %s", io->where);
		goto out;
	}
	settle_queues(s);
	s->next_seq = sc.max_seq + 1;
	s->next_seg_id = sc.max_seg + 1;
	s->next_endpoint_id = sc.max_endpoint + 1;
	for (struct endpoint *ep = s->endpoints; ep; ep = ep->next)
		if (ep->id == 0 || !map_get(&sc, ep->id) || map_get(&sc, ep->id) != ep)
			ep->id = s->next_endpoint_id++;
	rc = 0;
out:
	free(sc.acked);
	free(sc.ids);
	free(sc.frees);
	free(sc.map);
	for (size_t i = 0; i < sc.n_packs; i++)
		free(sc.packs[i].acked);
	free(sc.pend);
	free(sc.packs);
	return rc;
}

int hub_store_inspect(const char *dir, uint64_t *segments, uint64_t *bytes, struct berr *err)
{
	*segments = *bytes = 0;
	cleanup_closedir DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : berr_set(err, errno, "store %s", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t id;
		if (!seg_name_parse(e->d_name, &id))
			continue;
		cleanup_close int fd =
		    openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return berr_set(err, errno, "store %s: %s", dir, e->d_name);
		uint8_t buf[64];
		ssize_t n = pread(fd, buf, sizeof(buf), 0);
		size_t fl;
		struct rec_header h;
		if (n < 0)
			return berr_set(err, errno, "store %s: %s", dir, e->d_name);
		(*segments)++;
		*bytes += (uint64_t)st.st_size;
		/* A torn first record is the hub's to cut; a header that reads
		 * must be of a known version. */
		if (rec_frame_check(buf, (size_t)n, &fl, 0) == 1 &&
		    rec_decode_header(buf + STORE_FRAME_HEAD, fl - STORE_FRAME_HEAD, &h) == 0 &&
		    (h.version < STORE_LOG_VERSION_MIN || h.version > STORE_LOG_VERSION))
			return berr_set(err, 0,
					"store %s: %s is a log of version %u; this berth reads "
					"versions %d to %d",
					dir, e->d_name, h.version, STORE_LOG_VERSION_MIN,
					STORE_LOG_VERSION);
	}
	return 0;
}
