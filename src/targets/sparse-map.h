/*
 * sparse-map.h: the data runs of a sparse archive member (an oldgnu 'S'
 * member's map, tar.h), built front to back, with a bound on how many
 * runs it keeps.
 *
 * Runs are appended in increasing order; touching runs are merged.  When
 * more than max runs would be kept, runs are merged across the shortest
 * holes (holes under min_hole, which doubles until the map fits): those
 * holes are then stored as data, which is correct (the caller reads them
 * from the disk, where they read as zeros), only less sparse.  Memory
 * stays below 2 * max runs while the map is built.
 */
#ifndef VF_SPARSE_MAP_H
#define VF_SPARSE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "targets/tar.h"

struct sparse_map {
    struct tar_sparse *runs;   /* sorted, neither overlapping nor touching */
    size_t n, cap;
    size_t max;                /* runs kept at most (>= 1) */
    uint64_t min_hole;         /* shorter holes are merged away (0: none) */
    uint64_t first_hole;       /* min_hole's first value when the map
                                  outgrows max (e.g. the scan granule) */
};

/* Append data [off, off+len): off at or past the last run's end, len > 0.
 * 0 / -1 (out of memory). */
int sparse_map_add(struct sparse_map *m, uint64_t off, uint64_t len,
                   vf_error **errp);
/* Merge across holes until at most m->max runs are left. */
void sparse_map_bound(struct sparse_map *m);
/* The bytes the runs hold (what the member stores). */
uint64_t sparse_map_stored(const struct sparse_map *m);
void sparse_map_free(struct sparse_map *m);

#endif
