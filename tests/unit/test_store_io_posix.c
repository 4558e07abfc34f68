/* The store's files in a real directory (hub/store_io_posix.c): writes go to
 * the device with O_DIRECT, widened to whole blocks, where the file system
 * allows it, and through the page cache where it does not. Whatever the
 * path, the file holds exactly what was written, a read right after a write
 * sees it, and the bytes around a write stay as they were. Over /var/tmp
 * (a disk file system; skipped with the reason where O_DIRECT is refused)
 * and /dev/shm (tmpfs: the page cache). */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "hub/store_io.h"

#define DISK_DIR       "/var/tmp"
#define TMPFS_DIR      "/dev/shm"
#define SEG_BYTES      (256 * 1024)
#define TMPFS_MAGIC_NR 0x01021994

struct fixture {
	char dir[PATH_MAX];
	struct store_io *io;
	uint64_t rng;
	unsigned writes;
	bool direct;	/* writes go with O_DIRECT */
	uint8_t *loose; /* per byte: 1 where a direct write may have left zeros */
};

#define LOOSE_MAX (4 * 1024 * 1024)
static uint32_t dio_block; /* the alignment the kernel tells, once asked */

static char why_skipped[200];

static uint32_t next_rand(struct fixture *fx)
{
	fx->rng ^= fx->rng << 13;
	fx->rng ^= fx->rng >> 7;
	fx->rng ^= fx->rng << 17;
	return (uint32_t)(fx->rng >> 16);
}

static void fill_random(struct fixture *fx, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)next_rand(fx);
}

/* Whether the kernel offers O_DIRECT on files in dir, asked the way the
 * store asks (statx STATX_DIOALIGN, then an open); why_skipped says why not. */
static bool direct_offered(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/berth-dio-probe-%d", dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		snprintf(why_skipped, sizeof(why_skipped), "cannot create a file in %s", dir);
		return false;
	}
	unlink(path);
	bool ok = false;
#ifdef STATX_DIOALIGN
	struct statx sx;
	ok = statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	     (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align;
	if (ok)
		dio_block = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
									   : sx.stx_dio_mem_align;
#endif
	close(fd);
	if (!ok)
		snprintf(why_skipped, sizeof(why_skipped),
			 "the kernel tells no O_DIRECT alignment for files in %s", dir);
	return ok;
}

static bool on_tmpfs(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC_NR;
}

static int setup_in(void **state, const char *parent)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "%s/berth-store-io-XXXXXX", parent);
	assert_non_null(mkdtemp(fx->dir));
	struct berr err;
	if (store_io_posix(fx->dir, false, &fx->io, &err) < 0)
		fail_msg("store_io_posix: %s", err.msg);
	fx->rng = 0x9e3779b97f4a7c15ull;
	fx->loose = calloc(1, LOOSE_MAX);
	assert_non_null(fx->loose);
	*state = fx;
	return 0;
}

static int setup_disk(void **state)
{
	return setup_in(state, DISK_DIR);
}

static int setup_tmpfs(void **state)
{
	return setup_in(state, TMPFS_DIR);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	fx->io->ops->destroy(fx->io);
	struct berr err;
	if (fs_remove_tree(fx->dir, &err) < 0)
		fail_msg("remove %s: %s", fx->dir, err.msg);
	free(fx->loose);
	free(fx);
	return 0;
}

/* Descriptors of this process open on dir/name, and how many of them were
 * opened with O_DIRECT (from /proc/self/fdinfo). */
static int open_on(const char *dir, const char *name, int *direct)
{
	char want[PATH_MAX], real[PATH_MAX];
	assert_non_null(realpath(dir, real));
	snprintf(want, sizeof(want), "%s/%s", real, name);
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	*direct = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char link[64], target[PATH_MAX], info[64], line[128];
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (strcmp(target, want))
			continue;
		n++;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", e->d_name);
		FILE *f = fopen(info, "r");
		assert_non_null(f);
		unsigned flags = 0;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "flags: %o", &flags) == 1 && (flags & O_DIRECT))
				(*direct)++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static int xopen(struct fixture *fx, const char *name, bool create)
{
	struct berr err;
	int h = fx->io->ops->open(fx->io, name, create, &err);
	if (h < 0)
		fail_msg("open %s: %s", name, err.msg);
	return h;
}

/* Writes p at off, then reads it straight back through the store. Every
 * third time the taken bytes are synced, and read back through the page
 * cache on a descriptor of its own too (which the direct write must have
 * left coherent); in between, reads cross runs not yet written. */
static void write_and_read_back(struct fixture *fx, int h, const uint8_t *p, size_t len,
				uint64_t off)
{
	struct berr err;
	if (fx->io->ops->pwrite(fx->io, h, p, len, off, &err) < 0)
		fail_msg("pwrite %zu at %llu: %s", len, (unsigned long long)off, err.msg);
	uint8_t *back = malloc(len ? len : 1);
	assert_non_null(back);
	ssize_t n = fx->io->ops->pread(fx->io, h, back, len, off, &err);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(back, p, len);
	if (++fx->writes % 3 == 0) {
		assert_int_equal(fx->io->ops->sync(fx->io, h, &err), 0);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", h);
		int fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		memset(back, 0, len);
		assert_int_equal(pread(fd, back, len, (off_t)off), (ssize_t)len);
		close(fd);
		assert_memory_equal(back, p, len);
	}
	free(back);
}

/* [off, off + len) was written into a file of size bytes: those bytes are
 * the model's now. A direct write inside the file (whole blocks) may leave
 * zeros from its end to the end of its last block: loose until written. */
static void wrote(struct fixture *fx, uint64_t off, size_t len, uint64_t size)
{
	memset(fx->loose + off, 0, len);
	uint64_t end = off + len;
	uint64_t stop = dio_block ? (end + dio_block - 1) / dio_block * dio_block : end;
	if (fx->direct && stop <= size)
		memset(fx->loose + end, 1, (size_t)(stop - end));
}

/* got holds [off, off + len) of the file as the model has it. */
static void as_model(struct fixture *fx, const uint8_t *model, const uint8_t *got, uint64_t off,
		     size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!fx->loose[off + i] && got[i] != model[off + i])
			fail_msg("byte %llu: %u, the model has %u", (unsigned long long)(off + i),
				 got[i], model[off + i]);
}

/* The store's read of [off, end) against the model. */
static void reads_as(struct fixture *fx, int h, const uint8_t *model, uint64_t off, uint64_t end)
{
	struct berr err;
	size_t len = (size_t)(end - off);
	uint8_t *back = malloc(len ? len : 1);
	assert_non_null(back);
	assert_int_equal(fx->io->ops->pread(fx->io, h, back, len, off, &err), (ssize_t)len);
	as_model(fx, model, back, off, len);
	free(back);
}

/* The whole file, through the page cache and (where offered) straight from
 * the device, against the model. */
static void file_is(struct fixture *fx, int h, const char *name, const uint8_t *model, size_t len)
{
	struct berr err;
	uint64_t size;
	assert_int_equal(fx->io->ops->size(fx->io, h, &size, &err), 0);
	assert_int_equal(size, len);
	assert_int_equal(fx->io->ops->sync(fx->io, h, &err), 0);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	uint8_t *got = malloc(len + 1);
	assert_non_null(got);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, len + 1, 0), (ssize_t)len);
	close(fd);
	as_model(fx, model, got, 0, len);
	free(got);
	if (len % 4096 == 0 && (fd = open(path, O_RDONLY | O_DIRECT)) >= 0) {
		void *dev = NULL;
		assert_int_equal(posix_memalign(&dev, 4096, len), 0);
		assert_int_equal(pread(fd, dev, len, 0), (ssize_t)len);
		close(fd);
		as_model(fx, model, dev, 0, len);
		free(dev);
	}
}

static void skip_without_direct(struct fixture *fx)
{
	fx->direct = true;
	if (!direct_offered(DISK_DIR)) {
		printf("    skipped: %s\n", why_skipped);
		skip();
	}
}

/* The log's way: a preallocated segment, small appends of any length, each
 * read back at once (a receiver leases it before the sync), and the header
 * at offset 0 written again after later appends. */
static void appends_into_a_preallocated_file_go_direct_and_read_back(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	int h = xopen(fx, "seg", true);
	struct berr err;
	assert_int_equal(fx->io->ops->allocate(fx->io, h, SEG_BYTES, &err), 0);
	static uint8_t model[SEG_BYTES], chunk[8192];
	memset(model, 0, sizeof(model));
	uint64_t off = 0;
	int writes = 0;
	while (off < SEG_BYTES - sizeof(chunk)) {
		size_t len = 1 + next_rand(fx) % (writes % 50 == 49 ? sizeof(chunk) : 700);
		fill_random(fx, chunk, len);
		write_and_read_back(fx, h, chunk, len, off);
		memcpy(model + off, chunk, len);
		wrote(fx, off, len, SEG_BYTES);
		reads_as(fx, h, model, off > 5000 ? off - 5000 : 0, off + len);
		off += len;
		if (++writes % 97 == 0) {
			uint8_t header[45];
			fill_random(fx, header, sizeof(header));
			write_and_read_back(fx, h, header, sizeof(header), 0);
			memcpy(model, header, sizeof(header));
			wrote(fx, 0, sizeof(header), SEG_BYTES);
		}
	}
	assert_true(writes > 500);
	int direct;
	assert_int_equal(open_on(fx->dir, "seg", &direct), 2);
	assert_int_equal(direct, 1);
	file_is(fx, h, "seg", model, SEG_BYTES);
	fx->io->ops->close(fx->io, h);
	assert_int_equal(open_on(fx->dir, "seg", &direct), 0);
}

/* A write that carries the file's end: the size is exactly its end, never
 * rounded up to a block. */
static void appends_that_grow_the_file_leave_its_size_exact(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	int h = xopen(fx, "grow", true);
	static uint8_t model[64 * 1024], chunk[3000];
	uint64_t off = 0;
	while (off + sizeof(chunk) < sizeof(model)) {
		size_t len = 1 + next_rand(fx) % sizeof(chunk);
		fill_random(fx, chunk, len);
		write_and_read_back(fx, h, chunk, len, off);
		memcpy(model + off, chunk, len);
		wrote(fx, off, len, off);
		off += len;
		uint64_t size;
		struct berr err;
		assert_int_equal(fx->io->ops->size(fx->io, h, &size, &err), 0);
		assert_int_equal(size, off);
	}
	int direct;
	assert_int_equal(open_on(fx->dir, "grow", &direct), 2);
	assert_int_equal(direct, 1);
	file_is(fx, h, "grow", model, (size_t)off);
	fx->io->ops->close(fx->io, h);
}

/* A file cut inside a block (a torn tail): a write into that last block
 * would carry the end of the file with it as a whole block; it must not. */
static void a_write_into_the_last_block_of_a_cut_file_keeps_its_size(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	static uint8_t model[8000];
	struct berr err;
	int h = xopen(fx, "cut", true);
	assert_int_equal(fx->io->ops->allocate(fx->io, h, 64 * 1024, &err), 0);
	fill_random(fx, model, sizeof(model));
	write_and_read_back(fx, h, model, sizeof(model), 0);
	wrote(fx, 0, sizeof(model), 64 * 1024);
	assert_int_equal(fx->io->ops->truncate(fx->io, h, 5000, &err), 0);
	fill_random(fx, model + 4000, 30);
	write_and_read_back(fx, h, model + 4000, 30, 4000);
	wrote(fx, 4000, 30, 5000);
	fill_random(fx, model + 4900, 50);
	write_and_read_back(fx, h, model + 4900, 50, 4900);
	wrote(fx, 4900, 50, 5000);
	file_is(fx, h, "cut", model, 5000);
	fx->io->ops->close(fx->io, h);
}

/* In a file already written, the bytes that share a block with the start
 * of a write are read first and written back as they were (those past its
 * end may become zeros: the log writes only at its end). */
static void a_write_into_written_bytes_keeps_the_bytes_before_it(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	static uint8_t model[32 * 1024], chunk[1500];
	fill_random(fx, model, sizeof(model));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/old", fx->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, model, sizeof(model), 0), 0);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	int h = xopen(fx, "old", false);
	for (int i = 0; i < 40; i++) {
		size_t len = 1 + next_rand(fx) % sizeof(chunk);
		uint64_t off = next_rand(fx) % (sizeof(model) - len);
		fill_random(fx, chunk, len);
		write_and_read_back(fx, h, chunk, len, off);
		memcpy(model + off, chunk, len);
		wrote(fx, off, len, sizeof(model));
	}
	int direct;
	assert_int_equal(open_on(fx->dir, "old", &direct), 2);
	assert_int_equal(direct, 1);
	file_is(fx, h, "old", model, sizeof(model));
	fx->io->ops->close(fx->io, h);
}

/* A handle number comes back for the next file opened: what was kept of
 * the first file's last block must not end up in the second. */
static void a_closed_files_last_block_is_not_written_into_the_next(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	static uint8_t a[700], b[300], model[SEG_BYTES];
	struct berr err;
	int h = xopen(fx, "first", true);
	assert_int_equal(fx->io->ops->allocate(fx->io, h, SEG_BYTES, &err), 0);
	fill_random(fx, a, sizeof(a));
	write_and_read_back(fx, h, a, sizeof(a), 0);
	fx->io->ops->close(fx->io, h);
	int h2 = xopen(fx, "second", true);
	assert_int_equal(h2, h);
	assert_int_equal(fx->io->ops->allocate(fx->io, h2, SEG_BYTES, &err), 0);
	fill_random(fx, b, sizeof(b));
	write_and_read_back(fx, h2, b, sizeof(b), sizeof(a));
	memset(model, 0, sizeof(model));
	memcpy(model + sizeof(a), b, sizeof(b));
	wrote(fx, sizeof(a), sizeof(b), SEG_BYTES);
	file_is(fx, h2, "second", model, SEG_BYTES);
	fx->io->ops->close(fx->io, h2);
}

/* A batch larger than the bounce buffer goes to the device in pieces. */
static void a_write_of_megabytes_goes_in_pieces(void **state)
{
	struct fixture *fx = *state;
	skip_without_direct(fx);
	const size_t total = 2 * 1024 * 1024, len = 1300 * 1024 + 77;
	uint8_t *model = calloc(1, total);
	assert_non_null(model);
	struct berr err;
	int h = xopen(fx, "big", true);
	assert_int_equal(fx->io->ops->allocate(fx->io, h, total, &err), 0);
	fill_random(fx, model + 100, 5);
	write_and_read_back(fx, h, model + 100, 5, 100);
	wrote(fx, 100, 5, total);
	fill_random(fx, model + 105, len);
	write_and_read_back(fx, h, model + 105, len, 105);
	wrote(fx, 105, len, total);
	fill_random(fx, model + 105 + len, 9);
	write_and_read_back(fx, h, model + 105 + len, 9, 105 + len);
	wrote(fx, 105 + len, 9, total);
	file_is(fx, h, "big", model, total);
	fx->io->ops->close(fx->io, h);
	free(model);
}

/* tmpfs has no device and tells no O_DIRECT alignment: the page cache,
 * with the same results. */
static void on_tmpfs_writes_go_through_the_page_cache(void **state)
{
	struct fixture *fx = *state;
	if (!on_tmpfs(TMPFS_DIR) || direct_offered(TMPFS_DIR)) {
		printf("    skipped: %s is not a tmpfs without O_DIRECT alignment\n", TMPFS_DIR);
		skip();
	}
	int h = xopen(fx, "seg", true);
	struct berr err;
	assert_int_equal(fx->io->ops->allocate(fx->io, h, SEG_BYTES, &err), 0);
	static uint8_t model[SEG_BYTES], chunk[900];
	memset(model, 0, sizeof(model));
	uint64_t off = 0;
	for (int i = 0; off + sizeof(chunk) < SEG_BYTES; i++) {
		size_t len = 1 + next_rand(fx) % sizeof(chunk);
		fill_random(fx, chunk, len);
		write_and_read_back(fx, h, chunk, len, off);
		memcpy(model + off, chunk, len);
		off += len;
		if (i % 50 == 0) {
			write_and_read_back(fx, h, chunk, 45, 0);
			memcpy(model, chunk, 45);
		}
	}
	int direct;
	assert_int_equal(open_on(fx->dir, "seg", &direct), 1);
	assert_int_equal(direct, 0);
	file_is(fx, h, "seg", model, SEG_BYTES);
	fx->io->ops->close(fx->io, h);
}

/* pwrite takes the bytes: the store reads them at once, the file has them
 * after a sync; more than the io holds (1 MiB) is written by the pwrite
 * itself. (Without the writer thread, as here, nothing else writes them.) */
static void taken_bytes_are_read_at_once_and_reach_the_file_at_a_sync(void **state)
{
	struct fixture *fx = *state;
	struct berr err;
	int h = xopen(fx, "taken", true);
	assert_int_equal(fx->io->ops->allocate(fx->io, h, 4096, &err), 0);
	static uint8_t data[1000], back[1000];
	fill_random(fx, data, sizeof(data));
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, data, sizeof(data), 100, &err), 0);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/taken", fx->dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	static const uint8_t zeros[1000];
	assert_int_equal(pread(fd, back, sizeof(back), 100), (ssize_t)sizeof(back));
	assert_memory_equal(back, zeros, sizeof(back));
	assert_int_equal(fx->io->ops->pread(fx->io, h, back, sizeof(back), 100, &err),
			 (ssize_t)sizeof(back));
	assert_memory_equal(back, data, sizeof(back));
	assert_int_equal(fx->io->ops->sync(fx->io, h, &err), 0);
	assert_int_equal(pread(fd, back, sizeof(back), 100), (ssize_t)sizeof(back));
	assert_memory_equal(back, data, sizeof(back));

	const size_t big = 5 * 1024 * 1024;
	uint8_t *more = malloc(big), *got = malloc(big);
	assert_non_null(more);
	assert_non_null(got);
	fill_random(fx, more, big);
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, more, big, 4096, &err), 0);
	assert_int_equal(pread(fd, got, big, 4096), (ssize_t)big);
	assert_memory_equal(got, more, big);
	close(fd);
	free(more);
	free(got);
	fx->io->ops->close(fx->io, h);
}

/* With its writer thread (as the hub opens it), the io writes what it took
 * without being asked. */
static void the_writer_thread_writes_taken_bytes_unasked(void **state)
{
	struct fixture *fx = *state;
	struct berr err;
	struct store_io *io;
	fx->io->ops->destroy(fx->io);
	if (store_io_posix(fx->dir, true, &io, &err) < 0)
		fail_msg("store_io_posix: %s", err.msg);
	fx->io = io;
	int h = xopen(fx, "unasked", true);
	assert_int_equal(io->ops->allocate(io, h, 64 * 1024, &err), 0);
	static uint8_t data[3000], back[3000];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/unasked", fx->dir);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	for (uint64_t off = 0; off < 30000; off += sizeof(data)) {
		fill_random(fx, data, sizeof(data));
		assert_int_equal(io->ops->pwrite(io, h, data, sizeof(data), off, &err), 0);
		bool there = false;
		for (int i = 0; i < 2000 && !there; i++) {
			assert_int_equal(pread(fd, back, sizeof(back), (off_t)off),
					 (ssize_t)sizeof(back));
			there = !memcmp(back, data, sizeof(data));
			if (!there)
				usleep(1000);
		}
		assert_true(there);
	}
	close(fd);
	io->ops->close(io, h);
}

/* A write that fails at the sync (here: past RLIMIT_FSIZE) is not tried
 * again: the sync and every later write or sync of a file open then fail,
 * until it is closed, while what was taken is still read; a file opened
 * again is written as before. */
static void after_a_failed_write_the_files_open_then_are_lost_until_closed(void **state)
{
	struct fixture *fx = *state;
	struct berr err;
	int h = xopen(fx, "big", true), other = xopen(fx, "other", true);
	const size_t len = 512 * 1024; /* under what the io holds */
	uint8_t *data = malloc(len), *back = malloc(len);
	assert_non_null(data);
	assert_non_null(back);
	fill_random(fx, data, len);
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, data, 100, 0, &err), 0);
	assert_int_equal(fx->io->ops->sync(fx->io, h, &err), 0);
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, data, len, 100, &err), 0);
	struct rlimit old, small = {256 * 1024, 256 * 1024};
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small.rlim_max = old.rlim_max;
	void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	int rc = fx->io->ops->sync(fx->io, h, &err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, was);
	assert_int_equal(rc, -1);
	assert_int_equal(err.code, EFBIG);
	assert_non_null(strstr(err.msg, "write"));
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, data, 10, 0, &err), -1);
	assert_int_equal(fx->io->ops->sync(fx->io, h, &err), -1);
	/* What was taken is still read (a receiver may have been given it). */
	assert_int_equal(fx->io->ops->pread(fx->io, h, back, len, 100, &err), (ssize_t)len);
	assert_memory_equal(back, data, len);
	assert_int_equal(fx->io->ops->pwrite(fx->io, other, data, 10, 0, &err), -1);
	assert_int_equal(err.code, EFBIG);
	fx->io->ops->close(fx->io, h);
	fx->io->ops->close(fx->io, other);
	h = xopen(fx, "big", false);
	assert_int_equal(fx->io->ops->pwrite(fx->io, h, data, len, 100, &err), 0);
	assert_int_equal(fx->io->ops->sync(fx->io, h, &err), 0);
	uint64_t size;
	assert_int_equal(fx->io->ops->size(fx->io, h, &size, &err), 0);
	assert_int_equal(size, len + 100);
	fx->io->ops->close(fx->io, h);
	free(data);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		appends_into_a_preallocated_file_go_direct_and_read_back, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(appends_that_grow_the_file_leave_its_size_exact,
					    setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(
		a_write_into_the_last_block_of_a_cut_file_keeps_its_size, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(a_write_into_written_bytes_keeps_the_bytes_before_it,
					    setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(a_closed_files_last_block_is_not_written_into_the_next,
					    setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(a_write_of_megabytes_goes_in_pieces, setup_disk,
					    teardown),
	    cmocka_unit_test_setup_teardown(on_tmpfs_writes_go_through_the_page_cache, setup_tmpfs,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		taken_bytes_are_read_at_once_and_reach_the_file_at_a_sync, setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(the_writer_thread_writes_taken_bytes_unasked,
					    setup_disk, teardown),
	    cmocka_unit_test_setup_teardown(
		after_a_failed_write_the_files_open_then_are_lost_until_closed, setup_disk,
		teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
