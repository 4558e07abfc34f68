/* oci_export(): an image's flattened root filesystem from the store, and a
 * gc started meanwhile waiting for it instead of removing its layers.
 *
 * The export is held still at a chosen point by a fanotify permission event
 * on one of its layer files (root only, as the pull tests), so the test
 * sees the gc waiting rather than hoping for a slow enough export. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "oci/oci.h"
#include "oci/store.h"

#define REF "127.0.0.1:5000/app:1"

struct fixture {
	char root[64];
	char dst[96];
	char layer_file[256];
	char layer_dir[256];
	struct oci_store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/berth-export-XXXXXX");
	if (!f || !mkdtemp(f->root))
		return -1;
	snprintf(f->dst, sizeof(f->dst), "%s/rootfs", f->root);
	struct berr err;
	if (oci_store_open(f->root, &f->s, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	oci_store_close(f->s);
	struct berr err;
	assert_int_equal(fs_remove_tree(f->root, &err), 0);
	free(f);
	return 0;
}

static void write_file_at(int dirfd, const char *name, const char *data)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

/* A tagged one-layer image whose layer holds etc/hostname and etc/motd. */
static void add_image(struct fixture *f)
{
	char diff_id[DIGEST_STR_MAX], cfg_d[DIGEST_STR_MAX], man_d[DIGEST_STR_MAX];
	char cfg[512], man[1024];
	digest_sha256("the layer", 9, diff_id);
	snprintf(cfg, sizeof(cfg), "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
		 diff_id);
	digest_sha256(cfg, strlen(cfg), cfg_d);
	snprintf(man, sizeof(man),
		 "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
		 "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
		 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
		 "\"digest\":\"%s\",\"size\":1}]}",
		 cfg_d, strlen(cfg), diff_id);
	digest_sha256(man, strlen(man), man_d);
	struct berr err;
	assert_int_equal(store_blob_write(f->s, cfg_d, cfg, strlen(cfg), &err), 0);
	assert_int_equal(store_blob_write(f->s, man_d, man, strlen(man), &err), 0);
	snprintf(f->layer_dir, sizeof(f->layer_dir), "%s/oci/layers/sha256/%s", f->root,
		 digest_hex(diff_id));
	char etc[300];
	snprintf(etc, sizeof(etc), "%s/etc", f->layer_dir);
	assert_int_equal(fs_mkdir_p(etc, 0755, &err), 0);
	int fd = open(etc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	write_file_at(fd, "hostname", "box\n");
	write_file_at(fd, "motd", "hello\n");
	close(fd);
	snprintf(f->layer_file, sizeof(f->layer_file), "%s/etc/hostname", f->layer_dir);
	struct store_ref r = {.size = 1, .pulled = 1};
	snprintf(r.ref, sizeof(r.ref), "%s", REF);
	snprintf(r.digest, sizeof(r.digest), "%s", man_d);
	snprintf(r.manifest, sizeof(r.manifest), "%s", man_d);
	snprintf(r.config, sizeof(r.config), "%s", cfg_d);
	assert_int_equal(store_ref_write(f->s, &r, &err), 0);
}

static void assert_file(const char *dir, const char *name, const char *want)
{
	char p[256], *data;
	size_t len;
	struct berr err;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (fs_read_file(p, 4096, &data, &len, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(data, want);
	free(data);
}

static void export_writes_the_image_root_into_a_new_directory(void **state)
{
	struct fixture *f = *state;
	add_image(f);
	struct berr err;
	if (oci_export(f->s, REF, f->dst, &err) < 0)
		fail_msg("%s", err.msg);
	assert_file(f->dst, "etc/hostname", "box\n");
	assert_file(f->dst, "etc/motd", "hello\n");
}

static void export_of_a_missing_image_names_it_and_writes_nothing(void **state)
{
	struct fixture *f = *state;
	struct berr err;
	assert_int_equal(oci_export(f->s, "127.0.0.1:5000/none:1", f->dst, &err), -1);
	assert_non_null(strstr(err.msg, "image 127.0.0.1:5000/none:1 is not in the store"));
	assert_int_equal(access(f->dst, F_OK), -1);
}

/* ---- a gc during an export ------------------------------------------------ */

struct export_run {
	struct fixture *f;
	int ret;
	struct berr err;
};

static void *export_thread(void *arg)
{
	struct export_run *x = arg;
	x->ret = oci_export(x->f->s, REF, x->f->dst, &x->err);
	return NULL;
}

struct gc_run {
	struct oci_store *s;
	int ret;
	int done;
	struct berr err;
};

static void *gc_thread(void *arg)
{
	struct gc_run *g = arg;
	uint64_t freed;
	g->ret = oci_gc(g->s, NULL, NULL, &freed, &g->err);
	__atomic_store_n(&g->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void gc_waits_for_an_export_in_progress(void **state)
{
	struct fixture *f = *state;
	add_image(f);
	/* Every open of etc/hostname waits for this test's answer. */
	int fan = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_CLOEXEC);
	if (fan < 0)
		fail_msg("fanotify_init: %s (the test needs root and fanotify permission events)",
			 strerror(errno));
	assert_int_equal(fanotify_mark(fan, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, f->layer_file),
			 0);

	struct export_run x = {.f = f};
	pthread_t ex;
	assert_int_equal(pthread_create(&ex, NULL, export_thread, &x), 0);
	struct pollfd pfd = {fan, POLLIN, 0};
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	struct fanotify_event_metadata ev;
	assert_int_equal(read(fan, &ev, sizeof(ev)), (ssize_t)sizeof(ev));
	assert_true(ev.mask & FAN_OPEN_PERM);
	/* The export is now halfway, held at the open of one of its files. */

	struct oci_store *s2;
	struct berr err;
	assert_int_equal(oci_store_open(f->root, &s2, &err), 0);
	assert_int_equal(oci_untag(s2, REF, NULL, NULL, &err), 0);
	struct gc_run g = {.s = s2};
	pthread_t gc;
	assert_int_equal(pthread_create(&gc, NULL, gc_thread, &g), 0);
	struct timespec pause = {0, 300 * 1000 * 1000};
	nanosleep(&pause, NULL);
	int gc_done_early = __atomic_load_n(&g.done, __ATOMIC_ACQUIRE);
	int layer_there = access(f->layer_dir, F_OK) == 0;

	struct fanotify_response allow = {ev.fd, FAN_ALLOW};
	assert_int_equal(write(fan, &allow, sizeof(allow)), (ssize_t)sizeof(allow));
	close(ev.fd);
	pthread_join(ex, NULL);
	pthread_join(gc, NULL);
	close(fan);
	oci_store_close(s2);

	assert_false(gc_done_early);
	assert_true(layer_there);
	if (x.ret < 0)
		fail_msg("export: %s", x.err.msg);
	assert_file(f->dst, "etc/hostname", "box\n");
	assert_file(f->dst, "etc/motd", "hello\n");
	/* Once the export was done the untagged image went. */
	if (g.ret < 0)
		fail_msg("gc: %s", g.err.msg);
	assert_int_equal(access(f->layer_dir, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(export_writes_the_image_root_into_a_new_directory,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(export_of_a_missing_image_names_it_and_writes_nothing,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_waits_for_an_export_in_progress, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
