/*
 * initrd-build.h: what the initramfs edit (edit-initramfs.c) builds: an
 * uncompressed cpio "newc" archive (cpio-write.c) and the kmod index
 * files modprobe reads inside it (modindex.c).  Internal to prepare/.
 */
#ifndef VF_PREPARE_INITRD_BUILD_H
#define VF_PREPARE_INITRD_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* ---- cpio newc writer (cpio-write.c) ---- */

/* An archive built in memory, at most max bytes (0: 1 GiB). */
struct cpiow {
    uint8_t *buf;
    size_t len, cap, max;
    uint32_t ino;              /* next inode number */
    uint32_t mtime;            /* of every entry (seconds) */
    int finished;
};

/* One entry: a directory (mode 040755...), a regular file or a symlink
 * (data is the target), named without a leading '/'.  0 / -1. */
int cpiow_add(struct cpiow *w, const char *name, uint32_t mode,
              const void *data, size_t len, vf_error **errp);
/* The TRAILER!!! entry; nothing may be added after it. */
int cpiow_finish(struct cpiow *w, vf_error **errp);
void cpiow_free(struct cpiow *w);

/* ---- kmod index (modindex.c) ---- */

/* One key of an index: modules.dep.bin maps a module name to its
 * "path: dep dep" line, modules.alias.bin an alias pattern to a module
 * name.  Lower priority values come first among a key's values. */
struct modindex_entry {
    const char *key;
    const char *value;
    uint32_t priority;
};

/* Serialise entries as kmod's index format 2.1 into a malloc'd *out.
 * Keys must be ASCII (below 128) and at most MODINDEX_KEY_MAX bytes;
 * entries is sorted in place.  0 / -1. */
#define MODINDEX_KEY_MAX 1024
int modindex_build(struct modindex_entry *entries, size_t n, uint8_t **out,
                   size_t *len, vf_error **errp);

#endif
