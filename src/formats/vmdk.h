/*
 * vmdk.h: what the VMDK driver's files (vmdk.c, vmdk-desc.c,
 * vmdk-sparse.c, vmdk-write.c, vmdk-check.c) share.
 *
 * Spec: VMware "Virtual Disk Format 5.0" technote (hosted sparse extents,
 * streamOptimized markers, descriptor files); libyal's libvmdk
 * documentation "VMWare Virtual Disk Format (VMDK)" for the ESX "COWD"
 * (vmfsSparse) header and real-world quirks; QEMU's block/vmdk.c for the
 * unpublished ESXi seSparse layout.  Every on-disk number is
 * little-endian; sector = 512 bytes.
 */
#ifndef VF_VMDK_H
#define VF_VMDK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats/format.h"

#define VMDK_SECTOR 512u
/* ddb.geometry.cylinders on resize: the BIOS CHS limit */

/* ---- hosted sparse extent header ("KDMV"), 512 bytes at offset 0 ---- */
#define VMDK4_MAGIC          0x564d444bu /* "KDMV" read as LE32 */
#define VMDK4_VERSION        4   /* LE32: 1, 2 or 3 */
#define VMDK4_FLAGS          8   /* LE32: VMDK4_FL_* */
#define VMDK4_CAPACITY       12  /* LE64: sectors */
#define VMDK4_GRAIN          20  /* LE64: sectors per grain */
#define VMDK4_DESC_OFF       28  /* LE64: embedded descriptor, sectors */
#define VMDK4_DESC_SIZE      36  /* LE64: sectors */
#define VMDK4_NUM_GTES       44  /* LE32: entries per grain table */
#define VMDK4_RGD_OFF        48  /* LE64: redundant GD, sectors */
#define VMDK4_GD_OFF         56  /* LE64: GD, sectors (GD_AT_END) */
#define VMDK4_OVERHEAD       64  /* LE64: metadata sectors before data */
#define VMDK4_UNCLEAN        72  /* u8 */
#define VMDK4_NL_CHARS       73  /* '\n' ' ' '\r' '\n' */
#define VMDK4_COMPRESS_ALG   77  /* LE16: 0 none, 1 deflate */

#define VMDK4_FL_NL_DETECT   0x1u
#define VMDK4_FL_RGD         0x2u
#define VMDK4_FL_ZEROED_GTE  0x4u
#define VMDK4_FL_COMPRESSED  0x10000u
#define VMDK4_FL_MARKERS     0x20000u
#define VMDK4_GD_AT_END      UINT64_MAX

/* streamOptimized markers: LE64 val (sectors / LBA), LE32 size; size 0
 * means a metadata marker with LE32 type at offset 12. */
#define VMDK_MARKER_EOS      0
#define VMDK_MARKER_GT       1
#define VMDK_MARKER_GD       2
#define VMDK_MARKER_FOOTER   3
#define VMDK_GRAIN_MARKER_HDR 12  /* lba + size before the zlib data */

/* ---- ESX sparse extent ("COWD", vmfsSparse), libvmdk naming ---- */
#define VMDK3_MAGIC          0x44574f43u /* "COWD" */
#define VMDK3_VERSION        4   /* LE32 */
#define VMDK3_FLAGS          8   /* LE32 */
#define VMDK3_CAPACITY       12  /* LE32: sectors */
#define VMDK3_GRAIN          16  /* LE32: sectors per grain */
#define VMDK3_GD_OFF         20  /* LE32: sectors */
#define VMDK3_GD_ENTRIES     24  /* LE32 */
#define VMDK3_NEXT_FREE      28  /* LE32: sectors */
#define VMDK3_GTES           4096 /* entries per grain table, fixed */

/* ---- ESXi seSparse extent (SESPARSE), as QEMU's block/vmdk.c reads it:
 * a 512-byte constant header of LE64 fields, all offsets and sizes in
 * sectors ---- */
#define VMDK_SE_MAGIC        UINT64_C(0xcafebabe)
#define VMDK_SE_VERSION_2_1  UINT64_C(0x200000001)
#define VMDK_SE_VERSION      8   /* LE64: VMDK_SE_VERSION_2_1 */
#define VMDK_SE_CAPACITY     16  /* LE64: sectors */
#define VMDK_SE_GRAIN        24  /* LE64: sectors per grain, always 8 */
#define VMDK_SE_GT_SIZE      32  /* LE64: sectors per GT, always 64 */
#define VMDK_SE_FLAGS        40  /* LE64: none defined */
#define VMDK_SE_RESERVED     48  /* 4 x LE64, zero */
#define VMDK_SE_VOL_OFF      80  /* LE64: volatile header */
#define VMDK_SE_GD_OFF       128 /* LE64: grain directory */
#define VMDK_SE_GD_SIZE      136 /* LE64 */
#define VMDK_SE_GTS_OFF      144 /* LE64: first grain table */
#define VMDK_SE_GTS_SIZE     152 /* LE64: room for grain tables */
#define VMDK_SE_GRAINS_OFF   192 /* LE64: grain 0 */
/* the volatile header: LE64 magic, ..., LE64 "replay the journal" */
#define VMDK_SE_VOL_MAGIC    UINT64_C(0xcafecafe)
#define VMDK_SE_VOL_REPLAY   24
#define VMDK_SE_GRAIN_SECT   8u
#define VMDK_SE_GT_SECT      64u
#define VMDK_SE_GTES         4096u  /* LE64 entries per grain table */
/* GD entry: top 32 bits 0x10000000 (allocated), low 32 bits a GT index.
 * GT entry, top nibble: 0 unallocated (whole entry 0), 1 unmapped and
 * 2 zeroed (both read as zeros), 3 allocated: the grain index is bits
 * 48-59 (its low 12 bits) and bits 0-47 (the rest). */
#define VMDK_SE_GDE_ALLOC    UINT64_C(0x10000000)

/* ---- caps on values read from hostile files ---- */
/* A descriptor is a few hundred bytes; thousands of extents fit in 1 MiB. */
#define VMDK_DESC_MAX        (1u << 20)
/* VMware writes 64 KiB grains (hosted) and 512 B .. 1 MiB on ESX; 1 MiB
 * bounds the per-read grain buffers. */
#define VMDK_GRAIN_MAX       (1u << 20)
/* Grain tables are 512 entries (4096 for COWD); 4096 bounds one GT at
 * 16 KiB. */
#define VMDK_GTES_MAX        4096u
/* 2^22 GD entries map 128 TiB with 64 KiB grains, beyond any VMware
 * disk (62 TiB); the GD itself is then 16 MiB. */
#define VMDK_GD_MAX          (1u << 22)
/* seSparse disks end below 64 TiB (QEMU and ESXi): 2^37 sectors, so
 * the GD needs at most 2^22 entries (32 MiB). */
#define VMDK_SE_CAPACITY_MAX (UINT64_C(1) << 37)
/* twoGbMaxExtent of the largest disk (62 TiB) needs 31744 extents. */
#define VMDK_EXTENTS_MAX     32768u
/* Grain tables kept in memory per extent: a 2 TiB disk has 128 MiB of
 * them, and a hostile GD can point every entry at one GT, so past this
 * the loaded GTs are dropped and read again when needed. */
#define VMDK_GT_CACHE_MAX    (64u << 20)

enum vmdk_ext_type {
    VMDK_EXT_FLAT,     /* FLAT and VMFS: raw bytes at an offset */
    VMDK_EXT_ZERO,     /* ZERO: reads as zeros, no file */
    VMDK_EXT_SPARSE,   /* hosted sparse (KDMV), also streamOptimized */
    VMDK_EXT_COWD,     /* VMFSSPARSE (COWD) */
    VMDK_EXT_SESPARSE, /* SESPARSE (ESXi seSparse), read-only */
};

/* A GT that is not in memory yet; entries are host sectors. */
struct vmdk_extent {
    enum vmdk_ext_type type;
    char *fname;          /* as the descriptor names it (malloc'd) */
    uint64_t start, len;  /* guest bytes covered */
    struct io *io;        /* NULL for ZERO */
    bool own_io;          /* false when io == b->file */
    uint64_t file_size;   /* bytes, at open */
    uint64_t flat_off;    /* FLAT: bytes into io */

    /* sparse (KDMV / COWD) */
    uint32_t version, flags;
    uint64_t capacity;    /* bytes the header maps */
    uint32_t grain;       /* bytes per grain */
    uint32_t gtes;        /* entries per GT */
    uint32_t gd_entries;
    uint64_t gd_off, rgd_off;     /* bytes; rgd_off 0 if none */
    uint64_t desc_off, desc_size; /* embedded descriptor, bytes */
    uint64_t overhead;    /* bytes */
    bool compressed, markers, zeroed_gte;
    bool stream_scanned;  /* map rebuilt by scanning grain markers */
    bool used_rgd;        /* the primary GD was unusable */
    uint32_t *gd;         /* host sector of each GT (0: none) */
    uint32_t *rgd;        /* redundant GD, or NULL */
    uint32_t **gt;        /* per GD entry: loaded GT or NULL */
    uint64_t gt_bytes;    /* loaded GTs' size, for VMDK_GT_CACHE_MAX */
    pthread_mutex_t lock; /* gt[] loading */
    bool lock_init;

    /* seSparse (capacity, grain, gtes, gd_entries, gt_bytes, lock above
     * serve it too) */
    uint64_t *se_gd;      /* GD entries as stored (VMDK_SE_GDE_ALLOC) */
    uint64_t **se_gt;     /* per GD entry: loaded GT or NULL */
    uint64_t se_gts_off;  /* bytes: grain table 0 */
    uint64_t se_gts;      /* how many grain tables the area holds */
    uint64_t se_grains_off; /* bytes: grain 0 */

    /* writing a hosted sparse extent (monolithicSparse, twoGb) */
    bool writing;
    uint64_t next_sector; /* where the next grain goes */
    uint64_t gt_sector, rgt_sector; /* first GT of each area */
};

struct vmdk_state {
    char *desc;           /* descriptor text, NUL-terminated, or NULL */
    char *create_type;
    uint32_t cid, parent_cid;
    bool have_parent_cid;
    char *parent_hint;
    char *adapter;
    char *hwversion;
    struct vmdk_extent *ext;
    size_t n_ext;
    bool desc_file;       /* b->file is a text descriptor */

    /* creating */
    int sub;              /* enum vmdk_sub */
    bool stream;          /* streamOptimized writer active */
    char *tools_version;
    uint64_t geo_cyl;
    uint32_t geo_heads;
    uint8_t uuid[16];
    int level;            /* deflate level for stream grains */
    /* stream writer */
    uint8_t *sw_buf;      /* append buffer */
    size_t sw_len, sw_cap;
    uint64_t sw_off;      /* file offset of sw_buf[0] */
    uint64_t sw_next_lba; /* guest sectors: next grain must be >= */
    uint32_t *sw_gt;      /* GT being filled */
    int64_t sw_gt_index;  /* its GD index, -1 none */
    uint32_t *sw_gd;      /* all GD entries */
    uint32_t sw_gd_entries;
    void *sw_codec;       /* for grains the engine did not compress */
    bool sw_done;
};

enum vmdk_sub {
    VMDK_SUB_MONO_SPARSE, VMDK_SUB_MONO_FLAT, VMDK_SUB_2GB_SPARSE,
    VMDK_SUB_2GB_FLAT, VMDK_SUB_STREAM, VMDK_SUB_VMFS,
};

static inline uint64_t vmdk_div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}
static inline uint16_t vmdk_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t vmdk_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t vmdk_le64(const uint8_t *p)
{
    return (uint64_t)vmdk_le32(p) | (uint64_t)vmdk_le32(p + 4) << 32;
}
static inline void vmdk_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vmdk_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void vmdk_put64(uint8_t *p, uint64_t v)
{
    vmdk_put32(p, (uint32_t)v);
    vmdk_put32(p + 4, (uint32_t)(v >> 32));
}

/* vmdk-desc.c */
/* Parse desc (NUL-terminated) into s: header keys and, unless
 * embedded, the extent list (files opened through b). */
int vmdk_desc_parse(struct blk *b, struct vmdk_state *s, bool embedded,
                    vf_error **errp);
/* Build a descriptor for s's extents (malloc'd text). */
char *vmdk_desc_build(struct blk *b, struct vmdk_state *s, vf_error **errp);
/* desc edited for a resize (malloc'd): of its extent lines the first
 * keep stay, the last of them with its size set to last_sectors and
 * followed by the n_add lines in add (no line ends), the rest dropped;
 * ddb.geometry.cylinders recomputed for size bytes from the heads and
 * sectors the descriptor gives (left alone when it gives none).  keep
 * SIZE_MAX: all extent lines stay, the last edited, none needed. */
char *vmdk_desc_resized(const char *desc, size_t keep, uint64_t last_sectors,
                        char *const *add, size_t n_add, uint64_t size,
                        vf_error **errp);
/* Cylinders of a disk of size bytes, computed as qemu-img does. */
uint64_t vmdk_geo_cylinders(uint64_t size, uint32_t heads, uint32_t sectors);

/* vmdk-sparse.c */
/* Read and validate the sparse header of e (type SPARSE or COWD), load
 * its GD.  For a KDMV file, also return the embedded descriptor in
 * *desc (malloc'd, or NULL) when desc is non-NULL. */
int vmdk_sparse_open(struct vmdk_extent *e, char **desc, vf_error **errp);
void vmdk_extent_free(struct vmdk_extent *e);
/* Host sector of guest grain g of e (extent-relative grain index);
 * 0 = unallocated, 1 = zeroed (when e->zeroed_gte).  -1 on error. */
int vmdk_sparse_lookup(struct vmdk_extent *e, uint64_t g, uint32_t *sector,
                       vf_error **errp);
/* Does GT i map nothing at all (past the GD, or a GD entry of 0)? */
bool vmdk_sparse_gt_unmapped(struct vmdk_extent *e, uint64_t i);
/* Drop GT i from the cache (it changed on disk). */
void vmdk_sparse_forget_gt(struct vmdk_extent *e, uint32_t i);
/* Read bytes of e at extent offset off (within one grain). */
int vmdk_sparse_read_grain(struct blk *b, struct vmdk_extent *e,
                           uint64_t off, void *buf, size_t len,
                           vf_error **errp);
/* Load GT i of e from the GD (rgd when redundant).  The GT belongs to
 * the caller (malloc'd), *gt NULL when the GD entry is 0. */
int vmdk_sparse_load_gt(struct vmdk_extent *e, uint32_t i, bool redundant,
                        uint32_t **gt, vf_error **errp);
/* Read the grain marker at host sector sec: *size gets the compressed
 * length, *lba the guest sector it claims. */
int vmdk_read_grain_marker(struct vmdk_extent *e, uint64_t sec,
                           uint64_t *lba, uint32_t *size, vf_error **errp);

/* vmdk-sesparse.c */
/* Read and validate the headers of seSparse extent e, load its GD. */
int vmdk_se_open(struct vmdk_extent *e, vf_error **errp);
void vmdk_se_free(struct vmdk_extent *e);
/* Read [rel, rel+n) of seSparse extent e into buf. */
int vmdk_se_read(struct blk *b, struct vmdk_extent *e, uint8_t *buf,
                 uint64_t rel, uint64_t n, vf_error **errp);
/* Status of [rel, rel+n) of e as the block_status callback returns it;
 * *pnum gets how far it holds. */
int vmdk_se_block_status(struct vmdk_extent *e, uint64_t rel, uint64_t n,
                         uint64_t *pnum, vf_error **errp);
/* Add e's metadata findings to r. */
void vmdk_se_check(struct vmdk_extent *e, const char *name,
                   struct check_report *r);

/* vmdk-write.c */
/* Lay out a new hosted sparse extent of len bytes in e (e->io set):
 * header, optional embedded descriptor room, RGD, RGTs, GD, GTs, all
 * in memory until vmdk_wsparse_flush writes them (and desc, if given,
 * into the embedded room). */
int vmdk_wsparse_init(struct vmdk_extent *e, uint64_t len,
                      bool embedded_desc, bool zeroed, vf_error **errp);
int vmdk_wsparse_flush(struct vmdk_extent *e, const char *desc,
                       vf_error **errp);
/* Write n entries of v (zeros when v is NULL) as LE32 at off. */
int vmdk_write_u32s(struct io *io, const uint32_t *v, uint32_t n,
                    uint64_t off, vf_error **errp);
/* "dir/name.vmdk" -> "name" + suffix (malloc'd, NULL when out of
 * memory). */
char *vmdk_sibling_name(const char *path, const char *suffix);
int vmdk_create(struct blk *b, const struct fmt_create_opts *o,
                vf_error **errp);
int vmdk_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
                vf_error **errp);
int vmdk_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp);
int vmdk_flush(struct blk *b, vf_error **errp);
void *vmdk_codec_new(struct blk *b, vf_error **errp);
void vmdk_codec_free(void *codec);
size_t vmdk_compress(struct blk *b, void *codec, const void *in, size_t len,
                     void *out, size_t cap);
int vmdk_pwrite_compressed(struct blk *b, uint64_t off, const void *raw,
                           size_t len, const void *payload, size_t plen,
                           vf_error **errp);
int vmdk_measure(const struct fmt_create_opts *o, struct blk *src,
                 uint64_t *required, uint64_t *fully, vf_error **errp);
void vmdk_write_free(struct vmdk_state *s);

/* vmdk-resize.c */
int vmdk_resize(struct blk *b, uint64_t new_size, vf_error **errp);

/* vmdk-check.c */
int vmdk_check(struct blk *b, struct check_report *r, vf_error **errp);

/* vmdk.c */
extern const struct fmt_driver fmt_vmdk;

#endif
