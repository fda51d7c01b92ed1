/*
 * vmdk-write.c: writing VMDK images: monolithicSparse, monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs and streamOptimized.
 *
 * Spec: VMware "Virtual Disk Format 5.0".  Hosted sparse extents keep
 * every grain table in memory while grains are appended, then write the
 * GTs, the GD and the redundant copies once, in flush.  streamOptimized
 * output is the canonical layout ESXi and AWS expect: version 3 header
 * with gdOffset = GD_AT_END, a grain marker (LBA, size) before each zlib
 * grain, a GT marker and GT after each grain table's last grain, then GD
 * marker and GD, footer marker and footer (the header with the real
 * gdOffset) and the end-of-stream marker; the file is written strictly
 * front to back, so it can go into a pipe or a tar.  Images opened
 * read-write (convert -n) are changed in place: grains appended at the
 * end of the file, each new GT entry written to both grain tables right
 * after its grain.  Resizing is vmdk-resize.c.
 */
#include "formats/vmdk.h"

#include <inttypes.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define VMDK_W_GRAIN      65536u       /* 128 sectors, as VMware writes */
#define VMDK_W_GTES       512u
#define VMDK_W_DESC_SECT  20u          /* embedded descriptor room */
#define VMDK_W_2GB        (UINT64_C(1) << 31)  /* twoGb extent size */
/* GT entries are 32-bit sectors: a hosted sparse extent ends at 2 TiB */
#define VMDK_W_SPARSE_MAX (UINT64_C(1) << 41)
#define VMDK_W_SW_CAP     (1u << 20)   /* stream append buffer */
#define VMDK_W_STREAM_OVH 128u         /* sectors before the first grain */

static const uint8_t vmdk_zero_sector[VMDK_SECTOR];

static void vmdk_random(void *p, size_t n)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = getrandom(q, n, 0);
        if (r <= 0) {               /* no entropy source: still unique */
            for (size_t i = 0; i < n; i++)
                q[i] = (uint8_t)(random() >> 7);
            return;
        }
        q += r;
        n -= (size_t)r;
    }
}

/* ---- hosted sparse extents ---- */

int vmdk_wsparse_init(struct vmdk_extent *e, uint64_t len,
                             bool embedded_desc, bool zeroed,
                             vf_error **errp)
{
    e->type = VMDK_EXT_SPARSE;
    e->len = e->capacity = len;
    e->grain = VMDK_W_GRAIN;
    e->gtes = VMDK_W_GTES;
    e->gd_entries = (uint32_t)vmdk_div_up(len, (uint64_t)e->grain * e->gtes);
    e->version = zeroed ? 2 : 1;
    e->flags = VMDK4_FL_NL_DETECT | VMDK4_FL_RGD |
               (zeroed ? VMDK4_FL_ZEROED_GTE : 0);
    e->zeroed_gte = zeroed;
    uint64_t gt_sect = (uint64_t)e->gtes * 4 / VMDK_SECTOR;
    uint64_t gd_sect = vmdk_div_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR);
    uint64_t sec = 1;
    if (embedded_desc) {
        e->desc_off = VMDK_SECTOR;
        e->desc_size = VMDK_W_DESC_SECT * VMDK_SECTOR;
        sec += VMDK_W_DESC_SECT;
    }
    e->rgd_off = sec * VMDK_SECTOR;
    sec += gd_sect;
    e->rgt_sector = sec;
    sec += gt_sect * e->gd_entries;
    e->gd_off = sec * VMDK_SECTOR;
    sec += gd_sect;
    e->gt_sector = sec;
    sec += gt_sect * e->gd_entries;
    uint64_t gsec = e->grain / VMDK_SECTOR;
    e->overhead = vmdk_div_up(sec, gsec) * gsec * VMDK_SECTOR;
    e->next_sector = e->overhead / VMDK_SECTOR;
    size_t n = e->gd_entries ? e->gd_entries : 1;
    e->gd = calloc(n, sizeof(uint32_t));
    e->rgd = calloc(n, sizeof(uint32_t));
    e->gt = calloc(n, sizeof(*e->gt));
    if (!e->gd || !e->rgd || !e->gt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        e->gd[i] = (uint32_t)(e->gt_sector + i * gt_sect);
        e->rgd[i] = (uint32_t)(e->rgt_sector + i * gt_sect);
    }
    pthread_mutex_init(&e->lock, NULL);
    e->lock_init = true;
    e->writing = true;
    return 0;
}

/* A KDMV header for e; gd_sector is GD_AT_END for a stream's head. */
static void vmdk4_build_header(uint8_t *h, const struct vmdk_extent *e,
                               uint64_t gd_sector)
{
    memset(h, 0, VMDK_SECTOR);
    vmdk_put32(h, VMDK4_MAGIC);
    vmdk_put32(h + VMDK4_VERSION, e->version);
    vmdk_put32(h + VMDK4_FLAGS, e->flags);
    vmdk_put64(h + VMDK4_CAPACITY, e->capacity / VMDK_SECTOR);
    vmdk_put64(h + VMDK4_GRAIN, e->grain / VMDK_SECTOR);
    vmdk_put64(h + VMDK4_DESC_OFF, e->desc_off / VMDK_SECTOR);
    vmdk_put64(h + VMDK4_DESC_SIZE, e->desc_size / VMDK_SECTOR);
    vmdk_put32(h + VMDK4_NUM_GTES, e->gtes);
    vmdk_put64(h + VMDK4_RGD_OFF, e->rgd_off / VMDK_SECTOR);
    vmdk_put64(h + VMDK4_GD_OFF, gd_sector);
    vmdk_put64(h + VMDK4_OVERHEAD, e->overhead / VMDK_SECTOR);
    memcpy(h + VMDK4_NL_CHARS, "\n \r\n", 4);
    vmdk_put16(h + VMDK4_COMPRESS_ALG, e->compressed ? 1 : 0);
}

int vmdk_write_u32s(struct io *io, const uint32_t *v, uint32_t n,
                           uint64_t off, vf_error **errp)
{
    size_t bytes = (size_t)n * 4;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        vmdk_put32(raw + 4 * (size_t)i, v ? v[i] : 0);
    int r = io_pwrite(io, raw, bytes, off, errp);
    free(raw);
    return r;
}

int vmdk_wsparse_flush(struct vmdk_extent *e, const char *desc,
                              vf_error **errp)
{
    uint64_t gt_sect = (uint64_t)e->gtes * 4 / VMDK_SECTOR;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        if (!e->gt[i])
            continue;      /* the reserved area is zeros already */
        if (vmdk_write_u32s(e->io, e->gt[i], e->gtes,
                            (e->gt_sector + i * gt_sect) * VMDK_SECTOR,
                            errp) < 0 ||
            vmdk_write_u32s(e->io, e->gt[i], e->gtes,
                            (e->rgt_sector + i * gt_sect) * VMDK_SECTOR,
                            errp) < 0)
            return -1;
    }
    if (vmdk_write_u32s(e->io, e->gd, e->gd_entries, e->gd_off, errp) < 0 ||
        vmdk_write_u32s(e->io, e->rgd, e->gd_entries, e->rgd_off, errp) < 0)
        return -1;
    if (desc) {
        size_t dl = strlen(desc);
        if (dl > e->desc_size) {
            error_setg(errp, "VMDK descriptor of %zu bytes does not fit the "
                       "%" PRIu64 " reserved", dl, e->desc_size);
            return -1;
        }
        uint8_t *d = calloc(1, e->desc_size);
        if (!d) {
            error_setg(errp, "out of memory");
            return -1;
        }
        memcpy(d, desc, dl);
        int r = io_pwrite(e->io, d, e->desc_size, e->desc_off, errp);
        free(d);
        if (r < 0)
            return -1;
    }
    uint8_t h[VMDK_SECTOR];
    vmdk4_build_header(h, e, e->gd_off / VMDK_SECTOR);
    if (io_pwrite(e->io, h, sizeof(h), 0, errp) < 0)
        return -1;
    /* the last grain may be only partly written: make it whole */
    int64_t sz = io_size(e->io, errp);
    if (sz < 0)
        return -1;
    if ((uint64_t)sz < e->next_sector * VMDK_SECTOR &&
        io_truncate(e->io, e->next_sector * VMDK_SECTOR, errp) < 0)
        return -1;
    return 0;
}

/* Under the write lock: GT entry of grain g, the GT allocated. */
static uint32_t *vmdk_wsparse_entry(struct vmdk_extent *e, uint64_t g,
                                    vf_error **errp)
{
    uint64_t i = g / e->gtes;
    if (!e->gt[i]) {
        e->gt[i] = calloc(e->gtes, sizeof(uint32_t));
        if (!e->gt[i]) {
            error_setg(errp, "out of memory");
            return NULL;
        }
    }
    return &e->gt[i][g % e->gtes];
}

/* The host sector of a new grain at the end of the extent. */
static int vmdk_wsparse_alloc(struct vmdk_extent *e, uint32_t *sector,
                              vf_error **errp)
{
    uint64_t gsec = e->grain / VMDK_SECTOR;
    if (e->next_sector + gsec > UINT32_MAX) {
        error_setg(errp, "VMDK sparse extent full at sector 0x%" PRIx64,
                   e->next_sector);
        return -1;
    }
    *sector = (uint32_t)e->next_sector;
    e->next_sector += gsec;
    return 0;
}

/* Write [rel, rel+n) of a sparse extent being created.  Runs that land
 * next to each other on disk go out as one write. */
static int vmdk_wsparse_pwrite(struct blk *b, struct vmdk_extent *e,
                               const uint8_t *buf, uint64_t rel, uint64_t n,
                               vf_error **errp)
{
    uint64_t run_host = 0, run_len = 0;
    const uint8_t *run_buf = NULL;
    while (n) {
        uint64_t g = rel / e->grain, in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint32_t *ent = vmdk_wsparse_entry(e, g, errp);
        if (!ent)
            return -1;
        uint64_t host;
        if (*ent > 1) {
            host = (uint64_t)*ent * VMDK_SECTOR + in_g;
        } else {
            bool from_backing = *ent == 0 && b->backing && l < e->grain;
            uint32_t ne;
            if (vmdk_wsparse_alloc(e, &ne, errp) < 0)
                return -1;
            if (from_backing) {
                /* copy-on-write: the rest of the grain is the parent's */
                uint8_t *gb = malloc(e->grain);
                if (!gb) {
                    error_setg(errp, "out of memory");
                    return -1;
                }
                uint64_t gl = e->len - g * e->grain < e->grain
                              ? e->len - g * e->grain : e->grain;
                int r = blk_read_backing(b, gb, e->start + g * e->grain,
                                         (size_t)gl, errp);
                if (!r) {
                    memset(gb + gl, 0, e->grain - gl);
                    memcpy(gb + in_g, buf, (size_t)l);
                    r = io_pwrite(e->io, gb, e->grain,
                                  (uint64_t)ne * VMDK_SECTOR, errp);
                }
                free(gb);
                if (r < 0)
                    return -1;
                pthread_mutex_lock(&e->lock);
                *ent = ne;
                pthread_mutex_unlock(&e->lock);
                buf += l;
                rel += l;
                n -= l;
                continue;
            }
            pthread_mutex_lock(&e->lock);
            *ent = ne;
            pthread_mutex_unlock(&e->lock);
            host = (uint64_t)ne * VMDK_SECTOR + in_g;
        }
        if (run_len && run_host + run_len == host) {
            run_len += l;
        } else {
            if (run_len &&
                io_pwrite(e->io, run_buf, (size_t)run_len, run_host,
                          errp) < 0)
                return -1;
            run_host = host;
            run_buf = buf;
            run_len = l;
        }
        buf += l;
        rel += l;
        n -= l;
    }
    if (run_len &&
        io_pwrite(e->io, run_buf, (size_t)run_len, run_host, errp) < 0)
        return -1;
    return 0;
}

static int vmdk_wsparse_zero(struct blk *b, struct vmdk_extent *e,
                             uint64_t rel, uint64_t n, vf_error **errp)
{
    static const uint8_t zeros[65536];
    while (n) {
        uint64_t g = rel / e->grain, in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint32_t *ent = vmdk_wsparse_entry(e, g, errp);
        if (!ent)
            return -1;
        if (*ent > 1 || (b->backing && *ent == 0 &&
                         (!e->zeroed_gte || l < e->grain))) {
            for (uint64_t k = 0; k < l;) {
                uint64_t c = l - k < sizeof(zeros) ? l - k : sizeof(zeros);
                if (vmdk_wsparse_pwrite(b, e, zeros, rel + k, c, errp) < 0)
                    return -1;
                k += c;
            }
        } else if (b->backing && *ent == 0) {
            pthread_mutex_lock(&e->lock);
            *ent = 1;        /* a zeroed grain hides the parent's */
            pthread_mutex_unlock(&e->lock);
        }
        rel += l;
        n -= l;
    }
    return 0;
}

/* ---- writing into an existing hosted sparse extent ---- */

/* Append len zero-or-data bytes at the end of e's file, sector-aligned;
 * *sector gets where. */
static int vmdk_rw_append(struct vmdk_extent *e, const void *data,
                          uint64_t len, uint32_t *sector, vf_error **errp)
{
    uint64_t at = vmdk_div_up(e->file_size, VMDK_SECTOR);
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

/* Set grain g's GT entry on disk in both GTs (new GTs as needed). */
static int vmdk_rw_set_entry(struct vmdk_extent *e, uint64_t g, uint32_t val,
                             vf_error **errp)
{
    uint32_t i = (uint32_t)(g / e->gtes), k = (uint32_t)(g % e->gtes);
    uint32_t *dirs[2] = { e->gd, e->rgd };
    uint64_t offs[2] = { e->gd_off, e->rgd_off };
    uint8_t le[4];
    for (int d = 0; d < 2; d++) {
        if (!dirs[d])
            continue;
        if (!dirs[d][i]) {
            uint32_t at;
            if (vmdk_rw_append(e, NULL, (uint64_t)e->gtes * 4, &at,
                               errp) < 0)
                return -1;
            vmdk_put32(le, at);
            if (io_pwrite(e->io, le, 4, offs[d] + 4 * (uint64_t)i,
                          errp) < 0)
                return -1;
            dirs[d][i] = at;
        }
        vmdk_put32(le, val);
        if (io_pwrite(e->io, le, 4, (uint64_t)dirs[d][i] * VMDK_SECTOR +
                      4 * (uint64_t)k, errp) < 0)
            return -1;
    }
    vmdk_sparse_forget_gt(e, i);
    return 0;
}

/* Can grains be written into existing extent e in place? */
static int vmdk_rw_writable(const struct vmdk_extent *e, vf_error **errp)
{
    if (e->type == VMDK_EXT_SESPARSE) {
        error_setg(errp, "seSparse VMDK extents are read-only");
        return -1;
    }
    if (e->type != VMDK_EXT_SPARSE || e->compressed || e->used_rgd ||
        !e->gd || e->stream_scanned) {
        error_setg(errp, "writing into this VMDK kind (compressed, COWD "
                   "or damaged) is not supported");
        return -1;
    }
    return 0;
}

static int vmdk_rw_pwrite(struct blk *b, struct vmdk_extent *e,
                          const uint8_t *buf, uint64_t rel, uint64_t n,
                          vf_error **errp)
{
    if (vmdk_rw_writable(e, errp) < 0)
        return -1;
    while (n) {
        uint64_t g = rel / e->grain, in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint32_t sec;
        if (rel >= e->capacity) {
            error_setg(errp, "VMDK write at 0x%" PRIx64 " past the extent's "
                       "capacity", rel);
            return -1;
        }
        if (vmdk_sparse_lookup(e, g, &sec, errp) < 0)
            return -1;
        if (sec > 1 || (sec == 1 && !e->zeroed_gte)) {
            if (io_pwrite(e->io, buf, (size_t)l,
                          (uint64_t)sec * VMDK_SECTOR + in_g, errp) < 0)
                return -1;
        } else {
            /* a new grain: the rest of it is the parent's, or zeros */
            uint8_t *gb = calloc(1, e->grain);
            if (!gb) {
                error_setg(errp, "out of memory");
                return -1;
            }
            int r = 0;
            uint64_t gl = e->len - g * e->grain < e->grain
                          ? e->len - g * e->grain : e->grain;
            if (l < e->grain && sec == 0)
                r = blk_read_backing(b, gb, e->start + g * e->grain,
                                     (size_t)gl, errp);
            memcpy(gb + in_g, buf, (size_t)l);
            uint32_t at = 0;
            if (!r)
                r = vmdk_rw_append(e, gb, e->grain, &at, errp);
            free(gb);
            if (r < 0 || vmdk_rw_set_entry(e, g, at, errp) < 0)
                return -1;
        }
        buf += l;
        rel += l;
        n -= l;
    }
    return 0;
}

static int vmdk_rw_zero(struct blk *b, struct vmdk_extent *e, uint64_t rel,
                        uint64_t n, vf_error **errp)
{
    static const uint8_t zeros[65536];
    if (e->type == VMDK_EXT_SESPARSE)     /* its lookups are not ours */
        return vmdk_rw_writable(e, errp);
    while (n) {
        uint64_t g = rel / e->grain, in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint32_t sec;
        if (vmdk_sparse_lookup(e, g, &sec, errp) < 0)
            return -1;
        bool reads_zero = (sec == 1 && e->zeroed_gte) ||
                          (sec == 0 && !b->backing);
        if (!reads_zero) {
            if (l == e->grain && e->zeroed_gte) {
                if (vmdk_rw_set_entry(e, g, 1, errp) < 0)
                    return -1;
            } else {
                for (uint64_t k = 0; k < l;) {
                    uint64_t c = l - k < sizeof(zeros) ? l - k
                                                       : sizeof(zeros);
                    if (vmdk_rw_pwrite(b, e, zeros, rel + k, c, errp) < 0)
                        return -1;
                    k += c;
                }
            }
        }
        rel += l;
        n -= l;
    }
    return 0;
}

/* ---- the stream writer ---- */

static int vmdk_sw_flush_buf(struct vmdk_state *s, struct io *io,
                             vf_error **errp)
{
    if (!s->sw_len)
        return 0;
    if (io_pwrite(io, s->sw_buf, s->sw_len, s->sw_off, errp) < 0)
        return -1;
    s->sw_off += s->sw_len;
    s->sw_len = 0;
    return 0;
}

static int vmdk_sw_append(struct vmdk_state *s, struct io *io,
                          const void *p, size_t n, vf_error **errp)
{
    const uint8_t *q = p;
    while (n) {
        if (s->sw_len == s->sw_cap &&
            vmdk_sw_flush_buf(s, io, errp) < 0)
            return -1;
        size_t c = s->sw_cap - s->sw_len < n ? s->sw_cap - s->sw_len : n;
        if (q)
            memcpy(s->sw_buf + s->sw_len, q, c);
        else
            memset(s->sw_buf + s->sw_len, 0, c);
        s->sw_len += c;
        if (q)
            q += c;
        n -= c;
    }
    return 0;
}

static uint64_t vmdk_sw_pos(const struct vmdk_state *s)
{
    return s->sw_off + s->sw_len;
}

/* Pad the stream to a sector boundary. */
static int vmdk_sw_pad(struct vmdk_state *s, struct io *io, vf_error **errp)
{
    uint64_t r = vmdk_sw_pos(s) % VMDK_SECTOR;
    return r ? vmdk_sw_append(s, io, NULL, VMDK_SECTOR - r, errp) : 0;
}

static int vmdk_sw_marker(struct vmdk_state *s, struct io *io, uint64_t val,
                          uint32_t type, vf_error **errp)
{
    uint8_t m[VMDK_SECTOR] = { 0 };
    vmdk_put64(m, val);
    vmdk_put32(m + 12, type);
    return vmdk_sw_append(s, io, m, sizeof(m), errp);
}

/* Emit the GT being filled, if it maps anything. */
static int vmdk_sw_end_gt(struct vmdk_state *s, struct vmdk_extent *e,
                          struct io *io, vf_error **errp)
{
    if (s->sw_gt_index < 0)
        return 0;
    bool any = false;
    for (uint32_t k = 0; k < e->gtes && !any; k++)
        any = s->sw_gt[k] != 0;
    if (any) {
        uint32_t gt_sect = e->gtes * 4 / VMDK_SECTOR;
        if (vmdk_sw_marker(s, io, gt_sect, VMDK_MARKER_GT, errp) < 0)
            return -1;
        s->sw_gd[s->sw_gt_index] = (uint32_t)(vmdk_sw_pos(s) / VMDK_SECTOR);
        uint8_t raw[VMDK_W_GTES * 4];
        for (uint32_t k = 0; k < e->gtes; k++)
            vmdk_put32(raw + 4 * k, s->sw_gt[k]);
        if (vmdk_sw_append(s, io, raw, e->gtes * 4, errp) < 0)
            return -1;
    }
    s->sw_gt_index = -1;
    return 0;
}

static int vmdk_sw_start(struct blk *b, struct vmdk_state *s,
                         vf_error **errp)
{
    struct vmdk_extent *e = &s->ext[0];
    e->type = VMDK_EXT_SPARSE;
    e->len = e->capacity = b->size;
    e->grain = VMDK_W_GRAIN;
    e->gtes = VMDK_W_GTES;
    e->gd_entries = (uint32_t)vmdk_div_up(b->size,
                                          (uint64_t)e->grain * e->gtes);
    e->version = 3;
    e->flags = VMDK4_FL_NL_DETECT | VMDK4_FL_COMPRESSED | VMDK4_FL_MARKERS;
    e->compressed = e->markers = true;
    e->desc_off = VMDK_SECTOR;
    e->desc_size = VMDK_W_DESC_SECT * VMDK_SECTOR;
    e->overhead = VMDK_W_STREAM_OVH * VMDK_SECTOR;
    s->sw_cap = VMDK_W_SW_CAP;
    s->sw_buf = malloc(s->sw_cap);
    s->sw_gt = calloc(e->gtes, sizeof(uint32_t));
    s->sw_gd = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(uint32_t));
    s->sw_gd_entries = e->gd_entries;
    s->sw_gt_index = -1;
    if (!s->sw_buf || !s->sw_gt || !s->sw_gd) {
        error_setg(errp, "out of memory");
        return -1;
    }
    s->stream = true;
    char *desc = vmdk_desc_build(b, s, errp);
    if (!desc)
        return -1;
    uint8_t h[VMDK_SECTOR];
    vmdk4_build_header(h, e, VMDK4_GD_AT_END);
    size_t dl = strlen(desc);
    int r = -1;
    if (dl > e->desc_size) {
        error_setg(errp, "VMDK descriptor of %zu bytes too large", dl);
        goto out;
    }
    if (vmdk_sw_append(s, b->file, h, sizeof(h), errp) < 0 ||
        vmdk_sw_append(s, b->file, desc, dl, errp) < 0 ||
        vmdk_sw_append(s, b->file, NULL, e->overhead - VMDK_SECTOR - dl,
                       errp) < 0)
        goto out;
    r = 0;
out:
    free(desc);
    return r;
}

static int vmdk_sw_finish(struct blk *b, struct vmdk_state *s,
                          vf_error **errp)
{
    struct vmdk_extent *e = &s->ext[0];
    if (s->sw_done)
        return 0;
    if (vmdk_sw_end_gt(s, e, b->file, errp) < 0)
        return -1;
    uint64_t gd_sect = vmdk_div_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR);
    if (vmdk_sw_marker(s, b->file, gd_sect, VMDK_MARKER_GD, errp) < 0)
        return -1;
    uint64_t gd_at = vmdk_sw_pos(s) / VMDK_SECTOR;
    for (uint32_t i = 0; i < e->gd_entries; i++) {
        uint8_t le[4];
        vmdk_put32(le, s->sw_gd[i]);
        if (vmdk_sw_append(s, b->file, le, 4, errp) < 0)
            return -1;
    }
    uint8_t h[VMDK_SECTOR];
    vmdk4_build_header(h, e, gd_at);
    if (vmdk_sw_pad(s, b->file, errp) < 0 ||
        vmdk_sw_marker(s, b->file, 1, VMDK_MARKER_FOOTER, errp) < 0 ||
        vmdk_sw_append(s, b->file, h, sizeof(h), errp) < 0 ||
        vmdk_sw_append(s, b->file, vmdk_zero_sector, VMDK_SECTOR,
                       errp) < 0 ||
        vmdk_sw_flush_buf(s, b->file, errp) < 0)
        return -1;
    s->sw_done = true;
    return 0;
}

void *vmdk_codec_new(struct blk *b, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(s->level);
    if (!c)
        error_setg(errp, "out of memory");
    return c;
}

void vmdk_codec_free(void *codec)
{
    if (codec)
        libdeflate_free_compressor(codec);
}

size_t vmdk_compress(struct blk *b, void *codec, const void *in, size_t len,
                     void *out, size_t cap)
{
    /* a short tail grain is padded and compressed by the writer */
    if (len != VMDK_W_GRAIN)
        return 0;
    /* every grain of a stream is compressed, even when it grows */
    return libdeflate_zlib_compress(codec, in, len, out, cap);
}

int vmdk_pwrite_compressed(struct blk *b, uint64_t off, const void *raw,
                           size_t len, const void *payload, size_t plen,
                           vf_error **errp)
{
    struct vmdk_state *s = b->state;
    if (!s->stream) {
        error_setg(errp, "VMDK compressed writes need "
                   "subformat=streamOptimized");
        return -1;
    }
    struct vmdk_extent *e = &s->ext[0];
    if (s->sw_done || off % e->grain || off < s->sw_next_lba ||
        len > e->grain) {
        error_setg(errp, "VMDK stream write at 0x%" PRIx64 " out of order",
                   off);
        return -1;
    }
    uint8_t *tmp = NULL;
    if (!plen || len < e->grain) {
        if (!s->sw_codec) {
            s->sw_codec = libdeflate_alloc_compressor(s->level);
            if (!s->sw_codec) {
                error_setg(errp, "out of memory");
                return -1;
            }
        }
        size_t cap = libdeflate_zlib_compress_bound(s->sw_codec, e->grain);
        tmp = malloc(e->grain + cap);
        if (!tmp) {
            error_setg(errp, "out of memory");
            return -1;
        }
        memcpy(tmp, raw, len);
        memset(tmp + len, 0, e->grain - len);
        plen = libdeflate_zlib_compress(s->sw_codec, tmp, e->grain,
                                        tmp + e->grain, cap);
        payload = tmp + e->grain;
    }
    int r = -1;
    uint64_t g = off / e->grain;
    int64_t gi = (int64_t)(g / e->gtes);
    if (gi != s->sw_gt_index) {
        if (vmdk_sw_end_gt(s, e, b->file, errp) < 0)
            goto out;
        memset(s->sw_gt, 0, e->gtes * sizeof(uint32_t));
        s->sw_gt_index = gi;
    }
    uint64_t sec = vmdk_sw_pos(s) / VMDK_SECTOR;
    if (sec > UINT32_MAX) {
        error_setg(errp, "VMDK stream larger than 2 TiB");
        goto out;
    }
    uint8_t m[VMDK_GRAIN_MARKER_HDR];
    vmdk_put64(m, off / VMDK_SECTOR);
    vmdk_put32(m + 8, (uint32_t)plen);
    if (vmdk_sw_append(s, b->file, m, sizeof(m), errp) < 0 ||
        vmdk_sw_append(s, b->file, payload, plen, errp) < 0 ||
        vmdk_sw_pad(s, b->file, errp) < 0)
        goto out;
    s->sw_gt[g % e->gtes] = (uint32_t)sec;
    s->sw_next_lba = off + e->grain;
    r = 0;
out:
    free(tmp);
    return r;
}

/* ---- creating ---- */

static int vmdk_parse_sub(const char *v, int *sub, vf_error **errp)
{
    static const struct { const char *n; int s; } t[] = {
        { "monolithicSparse", VMDK_SUB_MONO_SPARSE },
        { "monolithicFlat", VMDK_SUB_MONO_FLAT },
        { "twoGbMaxExtentSparse", VMDK_SUB_2GB_SPARSE },
        { "twoGbMaxExtentFlat", VMDK_SUB_2GB_FLAT },
        { "streamOptimized", VMDK_SUB_STREAM },
        { "vmfs", VMDK_SUB_VMFS },
    };
    *sub = VMDK_SUB_MONO_SPARSE;
    if (!v)
        return 0;
    if (!strcmp(v, "seSparse") || !strcmp(v, "vmfsSparse")) {
        error_setg(errp, "VMDK subformat %s is read-only (no writer)", v);
        return -1;
    }
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (!strcmp(v, t[i].n)) {
            *sub = t[i].s;
            return 0;
        }
    }
    error_setg(errp, "unknown VMDK subformat '%s'", v);
    return -1;
}

char *vmdk_sibling_name(const char *path, const char *suffix)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t l = strlen(base);
    if (l > 5 && !strcmp(base + l - 5, ".vmdk"))
        l -= 5;
    char *r = NULL;
    if (asprintf(&r, "%.*s%s", (int)l, base, suffix) < 0)
        return NULL;
    return r;
}

static int vmdk_add_extents(struct blk *b, struct vmdk_state *s,
                            bool zeroed, vf_error **errp)
{
    bool split = s->sub == VMDK_SUB_2GB_SPARSE || s->sub == VMDK_SUB_2GB_FLAT;
    bool sparse = s->sub == VMDK_SUB_2GB_SPARSE;
    uint64_t per = split ? VMDK_W_2GB : b->size;
    size_t n = split ? (size_t)vmdk_div_up(b->size, per) : 1;
    if (!n)
        n = 1;
    s->ext = calloc(n, sizeof(*s->ext));
    if (!s->ext) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct vmdk_extent *e = &s->ext[i];
        s->n_ext++;
        e->start = i * per;
        uint64_t len = b->size - e->start < per ? b->size - e->start : per;
        char sfx[32];
        if (split)
            snprintf(sfx, sizeof(sfx), "-%c%03zu.vmdk", sparse ? 's' : 'f',
                     i + 1);
        else
            snprintf(sfx, sizeof(sfx), "-flat.vmdk");
        e->fname = vmdk_sibling_name(b->filename, sfx);
        if (!e->fname) {
            error_setg(errp, "out of memory");
            return -1;
        }
        e->io = blk_create_sibling(b, e->fname, errp);
        if (!e->io)
            return -1;
        e->own_io = false;        /* the core owns and renames it */
        if (sparse) {
            if (vmdk_wsparse_init(e, len, false, zeroed, errp) < 0)
                return -1;
        } else {
            e->type = VMDK_EXT_FLAT;
            e->len = len;
            if (io_truncate(e->io, len, errp) < 0)
                return -1;
        }
    }
    return 0;
}

int vmdk_create(struct blk *b, const struct fmt_create_opts *o,
                vf_error **errp)
{
    struct vmdk_state *s = b->state;
    bool zeroed = false, compat6 = false;
    if (vmdk_parse_sub(opts_get(o->o, "subformat"), &s->sub, errp) < 0 ||
        opts_get_bool(o->o, "zeroed_grain", &zeroed, errp) < 0 ||
        opts_get_bool(o->o, "compat6", &compat6, errp) < 0)
        return -1;
    const char *adapter = opts_get(o->o, "adapter_type");
    const char *hw = opts_get(o->o, "hwversion");
    const char *tools = opts_get(o->o, "toolsversion");
    if (!tools)
        tools = opts_get(o->o, "toolsVersion");
    const char *lvl = opts_get(o->o, "compression_level");
    /* level 5: the ratio of zlib -6 (what qemu-img writes) in a fraction
     * of its time */
    s->level = 5;
    if (lvl) {
        char *end;
        long v = strtol(lvl, &end, 10);
        if (*end || v < 1 || v > 12) {
            error_setg(errp, "invalid compression_level '%s' (1..12)", lvl);
            return -1;
        }
        s->level = (int)v;
    }
    if (!adapter)
        adapter = "ide";
    if (strcmp(adapter, "ide") && strcmp(adapter, "lsilogic") &&
        strcmp(adapter, "buslogic") && strcmp(adapter, "legacyESX") &&
        strcmp(adapter, "pvscsi")) {
        error_setg(errp, "unknown VMDK adapter type '%s'", adapter);
        return -1;
    }
    if (hw && compat6) {
        error_setg(errp, "compat6 and hwversion are mutually exclusive");
        return -1;
    }
    if (hw && (!*hw || strspn(hw, "0123456789") != strlen(hw) ||
               strlen(hw) > 3)) {
        error_setg(errp, "invalid hwversion '%s'", hw);
        return -1;
    }
    if (o->compress && s->sub != VMDK_SUB_STREAM) {
        error_setg(errp, "VMDK compression needs subformat=streamOptimized");
        return -1;
    }
    b->size = vmdk_div_up(o->size, VMDK_SECTOR) * VMDK_SECTOR;
    bool sparse = s->sub == VMDK_SUB_MONO_SPARSE ||
                  s->sub == VMDK_SUB_STREAM;
    if (sparse && b->size > VMDK_W_SPARSE_MAX) {
        error_setg(errp, "VMDK sparse size 0x%" PRIx64 " beyond 2 TiB",
                   b->size);
        return -1;
    }
    if (o->backing_file) {
        if (s->sub != VMDK_SUB_MONO_SPARSE && s->sub != VMDK_SUB_2GB_SPARSE) {
            error_setg(errp, "a VMDK parent needs a sparse subformat");
            return -1;
        }
        if (!b->backing || b->backing->drv != &fmt_vmdk) {
            error_setg(errp, "the VMDK parent must be a VMDK image");
            return -1;
        }
        s->parent_hint = strdup(o->backing_file);
        if (!s->parent_hint) {
            error_setg(errp, "out of memory");
            return -1;
        }
        s->parent_cid = ((struct vmdk_state *)b->backing->state)->cid;
        s->have_parent_cid = true;
    }
    s->adapter = strdup(adapter);
    s->hwversion = strdup(hw ? hw : compat6 ? "6" : "4");
    s->tools_version = tools ? strdup(tools) : NULL;
    if (!s->adapter || !s->hwversion || (tools && !s->tools_version)) {
        error_setg(errp, "out of memory");
        return -1;
    }
    s->geo_heads = strcmp(adapter, "ide") ? 255 : 16;
    s->geo_cyl = vmdk_geo_cylinders(b->size, s->geo_heads, 63);
    do {
        vmdk_random(&s->cid, sizeof(s->cid));
    } while (s->cid == 0xffffffffu || s->cid == 0xfffffffeu);
    vmdk_random(s->uuid, sizeof(s->uuid));
    b->zero_init = !b->backing;
    if (s->sub == VMDK_SUB_STREAM) {
        s->ext = calloc(1, sizeof(*s->ext));
        if (!s->ext) {
            error_setg(errp, "out of memory");
            return -1;
        }
        s->n_ext = 1;
        s->ext[0].io = b->file;
        /* the embedded descriptor names the file itself, as qemu-img and
         * VMware write it */
        s->ext[0].fname = vmdk_sibling_name(b->filename, ".vmdk");
        if (!s->ext[0].fname) {
            error_setg(errp, "out of memory");
            return -1;
        }
        b->compressed = true;
        b->cluster_size = VMDK_W_GRAIN;
        return vmdk_sw_start(b, s, errp);
    }
    if (s->sub == VMDK_SUB_MONO_SPARSE) {
        s->ext = calloc(1, sizeof(*s->ext));
        if (!s->ext) {
            error_setg(errp, "out of memory");
            return -1;
        }
        s->n_ext = 1;
        s->ext[0].io = b->file;
        s->ext[0].fname = vmdk_sibling_name(b->filename, ".vmdk");
        if (!s->ext[0].fname) {
            error_setg(errp, "out of memory");
            return -1;
        }
        b->cluster_size = VMDK_W_GRAIN;
        return vmdk_wsparse_init(&s->ext[0], b->size, true, zeroed, errp);
    }
    if (s->sub == VMDK_SUB_2GB_SPARSE)
        b->cluster_size = VMDK_W_GRAIN;
    return vmdk_add_extents(b, s, zeroed, errp);
}

/* ---- guest writes ---- */

static struct vmdk_extent *vmdk_w_extent(struct vmdk_state *s, uint64_t off)
{
    size_t lo = 0, hi = s->n_ext;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ext[mid].start <= off)
            lo = mid;
        else
            hi = mid;
    }
    return &s->ext[lo];
}

/* Apply a write (buf) or a zeroing (buf NULL) across extents. */
static int vmdk_w_apply(struct blk *b, const uint8_t *buf, uint64_t off,
                        uint64_t len, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    if (s->stream) {
        if (buf) {
            /* whole grains in order: compress here */
            struct vmdk_extent *e = &s->ext[0];
            while (len) {
                uint64_t l = len < e->grain ? len : e->grain;
                if (l < e->grain && off + l != b->size) {
                    error_setg(errp, "VMDK stream write at 0x%" PRIx64
                               " is not whole grains", off);
                    return -1;
                }
                if (vmdk_pwrite_compressed(b, off, buf, (size_t)l, NULL, 0,
                                           errp) < 0)
                    return -1;
                off += l;
                buf += l;
                len -= l;
            }
            return 0;
        }
        if (off < s->sw_next_lba) {
            error_setg(errp, "VMDK stream zeroing at 0x%" PRIx64 " out of "
                       "order", off);
            return -1;
        }
        return 0;           /* unwritten grains read as zeros */
    }
    while (len) {
        struct vmdk_extent *e = vmdk_w_extent(s, off);
        uint64_t rel = off - e->start;
        uint64_t n = e->len - rel < len ? e->len - rel : len;
        int r;
        if (e->type == VMDK_EXT_ZERO) {
            error_setg(errp, "VMDK ZERO extent at 0x%" PRIx64 " cannot be "
                       "written", off);
            return -1;
        }
        if (!e->writing && e->type != VMDK_EXT_FLAT)
            r = buf ? vmdk_rw_pwrite(b, e, buf, rel, n, errp)
                    : vmdk_rw_zero(b, e, rel, n, errp);
        else if (e->type == VMDK_EXT_SPARSE)
            r = buf ? vmdk_wsparse_pwrite(b, e, buf, rel, n, errp)
                    : vmdk_wsparse_zero(b, e, rel, n, errp);
        else
            r = buf ? io_pwrite(e->io, buf, (size_t)n, e->flat_off + rel,
                                errp)
                    : io_punch(e->io, e->flat_off + rel, n, errp);
        if (r < 0)
            return -1;
        off += n;
        len -= n;
        if (buf)
            buf += n;
    }
    return 0;
}

int vmdk_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
                vf_error **errp)
{
    return vmdk_w_apply(b, buf, off, len, errp);
}

int vmdk_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp)
{
    return vmdk_w_apply(b, NULL, off, len, errp);
}

int vmdk_flush(struct blk *b, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    if (!b->created)
        return 0;
    if (s->stream)
        return vmdk_sw_finish(b, s, errp);
    char *desc = vmdk_desc_build(b, s, errp);
    if (!desc)
        return -1;
    int r = -1;
    if (s->sub == VMDK_SUB_MONO_SPARSE) {
        r = vmdk_wsparse_flush(&s->ext[0], desc, errp);
        goto out;
    }
    for (size_t i = 0; i < s->n_ext; i++)
        if (s->ext[i].writing &&
            vmdk_wsparse_flush(&s->ext[i], NULL, errp) < 0)
            goto out;
    size_t dl = strlen(desc);
    if (io_truncate(b->file, 0, errp) < 0 ||
        io_pwrite(b->file, desc, dl, 0, errp) < 0)
        goto out;
    r = 0;
out:
    free(desc);
    return r;
}

void vmdk_write_free(struct vmdk_state *s)
{
    free(s->sw_buf);
    free(s->sw_gt);
    free(s->sw_gd);
    if (s->sw_codec)
        libdeflate_free_compressor(s->sw_codec);
    s->sw_buf = NULL;
    s->sw_gt = s->sw_gd = NULL;
    s->sw_codec = NULL;
}

/* ---- measure ---- */

/* Bytes of metadata before the first grain of a new sparse extent of
 * len bytes (the layout of vmdk_wsparse_init). */
static uint64_t vmdk_sparse_meta(uint64_t len, bool embedded_desc)
{
    uint64_t gd = vmdk_div_up(len, (uint64_t)VMDK_W_GRAIN * VMDK_W_GTES);
    uint64_t sect = 1 + (embedded_desc ? VMDK_W_DESC_SECT : 0) +
                    2 * (vmdk_div_up(gd * 4, VMDK_SECTOR) +
                         gd * VMDK_W_GTES * 4 / VMDK_SECTOR);
    uint64_t gsec = VMDK_W_GRAIN / VMDK_SECTOR;
    return vmdk_div_up(sect, gsec) * gsec * VMDK_SECTOR;
}

int vmdk_measure(const struct fmt_create_opts *o, struct blk *src,
                 uint64_t *required, uint64_t *fully, vf_error **errp)
{
    int sub;
    if (vmdk_parse_sub(opts_get(o->o, "subformat"), &sub, errp) < 0)
        return -1;
    uint64_t size = vmdk_div_up(o->size, VMDK_SECTOR) * VMDK_SECTOR;
    if (sub == VMDK_SUB_MONO_FLAT || sub == VMDK_SUB_2GB_FLAT ||
        sub == VMDK_SUB_VMFS) {
        *required = *fully = size + 4096;   /* plus the descriptor */
        return 0;
    }
    uint64_t per = sub == VMDK_SUB_2GB_SPARSE ? VMDK_W_2GB : size;
    uint64_t meta = 0;
    for (uint64_t st = 0;; st += per) {
        uint64_t len = size - st < per ? size - st : per;
        meta += vmdk_sparse_meta(len, sub != VMDK_SUB_2GB_SPARSE);
        if (!per || per >= size - st)
            break;
    }
    uint64_t data;        /* whole grains holding data */
    if (blk_count_data_blocks(src, VMDK_W_GRAIN, UINT64_MAX, &data, errp) < 0)
        return -1;
    data *= VMDK_W_GRAIN;
    uint64_t full = vmdk_div_up(size, VMDK_W_GRAIN) * VMDK_W_GRAIN;
    if (sub == VMDK_SUB_STREAM) {
        /* grains may grow a little: marker, sector padding */
        uint64_t grains = data / VMDK_W_GRAIN, all = full / VMDK_W_GRAIN;
        *required = VMDK_W_STREAM_OVH * VMDK_SECTOR + data + grains * 1024 +
                    meta + 4 * VMDK_SECTOR;
        *fully = VMDK_W_STREAM_OVH * VMDK_SECTOR + full + all * 1024 +
                 meta + 4 * VMDK_SECTOR;
        return 0;
    }
    *required = meta + data;
    *fully = meta + full;
    if (sub == VMDK_SUB_2GB_SPARSE) {
        *required += 4096;
        *fully += 4096;
    }
    return 0;
}
