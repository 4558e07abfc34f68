/* CRC32C (Castagnoli), the checksum of the store's log records: the CPU's
 * instruction where there is one (SSE4.2 on x86-64, the CRC32 extension on
 * ARMv8), a slicing-by-8 table elsewhere. */
#ifndef BERTH_HUB_CRC32C_H
#define BERTH_HUB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over len bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* The table alone, whatever the CPU has (tests compare the two). */
uint32_t crc32c_table_only(uint32_t crc, const void *data, size_t len);

/* "sse4.2", "armv8-crc" or "table": what crc32c() runs on. */
const char *crc32c_impl(void);

#endif
