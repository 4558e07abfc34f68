/* Evaluates a compiled condition against one message, with edgeHub's
 * semantics: three-valued logic (a comparison with an undefined operand is
 * undefined; only true routes), NaN numbers are undefined, $body values
 * compare across types by a fixed type order. Strings built while
 * evaluating (concat, lower, upper) live in a fixed scratch buffer in the
 * evaluation context; a result that does not fit is undefined. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/lazy.h"
#include "hub/message.h"
#include "hub/route_internal.h"

size_t route_utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

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

static void set_num(struct rval *v, double d)
{
	*v = (struct rval){.kind = isnan(d) ? RV_UNDEF : RV_NUM, .num = d};
}

static void set_str(struct rval *v, const char *s, size_t n)
{
	*v = (struct rval){.kind = RV_STR, .str = s, .len = n};
}

/* A property value: a property present without a value is null. */
static void set_prop(struct rval *v, const char *value)
{
	if (value)
		set_str(v, value, strlen(value));
	else
		*v = (struct rval){.kind = RV_NULL};
}

/* Application properties are matched without regard to case, as edgeHub does. */
static const struct msg_prop *prop_find(const struct hub_message *m, const char *name, size_t n)
{
	for (size_t i = 0; i < m->n_props; i++) {
		const char *k = m->props[i].key;
		if (k && strncasecmp(k, name, n) == 0 && k[n] == '\0')
			return &m->props[i];
	}
	return NULL;
}

/* ---- strings, counted in characters (UTF-8 sequences) ---- */

static size_t char_count(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			c++;
	return c;
}

/* Byte offset of character k (k <= char_count). */
static size_t char_offset(const char *s, size_t n, size_t k)
{
	size_t i = 0;
	while (i < n && k) {
		i++;
		while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		k--;
	}
	return i;
}

/* as_number(): edgeHub's double.TryParse(NumberStyles.Any, invariant
 * culture): surrounding blanks, a sign, ',' group separators, a decimal
 * point, an exponent, or Infinity. Out of line, so its buffer is not part
 * of every frame of a deep evaluation. */
static __attribute__((noinline)) bool parse_number(const char *s, size_t n, double *out)
{
	while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	char buf[400];
	size_t o = 0, i = 0, digits = 0;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		buf[o++] = s[i++];
	if (n - i == 8 && strncasecmp(s + i, "infinity", 8) == 0) {
		*out = (o && buf[0] == '-') ? -INFINITY : INFINITY;
		return true;
	}
	for (; i < n && ((s[i] >= '0' && s[i] <= '9') || (s[i] == ',' && digits)); i++) {
		if (s[i] == ',')
			continue;
		if (o >= sizeof(buf) - 16)
			return false;
		buf[o++] = s[i];
		digits++;
	}
	if (i < n && s[i] == '.') {
		buf[o++] = s[i++];
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			if (o >= sizeof(buf) - 16)
				return false;
			buf[o++] = s[i];
			digits++;
		}
	}
	if (!digits)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		buf[o++] = s[i++];
		if (i < n && (s[i] == '+' || s[i] == '-'))
			buf[o++] = s[i++];
		size_t e = 0;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, e++)
			if (e < 8)
				buf[o++] = s[i];
		if (!e)
			return false;
	}
	if (i != n)
		return false;
	buf[o] = '\0';
	*out = strtod(buf, NULL);
	return true;
}

/* ---- operators ---- */

static void eval(const struct route *r, struct route_eval_ctx *c, int32_t i, struct rval *v);

static int cmp_same(const struct rval *a, const struct rval *b)
{
	switch (a->kind) {
	case RV_BOOL:
		return (int)a->b - (int)b->b;
	case RV_NUM:
		return a->num < b->num ? -1 : a->num > b->num ? 1 : 0;
	case RV_STR: {
		size_t n = a->len < b->len ? a->len : b->len;
		int d = memcmp(a->str, b->str, n);
		if (d)
			return d;
		return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
	}
	default:
		return 0;
	}
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

static void compare(const struct route *r, const struct node *n, const struct rval *a,
		    const struct rval *b, struct rval *v)
{
	set_undef(v);
	if (a->kind == RV_UNDEF || b->kind == RV_UNDEF)
		return;
	int d;
	if (n->dyn) {
		d = a->kind == b->kind ? cmp_same(a, b) : type_rank(a->kind) - type_rank(b->kind);
	} else if (r->nodes[n->a].type == RT_NULL) {
		d = 0; /* null = null */
	} else {
		if (a->kind != b->kind) /* a property present without a value */
			return;
		d = cmp_same(a, b);
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

/* A string operand of concat or ||: a static string without a value (a
 * property present without one) counts as empty, as in edgeHub. */
static bool concat_part(const struct route *r, int32_t arg, const struct rval *a, struct rval *out)
{
	if (a->kind == RV_STR) {
		*out = *a;
		return true;
	}
	if (a->kind == RV_NULL && r->nodes[arg].type == RT_STR) {
		set_str(out, "", 0);
		return true;
	}
	return false;
}

/* Joins the arguments in one region at the top of the scratch buffer: each
 * argument is evaluated past what is joined so far (its temporaries land
 * there), moved into place, and its temporaries dropped. */
static __attribute__((noinline)) void concat(const struct route *r, struct route_eval_ctx *c,
					     int32_t first, struct rval *v)
{
	size_t start = c->scratch_used, len = 0;
	for (int32_t arg = first; arg >= 0; arg = r->nodes[arg].next) {
		struct rval a, part;
		c->scratch_used = start + len;
		eval(r, c, arg, &a);
		if (!concat_part(r, arg, &a, &part) ||
		    part.len >= sizeof(c->scratch) - (start + len)) {
			c->scratch_used = start;
			set_undef(v);
			return;
		}
		memmove(c->scratch + start + len, part.str, part.len);
		len += part.len;
	}
	c->scratch[start + len] = '\0';
	c->scratch_used = start + len + 1;
	set_str(v, c->scratch + start, len);
}

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
		set_num(v, x * x);
		break;
	case FI_CEILING:
		set_num(v, LAZY(ceil)(x));
		break;
	case FI_FLOOR:
		set_num(v, LAZY(floor)(x));
		break;
	case FI_SIGN:
		set_num(v, x > 0 ? 1 : x < 0 ? -1 : 0);
		break;
	default:
		set_num(v, LAZY(sqrt)(x));
		break;
	}
}

static void case_map(struct route_eval_ctx *c, const struct rval *a, bool upper, struct rval *v)
{
	char *buf = scratch(c, a->len + 1);
	if (!buf) {
		set_undef(v);
		return;
	}
	/* ASCII letters only: the result never depends on the hub's locale. */
	for (size_t i = 0; i < a->len; i++) {
		char ch = a->str[i];
		if (upper && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (!upper && ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		buf[i] = ch;
	}
	set_str(v, buf, a->len);
}

/* substring(s, start[, length]) with edgeHub's bounds: 0 <= start <= length
 * of s (start < length of s when a length is given), 0 <= length <= what is left. */
static void substring(const struct rval *s, const struct rval *start, const struct rval *len,
		      struct rval *v)
{
	set_undef(v);
	if (s->kind != RV_STR || start->kind != RV_NUM || (len && len->kind != RV_NUM))
		return;
	double l = (double)char_count(s->str, s->len), st = start->num;
	if (st < 0 || (len ? st >= l : st > l))
		return;
	size_t from = char_offset(s->str, s->len, (size_t)st);
	if (!len) {
		set_str(v, s->str + from, s->len - from);
		return;
	}
	if (len->num < 0 || len->num > l - st)
		return;
	size_t to = from + char_offset(s->str + from, s->len - from, (size_t)len->num);
	set_str(v, s->str + from, to - from);
}

static void strings2(uint8_t fn, const struct rval *a, const struct rval *b, struct rval *v)
{
	if (a->kind != RV_STR || b->kind != RV_STR) {
		set_undef(v);
		return;
	}
	const char *hit = b->len ? memmem(a->str, a->len, b->str, b->len) : a->str;
	switch (fn) {
	case FI_INDEX_OF:
		set_num(v, hit ? (double)char_count(a->str, (size_t)(hit - a->str)) : -1);
		break;
	case FI_STARTS_WITH:
		set_bool(v, b->len <= a->len && memcmp(a->str, b->str, b->len) == 0);
		break;
	case FI_ENDS_WITH:
		set_bool(v,
			 b->len <= a->len && memcmp(a->str + a->len - b->len, b->str, b->len) == 0);
		break;
	default:
		set_bool(v, hit != NULL);
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
			*v = a;
		else if (a.kind == RV_STR && parse_number(a.str, a.len, &x))
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
		if (a.kind == RV_UNDEF && r->nodes[ia].type == RT_DYN)
			set_undef(v);
		else
			set_bool(v, a.kind == RV_NULL);
		break;
	case FI_IS_NUMBER:
		set_bool(v, a.kind == RV_NUM && isfinite(a.num));
		break;
	case FI_IS_STRING:
		set_bool(v, a.kind == RV_STR);
		break;
	case FI_LENGTH:
		if (a.kind == RV_STR)
			set_num(v, (double)char_count(a.str, a.len));
		else
			set_undef(v);
		break;
	case FI_LOWER:
	case FI_UPPER:
		if (a.kind == RV_STR)
			case_map(c, &a, n->op == FI_UPPER, v);
		else
			set_undef(v);
		break;
	case FI_SUBSTRING:
		substring(&a, &b, id >= 0 ? &d : NULL, v);
		break;
	case FI_INDEX_OF:
	case FI_STARTS_WITH:
	case FI_ENDS_WITH:
	case FI_CONTAINS:
		strings2(n->op, &a, &b, v);
		break;
	default:
		math1(n->op, &a, v);
		break;
	}
}

static void eval(const struct route *r, struct route_eval_ctx *c, int32_t i, struct rval *v)
{
	const struct node *n = &r->nodes[i];
	const struct hub_message *m = c->msg;
	switch (n->kind) {
	case N_LIT:
		*v = n->lit;
		break;
	case N_PROP: {
		const struct msg_prop *p = prop_find(m, r->pool + n->name, n->name_len);
		if (p)
			set_prop(v, p->value);
		else
			set_undef(v);
		break;
	}
	case N_SYSPROP: {
		/* An application property literally named "$name" wins. */
		const struct msg_prop *p =
		    n->forced ? NULL : prop_find(m, r->pool + n->name, n->name_len);
		if (p)
			set_prop(v, p->value);
		else if (n->sys >= 0 && m->sys[n->sys])
			set_prop(v, m->sys[n->sys]);
		else
			set_undef(v);
		break;
	}
	case N_BODY: {
		const struct msg_prop *p =
		    n->forced ? NULL : prop_find(m, r->pool + n->name, n->name_len);
		if (p) {
			set_prop(v, p->value);
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
		if (a.kind != RV_NUM || b.kind != RV_NUM) {
			set_undef(v);
			break;
		}
		switch (n->op) {
		case '+':
			set_num(v, a.num + b.num);
			break;
		case '-':
			set_num(v, a.num - b.num);
			break;
		case '*':
			set_num(v, a.num * b.num);
			break;
		case '/':
			set_num(v, a.num / b.num);
			break;
		default:
			set_num(v, LAZY(fmod)(a.num, b.num));
			break;
		}
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
