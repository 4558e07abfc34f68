/* The /etc/hostname, /etc/hosts and /etc/resolv.conf an instance sees,
 * bound over its image's own, and /etc/hosts rewritten in place while the
 * instance runs (the daemon keeps the names of the modules on a network
 * current there). */
#include "shim/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fs.h"
#include "common/strbuf.h"

#define HOST_FILE_MAX	   (64 * 1024)
#define ETC_FILE_MAX	   (1024 * 1024)
#define HOSTS_LOCALHOST	   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
#define RESOLV_SYSTEMD	   "/run/systemd/resolve/resolv.conf"
#define RESOLV_NONE	   "# no network (--network none): no name servers\n"
#define RESOLV_UNREACHABLE "# the host's name servers are on its loopback: set HostConfig.Dns\n"

static int append_line(struct strbuf *sb, const char *line, size_t len)
{
	if (strbuf_append(sb, line, len) < 0)
		return -1;
	return len && line[len - 1] == '\n' ? 0 : strbuf_puts(sb, "\n");
}

/* True when a hosts line names one of the extra hosts (so the extra entry,
 * written first, is the only one for that name). */
static bool names_extra_host(const char *line, size_t len, char *const *extra)
{
	for (size_t i = 0; extra && extra[i]; i++) {
		size_t n = strcspn(extra[i], ":");
		for (size_t p = 0; p + n <= len; p++) {
			bool start = p == 0 || line[p - 1] == ' ' || line[p - 1] == '\t';
			bool end = p + n == len || line[p + n] == ' ' || line[p + n] == '\t' ||
				   line[p + n] == '#';
			if (start && end && !strncasecmp(line + p, extra[i], n))
				return true;
		}
	}
	return false;
}

/* The extra entries ("address<TAB>name"), then base's lines but those that
 * name an extra host. */
static int hosts_with_extra(struct strbuf *sb, const char *base, size_t blen, char *const *extra)
{
	for (size_t i = 0; extra && extra[i]; i++) {
		const char *colon = strchr(extra[i], ':');
		if (strbuf_printf(sb, "%s\t%.*s\n", colon + 1, (int)(colon - extra[i]), extra[i]) <
		    0)
			return -1;
	}
	for (const char *p = base, *end = base + blen; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!names_extra_host(p, len, extra) && append_line(sb, p, len) < 0)
			return -1;
		p += len + (nl ? 1 : 0);
	}
	return 0;
}

static int hosts_content(const struct instance_spec *spec, const char *hostname, struct strbuf *sb)
{
	cleanup_free char *host = NULL;
	const char *base = HOSTS_LOCALHOST;
	size_t len = strlen(base);
	if (spec->network == NET_HOST) {
		struct berr ignored;
		if (fs_read_file("/etc/hosts", HOST_FILE_MAX, &host, &len, &ignored) < 0)
			len = 0;
		base = host ? host : "";
	}
	if (hosts_with_extra(sb, base, len, spec->extra_hosts) < 0)
		return -1;
	/* Without a network the host name needs an address; on a network the
	 * caller's lines give it the instance's own. */
	if (spec->network == NET_NONE && strbuf_printf(sb, "127.0.1.1\t%s\n", hostname) < 0)
		return -1;
	for (size_t i = 0; spec->hosts && spec->hosts[i]; i++)
		if (append_line(sb, spec->hosts[i], strlen(spec->hosts[i])) < 0)
			return -1;
	return 0;
}

static bool loopback_server(const char *addr, size_t len)
{
	return (len >= 4 && !strncmp(addr, "127.", 4)) || (len == 3 && !strncmp(addr, "::1", 3));
}

/* The lines of a host resolv.conf an instance on a network of its own can
 * use: all but name servers on the host's loopback, which it cannot reach.
 * *dropped counts those. */
static int resolv_filter(const char *text, struct strbuf *sb, int *kept, int *dropped)
{
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *p = line;
		if (!strncmp(p, "nameserver", 10) && (p[10] == ' ' || p[10] == '\t')) {
			p += 10 + strspn(p + 10, " \t");
			size_t alen = strcspn(p, " \t\n#;");
			if (loopback_server(p, alen)) {
				(*dropped)++;
				line += len + (end ? 1 : 0);
				continue;
			}
			(*kept)++;
		}
		if (append_line(sb, line, len) < 0)
			return -1;
		line += len + (end ? 1 : 0);
	}
	return 0;
}

/* The host's resolver configuration for an instance on a network of its
 * own. When the host's name servers are all on its loopback (systemd-resolved
 * at 127.0.0.53), the servers behind them, as the container engines do. */
static int resolv_from_host(struct strbuf *sb)
{
	static const char *const files[] = {"/etc/resolv.conf", RESOLV_SYSTEMD};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		cleanup_free char *text = NULL;
		struct berr ignored;
		if (fs_read_file(files[i], HOST_FILE_MAX, &text, NULL, &ignored) < 0)
			continue;
		struct strbuf kept_lines = STRBUF_INIT;
		int kept = 0, dropped = 0;
		if (resolv_filter(text, &kept_lines, &kept, &dropped) < 0) {
			strbuf_release(&kept_lines);
			return -1;
		}
		if (kept || !dropped || i + 1 == ARRAY_SIZE(files)) {
			int rc =
			    kept_lines.len ? strbuf_append(sb, kept_lines.buf, kept_lines.len) : 0;
			strbuf_release(&kept_lines);
			if (rc == 0 && !kept)
				rc = strbuf_puts(sb, RESOLV_UNREACHABLE);
			return rc;
		}
		strbuf_release(&kept_lines);
	}
	return strbuf_puts(sb, RESOLV_UNREACHABLE);
}

/* "search a b" or "options x y"; nothing for no words. */
static int resolv_words(struct strbuf *sb, const char *key, char *const *words)
{
	if (!words || !words[0])
		return 0;
	if (strbuf_puts(sb, key) < 0)
		return -1;
	for (size_t i = 0; words[i]; i++)
		if (strbuf_printf(sb, " %s", words[i]) < 0)
			return -1;
	return strbuf_puts(sb, "\n");
}

static int resolv_content(const struct instance_spec *spec, struct strbuf *sb)
{
	if (spec->dns) {
		for (size_t i = 0; spec->dns[i]; i++)
			if (strbuf_printf(sb, "nameserver %s\n", spec->dns[i]) < 0)
				return -1;
		return resolv_words(sb, "search", spec->dns_search) < 0 ||
			       resolv_words(sb, "options", spec->dns_options) < 0
			   ? -1
			   : 0;
	}
	if (spec->network == NET_HOST) {
		cleanup_free char *host = NULL;
		size_t len = 0;
		struct berr ignored;
		if (fs_read_file("/etc/resolv.conf", HOST_FILE_MAX, &host, &len, &ignored) < 0)
			return 0;
		return len ? strbuf_append(sb, host, len) : 0;
	}
	if (spec->network == NET_JOIN)
		return resolv_from_host(sb);
	return strbuf_puts(sb, RESOLV_NONE);
}

int etc_files_contents(const struct instance_spec *spec, const char *hostname, char *out[3],
		       struct berr *err)
{
	struct strbuf sb[3] = {STRBUF_INIT, STRBUF_INIT, STRBUF_INIT};
	for (int i = 0; i < 3; i++)
		sb[i].max = ETC_FILE_MAX;
	int rc = strbuf_printf(&sb[0], "%s\n", hostname);
	if (rc == 0)
		rc = hosts_content(spec, hostname, &sb[1]);
	if (rc == 0)
		rc = resolv_content(spec, &sb[2]);
	if (rc < 0) {
		int e = errno;
		for (int i = 0; i < 3; i++)
			strbuf_release(&sb[i]);
		return berr_set(err, e, "instance %s: /etc files", spec->name);
	}
	for (int i = 0; i < 3; i++)
		out[i] = strbuf_detach(&sb[i]);
	return 0;
}

int shim_hosts_update(const char *root, const char *name, char *const *hosts, struct berr *err)
{
	char path[PATH_MAX];
	if (instance_dir_path(root, name, path, sizeof(path) - 8, err) < 0)
		return -1;
	strcat(path, "/hosts");
	struct instance_spec spec = {
	    .name = (char *)name, .network = NET_JOIN, .hosts = (char **)hosts};
	struct strbuf sb = STRBUF_INIT;
	sb.max = ETC_FILE_MAX;
	if (hosts_content(&spec, name, &sb) < 0) {
		int e = errno;
		strbuf_release(&sb);
		return berr_set(err, e, "instance %s: /etc/hosts", name);
	}
	cleanup_free char *text = strbuf_detach(&sb);
	size_t len = strlen(text);
	cleanup_close int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return berr_set(err, errno, "instance %s: open %s", name, path);
	/* Shrinking: the old tail becomes blank lines first, then goes. */
	size_t size = (size_t)st.st_size > len ? (size_t)st.st_size : len;
	if (size > len) {
		char *padded = realloc(text, size);
		if (!padded)
			return berr_set(err, ENOMEM, "instance %s: /etc/hosts", name);
		text = padded;
		memset(text + len, '\n', size - len);
	}
	if (fs_write_all(fd, text, size, 0) < 0 || ftruncate(fd, (off_t)len) < 0)
		return berr_set(err, errno, "instance %s: write %s", name, path);
	return 0;
}
