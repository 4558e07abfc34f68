/* Numbers as a person reads them in command output and writes them in
 * command-line options. */
#ifndef BERTH_FORMAT_H
#define BERTH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* "12.3 MB", "1.05 GB", "0.5 kB" (decimal units, as docker prints sizes). */
void format_size(uint64_t bytes, char *out, size_t cap);
/* A whole decimal number from min to max and nothing else: 0, or -1 for an
 * empty string, other characters or a number out of the range. */
int parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
