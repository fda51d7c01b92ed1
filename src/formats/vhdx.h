/*
 * vhdx.h: VHDX on-disk layout and what vhdx.c and vhdx-log.c share.
 *
 * Spec: [MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format", v20160714
 * (revision 8.0).  All fields little-endian; GUIDs are stored as the
 * Windows GUID struct (first three fields little-endian, last 8 bytes as
 * written).  Every structure's offset below is in bytes from its start.
 */
#ifndef VF_VHDX_H
#define VF_VHDX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats/format.h"

#define VHDX_MIB            (UINT64_C(1) << 20)

/* File type identifier at offset 0: "vhdxfile" + UTF-16LE creator. */
#define VHDX_FTI_CREATOR    8
#define VHDX_FTI_CREATOR_LEN 512

/* Headers: 4 KiB each at 64 KiB and 128 KiB, CRC-32C over 4 KiB. */
#define VHDX_HDR1_OFF       (64 * 1024)
#define VHDX_HDR2_OFF       (128 * 1024)
#define VHDX_HDR_SIZE       4096
#define VHDX_H_SIG          0    /* "head" */
#define VHDX_H_CRC          4    /* u32 */
#define VHDX_H_SEQ          8    /* u64 */
#define VHDX_H_FILE_WRITE   16   /* GUID */
#define VHDX_H_DATA_WRITE   32   /* GUID */
#define VHDX_H_LOG_GUID     48   /* GUID, zero: no log to replay */
#define VHDX_H_LOG_VERSION  64   /* u16, 0 */
#define VHDX_H_VERSION      66   /* u16, 1 */
#define VHDX_H_LOG_LEN      68   /* u32 bytes, multiple of 1 MiB */
#define VHDX_H_LOG_OFF      72   /* u64 bytes, multiple of 1 MiB */

/* Region tables: 64 KiB each at 192 KiB and 256 KiB. */
#define VHDX_RT1_OFF        (192 * 1024)
#define VHDX_RT2_OFF        (256 * 1024)
#define VHDX_RT_SIZE        (64 * 1024)
#define VHDX_RT_SIG         0    /* "regi" */
#define VHDX_RT_CRC         4    /* u32 */
#define VHDX_RT_COUNT       8    /* u32, <= 2047 */
#define VHDX_RT_ENTRIES     16
#define VHDX_RE_SIZE        32
#define VHDX_RE_GUID        0
#define VHDX_RE_OFF         16   /* u64, multiple of 1 MiB */
#define VHDX_RE_LEN         24   /* u32, multiple of 1 MiB */
#define VHDX_RE_REQUIRED    28   /* u32, bit 0 */
#define VHDX_RT_MAX         2047
#define VHDX_GUID_BAT       "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define VHDX_GUID_META      "8B7CA206-4790-4B9A-B8FE-575F050F886E"

/* Metadata region: table header, entries, items at >= 64 KiB. */
#define VHDX_MT_SIG         0    /* "metadata" */
#define VHDX_MT_COUNT       10   /* u16, <= 2047 */
#define VHDX_MT_ENTRIES     32
#define VHDX_ME_SIZE        32
#define VHDX_ME_GUID        0
#define VHDX_ME_OFF         16   /* u32 from the region start */
#define VHDX_ME_LEN         20   /* u32 */
#define VHDX_ME_FLAGS       24   /* u32: 1 user, 2 virtual disk, 4 required */
#define VHDX_ME_REQUIRED    4
#define VHDX_MT_MAX         2047
#define VHDX_MT_TABLE_SIZE  (64 * 1024)

/* Parent locator item. */
#define VHDX_PL_TYPE        0    /* GUID */
#define VHDX_PL_COUNT       18   /* u16 key-value entries */
#define VHDX_PL_ENTRIES     20
#define VHDX_PLE_SIZE       12   /* key off u32, value off u32, key len u16,
                                    value len u16 (offsets from the item) */

/* BAT entry: state in bits 0-2, file offset in MiB in bits 20-63. */
#define VHDX_BAT_STATE_MASK 7
#define VHDX_BAT_OFF_MASK   UINT64_C(0xFFFFFFFFFFF00000)
#define VHDX_PB_NOT_PRESENT 0
#define VHDX_PB_UNDEFINED   1
#define VHDX_PB_ZERO        2
#define VHDX_PB_UNMAPPED    3
#define VHDX_PB_FULL        6
#define VHDX_PB_PARTIAL     7
#define VHDX_SB_PRESENT     6

/* Log. */
#define VHDX_LOG_SECTOR     4096
#define VHDX_LE_SIG         0    /* "loge" */
#define VHDX_LE_CRC         4    /* u32 over the whole entry */
#define VHDX_LE_LEN         8    /* u32 entry length, multiple of 4 KiB */
#define VHDX_LE_TAIL        12   /* u32 offset of the oldest live entry */
#define VHDX_LE_SEQ         16   /* u64 */
#define VHDX_LE_DESC_COUNT  24   /* u32 */
#define VHDX_LE_LOG_GUID    32   /* GUID */
#define VHDX_LE_FLUSHED     48   /* u64 file size that must exist */
#define VHDX_LE_LAST        56   /* u64 file size after replay */
#define VHDX_LE_HDR_SIZE    64
#define VHDX_LD_SIZE        32   /* descriptor */
#define VHDX_LD_SIG         0    /* "desc" or "zero" */
#define VHDX_LD_TRAILING    4    /* u32 (desc) */
#define VHDX_LD_LEADING     8    /* u64 (desc) / zero length (zero) */
#define VHDX_LD_FILE_OFF    16   /* u64 */
#define VHDX_LD_SEQ         24   /* u64 */
#define VHDX_DS_SIG         0    /* "data" */
#define VHDX_DS_SEQ_HIGH    4
#define VHDX_DS_DATA        8    /* 4084 bytes */
#define VHDX_DS_SEQ_LOW     4092

/* Hostile-input caps (each explained where it is used). */
#define VHDX_MAX_BLOCK      (256 * VHDX_MIB)
#define VHDX_MAX_SIZE       (UINT64_C(64) << 40)
#define VHDX_MAX_LOG        (256 * VHDX_MIB)
/* 64 TiB in 1 MiB blocks: 2^26 payload entries, and one sector bitmap
 * entry per 4096 (chunk ratio at 512-byte sectors) */
#define VHDX_MAX_BAT        ((UINT64_C(1) << 26) + (UINT64_C(1) << 14))

/* The log replayed in memory: writes laid over the file's bytes, in
 * replay order (later entries win). */
struct vhdx_ov_ent {
    uint64_t off, len;
    uint8_t *data;           /* len bytes, or NULL for zeros */
};
struct vhdx_overlay {
    struct vhdx_ov_ent *e;
    size_t n, cap;
    uint64_t lo, hi;         /* union of all ranges, for a fast miss */
    uint64_t last_file_off;  /* file size the log says exists after replay */
    uint64_t entries;        /* log entries replayed */
    uint64_t head_seq;
};

struct vhdx_state {
    uint8_t hdr[VHDX_HDR_SIZE];   /* the current header */
    int cur_hdr;                  /* 1 or 2 */
    uint64_t file_size;           /* logical: after log replay */
    uint64_t log_off, log_len;
    uint64_t bat_off, bat_len, meta_off, meta_len;
    uint64_t vsize_off;           /* file offset of the virtual size item */
    uint32_t block_size, lss, pss;
    bool leave_alloc, has_parent;
    uint8_t disk_id[16];
    uint64_t chunk_ratio, data_blocks, bat_entries;
    uint64_t *bat;
    struct vhdx_overlay ov;
    bool log_replayed;
    bool hdr_bad[2], rt_bad[2];
    /* writing */
    bool writing, dirty, hdr_dirty;
    uint64_t next_off;            /* where a new payload block goes */
    uint8_t ploc[4400];           /* parent locator item being created */
    uint32_t plen;
    /* FMT_F_PARALLEL_WRITE: BAT lookups and block allocation happen
     * under this lock, data is written outside it */
    pthread_mutex_t lock;
};

/* ---- vhdx.c, for vhdx-resize.c ---- */
void vhdx_random_guid(uint8_t *p);
/* Does [a, a+al) overlap [c, c+cl)? */
bool vhdx_overlap(uint64_t a, uint64_t al, uint64_t c, uint64_t cl);
/* BAT index of payload block i, and of the bitmap of its chunk. */
uint64_t vhdx_pb_index(const struct vhdx_state *s, uint64_t i);
uint64_t vhdx_sb_index(const struct vhdx_state *s, uint64_t i);
/* chunk_ratio, data_blocks, bat_entries of s for a disk of size bytes
 * (block_size, lss, has_parent set). */
void vhdx_geometry(struct vhdx_state *s, uint64_t size);
/* Write both headers with the next two sequence numbers.  0 / -1. */
int vhdx_update_headers(struct blk *b, struct vhdx_state *s,
                        vf_error **errp);
/* Write s->bat_entries entries of the BAT at s->bat_off.  0 / -1. */
int vhdx_write_bat(struct blk *b, struct vhdx_state *s, vf_error **errp);

/* ---- vhdx-resize.c ---- */
/* The driver's resize: fixed, dynamic and differencing. */
int vhdx_resize(struct blk *b, uint64_t new_size, vf_error **errp);

/* On-disk GUID bytes of "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
void vhdx_guid(const char *str, uint8_t out[16]);
bool vhdx_guid_is(const uint8_t *p, const char *str);

/* Replay the log of s (header already parsed) into s->ov.  0 / -1. */
int vhdx_log_replay(struct blk *b, struct vhdx_state *s, vf_error **errp);
/* Read the container through the overlay.  0 / -1. */
int vhdx_fread(struct blk *b, void *buf, size_t len, uint64_t off,
               vf_error **errp);
void vhdx_overlay_free(struct vhdx_overlay *ov);

static inline uint16_t vhdx_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t vhdx_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t vhdx_le64(const uint8_t *p)
{
    return vhdx_le32(p) | (uint64_t)vhdx_le32(p + 4) << 32;
}
static inline void vhdx_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vhdx_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void vhdx_put64(uint8_t *p, uint64_t v)
{
    vhdx_put32(p, (uint32_t)v);
    vhdx_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
