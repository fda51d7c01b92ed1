/*
 * engine.h: the extent-driven copy engine and the whole-image walks built
 * on it (convert, compare, digest, map).
 *
 * Everything is driven by block status: ranges a chain reports as zero or
 * unallocated are never read.  Data is read in cache-sized chunks, scanned
 * for zeros, and written by N worker threads; compressed and stream-only
 * outputs are compressed on the workers and written strictly in order.
 * Memory is bounded by workers x chunk size, whatever the disk size.
 */
#ifndef VF_ENGINE_H
#define VF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/format.h"

/* true when len bytes at p are all zero (vectorised when the CPU can). */
bool buf_is_zero(const void *p, size_t len);

struct convert_opts {
    int threads;            /* -m: workers (0: number of cores) */
    bool out_of_order;      /* -W: writes need not follow guest order */
    uint64_t sparse_size;   /* -S: zero-detection granule, 0 = off */
    struct blk *base;       /* copy only layers above this (NULL: all) */
    bool target_has_backing;/* -B: zeros must be written, holes kept */
    /* Called from the caller's thread about 10 times a second, and once
     * at the end with done == total.  May be NULL. */
    void (*progress)(void *opaque, uint64_t done, uint64_t total);
    void *opaque;
};

struct convert_stats {
    uint64_t bytes_read;     /* read from the source */
    uint64_t bytes_written;  /* guest bytes written to the target */
    uint64_t bytes_zero;     /* guest bytes left as holes or zeroed */
    double seconds;
};

/* Copy src's guest content into dst (same or larger size). 0 / -1. */
int engine_convert(struct blk *src, struct blk *dst,
                   const struct convert_opts *o, struct convert_stats *st,
                   vf_error **errp);

/* Compare guest content.  Returns 0 identical, 1 different (with
 * *mismatch the first differing offset), -1 on error.  A size mismatch
 * is a difference only if the longer image's tail holds non-zero data. */
int engine_compare(struct blk *a, struct blk *b, uint64_t *mismatch,
                   vf_error **errp);

/* Does [off, end) of b's chain read as zeros?  1 yes, 0 no (with *where
 * the first non-zero byte), -1 on error.  Data extents are read. */
int engine_range_is_zero(struct blk *b, uint64_t off, uint64_t end,
                         uint64_t *where, vf_error **errp);

/* SHA-256 of the guest-visible bytes; zero ranges are hashed without
 * being read.  out gets 32 bytes.  0 / -1. */
int engine_digest(struct blk *b, uint8_t out[32], vf_error **errp);

/* One merged extent of the chain's allocation map. */
struct map_extent {
    uint64_t start, length;
    int depth;              /* layer that answered; chain length if none */
    bool present;           /* allocated in some layer */
    bool zero;              /* reads as zeros */
    bool data;              /* may hold data */
    uint64_t offset;        /* host offset, UINT64_MAX if unknown */
};

/* Walk the chain's map, merging adjacent equal extents; cb returns 0 to
 * go on, -1 to stop with an error. */
int engine_map(struct blk *b,
               int (*cb)(void *opaque, const struct map_extent *e,
                         vf_error **errp),
               void *opaque, vf_error **errp);

/* Default worker count: online CPUs, at least 1. */
int engine_default_threads(void);

#endif
