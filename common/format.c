#include "common/format.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void format_size(uint64_t v, char *out, size_t cap)
{
	if (v >= 1000ULL * 1000 * 1000)
		snprintf(out, cap, "%.2f GB", (double)v / 1e9);
	else if (v >= 1000 * 1000)
		snprintf(out, cap, "%.1f MB", (double)v / 1e6);
	else
		snprintf(out, cap, "%.1f kB", (double)v / 1e3);
}

int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	/* strtoll() would skip leading white space. */
	if (isspace((unsigned char)*s))
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
