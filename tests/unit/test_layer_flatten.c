/* oci/layer_flatten.c: layers in overlay form flatten to the root
 * filesystem overlayfs would show, with metadata and hardlinks kept. */
#include "unit.h"

#include <limits.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer_tar.h"

static struct scratch S;
static char layer_paths[4][256];
static char dst[256];
static int dst_fd = -1;
static int n_layers;

static int setup(void **state)
{
	scratch_make(&S);
	n_layers = 0;
	snprintf(dst, sizeof(dst), "%s/rootfs", S.layer);
	if (mkdir(dst, 0755) < 0)
		abort();
	dst_fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return 0;
}

static int teardown(void **state)
{
	close(dst_fd);
	int intact = scratch_sentinel_intact(&S);
	scratch_remove(&S);
	if (!intact)
		fail_msg("something outside the scratch layer directory changed");
	return 0;
}

/* Unpacks t as the next layer (bottom first). */
static void layer(struct tarb *t)
{
	snprintf(layer_paths[n_layers], sizeof(layer_paths[0]), "%s/l%d", S.layer, n_layers);
	assert_int_equal(mkdir(layer_paths[n_layers], 0700), 0);
	int fd = open(layer_paths[n_layers], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tb_end(t);
	struct mem_src m = {.data = t->buf, .len = t->len, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	if (layer_unpack(fd, &src, "layer", NULL, &err) < 0)
		fail_msg("unpack: %s", err.msg);
	free(t->buf);
	close(fd);
	n_layers++;
}

static void flatten(void)
{
	const char *dirs[4];
	for (int i = 0; i < n_layers; i++)
		dirs[i] = layer_paths[i];
	struct berr err;
	if (layer_flatten(dirs, (size_t)n_layers, dst, &err) < 0)
		fail_msg("flatten: %s", err.msg);
}

static struct stat lst(const char *rel)
{
	struct stat st;
	if (fstatat(dst_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("%s: %s", rel, strerror(errno));
	return st;
}

static int exists(const char *rel)
{
	struct stat st;
	return fstatat(dst_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void assert_content(const char *rel, const char *want)
{
	char *got;
	size_t n;
	struct berr err;
	assert_int_equal(fs_read_file_at(dst_fd, rel, 1 << 20, &got, &n, &err), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(got, want, n);
	free(got);
}

static ssize_t xattr(const char *rel, const char *key, char *buf, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dst, rel);
	return lgetxattr(path, key, buf, len);
}

static void upper_file_replaces_lower_file(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "etc/", .type = '5');
	ADD(&a, .name = "etc/hostname", .data = "lower", .uid = 1);
	ADD(&a, .name = "etc/keep", .data = "keep");
	layer(&a);
	ADD(&b, .name = "etc/", .type = '5');
	ADD(&b, .name = "etc/hostname", .data = "upper", .mode = 0600, .uid = 2);
	layer(&b);
	flatten();
	assert_content("etc/hostname", "upper");
	assert_int_equal(lst("etc/hostname").st_uid, 2);
	assert_int_equal(lst("etc/hostname").st_mode & 07777, 0600);
	assert_content("etc/keep", "keep");
}

static void whiteout_removes_the_lower_entry_and_does_not_appear(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "f", .data = "f");
	ADD(&a, .name = "tree/sub/x", .data = "x");
	ADD(&a, .name = "stay", .data = "s");
	layer(&a);
	ADD(&b, .name = ".wh.f");
	ADD(&b, .name = ".wh.tree");
	ADD(&b, .name = ".wh.never-existed");
	layer(&b);
	flatten();
	assert_false(exists("f"));
	assert_false(exists("tree"));
	assert_false(exists("never-existed"));
	assert_content("stay", "s");
}

static void opaque_directory_hides_lower_content_and_keeps_its_own(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "var/", .type = '5');
	ADD(&a, .name = "var/old", .data = "old");
	ADD(&a, .name = "var/sub/deep", .data = "deep");
	layer(&a);
	ADD(&b, .name = "var/", .type = '5', .mode = 0750);
	ADD(&b, .name = "var/.wh..wh..opq");
	ADD(&b, .name = "var/new", .data = "new");
	layer(&b);
	flatten();
	assert_false(exists("var/old"));
	assert_false(exists("var/sub"));
	assert_content("var/new", "new");
	assert_int_equal(lst("var").st_mode & 07777, 0750);
	char v[8];
	assert_int_equal(xattr("var", "trusted.overlay.opaque", v, sizeof(v)), -1);
}

static void directory_over_directory_merges_and_takes_upper_metadata(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "d/", .type = '5', .mode = 0755, .uid = 1, .mtime = 1000000000,
	    .xname = {"user.lower"}, .xval = {"1"});
	ADD(&a, .name = "d/low", .data = "low");
	layer(&a);
	ADD(&b, .name = "d/", .type = '5', .mode = 0710, .uid = 2, .mtime = 1500000000,
	    .xname = {"user.upper"}, .xval = {"2"});
	ADD(&b, .name = "d/up", .data = "up");
	layer(&b);
	flatten();
	assert_content("d/low", "low");
	assert_content("d/up", "up");
	struct stat st = lst("d");
	assert_int_equal(st.st_mode & 07777, 0710);
	assert_int_equal(st.st_uid, 2);
	assert_int_equal(st.st_mtime, 1500000000);
	char v[8];
	assert_int_equal(xattr("d", "user.upper", v, sizeof(v)), 1);
	assert_int_equal(xattr("d", "user.lower", v, sizeof(v)), -1);
}

static void file_replaces_lower_directory_and_directory_replaces_lower_file(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "was-dir/x", .data = "x");
	ADD(&a, .name = "was-file", .data = "file");
	layer(&a);
	ADD(&b, .name = "was-dir", .data = "now a file");
	ADD(&b, .name = "was-file/", .type = '5');
	ADD(&b, .name = "was-file/y", .data = "y");
	layer(&b);
	flatten();
	assert_content("was-dir", "now a file");
	assert_true(S_ISDIR(lst("was-file").st_mode));
	assert_content("was-file/y", "y");
}

static void upper_directory_replaces_lower_symlink_instead_of_following_it(void **state)
{
	char out[256];
	snprintf(out, sizeof(out), "%s", S.sentinel);
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "lib", .type = '2', .link = out);
	ADD(&a, .name = "rel", .type = '2', .link = "../../../sentinel");
	layer(&a);
	ADD(&b, .name = "lib/", .type = '5');
	ADD(&b, .name = "lib/keep", .data = "pwned", .mode = 0777);
	ADD(&b, .name = "rel/", .type = '5');
	ADD(&b, .name = "rel/keep", .data = "pwned", .mode = 0777);
	layer(&b);
	flatten();
	assert_true(S_ISDIR(lst("lib").st_mode));
	assert_content("lib/keep", "pwned");
	assert_true(S_ISDIR(lst("rel").st_mode));
}

static void symlinks_are_copied_as_they_are(void **state)
{
	struct tarb a = {0};
	ADD(&a, .name = "bin/sh", .type = '2', .link = "/bin/busybox", .uid = 3, .gid = 4,
	    .mtime = 1300000000);
	ADD(&a, .name = "out", .type = '2', .link = "../sentinel/keep");
	layer(&a);
	flatten();
	char target[64] = {0};
	assert_int_equal(readlinkat(dst_fd, "bin/sh", target, sizeof(target)), 12);
	assert_string_equal(target, "/bin/busybox");
	struct stat st = lst("bin/sh");
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(st.st_gid, 4);
	assert_int_equal(st.st_mtime, 1300000000);
	assert_true(S_ISLNK(lst("out").st_mode));
}

static void hardlinks_within_a_layer_stay_hardlinks(void **state)
{
	struct tarb a = {0};
	ADD(&a, .name = "bin/busybox", .data = "ELF", .mode = 0755);
	ADD(&a, .name = "bin/sh", .type = '1', .link = "bin/busybox");
	ADD(&a, .name = "sbin/init", .type = '1', .link = "bin/busybox");
	ADD(&a, .name = "single", .data = "1");
	layer(&a);
	flatten();
	struct stat x = lst("bin/busybox"), y = lst("bin/sh"), z = lst("sbin/init");
	assert_int_equal(x.st_ino, y.st_ino);
	assert_int_equal(x.st_ino, z.st_ino);
	assert_int_equal(x.st_nlink, 3);
	assert_int_equal(lst("single").st_nlink, 1);
}

static void replacing_one_link_in_an_upper_layer_leaves_the_others(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "a", .data = "old");
	ADD(&a, .name = "b", .type = '1', .link = "a");
	ADD(&a, .name = "c", .type = '1', .link = "a");
	layer(&a);
	ADD(&b, .name = "a", .data = "new");
	layer(&b);
	flatten();
	assert_content("a", "new");
	assert_content("b", "old");
	assert_int_equal(lst("b").st_ino, lst("c").st_ino);
	assert_int_equal(lst("b").st_nlink, 2);
}

static void setuid_capabilities_and_owners_survive(void **state)
{
	static const char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};
	struct tarb a = {0};
	ADD(&a, .name = "bin/ping", .data = "ELF", .mode = 0755, .uid = 0, .gid = 0,
	    .xname = {"security.capability"}, .xval = {cap}, .xlen = {sizeof(cap)});
	ADD(&a, .name = "bin/su", .data = "ELF", .mode = 04755, .uid = 0, .gid = 0);
	ADD(&a, .name = "bin/mine", .data = "ELF", .mode = 06750, .uid = 1000, .gid = 1001);
	ADD(&a, .name = "tmp/", .type = '5', .mode = 01777);
	layer(&a);
	flatten();
	char got[64];
	assert_int_equal(xattr("bin/ping", "security.capability", got, sizeof(got)), sizeof(cap));
	assert_memory_equal(got, cap, sizeof(cap));
	assert_int_equal(lst("bin/su").st_mode & 07777, 04755);
	struct stat st = lst("bin/mine");
	assert_int_equal(st.st_mode & 07777, 06750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(lst("tmp").st_mode & 07777, 01777);
}

static void directory_and_file_mtimes_survive(void **state)
{
	struct tarb a = {0};
	ADD(&a, .name = "./", .type = '5', .mtime = 1100000000);
	ADD(&a, .name = "d/", .type = '5', .mtime = 1200000000);
	ADD(&a, .name = "d/e/", .type = '5', .mtime = 1210000000);
	ADD(&a, .name = "d/e/f", .data = "f", .mtime = 1220000000);
	layer(&a);
	flatten();
	assert_int_equal(lst("d").st_mtime, 1200000000);
	assert_int_equal(lst("d/e").st_mtime, 1210000000);
	assert_int_equal(lst("d/e/f").st_mtime, 1220000000);
	assert_int_equal(lst(".").st_mtime, 1100000000);
}

static void fifos_are_kept(void **state)
{
	struct tarb a = {0};
	ADD(&a, .name = "p", .type = '6', .mode = 0640, .uid = 9);
	layer(&a);
	flatten();
	struct stat st = lst("p");
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 9);
}

static void opaque_root_hides_every_lower_layer(void **state)
{
	struct tarb a = {0}, b = {0};
	ADD(&a, .name = "old", .data = "old");
	layer(&a);
	ADD(&b, .name = ".wh..wh..opq");
	ADD(&b, .name = "new", .data = "new");
	layer(&b);
	flatten();
	assert_false(exists("old"));
	assert_content("new", "new");
}

static void three_layers_apply_in_order(void **state)
{
	struct tarb a = {0}, b = {0}, c = {0};
	ADD(&a, .name = "x", .data = "1");
	layer(&a);
	ADD(&b, .name = ".wh.x");
	layer(&b);
	ADD(&c, .name = "x/", .type = '5');
	ADD(&c, .name = "x/y", .data = "3");
	layer(&c);
	flatten();
	assert_content("x/y", "3");
}

static void destination_must_be_empty(void **state)
{
	struct tarb a = {0};
	ADD(&a, .name = "f", .data = "f");
	layer(&a);
	assert_int_equal(mkdirat(dst_fd, "junk", 0755), 0);
	const char *dirs[1] = {layer_paths[0]};
	struct berr err;
	assert_int_equal(layer_flatten(dirs, 1, dst, &err), -1);
	assert_non_null(strstr(err.msg, dst));
	assert_false(exists("f"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(upper_file_replaces_lower_file),
	    T(whiteout_removes_the_lower_entry_and_does_not_appear),
	    T(opaque_directory_hides_lower_content_and_keeps_its_own),
	    T(directory_over_directory_merges_and_takes_upper_metadata),
	    T(file_replaces_lower_directory_and_directory_replaces_lower_file),
	    T(upper_directory_replaces_lower_symlink_instead_of_following_it),
	    T(symlinks_are_copied_as_they_are),
	    T(hardlinks_within_a_layer_stay_hardlinks),
	    T(replacing_one_link_in_an_upper_layer_leaves_the_others),
	    T(setuid_capabilities_and_owners_survive),
	    T(directory_and_file_mtimes_survive),
	    T(fifos_are_kept),
	    T(opaque_root_hides_every_lower_layer),
	    T(three_layers_apply_in_order),
	    T(destination_must_be_empty),
	};
	return cmocka_run_group_tests_name("flatten", tests, NULL, NULL);
}
