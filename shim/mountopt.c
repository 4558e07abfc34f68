#include "shim/mountopt.h"

#include <string.h>
#include <sys/mount.h>

struct opt_word {
	const char *name;
	unsigned long set;
	unsigned long clear;
};

static const struct opt_word flag_words[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},
    {"mand", MS_MANDLOCK, 0},
    {"nomand", 0, MS_MANDLOCK},
    {"noatime", MS_NOATIME, 0},
    {"atime", 0, MS_NOATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
    {"relatime", MS_RELATIME, 0},
    {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, 0},
    {"nostrictatime", 0, MS_STRICTATIME},
    {"silent", MS_SILENT, 0},
    {"loud", 0, MS_SILENT},
    {"defaults", 0, 0},
};

static const struct opt_word propagation_words[] = {
    {"private", MS_PRIVATE, 0},	      {"rprivate", MS_PRIVATE | MS_REC, 0},
    {"shared", MS_SHARED, 0},	      {"rshared", MS_SHARED | MS_REC, 0},
    {"slave", MS_SLAVE, 0},	      {"rslave", MS_SLAVE | MS_REC, 0},
    {"unbindable", MS_UNBINDABLE, 0}, {"runbindable", MS_UNBINDABLE | MS_REC, 0},
};

/* Options of OCI runtimes that change what is mounted in ways not
 * implemented here; accepting them silently would mount something else. */
static const char *const refused_words[] = {
    "remount",	 "idmap",	"ridmap",	"tmpcopyup",	  "copy-symlink",
    "rro",	 "rrw",		"rnosuid",	"rsuid",	  "rnodev",
    "rdev",	 "rnoexec",	"rexec",	"rnoatime",	  "ratime",
    "rrelatime", "rnorelatime", "rstrictatime", "rnostrictatime", "rnodiratime",
    "rdiratime", "nosymfollow", "rnosymfollow",
};

int mount_opts_parse(const char *const *opts, size_t n, struct mount_opts *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	size_t dlen = 0;
	for (size_t i = 0; i < n; i++) {
		const char *w = opts[i];
		if (!w || !w[0])
			return berr_set(err, 0, "mount option %zu is empty", i);
		bool known = false;
		for (size_t k = 0; k < sizeof(flag_words) / sizeof(flag_words[0]) && !known; k++)
			if (!strcmp(w, flag_words[k].name)) {
				out->flags =
				    (out->flags & ~flag_words[k].clear) | flag_words[k].set;
				out->clear =
				    (out->clear & ~flag_words[k].set) | flag_words[k].clear;
				known = true;
			}
		for (size_t k = 0;
		     k < sizeof(propagation_words) / sizeof(propagation_words[0]) && !known; k++)
			if (!strcmp(w, propagation_words[k].name)) {
				out->propagation = propagation_words[k].set;
				known = true;
			}
		if (known)
			continue;
		if (!strcmp(w, "bind") || !strcmp(w, "rbind")) {
			out->bind = true;
			out->recursive = out->recursive || w[0] == 'r';
			continue;
		}
		for (size_t k = 0; k < sizeof(refused_words) / sizeof(refused_words[0]); k++)
			if (!strcmp(w, refused_words[k]))
				return berr_set(err, 0, "mount option \"%s\" is not supported", w);
		/* File-system data: commas would smuggle in further options. */
		if (strchr(w, ','))
			return berr_set(err, 0, "mount option \"%s\" contains a comma", w);
		size_t wl = strlen(w);
		if (dlen + wl + (dlen ? 1 : 0) > MOUNTOPT_DATA_MAX)
			return berr_set(err, 0, "mount options are longer than %d bytes",
					MOUNTOPT_DATA_MAX);
		if (dlen)
			out->data[dlen++] = ',';
		memcpy(out->data + dlen, w, wl);
		dlen += wl;
		out->data[dlen] = '\0';
	}
	return 0;
}
