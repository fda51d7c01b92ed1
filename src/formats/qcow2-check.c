/*
 * qcow2-check.c: qcow2 consistency check (like qemu-img check), measure
 * (like qemu-img measure) and resize.
 *
 * Spec: QEMU's docs/interop/qcow2.txt.  check rebuilds every cluster's
 * expected refcount from the L1/L2 tables of the active layer and the
 * internal snapshots, the refcount structures themselves, the snapshot
 * table and the bitmaps, then compares with the stored refcounts.
 */
#include "formats/qcow2.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Two 16-bit counters per host cluster: 2^26 clusters (4 TiB of file at
 * 64 KiB clusters) is 256 MiB; a bigger file is refused rather than let a
 * hostile size drive the allocation. */
#define QCOW2_CHECK_MAX_CLUSTERS (1ULL << 26)
/* QEMU allows at most 65536 snapshots and a 64 MiB snapshot table. */
#define QCOW2_MAX_SN_TABLE       (64u << 20)
/* QEMU allows 65535 bitmaps; their directory stays below 64 MiB. */
#define QCOW2_MAX_BITMAPS        65535
#define QCOW2_MAX_BM_DIR         (64u << 20)

struct qcow2_ck {
    struct blk *b;
    struct qcow2_state *s;
    struct check_report *r;
    uint64_t fsz;
    uint64_t n;          /* host clusters in the file */
    uint16_t *ref;       /* expected refcounts (saturating) */
    uint16_t *st;        /* stored refcounts (saturating) */
    uint8_t *buf;        /* one cluster */
    uint64_t next_contig;
    uint64_t budget;     /* table bytes we may still read */
    bool stopped;
};

/* A hostile image can point thousands of L1 entries, snapshots or bitmaps
 * at the same big tables; a real one reads each table about once per
 * snapshot.  Reading 16 times the file (at least 1 GiB) is the cap. */
static bool ck_spend(struct qcow2_ck *k, uint64_t bytes)
{
    if (k->stopped)
        return false;
    if (bytes > k->budget) {
        check_add(k->r, CHECK_ERROR, "ERROR: metadata references more "
                  "tables than the file can hold; check stopped");
        k->stopped = true;
        return false;
    }
    k->budget -= bytes;
    return true;
}

static void ck_inc(struct qcow2_ck *k, uint64_t off, uint64_t len,
                   const char *what)
{
    if (!len)
        return;
    uint64_t cb = k->s->cluster_bits;
    uint64_t first = off >> cb;
    uint64_t last = (len - 1 > UINT64_MAX - off ? UINT64_MAX
                                                 : off + len - 1) >> cb;
    for (uint64_t c = first; c <= last; c++) {
        if (c >= k->n) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: %s at 0x%" PRIx64
                      " beyond end of file", what, c << cb);
            return;
        }
        if (k->ref[c] != UINT16_MAX)
            k->ref[c]++;
    }
}

static uint64_t ck_stored(const struct qcow2_ck *k, uint64_t host)
{
    uint64_t c = host >> k->s->cluster_bits;
    return c < k->n ? k->st[c] : 0;
}

/* Refcount table and blocks: count them, and remember stored refcounts. */
static int ck_refcounts(struct qcow2_ck *k, vf_error **errp)
{
    struct qcow2_state *s = k->s;
    uint64_t cs = s->cluster_size;
    size_t tb = (size_t)s->reft_clusters * cs;   /* <= 8 MiB, see open */
    ck_inc(k, s->reft_offset, tb, "refcount table");
    uint8_t *t = malloc(tb ? tb : 1);
    if (!t) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(k->b->file, t, tb, s->reft_offset, errp) < 0) {
        free(t);
        return -1;
    }
    uint64_t epb = cs * 8 >> s->refcount_order;
    for (uint64_t i = 0; i < tb / 8; i++) {
        uint64_t bo = qcow2_get_be64(t + i * 8) & QCOW2_REFT_OFFSET_MASK;
        if (!bo)
            continue;
        if (bo & (cs - 1)) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR refcount block %" PRIu64
                      " is not cluster aligned; refcount table entry "
                      "corrupted", i);
            continue;
        }
        if (bo >= k->fsz) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR refcount block %" PRIu64
                      " offset 0x%" PRIx64 " beyond end of file", i, bo);
            continue;
        }
        ck_inc(k, bo, cs, "refcount block");
        if (i * epb >= k->n)
            continue;   /* counts only clusters beyond the end of file */
        if (io_pread(k->b->file, k->buf, cs, bo, errp) < 0) {
            free(t);
            return -1;
        }
        for (uint64_t j = 0; j < epb; j++) {
            uint64_t c = i * epb + j;
            if (c >= k->n)
                break;
            uint64_t v = qcow2_rc_get(k->buf, j, s->refcount_order);
            k->st[c] = v > UINT16_MAX ? UINT16_MAX : (uint16_t)v;
        }
    }
    free(t);
    return 0;
}

/* One L2 table's entries. */
static void ck_l2(struct qcow2_ck *k, uint64_t l1i, bool active)
{
    struct qcow2_state *s = k->s;
    uint64_t cs = s->cluster_size;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t total = (k->b->size + cs - 1) >> s->cluster_bits;
    for (uint64_t j = 0; j < per_l2; j++) {
        const uint8_t *p = k->buf + j * s->l2_entry_size;
        uint64_t e = qcow2_get_be64(p);
        uint64_t gci = l1i * per_l2 + j;
        bool counted = active && gci < total;
        if (e & QCOW2_OFLAG_COMPRESSED) {
            uint64_t h, n;
            qcow2_compressed_span(s, e, &h, &n);
            if (e & QCOW2_OFLAG_COPIED)
                check_add(k->r, CHECK_CORRUPTION, "ERROR: compressed cluster "
                          "%" PRIu64 " has copied flag set", gci);
            if (h >= k->fsz)
                check_add(k->r, CHECK_CORRUPTION, "ERROR: compressed cluster "
                          "offset 0x%" PRIx64 " beyond end of file", h);
            else
                ck_inc(k, h, n, "compressed cluster");
            if (counted) {
                k->r->allocated_clusters++;
                k->r->compressed_clusters++;
                k->r->fragmented_clusters++;
            }
            continue;
        }
        uint64_t rsv = QCOW2_L2E_RESERVED;
        if (s->version < 3 || s->ext_l2)
            rsv |= QCOW2_OFLAG_ZERO;
        if (e & rsv)
            check_add(k->r, CHECK_CORRUPTION, "ERROR: L2 entry 0x%" PRIx64
                      " (guest cluster %" PRIu64 ") has reserved bits set",
                      e, gci);
        uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
        if (s->ext_l2) {
            uint64_t bm = qcow2_get_be64(p + 8);
            if ((bm & 0xffffffffu) && !h)
                check_add(k->r, CHECK_CORRUPTION, "ERROR: allocated "
                          "subclusters without a host offset (L2 entry "
                          "0x%" PRIx64 ")", e);
            if ((bm & 0xffffffffu) & (bm >> 32))
                check_add(k->r, CHECK_CORRUPTION, "ERROR: invalid subcluster "
                          "bitmap 0x%" PRIx64, bm);
        }
        if (!h)
            continue;
        if (h & (cs - 1)) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR offset=%" PRIx64
                      ": Cluster is not properly aligned; L2 entry corrupted.",
                      h);
            continue;
        }
        if (h >= k->fsz) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: data cluster offset "
                      "0x%" PRIx64 " beyond end of file", h);
            continue;
        }
        ck_inc(k, h, cs, "data cluster");
        if (!counted)
            continue;
        uint64_t rc = ck_stored(k, h);
        if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED))
            check_add(k->r, CHECK_CORRUPTION, "ERROR OFLAG_COPIED data "
                      "cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64, e, rc);
        k->r->allocated_clusters++;
        if (k->next_contig && h != k->next_contig)
            k->r->fragmented_clusters++;
        k->next_contig = h + cs;
    }
}

/* An L1 table (active or a snapshot's) and its L2 tables. */
static int ck_l1(struct qcow2_ck *k, uint64_t l1off, uint32_t l1n,
                 bool active, vf_error **errp)
{
    struct qcow2_state *s = k->s;
    uint64_t cs = s->cluster_size;
    if (!l1n)
        return 0;
    uint64_t bytes = (uint64_t)l1n * 8;
    if (l1n > QCOW2_MAX_L1_BYTES / 8 || (l1off & (cs - 1)) ||
        l1off >= k->fsz || bytes > k->fsz - l1off) {
        check_add(k->r, CHECK_CORRUPTION, "ERROR: L1 table offset 0x%" PRIx64
                  " (%" PRIu32 " entries) invalid or beyond end of file",
                  l1off, l1n);
        return 0;
    }
    ck_inc(k, l1off, bytes, "L1 table");
    if (!ck_spend(k, bytes))
        return 0;
    uint8_t *l1 = malloc(bytes);
    if (!l1) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(k->b->file, l1, bytes, l1off, errp) < 0) {
        free(l1);
        return -1;
    }
    for (uint32_t i = 0; i < l1n; i++) {
        uint64_t e = qcow2_get_be64(l1 + (size_t)i * 8);
        uint64_t off = e & QCOW2_L1E_OFFSET_MASK;
        if (e & QCOW2_L1E_RESERVED)
            check_add(k->r, CHECK_CORRUPTION, "ERROR: L1 entry %" PRIu32
                      " (0x%" PRIx64 ") has reserved bits set", i, e);
        if (!off)
            continue;
        if (off & (cs - 1)) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: L2 table offset 0x%"
                      PRIx64 " not cluster aligned (L1 index %" PRIu32 ")",
                      off, i);
            continue;
        }
        if (off >= k->fsz) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: L2 table offset 0x%"
                      PRIx64 " beyond end of file (L1 index %" PRIu32 ")",
                      off, i);
            continue;
        }
        ck_inc(k, off, cs, "L2 table");
        if (active) {
            uint64_t rc = ck_stored(k, off);
            if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED))
                check_add(k->r, CHECK_CORRUPTION, "ERROR OFLAG_COPIED L2 "
                          "cluster: l1_index=%" PRIu32 " l1_entry=%" PRIx64
                          " refcount=%" PRIu64, i, e, rc);
        }
        if (!ck_spend(k, cs))
            break;
        if (io_pread(k->b->file, k->buf, cs, off, errp) < 0) {
            free(l1);
            return -1;
        }
        ck_l2(k, i, active);
    }
    free(l1);
    return 0;
}

/* Internal snapshots: their table and their L1/L2 trees. */
static int ck_snapshots(struct qcow2_ck *k, vf_error **errp)
{
    struct qcow2_state *s = k->s;
    uint64_t off = s->snapshots_offset;
    if (!s->nb_snapshots)
        return 0;
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS ||
        (off & (s->cluster_size - 1)) || off >= k->fsz) {
        check_add(k->r, CHECK_CORRUPTION, "ERROR: snapshot table at 0x%"
                  PRIx64 " (%" PRIu32 " entries) invalid", off,
                  s->nb_snapshots);
        return 0;
    }
    uint8_t hdr[QCOW2_SN_FIXED_LEN];
    uint64_t pos = off;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (pos - off > QCOW2_MAX_SN_TABLE ||
            QCOW2_SN_FIXED_LEN > k->fsz - pos) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: snapshot table "
                      "runs past end of file");
            return 0;
        }
        if (!ck_spend(k, sizeof(hdr)))
            return 0;
        if (io_pread(k->b->file, hdr, sizeof(hdr), pos, errp) < 0)
            return -1;
        uint64_t l1off = qcow2_get_be64(hdr + QCOW2_SN_L1_OFFSET);
        uint32_t l1n = qcow2_get_be32(hdr + QCOW2_SN_L1_SIZE);
        uint64_t len = QCOW2_SN_FIXED_LEN +
                       (uint64_t)qcow2_get_be32(hdr + QCOW2_SN_EXTRA_LEN) +
                       qcow2_get_be16(hdr + QCOW2_SN_ID_LEN) +
                       qcow2_get_be16(hdr + QCOW2_SN_NAME_LEN);
        pos += (len + 7) & ~7ULL;       /* len < 2^33: no overflow */
        if (ck_l1(k, l1off, l1n, false, errp) < 0)
            return -1;
        if (pos > k->fsz)
            break;
    }
    ck_inc(k, off, pos - off, "snapshot table");
    return 0;
}

/* Persistent dirty bitmaps: directory, bitmap tables, bitmap clusters. */
static int ck_bitmaps(struct qcow2_ck *k, vf_error **errp)
{
    struct qcow2_state *s = k->s;
    uint64_t cs = s->cluster_size;
    if (!s->bitmaps_ext_off)
        return 0;
    uint8_t ext[QCOW2_BMEXT_LEN];
    if (io_pread(k->b->file, ext, sizeof(ext), s->bitmaps_ext_off,
                 errp) < 0)
        return -1;
    uint32_t nb = qcow2_get_be32(ext + QCOW2_BMEXT_NB);
    uint64_t dsz = qcow2_get_be64(ext + QCOW2_BMEXT_DIR_SIZE);
    uint64_t doff = qcow2_get_be64(ext + QCOW2_BMEXT_DIR_OFFSET);
    if (nb > QCOW2_MAX_BITMAPS || dsz > QCOW2_MAX_BM_DIR ||
        doff >= k->fsz || dsz > k->fsz - doff) {
        check_add(k->r, CHECK_CORRUPTION, "ERROR: bitmap directory at 0x%"
                  PRIx64 " invalid", doff);
        return 0;
    }
    ck_inc(k, doff, dsz, "bitmap directory");
    uint8_t *d = malloc(dsz ? dsz : 1);
    if (!d) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(k->b->file, d, dsz, doff, errp) < 0) {
        free(d);
        return -1;
    }
    uint64_t pos = 0;
    int ret = 0;
    for (uint32_t i = 0; i < nb; i++) {
        if (dsz - pos < QCOW2_BMDIR_FIXED_LEN || pos > dsz)
            break;
        const uint8_t *e = d + pos;
        uint64_t toff = qcow2_get_be64(e + QCOW2_BMDIR_TABLE_OFFSET);
        uint32_t tn = qcow2_get_be32(e + QCOW2_BMDIR_TABLE_SIZE);
        uint64_t len = QCOW2_BMDIR_FIXED_LEN +
                       (uint64_t)qcow2_get_be32(e + QCOW2_BMDIR_EXTRA_SIZE) +
                       qcow2_get_be16(e + QCOW2_BMDIR_NAME_SIZE);
        pos += (len + 7) & ~7ULL;
        uint64_t tb = (uint64_t)tn * 8;
        if ((toff & (cs - 1)) || toff >= k->fsz || tb > k->fsz - toff) {
            check_add(k->r, CHECK_CORRUPTION, "ERROR: bitmap table at 0x%"
                      PRIx64 " invalid", toff);
            continue;
        }
        ck_inc(k, toff, tb, "bitmap table");
        if (!ck_spend(k, tb))
            break;
        /* in chunks of one cluster: tb is bounded by the file size */
        for (uint64_t j = 0; j < tb; j += cs) {
            uint64_t n = tb - j < cs ? tb - j : cs;
            if (io_pread(k->b->file, k->buf, n, toff + j, errp) < 0) {
                ret = -1;
                goto out;
            }
            for (uint64_t x = 0; x < n; x += 8) {
                uint64_t bo = qcow2_get_be64(k->buf + x) &
                              QCOW2_L2E_OFFSET_MASK;
                if (bo)
                    ck_inc(k, bo, cs, "bitmap data cluster");
            }
        }
    }
out:
    free(d);
    return ret;
}

int qcow2_check(struct blk *b, struct check_report *r, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    struct qcow2_ck k = { .b = b, .s = s, .r = r };
    int ret = -1;
    if (s->writable) {
        error_setg(errp, "cannot check an image open for writing");
        return -1;
    }
    k.fsz = s->file_size;
    k.budget = k.fsz < (1ULL << 26) ? 1ULL << 30 : k.fsz * 16;
    k.n = (k.fsz + s->cluster_size - 1) >> s->cluster_bits;
    if (k.n > QCOW2_CHECK_MAX_CLUSTERS) {
        error_setg(errp, "image file too large to check (%" PRIu64
                   " clusters)", k.n);
        return -1;
    }
    k.ref = calloc(k.n ? k.n : 1, sizeof(*k.ref));
    k.st = calloc(k.n ? k.n : 1, sizeof(*k.st));
    k.buf = malloc(s->cluster_size);
    if (!k.ref || !k.st || !k.buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    ck_inc(&k, 0, s->cluster_size, "header");
    if (ck_refcounts(&k, errp) < 0 ||
        ck_l1(&k, s->l1_offset, s->l1_size, true, errp) < 0 ||
        ck_snapshots(&k, errp) < 0 || ck_bitmaps(&k, errp) < 0)
        goto out;
    uint64_t end = 0;
    for (uint64_t c = 0; c < k.n; c++) {
        if (k.ref[c])
            end = c + 1;
        if (k.ref[c] == k.st[c])
            continue;
        if (k.st[c] > k.ref[c])
            check_add(r, CHECK_LEAK, "Leaked cluster %" PRIu64 " refcount=%u"
                      " reference=%u", c, k.st[c], k.ref[c]);
        else
            check_add(r, CHECK_CORRUPTION, "ERROR cluster %" PRIu64
                      " refcount=%u reference=%u", c, k.st[c], k.ref[c]);
    }
    r->total_clusters = (b->size + s->cluster_size - 1) >> s->cluster_bits;
    r->image_end_offset = end << s->cluster_bits;
    r->have_cluster_stats = true;
    ret = 0;
out:
    free(k.ref);
    free(k.st);
    free(k.buf);
    return ret;
}

/* ---- measure ---- */

int qcow2_measure(const struct fmt_create_opts *o, struct blk *src,
                  uint64_t *required, uint64_t *fully, vf_error **errp)
{
    struct qcow2_state s;
    memset(&s, 0, sizeof(s));
    int pa;
    if (qcow2_parse_create(&s, o, &pa, errp) < 0)
        return -1;
    uint64_t cs = s.cluster_size;
    uint64_t vs = o->size ? o->size : src ? src->size : 0;
    if (vs > QCOW2_MAX_VIRTUAL_SIZE) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large", vs);
        return -1;
    }
    uint64_t data;        /* whole clusters holding data */
    if (blk_count_data_blocks(src, cs, vs, &data, errp) < 0)
        return -1;
    data *= cs;
    uint64_t aligned = (vs + cs - 1) & ~(cs - 1);
    uint64_t meta = cs;                          /* header */
    uint64_t l2e = aligned / cs;                 /* L2 entries */
    uint64_t per = cs / 8;
    l2e = (l2e + per - 1) / per * per;
    meta += l2e * 8;
    uint64_t l1e = l2e * 8 / cs;                 /* L1 entries */
    l1e = (l1e + per - 1) / per * per;
    meta += l1e * 8;
    meta += qcow2_refcount_meta_clusters((meta + aligned) / cs,
                                         s.cluster_bits, s.refcount_order,
                                         NULL) * cs;
    *fully = meta + aligned;
    *required = pa >= 2 ? *fully : meta + data;
    return 0;
}

/* ---- resize ---- */

/* Drop every mapping of guest clusters >= first (lock held). */
static int qcow2_drop_tail(struct blk *b, uint64_t first, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    for (uint64_t l1i = first / per_l2; l1i < s->l1_size; l1i++) {
        if (!s->l2m[l1i] && !(s->l1[l1i] & QCOW2_L1E_OFFSET_MASK))
            continue;
        uint8_t *t = qcow2_l2_mut(b, l1i, errp);
        if (!t)
            return -1;
        uint64_t j0 = l1i * per_l2 >= first ? 0 : first % per_l2;
        for (uint64_t j = j0; j < per_l2; j++) {
            uint64_t e = qcow2_get_be64(t + j * 8);
            qcow2_release_entry(b, e);
            qcow2_put_be64(t + j * 8, 0);
        }
        if (j0 == 0) {
            uint64_t off = s->l1[l1i] & QCOW2_L1E_OFFSET_MASK;
            if (off)
                qcow2_rc_dec(s, off >> s->cluster_bits);
            free(s->l2m[l1i]);
            s->l2m[l1i] = NULL;
            s->l2m_dirty[l1i] = 0;
            s->l1[l1i] = 0;
            s->l1_dirty = true;
        }
    }
    return 0;
}

int qcow2_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    if (!s->writable) {
        error_setg(errp, "image is open read-only");
        return -1;
    }
    if (new_size > QCOW2_MAX_VIRTUAL_SIZE) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large", new_size);
        return -1;
    }
    uint64_t cover = cs << s->l2_bits;
    uint64_t need = (new_size + cover - 1) / cover;
    if (need > QCOW2_MAX_L1_BYTES / 8) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large for "
                   "cluster_size %" PRIu64, new_size, cs);
        return -1;
    }
    uint64_t old = b->size;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    if (new_size < old) {
        if (s->ext_l2) {
            error_setg(errp, "shrinking images with extended L2 entries is "
                       "not supported");
            r = -1;
        } else {
            r = qcow2_drop_tail(b, (new_size + cs - 1) / cs, errp);
        }
    }
    if (r == 0 && need > s->l1_size)
        r = qcow2_resize_l1(b, (uint32_t)need, errp);
    if (r == 0) {
        b->size = new_size;
        s->dirty_meta = true;
    }
    pthread_mutex_unlock(&s->lock);
    if (r < 0 || new_size <= old)
        return r;
    /* the grown range must read as zeros: the old last cluster's tail,
     * and everything a backing file would otherwise show through */
    bool backing = b->backing || b->backing_name;
    uint64_t from = old, to = (old + cs - 1) & ~(cs - 1);
    if (backing)
        to = new_size;
    if (to > new_size)
        to = new_size;
    if (to > from && !s->ext_l2)
        return qcow2_zero(b, from, to - from, errp);
    return 0;
}
