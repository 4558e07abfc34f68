#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/command.h"
#include "common/command_table.h"

/* Weak, so programs that link no command (fuzz targets, unit tests) still
 * link: the table is then empty. */
extern const struct berth_command __start_berth_cmds[] __attribute__((weak));
extern const struct berth_command __stop_berth_cmds[] __attribute__((weak));

size_t command_count(void)
{
	if (!__start_berth_cmds || !__stop_berth_cmds)
		return 0;
	return (size_t)(__stop_berth_cmds - __start_berth_cmds);
}

const struct berth_command *command_at(size_t i)
{
	return i < command_count() ? &__start_berth_cmds[i] : NULL;
}

const struct berth_command *command_find(const char *name)
{
	for (size_t i = 0; i < command_count(); i++)
		if (!strcmp(__start_berth_cmds[i].name, name))
			return &__start_berth_cmds[i];
	return NULL;
}

const char *berth_self_exe(void)
{
	static char path[PATH_MAX];
	if (!path[0]) {
		ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
		if (n <= 0)
			snprintf(path, sizeof(path), "/proc/self/exe");
		else
			path[n] = '\0';
	}
	return path;
}

int berth_usage(const char *name)
{
	const struct berth_command *c = command_find(name);
	fprintf(stderr, "usage: berth [--root DIR] [--run DIR] %s\n", c ? c->usage : name);
	return 2;
}
