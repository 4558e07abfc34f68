/* Private to shim/: resolving a user ("uid[:gid]" or "name[:group]") against an image's
 * /etc/passwd and /etc/group, as container engines do. The files are image
 * content: every length is bounded and malformed lines are skipped. */
#ifndef BERTH_SHIM_USER_H
#define BERTH_SHIM_USER_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

#define USER_GROUPS_MAX 64 /* supplementary groups kept per user */
#define USER_FILE_MAX	(1 << 20)

struct user_ids {
	uid_t uid;
	gid_t gid;
	gid_t groups[USER_GROUPS_MAX];
	size_t n_groups;
	char home[256];
};

/* spec NULL or "" means root. passwd and group are the files' contents, or
 * NULL when the image has none. A name that is not found is an error; a
 * number needs no entry (its group is then 0 unless given). Supplementary
 * groups: the primary group and every group listing the user by name;
 * none besides the given one when a group is given. */
NODISCARD int user_resolve(const char *spec, const char *passwd, const char *group,
			   struct user_ids *out, struct berr *err);

#endif
