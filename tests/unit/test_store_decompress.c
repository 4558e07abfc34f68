/* oci/decompress.c: every engine gives the same bytes for the same layer,
 * ends cleanly only at a complete stream, and tells bad data from a failed
 * input. Compressed data comes from the gzip and zstd tools. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/decompress.h"

struct mem {
	const unsigned char *p;
	size_t len, pos;
	size_t chunk;	  /* at most this much per read, to cross buffer edges */
	bool fail_at_end; /* the input breaks instead of ending */
};

static ssize_t mem_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct mem *m = ctx;
	size_t n = m->len - m->pos;
	if (n == 0 && m->fail_at_end)
		return berr_set(err, 0, "connection reset");
	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* Runs `cmd` on data; returns its output (malloc'd). */
static unsigned char *filter(const char *cmd, const void *data, size_t len, size_t *out_len)
{
	char in[] = "/tmp/berth-test-decomp-XXXXXX";
	int fd = mkstemp(in);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	char line[256];
	snprintf(line, sizeof(line), "%s < %s", cmd, in);
	FILE *f = popen(line, "r");
	assert_non_null(f);
	size_t cap = 1 << 16, n = 0;
	unsigned char *out = malloc(cap);
	size_t r;
	while ((r = fread(out + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap)
			out = realloc(out, cap *= 2);
	}
	assert_int_equal(pclose(f), 0);
	unlink(in);
	*out_len = n;
	return out;
}

/* A few MB of text and noise: several inflate windows and buffer refills. */
static unsigned char *sample(size_t *len)
{
	*len = 3u << 20;
	unsigned char *p = malloc(*len);
	unsigned x = 12345;
	for (size_t i = 0; i < *len; i++) {
		x = x * 1103515245 + 12345;
		p[i] = (i / 4096) % 2 ? (unsigned char)(x >> 16) : (unsigned char)("layer "[i % 6]);
	}
	return p;
}

/* Decompresses all of blob; returns 0 and the output, or -1 and err. */
static int run(enum oci_compression c, unsigned flags, struct mem *m, unsigned char **out,
	       size_t *out_len, struct berr *err, const char **engine)
{
	struct decomp_input in = {mem_read, m};
	struct decomp *d;
	assert_int_equal(decomp_open(c, &in, flags, &d, err), 0);
	if (engine)
		*engine = decomp_engine(d);
	size_t cap = 1 << 20, n = 0;
	*out = malloc(cap);
	for (;;) {
		if (n + 70000 > cap)
			*out = realloc(*out, cap *= 2);
		ssize_t r = decomp_read(d, *out + n, 70000, err);
		if (r < 0) {
			bool data = decomp_data_error(d);
			decomp_close(d);
			return data ? -2 : -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	decomp_close(d);
	*out_len = n;
	return 0;
}

static void expect_roundtrip(enum oci_compression c, unsigned flags, const unsigned char *blob,
			     size_t blob_len, const unsigned char *want, size_t want_len,
			     const char *engine_want)
{
	for (size_t chunk = 0; chunk <= 7; chunk += 7) { /* whole reads, then 7-byte reads */
		struct mem m = {blob, blob_len, 0, chunk, false};
		unsigned char *out;
		size_t n;
		struct berr err;
		const char *engine;
		if (run(c, flags, &m, &out, &n, &err, &engine) != 0)
			fail_msg("%s: %s", engine_want, err.msg);
		assert_string_equal(engine, engine_want);
		assert_int_equal(n, want_len);
		assert_memory_equal(out, want, want_len);
		free(out);
	}
}

static void gzip_engines_agree(void **state)
{
	size_t len, glen;
	unsigned char *raw = sample(&len);
	unsigned char *gz = filter("gzip -6 -c", raw, len, &glen);
#ifdef HAVE_ISAL
	expect_roundtrip(OCI_COMP_GZIP, 0, gz, glen, raw, len, "igzip");
#endif
	expect_roundtrip(OCI_COMP_GZIP, DECOMP_NO_ISAL, gz, glen, raw, len, "zlib");
	free(gz);
	free(raw);
}

static void gzip_members_concatenate(void **state)
{
	size_t la, lb;
	unsigned char *a = filter("gzip -c", "first member\n", 13, &la);
	unsigned char *b = filter("gzip -c", "second member\n", 14, &lb);
	unsigned char *both = malloc(la + lb);
	memcpy(both, a, la);
	memcpy(both + la, b, lb);
	const char *want = "first member\nsecond member\n";
#ifdef HAVE_ISAL
	expect_roundtrip(OCI_COMP_GZIP, 0, both, la + lb, (const unsigned char *)want, 27, "igzip");
#endif
	expect_roundtrip(OCI_COMP_GZIP, DECOMP_NO_ISAL, both, la + lb, (const unsigned char *)want,
			 27, "zlib");
	free(a);
	free(b);
	free(both);
}

static void expect_data_error(enum oci_compression c, unsigned flags, const unsigned char *blob,
			      size_t len, const char *why)
{
	struct mem m = {blob, len, 0, 0, false};
	unsigned char *out;
	size_t n;
	struct berr err;
	assert_int_equal(run(c, flags, &m, &out, &n, &err, NULL), -2);
	if (!strstr(err.msg, why))
		fail_msg("\"%s\" lacks \"%s\"", err.msg, why);
	free(out);
}

static void truncated_and_corrupt_gzip_are_data_errors(void **state)
{
	size_t len, glen;
	unsigned char *raw = sample(&len);
	unsigned char *gz = filter("gzip -c", raw, len, &glen);
	unsigned flags[] = {DECOMP_NO_ISAL, 0};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		expect_data_error(OCI_COMP_GZIP, flags[i], gz, glen / 2,
				  "gzip stream is truncated");
		expect_data_error(OCI_COMP_GZIP, flags[i], gz, 0, "gzip stream is truncated");
		gz[glen - 6] ^= 0xff; /* the CRC */
		expect_data_error(OCI_COMP_GZIP, flags[i], gz, glen, "gzip stream is corrupt");
		gz[glen - 6] ^= 0xff;
		unsigned char junk[] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff};
		expect_data_error(OCI_COMP_GZIP, flags[i], junk, sizeof(junk), "gzip stream is");
	}
	free(gz);
	free(raw);
}

static void zstd_frames_decompress_and_truncation_is_caught(void **state)
{
	size_t len, zlen;
	unsigned char *raw = sample(&len);
	unsigned char *zs = filter("zstd -q -c", raw, len, &zlen);
	expect_roundtrip(OCI_COMP_ZSTD, 0, zs, zlen, raw, len, "zstd");
	expect_data_error(OCI_COMP_ZSTD, 0, zs, zlen - 3, "zstd stream is truncated");
	expect_data_error(OCI_COMP_ZSTD, 0, zs, 0, "zstd stream is truncated");
	free(zs);
	free(raw);
}

static void uncompressed_layers_pass_through(void **state)
{
	const unsigned char data[] = "plain tar bytes";
	expect_roundtrip(OCI_COMP_NONE, 0, data, sizeof(data), data, sizeof(data), "none");
}

static void a_failing_input_is_not_a_data_error(void **state)
{
	size_t la;
	unsigned char *a = filter("gzip -c", "some data\n", 10, &la);
	unsigned flags[] = {DECOMP_NO_ISAL, 0};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct mem m = {a, la / 2, 0, 0, true};
		unsigned char *out;
		size_t n;
		struct berr err;
		assert_int_equal(run(OCI_COMP_GZIP, flags[i], &m, &out, &n, &err, NULL), -1);
		assert_string_equal(err.msg, "connection reset");
		free(out);
	}
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(gzip_engines_agree),
	    cmocka_unit_test(gzip_members_concatenate),
	    cmocka_unit_test(truncated_and_corrupt_gzip_are_data_errors),
	    cmocka_unit_test(zstd_frames_decompress_and_truncation_is_caught),
	    cmocka_unit_test(uncompressed_layers_pass_through),
	    cmocka_unit_test(a_failing_input_is_not_a_data_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
