/* Evaluates a compiled condition against one message with edgeHub's
 * semantics: three-valued logic (a comparison with an undefined operand is
 * undefined; only true routes), NaN numbers of static type are undefined,
 * $body values compare across types by a fixed type order, strings count and
 * order UTF-16 code units (route_text.c). Strings built while evaluating
 * (concat, lower, upper, a substring that splits a surrogate pair) live in a
 * fixed scratch buffer in the evaluation context; a result that does not fit
 * is undefined. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lazy.h"
#include "hub/message.h"
#include "hub/route_internal.h"

void route_eval_init(struct route_eval_ctx *c, const struct hub_message *m,
		     const struct body_query *queries, size_t n_queries)
{
	c->msg = m;
	c->queries = queries;
	c->n_queries = n_queries;
	c->slot_map = NULL;
	c->body_state = 0;
	c->body_utf8 = NULL;
	memset(c->owned, 0, n_queries * sizeof(c->owned[0]));
	c->scratch_base = 0;
	c->scratch_used = 0;
}

void route_eval_select(struct route_eval_ctx *c, const uint16_t *slot_map)
{
	c->slot_map = slot_map;
}

void route_eval_release(struct route_eval_ctx *c)
{
	for (size_t i = 0; i < c->n_queries; i++)
		free(c->owned[i]);
	free(c->body_utf8);
	c->body_utf8 = NULL;
	c->body_state = 0;
}

static char *scratch(struct route_eval_ctx *c, size_t n)
{
	if (n > sizeof(c->scratch) - c->scratch_used)
		return NULL;
	char *p = c->scratch + c->scratch_used;
	c->scratch_used += n;
	return p;
}

/* ---- values ---- */

static void set_undef(struct rval *v)
{
	*v = (struct rval){.kind = RV_UNDEF};
}

static void set_bool(struct rval *v, bool b)
{
	*v = (struct rval){.kind = RV_BOOL, .b = b};
}

/* A double of static type: NaN is edgeHub's undefined. */
static void set_num(struct rval *v, double d)
{
	*v = (struct rval){.kind = isnan(d) ? RV_UNDEF : RV_NUM, .num = d};
}

/* A number held by a $body value (edgeHub's QueryValue): NaN stays a number. */
static void set_qnum(struct rval *v, double d)
{
	*v = (struct rval){.kind = RV_NUM, .num = d};
}

static void set_str(struct rval *v, const char *s, size_t n)
{
	*v = (struct rval){.kind = RV_STR, .str = s, .len = n};
}

/* A property's value; a property present without one is .NET's null string. */
static void set_prop(struct rval *v, const char *value)
{
	set_str(v, value, value ? strlen(value) : 0);
}

/* A string that is neither undefined nor null (edgeHub's IsNullOrUndefined). */
static bool is_text(const struct rval *v)
{
	return v->kind == RV_STR && v->str;
}

/* Does key (NUL-terminated) equal name ignoring case? ASCII letters fold
 * here; at the first other byte that differs the Unicode rules decide. */
static bool key_is(const char *key, const char *name, size_t n)
{
	size_t i = 0;
	for (; i < n && key[i]; i++) {
		unsigned char x = (unsigned char)key[i], y = (unsigned char)name[i];
		if (x == y)
			continue;
		if (x >= 0x80 || y >= 0x80)
			return route_text_eq_nocase(key + i, strlen(key + i), name + i, n - i);
		if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z')
			return false;
	}
	return i == n && !key[i];
}

/* Application properties by name, ignoring case as edgeHub's dictionary does. */
static const struct msg_prop *prop_find(const struct hub_message *m, const char *name, size_t n)
{
	for (size_t i = 0; i < m->n_props; i++) {
		const char *k = m->props[i].key;
		if (k && key_is(k, name, n))
			return &m->props[i];
	}
	return NULL;
}

/* ---- comparison ---- */

static void eval(const struct route *r, struct route_eval_ctx *c, int32_t i, struct rval *v);

/* double.CompareTo: NaN sorts first and equals itself. */
static int num_cmp(double a, double b)
{
	if (a < b)
		return -1;
	if (a > b)
		return 1;
	if (a == b)
		return 0;
	return isnan(a) ? (isnan(b) ? 0 : -1) : 1;
}

/* The order of $body values of different types (edgeHub's QueryValueType). */
static int type_rank(uint8_t kind)
{
	switch (kind) {
	case RV_BOOL:
		return 1;
	case RV_NUM:
		return 2;
	case RV_STR:
		return 3;
	default:
		return 4; /* null */
	}
}

/* QueryValue.CompareTo; a null string sorts before every other string. */
static int dyn_cmp(const struct rval *a, const struct rval *b)
{
	if (a->kind != b->kind)
		return type_rank(a->kind) - type_rank(b->kind);
	switch (a->kind) {
	case RV_BOOL:
		return (int)a->b - (int)b->b;
	case RV_NUM:
		return num_cmp(a->num, b->num);
	case RV_STR:
		if (!a->str || !b->str)
			return (a->str != NULL) - (b->str != NULL);
		return route_text_cmp(a->str, a->len, b->str, b->len);
	default:
		return 0;
	}
}

static void compare(const struct route *r, const struct node *n, const struct rval *a,
		    const struct rval *b, struct rval *v)
{
	set_undef(v);
	if (a->kind == RV_UNDEF || b->kind == RV_UNDEF)
		return;
	int d;
	if (n->dyn) {
		d = dyn_cmp(a, b);
	} else {
		switch (r->nodes[n->a].type) {
		case RT_STR:
			if (!a->str || !b->str)
				return; /* a null string compares to nothing */
			d = route_text_cmp(a->str, a->len, b->str, b->len);
			break;
		case RT_NUM:
			d = num_cmp(a->num, b->num);
			break;
		case RT_BOOL:
			d = (int)a->b - (int)b->b;
			break;
		default:
			d = 0; /* null = null */
			break;
		}
	}
	switch (n->op) {
	case CMP_EQ:
		set_bool(v, d == 0);
		break;
	case CMP_NE:
		set_bool(v, d != 0);
		break;
	case CMP_LT:
		set_bool(v, d < 0);
		break;
	case CMP_LE:
		set_bool(v, d <= 0);
		break;
	case CMP_GT:
		set_bool(v, d > 0);
		break;
	default:
		set_bool(v, d >= 0);
		break;
	}
}

/* AND and OR: Kleene's three-valued logic on bool and undefined; a static
 * null is edgeHub's Null (null AND x is null, null OR x is x); with a $body
 * operand both sides must be bools or the result is undefined. */
/* Kept out of eval() (as are concat and call) so the frame eval() repeats
 * at every level of a deep condition stays small. */
static __attribute__((noinline)) void logic(const struct route *r, struct route_eval_ctx *c,
					    const struct node *n, struct rval *v)
{
	bool is_and = n->kind == N_AND;
	enum rtype ta = (enum rtype)r->nodes[n->a].type, tb = (enum rtype)r->nodes[n->b].type;
	struct rval x, y;
	eval(r, c, n->a, &x);
	bool plain = !n->dyn && ta != RT_NULL && tb != RT_NULL;
	if (plain && x.kind == RV_BOOL && x.b != is_and) {
		set_bool(v, x.b); /* false AND _, true OR _ */
		return;
	}
	eval(r, c, n->b, &y);
	if (n->dyn) {
		if (x.kind == RV_BOOL && y.kind == RV_BOOL)
			set_bool(v, is_and ? (x.b && y.b) : (x.b || y.b));
		else
			set_undef(v);
		return;
	}
	if (is_and && (ta == RT_NULL || tb == RT_NULL)) {
		*v = (struct rval){.kind = RV_NULL};
		return;
	}
	if (!is_and && (ta == RT_NULL || tb == RT_NULL)) {
		if (ta == RT_NULL && tb == RT_NULL)
			*v = (struct rval){.kind = RV_NULL};
		else
			*v = ta == RT_NULL ? y : x;
		return;
	}
	if (y.kind == RV_BOOL && y.b != is_and) {
		set_bool(v, y.b);
		return;
	}
	if (x.kind == RV_BOOL && y.kind == RV_BOOL)
		set_bool(v, is_and);
	else
		set_undef(v);
}

/* ---- strings ---- */

/* Is there a lone surrogate (3-byte form) at s[i]? high: of the first half. */
static bool lone_at(const char *s, size_t n, size_t i, bool high)
{
	return i + 2 < n && (unsigned char)s[i] == 0xED &&
	       ((unsigned char)s[i + 1] & 0xF0) == (high ? 0xA0 : 0xB0);
}

/* Joins the arguments in one region at the top of the scratch buffer: each
 * argument is evaluated past what is joined so far (its temporaries land
 * there), moved into place, and its temporaries dropped. A null string
 * counts as empty; halves of a surrogate pair that meet are joined. */
static __attribute__((noinline)) void concat(const struct route *r, struct route_eval_ctx *c,
					     int32_t first, struct rval *v)
{
	size_t start = c->scratch_used, len = 0;
	for (int32_t arg = first; arg >= 0; arg = r->nodes[arg].next) {
		struct rval a;
		c->scratch_used = start + len;
		eval(r, c, arg, &a);
		if (a.kind != RV_STR || a.len >= sizeof(c->scratch) - (start + len)) {
			c->scratch_used = start;
			set_undef(v);
			return;
		}
		char *out = c->scratch + start;
		if (a.len)
			memmove(out + len, a.str, a.len);
		if (len >= 3 && lone_at(out, len, len - 3, true) &&
		    lone_at(out + len, a.len, 0, false)) {
			uint32_t hi, lo;
			route_cp_next(out + len - 3, 3, &hi);
			route_cp_next(out + len, 3, &lo);
			route_utf8_put(out + len - 3,
				       0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
			memmove(out + len + 1, out + len + 3, a.len - 3);
			len -= 2;
		}
		len += a.len;
	}
	c->scratch[start + len] = '\0';
	c->scratch_used = start + len + 1;
	set_str(v, c->scratch + start, len);
}

/* lower() and upper(): .NET's invariant simple case mappings, code point by
 * code point (a lone surrogate stays). */
static void case_map(struct route_eval_ctx *c, const struct rval *a, bool upper, struct rval *v)
{
	char *buf = scratch(c, 3 * a->len + 1);
	if (!buf) {
		set_undef(v);
		return;
	}
	size_t o = 0;
	for (size_t i = 0; i < a->len;) {
		unsigned char ch = (unsigned char)a->str[i];
		if (ch < 0x80) {
			buf[o++] = (char)(upper ? route_upper(ch) : route_lower(ch));
			i++;
			continue;
		}
		uint32_t cp;
		i += route_cp_next(a->str + i, a->len - i, &cp);
		o += route_utf8_put(buf + o, upper ? route_upper(cp) : route_lower(cp));
	}
	set_str(v, buf, o);
}

/* The byte offset of UTF-16 unit k of s; *split: k falls inside a pair. */
static size_t unit_offset(const char *s, size_t n, size_t k, bool *split)
{
	size_t i = 0;
	*split = false;
	while (k && i < n) {
		uint32_t cp;
		size_t b = route_cp_next(s + i, n - i, &cp);
		if (cp >= 0x10000) {
			if (k == 1) {
				*split = true;
				return i;
			}
			k--;
		}
		k--;
		i += b;
	}
	return i;
}

/* substring(s, start[, length]) in UTF-16 units with edgeHub's bounds:
 * 0 <= start <= length of s (start < length of s when a length is given),
 * 0 <= length <= what is left. A cut through a surrogate pair leaves a lone
 * half, as in .NET. */
static void substring(struct route_eval_ctx *c, const struct rval *s, const struct rval *start,
		      const struct rval *len, struct rval *v)
{
	set_undef(v);
	if (!is_text(s) || start->kind != RV_NUM || isnan(start->num) ||
	    (len && (len->kind != RV_NUM || isnan(len->num))))
		return;
	double l = (double)route_utf16_len(s->str, s->len), st = start->num;
	if (st < 0 || (len ? st >= l : st > l))
		return;
	if (len && (len->num < 0 || len->num > l - st))
		return;
	size_t k0 = (size_t)st, k1 = len ? k0 + (size_t)len->num : (size_t)l;
	if (k1 == k0) {
		set_str(v, s->str, 0);
		return;
	}
	bool split0, split1;
	size_t from = unit_offset(s->str, s->len, k0, &split0);
	size_t to = unit_offset(s->str, s->len, k1, &split1);
	if (!split0 && !split1) {
		set_str(v, s->str + from, to - from);
		return;
	}
	/* A pair cut at either end: its halves in their 3-byte forms. */
	char *buf = scratch(c, to - from + 8);
	if (!buf)
		return;
	size_t o = 0, i = from;
	uint32_t cp;
	if (split0) {
		i += route_cp_next(s->str + from, s->len - from, &cp);
		o += route_utf8_put(buf, 0xDC00 + ((cp - 0x10000) & 0x3FF));
	}
	memcpy(buf + o, s->str + i, to - i);
	o += to - i;
	if (split1) {
		route_cp_next(s->str + to, s->len - to, &cp);
		o += route_utf8_put(buf + o, 0xD800 + ((cp - 0x10000) >> 10));
	}
	set_str(v, buf, o);
}

/* A string's UTF-16 units in the scratch buffer, or NULL when they do not fit. */
static uint16_t *units_of(struct route_eval_ctx *c, const struct rval *s, size_t *n)
{
	*n = route_utf16_len(s->str, s->len);
	size_t pad = (uintptr_t)(c->scratch + c->scratch_used) & 1;
	char *p = scratch(c, pad + *n * 2 + 2);
	if (!p)
		return NULL;
	uint16_t *u = (uint16_t *)(void *)(p + pad);
	struct route_units it;
	route_units_init(&it, s->str, s->len);
	for (size_t i = 0; i < *n; i++)
		u[i] = (uint16_t)route_units_next(&it);
	return u;
}

/* index_of, starts_with, ends_with, contains: ordinal, on UTF-16 units. */
static void strings2(struct route_eval_ctx *c, uint8_t fn, const struct rval *a,
		     const struct rval *b, struct rval *v)
{
	set_undef(v);
	if (!is_text(a) || !is_text(b))
		return;
	if (route_text_plain(a->str, a->len) && route_text_plain(b->str, b->len)) {
		/* Valid UTF-8 without surrogates: a byte match is a unit match. */
		const char *hit = b->len ? memmem(a->str, a->len, b->str, b->len) : a->str;
		switch (fn) {
		case FI_INDEX_OF:
			set_num(v,
				hit ? (double)route_utf16_len(a->str, (size_t)(hit - a->str)) : -1);
			break;
		case FI_STARTS_WITH:
			set_bool(v, b->len <= a->len && memcmp(a->str, b->str, b->len) == 0);
			break;
		case FI_ENDS_WITH:
			set_bool(v, b->len <= a->len &&
					memcmp(a->str + a->len - b->len, b->str, b->len) == 0);
			break;
		default:
			set_bool(v, hit != NULL);
			break;
		}
		return;
	}
	size_t used = c->scratch_used, an, bn;
	const uint16_t *x = units_of(c, a, &an), *y = x ? units_of(c, b, &bn) : NULL;
	if (y) {
		long at = -1;
		size_t from = fn == FI_ENDS_WITH && bn <= an ? an - bn : 0;
		size_t last = fn == FI_INDEX_OF || fn == FI_CONTAINS ? an : from;
		for (size_t i = from; at < 0 && i + bn <= an && i <= last; i++)
			if (memcmp(x + i, y, bn * 2) == 0)
				at = (long)i;
		if (fn == FI_INDEX_OF)
			set_num(v, (double)at);
		else
			set_bool(v, at >= 0);
	}
	c->scratch_used = used;
}

/* ---- functions ---- */

static void math1(uint8_t fn, const struct rval *a, struct rval *v)
{
	if (a->kind != RV_NUM) {
		set_undef(v);
		return;
	}
	double x = a->num;
	switch (fn) {
	case FI_ABS:
		set_num(v, fabs(x));
		break;
	case FI_EXP:
		set_num(v, LAZY(exp)(x));
		break;
	case FI_SQUARE:
		set_num(v, LAZY(pow)(x, 2));
		break;
	case FI_CEILING:
		set_num(v, LAZY(ceil)(x));
		break;
	case FI_FLOOR:
		set_num(v, LAZY(floor)(x));
		break;
	case FI_SIGN:
		set_num(v, isnan(x) ? NAN : x > 0 ? 1 : x < 0 ? -1 : 0);
		break;
	default:
		set_num(v, LAZY(sqrt)(x));
		break;
	}
}

static __attribute__((noinline)) void call(const struct route *r, struct route_eval_ctx *c,
					   const struct node *n, struct rval *v)
{
	if (n->op == FI_TRUE || n->op == FI_FALSE) {
		set_bool(v, n->op == FI_TRUE);
		return;
	}
	if (n->op == FI_CONCAT) {
		concat(r, c, n->a, v);
		return;
	}
	struct rval a, b, d;
	int32_t ia = n->a, ib = ia >= 0 ? r->nodes[ia].next : -1;
	int32_t id = ib >= 0 ? r->nodes[ib].next : -1;
	eval(r, c, ia, &a);
	if (ib >= 0)
		eval(r, c, ib, &b);
	if (id >= 0)
		eval(r, c, id, &d);
	switch (n->op) {
	case FI_POWER:
		if (a.kind == RV_NUM && b.kind == RV_NUM)
			set_num(v, LAZY(pow)(a.num, b.num));
		else
			set_undef(v);
		break;
	case FI_AS_NUMBER: {
		double x;
		if (a.kind == RV_NUM)
			set_num(v, a.num);
		else if (is_text(&a) && route_parse_number(a.str, a.len, &x))
			set_num(v, x);
		else
			set_undef(v);
		break;
	}
	case FI_IDENTITY:
		*v = a;
		break;
	case FI_IS_BOOL:
		if (a.kind == RV_UNDEF)
			set_undef(v);
		else
			set_bool(v, a.kind == RV_BOOL);
		break;
	case FI_IS_DEFINED:
		set_bool(v, a.kind != RV_UNDEF);
		break;
	case FI_IS_NULL:
		/* A string is null when it is .NET's null string. For a $body value
		 * edgeHub compares with its one "path led nowhere" null, by
		 * reference: every other defined value, a JSON null too, is "null". */
		if (r->nodes[ia].type == RT_DYN && a.kind == RV_UNDEF)
			set_undef(v);
		else if (r->nodes[ia].type == RT_DYN)
			set_bool(v, !(a.kind == RV_NULL && a.b));
		else
			set_bool(v, a.kind == RV_STR && !a.str);
		break;
	case FI_IS_NUMBER:
		set_bool(v, a.kind == RV_NUM && isfinite(a.num));
		break;
	case FI_IS_STRING:
		set_bool(v, is_text(&a));
		break;
	case FI_LENGTH:
		if (is_text(&a))
			set_num(v, (double)route_utf16_len(a.str, a.len));
		else
			set_undef(v);
		break;
	case FI_LOWER:
	case FI_UPPER:
		if (is_text(&a))
			case_map(c, &a, n->op == FI_UPPER, v);
		else
			set_undef(v);
		break;
	case FI_SUBSTRING:
		substring(c, &a, &b, id >= 0 ? &d : NULL, v);
		break;
	case FI_INDEX_OF:
	case FI_STARTS_WITH:
	case FI_ENDS_WITH:
	case FI_CONTAINS:
		strings2(c, n->op, &a, &b, v);
		break;
	default:
		math1(n->op, &a, v);
		break;
	}
}

static void arith(const struct node *n, const struct rval *a, const struct rval *b, struct rval *v)
{
	if (a->kind != RV_NUM || b->kind != RV_NUM) {
		set_undef(v);
		return;
	}
	double x;
	switch (n->op) {
	case '+':
		x = a->num + b->num;
		break;
	case '-':
		x = a->num - b->num;
		break;
	case '*':
		x = a->num * b->num;
		break;
	case '/':
		x = a->num / b->num;
		break;
	default:
		x = LAZY(fmod)(a->num, b->num);
		break;
	}
	if (n->dyn)
		set_qnum(v, x);
	else
		set_num(v, x);
}

/* The property p holds, or undefined when there is none. */
static void set_found(struct rval *v, const struct msg_prop *p)
{
	if (p)
		set_prop(v, p->value);
	else
		set_undef(v);
}

/* The application property an N_SYSPROP or N_BODY name reaches, unless the
 * name was forced. */
static const struct msg_prop *unforced_prop(const struct route *r, const struct node *n,
					    const struct hub_message *m)
{
	return n->forced ? NULL : prop_find(m, r->pool + n->name, n->name_len);
}

static void eval(const struct route *r, struct route_eval_ctx *c, int32_t i, struct rval *v)
{
	const struct node *n = &r->nodes[i];
	const struct hub_message *m = c->msg;
	switch (n->kind) {
	case N_LIT:
		*v = n->lit;
		break;
	case N_PROP:
		set_found(v, prop_find(m, r->pool + n->name, n->name_len));
		break;
	case N_SYSPROP: {
		/* An application property literally named "$name" wins. */
		const struct msg_prop *p = unforced_prop(r, n, m);
		if (!p && n->sys >= 0 && m->sys[n->sys])
			set_prop(v, m->sys[n->sys]);
		else
			set_found(v, p);
		break;
	}
	case N_BODY: {
		const struct msg_prop *p = unforced_prop(r, n, m);
		if (p) {
			set_prop(v, p->value);
			break;
		}
		if (n->dead) {
			set_undef(v);
			break;
		}
		if (c->body_state == 0)
			route_body_extract(c);
		uint32_t q = c->slot_map ? c->slot_map[n->slot] : n->slot;
		if (q < c->n_queries)
			*v = c->values[q];
		else
			set_undef(v);
		break;
	}
	case N_NEG:
		eval(r, c, n->a, v);
		if (v->kind == RV_NUM)
			v->num = -v->num;
		else
			set_undef(v);
		break;
	case N_NOT:
		eval(r, c, n->a, v);
		if (v->kind == RV_BOOL)
			v->b = !v->b;
		else if (r->nodes[n->a].type == RT_NULL)
			set_bool(v, true); /* NOT null is true in edgeHub */
		else
			set_undef(v);
		break;
	case N_ARITH: {
		struct rval a, b;
		eval(r, c, n->a, &a);
		eval(r, c, n->b, &b);
		arith(n, &a, &b, v);
		break;
	}
	case N_CONCAT:
		concat(r, c, n->a, v); /* the parser linked b after a */
		break;
	case N_CMP: {
		struct rval a, b;
		eval(r, c, n->a, &a);
		eval(r, c, n->b, &b);
		compare(r, n, &a, &b, v);
		break;
	}
	case N_AND:
	case N_OR:
		logic(r, c, n, v);
		break;
	case N_COALESCE:
		if (r->nodes[n->a].type != RT_UNDEF) {
			eval(r, c, n->a, v);
			if (v->kind != RV_UNDEF)
				break;
		}
		eval(r, c, n->b, v);
		break;
	case N_CALL:
		call(r, c, n, v);
		break;
	default:
		set_undef(v);
		break;
	}
}

bool route_eval_condition(const struct route *r, struct route_eval_ctx *c)
{
	if (r->root < 0)
		return true;
	struct rval v;
	c->scratch_used = c->scratch_base;
	eval(r, c, r->root, &v);
	return v.kind == RV_BOOL && v.b;
}
