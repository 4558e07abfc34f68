/* Topic names, filters and matching, from "<filter>\0<topic>": validation
 * never overruns, and matching keeps the standard's invariants. */
#include <stdlib.h>
#include <string.h>

#include "hub/mqtt_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f = (const char *)data;
	const char *nul = memchr(data, 0, size);
	size_t flen = nul ? (size_t)(nul - f) : size;
	const char *t = nul ? nul + 1 : "";
	size_t tlen = nul ? size - flen - 1 : 0;
	/* Private copies, so reading past either would be caught. */
	char *fc = malloc(flen ? flen : 1), *tc = malloc(tlen ? tlen : 1);
	memcpy(fc, f, flen);
	memcpy(tc, t, tlen);
	bool fv = mqtt_topic_filter_valid(fc, flen);
	bool tv = mqtt_topic_name_valid(tc, tlen);
	if (fv && tv) {
		bool m = mqtt_topic_matches(fc, flen, tc, tlen);
		bool wild = memchr(fc, '+', flen) || memchr(fc, '#', flen);
		/* Without wildcards a filter matches exactly its own topic. */
		if (!wild && m != (flen == tlen && !memcmp(fc, tc, flen)))
			abort();
		/* '#' matches every topic but those starting with '$'. */
		if (flen == 1 && fc[0] == '#' && m != (tc[0] != '$'))
			abort();
		/* A topic name is also a valid filter that matches itself. */
		if (!mqtt_topic_filter_valid(tc, tlen) || !mqtt_topic_matches(tc, tlen, tc, tlen))
			abort();
	}
	free(fc);
	free(tc);
	return 0;
}
