/* Private to common/: walking the command table the linker gathered. */
#ifndef BERTH_COMMAND_TABLE_H
#define BERTH_COMMAND_TABLE_H

#include <stddef.h>

#include "common/command.h"

const struct berth_command *command_find(const char *name);
size_t command_count(void);
const struct berth_command *command_at(size_t i);

#endif
