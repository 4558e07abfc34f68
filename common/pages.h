/* Resident pages of a long-running process. A process keeps mapped every
 * page of code it ever ran, and the kernel maps 64 kB around each page it
 * faults in: after start-up most of libc and of the binary count in its RSS
 * though its idle loop runs a small part of them.
 *
 * The code is in this header, inlined into its caller: run from an object
 * of its own, it would itself fault in one more 64 kB window of the binary
 * right after the drop (measured: 56 kB more RSS in every shim). */
#ifndef BERTH_PAGES_H
#define BERTH_PAGES_H

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES_RANGES_MAX 128

struct pages_scan {
	unsigned long start, end;
	bool candidate; /* the mapping being read is file-backed, r-x or r-- */
	size_t n;
	unsigned long ranges[PAGES_RANGES_MAX][2];
};

static inline unsigned long pages_parse_hex(const char **p)
{
	unsigned long v = 0;
	for (;; (*p)++) {
		char ch = **p;
		int d = ch >= '0' && ch <= '9'	 ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;
		if (d < 0)
			return v;
		v = v * 16 + (unsigned long)d;
	}
}

/* "start-end perms offset dev inode path" opens a mapping; "Key: value kB"
 * lines describe it. */
static inline void pages_scan_line(struct pages_scan *s, const char *line)
{
	if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
		const char *p = line;
		s->start = pages_parse_hex(&p);
		s->end = *p == '-' ? (p++, pages_parse_hex(&p)) : 0;
		/* Relocated data (RELRO) is r-- too, but has private copies: the
		 * Anonymous check below leaves it alone. */
		s->candidate = (!strncmp(p, " r-xp ", 6) || !strncmp(p, " r--p ", 6)) &&
			       strchr(p, '/') && s->end > s->start;
		return;
	}
	if (s->candidate && !strncmp(line, "Anonymous:", 10)) {
		const char *p = line + 10;
		while (*p == ' ')
			p++;
		if (p[0] == '0' && p[1] == ' ' && s->n < PAGES_RANGES_MAX) {
			s->ranges[s->n][0] = s->start;
			s->ranges[s->n][1] = s->end;
			s->n++;
		}
		s->candidate = false;
	}
}

/* Unmaps from this process the pages of its unmodified file mappings (code
 * and read-only data of which no page has a private copy). The pages stay
 * in the page cache, shared and reclaimable, and come back on their next
 * use; what the process runs again becomes resident again. Cheap enough to
 * call after every burst of work (one read of /proc/self/smaps). */
static inline void pages_drop_file_mappings(void)
{
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[8192];
	struct pages_scan s;
	memset(&s, 0, sizeof(s));
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			pages_scan_line(&s, line);
			line = nl + 1;
		}
		have = strlen(line);
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0; /* a line longer than the buffer: skip it */
	}
	close(fd);
	for (size_t i = 0; i < s.n; i++)
		madvise((void *)s.ranges[i][0], s.ranges[i][1] - s.ranges[i][0], MADV_DONTNEED);
}

#endif
