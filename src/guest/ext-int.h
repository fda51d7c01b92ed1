/*
 * ext-int.h: what ext.c (reading) and ext-write.c (editing) share about
 * an open ext filesystem and a guest view; internal to those two files.
 */
#ifndef VF_GUEST_EXT_INT_H
#define VF_GUEST_EXT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "guest/guest.h"

struct gfs {
    ext2_filsys fs;
    struct gdev *dev;
    bool rw;                   /* opened for editing (gfs_open_rw) */
    bool dirty;                /* edited since the last gfs_flush */
    char ro_reason[256];       /* why it could not be opened for editing */
};

struct gfile {
    struct gfs *gfs;
    ext2_file_t f;
    uint64_t size;
    /* extent-mapped files are read run by run (gfile_read_extents) */
    ext2_extent_handle_t eh;
    uint64_t pos;
};

/* Which filesystem of v holds path, and the path inside it. */
struct gfs *gview_pick(struct gview *v, const char *path, const char **rest);
/* The inode of path (follow: the last symlink too).  0 / -1. */
int gview_ino(struct gview *v, const char *path, bool follow,
              struct gfs **gp, ext2_ino_t *ino);
/* Open read-only or read-write. */
struct gfs *gfs_open_flags(struct gdev *d, bool rw, vf_error **errp);
/* The device error behind the last failed write, or NULL. */
const char *gfs_io_error(struct gfs *g);

#endif
