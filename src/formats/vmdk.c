/*
 * vmdk.c: the VMDK driver: probe, open (descriptor files and sparse
 * files with their embedded descriptor), guest reads and block status
 * across extents, info; the vtable is at the bottom.
 *
 * Spec: VMware "Virtual Disk Format 5.0" technote; libyal's libvmdk
 * documentation for COWD and real-world quirks.  Layout of the driver:
 * vmdk-desc.c (descriptor text), vmdk-sparse.c (KDMV/COWD extents),
 * vmdk-sesparse.c (ESXi seSparse extents, read-only), vmdk-write.c
 * (every writable subformat), vmdk-check.c (check).
 */
#include "formats/vmdk.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool vmdk_mem_has(const uint8_t *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s)) != NULL;
}

static int vmdk_probe(const struct probe_data *d)
{
    if (d->head_len >= 4) {
        uint32_t m = vmdk_le32(d->head);
        if (m == VMDK4_MAGIC || m == VMDK3_MAGIC)
            return 100;
    }
    /* a text descriptor says so near its start (claimed whatever its
     * size, so that open refuses an oversized one by name) */
    size_t n = d->head_len < 1024 ? d->head_len : 1024;
    if (vmdk_mem_has(d->head, n, "# Disk DescriptorFile"))
        return 100;
    if (d->file_size > VMDK_DESC_MAX)
        return 0;
    if (vmdk_mem_has(d->head, d->head_len, "createType=") &&
        (vmdk_mem_has(d->head, d->head_len, "\nRW ") ||
         vmdk_mem_has(d->head, d->head_len, "\nRDONLY ")))
        return 90;
    return 0;
}

static void vmdk_state_free(struct vmdk_state *s)
{
    for (size_t i = 0; i < s->n_ext; i++)
        vmdk_extent_free(&s->ext[i]);
    free(s->ext);
    s->ext = NULL;
    s->n_ext = 0;
    free(s->desc);
    free(s->create_type);
    free(s->parent_hint);
    free(s->adapter);
    free(s->hwversion);
    free(s->tools_version);
    vmdk_write_free(s);
}

static void vmdk_close(struct blk *b)
{
    vmdk_state_free(b->state);
}

static int vmdk_open(struct blk *b, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    int64_t fsz = io_size(b->file, errp);
    if (fsz < 0)
        return -1;
    uint8_t head[4] = { 0 };
    if (io_pread(b->file, head, sizeof(head), 0, errp) < 0)
        return -1;
    uint32_t magic = vmdk_le32(head);
    if (magic == VMDK4_MAGIC || magic == VMDK3_MAGIC) {
        s->ext = calloc(1, sizeof(*s->ext));
        if (!s->ext) {
            error_setg(errp, "out of memory");
            return -1;
        }
        s->n_ext = 1;
        struct vmdk_extent *e = &s->ext[0];
        e->type = VMDK_EXT_SPARSE;
        e->io = b->file;
        e->file_size = (uint64_t)fsz;
        if (vmdk_sparse_open(e, &s->desc, errp) < 0)
            return -1;
        e->len = e->capacity;
        if (s->desc && vmdk_desc_parse(b, s, true, errp) < 0)
            return -1;
    } else {
        /* 1 MiB holds any real descriptor; a bigger "descriptor" is not
         * one, and reading it whole would be a memory attack */
        if ((uint64_t)fsz > VMDK_DESC_MAX) {
            error_setg(errp, "VMDK descriptor of %" PRId64 " bytes too "
                       "large", fsz);
            return -1;
        }
        s->desc = malloc((size_t)fsz + 1);
        if (!s->desc) {
            error_setg(errp, "out of memory");
            return -1;
        }
        if (io_pread(b->file, s->desc, (size_t)fsz, 0, errp) < 0)
            return -1;
        s->desc[fsz] = '\0';
        /* qemu-img pads descriptor files with NUL bytes: the text ends
         * at the first one */
        s->desc_file = true;
        if (vmdk_desc_parse(b, s, false, errp) < 0)
            return -1;
    }
    uint64_t size = 0;
    for (size_t i = 0; i < s->n_ext; i++) {
        size += s->ext[i].len;
        if (!b->cluster_size && (s->ext[i].type == VMDK_EXT_SPARSE ||
                                 s->ext[i].type == VMDK_EXT_COWD ||
                                 s->ext[i].type == VMDK_EXT_SESPARSE))
            b->cluster_size = s->ext[i].grain;
    }
    b->size = size;
    if (s->parent_hint) {
        b->backing_name = strdup(s->parent_hint);
        b->backing_fmt = strdup("vmdk");
        if (!b->backing_name || !b->backing_fmt) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The extent holding guest offset off (off < b->size). */
static struct vmdk_extent *vmdk_find_extent(struct vmdk_state *s,
                                            uint64_t off)
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

static bool vmdk_is_sparse(const struct vmdk_extent *e)
{
    return e->type == VMDK_EXT_SPARSE || e->type == VMDK_EXT_COWD;
}

/* Read [rel, rel+n) of sparse extent e, coalescing contiguous grains. */
static int vmdk_read_sparse(struct blk *b, struct vmdk_extent *e,
                            uint8_t *buf, uint64_t rel, uint64_t n,
                            vf_error **errp)
{
    uint64_t gsec = e->grain / VMDK_SECTOR;
    while (n) {
        uint64_t in_g = rel % e->grain;
        uint64_t l = e->grain - in_g < n ? e->grain - in_g : n;
        uint32_t sec;
        if (vmdk_sparse_lookup(e, rel / e->grain, &sec, errp) < 0)
            return -1;
        bool plain = !e->compressed && (sec > 1 || (sec == 1 &&
                     !e->zeroed_gte)) && rel < e->capacity;
        if (!plain) {
            if (vmdk_sparse_read_grain(b, e, rel, buf, (size_t)l, errp) < 0)
                return -1;
        } else {
            uint64_t host = (uint64_t)sec * VMDK_SECTOR;
            if (host >= e->file_size) {
                error_setg(errp, "VMDK grain at 0x%" PRIx64 " beyond end "
                           "of file", host);
                return -1;
            }
            /* extend over grains that follow on disk */
            uint64_t next = sec + gsec;
            while (l < n && rel + l < e->capacity) {
                uint32_t s2;
                if (vmdk_sparse_lookup(e, (rel + l) / e->grain, &s2,
                                       errp) < 0)
                    return -1;
                if (s2 != next || next > UINT32_MAX)
                    break;
                uint64_t add = n - l < e->grain ? n - l : e->grain;
                l += add;
                next += gsec;
            }
            if (io_pread(e->io, buf, (size_t)l, host + in_g, errp) < 0)
                return -1;
        }
        buf += l;
        rel += l;
        n -= l;
    }
    return 0;
}

static int vmdk_pread_inner(struct blk *b, void *buf, uint64_t off,
                            size_t len, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    uint8_t *p = buf;
    while (len) {
        struct vmdk_extent *e = vmdk_find_extent(s, off);
        uint64_t rel = off - e->start;
        uint64_t n = e->len - rel < len ? e->len - rel : len;
        if (!n) {           /* an empty extent cannot hold off */
            error_setg(errp, "VMDK extent map has no extent at 0x%" PRIx64,
                       off);
            return -1;
        }
        int r = 0;
        switch (e->type) {
        case VMDK_EXT_ZERO:
            memset(p, 0, (size_t)n);
            break;
        case VMDK_EXT_FLAT:
            r = io_pread(e->io, p, (size_t)n, e->flat_off + rel, errp);
            break;
        case VMDK_EXT_SPARSE:
        case VMDK_EXT_COWD:
            r = vmdk_read_sparse(b, e, p, rel, n, errp);
            break;
        case VMDK_EXT_SESPARSE:
            r = vmdk_se_read(b, e, p, rel, n, errp);
            break;
        }
        if (r < 0)
            return -1;
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

static int vmdk_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                      vf_error **errp)
{
    /* the format core names the file in the error */
    return vmdk_pread_inner(b, buf, off, len, errp);
}

/* Status of one grain entry. */
static int vmdk_grain_status(const struct vmdk_extent *e, uint64_t rel,
                             uint32_t sec)
{
    if (sec == 0 || rel >= e->capacity)
        return BLK_UNALLOC;
    if (sec == 1 && e->zeroed_gte)
        return BLK_ZERO;
    return BLK_DATA;
}

static int vmdk_block_status_inner(struct blk *b, uint64_t off,
                                   uint64_t len, uint64_t *pnum,
                                   uint64_t *host_off, vf_error **errp)
{
    struct vmdk_state *s = b->state;
    struct vmdk_extent *e = vmdk_find_extent(s, off);
    uint64_t rel = off - e->start;
    uint64_t n = e->len - rel < len ? e->len - rel : len;
    *host_off = UINT64_MAX;
    if (!n) {
        error_setg(errp, "VMDK extent map has no extent at 0x%" PRIx64, off);
        return -1;
    }
    if (e->type == VMDK_EXT_ZERO) {
        *pnum = n;
        return BLK_ZERO;
    }
    if (e->type == VMDK_EXT_FLAT) {
        uint64_t h = e->flat_off + rel, l = 0;
        bool data = false;
        if (h < e->file_size &&
            io_extent(e->io, h, &l, &data, errp) < 0)
            return -1;
        if (!l || l > n)
            l = n;
        *pnum = l;
        return data ? BLK_DATA : BLK_ZERO;
    }
    if (e->type == VMDK_EXT_SESPARSE)
        return vmdk_se_block_status(e, rel, n, pnum, errp);
    /* grains past the capacity or in an unmapped GT: skip whole GTs, so
     * huge empty (or hostile) disks cost one step per GT */
    uint64_t per_gt = (uint64_t)e->grain * e->gtes;
    if (rel >= e->capacity || rel / per_gt >= e->gd_entries) {
        *pnum = n;
        return BLK_UNALLOC;
    }
    if (vmdk_sparse_gt_unmapped(e, rel / per_gt)) {
        uint64_t l = per_gt - rel % per_gt;
        for (int k = 0; l < n && k < 65536; k++) {
            uint64_t i = (rel + l) / per_gt;
            if (i >= e->gd_entries || rel + l >= e->capacity) {
                l = n;
                break;
            }
            if (!vmdk_sparse_gt_unmapped(e, i))
                break;
            l += per_gt;
        }
        *pnum = l < n ? l : n;
        return BLK_UNALLOC;
    }
    uint32_t sec;
    if (vmdk_sparse_lookup(e, rel / e->grain, &sec, errp) < 0)
        return -1;
    int st = vmdk_grain_status(e, rel, sec);
    bool contig = st == BLK_DATA && !e->compressed;
    if (contig && e->io == b->file)
        *host_off = (uint64_t)sec * VMDK_SECTOR + rel % e->grain;
    uint64_t l = e->grain - rel % e->grain;
    uint64_t gsec = e->grain / VMDK_SECTOR, next = sec + gsec;
    /* merge following grains with the same status; bounded so one call
     * stays cheap on huge empty disks */
    for (int k = 0; l < n && k < 65536; k++) {
        uint32_t s2;
        if (vmdk_sparse_lookup(e, (rel + l) / e->grain, &s2, errp) < 0)
            return -1;
        if (vmdk_grain_status(e, rel + l, s2) != st ||
            (contig && s2 != next))
            break;
        l += e->grain;
        next += gsec;
    }
    *pnum = l < n ? l : n;
    return st;
}

static int vmdk_block_status(struct blk *b, uint64_t off, uint64_t len,
                             uint64_t *pnum, uint64_t *host_off,
                             vf_error **errp)
{
    /* the format core names the file in the error */
    return vmdk_block_status_inner(b, off, len, pnum, host_off, errp);
}

/* The parent's CID when the parent is an open VMDK, for the CID link. */
static bool vmdk_parent_cid(struct blk *b, uint32_t *cid)
{
    if (!b->backing || b->backing->drv != &fmt_vmdk)
        return false;
    *cid = ((struct vmdk_state *)b->backing->state)->cid;
    return true;
}

static const char *vmdk_ext_type_name(const struct vmdk_extent *e)
{
    switch (e->type) {
    case VMDK_EXT_FLAT: return "FLAT";
    case VMDK_EXT_ZERO: return "ZERO";
    case VMDK_EXT_SPARSE: return "SPARSE";
    case VMDK_EXT_COWD: return "VMFSSPARSE";
    case VMDK_EXT_SESPARSE: return "SESPARSE";
    }
    return "?";
}

static int vmdk_info(struct blk *b, struct json_object *spec,
                     vf_error **errp)
{
    struct vmdk_state *s = b->state;
    char hex[16];
    const char *ct = s->create_type ? s->create_type
                     : s->n_ext == 1 && s->ext[0].compressed
                     ? "streamOptimized" : "monolithicSparse";
    json_object_object_add(spec, "create-type", json_object_new_string(ct));
    snprintf(hex, sizeof(hex), "%08" PRIx32, s->cid);
    json_object_object_add(spec, "cid", json_object_new_string(hex));
    if (s->have_parent_cid) {
        snprintf(hex, sizeof(hex), "%08" PRIx32, s->parent_cid);
        json_object_object_add(spec, "parent-cid",
                               json_object_new_string(hex));
    }
    uint32_t pcid;
    if (s->parent_hint && vmdk_parent_cid(b, &pcid) &&
        s->have_parent_cid && pcid != s->parent_cid) {
        snprintf(hex, sizeof(hex), "%08" PRIx32, pcid);
        json_object_object_add(spec, "parent-cid-mismatch",
                               json_object_new_string(hex));
    }
    if (s->adapter)
        json_object_object_add(spec, "adapter-type",
                               json_object_new_string(s->adapter));
    if (s->hwversion)
        json_object_object_add(spec, "hwversion",
                               json_object_new_string(s->hwversion));
    if (s->parent_hint)
        json_object_object_add(spec, "parent-file-name-hint",
                               json_object_new_string(s->parent_hint));
    struct json_object *arr = json_object_new_array();
    uint64_t csize = 0;
    bool any_comp = false;
    for (size_t i = 0; i < s->n_ext && i < 1024; i++) {
        const struct vmdk_extent *e = &s->ext[i];
        struct json_object *x = json_object_new_object();
        json_object_object_add(x, "filename", json_object_new_string(
            e->fname ? e->fname : b->filename));
        json_object_object_add(x, "format",
                               json_object_new_string(vmdk_ext_type_name(e)));
        json_object_object_add(x, "virtual-size",
                               json_object_new_int64((int64_t)e->len));
        if (vmdk_is_sparse(e)) {
            json_object_object_add(x, "cluster-size",
                                   json_object_new_int64(e->grain));
            json_object_object_add(x, "version",
                                   json_object_new_int64(e->version));
            json_object_object_add(x, "compressed",
                                   json_object_new_boolean(e->compressed));
            if (e->zeroed_gte)
                json_object_object_add(x, "zeroed-grain",
                                       json_object_new_boolean(1));
            if (e->used_rgd)
                json_object_object_add(x, "using-redundant-gd",
                                       json_object_new_boolean(1));
            if (e->compressed) {
                any_comp = true;
                csize += e->file_size;
            }
        } else if (e->type == VMDK_EXT_SESPARSE) {
            json_object_object_add(x, "cluster-size",
                                   json_object_new_int64(e->grain));
        } else if (e->type == VMDK_EXT_FLAT && e->flat_off) {
            json_object_object_add(x, "offset",
                                   json_object_new_int64((int64_t)e->flat_off));
        }
        json_object_array_add(arr, x);
    }
    json_object_object_add(spec, "extents", arr);
    if (any_comp)
        json_object_object_add(spec, "compressed-size",
                               json_object_new_int64((int64_t)csize));
    return 0;
}

static const char *const vmdk_aliases[] = { NULL };

const struct fmt_driver fmt_vmdk = {
    .name = "vmdk",
    .aliases = vmdk_aliases,
    .desc = "VMware VMDK (sparse, flat, split, vmfs, streamOptimized, "
            "seSparse)",
    .state_size = sizeof(struct vmdk_state),
    .flags = FMT_F_BACKING,
    .probe = vmdk_probe,
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .pread = vmdk_pread,
    .pwrite = vmdk_pwrite,
    .zero = vmdk_zero,
    .block_status = vmdk_block_status,
    .flush = vmdk_flush,
    .check = vmdk_check,
    .info = vmdk_info,
    .measure = vmdk_measure,
    .resize = vmdk_resize,
    .codec_new = vmdk_codec_new,
    .codec_free = vmdk_codec_free,
    .compress = vmdk_compress,
    .pwrite_compressed = vmdk_pwrite_compressed,
};
