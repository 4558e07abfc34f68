/* $body queries: one streaming pass over a JSON body answers every query
 * of a route table, without building the document. yajl's allocations go to
 * an arena on the stack (with malloc only past it), so a routed message
 * costs no heap allocation unless a matched string had escapes and does not
 * fit the scratch buffer, or the body is not valid UTF-8.
 *
 * As edgeHub (its .NET decoders and Newtonsoft's JObject.Parse): only a JSON
 * object in a message whose $contentType is application/json and
 * $contentEncoding utf-8, utf-16 or utf-32 (any case, UTF-16/32 little-endian,
 * a byte order mark is a character the parser refuses) is read; invalid
 * sequences read as U+FFFD; comments are allowed; a string that Newtonsoft
 * reads as a date is undefined; a query that leads nowhere is null, one that
 * ends on an object or array is undefined, one with a wildcard that reaches
 * more than one value is undefined; an unreadable body makes every query
 * undefined. */
#include <math.h>
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

static bool seg_matches(const struct body_query *q, const struct body_seg *s, const char *key,
			size_t key_len, bool is_index, uint32_t index)
{
	switch (s->kind) {
	case SEG_FIELD:
		return !is_index && s->key_len == key_len &&
		       memcmp(q->pool + s->key, key, key_len) == 0;
	case SEG_FIELD_ANY:
		return !is_index;
	case SEG_INDEX:
		return is_index && s->index == index;
	default:
		return is_index;
	}
}

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
			if (q->nseg >= d &&
			    seg_matches(q, &q->segs[d - 1], key, key_len, is_index, index))
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
			/* A query with a wildcard may reach several values: more
			 * than one is undefined. Otherwise a later duplicate member
			 * replaces an earlier one. */
			if (c->queries[i].multi && c->hits[i] >= 1) {
				c->hits[i] = 2;
				free(c->owned[i]);
				c->owned[i] = NULL;
				c->values[i] = (struct rval){.kind = RV_UNDEF};
				continue;
			}
			c->hits[i] = 1;
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
	struct rval v = {.kind = RV_UNDEF};
	double d;
	if (route_parse_number(s, n, &d)) {
		/* An integer is read as one, so -0 is 0. */
		if (d == 0 && !memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n))
			d = 0;
		v.kind = RV_NUM;
		v.num = d;
	}
	return record(x, &v, NULL);
}

/* ---- Newtonsoft's dates ---- */

static bool digits2(const char *s, size_t end, size_t i, int *v)
{
	if (i + 1 >= end || s[i] < '0' || s[i] > '9' || s[i + 1] < '0' || s[i + 1] > '9')
		return false;
	*v = (s[i] - '0') * 10 + (s[i + 1] - '0');
	return true;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* yyyy-MM-ddTHH:mm:ss[.f{1,7}] and a zone (Z, or a sign and hours, and
 * minutes with or without ':'), exactly as Newtonsoft's DateTimeParser
 * reads it. Returns -1 for 9999-12-31T24:00:00, which it cannot represent. */
static int iso_date(const char *s, size_t end)
{
	int year = 0, month, day, hour, minute, second, v;
	for (size_t i = 0; i < 4; i++) {
		if (i >= end || s[i] < '0' || s[i] > '9')
			return 0;
		year = year * 10 + (s[i] - '0');
	}
	if (year < 1 || end <= 4 || s[4] != '-' || !digits2(s, end, 5, &month) || month < 1 ||
	    month > 12 || end <= 7 || s[7] != '-' || !digits2(s, end, 8, &day) || day < 1 ||
	    day > days_in_month(year, month) || end <= 10 || s[10] != 'T')
		return 0;
	if (!digits2(s, end, 11, &hour) || hour > 24 || end <= 13 || s[13] != ':' ||
	    !digits2(s, end, 14, &minute) || minute >= 60 || end <= 16 || s[16] != ':' ||
	    !digits2(s, end, 17, &second) || second >= 60 ||
	    (hour == 24 && (minute != 0 || second != 0)))
		return 0;
	size_t i = 19;
	if (i < end && s[i] == '.') {
		int fraction = 0, nd = 0;
		while (++i < end && nd < 7 && s[i] >= '0' && s[i] <= '9')
			fraction = fraction * 10 + (s[i] - '0'), nd++;
		if (nd == 0 || (hour == 24 && fraction != 0))
			return 0;
	}
	if (i < end) {
		char ch = s[i];
		if (ch == 'Z' || ch == 'z') {
			i++;
		} else {
			if (i + 2 < end && digits2(s, end, i + 1, &v) && (ch == '+' || ch == '-'))
				i += 3;
			if (i < end) {
				if (s[i] == ':') {
					i++;
					if (i + 1 < end && digits2(s, end, i, &v))
						i += 2;
				} else if (i + 1 < end && digits2(s, end, i, &v)) {
					i += 2;
				}
			}
		}
	}
	if (i != end)
		return 0;
	return hour == 24 && year == 9999 && month == 12 && day == 31 ? -1 : 1;
}

/* "/Date(ticks[+-HH[mm]])/" as Newtonsoft reads it. Whether it reads the
 * minutes depends on where the string lies in its buffer (at: the string's
 * offset in UTF-16 units, 0 for a string with escapes, which it copies).
 * Returns -1 for ticks outside .NET's DateTime, which make the reader throw. */
static int ms_date(const char *s, size_t n, size_t at)
{
	if (n < 9 || memcmp(s, "/Date(", 6) != 0 || memcmp(s + n - 2, ")/", 2) != 0)
		return 0;
	size_t units = route_utf16_len(s, n);
	const char *sign = NULL;
	for (int pass = 0; pass < 2 && !sign; pass++)
		sign = memchr(s + 7, pass ? '-' : '+', n - 9);
	size_t end = n - 2;
	if (sign) {
		int64_t h, m;
		size_t k = (size_t)(sign - s), ku = route_utf16_len(s, k);
		if (!route_int_text(sign + 1, 2, INT32_MIN, INT32_MAX, &h))
			return 0;
		if (units > ku + at + 5 && !route_int_text(sign + 3, 2, INT32_MIN, INT32_MAX, &m))
			return 0;
		end = k;
	}
	int64_t ticks;
	if (!route_int_text(s + 6, end - 6, INT64_MIN, INT64_MAX, &ticks))
		return 0;
	int64_t t = (int64_t)((uint64_t)ticks * 10000u + 621355968000000000u);
	return t < 0 || t > 3155378975999999999LL ? -1 : 1;
}

/* Would Newtonsoft read this string value as a date (1), a string (0), or
 * throw (-1)? */
static int json_date(struct extract *x, const char *s, size_t n, bool in_text)
{
	if (n >= 9 && s[0] == '/') {
		size_t at = in_text ? route_utf16_len(x->text, (size_t)(s - x->text)) : 0;
		return ms_date(s, n, at);
	}
	if (n < 19 || n > 40 || s[0] < '0' || s[0] > '9' || s[10] != 'T')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return iso_date(s, n);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	struct extract *x = ctx;
	if (!x->depth)
		return 0;
	bool in_text = (const char *)s >= x->text && (const char *)s + n <= x->text + x->len;
	int date = json_date(x, (const char *)s, n, in_text);
	if (date < 0)
		return 0;
	if (!at_value(x))
		return 1;
	if (date) {
		struct rval v = {.kind = RV_UNDEF};
		return record(x, &v, NULL);
	}
	struct rval v = {.kind = RV_STR, .str = (const char *)s, .len = n};
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

/* Encoding.Unicode.GetString: little-endian UTF-16, a lone surrogate or an
 * odd last byte as U+FFFD. */
static char *utf16_to_utf8(const unsigned char *b, size_t n, size_t *out_len)
{
	char *out = malloc(n / 2 * 3 + 4);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	while (i + 1 < n) {
		uint32_t u = (uint32_t)(b[i] | b[i + 1] << 8);
		i += 2;
		if (route_is_high_surrogate(u) && i + 1 < n) {
			uint32_t lo = (uint32_t)(b[i] | b[i + 1] << 8);
			if (route_is_low_surrogate(lo)) {
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

/* Encoding.UTF32.GetString: little-endian, invalid code points and a short
 * tail as U+FFFD. */
static char *utf32_to_utf8(const unsigned char *b, size_t n, size_t *out_len)
{
	char *out = malloc(n + 4);
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	for (; i + 3 < n; i += 4) {
		uint32_t u = (uint32_t)b[i + 3] << 24 | (uint32_t)b[i + 2] << 16 |
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

/* The length of the valid UTF-8 sequence at s, or 0 with *bad set to the
 * bytes that one U+FFFD replaces (the maximal subpart, as .NET decodes). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xBF;
	size_t len;
	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF) {
		len = 2;
	} else if (b >= 0xE0 && b <= 0xEF) {
		len = 3;
		lo = b == 0xE0 ? 0xA0 : 0x80;
		hi = b == 0xED ? 0x9F : 0xBF;
	} else if (b >= 0xF0 && b <= 0xF4) {
		len = 4;
		lo = b == 0xF0 ? 0x90 : 0x80;
		hi = b == 0xF4 ? 0x8F : 0xBF;
	} else {
		*bad = 1;
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if (i >= n || s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) {
			*bad = i;
			return 0;
		}
	}
	return len;
}

/* Encoding.UTF8.GetString: NULL when b is valid UTF-8 (and is used as it
 * is), else a copy with U+FFFD for each invalid subpart. */
static char *utf8_repaired(const unsigned char *b, size_t n, size_t *out_len)
{
	size_t i = 0, bad = 0, k;
	while ((i += route_ascii_prefix((const char *)b + i, n - i)) < n &&
	       (k = utf8_seq(b + i, n - i, &bad)))
		i += k;
	if (i == n)
		return NULL;
	char *out = malloc(3 * n + 1);
	if (!out)
		return NULL;
	memcpy(out, b, i);
	size_t o = i;
	while (i < n) {
		k = utf8_seq(b + i, n - i, &bad);
		if (k) {
			memcpy(out + o, b + i, k);
			o += k;
			i += k;
		} else {
			o += route_utf8_put(out + o, 0xFFFD);
			i += bad;
		}
	}
	*out_len = o;
	return out;
}

/* The body as UTF-8 text, or NULL when queries cannot read it. */
static const char *body_text(struct route_eval_ctx *c, size_t *len)
{
	const struct hub_message *m = c->msg;
	const char *ct = m->sys[MSG_SYS_CONTENT_TYPE], *ce = m->sys[MSG_SYS_CONTENT_ENCODING];
	if (!ct || !ce || strcasecmp(ct, "application/json") || m->body_len > MSG_MAX_BODY)
		return NULL;
	const unsigned char *b = m->body ? m->body : (const unsigned char *)"";
	size_t n = m->body_len;
	if (strcasecmp(ce, "utf-8") == 0) {
		*len = n;
		c->body_utf8 = utf8_repaired(b, n, len);
		return c->body_utf8 ? c->body_utf8 : (const char *)b;
	}
	if (strcasecmp(ce, "utf-16") == 0)
		return c->body_utf8 = utf16_to_utf8(b, n, len);
	if (strcasecmp(ce, "utf-32") == 0)
		return c->body_utf8 = utf32_to_utf8(b, n, len);
	return NULL;
}

/* Every query answers kind; a null is "the path led nowhere". */
static void set_all(struct route_eval_ctx *c, uint8_t kind)
{
	for (size_t i = 0; i < c->n_queries; i++) {
		free(c->owned[i]);
		c->owned[i] = NULL;
		c->values[i] = (struct rval){.kind = kind, .b = kind == RV_NULL};
		c->hits[i] = 0;
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
	if (h)
		yajl_config(h, yajl_allow_comments, 1);
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
