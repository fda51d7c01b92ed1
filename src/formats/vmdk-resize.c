/*
 * vmdk-resize.c: changing the virtual size of a VMDK image in place.
 *
 * Spec: VMware "Virtual Disk Format 5.0" (hosted sparse extents, the
 * descriptor file).  Per kind:
 *   monolithicSparse   header capacity, grain tables for the new grains,
 *                      the embedded descriptor.  A grain directory with
 *                      no room to grow is enlarged in place after what
 *                      lies behind it (grain tables, grains) has moved to
 *                      the end of the file.
 *   monolithicFlat, vmfs  the flat extent is truncated.
 *   twoGbMaxExtentSparse/Flat  the last extent grows to 2 GiB, then new
 *                      extents follow, named as VMware names them
 *                      (NAME-s001.vmdk, NAME-f001.vmdk); shrinking drops
 *                      whole extents and cuts the last one.
 *   streamOptimized, seSparse, COWD  refused.
 * A descriptor file is replaced whole (temporary, fsync, rename) and
 * ddb.geometry.cylinders follows the size.  Order: whatever a pointer will
 * name is written and flushed before the pointer is, so a crash leaves
 * the old image or the new one, never a pointer at garbage.  These
 * ordering flushes happen even with --unsafe: they are few.
 */
#include "formats/vmdk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VMDK_RS_2GB       (UINT64_C(1) << 31)  /* twoGb extent size */
/* GT entries are 32-bit sectors: a hosted sparse extent ends at 2 TiB */
#define VMDK_RS_SPARSE_MAX (UINT64_C(1) << 41)

/* ---- hosted sparse extents ---- */

struct vmdk_rs_patch {
    int at;               /* VMDK4_* header field (LE64) */
    uint64_t val;
};

/* Rewrite header fields of e and flush: the header is one sector, so
 * the switch is atomic. */
static int vmdk_rs_header(struct vmdk_extent *e, const struct vmdk_rs_patch *p,
                          size_t n, vf_error **errp)
{
    uint8_t h[VMDK_SECTOR];
    if (io_pread(e->io, h, sizeof(h), 0, errp) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        vmdk_put64(h + p[i].at, p[i].val);
    if (io_pwrite(e->io, h, sizeof(h), 0, errp) < 0 ||
        io_flush(e->io, errp) < 0)
        return -1;
    return 0;
}

/* Append len bytes (zeros when data is NULL) at the sector-aligned end of
 * e's file, never below sector floor; *sector gets where. */
static int vmdk_rs_append(struct vmdk_extent *e, const void *data,
                          uint64_t len, uint64_t floor, uint32_t *sector,
                          vf_error **errp)
{
    uint64_t at = vmdk_div_up(e->file_size, VMDK_SECTOR);
    if (at < floor)
        at = floor;
    if (at + vmdk_div_up(len, VMDK_SECTOR) > UINT32_MAX) {
        error_setg(errp, "VMDK sparse extent full at sector 0x%" PRIx64, at);
        return -1;
    }
    int r = data ? io_pwrite(e->io, data, (size_t)len, at * VMDK_SECTOR, errp)
                 : io_truncate(e->io, at * VMDK_SECTOR + len, errp);
    if (r < 0)
        return -1;
    e->file_size = at * VMDK_SECTOR + len;
    *sector = (uint32_t)at;
    return 0;
}

static void vmdk_rs_forget_gts(struct vmdk_extent *e)
{
    for (uint32_t i = 0; i < e->gd_entries; i++)
        vmdk_sparse_forget_gt(e, i);
}

/* Is GT entry sec a grain in the file (not unallocated, not zeroed)? */
static bool vmdk_rs_is_grain(const struct vmdk_extent *e, uint32_t sec)
{
    return sec > 1 || (sec == 1 && !e->zeroed_gte);
}

/* Does [start, start+len) (sectors) meet [t0, t1)? */
static bool vmdk_rs_meets(uint64_t start, uint64_t len, uint64_t t0,
                          uint64_t t1)
{
    return start < t1 && start + len > t0;
}

/* Copy len sectors at sector from to the end of the file (at t1 or
 * later); *to gets where.  The new copy is not yet flushed. */
static int vmdk_rs_copy(struct vmdk_extent *e, uint64_t from, uint64_t len,
                        uint64_t t1, uint8_t *buf, uint32_t *to,
                        vf_error **errp)
{
    if (io_pread(e->io, buf, (size_t)(len * VMDK_SECTOR),
                 from * VMDK_SECTOR, errp) < 0)
        return -1;
    return vmdk_rs_append(e, buf, len * VMDK_SECTOR, t1, to, errp);
}

/* Move every grain that meets sectors [t0, t1) to the end of the file
 * and point both grain tables at the copies. */
static int vmdk_rs_move_grains(struct vmdk_extent *e, uint64_t t0,
                               uint64_t t1, vf_error **errp)
{
    uint64_t gsec = e->grain / VMDK_SECTOR;
    /* a grain meeting [t0, t1) starts in [lo, t1): the map is small */
    uint64_t lo = t0 >= gsec - 1 ? t0 - (gsec - 1) : 0;
    uint32_t *map = calloc(t1 - lo, sizeof(*map));
    uint8_t *buf = malloc(e->grain);
    int ret = -1;
    bool moved = false;
    if (!map || !buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    /* copy first; every GT is read (and so validated) before any
     * pointer changes */
    for (int d = 0; d < 2; d++) {
        if (d && !e->rgd)
            break;
        for (uint32_t i = 0; i < e->gd_entries; i++) {
            uint32_t *gt;
            if (vmdk_sparse_load_gt(e, i, d, &gt, errp) < 0)
                goto out;
            for (uint32_t k = 0; gt && k < e->gtes; k++) {
                uint32_t sec = gt[k];
                if (!vmdk_rs_is_grain(e, sec) ||
                    !vmdk_rs_meets(sec, gsec, t0, t1) || map[sec - lo])
                    continue;
                if (vmdk_rs_copy(e, sec, gsec, t1, buf, &map[sec - lo],
                                 errp) < 0) {
                    free(gt);
                    goto out;
                }
                moved = true;
            }
            free(gt);
        }
    }
    if (!moved) {
        ret = 0;
        goto out;
    }
    if (io_flush(e->io, errp) < 0)
        goto out;
    for (int d = 0; d < 2; d++) {
        const uint32_t *dir = d ? e->rgd : e->gd;
        if (!dir)
            continue;
        for (uint32_t i = 0; i < e->gd_entries; i++) {
            uint32_t *gt;
            bool changed = false;
            if (vmdk_sparse_load_gt(e, i, d, &gt, errp) < 0)
                goto out;
            for (uint32_t k = 0; gt && k < e->gtes; k++) {
                if (vmdk_rs_is_grain(e, gt[k]) &&
                    vmdk_rs_meets(gt[k], gsec, t0, t1)) {
                    gt[k] = map[gt[k] - lo];
                    changed = true;
                }
            }
            int r = changed ? vmdk_write_u32s(e->io, gt, e->gtes,
                                              (uint64_t)dir[i] * VMDK_SECTOR,
                                              errp) : 0;
            free(gt);
            if (r < 0)
                goto out;
        }
    }
    vmdk_rs_forget_gts(e);
    ret = io_flush(e->io, errp);
out:
    free(map);
    free(buf);
    return ret;
}

/* Move every grain table that meets sectors [t0, t1) to the end of the
 * file and point the directories (the current, old-sized ones) at the
 * copies. */
static int vmdk_rs_move_gts(struct vmdk_extent *e, uint64_t t0, uint64_t t1,
                            vf_error **errp)
{
    uint64_t gt_sect = vmdk_div_up((uint64_t)e->gtes * 4, VMDK_SECTOR);
    uint64_t lo = t0 >= gt_sect - 1 ? t0 - (gt_sect - 1) : 0;
    uint32_t *map = calloc(t1 - lo, sizeof(*map));
    uint8_t *buf = malloc(gt_sect * VMDK_SECTOR);
    uint32_t *dirs[2] = { e->gd, e->rgd };
    uint64_t offs[2] = { e->gd_off, e->rgd_off };
    int ret = -1;
    bool moved = false;
    if (!map || !buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (int d = 0; d < 2; d++) {
        for (uint32_t i = 0; dirs[d] && i < e->gd_entries; i++) {
            uint32_t sec = dirs[d][i];
            if (!sec || !vmdk_rs_meets(sec, gt_sect, t0, t1) ||
                map[sec - lo])
                continue;
            if (vmdk_rs_copy(e, sec, gt_sect, t1, buf, &map[sec - lo],
                             errp) < 0)
                goto out;
            moved = true;
        }
    }
    if (!moved) {
        ret = 0;
        goto out;
    }
    if (io_flush(e->io, errp) < 0)
        goto out;
    for (int d = 0; d < 2; d++) {
        if (!dirs[d])
            continue;
        for (uint32_t i = 0; i < e->gd_entries; i++)
            if (dirs[d][i] && vmdk_rs_meets(dirs[d][i], gt_sect, t0, t1))
                dirs[d][i] = map[dirs[d][i] - lo];
        if (vmdk_write_u32s(e->io, dirs[d], e->gd_entries, offs[d],
                            errp) < 0)
            goto out;
    }
    vmdk_rs_forget_gts(e);
    ret = io_flush(e->io, errp);
out:
    free(map);
    free(buf);
    return ret;
}

/* Give both directories room for n entries: the first (lowest) stays
 * where it is and grows in place; the second goes right after it.  The
 * sectors [t0, t1) they need are emptied first (grains, then GTs, to the
 * end of the file); the second directory is staged at the end of the
 * file while it moves, so the header always names a whole directory. */
static int vmdk_rs_make_room(struct vmdk_extent *e, uint32_t n,
                             vf_error **errp)
{
    uint64_t gsec = e->grain / VMDK_SECTOR;
    uint64_t osec = vmdk_div_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR);
    uint64_t nsec = vmdk_div_up((uint64_t)n * 4, VMDK_SECTOR);
    bool two = e->rgd != NULL;
    bool gd_first = !two || e->gd_off < e->rgd_off;
    uint64_t d1 = (gd_first ? e->gd_off : e->rgd_off) / VMDK_SECTOR;
    uint64_t d2 = two ? (gd_first ? e->rgd_off : e->gd_off) / VMDK_SECTOR
                      : 0;
    uint64_t t0 = d1, t1 = d1 + (two ? 2 : 1) * nsec;
    uint64_t desc0 = e->desc_off / VMDK_SECTOR;
    uint64_t desc1 = desc0 + vmdk_div_up(e->desc_size, VMDK_SECTOR);
    if (e->gd_off % VMDK_SECTOR || e->rgd_off % VMDK_SECTOR || !d1 ||
        (two && d1 == d2) || (e->desc_size &&
                              vmdk_rs_meets(desc0, desc1 - desc0, t0, t1)) ||
        vmdk_div_up(t1, gsec) * gsec > UINT32_MAX) {
        error_setg(errp, "VMDK metadata layout leaves no way to grow the "
                   "grain directory at 0x%" PRIx64, e->gd_off);
        return -1;
    }
    if (vmdk_rs_move_grains(e, t0, t1, errp) < 0 ||
        vmdk_rs_move_gts(e, t0, t1, errp) < 0)
        return -1;
    /* [t0, t1) now holds only the two directories */
    uint32_t *dir2 = gd_first ? e->rgd : e->gd;
    int f2 = gd_first ? VMDK4_RGD_OFF : VMDK4_GD_OFF;
    uint8_t *pad = calloc(nsec, VMDK_SECTOR);
    if (!pad) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int ret = -1;
    uint64_t overhead = vmdk_div_up(t1, gsec) * gsec;
    if (overhead < e->overhead / VMDK_SECTOR)
        overhead = e->overhead / VMDK_SECTOR;
    uint64_t old_bytes = (uint64_t)e->gd_entries * 4;
    if (two) {
        uint32_t stage;
        for (uint32_t i = 0; i < e->gd_entries; i++)
            vmdk_put32(pad + 4 * (uint64_t)i, dir2[i]);
        if (vmdk_rs_append(e, pad, osec * VMDK_SECTOR, t1, &stage,
                           errp) < 0 || io_flush(e->io, errp) < 0)
            goto out;
        struct vmdk_rs_patch p1 = { f2, stage };
        if (vmdk_rs_header(e, &p1, 1, errp) < 0)
            goto out;
        /* the old second directory is free: lay out both */
        if (io_pwrite(e->io, pad, (size_t)(nsec * VMDK_SECTOR),
                      (d1 + nsec) * VMDK_SECTOR, errp) < 0)
            goto out;
        memset(pad, 0, (size_t)(nsec * VMDK_SECTOR));
        if (io_pwrite(e->io, pad, (size_t)(nsec * VMDK_SECTOR - old_bytes),
                      d1 * VMDK_SECTOR + old_bytes, errp) < 0 ||
            io_flush(e->io, errp) < 0)
            goto out;
        struct vmdk_rs_patch p2[2] = { { f2, d1 + nsec },
                                       { VMDK4_OVERHEAD, overhead } };
        if (vmdk_rs_header(e, p2, 2, errp) < 0)
            goto out;
        if (gd_first)
            e->rgd_off = (d1 + nsec) * VMDK_SECTOR;
        else
            e->gd_off = (d1 + nsec) * VMDK_SECTOR;
        /* the staged copy is the last thing in the file */
        if ((uint64_t)stage * VMDK_SECTOR + osec * VMDK_SECTOR ==
            e->file_size) {
            if (io_truncate(e->io, (uint64_t)stage * VMDK_SECTOR, errp) < 0)
                goto out;
            e->file_size = (uint64_t)stage * VMDK_SECTOR;
        }
    } else {
        if (io_pwrite(e->io, pad, (size_t)(nsec * VMDK_SECTOR - old_bytes),
                      d1 * VMDK_SECTOR + old_bytes, errp) < 0 ||
            io_flush(e->io, errp) < 0)
            goto out;
        struct vmdk_rs_patch p = { VMDK4_OVERHEAD, overhead };
        if (vmdk_rs_header(e, &p, 1, errp) < 0)
            goto out;
    }
    e->overhead = overhead * VMDK_SECTOR;
    /* readers check that the file reaches the first grain */
    if (e->file_size < e->overhead) {
        if (io_truncate(e->io, e->overhead, errp) < 0)
            goto out;
        e->file_size = e->overhead;
    }
    ret = 0;
out:
    free(pad);
    return ret;
}

/* Entries a directory has room for without moving anything: the rest of
 * its last sector. */
static uint64_t vmdk_rs_room(const struct vmdk_extent *e)
{
    return vmdk_div_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR) *
           VMDK_SECTOR / 4;
}

/* Zero the GT entries of grains g0 and up that GT g0 / gtes holds (in
 * both copies), when that GT exists. */
static int vmdk_rs_clear_from(struct vmdk_extent *e, uint64_t g0,
                              vf_error **errp)
{
    uint64_t i = g0 / e->gtes;
    if (i >= e->gd_entries || !(g0 % e->gtes))
        return 0;
    for (int d = 0; d < 2; d++) {
        const uint32_t *dir = d ? e->rgd : e->gd;
        uint32_t *gt;
        if (!dir)
            continue;
        if (vmdk_sparse_load_gt(e, (uint32_t)i, d, &gt, errp) < 0)
            return -1;
        bool changed = false;
        for (uint32_t k = (uint32_t)(g0 % e->gtes); gt && k < e->gtes; k++) {
            changed |= gt[k] != 0;
            gt[k] = 0;
        }
        int r = changed ? vmdk_write_u32s(e->io, gt, e->gtes,
                                          (uint64_t)dir[i] * VMDK_SECTOR,
                                          errp) : 0;
        free(gt);
        if (r < 0)
            return -1;
    }
    vmdk_sparse_forget_gt(e, (uint32_t)i);
    return 0;
}

/* Add zeroed GTs for directory entries [from, to) at the end of the
 * file. */
static int vmdk_rs_new_gts(struct vmdk_extent *e, uint32_t *dir,
                           uint32_t from, uint32_t to, vf_error **errp)
{
    for (uint32_t i = from; i < to; i++)
        if (vmdk_rs_append(e, NULL, (uint64_t)e->gtes * 4, 0, &dir[i],
                           errp) < 0)
            return -1;
    return 0;
}

static int vmdk_rs_write_desc(struct vmdk_extent *e, const char *desc,
                              vf_error **errp)
{
    size_t dl = strlen(desc);
    if (dl > e->desc_size) {
        error_setg(errp, "VMDK descriptor of %zu bytes does not fit the %"
                   PRIu64 " reserved", dl, e->desc_size);
        return -1;
    }
    uint8_t *buf = calloc(1, e->desc_size);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(buf, desc, dl);
    int r = io_pwrite(e->io, buf, e->desc_size, e->desc_off, errp);
    free(buf);
    return r;
}

static int vmdk_rs_grow_dirs(struct vmdk_extent *e, uint32_t n,
                             vf_error **errp)
{
    uint32_t old = e->gd_entries;
    if (n > vmdk_rs_room(e) && vmdk_rs_make_room(e, n, errp) < 0)
        return -1;
    uint32_t **ngt = realloc(e->gt, n * sizeof(*ngt));
    if (ngt)
        e->gt = ngt;
    uint32_t *ngd = realloc(e->gd, n * sizeof(*ngd));
    if (ngd)
        e->gd = ngd;
    uint32_t *nrgd = e->rgd ? realloc(e->rgd, n * sizeof(*nrgd)) : NULL;
    if (nrgd)
        e->rgd = nrgd;
    if (!ngt || !ngd || (e->rgd && !nrgd)) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(e->gt + old, 0, (n - old) * sizeof(*ngt));
    if (vmdk_rs_new_gts(e, e->gd, old, n, errp) < 0 ||
        (e->rgd && vmdk_rs_new_gts(e, e->rgd, old, n, errp) < 0) ||
        io_flush(e->io, errp) < 0)
        return -1;
    /* entries past the old count: nobody reads them until the header
     * says the new capacity */
    if (vmdk_write_u32s(e->io, e->gd + old, n - old,
                        e->gd_off + 4 * (uint64_t)old, errp) < 0 ||
        (e->rgd && vmdk_write_u32s(e->io, e->rgd + old, n - old,
                                   e->rgd_off + 4 * (uint64_t)old,
                                   errp) < 0) ||
        io_flush(e->io, errp) < 0)
        return -1;
    e->gd_entries = n;
    return 0;
}

/* Forget directory entries [n, old): zero them in memory and on disk. */
static int vmdk_rs_drop_dirs(struct vmdk_extent *e, uint32_t n,
                             vf_error **errp)
{
    uint32_t old = e->gd_entries;
    vmdk_rs_forget_gts(e);
    memset(e->gd + n, 0, (old - n) * sizeof(*e->gd));
    if (e->rgd)
        memset(e->rgd + n, 0, (old - n) * sizeof(*e->rgd));
    if (vmdk_write_u32s(e->io, NULL, old - n, e->gd_off + 4 * (uint64_t)n,
                        errp) < 0 ||
        (e->rgd && vmdk_write_u32s(e->io, NULL, old - n,
                                   e->rgd_off + 4 * (uint64_t)n, errp) < 0))
        return -1;
    e->gd_entries = n;
    return 0;
}

/* Set the capacity of hosted sparse extent e to new_len bytes, and its
 * embedded descriptor to desc when not NULL. */
static int vmdk_rs_sparse(struct vmdk_extent *e, uint64_t new_len,
                          const char *desc, vf_error **errp)
{
    /* a damaged extent (a directory unreadable) is for convert */
    if (e->type != VMDK_EXT_SPARSE || e->compressed || e->used_rgd ||
        !e->gd || (e->rgd_off && !e->rgd) || e->stream_scanned) {
        error_setg(errp, "resizing this VMDK kind (%s) is not supported",
                   e->type == VMDK_EXT_COWD ? "vmfsSparse" : "damaged");
        return -1;
    }
    if (new_len > VMDK_RS_SPARSE_MAX) {
        error_setg(errp, "VMDK sparse extent of 0x%" PRIx64 " bytes beyond "
                   "the 2 TiB grain tables can address", new_len);
        return -1;
    }
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    uint64_t n = vmdk_div_up(new_len, per_gt);
    if (n > VMDK_GD_MAX) {
        error_setg(errp, "VMDK grain directory of 0x%" PRIx64 " entries "
                   "too large", n);
        return -1;
    }
    uint64_t old_grains = vmdk_div_up(e->capacity, e->grain);
    uint64_t new_grains = vmdk_div_up(new_len, e->grain);
    struct vmdk_rs_patch cap = { VMDK4_CAPACITY, new_len / VMDK_SECTOR };
    if (new_len >= e->capacity) {
        /* stale entries past the old end must not come back as data */
        if (vmdk_rs_clear_from(e, old_grains, errp) < 0 ||
            (n > e->gd_entries &&
             vmdk_rs_grow_dirs(e, (uint32_t)n, errp) < 0) ||
            (desc && vmdk_rs_write_desc(e, desc, errp) < 0) ||
            io_flush(e->io, errp) < 0 ||
            vmdk_rs_header(e, &cap, 1, errp) < 0)
            return -1;
    } else {
        /* readers stop at the new end first; then what lay past it goes */
        if ((desc && vmdk_rs_write_desc(e, desc, errp) < 0) ||
            vmdk_rs_header(e, &cap, 1, errp) < 0)
            return -1;
        e->capacity = new_len;
        if ((n < e->gd_entries &&
             vmdk_rs_drop_dirs(e, (uint32_t)n, errp) < 0) ||
            vmdk_rs_clear_from(e, new_grains, errp) < 0 ||
            io_flush(e->io, errp) < 0)
            return -1;
    }
    e->capacity = new_len;
    return 0;
}

/* monolithicSparse: one KDMV file with the descriptor inside. */
static int vmdk_rs_mono(struct blk *b, struct vmdk_state *s,
                        uint64_t new_size, vf_error **errp)
{
    struct vmdk_extent *e = &s->ext[0];
    char *nd = NULL;
    if (s->desc && e->desc_size) {
        nd = vmdk_desc_resized(s->desc, SIZE_MAX, new_size / VMDK_SECTOR,
                               NULL, 0, new_size, errp);
        if (!nd)
            return -1;
    }
    if (vmdk_rs_sparse(e, new_size, nd, errp) < 0) {
        free(nd);
        return -1;
    }
    if (nd) {
        free(s->desc);
        s->desc = nd;
    }
    e->len = new_size;
    b->size = new_size;
    return 0;
}

/* ---- descriptor files ---- */

/* A new extent being made under a temporary name. */
struct vmdk_rs_new {
    struct vmdk_extent e;
    char *tmp;            /* temporary path, until renamed */
    char *path;           /* final path */
    bool placed;          /* renamed to path */
};

/* The name of new extent k (0-based) after the last one: VMware's
 * NAME-s001.vmdk / NAME-f001.vmdk, continuing the last extent's number
 * when its name has that form. */
static char *vmdk_rs_extent_name(struct blk *b, const struct vmdk_state *s,
                                 bool sparse, size_t k)
{
    const char *f = s->ext[s->n_ext - 1].fname;
    size_t l = f ? strlen(f) : 0, d = 0;
    char *r = NULL;
    if (l > 5 && !strcmp(f + l - 5, ".vmdk")) {
        while (d < l - 5 && d < 9 && f[l - 6 - d] >= '0' &&
               f[l - 6 - d] <= '9')
            d++;
        if (d && l - 5 - d >= 2 && (f[l - 6 - d] == 's' ||
                                    f[l - 6 - d] == 'f') &&
            f[l - 7 - d] == '-') {
            unsigned long num = strtoul(f + l - 5 - d, NULL, 10);
            if (asprintf(&r, "%.*s-%c%0*lu.vmdk", (int)(l - 7 - d), f,
                         sparse ? 's' : 'f', d < 3 ? 3 : (int)d,
                         num + 1 + k) < 0)
                r = NULL;
            return r;
        }
    }
    char sfx[32];
    snprintf(sfx, sizeof(sfx), "-%c%03zu.vmdk", sparse ? 's' : 'f',
             s->n_ext + 1 + k);
    return vmdk_sibling_name(b->filename, sfx);
}

/* Make new extent ne (its fname set) of len bytes under a temporary
 * name, written and flushed. */
static int vmdk_rs_make_extent(struct blk *b, struct vmdk_rs_new *ne,
                               bool sparse, bool zeroed, uint64_t len,
                               vf_error **errp)
{
    struct vmdk_extent *e = &ne->e;
    ne->path = blk_resolve_name(b, e->fname, errp);
    if (!ne->path)
        return -1;
    if (access(ne->path, F_OK) == 0) {
        error_setg(errp, "VMDK extent file %s already exists", ne->path);
        return -1;
    }
    e->io = blk_tmp_create(ne->path, &ne->tmp, errp);
    if (!e->io)
        return -1;
    e->own_io = true;
    if (sparse) {
        if (vmdk_wsparse_init(e, len, false, zeroed, errp) < 0 ||
            vmdk_wsparse_flush(e, NULL, errp) < 0)
            return -1;
        e->writing = false;   /* from now on, read the GTs from the file */
        e->file_size = e->overhead;
    } else {
        e->type = VMDK_EXT_FLAT;
        e->len = len;
        if (io_truncate(e->io, len, errp) < 0)
            return -1;
        e->file_size = len;
    }
    return io_flush(e->io, errp);
}

/* Replace the descriptor file with text: a temporary beside it, fsync,
 * rename, fsync of the directory. */
static int vmdk_rs_replace_desc(struct blk *b, const char *text,
                                vf_error **errp)
{
    char *tmp = NULL;
    struct io *io = blk_tmp_create(b->filename, &tmp, errp);
    if (!io)
        return -1;
    struct stat st;
    int ret = -1;
    if (b->file->fd >= 0 && fstat(b->file->fd, &st) == 0 && io->fd >= 0)
        (void)!fchmod(io->fd, st.st_mode & 07777);
    if (io_pwrite(io, text, strlen(text), 0, errp) < 0 ||
        io_flush(io, errp) < 0)
        goto out;
    io_close(io);
    io = NULL;
    if (blk_tmp_finish(tmp, b->filename, false, errp) < 0)
        goto out;
    free(tmp);
    tmp = NULL;
    ret = blk_fsync_dir(b->dir, errp);
out:
    io_close(io);
    blk_tmp_abandon(tmp);
    free(tmp);
    return ret;
}

/* Does any extent but ext[skip] name the same file as ext[skip]? */
static bool vmdk_rs_file_shared(const struct vmdk_state *s, size_t skip)
{
    const char *f = s->ext[skip].fname;
    for (size_t i = 0; f && i < s->n_ext; i++)
        if (i != skip && s->ext[i].fname && !strcmp(s->ext[i].fname, f))
            return true;
    return false;
}

/* After the new descriptor is in place: unlink the files of dropped
 * extents [keep, n_ext) that no kept extent uses, and forget them. */
static void vmdk_rs_drop_extents(struct blk *b, struct vmdk_state *s,
                                 size_t keep)
{
    const char *self = strrchr(b->filename, '/');
    self = self ? self + 1 : b->filename;
    for (size_t i = keep; i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        /* a file a kept extent (or the descriptor) uses stays */
        bool used = e->fname && !strcmp(e->fname, self);
        for (size_t k = 0; e->fname && k < keep; k++)
            used |= s->ext[k].fname && !strcmp(s->ext[k].fname, e->fname);
        if (e->type != VMDK_EXT_ZERO && e->fname && !used) {
            vf_error *err = NULL;
            char *path = blk_resolve_name(b, e->fname, &err);
            if (path)
                unlink(path);      /* a leftover is only wasted space */
            free(path);
            error_free(err);
        }
    }
    for (size_t i = keep; i < s->n_ext; i++)
        vmdk_extent_free(&s->ext[i]);
    s->n_ext = keep;
    vf_error *err = NULL;
    if (blk_fsync_dir(b->dir, &err) < 0)
        error_free(err);
}

static int vmdk_rs_desc(struct blk *b, struct vmdk_state *s,
                        uint64_t new_size, vf_error **errp)
{
    const char *ct = s->create_type ? s->create_type : "";
    bool split = !strcmp(ct, "twoGbMaxExtentSparse") ||
                 !strcmp(ct, "twoGbMaxExtentFlat");
    bool new_sparse = !strcmp(ct, "twoGbMaxExtentSparse");
    size_t keep = s->n_ext, n_add = 0;
    struct vmdk_extent *last = &s->ext[s->n_ext - 1];
    uint64_t last_len;
    if (new_size <= b->size) {
        /* the extent holding the new last byte becomes the last one */
        keep = 1;
        while (keep < s->n_ext && s->ext[keep].start < new_size)
            keep++;
        last = &s->ext[keep - 1];
        last_len = new_size - last->start;
        if (keep < s->n_ext && !split) {
            error_setg(errp, "VMDK size 0x%" PRIx64 " would drop whole "
                       "extents", new_size);
            return -1;
        }
    } else {
        uint64_t want = new_size - last->start;
        last_len = want;
        if (split) {
            /* an extent already past 2 GiB (not ours) stays as it is */
            last_len = last->len >= VMDK_RS_2GB ? last->len
                       : want < VMDK_RS_2GB ? want : VMDK_RS_2GB;
            n_add = (size_t)vmdk_div_up(want - last_len, VMDK_RS_2GB);
        }
        if (n_add > VMDK_EXTENTS_MAX - s->n_ext) {
            error_setg(errp, "VMDK size 0x%" PRIx64 " needs more than %u "
                       "extents", new_size, VMDK_EXTENTS_MAX);
            return -1;
        }
    }
    size_t li = (size_t)(last - s->ext);
    if (last_len != last->len) {
        if (last->type != VMDK_EXT_FLAT && last->type != VMDK_EXT_SPARSE) {
            error_setg(errp, "resizing a VMDK whose last extent is %s is "
                       "not supported", last->type == VMDK_EXT_ZERO
                       ? "ZERO" : "vmfsSparse");
            return -1;
        }
        if (vmdk_rs_file_shared(s, li)) {
            error_setg(errp, "VMDK extent file %s holds other extents too",
                       last->fname);
            return -1;
        }
    }
    bool zeroed = last->type == VMDK_EXT_SPARSE && last->zeroed_gte;
    struct vmdk_rs_new *nv = n_add ? calloc(n_add, sizeof(*nv)) : NULL;
    char **lines = n_add ? calloc(n_add, sizeof(*lines)) : NULL;
    char *text = NULL;
    int ret = -1;
    bool committed = false;
    if (n_add && (!nv || !lines)) {
        error_setg(errp, "out of memory");
        goto out;
    }
    /* 1. the new extents, whole and flushed, under temporary names */
    uint64_t start = last->start + last_len;
    for (size_t k = 0; k < n_add; k++) {
        uint64_t len = new_size - start < VMDK_RS_2GB ? new_size - start
                                                      : VMDK_RS_2GB;
        nv[k].e.fname = vmdk_rs_extent_name(b, s, new_sparse, k);
        if (!nv[k].e.fname) {
            error_setg(errp, "out of memory");
            goto out;
        }
        nv[k].e.start = start;
        if (vmdk_rs_make_extent(b, &nv[k], new_sparse, zeroed, len,
                                errp) < 0)
            goto out;
        if (asprintf(&lines[k], "RW %" PRIu64 " %s \"%s\"%s",
                     len / VMDK_SECTOR, new_sparse ? "SPARSE" : "FLAT",
                     nv[k].e.fname, new_sparse ? "" : " 0") < 0) {
            lines[k] = NULL;
            error_setg(errp, "out of memory");
            goto out;
        }
        start += len;
    }
    text = vmdk_desc_resized(s->desc, keep, last_len / VMDK_SECTOR, lines,
                             n_add, new_size, errp);
    if (!text)
        goto out;
    /* 2. the last kept extent */
    if (last_len != last->len) {
        int r = last->type == VMDK_EXT_SPARSE
                ? vmdk_rs_sparse(last, last_len, NULL, errp)
                : io_truncate(last->io, last->flat_off + last_len, errp);
        if (r < 0 || io_flush(last->io, errp) < 0)
            goto out;
        last->len = last_len;
    }
    /* 3. the new extents under their names, then the descriptor that
     * names them */
    for (size_t k = 0; k < n_add; k++) {
        if (blk_tmp_finish(nv[k].tmp, nv[k].path, true, errp) < 0)
            goto out;
        nv[k].placed = true;
    }
    if (vmdk_rs_replace_desc(b, text, errp) < 0)
        goto out;
    committed = true;
    /* 4. the new image is in place: tidy up */
    free(s->desc);
    s->desc = text;
    text = NULL;
    vmdk_rs_drop_extents(b, s, keep);
    if (n_add) {
        struct vmdk_extent *ne = realloc(s->ext, (s->n_ext + n_add) *
                                         sizeof(*ne));
        if (!ne) {
            /* the image is right; only our view of it is short */
            error_setg(errp, "out of memory");
            goto out;
        }
        s->ext = ne;
        for (size_t k = 0; k < n_add; k++) {
            s->ext[s->n_ext++] = nv[k].e;
            memset(&nv[k].e, 0, sizeof(nv[k].e));
        }
    }
    b->size = new_size;
    ret = 0;
out:
    for (size_t k = 0; k < n_add && nv; k++) {
        if (!committed && nv[k].placed)
            unlink(nv[k].path);     /* no descriptor names it */
        blk_tmp_abandon(nv[k].placed ? NULL : nv[k].tmp);
        free(nv[k].tmp);
        free(nv[k].path);
        vmdk_extent_free(&nv[k].e);
        if (lines)
            free(lines[k]);
    }
    free(nv);
    free(lines);
    free(text);
    return ret;
}

int vmdk_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    if (b->created || s->stream) {
        error_setg(errp, "resizing a VMDK being written is not supported");
        return -1;
    }
    for (size_t i = 0; i < s->n_ext; i++) {
        if (s->ext[i].type == VMDK_EXT_SESPARSE) {
            error_setg(errp, "seSparse VMDK cannot be resized (read-only)");
            return -1;
        }
        if (s->ext[i].compressed) {
            error_setg(errp, "streamOptimized VMDK cannot be resized; "
                       "convert it");
            return -1;
        }
    }
    if (!new_size || new_size % VMDK_SECTOR) {
        error_setg(errp, "VMDK size 0x%" PRIx64 " not a positive multiple "
                   "of 512", new_size);
        return -1;
    }
    return s->desc_file ? vmdk_rs_desc(b, s, new_size, errp)
                        : vmdk_rs_mono(b, s, new_size, errp);
}
