/* Encoding and decoding the log's records (format in store_record.h). */
#include "hub/store_record.h"

#include <stdlib.h>
#include <string.h>

#include "hub/crc32c.h"

#define VARINT_MAX 10

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Odd, so that multiplying by it is undone by multiplying by its inverse
 * modulo 2^32. */
#define MASK_MUL 0x9E3779B1u
#define MASK_INV 0x0E8B2F51u

uint32_t rec_mask_of(uint64_t seg)
{
	return (uint32_t)seg * MASK_MUL;
}

uint32_t rec_mask_segment(uint32_t mask)
{
	return mask * MASK_INV;
}

int rec_frame_mask(const uint8_t *buf, size_t avail, size_t *frame, uint32_t *mask)
{
	if (avail < STORE_FRAME_HEAD)
		return 0;
	uint32_t len = get32(buf);
	if (len == 0 || len > STORE_RECORD_MAX)
		return -1;
	if (avail - STORE_FRAME_HEAD < len)
		return 0;
	*mask = crc32c(crc32c(0, buf, 4), buf + STORE_FRAME_HEAD, len) ^ get32(buf + 4);
	*frame = STORE_FRAME_HEAD + (size_t)len;
	return 1;
}

int rec_frame_check(const uint8_t *buf, size_t avail, size_t *frame, uint32_t mask)
{
	uint32_t m;
	size_t fl;
	int rc = rec_frame_mask(buf, avail, &fl, &m);
	if (rc != 1)
		return rc;
	if (m != mask)
		return -1;
	*frame = fl;
	return 1;
}

#define END_MAGIC 0x454E4421u /* "!DNE" */

void rec_end_mark(uint8_t *p, uint32_t mask)
{
	put32(p, 0);
	put32(p + 4, mask ^ END_MAGIC);
}

bool rec_is_end_mark(const uint8_t *p, uint32_t mask)
{
	return get32(p) == 0 && get32(p + 4) == (mask ^ END_MAGIC);
}

void rec_frames_mask(uint8_t *buf, size_t len, uint32_t mask)
{
	size_t off = 0;
	while (len - off >= STORE_FRAME_HEAD) {
		size_t fl = STORE_FRAME_HEAD + (size_t)get32(buf + off);
		if (fl > len - off)
			break;
		put32(buf + off + 4, get32(buf + off + 4) ^ mask);
		off += fl;
	}
}

void rec_frame_seal(uint8_t *buf, size_t payload_len)
{
	put32(buf, (uint32_t)payload_len);
	put32(buf + 4, crc32c(crc32c(0, buf, 4), buf + STORE_FRAME_HEAD, payload_len));
}

/* ---- reading ---- */

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t rd_varint(struct rd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end)
			break;
		uint8_t b = *r->p++;
		if (shift == 63 && b > 1)
			break;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static uint64_t rd_max(struct rd *r, uint64_t max)
{
	uint64_t v = rd_varint(r);
	if (v > max)
		r->bad = true;
	return r->bad ? 0 : v;
}

static uint8_t rd_u8(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

/* len bytes; NULL (and bad) when they are not all there. */
static const uint8_t *rd_bytes(struct rd *r, size_t len)
{
	if (r->bad || (size_t)(r->end - r->p) < len) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += len;
	return p;
}

/* A string without NUL bytes, of 1..max bytes (0..max with empty_ok). */
static const uint8_t *rd_str(struct rd *r, size_t max, bool empty_ok, size_t *len)
{
	*len = (size_t)rd_max(r, max);
	const uint8_t *s = rd_bytes(r, *len);
	if (s && ((!empty_ok && *len == 0) || memchr(s, 0, *len)))
		r->bad = true;
	return r->bad ? NULL : s;
}

static int rd_type(struct rd *r, const uint8_t *p, size_t len, enum store_rec_type type)
{
	r->p = p;
	r->end = p + len;
	r->bad = false;
	return rd_u8(r) == type && !r->bad ? 0 : -1;
}

static int rd_done(const struct rd *r)
{
	return !r->bad && r->p == r->end ? 0 : -1;
}

int rec_decode_header(const uint8_t *p, size_t len, struct rec_header *out)
{
	struct rd r;
	if (rd_type(&r, p, len, REC_HEADER) < 0)
		return -1;
	const uint8_t *magic = rd_bytes(&r, 8);
	if (!magic || memcmp(magic, STORE_LOG_MAGIC, 8))
		return -1;
	out->version = (uint32_t)rd_max(&r, UINT32_MAX);
	out->segment = rd_max(&r, UINT64_MAX >> 1);
	out->next_seq = rd_max(&r, UINT64_MAX >> 1);
	out->created_ms = (int64_t)rd_max(&r, INT64_MAX);
	/* A newer version may add fields after these. */
	return r.bad ? -1 : 0;
}

int rec_decode_endpoint(const uint8_t *p, size_t len, struct rec_endpoint *out)
{
	struct rd r;
	if (rd_type(&r, p, len, REC_ENDPOINT) < 0)
		return -1;
	out->id = (uint32_t)rd_max(&r, UINT32_MAX);
	size_t n;
	const uint8_t *name = rd_str(&r, STORE_ENDPOINT_MAX, false, &n);
	if (!name || rd_done(&r) < 0)
		return -1;
	memcpy(out->name, name, n);
	out->name[n] = '\0';
	return 0;
}

static void rd_target(struct rd *r, struct rec_target *t)
{
	t->endpoint = (uint32_t)rd_max(r, UINT32_MAX);
	t->bucket = rd_u8(r);
	if (t->bucket > STORE_PRIORITY_NONE)
		r->bad = true;
	t->ttl_secs = (uint32_t)rd_max(r, UINT32_MAX);
}

/* Walks the content, checking it: sys properties, properties, body. */
static void rd_content(struct rd *r, struct hub_message *m)
{
	size_t n_sys = rd_max(r, MSG_SYS_COUNT);
	uint32_t seen = 0;
	for (size_t i = 0; i < n_sys && !r->bad; i++) {
		uint8_t idx = rd_u8(r);
		size_t len;
		if (idx >= MSG_SYS_COUNT || seen & (1u << idx)) {
			r->bad = true;
			break;
		}
		seen |= 1u << idx;
		const uint8_t *v = rd_str(r, STORE_RECORD_MAX, true, &len);
		if (v && m && !(m->sys[idx] = strndup((const char *)v, len)))
			return;
	}
	size_t n_props = rd_max(r, MSG_MAX_PROPS);
	if (m && n_props && !r->bad) {
		m->props = calloc(n_props, sizeof(*m->props));
		if (!m->props)
			return;
	}
	for (size_t i = 0; i < n_props && !r->bad; i++) {
		size_t klen, vlen;
		const uint8_t *k = rd_str(r, STORE_RECORD_MAX, true, &klen);
		const uint8_t *v = rd_str(r, STORE_RECORD_MAX, true, &vlen);
		if (r->bad || !m)
			continue;
		m->n_props++;
		if (!(m->props[i].key = strndup((const char *)k, klen)) ||
		    !(m->props[i].value = strndup((const char *)v, vlen)))
			return;
	}
	size_t body_len = rd_max(r, MSG_MAX_BODY);
	const uint8_t *body = rd_bytes(r, body_len);
	if (r->bad || !m)
		return;
	m->body = malloc(body_len ? body_len : 1);
	if (!m->body)
		return;
	memcpy(m->body, body, body_len);
	m->body_len = body_len;
}

int rec_decode_message(const uint8_t *p, size_t len, struct rec_message *out)
{
	struct rd r;
	if (rd_type(&r, p, len, REC_MESSAGE) < 0)
		return -1;
	const uint8_t *seq = rd_bytes(&r, 8);
	if (!seq)
		return -1;
	out->seq = (uint64_t)get32(seq) | (uint64_t)get32(seq + 4) << 32;
	if (out->seq == 0 || out->seq > UINT64_MAX >> 2)
		return -1;
	out->enqueued_ms = (int64_t)rd_max(&r, INT64_MAX >> 1);
	out->n_targets = (uint32_t)rd_max(&r, STORE_TARGETS_MAX);
	if (out->n_targets == 0)
		return -1;
	out->targets = r.p;
	struct rec_target t;
	for (uint32_t i = 0; i < out->n_targets && !r.bad; i++)
		rd_target(&r, &t);
	out->targets_end = out->content = r.p;
	rd_content(&r, NULL);
	out->content_end = r.p;
	return rd_done(&r);
}

int rec_next_target(const struct rec_message *m, const uint8_t **it, struct rec_target *t)
{
	if (*it >= m->targets_end)
		return 0;
	struct rd r = {*it, m->targets_end, false};
	rd_target(&r, t);
	*it = r.p;
	return r.bad ? 0 : 1;
}

int rec_decode_content(const struct rec_message *m, struct hub_message *out)
{
	memset(out, 0, sizeof(*out));
	struct rd r = {m->content, m->content_end, false};
	rd_content(&r, out);
	/* rd_content stops at the first allocation that fails, before the body. */
	int rc = r.bad ? -1 : !out->body ? -2 : r.p != r.end ? -1 : 0;
	if (rc < 0) {
		hub_message_clear(out);
		return rc;
	}
	out->enqueued_ms = m->enqueued_ms;
	return 0;
}

int rec_decode_ack(const uint8_t *p, size_t len, struct rec_ack *out)
{
	struct rd r;
	if (rd_type(&r, p, len, REC_ACK) < 0)
		return -1;
	out->endpoint = (uint32_t)rd_max(&r, UINT32_MAX);
	out->bucket = rd_u8(&r);
	if (out->bucket > STORE_PRIORITY_NONE)
		return -1;
	out->floor_seq = rd_max(&r, UINT64_MAX >> 2);
	out->floor.seg = rd_max(&r, UINT64_MAX >> 1);
	out->floor.off = rd_max(&r, UINT64_MAX >> 1);
	out->n_acked = (uint32_t)rd_max(&r, STORE_ACKED_MAX);
	uint64_t seq = out->floor_seq;
	for (uint32_t i = 0; i < out->n_acked && !r.bad; i++) {
		uint64_t delta = rd_max(&r, UINT64_MAX >> 2);
		if (delta == 0)
			return -1;
		seq += delta;
		out->acked[i].seq = seq;
		out->acked[i].seg = rd_max(&r, UINT64_MAX >> 1);
	}
	return rd_done(&r);
}

/* ---- writing ---- */

struct wr {
	uint8_t *p; /* NULL: count only */
	size_t len;
};

static void wr_bytes(struct wr *w, const void *src, size_t n)
{
	if (w->p && n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void wr_varint(struct wr *w, uint64_t v)
{
	uint8_t b[VARINT_MAX];
	size_t n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	wr_bytes(w, b, n);
}

static void wr_str(struct wr *w, const char *s)
{
	size_t n = strlen(s);
	wr_varint(w, n);
	wr_bytes(w, s, n);
}

static size_t wr_frame(struct wr *w)
{
	if (w->p)
		rec_frame_seal(w->p, w->len - STORE_FRAME_HEAD);
	return w->len;
}

size_t rec_encode_header(uint8_t *dst, const struct rec_header *h)
{
	struct wr w = {dst, STORE_FRAME_HEAD};
	wr_u8(&w, REC_HEADER);
	wr_bytes(&w, STORE_LOG_MAGIC, 8);
	wr_varint(&w, h->version);
	wr_varint(&w, h->segment);
	wr_varint(&w, h->next_seq);
	wr_varint(&w, (uint64_t)(h->created_ms > 0 ? h->created_ms : 0));
	return wr_frame(&w);
}

size_t rec_encode_endpoint(uint8_t *dst, uint32_t id, const char *name)
{
	struct wr w = {dst, STORE_FRAME_HEAD};
	wr_u8(&w, REC_ENDPOINT);
	wr_varint(&w, id);
	wr_str(&w, name);
	return wr_frame(&w);
}

size_t rec_encode_message(uint8_t *dst, uint64_t seq, const struct hub_message *m,
			  const struct rec_target *targets, size_t n)
{
	struct wr w = {dst, STORE_FRAME_HEAD};
	wr_u8(&w, REC_MESSAGE);
	uint8_t seq8[8];
	put32(seq8, (uint32_t)seq);
	put32(seq8 + 4, (uint32_t)(seq >> 32));
	wr_bytes(&w, seq8, 8);
	wr_varint(&w, (uint64_t)(m->enqueued_ms > 0 ? m->enqueued_ms : 0));
	wr_varint(&w, n);
	for (size_t i = 0; i < n; i++) {
		wr_varint(&w, targets[i].endpoint);
		wr_u8(&w, targets[i].bucket);
		wr_varint(&w, targets[i].ttl_secs);
	}
	size_t n_sys = 0;
	for (int i = 0; i < MSG_SYS_COUNT; i++)
		n_sys += m->sys[i] != NULL;
	wr_varint(&w, n_sys);
	for (int i = 0; i < MSG_SYS_COUNT; i++) {
		if (m->sys[i]) {
			wr_u8(&w, (uint8_t)i);
			wr_str(&w, m->sys[i]);
		}
	}
	wr_varint(&w, m->n_props);
	for (size_t i = 0; i < m->n_props; i++) {
		wr_str(&w, m->props[i].key ? m->props[i].key : "");
		wr_str(&w, m->props[i].value ? m->props[i].value : "");
	}
	wr_varint(&w, m->body_len);
	wr_bytes(&w, m->body, m->body_len);
	return wr_frame(&w);
}

size_t rec_encode_ack(uint8_t *dst, const struct rec_ack *a)
{
	struct wr w = {dst, STORE_FRAME_HEAD};
	wr_u8(&w, REC_ACK);
	wr_varint(&w, a->endpoint);
	wr_u8(&w, a->bucket);
	wr_varint(&w, a->floor_seq);
	wr_varint(&w, a->floor.seg);
	wr_varint(&w, a->floor.off);
	wr_varint(&w, a->n_acked);
	uint64_t prev = a->floor_seq;
	for (uint32_t i = 0; i < a->n_acked; i++) {
		wr_varint(&w, a->acked[i].seq - prev);
		prev = a->acked[i].seq;
		wr_varint(&w, a->acked[i].seg);
	}
	return wr_frame(&w);
}

void rec_renumber(uint8_t *frame, uint64_t seq)
{
	uint8_t *p = frame + STORE_FRAME_HEAD + 1;
	put32(p, (uint32_t)seq);
	put32(p + 4, (uint32_t)(seq >> 32));
	rec_frame_seal(frame, get32(frame));
}
