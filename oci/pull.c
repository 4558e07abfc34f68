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

#include "common/cleanup.h"
#include "common/fs.h"
#include "oci/decompress.h"
#include "oci/layer.h"
#include "oci/manifest.h"
#include "oci/progress.h"
#include "oci/store.h"

/* Layers at a time: the number of CPUs, within these bounds. Each stream
 * adds about 0.45 MB to the peak RSS (buffers, its thread's malloc arena):
 * four took a pull over 16 MB. */
#define PARALLEL_MIN 2
#define PARALLEL_MAX 3
/* Output handed to the unpacker per read: the pages of its buffer beyond
 * this are never touched. */
#define LAYER_READ_MAX (32u << 10)

struct pull_job {
	const struct oci_descriptor *desc;
	const char *diff_id;
	uint64_t received; /* compressed bytes so far (atomic) */
	int state;	   /* PROGRESS_* (atomic) */
};

/* Writes finished layers back while the others are still being unpacked,
 * so the syncfs before publishing has little left to wait for. */
struct syncer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool pending, stop;
	int fd;
};

struct pull {
	struct oci_store *s;
	struct syncer *syncer; /* NULL: none running */
	struct registry *r;
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
	struct decomp *decomp;
	bool out_eof;
	struct digester *diff;
	unsigned char drain[16384];
};

/* The compressed side: the verified download, counted for progress. */
static ssize_t blob_input(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct layer_reader *lr = ctx;
	ssize_t n = registry_blob_read(lr->blob, buf, len, err);
	__atomic_store_n(&lr->job->received, registry_blob_received(lr->blob), __ATOMIC_RELAXED);
	return n;
}

static ssize_t layer_read(void *ctx, void *buf, size_t len, struct berr *err)
{
	struct layer_reader *lr = ctx;
	if (lr->out_eof || len == 0)
		return 0;
	if (len > LAYER_READ_MAX)
		len = LAYER_READ_MAX;
	ssize_t n = decomp_read(lr->decomp, buf, len, err);
	if (n > 0)
		digester_update(lr->diff, buf, (size_t)n);
	else if (n == 0)
		lr->out_eof = true;
	return n;
}

static void layer_reader_release(struct layer_reader *lr)
{
	decomp_close(lr->decomp);
	registry_blob_close(lr->blob);
	digester_free(lr->diff);
}

static int layer_reader_init(struct layer_reader *lr, struct pull *p, struct pull_job *job,
			     struct berr *err)
{
	memset(lr, 0, sizeof(*lr));
	lr->job = job;
	struct decomp_input in = {blob_input, lr};
	if (!(lr->diff = digester_new("sha256")))
		return berr_set(err, ENOMEM, "layer");
	if (registry_blob_open(p->r, job->desc->digest, job->desc->size, &lr->blob, err) < 0)
		return -1;
	return decomp_open(job->desc->compression, &in, 0, &lr->decomp, err);
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
	while ((n = registry_blob_read(lr->blob, lr->drain, sizeof(lr->drain), &e)) > 0)
		;
	if (n < 0 && strstr(e.msg, "digest mismatch"))
		*err = e;
}

static int pull_layer(struct pull *p, struct pull_job *job, struct berr *err)
{
	const char *hex = digest_hex(job->diff_id);
	if (mkdirat(p->tmp_fd, hex, 0755) < 0)
		return berr_set(err, errno, "layer %s: create tmp/%s", job->desc->digest, hex);
	cleanup_close int dfd =
	    openat(p->tmp_fd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return berr_set(err, errno, "layer %s: open tmp/%s", job->desc->digest, hex);
	struct layer_reader lr;
	int ret = -1;
	if (layer_reader_init(&lr, p, job, err) < 0)
		goto out;
	/* oci_pull() puts the image in front: "pull <ref>: layer <digest>: ..." */
	char what[DIGEST_STR_MAX + 8];
	snprintf(what, sizeof(what), "layer %s", job->desc->digest);
	struct layer_source src = {layer_read, &lr};
	struct layer_stats stats = {0};
	if (layer_unpack(dfd, &src, what, &stats, err) < 0)
		goto out;
	/* The tar may end before the stream does (padding, trailing members):
	 * read to the end so both digests cover everything. */
	ssize_t n;
	while ((n = layer_read(&lr, lr.drain, sizeof(lr.drain), err)) > 0)
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
	if (ret < 0 && lr.decomp && decomp_data_error(lr.decomp))
		explain_decode_failure(&lr, err);
	layer_reader_release(&lr);
	if (ret < 0 && strncmp(err->msg, "layer ", 6))
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
		if (p->syncer) {
			pthread_mutex_lock(&p->syncer->lock);
			p->syncer->pending = true;
			pthread_cond_signal(&p->syncer->wake);
			pthread_mutex_unlock(&p->syncer->lock);
		}
	}
	return NULL;
}

static void *syncer_thread(void *arg)
{
	struct syncer *sy = arg;
	pthread_mutex_lock(&sy->lock);
	for (;;) {
		while (!sy->pending && !sy->stop)
			pthread_cond_wait(&sy->wake, &sy->lock);
		if (sy->stop)
			break;
		sy->pending = false;
		pthread_mutex_unlock(&sy->lock);
		syncfs(sy->fd); /* errors are caught by the final syncfs */
		pthread_mutex_lock(&sy->lock);
	}
	pthread_mutex_unlock(&sy->lock);
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
	struct progress_ctx pc = {p, NULL, 0};
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
	size_t par = cpus < PARALLEL_MIN   ? PARALLEL_MIN
		     : cpus > PARALLEL_MAX ? PARALLEL_MAX
					   : (size_t)cpus;
	size_t n_threads = p->n_jobs < par ? p->n_jobs : par;
	pthread_t th[PARALLEL_MAX];
	size_t started = 0;
	struct syncer sy = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false,
			    p->tmp_fd};
	pthread_t sync_th;
	if (p->n_jobs > 1 && pthread_create(&sync_th, NULL, syncer_thread, &sy) == 0)
		p->syncer = &sy;
	for (size_t i = 1; i < n_threads; i++) {
		if (pthread_create(&th[started], NULL, worker, p) != 0)
			break;
		started++;
	}
	worker(p); /* this thread works too */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (p->syncer) {
		pthread_mutex_lock(&sy.lock);
		sy.stop = true;
		pthread_cond_signal(&sy.wake);
		pthread_mutex_unlock(&sy.lock);
		pthread_join(sync_th, NULL);
		p->syncer = NULL;
	}
	if (prog_running) {
		__atomic_store_n(&pc.stop, 1, __ATOMIC_RELEASE);
		pthread_join(prog, NULL);
	}
	progress_free(pc.bars);
	return p->failed ? -1 : 0;
}

/* Resolves the reference to an image manifest; *index gets the index body
 * when there was one. */
static int resolve(struct registry *r, const struct image_ref *ref, const struct oci_platform *plat,
		   char **index, size_t *index_len, char top[DIGEST_STR_MAX], char **mbody,
		   size_t *mlen, char manifest[DIGEST_STR_MAX], struct berr *err)
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
				"the image uses the deprecated Docker schema 1 manifest, which is "
				"not supported (push it again with a current tool)");
	if (k == OCI_KIND_UNKNOWN)
		return berr_set(err, 0, "unknown manifest media type \"%.100s\"",
				mt[0] ? mt : "(none)");
	if (k == OCI_KIND_MANIFEST) {
		snprintf(manifest, DIGEST_STR_MAX, "%s", top);
		*mbody = take_ptr(body);
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
	*index = take_ptr(body);
	*index_len = len;
	*mbody = take_ptr(m);
	*mlen = ml;
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

/* An image for another machine is refused unless asked for by --platform;
 * a config that names no platform is taken as it is. */
static bool platform_fits(const struct oci_config *c, const struct oci_platform *want,
			  bool explicit_platform, struct berr *err)
{
	if (!c->os || !c->architecture)
		return true;
	struct oci_platform have = {0};
	snprintf(have.os, sizeof(have.os), "%s", c->os);
	snprintf(have.arch, sizeof(have.arch), "%s", c->architecture);
	snprintf(have.variant, sizeof(have.variant), "%s", c->variant ? c->variant : "");
	/* A config without a variant fits any variant asked for. */
	struct oci_platform w = *want;
	if (!have.variant[0])
		w.variant[0] = '\0';
	if (oci_platform_score(&w, &have) > 0)
		return true;
	char h[96], ws[96];
	oci_platform_format(&have, h, sizeof(h));
	oci_platform_format(want, ws, sizeof(ws));
	berr_set(err, 0, "the image is for %s, not %s%s", h, ws,
		 explicit_platform ? "" : " (this machine; --platform pulls it anyway)");
	return false;
}

static int pull_locked(struct oci_store *s, struct registry *r, const struct image_ref *ref,
		       const char *name, const struct oci_platform *plat, bool explicit_platform,
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
	struct oci_config c = {0};
	struct pull p = {.s = s, .r = r, .tmp_fd = -1};
	pthread_mutex_init(&p.lock, NULL);
	char tmp_name[64] = "";
	int ret = -1;
	if (registry_get_blob(r, m.config.digest, m.config.size, CONFIG_MAX, &cbody, &clen, err) <
	    0) {
		berr_wrap(err, "config %s", m.config.digest);
		goto out;
	}
	if (oci_config_parse(cbody, clen, &c, err) < 0) {
		berr_wrap(err, "config %s", m.config.digest);
		goto out;
	}
	if (!platform_fits(&c, plat, explicit_platform, err)) {
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
	struct store_ref sr = {.size = size, .pulled = (int64_t)time(NULL)};
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
	struct registry_opts ro = {0};
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
		ret =
		    pull_locked(s, r, &ref, name, &plat, opts && opts->platform, opts, digest, err);
		store_unlock(lock);
	}
	registry_close(r);
	if (ret < 0)
		return berr_wrap(err, "pull %s", name);
	return 0;
}
