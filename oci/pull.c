/* Pulling an image: resolve the reference to a manifest (choosing the
 * platform from an index), fetch the config, then stream each missing layer
 * once: download, hash, decompress, hash again and unpack, a few layers in
 * parallel. Layers are unpacked under tmp/ and published (renamed into
 * layers/) only when all of them are complete and verified, followed by the
 * blobs and then the tag, so a failed or killed pull changes nothing. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/lazy.h"
#include "oci/layer.h"
#include "oci/manifest.h"
#include "oci/store.h"
#include "oci/progress.h"

#define PARALLEL_MIN 2 /* layers at a time: the number of CPUs, within these bounds */
#define PARALLEL_MAX 4
#define IN_BUF (128u << 10)
#define ZSTD_WINDOW_LOG_MAX 27 /* zstd's own default limit (128 MiB) */

struct pull_job {
	const struct oci_descriptor *desc;
	const char *diff_id;
	uint64_t received; /* compressed bytes so far (atomic) */
	int state;	   /* PROGRESS_* (atomic) */
};

struct pull {
	struct oci_store *s;
	struct registry *r;
	const char *name;
	struct pull_job *jobs;
	size_t n_jobs;
	size_t next; /* next job to take (atomic) */
	int tmp_fd;
	pthread_mutex_t lock;
	bool failed;
	struct berr err; /* the first failure */
};

/* ---- one layer: the decompressing, hashing source ----------------------- */

struct layer_reader {
	struct pull_job *job;
	struct registry_blob *blob;
	enum oci_compression comp;
	z_stream z;
	bool z_ready, gz_member_end;
	ZSTD_DCtx *zd;
	ZSTD_inBuffer zin;
	size_t zret;
	unsigned char *in;
	bool in_eof;
	bool out_eof;
	bool blob_failed;   /* the download failed (its error says why) */
	bool decode_failed; /* the decompressor refused the data */
	struct digester *diff;
};

static ssize_t fill(struct layer_reader *lr, struct berr *err)
{
	ssize_t n = registry_blob_read(lr->blob, lr->in, IN_BUF, err);
	if (n < 0) {
		lr->blob_failed = true;
		return -1;
	}
	if (n == 0)
		lr->in_eof = true;
	__atomic_store_n(&lr->job->received, registry_blob_received(lr->blob), __ATOMIC_RELAXED);
	return n;
}

static ssize_t read_gzip(struct layer_reader *lr, void *buf, size_t len, struct berr *err)
{
	for (;;) {
		if (lr->z.avail_in == 0 && !lr->in_eof) {
			ssize_t n = fill(lr, err);
			if (n < 0)
				return -1;
			lr->z.next_in = lr->in;
			lr->z.avail_in = (uInt)n;
		}
		if (lr->gz_member_end) {
			if (lr->z.avail_in == 0) {
				if (lr->in_eof)
					return 0;
				continue;
			}
			inflateReset(&lr->z); /* another gzip member follows */
			lr->gz_member_end = false;
		}
		lr->z.next_out = buf;
		lr->z.avail_out = (uInt)(len > (1u << 30) ? (1u << 30) : len);
		uInt before = lr->z.avail_out;
		int rc = inflate(&lr->z, Z_NO_FLUSH);
		size_t produced = before - lr->z.avail_out;
		if (rc == Z_STREAM_END) {
			lr->gz_member_end = true;
		} else if (rc == Z_BUF_ERROR) {
			if (lr->z.avail_in == 0 && lr->in_eof)
				return berr_set(err, 0, "gzip stream is truncated");
		} else if (rc != Z_OK) {
			return berr_set(err, 0, "gzip stream is corrupt: %s",
					lr->z.msg ? lr->z.msg : "inflate failed");
		}
		if (produced)
			return (ssize_t)produced;
		if (lr->z.avail_in == 0 && lr->in_eof && !lr->gz_member_end)
			return berr_set(err, 0, "gzip stream is truncated");
	}
}

static ssize_t read_zstd(struct layer_reader *lr, void *buf, size_t len, struct berr *err)
{
	for (;;) {
		if (lr->zin.pos == lr->zin.size && !lr->in_eof) {
			ssize_t n = fill(lr, err);
			if (n < 0)
				return -1;
			lr->zin.src = lr->in;
			lr->zin.size = (size_t)n;
			lr->zin.pos = 0;
		}
		/* A finished frame at the end of the input is the clean end. */
		if (lr->zin.pos == lr->zin.size && lr->in_eof && lr->zret == 0)
			return 0;
		ZSTD_outBuffer out = { buf, len, 0 };
		size_t ret = ZSTD_decompressStream(lr->zd, &out, &lr->zin);
		if (ZSTD_isError(ret))
			return berr_set(err, 0, "zstd stream is corrupt: %s", ZSTD_getErrorName(ret));
		lr->zret = ret;
		if (out.pos)
			return (ssize_t)out.pos;
		if (lr->zin.pos == lr->zin.size && lr->in_eof) {
			if (lr->zret != 0)
				return berr_set(err, 0, "zstd stream is truncated");
			return 0;
		}
	}
}

static ssize_t layer_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct layer_reader *lr = ctx;
	if (lr->out_eof || len == 0)
		return 0;
	ssize_t n;
	switch (lr->comp) {
	case OCI_COMP_GZIP:
		n = read_gzip(lr, buf, len, err);
		break;
	case OCI_COMP_ZSTD:
		n = read_zstd(lr, buf, len, err);
		break;
	default:
		n = registry_blob_read(lr->blob, buf, len, err);
		__atomic_store_n(&lr->job->received, registry_blob_received(lr->blob),
				 __ATOMIC_RELAXED);
		break;
	}
	if (n < 0 && lr->comp != OCI_COMP_NONE && !lr->blob_failed)
		lr->decode_failed = true;
	if (n > 0)
		digester_update(lr->diff, buf, (size_t)n);
	else if (n == 0)
		lr->out_eof = true;
	return n;
}

static void layer_reader_release(struct layer_reader *lr)
{
	if (lr->z_ready)
		inflateEnd(&lr->z);
	if (lr->zd)
		ZSTD_freeDCtx(lr->zd);
	registry_blob_close(lr->blob);
	digester_free(lr->diff);
	free(lr->in);
}

static int layer_reader_init(struct layer_reader *lr, struct pull *p, struct pull_job *job,
			     struct berr *err)
{
	memset(lr, 0, sizeof(*lr));
	lr->job = job;
	lr->comp = job->desc->compression;
	if (lr->comp == OCI_COMP_GZIP) {
		if (lazy_require(LAZY_Z, err) < 0)
			return -1;
		/* 16 + 15: gzip wrapper, largest window */
		if (inflateInit2(&lr->z, 16 + MAX_WBITS) != Z_OK)
			return berr_set(err, ENOMEM, "gzip");
		lr->z_ready = true;
	} else if (lr->comp == OCI_COMP_ZSTD) {
		if (lazy_require(LAZY_ZSTD, err) < 0)
			return -1;
		if (!(lr->zd = ZSTD_createDCtx()))
			return berr_set(err, ENOMEM, "zstd");
		lr->zret = 1; /* nothing decoded yet: an empty stream is truncated */
		ZSTD_DCtx_setParameter(lr->zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
	}
	if (!(lr->in = malloc(IN_BUF)) || !(lr->diff = digester_new("sha256")))
		return berr_set(err, ENOMEM, "layer");
	if (registry_blob_open(p->r, job->desc->digest, job->desc->size, &lr->blob, err) < 0)
		return -1;
	return 0;
}

/* ---- workers --------------------------------------------------------------- */

static void fail(struct pull *p, const struct berr *e)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = true;
		p->err = *e;
	}
	pthread_mutex_unlock(&p->lock);
	registry_cancel(p->r); /* the other layers stop soon */
}

/* Corrupt compressed data is most often the wrong blob: read the rest of
 * it so that a digest mismatch, the real cause, is what gets reported. */
static void explain_decode_failure(struct layer_reader *lr, struct berr *err)
{
	struct berr e;
	ssize_t n;
	while ((n = registry_blob_read(lr->blob, lr->in, IN_BUF, &e)) > 0)
		;
	if (n < 0 && strstr(e.msg, "digest mismatch"))
		*err = e;
}

static int pull_layer(struct pull *p, struct pull_job *job, struct berr *err)
{
	const char *hex = digest_hex(job->diff_id);
	if (mkdirat(p->tmp_fd, hex, 0755) < 0)
		return berr_set(err, errno, "layer %s: create tmp/%s", job->desc->digest, hex);
	cleanup_close int dfd = openat(p->tmp_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, errno, "layer %s: open tmp/%s", job->desc->digest, hex);
	struct layer_reader lr;
	int ret = -1;
	if (layer_reader_init(&lr, p, job, err) < 0)
		goto out;
	char what[REF_STR_MAX + 96];
	snprintf(what, sizeof(what), "image %s layer %s", p->name, job->desc->digest);
	struct layer_source src = { layer_read, &lr };
	struct layer_stats stats = { 0 };
	if (layer_unpack(dfd, &src, what, &stats, err) < 0)
		goto out;
	/* The tar may end before the stream does (padding, trailing members):
	 * read to the end so both digests cover everything. */
	char scratch[16384];
	ssize_t n;
	while ((n = layer_read(&lr, scratch, sizeof(scratch), err)) > 0)
		;
	if (n < 0)
		goto out;
	char got[DIGEST_STR_MAX];
	digester_final(lr.diff, got);
	digester_free(lr.diff);
	lr.diff = NULL;
	if (strcmp(got, job->diff_id)) {
		berr_set(err, 0, "uncompressed content is %s, not the config's diff_id %s", got,
			 job->diff_id);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0 && lr.decode_failed)
		explain_decode_failure(&lr, err);
	layer_reader_release(&lr);
	if (ret < 0 && strncmp(err->msg, "layer ", 6) && strncmp(err->msg, "image ", 6))
		berr_wrap(err, "layer %s", job->desc->digest);
	return ret;
}

static void *worker(void *arg)
{
	struct pull *p = arg;
	for (;;) {
		size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
		if (i >= p->n_jobs || __atomic_load_n(&p->failed, __ATOMIC_RELAXED))
			break;
		struct pull_job *job = &p->jobs[i];
		__atomic_store_n(&job->state, PROGRESS_ACTIVE, __ATOMIC_RELAXED);
		struct berr e;
		if (pull_layer(p, job, &e) < 0) {
			__atomic_store_n(&job->state, PROGRESS_FAILED, __ATOMIC_RELAXED);
			fail(p, &e);
			break;
		}
		__atomic_store_n(&job->state, PROGRESS_DONE, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* ---- progress -------------------------------------------------------------- */

struct progress_ctx {
	struct pull *p;
	struct progress *bars;
	volatile int stop;
};

static void progress_update(struct progress_ctx *pc)
{
	for (size_t i = 0; i < pc->p->n_jobs; i++) {
		struct pull_job *j = &pc->p->jobs[i];
		progress_set(pc->bars, i, __atomic_load_n(&j->state, __ATOMIC_RELAXED),
			     __atomic_load_n(&j->received, __ATOMIC_RELAXED));
	}
	progress_draw(pc->bars);
}

static void *progress_thread(void *arg)
{
	struct progress_ctx *pc = arg;
	while (!__atomic_load_n(&pc->stop, __ATOMIC_ACQUIRE)) {
		progress_update(pc);
		usleep(150 * 1000);
	}
	progress_update(pc);
	return NULL;
}

/* ---- the pull --------------------------------------------------------------- */

static int run_jobs(struct pull *p, const struct oci_pull_opts *opts)
{
	struct progress_ctx pc = { p, NULL, 0 };
	pthread_t prog;
	bool prog_running = false;
	if (opts && opts->progress && p->n_jobs && isatty(STDERR_FILENO)) {
		pc.bars = progress_new(p->n_jobs);
		for (size_t i = 0; pc.bars && i < p->n_jobs; i++)
			progress_label(pc.bars, i, p->jobs[i].desc->digest, p->jobs[i].desc->size);
		if (pc.bars && pthread_create(&prog, NULL, progress_thread, &pc) == 0)
			prog_running = true;
	}
	/* Unpacking is CPU-bound on a local network: more streams than cores
	 * only leave the last layer alone at the end, and cost memory. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t par = cpus < PARALLEL_MIN ? PARALLEL_MIN
		     : cpus > PARALLEL_MAX ? PARALLEL_MAX : (size_t)cpus;
	size_t n_threads = p->n_jobs < par ? p->n_jobs : par;
	pthread_t th[PARALLEL_MAX];
	size_t started = 0;
	for (size_t i = 1; i < n_threads; i++) {
		if (pthread_create(&th[started], NULL, worker, p) != 0)
			break;
		started++;
	}
	worker(p); /* this thread works too */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (prog_running) {
		__atomic_store_n(&pc.stop, 1, __ATOMIC_RELEASE);
		pthread_join(prog, NULL);
	}
	progress_free(pc.bars);
	return p->failed ? -1 : 0;
}

/* Resolves the reference to an image manifest; *index gets the index body
 * when there was one. */
static int resolve(struct registry *r, const struct image_ref *ref,
		   const struct oci_platform *plat, char **index, size_t *index_len,
		   char top[DIGEST_STR_MAX], char **mbody, size_t *mlen,
		   char manifest[DIGEST_STR_MAX], struct berr *err)
{
	char mt[MEDIA_TYPE_MAX];
	cleanup_free char *body = NULL;
	size_t len;
	*index = NULL;
	if (registry_get_manifest(r, ref->digest[0] ? ref->digest : ref->tag, &body, &len, mt, top,
				  err) < 0)
		return berr_wrap(err, "manifest");
	enum oci_kind k = oci_document_kind(mt, body, len);
	if (k == OCI_KIND_SCHEMA1)
		return berr_set(err, 0,
				"the image uses the deprecated Docker schema 1 manifest, which is not supported (push it again with a current tool)");
	if (k == OCI_KIND_UNKNOWN)
		return berr_set(err, 0, "unknown manifest media type \"%.100s\"",
				mt[0] ? mt : "(none)");
	if (k == OCI_KIND_MANIFEST) {
		snprintf(manifest, DIGEST_STR_MAX, "%s", top);
		*mbody = body;
		body = NULL;
		*mlen = len;
		return 0;
	}
	struct oci_descriptor d;
	if (oci_index_select(body, len, plat, &d, err) < 0)
		return -1;
	cleanup_free char *m = NULL;
	size_t ml;
	char got[DIGEST_STR_MAX];
	if (registry_get_manifest(r, d.digest, &m, &ml, mt, got, err) < 0)
		return berr_wrap(err, "manifest %s", d.digest);
	k = oci_document_kind(mt, m, ml);
	if (k != OCI_KIND_MANIFEST)
		return berr_set(err, 0, "manifest %s: expected an image manifest, got \"%.100s\"",
				d.digest, mt[0] ? mt : "(none)");
	snprintf(manifest, DIGEST_STR_MAX, "%s", d.digest);
	*index = body;
	*index_len = len;
	body = NULL;
	*mbody = m;
	*mlen = ml;
	m = NULL;
	return 0;
}

static int larger_first(const void *a, const void *b)
{
	const struct pull_job *x = a, *y = b;
	return x->desc->size < y->desc->size ? 1 : x->desc->size > y->desc->size ? -1 : 0;
}

static int publish_layers(struct pull *p, struct berr *err)
{
	if (p->n_jobs && syncfs(p->tmp_fd) < 0)
		return berr_set(err, errno, "sync the store");
	for (size_t i = 0; i < p->n_jobs; i++) {
		const char *hex = digest_hex(p->jobs[i].diff_id);
		if (renameat(p->tmp_fd, hex, p->s->layers_fd, hex) == 0)
			continue;
		if (errno != EEXIST && errno != ENOTEMPTY)
			return berr_set(err, errno, "publish layer %s", p->jobs[i].diff_id);
		/* Another pull published the same layer meanwhile. */
		if (fs_remove_tree_at(p->tmp_fd, hex, err) < 0)
			return -1;
	}
	if (p->n_jobs && fsync(p->s->layers_fd) < 0)
		return berr_set(err, errno, "sync layers/");
	return 0;
}

static int pull_locked(struct oci_store *s, struct registry *r, const struct image_ref *ref,
		       const char *name, const struct oci_platform *plat,
		       const struct oci_pull_opts *opts, char top[DIGEST_STR_MAX], struct berr *err)
{
	cleanup_free char *index = NULL, *mbody = NULL, *cbody = NULL;
	size_t index_len = 0, mlen = 0, clen = 0;
	char manifest[DIGEST_STR_MAX];
	if (resolve(r, ref, plat, &index, &index_len, top, &mbody, &mlen, manifest, err) < 0)
		return -1;
	struct oci_manifest m;
	if (oci_manifest_parse(mbody, mlen, &m, err) < 0)
		return berr_wrap(err, "manifest %s", manifest);
	struct oci_config c = { 0 };
	struct pull p = { .s = s, .r = r, .name = name, .tmp_fd = -1 };
	pthread_mutex_init(&p.lock, NULL);
	char tmp_name[64] = "";
	int ret = -1;
	if (registry_get_blob(r, m.config.digest, m.config.size, CONFIG_MAX, &cbody, &clen, err) < 0) {
		berr_wrap(err, "config %s", m.config.digest);
		goto out;
	}
	if (oci_config_parse(cbody, clen, &c, err) < 0) {
		berr_wrap(err, "config %s", m.config.digest);
		goto out;
	}
	if (c.n_diff_ids != m.n_layers) {
		berr_set(err, 0, "manifest %s has %zu layers but its config lists %zu diff_ids",
			 manifest, m.n_layers, c.n_diff_ids);
		goto out;
	}

	p.jobs = calloc(m.n_layers + 1, sizeof(*p.jobs));
	if (!p.jobs) {
		berr_set(err, ENOMEM, "pull");
		goto out;
	}
	uint64_t size = m.config.size;
	for (size_t i = 0; i < m.n_layers; i++) {
		size += m.layers[i].size;
		if (strncmp(c.diff_ids[i], "sha256:", 7)) {
			berr_set(err, 0, "config: diff_id %s is not sha256", c.diff_ids[i]);
			goto out;
		}
		if (store_layer_exists(s, c.diff_ids[i]))
			continue;
		bool queued = false;
		for (size_t j = 0; j < p.n_jobs && !queued; j++)
			queued = !strcmp(p.jobs[j].diff_id, c.diff_ids[i]);
		if (queued)
			continue;
		p.jobs[p.n_jobs].desc = &m.layers[i];
		p.jobs[p.n_jobs].diff_id = c.diff_ids[i];
		p.n_jobs++;
	}

	/* Largest first, so the last layer to finish is a small one. */
	qsort(p.jobs, p.n_jobs, sizeof(*p.jobs), larger_first);
	if (p.n_jobs) {
		if (store_tmp_create(s, tmp_name, &p.tmp_fd, err) < 0)
			goto out;
		if (run_jobs(&p, opts) < 0) {
			*err = p.err;
			goto out;
		}
		if (publish_layers(&p, err) < 0)
			goto out;
	}
	if ((index && store_blob_write(s, top, index, index_len, err) < 0) ||
	    store_blob_write(s, manifest, mbody, mlen, err) < 0 ||
	    store_blob_write(s, m.config.digest, cbody, clen, err) < 0)
		goto out;
	struct store_ref sr = { .size = size, .pulled = (int64_t)time(NULL) };
	snprintf(sr.ref, sizeof(sr.ref), "%s", name);
	snprintf(sr.digest, sizeof(sr.digest), "%s", top);
	snprintf(sr.manifest, sizeof(sr.manifest), "%s", manifest);
	snprintf(sr.config, sizeof(sr.config), "%s", m.config.digest);
	oci_platform_format(plat, sr.platform, sizeof(sr.platform));
	if (store_ref_write(s, &sr, err) < 0)
		goto out;
	ret = 0;
out:
	if (p.tmp_fd >= 0) {
		close(p.tmp_fd);
		struct berr e;
		if (fs_remove_tree_at(s->tmp_fd, tmp_name, &e) < 0)
			fprintf(stderr, "berth: %s\n", e.msg);
	}
	pthread_mutex_destroy(&p.lock);
	free(p.jobs);
	oci_config_free(&c);
	oci_manifest_free(&m);
	return ret;
}

int oci_pull(struct oci_store *s, const char *refstr, const struct oci_pull_opts *opts,
	     char digest[DIGEST_STR_MAX], struct berr *err)
{
	struct image_ref ref;
	char name[REF_STR_MAX];
	if (image_ref_parse(refstr, &ref, err) < 0)
		return berr_wrap(err, "pull");
	image_ref_format(&ref, name);
	struct oci_platform plat;
	if (opts && opts->platform) {
		if (oci_platform_parse(opts->platform, &plat, err) < 0)
			return berr_wrap(err, "pull %s", name);
	} else {
		oci_platform_host(&plat);
	}
	struct registry_opts ro = { 0 };
	if (opts) {
		ro.insecure = opts->insecure;
		ro.username = opts->username;
		ro.password = opts->password;
		ro.ca_file = opts->ca_file;
		ro.timeout = opts->timeout;
	}
	struct registry *r;
	if (registry_open(&ref, &ro, &r, err) < 0)
		return berr_wrap(err, "pull %s", name);
	int ret = -1;
	int lock = store_lock(s, LOCK_SH, err);
	if (lock >= 0) {
		ret = pull_locked(s, r, &ref, name, &plat, opts, digest, err);
		store_unlock(lock);
	}
	registry_close(r);
	if (ret < 0 && !strncmp(err->msg, "image ", 6))
		return berr_wrap(err, "pull"); /* the unpacker named the image already */
	if (ret < 0)
		return berr_wrap(err, "pull %s", name);
	return 0;
}
