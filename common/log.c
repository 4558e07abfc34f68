#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level current_level = LOG_LVL_INFO;
static char log_name[64] = "berth";

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_set_name(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	if (level > current_level)
		return;
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s[%d]: %s: ", log_name, (int)getpid(), names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	size_t len = strlen(line);
	if (len >= sizeof(line) - 1)
		len = sizeof(line) - 2;
	/* Messages quote outside input (topics, client ids, server answers):
	 * a control character there must not start a forged line. */
	for (size_t i = (size_t)n; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[len++] = '\n';
	/* One write per line, so lines from concurrent processes do not interleave. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
