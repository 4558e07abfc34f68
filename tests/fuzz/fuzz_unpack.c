/* Any bytes as a layer tar: layer_unpack either fails cleanly or writes a
 * layer, and in both cases nothing appears or changes outside the layer
 * directory, and the layer holds no device node but 0/0 whiteouts. The
 * scratch is <tmp>/{layer,sentinel/keep}; seeds aim relative escapes at
 * ../sentinel and absolute ones at SENTINEL_ABS.
 *
 * Input starting with "ops:" is read as a list of entries (4 bytes each:
 * type, name, link target, mode) over names chosen to collide and escape,
 * written as a well-formed tar: that reaches the unpacker's own logic far
 * more often than mutated tar headers do. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "oci/layer.h"

#define SENTINEL_ABS "/tmp/berth-fuzz-sentinel"

static char top[64], layer[96], sentinel[96];

struct mem {
	const uint8_t *data;
	size_t len, pos;
};

static ssize_t mem_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct mem *m = ctx;
	size_t n = m->len - m->pos;
	if (n > len)
		n = len;
	/* Small reads make libarchive cross buffer boundaries inside entries. */
	if (n > 3000)
		n = 3000;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void write_keep(const char *dir)
{
	char path[160];
	mkdir(dir, 0755);
	chmod(dir, 0755);
	snprintf(path, sizeof(path), "%s/keep", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fputs("untouched\n", f);
	fclose(f);
	chmod(path, 0644);
}

static int keep_intact(const char *dir)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/keep", dir);
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0755 ||
	    lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644 ||
	    st.st_size != 10 || st.st_nlink != 1)
		return 0;
	char buf[16] = {0};
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n != 10 || memcmp(buf, "untouched\n", 10))
		return 0;
	return 1;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void cleanup(void)
{
	struct berr err;
	(void)fs_remove_tree(top, &err);
	(void)fs_remove_tree(SENTINEL_ABS, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_LVL_ERROR);
	snprintf(top, sizeof(top), "/tmp/berth-fuzz-unpack-XXXXXX");
	if (!mkdtemp(top))
		abort();
	snprintf(layer, sizeof(layer), "%s/layer", top);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", top);
	write_keep(sentinel);
	write_keep(SENTINEL_ABS);
	atexit(cleanup);
	return 0;
}

/* clang-format off */
static const char *const names[] = {
	"a", "b", "a/b", "a/b/c", "a/", ".", "./", "..", "../sentinel", "../sentinel/keep",
	"../../sentinel/keep", SENTINEL_ABS, SENTINEL_ABS "/keep", SENTINEL_ABS "/new", "s",
	"s/keep", "s/new", "s/a/b", "l", "l/keep", ".wh.a", "a/.wh.b", "a/.wh..wh..opq",
	".wh..wh..opq", ".wh..", ".wh...", ".wh.", "a/.wh...", ".wh.s", "s/.wh.keep", "/",
	"a/../b", "./a/./b", "a//b", "d/e/f/g", "d", ".wh.d", "d/.wh..wh..opq", "x\ny", "",
};
/* clang-format on */
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static void octal(char *f, size_t width, unsigned long long v)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), v);
	memcpy(f, tmp, width - 1);
}

/* A ustar header (names here fit the 100-byte fields) and its data. */
static size_t put_entry(uint8_t *out, char type, const char *name, const char *link, unsigned mode,
			const char *data, size_t len)
{
	char *h = (char *)out;
	memset(h, 0, 512);
	snprintf(h, 100, "%s", name);
	octal(h + 100, 8, mode);
	octal(h + 108, 8, mode & 3);
	octal(h + 116, 8, (mode >> 2) & 3);
	octal(h + 124, 12, len);
	octal(h + 136, 12, 1600000000);
	h[156] = type;
	if (link)
		snprintf(h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6); /* magic, NUL, version "00" */
	memcpy(h + 263, "00", 2);
	octal(h + 329, 8, type == '3' || type == '4' ? 1 : 0);
	octal(h + 337, 8, type == '3' || type == '4' ? 3 : 0);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	memcpy(out + 512, data, len);
	memset(out + 512 + len, 0, (512 - len % 512) % 512);
	return 512 + (len + 511) / 512 * 512;
}

static uint8_t *build_tar(const uint8_t *ops, size_t n, size_t *len)
{
	static const char types[] = "0125634";
	n /= 4;
	if (n > 64)
		n = 64;
	uint8_t *out = calloc(n * 1024 + 1024, 1);
	if (!out)
		abort();
	size_t o = 0;
	for (size_t i = 0; i < n; i++, ops += 4) {
		char type = types[ops[0] % (sizeof(types) - 1)];
		const char *name = names[ops[1] % N_NAMES];
		const char *link = type == '1' || type == '2' ? names[ops[2] % N_NAMES] : NULL;
		unsigned mode = (ops[3] & 1 ? 04000 : 0) | 0644 | (ops[3] & 0x12);
		const char *data = type == '0' ? "pwned" : "";
		o += put_entry(out + o, type, name, link, mode, data, strlen(data));
	}
	*len = o + 1024;
	return out;
}

/* No device node but 0/0 whiteouts, no socket, whatever the input. */
static int check_node(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (S_ISBLK(st->st_mode) || S_ISSOCK(st->st_mode) ||
	    (S_ISCHR(st->st_mode) && st->st_rdev != makedev(0, 0))) {
		fprintf(stderr, "fuzz_unpack: device node %s in the layer\n", path);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *built = NULL;
	if (size >= 4 && !memcmp(data, "ops:", 4)) {
		built = build_tar(data + 4, size - 4, &size);
		data = built;
	}
	if (mkdir(layer, 0700) < 0)
		abort();
	int fd = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		abort();
	struct mem m = {data, size, 0};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	struct layer_stats stats;
	(void)layer_unpack(fd, &src, "layer fuzz", &stats, &err);
	close(fd);
	if (!keep_intact(sentinel) || count_entries(sentinel) != 1 || count_entries(top) != 2 ||
	    !keep_intact(SENTINEL_ABS) || count_entries(SENTINEL_ABS) != 1) {
		fprintf(stderr, "fuzz_unpack: something outside %s changed\n", layer);
		abort();
	}
	free(built);
	nftw(layer, check_node, 16, FTW_PHYS);
	if (fs_remove_tree(layer, &err) < 0) {
		fprintf(stderr, "fuzz_unpack: %s\n", err.msg);
		abort();
	}
	return 0;
}
