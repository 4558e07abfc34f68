/* Private to oci/: per-layer progress bars on stderr (only drawn when it is a terminal). */
#ifndef BERTH_OCI_PROGRESS_H
#define BERTH_OCI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

enum { PROGRESS_WAITING, PROGRESS_ACTIVE, PROGRESS_DONE, PROGRESS_FAILED };

struct progress;

struct progress *progress_new(size_t n);
void progress_label(struct progress *p, size_t i, const char *digest, uint64_t total);
void progress_set(struct progress *p, size_t i, int state, uint64_t done);
/* Redraws all bars in place. */
void progress_draw(struct progress *p);
void progress_free(struct progress *p);

#endif
