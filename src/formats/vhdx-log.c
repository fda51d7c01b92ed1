/*
 * vhdx-log.c: VHDX log replay onto a private in-memory overlay.
 *
 * [MS-VHDX] 2.3: the log is a circular buffer of entries ("loge" header,
 * "desc"/"zero" descriptors, "data" sectors), all CRC-32C protected and
 * tagged with the header's LogGuid.  The active sequence ends at the
 * valid entry with the highest sequence number (the head); its Tail field
 * names the oldest entry still to replay.  A writer that crashed leaves
 * such a sequence behind, and a reader must apply it before trusting the
 * BAT or metadata.  We never write the source: replayed sectors are kept
 * in memory and laid over every read of the container (vhdx_fread).
 */
#include "formats/vhdx.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/crc32c.h"

void vhdx_guid(const char *str, uint8_t out[16])
{
    uint8_t b[16] = { 0 };
    int n = 0;
    for (const char *p = str; *p && n < 16; p++) {
        if (*p == '-')
            continue;
        int hi = p[0] <= '9' ? p[0] - '0' : (p[0] | 0x20) - 'a' + 10;
        int lo = p[1] <= '9' ? p[1] - '0' : (p[1] | 0x20) - 'a' + 10;
        b[n++] = (uint8_t)(hi << 4 | lo);
        p++;
    }
    /* Data1 (4), Data2 (2), Data3 (2) little-endian; Data4 as is */
    out[0] = b[3]; out[1] = b[2]; out[2] = b[1]; out[3] = b[0];
    out[4] = b[5]; out[5] = b[4];
    out[6] = b[7]; out[7] = b[6];
    memcpy(out + 8, b + 8, 8);
}

bool vhdx_guid_is(const uint8_t *p, const char *str)
{
    uint8_t g[16];
    vhdx_guid(str, g);
    return !memcmp(p, g, 16);
}

void vhdx_overlay_free(struct vhdx_overlay *ov)
{
    for (size_t i = 0; i < ov->n; i++)
        free(ov->e[i].data);
    free(ov->e);
    memset(ov, 0, sizeof(*ov));
}

static int vhdx_overlay_add(struct vhdx_overlay *ov, uint64_t off,
                            uint64_t len, const uint8_t *data,
                            vf_error **errp)
{
    if (ov->n == ov->cap) {
        size_t nc = ov->cap ? ov->cap * 2 : 64;
        struct vhdx_ov_ent *ne = realloc(ov->e, nc * sizeof(*ne));
        if (!ne) {
            error_setg(errp, "out of memory");
            return -1;
        }
        ov->e = ne;
        ov->cap = nc;
    }
    struct vhdx_ov_ent *e = &ov->e[ov->n];
    e->off = off;
    e->len = len;
    e->data = NULL;
    if (data) {
        e->data = malloc(len);
        if (!e->data) {
            error_setg(errp, "out of memory");
            return -1;
        }
        memcpy(e->data, data, len);
    }
    if (!ov->n || off < ov->lo)
        ov->lo = off;
    if (!ov->n || off + len > ov->hi)
        ov->hi = off + len;
    ov->n++;
    return 0;
}

int vhdx_fread(struct blk *b, void *buf, size_t len, uint64_t off,
               vf_error **errp)
{
    struct vhdx_state *s = b->state;
    if (io_pread(b->file, buf, len, off, errp) < 0)
        return -1;
    const struct vhdx_overlay *ov = &s->ov;
    if (!ov->n || off >= ov->hi || off + len <= ov->lo)
        return 0;
    for (size_t i = 0; i < ov->n; i++) {
        const struct vhdx_ov_ent *e = &ov->e[i];
        uint64_t a = off > e->off ? off : e->off;
        uint64_t z = off + len < e->off + e->len ? off + len
                                                 : e->off + e->len;
        if (a >= z)
            continue;
        uint8_t *dst = (uint8_t *)buf + (a - off);
        if (e->data)
            memcpy(dst, e->data + (a - e->off), z - a);
        else
            memset(dst, 0, z - a);
    }
    return 0;
}

/* One parsed, fully validated log entry. */
struct vhdx_lent {
    uint64_t pos, seq;
    uint32_t len, tail, count;
};

/* Validate the entry at pos of the doubled log image L (2 * log_len
 * bytes, so an entry that wraps is contiguous). */
static bool vhdx_log_entry_ok(const uint8_t *L, uint64_t log_len,
                              uint64_t pos, const uint8_t *guid,
                              struct vhdx_lent *out)
{
    const uint8_t *e = L + pos;
    if (memcmp(e + VHDX_LE_SIG, "loge", 4))
        return false;
    uint32_t len = vhdx_le32(e + VHDX_LE_LEN);
    uint32_t tail = vhdx_le32(e + VHDX_LE_TAIL);
    uint32_t count = vhdx_le32(e + VHDX_LE_DESC_COUNT);
    uint64_t seq = vhdx_le64(e + VHDX_LE_SEQ);
    if (len < VHDX_LOG_SECTOR || len % VHDX_LOG_SECTOR || len > log_len ||
        tail % VHDX_LOG_SECTOR || tail >= log_len ||
        memcmp(e + VHDX_LE_LOG_GUID, guid, 16))
        return false;
    uint64_t dsec = (VHDX_LE_HDR_SIZE + (uint64_t)count * VHDX_LD_SIZE +
                     VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
    if (dsec > len / VHDX_LOG_SECTOR)
        return false;
    if (crc32c_skip(e, len, VHDX_LE_CRC) != vhdx_le32(e + VHDX_LE_CRC))
        return false;
    uint64_t data = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *d = e + VHDX_LE_HDR_SIZE + (uint64_t)i * VHDX_LD_SIZE;
        if (vhdx_le64(d + VHDX_LD_SEQ) != seq)
            return false;
        if (!memcmp(d, "zero", 4)) {
            if (vhdx_le64(d + VHDX_LD_LEADING) % VHDX_LOG_SECTOR ||
                vhdx_le64(d + VHDX_LD_FILE_OFF) % VHDX_LOG_SECTOR)
                return false;
        } else if (!memcmp(d, "desc", 4)) {
            if (vhdx_le64(d + VHDX_LD_FILE_OFF) % VHDX_LOG_SECTOR)
                return false;
            if (dsec + data >= len / VHDX_LOG_SECTOR)
                return false;
            const uint8_t *ds = e + (dsec + data) * VHDX_LOG_SECTOR;
            if (memcmp(ds, "data", 4) ||
                vhdx_le32(ds + VHDX_DS_SEQ_HIGH) != (uint32_t)(seq >> 32) ||
                vhdx_le32(ds + VHDX_DS_SEQ_LOW) != (uint32_t)seq)
                return false;
            data++;
        } else {
            return false;
        }
    }
    out->pos = pos;
    out->seq = seq;
    out->len = len;
    out->tail = tail;
    out->count = count;
    return true;
}

static int vhdx_cmp_seq_desc(const void *a, const void *b)
{
    const struct vhdx_lent *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* Apply one validated entry to the overlay. */
static int vhdx_log_apply(struct vhdx_state *s, const uint8_t *L,
                          const struct vhdx_lent *le, uint64_t real_size,
                          vf_error **errp)
{
    const uint8_t *e = L + le->pos;
    uint64_t flushed = vhdx_le64(e + VHDX_LE_FLUSHED);
    uint64_t last = vhdx_le64(e + VHDX_LE_LAST);
    /* a VHDX holds at most 64 TiB of data plus its metadata */
    if (last > 2 * VHDX_MAX_SIZE || flushed > last) {
        error_setg(errp, "VHDX log entry %" PRIu64 " last file offset 0x%"
                   PRIx64 " out of range", le->seq, last);
        return -1;
    }
    if (flushed > real_size) {
        error_setg(errp, "VHDX log entry %" PRIu64 " needs a file of 0x%"
                   PRIx64 " bytes, the file has 0x%" PRIx64, le->seq,
                   flushed, real_size);
        return -1;
    }
    if (last > s->ov.last_file_off)
        s->ov.last_file_off = last;
    uint64_t dsec = (VHDX_LE_HDR_SIZE + (uint64_t)le->count * VHDX_LD_SIZE +
                     VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR;
    uint64_t data = 0;
    for (uint32_t i = 0; i < le->count; i++) {
        const uint8_t *d = e + VHDX_LE_HDR_SIZE + (uint64_t)i * VHDX_LD_SIZE;
        uint64_t off = vhdx_le64(d + VHDX_LD_FILE_OFF);
        uint64_t len = !memcmp(d, "zero", 4) ? vhdx_le64(d + VHDX_LD_LEADING)
                                             : VHDX_LOG_SECTOR;
        if (off > last || len > last - off) {
            error_setg(errp, "VHDX log entry %" PRIu64 " writes 0x%" PRIx64
                       "+0x%" PRIx64 " beyond its last file offset 0x%"
                       PRIx64, le->seq, off, len, last);
            return -1;
        }
        if (off < s->log_off + s->log_len && off + len > s->log_off) {
            error_setg(errp, "VHDX log entry %" PRIu64 " writes into the log "
                       "itself at 0x%" PRIx64, le->seq, off);
            return -1;
        }
        if (!memcmp(d, "zero", 4)) {
            if (len && vhdx_overlay_add(&s->ov, off, len, NULL, errp) < 0)
                return -1;
            continue;
        }
        uint8_t sec[VHDX_LOG_SECTOR];
        const uint8_t *ds = e + (dsec + data++) * VHDX_LOG_SECTOR;
        memcpy(sec, d + VHDX_LD_LEADING, 8);
        memcpy(sec + 8, ds + VHDX_DS_DATA, VHDX_LOG_SECTOR - 12);
        memcpy(sec + VHDX_DS_SEQ_LOW, d + VHDX_LD_TRAILING, 4);
        if (vhdx_overlay_add(&s->ov, off, VHDX_LOG_SECTOR, sec, errp) < 0)
            return -1;
    }
    s->ov.entries++;
    return 0;
}

int vhdx_log_replay(struct blk *b, struct vhdx_state *s, vf_error **errp)
{
    static const uint8_t zero_guid[16];
    const uint8_t *guid = s->hdr + VHDX_H_LOG_GUID;
    if (!memcmp(guid, zero_guid, 16))
        return 0;
    int64_t fsz = io_size(b->file, errp);
    if (fsz < 0)
        return -1;
    uint64_t real = (uint64_t)fsz;
    /* The log is read whole (twice, to unwrap it): Hyper-V writes 1 MiB
     * logs and qemu's default is 1 MiB; 128 MiB is generous. */
    if (s->log_len < VHDX_MIB || s->log_len > 128 * VHDX_MIB) {
        error_setg(errp, "VHDX log length 0x%" PRIx64 " out of range",
                   s->log_len);
        return -1;
    }
    if (s->log_off > real || s->log_len > real - s->log_off) {
        error_setg(errp, "VHDX log at 0x%" PRIx64 " beyond end of file",
                   s->log_off);
        return -1;
    }
    int ret = -1;
    size_t nsec = (size_t)(s->log_len / VHDX_LOG_SECTOR);
    uint8_t *L = malloc(2 * s->log_len);
    struct vhdx_lent *ents = calloc(nsec, sizeof(*ents));
    int32_t *at = malloc(nsec * sizeof(*at));
    struct vhdx_lent *chain = calloc(nsec, sizeof(*chain));
    if (!L || !ents || !at || !chain) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (io_pread(b->file, L, s->log_len, s->log_off, errp) < 0)
        goto out;
    memcpy(L + s->log_len, L, s->log_len);
    size_t n = 0;
    for (size_t i = 0; i < nsec; i++) {
        at[i] = -1;
        if (vhdx_log_entry_ok(L, s->log_len, i * VHDX_LOG_SECTOR, guid,
                              &ents[n]))
            n++;
    }
    if (n == 0) {
        /* a LogGuid with no valid entry: nothing was logged */
        ret = 0;
        goto out;
    }
    qsort(ents, n, sizeof(*ents), vhdx_cmp_seq_desc);
    for (size_t i = 0; i < n; i++)
        at[ents[i].pos / VHDX_LOG_SECTOR] = (int32_t)i;
    /* The head is the highest sequence whose tail leads to it through
     * consecutive entries; a few candidates are enough (stale entries of
     * this LogGuid are older, hence lower). */
    size_t clen = 0;
    for (size_t h = 0; h < n && h < 16 && !clen; h++) {
        const struct vhdx_lent *head = &ents[h];
        uint64_t pos = head->tail;
        uint64_t want = 0;
        size_t k = 0;
        for (; k < n; k++) {
            int32_t j = at[pos / VHDX_LOG_SECTOR];
            if (j < 0 || (k && ents[j].seq != want))
                break;
            chain[k] = ents[j];
            want = ents[j].seq + 1;
            if (ents[j].pos == head->pos) {
                clen = k + 1;
                break;
            }
            pos = (pos + ents[j].len) % s->log_len;
        }
    }
    if (!clen) {
        error_setg(errp, "VHDX log has entries but no valid sequence from "
                   "tail to head");
        goto out;
    }
    for (size_t k = 0; k < clen; k++)
        if (vhdx_log_apply(s, L, &chain[k], real, errp) < 0)
            goto out;
    s->ov.head_seq = chain[clen - 1].seq;
    s->log_replayed = true;
    ret = 0;
out:
    free(L);
    free(ents);
    free(at);
    free(chain);
    return ret;
}
