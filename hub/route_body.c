/* $body queries: one streaming pass over a JSON body answers every query
 * of a route table, without building the document. yajl's allocations go to
 * an arena on the stack (with malloc only past it), so a routed message
 * costs no heap allocation unless a matched string had escapes and does not
 * fit the scratch buffer.
 *
 * As edgeHub: only a JSON object in a message whose $contentType is
 * application/json and $contentEncoding utf-8, utf-16 or utf-32 (any case)
 * is read; a query that leads nowhere is null, one that ends on an object or
 * array is undefined; an unreadable body makes every query undefined. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_parse.h>

#include "common/json.h"
#include "hub/message.h"
#include "hub/route_internal.h"

#define WORDS ((ROUTE_BODY_QUERIES_MAX + 63) / 64)
#define ARENA 8192

struct extract {
	struct route_eval_ctx *c;
	const char *text; /* the UTF-8 body: strings inside it are used in place */
	size_t len;
	unsigned depth; /* open objects and arrays */
	bool rooted;	/* the top-level object was opened */
	struct {
		bool is_array;
		uint32_t index; /* arrays: index of the next element */
	} frames[JSON_MAX_DEPTH];
	/* alive[d]: queries whose first d steps lead to the current position
	 * at depth d. */
	uint64_t alive[ROUTE_BODY_PATH_MAX + 1][WORDS];
	size_t arena_used;
	alignas(16) unsigned char arena[ARENA];
};

/* ---- yajl's memory ---- */

struct block {
	size_t size;
	alignas(16) unsigned char data[];
};

static bool in_arena(struct extract *x, void *p)
{
	return (unsigned char *)p >= x->arena && (unsigned char *)p < x->arena + ARENA;
}

static void *arena_malloc(void *ctx, size_t n)
{
	struct extract *x = ctx;
	size_t need = (sizeof(struct block) + n + 15) & ~(size_t)15;
	if (need <= ARENA - x->arena_used) {
		struct block *b = (struct block *)(x->arena + x->arena_used);
		x->arena_used += need;
		b->size = n;
		return b->data;
	}
	struct block *b = malloc(sizeof(*b) + n);
	if (!b)
		return NULL;
	b->size = n;
	return b->data;
}

static void arena_free(void *ctx, void *p)
{
	if (p && !in_arena(ctx, p))
		free((unsigned char *)p - offsetof(struct block, data));
}

static void *arena_realloc(void *ctx, void *p, size_t n)
{
	if (!p)
		return arena_malloc(ctx, n);
	struct block *old = (struct block *)((unsigned char *)p - offsetof(struct block, data));
	if (n <= old->size)
		return p;
	void *q = arena_malloc(ctx, n);
	if (!q)
		return NULL;
	memcpy(q, p, old->size);
	arena_free(ctx, p);
	return q;
}

/* ---- matching the queries ---- */

/* Steps one level down, at depth d, by a member name or an array index. */
static void descend(struct extract *x, unsigned d, const char *key, size_t key_len, bool is_index,
		    uint32_t index)
{
	if (d > ROUTE_BODY_PATH_MAX)
		return;
	for (size_t w = 0; w < WORDS; w++) {
		uint64_t bits = x->alive[d - 1][w], keep = 0;
		while (bits) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			const struct body_query *q = &x->c->queries[w * 64 + b];
			if (q->nseg < d)
				continue;
			const struct body_seg *s = &q->segs[d - 1];
			if (s->is_index ? (is_index && s->index == index)
					: (!is_index && s->key_len == key_len &&
					   memcmp(q->pool + s->key, key, key_len) == 0))
				keep |= 1ull << b;
		}
		x->alive[d][w] = keep;
	}
}

/* Moves to the position of the next value (the next element, in an array);
 * returns whether a query is still alive there, so values nobody asked for
 * are not converted. */
static bool at_value(struct extract *x)
{
	unsigned d = x->depth;
	if (x->frames[d - 1].is_array)
		descend(x, d, NULL, 0, true, x->frames[d - 1].index++);
	if (d > ROUTE_BODY_PATH_MAX)
		return false;
	for (size_t w = 0; w < WORDS; w++)
		if (x->alive[d][w])
			return true;
	return false;
}

/* Records v as the answer to every query that ends at the current position.
 * copy_from: v is a string decoded from escapes, which lives in yajl's
 * buffer only during this call. */
static int record(struct extract *x, const struct rval *v, const char *copy_from)
{
	unsigned d = x->depth;
	struct route_eval_ctx *c = x->c;
	for (size_t w = 0; w < WORDS; w++) {
		uint64_t bits = x->alive[d][w];
		while (bits) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			size_t i = w * 64 + b;
			if (c->queries[i].nseg != d)
				continue;
			/* A later duplicate member replaces an earlier one. */
			free(c->owned[i]);
			c->owned[i] = NULL;
			c->values[i] = *v;
			if (!copy_from)
				continue;
			/* Small copies share the scratch buffer, up to half of it, so
			 * strings built while evaluating keep room. */
			char *dst;
			if (c->scratch_base + v->len + 1 <= sizeof(c->scratch) / 2) {
				dst = c->scratch + c->scratch_base;
				c->scratch_base += v->len + 1;
			} else if (!(dst = c->owned[i] = malloc(v->len + 1))) {
				return 0;
			}
			memcpy(dst, copy_from, v->len);
			dst[v->len] = '\0';
			c->values[i].str = dst;
		}
	}
	return 1;
}

/* The top level must be an object: a scalar there ends the parse. */
static int on_null(void *ctx)
{
	struct extract *x = ctx;
	if (!x->depth)
		return 0;
	struct rval v = {.kind = RV_NULL};
	return at_value(x) ? record(x, &v, NULL) : 1;
}

static int on_boolean(void *ctx, int b)
{
	struct extract *x = ctx;
	if (!x->depth)
		return 0;
	struct rval v = {.kind = RV_BOOL, .b = b != 0};
	return at_value(x) ? record(x, &v, NULL) : 1;
}

static int on_number(void *ctx, const char *s, size_t n)
{
	struct extract *x = ctx;
	if (!x->depth)
		return 0;
	if (!at_value(x))
		return 1;
	char buf[400];
	struct rval v = {.kind = RV_UNDEF};
	if (n < sizeof(buf)) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		v.kind = RV_NUM;
		v.num = strtod(buf, NULL);
	}
	return record(x, &v, NULL);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	struct extract *x = ctx;
	if (!x->depth)
		return 0;
	if (!at_value(x))
		return 1;
	struct rval v = {.kind = RV_STR, .str = (const char *)s, .len = n};
	bool in_text = (const char *)s >= x->text && (const char *)s + n <= x->text + x->len;
	return record(x, &v, in_text ? NULL : (const char *)s);
}

static int open_container(struct extract *x, bool is_array)
{
	if (x->depth == 0) {
		if (is_array)
			return 0;
		x->rooted = true;
	} else if (at_value(x)) {
		struct rval v = {.kind = RV_UNDEF}; /* objects and arrays are undefined */
		if (!record(x, &v, NULL))
			return 0;
	}
	if (x->depth == JSON_MAX_DEPTH)
		return 0;
	x->frames[x->depth].is_array = is_array;
	x->frames[x->depth].index = 0;
	x->depth++;
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, false);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, true);
}

static int on_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct extract *x = ctx;
	descend(x, x->depth, (const char *)k, n, false, 0);
	return 1;
}

static int on_end(void *ctx)
{
	struct extract *x = ctx;
	x->depth--;
	return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* ---- the body's text ---- */

static char *utf16_to_utf8(const unsigned char *b, size_t n, bool be, size_t *out_len)
{
	char *out = malloc(n / 2 * 3 + 4);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	while (i + 1 < n) {
		uint32_t u =
		    be ? (uint32_t)(b[i] << 8 | b[i + 1]) : (uint32_t)(b[i] | b[i + 1] << 8);
		i += 2;
		if (u >= 0xD800 && u < 0xDC00 && i + 1 < n) {
			uint32_t lo = be ? (uint32_t)(b[i] << 8 | b[i + 1])
					 : (uint32_t)(b[i] | b[i + 1] << 8);
			if (lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				i += 2;
			}
		}
		if (u >= 0xD800 && u < 0xE000)
			u = 0xFFFD;
		o += route_utf8_put(out + o, u);
	}
	if (i < n)
		o += route_utf8_put(out + o, 0xFFFD);
	*out_len = o;
	return out;
}

static char *utf32_to_utf8(const unsigned char *b, size_t n, bool be, size_t *out_len)
{
	char *out = malloc(n + 4);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	for (; i + 3 < n; i += 4) {
		uint32_t u = be ? (uint32_t)b[i] << 24 | (uint32_t)b[i + 1] << 16 |
				      (uint32_t)b[i + 2] << 8 | b[i + 3]
				: (uint32_t)b[i + 3] << 24 | (uint32_t)b[i + 2] << 16 |
				      (uint32_t)b[i + 1] << 8 | b[i];
		if (u > 0x10FFFF || (u >= 0xD800 && u < 0xE000))
			u = 0xFFFD;
		o += route_utf8_put(out + o, u);
	}
	if (i < n)
		o += route_utf8_put(out + o, 0xFFFD);
	*out_len = o;
	return out;
}

/* The body as UTF-8 text, or NULL when queries cannot read it. UTF-16 and
 * UTF-32 are little-endian unless a byte order mark says otherwise. */
static const char *body_text(struct route_eval_ctx *c, size_t *len)
{
	const struct hub_message *m = c->msg;
	const char *ct = m->sys[MSG_SYS_CONTENT_TYPE], *ce = m->sys[MSG_SYS_CONTENT_ENCODING];
	if (!ct || !ce || strcasecmp(ct, "application/json") || m->body_len > MSG_MAX_BODY)
		return NULL;
	const unsigned char *b = m->body ? m->body : (const unsigned char *)"";
	size_t n = m->body_len;
	if (strcasecmp(ce, "utf-8") == 0) {
		if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
			b += 3, n -= 3;
		*len = n;
		return (const char *)b;
	}
	if (strcasecmp(ce, "utf-16") == 0) {
		bool be = n >= 2 && b[0] == 0xFE && b[1] == 0xFF;
		if (be || (n >= 2 && b[0] == 0xFF && b[1] == 0xFE))
			b += 2, n -= 2;
		return c->body_utf8 = utf16_to_utf8(b, n, be, len);
	}
	if (strcasecmp(ce, "utf-32") == 0) {
		bool be = n >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF;
		if (be || (n >= 4 && b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0))
			b += 4, n -= 4;
		return c->body_utf8 = utf32_to_utf8(b, n, be, len);
	}
	return NULL;
}

static void set_all(struct route_eval_ctx *c, uint8_t kind)
{
	for (size_t i = 0; i < c->n_queries; i++) {
		free(c->owned[i]);
		c->owned[i] = NULL;
		c->values[i] = (struct rval){.kind = kind};
	}
}

void route_body_extract(struct route_eval_ctx *c)
{
	c->body_state = -1;
	set_all(c, RV_UNDEF);
	size_t len = 0;
	const char *text = body_text(c, &len);
	if (!text)
		return;
	/* Not zeroed as a whole: the arena is 8 KiB. */
	struct extract x;
	x.c = c;
	x.text = text;
	x.len = len;
	x.depth = 0;
	x.rooted = false;
	x.arena_used = 0;
	memset(x.alive[0], 0, sizeof(x.alive[0]));
	for (size_t i = 0; i < c->n_queries; i++)
		x.alive[0][i / 64] |= 1ull << (i % 64);
	set_all(c, RV_NULL); /* a query that leads nowhere is null */
	size_t base = c->scratch_base;
	yajl_alloc_funcs af = {arena_malloc, arena_realloc, arena_free, &x};
	yajl_handle h = yajl_alloc(&callbacks, &af, &x);
	bool ok = h && yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
		  yajl_complete_parse(h) == yajl_status_ok;
	if (h)
		yajl_free(h);
	/* A body that is not one complete JSON object answers nothing. */
	if (!ok || !x.rooted || x.depth != 0) {
		set_all(c, RV_UNDEF);
		c->scratch_base = base;
		return;
	}
	c->body_state = 1;
}
