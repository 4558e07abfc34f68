/* Users resolved against an image's /etc/passwd and /etc/group (image
 * content): the input is split into the user spec, passwd and group. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	/* spec \x01 passwd \x01 group */
	char *passwd = NULL;
	char *spec = buf;
	char *sep1 = strchr(buf, '\x01');
	char *group = NULL;
	if (sep1) {
		*sep1 = '\0';
		passwd = sep1 + 1;
		char *sep2 = strchr(passwd, '\x01');
		if (sep2) {
			*sep2 = '\0';
			group = sep2 + 1;
		}
	}
	struct user_ids u;
	struct berr err;
	if (user_resolve(spec, passwd, group, &u, &err) == 0) {
		if (u.n_groups > USER_GROUPS_MAX || u.uid == (uid_t)-1 || u.gid == (gid_t)-1 ||
		    strnlen(u.home, sizeof(u.home)) == sizeof(u.home))
			abort();
	} else if (!err.msg[0]) {
		abort();
	}
	free(buf);
	return 0;
}
