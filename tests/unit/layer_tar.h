/* Tar streams built byte by byte for the layer tests, so hostile and
 * malformed entries can be written exactly as an attacker would, plus a
 * scratch directory with a sentinel next to the layer that must stay
 * untouched. */
#ifndef BERTH_TEST_LAYER_TAR_H
#define BERTH_TEST_LAYER_TAR_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "oci/layer.h"

#define T_MTIME 1600000000LL

struct tarb {
	unsigned char *buf;
	size_t len, cap;
};

/* One entry; zero fields get defaults (mode 0644, 0755 for directories). */
struct ent {
	const char *name;
	char type; /* '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo */
	unsigned mode;
	const char *data;
	size_t size; /* data length; strlen(data) when 0 */
	const char *link;
	unsigned uid, gid;
	long long mtime;
	const char *xname[3]; /* xattrs, written as pax SCHILY.xattr records */
	const char *xval[3];
	size_t xlen[3];
	unsigned devmajor, devminor;
};

static inline void tb_put(struct tarb *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 65536;
		while (cap < t->len + n)
			cap *= 2;
		t->buf = realloc(t->buf, cap);
		if (!t->buf)
			abort();
		t->cap = cap;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static inline void tb_pad(struct tarb *t)
{
	static const unsigned char zero[512];
	if (t->len % 512)
		tb_put(t, zero, 512 - t->len % 512);
}

static inline void tb_octal(unsigned char *f, size_t width, unsigned long long v)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), v);
	memcpy(f, tmp, width - 1);
	f[width - 1] = '\0';
}

/* A raw ustar header; names longer than the fields are cut (pax carries
 * the full ones). */
static inline void tb_header(struct tarb *t, const char *name, char type, unsigned mode,
			     unsigned uid, unsigned gid, unsigned long long size, long long mtime,
			     const char *link, unsigned devmajor, unsigned devminor)
{
	unsigned char h[512];
	memset(h, 0, sizeof(h));
	strncpy((char *)h, name, 100);
	tb_octal(h + 100, 8, mode);
	tb_octal(h + 108, 8, uid);
	tb_octal(h + 116, 8, gid);
	tb_octal(h + 124, 12, size);
	tb_octal(h + 136, 12, (unsigned long long)mtime);
	h[156] = (unsigned char)type;
	if (link)
		strncpy((char *)h + 157, link, 100);
	memcpy(h + 257, "ustar", 6); /* magic, NUL, version "00" */
	memcpy(h + 263, "00", 2);
	tb_octal(h + 329, 8, devmajor);
	tb_octal(h + 337, 8, devminor);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	tb_put(t, h, 512);
}

static inline void tb_pax_record(char *out, size_t *olen, const char *key, const char *val,
				 size_t vlen)
{
	/* "<len> key=value\n" where len counts itself. */
	size_t body = 1 + strlen(key) + 1 + vlen + 1;
	size_t n = body + 1;
	while (snprintf(NULL, 0, "%zu", n) + body != n)
		n++;
	int w = sprintf(out + *olen, "%zu %s=", n, key);
	memcpy(out + *olen + w, val, vlen);
	out[*olen + w + vlen] = '\n';
	*olen += n;
}

static inline void tb_add(struct tarb *t, struct ent e)
{
	if (!e.type)
		e.type = '0';
	if (!e.mode)
		e.mode = e.type == '5' ? 0755 : e.type == '2' ? 0777 : 0644;
	if (!e.mtime)
		e.mtime = T_MTIME;
	size_t size = e.type == '0' && e.data ? (e.size ? e.size : strlen(e.data)) : 0;
	static char pax[1 << 16];
	size_t plen = 0;
	if (strlen(e.name) > 100)
		tb_pax_record(pax, &plen, "path", e.name, strlen(e.name));
	if (e.link && strlen(e.link) > 100)
		tb_pax_record(pax, &plen, "linkpath", e.link, strlen(e.link));
	for (int i = 0; i < 3 && e.xname[i]; i++) {
		char key[300];
		snprintf(key, sizeof(key), "SCHILY.xattr.%s", e.xname[i]);
		tb_pax_record(pax, &plen, key, e.xval[i],
			      e.xlen[i] ? e.xlen[i] : strlen(e.xval[i]));
	}
	if (plen) {
		tb_header(t, "PaxHeader", 'x', 0644, 0, 0, plen, e.mtime, NULL, 0, 0);
		tb_put(t, pax, plen);
		tb_pad(t);
	}
	tb_header(t, e.name, e.type, e.mode, e.uid, e.gid, size, e.mtime, e.link, e.devmajor,
		  e.devminor);
	if (size) {
		tb_put(t, e.data, size);
		tb_pad(t);
	}
}

#define ADD(t, ...) tb_add((t), (struct ent){__VA_ARGS__})

static inline void tb_end(struct tarb *t)
{
	static const unsigned char zero[1024];
	tb_put(t, zero, sizeof(zero));
}

/* A source handing out a buffer in chunks; fail_after >= 0 makes reads
 * past that many bytes fail. */
struct mem_src {
	const unsigned char *data;
	size_t len, pos, chunk;
	long fail_after;
	size_t reads_after_end;
};

static inline ssize_t mem_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct mem_src *m = ctx;
	if (m->fail_after >= 0 && m->pos >= (size_t)m->fail_after)
		return berr_set(err, 0, "digest mismatch: expected sha256:1234, got sha256:5678");
	size_t n = m->len - m->pos;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	if (n > len)
		n = len;
	if (m->fail_after >= 0 && m->pos + n > (size_t)m->fail_after)
		n = (size_t)m->fail_after - m->pos;
	if (n == 0)
		m->reads_after_end++;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* <tmp>/layer is where layers go; <tmp>/sentinel/keep must never change. */
struct scratch {
	char top[64];
	char layer[128];
	char sentinel[128];
	int layer_fd;
};

static inline void scratch_make(struct scratch *s)
{
	snprintf(s->top, sizeof(s->top), "/tmp/berth-layer-XXXXXX");
	if (!mkdtemp(s->top))
		abort();
	snprintf(s->layer, sizeof(s->layer), "%s/layer", s->top);
	snprintf(s->sentinel, sizeof(s->sentinel), "%s/sentinel", s->top);
	if (mkdir(s->layer, 0700) < 0 || mkdir(s->sentinel, 0755) < 0)
		abort();
	char keep[160];
	snprintf(keep, sizeof(keep), "%s/keep", s->sentinel);
	FILE *f = fopen(keep, "w");
	fputs("untouched\n", f);
	fclose(f);
	chmod(keep, 0644);
	s->layer_fd = open(s->layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->layer_fd < 0)
		abort();
}

/* True when the scratch holds only layer/ and sentinel/keep as made. */
static inline int scratch_sentinel_intact(struct scratch *s)
{
	char keep[160];
	snprintf(keep, sizeof(keep), "%s/keep", s->sentinel);
	struct stat st;
	if (lstat(keep, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644 ||
	    st.st_uid != 0 || st.st_size != 10)
		return 0;
	char buf[32] = {0};
	FILE *f = fopen(keep, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n != 10 || strcmp(buf, "untouched\n"))
		return 0;
	/* Nothing else next to the layer or in the sentinel directory. */
	const char *dirs[2] = {s->top, s->sentinel};
	const int want[2] = {2, 1};
	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			return 0;
		int count = 0;
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				count++;
		closedir(d);
		if (count != want[i])
			return 0;
	}
	if (lstat(s->sentinel, &st) < 0 || (st.st_mode & 07777) != 0755)
		return 0;
	return 1;
}

static inline void scratch_remove(struct scratch *s)
{
	close(s->layer_fd);
	struct berr err;
	assert_int_equal(fs_remove_tree(s->top, &err), 0);
}

/* Unpacks t (end blocks added here) into s->layer. */
static inline int unpack_tar(struct scratch *s, struct tarb *t, struct layer_stats *stats,
			     struct berr *err)
{
	tb_end(t);
	struct mem_src m = {.data = t->buf, .len = t->len, .chunk = 7000, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	return layer_unpack(s->layer_fd, &src, "layer sha256:test", stats, err);
}

#endif
