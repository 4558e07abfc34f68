/* Garbage collection: mark everything reachable from tags and leases, then
 * remove the blobs and layers nobody reaches. Runs under the store's
 * exclusive lock, so no pull is halfway through publishing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "oci/manifest.h"
#include "oci/store.h"

#define WALK_DEPTH_MAX 4

struct hexset {
	char **v;
	size_t n, cap;
	bool sorted;
};

static int hexset_add(struct hexset *s, const char *digest)
{
	if (strncmp(digest, "sha256:", 7))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(digest + 7)))
		return -1;
	s->n++;
	s->sorted = false;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool hexset_has(struct hexset *s, const char *hex)
{
	if (!s->n)
		return false;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
		s->sorted = true;
	}
	return bsearch(&hex, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

static void hexset_free(struct hexset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

struct marks {
	struct oci_store *s;
	struct hexset blobs, layers;
	bool oom;
};

/* Marks a manifest or index and everything it names that the store has. */
static void mark(struct marks *m, const char *digest, int depth)
{
	if (hexset_add(&m->blobs, digest) < 0) {
		m->oom = true;
		return;
	}
	cleanup_free char *body = NULL;
	size_t len;
	struct berr e;
	if (depth > WALK_DEPTH_MAX || !store_blob_exists(m->s, digest) ||
	    store_blob_read(m->s, digest, MANIFEST_MAX, &body, &len, &e) < 0)
		return;
	enum oci_kind k = oci_document_kind("", body, len);
	if (k == OCI_KIND_INDEX) {
		struct oci_descriptor *d;
		size_t n;
		if (oci_index_list(body, len, &d, &n, &e) < 0)
			return;
		for (size_t i = 0; i < n; i++)
			mark(m, d[i].digest, depth + 1);
		free(d);
		return;
	}
	struct oci_manifest man;
	if (k != OCI_KIND_MANIFEST || oci_manifest_parse(body, len, &man, &e) < 0)
		return;
	if (hexset_add(&m->blobs, man.config.digest) < 0)
		m->oom = true;
	cleanup_free char *cbody = NULL;
	size_t clen;
	struct oci_config c;
	if (store_blob_exists(m->s, man.config.digest) &&
	    store_blob_read(m->s, man.config.digest, CONFIG_MAX, &cbody, &clen, &e) == 0 &&
	    oci_config_parse(cbody, clen, &c, &e) == 0) {
		for (size_t i = 0; i < c.n_diff_ids; i++)
			if (hexset_add(&m->layers, c.diff_ids[i]) < 0)
				m->oom = true;
		oci_config_free(&c);
	}
	oci_manifest_free(&man);
}

static int mark_ref(const struct store_ref *r, void *ctx)
{
	struct marks *m = ctx;
	mark(m, r->digest, 0);
	mark(m, r->manifest, 0);
	return 0;
}

static int mark_leases(struct marks *m, struct berr *err)
{
	cleanup_closedir DIR *d = fs_opendir_at(m->s->leases_fd, "leases", err);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || store_name_is_temporary(de->d_name))
			continue;
		cleanup_free char *buf = NULL;
		size_t len;
		if (fs_read_file_at(m->s->leases_fd, de->d_name, DIGEST_STR_MAX + 2, &buf, &len,
				    err) < 0) {
			if (err->code == ENOENT)
				continue;
			/* An unreadable lease must keep gc from guessing. */
			return berr_wrap(err, "lease");
		}
		buf[strcspn(buf, "\n")] = '\0';
		if (!digest_is_valid(buf))
			return berr_set(err, 0, "lease %s: malformed digest", de->d_name);
		mark(m, buf, 0);
	}
	return 0;
}

static bool is_hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

static uint64_t tree_size(int dirfd, const char *name, int depth)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) ? (uint64_t)st.st_size : 0;
	if (depth > 256)
		return 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	uint64_t sum = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			sum += tree_size(fd, de->d_name, depth + 1);
	closedir(d);
	return sum;
}

static int sweep(struct marks *m, int dirfd, struct hexset *keep, bool layers,
		 void (*fn)(const char *what, uint64_t bytes, void *ctx), void *ctx,
		 uint64_t *freed, struct berr *err)
{
	cleanup_closedir DIR *d = fs_opendir_at(dirfd, "gc", err);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!is_hex64(de->d_name) || hexset_has(keep, de->d_name))
			continue;
		uint64_t size = tree_size(dirfd, de->d_name, 0);
		if (fs_remove_tree_at(dirfd, de->d_name, err) < 0)
			return -1;
		char what[DIGEST_STR_MAX + 16];
		snprintf(what, sizeof(what), "%s sha256:%s", layers ? "layer" : "blob", de->d_name);
		*freed += size;
		if (fn)
			fn(what, size, ctx);
	}
	(void)m;
	return 0;
}

int oci_gc(struct oci_store *s, void (*fn)(const char *what, uint64_t bytes, void *ctx), void *ctx,
	   uint64_t *freed, struct berr *err)
{
	*freed = 0;
	int lock = store_lock(s, LOCK_EX, err);
	if (lock < 0)
		return -1;
	struct marks m = {.s = s};
	int ret = store_ref_each(s, mark_ref, &m, err);
	if (ret == 0)
		ret = mark_leases(&m, err);
	if (ret == 0 && m.oom)
		ret = berr_set(err, ENOMEM, "gc");
	if (ret == 0)
		ret = sweep(&m, s->layers_fd, &m.layers, true, fn, ctx, freed, err);
	if (ret == 0)
		ret = sweep(&m, s->blobs_fd, &m.blobs, false, fn, ctx, freed, err);
	if (ret == 0) {
		fsync(s->layers_fd);
		fsync(s->blobs_fd);
	}
	store_unlock(lock);
	hexset_free(&m.blobs);
	hexset_free(&m.layers);
	return ret;
}
