/* Kernel configs as `berth check --kernel-config` reads them: plain text or
 * gzip, whole or torn. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/kernel_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("kconfig", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	char *text = NULL;
	size_t len = 0;
	struct berr err;
	if (kernel_config_read(path, &text, &len, &err) == 0) {
		if (len > KERNEL_CONFIG_MAX_BYTES)
			abort();
		for (size_t i = 0; i < kernel_options_count; i++) {
			char v = kernel_config_value(text, len, kernel_options[i].name);
			if (v != 0 && v != 'y' && v != 'm')
				abort();
		}
		free(text);
	}
	close(fd);
	return 0;
}
