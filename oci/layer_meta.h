/* Private to oci/: what unpacking and flattening layers share (xattr policy,
 * xattrs on entries that cannot be opened, names quoted for messages). */
#ifndef BERTH_OCI_LAYER_META_H
#define BERTH_OCI_LAYER_META_H

#include <stdbool.h>
#include <stddef.h>

#define LAYER_OPAQUE_XATTR    "trusted.overlay.opaque"
#define LAYER_WHITEOUT_PREFIX ".wh."
#define LAYER_OPAQUE_MARKER   ".wh..wh..opq"

/* xattrs overlayfs reads as its own (whiteouts, opaque and redirected
 * directories, metacopy): an image must never be able to set them. */
bool layer_xattr_is_overlay(const char *name);

/* setxattr/listxattr/getxattr on dirfd/name without following name when it
 * is a symlink (there is no *at form; this goes through /proc/self/fd/N).
 * Return as the system calls do, errno set. */
int layer_lsetxattr_at(int dirfd, const char *name, const char *key, const void *val, size_t len);
long layer_llistxattr_at(int dirfd, const char *name, char *list, size_t size);
long layer_lgetxattr_at(int dirfd, const char *name, const char *key, void *val, size_t size);

/* Copies a name from a layer into out as a double-quoted string a terminal
 * shows safely: control and non-ASCII bytes as \xNN, cut with "..." when it
 * is too long. */
void layer_quote(const char *in, char *out, size_t cap);

#endif
