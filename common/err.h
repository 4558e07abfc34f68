/* Errors travel in an explicit out-parameter: a function returns 0 or -1 and,
 * on failure, fills a struct berr with the errno (0 if none) and a message.
 * Callers add context in front with berr_wrap(), so the line a user sees reads
 * from the outside in: "pull 127.0.0.1:5000/app:1: layer sha256:ab..: ...". */
#ifndef BERTH_ERR_H
#define BERTH_ERR_H

#include <stddef.h>

#define BERR_MSG_MAX 1024

/* On every function that returns an error: a caller that ignores it does
 * not compile (-Werror). A result a caller really has no use for is still
 * looked at ("if (f(...) < 0) log_...", or a comment saying why not). */
#define NODISCARD __attribute__((warn_unused_result))

struct berr {
	int code; /* errno, or 0 when the cause is not a system error */
	char msg[BERR_MSG_MAX];
};

/* Sets the error (replacing any previous one); returns -1. If code is not 0,
 * ": strerror(code)" is appended. err may be NULL. */
int berr_set(struct berr *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with "<context>: "; returns -1. A message
 * that would not fit loses its middle: the outermost context and the root
 * cause at the end both stay. */
int berr_wrap(struct berr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void berr_clear(struct berr *err);

#endif
