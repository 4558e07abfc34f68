#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ELLIPSIS "..."

/* a + sep + b into out (BERR_MSG_MAX). When that is too long the middle
 * goes: the start (the outermost context) and the end (the root cause) stay,
 * joined by "...", cut at UTF-8 character boundaries. */
static void join(char *out, const char *a, const char *sep, const char *b)
{
	char full[3 * BERR_MSG_MAX];
	if (snprintf(full, sizeof(full), "%s%s%s", a, sep, b) < 0)
		full[0] = '\0';
	size_t len = strlen(full), room = BERR_MSG_MAX - 1;
	if (len <= room) {
		memcpy(out, full, len + 1);
		return;
	}
	size_t head = room / 3, tail = room - head - strlen(ELLIPSIS);
	while (head && ((unsigned char)full[head] & 0xc0) == 0x80)
		head--; /* full[head] continues a character: cut before it starts */
	const char *t = full + len - tail;
	while (*t && ((unsigned char)*t & 0xc0) == 0x80)
		t++;
	memcpy(out, full, head);
	memcpy(out + head, ELLIPSIS, strlen(ELLIPSIS));
	memcpy(out + head + strlen(ELLIPSIS), t, strlen(t) + 1);
}

int berr_set(struct berr *err, int code, const char *fmt, ...)
{
	if (!err)
		return -1;
	char msg[2 * BERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	err->code = code;
	join(err->msg, msg, code ? ": " : "", code ? strerror(code) : "");
	return -1;
}

int berr_wrap(struct berr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	char prefix[BERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	char old[BERR_MSG_MAX];
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	join(err->msg, prefix, ": ", old);
	return -1;
}

void berr_clear(struct berr *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
