/* The content and layer store: blobs and layers by digest, references,
 * leases, and opening an image for an instance (no network). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/encoding.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "oci/manifest.h"
#include "oci/store.h"

#define REF_FILE_MAX   8192
#define LEASE_NAME_MAX 200

static int open_dir(int at, const char *name, int *out, struct berr *err)
{
	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return berr_set(err, errno, "create %s", name);
	*out = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*out < 0)
		return berr_set(err, errno, "open %s", name);
	return 0;
}

/* write_atomic()'s work in progress: "<name>.tmp<pid>-<tid>". */
bool store_name_is_temporary(const char *name)
{
	const char *t = strrchr(name, '.');
	if (!t || strncmp(t, ".tmp", 4) || !t[4])
		return false;
	for (t += 4; *t; t++)
		if ((*t < '0' || *t > '9') && *t != '-')
			return false;
	return true;
}

/* Clears tmp/ when no pull is running (pulls hold the lock shared). */
static void clear_tmp(struct oci_store *s)
{
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return;
	struct berr e;
	cleanup_closedir DIR *d = fs_opendir_at(s->tmp_fd, "tmp", &e);
	for (struct dirent *de; d && (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    fs_remove_tree_at(s->tmp_fd, de->d_name, &e) < 0)
			fprintf(stderr, "berth: store: cannot clear tmp/%s: %s\n", de->d_name,
				e.msg);
	/* Files a killed writer left half-written (nobody writes now). */
	int dirs[] = {s->blobs_fd, s->refs_fd, s->leases_fd};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		cleanup_closedir DIR *dd = fs_opendir_at(dirs[i], "store", &e);
		for (struct dirent *de; dd && (de = readdir(dd));)
			if (store_name_is_temporary(de->d_name))
				unlinkat(dirs[i], de->d_name, 0);
	}
	flock(s->lock_fd, LOCK_UN);
}

int oci_store_open(const char *root, struct oci_store **out, struct berr *err)
{
	*out = NULL;
	if (fs_mkdir_p(root, 0755, err) < 0)
		return berr_wrap(err, "store %s", root);
	struct oci_store *s = calloc(1, sizeof(*s));
	if (!s)
		return berr_set(err, ENOMEM, "store");
	s->dir_fd = s->blobs_fd = s->layers_fd = s->refs_fd = s->leases_fd = s->tmp_fd =
	    s->lock_fd = -1;
	/* Layer paths handed to instances are absolute. */
	char abs[PATH_MAX];
	if (!realpath(root, abs)) {
		free(s);
		return berr_set(err, errno, "store %s", root);
	}
	struct strbuf p = STRBUF_INIT;
	if (strbuf_printf(&p, "%s/oci", abs) < 0) {
		free(s);
		return berr_set(err, ENOMEM, "store");
	}
	s->path = strbuf_detach(&p);
	int blobs = -1, layers = -1;
	/* 0700: layers hold setuid binaries that only instances may reach. */
	if (open_dir(AT_FDCWD, s->path, &s->dir_fd, err) < 0 ||
	    open_dir(s->dir_fd, "blobs", &blobs, err) < 0 ||
	    open_dir(blobs, "sha256", &s->blobs_fd, err) < 0 ||
	    open_dir(s->dir_fd, "layers", &layers, err) < 0 ||
	    open_dir(layers, "sha256", &s->layers_fd, err) < 0 ||
	    open_dir(s->dir_fd, "refs", &s->refs_fd, err) < 0 ||
	    open_dir(s->dir_fd, "leases", &s->leases_fd, err) < 0 ||
	    open_dir(s->dir_fd, "tmp", &s->tmp_fd, err) < 0) {
		if (blobs >= 0)
			close(blobs);
		if (layers >= 0)
			close(layers);
		berr_wrap(err, "store %s", s->path);
		oci_store_close(s);
		return -1;
	}
	close(blobs);
	close(layers);
	s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->lock_fd < 0) {
		berr_set(err, errno, "store %s: open lock", s->path);
		oci_store_close(s);
		return -1;
	}
	clear_tmp(s);
	*out = s;
	return 0;
}

void oci_store_close(struct oci_store *s)
{
	if (!s)
		return;
	int *fds[] = {&s->dir_fd,    &s->blobs_fd, &s->layers_fd, &s->refs_fd,
		      &s->leases_fd, &s->tmp_fd,   &s->lock_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	free(s->path);
	free(s);
}

int store_lock(struct oci_store *s, int how, struct berr *err)
{
	/* A lock of its own open file description: threads of one process
	 * sharing the store must exclude each other too. */
	int fd = openat(s->dir_fd, "lock", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return berr_set(err, errno, "store %s: open lock", s->path);
	while (flock(fd, how) < 0)
		if (errno != EINTR) {
			berr_set(err, errno, "store %s: lock", s->path);
			close(fd);
			return -1;
		}
	return fd;
}

void store_unlock(int lock)
{
	if (lock >= 0)
		close(lock); /* releases the flock */
}

/* Temporary file, fsync, rename, fsync the directory; the temporary name is
 * unique per thread, so pulls in threads of one process never share one. */
static int write_atomic(int dirfd, const char *name, const void *data, size_t len, struct berr *err)
{
	char tmp[NAME_MAX + 1];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d-%d", name, (int)getpid(), (int)gettid()) >=
	    (int)sizeof(tmp))
		return berr_set(err, ENAMETOOLONG, "write %s", name);
	cleanup_close int fd =
	    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berr_set(err, errno, "create %s", tmp);
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			unlinkat(dirfd, tmp, 0);
			return berr_set(err, e, "write %s", name);
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return berr_set(err, e, "write %s", name);
	}
	fsync(dirfd);
	return 0;
}

/* ---- blobs and layers ----------------------------------------------------- */

static int sha256_hex(const char *digest, const char **hex, struct berr *err)
{
	if (!digest_is_valid(digest))
		return berr_set(err, 0, "malformed digest \"%.80s\"", digest);
	if (strncmp(digest, "sha256:", 7))
		return berr_set(err, 0, "%.80s: the store keeps sha256 content only", digest);
	*hex = digest + 7;
	return 0;
}

bool store_blob_exists(struct oci_store *s, const char *digest)
{
	const char *hex;
	struct stat st;
	return sha256_hex(digest, &hex, NULL) == 0 &&
	       fstatat(s->blobs_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

int store_blob_read(struct oci_store *s, const char *digest, size_t max, char **out, size_t *len,
		    struct berr *err)
{
	const char *hex;
	if (sha256_hex(digest, &hex, err) < 0)
		return -1;
	if (fs_read_file_at(s->blobs_fd, hex, max, out, len, err) < 0) {
		if (err && err->code == ENOENT)
			return berr_set(err, ENOENT, "blob %s is not in the store", digest);
		return berr_wrap(err, "blob %s", digest);
	}
	if (digest_verify(*out, *len, digest, "stored blob", err) < 0) {
		free(*out);
		*out = NULL;
		return berr_wrap(err, "store corrupt");
	}
	return 0;
}

int store_blob_write(struct oci_store *s, const char *digest, const void *data, size_t len,
		     struct berr *err)
{
	const char *hex;
	if (sha256_hex(digest, &hex, err) < 0)
		return -1;
	if (store_blob_exists(s, digest))
		return 0;
	return write_atomic(s->blobs_fd, hex, data, len, err);
}

bool store_layer_exists(struct oci_store *s, const char *diff_id)
{
	const char *hex;
	struct stat st;
	return sha256_hex(diff_id, &hex, NULL) == 0 &&
	       fstatat(s->layers_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* ---- references ----------------------------------------------------------- */

/* Room write_atomic() needs after a name: ".tmp<pid>-<tid>". */
#define TMP_SUFFIX_MAX 20

/* One file per reference, named by its percent-encoded form, or by a hash
 * when that leaves no room for the temporary name or looks like one (a tag
 * may well be "v1.tmp5-5"). */
static int ref_file_name(const char *ref, char out[NAME_MAX + 1])
{
	int n = url_encode(ref, strlen(ref), out, NAME_MAX + 1);
	if (n > 0 && n <= NAME_MAX - TMP_SUFFIX_MAX && !store_name_is_temporary(out))
		return 0;
	char d[DIGEST_STR_MAX];
	digest_sha256(ref, strlen(ref), d);
	snprintf(out, NAME_MAX + 1, "sha256-%s", digest_hex(d));
	return 0;
}

int store_ref_write(struct oci_store *s, const struct store_ref *r, struct berr *err)
{
	char name[NAME_MAX + 1];
	ref_file_name(r->ref, name);
	yajl_gen g = json_gen_new(false);
	if (!g)
		return berr_set(err, ENOMEM, "ref");
	yajl_gen_map_open(g);
	json_gen_key_str(g, "ref", r->ref);
	json_gen_key_str(g, "digest", r->digest);
	json_gen_key_str(g, "manifest", r->manifest);
	json_gen_key_str(g, "config", r->config);
	json_gen_key_int(g, "size", (long long)r->size);
	json_gen_key_int(g, "pulled", (long long)r->pulled);
	json_gen_key_str(g, "platform", r->platform);
	yajl_gen_map_close(g);
	size_t len;
	cleanup_free char *json = json_gen_done(g, &len);
	if (!json)
		return berr_set(err, ENOMEM, "ref");
	if (write_atomic(s->refs_fd, name, json, len, err) < 0)
		return berr_wrap(err, "tag %s", r->ref);
	return 0;
}

static int ref_parse_file(const char *buf, size_t len, const char *name, struct store_ref *out,
			  struct berr *err)
{
	memset(out, 0, sizeof(*out));
	cleanup_yajl yajl_val v = NULL;
	char what[NAME_MAX + 16];
	snprintf(what, sizeof(what), "refs/%s", name);
	if (json_parse(buf, len, REF_FILE_MAX, what, &v, err) < 0)
		return -1;
	const char *ref = NULL, *digest = NULL, *manifest = NULL, *config = NULL, *plat = NULL;
	long long size = 0, pulled = 0;
	if (json_get_str(v, "ref", what, true, &ref, err) < 0 ||
	    json_get_str(v, "digest", what, true, &digest, err) < 0 ||
	    json_get_str(v, "manifest", what, true, &manifest, err) < 0 ||
	    json_get_str(v, "config", what, true, &config, err) < 0 ||
	    json_get_int(v, "size", what, false, &size, err) < 0 ||
	    json_get_int(v, "pulled", what, false, &pulled, err) < 0 ||
	    json_get_str(v, "platform", what, false, &plat, err) < 0)
		return -1;
	if (strlen(ref) >= sizeof(out->ref) || !digest_is_valid(digest) ||
	    !digest_is_valid(manifest) || !digest_is_valid(config) ||
	    (plat && strlen(plat) >= sizeof(out->platform)))
		return berr_set(err, 0, "%s: malformed", what);
	snprintf(out->ref, sizeof(out->ref), "%s", ref);
	snprintf(out->digest, sizeof(out->digest), "%s", digest);
	snprintf(out->manifest, sizeof(out->manifest), "%s", manifest);
	snprintf(out->config, sizeof(out->config), "%s", config);
	snprintf(out->platform, sizeof(out->platform), "%s", plat ? plat : "");
	out->size = size > 0 ? (uint64_t)size : 0;
	out->pulled = pulled;
	return 0;
}

int store_ref_read(struct oci_store *s, const char *ref, struct store_ref *out, struct berr *err)
{
	char name[NAME_MAX + 1];
	ref_file_name(ref, name);
	cleanup_free char *buf = NULL;
	size_t len;
	if (fs_read_file_at(s->refs_fd, name, REF_FILE_MAX, &buf, &len, err) < 0)
		return err && err->code == ENOENT ? 0 : -1;
	if (ref_parse_file(buf, len, name, out, err) < 0)
		return -1;
	return 1;
}

int store_ref_remove(struct oci_store *s, const char *ref, struct berr *err)
{
	char name[NAME_MAX + 1];
	ref_file_name(ref, name);
	if (unlinkat(s->refs_fd, name, 0) < 0)
		return berr_set(err, errno, "untag %s", ref);
	fsync(s->refs_fd);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_ref_each(struct oci_store *s, int (*fn)(const struct store_ref *ref, void *ctx),
		   void *ctx, struct berr *err)
{
	cleanup_closedir DIR *d = fs_opendir_at(s->refs_fd, "refs", err);
	if (!d)
		return -1;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || store_name_is_temporary(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				ret = berr_set(err, ENOMEM, "refs");
				goto out;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			ret = berr_set(err, ENOMEM, "refs");
			goto out;
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *buf = NULL;
		size_t len;
		struct store_ref r;
		struct berr e;
		if (fs_read_file_at(s->refs_fd, names[i], REF_FILE_MAX, &buf, &len, &e) < 0 ||
		    ref_parse_file(buf, len, names[i], &r, &e) < 0) {
			if (e.code == ENOENT)
				continue; /* removed meanwhile */
			fprintf(stderr, "berth: store: skipping refs/%s: %s\n", names[i], e.msg);
			continue;
		}
		if (fn(&r, ctx))
			break;
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

int store_tmp_create(struct oci_store *s, char name[64], int *fd, struct berr *err)
{
	unsigned char rnd[8];
	int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (rfd < 0 || read(rfd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
		if (rfd >= 0)
			close(rfd);
		return berr_set(err, errno ? errno : EIO, "random name");
	}
	close(rfd);
	snprintf(name, 64, "pull-%d-%02x%02x%02x%02x%02x%02x%02x%02x", (int)getpid(), rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (mkdirat(s->tmp_fd, name, 0700) < 0)
		return berr_set(err, errno, "create tmp/%s", name);
	*fd = openat(s->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return berr_set(err, errno, "open tmp/%s", name);
	return 0;
}

/* ---- leases --------------------------------------------------------------- */

/* A name gc would take for a half-written lease would protect nothing. */
static bool lease_name_ok(const char *name)
{
	return fs_name_is_plain(name) && strlen(name) <= LEASE_NAME_MAX && name[0] != '.' &&
	       !store_name_is_temporary(name);
}

/* Called with the store held shared, after the lease is written: an image
 * opened earlier may have lost its layers to a gc that ran between that
 * lookup and this lease. Once the lease is in place no later gc can take
 * them, so checking now closes the gap. */
static int lease_check_image(struct oci_store *s, const char *name, const char *digest,
			     struct berr *err)
{
	struct oci_image *img = NULL;
	if (oci_image_open(s, digest, &img, err) == 0) {
		oci_image_free(img);
		return 0;
	}
	unlinkat(s->leases_fd, name, 0);
	return berr_wrap(err, "lease %s: the image was removed before it could be held", name);
}

/* Renamed into place, so gc never reads half a lease, but not synced: for
 * leases that do not outlive the boot. */
static int write_renamed(int dirfd, const char *name, const char *data, size_t len,
			 struct berr *err)
{
	char tmp[LEASE_NAME_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.tmp%d", name, (int)getpid());
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return berr_set(err, errno, "create %s", tmp);
	if (write(fd, data, len) != (ssize_t)len || close(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		return berr_set(err, e, "write %s", name);
	}
	return 0;
}

static int lease_add(struct oci_store *s, const char *name, const char *digest, bool durable,
		     struct berr *err)
{
	if (!lease_name_ok(name))
		return berr_set(err, 0, "lease \"%.64s\": not a valid name", name);
	if (!digest_is_valid(digest))
		return berr_set(err, 0, "lease %s: malformed digest", name);
	int lock = store_lock(s, LOCK_SH, err);
	if (lock < 0)
		return -1;
	char line[DIGEST_STR_MAX + 1];
	int n = snprintf(line, sizeof(line), "%s\n", digest);
	int ret = durable ? write_atomic(s->leases_fd, name, line, (size_t)n, err)
			  : write_renamed(s->leases_fd, name, line, (size_t)n, err);
	if (ret < 0)
		berr_wrap(err, "lease %s", name);
	else
		ret = lease_check_image(s, name, digest, err);
	store_unlock(lock);
	return ret;
}

int oci_lease_add(struct oci_store *s, const char *name, const char *digest, struct berr *err)
{
	return lease_add(s, name, digest, true, err);
}

int oci_lease_add_ephemeral(struct oci_store *s, const char *name, const char *digest,
			    struct berr *err)
{
	return lease_add(s, name, digest, false, err);
}

int oci_lease_remove(struct oci_store *s, const char *name, struct berr *err)
{
	if (!lease_name_ok(name))
		return berr_set(err, 0, "lease \"%.64s\": not a valid name", name);
	if (unlinkat(s->leases_fd, name, 0) < 0 && errno != ENOENT)
		return berr_set(err, errno, "remove lease %s", name);
	return 0;
}

/* ---- opening an image ----------------------------------------------------- */

void oci_image_free(struct oci_image *img)
{
	if (!img)
		return;
	/* layer_dirs is NULL-terminated from the start, filled one by one. */
	strv_free_many(img->layer_dirs, img->entrypoint, img->cmd, img->env);
	free_many(img->ref, img->working_dir, img->user, img->os, img->architecture,
		  img->healthcheck, img);
}

/* From an index digest, the manifest for this machine that the store has. */
static int resolve_manifest(struct oci_store *s, const char *digest, char out[DIGEST_STR_MAX],
			    struct berr *err)
{
	cleanup_free char *body = NULL;
	size_t len;
	if (store_blob_read(s, digest, MANIFEST_MAX, &body, &len, err) < 0)
		return -1;
	enum oci_kind k = oci_document_kind("", body, len);
	if (k == OCI_KIND_MANIFEST) {
		snprintf(out, DIGEST_STR_MAX, "%s", digest);
		return 0;
	}
	if (k != OCI_KIND_INDEX)
		return berr_set(err, 0, "%s is not an image manifest or index", digest);
	struct oci_platform host;
	struct oci_descriptor d;
	oci_platform_host(&host);
	if (oci_index_select(body, len, &host, &d, err) < 0)
		return -1;
	snprintf(out, DIGEST_STR_MAX, "%s", d.digest);
	return 0;
}

/* The tag a reference names: *r parsed, name its canonical form, and 1 with
 * *sr when the store has it, 0 when not, -1 with err. */
static int tag_lookup(struct oci_store *s, const char *ref, struct image_ref *r,
		      char name[REF_STR_MAX], struct store_ref *sr, struct berr *err)
{
	if (image_ref_parse(ref, r, err) < 0)
		return -1;
	image_ref_format(r, name);
	int found = store_ref_read(s, name, sr, err);
	return found < 0 ? berr_wrap(err, "image %s", name) : found;
}

int oci_image_open(struct oci_store *s, const char *ref, struct oci_image **out, struct berr *err)
{
	*out = NULL;
	char manifest[DIGEST_STR_MAX] = "";
	char name[REF_STR_MAX];
	if (digest_is_valid(ref)) {
		snprintf(name, sizeof(name), "%s", ref);
		if (resolve_manifest(s, ref, manifest, err) < 0)
			return berr_wrap(err, "image %s", ref);
	} else {
		struct image_ref r;
		struct store_ref sr;
		int found = tag_lookup(s, ref, &r, name, &sr, err);
		if (found < 0)
			return -1;
		if (found) {
			snprintf(manifest, sizeof(manifest), "%s", sr.manifest);
		} else if (r.digest[0] && store_blob_exists(s, r.digest)) {
			if (resolve_manifest(s, r.digest, manifest, err) < 0)
				return berr_wrap(err, "image %s", name);
		} else {
			return berr_set(err, ENOENT, "image %s is not in the store (pull it first)",
					name);
		}
	}

	cleanup_free char *mbody = NULL, *cbody = NULL;
	size_t mlen, clen;
	struct oci_manifest m;
	struct oci_config c;
	if (store_blob_read(s, manifest, MANIFEST_MAX, &mbody, &mlen, err) < 0 ||
	    oci_manifest_parse(mbody, mlen, &m, err) < 0)
		return berr_wrap(err, "image %s", name);
	int ret = store_blob_read(s, m.config.digest, CONFIG_MAX, &cbody, &clen, err);
	oci_manifest_free(&m);
	if (ret < 0 || oci_config_parse(cbody, clen, &c, err) < 0)
		return berr_wrap(err, "image %s", name);

	struct oci_image *img = calloc(1, sizeof(*img));
	if (!img || !(img->ref = strdup(name)) ||
	    !(img->layer_dirs = calloc(c.n_diff_ids + 1, sizeof(char *)))) {
		oci_image_free(img);
		oci_config_free(&c);
		return berr_set(err, ENOMEM, "image %s", name);
	}
	snprintf(img->digest, sizeof(img->digest), "%s", manifest);
	for (size_t i = 0; i < c.n_diff_ids; i++) {
		if (!store_layer_exists(s, c.diff_ids[i])) {
			berr_set(
			    err, ENOENT,
			    "image %s: layer %s is missing from the store (pull the image again)",
			    name, c.diff_ids[i]);
			oci_image_free(img);
			oci_config_free(&c);
			return -1;
		}
		struct strbuf p = STRBUF_INIT;
		if (strbuf_printf(&p, "%s/layers/sha256/%s", s->path, digest_hex(c.diff_ids[i])) <
		    0) {
			oci_image_free(img);
			oci_config_free(&c);
			return berr_set(err, ENOMEM, "image %s", name);
		}
		img->layer_dirs[i] = strbuf_detach(&p);
		img->n_layers++;
	}
	/* Hand the config's fields over rather than copying them. */
	img->entrypoint = c.entrypoint;
	img->cmd = c.cmd;
	img->env = c.env;
	img->working_dir = c.working_dir;
	img->user = c.user;
	img->os = c.os;
	img->architecture = c.architecture;
	img->healthcheck = c.healthcheck;
	c.entrypoint = c.cmd = c.env = NULL;
	c.working_dir = c.user = c.os = c.architecture = c.healthcheck = NULL;
	oci_config_free(&c);
	*out = img;
	return 0;
}

/* ---- listing and untagging ------------------------------------------------ */

struct list_ctx {
	int (*fn)(const struct oci_image_info *info, void *ctx);
	void *ctx;
};

static int list_one(const struct store_ref *r, void *ctx)
{
	struct list_ctx *lc = ctx;
	struct oci_image_info info = {.ref = r->ref,
				      .digest = r->digest,
				      .manifest = r->manifest,
				      .size = r->size,
				      .pulled = r->pulled};
	return lc->fn(&info, lc->ctx);
}

int oci_image_list(struct oci_store *s, int (*fn)(const struct oci_image_info *info, void *ctx),
		   void *ctx, struct berr *err)
{
	struct list_ctx lc = {fn, ctx};
	return store_ref_each(s, list_one, &lc, err);
}

struct untag_ctx {
	struct oci_store *s;
	const char *digest;
	const char *repo; /* "domain/path", or "" for a bare digest */
	void (*fn)(const char *ref, void *ctx);
	void *ctx;
	int removed;
	struct berr *err;
	int failed;
};

static int untag_matching(const struct store_ref *r, void *ctx)
{
	struct untag_ctx *u = ctx;
	if (strcmp(r->digest, u->digest) && strcmp(r->manifest, u->digest))
		return 0;
	/* name@digest: only that repository's tags */
	size_t n = strlen(u->repo);
	if (n && (strncmp(r->ref, u->repo, n) || (r->ref[n] != ':' && r->ref[n] != '@')))
		return 0;
	if (store_ref_remove(u->s, r->ref, u->err) < 0) {
		u->failed = 1;
		return 1;
	}
	u->removed++;
	if (u->fn)
		u->fn(r->ref, u->ctx);
	return 0;
}

int oci_untag(struct oci_store *s, const char *ref, void (*fn)(const char *ref, void *ctx),
	      void *ctx, struct berr *err)
{
	char name[REF_STR_MAX];
	struct image_ref r = {0};
	if (!digest_is_valid(ref)) {
		struct store_ref sr;
		int found = tag_lookup(s, ref, &r, name, &sr, err);
		if (found < 0)
			return -1;
		if (found) {
			if (store_ref_remove(s, name, err) < 0)
				return -1;
			if (fn)
				fn(name, ctx);
			return 0;
		}
		if (!r.digest[0])
			return berr_set(err, ENOENT, "image %s is not in the store", name);
	}
	char repo[REF_DOMAIN_MAX + REF_PATH_MAX + 2] = "";
	if (r.path[0])
		snprintf(repo, sizeof(repo), "%s/%s", r.domain, r.path);
	struct untag_ctx u = {s, r.digest[0] ? r.digest : ref, repo, fn, ctx, 0, err, 0};
	if (store_ref_each(s, untag_matching, &u, err) < 0 || u.failed)
		return -1;
	if (!u.removed)
		return berr_set(err, ENOENT, "image %s is not in the store",
				r.digest[0] ? name : ref);
	return 0;
}
