/* Private to shim/: what cgroup*.c share with each other and their tests,
 * the v1/v2 conversions and the device rules, each testable without a
 * cgroupfs. */
#ifndef BERTH_SHIM_CGROUP_INTERNAL_H
#define BERTH_SHIM_CGROUP_INTERNAL_H

#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "shim/cgroup.h"

/* cpu.shares (v1) to cpu.weight (v2), as crun and runc convert. */
uint64_t cgroup_shares_to_weight(int64_t shares);

/* Devices: checks one rule ("c 1:3 rwm" makes sense, type and access valid,
 * numbers in range). */
NODISCARD int cgroup_device_check(const struct cgroup_device *d, struct berr *err);
/* The v1 devices.allow / devices.deny line for a rule of type 'c' or 'b'. */
int cgroup_device_v1_line(const struct cgroup_device *d, char *out, size_t cap);

/* Builds the BPF_PROG_TYPE_CGROUP_DEVICE program for rules (the last rule
 * that matches decides; nothing matches: denied). Returns the number of
 * instructions, or -1 when cap is too small. */
#define CGROUP_BPF_MAX_INSNS 4096
int cgroup_devices_program(const struct cgroup_device *rules, size_t n, struct bpf_insn *out,
			   size_t cap);

/* Loads the program for rules and attaches it to the cgroup2 directory fd
 * (BPF_F_ALLOW_MULTI), after detaching device programs a previous
 * instance left there. `path` names the cgroup in errors. */
NODISCARD int cgroup_devices_attach(int cgroup_fd, const char *path,
				    const struct cgroup_device *rules, size_t n, struct berr *err);
/* Detaches every device program attached directly to the cgroup. */
NODISCARD int cgroup_devices_detach_all(int cgroup_fd, const char *path, struct berr *err);

/* Tests: makes cgroup_kill_all() freeze and kill one process at a time
 * even where cgroup.kill exists, as on kernels before 5.14. */
void cgroup_disable_kill_file(void);

#endif
