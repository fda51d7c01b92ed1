/*
 * vmdk-check.c: metadata consistency of VMDK sparse extents.
 *
 * Finds what qemu-img check and VMware's own checker look for (VMware
 * "Virtual Disk Format 5.0" for the structures): grain tables or grains
 * past the end of file, grains overlapping each other or the metadata,
 * compressed grains whose marker names another sector or whose length
 * is impossible, a redundant grain directory that disagrees with the
 * primary, and a parent whose CID is not the parentCID we expect.
 */
#include "formats/vmdk.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Allocated host ranges, in sectors, for the overlap test.  2^25 ranges
 * (256 MiB) cover a fully allocated 2 TiB extent; past that the overlap
 * test is skipped rather than exhaust memory. */
#define VMDK_CHECK_RANGES_MAX (1u << 25)

struct vmdk_range {
    uint64_t start, len;     /* sectors */
    uint64_t what;           /* guest grain, or UINT64_MAX for metadata */
};

struct vmdk_ranges {
    struct vmdk_range *v;
    size_t n, cap;
    bool overflow;
};

static void vmdk_ranges_add(struct vmdk_ranges *r, uint64_t start,
                            uint64_t len, uint64_t what)
{
    if (r->overflow)
        return;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 1024;
        struct vmdk_range *nv = NULL;
        if (nc <= VMDK_CHECK_RANGES_MAX)
            nv = realloc(r->v, nc * sizeof(*nv));
        if (!nv) {
            r->overflow = true;
            return;
        }
        r->v = nv;
        r->cap = nc;
    }
    r->v[r->n++] = (struct vmdk_range){ start, len, what };
}

/* Sectors needed for bytes. */
static uint64_t vmdk_div_up_check(uint64_t bytes)
{
    return bytes / VMDK_SECTOR + (bytes % VMDK_SECTOR != 0);
}

static int vmdk_range_cmp(const void *a, const void *b)
{
    const struct vmdk_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Compare the redundant GTs with the primary ones. */
static void vmdk_check_rgd(struct vmdk_extent *e, struct check_report *r,
                           struct vmdk_ranges *rg)
{
    uint64_t gt_sect = vmdk_div_up_check((uint64_t)e->gtes * 4);
    /* distinct GTs fit in the file twice over (both copies); a GD that
     * points many entries at one GT must not make this quadratic */
    uint64_t budget = 2 * e->file_size + 2 * (uint64_t)e->gtes * 4;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        uint32_t *p = NULL, *q = NULL;
        uint64_t cost = 2 * (uint64_t)e->gtes * 4;
        if (cost > budget) {
            check_add(r, CHECK_CORRUPTION, "%s: grain directories name more "
                      "grain tables than the file holds", e->fname ?
                      e->fname : "extent");
            break;
        }
        budget -= cost;
        vf_error *err = NULL;
        if (e->gd && vmdk_sparse_load_gt(e, i, false, &p, &err) < 0) {
            check_add(r, CHECK_CORRUPTION, "%s: %s", e->fname ? e->fname :
                      "extent", error_msg(err));
            error_free(err);
            err = NULL;
        }
        if (e->rgd && vmdk_sparse_load_gt(e, i, true, &q, &err) < 0) {
            check_add(r, CHECK_CORRUPTION, "%s: %s", e->fname ? e->fname :
                      "extent", error_msg(err));
            error_free(err);
            err = NULL;
        }
        if (e->gd && e->gd[i])
            vmdk_ranges_add(rg, e->gd[i], gt_sect, UINT64_MAX);
        if (e->rgd && e->rgd[i])
            vmdk_ranges_add(rg, e->rgd[i], gt_sect, UINT64_MAX);
        if (e->gd && e->rgd && p && q &&
            memcmp(p, q, (size_t)e->gtes * 4))
            check_add(r, CHECK_CORRUPTION, "redundant grain table %" PRIu32
                      " differs from the primary", i);
        else if (e->gd && e->rgd && (!p) != (!q))
            check_add(r, CHECK_CORRUPTION, "redundant grain directory entry "
                      "%" PRIu32 " differs from the primary", i);
        free(p);
        free(q);
    }
}

/* Check grain g's entry; -1 when its GT cannot be read. */
static int vmdk_check_grain(struct vmdk_extent *e, struct check_report *r,
                            struct vmdk_ranges *rg, const char *name,
                            uint64_t g)
{
    uint64_t gsec = e->grain / VMDK_SECTOR;
    uint32_t sec;
    vf_error *err = NULL;
    if (vmdk_sparse_lookup(e, g, &sec, &err) < 0) {
        check_add(r, CHECK_CORRUPTION, "%s: %s", name, error_msg(err));
        error_free(err);
        return -1;
    }
    if (sec == 0 || (sec == 1 && e->zeroed_gte))
        return 0;
    r->allocated_clusters++;
    uint64_t off = (uint64_t)sec * VMDK_SECTOR, nsec = gsec;
    if (e->compressed) {
        r->compressed_clusters++;
        if (e->markers) {
            uint64_t lba;
            uint32_t size;
            if (vmdk_read_grain_marker(e, sec, &lba, &size, &err) < 0) {
                check_add(r, CHECK_CORRUPTION, "%s: grain %" PRIu64 ": %s",
                          name, g, error_msg(err));
                error_free(err);
                return 0;
            }
            if (lba != g * gsec)
                check_add(r, CHECK_CORRUPTION, "%s: grain %" PRIu64
                          " marker at 0x%" PRIx64 " names sector 0x%"
                          PRIx64, name, g, off, lba);
            nsec = vmdk_div_up_check((uint64_t)size +
                                     VMDK_GRAIN_MARKER_HDR);
        } else {
            nsec = 1;
        }
    }
    if (off >= e->file_size ||
        (!e->compressed && e->grain > e->file_size - off)) {
        check_add(r, CHECK_CORRUPTION, "%s: grain %" PRIu64 " at 0x%"
                  PRIx64 " beyond end of file", name, g, off);
        return 0;
    }
    if (off + nsec * VMDK_SECTOR > r->image_end_offset)
        r->image_end_offset = off + nsec * VMDK_SECTOR;
    vmdk_ranges_add(rg, sec, nsec, g);
    return 0;
}

struct vmdk_gd_ref {
    uint32_t sector, index;
};

static int vmdk_gd_ref_cmp(const void *a, const void *b)
{
    const struct vmdk_gd_ref *x = a, *y = b;
    if (x->sector != y->sector)
        return x->sector < y->sector ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* GD entries whose GT another entry already uses (malloc'd flags, or
 * NULL when there is nothing to skip or no memory). */
static uint8_t *vmdk_check_shared_gts(struct vmdk_extent *e,
                                      struct check_report *r,
                                      const char *name)
{
    const uint32_t *dir = e->used_rgd ? e->rgd : e->gd;
    if (!dir || e->stream_scanned || e->writing || e->gd_entries < 2)
        return NULL;
    struct vmdk_gd_ref *v = malloc((size_t)e->gd_entries * sizeof(*v));
    uint8_t *skip = calloc(e->gd_entries, 1);
    if (!v || !skip) {
        free(v);
        free(skip);
        return NULL;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < e->gd_entries; i++)
        if (dir[i])
            v[n++] = (struct vmdk_gd_ref){ dir[i], i };
    qsort(v, n, sizeof(*v), vmdk_gd_ref_cmp);
    uint64_t gt_sect = vmdk_div_up_check((uint64_t)e->gtes * 4);
    unsigned reported = 0;
    for (size_t k = 1; k < n; k++) {
        if ((uint64_t)v[k].sector < (uint64_t)v[k - 1].sector + gt_sect) {
            skip[v[k].index] = 1;
            if (reported++ < 100)
                check_add(r, CHECK_CORRUPTION, "%s: grain tables %" PRIu32
                          " and %" PRIu32 " overlap at sector 0x%" PRIx32,
                          name, v[k - 1].index, v[k].index, v[k].sector);
            else
                r->corruptions++;
            v[k].sector = v[k - 1].sector;   /* keep the first's range */
        }
    }
    free(v);
    return skip;
}

static void vmdk_check_extent(struct blk *b, struct vmdk_extent *e,
                              struct check_report *r)
{
    const char *name = e->fname ? e->fname : b->filename;
    uint64_t grains = e->len / e->grain + (e->len % e->grain != 0);
    struct vmdk_ranges rg = { 0 };
    r->total_clusters += grains;
    if (e->used_rgd)
        check_add(r, CHECK_CORRUPTION, "%s: grain directory at 0x%" PRIx64
                  " unusable, using the redundant copy", name, e->gd_off);
    if (e->rgd_off && !e->stream_scanned)
        vmdk_check_rgd(e, r, &rg);
    if (e->gd && !e->stream_scanned)
        vmdk_ranges_add(&rg, e->gd_off / VMDK_SECTOR,
                        vmdk_div_up_check((uint64_t)e->gd_entries * 4),
                        UINT64_MAX);
    if (e->rgd)
        vmdk_ranges_add(&rg, e->rgd_off / VMDK_SECTOR,
                        vmdk_div_up_check((uint64_t)e->gd_entries * 4),
                        UINT64_MAX);
    /* Walk each distinct GT once: GD entries sharing a GT are reported,
     * and the work stays proportional to the file, not to what a hostile
     * GD claims. */
    uint8_t *skip = vmdk_check_shared_gts(e, r, name);
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if ((skip && skip[i]) || vmdk_sparse_gt_unmapped(e, i))
            continue;
        uint64_t g0 = (uint64_t)i * e->gtes;
        uint64_t g1 = g0 + e->gtes < grains ? g0 + e->gtes : grains;
        for (uint64_t g = g0; g < g1; g++)
            if (vmdk_check_grain(e, r, &rg, name, g) < 0)
                break;
    }
    free(skip);
    if (rg.overflow) {
        check_add(r, CHECK_INFO, "%s: too many grains to test for overlaps",
                  name);
    } else if (rg.n > 1) {
        qsort(rg.v, rg.n, sizeof(*rg.v), vmdk_range_cmp);
        unsigned reported = 0;
        uint64_t end = rg.v[0].start + rg.v[0].len;
        for (size_t i = 1; i < rg.n; i++) {
            if (rg.v[i].start < end && reported++ < 100) {
                if (rg.v[i].what == UINT64_MAX)
                    check_add(r, CHECK_CORRUPTION, "%s: metadata at sector "
                              "0x%" PRIx64 " overlaps a grain or table",
                              name, rg.v[i].start);
                else
                    check_add(r, CHECK_CORRUPTION, "%s: grain %" PRIu64
                              " at sector 0x%" PRIx64 " overlaps other "
                              "data", name, rg.v[i].what, rg.v[i].start);
            }
            if (rg.v[i].start + rg.v[i].len > end)
                end = rg.v[i].start + rg.v[i].len;
        }
    }
    free(rg.v);
}

int vmdk_check(struct blk *b, struct check_report *r, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    for (size_t i = 0; i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        if (e->type == VMDK_EXT_SPARSE || e->type == VMDK_EXT_COWD) {
            r->have_cluster_stats = true;
            vmdk_check_extent(b, e, r);
        } else if (e->type == VMDK_EXT_SESPARSE) {
            r->have_cluster_stats = true;
            vmdk_se_check(e, e->fname ? e->fname : b->filename, r);
        }
    }
    if (s->parent_hint && s->have_parent_cid) {
        /* check runs without the chain: open the parent alone */
        struct blk *p = b->backing;
        struct blk *own = NULL;
        if (!p) {
            vf_error *err = NULL;
            struct io *io = blk_open_sibling(b, s->parent_hint, &err);
            struct blk_open_opts oo = b->oopts;
            oo.format = "vmdk";
            oo.no_backing = true;
            if (io)
                own = p = blk_open_io(io, s->parent_hint, true, &oo, &err);
            if (!p)
                check_add(r, CHECK_INFO, "warning: parent %s: %s",
                          s->parent_hint, error_msg(err));
            error_free(err);
        }
        if (p && p->drv == &fmt_vmdk) {
            uint32_t pcid = ((struct vmdk_state *)p->state)->cid;
            if (pcid != s->parent_cid)
                check_add(r, CHECK_INFO, "warning: parentCID %08" PRIx32
                          " does not match the parent's CID %08" PRIx32
                          " (the parent changed after this link was made)",
                          s->parent_cid, pcid);
        }
        blk_close(own);
    }
    return 0;
}
