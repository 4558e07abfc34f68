/* Numbers as a person reads them in command output. */
#ifndef BERTH_FORMAT_H
#define BERTH_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* "12.3 MB", "1.05 GB", "0.5 kB" (decimal units, as docker prints sizes). */
void format_size(uint64_t bytes, char *out, size_t cap);

#endif
