/* Compiles one route, `[SELECT *] FROM <source> [WHERE <condition>] INTO <sink>`,
 * as edgeHub does: the same tokens (longest match, so `x-request-id` is one
 * property name and `-2` one number), the same precedence, and the same
 * static types, so a route edgeHub refuses (`temperature > 50` compares a
 * string with a number) is refused here too, with the position of the error. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "hub/message.h"
#include "hub/route_internal.h"

/* Token kinds, in the order of edgeHub's lexer rules: when two rules match
 * the same length, the earlier one wins. */
enum tk {
	TK_SELECT,
	TK_FROM,
	TK_WHERE,
	TK_INTO,
	TK_STRING,
	TK_BAD_STRING,
	TK_INT,
	TK_HEX,
	TK_REAL,
	TK_TRUE,
	TK_FALSE,
	TK_NULL,
	TK_UNDEFINED,
	TK_LPAREN,
	TK_RPAREN,
	TK_COMMA,
	TK_PLUS,
	TK_MINUS,
	TK_MUL,
	TK_DIV,
	TK_MOD,
	TK_AND,
	TK_OR,
	TK_NOT,
	TK_EQ,
	TK_NE,
	TK_LTGT,
	TK_LE,
	TK_GE,
	TK_GT,
	TK_LT,
	TK_CONCAT,
	TK_COALESCE,
	TK_SYSPROP,
	TK_ID,
	TK_PATH,
	TK_LBRACE,
	TK_RBRACE,
	TK_UNKNOWN,
	TK_EOF,
};

struct token {
	uint8_t kind;
	uint32_t start, len;
};

struct parser {
	const char *text;
	size_t len;
	struct token *toks;
	size_t n_toks, cur;
	struct route *r;
	size_t cap_nodes, cap_segs, cap_pool;
	unsigned depth;
	bool pool_full; /* cannot happen with the size route_parse gives the pool */
	struct {
		uint32_t seg, nseg;
		bool multi;
	} queries[ROUTE_BODY_QUERIES_MAX]; /* distinct $body queries, by slot */
	size_t n_queries;
	struct berr *err;
};

/* ---- lexer ---- */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Characters of a property name (edgeHub's ID_CHARS). */
static bool is_id_char(char c)
{
	return !is_ws(c) && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* Characters after the '$' of a system property or $body query. */
static bool is_path_char(char c)
{
	return !is_ws(c) && !strchr("()<>@,;:\\\"/?={}", c);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t match_word(const char *p, size_t rem, const char *word, bool nocase)
{
	size_t n = strlen(word);
	if (rem < n)
		return 0;
	return (nocase ? strncasecmp(p, word, n) : strncmp(p, word, n)) == 0 ? n : 0;
}

static size_t match_digits(const char *p, size_t rem, size_t i)
{
	size_t s = i;
	while (i < rem && is_digit(p[i]))
		i++;
	return i - s;
}

static size_t match_int(const char *p, size_t rem)
{
	size_t i = (rem && p[0] == '-') ? 1 : 0;
	size_t d = match_digits(p, rem, i);
	return d ? i + d : 0;
}

static size_t match_hex(const char *p, size_t rem)
{
	if (rem < 3 || p[0] != '0' || (p[1] != 'x' && p[1] != 'X'))
		return 0;
	size_t i = 2;
	while (i < rem && isxdigit((unsigned char)p[i]))
		i++;
	return i > 2 ? i : 0;
}

static size_t match_exp(const char *p, size_t rem, size_t i)
{
	if (i >= rem || (p[i] != 'e' && p[i] != 'E'))
		return 0;
	size_t j = i + 1;
	if (j < rem && (p[j] == '+' || p[j] == '-'))
		j++;
	size_t d = match_digits(p, rem, j);
	return d ? j + d - i : 0;
}

/* '-'? [0-9]* '.' [0-9]+ EXP?  |  '-'? [0-9]* EXP */
static size_t match_real(const char *p, size_t rem)
{
	size_t i = (rem && p[0] == '-') ? 1 : 0;
	i += match_digits(p, rem, i);
	size_t best = 0;
	size_t e = match_exp(p, rem, i);
	if (e)
		best = i + e;
	if (i < rem && p[i] == '.') {
		size_t d = match_digits(p, rem, i + 1);
		if (d) {
			size_t j = i + 1 + d;
			j += match_exp(p, rem, j);
			if (j > best)
				best = j;
		}
	}
	return best;
}

/* A quoted string: returns the length of the complete string, or 0 with
 * *partial set to the length an unterminated string reaches (edgeHub's
 * UNTERMINATED_STRING: it stops at the end or at an invalid escape). */
static size_t match_string(const char *p, size_t rem, size_t *partial)
{
	char q = p[0];
	size_t i = 1;
	while (i < rem) {
		if (p[i] == '\\') {
			if (i + 1 < rem &&
			    (p[i + 1] == '"' || p[i + 1] == '\'' || p[i + 1] == '\\')) {
				i += 2;
				continue;
			}
			if (i + 5 < rem && p[i + 1] == 'u' && isxdigit((unsigned char)p[i + 2]) &&
			    isxdigit((unsigned char)p[i + 3]) &&
			    isxdigit((unsigned char)p[i + 4]) &&
			    isxdigit((unsigned char)p[i + 5])) {
				i += 6;
				continue;
			}
			*partial = i;
			return 0;
		}
		if (p[i] == q)
			return i + 1;
		i++;
	}
	*partial = i;
	return 0;
}

static bool starts_with_body(const char *p, size_t n)
{
	return n >= 6 && strncasecmp(p, "$body.", 6) == 0;
}

/* '$' followed by path characters (edgeHub's SYS_PROP). */
static size_t match_sysprop(const char *p, size_t rem)
{
	if (p[0] != '$')
		return 0;
	size_t i = 1;
	while (i < rem && is_path_char(p[i]))
		i++;
	return i > 1 ? i : 0;
}

static size_t match_run(const char *p, size_t rem, bool (*ok)(char))
{
	size_t i = 0;
	while (i < rem && ok(p[i]))
		i++;
	return i;
}

static void consider(uint8_t *best, size_t *blen, enum tk k, size_t len)
{
	if (len > *blen || (len && len == *blen && k < *best)) {
		*best = (uint8_t)k;
		*blen = len;
	}
}

static const struct {
	const char *text;
	enum tk kind;
} ops[] = {
    {"(", TK_LPAREN},  {")", TK_RPAREN},    {",", TK_COMMA},  {"+", TK_PLUS},	{"-", TK_MINUS},
    {"*", TK_MUL},     {"/", TK_DIV},	    {"%", TK_MOD},    {"=", TK_EQ},	{"!=", TK_NE},
    {"<>", TK_LTGT},   {"<=", TK_LE},	    {">=", TK_GE},    {">", TK_GT},	{"<", TK_LT},
    {"||", TK_CONCAT}, {"??", TK_COALESCE}, {"{", TK_LBRACE}, {"}", TK_RBRACE},
};

/* Splits the text into tokens (whitespace and comments dropped). */
static int tokenize(struct parser *p)
{
	p->toks = calloc(p->len + 1, sizeof(*p->toks));
	if (!p->toks)
		return berr_set(p->err, ENOMEM, "route");
	size_t pos = 0;
	while (pos < p->len) {
		const char *s = p->text + pos;
		size_t rem = p->len - pos;
		if (is_ws(*s)) {
			pos++;
			continue;
		}
		/* A comment runs from slash-star to the first star-slash wherever
		 * it starts, as in edgeHub: a source ending in slash-star opens one
		 * when a later comment closes it, and the WHERE clause between is
		 * read as part of that comment. */
		if (rem >= 4 && s[0] == '/' && s[1] == '*') {
			const char *end = memmem(s + 2, rem - 2, "*/", 2);
			if (end) {
				pos = (size_t)(end - p->text) + 2;
				continue;
			}
		}
		uint8_t best = TK_UNKNOWN;
		size_t blen = 0;
		consider(&best, &blen, TK_SELECT, match_word(s, rem, "select", true));
		consider(&best, &blen, TK_FROM, match_word(s, rem, "from", true));
		consider(&best, &blen, TK_WHERE, match_word(s, rem, "where", true));
		consider(&best, &blen, TK_INTO, match_word(s, rem, "into", true));
		if (*s == '"' || *s == '\'') {
			size_t partial = 0;
			size_t n = match_string(s, rem, &partial);
			consider(&best, &blen, n ? TK_STRING : TK_BAD_STRING, n ? n : partial);
		}
		consider(&best, &blen, TK_INT, match_int(s, rem));
		consider(&best, &blen, TK_HEX, match_hex(s, rem));
		consider(&best, &blen, TK_REAL, match_real(s, rem));
		consider(&best, &blen, TK_TRUE, match_word(s, rem, "true", false));
		consider(&best, &blen, TK_FALSE, match_word(s, rem, "false", false));
		consider(&best, &blen, TK_NULL, match_word(s, rem, "null", false));
		consider(&best, &blen, TK_UNDEFINED, match_word(s, rem, "undefined", false));
		consider(&best, &blen, TK_AND, match_word(s, rem, "and", true));
		consider(&best, &blen, TK_OR, match_word(s, rem, "or", true));
		consider(&best, &blen, TK_NOT, match_word(s, rem, "not", true));
		for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
			consider(&best, &blen, ops[i].kind, match_word(s, rem, ops[i].text, false));
		consider(&best, &blen, TK_SYSPROP, match_sysprop(s, rem));
		consider(&best, &blen, TK_ID, match_run(s, rem, is_id_char));
		consider(&best, &blen, TK_PATH, match_run(s, rem, is_path_char));
		if (!blen) {
			best = TK_UNKNOWN;
			blen = 1;
		}
		p->toks[p->n_toks++] = (struct token){best, (uint32_t)pos, (uint32_t)blen};
		pos += blen;
	}
	p->toks[p->n_toks] = (struct token){TK_EOF, (uint32_t)p->len, 0};
	return 0;
}

/* ---- errors ---- */

/* 1-based position in characters (UTF-8 continuation bytes not counted). */
static size_t char_pos(const struct parser *p, size_t byte)
{
	size_t n = 1;
	for (size_t i = 0; i < byte && i < p->len; i++)
		if (((unsigned char)p->text[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static int fail_at(struct parser *p, size_t byte, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, size_t byte, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return berr_set(p->err, 0, "position %zu: %s", char_pos(p, byte), what);
}

static const struct token *tok(const struct parser *p)
{
	return &p->toks[p->cur];
}

static const struct token *peek(const struct parser *p, size_t ahead)
{
	size_t i = p->cur + ahead;
	return &p->toks[i < p->n_toks ? i : p->n_toks];
}

/* A token as errors show it: at most 40 bytes, control characters as '?'
 * (route text comes from a deployment and ends up in logs). */
static const char *token_text(const struct parser *p, const struct token *t, char *buf, size_t n)
{
	size_t len = t->len > 40 ? 40 : t->len;
	if (len >= n)
		len = n - 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p->text[t->start + i];
		buf[i] = (char)(c < 0x20 || c == 0x7F ? '?' : c);
	}
	buf[len] = '\0';
	return buf;
}

/* What the current token is, for "expected X, found Y" messages. */
static void describe(const struct parser *p, const struct token *t, char *buf, size_t n)
{
	char text[48];
	if (t->kind == TK_EOF)
		snprintf(buf, n, "the end of the route");
	else
		snprintf(buf, n, "'%s'", token_text(p, t, text, sizeof(text)));
}

static int expected(struct parser *p, const char *what)
{
	const struct token *t = tok(p);
	if (t->kind == TK_BAD_STRING) {
		size_t end = t->start + t->len;
		if (end < p->len && p->text[end] == '\\')
			return fail_at(p, end, "invalid escape sequence in string");
		return fail_at(p, t->start, "unterminated string");
	}
	char found[64];
	describe(p, t, found, sizeof(found));
	return fail_at(p, t->start, "expected %s, found %s", what, found);
}

/* ---- building the route ---- */

static const char *type_name(enum rtype t)
{
	static const char *const names[] = {"undefined", "null",   "bool",
					    "number",	 "string", "$body value"};
	return names[t];
}

static int32_t new_node(struct parser *p, enum node_kind kind, enum rtype type, size_t at)
{
	struct route *r = p->r;
	if (r->n_nodes >= ROUTE_MAX_NODES) {
		fail_at(p, at, "condition has more than %d terms", ROUTE_MAX_NODES);
		return -1;
	}
	if (r->n_nodes == p->cap_nodes) {
		size_t cap = p->cap_nodes ? p->cap_nodes * 2 : 16;
		struct node *n = realloc(r->nodes, cap * sizeof(*n));
		if (!n) {
			berr_set(p->err, ENOMEM, "route");
			return -1;
		}
		r->nodes = n;
		p->cap_nodes = cap;
	}
	int32_t i = (int32_t)r->n_nodes++;
	r->nodes[i] = (struct node){
	    .kind = kind, .type = type, .a = -1, .b = -1, .next = -1, .sys = -1, .depth = 1};
	return i;
}

/* Sets a node's height from its children and refuses trees deeper than the
 * evaluator's recursion limit. */
static int set_depth(struct parser *p, int32_t i, size_t at)
{
	struct node *n = &p->r->nodes[i];
	uint32_t d = 0;
	if (n->a >= 0 && p->r->nodes[n->a].depth > d)
		d = p->r->nodes[n->a].depth;
	if (n->b >= 0 && p->r->nodes[n->b].depth > d)
		d = p->r->nodes[n->b].depth;
	for (int32_t k = n->kind == N_CALL ? n->a : -1; k >= 0; k = p->r->nodes[k].next)
		if (p->r->nodes[k].depth > d)
			d = p->r->nodes[k].depth;
	n->depth = d + 1;
	if (n->depth > ROUTE_MAX_TREE)
		return fail_at(p, at, "condition has more than %d levels of operators",
			       ROUTE_MAX_TREE);
	return 0;
}

/* Appends bytes to the pool (sized up front, so offsets and pointers stay valid). */
static uint32_t pool_add(struct parser *p, const char *s, size_t n)
{
	struct route *r = p->r;
	if (r->pool_len + n + 1 > p->cap_pool) {
		p->pool_full = true;
		return 0;
	}
	uint32_t off = (uint32_t)r->pool_len;
	memcpy(r->pool + off, s, n);
	r->pool[off + n] = '\0';
	r->pool_len += n + 1;
	return off;
}

static int hex_digit(char c)
{
	if (is_digit(c))
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* UTF-16 code units as UTF-8: a pair joined, a lone surrogate in its 3-byte form. */
static size_t units_to_utf8(const uint16_t *u, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp = u[i];
		if (route_is_high_surrogate(cp) && i + 1 < n && route_is_low_surrogate(u[i + 1]))
			cp = 0x10000 + ((cp - 0xD800) << 10) + (u[++i] - 0xDC00);
		o += route_utf8_put(out + o, cp);
	}
	return o;
}

/* Unescapes a string literal into the pool as edgeHub does, in two passes
 * over the text: first every \uXXXX (or \UXXXX) becomes its code unit,
 * then every \", \' and \\ its character. So '\\u0041' is the two
 * characters \A, and '\u005c"' a lone quote. */
static int string_literal(struct parser *p, const struct token *t, uint32_t *off, size_t *len)
{
	const char *s = p->text + t->start + 1;
	size_t n = t->len - 2;
	cleanup_free uint16_t *u = malloc((2 * n + 1) * sizeof(*u));
	cleanup_free char *out = malloc(3 * n + 1);
	if (!u || !out)
		return berr_set(p->err, ENOMEM, "route");
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '\\' && i + 5 < n && (s[i + 1] == 'u' || s[i + 1] == 'U') &&
		    hex_digit(s[i + 2]) >= 0 && hex_digit(s[i + 3]) >= 0 &&
		    hex_digit(s[i + 4]) >= 0 && hex_digit(s[i + 5]) >= 0) {
			u[k++] = (uint16_t)(hex_digit(s[i + 2]) << 12 | hex_digit(s[i + 3]) << 8 |
					    hex_digit(s[i + 4]) << 4 | hex_digit(s[i + 5]));
			i += 6;
			continue;
		}
		uint32_t cp;
		i += route_cp_next(s + i, n - i, &cp);
		if (cp >= 0x10000) {
			u[k++] = (uint16_t)(0xD800 + ((cp - 0x10000) >> 10));
			u[k++] = (uint16_t)(0xDC00 + ((cp - 0x10000) & 0x3FF));
		} else {
			u[k++] = (uint16_t)cp;
		}
	}
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (u[i] == '\\' && i + 1 < k &&
		    (u[i + 1] == '"' || u[i + 1] == '\'' || u[i + 1] == '\\'))
			i++;
		u[m++] = u[i];
	}
	size_t o = units_to_utf8(u, m, out);
	if (o > ROUTE_LITERAL_MAX)
		return fail_at(p, t->start, "string literal longer than %d bytes",
			       ROUTE_LITERAL_MAX);
	*off = pool_add(p, out, o);
	*len = o;
	return 0;
}

/* ---- $body queries ---- */

static int add_seg(struct parser *p, struct body_seg seg)
{
	struct route *r = p->r;
	if (r->n_segs == p->cap_segs) {
		size_t cap = p->cap_segs ? p->cap_segs * 2 : 8;
		struct body_seg *s = realloc(r->segs, cap * sizeof(*s));
		if (!s)
			return berr_set(p->err, ENOMEM, "route");
		r->segs = s;
		p->cap_segs = cap;
	}
	r->segs[r->n_segs++] = seg;
	return 0;
}

bool body_segs_equal(const struct body_seg *a, const char *pool_a, const struct body_seg *b,
		     const char *pool_b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (a[i].kind != b[i].kind)
			return false;
		if (a[i].kind == SEG_INDEX && a[i].index != b[i].index)
			return false;
		if (a[i].kind == SEG_FIELD &&
		    (a[i].key_len != b[i].key_len ||
		     memcmp(pool_a + a[i].key, pool_b + b[i].key, a[i].key_len)))
			return false;
	}
	return true;
}

/* A run of JSON path name characters (all but '.', '[' and ']'). */
static size_t name_run(const char *q, size_t n, size_t i)
{
	size_t j = i;
	while (j < n && q[j] != '.' && q[j] != '[' && q[j] != ']')
		j++;
	return j - i;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* edgeHub accepts a $body query whose text starts with name ([digits])?
 * (. name ([digits])?)* (its JsonPath.g4, without an end of input: what
 * follows is not checked); a name is not all digits. `at`: where q is in
 * the route text. */
static int body_query_check(struct parser *p, size_t at, const char *q, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t k = name_run(q, n, i);
		if (!k || all_digits(q + i, k))
			return fail_at(p, at + i, "expected a member name in the $body query");
		i += k;
		if (i < n && q[i] == '[') {
			size_t d = name_run(q, n, i + 1);
			if (!d || !all_digits(q + i + 1, d) || i + 1 + d >= n ||
			    q[i + 1 + d] != ']')
				return fail_at(p, at + i, "expected [index] in the $body query");
			i += d + 2;
		}
		if (i >= n || q[i] != '.')
			return 0;
		i++;
	}
}

/* One bracketed step at q[i] == '['. Returns the index of its ']', or 0
 * when the JSON library would refuse it. */
static size_t body_indexer(const char *q, size_t n, size_t i, struct body_seg *seg, bool *multi)
{
	size_t j = i + 1;
	if (j >= n)
		return 0;
	if (q[j] == '\'') {
		const char *close = memchr(q + j + 1, '\'', n - j - 1);
		size_t k = close ? (size_t)(close - q) : 0;
		if (!close || k + 1 >= n || q[k + 1] != ']')
			return 0;
		seg->kind = SEG_FIELD;
		seg->key = j + 1;
		seg->key_len = (uint32_t)(k - j - 1);
		return k + 1;
	}
	for (size_t k = j; k < n; k++) {
		if (q[k] == ']') {
			int64_t v;
			if (!route_int_text(q + j, k - j, INT32_MIN, INT32_MAX, &v))
				return 0;
			seg->kind = SEG_INDEX;
			seg->index = v < 0 ? UINT32_MAX : (uint32_t)v;
			return k;
		}
		if (q[k] == '*') {
			if (k + 1 >= n || q[k + 1] != ']')
				return 0;
			seg->kind = SEG_INDEX_ANY;
			*multi = true;
			return k + 1;
		}
		if (!is_digit(q[k]) && q[k] != '-')
			return 0;
	}
	return 0;
}

/* The steps of a $body query as edgeHub's JSON library (Newtonsoft's JPath)
 * reads the whole text: names, .*, [i], ['name'], [*]. Returns 1 (and no
 * steps) for a text it refuses or that leads to the top-level object, which
 * edgeHub answers with undefined, and for a recursive "..": such queries are
 * always undefined here. Key offsets are into q until the caller pools them. */
static int body_query_steps(const char *q, size_t n, struct body_seg *segs, size_t *nseg,
			    bool *multi)
{
	size_t i = 0, part = 0, k = 0;
	bool after_index = false, after_dot = false;
	*multi = false;
	if (n && q[0] == '$') {
		if (n == 1)
			return 1;
		if (q[1] == '.' || q[1] == '[')
			i = part = 1;
	}
	while (i < n) {
		char c = q[i];
		if (c == '[' || c == '.') {
			if (i > part) {
				if (k == ROUTE_BODY_PATH_MAX)
					return -1;
				bool any = i - part == 1 && q[part] == '*';
				segs[k++] =
				    (struct body_seg){.kind = any ? SEG_FIELD_ANY : SEG_FIELD,
						      .key = (uint32_t)part,
						      .key_len = (uint32_t)(i - part)};
				*multi |= any;
			}
			if (c == '.') {
				if (i + 1 < n && q[i + 1] == '.')
					return 1;
				part = ++i;
				after_index = false;
				after_dot = true;
				continue;
			}
			if (k == ROUTE_BODY_PATH_MAX)
				return -1;
			size_t close = body_indexer(q, n, i, &segs[k], multi);
			if (!close)
				return 1;
			k++;
			part = i = close + 1;
			after_index = true;
			after_dot = false;
			continue;
		}
		if (c == ']' || after_index)
			return 1;
		i++;
	}
	if (i > part) {
		if (k == ROUTE_BODY_PATH_MAX)
			return -1;
		bool any = i - part == 1 && q[part] == '*';
		segs[k++] = (struct body_seg){.kind = any ? SEG_FIELD_ANY : SEG_FIELD,
					      .key = (uint32_t)part,
					      .key_len = (uint32_t)(i - part)};
		*multi |= any;
	} else if (after_dot) {
		return 1;
	}
	*nseg = k;
	return 0;
}

/* Compiles the query of a $body node: checked as edgeHub checks it when the
 * route is compiled, then read as its JSON library reads it per message. */
static int body_query(struct parser *p, const struct token *t, int32_t node)
{
	const char *q = p->text + t->start + 6;
	size_t n = t->len - 6, at = t->start + 6;
	if (!n)
		return fail_at(p, t->start, "empty $body query");
	if (body_query_check(p, at, q, n) < 0)
		return -1;
	struct body_seg segs[ROUTE_BODY_PATH_MAX];
	size_t nseg = 0;
	bool multi;
	int rc = body_query_steps(q, n, segs, &nseg, &multi);
	if (rc < 0)
		return fail_at(p, t->start, "$body query has more than %d steps",
			       ROUTE_BODY_PATH_MAX);
	if (rc > 0) {
		p->r->nodes[node].dead = true;
		return 0;
	}
	uint32_t first = (uint32_t)p->r->n_segs;
	for (size_t i = 0; i < nseg; i++) {
		if (segs[i].kind == SEG_FIELD)
			segs[i].key = pool_add(p, q + segs[i].key, segs[i].key_len);
		if (add_seg(p, segs[i]) < 0)
			return -1;
	}
	/* The same query twice in a route is read once. */
	for (size_t k = 0; k < p->n_queries; k++) {
		if (p->queries[k].nseg != nseg)
			continue;
		const struct body_seg *a = &p->r->segs[p->queries[k].seg], *b = &p->r->segs[first];
		if (body_segs_equal(a, p->r->pool, b, p->r->pool, (uint32_t)nseg)) {
			p->r->n_segs = first;
			p->r->nodes[node].slot = (uint32_t)k;
			return 0;
		}
	}
	if (p->n_queries == ROUTE_BODY_QUERIES_MAX)
		return fail_at(p, t->start, "more than %d different $body queries",
			       ROUTE_BODY_QUERIES_MAX);
	p->queries[p->n_queries].seg = first;
	p->queries[p->n_queries].nseg = (uint32_t)nseg;
	p->queries[p->n_queries].multi = multi;
	p->r->nodes[node].slot = (uint32_t)p->n_queries++;
	return 0;
}

/* Shrinks the arrays to what the route uses (the pool stays: literals point
 * into it) and gives the queries their final addresses. */
static int finish(struct parser *p)
{
	struct route *r = p->r;
	struct node *n = r->n_nodes ? realloc(r->nodes, r->n_nodes * sizeof(*n)) : NULL;
	if (n)
		r->nodes = n;
	struct body_seg *sg = r->n_segs ? realloc(r->segs, r->n_segs * sizeof(*sg)) : NULL;
	if (sg)
		r->segs = sg;
	if (!p->n_queries)
		return 0;
	r->queries = calloc(p->n_queries, sizeof(*r->queries));
	if (!r->queries)
		return berr_set(p->err, ENOMEM, "route");
	for (size_t q = 0; q < p->n_queries; q++)
		r->queries[q] = (struct body_query){.segs = r->segs + p->queries[q].seg,
						    .pool = r->pool,
						    .nseg = p->queries[q].nseg,
						    .multi = p->queries[q].multi};
	r->n_queries = p->n_queries;
	return 0;
}

/* System properties by the names edgeHub keeps them under (matched without
 * regard to case): the property bag's $.cid is "cid", $.exp
 * "absolute-expiry-time", $.ctime "creationTime". A name the hub never sets
 * is undefined, as in edgeHub. */
static int sys_lookup(const char *name, size_t n)
{
	static const struct {
		const char *name;
		enum msg_sys sys;
	} names[] = {
	    {"messageId", MSG_SYS_MESSAGE_ID},
	    {"cid", MSG_SYS_CORRELATION_ID},
	    {"userId", MSG_SYS_USER_ID},
	    {"to", MSG_SYS_TO},
	    {"absolute-expiry-time", MSG_SYS_EXPIRY},
	    {"contentType", MSG_SYS_CONTENT_TYPE},
	    {"contentEncoding", MSG_SYS_CONTENT_ENCODING},
	    {"outputName", MSG_SYS_OUTPUT_NAME},
	    {"connectionDeviceId", MSG_SYS_CONNECTION_DEVICE_ID},
	    {"connectionModuleId", MSG_SYS_CONNECTION_MODULE_ID},
	    {"creationTime", MSG_SYS_CREATION_TIME},
	    {"messageSchema", MSG_SYS_SCHEMA},
	    {"inputName", MSG_SYS_INPUT_NAME},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i].name) == n && strncasecmp(names[i].name, name, n) == 0)
			return names[i].sys;
	return -1;
}

/* $name and {$name}: a $body query, a system property, or (for other names
 * with brackets) a constant undefined, as in edgeHub. A name with brackets
 * is never looked up as an application property. */
static int32_t sys_property(struct parser *p, const struct token *t, bool forced)
{
	const char *s = p->text + t->start;
	bool brackets = memchr(s, '[', t->len) || memchr(s, ']', t->len);
	int32_t i;
	if (starts_with_body(s, t->len)) {
		i = new_node(p, N_BODY, RT_DYN, t->start);
		if (i < 0 || body_query(p, t, i) < 0)
			return -1;
	} else if (brackets) {
		i = new_node(p, N_LIT, RT_UNDEF, t->start);
		if (i < 0)
			return -1;
		p->r->nodes[i].lit.kind = RV_UNDEF;
		return i;
	} else {
		i = new_node(p, N_SYSPROP, RT_STR, t->start);
		if (i < 0)
			return -1;
		p->r->nodes[i].sys = (int16_t)sys_lookup(s + 1, t->len - 1);
	}
	struct node *nd = &p->r->nodes[i];
	nd->forced = forced || brackets;
	nd->name = pool_add(p, s, t->len);
	nd->name_len = t->len;
	return i;
}

/* ---- literals ---- */

static double hex_value(const char *s, size_t n, bool *ok)
{
	/* As edgeHub's long.TryParse(HexNumber): up to 16 significant digits,
	 * read as a two's complement 64-bit integer. */
	size_t i = 2;
	while (i < n && s[i] == '0')
		i++;
	if (n - i > 16) {
		*ok = false;
		return 0;
	}
	uint64_t v = 0;
	for (; i < n; i++) {
		char c = s[i];
		v = v * 16 +
		    (uint64_t)(is_digit(c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10));
	}
	*ok = true;
	return (double)(int64_t)v;
}

static int32_t literal(struct parser *p, const struct token *t)
{
	int32_t i = new_node(p, N_LIT, RT_UNDEF, t->start);
	if (i < 0)
		return -1;
	struct rval v = {.kind = RV_UNDEF};
	enum rtype type = RT_UNDEF;
	switch (t->kind) {
	case TK_TRUE:
	case TK_FALSE:
		v.kind = RV_BOOL;
		v.b = t->kind == TK_TRUE;
		type = RT_BOOL;
		break;
	case TK_NULL:
		v.kind = RV_NULL;
		type = RT_NULL;
		break;
	case TK_UNDEFINED:
		break;
	case TK_STRING: {
		uint32_t off = 0;
		size_t len = 0;
		if (string_literal(p, t, &off, &len) < 0)
			return -1;
		v.kind = RV_STR;
		v.str = p->r->pool + off;
		v.len = len;
		type = RT_STR;
		break;
	}
	case TK_HEX: {
		bool ok;
		double d = hex_value(p->text + t->start, t->len, &ok);
		if (ok) {
			v.kind = RV_NUM;
			v.num = d;
			type = RT_NUM;
		}
		break;
	}
	default: { /* TK_INT, TK_REAL */
		char buf[128];
		if (t->len >= sizeof(buf))
			return fail_at(p, t->start, "number longer than %zu characters",
				       sizeof(buf) - 1);
		memcpy(buf, p->text + t->start, t->len);
		buf[t->len] = '\0';
		/* A real such as "e5" (no digits before the exponent) is a
		 * token but not a number: edgeHub makes it undefined. */
		char *end;
		double d = strtod(buf, &end);
		if (*end == '\0') {
			v.kind = isnan(d) ? RV_UNDEF : RV_NUM;
			v.num = d;
			type = RT_NUM;
		}
		break;
	}
	}
	p->r->nodes[i].lit = v;
	p->r->nodes[i].type = (uint8_t)type;
	return i;
}

/* ---- built-in functions ---- */

#define T(x) (1u << (x))
#define ANY  0xFFu

/* One way to call a built-in (edgeHub's executors): argument types, tried
 * in order. `dyn` lets a $body value stand for any argument of a supported
 * type; `var` repeats the last type. */
struct fn_sig {
	uint8_t n;
	uint8_t args[3]; /* masks of enum rtype, ANY for any */
	bool dyn, var;
	uint8_t impl;
	uint8_t ret;
};

struct fn_def {
	const char *name;
	uint8_t min, max; /* arity; max 255: unbounded */
	struct fn_sig sigs[6];
};

static const struct fn_def fns[] = {
    {"abs", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_ABS, RT_NUM}}},
    {"exp", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_EXP, RT_NUM}}},
    {"power", 2, 2, {{2, {T(RT_NUM), T(RT_NUM)}, true, false, FI_POWER, RT_NUM}}},
    {"square", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_SQUARE, RT_NUM}}},
    {"ceiling", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_CEILING, RT_NUM}}},
    {"floor", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_FLOOR, RT_NUM}}},
    {"sign", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_SIGN, RT_NUM}}},
    {"sqrt", 1, 1, {{1, {T(RT_NUM)}, true, false, FI_SQRT, RT_NUM}}},
    {"as_number",
     1,
     1,
     {{1, {T(RT_STR)}, true, false, FI_AS_NUMBER, RT_NUM},
      {1, {T(RT_NUM)}, false, false, FI_IDENTITY, RT_NUM}}},
    {"is_bool",
     1,
     1,
     {{1, {T(RT_BOOL)}, true, false, FI_IS_BOOL, RT_BOOL},
      {1, {ANY}, false, false, FI_FALSE, RT_BOOL}}},
    {"is_defined", 1, 1, {{1, {ANY}, false, false, FI_IS_DEFINED, RT_BOOL}}},
    {"is_null",
     1,
     1,
     {{1, {T(RT_STR) | T(RT_DYN)}, false, false, FI_IS_NULL, RT_BOOL},
      {1, {T(RT_NULL)}, false, false, FI_TRUE, RT_BOOL},
      {1, {ANY}, false, false, FI_FALSE, RT_BOOL}}},
    {"is_number",
     1,
     1,
     {{1, {T(RT_NUM)}, true, false, FI_IS_NUMBER, RT_BOOL},
      {1, {ANY}, false, false, FI_FALSE, RT_BOOL}}},
    {"is_string",
     1,
     1,
     {{1, {T(RT_STR)}, true, false, FI_IS_STRING, RT_BOOL},
      {1, {ANY}, false, false, FI_FALSE, RT_BOOL}}},
    {"concat", 2, 255, {{3, {T(RT_STR), T(RT_STR), T(RT_STR)}, true, true, FI_CONCAT, RT_STR}}},
    {"length", 1, 1, {{1, {T(RT_STR)}, true, false, FI_LENGTH, RT_NUM}}},
    {"lower", 1, 1, {{1, {T(RT_STR)}, true, false, FI_LOWER, RT_STR}}},
    {"upper", 1, 1, {{1, {T(RT_STR)}, true, false, FI_UPPER, RT_STR}}},
    {"substring",
     2,
     3,
     {{2, {T(RT_STR), T(RT_NUM)}, true, false, FI_SUBSTRING, RT_STR},
      {3, {T(RT_STR), T(RT_NUM), T(RT_NUM)}, true, false, FI_SUBSTRING, RT_STR}}},
    {"index_of", 2, 2, {{2, {T(RT_STR), T(RT_STR)}, true, false, FI_INDEX_OF, RT_NUM}}},
    {"starts_with", 2, 2, {{2, {T(RT_STR), T(RT_STR)}, true, false, FI_STARTS_WITH, RT_BOOL}}},
    {"ends_with", 2, 2, {{2, {T(RT_STR), T(RT_STR)}, true, false, FI_ENDS_WITH, RT_BOOL}}},
    {"contains", 2, 2, {{2, {T(RT_STR), T(RT_STR)}, true, false, FI_CONTAINS, RT_BOOL}}},
};

static bool arg_fits(uint8_t mask, enum rtype t, bool dyn)
{
	if (mask == ANY || (mask & T(t)))
		return true;
	/* A $body value fits where a bool, number, string or null is wanted. */
	return dyn && t == RT_DYN && (mask & (T(RT_BOOL) | T(RT_NUM) | T(RT_STR) | T(RT_NULL)));
}

static bool sig_fits(const struct fn_sig *s, const enum rtype *types, size_t n)
{
	if (s->var ? n < (size_t)s->n - 1 : n != s->n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!arg_fits(s->args[i < s->n ? i : (size_t)s->n - 1], types[i], s->dyn))
			return false;
	return true;
}

static const struct fn_def *fn_find(const char *name, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(fns); i++)
		if (strlen(fns[i].name) == n && strncasecmp(fns[i].name, name, n) == 0)
			return &fns[i];
	return NULL;
}

static void arity_text(const struct fn_def *f, char *buf, size_t n)
{
	if (f->max == 255)
		snprintf(buf, n, "at least %u arguments", f->min);
	else if (f->min != f->max)
		snprintf(buf, n, "%u or %u arguments", f->min, f->max);
	else
		snprintf(buf, n, "%u argument%s", f->min, f->min == 1 ? "" : "s");
}

/* ---- expressions ---- */

static int32_t expr(struct parser *p, int min_prec);

static int binary_prec(enum tk k)
{
	switch (k) {
	case TK_COALESCE:
		return 1;
	case TK_OR:
		return 2;
	case TK_AND:
		return 3;
	case TK_EQ:
	case TK_NE:
	case TK_LTGT:
		return 4;
	case TK_LT:
	case TK_LE:
	case TK_GT:
	case TK_GE:
		return 5;
	case TK_PLUS:
	case TK_MINUS:
	case TK_CONCAT:
		return 6;
	case TK_MUL:
	case TK_DIV:
	case TK_MOD:
		return 7;
	default:
		return 0;
	}
}

static int32_t call(struct parser *p, const struct token *name)
{
	const struct fn_def *f = fn_find(p->text + name->start, name->len);
	char text[48];
	if (!f)
		return fail_at(p, name->start, "unknown function '%s'",
			       token_text(p, name, text, sizeof(text)));
	p->cur += 2; /* name ( */
	int32_t node = new_node(p, N_CALL, RT_UNDEF, name->start);
	if (node < 0)
		return -1;
	enum rtype types[256];
	size_t n = 0;
	int32_t last = -1;
	if (tok(p)->kind != TK_RPAREN) {
		for (;;) {
			if (n == 255)
				return fail_at(p, tok(p)->start, "too many arguments");
			int32_t a = expr(p, 1);
			if (a < 0)
				return -1;
			types[n++] = (enum rtype)p->r->nodes[a].type;
			if (last < 0)
				p->r->nodes[node].a = a;
			else
				p->r->nodes[last].next = a;
			last = a;
			if (tok(p)->kind == TK_COMMA) {
				p->cur++;
				continue;
			}
			break;
		}
	}
	if (tok(p)->kind != TK_RPAREN)
		return expected(p, "',' or ')'");
	p->cur++;
	char want[48];
	arity_text(f, want, sizeof(want));
	if (n < f->min || n > f->max)
		return fail_at(p, name->start, "%s() takes %s, not %zu", f->name, want, n);
	const struct fn_sig *sig = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(f->sigs) && f->sigs[i].n; i++)
		if (sig_fits(&f->sigs[i], types, n)) {
			sig = &f->sigs[i];
			break;
		}
	if (!sig) {
		char have[256] = "";
		size_t o = 0;
		for (size_t i = 0; i < n && o < sizeof(have); i++)
			o += (size_t)snprintf(have + o, sizeof(have) - o, "%s%s", i ? ", " : "",
					      type_name(types[i]));
		return fail_at(p, name->start, "invalid arguments to %s(%s)", f->name, have);
	}
	struct node *nd = &p->r->nodes[node];
	nd->op = sig->impl;
	nd->type = sig->ret;
	nd->nargs = (uint16_t)n;
	for (size_t i = 0; i < n; i++)
		if (types[i] == RT_DYN)
			nd->dyn = true;
	if (set_depth(p, node, name->start) < 0)
		return -1;
	return node;
}

static int32_t primary(struct parser *p)
{
	const struct token *t = tok(p);
	switch (t->kind) {
	case TK_TRUE:
	case TK_FALSE:
	case TK_NULL:
	case TK_UNDEFINED:
	case TK_STRING:
	case TK_INT:
	case TK_HEX:
	case TK_REAL:
		p->cur++;
		return literal(p, t);
	case TK_SYSPROP:
		p->cur++;
		return sys_property(p, t, false);
	case TK_LBRACE: {
		const struct token *s = peek(p, 1);
		if (s->kind != TK_SYSPROP) {
			p->cur++;
			return expected(p, "a $name inside '{ }'");
		}
		p->cur += 2;
		if (tok(p)->kind != TK_RBRACE)
			return expected(p, "'}'");
		p->cur++;
		return sys_property(p, s, true);
	}
	case TK_ID: {
		if (peek(p, 1)->kind == TK_LPAREN)
			return call(p, t);
		p->cur++;
		int32_t i = new_node(p, N_PROP, RT_STR, t->start);
		if (i < 0)
			return -1;
		p->r->nodes[i].name = pool_add(p, p->text + t->start, t->len);
		p->r->nodes[i].name_len = t->len;
		return i;
	}
	case TK_LPAREN: {
		p->cur++;
		int32_t i = expr(p, 1);
		if (i < 0)
			return -1;
		if (tok(p)->kind != TK_RPAREN)
			return expected(p, "')'");
		p->cur++;
		return i;
	}
	default:
		return expected(p, "an expression");
	}
}

static int operand_error(struct parser *p, const struct token *op, const char *have_a,
			 const char *have_b, const char *want)
{
	const char *hint = "";
	if (have_b && ((!strcmp(have_a, "string") && !strcmp(have_b, "number")) ||
		       (!strcmp(have_a, "number") && !strcmp(have_b, "string"))))
		hint = " (application and system properties are strings: use as_number())";
	if (have_b)
		return fail_at(p, op->start,
			       "invalid operands to '%.*s': have %s and %s, expected %s%s",
			       (int)op->len, p->text + op->start, have_a, have_b, want, hint);
	return fail_at(p, op->start, "invalid operand to '%.*s': have %s, expected %s",
		       (int)op->len, p->text + op->start, have_a, want);
}

static int32_t unary(struct parser *p)
{
	const struct token *t = tok(p);
	if (t->kind != TK_MINUS && t->kind != TK_NOT)
		return primary(p);
	if (++p->depth > ROUTE_MAX_DEPTH)
		return fail_at(p, t->start, "condition nested deeper than %d levels",
			       ROUTE_MAX_DEPTH);
	p->cur++;
	int32_t a = unary(p);
	p->depth--;
	if (a < 0)
		return -1;
	enum rtype at = (enum rtype)p->r->nodes[a].type;
	int32_t i;
	if (t->kind == TK_MINUS) {
		/* A number only: edgeHub's $body values have no unary minus. */
		if (at != RT_NUM)
			return operand_error(p, t, type_name(at), NULL, "number");
		i = new_node(p, N_NEG, at, t->start);
	} else {
		if (at != RT_BOOL && at != RT_NULL && at != RT_DYN)
			return operand_error(p, t, type_name(at), NULL, "bool");
		i = new_node(p, N_NOT, RT_BOOL, t->start);
	}
	if (i < 0)
		return -1;
	p->r->nodes[i].a = a;
	p->r->nodes[i].dyn = at == RT_DYN;
	return set_depth(p, i, t->start) < 0 ? -1 : i;
}

static bool is_scalar(enum rtype t)
{
	return t == RT_NULL || t == RT_BOOL || t == RT_NUM || t == RT_STR;
}

/* edgeHub's rule for two operands of one type: the same type, or a $body
 * value with a supported one. */
static bool same_type(enum rtype a, enum rtype b)
{
	return a == b || (a == RT_DYN && is_scalar(b)) || (b == RT_DYN && is_scalar(a));
}

static bool number_like(enum rtype t)
{
	return t == RT_NUM || t == RT_DYN;
}

static bool logic_like(enum rtype t)
{
	return t == RT_BOOL || t == RT_NULL || t == RT_UNDEF;
}

/* edgeHub's rules for AND and OR: bool, null and undefined operands, but no
 * operator between undefined and null; a $body value on the left takes any
 * right operand (edgeHub checks the right one against the left's type),
 * except null under AND, while one on the right only is refused. */
static const char *logic_refusal(enum tk op, enum rtype ta, enum rtype tb)
{
	if (ta == RT_DYN)
		return op == TK_AND && tb == RT_NULL ? "AND of a $body value and null" : NULL;
	if (!logic_like(ta) || !logic_like(tb))
		return "";
	if ((ta == RT_UNDEF && tb == RT_NULL) || (ta == RT_NULL && tb == RT_UNDEF))
		return op == TK_AND ? "AND of undefined and null" : "OR of undefined and null";
	return NULL;
}

/* Builds `a op b` after checking the operand types as edgeHub does. */
static int32_t binary(struct parser *p, const struct token *op, int32_t a, int32_t b)
{
	enum rtype ta = (enum rtype)p->r->nodes[a].type, tb = (enum rtype)p->r->nodes[b].type;
	bool dyn = ta == RT_DYN || tb == RT_DYN;
	enum node_kind kind;
	enum rtype type;
	uint8_t code = 0;
	switch (op->kind) {
	case TK_PLUS:
	case TK_MINUS:
	case TK_MUL:
	case TK_DIV:
	case TK_MOD:
		if (!number_like(ta) || !number_like(tb))
			return operand_error(p, op, type_name(ta), type_name(tb),
					     "number and number");
		if (op->kind == TK_MOD && dyn)
			return fail_at(p, op->start, "'%%' is not defined for $body values");
		kind = N_ARITH;
		type = dyn ? RT_DYN : RT_NUM;
		code = (uint8_t)p->text[op->start];
		break;
	case TK_CONCAT:
		if ((ta != RT_STR && ta != RT_DYN) || (tb != RT_STR && tb != RT_DYN))
			return operand_error(p, op, type_name(ta), type_name(tb),
					     "string and string");
		kind = N_CONCAT;
		type = RT_STR;
		break;
	case TK_AND:
	case TK_OR: {
		const char *why = logic_refusal((enum tk)op->kind, ta, tb);
		if (why && !*why)
			return operand_error(p, op, type_name(ta), type_name(tb), "bool and bool");
		if (why)
			return fail_at(p, op->start, "%s is not defined", why);
		kind = op->kind == TK_AND ? N_AND : N_OR;
		if (op->kind == TK_AND)
			type = (ta == RT_NULL || tb == RT_NULL) ? RT_NULL : RT_BOOL;
		else
			type = (ta == RT_NULL && tb == RT_NULL) ? RT_NULL : RT_BOOL;
		break;
	}
	case TK_COALESCE:
		if (!same_type(ta, tb)) {
			char want[40];
			snprintf(want, sizeof(want), "%s and %s", type_name(ta), type_name(ta));
			return operand_error(p, op, type_name(ta), type_name(tb), want);
		}
		kind = N_COALESCE;
		type = dyn ? RT_DYN : ta;
		break;
	default: {
		if (!same_type(ta, tb)) {
			char want[40];
			snprintf(want, sizeof(want), "%s and %s", type_name(ta), type_name(ta));
			return operand_error(p, op, type_name(ta), type_name(tb), want);
		}
		kind = N_CMP;
		type = RT_BOOL;
		switch (op->kind) {
		case TK_EQ:
			code = CMP_EQ;
			break;
		case TK_NE:
		case TK_LTGT:
			code = CMP_NE;
			break;
		case TK_LT:
			code = CMP_LT;
			break;
		case TK_LE:
			code = CMP_LE;
			break;
		case TK_GT:
			code = CMP_GT;
			break;
		default:
			code = CMP_GE;
			break;
		}
	}
	}
	int32_t i = new_node(p, kind, type, op->start);
	if (i < 0)
		return -1;
	struct node *n = &p->r->nodes[i];
	n->a = a;
	n->b = b;
	n->op = code;
	n->dyn = dyn;
	if (kind == N_CONCAT)
		p->r->nodes[a].next = b; /* evaluated as concat(a, b) */
	return set_depth(p, i, op->start) < 0 ? -1 : i;
}

/* Precedence climbing; every operator is left-associative. */
static int32_t expr(struct parser *p, int min_prec)
{
	if (++p->depth > ROUTE_MAX_DEPTH)
		return fail_at(p, tok(p)->start, "condition nested deeper than %d levels",
			       ROUTE_MAX_DEPTH);
	int32_t left = unary(p);
	while (left >= 0) {
		const struct token *op = tok(p);
		int prec = binary_prec((enum tk)op->kind);
		if (!prec || prec < min_prec)
			break;
		p->cur++;
		int32_t right = expr(p, prec + 1);
		if (right < 0)
			left = -1;
		else
			left = binary(p, op, left, right);
	}
	p->depth--;
	return left;
}

/* ---- route ---- */

/* The source, '/' (name | '*') repeated, as the text of those tokens; it is
 * then trimmed as edgeHub trims it (blanks, the '*'s at the end, then the
 * '/'s) and given one '/' at the end. Messages match by prefix, so
 * /messages/modules/a* takes module a, and a '*' inside the path is only a
 * character. */
static int source(struct parser *p)
{
	if (tok(p)->kind != TK_DIV)
		return expected(p, "a source path starting with '/'");
	cleanup_free char *buf = malloc(p->len + 2);
	if (!buf)
		return berr_set(p->err, ENOMEM, "route");
	size_t n = 0;
	while (tok(p)->kind == TK_DIV) {
		p->cur++;
		const struct token *t = tok(p);
		if (t->kind != TK_ID && t->kind != TK_MUL)
			return expected(p, "a path segment or '*' after '/'");
		buf[n++] = '/';
		memcpy(buf + n, p->text + t->start, t->len);
		n += t->len;
		p->cur++;
	}
	const char *s = buf;
	route_dotnet_trim(&s, &n);
	while (n && s[n - 1] == '*')
		n--;
	while (n > 1 && s[n - 1] == '/')
		n--;
	route_dotnet_trim(&s, &n);
	while (n && s[n - 1] == '/')
		n--;
	memmove(buf, s, n);
	buf[n++] = '/';
	buf[n] = '\0';
	p->r->source = buf;
	p->r->source_len = n;
	buf = NULL;
	return 0;
}

static bool name_ok(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7F || c == '+' || c == '#')
			return false;
	}
	return true;
}

/* BrokeredEndpoint("<a>/<module>/<b>/<input>") as edgeHub reads it: the
 * text between the quotes, trimmed, with one '/' dropped at each end, in
 * exactly four parts of which the second and fourth count
 * ("/modules/<m>/inputs/<i>" by convention). The names must be fit for an
 * MQTT topic, which edgeHub does not check. */
static int brokered_endpoint(struct parser *p, const struct token *t)
{
	const char *s = p->text + t->start + 1;
	size_t n = t->len - 2;
	route_dotnet_trim(&s, &n);
	if (n && *s == '/')
		s++, n--;
	if (n && s[n - 1] == '/')
		n--;
	const char *part[4];
	size_t len[4], k = 0;
	const char *start = s;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '/') {
			if (k == 4)
				goto bad;
			part[k] = start;
			len[k++] = (size_t)(s + i - start);
			start = s + i + 1;
		}
	}
	if (k != 4)
		goto bad;
	if (!name_ok(part[1], len[1]) || !name_ok(part[3], len[3]))
		return fail_at(p, t->start,
			       "the module and input of an endpoint must be non-empty, without "
			       "blanks, control characters, '+' or '#'");
	p->r->sink.kind = SINK_MODULE_INPUT;
	p->r->sink.module = strndup(part[1], len[1]);
	p->r->sink.input = strndup(part[3], len[3]);
	if (!p->r->sink.module || !p->r->sink.input)
		return berr_set(p->err, ENOMEM, "route");
	return 0;
bad:
	return fail_at(p, t->start,
		       "expected an endpoint of the form \"/modules/<module>/inputs/<input>\"");
}

static int sink(struct parser *p)
{
	const struct token *t = tok(p);
	char text[48];
	if (t->kind == TK_SYSPROP) {
		if (t->len != 9 || strncasecmp(p->text + t->start, "$upstream", 9))
			return fail_at(p, t->start,
				       "unknown sink '%s': expected $upstream or "
				       "BrokeredEndpoint(\"/modules/<module>/inputs/<input>\")",
				       token_text(p, t, text, sizeof(text)));
		p->r->sink.kind = SINK_UPSTREAM;
		p->cur++;
		return 0;
	}
	if (t->kind != TK_ID)
		return expected(p, "a sink: $upstream or BrokeredEndpoint(\"/modules/<module>/"
				   "inputs/<input>\")");
	if (t->len != 16 || strncasecmp(p->text + t->start, "BrokeredEndpoint", 16))
		return fail_at(p, t->start,
			       "unknown sink '%s': expected $upstream or "
			       "BrokeredEndpoint(\"/modules/<module>/inputs/<input>\")",
			       token_text(p, t, text, sizeof(text)));
	p->cur++;
	if (tok(p)->kind != TK_LPAREN)
		return expected(p, "'('");
	p->cur++;
	const struct token *addr = tok(p);
	if (addr->kind != TK_STRING)
		return expected(p, "a quoted endpoint \"/modules/<module>/inputs/<input>\"");
	if (brokered_endpoint(p, addr) < 0)
		return -1;
	p->cur++;
	if (tok(p)->kind != TK_RPAREN)
		return expected(p, "')'");
	p->cur++;
	return 0;
}

static int route_grammar(struct parser *p)
{
	if (tok(p)->kind == TK_SELECT) {
		p->cur++;
		if (tok(p)->kind != TK_MUL)
			return expected(p, "'*' after SELECT");
		p->cur++;
	}
	if (tok(p)->kind != TK_FROM)
		return expected(p, "FROM");
	p->cur++;
	if (source(p) < 0)
		return -1;
	if (tok(p)->kind == TK_WHERE) {
		p->cur++;
		if (tok(p)->kind == TK_INTO || tok(p)->kind == TK_EOF)
			return expected(p, "a condition after WHERE");
		p->r->root = expr(p, 1);
		if (p->r->root < 0)
			return -1;
		if (tok(p)->kind != TK_INTO)
			return expected(p, tok(p)->kind == TK_RPAREN ? "INTO (unmatched ')')"
								     : "INTO");
	} else if (tok(p)->kind != TK_INTO) {
		return expected(p, "WHERE or INTO");
	}
	p->cur++;
	/* Whatever follows the sink is not read, as in edgeHub (its grammar
	 * ends there, without an end of input). */
	return sink(p);
}

int route_parse(const char *text, struct route **out, struct berr *err)
{
	*out = NULL;
	size_t len = strnlen(text, ROUTE_TEXT_MAX + 1);
	if (len > ROUTE_TEXT_MAX)
		return berr_set(err, 0, "route is longer than %d bytes", ROUTE_TEXT_MAX);
	struct route *r = calloc(1, sizeof(*r));
	if (!r)
		return berr_set(err, ENOMEM, "route");
	r->root = -1;
	/* Every pooled string is a copy of one token plus a NUL, a $body query
	 * at most twice, a string literal's unescape at most three times its
	 * token (a stray byte becomes U+FFFD): three times the text bounds the
	 * pool, which is never moved. */
	struct parser p = {.text = text, .len = len, .r = r, .err = err, .cap_pool = 3 * len + 16};
	r->pool = malloc(p.cap_pool);
	int ret = -1;
	if (!r->pool)
		berr_set(err, ENOMEM, "route");
	else if (tokenize(&p) == 0 && route_grammar(&p) == 0 && finish(&p) == 0)
		ret = 0;
	if (ret == 0 && p.pool_full)
		ret = berr_set(err, 0, "route: string pool exhausted");
	free(p.toks);
	if (ret < 0) {
		route_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void route_free(struct route *r)
{
	if (!r)
		return;
	free(r->source);
	free(r->sink.module);
	free(r->sink.input);
	free(r->nodes);
	free(r->segs);
	free(r->queries);
	free(r->pool);
	free(r);
}

const struct route_sink *route_get_sink(const struct route *r)
{
	return &r->sink;
}
