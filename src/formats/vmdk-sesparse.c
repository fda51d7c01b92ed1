/*
 * vmdk-sesparse.c: reading ESXi "space efficient sparse" (seSparse)
 * extents, the snapshot deltas VMFS 6 (ESXi 6.5 and later) writes.
 *
 * VMware has not published the format.  The layout is the one QEMU's
 * block/vmdk.c reads (vmdk_open_se_sparse, get_cluster_offset): a
 * 512-byte constant header of LE64 fields (magic 0xcafebabe, version
 * 0x200000001, 4 KiB grains, 4096-entry grain tables), a volatile header
 * (magic 0xcafecafe, a "replay the journal" flag), a grain directory (GD)
 * of LE64 entries naming grain tables by index into the grain-table area,
 * and grain tables (GT) of LE64 entries whose top nibble is the grain's
 * state.  Header offsets and sizes are sectors.  As QEMU does, we refuse
 * what we do not understand (flags, reserved fields, a pending journal)
 * and never write.  Unallocated grains read from the parent.
 */
#include "formats/vmdk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define VMDK_SE_GRAIN_BYTES  (VMDK_SE_GRAIN_SECT * VMDK_SECTOR)
#define VMDK_SE_GT_BYTES     (VMDK_SE_GTES * 8u)
/* Header offsets are sectors; past 2^52 they are not byte offsets any
 * file can have, and bounding them keeps every sum below 2^62. */
#define VMDK_SE_OFF_MAX      (UINT64_C(1) << 52)

/* A GD entry of 0: the whole GT is unallocated.  Never written. */
static const uint64_t vmdk_se_empty_gt[VMDK_SE_GTES];

static bool vmdk_se_in_file(const struct vmdk_extent *e, uint64_t off,
                            uint64_t len)
{
    return off <= e->file_size && len <= e->file_size - off;
}

/* Read n LE64 entries at byte offset off into a new array. */
static uint64_t *vmdk_se_read_u64s(struct vmdk_extent *e, uint64_t off,
                                   uint64_t n, vf_error **errp)
{
    size_t bytes = (size_t)n * 8;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint64_t *v = malloc(bytes ? bytes : 1);
    if (!raw || !v) {
        free(raw);
        free(v);
        error_setg(errp, "out of memory");
        return NULL;
    }
    if (io_pread(e->io, raw, bytes, off, errp) < 0) {
        free(raw);
        free(v);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        v[i] = vmdk_le64(raw + 8 * i);
    free(raw);
    return v;
}

static int vmdk_se_check_const(const uint8_t *h, vf_error **errp)
{
    uint64_t v = vmdk_le64(h);
    if (v != VMDK_SE_MAGIC) {
        error_setg(errp, "VMDK seSparse header magic 0x%016" PRIx64
                   " invalid", v);
        return -1;
    }
    v = vmdk_le64(h + VMDK_SE_VERSION);
    if (v != VMDK_SE_VERSION_2_1) {
        error_setg(errp, "VMDK seSparse version 0x%016" PRIx64
                   " unsupported", v);
        return -1;
    }
    v = vmdk_le64(h + VMDK_SE_GRAIN);
    if (v != VMDK_SE_GRAIN_SECT) {
        error_setg(errp, "VMDK seSparse grain of %" PRIu64 " sectors "
                   "unsupported (only %u)", v, VMDK_SE_GRAIN_SECT);
        return -1;
    }
    v = vmdk_le64(h + VMDK_SE_GT_SIZE);
    if (v != VMDK_SE_GT_SECT) {
        error_setg(errp, "VMDK seSparse grain table of %" PRIu64 " sectors "
                   "unsupported (only %u)", v, VMDK_SE_GT_SECT);
        return -1;
    }
    v = vmdk_le64(h + VMDK_SE_FLAGS);
    if (v) {
        error_setg(errp, "VMDK seSparse flags 0x%" PRIx64 " unsupported", v);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        if (vmdk_le64(h + VMDK_SE_RESERVED + 8 * i)) {
            error_setg(errp, "VMDK seSparse reserved header field %d set "
                       "(unknown version)", i + 1);
            return -1;
        }
    }
    return 0;
}

int vmdk_se_open(struct vmdk_extent *e, vf_error **errp)
{
    uint8_t h[VMDK_SECTOR], vol[VMDK_SECTOR];
    pthread_mutex_init(&e->lock, NULL);
    e->lock_init = true;
    if (e->file_size < VMDK_SECTOR) {
        error_setg(errp, "VMDK seSparse extent of %" PRIu64 " bytes too "
                   "short", e->file_size);
        return -1;
    }
    if (io_pread(e->io, h, sizeof(h), 0, errp) < 0 ||
        vmdk_se_check_const(h, errp) < 0)
        return -1;
    uint64_t cap = vmdk_le64(h + VMDK_SE_CAPACITY);
    if (cap > VMDK_SE_CAPACITY_MAX) {
        error_setg(errp, "VMDK seSparse capacity 0x%" PRIx64 " sectors "
                   "too large", cap);
        return -1;
    }
    static const struct { int at; const char *what; } offs[] = {
        { VMDK_SE_VOL_OFF, "volatile header" },
        { VMDK_SE_GD_OFF, "grain directory" },
        { VMDK_SE_GD_SIZE, "grain directory size" },
        { VMDK_SE_GTS_OFF, "grain tables" },
        { VMDK_SE_GRAINS_OFF, "grains" },
    };
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        uint64_t v = vmdk_le64(h + offs[i].at);
        if (v > VMDK_SE_OFF_MAX) {
            error_setg(errp, "VMDK seSparse %s offset 0x%" PRIx64
                       " sectors too large", offs[i].what, v);
            return -1;
        }
    }
    uint64_t vol_off = vmdk_le64(h + VMDK_SE_VOL_OFF) * VMDK_SECTOR;
    if (!vmdk_se_in_file(e, vol_off, VMDK_SECTOR)) {
        error_setg(errp, "VMDK seSparse volatile header at 0x%" PRIx64
                   " beyond end of file", vol_off);
        return -1;
    }
    if (io_pread(e->io, vol, sizeof(vol), vol_off, errp) < 0)
        return -1;
    if (vmdk_le64(vol) != VMDK_SE_VOL_MAGIC) {
        error_setg(errp, "VMDK seSparse volatile header magic 0x%016"
                   PRIx64 " invalid", vmdk_le64(vol));
        return -1;
    }
    if (vmdk_le64(vol + VMDK_SE_VOL_REPLAY)) {
        error_setg(errp, "VMDK seSparse journal not replayed (the disk was "
                   "not closed cleanly; open it in ESXi first)");
        return -1;
    }
    e->capacity = cap * VMDK_SECTOR;
    e->grain = VMDK_SE_GRAIN_BYTES;
    e->gtes = VMDK_SE_GTES;
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    uint64_t need = e->capacity / per_gt + (e->capacity % per_gt != 0);
    /* GD size is in sectors of 64 entries */
    uint64_t have = vmdk_le64(h + VMDK_SE_GD_SIZE) * (VMDK_SECTOR / 8);
    if (have < need) {
        error_setg(errp, "VMDK seSparse grain directory of %" PRIu64
                   " entries too small for the capacity (%" PRIu64
                   " needed)", have, need);
        return -1;
    }
    e->gd_entries = (uint32_t)need;     /* <= 2^22 by the capacity cap */
    e->gd_off = vmdk_le64(h + VMDK_SE_GD_OFF) * VMDK_SECTOR;
    if (!vmdk_se_in_file(e, e->gd_off, need * 8)) {
        error_setg(errp, "VMDK seSparse grain directory at 0x%" PRIx64
                   " beyond end of file", e->gd_off);
        return -1;
    }
    e->se_gts_off = vmdk_le64(h + VMDK_SE_GTS_OFF) * VMDK_SECTOR;
    e->se_gts = vmdk_le64(h + VMDK_SE_GTS_SIZE) / VMDK_SE_GT_SECT;
    e->se_grains_off = vmdk_le64(h + VMDK_SE_GRAINS_OFF) * VMDK_SECTOR;
    e->se_gt = calloc(need ? need : 1, sizeof(*e->se_gt));
    if (!e->se_gt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    e->se_gd = vmdk_se_read_u64s(e, e->gd_off, need, errp);
    return e->se_gd ? 0 : -1;
}

void vmdk_se_free(struct vmdk_extent *e)
{
    if (e->se_gt) {
        for (uint32_t i = 0; i < e->gd_entries; i++)
            if (e->se_gt[i] != vmdk_se_empty_gt)
                free(e->se_gt[i]);
        free(e->se_gt);
    }
    free(e->se_gd);
    e->se_gt = NULL;
    e->se_gd = NULL;
}

/* Byte offset of GT i from its GD entry; 0 when the entry is 0. */
static int vmdk_se_gt_offset(const struct vmdk_extent *e, uint32_t i,
                             uint64_t *off, vf_error **errp)
{
    uint64_t v = e->se_gd[i];
    *off = 0;
    if (!v)
        return 0;
    if (v >> 32 != VMDK_SE_GDE_ALLOC) {
        error_setg(errp, "VMDK seSparse grain directory entry %" PRIu32
                   " (0x%016" PRIx64 ") names no grain table", i, v);
        return -1;
    }
    uint64_t idx = v & UINT32_MAX;
    if (idx >= e->se_gts) {
        error_setg(errp, "VMDK seSparse grain table index %" PRIu64
                   " out of range (the area holds %" PRIu64 ")", idx,
                   e->se_gts);
        return -1;
    }
    /* se_gts_off < 2^61 and idx < 2^32: no overflow */
    *off = e->se_gts_off + idx * VMDK_SE_GT_BYTES;
    if (!vmdk_se_in_file(e, *off, VMDK_SE_GT_BYTES)) {
        error_setg(errp, "VMDK seSparse grain table %" PRIu64 " at 0x%"
                   PRIx64 " beyond end of file", idx, *off);
        return -1;
    }
    return 0;
}

/* Under e->lock: GT i, loaded when needed. */
static const uint64_t *vmdk_se_get_gt(struct vmdk_extent *e, uint32_t i,
                                      vf_error **errp)
{
    if (e->se_gt[i])
        return e->se_gt[i];
    uint64_t off;
    if (vmdk_se_gt_offset(e, i, &off, errp) < 0)
        return NULL;
    if (!off) {
        e->se_gt[i] = (uint64_t *)vmdk_se_empty_gt;
        return e->se_gt[i];
    }
    uint64_t *gt = vmdk_se_read_u64s(e, off, VMDK_SE_GTES, errp);
    if (!gt)
        return NULL;
    if (e->gt_bytes + VMDK_SE_GT_BYTES > VMDK_GT_CACHE_MAX) {
        /* callers copy entries under e->lock: nobody holds a GT */
        for (uint32_t k = 0; k < e->gd_entries; k++) {
            if (e->se_gt[k] != vmdk_se_empty_gt)
                free(e->se_gt[k]);
            e->se_gt[k] = NULL;
        }
        e->gt_bytes = 0;
    }
    e->gt_bytes += VMDK_SE_GT_BYTES;
    e->se_gt[i] = gt;
    return gt;
}

/* Decode GT entry v of grain g: a blk_status, *host the grain's byte
 * offset for BLK_DATA.  -1 on a bad entry. */
static int vmdk_se_decode(const struct vmdk_extent *e, uint64_t g,
                          uint64_t v, uint64_t *host, vf_error **errp)
{
    *host = UINT64_MAX;
    switch (v >> 60) {
    case 0:
        if (v) {
            error_setg(errp, "VMDK seSparse grain table entry 0x%016" PRIx64
                       " of grain %" PRIu64 " invalid", v, g);
            return -1;
        }
        return BLK_UNALLOC;
    case 1:                     /* unmapped (SCSI UNMAP) */
    case 2:                     /* zeroed */
        return BLK_ZERO;
    case 3: {
        uint64_t idx = ((v >> 48) & 0xfff) |
                       ((v & UINT64_C(0xffffffffffff)) << 12);
        uint64_t base = e->se_grains_off;
        /* the whole grain lies in the file: bounds idx before the
         * multiplication can overflow */
        if (base > e->file_size ||
            idx >= (e->file_size - base) / e->grain) {
            error_setg(errp, "VMDK seSparse grain %" PRIu64 " (index 0x%"
                       PRIx64 ") beyond end of file", g, idx);
            return -1;
        }
        *host = base + idx * e->grain;
        return BLK_DATA;
    }
    default:
        error_setg(errp, "VMDK seSparse grain table entry 0x%016" PRIx64
                   " of grain %" PRIu64 " has unknown type %" PRIu64, v, g,
                   v >> 60);
        return -1;
    }
}

/* Status of grain g (extent-relative index, below the capacity). */
static int vmdk_se_lookup(struct vmdk_extent *e, uint64_t g, uint64_t *host,
                          vf_error **errp)
{
    uint64_t i = g / e->gtes;
    *host = UINT64_MAX;
    if (i >= e->gd_entries)
        return BLK_UNALLOC;
    pthread_mutex_lock(&e->lock);
    const uint64_t *gt = vmdk_se_get_gt(e, (uint32_t)i, errp);
    uint64_t v = gt ? gt[g % e->gtes] : 0;
    pthread_mutex_unlock(&e->lock);
    if (!gt)
        return -1;
    return vmdk_se_decode(e, g, v, host, errp);
}

/* Status of the grain holding rel (past the capacity: unallocated). */
static int vmdk_se_status_at(struct vmdk_extent *e, uint64_t rel,
                             uint64_t *host, vf_error **errp)
{
    *host = UINT64_MAX;
    if (rel >= e->capacity)
        return BLK_UNALLOC;
    return vmdk_se_lookup(e, rel / e->grain, host, errp);
}

int vmdk_se_read(struct blk *b, struct vmdk_extent *e, uint8_t *buf,
                 uint64_t rel, uint64_t n, vf_error **errp)
{
    while (n) {
        uint64_t in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint64_t host;
        int st = vmdk_se_status_at(e, rel, &host, errp);
        if (st < 0)
            return -1;
        /* one I/O for grains that follow with the same status (and, for
         * data, next to each other on disk) */
        uint64_t next = host + e->grain;
        while (l < n) {
            uint64_t h2;
            int s2 = vmdk_se_status_at(e, rel + l, &h2, errp);
            if (s2 < 0)
                return -1;
            if (s2 != st || (st == BLK_DATA && h2 != next))
                break;
            l += n - l < e->grain ? n - l : e->grain;
            next += e->grain;
        }
        int r = 0;
        if (st == BLK_UNALLOC)
            r = blk_read_backing(b, buf, e->start + rel, (size_t)l, errp);
        else if (st == BLK_ZERO)
            memset(buf, 0, (size_t)l);
        else
            r = io_pread(e->io, buf, (size_t)l, host + in_g, errp);
        if (r < 0)
            return -1;
        buf += l;
        rel += l;
        n -= l;
    }
    return 0;
}

int vmdk_se_block_status(struct vmdk_extent *e, uint64_t rel, uint64_t n,
                         uint64_t *pnum, vf_error **errp)
{
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    if (rel >= e->capacity) {
        *pnum = n;
        return BLK_UNALLOC;
    }
    /* GTs the GD does not map: skip them whole, so a huge empty delta
     * costs one step per GT */
    uint64_t i = rel / per_gt;
    if (i < e->gd_entries && !e->se_gd[i]) {
        uint64_t l = per_gt - rel % per_gt;
        for (int k = 0; l < n && k < 65536; k++) {
            uint64_t j = (rel + l) / per_gt;
            if (j >= e->gd_entries || rel + l >= e->capacity) {
                l = n;
                break;
            }
            if (e->se_gd[j])
                break;
            l += per_gt;
        }
        *pnum = l < n ? l : n;
        return BLK_UNALLOC;
    }
    uint64_t host;
    int st = vmdk_se_status_at(e, rel, &host, errp);
    if (st < 0)
        return -1;
    uint64_t l = e->grain - rel % e->grain;
    /* bounded so one call stays cheap */
    for (int k = 0; l < n && k < 65536; k++) {
        int s2 = vmdk_se_status_at(e, rel + l, &host, errp);
        if (s2 < 0)
            return -1;
        if (s2 != st)
            break;
        l += e->grain;
    }
    *pnum = l < n ? l : n;
    return st;
}

struct vmdk_se_ref {
    uint64_t idx;         /* GT index */
    uint32_t gde;         /* GD entry naming it */
};

static int vmdk_se_ref_cmp(const void *a, const void *b)
{
    const struct vmdk_se_ref *x = a, *y = b;
    if (x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    return x->gde < y->gde ? -1 : x->gde > y->gde;
}

/* Report one finding; past 100 only count it. */
static void vmdk_se_report(struct check_report *r, unsigned *reported,
                           const char *name, vf_error *err)
{
    if ((*reported)++ < 100)
        check_add(r, CHECK_CORRUPTION, "%s: %s", name, error_msg(err));
    else
        r->corruptions++;
    error_free(err);
}

void vmdk_se_check(struct vmdk_extent *e, const char *name,
                   struct check_report *r)
{
    uint64_t grains = e->len / e->grain + (e->len % e->grain != 0);
    unsigned reported = 0;
    r->total_clusters += grains;
    /* Each distinct GT is walked once, so the work is bounded by what
     * the file holds, not by what a hostile GD claims; GD entries that
     * share a GT are a finding of their own. */
    struct vmdk_se_ref *v = malloc((e->gd_entries ? e->gd_entries : 1) *
                                   sizeof(*v));
    if (!v) {
        check_add(r, CHECK_ERROR, "%s: out of memory", name);
        return;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        uint64_t off;
        vf_error *err = NULL;
        if (vmdk_se_gt_offset(e, i, &off, &err) < 0)
            vmdk_se_report(r, &reported, name, err);
        else if (off)
            v[n++] = (struct vmdk_se_ref){ e->se_gd[i] & UINT32_MAX, i };
    }
    qsort(v, n, sizeof(*v), vmdk_se_ref_cmp);
    for (size_t k = 0; k < n; k++) {
        if (k && v[k].idx == v[k - 1].idx) {
            if (reported++ < 100)
                check_add(r, CHECK_CORRUPTION, "%s: grain directory entries "
                          "%" PRIu32 " and %" PRIu32 " share grain table %"
                          PRIu64, name, v[k - 1].gde, v[k].gde, v[k].idx);
            else
                r->corruptions++;
            continue;
        }
        uint64_t g0 = (uint64_t)v[k].gde * e->gtes;
        uint64_t g1 = g0 + e->gtes < grains ? g0 + e->gtes : grains;
        for (uint64_t g = g0; g < g1; g++) {
            uint64_t host;
            vf_error *err = NULL;
            int st = vmdk_se_lookup(e, g, &host, &err);
            if (st < 0) {
                bool gt_broken = !e->se_gt[v[k].gde];
                vmdk_se_report(r, &reported, name, err);
                if (gt_broken)
                    break;
                continue;
            }
            if (st != BLK_DATA)
                continue;
            r->allocated_clusters++;
            if (host + e->grain > r->image_end_offset)
                r->image_end_offset = host + e->grain;
        }
    }
    free(v);
}
