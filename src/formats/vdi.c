/*
 * vdi.c: VirtualBox VDI (version 1.1), normal (dynamic) and fixed (static).
 *
 * Layout (VirtualBox's VDIHEADER0/1 as documented in its VDICore.h and
 * read by qemu's block/vdi.c): a 512-byte little-endian header, a block
 * map of u32 entries at offset_bmap, blocks at offset_data.  Map entries:
 * a block index, 0xffffffff = never allocated, 0xfffffffe = discarded
 * (reads as zeros).  Each block is block_extra bytes of per-block data
 * followed by block_size bytes of guest data.  Undo and differencing
 * images link to their parents by UUID only; they are not supported.
 */
#include "formats/format.h"

#include <inttypes.h>
#include <pthread.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- header offsets (little-endian) ---- */
#define VDI_H_TEXT        0x000  /* 64 bytes of text */
#define VDI_H_SIGNATURE   0x040  /* u32 0xbeda107f */
#define VDI_H_VERSION     0x044  /* u32 0x00010001 */
#define VDI_H_HDR_SIZE    0x048  /* u32 bytes from 0x48 (0x180 or 0x190) */
#define VDI_H_TYPE        0x04c  /* u32 1 normal, 2 fixed, 3 undo, 4 diff */
#define VDI_H_FLAGS       0x050  /* u32 */
#define VDI_H_DESC        0x054  /* 256 bytes */
#define VDI_H_OFF_BMAP    0x154  /* u32 bytes */
#define VDI_H_OFF_DATA    0x158  /* u32 bytes */
#define VDI_H_CYLS        0x15c  /* u32 legacy geometry */
#define VDI_H_HEADS       0x160
#define VDI_H_SECTORS     0x164
#define VDI_H_SECTOR_SIZE 0x168  /* u32 512 */
#define VDI_H_DISK_SIZE   0x170  /* u64 bytes */
#define VDI_H_BLOCK_SIZE  0x178  /* u32 bytes */
#define VDI_H_BLOCK_EXTRA 0x17c  /* u32 bytes before each block's data */
#define VDI_H_BLOCKS      0x180  /* u32 entries in the map */
#define VDI_H_ALLOCATED   0x184  /* u32 */
#define VDI_H_UUID_IMAGE  0x188  /* 16 bytes each */
#define VDI_H_UUID_SNAP   0x198
#define VDI_H_UUID_LINK   0x1a8
#define VDI_H_UUID_PARENT 0x1b8
#define VDI_HDR_SIZE      512

#define VDI_SIGNATURE     0xbeda107fu
#define VDI_VERSION_1_1   0x00010001u
#define VDI_TYPE_NORMAL   1
#define VDI_TYPE_FIXED    2
#define VDI_UNALLOC       0xffffffffu
#define VDI_ZERO          0xfffffffeu

/* Caps on values read from the file. */
/* VirtualBox always uses 1 MiB blocks; 256 MiB bounds one block copy. */
#define VDI_MAX_BLOCK     (256u << 20)
/* block_extra is unused by VirtualBox (0); 1 MiB is generous. */
#define VDI_MAX_EXTRA     (1u << 20)
/* The map is read whole; 2^28 entries (1 GiB) covers 256 TiB of 1 MiB
 * blocks, far beyond VirtualBox's 2 TiB... 256 TiB limits, and the map
 * must lie in the file anyway. */
#define VDI_MAX_BLOCKS    (1u << 28)
/* What we create: VirtualBox's own limit. */
#define VDI_MAX_SIZE      (UINT64_C(256) << 40)

struct vdi_state {
    uint8_t hdr[VDI_HDR_SIZE];
    uint32_t type;
    uint32_t block_size, block_extra, blocks, allocated;
    uint64_t off_bmap, off_data, file_size;
    uint32_t *bmap;          /* host order */
    bool dirty;
    /* FMT_F_PARALLEL_WRITE: the map and the allocation count change
     * under this lock; data is written outside it. */
    pthread_mutex_t lock;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}
static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static int vdi_probe(const struct probe_data *d)
{
    if (d->head_len >= 0x48 && le32(d->head + VDI_H_SIGNATURE) ==
        VDI_SIGNATURE)
        return 100;
    return 0;
}

static int vdi_open(struct blk *b, vf_error **errp)
{
    struct vdi_state *s = b->state;
    pthread_mutex_init(&s->lock, NULL);
    uint8_t *h = s->hdr;
    int64_t fs = io_size(b->file, errp);
    if (fs < 0)
        return -1;
    s->file_size = (uint64_t)fs;
    if (s->file_size < VDI_HDR_SIZE) {
        error_setg(errp, "file of %" PRIu64 " bytes too small for a VDI "
                   "header", s->file_size);
        return -1;
    }
    if (io_pread(b->file, h, VDI_HDR_SIZE, 0, errp) < 0)
        return -1;
    if (le32(h + VDI_H_SIGNATURE) != VDI_SIGNATURE) {
        error_setg(errp, "VDI signature 0x%08" PRIx32 " is not 0xbeda107f",
                   le32(h + VDI_H_SIGNATURE));
        return -1;
    }
    if (le32(h + VDI_H_VERSION) != VDI_VERSION_1_1) {
        error_setg(errp, "VDI version 0x%08" PRIx32 " not supported",
                   le32(h + VDI_H_VERSION));
        return -1;
    }
    uint32_t hs = le32(h + VDI_H_HDR_SIZE);
    if (hs < 0x180 || hs > VDI_HDR_SIZE - 0x48) {
        error_setg(errp, "VDI header size 0x%" PRIx32 " out of range", hs);
        return -1;
    }
    s->type = le32(h + VDI_H_TYPE);
    if (s->type != VDI_TYPE_NORMAL && s->type != VDI_TYPE_FIXED) {
        error_setg(errp, "VDI image type %" PRIu32 " not supported (undo "
                   "and differencing images link by UUID)", s->type);
        return -1;
    }
    if (le32(h + VDI_H_SECTOR_SIZE) != 512) {
        error_setg(errp, "VDI sector size %" PRIu32 " not supported",
                   le32(h + VDI_H_SECTOR_SIZE));
        return -1;
    }
    s->block_size = le32(h + VDI_H_BLOCK_SIZE);
    s->block_extra = le32(h + VDI_H_BLOCK_EXTRA);
    s->blocks = le32(h + VDI_H_BLOCKS);
    s->allocated = le32(h + VDI_H_ALLOCATED);
    s->off_bmap = le32(h + VDI_H_OFF_BMAP);
    s->off_data = le32(h + VDI_H_OFF_DATA);
    b->size = le64(h + VDI_H_DISK_SIZE);
    if (s->block_size < 512 || s->block_size > VDI_MAX_BLOCK ||
        (s->block_size & (s->block_size - 1))) {
        error_setg(errp, "VDI block size %" PRIu32 " out of range (a power "
                   "of two, 512 B to 256 MiB)", s->block_size);
        return -1;
    }
    if (s->block_extra > VDI_MAX_EXTRA || s->block_extra % 512) {
        error_setg(errp, "VDI block extra %" PRIu32 " out of range",
                   s->block_extra);
        return -1;
    }
    if (s->blocks > VDI_MAX_BLOCKS) {
        error_setg(errp, "VDI block map of %" PRIu32 " entries too large",
                   s->blocks);
        return -1;
    }
    if (b->size > (uint64_t)s->blocks * s->block_size) {
        error_setg(errp, "VDI disk size %" PRIu64 " larger than its %" PRIu32
                   " blocks", b->size, s->blocks);
        return -1;
    }
    if (s->allocated > s->blocks) {
        error_setg(errp, "VDI allocated block count %" PRIu32 " larger "
                   "than the %" PRIu32 " blocks", s->allocated, s->blocks);
        return -1;
    }
    uint64_t map_bytes = (uint64_t)s->blocks * 4;
    if (s->off_bmap < VDI_HDR_SIZE || s->off_bmap > s->file_size ||
        map_bytes > s->file_size - s->off_bmap) {
        error_setg(errp, "VDI block map at 0x%" PRIx64 " (%" PRIu32
                   " entries) beyond end of file", s->off_bmap, s->blocks);
        return -1;
    }
    if (s->off_data < s->off_bmap + map_bytes || s->off_data % 512) {
        error_setg(errp, "VDI data offset 0x%" PRIx64 " overlaps the block "
                   "map or is unaligned", s->off_data);
        return -1;
    }
    b->cluster_size = s->block_size;
    s->bmap = malloc(map_bytes ? map_bytes : 1);
    if (!s->bmap) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(b->file, s->bmap, map_bytes, s->off_bmap, errp) < 0)
        return -1;
    uint64_t stride = (uint64_t)s->block_size + s->block_extra;
    for (uint32_t i = 0; i < s->blocks; i++) {
        uint32_t e = le32((const uint8_t *)&s->bmap[i]);
        s->bmap[i] = e;
        if (e >= VDI_ZERO)
            continue;
        if (e >= s->blocks) {
            error_setg(errp, "VDI block map entry %" PRIu32 " (0x%" PRIx32
                       ") out of range", i, e);
            return -1;
        }
        /* the data part of a block may end early only at the disk's end */
        uint64_t g = (uint64_t)i * s->block_size;
        uint64_t need = s->block_extra;
        if (g < b->size)
            need += b->size - g < s->block_size ? b->size - g
                                                : s->block_size;
        uint64_t off = s->off_data + e * stride;
        if (off > s->file_size || need > s->file_size - off) {
            error_setg(errp, "VDI block %" PRIu32 " at 0x%" PRIx64 " beyond "
                       "end of file", i, off);
            return -1;
        }
    }
    return 0;
}

static void vdi_close(struct blk *b)
{
    struct vdi_state *s = b->state;
    pthread_mutex_destroy(&s->lock);
    free(s->bmap);
    s->bmap = NULL;
}

static uint64_t vdi_host(struct vdi_state *s, uint32_t e, uint64_t in)
{
    return s->off_data + (uint64_t)e * ((uint64_t)s->block_size +
                                        s->block_extra) +
           s->block_extra + in;
}

static int vdi_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                     vf_error **errp)
{
    struct vdi_state *s = b->state;
    uint8_t *p = buf;
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        uint64_t in = off % s->block_size;
        size_t n = s->block_size - in < len ? (size_t)(s->block_size - in)
                                            : len;
        uint32_t e = s->bmap[idx];
        if (e == VDI_ZERO) {
            memset(p, 0, n);
        } else if (e == VDI_UNALLOC) {
            if (blk_read_backing(b, p, off, n, errp) < 0)
                return -1;
        } else if (io_pread(b->file, p, n, vdi_host(s, e, in), errp) < 0) {
            return -1;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vdi_status_of(uint32_t e)
{
    return e == VDI_UNALLOC ? BLK_UNALLOC : e == VDI_ZERO ? BLK_ZERO
                                                          : BLK_DATA;
}

static int vdi_block_status(struct blk *b, uint64_t off, uint64_t len,
                            uint64_t *pnum, uint64_t *host_off,
                            vf_error **errp)
{
    struct vdi_state *s = b->state;
    uint32_t idx = (uint32_t)(off / s->block_size);
    uint64_t in = off % s->block_size;
    int st = vdi_status_of(s->bmap[idx]);
    uint64_t n = s->block_size - in;
    *host_off = st == BLK_DATA ? vdi_host(s, s->bmap[idx], in) : UINT64_MAX;
    /* merge following blocks: same status, and contiguous if data */
    while (n < len) {
        uint32_t j = (uint32_t)((off + n) / s->block_size);
        uint32_t e = s->bmap[j];
        if (vdi_status_of(e) != st)
            break;
        if (st == BLK_DATA && e != s->bmap[j - 1] + 1)
            break;
        if (st == BLK_DATA && s->block_extra)
            break;
        n += s->block_size;
    }
    *pnum = n < len ? n : len;
    return st;
}

static void vdi_uuid(uint8_t *p)
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(p + got, 16 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    for (; got < 16; got++)
        p[got] = (uint8_t)(rand() ^ (int)getpid());
    p[7] = (p[7] & 0x0f) | 0x40;   /* version 4, in the LE time_hi field */
    p[8] = (p[8] & 0x3f) | 0x80;
}

static int vdi_flush(struct blk *b, vf_error **errp)
{
    struct vdi_state *s = b->state;
    if (!s->dirty)
        return 0;
    put_le32(s->hdr + VDI_H_ALLOCATED, s->allocated);
    put_le64(s->hdr + VDI_H_DISK_SIZE, b->size);
    put_le32(s->hdr + VDI_H_BLOCKS, s->blocks);
    uint64_t map_bytes = (uint64_t)s->blocks * 4;
    uint8_t *m = malloc(map_bytes ? map_bytes : 1);
    if (!m) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->blocks; i++)
        put_le32(m + 4 * (size_t)i, s->bmap[i]);
    int r = io_pwrite(b->file, m, map_bytes, s->off_bmap, errp);
    free(m);
    if (r < 0 || io_pwrite(b->file, s->hdr, VDI_HDR_SIZE, 0, errp) < 0)
        return -1;
    s->dirty = false;
    return 0;
}

static int vdi_create(struct blk *b, const struct fmt_create_opts *o,
                      vf_error **errp)
{
    struct vdi_state *s = b->state;
    bool is_static = false;
    pthread_mutex_init(&s->lock, NULL);
    if (opts_get_bool(o->o, "static", &is_static, errp) < 0)
        return -1;
    const char *pa = opts_get(o->o, "preallocation");
    if (pa && !strcmp(pa, "metadata"))
        is_static = true;
    else if (pa && strcmp(pa, "off")) {
        error_setg(errp, "invalid preallocation mode '%s'", pa);
        return -1;
    }
    if (o->size > VDI_MAX_SIZE) {
        error_setg(errp, "virtual size %" PRIu64 " too large for VDI (max %"
                   PRIu64 ")", o->size, VDI_MAX_SIZE);
        return -1;
    }
    uint64_t size = (o->size + 511) & ~UINT64_C(511);
    uint8_t *h = s->hdr;
    memset(h, 0, VDI_HDR_SIZE);
    static const char text[] = "<<< Oracle VM VirtualBox Disk Image >>>\n";
    memcpy(h + VDI_H_TEXT, text, sizeof(text) - 1);
    s->block_size = 1u << 20;
    s->blocks = (uint32_t)((size + s->block_size - 1) / s->block_size);
    s->type = is_static ? VDI_TYPE_FIXED : VDI_TYPE_NORMAL;
    s->off_bmap = 1u << 20;       /* VirtualBox aligns both to 1 MiB */
    s->off_data = (s->off_bmap + (uint64_t)s->blocks * 4 + (1u << 20) - 1) &
                  ~(uint64_t)((1u << 20) - 1);
    if (s->off_data > UINT32_MAX) {
        error_setg(errp, "virtual size %" PRIu64 " too large for VDI", size);
        return -1;
    }
    put_le32(h + VDI_H_SIGNATURE, VDI_SIGNATURE);
    put_le32(h + VDI_H_VERSION, VDI_VERSION_1_1);
    put_le32(h + VDI_H_HDR_SIZE, 0x180);
    put_le32(h + VDI_H_TYPE, s->type);
    put_le32(h + VDI_H_OFF_BMAP, (uint32_t)s->off_bmap);
    put_le32(h + VDI_H_OFF_DATA, (uint32_t)s->off_data);
    put_le32(h + VDI_H_SECTOR_SIZE, 512);
    put_le32(h + VDI_H_BLOCK_SIZE, s->block_size);
    vdi_uuid(h + VDI_H_UUID_IMAGE);
    vdi_uuid(h + VDI_H_UUID_SNAP);
    s->bmap = malloc((size_t)s->blocks * 4 + 4);
    if (!s->bmap) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->blocks; i++)
        s->bmap[i] = is_static ? i : VDI_UNALLOC;
    s->allocated = is_static ? s->blocks : 0;
    b->size = size;
    b->zero_init = true;
    b->cluster_size = s->block_size;
    s->dirty = true;
    uint64_t end = s->off_data + (uint64_t)s->allocated * s->block_size;
    if (io_truncate(b->file, end, errp) < 0)
        return -1;
    if (is_static && io_falloc(b->file, s->off_data, end - s->off_data,
                               NULL) < 0) {
        /* preallocation is a hint: a sparse static image reads the same */
    }
    return vdi_flush(b, errp);
}

static int vdi_pwrite(struct blk *b, const void *buf, uint64_t off,
                      size_t len, vf_error **errp)
{
    struct vdi_state *s = b->state;
    const uint8_t *p = buf;
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        uint64_t in = off % s->block_size;
        size_t n = s->block_size - in < len ? (size_t)(s->block_size - in)
                                            : len;
        pthread_mutex_lock(&s->lock);
        if (s->bmap[idx] >= VDI_ZERO) {
            /* a new block at the end: the file grows with zeros, which is
             * right for both unallocated (no backing) and discarded */
            if (s->allocated >= s->blocks) {
                pthread_mutex_unlock(&s->lock);
                error_setg(errp, "VDI has no room for another block");
                return -1;
            }
            uint32_t e = s->allocated++;
            uint64_t end = vdi_host(s, e, 0) + s->block_size;
            if (end > s->file_size) {
                if (io_truncate(b->file, end, errp) < 0) {
                    pthread_mutex_unlock(&s->lock);
                    return -1;
                }
                s->file_size = end;
            }
            s->bmap[idx] = e;
            s->dirty = true;
        }
        uint64_t host = vdi_host(s, s->bmap[idx], in);
        pthread_mutex_unlock(&s->lock);
        if (io_pwrite(b->file, p, n, host, errp) < 0)
            return -1;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vdi_zero(struct blk *b, uint64_t off, uint64_t len,
                    vf_error **errp)
{
    struct vdi_state *s = b->state;
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        uint64_t in = off % s->block_size;
        uint64_t n = s->block_size - in < len ? s->block_size - in : len;
        pthread_mutex_lock(&s->lock);
        bool done = true;
        if (s->bmap[idx] >= VDI_ZERO) {
            /* already reads as zeros */
        } else if (in == 0 && n == s->block_size && s->type ==
                   VDI_TYPE_NORMAL) {
            /* whole block: mark it discarded (its space is leaked, as
             * VirtualBox does until compaction) */
            s->bmap[idx] = VDI_ZERO;
            s->dirty = true;
        } else {
            done = false;
        }
        pthread_mutex_unlock(&s->lock);
        if (!done && blk_write_zeros(b, off, n, errp) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

static int vdi_check(struct blk *b, struct check_report *r, vf_error **errp)
{
    struct vdi_state *s = b->state;
    uint8_t *seen = calloc(s->blocks ? s->blocks : 1, 1);
    if (!seen) {
        error_setg(errp, "out of memory");
        return -1;
    }
    uint32_t used = 0;
    for (uint32_t i = 0; i < s->blocks; i++) {
        uint32_t e = s->bmap[i];
        if (e >= VDI_ZERO)
            continue;
        if (seen[e])
            check_add(r, CHECK_CORRUPTION, "VDI block %" PRIu32 " shares "
                      "data block %" PRIu32 " with another", i, e);
        seen[e] = 1;
        used++;
    }
    free(seen);
    if (used != s->allocated)
        check_add(r, CHECK_CORRUPTION, "VDI header says %" PRIu32 " blocks "
                  "allocated, the map has %" PRIu32, s->allocated, used);
    r->have_cluster_stats = true;
    r->total_clusters = s->blocks;
    r->allocated_clusters = used;
    r->image_end_offset = s->off_data + (uint64_t)s->allocated *
                          ((uint64_t)s->block_size + s->block_extra);
    return 0;
}

static void vdi_uuid_str(const uint8_t *u, char *out)
{
    /* RTUUID is stored little-endian in its first three fields */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", u[3], u[2], u[1], u[0], u[5], u[4],
             u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

static int vdi_info(struct blk *b, struct json_object *spec, vf_error **errp)
{
    struct vdi_state *s = b->state;
    static const struct { const char *key; int off; } uu[] = {
        { "uuid", VDI_H_UUID_IMAGE }, { "last-snapshot-uuid", VDI_H_UUID_SNAP },
        { "link-uuid", VDI_H_UUID_LINK }, { "parent-uuid", VDI_H_UUID_PARENT },
    };
    json_object_object_add(spec, "subformat", json_object_new_string(
                               s->type == VDI_TYPE_FIXED ? "static"
                                                         : "dynamic"));
    for (size_t i = 0; i < 4; i++) {
        char u[40];
        vdi_uuid_str(s->hdr + uu[i].off, u);
        json_object_object_add(spec, uu[i].key, json_object_new_string(u));
    }
    json_object_object_add(spec, "blocks-allocated",
                           json_object_new_int64(s->allocated));
    (void)errp;
    return 0;
}

static int vdi_measure(const struct fmt_create_opts *o, struct blk *src,
                       uint64_t *required, uint64_t *fully, vf_error **errp)
{
    bool is_static = false;
    if (opts_get_bool(o->o, "static", &is_static, errp) < 0)
        return -1;
    (void)opts_get(o->o, "preallocation");
    uint64_t bs = 1u << 20;
    uint64_t blocks = (o->size + bs - 1) / bs;
    uint64_t meta = (1u << 20) + ((blocks * 4 + bs - 1) & ~(bs - 1));
    uint64_t used;
    if (blk_count_data_blocks(src, bs, blocks * bs, &used, errp) < 0)
        return -1;
    *fully = meta + blocks * bs;
    *required = is_static ? *fully : meta + used * bs;
    return 0;
}

/* Write the map (s->blocks entries) and then the header, each flushed. */
static int vdi_store(struct blk *b, vf_error **errp)
{
    struct vdi_state *s = b->state;
    s->dirty = true;
    put_le32(s->hdr + VDI_H_OFF_DATA, (uint32_t)s->off_data);
    put_le32(s->hdr + VDI_H_TYPE, s->type);
    uint64_t map_bytes = (uint64_t)s->blocks * 4;
    uint8_t *m = malloc(map_bytes ? map_bytes : 1);
    if (!m) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->blocks; i++)
        put_le32(m + 4 * (size_t)i, s->bmap[i]);
    int r = io_pwrite(b->file, m, map_bytes, s->off_bmap, errp);
    free(m);
    if (r < 0 || io_flush(b->file, errp) < 0)
        return -1;
    put_le32(s->hdr + VDI_H_ALLOCATED, s->allocated);
    put_le64(s->hdr + VDI_H_DISK_SIZE, b->size);
    put_le32(s->hdr + VDI_H_BLOCKS, s->blocks);
    if (io_pwrite(b->file, s->hdr, VDI_HDR_SIZE, 0, errp) < 0 ||
        io_flush(b->file, errp) < 0)
        return -1;
    s->dirty = false;
    return 0;
}

/* Entries of the map holding a data slot (*count) and one past the
 * highest slot in use (*top).  VirtualBox, qemu and we keep the slots
 * dense, so both equal `allocated`, where the next block goes. */
static void vdi_slots(const struct vdi_state *s, uint64_t *count,
                      uint64_t *top)
{
    *count = *top = 0;
    for (uint32_t i = 0; i < s->blocks; i++) {
        if (s->bmap[i] >= VDI_ZERO)
            continue;
        (*count)++;
        if (s->bmap[i] >= *top)
            *top = (uint64_t)s->bmap[i] + 1;
    }
}

/* Where the next slot goes: past every slot in use and past `allocated`
 * (a writer's next slot). */
static uint64_t vdi_slot_top(const struct vdi_state *s)
{
    uint64_t count, top;
    vdi_slots(s, &count, &top);
    return top > s->allocated ? top : s->allocated;
}

/* Grow to `blocks` map entries.  Entries are slot numbers counted from
 * off_data, so when the map needs the room of the first k data slots,
 * off_data moves up by k slots: the blocks in those slots are copied to
 * the end first (flushed), then every entry is renumbered (slot - k, the
 * copies after the others).  VDI has no journal: the new map and the
 * header are two writes, map first, each flushed; the data never moves
 * under an entry before its copy is durable. */
static int vdi_grow_map(struct blk *b, uint64_t blocks, vf_error **errp)
{
    struct vdi_state *s = b->state;
    uint64_t stride = (uint64_t)s->block_size + s->block_extra;
    uint64_t need = s->off_bmap + blocks * 4;
    uint32_t *nm = malloc(blocks * 4);
    if (!nm) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(nm, s->bmap, (size_t)s->blocks * 4);
    for (uint64_t i = s->blocks; i < blocks; i++)
        nm[i] = VDI_UNALLOC;
    if (need <= s->off_data) {
        free(s->bmap);
        s->bmap = nm;
        s->blocks = (uint32_t)blocks;
        return 0;
    }
    uint64_t k = (need - s->off_data + stride - 1) / stride;
    uint64_t top = vdi_slot_top(s);
    uint64_t first = top > k ? top : k;     /* old slot of the 1st copy */
    uint64_t moved = 0;
    for (uint32_t i = 0; i < s->blocks; i++)
        if (s->bmap[i] < k)
            moved++;
    uint64_t new_off = s->off_data + k * stride;
    /* the header keeps offsets in u32; new slot numbers stay below the
     * VDI_ZERO/VDI_UNALLOC markers */
    if (new_off > UINT32_MAX || first + moved - k >= VDI_ZERO) {
        free(nm);
        error_setg(errp, "VDI data offset 0x%" PRIx64 " for a map of %"
                   PRIu64 " entries does not fit the header", new_off,
                   blocks);
        return -1;
    }
    /* 1. copies of the blocks in the way, durable before any entry
     * names them */
    uint64_t m = 0;
    for (uint32_t i = 0; i < s->blocks; i++) {
        uint32_t e = s->bmap[i];
        if (e >= VDI_ZERO)
            continue;
        if (e < k) {
            uint64_t to = first + m++;
            if (io_copy(b->file, s->off_data + to * stride,
                        s->off_data + e * stride, stride, errp) < 0) {
                free(nm);
                return -1;
            }
            nm[i] = (uint32_t)(to - k);
        } else {
            nm[i] = (uint32_t)(e - k);
        }
    }
    uint64_t end = s->off_data + (first + m) * stride;
    if (end < new_off)
        end = new_off;
    if ((end > s->file_size && io_truncate(b->file, end, errp) < 0) ||
        io_flush(b->file, errp) < 0) {
        free(nm);
        return -1;
    }
    if (end > s->file_size)
        s->file_size = end;
    free(s->bmap);
    s->bmap = nm;
    s->blocks = (uint32_t)blocks;
    s->off_data = new_off;
    /* 2. the switch: map, then header */
    return vdi_store(b, errp);
}

static int vdi_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    struct vdi_state *s = b->state;
    uint64_t blocks = (new_size + s->block_size - 1) / s->block_size;
    if (new_size % 512) {
        error_setg(errp, "VDI size %" PRIu64 " is not a multiple of 512",
                   new_size);
        return -1;
    }
    if (new_size > VDI_MAX_SIZE || blocks > VDI_MAX_BLOCKS) {
        error_setg(errp, "virtual size %" PRIu64 " too large for VDI (max %"
                   PRIu64 ")", new_size, VDI_MAX_SIZE);
        return -1;
    }
    if (new_size == b->size)
        return 0;
    uint64_t stride = (uint64_t)s->block_size + s->block_extra;
    uint64_t old_size = b->size;
    if (new_size > old_size) {
        if (blocks > s->blocks && vdi_grow_map(b, blocks, errp) < 0)
            return -1;
        /* bytes of the old last block past the old end read as zeros */
        uint64_t in = old_size % s->block_size;
        uint32_t e = s->bmap[old_size / s->block_size];
        if (in && e < VDI_ZERO &&
            io_punch(b->file, vdi_host(s, e, in), s->block_size - in,
                     errp) < 0)
            return -1;
        if (s->type == VDI_TYPE_FIXED) {
            /* static stays static: every new block gets its slot */
            uint64_t top = vdi_slot_top(s), added = 0;
            uint64_t from = (old_size + s->block_size - 1) / s->block_size;
            for (uint64_t i = from; i < blocks; i++) {
                if (s->bmap[i] >= VDI_ZERO) {
                    s->bmap[i] = (uint32_t)top++;
                    added++;
                }
            }
            uint64_t end = s->off_data + top * stride;
            if (top >= VDI_ZERO) {
                error_setg(errp, "VDI of %" PRIu64 " blocks too large", top);
                return -1;
            }
            if (end > s->file_size && io_truncate(b->file, end, errp) < 0)
                return -1;
            if (end > s->file_size)
                s->file_size = end;
            s->allocated = (uint32_t)(s->allocated + added);
        }
        if (io_flush(b->file, errp) < 0)
            return -1;
        b->size = new_size;
        return vdi_store(b, errp);
    }
    /* shrink: the size first (the dropped blocks read as zeros: the core
     * checked), then the kept blocks from the highest slots fill the
     * dropped blocks' slots, so that the slots stay dense, then the map
     * and the count; the file ends after the last slot */
    b->size = new_size;
    if (vdi_store(b, errp) < 0)
        return -1;
    if (blocks >= s->blocks)
        return 0;
    uint64_t dropped = 0;
    for (uint64_t i = blocks; i < s->blocks; i++)
        if (s->bmap[i] < VDI_ZERO)
            dropped++;
    uint64_t keep = s->allocated >= dropped ? s->allocated - dropped : 0;
    uint8_t *used = calloc(s->allocated ? s->allocated : 1, 1);
    if (!used) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < blocks; i++)
        if (s->bmap[i] < s->allocated)
            used[s->bmap[i]] = 1;
    uint64_t hole = 0;
    for (uint64_t i = 0; i < blocks; i++) {
        uint32_t e = s->bmap[i];
        if (e >= VDI_ZERO || e < keep)
            continue;
        while (hole < keep && used[hole])
            hole++;
        if (hole >= keep)
            break;          /* not dense: leave it where it is */
        if (io_copy(b->file, s->off_data + hole * stride,
                    s->off_data + (uint64_t)e * stride, stride, errp) < 0) {
            free(used);
            return -1;
        }
        used[hole] = 1;
        s->bmap[i] = (uint32_t)hole;
    }
    free(used);
    if (io_flush(b->file, errp) < 0)
        return -1;
    s->blocks = (uint32_t)blocks;
    uint64_t count, top;
    vdi_slots(s, &count, &top);
    s->allocated = (uint32_t)count;
    if (vdi_store(b, errp) < 0)
        return -1;
    uint64_t end = s->off_data + top * stride;
    if (end < s->file_size) {
        if (io_truncate(b->file, end, errp) < 0)
            return -1;
        s->file_size = end;
    }
    return 0;
}

const struct fmt_driver fmt_vdi = {
    .name = "vdi",
    .desc = "VirtualBox disk image (static and dynamic)",
    .state_size = sizeof(struct vdi_state),
    .flags = FMT_F_PARALLEL_WRITE | FMT_F_HOST_IN_FILE,
    .probe = vdi_probe,
    .open = vdi_open,
    .close = vdi_close,
    .create = vdi_create,
    .pread = vdi_pread,
    .pwrite = vdi_pwrite,
    .zero = vdi_zero,
    .block_status = vdi_block_status,
    .flush = vdi_flush,
    .check = vdi_check,
    .info = vdi_info,
    .measure = vdi_measure,
    .resize = vdi_resize,
};
