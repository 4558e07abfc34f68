/* shim/seccomp_oci.c: OCI runtime-spec "linux.seccomp" profiles. Profiles
 * that must load are loaded in forked children, which then probe with
 * getpgid(2) and getpriority(2): harmless calls whose arguments the tests
 * choose. Refusals are checked by building only, in the runner. */
#include "unit.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "child.h"
#include "common/cleanup.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "shim/security.h"

/* The errno the test rules return, unlike anything the probes return. */
#define MARK 77

static yajl_val parse(const char *json)
{
	yajl_val v = NULL;
	struct berr err;
	if (json_parse(json, strlen(json), 1 << 20, "profile", &v, &err) < 0) {
		fprintf(stderr, "test profile does not parse: %s\n%s\n", err.msg, json);
		abort();
	}
	return v;
}

static void load_or_die(const char *json)
{
	struct berr err;
	yajl_val v = parse(json);
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core); /* SIGSYS would dump core */
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	if (seccomp_load_oci(v, &err) < 0) {
		fprintf(stderr, "seccomp_load_oci: %s\n", err.msg);
		_exit(2);
	}
	yajl_tree_free(v);
}

static bool marked(long rc)
{
	return rc == -1 && errno == MARK;
}

static long pgid(long arg)
{
	errno = 0;
	return syscall(SYS_getpgid, arg);
}

/* ---- operators: a rule on getpgid's argument 0 with each operator ---- */

struct op_case {
	const char *op;
	const char *value;
	const char *value_two; /* NULL: absent */
	long hit, miss;	       /* arguments that must and must not match */
};

static void op_in_child(void *arg)
{
	const struct op_case *c = arg;
	char json[1024];
	char two[64] = "";
	if (c->value_two)
		snprintf(two, sizeof(two), ", \"valueTwo\": %s", c->value_two);
	snprintf(json, sizeof(json),
		 "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpgid\"],"
		 " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d, \"args\": [{\"index\": 0,"
		 " \"value\": %s%s, \"op\": \"%s\"}]}]}",
		 MARK, c->value, two, c->op);
	load_or_die(json);
	CHILD_CHECK(marked(pgid(c->hit)));
	CHILD_CHECK(!marked(pgid(c->miss)));
}

#define OP_TEST(test, op, value, two, hit, miss)                                                   \
	static void test(void **state)                                                             \
	{                                                                                          \
		struct op_case c = {op, value, two, hit, miss};                                    \
		CHILD_OK(op_in_child, &c);                                                         \
	}

OP_TEST(op_ne_matches_other_values, "SCMP_CMP_NE", "10", NULL, 11, 10)
OP_TEST(op_lt_matches_smaller_values, "SCMP_CMP_LT", "10", NULL, 9, 10)
OP_TEST(op_le_matches_smaller_or_equal_values, "SCMP_CMP_LE", "10", NULL, 10, 11)
OP_TEST(op_eq_matches_the_value, "SCMP_CMP_EQ", "10", NULL, 10, 9)
OP_TEST(op_ge_matches_greater_or_equal_values, "SCMP_CMP_GE", "10", NULL, 10, 9)
OP_TEST(op_gt_matches_greater_values, "SCMP_CMP_GT", "10", NULL, 11, 10)
OP_TEST(op_masked_eq_compares_under_the_mask, "SCMP_CMP_MASKED_EQ", "240", "32", 0x2f, 0x3f)
OP_TEST(values_up_to_2_to_the_64_are_exact, "SCMP_CMP_EQ", "18446744073709551615", NULL, -1, 0)

/* ---- several conditions ---- */

static void and_of_two_arguments(void *arg)
{
	char json[512];
	snprintf(
	    json, sizeof(json),
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpriority\"],"
	    " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d, \"args\": ["
	    "{\"index\": 0, \"value\": 0, \"op\": \"SCMP_CMP_EQ\"},"
	    "{\"index\": 1, \"value\": 12345, \"op\": \"SCMP_CMP_EQ\"}]}]}",
	    MARK);
	load_or_die(json);
	errno = 0;
	CHILD_CHECK(marked(syscall(SYS_getpriority, 0, 12345)));
	errno = 0;
	CHILD_CHECK(!marked(syscall(SYS_getpriority, 0, 0)));
	errno = 0;
	CHILD_CHECK(!marked(syscall(SYS_getpriority, 1, 12345)));
}

static void conditions_on_different_arguments_must_all_hold(void **state)
{
	CHILD_OK(and_of_two_arguments, NULL);
}

static void or_of_one_argument(void *arg)
{
	char json[512];
	snprintf(json, sizeof(json),
		 "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpgid\"],"
		 " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": %d, \"args\": ["
		 "{\"index\": 0, \"value\": 5, \"op\": \"SCMP_CMP_EQ\"},"
		 "{\"index\": 0, \"value\": 6, \"op\": \"SCMP_CMP_EQ\"}]}]}",
		 MARK);
	load_or_die(json);
	CHILD_CHECK(marked(pgid(5)));
	CHILD_CHECK(marked(pgid(6)));
	CHILD_CHECK(!marked(pgid(7)));
}

static void conditions_on_one_argument_match_either_as_runc(void **state)
{
	CHILD_OK(or_of_one_argument, NULL);
}

/* ---- actions ---- */

/* What the child needs to report and exit, also under ASan and UBSan. */
#define MINIMAL_ALLOW                                                                              \
	"\"write\", \"exit\", \"exit_group\", \"rt_sigreturn\", \"rt_sigprocmask\","               \
	"\"rt_sigaction\", \"sigaltstack\", \"mmap\", \"munmap\", \"mprotect\", \"madvise\","      \
	"\"brk\", \"futex\", \"getpid\", \"gettid\", \"tgkill\", \"read\", \"openat\","            \
	"\"close\", \"fstat\", \"newfstatat\", \"readlinkat\", \"prctl\", \"sched_yield\""

static void errno_default(void *arg)
{
	char json[512];
	snprintf(json, sizeof(json),
		 "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": %d, \"syscalls\": ["
		 "{\"names\": [" MINIMAL_ALLOW ", \"getpgid\"], \"action\": \"SCMP_ACT_ALLOW\"}]}",
		 MARK);
	load_or_die(json);
	CHILD_CHECK(pgid(0) >= 0);
	errno = 0;
	CHILD_CHECK(marked(syscall(SYS_getppid)));
}

static void default_errno_action_returns_default_errno_ret(void **state)
{
	CHILD_OK(errno_default, NULL);
}

static void errno_without_ret(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		    "[\"getpgid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
	CHILD_CHECK(pgid(0) == -1 && errno == EPERM);
}

static void errno_action_without_errno_ret_returns_eperm(void **state)
{
	CHILD_OK(errno_without_ret, NULL);
}

static void newer_than_profile(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": "
		    "[" MINIMAL_ALLOW ", \"getpgid\"], \"action\": \"SCMP_ACT_ALLOW\"}]}");
	errno = 0;
	CHILD_CHECK(syscall(462 /* mseal */, 0UL, 0UL, 0UL) == -1 && errno == ENOSYS);
	errno = 0;
	CHILD_CHECK(syscall(SYS_getppid) == -1 && errno == EPERM);
}

static void syscall_newer_than_the_profile_fails_with_enosys(void **state)
{
	CHILD_OK(newer_than_profile, NULL);
}

/* The child must die of SIGSYS when it calls getpgid. */
static void dies_on_getpgid(void *arg)
{
	char json[512];
	snprintf(json, sizeof(json),
		 "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpgid\"],"
		 " \"action\": \"%s\"}]}",
		 (const char *)arg);
	load_or_die(json);
	pgid(0);
	_exit(0);
}

static void assert_killed_by_sigsys(const char *action)
{
	int st = child_run(dies_on_getpgid, (void *)action);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void kill_action_kills_with_sigsys(void **state)
{
	assert_killed_by_sigsys("SCMP_ACT_KILL");
}

static void kill_thread_action_kills_with_sigsys(void **state)
{
	assert_killed_by_sigsys("SCMP_ACT_KILL_THREAD");
}

static void kill_process_action_kills_with_sigsys(void **state)
{
	assert_killed_by_sigsys("SCMP_ACT_KILL_PROCESS");
}

static volatile sig_atomic_t trapped_syscall = -1;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	trapped_syscall = si->si_syscall;
}

static void trap_action(void *arg)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	CHILD_CHECK(sigaction(SIGSYS, &sa, NULL) == 0);
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		    "[\"getpgid\"], \"action\": \"SCMP_ACT_TRAP\"}]}");
	pgid(0);
	CHILD_CHECK(trapped_syscall == SYS_getpgid);
}

static void trap_action_sends_sigsys_naming_the_syscall(void **state)
{
	CHILD_OK(trap_action, NULL);
}

static void trace_action(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		    "[\"getpgid\"], \"action\": \"SCMP_ACT_TRACE\", \"errnoRet\": 5}]}");
	/* No tracer attached: the kernel fails the call with ENOSYS. */
	CHILD_CHECK(pgid(0) == -1 && errno == ENOSYS);
}

static void trace_action_without_tracer_fails_with_enosys(void **state)
{
	CHILD_OK(trace_action, NULL);
}

static void log_action(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 77, "
		    "\"syscalls\": [{\"names\": [" MINIMAL_ALLOW
		    "], \"action\": \"SCMP_ACT_ALLOW\"},"
		    "{\"names\": [\"getpgid\"], \"action\": \"SCMP_ACT_LOG\"}]}");
	CHILD_CHECK(pgid(0) >= 0);
	errno = 0;
	CHILD_CHECK(marked(syscall(SYS_getppid)));
}

static void log_action_lets_the_call_through(void **state)
{
	CHILD_OK(log_action, NULL);
}

static void allow_action(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_KILL_PROCESS\", \"syscalls\": [{\"names\": "
		    "[" MINIMAL_ALLOW ", \"getpgid\"], \"action\": \"SCMP_ACT_ALLOW\"}]}");
	CHILD_CHECK(pgid(0) >= 0);
}

static void allow_action_lets_the_call_through(void **state)
{
	CHILD_OK(allow_action, NULL);
}

/* ---- architectures, flags, unknown names ---- */

static void arches_and_flags(void *arg)
{
	load_or_die(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\","
#if defined(__x86_64__)
	    " \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"],"
#elif defined(__aarch64__)
	    " \"architectures\": [\"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_ARM\"],"
#endif
	    " \"flags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_LOG\"],"
	    " \"syscalls\": [{\"names\": [\"getpgid\", \"no_such_syscall_berth\"],"
	    " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 77}]}");
	CHILD_CHECK(marked(pgid(0)));
	CHILD_CHECK(proc_status_hex("Seccomp") == 2);
}

static void architectures_flags_and_unknown_syscall_names_are_accepted(void **state)
{
	CHILD_OK(arches_and_flags, NULL);
}

/* ---- refusals, by building only ---- */

static void assert_refused(const char *json, const char *const *words)
{
	yajl_val v = parse(json);
	struct seccomp_filter *f = NULL;
	struct berr err;
	assert_int_equal(seccomp_filter_oci(v, &f, &err), -1);
	assert_null(f);
	for (size_t i = 0; words[i]; i++) {
		if (!strstr(err.msg, words[i]))
			fail_msg("\"%s\" does not name \"%s\"", err.msg, words[i]);
	}
	yajl_tree_free(v);
}

#define REFUSED(test, json, ...)                                                                   \
	static void test(void **state)                                                             \
	{                                                                                          \
		assert_refused(json, (const char *const[]){__VA_ARGS__, NULL});                    \
	}

REFUSED(unknown_top_level_field_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"comment\": \"x\"}", "linux.seccomp",
	"\"comment\"")
REFUSED(unknown_syscall_field_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {}}]}",
	"syscalls[0]", "\"includes\"")
REFUSED(unknown_arg_field_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 1,"
	" \"op\": \"SCMP_CMP_EQ\", \"mask\": 3}]}]}",
	"syscalls[0].args[0]", "\"mask\"")
REFUSED(unknown_action_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_MAYBE\"}]}",
	"syscalls[0]", "SCMP_ACT_MAYBE")
REFUSED(unknown_default_action_is_refused_by_name, "{\"defaultAction\": \"SCMP_ACT_SOMETIMES\"}",
	"defaultAction", "SCMP_ACT_SOMETIMES")
REFUSED(notify_action_is_refused_for_want_of_a_listener,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_NOTIFY\"}]}",
	"SCMP_ACT_NOTIFY", "listener")
REFUSED(listener_path_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/x.sock\"}",
	"listenerPath")
REFUSED(unknown_operator_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1,"
	" \"op\": \"SCMP_CMP_ABOUT\"}]}]}",
	"args[0]", "SCMP_CMP_ABOUT")
REFUSED(unknown_architecture_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_Z80\"]}",
	"architectures[0]", "SCMP_ARCH_Z80")
REFUSED(unknown_flag_is_refused_by_name,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_FAST\"]}",
	"flags[0]", "SECCOMP_FILTER_FLAG_FAST")
REFUSED(
    listener_flag_is_refused_by_name,
    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_NEW_LISTENER\"]}",
    "SECCOMP_FILTER_FLAG_NEW_LISTENER")
REFUSED(errno_ret_on_an_action_without_one_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1}]}",
	"syscalls[0]", "SCMP_ACT_ALLOW")
REFUSED(errno_ret_beyond_4095_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 70000}", "defaultErrnoRet",
	"70000")
REFUSED(argument_index_beyond_5_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 6, \"value\": 1,"
	" \"op\": \"SCMP_CMP_EQ\"}]}]}",
	"args[0].index", "6")
REFUSED(negative_value_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": -1,"
	" \"op\": \"SCMP_CMP_EQ\"}]}]}",
	"args[0].value")
REFUSED(value_beyond_2_to_the_64_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0,"
	" \"value\": 18446744073709551616, \"op\": \"SCMP_CMP_EQ\"}]}]}",
	"args[0].value")
REFUSED(missing_default_action_is_refused, "{\"syscalls\": []}", "defaultAction")
REFUSED(syscall_entry_without_names_is_refused,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [],"
	" \"action\": \"SCMP_ACT_ERRNO\"}]}",
	"syscalls[0].names")
REFUSED(more_than_six_conditions_are_refused,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"],"
	" \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
	"{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 1, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 2, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 3, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 4, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 5, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}]}]}",
	"syscalls[0].args")
REFUSED(profile_that_is_not_an_object_is_refused, "[1, 2]", "linux.seccomp")
/* libseccomp 2.5 never returns from the second rule (fuzz_seccomp_oci found
 * it): rules of one syscall that begin with the same condition, not
 * SCMP_CMP_EQ, and then differ. */
REFUSED(rules_libseccomp_cannot_build_are_refused_naming_both_entries,
	"{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
	"{\"names\": [\"getpriority\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
	"{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_LE\"},"
	"{\"index\": 1, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]},"
	"{\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ERRNO\"},"
	"{\"names\": [\"getpriority\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
	"{\"index\": 2, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	"{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_LE\"}]}]}",
	"syscalls[2]", "getpriority", "syscalls[0]", "libseccomp")

static void rules_beginning_alike_with_equality(void *arg)
{
	load_or_die("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
		    "{\"names\": [\"getpriority\"], \"action\": \"SCMP_ACT_ERRNO\","
		    " \"errnoRet\": 77, \"args\": ["
		    "{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
		    "{\"index\": 1, \"value\": 0, \"op\": \"SCMP_CMP_EQ\"}]},"
		    "{\"names\": [\"getpriority\"], \"action\": \"SCMP_ACT_ERRNO\","
		    " \"errnoRet\": 77, \"args\": ["
		    "{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
		    "{\"index\": 2, \"value\": 5, \"op\": \"SCMP_CMP_EQ\"}]}]}");
	CHILD_CHECK(marked(syscall(SYS_getpriority, 1, 0, 0)));
	CHILD_CHECK(marked(syscall(SYS_getpriority, 1, 99, 5)));
	CHILD_CHECK(!marked(syscall(SYS_getpriority, 1, 99, 0)));
	CHILD_CHECK(!marked(syscall(SYS_getpriority, 0, 0, 5)));
}

static void rules_that_begin_alike_with_an_equality_still_build_and_apply(void **state)
{
	CHILD_OK(rules_beginning_alike_with_equality, NULL);
}

static void more_syscall_entries_than_the_limit_are_refused(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(
	    strbuf_puts(&sb, "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["), 0);
	for (int i = 0; i < 1100; i++)
		assert_int_equal(
		    strbuf_printf(&sb, "%s{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\"}",
				  i ? "," : ""),
		    0);
	assert_int_equal(strbuf_puts(&sb, "]}"), 0);
	assert_refused(sb.buf, (const char *const[]){"syscalls", "entries", NULL});
	strbuf_release(&sb);
}

static void same_profile_is_built_once_with_a_cache(void **state)
{
	char tmpl[] = "/tmp/berth-seccomp-oci-XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	struct berr err;
	assert_int_equal(seccomp_set_cache_dir(dir, &err), 0);
	const char *json = "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\":"
			   " [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"}]}";
	yajl_val v = parse(json);
	struct seccomp_filter *a, *b;
	assert_int_equal(seccomp_filter_oci(v, &a, &err), 0);
	assert_int_equal(seccomp_filter_oci(v, &b, &err), 0);
	cleanup_closedir DIR *d = opendir(dir);
	assert_non_null(d);
	int files = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (!strncmp(e->d_name, "oci-", 4))
			files++;
	assert_int_equal(files, 1);
	seccomp_filter_free(a);
	seccomp_filter_free(b);
	yajl_tree_free(v);
	assert_int_equal(seccomp_set_cache_dir(NULL, &err), 0);
	assert_int_equal(fs_remove_tree(dir, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(op_ne_matches_other_values),
	    cmocka_unit_test(op_lt_matches_smaller_values),
	    cmocka_unit_test(op_le_matches_smaller_or_equal_values),
	    cmocka_unit_test(op_eq_matches_the_value),
	    cmocka_unit_test(op_ge_matches_greater_or_equal_values),
	    cmocka_unit_test(op_gt_matches_greater_values),
	    cmocka_unit_test(op_masked_eq_compares_under_the_mask),
	    cmocka_unit_test(values_up_to_2_to_the_64_are_exact),
	    cmocka_unit_test(conditions_on_different_arguments_must_all_hold),
	    cmocka_unit_test(conditions_on_one_argument_match_either_as_runc),
	    cmocka_unit_test(default_errno_action_returns_default_errno_ret),
	    cmocka_unit_test(errno_action_without_errno_ret_returns_eperm),
	    cmocka_unit_test(syscall_newer_than_the_profile_fails_with_enosys),
	    cmocka_unit_test(kill_action_kills_with_sigsys),
	    cmocka_unit_test(kill_thread_action_kills_with_sigsys),
	    cmocka_unit_test(kill_process_action_kills_with_sigsys),
	    cmocka_unit_test(trap_action_sends_sigsys_naming_the_syscall),
	    cmocka_unit_test(trace_action_without_tracer_fails_with_enosys),
	    cmocka_unit_test(log_action_lets_the_call_through),
	    cmocka_unit_test(allow_action_lets_the_call_through),
	    cmocka_unit_test(architectures_flags_and_unknown_syscall_names_are_accepted),
	    cmocka_unit_test(unknown_top_level_field_is_refused_by_name),
	    cmocka_unit_test(unknown_syscall_field_is_refused_by_name),
	    cmocka_unit_test(unknown_arg_field_is_refused_by_name),
	    cmocka_unit_test(unknown_action_is_refused_by_name),
	    cmocka_unit_test(unknown_default_action_is_refused_by_name),
	    cmocka_unit_test(notify_action_is_refused_for_want_of_a_listener),
	    cmocka_unit_test(listener_path_is_refused_by_name),
	    cmocka_unit_test(unknown_operator_is_refused_by_name),
	    cmocka_unit_test(unknown_architecture_is_refused_by_name),
	    cmocka_unit_test(unknown_flag_is_refused_by_name),
	    cmocka_unit_test(listener_flag_is_refused_by_name),
	    cmocka_unit_test(errno_ret_on_an_action_without_one_is_refused),
	    cmocka_unit_test(errno_ret_beyond_4095_is_refused),
	    cmocka_unit_test(argument_index_beyond_5_is_refused),
	    cmocka_unit_test(negative_value_is_refused),
	    cmocka_unit_test(value_beyond_2_to_the_64_is_refused),
	    cmocka_unit_test(missing_default_action_is_refused),
	    cmocka_unit_test(syscall_entry_without_names_is_refused),
	    cmocka_unit_test(more_than_six_conditions_are_refused),
	    cmocka_unit_test(profile_that_is_not_an_object_is_refused),
	    cmocka_unit_test(rules_libseccomp_cannot_build_are_refused_naming_both_entries),
	    cmocka_unit_test(rules_that_begin_alike_with_an_equality_still_build_and_apply),
	    cmocka_unit_test(more_syscall_entries_than_the_limit_are_refused),
	    cmocka_unit_test(same_profile_is_built_once_with_a_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
