/* Which instance a host process belongs to, from /proc/<pid>/cgroup.
 *
 * The hub asks this for every Unix-socket peer, so the input is treated as
 * hostile: a process allowed to create cgroups below its own can choose
 * directory names, including ones holding '\n' or ':' that forge extra lines.
 * Hence every line that names an instance must name the same one, and a
 * hierarchy listed twice makes the whole file invalid. */
#include "common/cgroup_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/names.h"

/* True when the comma-separated list holds ctrl as a whole item. */
static bool list_has(const char *list, size_t len, const char *ctrl)
{
	size_t clen = strlen(ctrl);
	size_t i = 0;
	while (i <= len) {
		size_t j = i;
		while (j < len && list[j] != ',')
			j++;
		if (j - i == clen && memcmp(list + i, ctrl, clen) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

/* The instance named by a cgroup path: "/berth/<name>" or below it.
 * Returns 1 and sets *name and *nlen when the path is inside an instance, 0 when
 * it is not, -1 when it is under /berth/ but the name is not a valid one. */
static int path_instance(const char *path, size_t len, const char **name, size_t *nlen)
{
	static const char prefix[] = "/" CGROUP_PARENT "/";
	size_t plen = sizeof(prefix) - 1;
	if (len <= plen || memcmp(path, prefix, plen) != 0)
		return 0;
	const char *n = path + plen;
	const char *end = memchr(n, '/', len - plen);
	size_t l = end ? (size_t)(end - n) : len - plen;
	if (!name_valid(n, l, INSTANCE_NAME_MAX))
		return -1;
	*name = n;
	*nlen = l;
	return 1;
}

int cgroup_parse_proc_cgroup(const char *text, size_t len, char *name, size_t cap, struct berr *err)
{
	if (len > CGROUP_PROC_MAX_BYTES)
		return berr_set(err, 0, "%zu bytes is over the limit of %d", len,
				CGROUP_PROC_MAX_BYTES);
	unsigned long ids[CGROUP_PROC_MAX_LINES];
	size_t n_ids = 0;
	const char *found = NULL; /* the instance named by any line */
	size_t found_len = 0;
	const char *unified = NULL, *v1 = NULL; /* the instance per kind of line */
	size_t lineno = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl ? (size_t)(nl - line) : len - pos;
		pos += llen + (nl ? 1 : 0);
		lineno++;
		if (llen == 0)
			continue;
		if (n_ids == CGROUP_PROC_MAX_LINES)
			return berr_set(err, 0, "more than %d lines", CGROUP_PROC_MAX_LINES);
		if (llen > CGROUP_PROC_MAX_LINE)
			return berr_set(err, 0, "line %zu: longer than %d bytes", lineno,
					CGROUP_PROC_MAX_LINE);
		if (memchr(line, '\0', llen))
			return berr_set(err, 0, "line %zu: holds a NUL byte", lineno);

		/* "<hierarchy id>:<controllers>:<path>"; the path may hold ':'. */
		const char *c1 = memchr(line, ':', llen);
		if (!c1 || c1 == line || c1 - line > 10)
			return berr_set(err, 0, "line %zu: no hierarchy id", lineno);
		unsigned long id = 0;
		for (const char *p = line; p < c1; p++) {
			if (*p < '0' || *p > '9')
				return berr_set(err, 0, "line %zu: hierarchy id is not a number",
						lineno);
			id = id * 10 + (unsigned long)(*p - '0');
		}
		const char *ctrl = c1 + 1;
		const char *c2 = memchr(ctrl, ':', llen - (size_t)(ctrl - line));
		if (!c2)
			return berr_set(err, 0, "line %zu: no controller field", lineno);
		size_t ctrl_len = (size_t)(c2 - ctrl);
		const char *path = c2 + 1;
		size_t path_len = llen - (size_t)(path - line);
		if (path_len == 0 || path[0] != '/')
			return berr_set(err, 0, "line %zu: path is not absolute", lineno);

		for (size_t i = 0; i < n_ids; i++)
			if (ids[i] == id)
				return berr_set(err, 0, "line %zu: hierarchy %lu listed twice",
						lineno, id);
		ids[n_ids++] = id;

		const char *n = NULL;
		size_t nlen = 0;
		int r = path_instance(path, path_len, &n, &nlen);
		if (r < 0)
			return berr_set(err, 0, "line %zu: cgroup path names no valid instance",
					lineno);
		bool is_unified = id == 0 && ctrl_len == 0;
		if (r == 0)
			continue;
		if (found && (found_len != nlen || memcmp(found, n, nlen) != 0))
			return berr_set(err, 0, "line %zu: cgroup paths name two instances",
					lineno);
		found = n;
		found_len = nlen;
		if (is_unified)
			unified = n;
		else if (list_has(ctrl, ctrl_len, "memory") || list_has(ctrl, ctrl_len, "pids"))
			v1 = n;
	}
	/* Membership is read from the unified line where there is one, else
	 * from the memory or pids hierarchy. A v1 line still counts when the
	 * unified hierarchy merely exists (cgroup2 mounted once on a v1 host,
	 * so every process shows "0::/"). */
	const char *pick = unified ? unified : v1;
	if (!pick)
		return 1;
	if (found_len >= cap)
		return berr_set(err, ERANGE, "instance name of %zu bytes", found_len);
	memcpy(name, pick, found_len);
	name[found_len] = '\0';
	return 0;
}

int cgroup_instance_of_pid(pid_t pid, char *name, size_t cap, struct berr *err)
{
	if (pid <= 0)
		return berr_set(err, EINVAL, "instance of pid %d", (int)pid);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	cleanup_free char *buf = NULL;
	size_t n = 0;
	if (fs_read_file(path, CGROUP_PROC_MAX_BYTES, &buf, &n, err) < 0)
		/* A process that is gone has no /proc entry. */
		return err && err->code == ENOENT ? berr_set(err, ESRCH, "read %s", path) : -1;
	int r = cgroup_parse_proc_cgroup(buf, n, name, cap, err);
	if (r < 0)
		return berr_wrap(err, "%s", path);
	return r;
}

int cgroup_instance_of_pidfd(int pidfd, char *name, size_t cap, struct berr *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	cleanup_fclose FILE *f = fopen(path, "re");
	if (!f)
		return berr_set(err, errno, "pidfd %d", pidfd);
	char line[256];
	long pid = 0;
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid:\t%ld", &pid) == 1) {
			found = true;
			break;
		}
	if (!found)
		return berr_set(err, EBADF, "fd %d is not a pidfd", pidfd);
	if (pid <= 0)
		return berr_set(err, ESRCH, "process of pidfd %d", pidfd);
	int r = cgroup_instance_of_pid((pid_t)pid, name, cap, err);
	if (r < 0)
		return r;
#ifdef SYS_pidfd_send_signal
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		return berr_set(err, errno, "process %ld of pidfd %d", pid, pidfd);
#endif
	return r;
}
