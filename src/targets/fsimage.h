/*
 * fsimage.h: small read-only filesystem images built whole from a list of
 * files held in memory: ISO 9660 with Joliet and Rock Ridge (iso-write.c,
 * through libisofs) and FAT12/FAT16 with VFAT long names (vfat-write.c).
 * Config drives and cloud-init seeds are made of them (configdrive.c).
 *
 * Both writers fill an io the caller created (empty, usually a temporary
 * output file) and do not flush it: making the file durable and giving it
 * its final name is the caller's job.
 */
#ifndef VF_FSIMAGE_H
#define VF_FSIMAGE_H

#include <stddef.h>

#include "core/error.h"
#include "io/io.h"

struct fsimg_file {
    /* Path from the root, components separated by '/', no leading '/',
     * no empty, "." or ".." component; printable ASCII.  Parent
     * directories are created as needed. */
    const char *path;
    /* Content, borrowed until the writer returns.  Files given the same
     * data pointer and length may share their storage in the image. */
    const void *data;
    size_t len;
};

/* At most this many files in one image: config drives hold a handful. */
#define FSIMG_MAX_FILES 64

/* Write an ISO 9660 image (Joliet and Rock Ridge on, files 0644,
 * directories 0755, owned by root) with volume id volid (1-32 bytes,
 * kept as given) holding files.  0 / -1. */
int iso9660_write(struct io *out, const char *volid,
                  const struct fsimg_file *files, size_t n, vf_error **errp);

/* Write a FAT12 or FAT16 image (whichever the cluster count makes it)
 * sized to the files with some slack (at least 1 MiB), with volume label
 * label (1-11 characters valid in a short name; case is kept, see
 * vfat-write.c) in the boot sector and the root directory.  0 / -1. */
int vfat_write(struct io *out, const char *label,
               const struct fsimg_file *files, size_t n, vf_error **errp);

#endif
