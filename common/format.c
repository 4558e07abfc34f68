#include "common/format.h"

#include <stdio.h>

void format_size(uint64_t v, char *out, size_t cap)
{
	if (v >= 1000ULL * 1000 * 1000)
		snprintf(out, cap, "%.2f GB", (double)v / 1e9);
	else if (v >= 1000 * 1000)
		snprintf(out, cap, "%.1f MB", (double)v / 1e6);
	else
		snprintf(out, cap, "%.1f kB", (double)v / 1e3);
}
