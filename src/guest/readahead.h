/*
 * readahead.h: read a stream on a helper thread, one chunk ahead of its
 * consumer (readahead.c).  Used where one big file is read and decoded
 * (the initramfs: reading it through ext4 and the image format overlaps
 * inflating it).  The read function runs on the helper thread only, so
 * the caller must not use what it touches (the guest view, the image)
 * until readahead_end.
 */
#ifndef VF_GUEST_READAHEAD_H
#define VF_GUEST_READAHEAD_H

#include <stddef.h>

#include "core/error.h"

/* Read up to len bytes; 0 at end, -1 on error. */
typedef long (*readahead_fn)(void *opaque, void *buf, size_t len,
                             vf_error **errp);

struct readahead;

/* Start reading opaque through fn in chunks of chunk bytes; NULL (and
 * errp set) when the thread or its buffers cannot be had. */
struct readahead *readahead_start(readahead_fn fn, void *opaque,
                                  size_t chunk, vf_error **errp);
/* The consumer's side, with readahead_fn's contract (opaque = the
 * struct readahead): a read error of the helper is returned here. */
long readahead_read(void *ra, void *buf, size_t len, vf_error **errp);
/* Stop the helper (at any point) and free everything. */
void readahead_end(struct readahead *ra);

#endif
