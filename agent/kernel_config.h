/* Private to agent/: the kernel options berth needs, checked against a
 * kernel's build configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC),
 * /boot/config-<release>, or any .config (plain or gzip). The same list is
 * the Yocto layer's kernel fragment
 * (packaging/yocto/meta-berth/recipes-kernel/linux/files/berth.cfg) and the
 * Buildroot package's kernel requirements. */
#ifndef BERTH_AGENT_KERNEL_CONFIG_H
#define BERTH_AGENT_KERNEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define KERNEL_CONFIG_MAX_BYTES (8 * 1024 * 1024)

struct kernel_option {
	const char *name; /* without CONFIG_ */
	const char *what; /* what berth uses it for */
	bool required;	  /* false: a feature only some devices use */
};

extern const struct kernel_option kernel_options[];
extern const size_t kernel_options_count;

/* The running kernel's config: /proc/config.gz, else /boot/config-<release>.
 * Writes the path into buf; -1 when neither exists. */
int kernel_config_find(char *buf, size_t cap);

/* Reads a config file, inflating it when it is gzip; at most
 * KERNEL_CONFIG_MAX_BYTES of text. */
NODISCARD int kernel_config_read(const char *path, char **text, size_t *len, struct berr *err);

/* CONFIG_<name>'s value in the text: 'y', 'm', or 0 when it is not set. */
char kernel_config_value(const char *text, size_t len, const char *name);

#endif
