/* oci/unpack.c: layers land in overlay form with their metadata, and no
 * entry reaches outside the layer directory. */
#include "unit.h"

#include <dirent.h>
#include <limits.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "layer_tar.h"
#include "oci/layer_meta.h"

static struct scratch S;

static int setup(void **state)
{
	scratch_make(&S);
	return 0;
}

/* Every test ends with the sentinel next to the layer as it was. */
static int teardown(void **state)
{
	int intact = scratch_sentinel_intact(&S);
	scratch_remove(&S);
	if (!intact)
		fail_msg("something outside the layer directory changed");
	return 0;
}

static struct stat lst(const char *rel)
{
	struct stat st;
	if (fstatat(S.layer_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("%s: %s", rel, strerror(errno));
	return st;
}

static int exists(const char *rel)
{
	struct stat st;
	return fstatat(S.layer_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void assert_content(const char *rel, const char *want, size_t len)
{
	char *got;
	size_t n;
	struct berr err;
	assert_int_equal(fs_read_file_at(S.layer_fd, rel, 1 << 20, &got, &n, &err), 0);
	assert_int_equal(n, len);
	assert_memory_equal(got, want, len);
	free(got);
}

static int is_whiteout(const char *rel)
{
	struct stat st = lst(rel);
	return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

static int is_opaque(const char *rel)
{
	char path[512], v[8];
	snprintf(path, sizeof(path), "%s/%s", S.layer, rel);
	ssize_t n = lgetxattr(path, "trusted.overlay.opaque", v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static void expect_ok(struct tarb *t)
{
	struct berr err = {0};
	struct layer_stats stats;
	int r = unpack_tar(&S, t, &stats, &err);
	free(t->buf);
	if (r < 0)
		fail_msg("unpack failed: %s", err.msg);
}

/* The unpack fails and the message names the layer and each of words. */
static void expect_fail(struct tarb *t, const char *w1, const char *w2)
{
	struct berr err = {0};
	int r = unpack_tar(&S, t, NULL, &err);
	free(t->buf);
	if (r == 0)
		fail_msg("unpack succeeded; expected an error naming %s", w1);
	if (!strstr(err.msg, "layer sha256:test") || !strstr(err.msg, w1) ||
	    (w2 && !strstr(err.msg, w2)))
		fail_msg("error \"%s\" should name the layer, %s and %s", err.msg, w1,
			 w2 ? w2 : "");
}

/* --- what a layer keeps --- */

static void regular_file_keeps_content_mode_owner_and_mtime(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "etc/", .type = '5');
	ADD(&t, .name = "etc/motd", .data = "hello\n", .mode = 0640, .uid = 1000, .gid = 2000,
	    .mtime = 1234567890);
	expect_ok(&t);
	assert_content("etc/motd", "hello\n", 6);
	struct stat st = lst("etc/motd");
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 2000);
	assert_int_equal(st.st_mtime, 1234567890);
}

static void directory_mtime_is_set_after_its_children(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "./", .type = '5', .mtime = 1111111111, .mode = 0750);
	ADD(&t, .name = "./d/", .type = '5', .mtime = 1000000000, .mode = 0710, .uid = 7);
	ADD(&t, .name = "./d/a", .data = "a");
	ADD(&t, .name = "./d/sub/", .type = '5', .mtime = 1000000001);
	ADD(&t, .name = "./d/sub/b", .data = "b");
	expect_ok(&t);
	struct stat st = lst("d");
	assert_int_equal(st.st_mtime, 1000000000);
	assert_int_equal(st.st_mode & 07777, 0710);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(lst("d/sub").st_mtime, 1000000001);
	st = lst(".");
	assert_int_equal(st.st_mtime, 1111111111);
	assert_int_equal(st.st_mode & 07777, 0750);
}

static void layer_root_is_0755_without_a_root_entry(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x");
	expect_ok(&t);
	assert_int_equal(lst(".").st_mode & 07777, 0755);
}

static void missing_parent_directories_are_created_0755(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a/b/c/file", .data = "deep");
	expect_ok(&t);
	assert_content("a/b/c/file", "deep", 4);
	assert_true(S_ISDIR(lst("a/b").st_mode));
	assert_int_equal(lst("a/b").st_mode & 07777, 0755);
}

static void symlink_is_stored_with_its_target_and_owner(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "bin/", .type = '5');
	ADD(&t, .name = "bin/sh", .type = '2', .link = "/bin/busybox", .uid = 5, .gid = 6,
	    .mtime = 1300000000);
	ADD(&t, .name = "up", .type = '2', .link = "../../../../etc/shadow");
	expect_ok(&t);
	char target[64] = {0};
	assert_int_equal(readlinkat(S.layer_fd, "bin/sh", target, sizeof(target)), 12);
	assert_string_equal(target, "/bin/busybox");
	struct stat st = lst("bin/sh");
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_uid, 5);
	assert_int_equal(st.st_gid, 6);
	assert_int_equal(st.st_mtime, 1300000000);
	assert_true(S_ISLNK(lst("up").st_mode));
}

static void hardlink_shares_the_inode_of_its_target(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "bin/busybox", .data = "ELF", .mode = 0755);
	ADD(&t, .name = "sbin/init", .type = '1', .link = "bin/busybox");
	ADD(&t, .name = "bin/sh", .type = '1', .link = "./bin/busybox");
	expect_ok(&t);
	struct stat a = lst("bin/busybox"), b = lst("sbin/init"), c = lst("bin/sh");
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_nlink, 3);
}

static void fifo_is_created(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "run/ctl", .type = '6', .mode = 0620, .uid = 3);
	expect_ok(&t);
	struct stat st = lst("run/ctl");
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0620);
	assert_int_equal(st.st_uid, 3);
}

static void setuid_and_setgid_bits_survive_the_chown(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "bin/su", .data = "ELF", .mode = 04755, .uid = 0, .gid = 0);
	ADD(&t, .name = "bin/wall", .data = "ELF", .mode = 02755, .uid = 0, .gid = 5);
	ADD(&t, .name = "bin/mine", .data = "ELF", .mode = 06750, .uid = 1000, .gid = 1000);
	ADD(&t, .name = "tmp/", .type = '5', .mode = 01777);
	expect_ok(&t);
	assert_int_equal(lst("bin/su").st_mode & 07777, 04755);
	assert_int_equal(lst("bin/wall").st_mode & 07777, 02755);
	assert_int_equal(lst("bin/mine").st_mode & 07777, 06750);
	assert_int_equal(lst("tmp").st_mode & 07777, 01777);
}

static void security_capability_xattr_is_kept(void **state)
{
	/* VFS_CAP_REVISION_2 with cap_net_raw (13) permitted + effective. */
	static const char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20};
	struct tarb t = {0};
	ADD(&t, .name = "bin/ping", .data = "ELF", .mode = 0755, .uid = 0, .gid = 0,
	    .xname = {"security.capability", "user.note"}, .xval = {cap, "hi"},
	    .xlen = {sizeof(cap), 2});
	expect_ok(&t);
	char path[512], got[64];
	snprintf(path, sizeof(path), "%s/bin/ping", S.layer);
	assert_int_equal(lgetxattr(path, "security.capability", got, sizeof(got)), sizeof(cap));
	assert_memory_equal(got, cap, sizeof(cap));
	assert_int_equal(lgetxattr(path, "user.note", got, sizeof(got)), 2);
}

static void overlay_xattrs_in_the_tar_are_ignored(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d/", .type = '5', .xname = {"trusted.overlay.opaque", "user.ok"},
	    .xval = {"y", "1"});
	ADD(&t, .name = "f", .data = "x",
	    .xname = {"trusted.overlay.redirect", "user.overlay.opaque"}, .xval = {"/etc", "y"});
	expect_ok(&t);
	assert_false(is_opaque("d"));
	char path[512], got[16];
	snprintf(path, sizeof(path), "%s/d", S.layer);
	assert_int_equal(lgetxattr(path, "user.ok", got, sizeof(got)), 1);
	snprintf(path, sizeof(path), "%s/f", S.layer);
	assert_int_equal(llistxattr(path, got, sizeof(got)), 0);
}

static void device_nodes_are_skipped(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "dev/", .type = '5');
	ADD(&t, .name = "dev/sda", .type = '4', .devmajor = 8, .devminor = 0);
	ADD(&t, .name = "dev/mem", .type = '3', .devmajor = 1, .devminor = 1);
	ADD(&t, .name = "dev/null0", .type = '3', .devmajor = 0, .devminor = 0);
	ADD(&t, .name = "ok", .data = "x");
	struct berr err;
	struct layer_stats stats;
	assert_int_equal(unpack_tar(&S, &t, &stats, &err), 0);
	free(t.buf);
	assert_false(exists("dev/sda"));
	assert_false(exists("dev/mem"));
	assert_false(exists("dev/null0"));
	assert_true(exists("ok"));
	assert_int_equal(stats.skipped, 3);
	assert_int_equal(stats.entries, 5);
}

static void sparse_file_reads_back_with_its_holes(void **state)
{
	/* Old GNU sparse ('S'): 4 KiB of data at offset 1 MiB, size 2 MiB. */
	struct tarb t = {0};
	unsigned char h[512];
	memset(h, 0, sizeof(h));
	strcpy((char *)h, "sparse");
	tb_octal(h + 100, 8, 0644);
	tb_octal(h + 108, 8, 0);
	tb_octal(h + 116, 8, 0);
	tb_octal(h + 124, 12, 4096);
	tb_octal(h + 136, 12, T_MTIME);
	h[156] = 'S';
	memcpy(h + 257, "ustar  ", 8);
	tb_octal(h + 386, 12, 1 << 20);
	tb_octal(h + 398, 12, 4096);
	tb_octal(h + 483, 12, 2 << 20);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	tb_put(&t, h, 512);
	char data[4096];
	memset(data, 'z', sizeof(data));
	tb_put(&t, data, sizeof(data));
	expect_ok(&t);
	struct stat st = lst("sparse");
	assert_int_equal(st.st_size, 2 << 20);
	char *got;
	size_t n;
	struct berr err;
	assert_int_equal(fs_read_file_at(S.layer_fd, "sparse", 4 << 20, &got, &n, &err), 0);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[(1 << 20) - 1], 0);
	assert_memory_equal(got + (1 << 20), data, sizeof(data));
	assert_int_equal(got[(2 << 20) - 1], 0);
	free(got);
}

static void names_with_odd_bytes_are_kept_as_they_are(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "caf\xc3\xa9", .data = "utf8");
	ADD(&t, .name = "raw\xff\x01name", .data = "bytes");
	ADD(&t, .name = "new\nline", .data = "nl");
	/* Over 100 bytes, so the name travels in a pax "path" record (UTF-8). */
	char pax_name[160];
	memset(pax_name, 'p', 120);
	strcpy(pax_name + 120, "/caf\xc3\xa9-\xe2\x82\xac");
	ADD(&t, .name = pax_name, .data = "pax");
	expect_ok(&t);
	assert_content("caf\xc3\xa9", "utf8", 4);
	assert_content(pax_name, "pax", 3);
	assert_content("raw\xff\x01name", "bytes", 5);
	assert_content("new\nline", "nl", 2);
}

static void long_names_via_pax_are_unpacked(void **state)
{
	char name[400];
	snprintf(name, sizeof(name), "%0200d/%0150d", 1, 2);
	name[0] = 'a';
	name[201] = 'b';
	struct tarb t = {0};
	ADD(&t, .name = name, .data = "long");
	expect_ok(&t);
	assert_content(name, "long", 4);
}

/* --- overlay form --- */

static void whiteout_becomes_a_0_0_character_device(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "etc/", .type = '5');
	ADD(&t, .name = "etc/.wh.passwd", .data = "");
	ADD(&t, .name = ".wh.opt", .type = '5');
	expect_ok(&t);
	assert_true(is_whiteout("etc/passwd"));
	assert_true(is_whiteout("opt"));
	assert_false(exists("etc/.wh.passwd"));
}

static void opaque_marker_before_its_directory_entry_marks_it(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "var/lib/.wh..wh..opq");
	ADD(&t, .name = "var/lib/", .type = '5', .mode = 0700, .mtime = 1200000000);
	ADD(&t, .name = "var/lib/x", .data = "x");
	expect_ok(&t);
	assert_true(is_opaque("var/lib"));
	assert_false(is_opaque("var"));
	assert_int_equal(lst("var/lib").st_mode & 07777, 0700);
	assert_int_equal(lst("var/lib").st_mtime, 1200000000);
	assert_false(exists("var/lib/.wh..wh..opq"));
	assert_true(exists("var/lib/x"));
}

static void opaque_marker_after_its_directory_entries_marks_it(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "var/", .type = '5');
	ADD(&t, .name = "var/lib/", .type = '5');
	ADD(&t, .name = "var/lib/x", .data = "x");
	ADD(&t, .name = "var/lib/.wh..wh..opq");
	ADD(&t, .name = ".wh..wh..opq");
	expect_ok(&t);
	assert_true(is_opaque("var/lib"));
	assert_true(is_opaque("."));
	assert_content("var/lib/x", "x", 1);
}

static void directory_after_whiteout_of_same_name_is_opaque(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = ".wh.data");
	ADD(&t, .name = "data/", .type = '5');
	ADD(&t, .name = ".wh.cache");
	ADD(&t, .name = "cache/f", .data = "f");
	expect_ok(&t);
	assert_true(S_ISDIR(lst("data").st_mode));
	assert_true(is_opaque("data"));
	assert_true(is_opaque("cache"));
	assert_content("cache/f", "f", 1);
}

static void whiteout_replaces_an_earlier_entry(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "gone/", .type = '5');
	ADD(&t, .name = "gone/f", .data = "f");
	ADD(&t, .name = "file", .data = "f");
	ADD(&t, .name = ".wh.gone");
	ADD(&t, .name = ".wh.file");
	ADD(&t, .name = "gone2/x", .data = "x");
	expect_ok(&t);
	assert_true(is_whiteout("gone"));
	assert_true(is_whiteout("file"));
}

static void file_after_whiteout_replaces_it(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = ".wh.f");
	ADD(&t, .name = "f", .data = "new");
	expect_ok(&t);
	assert_content("f", "new", 3);
}

/* --- later entries replace earlier ones --- */

static void directory_over_directory_keeps_content_and_takes_metadata(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d/", .type = '5', .mode = 0755, .uid = 1);
	ADD(&t, .name = "d/keep", .data = "k");
	ADD(&t, .name = "d/", .type = '5', .mode = 0700, .uid = 2, .mtime = 1400000000);
	expect_ok(&t);
	assert_content("d/keep", "k", 1);
	struct stat st = lst("d");
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 2);
	assert_int_equal(st.st_mtime, 1400000000);
}

static void file_over_directory_replaces_the_tree(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d/sub/f", .data = "f");
	ADD(&t, .name = "d/g", .data = "g");
	ADD(&t, .name = "d", .data = "now a file");
	expect_ok(&t);
	assert_true(S_ISREG(lst("d").st_mode));
	assert_content("d", "now a file", 10);
}

static void directory_over_file_replaces_it(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d", .data = "file");
	ADD(&t, .name = "d/", .type = '5', .mode = 0711);
	ADD(&t, .name = "d/x", .data = "x");
	expect_ok(&t);
	assert_true(S_ISDIR(lst("d").st_mode));
	assert_int_equal(lst("d").st_mode & 07777, 0711);
	assert_false(is_opaque("d"));
	assert_content("d/x", "x", 1);
}

static void later_file_replaces_earlier_file_and_symlink(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "old");
	ADD(&t, .name = "f", .data = "new!", .mode = 0600);
	ADD(&t, .name = "l", .type = '2', .link = "f");
	ADD(&t, .name = "l", .data = "real");
	expect_ok(&t);
	assert_content("f", "new!", 4);
	assert_int_equal(lst("f").st_mode & 07777, 0600);
	assert_true(S_ISREG(lst("l").st_mode));
	assert_content("l", "real", 4);
}

static void file_entry_replaces_a_symlink_pointing_out_instead_of_writing_through(void **state)
{
	char target[256];
	snprintf(target, sizeof(target), "%s/keep", S.sentinel);
	struct tarb t = {0};
	ADD(&t, .name = "abs", .type = '2', .link = target);
	ADD(&t, .name = "rel", .type = '2', .link = "../sentinel/keep");
	ADD(&t, .name = "abs", .data = "pwned", .mode = 0777);
	ADD(&t, .name = "rel", .data = "pwned", .mode = 0777);
	expect_ok(&t);
	assert_true(S_ISREG(lst("abs").st_mode));
	assert_true(S_ISREG(lst("rel").st_mode));
}

/* --- hostile layers --- */

static void absolute_name_fails(void **state)
{
	char name[256];
	snprintf(name, sizeof(name), "%s/evil", S.sentinel);
	struct tarb t = {0};
	ADD(&t, .name = name, .data = "pwned");
	expect_fail(&t, "evil", "absolute");
}

static void dotdot_escape_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a/", .type = '5');
	ADD(&t, .name = "a/../../sentinel/evil", .data = "pwned");
	expect_fail(&t, "sentinel/evil", "\"..\"");
}

static void dotdot_staying_inside_still_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a/../b", .data = "x");
	expect_fail(&t, "a/../b", "\"..\"");
}

static void writing_through_a_symlink_pointing_out_fails(void **state)
{
	char target[256];
	snprintf(target, sizeof(target), "%s", S.sentinel);
	struct tarb t = {0};
	ADD(&t, .name = "abs", .type = '2', .link = target);
	ADD(&t, .name = "abs/evil", .data = "pwned");
	expect_fail(&t, "abs/evil", "symlink");
}

static void writing_through_a_relative_symlink_pointing_out_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d/", .type = '5');
	ADD(&t, .name = "d/out", .type = '2', .link = "../../sentinel");
	ADD(&t, .name = "d/out/keep", .data = "pwned");
	expect_fail(&t, "d/out/keep", "symlink");
}

static void writing_through_a_symlink_chain_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a", .type = '2', .link = "b");
	ADD(&t, .name = "b", .type = '2', .link = "c");
	ADD(&t, .name = "c", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "a/keep", .data = "pwned", .mode = 0777);
	expect_fail(&t, "a/keep", "symlink");
}

static void directory_entry_replaces_a_symlink_instead_of_following_it(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "s", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "s/", .type = '5', .mode = 0777);
	ADD(&t, .name = "s/x/", .type = '5', .mode = 0777);
	expect_ok(&t);
	assert_true(S_ISDIR(lst("s").st_mode));
	assert_true(S_ISDIR(lst("s/x").st_mode));
}

static void whiteout_through_a_symlink_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "s", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "s/.wh.keep");
	expect_fail(&t, "s/.wh.keep", "symlink");
}

static void opaque_marker_through_a_symlink_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "s", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "s/.wh..wh..opq");
	expect_fail(&t, "s/.wh..wh..opq", "symlink");
}

static void hardlink_to_outside_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "h", .type = '1', .link = "../sentinel/keep");
	expect_fail(&t, "\"h\"", "\"..\"");
}

static void hardlink_to_absolute_path_fails(void **state)
{
	char target[256];
	snprintf(target, sizeof(target), "%s/keep", S.sentinel);
	struct tarb t = {0};
	ADD(&t, .name = "h", .type = '1', .link = target);
	expect_fail(&t, "\"h\"", "absolute");
}

static void hardlink_through_a_symlink_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "s", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "h", .type = '1', .link = "s/keep");
	expect_fail(&t, "\"h\"", "symlink");
}

static void hardlink_to_a_missing_target_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "h", .type = '1', .link = "bin/busybox");
	expect_fail(&t, "\"h\"", "not in this layer");
}

static void hardlink_to_a_directory_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "d/", .type = '5');
	ADD(&t, .name = "h", .type = '1', .link = "d");
	expect_fail(&t, "\"h\"", "directory");
}

static void hardlink_to_a_symlink_links_the_symlink_itself(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "s", .type = '2', .link = "../sentinel/keep");
	ADD(&t, .name = "h", .type = '1', .link = "s");
	expect_ok(&t);
	assert_true(S_ISLNK(lst("h").st_mode));
	assert_int_equal(lst("h").st_ino, lst("s").st_ino);
}

static void whiteout_of_dotdot_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a/.wh...", .data = "");
	expect_fail(&t, "a/.wh...", "whiteout");
}

static void whiteout_of_dot_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = ".wh..", .data = "");
	expect_fail(&t, ".wh..", "whiteout");
}

static void bare_whiteout_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "etc/.wh.", .data = "");
	expect_fail(&t, "etc/.wh.", "whiteout");
}

static void root_replaced_by_a_file_fails(void **state)
{
	/* ("./" as a file is a directory: tar reads a name ending in '/' so.) */
	const char *names[] = {".", "", "./."};
	for (size_t i = 0; i < 3; i++) {
		struct tarb t = {0};
		ADD(&t, .name = names[i], .data = "x");
		expect_fail(&t, "root", NULL);
	}
}

static void root_replaced_by_a_symlink_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "./", .type = '2', .link = "../sentinel");
	ADD(&t, .name = "keep", .data = "pwned");
	expect_fail(&t, "root", NULL);
}

static void root_replaced_by_a_hardlink_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x");
	ADD(&t, .name = ".", .type = '1', .link = "f");
	expect_fail(&t, "root", NULL);
}

static void component_longer_than_name_max_fails(void **state)
{
	char name[300];
	memset(name, 'n', 256);
	strcpy(name + 256, "/f");
	struct tarb t = {0};
	ADD(&t, .name = name, .data = "x");
	expect_fail(&t, "nnnn", "255");
}

static void name_longer_than_path_max_fails(void **state)
{
	static char name[PATH_MAX + 300];
	size_t n = 0;
	while (n < PATH_MAX + 100) {
		memset(name + n, 'c', 200);
		memcpy(name + n, "abcdefghi", 9);
		name[n + 199] = '/';
		n += 200;
	}
	strcpy(name + n, "f");
	struct tarb t = {0};
	ADD(&t, .name = name, .data = "x");
	expect_fail(&t, "abcdefghi", "longer than");
}

static void deep_nesting_fails(void **state)
{
	static char name[2000];
	size_t n = 0;
	for (int i = 0; i < 300; i++) {
		memcpy(name + n, "d/", 2);
		n += 2;
	}
	strcpy(name + n, "f");
	struct tarb t = {0};
	ADD(&t, .name = name, .data = "x");
	expect_fail(&t, "d/d/d", "deeper");
}

static void entry_under_a_file_fails(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x");
	ADD(&t, .name = "f/g", .data = "y");
	expect_fail(&t, "\"f/g\"", "Not a directory");
}

static void entry_under_a_fifo_fails_without_blocking(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "p", .type = '6');
	ADD(&t, .name = "p/g", .data = "y");
	expect_fail(&t, "\"p/g\"", "Not a directory");
}

static void owner_out_of_range_fails(void **state)
{
	/* A base-256 size field is how tar writes numbers over the octal range. */
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x", .uid = 1);
	unsigned char *h = t.buf;
	memset(h + 108, 0, 8);
	h[108] = 0x80;
	memset(h + 112, 0xff, 4); /* uid 2^32 - 1 */
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	expect_fail(&t, "\"f\"", "owner");
}

/* --- broken streams --- */

static void truncated_tar_fails_with_a_clear_error(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a", .data = "aaaa");
	char big[5000];
	memset(big, 'b', sizeof(big));
	ADD(&t, .name = "big", .data = big, .size = sizeof(big));
	t.len -= 2048; /* cut inside big's data */
	struct mem_src m = {.data = t.buf, .len = t.len, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
	free(t.buf);
	assert_non_null(strstr(err.msg, "layer sha256:test"));
	assert_non_null(strstr(err.msg, "\"big\""));
	assert_non_null(strstr(err.msg, "runcated"));
}

static void truncated_header_fails_with_a_clear_error(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "a", .data = "aaaa");
	ADD(&t, .name = "b", .data = "bbbb");
	t.len -= 512 + 300; /* cut inside b's header */
	struct mem_src m = {.data = t.buf, .len = t.len, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
	free(t.buf);
	assert_non_null(strstr(err.msg, "layer sha256:test"));
	assert_non_null(strstr(err.msg, "after entry \"a\""));
}

static void source_read_error_propagates(void **state)
{
	struct tarb t = {0};
	char big[20000];
	memset(big, 'b', sizeof(big));
	ADD(&t, .name = "big", .data = big, .size = sizeof(big));
	tb_end(&t);
	struct mem_src m = {.data = t.buf, .len = t.len, .chunk = 4096, .fail_after = 8192};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
	free(t.buf);
	assert_non_null(strstr(err.msg, "layer sha256:test"));
	assert_non_null(strstr(err.msg, "digest mismatch: expected sha256:1234"));
}

static void source_error_after_the_last_entry_propagates(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x");
	tb_end(&t);
	/* Record padding after the end blocks, as tar writes it. */
	size_t end = t.len;
	char pad[8192] = {0};
	tb_put(&t, pad, sizeof(pad));
	struct mem_src m = {
	    .data = t.buf, .len = t.len, .chunk = 1024, .fail_after = (long)end + 4096};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
	free(t.buf);
	assert_non_null(strstr(err.msg, "digest mismatch"));
}

static void whole_stream_is_read_past_the_end_blocks(void **state)
{
	struct tarb t = {0};
	ADD(&t, .name = "f", .data = "x");
	tb_end(&t);
	char pad[10240] = {0};
	tb_put(&t, pad, sizeof(pad));
	struct mem_src m = {.data = t.buf, .len = t.len, .chunk = 512, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), 0);
	free(t.buf);
	assert_int_equal(m.pos, m.len);
	assert_true(m.reads_after_end >= 1);
}

static void non_tar_input_fails(void **state)
{
	static const char junk[2048] = "this is not a tar archive at all";
	struct mem_src m = {
	    .data = (const unsigned char *)junk, .len = sizeof(junk), .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
	assert_non_null(strstr(err.msg, "layer sha256:test"));
}

static void compressed_input_is_refused(void **state)
{
	/* The caller decompresses; a gzip stream here is a bug, not a layer. */
	static const unsigned char gz[64] = {0x1f, 0x8b, 0x08, 0x00};
	struct mem_src m = {.data = gz, .len = sizeof(gz), .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", NULL, &err), -1);
}

static void empty_stream_is_an_empty_layer(void **state)
{
	struct mem_src m = {.data = (const unsigned char *)"", .len = 0, .fail_after = -1};
	struct layer_source src = {mem_read, &m};
	struct berr err;
	struct layer_stats stats;
	assert_int_equal(layer_unpack(S.layer_fd, &src, "layer sha256:test", &stats, &err), 0);
	assert_int_equal(stats.entries, 0);
}

static void many_entries_are_counted(void **state)
{
	struct tarb t = {0};
	char name[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "d%d/f%d", i % 50, i);
		ADD(&t, .name = name, .data = "0123456789");
	}
	struct berr err;
	struct layer_stats stats;
	assert_int_equal(unpack_tar(&S, &t, &stats, &err), 0);
	free(t.buf);
	assert_int_equal(stats.entries, 5000);
	assert_int_equal(stats.bytes, 50000);
	assert_content("d49/f4999", "0123456789", 10);
}

/* --- names in messages --- */

static void quoted_names_escape_control_and_non_ascii_bytes(void **state)
{
	char out[64];
	layer_quote("a\x01\xff\"\\b\n", out, sizeof(out));
	assert_string_equal(out, "\"a\\x01\\xff\\x22\\x5cb\\x0a\"");
}

static void quoted_long_names_keep_their_start_and_end(void **state)
{
	char in[600], out[100];
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	memcpy(in, "start/", 6);
	memcpy(in + sizeof(in) - 10, "/end/evil", 9);
	layer_quote(in, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	assert_int_equal(strncmp(out, "\"start/", 7), 0);
	assert_non_null(strstr(out, "..."));
	assert_non_null(strstr(out, "/end/evil\""));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(regular_file_keeps_content_mode_owner_and_mtime),
	    T(directory_mtime_is_set_after_its_children),
	    T(layer_root_is_0755_without_a_root_entry),
	    T(missing_parent_directories_are_created_0755),
	    T(symlink_is_stored_with_its_target_and_owner),
	    T(hardlink_shares_the_inode_of_its_target),
	    T(fifo_is_created),
	    T(setuid_and_setgid_bits_survive_the_chown),
	    T(security_capability_xattr_is_kept),
	    T(overlay_xattrs_in_the_tar_are_ignored),
	    T(device_nodes_are_skipped),
	    T(sparse_file_reads_back_with_its_holes),
	    T(names_with_odd_bytes_are_kept_as_they_are),
	    T(long_names_via_pax_are_unpacked),
	    T(whiteout_becomes_a_0_0_character_device),
	    T(opaque_marker_before_its_directory_entry_marks_it),
	    T(opaque_marker_after_its_directory_entries_marks_it),
	    T(directory_after_whiteout_of_same_name_is_opaque),
	    T(whiteout_replaces_an_earlier_entry),
	    T(file_after_whiteout_replaces_it),
	    T(directory_over_directory_keeps_content_and_takes_metadata),
	    T(file_over_directory_replaces_the_tree),
	    T(directory_over_file_replaces_it),
	    T(later_file_replaces_earlier_file_and_symlink),
	    T(file_entry_replaces_a_symlink_pointing_out_instead_of_writing_through),
	    T(absolute_name_fails),
	    T(dotdot_escape_fails),
	    T(dotdot_staying_inside_still_fails),
	    T(writing_through_a_symlink_pointing_out_fails),
	    T(writing_through_a_relative_symlink_pointing_out_fails),
	    T(writing_through_a_symlink_chain_fails),
	    T(directory_entry_replaces_a_symlink_instead_of_following_it),
	    T(whiteout_through_a_symlink_fails),
	    T(opaque_marker_through_a_symlink_fails),
	    T(hardlink_to_outside_fails),
	    T(hardlink_to_absolute_path_fails),
	    T(hardlink_through_a_symlink_fails),
	    T(hardlink_to_a_missing_target_fails),
	    T(hardlink_to_a_directory_fails),
	    T(hardlink_to_a_symlink_links_the_symlink_itself),
	    T(whiteout_of_dotdot_fails),
	    T(whiteout_of_dot_fails),
	    T(bare_whiteout_fails),
	    T(root_replaced_by_a_file_fails),
	    T(root_replaced_by_a_symlink_fails),
	    T(root_replaced_by_a_hardlink_fails),
	    T(component_longer_than_name_max_fails),
	    T(name_longer_than_path_max_fails),
	    T(deep_nesting_fails),
	    T(entry_under_a_file_fails),
	    T(entry_under_a_fifo_fails_without_blocking),
	    T(owner_out_of_range_fails),
	    T(truncated_tar_fails_with_a_clear_error),
	    T(truncated_header_fails_with_a_clear_error),
	    T(source_read_error_propagates),
	    T(source_error_after_the_last_entry_propagates),
	    T(whole_stream_is_read_past_the_end_blocks),
	    T(non_tar_input_fails),
	    T(compressed_input_is_refused),
	    T(empty_stream_is_an_empty_layer),
	    T(many_entries_are_counted),
	    T(quoted_names_escape_control_and_non_ascii_bytes),
	    T(quoted_long_names_keep_their_start_and_end),
	};
	return cmocka_run_group_tests_name("unpack", tests, NULL, NULL);
}
