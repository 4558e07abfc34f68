#include "agent/kernel_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/lazy.h"

const struct kernel_option kernel_options[] = {
    {"NAMESPACES", "instances run in namespaces", true},
    {"UTS_NS", "an instance's own hostname", true},
    {"IPC_NS", "an instance's own IPC objects", true},
    {"PID_NS", "an instance's own process ids", true},
    {"NET_NS", "an instance's own network", true},
    {"USER_NS", "user namespaces", true},
    {"CGROUPS", "instances run in cgroups", true},
    {"MEMCG", "memory limits, --memory", true},
    {"CGROUP_PIDS", "process limits, --pids-limit", true},
    {"CGROUP_SCHED", "CPU shares", true},
    {"CFS_BANDWIDTH", "CPU quotas, --cpus", false},
    {"CGROUP_FREEZER", "freezing instances with cgroup v1", false},
    {"CGROUP_DEVICE", "device rules with cgroup v1", false},
    {"CGROUP_BPF", "device rules with cgroup v2", false},
    {"BPF_SYSCALL", "device rules with cgroup v2", false},
    {"OVERLAY_FS", "overlayfs, an instance's root file system", true},
    {"SECCOMP", "system call filters", true},
    {"SECCOMP_FILTER", "system call filters", true},
    {"VETH", "bridge networks, veth pairs", true},
    {"BRIDGE", "bridge networks", true},
};
const size_t kernel_options_count = sizeof(kernel_options) / sizeof(kernel_options[0]);

int kernel_config_find(char *buf, size_t cap)
{
	struct utsname u;
	if (access("/proc/config.gz", R_OK) == 0) {
		snprintf(buf, cap, "/proc/config.gz");
		return 0;
	}
	if (uname(&u) == 0) {
		snprintf(buf, cap, "/boot/config-%s", u.release);
		if (access(buf, R_OK) == 0)
			return 0;
	}
	return -1;
}

static int inflate_config(const char *path, const unsigned char *in, size_t in_len, char **text,
			  size_t *len, struct berr *err)
{
	if (lazy_require(LAZY_Z, err) < 0)
		return berr_wrap(err, "%s", path);
	z_stream z = {.next_in = (unsigned char *)in, .avail_in = (uInt)in_len};
	if (LAZY(inflateInit2_)(&z, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof(z)) != Z_OK)
		return berr_set(err, ENOMEM, "%s: cannot start inflating", path);
	size_t cap = 1 << 20, n = 0;
	cleanup_free char *out = malloc(cap + 1);
	int rc = out ? Z_OK : Z_MEM_ERROR;
	while (rc == Z_OK) {
		if (n == cap) {
			if (cap >= KERNEL_CONFIG_MAX_BYTES) {
				LAZY(inflateEnd)(&z);
				return berr_set(err, 0, "%s: over %d bytes inflated", path,
						KERNEL_CONFIG_MAX_BYTES);
			}
			char *p = realloc(out, cap * 2 + 1);
			if (!p)
				break;
			out = p;
			cap *= 2;
		}
		z.next_out = (unsigned char *)out + n;
		z.avail_out = (uInt)(cap - n);
		rc = LAZY(inflate)(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
		if (rc == Z_BUF_ERROR && z.avail_out)
			break; /* the input ended before the stream did */
		if (rc == Z_BUF_ERROR)
			rc = Z_OK;
	}
	LAZY(inflateEnd)(&z);
	if (rc != Z_STREAM_END)
		return berr_set(err, 0, "%s: not a whole gzip stream", path);
	out[n] = '\0';
	*text = out;
	*len = n;
	out = NULL;
	return 0;
}

int kernel_config_read(const char *path, char **text, size_t *len, struct berr *err)
{
	cleanup_free char *raw = NULL;
	size_t n = 0;
	if (fs_read_file(path, KERNEL_CONFIG_MAX_BYTES, &raw, &n, err) < 0)
		return -1;
	if (n >= 2 && (unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b)
		return inflate_config(path, (unsigned char *)raw, n, text, len, err);
	*text = raw;
	*len = n;
	raw = NULL;
	return 0;
}

char kernel_config_value(const char *text, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = text, *end = text + len;
	char value = 0;
	/* The last line naming the option wins, as when fragments are merged:
	 * "CONFIG_<name>=y|m|..." or "# CONFIG_<name> is not set". */
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		size_t l = (size_t)(eol - p);
		const char *at = l > 2 && !memcmp(p, "# ", 2) ? p + 2 : p;
		l -= (size_t)(at - p);
		if (l > 7 + nlen && !memcmp(at, "CONFIG_", 7) && !memcmp(at + 7, name, nlen)) {
			const char *rest = at + 7 + nlen;
			if (at == p && rest[0] == '=' && rest + 1 < eol)
				value = rest[1] == 'y' || rest[1] == 'm' ? rest[1] : 0;
			else if (at != p && (size_t)(eol - rest) == 11 &&
				 !memcmp(rest, " is not set", 11))
				value = 0;
		}
		p = eol + 1;
	}
	return value;
}
