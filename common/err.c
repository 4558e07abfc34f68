#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int berr_set(struct berr *err, int code, const char *fmt, ...)
{
	if (!err)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		err->msg[0] = '\0';
	err->code = code;
	if (code) {
		size_t len = strlen(err->msg);
		if (len < sizeof(err->msg))
			snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(code));
	}
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
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return -1;
}

void berr_clear(struct berr *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
