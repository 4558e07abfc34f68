/* Private to hub/: what the route compiler (route_parse.c) and evaluator
 * (route_eval.c) share, the compiled form of a route. A condition is a tree
 * of nodes kept in one array and addressed by index; every string it needs
 * (literals, property names, $body path keys) lives in one pool owned by
 * the route. */
#ifndef BERTH_HUB_ROUTE_INTERNAL_H
#define BERTH_HUB_ROUTE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/route.h"

/* Limits on one compiled route; each keeps hostile deployments from
 * exhausting the stack or memory of the hub. */
#define ROUTE_MAX_NODES	       1024  /* terms and operators in one condition */
#define ROUTE_MAX_DEPTH	       128   /* nesting of parentheses, operators and calls */
#define ROUTE_MAX_TREE	       256   /* operators on the longest path, e.g. a chain of ORs */
#define ROUTE_LITERAL_MAX      1024  /* bytes of one string literal */
#define ROUTE_BODY_PATH_MAX    32    /* segments of one $body query */
#define ROUTE_BODY_QUERIES_MAX 128   /* distinct $body queries in a route, and in a table */
#define ROUTE_EVAL_SCRATCH     16384 /* bytes of strings built while evaluating one route */

/* Static types, known when the route is compiled (as edgeHub types its
 * conditions). RT_DYN is a $body value whose type is only known per message. */
enum rtype { RT_UNDEF, RT_NULL, RT_BOOL, RT_NUM, RT_STR, RT_DYN };

/* Run-time values. A number of a static type that is NaN is stored as
 * RV_UNDEF (edgeHub's undefined double); a $body value (RT_DYN) can be a
 * NaN number, as edgeHub's QueryValue can. */
enum rvkind { RV_UNDEF, RV_NULL, RV_BOOL, RV_NUM, RV_STR };

struct rval {
	uint8_t kind; /* enum rvkind */
	bool b;	      /* RV_BOOL: the value; RV_NULL: a $body path that led nowhere */
	double num;
	const char *str; /* RV_STR: not NUL-terminated (use len); NULL for .NET's null
			    string, a property present without a value */
	size_t len;
};

enum node_kind {
	N_LIT,	    /* lit */
	N_PROP,	    /* application property `name` */
	N_SYSPROP,  /* $name: application property "$name", else system property `sys` */
	N_BODY,	    /* $body query: segments [seg, seg + nseg) */
	N_NEG,	    /* -a */
	N_NOT,	    /* NOT a */
	N_ARITH,    /* a op b, op one of + - * / % */
	N_CONCAT,   /* a || b */
	N_CMP,	    /* a op b, op an enum cmp_op */
	N_AND,	    /* a AND b */
	N_OR,	    /* a OR b */
	N_COALESCE, /* a ?? b */
	N_CALL,	    /* fn(args): first argument a, the rest linked through next */
};

enum cmp_op { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

/* Built-in functions and how they run (the signature table is in route_parse.c). */
enum fn_impl {
	FI_ABS,
	FI_EXP,
	FI_SQUARE,
	FI_CEILING,
	FI_FLOOR,
	FI_SIGN,
	FI_SQRT,
	FI_POWER,
	FI_AS_NUMBER,
	FI_IDENTITY,
	FI_IS_BOOL,
	FI_IS_DEFINED,
	FI_IS_NULL,
	FI_IS_NUMBER,
	FI_IS_STRING,
	FI_FALSE,
	FI_TRUE,
	FI_CONCAT,
	FI_LENGTH,
	FI_LOWER,
	FI_UPPER,
	FI_SUBSTRING,
	FI_INDEX_OF,
	FI_STARTS_WITH,
	FI_ENDS_WITH,
	FI_CONTAINS,
};

struct node {
	uint8_t kind; /* enum node_kind */
	uint8_t type; /* enum rtype of the result */
	uint8_t op;   /* N_ARITH: '+' '-' '*' '/' '%'; N_CMP: enum cmp_op; N_CALL: enum fn_impl */
	bool dyn;     /* an operand is RT_DYN: $body rules apply (edgeHub's QueryValue) */
	bool forced;  /* N_SYSPROP, N_BODY: {$name} or a name with brackets: no application property
		       */
	bool dead;    /* N_BODY: a query edgeHub's JSON path reader refuses: always undefined */
	int16_t sys;  /* N_SYSPROP: enum msg_sys, or -1 for a name the hub never sets */
	uint16_t nargs;		 /* N_CALL */
	int32_t a, b;		 /* operands (node indexes, -1 when absent) */
	int32_t next;		 /* next argument of the same call, or -1 */
	uint32_t name, name_len; /* N_PROP, N_SYSPROP, N_BODY: property name in the pool */
	uint32_t slot;		 /* N_BODY: index of its query in route->queries */
	uint32_t depth;		 /* height of this subtree */
	struct rval lit;	 /* N_LIT (a string points into the pool) */
};

/* One step of a $body query, as edgeHub's JSON library reads its path. */
enum seg_kind {
	SEG_FIELD,     /* .name or ['name'] */
	SEG_FIELD_ANY, /* .* : every member of an object */
	SEG_INDEX,     /* [i] (a negative index is UINT32_MAX: it matches nothing) */
	SEG_INDEX_ANY, /* [*] : every element of an array */
};

struct body_seg {
	uint8_t kind; /* enum seg_kind */
	uint32_t index;
	uint32_t key, key_len; /* in the pool */
};

/* A $body query: the steps from the top-level object to a value. With a
 * wildcard (multi) it may reach several values: none is null, more than one
 * is undefined, as for edgeHub's list of selected tokens. */
struct body_query {
	const struct body_seg *segs;
	const char *pool; /* where the segments' keys are */
	uint32_t nseg;
	bool multi;
};

struct route {
	char *source; /* normalised: no trailing '*', ends with exactly one '/' */
	size_t source_len;
	struct route_sink sink;
	int32_t root; /* condition, or -1 when there is no WHERE */
	struct node *nodes;
	size_t n_nodes;
	struct body_seg *segs;
	size_t n_segs;
	struct body_query *queries; /* distinct $body queries, in slot order */
	size_t n_queries;
	char *pool;
	size_t pool_len;
};

/* Per-message evaluation state, shared by the routes of one table so the
 * body is read at most once per message, in one pass that answers every
 * $body query of the table. */
struct route_eval_ctx {
	const struct hub_message *msg;
	const struct body_query *queries; /* of the route or the table */
	size_t n_queries;
	const uint16_t *slot_map; /* route slot -> query, NULL when they are the same */
	int body_state;		  /* 0 not read yet, 1 read, -1 unusable (values undefined) */
	char *body_utf8;	  /* the body converted from UTF-16/32 (string values point in) */
	char *owned[ROUTE_BODY_QUERIES_MAX]; /* unescaped strings that did not fit the scratch */
	struct rval values[ROUTE_BODY_QUERIES_MAX];
	uint8_t hits[ROUTE_BODY_QUERIES_MAX]; /* values a multi query reached, up to 2 */
	size_t scratch_base;		      /* scratch below this holds $body strings */
	size_t scratch_used;
	char scratch[ROUTE_EVAL_SCRATCH]; /* last, so an overrun leaves the object */
};

/* Are two sequences of n query steps the same? */
bool body_segs_equal(const struct body_seg *a, const char *pool_a, const struct body_seg *b,
		     const char *pool_b, uint32_t n);

/* ---- text as .NET sees it (route_text.c) ---- */

/* Decodes one code point (a lone surrogate in its 3-byte form too); a byte
 * that starts no valid sequence is U+FFFD. Returns the bytes used (0 at the end). */
size_t route_cp_next(const char *s, size_t n, uint32_t *cp);
/* Writes code point cp as UTF-8 (1 to 4 bytes); returns the byte count. */
size_t route_utf8_put(char *out, uint32_t cp);
bool route_is_high_surrogate(uint32_t unit);
bool route_is_low_surrogate(uint32_t unit);
/* Valid UTF-8 without surrogates. */
bool route_text_plain(const char *s, size_t n);
/* How many bytes s starts with that are ASCII. */
size_t route_ascii_prefix(const char *s, size_t n);

/* Walks a string's UTF-16 code units. */
struct route_units {
	const char *s;
	size_t n, pos;
	uint32_t pending; /* the low half of a pair */
};
void route_units_init(struct route_units *it, const char *s, size_t n);
int32_t route_units_next(struct route_units *it); /* -1 at the end */
size_t route_utf16_len(const char *s, size_t n);
/* Ordinal order (UTF-16 code units): <0, 0, >0. */
int route_text_cmp(const char *a, size_t an, const char *b, size_t bn);
/* .NET's invariant simple case mappings. */
uint32_t route_upper(uint32_t cp);
uint32_t route_lower(uint32_t cp);
/* StringComparison.OrdinalIgnoreCase equality. */
bool route_text_eq_nocase(const char *a, size_t an, const char *b, size_t bn);
/* How far a and b agree, ignoring case: *ai and *bi bytes of each. */
void route_text_common_nocase(const char *a, size_t an, const char *b, size_t bn, size_t *ai,
			      size_t *bi);
/* -?[0-9]+ within [min, max]. */
bool route_int_text(const char *s, size_t n, int64_t min, int64_t max, int64_t *out);
/* double.TryParse(s, NumberStyles.Any, CultureInfo.InvariantCulture). */
bool route_parse_number(const char *s, size_t n, double *out);
/* char.IsWhiteSpace, and string.Trim() with it. */
bool route_dotnet_space(uint32_t cp);
void route_dotnet_trim(const char **s, size_t *n);

void route_eval_init(struct route_eval_ctx *c, const struct hub_message *m,
		     const struct body_query *queries, size_t n_queries);
/* Selects the route evaluated next: its slot map into the context's queries. */
void route_eval_select(struct route_eval_ctx *c, const uint16_t *slot_map);
void route_eval_release(struct route_eval_ctx *c);
/* The condition's value as a route decision: only a true condition routes. */
bool route_eval_condition(const struct route *r, struct route_eval_ctx *c);
/* Reads the body once and fills c->values (route_body.c); sets c->body_state. */
void route_body_extract(struct route_eval_ctx *c);

#endif
