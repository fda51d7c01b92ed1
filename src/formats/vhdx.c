/*
 * vhdx.c: VHDX (Hyper-V): fixed, dynamic and differencing disks.
 *
 * Spec: [MS-VHDX] v20160714 (see vhdx.h for the layout).  Open: pick the
 * valid header with the higher sequence number, replay a pending log onto
 * a private overlay (vhdx-log.c; the source is never written), read the
 * region table, the metadata region and the BAT.  Block status comes from
 * the BAT, so zero and unallocated blocks are never read.  Create writes
 * fixed or dynamic images with an empty log, both headers and both region
 * tables, CRC-32C everywhere.
 */
#include "formats/vhdx.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "formats/crc32c.h"

#define GUID_FILEPAR  "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define GUID_VSIZE    "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define GUID_PAGE83   "BECA12AB-B2E6-4523-93EF-C309E000C746"
#define GUID_LSS      "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define GUID_PSS      "CDA348C7-445D-4471-9CC9-E9885251C556"
#define GUID_PARENT   "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
#define GUID_PL_TYPE  "B04AEFB7-D19E-4A81-B789-25B8E9445913"

static int vhdx_probe(const struct probe_data *d)
{
    if (d->head_len >= 8 && !memcmp(d->head, "vhdxfile", 8))
        return 100;
    return 0;
}

void vhdx_random_guid(uint8_t *p)
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
    p[7] = (p[7] & 0x0f) | 0x40;
    p[8] = (p[8] & 0x3f) | 0x80;
}

/* ---- open ---- */

static int vhdx_read_headers(struct blk *b, struct vhdx_state *s,
                             vf_error **errp)
{
    uint8_t h[2][VHDX_HDR_SIZE];
    bool ok[2];
    for (int i = 0; i < 2; i++) {
        if (io_pread(b->file, h[i], VHDX_HDR_SIZE,
                     i ? VHDX_HDR2_OFF : VHDX_HDR1_OFF, errp) < 0)
            return -1;
        ok[i] = !memcmp(h[i], "head", 4) &&
                crc32c_skip(h[i], VHDX_HDR_SIZE, VHDX_H_CRC) ==
                    vhdx_le32(h[i] + VHDX_H_CRC) &&
                vhdx_le16(h[i] + VHDX_H_VERSION) == 1;
        s->hdr_bad[i] = !ok[i];
    }
    if (!ok[0] && !ok[1]) {
        error_setg(errp, "both VHDX headers invalid (signature, version or "
                   "CRC-32C 0x%08" PRIx32 "/0x%08" PRIx32 ")",
                   vhdx_le32(h[0] + VHDX_H_CRC), vhdx_le32(h[1] + VHDX_H_CRC));
        return -1;
    }
    int c = !ok[0] ? 1 : !ok[1] ? 0 :
            vhdx_le64(h[1] + VHDX_H_SEQ) > vhdx_le64(h[0] + VHDX_H_SEQ);
    memcpy(s->hdr, h[c], VHDX_HDR_SIZE);
    s->cur_hdr = c + 1;
    s->log_len = vhdx_le32(s->hdr + VHDX_H_LOG_LEN);
    s->log_off = vhdx_le64(s->hdr + VHDX_H_LOG_OFF);
    if (vhdx_le16(s->hdr + VHDX_H_LOG_VERSION) != 0) {
        error_setg(errp, "VHDX log version %u not supported",
                   vhdx_le16(s->hdr + VHDX_H_LOG_VERSION));
        return -1;
    }
    if (s->log_off % VHDX_MIB || s->log_len % VHDX_MIB ||
        (s->log_len && s->log_off < VHDX_MIB)) {
        error_setg(errp, "VHDX log at 0x%" PRIx64 " length 0x%" PRIx64
                   " misaligned", s->log_off, s->log_len);
        return -1;
    }
    return 0;
}

/* Does [a, a+al) overlap [c, c+cl)? */
bool vhdx_overlap(uint64_t a, uint64_t al, uint64_t c, uint64_t cl)
{
    return a < c + cl && c < a + al;
}

static int vhdx_read_regions(struct blk *b, struct vhdx_state *s,
                             vf_error **errp)
{
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    int ret = -1, which = -1;
    if (!rt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (int i = 0; i < 2 && which < 0; i++) {
        if (vhdx_fread(b, rt, VHDX_RT_SIZE, i ? VHDX_RT2_OFF : VHDX_RT1_OFF,
                       errp) < 0)
            goto out;
        if (!memcmp(rt, "regi", 4) &&
            crc32c_skip(rt, VHDX_RT_SIZE, VHDX_RT_CRC) ==
                vhdx_le32(rt + VHDX_RT_CRC))
            which = i;
        else
            s->rt_bad[i] = true;
    }
    if (which < 0) {
        error_setg(errp, "both VHDX region tables invalid (signature or "
                   "CRC-32C)");
        goto out;
    }
    uint32_t n = vhdx_le32(rt + VHDX_RT_COUNT);
    if (n > VHDX_RT_MAX) {
        error_setg(errp, "VHDX region table of %" PRIu32 " entries too "
                   "large", n);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = rt + VHDX_RT_ENTRIES + i * VHDX_RE_SIZE;
        uint64_t off = vhdx_le64(e + VHDX_RE_OFF);
        uint64_t len = vhdx_le32(e + VHDX_RE_LEN);
        bool req = vhdx_le32(e + VHDX_RE_REQUIRED) & 1;
        if (off % VHDX_MIB || len % VHDX_MIB || off < VHDX_MIB || !len ||
            off > s->file_size || len > s->file_size - off) {
            error_setg(errp, "VHDX region %" PRIu32 " at 0x%" PRIx64
                       " length 0x%" PRIx64 " misaligned or beyond end of "
                       "file", i, off, len);
            goto out;
        }
        if (s->log_len && vhdx_overlap(off, len, s->log_off, s->log_len)) {
            error_setg(errp, "VHDX region %" PRIu32 " at 0x%" PRIx64
                       " overlaps the log", i, off);
            goto out;
        }
        for (uint32_t j = 0; j < i; j++) {
            const uint8_t *f = rt + VHDX_RT_ENTRIES + j * VHDX_RE_SIZE;
            if (vhdx_overlap(off, len, vhdx_le64(f + VHDX_RE_OFF),
                             vhdx_le32(f + VHDX_RE_LEN))) {
                error_setg(errp, "VHDX regions %" PRIu32 " and %" PRIu32
                           " overlap at 0x%" PRIx64, j, i, off);
                goto out;
            }
        }
        if (vhdx_guid_is(e, VHDX_GUID_BAT)) {
            s->bat_off = off;
            s->bat_len = len;
        } else if (vhdx_guid_is(e, VHDX_GUID_META)) {
            s->meta_off = off;
            s->meta_len = len;
        } else if (req) {
            error_setg(errp, "VHDX region %" PRIu32 " of an unknown kind is "
                       "marked required", i);
            goto out;
        }
    }
    if (!s->bat_len || !s->meta_len) {
        error_setg(errp, "VHDX region table lacks the %s region",
                   s->bat_len ? "metadata" : "BAT");
        goto out;
    }
    ret = 0;
out:
    free(rt);
    return ret;
}

/* Find metadata item guid; offset and length are relative to the region. */
static bool vhdx_meta_find(const uint8_t *mt, uint32_t n, const char *guid,
                           uint32_t *off, uint32_t *len)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = mt + VHDX_MT_ENTRIES + i * VHDX_ME_SIZE;
        if (vhdx_guid_is(e, guid)) {
            *off = vhdx_le32(e + VHDX_ME_OFF);
            *len = vhdx_le32(e + VHDX_ME_LEN);
            return true;
        }
    }
    return false;
}

/* UTF-16LE to UTF-8 with backslashes as slashes; malloc'd. */
static char *vhdx_utf16_path(const uint8_t *p, size_t len)
{
    char *out = malloc(len / 2 * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t c = (uint32_t)(p[i] | p[i + 1] << 8);
        if (!c)
            break;
        if (c >= 0xd800 && c < 0xe000)
            c = '?';
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

static bool vhdx_key_is(const uint8_t *k, size_t klen, const char *want)
{
    size_t n = strlen(want);
    if (klen != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[2 * i] != (uint8_t)want[i] || k[2 * i + 1])
            return false;
    return true;
}

/* Parse the parent locator item (pl, len bytes) into b->backing_name. */
static int vhdx_parent(struct blk *b, const uint8_t *pl, uint32_t len,
                       vf_error **errp)
{
    if (len < VHDX_PL_ENTRIES || !vhdx_guid_is(pl + VHDX_PL_TYPE,
                                               GUID_PL_TYPE)) {
        error_setg(errp, "VHDX parent locator of an unknown type");
        return -1;
    }
    uint32_t n = vhdx_le16(pl + VHDX_PL_COUNT);
    if ((uint64_t)n * VHDX_PLE_SIZE > len - VHDX_PL_ENTRIES) {
        error_setg(errp, "VHDX parent locator of %" PRIu32 " entries "
                   "overruns its %" PRIu32 " bytes", n, len);
        return -1;
    }
    static const char *const keys[] = { "relative_path", "absolute_win32_path",
                                        "volume_path" };
    char *cand[3] = { NULL, NULL, NULL };
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = pl + VHDX_PL_ENTRIES + i * VHDX_PLE_SIZE;
        uint32_t ko = vhdx_le32(e), vo = vhdx_le32(e + 4);
        uint32_t kl = vhdx_le16(e + 8), vl = vhdx_le16(e + 10);
        if (ko > len || kl > len - ko || vo > len || vl > len - vo) {
            error_setg(errp, "VHDX parent locator entry %" PRIu32
                       " beyond the item", i);
            goto fail;
        }
        for (int k = 0; k < 3; k++) {
            if (!cand[k] && vhdx_key_is(pl + ko, kl, keys[k])) {
                cand[k] = vhdx_utf16_path(pl + vo, vl);
                if (!cand[k]) {
                    error_setg(errp, "out of memory");
                    goto fail;
                }
            }
        }
    }
    char *first = NULL;
    for (int k = 0; k < 3 && !b->backing_name; k++) {
        char *q = cand[k];
        if (!q || !*q)
            continue;
        if (q[0] == '.' && q[1] == '/')
            q += 2;
        bool drive = q[0] && q[1] == ':';   /* "C:/..." Windows absolute */
        if (drive || !strncmp(q, "//?/", 4))
            continue;
        char *r = blk_resolve_name(b, q, NULL);
        if (r && access(r, R_OK) == 0)
            b->backing_name = strdup(q);
        else if (!first)
            first = q;
        free(r);
    }
    if (!b->backing_name && first)
        b->backing_name = strdup(first);
    if (!b->backing_name) {
        error_setg(errp, "VHDX differencing disk without a usable parent "
                   "path");
        goto fail;
    }
    for (int k = 0; k < 3; k++)
        free(cand[k]);
    b->backing_fmt = strdup("vhdx");
    return 0;
fail:
    for (int k = 0; k < 3; k++)
        free(cand[k]);
    return -1;
}

static int vhdx_read_metadata(struct blk *b, struct vhdx_state *s,
                              vf_error **errp)
{
    /* the table is at most 64 KiB; items live in the rest of the region,
     * which is at most 4 GiB - read only the items we use */
    uint8_t *mt = malloc(VHDX_MT_TABLE_SIZE);
    uint8_t *pl = NULL;
    int ret = -1;
    if (!mt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (vhdx_fread(b, mt, VHDX_MT_TABLE_SIZE, s->meta_off, errp) < 0)
        goto out;
    if (memcmp(mt, "metadata", 8)) {
        error_setg(errp, "VHDX metadata table signature missing");
        goto out;
    }
    uint32_t n = vhdx_le16(mt + VHDX_MT_COUNT);
    if (n > VHDX_MT_MAX) {
        error_setg(errp, "VHDX metadata table of %" PRIu32 " entries too "
                   "large", n);
        goto out;
    }
    static const char *const known[] = { GUID_FILEPAR, GUID_VSIZE,
                                         GUID_PAGE83, GUID_LSS, GUID_PSS,
                                         GUID_PARENT };
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = mt + VHDX_MT_ENTRIES + i * VHDX_ME_SIZE;
        uint32_t off = vhdx_le32(e + VHDX_ME_OFF);
        uint32_t len = vhdx_le32(e + VHDX_ME_LEN);
        if (len && (off < VHDX_MT_TABLE_SIZE || off > s->meta_len ||
                    len > s->meta_len - off)) {
            error_setg(errp, "VHDX metadata item %" PRIu32 " at 0x%" PRIx32
                       " length %" PRIu32 " outside the metadata region",
                       i, off, len);
            goto out;
        }
        bool k = false;
        for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
            k |= vhdx_guid_is(e, known[j]);
        if (!k && (vhdx_le32(e + VHDX_ME_FLAGS) & VHDX_ME_REQUIRED)) {
            error_setg(errp, "VHDX metadata item %" PRIu32 " of an unknown "
                       "kind is marked required", i);
            goto out;
        }
    }
    uint32_t off, len;
    uint8_t item[16];
#define META_READ(guid, want, what)                                          \
    do {                                                                     \
        if (!vhdx_meta_find(mt, n, guid, &off, &len) || len < (want)) {      \
            error_setg(errp, "VHDX metadata lacks the %s item", what);       \
            goto out;                                                        \
        }                                                                    \
        if (vhdx_fread(b, item, want, s->meta_off + off, errp) < 0)          \
            goto out;                                                        \
    } while (0)
    META_READ(GUID_FILEPAR, 8, "file parameters");
    s->block_size = vhdx_le32(item);
    s->leave_alloc = vhdx_le32(item + 4) & 1;
    s->has_parent = vhdx_le32(item + 4) & 2;
    META_READ(GUID_VSIZE, 8, "virtual disk size");
    b->size = vhdx_le64(item);
    s->vsize_off = s->meta_off + off;
    META_READ(GUID_LSS, 4, "logical sector size");
    s->lss = vhdx_le32(item);
    META_READ(GUID_PSS, 4, "physical sector size");
    s->pss = vhdx_le32(item);
    if (vhdx_meta_find(mt, n, GUID_PAGE83, &off, &len) && len >= 16 &&
        vhdx_fread(b, s->disk_id, 16, s->meta_off + off, errp) < 0)
        goto out;
#undef META_READ
    if (s->block_size < VHDX_MIB || s->block_size > VHDX_MAX_BLOCK ||
        (s->block_size & (s->block_size - 1))) {
        error_setg(errp, "VHDX block size %" PRIu32 " out of range (a power "
                   "of two, 1 MiB to 256 MiB)", s->block_size);
        goto out;
    }
    if ((s->lss != 512 && s->lss != 4096) ||
        (s->pss != 512 && s->pss != 4096)) {
        error_setg(errp, "VHDX sector sizes %" PRIu32 "/%" PRIu32
                   " not supported (512 or 4096)", s->lss, s->pss);
        goto out;
    }
    if (b->size > VHDX_MAX_SIZE || b->size % s->lss) {
        error_setg(errp, "VHDX virtual size %" PRIu64 " invalid (a multiple "
                   "of the sector size up to 64 TiB)", b->size);
        goto out;
    }
    if (s->has_parent) {
        if (!vhdx_meta_find(mt, n, GUID_PARENT, &off, &len) || !len) {
            error_setg(errp, "VHDX differencing disk lacks a parent locator");
            goto out;
        }
        /* a locator holds a few paths: 64 KiB is plenty (lengths are
         * u16 each, 2047 entries would be absurd) */
        if (len > 65536) {
            error_setg(errp, "VHDX parent locator of %" PRIu32 " bytes too "
                       "large", len);
            goto out;
        }
        pl = malloc(len);
        if (!pl) {
            error_setg(errp, "out of memory");
            goto out;
        }
        if (vhdx_fread(b, pl, len, s->meta_off + off, errp) < 0 ||
            vhdx_parent(b, pl, len, errp) < 0)
            goto out;
    }
    ret = 0;
out:
    free(mt);
    free(pl);
    return ret;
}

/* BAT index of payload block i, and of the bitmap of its chunk. */
uint64_t vhdx_pb_index(const struct vhdx_state *s, uint64_t i)
{
    return i + i / s->chunk_ratio;
}
uint64_t vhdx_sb_index(const struct vhdx_state *s, uint64_t i)
{
    return (i / s->chunk_ratio) * (s->chunk_ratio + 1) + s->chunk_ratio;
}

void vhdx_geometry(struct vhdx_state *s, uint64_t size)
{
    s->chunk_ratio = (UINT64_C(1) << 23) * s->lss / s->block_size;
    s->data_blocks = (size + s->block_size - 1) / s->block_size;
    uint64_t sb = (s->data_blocks + s->chunk_ratio - 1) / s->chunk_ratio;
    if (s->has_parent)
        s->bat_entries = sb * (s->chunk_ratio + 1);
    else
        s->bat_entries = s->data_blocks ? s->data_blocks +
                         (s->data_blocks - 1) / s->chunk_ratio : 0;
}

static int vhdx_read_bat(struct blk *b, struct vhdx_state *s,
                         vf_error **errp)
{
    vhdx_geometry(s, b->size);
    /* the BAT lies in its region, itself in the file: VHDX_MAX_BAT
     * entries (about 512 MiB) cover 64 TiB in 1 MiB blocks */
    if (s->bat_entries > VHDX_MAX_BAT ||
        s->bat_entries * 8 > s->bat_len) {
        error_setg(errp, "VHDX BAT of %" PRIu64 " entries does not fit its "
                   "region of %" PRIu64 " bytes", s->bat_entries, s->bat_len);
        return -1;
    }
    size_t bytes = (size_t)s->bat_entries * 8;
    s->bat = malloc(bytes ? bytes : 8);
    if (!s->bat) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (vhdx_fread(b, s->bat, bytes, s->bat_off, errp) < 0)
        return -1;
    uint64_t end = (s->bat_off + s->bat_len > s->meta_off + s->meta_len)
                   ? s->bat_off + s->bat_len : s->meta_off + s->meta_len;
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        uint64_t e = vhdx_le64((const uint8_t *)&s->bat[i]);
        s->bat[i] = e;
        unsigned st = e & VHDX_BAT_STATE_MASK;
        uint64_t off = e & VHDX_BAT_OFF_MASK;
        bool is_sb = (i + 1) % (s->chunk_ratio + 1) == 0;
        uint64_t need;
        if (is_sb) {
            if (st != VHDX_SB_PRESENT)
                continue;
            need = VHDX_MIB;
        } else {
            if (st != VHDX_PB_FULL && st != VHDX_PB_PARTIAL)
                continue;
            uint64_t bi = i - i / (s->chunk_ratio + 1);
            uint64_t g = bi * s->block_size;
            need = g < b->size && b->size - g < s->block_size ? b->size - g
                                                               : s->block_size;
            if (st == VHDX_PB_PARTIAL && !s->has_parent) {
                error_setg(errp, "VHDX BAT entry %" PRIu64 " partially present "
                           "in a disk without a parent", i);
                return -1;
            }
        }
        if (off < VHDX_MIB || off > s->file_size ||
            need > s->file_size - off) {
            error_setg(errp, "VHDX BAT entry %" PRIu64 " offset 0x%" PRIx64
                       " beyond end of file", i, off);
            return -1;
        }
        /* a short last block still owns its whole span: nothing new
         * may go into its tail, which a resize can make visible */
        uint64_t span = is_sb ? VHDX_MIB : s->block_size;
        if (off + span > end)
            end = off + span;
    }
    /* new blocks go after everything, 1 MiB-aligned */
    s->next_off = (end + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    if (s->next_off < s->file_size)
        s->next_off = (s->file_size + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    return 0;
}

static int vhdx_open(struct blk *b, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    pthread_mutex_init(&s->lock, NULL);
    uint8_t sig[8];
    int64_t fs = io_size(b->file, errp);
    if (fs < 0)
        return -1;
    s->file_size = (uint64_t)fs;
    if (s->file_size < VHDX_RT2_OFF + VHDX_RT_SIZE) {
        error_setg(errp, "file of %" PRIu64 " bytes too small for a VHDX "
                   "header section", s->file_size);
        return -1;
    }
    if (io_pread(b->file, sig, 8, 0, errp) < 0)
        return -1;
    if (memcmp(sig, "vhdxfile", 8)) {
        error_setg(errp, "VHDX file identifier missing");
        return -1;
    }
    if (vhdx_read_headers(b, s, errp) < 0)
        return -1;
    if (vhdx_log_replay(b, s, errp) < 0)
        return -1;
    if (s->log_replayed && s->ov.last_file_off > s->file_size)
        s->file_size = s->ov.last_file_off;
    if (vhdx_read_regions(b, s, errp) < 0 ||
        vhdx_read_metadata(b, s, errp) < 0 ||
        vhdx_read_bat(b, s, errp) < 0)
        return -1;
    b->cluster_size = s->block_size;
    if (!b->readonly && s->log_replayed) {
        error_setg(errp, "VHDX has a pending log: open it read-only (it is "
                   "replayed in memory) or convert it");
        return -1;
    }
    return 0;
}

static void vhdx_close(struct blk *b)
{
    struct vhdx_state *s = b->state;
    pthread_mutex_destroy(&s->lock);
    free(s->bat);
    s->bat = NULL;
    vhdx_overlay_free(&s->ov);
}

/* ---- read ---- */

/* Is sector bit `bit` of the chunk bitmap set?  (LSB first.) */
static bool vhdx_bit(const uint8_t *bm, uint64_t bit)
{
    return bm[bit / 8] & (1u << (bit % 8));
}

/* Status of the range at off (inside one block), *n bytes long. */
static int vhdx_range_state(struct blk *b, uint64_t off, uint64_t len,
                            uint64_t *n, uint64_t *host, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    uint64_t bi = off / s->block_size;
    uint64_t in = off % s->block_size;
    uint64_t room = s->block_size - in < len ? s->block_size - in : len;
    uint64_t e = s->bat[vhdx_pb_index(s, bi)];
    *n = room;
    *host = UINT64_MAX;
    switch (e & VHDX_BAT_STATE_MASK) {
    case VHDX_PB_FULL:
        *host = (e & VHDX_BAT_OFF_MASK) + in;
        return BLK_DATA;
    case VHDX_PB_NOT_PRESENT:
        return BLK_UNALLOC;
    case VHDX_PB_PARTIAL:
        break;
    default:           /* zero, unmapped, undefined: read as zeros */
        return BLK_ZERO;
    }
    uint64_t sbe = s->bat[vhdx_sb_index(s, bi)];
    if ((sbe & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT) {
        error_setg(errp, "VHDX block %" PRIu64 " partially present without "
                   "a sector bitmap", bi);
        return -1;
    }
    /* bits of this block's sectors inside the chunk's 1 MiB bitmap */
    uint64_t spb = s->block_size / s->lss;
    uint64_t first = (bi % s->chunk_ratio) * spb + in / s->lss;
    uint64_t last = (bi % s->chunk_ratio) * spb + (in + room - 1) / s->lss;
    uint64_t b0 = first / 8, b1 = last / 8 + 1;
    uint8_t bm[4096];
    uint64_t cap = b1 - b0 < sizeof(bm) ? b1 : b0 + sizeof(bm);
    if (vhdx_fread(b, bm, cap - b0, (sbe & VHDX_BAT_OFF_MASK) + b0,
                   errp) < 0)
        return -1;
    bool set = vhdx_bit(bm, first - b0 * 8);
    uint64_t k = first + 1;
    while (k <= last && k < cap * 8 && vhdx_bit(bm, k - b0 * 8) == set)
        k++;
    uint64_t stop = (k - first) * s->lss - in % s->lss;
    if (stop < room)
        *n = stop;
    if (set) {
        *host = (e & VHDX_BAT_OFF_MASK) + in;
        return BLK_DATA;
    }
    return BLK_UNALLOC;
}

static int vhdx_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                      vf_error **errp)
{
    uint8_t *p = buf;
    while (len) {
        uint64_t n, host;
        int st = vhdx_range_state(b, off, len, &n, &host, errp);
        if (st < 0)
            return -1;
        if (st == BLK_DATA) {
            if (vhdx_fread(b, p, n, host, errp) < 0)
                return -1;
        } else if (st == BLK_ZERO) {
            memset(p, 0, n);
        } else if (blk_read_backing(b, p, off, n, errp) < 0) {
            return -1;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vhdx_block_status(struct blk *b, uint64_t off, uint64_t len,
                             uint64_t *pnum, uint64_t *host_off,
                             vf_error **errp)
{
    struct vhdx_state *s = b->state;
    uint64_t n, host;
    int st = vhdx_range_state(b, off, len, &n, &host, errp);
    if (st < 0)
        return -1;
    uint64_t done = n, h = host;
    /* merge whole following blocks of the same status (and contiguous
     * host offsets for data) */
    while (done < len && (off + done) % s->block_size == 0) {
        uint64_t n2, host2;
        int st2 = vhdx_range_state(b, off + done, len - done, &n2, &host2,
                                   errp);
        if (st2 < 0)
            return -1;
        if (st2 != st || (st == BLK_DATA && host2 != h + done))
            break;
        done += n2;
    }
    *pnum = done;
    /* replayed sectors live in memory, not at the host offset */
    *host_off = st == BLK_DATA && !s->ov.n ? host : UINT64_MAX;
    return st;
}

/* ---- create and write ---- */

static void vhdx_guid_str(const uint8_t *g, char *out)
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1], g[0], g[5], g[4],
             g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
             g[15]);
}


static void vhdx_write_header(struct vhdx_state *s, uint8_t *h, uint64_t seq)
{
    memcpy(h, s->hdr, VHDX_HDR_SIZE);
    vhdx_put64(h + VHDX_H_SEQ, seq);
    vhdx_put32(h + VHDX_H_CRC, 0);
    vhdx_put32(h + VHDX_H_CRC, crc32c_skip(h, VHDX_HDR_SIZE, VHDX_H_CRC));
}

/* Write both headers with the next two sequence numbers. */
int vhdx_update_headers(struct blk *b, struct vhdx_state *s,
                               vf_error **errp)
{
    uint8_t h[VHDX_HDR_SIZE];
    uint64_t seq = vhdx_le64(s->hdr + VHDX_H_SEQ);
    int other = s->cur_hdr == 1 ? 2 : 1;
    vhdx_write_header(s, h, seq + 1);
    if (io_pwrite(b->file, h, VHDX_HDR_SIZE,
                  other == 1 ? VHDX_HDR1_OFF : VHDX_HDR2_OFF, errp) < 0)
        return -1;
    vhdx_write_header(s, h, seq + 2);
    if (io_pwrite(b->file, h, VHDX_HDR_SIZE,
                  other == 1 ? VHDX_HDR2_OFF : VHDX_HDR1_OFF, errp) < 0)
        return -1;
    memcpy(s->hdr, h, VHDX_HDR_SIZE);
    s->cur_hdr = other == 1 ? 2 : 1;
    return 0;
}

int vhdx_write_bat(struct blk *b, struct vhdx_state *s,
                          vf_error **errp)
{
    size_t bytes = (size_t)s->bat_entries * 8;
    uint8_t *buf = malloc(bytes ? bytes : 8);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < s->bat_entries; i++)
        vhdx_put64(buf + 8 * i, s->bat[i]);
    int r = io_pwrite(b->file, buf, bytes, s->bat_off, errp);
    free(buf);
    return r;
}

static int vhdx_flush(struct blk *b, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    if (!s->writing)
        return 0;
    if (s->dirty && vhdx_write_bat(b, s, errp) < 0)
        return -1;
    s->dirty = false;
    if (s->hdr_dirty) {
        if (vhdx_update_headers(b, s, errp) < 0)
            return -1;
        s->hdr_dirty = false;
    }
    return 0;
}

/* Metadata items: table, then the items at 64 KiB. */
static void vhdx_meta_entry(uint8_t *mt, int i, const char *guid,
                            uint32_t off, uint32_t len, uint32_t flags)
{
    uint8_t *e = mt + VHDX_MT_ENTRIES + i * VHDX_ME_SIZE;
    vhdx_guid(guid, e);
    vhdx_put32(e + VHDX_ME_OFF, off);
    vhdx_put32(e + VHDX_ME_LEN, len);
    vhdx_put32(e + VHDX_ME_FLAGS, flags);
}

static int vhdx_write_metadata(struct blk *b, struct vhdx_state *s,
                               vf_error **errp)
{
    uint8_t *m = calloc(1, VHDX_MT_TABLE_SIZE + 8192);
    if (!m) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(m, "metadata", 8);
    vhdx_put16(m + VHDX_MT_COUNT, s->plen ? 6 : 5);
    if (s->plen) {      /* the parent locator, at 64 KiB + 64 */
        vhdx_meta_entry(m, 5, GUID_PARENT, VHDX_MT_TABLE_SIZE + 64,
                        s->plen, 4);
        memcpy(m + VHDX_MT_TABLE_SIZE + 64, s->ploc, s->plen);
    }
    uint32_t base = VHDX_MT_TABLE_SIZE;
    vhdx_meta_entry(m, 0, GUID_FILEPAR, base, 8, 4);
    vhdx_meta_entry(m, 1, GUID_VSIZE, base + 8, 8, 6);
    s->vsize_off = s->meta_off + base + 8;
    vhdx_meta_entry(m, 2, GUID_PAGE83, base + 16, 16, 6);
    vhdx_meta_entry(m, 3, GUID_LSS, base + 32, 4, 6);
    vhdx_meta_entry(m, 4, GUID_PSS, base + 36, 4, 6);
    uint8_t *it = m + base;
    vhdx_put32(it, s->block_size);
    vhdx_put32(it + 4, (s->leave_alloc ? 1 : 0) | (s->has_parent ? 2 : 0));
    vhdx_put64(it + 8, b->size);
    memcpy(it + 16, s->disk_id, 16);
    vhdx_put32(it + 32, s->lss);
    vhdx_put32(it + 36, s->pss);
    int r = io_pwrite(b->file, m, VHDX_MT_TABLE_SIZE + 8192, s->meta_off,
                      errp);
    free(m);
    return r;
}

/* Append a UTF-16LE key-value pair to the parent locator being built. */
static void vhdx_pl_add(struct vhdx_state *s, int i, const char *key,
                        const char *val)
{
    uint8_t *e = s->ploc + VHDX_PL_ENTRIES + i * VHDX_PLE_SIZE;
    size_t kl = strlen(key), vl = strlen(val);
    vhdx_put32(e, s->plen);
    for (size_t k = 0; k < kl; k++)
        s->ploc[s->plen + 2 * k] = (uint8_t)key[k];
    s->plen += (uint32_t)(2 * kl);
    vhdx_put32(e + 4, s->plen);
    for (size_t k = 0; k < vl; k++)
        s->ploc[s->plen + 2 * k] = (uint8_t)(val[k] == '/' ? '\\' : val[k]);
    s->plen += (uint32_t)(2 * vl);
    vhdx_put16(e + 8, (uint16_t)(2 * kl));
    vhdx_put16(e + 10, (uint16_t)(2 * vl));
}

/* A differencing disk: the parent (a VHDX, opened by the core) is linked
 * by its DataWriteGuid and found by relative_path. */
static int vhdx_make_locator(struct blk *b, struct vhdx_state *s,
                             const char *backing, vf_error **errp)
{
    if (b->backing->drv != b->drv) {
        error_setg(errp, "a differencing VHDX needs a VHDX parent, not %s",
                   b->backing->drv->name);
        return -1;
    }
    /* key and value lengths are u16: paths longer than 16K characters
     * would not fit, and the item must stay small */
    if (strlen(backing) > 2000) {
        error_setg(errp, "parent path too long for a VHDX parent locator");
        return -1;
    }
    const struct vhdx_state *ps = b->backing->state;
    char link[40], rel[2100];
    snprintf(rel, sizeof(rel), "%s%s", backing[0] == '/' ? "" : ".\\",
             backing);
    vhdx_guid_str(ps->hdr + VHDX_H_DATA_WRITE, link);
    char braced[48];
    snprintf(braced, sizeof(braced), "{%s}", link);
    memset(s->ploc, 0, sizeof(s->ploc));
    vhdx_guid(GUID_PL_TYPE, s->ploc + VHDX_PL_TYPE);
    vhdx_put16(s->ploc + VHDX_PL_COUNT, 2);
    s->plen = VHDX_PL_ENTRIES + 2 * VHDX_PLE_SIZE;
    vhdx_pl_add(s, 0, "parent_linkage", braced);
    vhdx_pl_add(s, 1, "relative_path", rel);
    s->has_parent = true;
    return 0;
}

static int vhdx_create(struct blk *b, const struct fmt_create_opts *o,
                       vf_error **errp)
{
    struct vhdx_state *s = b->state;
    const char *sub = opts_get(o->o, "subformat");
    uint64_t bs = 0, log_size = VHDX_MIB, lss = 512, pss = 4096;
    bool have, zero_state = true;
    pthread_mutex_init(&s->lock, NULL);
    if (opts_get_size(o->o, "block_size", &bs, &have, errp) < 0 ||
        opts_get_size(o->o, "log_size", &log_size, &have, errp) < 0 ||
        opts_get_size(o->o, "logical_sector_size", &lss, &have, errp) < 0 ||
        opts_get_size(o->o, "physical_sector_size", &pss, &have, errp) < 0 ||
        opts_get_bool(o->o, "block_state_zero", &zero_state, errp) < 0)
        return -1;
    (void)zero_state;  /* new blocks are NOT_PRESENT, which reads as zeros */
    bool fixed = false;
    if (sub && !strcmp(sub, "fixed"))
        fixed = true;
    else if (sub && strcmp(sub, "dynamic")) {
        error_setg(errp, "invalid subformat '%s' (fixed or dynamic)", sub);
        return -1;
    }
    if (o->size > VHDX_MAX_SIZE) {
        error_setg(errp, "virtual size %" PRIu64 " too large for VHDX (max "
                   "64 TiB)", o->size);
        return -1;
    }
    if (bs == 0) {   /* qemu's automatic choice */
        bs = o->size > (UINT64_C(32) << 40) ? 64 * VHDX_MIB :
             o->size > (UINT64_C(100) << 30) ? 32 * VHDX_MIB :
             o->size > (UINT64_C(1) << 30) ? 16 * VHDX_MIB : 8 * VHDX_MIB;
    }
    if (bs < VHDX_MIB || bs > VHDX_MAX_BLOCK || (bs & (bs - 1))) {
        error_setg(errp, "block_size %" PRIu64 " invalid (a power of two, "
                   "1 MiB to 256 MiB)", bs);
        return -1;
    }
    if (log_size < VHDX_MIB || log_size % VHDX_MIB ||
        log_size > UINT32_MAX - VHDX_MIB + 1) {
        error_setg(errp, "log_size %" PRIu64 " invalid (a multiple of 1 MiB, "
                   "at least 1 MiB)", log_size);
        return -1;
    }
    if ((lss != 512 && lss != 4096) || (pss != 512 && pss != 4096)) {
        error_setg(errp, "sector sizes must be 512 or 4096");
        return -1;
    }
    if (o->backing_file && fixed) {
        error_setg(errp, "a fixed VHDX cannot have a parent");
        return -1;
    }
    if (o->backing_file && vhdx_make_locator(b, s, o->backing_file,
                                             errp) < 0)
        return -1;
    uint64_t size = (o->size + lss - 1) / lss * lss;
    b->size = size;
    s->block_size = (uint32_t)bs;
    s->lss = (uint32_t)lss;
    s->pss = (uint32_t)pss;
    s->leave_alloc = fixed;
    vhdx_geometry(s, size);
    s->log_off = VHDX_MIB;
    s->log_len = log_size;
    s->meta_off = s->log_off + s->log_len;
    s->meta_len = VHDX_MIB;
    s->bat_off = s->meta_off + s->meta_len;
    s->bat_len = (s->bat_entries * 8 + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    if (!s->bat_len)
        s->bat_len = VHDX_MIB;
    s->next_off = s->bat_off + s->bat_len;
    s->bat = calloc(s->bat_entries ? s->bat_entries : 1, 8);
    if (!s->bat) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (fixed) {
        for (uint64_t i = 0; i < s->data_blocks; i++)
            s->bat[vhdx_pb_index(s, i)] =
                (s->next_off + i * bs) | VHDX_PB_FULL;
        s->next_off += s->data_blocks * bs;
    }
    vhdx_random_guid(s->disk_id);

    /* file identifier */
    uint8_t fti[8 + VHDX_FTI_CREATOR_LEN] = "vhdxfile";
    static const char creator[] = "vmferry";
    for (size_t i = 0; creator[i]; i++)
        fti[VHDX_FTI_CREATOR + 2 * i] = (uint8_t)creator[i];
    if (io_pwrite(b->file, fti, sizeof(fti), 0, errp) < 0)
        return -1;
    /* region tables */
    uint8_t *rt = calloc(1, VHDX_RT_SIZE);
    if (!rt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(rt, "regi", 4);
    vhdx_put32(rt + VHDX_RT_COUNT, 2);
    uint8_t *e = rt + VHDX_RT_ENTRIES;
    vhdx_guid(VHDX_GUID_BAT, e);
    vhdx_put64(e + VHDX_RE_OFF, s->bat_off);
    vhdx_put32(e + VHDX_RE_LEN, (uint32_t)s->bat_len);
    vhdx_put32(e + VHDX_RE_REQUIRED, 1);
    e += VHDX_RE_SIZE;
    vhdx_guid(VHDX_GUID_META, e);
    vhdx_put64(e + VHDX_RE_OFF, s->meta_off);
    vhdx_put32(e + VHDX_RE_LEN, (uint32_t)s->meta_len);
    vhdx_put32(e + VHDX_RE_REQUIRED, 1);
    vhdx_put32(rt + VHDX_RT_CRC, crc32c_skip(rt, VHDX_RT_SIZE, VHDX_RT_CRC));
    int r = io_pwrite(b->file, rt, VHDX_RT_SIZE, VHDX_RT1_OFF, errp);
    if (r == 0)
        r = io_pwrite(b->file, rt, VHDX_RT_SIZE, VHDX_RT2_OFF, errp);
    free(rt);
    if (r < 0)
        return -1;
    /* headers: empty log (LogGuid zero) */
    memset(s->hdr, 0, sizeof(s->hdr));
    memcpy(s->hdr, "head", 4);
    vhdx_random_guid(s->hdr + VHDX_H_FILE_WRITE);
    vhdx_random_guid(s->hdr + VHDX_H_DATA_WRITE);
    vhdx_put16(s->hdr + VHDX_H_VERSION, 1);
    vhdx_put32(s->hdr + VHDX_H_LOG_LEN, (uint32_t)s->log_len);
    vhdx_put64(s->hdr + VHDX_H_LOG_OFF, s->log_off);
    s->cur_hdr = 2;
    if (vhdx_update_headers(b, s, errp) < 0 ||
        vhdx_write_metadata(b, s, errp) < 0 ||
        io_truncate(b->file, s->next_off, errp) < 0)
        return -1;
    s->file_size = s->next_off;
    s->writing = true;
    s->dirty = true;
    b->zero_init = !o->backing_file;
    b->cluster_size = s->block_size;
    return vhdx_flush(b, errp);
}

/* Copy the parent's content of block bi to host offset at. */
static int vhdx_copy_parent(struct blk *b, uint64_t bi, uint64_t at,
                            vf_error **errp)
{
    struct vhdx_state *s = b->state;
    uint64_t g = bi * s->block_size;
    size_t n = b->size - g < s->block_size ? (size_t)(b->size - g)
                                           : s->block_size;
    uint8_t *buf = malloc(n);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = blk_read_backing(b, buf, g, n, errp);
    if (r == 0)
        r = io_pwrite(b->file, buf, n, at, errp);
    free(buf);
    return r;
}

static int vhdx_pwrite(struct blk *b, const void *buf, uint64_t off,
                       size_t len, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    const uint8_t *p = buf;
    pthread_mutex_lock(&s->lock);
    if (!s->writing) {
        /* first write to an existing image: new FileWriteGuid */
        vhdx_random_guid(s->hdr + VHDX_H_FILE_WRITE);
        vhdx_random_guid(s->hdr + VHDX_H_DATA_WRITE);
        s->writing = true;
        s->hdr_dirty = true;
        if (vhdx_flush(b, errp) < 0) {
            pthread_mutex_unlock(&s->lock);
            return -1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (len) {
        uint64_t bi = off / s->block_size;
        uint64_t in = off % s->block_size;
        size_t n = s->block_size - in < len ? (size_t)(s->block_size - in)
                                            : len;
        pthread_mutex_lock(&s->lock);
        uint64_t *e = &s->bat[vhdx_pb_index(s, bi)];
        unsigned st = *e & VHDX_BAT_STATE_MASK;
        if (st == VHDX_PB_PARTIAL) {
            pthread_mutex_unlock(&s->lock);
            error_setg(errp, "writing to a partially present VHDX block is "
                       "not supported");
            return -1;
        }
        if (st != VHDX_PB_FULL) {
            /* a fresh block at the end of the file reads as zeros, which
             * is what ZERO/UNMAPPED blocks read as; NOT_PRESENT blocks of
             * a differencing disk take the parent's content first, so
             * that the block is wholly ours (FULLY_PRESENT) */
            uint64_t at = s->next_off;
            if (io_truncate(b->file, at + s->block_size, errp) < 0 ||
                (b->backing && st == VHDX_PB_NOT_PRESENT &&
                 vhdx_copy_parent(b, bi, at, errp) < 0)) {
                pthread_mutex_unlock(&s->lock);
                return -1;
            }
            s->next_off = at + s->block_size;
            s->file_size = s->next_off;
            *e = at | VHDX_PB_FULL;
            s->dirty = true;
        }
        uint64_t host = (*e & VHDX_BAT_OFF_MASK) + in;
        pthread_mutex_unlock(&s->lock);
        if (io_pwrite(b->file, p, n, host, errp) < 0)
            return -1;
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int vhdx_zero(struct blk *b, uint64_t off, uint64_t len,
                     vf_error **errp)
{
    struct vhdx_state *s = b->state;
    while (len) {
        uint64_t bi = off / s->block_size;
        uint64_t in = off % s->block_size;
        uint64_t n = s->block_size - in < len ? s->block_size - in : len;
        pthread_mutex_lock(&s->lock);
        uint64_t *e = &s->bat[vhdx_pb_index(s, bi)];
        unsigned st = *e & VHDX_BAT_STATE_MASK;
        bool done = true;
        if (st == VHDX_PB_ZERO || (!b->backing && st != VHDX_PB_FULL &&
                                   st != VHDX_PB_PARTIAL)) {
            /* already zeros */
        } else if (in == 0 && (n == s->block_size || off + n == b->size) &&
                   !s->leave_alloc) {
            *e = VHDX_PB_ZERO;      /* its space is left unused */
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

/* ---- check, info, measure, resize ---- */

static int vhdx_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int vhdx_check(struct blk *b, struct check_report *r, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    if (s->hdr_bad[0] || s->hdr_bad[1])
        check_add(r, CHECK_CORRUPTION, "VHDX header %d is invalid",
                  s->hdr_bad[0] ? 1 : 2);
    if (s->rt_bad[0] || s->rt_bad[1])
        check_add(r, CHECK_CORRUPTION, "VHDX region table %d is invalid",
                  s->rt_bad[0] ? 1 : 2);
    if (s->log_replayed)
        check_add(r, CHECK_INFO, "VHDX log of %" PRIu64 " entries was "
                  "pending and has been replayed in memory", s->ov.entries);
    uint64_t *offs = malloc((size_t)s->bat_entries * 8 + 8);
    if (!offs) {
        error_setg(errp, "out of memory");
        return -1;
    }
    size_t n = 0;
    uint64_t alloc = 0;
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        bool is_sb = (i + 1) % (s->chunk_ratio + 1) == 0;
        unsigned st = s->bat[i] & VHDX_BAT_STATE_MASK;
        if (is_sb ? st == VHDX_SB_PRESENT
                  : st == VHDX_PB_FULL || st == VHDX_PB_PARTIAL) {
            offs[n++] = s->bat[i] & VHDX_BAT_OFF_MASK;
            if (!is_sb)
                alloc++;
        }
    }
    qsort(offs, n, 8, vhdx_cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (offs[i] - offs[i - 1] < VHDX_MIB)
            check_add(r, CHECK_CORRUPTION, "VHDX blocks at 0x%" PRIx64
                      " and 0x%" PRIx64 " overlap", offs[i - 1], offs[i]);
    for (size_t i = 0; i < n; i++)
        if (vhdx_overlap(offs[i], VHDX_MIB, s->bat_off, s->bat_len) ||
            vhdx_overlap(offs[i], VHDX_MIB, s->meta_off, s->meta_len) ||
            vhdx_overlap(offs[i], VHDX_MIB, s->log_off, s->log_len))
            check_add(r, CHECK_CORRUPTION, "VHDX block at 0x%" PRIx64
                      " overlaps metadata", offs[i]);
    free(offs);
    r->have_cluster_stats = true;
    r->total_clusters = s->data_blocks;
    r->allocated_clusters = alloc;
    r->image_end_offset = s->next_off;
    return 0;
}


static int vhdx_info(struct blk *b, struct json_object *spec,
                     vf_error **errp)
{
    struct vhdx_state *s = b->state;
    char g[40];
    json_object_object_add(spec, "subformat", json_object_new_string(
        s->has_parent ? "differencing" : s->leave_alloc ? "fixed"
                                                        : "dynamic"));
    json_object_object_add(spec, "block-size",
                           json_object_new_int64(s->block_size));
    json_object_object_add(spec, "logical-sector-size",
                           json_object_new_int64(s->lss));
    json_object_object_add(spec, "physical-sector-size",
                           json_object_new_int64(s->pss));
    json_object_object_add(spec, "log-size",
                           json_object_new_int64((int64_t)s->log_len));
    json_object_object_add(spec, "log-pending",
                           json_object_new_boolean(s->log_replayed));
    if (s->log_replayed)
        json_object_object_add(spec, "log-entries-replayed",
                               json_object_new_int64((int64_t)s->ov.entries));
    json_object_object_add(spec, "header-sequence", json_object_new_int64(
        (int64_t)vhdx_le64(s->hdr + VHDX_H_SEQ)));
    vhdx_guid_str(s->disk_id, g);
    json_object_object_add(spec, "disk-id", json_object_new_string(g));
    (void)errp;
    return 0;
}

static int vhdx_measure(const struct fmt_create_opts *o, struct blk *src,
                        uint64_t *required, uint64_t *fully, vf_error **errp)
{
    const char *sub = opts_get(o->o, "subformat");
    uint64_t bs = 0, log_size = VHDX_MIB, lss = 512, pss = 4096;
    bool have, zs;
    if (opts_get_size(o->o, "block_size", &bs, &have, errp) < 0 ||
        opts_get_size(o->o, "log_size", &log_size, &have, errp) < 0 ||
        opts_get_size(o->o, "logical_sector_size", &lss, &have, errp) < 0 ||
        opts_get_size(o->o, "physical_sector_size", &pss, &have, errp) < 0 ||
        opts_get_bool(o->o, "block_state_zero", &zs, errp) < 0)
        return -1;
    if (bs == 0)
        bs = o->size > (UINT64_C(32) << 40) ? 64 * VHDX_MIB :
             o->size > (UINT64_C(100) << 30) ? 32 * VHDX_MIB :
             o->size > (UINT64_C(1) << 30) ? 16 * VHDX_MIB : 8 * VHDX_MIB;
    if (bs < VHDX_MIB || bs > VHDX_MAX_BLOCK || (bs & (bs - 1)) ||
        (lss != 512 && lss != 4096)) {
        error_setg(errp, "block_size %" PRIu64 " or sector size invalid", bs);
        return -1;
    }
    struct vhdx_state g = { .block_size = (uint32_t)bs, .lss = (uint32_t)lss };
    vhdx_geometry(&g, o->size);
    uint64_t meta = VHDX_MIB + log_size + VHDX_MIB +
                    ((g.bat_entries * 8 + VHDX_MIB - 1) & ~(VHDX_MIB - 1));
    uint64_t used;
    if (blk_count_data_blocks(src, bs, g.data_blocks * bs, &used, errp) < 0)
        return -1;
    *fully = meta + g.data_blocks * bs;
    *required = sub && !strcmp(sub, "fixed") ? *fully : meta + used * bs;
    return 0;
}

const struct fmt_driver fmt_vhdx = {
    .name = "vhdx",
    .desc = "Hyper-V VHDX (fixed, dynamic, differencing; log replay)",
    .state_size = sizeof(struct vhdx_state),
    .flags = FMT_F_PARALLEL_WRITE | FMT_F_BACKING | FMT_F_HOST_IN_FILE,
    .probe = vhdx_probe,
    .open = vhdx_open,
    .close = vhdx_close,
    .create = vhdx_create,
    .pread = vhdx_pread,
    .pwrite = vhdx_pwrite,
    .zero = vhdx_zero,
    .block_status = vhdx_block_status,
    .flush = vhdx_flush,
    .check = vhdx_check,
    .info = vhdx_info,
    .measure = vhdx_measure,
    .resize = vhdx_resize,
};
