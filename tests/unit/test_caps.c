/* shim/caps.c: capability names, the engines' default set with add/drop, and
 * applying the sets to a (forked) process, checked in /proc/self/status. */
#include "unit.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "child.h"
#include "common/cleanup.h"
#include "shim/security.h"

#define BIT(c) (UINT64_C(1) << (c))

static const uint64_t engine_default =
    BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FSETID) | BIT(CAP_FOWNER) | BIT(CAP_MKNOD) |
    BIT(CAP_NET_RAW) | BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETFCAP) | BIT(CAP_SETPCAP) |
    BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SYS_CHROOT) | BIT(CAP_KILL) | BIT(CAP_AUDIT_WRITE);

static int kernel_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = -1;
	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = -1;
		fclose(f);
	}
	return last;
}

static uint64_t kernel_all(void)
{
	int last = kernel_last_cap();
	return last >= 63 ? UINT64_MAX : BIT(last + 1) - 1;
}

/* The test runner's own bounding set: what "all" can hand on here. */
static uint64_t runner_bounding(void)
{
	return (uint64_t)proc_status_hex("CapBnd");
}

static void names_parse_in_any_case_with_or_without_prefix(void **state)
{
	const char *names[] = {"CAP_NET_ADMIN", "net_raw", "Sys_Time", "cap_chown", NULL};
	uint64_t mask = 0;
	struct berr err;
	assert_int_equal(caps_from_names(names, &mask, &err), 0);
	assert_int_equal(mask, BIT(CAP_NET_ADMIN) | BIT(CAP_NET_RAW) | BIT(CAP_SYS_TIME) |
				   BIT(CAP_CHOWN));
}

static void name_all_is_every_capability_of_the_kernel(void **state)
{
	const char *names[] = {"all", NULL};
	uint64_t mask = 0;
	struct berr err;
	assert_int_equal(caps_from_names(names, &mask, &err), 0);
	assert_int_equal(mask, kernel_all());
}

static void unknown_name_is_refused_by_name(void **state)
{
	const char *bad[][2] = {
	    {"CAP_FLY", NULL}, {"12", NULL}, {"", NULL}, {"CAP_", NULL}, {"net admin", NULL}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t mask = 0;
		struct berr err;
		assert_int_equal(caps_from_names(bad[i], &mask, &err), -1);
		if (bad[i][0][0])
			assert_non_null(strstr(err.msg, bad[i][0]));
	}
}

static void default_set_is_the_engines_default(void **state)
{
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(NULL, NULL, false, &s, &err), 0);
	assert_int_equal(s.bounding, engine_default);
	assert_int_equal(s.effective, engine_default);
	assert_int_equal(s.permitted, engine_default);
	assert_int_equal(s.inheritable, 0);
	assert_int_equal(s.ambient, 0);
}

static void add_and_drop_change_the_default_set(void **state)
{
	const char *add[] = {"NET_ADMIN", "CAP_SYS_PTRACE", NULL};
	const char *drop[] = {"mknod", "CAP_NET_RAW", NULL};
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(add, drop, false, &s, &err), 0);
	uint64_t want = (engine_default | BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_PTRACE)) &
			~(BIT(CAP_MKNOD) | BIT(CAP_NET_RAW));
	assert_int_equal(s.bounding, want);
	assert_int_equal(s.effective, want);
	assert_int_equal(s.permitted, want);
}

static void drop_all_leaves_only_the_additions(void **state)
{
	const char *add[] = {"NET_BIND_SERVICE", NULL};
	const char *drop[] = {"ALL", NULL};
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(add, drop, false, &s, &err), 0);
	assert_int_equal(s.bounding, BIT(CAP_NET_BIND_SERVICE));
	assert_int_equal(s.effective, BIT(CAP_NET_BIND_SERVICE));
}

static void add_all_keeps_everything_but_the_drops(void **state)
{
	const char *add[] = {"ALL", NULL};
	const char *drop[] = {"SYS_ADMIN", NULL};
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(add, drop, false, &s, &err), 0);
	assert_int_equal(s.bounding, kernel_all() & runner_bounding() & ~BIT(CAP_SYS_ADMIN));
}

static void name_in_both_lists_is_dropped(void **state)
{
	const char *add[] = {"NET_ADMIN", NULL};
	const char *drop[] = {"net_admin", NULL};
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(add, drop, false, &s, &err), 0);
	assert_int_equal(s.bounding & BIT(CAP_NET_ADMIN), 0);
}

static void privileged_is_every_capability_berth_has(void **state)
{
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(NULL, NULL, true, &s, &err), 0);
	assert_int_equal(s.bounding, kernel_all() & runner_bounding());
	assert_int_equal(s.effective, s.bounding);
	assert_int_equal(s.permitted, s.bounding);
}

static void unknown_add_or_drop_is_refused_by_name(void **state)
{
	const char *add[] = {"NET_ADMIN", "CAP_TELEPORT", NULL};
	const char *drop[] = {"CAP_WARP", NULL};
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(add, NULL, false, &s, &err), -1);
	assert_non_null(strstr(err.msg, "cap-add"));
	assert_non_null(strstr(err.msg, "CAP_TELEPORT"));
	assert_int_equal(caps_default_sets(NULL, drop, false, &s, &err), -1);
	assert_non_null(strstr(err.msg, "cap-drop"));
	assert_non_null(strstr(err.msg, "CAP_WARP"));
}

/* In a child: applies the sets computed from add/drop/privileged and checks
 * every set in /proc/self/status. */
struct apply_case {
	const char *const *add;
	const char *const *drop;
	bool privileged;
};

static void apply_and_check(void *arg)
{
	const struct apply_case *c = arg;
	struct cap_sets s;
	struct berr err;
	CHILD_CHECK(caps_default_sets(c->add, c->drop, c->privileged, &s, &err) == 0);
	if (caps_apply(&s, &err) < 0) {
		fprintf(stderr, "caps_apply: %s\n", err.msg);
		_exit(2);
	}
	CHILD_CHECK((uint64_t)proc_status_hex("CapBnd") == s.bounding);
	CHILD_CHECK((uint64_t)proc_status_hex("CapEff") == s.effective);
	CHILD_CHECK((uint64_t)proc_status_hex("CapPrm") == s.permitted);
	CHILD_CHECK(proc_status_hex("CapInh") == 0);
	CHILD_CHECK(proc_status_hex("CapAmb") == 0);
}

static void applied_default_set_shows_in_proc_status(void **state)
{
	struct apply_case c = {NULL, NULL, false};
	CHILD_OK(apply_and_check, &c);
	/* And the values are the engines' default, not just self-consistent. */
	struct cap_sets s;
	struct berr err;
	assert_int_equal(caps_default_sets(NULL, NULL, false, &s, &err), 0);
	assert_int_equal(s.effective, engine_default);
}

static void applied_add_and_drop_show_in_proc_status(void **state)
{
	const char *add[] = {"NET_ADMIN", NULL};
	const char *drop[] = {"CHOWN", "KILL", NULL};
	struct apply_case c = {add, drop, false};
	CHILD_OK(apply_and_check, &c);
}

static void applied_drop_all_leaves_no_capability(void **state)
{
	const char *drop[] = {"ALL", NULL};
	struct apply_case c = {NULL, drop, false};
	CHILD_OK(apply_and_check, &c);
}

static void applied_privileged_keeps_every_capability(void **state)
{
	struct apply_case c = {NULL, NULL, true};
	CHILD_OK(apply_and_check, &c);
}

/* The documented order: keep caps across the uid switch, switch, apply; an
 * ambient capability then survives exec as a non-root user. */
static void ambient_capability_survives_exec_after_uid_switch(void *arg)
{
	CHILD_CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0);
	CHILD_CHECK(setgroups(0, NULL) == 0);
	CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
	CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
	CHILD_CHECK(proc_status_hex("CapEff") == 0); /* the switch cleared it */
	struct cap_sets s = {
	    .bounding = engine_default,
	    .effective = BIT(CAP_NET_BIND_SERVICE),
	    .permitted = BIT(CAP_NET_BIND_SERVICE),
	    .inheritable = BIT(CAP_NET_BIND_SERVICE),
	    .ambient = BIT(CAP_NET_BIND_SERVICE),
	};
	struct berr err;
	if (caps_apply(&s, &err) < 0) {
		fprintf(stderr, "caps_apply: %s\n", err.msg);
		_exit(2);
	}
	CHILD_CHECK((uint64_t)proc_status_hex("CapEff") == BIT(CAP_NET_BIND_SERVICE));
	CHILD_CHECK((uint64_t)proc_status_hex("CapBnd") == engine_default);
	CHILD_CHECK((uint64_t)proc_status_hex("CapAmb") == BIT(CAP_NET_BIND_SERVICE));
	/* CAP_NET_BIND_SERVICE is bit 10: 0x400. */
	execl("/bin/sh", "sh", "-c",
	      "grep -q '^CapEff:[[:space:]]*0000000000000400$' /proc/self/status && "
	      "grep -q '^CapAmb:[[:space:]]*0000000000000400$' /proc/self/status",
	      (char *)NULL);
	_exit(3);
}

static void ambient_set_survives_uid_switch_and_exec(void **state)
{
	CHILD_OK(ambient_capability_survives_exec_after_uid_switch, NULL);
}

static void default_set_after_uid_switch_is_lost_on_exec(void *arg)
{
	CHILD_CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0);
	CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
	CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
	struct cap_sets s;
	struct berr err;
	CHILD_CHECK(caps_default_sets(NULL, NULL, false, &s, &err) == 0);
	CHILD_CHECK(caps_apply(&s, &err) == 0);
	CHILD_CHECK((uint64_t)proc_status_hex("CapEff") == engine_default);
	/* As with the engines: a non-root module has no effective capability. */
	execl("/bin/sh", "sh", "-c",
	      "grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status", (char *)NULL);
	_exit(3);
}

static void non_root_process_has_no_capability_after_exec(void **state)
{
	CHILD_OK(default_set_after_uid_switch_is_lost_on_exec, NULL);
}

static void ambient_outside_inheritable(void *arg)
{
	struct cap_sets s = {
	    .bounding = engine_default,
	    .effective = BIT(CAP_KILL),
	    .permitted = BIT(CAP_KILL),
	    .inheritable = 0,
	    .ambient = BIT(CAP_KILL),
	};
	struct berr err;
	CHILD_CHECK(caps_apply(&s, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "CAP_KILL") != NULL);
}

static void ambient_outside_inheritable_is_refused_by_name(void **state)
{
	CHILD_OK(ambient_outside_inheritable, NULL);
}

static void capability_berth_lacks(void *arg)
{
	/* Give this process up CAP_NET_ADMIN first, then ask for it. */
	CHILD_CHECK(prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) == 0);
	struct cap_sets lose = {.bounding = ~BIT(CAP_NET_ADMIN),
				.effective = runner_bounding() & ~BIT(CAP_NET_ADMIN),
				.permitted = runner_bounding() & ~BIT(CAP_NET_ADMIN)};
	struct berr err;
	CHILD_CHECK(caps_apply(&lose, &err) == 0);
	const char *add[] = {"NET_ADMIN", NULL};
	struct cap_sets s;
	CHILD_CHECK(caps_default_sets(add, NULL, false, &s, &err) == 0);
	CHILD_CHECK(caps_apply(&s, &err) == -1);
	CHILD_CHECK(strstr(err.msg, "CAP_NET_ADMIN") != NULL);
}

static void capability_berth_lacks_is_refused_by_name(void **state)
{
	CHILD_OK(capability_berth_lacks, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names_parse_in_any_case_with_or_without_prefix),
	    cmocka_unit_test(name_all_is_every_capability_of_the_kernel),
	    cmocka_unit_test(unknown_name_is_refused_by_name),
	    cmocka_unit_test(default_set_is_the_engines_default),
	    cmocka_unit_test(add_and_drop_change_the_default_set),
	    cmocka_unit_test(drop_all_leaves_only_the_additions),
	    cmocka_unit_test(add_all_keeps_everything_but_the_drops),
	    cmocka_unit_test(name_in_both_lists_is_dropped),
	    cmocka_unit_test(privileged_is_every_capability_berth_has),
	    cmocka_unit_test(unknown_add_or_drop_is_refused_by_name),
	    cmocka_unit_test(applied_default_set_shows_in_proc_status),
	    cmocka_unit_test(applied_add_and_drop_show_in_proc_status),
	    cmocka_unit_test(applied_drop_all_leaves_no_capability),
	    cmocka_unit_test(applied_privileged_keeps_every_capability),
	    cmocka_unit_test(ambient_set_survives_uid_switch_and_exec),
	    cmocka_unit_test(non_root_process_has_no_capability_after_exec),
	    cmocka_unit_test(ambient_outside_inheritable_is_refused_by_name),
	    cmocka_unit_test(capability_berth_lacks_is_refused_by_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
