/*
 * qcow2.h: declarations shared by the qcow2 driver's files (qcow2.c: open,
 * read, vtable; qcow2-write.c: create, allocation, compression, flush;
 * qcow2-check.c: check, measure, resize) and the on-disk layout.
 *
 * Spec: QEMU's docs/interop/qcow2.txt (versions 2 and 3, extended L2
 * entries, compression_type).  Every on-disk number is big-endian; fields
 * are read with qcow2_get_be*() at the named offsets below, never through
 * a packed struct.
 */
#ifndef VF_QCOW2_H
#define VF_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats/format.h"

/* ---- header: byte offsets of big-endian fields ---- */
#define QCOW2_MAGIC                 0x514649fbu  /* "QFI\xfb" */
#define QCOW2_HDR_MAGIC             0   /* u32 */
#define QCOW2_HDR_VERSION           4   /* u32: 2 or 3 */
#define QCOW2_HDR_BACKING_OFFSET    8   /* u64: byte offset of the name */
#define QCOW2_HDR_BACKING_SIZE      16  /* u32: name length, <= 1023 */
#define QCOW2_HDR_CLUSTER_BITS      20  /* u32 */
#define QCOW2_HDR_SIZE              24  /* u64: virtual size, bytes */
#define QCOW2_HDR_CRYPT_METHOD      32  /* u32: 0 none, 1 AES, 2 LUKS */
#define QCOW2_HDR_L1_SIZE           36  /* u32: L1 entries */
#define QCOW2_HDR_L1_OFFSET         40  /* u64: cluster aligned */
#define QCOW2_HDR_REFT_OFFSET       48  /* u64: cluster aligned */
#define QCOW2_HDR_REFT_CLUSTERS     56  /* u32 */
#define QCOW2_HDR_NB_SNAPSHOTS      60  /* u32 */
#define QCOW2_HDR_SNAPSHOTS_OFFSET  64  /* u64 */
#define QCOW2_HDR_V2_LEN            72  /* v2 header ends here */
#define QCOW2_HDR_INCOMPAT          72  /* u64 (v3) */
#define QCOW2_HDR_COMPAT            80  /* u64 (v3) */
#define QCOW2_HDR_AUTOCLEAR         88  /* u64 (v3) */
#define QCOW2_HDR_REFCOUNT_ORDER    96  /* u32 (v3): refcount_bits = 1<<it */
#define QCOW2_HDR_HEADER_LEN        100 /* u32 (v3): >= 104, multiple of 8 */
#define QCOW2_HDR_V3_MIN_LEN        104
#define QCOW2_HDR_COMPRESSION_TYPE  104 /* u8 (v3, if header_len > 104) */
#define QCOW2_HDR_V3_LEN            112 /* what we write: 105 padded to 8 */

/* incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY        (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN        0x1fULL
/* compatible / autoclear bits */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS     (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ULL << 1)

#define QCOW2_COMPRESSION_ZLIB      0
#define QCOW2_COMPRESSION_ZSTD      1

/* header extensions: u32 type, u32 length, data padded to 8 bytes */
#define QCOW2_EXT_END               0x00000000u
#define QCOW2_EXT_BACKING_FMT       0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE     0x6803f857u
#define QCOW2_EXT_BITMAPS           0x23852875u
#define QCOW2_EXT_FDE               0x0537be77u
#define QCOW2_EXT_DATA_FILE         0x44415441u
/* feature name table entry: u8 type, u8 bit, 46 bytes of name */
#define QCOW2_FEATURE_ENTRY_LEN     48
#define QCOW2_FEATURE_NAME_LEN      46
/* bitmaps extension: u32 nb, u32 reserved, u64 dir size, u64 dir offset */
#define QCOW2_BMEXT_NB              0
#define QCOW2_BMEXT_DIR_SIZE        8
#define QCOW2_BMEXT_DIR_OFFSET      16
#define QCOW2_BMEXT_LEN             24
/* bitmap directory entry (fixed part) */
#define QCOW2_BMDIR_TABLE_OFFSET    0   /* u64 */
#define QCOW2_BMDIR_TABLE_SIZE      8   /* u32: entries */
#define QCOW2_BMDIR_FLAGS           12  /* u32 */
#define QCOW2_BMDIR_NAME_SIZE       18  /* u16 */
#define QCOW2_BMDIR_EXTRA_SIZE      20  /* u32 */
#define QCOW2_BMDIR_FIXED_LEN       24

/* snapshot table entry (fixed part) */
#define QCOW2_SN_L1_OFFSET          0   /* u64 */
#define QCOW2_SN_L1_SIZE            8   /* u32 */
#define QCOW2_SN_ID_LEN             12  /* u16 */
#define QCOW2_SN_NAME_LEN           14  /* u16 */
#define QCOW2_SN_EXTRA_LEN          36  /* u32 */
#define QCOW2_SN_FIXED_LEN          40

/* L1 / L2 / refcount table entries */
#define QCOW2_OFLAG_COPIED          (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED      (1ULL << 62)
#define QCOW2_OFLAG_ZERO            (1ULL << 0)
#define QCOW2_L1E_OFFSET_MASK       0x00fffffffffffe00ULL /* bits 9-55 */
#define QCOW2_L2E_OFFSET_MASK       0x00fffffffffffe00ULL
#define QCOW2_REFT_OFFSET_MASK      0xfffffffffffffe00ULL /* bits 9-63 */
/* reserved (must be zero): L1 bits 0-8 and 56-62; standard L2 bits 1-8
 * and 56-61 (and bit 0 too in v2 and with extended L2 entries) */
#define QCOW2_L1E_RESERVED          0x7f000000000001ffULL
#define QCOW2_L2E_RESERVED          0x3f000000000001feULL
#define QCOW2_MAX_SNAPSHOTS         65536   /* QEMU's limit */

/* ---- limits (each one a cap on a hostile value) ---- */
#define QCOW2_MIN_CLUSTER_BITS      9   /* spec minimum: 512 bytes */
#define QCOW2_MAX_CLUSTER_BITS      21  /* 2 MiB: QEMU's limit too */
/* QEMU refuses L1 tables larger than 32 MiB: with 2 MiB clusters that is
 * already 2^61 bytes of guest disk, so no real image needs more. */
#define QCOW2_MAX_L1_BYTES          (32u << 20)
/* QEMU refuses refcount tables larger than 8 MiB. */
#define QCOW2_MAX_REFT_BYTES        (8u << 20)
/* A virtual size above 2^61 cannot be mapped by any legal L1 table. */
#define QCOW2_MAX_VIRTUAL_SIZE      (1ULL << 61)
#define QCOW2_MAX_BACKING_NAME      1023
/* Host offsets are 56-bit in L1/L2 entries. */
#define QCOW2_MAX_HOST_OFFSET       (1ULL << 56)

/* ---- big-endian helpers ---- */
static inline uint16_t qcow2_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline uint32_t qcow2_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t qcow2_get_be64(const uint8_t *p)
{
    return (uint64_t)qcow2_get_be32(p) << 32 | qcow2_get_be32(p + 4);
}
static inline void qcow2_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void qcow2_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void qcow2_put_be64(uint8_t *p, uint64_t v)
{
    qcow2_put_be32(p, (uint32_t)(v >> 32));
    qcow2_put_be32(p + 4, (uint32_t)v);
}

/* ---- driver state ---- */

/* One cached L2 table (read path). */
struct qcow2_l2c {
    uint64_t host;          /* host offset of the table, 0 = empty slot */
    uint64_t used;          /* LRU tick */
    uint8_t *data;          /* cluster_size bytes, big-endian as on disk */
};

/* A reusable decompression context (pooled, one per reading thread). */
struct qcow2_dctx {
    struct libdeflate_decompressor *ld;
    void *zstd;             /* ZSTD_DCtx */
    uint8_t *cbuf;          /* compressed bytes: 2 clusters + 1 sector */
    uint8_t *obuf;          /* one decompressed cluster */
    struct qcow2_dctx *next;
};

#define QCOW2_DCTX_POOL_MAX 8

struct qcow2_state {
    /* header */
    uint32_t version;
    uint32_t cluster_bits;
    uint32_t cluster_size;
    uint32_t l2_bits;        /* log2(entries per L2 table) */
    uint32_t l2_entry_size;  /* 8, or 16 with extended L2 */
    bool ext_l2;
    uint32_t sc_bits;        /* log2(subcluster size) with extended L2 */
    uint32_t refcount_order;
    uint32_t header_len;
    uint64_t incompat, compat, autoclear;
    uint32_t compression_type;
    uint64_t reft_offset;
    uint32_t reft_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t bitmaps_ext_off;     /* file offset of the bitmaps ext data,
                                     0 if none */
    uint32_t csize_shift;         /* compressed descriptor: x */
    uint64_t coffset_mask;        /* (1 << x) - 1 */
    uint64_t csize_mask;          /* sectors field mask after shift */
    uint8_t hdr[QCOW2_HDR_V3_LEN];/* header bytes as read (for patching) */

    /* L1 (in memory, host order, entries as on disk) */
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t *l1;

    /* container sizes, for "beyond end of file" checks */
    uint64_t file_size;
    struct io *data_file;         /* external data file, or NULL */
    char *data_file_name;
    uint64_t data_file_size;

    /* read-path L2 cache and decompression pool, under lock */
    pthread_mutex_t lock;         /* L2 cache, L1, write-side metadata */
    pthread_mutex_t plock;        /* decompression pool only */
    bool lock_init;
    struct qcow2_l2c *l2c;
    unsigned l2c_n;
    uint64_t l2c_tick;
    struct qcow2_dctx *dpool;
    unsigned dpool_n;

    /* writing (created or opened read-write) */
    bool writable;
    bool created;
    bool dirty_meta;              /* flush has work to do */
    bool l1_moved;                /* L1 needs a new home at flush */
    bool l1_dirty;
    uint8_t **l2m;                /* l1_size (l2m_cap) in-memory tables */
    uint8_t *l2m_dirty;           /* per L1 slot */
    uint32_t l2m_cap;
    uint32_t *rc;                 /* refcount per host cluster */
    uint64_t rc_cap;
    uint64_t next_free;           /* first never-used host cluster */
    uint64_t cbyte;               /* next byte for compressed data, 0 none */
    uint64_t max_refcount;        /* largest storable refcount */
    uint32_t l1_clusters;         /* clusters the on-disk L1 occupies */
    uint64_t *old_rb;             /* refcount blocks now on disk */
    uint64_t old_rb_n;
    char *w_backing;              /* created: backing name for the header */
    char *w_backing_fmt;
    int compression_level;
};

/* qcow2.c */
int qcow2_init_common(struct qcow2_state *s, vf_error **errp);
/* Kind of a guest range as the L2 tables describe it. */
enum qcow2_kind {
    QCOW2_UNALLOC,
    QCOW2_ZERO,
    QCOW2_DATA,         /* uncompressed, host offset known */
    QCOW2_COMPRESSED,   /* one cluster, desc = the L2 entry */
};
struct qcow2_map {
    enum qcow2_kind kind;
    uint64_t len;       /* bytes from the queried offset */
    uint64_t host;      /* QCOW2_DATA: host offset of the queried offset */
    uint64_t desc;      /* QCOW2_COMPRESSED: the L2 entry */
};
int qcow2_map_range(struct blk *b, uint64_t off, uint64_t len,
                    struct qcow2_map *m, vf_error **errp);
/* Read a whole compressed cluster described by L2 entry desc into out
 * (cluster_size bytes). */
int qcow2_read_compressed(struct blk *b, uint64_t desc, uint8_t *out,
                          vf_error **errp);
/* Decode a compressed descriptor: host byte offset and byte count. */
void qcow2_compressed_span(const struct qcow2_state *s, uint64_t desc,
                           uint64_t *host, uint64_t *nbytes);
/* Read the L2 table at host into buf (cluster_size bytes), validating its
 * offset.  No locking. */
int qcow2_load_table(struct blk *b, uint64_t host, uint8_t *buf,
                     const char *what, vf_error **errp);
/* Refcount block entry idx of width 1 << order. */
uint64_t qcow2_rc_get(const uint8_t *rb, uint64_t idx, unsigned order);
void qcow2_rc_set(uint8_t *rb, uint64_t idx, unsigned order, uint64_t v);
int qcow2_pread_guest(struct blk *b, void *buf, uint64_t off, size_t len,
                      vf_error **errp);

/* qcow2-write.c */
int qcow2_create(struct blk *b, const struct fmt_create_opts *o,
                 vf_error **errp);
int qcow2_open_rw(struct blk *b, vf_error **errp);
int qcow2_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
                 vf_error **errp);
int qcow2_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp);
int qcow2_flush(struct blk *b, vf_error **errp);
void *qcow2_codec_new(struct blk *b, vf_error **errp);
void qcow2_codec_free(void *codec);
size_t qcow2_compress(struct blk *b, void *codec, const void *in,
                      size_t len, void *out, size_t cap);
int qcow2_pwrite_compressed(struct blk *b, uint64_t off, const void *raw,
                            size_t len, const void *payload, size_t plen,
                            vf_error **errp);
void qcow2_close_write(struct qcow2_state *s);
/* Refcount metadata (table + blocks) clusters needed to count `clusters`
 * host clusters including themselves. */
uint64_t qcow2_refcount_meta_clusters(uint64_t clusters,
                                      uint32_t cluster_bits,
                                      unsigned refcount_order,
                                      uint64_t *nblocks);
/* Parse create's -o keys into s; *pa gets the preallocation mode
 * (0 off, 1 metadata, 2 falloc, 3 full). */
int qcow2_parse_create(struct qcow2_state *s, const struct fmt_create_opts *o,
                       int *pa, vf_error **errp);
/* The writable in-memory L2 table of L1 slot l1i (lock held). */
uint8_t *qcow2_l2_mut(struct blk *b, uint64_t l1i, vf_error **errp);
void qcow2_rc_dec(struct qcow2_state *s, uint64_t cluster);
/* In-memory L2 (write path) growth for resize. */
int qcow2_resize_l1(struct blk *b, uint32_t new_l1_size, vf_error **errp);
int qcow2_release_entry(struct blk *b, uint64_t l2e);

/* qcow2-check.c */
int qcow2_check(struct blk *b, struct check_report *r, vf_error **errp);
int qcow2_measure(const struct fmt_create_opts *o, struct blk *src,
                  uint64_t *required, uint64_t *fully, vf_error **errp);
int qcow2_resize(struct blk *b, uint64_t new_size, vf_error **errp);

#endif
