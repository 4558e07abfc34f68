/* The names berth takes from manifests, configs and command lines, one rule
 * each, checked wherever such a name enters. */
#ifndef BERTH_NAMES_H
#define BERTH_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Instance names (and the module names they come from, and the instance
 * cgroups berth/<name>): [A-Za-z0-9][A-Za-z0-9_.-]*, so a name is safe as a
 * directory, a cgroup and an MQTT topic level. */
#define INSTANCE_NAME_MAX 64

/* True when s[0..len) is such a name of at most max bytes. */
bool name_valid(const char *s, size_t len, size_t max);

/* True when s is 1 to max bytes of ASCII letters, digits and characters of
 * extra. */
bool chars_valid(const char *s, const char *extra, size_t max);

/* True for a host name of 1 to max bytes of letters, digits, '-', '.' and
 * '_' (an instance's own host name). */
bool hostname_valid(const char *h, size_t max);

/* A name and the number it stands for, in the tables of names a spec or a
 * manifest may use (layer media types, seccomp actions, rlimits). */
struct name_value {
	const char *name;
	long long value;
};

/* The entry of the n in table named name, or NULL when none is. */
const struct name_value *name_value_find(const struct name_value *table, size_t n,
					 const char *name);

#endif
