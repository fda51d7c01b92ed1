/*
 * vpc.c: VHD (qemu-img's "vpc"): fixed, dynamic and differencing disks.
 *
 * Spec: Microsoft "Virtual Hard Disk Image Format Specification", v1.0
 * (October 2006).  All fields big-endian.  Fixed disk = data + 512-byte
 * footer; dynamic/differencing = footer copy, dynamic header ("cxsparse"),
 * BAT of u32 sector numbers, blocks of (sector bitmap + data), footer.
 * Quirks follow what real images need: the size comes from currentSize
 * except for creators "vpc " and "qemu" (which meant CHS, as qemu reads
 * them); old 511-byte footers are accepted; a bad end footer falls back to
 * the copy at offset 0.  We write creator "qem2" so that every reader
 * takes the exact size from currentSize (qemu's force_size convention).
 */
#include "formats/format.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- on-disk layout: footer (512 bytes) ---- */
#define VHD_F_COOKIE      0    /* "conectix" */
#define VHD_F_FEATURES    8    /* u32, 2 = reserved bit always set */
#define VHD_F_VERSION     12   /* u32 0x00010000 */
#define VHD_F_DATA_OFF    16   /* u64 dynamic header offset, ~0 if fixed */
#define VHD_F_TIMESTAMP   24   /* u32 seconds since 2000-01-01 UTC */
#define VHD_F_CREATOR     28   /* 4 chars */
#define VHD_F_CREATOR_VER 32   /* u32 */
#define VHD_F_CREATOR_OS  36   /* 4 chars */
#define VHD_F_ORIG_SIZE   40   /* u64 bytes */
#define VHD_F_CUR_SIZE    48   /* u64 bytes */
#define VHD_F_CYLS        56   /* u16 */
#define VHD_F_HEADS       58   /* u8 */
#define VHD_F_SPT         59   /* u8 */
#define VHD_F_TYPE        60   /* u32: 2 fixed, 3 dynamic, 4 differencing */
#define VHD_F_CHECKSUM    64   /* u32 one's complement of the byte sum */
#define VHD_F_UUID        68   /* 16 bytes */
#define VHD_F_SAVED       84   /* u8 */
#define VHD_FOOTER_SIZE   512

/* ---- dynamic header (1024 bytes) ---- */
#define VHD_D_COOKIE      0    /* "cxsparse" */
#define VHD_D_DATA_OFF    8    /* u64 ~0 */
#define VHD_D_TABLE_OFF   16   /* u64 BAT offset */
#define VHD_D_VERSION     24   /* u32 0x00010000 */
#define VHD_D_MAX_ENTRIES 28   /* u32 BAT entries */
#define VHD_D_BLOCK_SIZE  32   /* u32 bytes */
#define VHD_D_CHECKSUM    36   /* u32 */
#define VHD_D_PARENT_UUID 40   /* 16 bytes */
#define VHD_D_PARENT_TIME 56   /* u32 */
#define VHD_D_PARENT_NAME 64   /* 512 bytes UTF-16BE */
#define VHD_D_LOCATORS    576  /* 8 x 24 bytes */
#define VHD_DYN_SIZE      1024
#define VHD_LOC_CODE      0    /* u32 platform code */
#define VHD_LOC_SPACE     4    /* u32 sectors (some writers: bytes) */
#define VHD_LOC_LEN       8    /* u32 bytes */
#define VHD_LOC_OFF       16   /* u64 file offset */
#define VHD_LOC_SIZE      24

#define VHD_TYPE_FIXED    2
#define VHD_TYPE_DYNAMIC  3
#define VHD_TYPE_DIFF     4

#define VHD_PLAT_W2RU     0x57327275u  /* relative path, UTF-16LE */
#define VHD_PLAT_W2KU     0x57326b75u  /* absolute path, UTF-16LE */
#define VHD_PLAT_MACX     0x4d616358u  /* file URL, UTF-8 */

#define VHD_BAT_FREE      0xffffffffu
#define VHD_EPOCH         946684800    /* 2000-01-01 UTC in Unix time */

/* Caps on values read from the file (hostile input). */
/* Real writers use 512 KiB..2 MiB blocks; 256 MiB bounds a sector bitmap
 * at 64 KiB and one block read at a sane size. */
#define VHD_MAX_BLOCK     (256u << 20)
/* The BAT is read whole: 2^28 entries (1 GiB) is far past any real disk
 * (2040 GiB / 2 MiB = 1M entries) and the BAT must lie in the file. */
#define VHD_MAX_ENTRIES   (1u << 28)
/* A parent locator holds one path: 64 KiB is 32K UTF-16 units, the
 * Windows long-path maximum. */
#define VHD_MAX_LOCATOR   65536
/* What we create: qemu's limit for dynamic disks (VHD_MAX_SECTORS) and
 * Azure's upload maximum for fixed ones. */
#define VHD_MAX_DYN_SIZE  (UINT64_C(0xff000000) * 512)
#define VHD_MAX_FIXED     (UINT64_C(32) << 40)

struct vpc_state {
    uint8_t footer[VHD_FOOTER_SIZE];   /* the footer in use */
    uint8_t dyn[VHD_DYN_SIZE];
    uint32_t type;
    bool footer_from_copy;             /* end footer bad, copy at 0 used */
    bool footer_511;                   /* old 511-byte footer */
    uint64_t file_size;
    /* dynamic and differencing */
    uint64_t bat_off;
    uint32_t entries;
    uint32_t block_size;
    uint32_t bitmap_size;              /* bytes, multiple of 512 */
    uint32_t *bat;                     /* host order */
    uint64_t bat_space;                /* bytes reserved for the BAT */
    /* writing */
    bool writing;
    bool dirty;
    /* Writes run in parallel (FMT_F_PARALLEL_WRITE): fixed disks need no
     * lock; dynamic ones take alloc_lock to look up or allocate a block. */
    pthread_mutex_t alloc_lock;
    uint64_t next_block;               /* where a new block goes */
};

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
static void put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* One's complement of the byte sum, the checksum field counted as 0. */
static uint32_t vpc_checksum(const uint8_t *p, size_t len, size_t ck_off)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < ck_off || i >= ck_off + 4)
            sum += p[i];
    return ~sum;
}

static bool vpc_footer_valid(const uint8_t *f)
{
    return !memcmp(f + VHD_F_COOKIE, "conectix", 8) &&
           be32(f + VHD_F_CHECKSUM) == vpc_checksum(f, VHD_FOOTER_SIZE,
                                                     VHD_F_CHECKSUM);
}

static int vpc_probe(const struct probe_data *d)
{
    if (d->head_len >= 8 && !memcmp(d->head, "conectix", 8))
        return 100;
    /* fixed disks: the footer is the last 512 (or, old tools, 511) bytes */
    if (d->tail_len >= 512 && !memcmp(d->tail, "conectix", 8))
        return 100;
    if (d->tail_len >= 511 && !memcmp(d->tail + d->tail_len - 511,
                                      "conectix", 8))
        return 90;
    return 0;
}

/* CHS per the spec's appendix; rounds down.  *sectors gets C*H*S. */
static void vpc_chs(uint64_t size, uint16_t *cyls, uint8_t *heads,
                    uint8_t *spt)
{
    uint64_t total = size / 512, cth;
    uint32_t s, h;
    if (total > 65535ull * 16 * 255)
        total = 65535ull * 16 * 255;
    if (total >= 65535ull * 16 * 63) {
        s = 255;
        h = 16;
        cth = total / s;
    } else {
        s = 17;
        cth = total / s;
        h = (uint32_t)((cth + 1023) / 1024);
        if (h < 4)
            h = 4;
        if (cth >= h * 1024ull || h > 16) {
            s = 31;
            h = 16;
            cth = total / s;
        }
        if (cth >= h * 1024ull) {
            s = 63;
            h = 16;
            cth = total / s;
        }
    }
    uint64_t c = cth / h;
    *cyls = c > 65535 ? 65535 : (uint16_t)c;
    *heads = (uint8_t)h;
    *spt = (uint8_t)s;
}

static uint32_t vpc_now(void)
{
    time_t t = time(NULL);
    return t > VHD_EPOCH ? (uint32_t)(t - VHD_EPOCH) : 0;
}

static void vpc_random(uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    for (; got < n; got++)       /* no entropy: still unique enough */
        p[got] = (uint8_t)(rand() ^ (int)getpid());
    p[6] = (p[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
    p[8] = (p[8] & 0x3f) | 0x80;
}

/* ---- opening ---- */

static int vpc_read_footer(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint8_t end[VHD_FOOTER_SIZE], copy[VHD_FOOTER_SIZE];
    int64_t fs = io_size(b->file, errp);
    if (fs < 0)
        return -1;
    s->file_size = (uint64_t)fs;
    if (s->file_size < 511) {
        error_setg(errp, "file of %" PRIu64 " bytes too small for a VHD "
                   "footer", s->file_size);
        return -1;
    }
    memset(end, 0, sizeof(end));
    memset(copy, 0, sizeof(copy));
    if (s->file_size >= 512 &&
        io_pread(b->file, end, 512, s->file_size - 512, errp) < 0)
        return -1;
    if (memcmp(end, "conectix", 8)) {
        uint8_t e511[VHD_FOOTER_SIZE] = { 0 };
        if (io_pread(b->file, e511, 511, s->file_size - 511, errp) < 0)
            return -1;
        if (!memcmp(e511, "conectix", 8)) {
            memcpy(end, e511, sizeof(end));
            s->footer_511 = true;
        }
    }
    if (io_pread(b->file, copy, 512, 0, errp) < 0)
        return -1;
    if (vpc_footer_valid(end)) {
        memcpy(s->footer, end, sizeof(end));
        return 0;
    }
    /* the copy at 0 stands in for a damaged end footer (spec 3.1) */
    if (vpc_footer_valid(copy) && be32(copy + VHD_F_TYPE) != VHD_TYPE_FIXED) {
        memcpy(s->footer, copy, sizeof(copy));
        s->footer_from_copy = true;
        return 0;
    }
    const uint8_t *f = !memcmp(end, "conectix", 8) ? end : copy;
    if (memcmp(f, "conectix", 8)) {
        error_setg(errp, "no VHD footer: no 'conectix' cookie in the last "
                   "512 bytes or at offset 0");
        return -1;
    }
    error_setg(errp, "VHD footer checksum 0x%08" PRIx32 " does not match "
               "the computed 0x%08" PRIx32, be32(f + VHD_F_CHECKSUM),
               vpc_checksum(f, VHD_FOOTER_SIZE, VHD_F_CHECKSUM));
    return -1;
}

/* UTF-16 (le or be) to UTF-8, backslashes to slashes; malloc'd. */
static char *vpc_utf16_to_path(const uint8_t *p, size_t len, bool le)
{
    char *out = malloc(len / 2 * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t c = le ? (uint32_t)(p[i] | p[i + 1] << 8)
                        : (uint32_t)(p[i] << 8 | p[i + 1]);
        if (c == 0)
            break;
        if (c >= 0xd800 && c < 0xe000)
            c = '?';                 /* surrogates: not in sane paths */
        if (c == '\\')
            c = '/';
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = 0;
    return out;
}

/* Read parent locator i as a POSIX path, or NULL (not a path entry). */
static char *vpc_locator_path(struct blk *b, int i, uint32_t *code,
                              vf_error **errp)
{
    struct vpc_state *s = b->state;
    const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOC_SIZE;
    *code = be32(l + VHD_LOC_CODE);
    uint32_t len = be32(l + VHD_LOC_LEN);
    uint64_t off = be64(l + VHD_LOC_OFF);
    if (*code != VHD_PLAT_W2RU && *code != VHD_PLAT_W2KU &&
        *code != VHD_PLAT_MACX)
        return NULL;
    if (len == 0 || len > VHD_MAX_LOCATOR) {
        error_setg(errp, "parent locator %d length %" PRIu32 " out of range",
                   i, len);
        return NULL;
    }
    if (off > s->file_size || len > s->file_size - off) {
        error_setg(errp, "parent locator %d at 0x%" PRIx64 " beyond end of "
                   "file", i, off);
        return NULL;
    }
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    char *path = NULL;
    if (io_pread(b->file, buf, len, off, errp) < 0)
        goto out;
    if (*code == VHD_PLAT_MACX) {
        buf[len] = 0;
        const char *p = (const char *)buf;
        if (!strncmp(p, "file://", 7))
            p += 7;
        path = strdup(p);
    } else {
        path = vpc_utf16_to_path(buf, len, true);
    }
    if (!path)
        error_setg(errp, "out of memory");
out:
    free(buf);
    return path;
}

static bool vpc_path_exists(struct blk *b, const char *p)
{
    char *r = blk_resolve_name(b, p, NULL);
    bool ok = r && access(r, R_OK) == 0;
    free(r);
    return ok;
}

/* Pick the parent path: relative locators first, then absolute ones,
 * then the UTF-16 parent name; the first that exists wins, else the first
 * candidate (so the core names it in its error). */
static int vpc_find_parent(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    static const uint32_t order[] = { VHD_PLAT_W2RU, VHD_PLAT_MACX,
                                      VHD_PLAT_W2KU };
    char *first = NULL, *chosen = NULL;
    for (size_t o = 0; o < 3 && !chosen; o++) {
        for (int i = 0; i < 8 && !chosen; i++) {
            uint32_t code;
            vf_error *e = NULL;
            const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOC_SIZE;
            if (be32(l + VHD_LOC_CODE) != order[o])
                continue;
            char *p = vpc_locator_path(b, i, &code, &e);
            if (!p) {
                error_propagate(errp, e);
                free(first);
                return -1;
            }
            char *q = p;
            if (q[0] == '.' && q[1] == '/')
                q += 2;
            /* "C:/dir/x.vhd": a Windows absolute path, meaningless here */
            bool drive = q[0] && q[1] == ':';
            if (drive && !b->oopts.allow_backing_path) {
                if (!first && asprintf(&first, "/%s", q) < 0)
                    first = NULL;
            } else if (!drive && vpc_path_exists(b, q)) {
                chosen = strdup(q);
            } else if (!first) {
                first = strdup(q);
            }
            free(p);
        }
    }
    if (!chosen && !first) {
        char *n = vpc_utf16_to_path(s->dyn + VHD_D_PARENT_NAME, 512, false);
        if (n && *n)
            first = n;
        else
            free(n);
    }
    if (!chosen)
        chosen = first;
    else
        free(first);
    if (!chosen) {
        error_setg(errp, "differencing VHD without a usable parent locator");
        return -1;
    }
    b->backing_name = chosen;
    b->backing_fmt = strdup("vpc");
    if (!b->backing_fmt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    return 0;
}

static int vpc_open_dynamic(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t doff = be64(s->footer + VHD_F_DATA_OFF);
    if (doff > s->file_size || VHD_DYN_SIZE > s->file_size - doff) {
        error_setg(errp, "VHD dynamic header offset 0x%" PRIx64
                   " beyond end of file", doff);
        return -1;
    }
    if (io_pread(b->file, s->dyn, VHD_DYN_SIZE, doff, errp) < 0)
        return -1;
    if (memcmp(s->dyn, "cxsparse", 8)) {
        error_setg(errp, "VHD dynamic header at 0x%" PRIx64 " lacks its "
                   "'cxsparse' cookie", doff);
        return -1;
    }
    uint32_t ck = vpc_checksum(s->dyn, VHD_DYN_SIZE, VHD_D_CHECKSUM);
    if (be32(s->dyn + VHD_D_CHECKSUM) != ck) {
        error_setg(errp, "VHD dynamic header checksum 0x%08" PRIx32
                   " does not match the computed 0x%08" PRIx32,
                   be32(s->dyn + VHD_D_CHECKSUM), ck);
        return -1;
    }
    s->block_size = be32(s->dyn + VHD_D_BLOCK_SIZE);
    if (s->block_size < 512 || s->block_size > VHD_MAX_BLOCK ||
        (s->block_size & (s->block_size - 1))) {
        error_setg(errp, "VHD block size %" PRIu32 " out of range (a power "
                   "of two, 512 B to 256 MiB)", s->block_size);
        return -1;
    }
    b->cluster_size = s->block_size;
    s->bitmap_size = ((s->block_size / 512 + 7) / 8 + 511) & ~511u;
    s->entries = be32(s->dyn + VHD_D_MAX_ENTRIES);
    s->bat_off = be64(s->dyn + VHD_D_TABLE_OFF);
    if (s->entries > VHD_MAX_ENTRIES) {
        error_setg(errp, "VHD BAT of %" PRIu32 " entries too large",
                   s->entries);
        return -1;
    }
    if ((uint64_t)s->entries * s->block_size < b->size) {
        error_setg(errp, "VHD BAT of %" PRIu32 " entries does not cover the "
                   "virtual size %" PRIu64, s->entries, b->size);
        return -1;
    }
    uint64_t bat_bytes = (uint64_t)s->entries * 4;
    if (s->bat_off > s->file_size || bat_bytes > s->file_size - s->bat_off) {
        error_setg(errp, "VHD BAT at 0x%" PRIx64 " (%" PRIu32 " entries) "
                   "beyond end of file", s->bat_off, s->entries);
        return -1;
    }
    s->bat_space = (bat_bytes + 511) & ~UINT64_C(511);
    s->bat = malloc(bat_bytes ? bat_bytes : 1);
    if (!s->bat) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(b->file, s->bat, bat_bytes, s->bat_off, errp) < 0)
        return -1;
    /* a block must lie before the end footer */
    uint64_t data_end = s->file_size - (s->footer_511 ? 511 : 512);
    if (s->footer_from_copy)
        data_end = s->file_size;
    /* new blocks go where the footer is now (on a sector boundary: the
     * BAT counts sectors, and old 511-byte footers end one byte short) */
    s->next_block = (data_end + 511) & ~UINT64_C(511);
    for (uint32_t i = 0; i < s->entries; i++) {
        uint32_t e = be32((const uint8_t *)&s->bat[i]);
        s->bat[i] = e;
        if (e == VHD_BAT_FREE)
            continue;
        uint64_t off = (uint64_t)e * 512;
        /* the last block may be cut short where the disk ends */
        uint64_t need = s->bitmap_size;
        uint64_t gstart = (uint64_t)i * s->block_size;
        if (gstart < b->size)
            need += b->size - gstart < s->block_size ? b->size - gstart
                                                     : s->block_size;
        if (off > data_end || need > data_end - off) {
            error_setg(errp, "VHD BAT entry %" PRIu32 " (sector 0x%" PRIx32
                       ") beyond end of file", i, e);
            return -1;
        }
        /* a short last block still owns its whole span: nothing new may
         * go into its tail, which a resize can make visible */
        uint64_t span_end = off + s->bitmap_size + s->block_size;
        if (span_end > s->next_block)
            s->next_block = (span_end + 511) & ~UINT64_C(511);
    }
    if (s->type == VHD_TYPE_DIFF)
        return vpc_find_parent(b, errp);
    return 0;
}

static int vpc_open(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    pthread_mutex_init(&s->alloc_lock, NULL);
    if (vpc_read_footer(b, errp) < 0)
        return -1;
    const uint8_t *f = s->footer;
    s->type = be32(f + VHD_F_TYPE);
    if (s->type != VHD_TYPE_FIXED && s->type != VHD_TYPE_DYNAMIC &&
        s->type != VHD_TYPE_DIFF) {
        error_setg(errp, "VHD disk type %" PRIu32 " not supported", s->type);
        return -1;
    }
    b->size = be64(f + VHD_F_CUR_SIZE);
    /* Virtual PC and qemu without force_size meant the CHS size */
    if (!memcmp(f + VHD_F_CREATOR, "vpc ", 4) ||
        !memcmp(f + VHD_F_CREATOR, "qemu", 4)) {
        uint64_t chs = (uint64_t)be16(f + VHD_F_CYLS) * f[VHD_F_HEADS] *
                       f[VHD_F_SPT];
        if (chs != 65535ull * 16 * 255)
            b->size = chs * 512;
    }
    if (s->type == VHD_TYPE_FIXED) {
        uint64_t data = s->file_size - (s->footer_511 ? 511 : 512);
        if (b->size > data) {
            error_setg(errp, "VHD virtual size %" PRIu64 " larger than the "
                       "%" PRIu64 " bytes of data in the file", b->size,
                       data);
            return -1;
        }
        return 0;
    }
    return vpc_open_dynamic(b, errp);
}

static void vpc_close(struct blk *b)
{
    struct vpc_state *s = b->state;
    pthread_mutex_destroy(&s->alloc_lock);
    free(s->bat);
    s->bat = NULL;
}

/* ---- reading ---- */

/* Is sector bit `sec` of a block's bitmap set? */
static bool vpc_bit(const uint8_t *bm, uint64_t sec)
{
    return bm[sec / 8] & (0x80 >> (sec % 8));
}

/* Status of [off, off+len) inside one block: BLK_DATA / BLK_UNALLOC with
 * *n bytes holding it.  bm is the block's bitmap (differencing) or NULL. */
static int vpc_block_state(struct vpc_state *s, uint64_t off, uint64_t len,
                           const uint8_t *bm, uint64_t *n)
{
    uint32_t idx = (uint32_t)(off / s->block_size);
    uint64_t in = off % s->block_size;
    uint64_t room = s->block_size - in;
    if (room > len)
        room = len;
    if (s->bat[idx] == VHD_BAT_FREE) {
        *n = room;
        return BLK_UNALLOC;
    }
    if (!bm) {
        *n = room;
        return BLK_DATA;
    }
    uint64_t sec = in / 512;
    bool set = vpc_bit(bm, sec);
    uint64_t end = (in + room + 511) / 512;
    uint64_t e = sec + 1;
    while (e < end && vpc_bit(bm, e) == set)
        e++;
    uint64_t stop = e * 512 - in;
    *n = stop < room ? stop : room;
    return set ? BLK_DATA : BLK_UNALLOC;
}

static int vpc_read_bitmap(struct blk *b, uint32_t idx, uint8_t *bm,
                           vf_error **errp)
{
    struct vpc_state *s = b->state;
    return io_pread(b->file, bm, s->bitmap_size,
                    (uint64_t)s->bat[idx] * 512, errp);
}

static int vpc_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                     vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint8_t *p = buf;
    if (s->type == VHD_TYPE_FIXED)
        return io_pread(b->file, buf, len, off, errp);
    uint8_t *bm = NULL;
    if (s->type == VHD_TYPE_DIFF) {
        bm = malloc(s->bitmap_size);
        if (!bm) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    int ret = -1;
    uint32_t bm_idx = UINT32_MAX;
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        if (bm && s->bat[idx] != VHD_BAT_FREE && bm_idx != idx) {
            if (vpc_read_bitmap(b, idx, bm, errp) < 0)
                goto out;
            bm_idx = idx;
        }
        uint64_t n;
        int st = vpc_block_state(s, off, len, bm, &n);
        if (st == BLK_DATA) {
            uint64_t host = (uint64_t)s->bat[idx] * 512 + s->bitmap_size +
                            off % s->block_size;
            if (io_pread(b->file, p, n, host, errp) < 0)
                goto out;
        } else if (blk_read_backing(b, p, off, n, errp) < 0) {
            goto out;
        }
        p += n;
        off += n;
        len -= n;
    }
    ret = 0;
out:
    free(bm);
    return ret;
}

static int vpc_block_status(struct blk *b, uint64_t off, uint64_t len,
                            uint64_t *pnum, uint64_t *host_off,
                            vf_error **errp)
{
    struct vpc_state *s = b->state;
    if (s->type == VHD_TYPE_FIXED) {
        *pnum = len;
        *host_off = off;
        return BLK_DATA;
    }
    uint8_t *bm = NULL;
    int first = -1;
    uint64_t done = 0;
    uint64_t first_host = UINT64_MAX;
    /* merge consecutive blocks of the same status */
    while (done < len) {
        uint64_t o = off + done;
        uint32_t idx = (uint32_t)(o / s->block_size);
        if (s->type == VHD_TYPE_DIFF && s->bat[idx] != VHD_BAT_FREE) {
            if (!bm && !(bm = malloc(s->bitmap_size))) {
                error_setg(errp, "out of memory");
                return -1;
            }
            if (vpc_read_bitmap(b, idx, bm, errp) < 0) {
                free(bm);
                return -1;
            }
        }
        uint64_t n;
        int st = vpc_block_state(s, o, len - done,
                                 s->type == VHD_TYPE_DIFF ? bm : NULL, &n);
        if (first < 0) {
            first = st;
            if (st == BLK_DATA)
                first_host = (uint64_t)s->bat[idx] * 512 + s->bitmap_size +
                             o % s->block_size;
        } else if (st != first) {
            break;
        }
        done += n;
        /* stop at a partial block of a differencing disk */
        if (s->type == VHD_TYPE_DIFF && (o + n) % s->block_size)
            break;
        /* data is contiguous only inside one block */
        if (first == BLK_DATA)
            break;
    }
    free(bm);
    *pnum = done;
    *host_off = first_host;
    return first;
}

/* ---- writing ---- */

static void vpc_footer_finish(uint8_t *f)
{
    put_be32(f + VHD_F_CHECKSUM, vpc_checksum(f, VHD_FOOTER_SIZE,
                                              VHD_F_CHECKSUM));
}

static void vpc_footer_set_size(uint8_t *f, uint64_t size)
{
    uint16_t c;
    uint8_t h, spt;
    vpc_chs(size, &c, &h, &spt);
    put_be64(f + VHD_F_ORIG_SIZE, size);
    put_be64(f + VHD_F_CUR_SIZE, size);
    put_be16(f + VHD_F_CYLS, c);
    f[VHD_F_HEADS] = h;
    f[VHD_F_SPT] = spt;
}

static void vpc_footer_init(uint8_t *f, uint32_t type, uint64_t size,
                            uint64_t data_off)
{
    memset(f, 0, VHD_FOOTER_SIZE);
    memcpy(f + VHD_F_COOKIE, "conectix", 8);
    put_be32(f + VHD_F_FEATURES, 2);
    put_be32(f + VHD_F_VERSION, 0x00010000);
    put_be64(f + VHD_F_DATA_OFF, data_off);
    put_be32(f + VHD_F_TIMESTAMP, vpc_now());
    /* "qem2": readers take currentSize, not CHS (qemu's force_size) */
    memcpy(f + VHD_F_CREATOR, "qem2", 4);
    put_be32(f + VHD_F_CREATOR_VER, 0x00050003);
    memcpy(f + VHD_F_CREATOR_OS, "Wi2k", 4);
    vpc_footer_set_size(f, size);
    put_be32(f + VHD_F_TYPE, type);
    vpc_random(f + VHD_F_UUID, 16);
}

/* Write the in-memory BAT over its whole reserved space (entries past
 * s->entries read 0xff: unused). */
static int vpc_write_bat(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint8_t *bat = malloc(s->bat_space ? s->bat_space : 1);
    if (!bat) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(bat, 0xff, s->bat_space);
    for (uint32_t i = 0; i < s->entries; i++)
        put_be32(bat + 4 * (size_t)i, s->bat[i]);
    int r = io_pwrite(b->file, bat, s->bat_space, s->bat_off, errp);
    free(bat);
    return r;
}

static int vpc_write_dyn(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    put_be32(s->dyn + VHD_D_CHECKSUM,
             vpc_checksum(s->dyn, VHD_DYN_SIZE, VHD_D_CHECKSUM));
    return io_pwrite(b->file, s->dyn, VHD_DYN_SIZE,
                     be64(s->footer + VHD_F_DATA_OFF), errp);
}

/* The footer copy at 0 and the footer at next_block, which ends the
 * file. */
static int vpc_write_footers(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    vpc_footer_finish(s->footer);
    if (io_pwrite(b->file, s->footer, VHD_FOOTER_SIZE, 0, errp) < 0 ||
        io_pwrite(b->file, s->footer, VHD_FOOTER_SIZE, s->next_block,
                  errp) < 0 ||
        io_truncate(b->file, s->next_block + VHD_FOOTER_SIZE, errp) < 0)
        return -1;
    s->file_size = s->next_block + VHD_FOOTER_SIZE;
    return 0;
}

/* Write the BAT, the dynamic header and both footers. */
static int vpc_flush(struct blk *b, vf_error **errp)
{
    struct vpc_state *s = b->state;
    if (!s->writing || !s->dirty)
        return 0;
    vpc_footer_finish(s->footer);
    if (s->type == VHD_TYPE_FIXED) {
        if (io_pwrite(b->file, s->footer, VHD_FOOTER_SIZE, b->size,
                      errp) < 0)
            return -1;
        s->dirty = false;
        return 0;
    }
    if (vpc_write_bat(b, errp) < 0 || vpc_write_dyn(b, errp) < 0 ||
        vpc_write_footers(b, errp) < 0)
        return -1;
    s->dirty = false;
    return 0;
}

/* UTF-8 to UTF-16 (le or be), slashes to backslashes when win; returns
 * bytes written to out (cap bytes). */
static size_t vpc_to_utf16(const char *in, uint8_t *out, size_t cap, bool le,
                           bool win)
{
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)in;
    while (*p && o + 2 <= cap) {
        uint32_t c = *p++;
        if (c >= 0xe0 && p[0] && p[1]) {
            c = (c & 0x0f) << 12 | (uint32_t)(p[0] & 0x3f) << 6 | (p[1] & 0x3f);
            p += 2;
        } else if (c >= 0xc0 && p[0]) {
            c = (c & 0x1f) << 6 | (p[0] & 0x3f);
            p += 1;
        } else if (c >= 0x80) {
            c = '?';
        }
        if (win && c == '/')
            c = '\\';
        out[o + (le ? 0 : 1)] = (uint8_t)c;
        out[o + (le ? 1 : 0)] = (uint8_t)(c >> 8);
        o += 2;
    }
    return o;
}

static int vpc_create_parent(struct blk *b, const struct fmt_create_opts *o,
                             vf_error **errp)
{
    struct vpc_state *s = b->state;
    struct blk *p = b->backing;
    if (p->drv != b->drv) {
        error_setg(errp, "a differencing VHD needs a VHD parent, not %s",
                   p->drv->name);
        return -1;
    }
    struct vpc_state *ps = p->state;
    memcpy(s->dyn + VHD_D_PARENT_UUID, ps->footer + VHD_F_UUID, 16);
    put_be32(s->dyn + VHD_D_PARENT_TIME,
             be32(ps->footer + VHD_F_TIMESTAMP));
    const char *name = strrchr(o->backing_file, '/');
    name = name ? name + 1 : o->backing_file;
    vpc_to_utf16(name, s->dyn + VHD_D_PARENT_NAME, 510, false, false);
    /* one W2ru locator: the relative path as given, Windows-style */
    uint8_t loc[1024];
    char *rel = NULL;
    if (o->backing_file[0] == '/' || !strncmp(o->backing_file, "./", 2))
        rel = strdup(o->backing_file);
    else if (asprintf(&rel, "./%s", o->backing_file) < 0)
        rel = NULL;
    if (!rel) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(loc, 0, sizeof(loc));
    size_t n = vpc_to_utf16(rel, loc, sizeof(loc), true, true);
    free(rel);
    uint8_t *l = s->dyn + VHD_D_LOCATORS;
    put_be32(l + VHD_LOC_CODE, VHD_PLAT_W2RU);
    put_be32(l + VHD_LOC_SPACE, sizeof(loc) / 512);
    put_be32(l + VHD_LOC_LEN, (uint32_t)n);
    put_be64(l + VHD_LOC_OFF, s->next_block);
    if (io_pwrite(b->file, loc, sizeof(loc), s->next_block, errp) < 0)
        return -1;
    s->next_block += sizeof(loc);
    return 0;
}

static int vpc_create(struct blk *b, const struct fmt_create_opts *o,
                      vf_error **errp)
{
    struct vpc_state *s = b->state;
    pthread_mutex_init(&s->alloc_lock, NULL);
    const char *sub = opts_get(o->o, "subformat");
    const char *align = opts_get(o->o, "align");
    bool azure = false, force = true;
    uint64_t bs = 2 << 20;
    bool have_bs = false;
    if (opts_get_bool(o->o, "azure", &azure, errp) < 0 ||
        opts_get_bool(o->o, "force_size", &force, errp) < 0 ||
        opts_get_size(o->o, "block_size", &bs, &have_bs, errp) < 0)
        return -1;
    (void)force;   /* the exact size is always kept (creator "qem2") */
    bool fixed = false;
    if (sub && !strcmp(sub, "fixed"))
        fixed = true;
    else if (sub && strcmp(sub, "dynamic")) {
        error_setg(errp, "invalid subformat '%s' (fixed or dynamic)", sub);
        return -1;
    }
    if (align && strcmp(align, "strict") && strcmp(align, "round")) {
        error_setg(errp, "invalid align '%s' (strict or round)", align);
        return -1;
    }
    uint64_t size = o->size;
    if (azure) {
        if (sub && !fixed) {
            error_setg(errp, "Azure takes fixed VHDs only, not subformat=%s",
                       sub);
            return -1;
        }
        if (o->backing_file) {
            error_setg(errp, "Azure takes fixed VHDs only, not differencing");
            return -1;
        }
        fixed = true;
        if (size % (1 << 20)) {
            if (align && !strcmp(align, "strict")) {
                error_setg(errp, "virtual size %" PRIu64 " is not a whole "
                           "number of MiB, which Azure requires "
                           "(align=strict refuses to round up)", size);
                return -1;
            }
            size = (size + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
        }
        if (size < (20u << 20)) {
            error_setg(errp, "virtual size %" PRIu64 " below Azure's minimum "
                       "of 20 MiB", size);
            return -1;
        }
    }
    /* VHD addresses 512-byte sectors */
    size = (size + 511) & ~UINT64_C(511);
    if (o->backing_file && fixed) {
        error_setg(errp, "a fixed VHD cannot have a parent");
        return -1;
    }
    if (fixed && have_bs) {
        error_setg(errp, "block_size applies to dynamic VHDs only");
        return -1;
    }
    if (fixed ? size > VHD_MAX_FIXED : size > VHD_MAX_DYN_SIZE) {
        error_setg(errp, "virtual size %" PRIu64 " too large for a %s VHD "
                   "(max %" PRIu64 ")", size, fixed ? "fixed" : "dynamic",
                   fixed ? VHD_MAX_FIXED : VHD_MAX_DYN_SIZE);
        return -1;
    }
    s->writing = true;
    s->dirty = true;
    b->size = size;
    b->zero_init = !o->backing_file;
    if (fixed) {
        s->type = VHD_TYPE_FIXED;
        vpc_footer_init(s->footer, VHD_TYPE_FIXED, size, UINT64_MAX);
        if (io_truncate(b->file, size + VHD_FOOTER_SIZE, errp) < 0)
            return -1;
        return vpc_flush(b, errp);
    }
    if (bs < (512u << 10) || bs > VHD_MAX_BLOCK || (bs & (bs - 1))) {
        error_setg(errp, "block_size %" PRIu64 " invalid (a power of two, "
                   "512 KiB to 256 MiB)", bs);
        return -1;
    }
    s->type = o->backing_file ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
    s->block_size = (uint32_t)bs;
    b->cluster_size = s->block_size;
    s->bitmap_size = ((s->block_size / 512 + 7) / 8 + 511) & ~511u;
    s->entries = (uint32_t)((size + bs - 1) / bs);
    /* exactly as many entries as the size needs: Azure rejects more */
    s->bat_off = VHD_FOOTER_SIZE + VHD_DYN_SIZE;
    s->bat_space = ((uint64_t)s->entries * 4 + 511) & ~UINT64_C(511);
    s->next_block = s->bat_off + s->bat_space;
    s->bat = malloc((size_t)s->entries * 4 + 4);
    if (!s->bat) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(s->bat, 0xff, (size_t)s->entries * 4);
    vpc_footer_init(s->footer, s->type, size, VHD_FOOTER_SIZE);
    memset(s->dyn, 0, sizeof(s->dyn));
    memcpy(s->dyn + VHD_D_COOKIE, "cxsparse", 8);
    put_be64(s->dyn + VHD_D_DATA_OFF, UINT64_MAX);
    put_be64(s->dyn + VHD_D_TABLE_OFF, s->bat_off);
    put_be32(s->dyn + VHD_D_VERSION, 0x00010000);
    put_be32(s->dyn + VHD_D_MAX_ENTRIES, s->entries);
    put_be32(s->dyn + VHD_D_BLOCK_SIZE, s->block_size);
    if (o->backing_file && vpc_create_parent(b, o, errp) < 0)
        return -1;
    return vpc_flush(b, errp);
}

/* Allocate block idx at the end of the file: bitmap all set, data taken
 * from the parent (differencing) or zeros. */
static int vpc_alloc_block(struct blk *b, uint32_t idx, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t off = s->next_block;
    if (off / 512 >= VHD_BAT_FREE) {
        error_setg(errp, "VHD file too large for a new block");
        return -1;
    }
    uint8_t *bm = malloc(s->bitmap_size);
    if (!bm) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(bm, 0xff, s->bitmap_size);
    int r = io_pwrite(b->file, bm, s->bitmap_size, off, errp);
    free(bm);
    if (r < 0)
        return -1;
    if (b->backing) {
        /* copy the parent's block so the whole block is ours */
        uint64_t g = (uint64_t)idx * s->block_size;
        uint64_t n = b->size - g < s->block_size ? b->size - g : s->block_size;
        uint8_t *buf = malloc(n);
        if (!buf) {
            error_setg(errp, "out of memory");
            return -1;
        }
        r = blk_read_backing(b, buf, g, n, errp);
        if (r == 0)
            r = io_pwrite(b->file, buf, n, off + s->bitmap_size, errp);
        free(buf);
        if (r < 0)
            return -1;
    }
    if (io_truncate(b->file, off + s->bitmap_size + s->block_size +
                    VHD_FOOTER_SIZE, errp) < 0)
        return -1;
    s->bat[idx] = (uint32_t)(off / 512);
    s->next_block = off + s->bitmap_size + s->block_size;
    s->dirty = true;
    return 0;
}

static int vpc_pwrite(struct blk *b, const void *buf, uint64_t off,
                      size_t len, vf_error **errp)
{
    struct vpc_state *s = b->state;
    const uint8_t *p = buf;
    if (s->type == VHD_TYPE_FIXED)
        return io_pwrite(b->file, buf, len, off, errp);
    while (len) {
        uint32_t idx = (uint32_t)(off / s->block_size);
        uint64_t in = off % s->block_size;
        size_t n = s->block_size - in < len ? (size_t)(s->block_size - in)
                                            : len;
        pthread_mutex_lock(&s->alloc_lock);
        if (s->bat[idx] == VHD_BAT_FREE && vpc_alloc_block(b, idx, errp) < 0) {
            pthread_mutex_unlock(&s->alloc_lock);
            return -1;
        }
        uint64_t host = (uint64_t)s->bat[idx] * 512 + s->bitmap_size + in;
        pthread_mutex_unlock(&s->alloc_lock);
        if (io_pwrite(b->file, p, n, host, errp) < 0)
            return -1;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vpc_zero(struct blk *b, uint64_t off, uint64_t len,
                    vf_error **errp)
{
    struct vpc_state *s = b->state;
    while (len) {
        uint64_t n = len;
        if (s->type != VHD_TYPE_FIXED) {
            uint32_t idx = (uint32_t)(off / s->block_size);
            uint64_t room = s->block_size - off % s->block_size;
            if (n > room)
                n = room;
            /* unallocated without a parent already reads as zeros */
            pthread_mutex_lock(&s->alloc_lock);
            bool skip = s->bat[idx] == VHD_BAT_FREE && !b->backing;
            pthread_mutex_unlock(&s->alloc_lock);
            if (skip) {
                off += n;
                len -= n;
                continue;
            }
        }
        if (blk_write_zeros(b, off, n, errp) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

/* ---- check, info, measure, resize ---- */

static int vpc_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int vpc_check(struct blk *b, struct check_report *r, vf_error **errp)
{
    struct vpc_state *s = b->state;
    r->image_end_offset = s->file_size;
    if (s->footer_from_copy)
        check_add(r, CHECK_CORRUPTION, "VHD footer at the end of the file "
                  "is damaged; the copy at offset 0 was used");
    if (s->footer_511)
        check_add(r, CHECK_INFO, "VHD footer is 511 bytes (old tools)");
    if (s->type == VHD_TYPE_FIXED)
        return 0;
    uint8_t copy[VHD_FOOTER_SIZE];
    if (io_pread(b->file, copy, sizeof(copy), 0, errp) < 0)
        return -1;
    if (!s->footer_from_copy && memcmp(copy, s->footer, sizeof(copy)))
        check_add(r, CHECK_CORRUPTION, "VHD footer copy at offset 0 differs "
                  "from the footer at the end (\"Footers not identical\")");
    uint32_t *sorted = malloc((size_t)s->entries * 4 + 4);
    if (!sorted) {
        error_setg(errp, "out of memory");
        return -1;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->entries; i++)
        if (s->bat[i] != VHD_BAT_FREE)
            sorted[n++] = s->bat[i];
    qsort(sorted, n, sizeof(*sorted), vpc_cmp_u32);
    uint64_t blk_sec = ((uint64_t)s->bitmap_size + s->block_size) / 512;
    for (uint32_t i = 1; i < n; i++)
        if ((uint64_t)sorted[i] - sorted[i - 1] < blk_sec)
            check_add(r, CHECK_CORRUPTION, "VHD blocks at sectors 0x%" PRIx32
                      " and 0x%" PRIx32 " overlap", sorted[i - 1], sorted[i]);
    if (n && (uint64_t)sorted[0] * 512 < s->bat_off + s->entries * 4ull)
        check_add(r, CHECK_CORRUPTION, "VHD block at sector 0x%" PRIx32
                  " overlaps the metadata", sorted[0]);
    free(sorted);
    r->have_cluster_stats = true;
    r->total_clusters = (b->size + s->block_size - 1) / s->block_size;
    r->allocated_clusters = n;
    return 0;
}

static void vpc_uuid_str(const uint8_t *u, char *out)
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
             u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

static int vpc_info(struct blk *b, struct json_object *spec, vf_error **errp)
{
    struct vpc_state *s = b->state;
    char u[40], cr[5];
    static const char *const types[] = { "", "", "fixed", "dynamic",
                                         "differencing" };
    json_object_object_add(spec, "subformat",
                           json_object_new_string(types[s->type]));
    memcpy(cr, s->footer + VHD_F_CREATOR, 4);
    cr[4] = 0;
    for (int i = 0; i < 4; i++)
        if (cr[i] < 0x20 || cr[i] > 0x7e)
            cr[i] = '?';
    json_object_object_add(spec, "creator", json_object_new_string(cr));
    vpc_uuid_str(s->footer + VHD_F_UUID, u);
    json_object_object_add(spec, "uuid", json_object_new_string(u));
    char chs[64];
    snprintf(chs, sizeof(chs), "%u/%u/%u", be16(s->footer + VHD_F_CYLS),
             s->footer[VHD_F_HEADS], s->footer[VHD_F_SPT]);
    json_object_object_add(spec, "chs", json_object_new_string(chs));
    json_object_object_add(spec, "current-size", json_object_new_int64(
                               (int64_t)be64(s->footer + VHD_F_CUR_SIZE)));
    if (s->type != VHD_TYPE_FIXED)
        json_object_object_add(spec, "block-size",
                               json_object_new_int64(s->block_size));
    if (s->type == VHD_TYPE_DIFF) {
        vpc_uuid_str(s->dyn + VHD_D_PARENT_UUID, u);
        json_object_object_add(spec, "parent-uuid", json_object_new_string(u));
    }
    if (s->footer_from_copy)
        json_object_object_add(spec, "footer-damaged",
                               json_object_new_boolean(1));
    (void)errp;
    return 0;
}

static int vpc_measure(const struct fmt_create_opts *o, struct blk *src,
                       uint64_t *required, uint64_t *fully, vf_error **errp)
{
    const char *sub = opts_get(o->o, "subformat");
    bool azure = false, force = true;
    uint64_t bs = 2 << 20;
    bool have = false;
    if (opts_get_bool(o->o, "azure", &azure, errp) < 0 ||
        opts_get_bool(o->o, "force_size", &force, errp) < 0 ||
        opts_get_size(o->o, "block_size", &bs, &have, errp) < 0)
        return -1;
    (void)opts_get(o->o, "align");
    uint64_t size = (o->size + 511) & ~UINT64_C(511);
    if (azure)
        size = (o->size + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
    if (azure || (sub && !strcmp(sub, "fixed"))) {
        *required = *fully = size + VHD_FOOTER_SIZE;
        return 0;
    }
    if (bs < (512u << 10) || bs > VHD_MAX_BLOCK || (bs & (bs - 1))) {
        error_setg(errp, "block_size %" PRIu64 " invalid", bs);
        return -1;
    }
    uint64_t entries = (size + bs - 1) / bs;
    uint64_t bm = ((bs / 512 + 7) / 8 + 511) & ~UINT64_C(511);
    uint64_t meta = VHD_FOOTER_SIZE * 2 + VHD_DYN_SIZE +
                    ((entries * 4 + 511) & ~UINT64_C(511));
    uint64_t used;
    if (blk_count_data_blocks(src, bs, entries * bs, &used, errp) < 0)
        return -1;
    *required = meta + used * (bm + bs);
    *fully = meta + entries * (bm + bs);
    return 0;
}

/* Does [a, a+al) overlap [c, c+cl)?  (Written not to overflow.) */
static bool vpc_overlap(uint64_t a, uint64_t al, uint64_t c, uint64_t cl)
{
    return al && cl && a < c + cl && c < a + al;
}

/* Bytes a parent locator occupies in the file: its space field counts
 * sectors (the spec) or, for some writers, bytes; never less than its
 * data. */
static uint64_t vpc_locator_bytes(const uint8_t *l)
{
    uint64_t space = be32(l + VHD_LOC_SPACE);
    uint64_t len = be32(l + VHD_LOC_LEN);
    uint64_t n = space * 512 > len && space < (1u << 23) ? space * 512 : len;
    return (n + 511) & ~UINT64_C(511);
}

/* Make room for a BAT of new_space bytes in place: whatever lies in
 * [bat_off + bat_space, bat_off + new_space) moves to the end of the file
 * (data blocks, parent locators).  Each copy is made durable before the
 * entry that points at it changes, and the BAT grows over the old copies
 * only once nothing points at them: a crash leaves a valid image at every
 * step, with at worst some unreferenced space. */
static int vpc_grow_bat(struct blk *b, uint64_t new_space, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t lo = s->bat_off + s->bat_space;
    uint64_t glen = new_space - s->bat_space;
    uint64_t doff = be64(s->footer + VHD_F_DATA_OFF);
    uint64_t span = (uint64_t)s->bitmap_size + s->block_size;
    if (vpc_overlap(doff, VHD_DYN_SIZE, lo, glen) ||
        vpc_overlap(0, VHD_FOOTER_SIZE, lo, glen)) {
        error_setg(errp, "VHD dynamic header at 0x%" PRIx64 " lies where "
                   "the BAT at 0x%" PRIx64 " must grow", doff, s->bat_off);
        return -1;
    }
    /* plan: where everything goes, checked before anything is written */
    uint64_t dest = s->next_block > lo + glen ? s->next_block : lo + glen;
    dest = (dest + 511) & ~UINT64_C(511);
    uint64_t end = dest;
    for (uint32_t i = 0; i < s->entries; i++)
        if (s->bat[i] != VHD_BAT_FREE &&
            vpc_overlap((uint64_t)s->bat[i] * 512, span, lo, glen))
            end += span;
    for (int i = 0; i < 8; i++) {
        const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOC_SIZE;
        if (be32(l + VHD_LOC_CODE) &&
            vpc_overlap(be64(l + VHD_LOC_OFF), vpc_locator_bytes(l), lo,
                        glen))
            end += vpc_locator_bytes(l);
    }
    /* block offsets are u32 sector numbers */
    if (end / 512 >= VHD_BAT_FREE) {
        error_setg(errp, "VHD file would grow past 2 TiB (0x%" PRIx64
                   " bytes) to make room for its BAT", end);
        return -1;
    }
    /* 1. copy, then make the copies durable with a footer after them */
    uint32_t *nb = malloc((size_t)s->entries * 4 + 4);
    if (!nb) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(nb, s->bat, (size_t)s->entries * 4);
    uint8_t dyn[VHD_DYN_SIZE];
    memcpy(dyn, s->dyn, sizeof(dyn));
    bool moved_loc = false;
    int ret = -1;
    for (uint32_t i = 0; i < s->entries; i++) {
        uint64_t off = (uint64_t)s->bat[i] * 512;
        if (s->bat[i] == VHD_BAT_FREE || !vpc_overlap(off, span, lo, glen))
            continue;
        if (io_copy(b->file, dest, off, span, errp) < 0)
            goto out;
        nb[i] = (uint32_t)(dest / 512);
        dest += span;
    }
    for (int i = 0; i < 8; i++) {
        uint8_t *l = dyn + VHD_D_LOCATORS + i * VHD_LOC_SIZE;
        uint64_t n = vpc_locator_bytes(l), off = be64(l + VHD_LOC_OFF);
        if (!be32(l + VHD_LOC_CODE) || !vpc_overlap(off, n, lo, glen))
            continue;
        if (io_copy(b->file, dest, off, n, errp) < 0)
            goto out;
        put_be64(l + VHD_LOC_OFF, dest);
        put_be32(l + VHD_LOC_SPACE, (uint32_t)(n / 512));
        dest += n;
        moved_loc = true;
    }
    s->next_block = dest;
    if (vpc_write_footers(b, errp) < 0 || io_flush(b->file, errp) < 0)
        goto out;
    /* 2. point at the copies */
    memcpy(s->bat, nb, (size_t)s->entries * 4);
    if (vpc_write_bat(b, errp) < 0 || io_flush(b->file, errp) < 0)
        goto out;
    if (moved_loc) {
        memcpy(s->dyn, dyn, sizeof(dyn));
        if (vpc_write_dyn(b, errp) < 0 || io_flush(b->file, errp) < 0)
            goto out;
    }
    /* 3. the BAT takes the freed space (entries past the count: unused) */
    s->bat_space = new_space;
    if (vpc_write_bat(b, errp) < 0 || io_flush(b->file, errp) < 0)
        goto out;
    ret = 0;
out:
    free(nb);
    return ret;
}

/* Allocate block idx at the end of the file reading as zeros, its bitmap
 * set from sector first_sec on (the sectors before it still read the
 * parent). */
static int vpc_alloc_zero_block(struct blk *b, uint32_t idx,
                                uint64_t first_sec, vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t off = s->next_block;
    uint64_t end = off + s->bitmap_size + s->block_size;
    if (end / 512 >= VHD_BAT_FREE) {
        error_setg(errp, "VHD file too large for a new block");
        return -1;
    }
    uint8_t *bm = calloc(1, s->bitmap_size);
    if (!bm) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint64_t sec = first_sec; sec < s->block_size / 512; sec++)
        bm[sec / 8] |= (uint8_t)(0x80 >> (sec % 8));
    int r = io_truncate(b->file, end, errp);
    if (r == 0)
        r = io_pwrite(b->file, bm, s->bitmap_size, off, errp);
    free(bm);
    if (r < 0)
        return -1;
    s->bat[idx] = (uint32_t)(off / 512);
    s->next_block = end;
    return 0;
}

/* Growing from old_size: the new range must read as zeros.  Bytes of an
 * allocated block past the old end are zeroed (other writers leave what
 * they like there), their bitmap bits set; in a differencing disk, a new
 * range over which the parent holds data gets zero blocks of its own. */
static int vpc_zero_new_range(struct blk *b, uint64_t old_size,
                              uint64_t new_size, vf_error **errp)
{
    struct vpc_state *s = b->state;
    bool diff = s->type == VHD_TYPE_DIFF;
    uint64_t bs = s->block_size;
    for (uint64_t g = old_size; g < new_size; g = (g / bs + 1) * bs) {
        uint32_t idx = (uint32_t)(g / bs);
        uint64_t in = g % bs;
        uint64_t stop = (idx + 1) * bs < new_size ? (idx + 1) * bs : new_size;
        if (s->bat[idx] != VHD_BAT_FREE) {
            uint64_t host = (uint64_t)s->bat[idx] * 512;
            if (io_punch(b->file, host + s->bitmap_size + in, bs - in,
                         errp) < 0)
                return -1;
            if (!diff)
                continue;
            uint8_t *bm = malloc(s->bitmap_size);
            if (!bm) {
                error_setg(errp, "out of memory");
                return -1;
            }
            int r = vpc_read_bitmap(b, idx, bm, errp);
            for (uint64_t sec = in / 512; sec < bs / 512; sec++)
                bm[sec / 8] |= (uint8_t)(0x80 >> (sec % 8));
            if (r == 0)
                r = io_pwrite(b->file, bm, s->bitmap_size, host, errp);
            free(bm);
            if (r < 0)
                return -1;
            continue;
        }
        if (!diff)
            continue;
        int d = blk_backing_has_data(b, g, stop - g, errp);
        if (d < 0)
            return -1;
        if (d && vpc_alloc_zero_block(b, idx, in / 512, errp) < 0)
            return -1;
    }
    return 0;
}

/* The end of what the file still needs once blocks past `entries` are
 * dropped: metadata, locators, live blocks. */
static uint64_t vpc_live_end(struct vpc_state *s)
{
    uint64_t end = s->bat_off + s->bat_space;
    uint64_t doff = be64(s->footer + VHD_F_DATA_OFF);
    if (doff + VHD_DYN_SIZE > end)
        end = doff + VHD_DYN_SIZE;
    for (int i = 0; i < 8; i++) {
        const uint8_t *l = s->dyn + VHD_D_LOCATORS + i * VHD_LOC_SIZE;
        uint64_t e = be64(l + VHD_LOC_OFF) + vpc_locator_bytes(l);
        if (be32(l + VHD_LOC_CODE) && e > end)
            end = e;
    }
    for (uint32_t i = 0; i < s->entries; i++) {
        uint64_t e = (uint64_t)s->bat[i] * 512 + s->bitmap_size +
                     s->block_size;
        if (s->bat[i] != VHD_BAT_FREE && e > end)
            end = e;
    }
    return (end + 511) & ~UINT64_C(511);
}

/* The footer says the new size; CHS follows it, and creator "qem2" tells
 * qemu to take currentSize, not CHS.  The original size moves too,
 * although the spec calls it the size at creation: libyal (and so the
 * forensic tools) take the disk's size from it. */
static void vpc_footer_resize(uint8_t *f, uint64_t size)
{
    vpc_footer_set_size(f, size);
    memcpy(f + VHD_F_CREATOR, "qem2", 4);
}

static int vpc_resize_fixed(struct blk *b, uint64_t new_size,
                            vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t old = b->size, old_fs = s->file_size;
    vpc_footer_resize(s->footer, new_size);
    vpc_footer_finish(s->footer);
    if (new_size > old) {
        /* the new footer first, then the old one (now guest data) and
         * whatever lay between the old size and it become zeros: a crash
         * in between leaves 512 stale bytes in the new range, never a
         * file without a footer */
        if (io_truncate(b->file, new_size + VHD_FOOTER_SIZE, errp) < 0 ||
            io_pwrite(b->file, s->footer, VHD_FOOTER_SIZE, new_size,
                      errp) < 0 ||
            io_flush(b->file, errp) < 0 ||
            io_punch(b->file, old, old_fs - old, errp) < 0)
            return -1;
    } else if (io_pwrite(b->file, s->footer, VHD_FOOTER_SIZE, new_size,
                         errp) < 0 ||
               io_flush(b->file, errp) < 0 ||
               io_truncate(b->file, new_size + VHD_FOOTER_SIZE, errp) < 0) {
        return -1;
    }
    s->file_size = new_size + VHD_FOOTER_SIZE;
    s->footer_511 = false;
    b->size = new_size;
    return 0;
}

/* Dynamic and differencing: the BAT has exactly the entries the size
 * needs (Azure rejects more).  Growing: room for the BAT, then the new
 * range zeroed, then BAT, entry count, size, each durable before the
 * next.  Shrinking: the size first, then the count, then the BAT; blocks
 * past the end are dropped and the file is cut after what is left. */
static int vpc_resize_dynamic(struct blk *b, uint64_t new_size,
                              vf_error **errp)
{
    struct vpc_state *s = b->state;
    uint64_t need = (new_size + s->block_size - 1) / s->block_size;
    uint64_t need_space = (need * 4 + 511) & ~UINT64_C(511);
    if (new_size > b->size) {
        if (need > s->entries) {
            uint32_t *nb = realloc(s->bat, need * 4 + 4);
            if (!nb) {
                error_setg(errp, "out of memory");
                return -1;
            }
            s->bat = nb;
            for (uint64_t i = s->entries; i < need; i++)
                s->bat[i] = VHD_BAT_FREE;
        }
        /* the footer after every block's whole span, so that the tails
         * about to become visible lie inside the file */
        if (vpc_write_footers(b, errp) < 0 || io_flush(b->file, errp) < 0)
            return -1;
        if (need_space > s->bat_space &&
            vpc_grow_bat(b, need_space, errp) < 0)
            return -1;
        if (vpc_zero_new_range(b, b->size, new_size, errp) < 0 ||
            vpc_write_footers(b, errp) < 0 || io_flush(b->file, errp) < 0)
            return -1;
        /* entries past the old count are invisible until the header
         * counts them */
        uint32_t old_entries = s->entries;
        s->entries = (uint32_t)need;
        if (vpc_write_bat(b, errp) < 0 || io_flush(b->file, errp) < 0)
            return -1;
        if (s->entries != old_entries) {
            put_be32(s->dyn + VHD_D_MAX_ENTRIES, s->entries);
            if (vpc_write_dyn(b, errp) < 0 || io_flush(b->file, errp) < 0)
                return -1;
        }
        vpc_footer_resize(s->footer, new_size);
        if (vpc_write_footers(b, errp) < 0)
            return -1;
    } else {
        vpc_footer_resize(s->footer, new_size);
        if (vpc_write_footers(b, errp) < 0 || io_flush(b->file, errp) < 0)
            return -1;
        if (need < s->entries) {
            s->entries = (uint32_t)need;
            put_be32(s->dyn + VHD_D_MAX_ENTRIES, s->entries);
            if (vpc_write_dyn(b, errp) < 0 || io_flush(b->file, errp) < 0 ||
                vpc_write_bat(b, errp) < 0 || io_flush(b->file, errp) < 0)
                return -1;
            uint64_t end = vpc_live_end(s);
            if (end < s->next_block) {
                s->next_block = end;
                if (vpc_write_footers(b, errp) < 0)
                    return -1;
            }
        }
    }
    b->size = new_size;
    return 0;
}

static int vpc_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    struct vpc_state *s = b->state;
    bool fixed = s->type == VHD_TYPE_FIXED;
    uint64_t max = fixed ? VHD_MAX_FIXED : VHD_MAX_DYN_SIZE;
    if (new_size % 512) {
        error_setg(errp, "VHD size %" PRIu64 " is not a multiple of 512",
                   new_size);
        return -1;
    }
    if (new_size > max) {
        error_setg(errp, "virtual size %" PRIu64 " too large for a %s VHD "
                   "(max %" PRIu64 ")", new_size, fixed ? "fixed" :
                   s->type == VHD_TYPE_DIFF ? "differencing" : "dynamic",
                   max);
        return -1;
    }
    if (s->footer_from_copy) {
        error_setg(errp, "VHD footer damaged: run check first");
        return -1;
    }
    if (new_size == b->size)
        return 0;
    int r = fixed ? vpc_resize_fixed(b, new_size, errp)
                  : vpc_resize_dynamic(b, new_size, errp);
    /* everything is on disk already (or, after an error, the state in
     * memory may be half-way): flush has nothing to write */
    s->writing = true;
    s->dirty = false;
    return r;
}

static const char *const vpc_aliases[] = { "vhd", NULL };

const struct fmt_driver fmt_vpc = {
    .name = "vpc",
    .aliases = vpc_aliases,
    .desc = "VHD (Virtual PC, Hyper-V, Azure, Xen): fixed, dynamic, "
            "differencing",
    .state_size = sizeof(struct vpc_state),
    .flags = FMT_F_BACKING | FMT_F_PARALLEL_WRITE | FMT_F_HOST_IN_FILE,
    .probe = vpc_probe,
    .open = vpc_open,
    .close = vpc_close,
    .create = vpc_create,
    .pread = vpc_pread,
    .pwrite = vpc_pwrite,
    .zero = vpc_zero,
    .block_status = vpc_block_status,
    .flush = vpc_flush,
    .check = vpc_check,
    .info = vpc_info,
    .measure = vpc_measure,
    .resize = vpc_resize,
};
