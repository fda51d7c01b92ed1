/*
 * vmdk-sparse.c: reading VMDK sparse extents.
 *
 * Hosted sparse ("KDMV", VMware "Virtual Disk Format 5.0", "Hosted Sparse
 * Extents" and "Stream-Optimized Compressed Sparse Extents"): a grain
 * directory (GD) of LE32 sector numbers of grain tables (GT), each GT a
 * run of LE32 sector numbers of grains; 0 = unallocated, 1 = zeroed grain
 * when the header says so.  A redundant GD (RGD) with its own GTs is the
 * fallback when the primary is damaged.  streamOptimized files put the
 * GD at the end (gdOffset = GD_AT_END) and repeat the header as a footer
 * 1024 bytes before end of file; when that footer is missing, the map is
 * rebuilt by walking the grain markers.  ESX "COWD" extents (libvmdk
 * documentation) use the same GD/GT scheme with 4096-entry GTs.
 */
#include "formats/vmdk.h"

#include <inttypes.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

/* GD entry 0: every grain of that GT is unallocated.  Never written. */
static uint32_t vmdk_empty_gt[VMDK_GTES_MAX];

static bool vmdk_is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* Load n LE32 entries at byte offset off into a new array. */
static uint32_t *vmdk_read_u32s(struct vmdk_extent *e, uint64_t off,
                                uint32_t n, vf_error **errp)
{
    size_t bytes = (size_t)n * 4;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint32_t *v = malloc(bytes ? bytes : 1);
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
    for (uint32_t i = 0; i < n; i++)
        v[i] = vmdk_le32(raw + 4 * (size_t)i);
    free(raw);
    return v;
}

static bool vmdk_range_in_file(const struct vmdk_extent *e, uint64_t off,
                               uint64_t len)
{
    return off <= e->file_size && len <= e->file_size - off;
}

/* Load a GD at off (bytes); NULL with *bad set if it lies past EOF. */
static uint32_t *vmdk_load_gd(struct vmdk_extent *e, uint64_t off,
                              const char *what, vf_error **errp)
{
    if (!off || !vmdk_range_in_file(e, off, (uint64_t)e->gd_entries * 4)) {
        error_setg(errp, "VMDK %s offset 0x%" PRIx64 " beyond end of file",
                   what, off);
        return NULL;
    }
    return vmdk_read_u32s(e, off, e->gd_entries, errp);
}

/* Walk a stream's grain markers to rebuild the map (no usable GD). */
static int vmdk_stream_scan(struct vmdk_extent *e, vf_error **errp)
{
    uint64_t pos = e->overhead;
    if (pos < VMDK_SECTOR)
        pos = e->desc_off + e->desc_size;
    if (pos < VMDK_SECTOR)
        pos = VMDK_SECTOR;
    uint64_t gsec = e->grain / VMDK_SECTOR;
    uint8_t m[VMDK_SECTOR];
    /* each step consumes at least one sector: bounded by the file */
    while (pos <= e->file_size && e->file_size - pos >= 16) {
        if (io_pread(e->io, m, sizeof(m), pos, errp) < 0)
            return -1;
        uint64_t val = vmdk_le64(m);
        uint32_t size = vmdk_le32(m + 8);
        if (size) {
            if (size > 2 * e->grain) {
                error_setg(errp, "VMDK compressed grain of 0x%" PRIx32
                           " bytes at 0x%" PRIx64 " larger than twice the "
                           "grain", size, pos);
                return -1;
            }
            if (val % gsec || val >= e->capacity / VMDK_SECTOR) {
                error_setg(errp, "VMDK grain marker at 0x%" PRIx64
                           " for sector 0x%" PRIx64 " outside the disk",
                           pos, val);
                return -1;
            }
            if (pos / VMDK_SECTOR > UINT32_MAX) {
                error_setg(errp, "VMDK grain at 0x%" PRIx64 " beyond the "
                           "2 TiB a grain table can address", pos);
                return -1;
            }
            uint64_t g = val / gsec;
            uint64_t i = g / e->gtes;
            if (i >= e->gd_entries)
                break;
            if (!e->gt[i]) {
                /* the rebuilt map stays in memory: bound it (a real
                 * 2 TiB stream needs 128 MiB of GTs) */
                if (e->gt_bytes > 4 * (uint64_t)VMDK_GT_CACHE_MAX) {
                    error_setg(errp, "VMDK stream map too large to rebuild "
                               "from its grain markers");
                    return -1;
                }
                e->gt_bytes += (uint64_t)e->gtes * 4;
                e->gt[i] = calloc(e->gtes, sizeof(uint32_t));
                if (!e->gt[i]) {
                    error_setg(errp, "out of memory");
                    return -1;
                }
            }
            e->gt[i][g % e->gtes] = (uint32_t)(pos / VMDK_SECTOR);
            uint64_t step = ((uint64_t)size + VMDK_GRAIN_MARKER_HDR +
                             VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
            pos += step;
            continue;
        }
        uint32_t type = vmdk_le32(m + 12);
        if (type == VMDK_MARKER_EOS)
            break;
        if (type != VMDK_MARKER_GT && type != VMDK_MARKER_GD &&
            type != VMDK_MARKER_FOOTER) {
            error_setg(errp, "VMDK stream marker of unknown type %" PRIu32
                       " at 0x%" PRIx64, type, pos);
            return -1;
        }
        if (val > (e->file_size - pos) / VMDK_SECTOR) {
            error_setg(errp, "VMDK stream marker at 0x%" PRIx64 " claims "
                       "0x%" PRIx64 " sectors past the end of file", pos,
                       val);
            return -1;
        }
        pos += VMDK_SECTOR + val * VMDK_SECTOR;
    }
    e->stream_scanned = true;
    return 0;
}

/* Parse a KDMV header (at hdr) into e's geometry fields. */
static int vmdk4_parse_header(struct vmdk_extent *e, const uint8_t *hdr,
                              vf_error **errp)
{
    e->version = vmdk_le32(hdr + VMDK4_VERSION);
    e->flags = vmdk_le32(hdr + VMDK4_FLAGS);
    if (e->version < 1 || e->version > 3) {
        error_setg(errp, "VMDK sparse extent version %" PRIu32
                   " unsupported", e->version);
        return -1;
    }
    uint64_t cap = vmdk_le64(hdr + VMDK4_CAPACITY);
    uint64_t gs = vmdk_le64(hdr + VMDK4_GRAIN);
    if (!vmdk_is_pow2(gs) || gs > VMDK_GRAIN_MAX / VMDK_SECTOR) {
        error_setg(errp, "VMDK grain size 0x%" PRIx64 " sectors invalid",
                   gs);
        return -1;
    }
    if (cap > (UINT64_C(1) << 52)) {
        error_setg(errp, "VMDK capacity 0x%" PRIx64 " sectors too large",
                   cap);
        return -1;
    }
    e->capacity = cap * VMDK_SECTOR;
    e->grain = (uint32_t)(gs * VMDK_SECTOR);
    e->gtes = vmdk_le32(hdr + VMDK4_NUM_GTES);
    if (e->gtes < 1 || e->gtes > VMDK_GTES_MAX) {
        error_setg(errp, "VMDK grain table of %" PRIu32 " entries invalid",
                   e->gtes);
        return -1;
    }
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    uint64_t n = e->capacity / per_gt + (e->capacity % per_gt != 0);
    if (n > VMDK_GD_MAX) {
        error_setg(errp, "VMDK grain directory of 0x%" PRIx64 " entries "
                   "too large", n);
        return -1;
    }
    e->gd_entries = (uint32_t)n;
    uint64_t gd = vmdk_le64(hdr + VMDK4_GD_OFF);
    uint64_t rgd = vmdk_le64(hdr + VMDK4_RGD_OFF);
    e->gd_off = gd == VMDK4_GD_AT_END ? gd
                : gd > (UINT64_MAX >> 10) ? UINT64_MAX - 1 : gd * VMDK_SECTOR;
    e->rgd_off = (e->flags & VMDK4_FL_RGD) && rgd <= (UINT64_MAX >> 10)
                 ? rgd * VMDK_SECTOR : 0;
    uint64_t ds = vmdk_le64(hdr + VMDK4_DESC_SIZE);
    uint64_t doff = vmdk_le64(hdr + VMDK4_DESC_OFF);
    e->desc_off = doff <= (UINT64_MAX >> 10) ? doff * VMDK_SECTOR : 0;
    e->desc_size = ds <= (UINT64_MAX >> 10) ? ds * VMDK_SECTOR : UINT64_MAX;
    uint64_t oh = vmdk_le64(hdr + VMDK4_OVERHEAD);
    e->overhead = oh <= (UINT64_MAX >> 10) ? oh * VMDK_SECTOR : 0;
    e->compressed = e->flags & VMDK4_FL_COMPRESSED;
    e->markers = e->flags & VMDK4_FL_MARKERS;
    e->zeroed_gte = e->flags & VMDK4_FL_ZEROED_GTE;
    if (e->compressed && vmdk_le16(hdr + VMDK4_COMPRESS_ALG) != 1) {
        error_setg(errp, "VMDK compression algorithm %u unsupported",
                   vmdk_le16(hdr + VMDK4_COMPRESS_ALG));
        return -1;
    }
    return 0;
}

static int vmdk4_open(struct vmdk_extent *e, const uint8_t *hdr,
                      char **desc, vf_error **errp)
{
    if (vmdk4_parse_header(e, hdr, errp) < 0)
        return -1;
    if ((e->flags & VMDK4_FL_NL_DETECT) &&
        memcmp(hdr + VMDK4_NL_CHARS, "\n \r\n", 4)) {
        error_setg(errp, "VMDK header line-end check characters damaged "
                   "(transferred in text mode?)");
        return -1;
    }
    if (desc && e->desc_off && e->desc_size) {
        if (e->desc_size > VMDK_DESC_MAX) {
            error_setg(errp, "VMDK embedded descriptor of 0x%" PRIx64
                       " bytes too large", e->desc_size);
            return -1;
        }
        if (!vmdk_range_in_file(e, e->desc_off, e->desc_size)) {
            error_setg(errp, "VMDK embedded descriptor at 0x%" PRIx64
                       " beyond end of file", e->desc_off);
            return -1;
        }
        char *d = malloc(e->desc_size + 1);
        if (!d) {
            error_setg(errp, "out of memory");
            return -1;
        }
        if (io_pread(e->io, d, e->desc_size, e->desc_off, errp) < 0) {
            free(d);
            return -1;
        }
        d[e->desc_size] = '\0';
        *desc = d;
    }
    if (e->gd_off == VMDK4_GD_AT_END) {
        /* footer marker, footer, end-of-stream marker: the last 1536
         * bytes; the footer carries the real gdOffset */
        uint8_t f[3 * VMDK_SECTOR];
        bool ok = false;
        if (e->file_size >= 4 * VMDK_SECTOR) {
            if (io_pread(e->io, f, sizeof(f), e->file_size - sizeof(f),
                         errp) < 0)
                return -1;
            const uint8_t *fh = f + VMDK_SECTOR;
            ok = vmdk_le32(f + 8) == 0 &&
                 vmdk_le32(f + 12) == VMDK_MARKER_FOOTER &&
                 vmdk_le32(fh) == VMDK4_MAGIC &&
                 vmdk_le64(fh + VMDK4_GD_OFF) != VMDK4_GD_AT_END;
            if (ok) {
                struct vmdk_extent fe = *e;
                vf_error *ign = NULL;
                if (vmdk4_parse_header(&fe, fh, &ign) < 0 ||
                    fe.grain != e->grain || fe.gtes != e->gtes ||
                    fe.capacity != e->capacity) {
                    error_free(ign);
                    ok = false;
                } else {
                    e->gd_off = fe.gd_off;
                    e->rgd_off = fe.rgd_off;
                }
            }
        }
        if (!ok) {
            e->gt = calloc(e->gd_entries ? e->gd_entries : 1,
                           sizeof(*e->gt));
            if (!e->gt) {
                error_setg(errp, "out of memory");
                return -1;
            }
            return vmdk_stream_scan(e, errp);
        }
    }
    e->gt = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(*e->gt));
    if (!e->gt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    vf_error *gd_err = NULL;
    e->gd = vmdk_load_gd(e, e->gd_off, "grain directory", &gd_err);
    if (e->rgd_off) {
        vf_error *rerr = NULL;
        e->rgd = vmdk_load_gd(e, e->rgd_off, "redundant grain directory",
                              &rerr);
        error_free(rerr);
    }
    if (!e->gd) {
        if (!e->rgd) {
            if (e->markers && e->compressed) {
                error_free(gd_err);
                return vmdk_stream_scan(e, errp);
            }
            error_propagate(errp, gd_err);
            return -1;
        }
        e->used_rgd = true;
    }
    error_free(gd_err);
    return 0;
}

static int vmdk3_open(struct vmdk_extent *e, const uint8_t *hdr,
                      vf_error **errp)
{
    e->version = vmdk_le32(hdr + VMDK3_VERSION);
    e->flags = vmdk_le32(hdr + VMDK3_FLAGS);
    uint32_t gs = vmdk_le32(hdr + VMDK3_GRAIN);
    if (!vmdk_is_pow2(gs) || gs > VMDK_GRAIN_MAX / VMDK_SECTOR) {
        error_setg(errp, "VMDK COWD grain size 0x%" PRIx32 " sectors "
                   "invalid", gs);
        return -1;
    }
    e->grain = gs * VMDK_SECTOR;
    e->capacity = (uint64_t)vmdk_le32(hdr + VMDK3_CAPACITY) * VMDK_SECTOR;
    e->gtes = VMDK3_GTES;
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    uint64_t need = e->capacity / per_gt + (e->capacity % per_gt != 0);
    uint32_t n = vmdk_le32(hdr + VMDK3_GD_ENTRIES);
    if (n > VMDK_GD_MAX) {
        error_setg(errp, "VMDK grain directory of 0x%" PRIx32 " entries "
                   "too large", n);
        return -1;
    }
    /* grains past the GD read as unallocated */
    e->gd_entries = n < need ? n : (uint32_t)need;
    e->gd_off = (uint64_t)vmdk_le32(hdr + VMDK3_GD_OFF) * VMDK_SECTOR;
    e->gt = calloc(e->gd_entries ? e->gd_entries : 1, sizeof(*e->gt));
    if (!e->gt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    e->gd = vmdk_load_gd(e, e->gd_off, "grain directory", errp);
    return e->gd ? 0 : -1;
}

int vmdk_sparse_open(struct vmdk_extent *e, char **desc, vf_error **errp)
{
    uint8_t hdr[VMDK_SECTOR];
    if (e->file_size < VMDK_SECTOR) {
        error_setg(errp, "VMDK sparse extent of %" PRIu64 " bytes too "
                   "short", e->file_size);
        return -1;
    }
    if (io_pread(e->io, hdr, sizeof(hdr), 0, errp) < 0)
        return -1;
    pthread_mutex_init(&e->lock, NULL);
    e->lock_init = true;
    uint32_t magic = vmdk_le32(hdr);
    if (e->type == VMDK_EXT_SPARSE && magic == VMDK4_MAGIC)
        return vmdk4_open(e, hdr, desc, errp);
    if (magic == VMDK3_MAGIC) {
        e->type = VMDK_EXT_COWD;
        return vmdk3_open(e, hdr, errp);
    }
    if (magic == VMDK4_MAGIC) {
        e->type = VMDK_EXT_SPARSE;
        return vmdk4_open(e, hdr, desc, errp);
    }
    error_setg(errp, "VMDK sparse extent magic 0x%08" PRIx32 " invalid",
               magic);
    return -1;
}

void vmdk_extent_free(struct vmdk_extent *e)
{
    if (e->gt) {
        for (uint32_t i = 0; i < e->gd_entries; i++)
            if (e->gt[i] != vmdk_empty_gt)
                free(e->gt[i]);
        free(e->gt);
    }
    free(e->gd);
    free(e->rgd);
    vmdk_se_free(e);
    free(e->fname);
    if (e->own_io)
        io_close(e->io);
    if (e->lock_init)
        pthread_mutex_destroy(&e->lock);
    memset(e, 0, sizeof(*e));
}

int vmdk_sparse_load_gt(struct vmdk_extent *e, uint32_t i, bool redundant,
                        uint32_t **gt, vf_error **errp)
{
    const uint32_t *dir = redundant ? e->rgd : e->gd;
    *gt = NULL;
    if (!dir || i >= e->gd_entries || !dir[i])
        return 0;
    uint64_t off = (uint64_t)dir[i] * VMDK_SECTOR;
    if (!vmdk_range_in_file(e, off, (uint64_t)e->gtes * 4)) {
        error_setg(errp, "VMDK %sgrain table offset 0x%" PRIx64 " beyond "
                   "end of file", redundant ? "redundant " : "", off);
        return -1;
    }
    *gt = vmdk_read_u32s(e, off, e->gtes, errp);
    return *gt ? 0 : -1;
}

/* Under e->lock: GT i, loading it from the primary (or redundant) GD. */
static const uint32_t *vmdk_get_gt(struct vmdk_extent *e, uint32_t i,
                                   vf_error **errp)
{
    if (e->gt[i])
        return e->gt[i];
    if (e->writing || e->stream_scanned)
        return vmdk_empty_gt;
    uint32_t *gt = NULL;
    vf_error *err = NULL;
    int r = -1;
    if (!e->used_rgd)
        r = vmdk_sparse_load_gt(e, i, false, &gt, &err);
    if (r < 0 && e->rgd) {
        /* the primary is damaged: the redundant copy is there for this */
        vf_error *e2 = NULL;
        r = vmdk_sparse_load_gt(e, i, true, &gt, &e2);
        error_free(e2);
    }
    if (r < 0) {
        error_propagate(errp, err);
        return NULL;
    }
    error_free(err);
    if (gt) {
        uint64_t sz = (uint64_t)e->gtes * 4;
        if (e->gt_bytes + sz > VMDK_GT_CACHE_MAX) {
            /* callers copy entries under e->lock: nobody holds a GT */
            for (uint32_t k = 0; k < e->gd_entries; k++) {
                if (e->gt[k] != vmdk_empty_gt)
                    free(e->gt[k]);
                e->gt[k] = NULL;
            }
            e->gt_bytes = 0;
        }
        e->gt_bytes += sz;
    }
    e->gt[i] = gt ? gt : vmdk_empty_gt;
    return e->gt[i];
}

bool vmdk_sparse_gt_unmapped(struct vmdk_extent *e, uint64_t i)
{
    if (i >= e->gd_entries)
        return true;
    if (e->writing || e->stream_scanned) {
        pthread_mutex_lock(&e->lock);
        bool empty = !e->gt[i];
        pthread_mutex_unlock(&e->lock);
        return empty;
    }
    const uint32_t *dir = e->used_rgd ? e->rgd : e->gd;
    return !dir || !dir[i];
}

void vmdk_sparse_forget_gt(struct vmdk_extent *e, uint32_t i)
{
    pthread_mutex_lock(&e->lock);
    if (e->gt[i] && e->gt[i] != vmdk_empty_gt) {
        free(e->gt[i]);
        e->gt_bytes -= (uint64_t)e->gtes * 4;
    }
    e->gt[i] = NULL;
    pthread_mutex_unlock(&e->lock);
}

int vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t g, uint32_t *sector,
                       vf_error **errp)
{
    uint64_t i = g / e->gtes;
    *sector = 0;
    if (i >= e->gd_entries)
        return 0;
    pthread_mutex_lock(&e->lock);
    const uint32_t *gt = vmdk_get_gt(e, (uint32_t)i, errp);
    if (gt)
        *sector = gt[g % e->gtes];
    pthread_mutex_unlock(&e->lock);
    return gt ? 0 : -1;
}

int vmdk_read_grain_marker(struct vmdk_extent *e, uint64_t sec,
                           uint64_t *lba, uint32_t *size, vf_error **errp)
{
    uint8_t m[VMDK_GRAIN_MARKER_HDR];
    uint64_t off = sec * VMDK_SECTOR;
    if (!vmdk_range_in_file(e, off, sizeof(m))) {
        error_setg(errp, "VMDK grain at 0x%" PRIx64 " beyond end of file",
                   off);
        return -1;
    }
    if (io_pread(e->io, m, sizeof(m), off, errp) < 0)
        return -1;
    *lba = vmdk_le64(m);
    *size = vmdk_le32(m + 8);
    if (*size > 2 * e->grain) {
        error_setg(errp, "VMDK compressed grain of 0x%" PRIx32 " bytes at "
                   "0x%" PRIx64 " larger than twice the grain", *size, off);
        return -1;
    }
    if (!vmdk_range_in_file(e, off + sizeof(m), *size)) {
        error_setg(errp, "VMDK compressed grain at 0x%" PRIx64 " of 0x%"
                   PRIx32 " bytes past end of file", off, *size);
        return -1;
    }
    return 0;
}

/* Decompress the grain at host sector sec into out (e->grain bytes). */
static int vmdk_read_compressed(struct vmdk_extent *e, uint64_t sec,
                                uint8_t *out, vf_error **errp)
{
    uint64_t off = sec * VMDK_SECTOR;
    uint64_t len;
    if (e->markers) {
        uint64_t lba;
        uint32_t size;
        if (vmdk_read_grain_marker(e, sec, &lba, &size, errp) < 0)
            return -1;
        off += VMDK_GRAIN_MARKER_HDR;
        len = size;
    } else {
        if (off >= e->file_size) {
            error_setg(errp, "VMDK grain at 0x%" PRIx64 " beyond end of "
                       "file", off);
            return -1;
        }
        len = e->file_size - off;
        if (len > 2 * (uint64_t)e->grain)
            len = 2 * (uint64_t)e->grain;
    }
    uint8_t *in = malloc(len ? len : 1);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    int ret = -1;
    if (!in || !d) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (io_pread(e->io, in, len, off, errp) < 0)
        goto out;
    size_t in_used = 0, out_len = 0;
    enum libdeflate_result r = libdeflate_zlib_decompress_ex(
        d, in, len, out, e->grain, &in_used, &out_len);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
        error_setg(errp, "VMDK compressed grain at 0x%" PRIx64 " inflates "
                   "beyond the grain size", sec * VMDK_SECTOR);
        goto out;
    }
    if (r != LIBDEFLATE_SUCCESS) {
        error_setg(errp, "VMDK compressed grain at 0x%" PRIx64 " is "
                   "corrupt", sec * VMDK_SECTOR);
        goto out;
    }
    memset(out + out_len, 0, e->grain - out_len);
    ret = 0;
out:
    libdeflate_free_decompressor(d);
    free(in);
    return ret;
}

int vmdk_sparse_read_grain(struct blk *b, struct vmdk_extent *e,
                           uint64_t off, void *buf, size_t len,
                           vf_error **errp)
{
    uint32_t sec;
    if (vmdk_sparse_lookup(e, off / e->grain, &sec, errp) < 0)
        return -1;
    uint64_t in_grain = off % e->grain;
    if (sec == 0 || off >= e->capacity)
        return blk_read_backing(b, buf, e->start + off, len, errp);
    if (sec == 1 && e->zeroed_gte) {
        memset(buf, 0, len);
        return 0;
    }
    if (e->compressed) {
        uint8_t *g = malloc(e->grain);
        if (!g) {
            error_setg(errp, "out of memory");
            return -1;
        }
        int r = vmdk_read_compressed(e, sec, g, errp);
        if (!r)
            memcpy(buf, g + in_grain, len);
        free(g);
        return r;
    }
    uint64_t host = (uint64_t)sec * VMDK_SECTOR;
    if (host >= e->file_size) {
        error_setg(errp, "VMDK grain at 0x%" PRIx64 " beyond end of file",
                   host);
        return -1;
    }
    return io_pread(e->io, buf, len, host + in_grain, errp);
}
