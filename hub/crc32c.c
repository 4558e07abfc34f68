/* CRC32C, reflected polynomial 0x82F63B78, as iSCSI and ext4 use it. The
 * implementation is picked once, at the first call. */
#include "hub/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static uint32_t (*impl)(uint32_t crc, const uint8_t *p, size_t len);
static const char *impl_name;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		v ^= crc;
		crc = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
		      table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^
		      table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/* The CRC32C instructions: SSE 4.2's on x86-64, the CRC extension's on
 * ARMv8; one loop serves both. */
#if defined(__x86_64__)
#define HW_TARGET "sse4.2"
#define HW_NAME	  "sse4.2"
#define HW_CRC8	  _mm_crc32_u8
#define HW_CRC64  _mm_crc32_u64
#elif defined(__aarch64__)
#define HW_TARGET "+crc"
#define HW_NAME	  "armv8-crc"
#define HW_CRC8	  __crc32cb
#define HW_CRC64  __crc32cd
#endif

#ifdef HW_TARGET
__attribute__((target(HW_TARGET))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
							  size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = HW_CRC8(crc, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		crc = (uint32_t)HW_CRC64(crc, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = HW_CRC8(crc, *p++);
	return crc;
}

static bool hw_supported(void)
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("sse4.2");
#else
	return getauxval(AT_HWCAP) & HWCAP_CRC32;
#endif
}
#endif

static void pick(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (int t = 1; t < 8; t++)
		for (uint32_t i = 0; i < 256; i++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
	impl = crc_table;
	impl_name = "table";
#ifdef HW_TARGET
	if (hw_supported()) {
		impl = crc_hw;
		impl_name = HW_NAME;
	}
#endif
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&once, pick);
	return ~impl(~crc, data, len);
}

const char *crc32c_impl(void)
{
	pthread_once(&once, pick);
	return impl_name;
}

uint32_t crc32c_table_only(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&once, pick);
	return ~crc_table(~crc, data, len);
}
