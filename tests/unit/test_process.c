/* shim/process.c: the working directory check after chdir, in a child that
 * plays an instance: its own mount namespace, chroot'ed into a scratch root
 * with /proc mounted, and a descriptor of a directory outside that root left
 * open, the situation of CVE-2024-21626. Needs root (mount, chroot). */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "common/fs.h"
#include "shim/sandbox.h"

struct roots {
	char root[64];	  /* the instance's root */
	char outside[64]; /* a host directory next to it */
};

static int setup(void **state)
{
	struct roots *r = calloc(1, sizeof(*r));
	snprintf(r->root, sizeof(r->root), "/tmp/berth-cwd-root-XXXXXX");
	snprintf(r->outside, sizeof(r->outside), "/tmp/berth-cwd-host-XXXXXX");
	if (!r || !mkdtemp(r->root) || !mkdtemp(r->outside))
		return -1;
	char p[128];
	snprintf(p, sizeof(p), "%s/proc", r->root);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/app", r->root);
	mkdir(p, 0755);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct roots *r = *state;
	struct berr err;
	assert_int_equal(fs_remove_tree(r->root, &err), 0);
	assert_int_equal(fs_remove_tree(r->outside, &err), 0);
	free(r);
	return 0;
}

/* In the child: a private mount namespace with proc mounted in the root,
 * chroot'ed there, holding `fd`, a descriptor of the outside directory. */
static int enter_instance(struct roots *r)
{
	int fd = open(r->outside, O_PATH | O_DIRECTORY);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(unshare(CLONE_NEWNS) == 0);
	CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	char p[128];
	snprintf(p, sizeof(p), "%s/proc", r->root);
	CHILD_CHECK(mount("proc", p, "proc", 0, NULL) == 0);
	CHILD_CHECK(chroot(r->root) == 0 && chdir("/") == 0);
	return fd;
}

static void inside_directory_is_accepted_child(void *arg)
{
	enter_instance(arg);
	struct berr err;
	CHILD_CHECK(sandbox_enter_cwd("/app", &err) == 0);
	char cwd[PATH_MAX];
	CHILD_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/app"));
}

static void working_directory_inside_the_root_is_accepted(void **state)
{
	CHILD_OK(inside_directory_is_accepted_child, *state);
}

static void through_a_descriptor_is_refused_child(void *arg)
{
	int fd = enter_instance(arg);
	char cwd[64];
	snprintf(cwd, sizeof(cwd), "/proc/self/fd/%d", fd);
	struct berr err;
	/* chdir itself succeeds: the magic link leads out of the root. */
	CHILD_CHECK(sandbox_enter_cwd(cwd, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "is outside the instance's root") != NULL);
	CHILD_CHECK(strstr(err.msg, cwd) != NULL);
}

static void working_directory_through_a_host_descriptor_is_refused(void **state)
{
	CHILD_OK(through_a_descriptor_is_refused_child, *state);
}

static void missing_directory_names_itself_child(void *arg)
{
	enter_instance(arg);
	struct berr err;
	CHILD_CHECK(sandbox_enter_cwd("/nowhere", &err) == -1);
	CHILD_CHECK(strstr(err.msg, "working directory /nowhere") != NULL);
}

static void missing_working_directory_is_named(void **state)
{
	CHILD_OK(missing_directory_names_itself_child, *state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_process: mounts and chroots: run as root\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    T(working_directory_inside_the_root_is_accepted),
	    T(working_directory_through_a_host_descriptor_is_refused),
	    T(missing_working_directory_is_named),
	};
	return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
