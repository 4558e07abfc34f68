/* libarchive, loaded on first use (see common/lazy.h). */
#include <archive.h>
#include <archive_entry.h>

#include "common/lazy.h"

LAZY_FN(LAZY_ARCHIVE, const char *, archive_version_string, (void), ())
