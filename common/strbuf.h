/* A growable byte buffer with a hard cap, for text built from outside input. */
#ifndef BERTH_STRBUF_H
#define BERTH_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf; /* always NUL-terminated when not NULL */
	size_t len;
	size_t cap;
	size_t max; /* 0: no cap */
};

#define STRBUF_INIT { NULL, 0, 0, 0 }

/* Append functions return 0, or -1 with errno ENOMEM (allocation failed) or
 * EFBIG (the cap would be exceeded); on failure the buffer is unchanged. */
int strbuf_append(struct strbuf *sb, const void *data, size_t len);
int strbuf_puts(struct strbuf *sb, const char *s);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void strbuf_reset(struct strbuf *sb);
/* Gives up the buffer to the caller (never NULL on success: "" for empty). */
char *strbuf_detach(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);

#endif
