/* shim/cgroup: the /proc/<pid>/cgroup parser, the v1/v2 conversions, the
 * device program (run here by a small BPF interpreter), and create/open on
 * directories that stand in for a cgroupfs root in the v1, v2 and hybrid
 * layouts, checking every file written and what was written to it. Needs
 * no privileges; test_cgroup_real does the same against the kernel. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "shim/cgroup.h"
#include "shim/cgroup_internal.h"

/* ---- /proc/<pid>/cgroup ---- */

static int parse(const char *text, char *name, size_t cap, struct berr *err)
{
	return cgroup_parse_proc_cgroup(text, strlen(text), name, cap, err);
}

static void proc_cgroup_unified_line_names_the_instance(void **state)
{
	char name[65];
	struct berr err;
	assert_int_equal(parse("0::/berth/web\n", name, sizeof(name), &err), 0);
	assert_string_equal(name, "web");
}

static void proc_cgroup_path_below_the_instance_names_it(void **state)
{
	char name[65];
	struct berr err;
	assert_int_equal(parse("0::/berth/web/sub/deeper\n", name, sizeof(name), &err), 0);
	assert_string_equal(name, "web");
}

static void proc_cgroup_v1_memory_line_is_used_without_unified_line(void **state)
{
	char name[65];
	struct berr err;
	const char *v1 = "9:name=systemd:/system.slice\n8:pids:/berth/db\n4:memory:/berth/db\n"
			 "2:cpu,cpuacct:/berth/db\n";
	assert_int_equal(parse(v1, name, sizeof(name), &err), 0);
	assert_string_equal(name, "db");
	assert_int_equal(parse("3:pids:/berth/p1\n", name, sizeof(name), &err), 0);
	assert_string_equal(name, "p1");
}

static void proc_cgroup_hybrid_reads_the_unified_line(void **state)
{
	char name[65];
	struct berr err;
	const char *hybrid = "9:name=systemd:/\n4:memory:/berth/a.b-c_d\n0::/berth/a.b-c_d\n";
	assert_int_equal(parse(hybrid, name, sizeof(name), &err), 0);
	assert_string_equal(name, "a.b-c_d");
}

static void proc_cgroup_v1_line_counts_when_unified_is_the_root(void **state)
{
	/* cgroup2 mounted once on a v1 host shows every process in "0::/". */
	char name[65];
	struct berr err;
	assert_int_equal(parse("4:memory:/berth/web\n0::/\n", name, sizeof(name), &err), 0);
	assert_string_equal(name, "web");
}

static void proc_cgroup_outside_berth_is_no_instance(void **state)
{
	char name[65];
	struct berr err;
	static const char *const outside[] = {
	    "0::/\n",
	    "0::/system.slice/berth.service\n",
	    "0::/berth\n",
	    "0::/berth/\n",
	    "0::/berthx/web\n",
	    "0::/other/berth/web\n",
	    "3:cpu:/berth/web\n0::/\n", /* only memory or pids lines decide on v1 */
	    "",
	};
	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		int r = parse(outside[i], name, sizeof(name), &err);
		if (r != 1)
			fail_msg("\"%s\": got %d (%s)", outside[i], r, r < 0 ? err.msg : name);
	}
}

static void proc_cgroup_two_instances_are_refused(void **state)
{
	char name[65];
	struct berr err;
	assert_int_equal(parse("4:memory:/berth/a\n0::/berth/b\n", name, sizeof(name), &err), -1);
	assert_non_null(strstr(err.msg, "two instances"));
}

static void proc_cgroup_forged_line_from_a_cgroup_name_is_refused(void **state)
{
	/* A module allowed to make cgroups under its own names one
	 * "x\n0::/berth/other": the kernel then prints a second unified line. */
	char name[65];
	struct berr err;
	assert_int_equal(parse("0::/berth/web/x\n0::/berth/web\n", name, sizeof(name), &err), -1);
	assert_non_null(strstr(err.msg, "listed twice"));
	/* On v1, the forged unified line contradicts the real ones. */
	assert_int_equal(parse("4:memory:/berth/web/x\n0::/berth/other\n8:pids:/berth/web\n", name,
			       sizeof(name), &err),
			 -1);
}

static void proc_cgroup_invalid_instance_names_are_refused(void **state)
{
	char name[65];
	struct berr err;
	static const char *const bad[] = {
	    "0::/berth/..\n",
	    "0::/berth/.hidden\n",
	    "0::/berth/-dash\n",
	    "0::/berth/sp ace\n",
	    "0::/berth/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 65
											      */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], name, sizeof(name), &err) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err.msg, "no valid instance"));
	}
}

static void proc_cgroup_malformed_lines_are_refused(void **state)
{
	char name[65];
	struct berr err;
	static const char *const bad[] = {
	    "garbage\n",    "x::/berth/a\n", ":memory:/berth/a\n",	"0:/berth/a\n",
	    "0::berth/a\n", "0::\n",	     "12345678901::/berth/a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], name, sizeof(name), &err) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(cgroup_parse_proc_cgroup("0::/berth/a\0b\n", 14, name, sizeof(name), &err),
			 -1);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void proc_cgroup_bounds_are_enforced(void **state)
{
	char name[65];
	struct berr err;
	static char line[CGROUP_PROC_MAX_LINE + 20];
	memcpy(line, "0::/", 4);
	memset(line + 4, 'a', sizeof(line) - 5);
	line[sizeof(line) - 1] = '\0';
	assert_int_equal(parse(line, name, sizeof(name), &err), -1);
	assert_non_null(strstr(err.msg, "longer than"));

	char many[CGROUP_PROC_MAX_LINES * 16 + 64] = "";
	size_t len = 0;
	for (int i = 1; i <= CGROUP_PROC_MAX_LINES + 1; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "%d:c%d:/\n", i, i);
	assert_int_equal(parse(many, name, sizeof(name), &err), -1);
	assert_non_null(strstr(err.msg, "lines"));

	assert_int_equal(
	    cgroup_parse_proc_cgroup("0::/", CGROUP_PROC_MAX_BYTES + 1, name, sizeof(name), &err),
	    -1);
}

static void proc_cgroup_small_name_buffer_is_an_error(void **state)
{
	char name[4];
	struct berr err;
	assert_int_equal(parse("0::/berth/longer\n", name, sizeof(name), &err), -1);
	assert_int_equal(err.code, ERANGE);
	assert_int_equal(parse("0::/berth/abc\n", name, sizeof(name), &err), 0);
	assert_string_equal(name, "abc");
}

static void instance_of_pid_of_a_missing_process_says_so(void **state)
{
	char name[65];
	struct berr err;
	assert_int_equal(cgroup_instance_of_pid(0, name, sizeof(name), &err), -1);
	/* pid_max is at most 4194304. */
	assert_int_equal(cgroup_instance_of_pid(4194305 + 7, name, sizeof(name), &err), -1);
	assert_int_equal(err.code, ESRCH);
	assert_non_null(strstr(err.msg, "/proc/4194312/cgroup"));
}

/* ---- conversions ---- */

static void shares_convert_to_weight_as_crun_does(void **state)
{
	assert_int_equal(cgroup_shares_to_weight(2), 1);
	assert_int_equal(cgroup_shares_to_weight(1024), 39);
	assert_int_equal(cgroup_shares_to_weight(512), 20);
	assert_int_equal(cgroup_shares_to_weight(262144), 10000);
	assert_int_equal(cgroup_shares_to_weight(1), 1);
	assert_int_equal(cgroup_shares_to_weight(1 << 30), 10000);
}

static void device_rules_are_checked(void **state)
{
	struct berr err;
	struct cgroup_device ok = {'c', 1, 3, "rwm", true};
	assert_int_equal(cgroup_device_check(&ok, &err), 0);
	struct cgroup_device bad_type = {'x', 1, 3, "rwm", true};
	assert_int_equal(cgroup_device_check(&bad_type, &err), -1);
	struct cgroup_device bad_access = {'c', 1, 3, "rwx", true};
	assert_int_equal(cgroup_device_check(&bad_access, &err), -1);
	struct cgroup_device twice = {'c', 1, 3, "rr", true};
	assert_int_equal(cgroup_device_check(&twice, &err), -1);
	struct cgroup_device empty = {'c', 1, 3, "", true};
	assert_int_equal(cgroup_device_check(&empty, &err), -1);
	struct cgroup_device big = {'b', (int64_t)1 << 40, 0, "r", true};
	assert_int_equal(cgroup_device_check(&big, &err), -1);
	struct cgroup_device neg = {'b', 8, -2, "r", true};
	assert_int_equal(cgroup_device_check(&neg, &err), -1);
}

static void device_rules_become_v1_lines(void **state)
{
	char line[64];
	struct cgroup_device null = {'c', 1, 3, "rwm", true};
	assert_int_equal(cgroup_device_v1_line(&null, line, sizeof(line)), 0);
	assert_string_equal(line, "c 1:3 rwm");
	struct cgroup_device pts = {'c', 136, -1, "rw", true};
	assert_int_equal(cgroup_device_v1_line(&pts, line, sizeof(line)), 0);
	assert_string_equal(line, "c 136:* rw");
	struct cgroup_device any = {'b', -1, -1, "m", true};
	assert_int_equal(cgroup_device_v1_line(&any, line, sizeof(line)), 0);
	assert_string_equal(line, "b *:* m");
}

/* Runs a cgroup device program the way the kernel would for one access:
 * only the instructions the generator uses are known; anything else fails. */
static int run_device_program(const struct bpf_insn *p, int n, int type, int access, int major,
			      int minor)
{
	uint32_t ctx[3] = {(uint32_t)access << 16 | (uint32_t)type, (uint32_t)major,
			   (uint32_t)minor};
	uint64_t r[11] = {0};
	for (int pc = 0, steps = 0; pc < n && steps < 100000; pc++, steps++) {
		const struct bpf_insn *i = &p[pc];
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W:
			assert_int_equal(i->src_reg, 1);
			assert_true(i->off >= 0 && i->off <= 8 && i->off % 4 == 0);
			r[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			r[i->dst_reg] = (uint32_t)(r[i->dst_reg] & (uint32_t)i->imm);
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			r[i->dst_reg] = (uint32_t)r[i->dst_reg] >> i->imm;
			break;
		case BPF_ALU | BPF_MOV | BPF_X:
			r[i->dst_reg] = (uint32_t)r[i->src_reg];
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			r[i->dst_reg] = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += i->off;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			if (r[i->dst_reg] == (uint64_t)(int64_t)i->imm)
				pc += i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)r[0];
		default:
			fail_msg("unknown instruction 0x%02x at %d", i->code, pc);
		}
	}
	fail_msg("program ran off its end");
	return -1;
}

#define R   BPF_DEVCG_ACC_READ
#define W   BPF_DEVCG_ACC_WRITE
#define M   BPF_DEVCG_ACC_MKNOD
#define CHR BPF_DEVCG_DEV_CHAR
#define BLK BPF_DEVCG_DEV_BLOCK

static void device_program_allows_only_the_default_set(void **state)
{
	struct bpf_insn prog[CGROUP_BPF_MAX_INSNS];
	int n = cgroup_devices_program(cgroup_default_devices, cgroup_default_devices_count, prog,
				       CGROUP_BPF_MAX_INSNS);
	assert_true(n > 0);
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 1, 3), 1);   /* null */
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 9), 1);	      /* urandom */
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 136, 7), 1); /* pts/7 */
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 1), 0);	      /* mem */
	assert_int_equal(run_device_program(prog, n, BLK, R, 8, 0), 0);	      /* sda */
	assert_int_equal(run_device_program(prog, n, BLK, M, 8, 0), 1);	      /* mknod only */
	assert_int_equal(run_device_program(prog, n, CHR, M | R, 10, 200), 0);
}

static void device_program_deny_rule_covers_any_of_its_access(void **state)
{
	const struct cgroup_device rules[] = {
	    {'c', 1, -1, "rwm", true},
	    {'c', 1, 5, "wm", false},
	};
	struct bpf_insn prog[64];
	int n = cgroup_devices_program(rules, 2, prog, 64);
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 5), 1);
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 1, 5), 0);
	assert_int_equal(run_device_program(prog, n, CHR, M, 1, 5), 0);
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 1, 3), 1);
}

static void device_program_last_matching_rule_decides(void **state)
{
	const struct cgroup_device rules[] = {
	    {'a', -1, -1, "rwm", true},
	    {'c', 1, 5, "rwm", false},
	    {'c', 1, -1, "w", false},
	};
	struct bpf_insn prog[64];
	int n = cgroup_devices_program(rules, 3, prog, 64);
	assert_true(n > 0);
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 3), 1);
	assert_int_equal(run_device_program(prog, n, CHR, W, 1, 3), 0);
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 1, 3), 0);
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 5), 0);
	assert_int_equal(run_device_program(prog, n, BLK, R | W | M, 8, 1), 1);
}

static void device_program_checks_access_as_a_subset(void **state)
{
	const struct cgroup_device rules[] = {{'c', 4, 64, "rw", true}};
	struct bpf_insn prog[64];
	int n = cgroup_devices_program(rules, 1, prog, 64);
	assert_int_equal(run_device_program(prog, n, CHR, R, 4, 64), 1);
	assert_int_equal(run_device_program(prog, n, CHR, R | W, 4, 64), 1);
	assert_int_equal(run_device_program(prog, n, CHR, M, 4, 64), 0);
	assert_int_equal(run_device_program(prog, n, CHR, R | M, 4, 64), 0);
	assert_int_equal(run_device_program(prog, n, BLK, R, 4, 64), 0);
	assert_int_equal(run_device_program(prog, n, CHR, R, 4, 65), 0);
}

static void device_program_without_rules_denies_everything(void **state)
{
	struct bpf_insn prog[16];
	int n = cgroup_devices_program(NULL, 0, prog, 16);
	assert_int_equal(run_device_program(prog, n, CHR, R, 1, 3), 0);
	assert_int_equal(
	    cgroup_devices_program(cgroup_default_devices, cgroup_default_devices_count, prog, 16),
	    -1);
}

/* ---- stand-in cgroupfs trees ---- */

struct tree {
	char root[64];
};

static void put(const char *root, const char *rel, const char *content)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	struct berr err;
	if (fs_mkdir_p(dir, 0755, &err) < 0)
		fail_msg("%s", err.msg);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *slurp(const char *root, const char *rel)
{
	static char buf[4096];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("open %s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *root, const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return access(path, F_OK) == 0;
}

static int make_tree(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	snprintf(t->root, sizeof(t->root), "/tmp/berth-cgtest-XXXXXX");
	if (!mkdtemp(t->root))
		return -1;
	*state = t;
	return 0;
}

static int remove_tree(void **state)
{
	struct tree *t = *state;
	struct berr err;
	assert_int_equal(fs_remove_tree(t->root, &err), 0);
	free(t);
	return 0;
}

/* The files a cgroup2 directory has, empty so that each write shows. */
static void v2_cgroup(const char *root, const char *dir, const char *controllers)
{
	static const char *const files[] = {"cgroup.subtree_control",
					    "cgroup.procs",
					    "cgroup.freeze",
					    "cgroup.events",
					    "memory.max",
					    "memory.swap.max",
					    "memory.current",
					    "memory.events",
					    "pids.max",
					    "cpu.max",
					    "cpu.weight"};
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s%scgroup.controllers", dir, dir[0] ? "/" : "");
	put(root, rel, controllers);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(rel, sizeof(rel), "%s%s%s", dir, dir[0] ? "/" : "", files[i]);
		put(root, rel, "");
	}
}

static void v2_tree(const char *root, const char *name)
{
	char inst[128];
	snprintf(inst, sizeof(inst), "berth/%s", name);
	v2_cgroup(root, "", "cpuset cpu io memory hugetlb pids rdma misc\n");
	v2_cgroup(root, "berth", "cpu memory pids\n");
	v2_cgroup(root, inst, "cpu memory pids\n");
}

static void detect_v2_stand_in(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "x");
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(t->root, &l, &err), 0);
	assert_int_equal(l, CGROUP_LAYOUT_V2);
	assert_string_equal(cgroup_layout_name(l), "v2");
}

static void v2_create_writes_every_limit_to_its_file(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {
	    .memory = 64 << 20,
	    .memory_swap = 96 << 20,
	    .pids_limit = 50,
	    .cpu_quota_us = 50000,
	    .cpu_period_us = 100000,
	    .cpu_shares = 512,
	    .allow_all_devices = true,
	};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "cgroup.subtree_control"), "+memory +pids +cpu\n");
	assert_string_equal(slurp(t->root, "berth/cgroup.subtree_control"), "+memory +pids +cpu\n");
	assert_string_equal(slurp(t->root, "berth/web/memory.max"), "67108864\n");
	assert_string_equal(slurp(t->root, "berth/web/memory.swap.max"), "33554432\n");
	assert_string_equal(slurp(t->root, "berth/web/pids.max"), "50\n");
	assert_string_equal(slurp(t->root, "berth/web/cpu.max"), "50000 100000\n");
	assert_string_equal(slurp(t->root, "berth/web/cpu.weight"), "20\n");
	/* Nothing else was touched. */
	assert_string_equal(slurp(t->root, "berth/web/cgroup.subtree_control"), "");
	assert_string_equal(slurp(t->root, "berth/web/cgroup.freeze"), "");
	assert_string_equal(slurp(t->root, "berth/web/cgroup.procs"), "");
	assert_false(exists(t->root, "berth/web/memory.memsw.limit_in_bytes"));

	assert_int_equal(cgroup_add_pid(cg, 4242, &err), 0);
	assert_string_equal(slurp(t->root, "berth/web/cgroup.procs"), "4242\n");
	assert_true(cgroup_unified_fd(cg) >= 0);
	cgroup_free(cg);
}

static void v2_unlimited_swap_is_max(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {.memory = 1 << 20, .memory_swap = -1, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "berth/web/memory.max"), "1048576\n");
	assert_string_equal(slurp(t->root, "berth/web/memory.swap.max"), "max\n");
	cgroup_free(cg);
}

static void v2_quota_without_period_keeps_the_default_period(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {.cpu_quota_us = 150000, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "berth/web/cpu.max"), "150000 100000\n");
	cgroup_free(cg);
}

static void v2_leftover_cgroup_gets_its_limits_reset(void **state)
{
	/* The stand-in's instance directory exists already, as one left by a
	 * crashed shim would: limits not asked for go back to unlimited. */
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {.memory = 8 << 20, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "berth/web/memory.max"), "8388608\n");
	assert_string_equal(slurp(t->root, "berth/web/memory.swap.max"), "max\n");
	assert_string_equal(slurp(t->root, "berth/web/pids.max"), "max\n");
	assert_string_equal(slurp(t->root, "berth/web/cpu.max"), "max 100000\n");
	assert_string_equal(slurp(t->root, "berth/web/cpu.weight"), "100\n");
	cgroup_free(cg);
}

static void v2_controllers_already_enabled_are_not_written_again(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	put(t->root, "cgroup.subtree_control", "cpu memory pids\n");
	put(t->root, "berth/cgroup.subtree_control", "memory\n");
	struct cgroup_limits l = {.allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "cgroup.subtree_control"), "cpu memory pids\n");
	assert_string_equal(slurp(t->root, "berth/cgroup.subtree_control"), "memory\n+pids +cpu\n");
	cgroup_free(cg);
}

static void v2_limit_without_its_controller_is_refused_by_name(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	put(t->root, "berth/web/cgroup.controllers", "cpu memory\n");
	struct cgroup_limits l = {.pids_limit = 10, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	assert_int_equal(cgroup_create(t->root, "web", &l, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "berth/web"));
	assert_non_null(strstr(err.msg, "no pids controller"));
}

static void v2_device_rules_need_a_real_cgroup2(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {0};
	struct cgroup *cg;
	struct berr err;
	assert_int_equal(cgroup_create(t->root, "web", &l, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "not a cgroup2 file system"));
	assert_non_null(strstr(err.msg, "berth/web"));
}

static void v2_oom_is_counted_from_creation(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	put(t->root, "berth/web/memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n");
	put(t->root, "berth/web/memory.current", "123456\n");
	struct cgroup_limits l = {.allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "web", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(cgroup_oom_killed(cg));
	assert_int_equal(cgroup_memory_current(cg), 123456);
	put(t->root, "berth/web/memory.events", "low 0\nhigh 0\nmax 4\noom 3\noom_kill 3\n");
	assert_true(cgroup_oom_killed(cg));
	cgroup_free(cg);
}

static void memory_swap_below_memory_is_refused(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup_limits l = {.memory = 8 << 20, .memory_swap = 4 << 20};
	struct cgroup *cg;
	struct berr err;
	assert_int_equal(cgroup_create(t->root, "web", &l, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "below the memory limit"));
	struct cgroup_limits only_swap = {.memory_swap = 4 << 20};
	assert_int_equal(cgroup_create(t->root, "web", &only_swap, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "needs a memory limit"));
}

static void invalid_instance_names_are_refused(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	struct cgroup *cg;
	struct berr err;
	static const char *const bad[] = {"", "..", "../web", "a/b", ".x", "-x", "a b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cgroup_create(t->root, bad[i], NULL, &cg, &err) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err.msg, "not a valid name"));
		assert_int_equal(cgroup_open(t->root, bad[i], &cg, &err), -1);
	}
}

/* v1: one directory per hierarchy, "cpu,cpuacct" co-mounted, a named one. */
static void v1_cgroup(const char *root, const char *dir, const char *const *files)
{
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s/tasks", dir);
	put(root, rel, "");
	snprintf(rel, sizeof(rel), "%s/cgroup.procs", dir);
	put(root, rel, "");
	for (; files && *files; files++) {
		snprintf(rel, sizeof(rel), "%s/%s", dir, *files);
		put(root, rel, "");
	}
}

static void v1_tree(const char *root, const char *name, bool with_oom_kill)
{
	static const char *const mem[] = {"memory.limit_in_bytes",
					  "memory.memsw.limit_in_bytes",
					  "memory.usage_in_bytes",
					  "memory.oom_control",
					  "memory.failcnt",
					  "memory.max_usage_in_bytes",
					  NULL};
	static const char *const cpu[] = {"cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares",
					  NULL};
	static const char *const pids[] = {"pids.max", NULL};
	static const char *const dev[] = {"devices.allow", "devices.deny", NULL};
	static const char *const frz[] = {"freezer.state", NULL};
	static const char *const cpuset[] = {"cpuset.cpus", "cpuset.mems", NULL};
	struct {
		const char *dir;
		const char *const *files;
	} h[] = {{"memory", mem},  {"cpu,cpuacct", cpu}, {"pids", pids},   {"devices", dev},
		 {"freezer", frz}, {"cpuset", cpuset},	 {"systemd", NULL}};
	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) {
		char rel[PATH_MAX];
		v1_cgroup(root, h[i].dir, NULL);
		snprintf(rel, sizeof(rel), "%s/berth", h[i].dir);
		v1_cgroup(root, rel, h[i].files);
		snprintf(rel, sizeof(rel), "%s/berth/%s", h[i].dir, name);
		v1_cgroup(root, rel, h[i].files);
	}
	put(root, "cpuset/cpuset.cpus", "0-3\n");
	put(root, "cpuset/cpuset.mems", "0\n");
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "memory/berth/%s/memory.oom_control", name);
	put(root, rel,
	    with_oom_kill ? "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
			  : "oom_kill_disable 0\nunder_oom 0\n");
	/* A symlink as systemd makes for co-mounted controllers. */
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s/cpu", root);
	assert_int_equal(symlink("cpu,cpuacct", link), 0);
}

static void detect_v1_stand_in(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "x", true);
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(t->root, &l, &err), 0);
	assert_int_equal(l, CGROUP_LAYOUT_V1);
	assert_string_equal(cgroup_layout_name(l), "v1");
}

static void detect_hybrid_stand_in(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "x", true);
	v2_cgroup(t->root, "unified", "hugetlb\n");
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(t->root, &l, &err), 0);
	assert_int_equal(l, CGROUP_LAYOUT_HYBRID);
	assert_string_equal(cgroup_layout_name(l), "hybrid");
}

static void detect_refuses_a_root_without_hierarchies(void **state)
{
	struct tree *t = *state;
	put(t->root, "somedir/file", "");
	enum cgroup_layout l;
	struct berr err;
	assert_int_equal(cgroup_detect(t->root, &l, &err), -1);
	assert_non_null(strstr(err.msg, "no cgroup hierarchy"));
	assert_non_null(strstr(err.msg, t->root));
	assert_int_equal(cgroup_detect("/nonexistent-berth-root", &l, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent-berth-root"));
}

static void v1_create_writes_every_limit_to_its_hierarchy(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	const struct cgroup_device devs[] = {
	    {'c', 1, 3, "rwm", true},
	    {'c', 188, -1, "rw", true},
	    {'a', -1, -1, "m", true},
	    {'c', 188, 5, "w", false},
	};
	struct cgroup_limits l = {
	    .memory = 32 << 20,
	    .memory_swap = 48 << 20,
	    .pids_limit = 64,
	    .cpu_quota_us = 20000,
	    .cpu_period_us = 50000,
	    .cpu_shares = 256,
	    .devices = devs,
	    .n_devices = 4,
	};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "memory/berth/db/memory.limit_in_bytes"), "33554432\n");
	assert_string_equal(slurp(t->root, "memory/berth/db/memory.memsw.limit_in_bytes"),
			    "50331648\n");
	assert_string_equal(slurp(t->root, "pids/berth/db/pids.max"), "64\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.cfs_period_us"), "50000\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.cfs_quota_us"), "20000\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.shares"), "256\n");
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.deny"), "a\nc 188:5 w\n");
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.allow"),
			    "c 1:3 rwm\nc 188:* rw\nc *:* m\nb *:* m\n");
	/* A cpuset cgroup gets the parent's CPUs and memory nodes. */
	assert_string_equal(slurp(t->root, "cpuset/berth/cpuset.cpus"), "0-3\n");
	assert_string_equal(slurp(t->root, "cpuset/berth/db/cpuset.cpus"), "0-3\n");
	assert_string_equal(slurp(t->root, "cpuset/berth/db/cpuset.mems"), "0\n");
	/* The v1 freezer is not touched when creating. */
	assert_string_equal(slurp(t->root, "freezer/berth/db/freezer.state"), "");

	assert_int_equal(cgroup_add_pid(cg, 777, &err), 0);
	static const char *const all[] = {"memory",  "cpu,cpuacct", "pids",   "devices",
					  "freezer", "cpuset",	    "systemd"};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/berth/db/cgroup.procs", all[i]);
		assert_string_equal(slurp(t->root, rel), "777\n");
	}
	assert_int_equal(cgroup_unified_fd(cg), -1);
	cgroup_free(cg);
}

static void v1_default_devices_follow_deny_all(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "db", NULL, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.deny"), "a\n");
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.allow"),
			    "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\n"
			    "c 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 136:* rwm\n");
	cgroup_free(cg);
}

static void v1_privileged_instance_allows_all_devices(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	struct cgroup_limits l = {.allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.deny"), "");
	assert_string_equal(slurp(t->root, "devices/berth/db/devices.allow"), "a\n");
	cgroup_free(cg);
}

static void v1_leftover_cgroup_gets_its_limits_reset(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	struct cgroup_limits l = {.pids_limit = 5, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "memory/berth/db/memory.limit_in_bytes"), "-1\n");
	assert_string_equal(slurp(t->root, "memory/berth/db/memory.memsw.limit_in_bytes"), "-1\n");
	assert_string_equal(slurp(t->root, "pids/berth/db/pids.max"), "5\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.cfs_period_us"), "100000\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.cfs_quota_us"), "-1\n");
	assert_string_equal(slurp(t->root, "cpu,cpuacct/berth/db/cpu.shares"), "1024\n");
	cgroup_free(cg);
}

static void v1_oom_is_read_from_oom_control(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	put(t->root, "memory/berth/db/memory.usage_in_bytes", "4096\n");
	struct cgroup *cg;
	struct berr err;
	struct cgroup_limits l = {.allow_all_devices = true};
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(cgroup_oom_killed(cg));
	assert_int_equal(cgroup_memory_current(cg), 4096);
	put(t->root, "memory/berth/db/memory.oom_control",
	    "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
	assert_true(cgroup_oom_killed(cg));
	cgroup_free(cg);
}

static void v1_oom_before_linux_4_13_is_the_limit_reached(void **state)
{
	/* No oom_kill line: failcnt growing with the peak at the limit. */
	struct tree *t = *state;
	v1_tree(t->root, "db", false);
	put(t->root, "memory/berth/db/memory.failcnt", "0\n");
	struct cgroup *cg;
	struct berr err;
	struct cgroup_limits l = {.allow_all_devices = true};
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	put(t->root, "memory/berth/db/memory.limit_in_bytes", "16777216\n");
	put(t->root, "memory/berth/db/memory.max_usage_in_bytes", "1048576\n");
	assert_false(cgroup_oom_killed(cg));
	put(t->root, "memory/berth/db/memory.failcnt", "12\n");
	assert_false(cgroup_oom_killed(cg));
	put(t->root, "memory/berth/db/memory.max_usage_in_bytes", "16777216\n");
	assert_true(cgroup_oom_killed(cg));
	cgroup_free(cg);
}

static void hybrid_limits_go_to_v1_and_membership_to_both(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "app", true);
	v2_cgroup(t->root, "unified", "hugetlb\n");
	v2_cgroup(t->root, "unified/berth", "");
	v2_cgroup(t->root, "unified/berth/app", "");
	struct cgroup_limits l = {.memory = 1 << 24, .pids_limit = 9};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "app", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(slurp(t->root, "memory/berth/app/memory.limit_in_bytes"), "16777216\n");
	assert_string_equal(slurp(t->root, "pids/berth/app/pids.max"), "9\n");
	assert_string_equal(slurp(t->root, "unified/berth/app/memory.max"), "");
	assert_string_equal(slurp(t->root, "unified/berth/app/pids.max"), "");
	/* Devices through the v1 controller, not a program on the unified one. */
	assert_string_equal(slurp(t->root, "devices/berth/app/devices.deny"), "a\n");
	/* Nothing the unified root offers is wanted. */
	assert_string_equal(slurp(t->root, "unified/cgroup.subtree_control"), "");
	assert_int_equal(cgroup_add_pid(cg, 31337, &err), 0);
	assert_string_equal(slurp(t->root, "unified/berth/app/cgroup.procs"), "31337\n");
	assert_string_equal(slurp(t->root, "memory/berth/app/cgroup.procs"), "31337\n");
	assert_true(cgroup_unified_fd(cg) >= 0);
	cgroup_free(cg);
}

static void joining_itself_writes_0_to_every_v1_tasks_file_only(void **state)
{
	/* The instance moves itself into its v1 cgroups; the unified one it
	 * is cloned into (clone3), so nothing goes to its cgroup.procs. */
	struct tree *t = *state;
	v1_tree(t->root, "app", true);
	v2_cgroup(t->root, "unified", "hugetlb\n");
	v2_cgroup(t->root, "unified/berth", "");
	v2_cgroup(t->root, "unified/berth/app", "");
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "app", NULL, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_join_self(cg, &err), 0);
	static const char *const v1[] = {"memory",  "cpu,cpuacct", "pids",   "devices",
					 "freezer", "cpuset",	   "systemd"};
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/berth/app/tasks", v1[i]);
		assert_string_equal(slurp(t->root, rel), "0\n");
		snprintf(rel, sizeof(rel), "%s/berth/app/cgroup.procs", v1[i]);
		assert_string_equal(slurp(t->root, rel), "");
	}
	assert_string_equal(slurp(t->root, "unified/berth/app/cgroup.procs"), "");
	cgroup_free(cg);
}

static void v1_hierarchy_for_membership_only_may_fail(void **state)
{
	/* blkio only holds the instance's processes: a cgroup that cannot be
	 * made there is left out, with a warning. */
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	v1_cgroup(t->root, "blkio", NULL);
	put(t->root, "blkio/berth", "a file where the directory should be");
	struct cgroup_limits l = {.allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	if (cgroup_create(t->root, "db", &l, &cg, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(cgroup_add_pid(cg, 99, &err), 0);
	assert_string_equal(slurp(t->root, "memory/berth/db/cgroup.procs"), "99\n");
	/* Nothing is removed from a hierarchy the instance was never in; a
	 * stand-in cgroup directory holds files, so removing fails on those. */
	assert_int_equal(cgroup_destroy(cg, &err), -1);
	assert_null(strstr(err.msg, "blkio"));
	cgroup_free(cg);
}

static void v1_hierarchy_with_a_used_controller_must_not_fail(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pids/berth", t->root);
	struct berr err;
	assert_int_equal(fs_remove_tree(path, &err), 0);
	put(t->root, "pids/berth", "a file where the directory should be");
	struct cgroup *cg;
	assert_int_equal(cgroup_create(t->root, "db", NULL, &cg, &err), -1);
	assert_non_null(strstr(err.msg, "pids/berth"));
}

static void open_finds_an_existing_instance_and_not_a_missing_one(void **state)
{
	struct tree *t = *state;
	v1_tree(t->root, "db", true);
	struct cgroup *cg;
	struct berr err;
	assert_int_equal(cgroup_open(t->root, "db", &cg, &err), 0);
	assert_int_equal(cgroup_count_procs(cg), 0);
	cgroup_free(cg);
	assert_int_equal(cgroup_open(t->root, "other", &cg, &err), -1);
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(err.msg, "berth/other"));
}

static void write_errors_name_the_file_and_value(void **state)
{
	struct tree *t = *state;
	v2_tree(t->root, "web");
	unlink(strcat(strcpy((char[PATH_MAX]){0}, t->root), "/berth/web/pids.max"));
	struct cgroup_limits l = {.pids_limit = 77, .allow_all_devices = true};
	struct cgroup *cg;
	struct berr err;
	assert_int_equal(cgroup_create(t->root, "web", &l, &cg, &err), -1);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "write 77 to %s/berth/web/pids.max: No such file", t->root);
	if (!strstr(err.msg, want))
		fail_msg("\"%s\" does not say \"%s\"", err.msg, want);
}

#define TREE_TEST(f) cmocka_unit_test_setup_teardown(f, make_tree, remove_tree)

int main(void)
{
	/* Taking over the stand-in "leftover" cgroups warns each time. */
	log_set_level(LOG_LVL_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(proc_cgroup_unified_line_names_the_instance),
	    cmocka_unit_test(proc_cgroup_path_below_the_instance_names_it),
	    cmocka_unit_test(proc_cgroup_v1_memory_line_is_used_without_unified_line),
	    cmocka_unit_test(proc_cgroup_hybrid_reads_the_unified_line),
	    cmocka_unit_test(proc_cgroup_v1_line_counts_when_unified_is_the_root),
	    cmocka_unit_test(proc_cgroup_outside_berth_is_no_instance),
	    cmocka_unit_test(proc_cgroup_two_instances_are_refused),
	    cmocka_unit_test(proc_cgroup_forged_line_from_a_cgroup_name_is_refused),
	    cmocka_unit_test(proc_cgroup_invalid_instance_names_are_refused),
	    cmocka_unit_test(proc_cgroup_malformed_lines_are_refused),
	    cmocka_unit_test(proc_cgroup_bounds_are_enforced),
	    cmocka_unit_test(proc_cgroup_small_name_buffer_is_an_error),
	    cmocka_unit_test(instance_of_pid_of_a_missing_process_says_so),
	    cmocka_unit_test(shares_convert_to_weight_as_crun_does),
	    cmocka_unit_test(device_rules_are_checked),
	    cmocka_unit_test(device_rules_become_v1_lines),
	    cmocka_unit_test(device_program_allows_only_the_default_set),
	    cmocka_unit_test(device_program_last_matching_rule_decides),
	    cmocka_unit_test(device_program_deny_rule_covers_any_of_its_access),
	    cmocka_unit_test(device_program_checks_access_as_a_subset),
	    cmocka_unit_test(device_program_without_rules_denies_everything),
	    TREE_TEST(detect_v2_stand_in),
	    TREE_TEST(v2_create_writes_every_limit_to_its_file),
	    TREE_TEST(v2_unlimited_swap_is_max),
	    TREE_TEST(v2_quota_without_period_keeps_the_default_period),
	    TREE_TEST(v2_leftover_cgroup_gets_its_limits_reset),
	    TREE_TEST(v2_controllers_already_enabled_are_not_written_again),
	    TREE_TEST(v2_limit_without_its_controller_is_refused_by_name),
	    TREE_TEST(v2_device_rules_need_a_real_cgroup2),
	    TREE_TEST(v2_oom_is_counted_from_creation),
	    TREE_TEST(memory_swap_below_memory_is_refused),
	    TREE_TEST(invalid_instance_names_are_refused),
	    TREE_TEST(detect_v1_stand_in),
	    TREE_TEST(detect_hybrid_stand_in),
	    TREE_TEST(detect_refuses_a_root_without_hierarchies),
	    TREE_TEST(v1_create_writes_every_limit_to_its_hierarchy),
	    TREE_TEST(v1_default_devices_follow_deny_all),
	    TREE_TEST(v1_privileged_instance_allows_all_devices),
	    TREE_TEST(v1_leftover_cgroup_gets_its_limits_reset),
	    TREE_TEST(v1_oom_is_read_from_oom_control),
	    TREE_TEST(v1_oom_before_linux_4_13_is_the_limit_reached),
	    TREE_TEST(hybrid_limits_go_to_v1_and_membership_to_both),
	    TREE_TEST(joining_itself_writes_0_to_every_v1_tasks_file_only),
	    TREE_TEST(v1_hierarchy_for_membership_only_may_fail),
	    TREE_TEST(v1_hierarchy_with_a_used_controller_must_not_fail),
	    TREE_TEST(open_finds_an_existing_instance_and_not_a_missing_one),
	    TREE_TEST(write_errors_name_the_file_and_value),
	};
	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
