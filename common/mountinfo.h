/* Lines of /proc/self/mountinfo (proc(5)):
 *   id parent major:minor root mount-point options [optional...] - fstype source super-options
 * Paths are written with octal escapes ("\040" for a space). */
#ifndef BERTH_MOUNTINFO_H
#define BERTH_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

struct mountinfo_entry {
	char *root;	   /* within the file system, unescaped */
	char *mount_point; /* unescaped */
	char *options;	   /* per-mount options */
	char *fstype;
	char *source;
	char *super_options;
};

/* Splits one line (without its newline) in place. 0, or -1 when the line
 * has another shape. */
int mountinfo_parse_line(char *line, struct mountinfo_entry *e);

/* Undoes the octal escapes in place. */
void mountinfo_unescape(char *s);

/* Writes the items of a comma-separated option list that keep() accepts,
 * comma-separated, into out (an item that does not fit is left out). */
void mountinfo_filter_options(const char *list, bool (*keep)(const char *item, size_t len),
			      char *out, size_t cap);

#endif
