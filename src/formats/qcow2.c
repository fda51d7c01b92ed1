/*
 * qcow2.c: the qcow2 driver: probe, open (header, extensions, L1),
 * guest reads through a bounded L2 cache, block status, info, and the
 * vtable.  Writing lives in qcow2-write.c, check/measure/resize in
 * qcow2-check.c, the on-disk layout in qcow2.h.
 *
 * Spec: QEMU's docs/interop/qcow2.txt (versions 2 and 3).  Every value read
 * from the file is hostile: each one that sizes an allocation, a loop or a
 * read is bounded first, with the reason for the bound next to it.
 */
#include "formats/qcow2.h"

#include <inttypes.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <json-c/json.h>

/* The L2 cache holds at most this many bytes of tables: one 64 KiB-cluster
 * table maps 512 MiB of guest disk, so 8 MiB maps 64 GiB, plenty for the
 * engine's sequential passes with a few threads. */
#define QCOW2_L2C_BYTES (8u << 20)
#define QCOW2_L2C_MAX   64
#define QCOW2_L2C_MIN   4

/* A data file or feature name longer than PATH_MAX is not a real name. */
#define QCOW2_MAX_EXT_NAME 4096

static uint64_t qcow2_file_size(struct qcow2_state *s)
{
    return __atomic_load_n(&s->file_size, __ATOMIC_RELAXED);
}

/* ---- refcount block entries, any width 1..64 bits ---- */

uint64_t qcow2_rc_get(const uint8_t *rb, uint64_t idx, unsigned order)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned w = 1u << order;              /* bits per entry */
        unsigned per = 8 / w;                  /* entries per byte */
        unsigned sh = (unsigned)(idx % per) * w;
        return (rb[idx / per] >> sh) & ((1u << w) - 1);
    }
    case 3: return rb[idx];
    case 4: return qcow2_get_be16(rb + idx * 2);
    case 5: return qcow2_get_be32(rb + idx * 4);
    default: return qcow2_get_be64(rb + idx * 8);
    }
}

void qcow2_rc_set(uint8_t *rb, uint64_t idx, unsigned order, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        unsigned w = 1u << order;
        unsigned per = 8 / w;
        unsigned sh = (unsigned)(idx % per) * w;
        unsigned mask = ((1u << w) - 1) << sh;
        uint8_t *p = &rb[idx / per];
        *p = (uint8_t)((*p & ~mask) | (((unsigned)v << sh) & mask));
        break;
    }
    case 3: rb[idx] = (uint8_t)v; break;
    case 4: qcow2_put_be16(rb + idx * 2, (uint16_t)v); break;
    case 5: qcow2_put_be32(rb + idx * 4, (uint32_t)v); break;
    default: qcow2_put_be64(rb + idx * 8, v); break;
    }
}

/* ---- probe ---- */

static int qcow2_probe(const struct probe_data *d)
{
    if (d->head_len < 8 || qcow2_get_be32(d->head) != QCOW2_MAGIC)
        return 0;
    /* the magic alone: a bad version is then reported by open, rather
     * than the file silently becoming a raw image */
    return 100;
}

/* ---- tables ---- */

int qcow2_load_table(struct blk *b, uint64_t host, uint8_t *buf,
                     const char *what, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (host & (s->cluster_size - 1)) {
        error_setg(errp, "%s offset 0x%" PRIx64 " not cluster aligned",
                   what, host);
        return -1;
    }
    if (host >= qcow2_file_size(s)) {
        error_setg(errp, "%s offset 0x%" PRIx64 " beyond end of file",
                   what, host);
        return -1;
    }
    return io_pread(b->file, buf, s->cluster_size, host, errp);
}

/* The cached L2 table at host (lock held). */
static const uint8_t *qcow2_l2c_get(struct blk *b, uint64_t host,
                                    vf_error **errp)
{
    struct qcow2_state *s = b->state;
    struct qcow2_l2c *victim = &s->l2c[0];   /* l2c_n >= QCOW2_L2C_MIN */
    for (unsigned i = 0; i < s->l2c_n; i++) {
        struct qcow2_l2c *c = &s->l2c[i];
        if (c->host == host && c->data) {
            c->used = ++s->l2c_tick;
            return c->data;
        }
        /* an empty slot, else the least recently used */
        if (victim->host && (!c->host || c->used < victim->used))
            victim = c;
    }
    if (!victim->data) {
        victim->data = malloc(s->cluster_size);
        if (!victim->data) {
            error_setg(errp, "out of memory");
            return NULL;
        }
    }
    victim->host = 0;
    if (qcow2_load_table(b, host, victim->data, "L2 table", errp) < 0)
        return NULL;
    victim->host = host;
    victim->used = ++s->l2c_tick;
    return victim->data;
}

/* ---- mapping ---- */

/* Classify the unit of guest disk at pos given its L2 entry e and extended
 * bitmap bm: kind and host offset of pos.  -1 on a corrupt entry. */
static int qcow2_classify(struct qcow2_state *s, uint64_t pos, uint64_t e,
                          uint64_t bm, uint64_t *host, vf_error **errp)
{
    uint64_t in = pos & (s->cluster_size - 1);
    if (e & QCOW2_OFLAG_COMPRESSED) {
        if (s->data_file) {
            error_setg(errp, "compressed cluster at guest offset 0x%" PRIx64
                       " in an image with an external data file", pos);
            return -1;
        }
        return QCOW2_COMPRESSED;
    }
    if (s->ext_l2) {
        unsigned sc = (unsigned)(in >> s->sc_bits);
        bool alloc = (bm >> sc) & 1, zero = (bm >> (32 + sc)) & 1;
        if (alloc && zero) {
            error_setg(errp, "invalid subcluster bitmap 0x%" PRIx64
                       " at guest offset 0x%" PRIx64, bm, pos);
            return -1;
        }
        if (zero)
            return QCOW2_ZERO;
        if (!alloc)
            return QCOW2_UNALLOC;
    } else if ((e & QCOW2_OFLAG_ZERO) && s->version >= 3) {
        return QCOW2_ZERO;
    }
    uint64_t rsv = QCOW2_L2E_RESERVED;
    if (s->version < 3 || s->ext_l2)
        rsv |= QCOW2_OFLAG_ZERO;
    if (e & rsv) {
        error_setg(errp, "L2 entry 0x%" PRIx64 " for guest offset 0x%"
                   PRIx64 " has reserved bits set", e, pos);
        return -1;
    }
    uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
    if (!h && !(s->data_file && (e & QCOW2_OFLAG_COPIED))) {
        if (s->ext_l2) {
            error_setg(errp, "allocated subcluster without a host offset at "
                       "guest offset 0x%" PRIx64, pos);
            return -1;
        }
        return QCOW2_UNALLOC;
    }
    if (h & (s->cluster_size - 1)) {
        error_setg(errp, "data cluster offset 0x%" PRIx64
                   " not cluster aligned", h);
        return -1;
    }
    if (!s->data_file && h >= qcow2_file_size(s)) {
        error_setg(errp, "data cluster offset 0x%" PRIx64
                   " beyond end of file", h);
        return -1;
    }
    *host = h + in;
    return QCOW2_DATA;
}

int qcow2_map_range(struct blk *b, uint64_t off, uint64_t len,
                    struct qcow2_map *m, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t cover = cs << s->l2_bits;         /* <= 2^39 */
    uint64_t l1i = off / cover;
    uint64_t room = cover - off % cover;
    if (len > room)
        len = room;
    m->kind = QCOW2_UNALLOC;
    m->len = len;
    m->host = UINT64_MAX;
    m->desc = 0;

    pthread_mutex_lock(&s->lock);
    const uint8_t *tab = NULL;
    if (s->l2m && l1i < s->l2m_cap && s->l2m[l1i]) {
        tab = s->l2m[l1i];
    } else if (l1i < s->l1_size) {
        uint64_t l2off = s->l1[l1i] & QCOW2_L1E_OFFSET_MASK;
        if (s->l1[l1i] & QCOW2_L1E_RESERVED) {
            error_setg(errp, "L1 entry %" PRIu64 " (0x%" PRIx64 ") has "
                       "reserved bits set", l1i, s->l1[l1i]);
            goto fail;
        }
        if (l2off) {
            tab = qcow2_l2c_get(b, l2off, errp);
            if (!tab)
                goto fail;
        }
    }
    if (!tab) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }

    uint64_t unit = s->ext_l2 ? 1ULL << s->sc_bits : cs;
    uint64_t pos = off, end = off + len;
    int first = -1;
    uint64_t first_host = 0;
    while (pos < end) {
        uint64_t ci = (pos / cs) & (per_l2 - 1);
        const uint8_t *p = tab + ci * s->l2_entry_size;
        uint64_t e = qcow2_get_be64(p);
        uint64_t bm = s->ext_l2 ? qcow2_get_be64(p + 8) : 0;
        uint64_t h = 0;
        int k = qcow2_classify(s, pos, e, bm, &h,
                               first < 0 ? errp : NULL);
        if (k < 0) {
            if (first < 0)
                goto fail;
            break;
        }
        if (first < 0) {
            first = k;
            first_host = h;
            m->desc = e;
        } else if (k != first ||
                   (k == QCOW2_DATA && h != first_host + (pos - off))) {
            break;
        }
        /* compressed clusters have no subclusters */
        uint64_t step = k == QCOW2_COMPRESSED ? cs : unit;
        pos = (pos / step + 1) * step;
    }
    if (pos > end)
        pos = end;
    pthread_mutex_unlock(&s->lock);
    m->kind = (enum qcow2_kind)first;
    m->len = pos - off;
    m->host = first == QCOW2_DATA ? first_host : UINT64_MAX;
    return 0;
fail:
    pthread_mutex_unlock(&s->lock);
    return -1;
}

/* ---- compressed clusters ---- */

void qcow2_compressed_span(const struct qcow2_state *s, uint64_t desc,
                           uint64_t *host, uint64_t *nbytes)
{
    uint64_t h = desc & s->coffset_mask;
    uint64_t nsec = ((desc >> s->csize_shift) & s->csize_mask) + 1;
    *host = h;
    /* at most 2^(cluster_bits-8) sectors: <= 2 clusters, no overflow */
    *nbytes = nsec * 512 - (h & 511);
}

static struct qcow2_dctx *qcow2_dctx_get(struct qcow2_state *s,
                                         vf_error **errp)
{
    pthread_mutex_lock(&s->plock);
    struct qcow2_dctx *d = s->dpool;
    if (d) {
        s->dpool = d->next;
        s->dpool_n--;
    }
    pthread_mutex_unlock(&s->plock);
    if (d)
        return d;
    d = calloc(1, sizeof(*d));
    if (!d)
        goto oom;
    d->cbuf = malloc(2 * (size_t)s->cluster_size);
    d->obuf = malloc(s->cluster_size);
    if (!d->cbuf || !d->obuf)
        goto oom;
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD) {
        ZSTD_DCtx *z = ZSTD_createDCtx();
        d->zstd = z;
        if (!z)
            goto oom;
        /* A frame for one cluster (<= 2 MiB) never needs a window beyond
         * 16 MiB; a hostile frame must not make zstd allocate 2 GiB. */
        ZSTD_DCtx_setParameter(z, ZSTD_d_windowLogMax, 24);
    } else {
        d->ld = libdeflate_alloc_decompressor();
        if (!d->ld)
            goto oom;
    }
    return d;
oom:
    if (d) {
        libdeflate_free_decompressor(d->ld);
        ZSTD_freeDCtx(d->zstd);
        free(d->cbuf);
        free(d->obuf);
        free(d);
    }
    error_setg(errp, "out of memory");
    return NULL;
}

static void qcow2_dctx_free(struct qcow2_dctx *d)
{
    libdeflate_free_decompressor(d->ld);
    ZSTD_freeDCtx(d->zstd);
    free(d->cbuf);
    free(d->obuf);
    free(d);
}

static void qcow2_dctx_put(struct qcow2_state *s, struct qcow2_dctx *d)
{
    pthread_mutex_lock(&s->plock);
    if (s->dpool_n < QCOW2_DCTX_POOL_MAX) {
        d->next = s->dpool;
        s->dpool = d;
        s->dpool_n++;
        d = NULL;
    }
    pthread_mutex_unlock(&s->plock);
    if (d)
        qcow2_dctx_free(d);
}

/* Raw deflate whose output runs past one cluster: QEMU accepts it (it
 * stops at a full cluster), libdeflate does not, so zlib does it. */
static int qcow2_inflate_truncating(const uint8_t *in, size_t inlen,
                                    uint8_t *out, size_t outlen)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK)
        return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)inlen;
    z.next_out = out;
    z.avail_out = (uInt)outlen;
    int r = inflate(&z, Z_FINISH);
    bool ok = (r == Z_STREAM_END || r == Z_BUF_ERROR) && z.avail_out == 0;
    inflateEnd(&z);
    return ok ? 0 : -1;
}

static int qcow2_decompress(struct qcow2_state *s, struct qcow2_dctx *d,
                            size_t inlen, uint8_t *out, uint64_t host,
                            vf_error **errp)
{
    size_t cs = s->cluster_size;
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD) {
        ZSTD_DCtx_reset(d->zstd, ZSTD_reset_session_only);
        ZSTD_inBuffer zi = { d->cbuf, inlen, 0 };
        ZSTD_outBuffer zo = { out, cs, 0 };
        /* frames may be followed by padding: stop at one full cluster */
        while (zo.pos < zo.size) {
            size_t ip = zi.pos, op = zo.pos;
            size_t r = ZSTD_decompressStream(d->zstd, &zo, &zi);
            if (ZSTD_isError(r)) {
                error_setg(errp, "compressed cluster at 0x%" PRIx64
                           ": zstd: %s", host, ZSTD_getErrorName(r));
                return -1;
            }
            if (zi.pos == ip && zo.pos == op) {
                error_setg(errp, "compressed cluster at 0x%" PRIx64
                           ": zstd data ends before a full cluster", host);
                return -1;
            }
        }
        return 0;
    }
    size_t used = 0;
    enum libdeflate_result r =
        libdeflate_deflate_decompress_ex(d->ld, d->cbuf, inlen, out, cs,
                                         &used, NULL);
    if (r == LIBDEFLATE_SUCCESS)
        return 0;
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE &&
        qcow2_inflate_truncating(d->cbuf, inlen, out, cs) == 0)
        return 0;
    error_setg(errp, "compressed cluster at 0x%" PRIx64
               ": invalid deflate data (%s)", host,
               r == LIBDEFLATE_SHORT_OUTPUT ? "short output" : "bad data");
    return -1;
}

int qcow2_read_compressed(struct blk *b, uint64_t desc, uint8_t *out,
                          vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t host, n;
    qcow2_compressed_span(s, desc, &host, &n);
    uint64_t fsz = qcow2_file_size(s);
    /* QEMU may end the file inside the last sector of the last
     * compressed cluster: allow that sector, nothing beyond it. */
    uint64_t fend = (fsz + 511) & ~511ULL;
    if (host >= fsz) {
        error_setg(errp, "compressed cluster offset 0x%" PRIx64
                   " beyond end of file", host);
        return -1;
    }
    if (n > fend - host) {
        error_setg(errp, "compressed cluster at 0x%" PRIx64 " (%" PRIu64
                   " bytes) runs past end of file", host, n);
        return -1;
    }
    struct qcow2_dctx *d = qcow2_dctx_get(s, errp);
    if (!d)
        return -1;
    int r = io_pread(b->file, d->cbuf, (size_t)n, host, errp);
    if (r == 0)
        r = qcow2_decompress(s, d, (size_t)n, out, host, errp);
    qcow2_dctx_put(s, d);
    return r;
}

/* ---- guest reads ---- */

int qcow2_pread_guest(struct blk *b, void *buf, uint64_t off, size_t len,
                      vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint8_t *p = buf;
    while (len) {
        struct qcow2_map m;
        if (qcow2_map_range(b, off, len, &m, errp) < 0)
            return -1;
        size_t n = (size_t)m.len;
        switch (m.kind) {
        case QCOW2_UNALLOC:
            if (blk_read_backing(b, p, off, n, errp) < 0)
                return -1;
            break;
        case QCOW2_ZERO:
            memset(p, 0, n);
            break;
        case QCOW2_DATA:
            if (io_pread(s->data_file ? s->data_file : b->file, p, n,
                         m.host, errp) < 0)
                return -1;
            break;
        case QCOW2_COMPRESSED: {
            uint64_t in = off & (s->cluster_size - 1);
            if (n > s->cluster_size - in)
                n = (size_t)(s->cluster_size - in);
            if (in == 0 && n == s->cluster_size) {
                if (qcow2_read_compressed(b, m.desc, p, errp) < 0)
                    return -1;
                break;
            }
            uint8_t *tmp = malloc(s->cluster_size);
            if (!tmp) {
                error_setg(errp, "out of memory");
                return -1;
            }
            int r = qcow2_read_compressed(b, m.desc, tmp, errp);
            if (r == 0)
                memcpy(p, tmp + in, n);
            free(tmp);
            if (r < 0)
                return -1;
            break;
        }
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int qcow2_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                       vf_error **errp)
{
    return qcow2_pread_guest(b, buf, off, len, errp);
}

static int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len,
                              uint64_t *pnum, uint64_t *host_off,
                              vf_error **errp)
{
    struct qcow2_state *s = b->state;
    struct qcow2_map m;
    if (qcow2_map_range(b, off, len, &m, errp) < 0)
        return -1;
    *pnum = m.len;
    *host_off = UINT64_MAX;
    switch (m.kind) {
    case QCOW2_UNALLOC:
        return BLK_UNALLOC;
    case QCOW2_ZERO:
        return BLK_ZERO;
    case QCOW2_DATA:
        if (!s->data_file)
            *host_off = m.host;
        return BLK_DATA;
    case QCOW2_COMPRESSED:
        return BLK_DATA;
    }
    return BLK_DATA;
}

/* ---- open ---- */

/* "unknown incompatible feature bits 0x..." plus names from the feature
 * table when the image has one. */
static void qcow2_unknown_features(uint64_t bits, const uint8_t *ft,
                                   uint32_t ftlen, vf_error **errp)
{
    char names[512] = "";
    size_t nl = 0;
    for (uint32_t o = 0; ft && ftlen - o >= QCOW2_FEATURE_ENTRY_LEN &&
                         o < ftlen; o += QCOW2_FEATURE_ENTRY_LEN) {
        const uint8_t *e = ft + o;
        if (e[0] != 0 || e[1] > 63 || !((bits >> e[1]) & 1))
            continue;
        char nm[QCOW2_FEATURE_NAME_LEN + 1];
        size_t k;
        for (k = 0; k < QCOW2_FEATURE_NAME_LEN && e[2 + k]; k++)
            nm[k] = e[2 + k] >= 0x20 && e[2 + k] < 0x7f ? (char)e[2 + k]
                                                        : '?';
        nm[k] = 0;
        int w = snprintf(names + nl, sizeof(names) - nl, "%s%s",
                         nl ? ", " : "", nm);
        if (w < 0 || (size_t)w >= sizeof(names) - nl)
            break;
        nl += (size_t)w;
    }
    if (nl)
        error_setg(errp, "unknown incompatible feature bits 0x%" PRIx64
                   " (%s)", bits, names);
    else
        error_setg(errp, "unknown incompatible feature bits 0x%" PRIx64,
                   bits);
}

/* A string extension (not NUL terminated) as a C string. */
static char *qcow2_ext_string(const uint8_t *p, uint32_t len,
                              const char *what, vf_error **errp)
{
    if (len > QCOW2_MAX_EXT_NAME) {
        error_setg(errp, "%s length %" PRIu32 " too long", what, len);
        return NULL;
    }
    if (memchr(p, 0, len)) {
        error_setg(errp, "%s contains a NUL byte", what);
        return NULL;
    }
    char *r = strndup((const char *)p, len);
    if (!r)
        error_setg(errp, "out of memory");
    return r;
}

/* Header extensions in [start, end) of the first cluster hc. */
static int qcow2_read_extensions(struct blk *b, const uint8_t *hc,
                                 uint32_t start, uint32_t end,
                                 const uint8_t **ft, uint32_t *ftlen,
                                 vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint32_t off = start;
    /* each round consumes >= 8 bytes of a <= 2 MiB cluster: bounded */
    while (off <= end && end - off >= 8) {
        uint32_t type = qcow2_get_be32(hc + off);
        uint32_t len = qcow2_get_be32(hc + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - off) {
            error_setg(errp, "header extension 0x%08" PRIx32 " length %"
                       PRIu32 " runs past the header area", type, len);
            return -1;
        }
        const uint8_t *d = hc + off;
        switch (type) {
        case QCOW2_EXT_BACKING_FMT:
            if (len > QCOW2_MAX_BACKING_NAME) {
                error_setg(errp, "backing format name length %" PRIu32
                           " too long", len);
                return -1;
            }
            free(b->backing_fmt);
            b->backing_fmt = qcow2_ext_string(d, len, "backing format name",
                                              errp);
            if (!b->backing_fmt)
                return -1;
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            *ft = d;
            *ftlen = len;
            break;
        case QCOW2_EXT_DATA_FILE:
            free(s->data_file_name);
            s->data_file_name = qcow2_ext_string(d, len, "data file name",
                                                 errp);
            if (!s->data_file_name)
                return -1;
            break;
        case QCOW2_EXT_BITMAPS:
            if (len >= QCOW2_BMEXT_LEN)
                s->bitmaps_ext_off = off;
            break;
        default:
            break;      /* unknown extensions are safe to ignore */
        }
        uint32_t pad = (len + 7) & ~7u;   /* len <= 2 MiB: no overflow */
        if (pad > end - off)
            break;
        off += pad;
    }
    return 0;
}

static int qcow2_read_backing_name(struct blk *b, uint64_t boff,
                                   uint32_t blen, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (blen == 0)
        return 0;
    if (blen > QCOW2_MAX_BACKING_NAME) {
        error_setg(errp, "backing file name length %" PRIu32 " too long",
                   blen);
        return -1;
    }
    if (boff >= s->file_size || blen > s->file_size - boff) {
        error_setg(errp, "backing file name offset 0x%" PRIx64
                   " beyond end of file", boff);
        return -1;
    }
    char name[QCOW2_MAX_BACKING_NAME + 1];
    if (io_pread(b->file, name, blen, boff, errp) < 0)
        return -1;
    if (memchr(name, 0, blen)) {
        error_setg(errp, "backing file name contains a NUL byte");
        return -1;
    }
    name[blen] = 0;
    b->backing_name = strdup(name);
    if (!b->backing_name) {
        error_setg(errp, "out of memory");
        return -1;
    }
    return 0;
}

/* Decode and bound the fixed header fields. */
static int qcow2_parse_header(struct blk *b, const uint8_t *h,
                              vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (qcow2_get_be32(h + QCOW2_HDR_MAGIC) != QCOW2_MAGIC) {
        error_setg(errp, "not a qcow2 image (bad magic)");
        return -1;
    }
    s->version = qcow2_get_be32(h + QCOW2_HDR_VERSION);
    if (s->version != 2 && s->version != 3) {
        error_setg(errp, "unsupported qcow2 version %" PRIu32, s->version);
        return -1;
    }
    s->cluster_bits = qcow2_get_be32(h + QCOW2_HDR_CLUSTER_BITS);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        error_setg(errp, "invalid cluster_bits %" PRIu32, s->cluster_bits);
        return -1;
    }
    s->cluster_size = 1u << s->cluster_bits;
    uint32_t crypt = qcow2_get_be32(h + QCOW2_HDR_CRYPT_METHOD);
    if (crypt != 0) {
        error_setg(errp, "encrypted images are not supported");
        return -1;
    }
    b->size = qcow2_get_be64(h + QCOW2_HDR_SIZE);
    if (b->size > QCOW2_MAX_VIRTUAL_SIZE) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large", b->size);
        return -1;
    }
    if (s->version == 2) {
        s->header_len = QCOW2_HDR_V2_LEN;
        s->refcount_order = 4;
    } else {
        s->incompat = qcow2_get_be64(h + QCOW2_HDR_INCOMPAT);
        s->compat = qcow2_get_be64(h + QCOW2_HDR_COMPAT);
        s->autoclear = qcow2_get_be64(h + QCOW2_HDR_AUTOCLEAR);
        s->refcount_order = qcow2_get_be32(h + QCOW2_HDR_REFCOUNT_ORDER);
        s->header_len = qcow2_get_be32(h + QCOW2_HDR_HEADER_LEN);
        if (s->header_len < QCOW2_HDR_V3_MIN_LEN || s->header_len % 8 ||
            s->header_len > s->cluster_size) {
            error_setg(errp, "invalid header length %" PRIu32,
                       s->header_len);
            return -1;
        }
        if (s->refcount_order > 6) {
            error_setg(errp, "invalid refcount_order %" PRIu32,
                       s->refcount_order);
            return -1;
        }
        if (s->header_len > QCOW2_HDR_COMPRESSION_TYPE)
            s->compression_type = h[QCOW2_HDR_COMPRESSION_TYPE];
    }
    s->l1_size = qcow2_get_be32(h + QCOW2_HDR_L1_SIZE);
    s->l1_offset = qcow2_get_be64(h + QCOW2_HDR_L1_OFFSET);
    s->reft_offset = qcow2_get_be64(h + QCOW2_HDR_REFT_OFFSET);
    s->reft_clusters = qcow2_get_be32(h + QCOW2_HDR_REFT_CLUSTERS);
    s->nb_snapshots = qcow2_get_be32(h + QCOW2_HDR_NB_SNAPSHOTS);
    s->snapshots_offset = qcow2_get_be64(h + QCOW2_HDR_SNAPSHOTS_OFFSET);
    return 0;
}

/* Feature bits, compression type, extended L2 geometry. */
static int qcow2_check_features(struct blk *b, const uint8_t *ft,
                                uint32_t ftlen, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t unknown = s->incompat & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown) {
        qcow2_unknown_features(unknown, ft, ftlen, errp);
        return -1;
    }
    if (s->incompat & QCOW2_INCOMPAT_CORRUPT) {
        error_setg(errp, "image is marked corrupt");
        return -1;
    }
    if (s->incompat & QCOW2_INCOMPAT_COMPRESSION) {
        if (s->compression_type == QCOW2_COMPRESSION_ZLIB) {
            error_setg(errp, "compression type bit set but compression "
                       "type is zlib");
            return -1;
        }
    } else if (s->compression_type != QCOW2_COMPRESSION_ZLIB) {
        error_setg(errp, "compression type %" PRIu32 " without the "
                   "compression type feature bit", s->compression_type);
        return -1;
    }
    if (s->compression_type > QCOW2_COMPRESSION_ZSTD) {
        error_setg(errp, "unknown compression type %" PRIu32,
                   s->compression_type);
        return -1;
    }
    s->ext_l2 = s->incompat & QCOW2_INCOMPAT_EXTL2;
    if (s->ext_l2 && s->cluster_bits < 14) {
        error_setg(errp, "extended L2 entries need clusters of at least "
                   "16 KiB (cluster_bits %" PRIu32 ")", s->cluster_bits);
        return -1;
    }
    s->l2_entry_size = s->ext_l2 ? 16 : 8;
    s->l2_bits = s->cluster_bits - (s->ext_l2 ? 4 : 3);
    s->sc_bits = s->cluster_bits - 5;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->coffset_mask = (1ULL << s->csize_shift) - 1;
    s->csize_mask = (1ULL << (s->cluster_bits - 8)) - 1;
    return 0;
}

static int qcow2_open_data_file(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (!(s->incompat & QCOW2_INCOMPAT_DATA_FILE))
        return 0;
    if (!s->data_file_name) {
        error_setg(errp, "external data file bit set but the image names "
                   "no data file");
        return -1;
    }
    if (!b->oopts.allow_data_file) {
        error_setg(errp, "external data file '%s' refused "
                   "(use --allow-data-file)", s->data_file_name);
        return -1;
    }
    s->data_file = blk_open_sibling(b, s->data_file_name, errp);
    if (!s->data_file)
        return -1;
    int64_t sz = io_size(s->data_file, errp);
    if (sz < 0)
        return -1;
    s->data_file_size = (uint64_t)sz;
    return 0;
}

/* Bound and load the L1 table; check the refcount table's placement. */
static int qcow2_load_l1(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    if (s->l1_size > QCOW2_MAX_L1_BYTES / 8) {
        error_setg(errp, "L1 table size %" PRIu32 " too large", s->l1_size);
        return -1;
    }
    uint64_t cover = cs << s->l2_bits;
    /* size <= 2^61 and cover >= 2^15: no overflow */
    uint64_t need = (b->size + cover - 1) / cover;
    if (need > s->l1_size) {
        error_setg(errp, "L1 table too small for the virtual size (%" PRIu32
                   " entries, need %" PRIu64 ")", s->l1_size, need);
        return -1;
    }
    if (s->reft_clusters > QCOW2_MAX_REFT_BYTES / cs) {
        error_setg(errp, "refcount table too large (%" PRIu32 " clusters)",
                   s->reft_clusters);
        return -1;
    }
    if (s->reft_offset & (cs - 1)) {
        error_setg(errp, "refcount table offset 0x%" PRIx64
                   " not cluster aligned", s->reft_offset);
        return -1;
    }
    if (s->reft_offset >= s->file_size ||
        (uint64_t)s->reft_clusters * cs > s->file_size - s->reft_offset) {
        error_setg(errp, "refcount table offset 0x%" PRIx64
                   " beyond end of file", s->reft_offset);
        return -1;
    }
    if (s->reft_offset == 0) {
        error_setg(errp, "refcount table offset 0x0 overlaps the header");
        return -1;
    }
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        error_setg(errp, "too many snapshots (%" PRIu32 ")",
                   s->nb_snapshots);
        return -1;
    }
    if (s->nb_snapshots &&
        ((s->snapshots_offset & (cs - 1)) || s->snapshots_offset == 0 ||
         s->snapshots_offset >= s->file_size)) {
        error_setg(errp, "snapshot table offset 0x%" PRIx64 " invalid or "
                   "beyond end of file", s->snapshots_offset);
        return -1;
    }
    if (s->l1_size == 0)
        return 0;
    if (s->l1_offset == 0) {
        error_setg(errp, "L1 table offset 0x0 overlaps the header");
        return -1;
    }
    if (s->l1_offset & (cs - 1)) {
        error_setg(errp, "L1 table offset 0x%" PRIx64 " not cluster aligned",
                   s->l1_offset);
        return -1;
    }
    uint64_t bytes = (uint64_t)s->l1_size * 8;
    if (s->l1_offset >= s->file_size || bytes > s->file_size - s->l1_offset) {
        error_setg(errp, "L1 table offset 0x%" PRIx64 " beyond end of file",
                   s->l1_offset);
        return -1;
    }
    s->l1 = malloc(bytes);
    if (!s->l1) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(b->file, s->l1, bytes, s->l1_offset, errp) < 0)
        return -1;
    for (uint32_t i = 0; i < s->l1_size; i++)
        s->l1[i] = qcow2_get_be64((const uint8_t *)&s->l1[i]);
    return 0;
}

/* Locks and the L2 cache, once cluster_size is known (open, create). */
int qcow2_init_common(struct qcow2_state *s, vf_error **errp)
{
    if (!s->lock_init) {
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->plock, NULL);
        s->lock_init = true;
    }
    unsigned n = QCOW2_L2C_BYTES / s->cluster_size;
    if (n > QCOW2_L2C_MAX)
        n = QCOW2_L2C_MAX;
    if (n < QCOW2_L2C_MIN)
        n = QCOW2_L2C_MIN;
    s->l2c = calloc(n, sizeof(*s->l2c));
    if (!s->l2c) {
        error_setg(errp, "out of memory");
        return -1;
    }
    s->l2c_n = n;
    return 0;
}

static int qcow2_open(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint8_t *hc = NULL;
    int ret = -1;
    int64_t fsz = io_size(b->file, errp);
    if (fsz < 0)
        return -1;
    s->file_size = (uint64_t)fsz;
    if (s->file_size < QCOW2_HDR_V2_LEN) {
        error_setg(errp, "file too short for a qcow2 header (%" PRIu64
                   " bytes)", s->file_size);
        return -1;
    }
    if (io_pread(b->file, s->hdr, sizeof(s->hdr), 0, errp) < 0)
        return -1;
    if (qcow2_parse_header(b, s->hdr, errp) < 0)
        return -1;

    /* the whole first cluster: header, extensions (<= 2 MiB) */
    hc = malloc(s->cluster_size);
    if (!hc) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(b->file, hc, s->cluster_size, 0, errp) < 0)
        goto out;
    uint64_t boff = qcow2_get_be64(hc + QCOW2_HDR_BACKING_OFFSET);
    uint32_t blen = qcow2_get_be32(hc + QCOW2_HDR_BACKING_SIZE);
    uint32_t ext_end = s->cluster_size;
    if (boff && boff < ext_end)
        ext_end = (uint32_t)boff;
    const uint8_t *ft = NULL;
    uint32_t ftlen = 0;
    if (s->header_len < ext_end &&
        qcow2_read_extensions(b, hc, s->header_len, ext_end, &ft, &ftlen,
                              errp) < 0)
        goto out;
    if (qcow2_check_features(b, ft, ftlen, errp) < 0)
        goto out;
    if (boff && qcow2_read_backing_name(b, boff, blen, errp) < 0)
        goto out;
    if (qcow2_open_data_file(b, errp) < 0)
        goto out;
    if (qcow2_load_l1(b, errp) < 0)
        goto out;
    if (qcow2_init_common(s, errp) < 0)
        goto out;
    b->cluster_size = s->cluster_size;
    if (!b->readonly && qcow2_open_rw(b, errp) < 0)
        goto out;
    ret = 0;
out:
    free(hc);
    return ret;
}

static void qcow2_close(struct blk *b)
{
    struct qcow2_state *s = b->state;
    if (!s)
        return;
    qcow2_close_write(s);
    free(s->l1);
    s->l1 = NULL;
    for (unsigned i = 0; s->l2c && i < s->l2c_n; i++)
        free(s->l2c[i].data);
    free(s->l2c);
    s->l2c = NULL;
    while (s->dpool) {
        struct qcow2_dctx *d = s->dpool;
        s->dpool = d->next;
        qcow2_dctx_free(d);
    }
    io_close(s->data_file);
    s->data_file = NULL;
    free(s->data_file_name);
    s->data_file_name = NULL;
    if (s->lock_init) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->plock);
    }
    s->lock_init = false;
}

/* ---- info ---- */

static int qcow2_info(struct blk *b, struct json_object *spec,
                      vf_error **errp)
{
    struct qcow2_state *s = b->state;
    (void)errp;
    json_object_object_add(spec, "compat",
                           json_object_new_string(s->version == 2 ? "0.10"
                                                                  : "1.1"));
    json_object_object_add(spec, "compression-type",
                           json_object_new_string(
                               s->compression_type == QCOW2_COMPRESSION_ZSTD
                               ? "zstd" : "zlib"));
    if (s->version >= 3)
        json_object_object_add(spec, "lazy-refcounts",
                               json_object_new_boolean(
                                   s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS));
    json_object_object_add(spec, "refcount-bits",
                           json_object_new_int(1 << s->refcount_order));
    if (s->version >= 3) {
        json_object_object_add(spec, "corrupt", json_object_new_boolean(
                                   s->incompat & QCOW2_INCOMPAT_CORRUPT));
        json_object_object_add(spec, "extended-l2",
                               json_object_new_boolean(s->ext_l2));
    }
    if (s->data_file_name) {
        json_object_object_add(spec, "data-file",
                               json_object_new_string(s->data_file_name));
        json_object_object_add(spec, "data-file-raw",
                               json_object_new_boolean(
                                   s->autoclear & QCOW2_AUTOCLEAR_DATA_RAW));
    }
    if (s->incompat & QCOW2_INCOMPAT_DIRTY)
        json_object_object_add(spec, "dirty", json_object_new_boolean(1));
    return 0;
}

const struct fmt_driver fmt_qcow2 = {
    .name = "qcow2",
    .desc = "QEMU copy-on-write v2/v3 (compressed, backing files)",
    .state_size = sizeof(struct qcow2_state),
    .flags = FMT_F_BACKING | FMT_F_PARALLEL_WRITE,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .create = qcow2_create,
    .pread = qcow2_pread,
    .pwrite = qcow2_pwrite,
    .zero = qcow2_zero,
    .block_status = qcow2_block_status,
    .flush = qcow2_flush,
    .check = qcow2_check,
    .info = qcow2_info,
    .measure = qcow2_measure,
    .resize = qcow2_resize,
    .codec_new = qcow2_codec_new,
    .codec_free = qcow2_codec_free,
    .compress = qcow2_compress,
    .pwrite_compressed = qcow2_pwrite_compressed,
};
