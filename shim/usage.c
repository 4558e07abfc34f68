/* What an instance uses, for the daemon's metrics: read from its cgroup. */
#include "shim/cgroup.h"
#include "shim/shim.h"

int shim_instance_usage(const char *name, struct instance_usage *u, struct berr *err)
{
	struct cgroup *cg = NULL;
	if (cgroup_open(CGROUP_FS_ROOT, name, &cg, err) < 0)
		return berr_wrap(err, "instance %s", name);
	struct cgroup_usage cu;
	cgroup_usage(cg, &cu);
	cgroup_free(cg);
	u->cpu_ns = cu.cpu_ns;
	u->memory_bytes = cu.memory_bytes;
	u->pids = cu.pids;
	return 0;
}
