#include "shim/cgroup_join.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "shim/cgroup.h"

int cgroup_join_self_v1(const char *name, struct berr *err)
{
	cleanup_free char *info = NULL;
	if (fs_read_file("/proc/self/mountinfo", 1 << 20, &info, NULL, err) < 0)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(info, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* id parent major:minor root mountpoint options... - fstype ... */
		char *sep = strstr(line, " - cgroup ");
		if (!sep)
			continue; /* not a v1 hierarchy (cgroup2 is joined by clone3) */
		char *mp = line;
		for (int field = 0; field < 4 && mp; field++) {
			mp = strchr(mp, ' ');
			mp = mp ? mp + 1 : NULL;
		}
		if (!mp)
			continue;
		size_t mlen = strcspn(mp, " ");
		if (mlen < sizeof(CGROUP_FS_ROOT) || strncmp(mp, CGROUP_FS_ROOT "/", sizeof(CGROUP_FS_ROOT)) ||
		    memchr(mp, '\\', mlen))
			continue;
		char path[PATH_MAX];
		if (snprintf(path, sizeof(path), "%.*s/" CGROUP_PARENT "/%s/tasks", (int)mlen, mp,
			     name) >= (int)sizeof(path))
			return berr_set(err, ENAMETOOLONG, "cgroup of %s", name);
		cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* a hierarchy the instance has no cgroup in */
			return berr_set(err, errno, "join %s", path);
		}
		if (write(fd, "0", 1) != 1)
			return berr_set(err, errno, "join %s", path);
	}
	return 0;
}
