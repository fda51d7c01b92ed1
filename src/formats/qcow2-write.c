/*
 * qcow2-write.c: the qcow2 write side: create, cluster allocation, guest
 * writes and zeroing, compressed clusters, and flush.
 *
 * Layout (spec: QEMU's docs/interop/qcow2.txt): the L1 table, the touched
 * L2 tables and every refcount live in memory while writing; data clusters
 * are appended to the file as they are first written; flush() places the
 * new L2 tables, the L1 table and fresh refcount structures after the data
 * and rewrites the header last.  Freed clusters are never reused (they
 * keep refcount 0), so a write never lands on metadata in use.
 *
 * Locking: s->lock guards all metadata.  Data is written outside it, so
 * pwrite/zero/pwrite_compressed may run in parallel (FMT_F_PARALLEL_WRITE).
 */
#include "formats/qcow2.h"

#include <inttypes.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Refcounts are kept in memory as 32-bit counters, one per host cluster:
 * 2^26 of them is 256 MiB and a 4 TiB file at 64 KiB clusters; opening
 * anything larger for writing is refused rather than risk the memory. */
#define QCOW2_MAX_RW_CLUSTERS (1ULL << 26)
/* Preallocated L2 tables all live in memory until flush. */
#define QCOW2_MAX_PREALLOC_L2_BYTES (512ULL << 20)

#define QCOW2_DEFAULT_ZLIB_LEVEL 3
#define QCOW2_DEFAULT_ZSTD_LEVEL 3

enum qcow2_prealloc { PREALLOC_OFF, PREALLOC_METADATA, PREALLOC_FALLOC,
                      PREALLOC_FULL };

/* ---- refcounts in memory (lock held) ---- */

static int qcow2_rc_reserve(struct qcow2_state *s, uint64_t n,
                            vf_error **errp)
{
    if (n <= s->rc_cap)
        return 0;
    if (n > QCOW2_MAX_RW_CLUSTERS) {
        error_setg(errp, "image file too large to write (%" PRIu64
                   " clusters)", n);
        return -1;
    }
    uint64_t cap = s->rc_cap ? s->rc_cap : 1024;
    while (cap < n)
        cap *= 2;
    uint32_t *r = realloc(s->rc, cap * sizeof(*r));
    if (!r) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memset(r + s->rc_cap, 0, (cap - s->rc_cap) * sizeof(*r));
    s->rc = r;
    s->rc_cap = cap;
    return 0;
}

static uint64_t qcow2_rc_of(const struct qcow2_state *s, uint64_t host)
{
    uint64_t c = host >> s->cluster_bits;
    return c < s->rc_cap ? s->rc[c] : 0;
}

void qcow2_rc_dec(struct qcow2_state *s, uint64_t c)
{
    if (c < s->rc_cap && s->rc[c])
        s->rc[c]--;
}

/* n fresh clusters at the end of the file, refcount 1 each.  Returns the
 * first one's host offset, 0 on error. */
static uint64_t qcow2_alloc(struct qcow2_state *s, uint64_t n,
                            vf_error **errp)
{
    uint64_t first = s->next_free;
    if (n > (QCOW2_MAX_HOST_OFFSET >> s->cluster_bits) - first) {
        error_setg(errp, "image file would exceed 2^56 bytes");
        return 0;
    }
    if (qcow2_rc_reserve(s, first + n, errp) < 0)
        return 0;
    for (uint64_t i = 0; i < n; i++)
        s->rc[first + i] = 1;
    s->next_free = first + n;
    uint64_t end = s->next_free << s->cluster_bits;
    if (end > s->file_size)
        __atomic_store_n(&s->file_size, end, __ATOMIC_RELAXED);
    return first << s->cluster_bits;
}

/* Drop the references an L2 entry holds (lock held). */
int qcow2_release_entry(struct blk *b, uint64_t e)
{
    struct qcow2_state *s = b->state;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t h, n;
        qcow2_compressed_span(s, e, &h, &n);
        for (uint64_t c = h >> s->cluster_bits;
             c <= (h + n - 1) >> s->cluster_bits; c++)
            qcow2_rc_dec(s, c);
        return 0;
    }
    uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
    if (h)
        qcow2_rc_dec(s, h >> s->cluster_bits);
    return 0;
}

/* ---- in-memory L2 tables (lock held) ---- */

static inline uint64_t l2e_get(const struct qcow2_state *s,
                               const uint8_t *t, uint64_t i)
{
    return qcow2_get_be64(t + i * s->l2_entry_size);
}

static inline void l2e_set(const struct qcow2_state *s, uint8_t *t,
                           uint64_t i, uint64_t e)
{
    qcow2_put_be64(t + i * s->l2_entry_size, e);
}

/* The writable table for L1 slot l1i: loaded, copied on write when shared
 * with a snapshot, or fresh. */
uint8_t *qcow2_l2_mut(struct blk *b, uint64_t l1i, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (l1i >= s->l1_size || l1i >= s->l2m_cap) {
        error_setg(errp, "guest cluster outside the L1 table");
        return NULL;
    }
    if (s->l2m[l1i]) {
        s->l2m_dirty[l1i] = 1;
        s->dirty_meta = true;
        return s->l2m[l1i];
    }
    uint8_t *t = calloc(1, s->cluster_size);
    if (!t) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    uint64_t off = s->l1[l1i] & QCOW2_L1E_OFFSET_MASK;
    if (off) {
        if (qcow2_load_table(b, off, t, "L2 table", errp) < 0) {
            free(t);
            return NULL;
        }
        if (qcow2_rc_of(s, off) != 1) {
            /* shared with a snapshot: the copy gets a new home at flush */
            qcow2_rc_dec(s, off >> s->cluster_bits);
            s->l1[l1i] = 0;
            s->l1_dirty = true;
        }
    }
    s->l2m[l1i] = t;
    s->l2m_dirty[l1i] = 1;
    s->dirty_meta = true;
    return t;
}

int qcow2_resize_l1(struct blk *b, uint32_t n, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (n <= s->l2m_cap && n <= s->l1_size) {
        return 0;
    }
    uint64_t *l1 = realloc(s->l1, (size_t)n * sizeof(*l1));
    if (!l1)
        goto oom;
    s->l1 = l1;
    uint8_t **m = realloc(s->l2m, (size_t)n * sizeof(*m));
    if (!m)
        goto oom;
    s->l2m = m;
    uint8_t *d = realloc(s->l2m_dirty, n);
    if (!d)
        goto oom;
    s->l2m_dirty = d;
    for (uint32_t i = s->l2m_cap; i < n; i++) {
        s->l2m[i] = NULL;
        s->l2m_dirty[i] = 0;
    }
    for (uint32_t i = s->l1_size; i < n; i++)
        s->l1[i] = 0;
    if (n > s->l2m_cap)
        s->l2m_cap = n;
    if (n != s->l1_size) {
        s->l1_size = n;
        s->l1_moved = true;
        s->l1_dirty = true;
        s->dirty_meta = true;
    }
    return 0;
oom:
    error_setg(errp, "out of memory");
    return -1;
}

/* ---- opening an existing image for writing ---- */

int qcow2_open_rw(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint8_t *reft = NULL, *blkbuf = NULL;
    int ret = -1;
    if (s->incompat & QCOW2_INCOMPAT_DIRTY) {
        error_setg(errp, "image is dirty (refcounts may be wrong): repair "
                   "it with qemu-img check -r all first");
        return -1;
    }
    if (s->data_file || (s->incompat & QCOW2_INCOMPAT_DATA_FILE)) {
        error_setg(errp, "writing images with an external data file is "
                   "not supported");
        return -1;
    }
    if (s->reft_clusters == 0) {
        error_setg(errp, "image has no refcount table");
        return -1;
    }
    uint64_t nclusters = (s->file_size + cs - 1) >> s->cluster_bits;
    if (qcow2_rc_reserve(s, nclusters + 1, errp) < 0)
        return -1;
    s->max_refcount = s->refcount_order >= 5 ? UINT32_MAX
                    : (1ULL << (1u << s->refcount_order)) - 1;

    /* the refcount table is <= 8 MiB (checked at open) */
    size_t rtbytes = (size_t)s->reft_clusters * cs;
    reft = malloc(rtbytes);
    blkbuf = malloc(cs);
    if (!reft || !blkbuf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (io_pread(b->file, reft, rtbytes, s->reft_offset, errp) < 0)
        goto out;
    uint64_t epb = cs * 8 >> s->refcount_order;   /* entries per block */
    uint64_t nent = rtbytes / 8, nblocks = 0;
    for (uint64_t i = 0; i < nent; i++)
        if (qcow2_get_be64(reft + i * 8) & QCOW2_REFT_OFFSET_MASK)
            nblocks++;
    s->old_rb = calloc(nblocks ? nblocks : 1, sizeof(*s->old_rb));
    if (!s->old_rb) {
        error_setg(errp, "out of memory");
        goto out;
    }
    uint64_t last = nclusters;
    for (uint64_t i = 0; i < nent; i++) {
        uint64_t bo = qcow2_get_be64(reft + i * 8) & QCOW2_REFT_OFFSET_MASK;
        if (!bo)
            continue;
        if (i * epb >= nclusters) {
            /* counts only clusters beyond the end of file, which nothing
             * can use; not loading them bounds the reads by the file */
            s->old_rb[s->old_rb_n++] = bo;
            continue;
        }
        if (qcow2_load_table(b, bo, blkbuf, "refcount block", errp) < 0)
            goto out;
        s->old_rb[s->old_rb_n++] = bo;
        for (uint64_t j = 0; j < epb; j++) {
            uint64_t v = qcow2_rc_get(blkbuf, j, s->refcount_order);
            if (!v)
                continue;
            uint64_t c = i * epb + j;
            if (v > UINT32_MAX) {
                error_setg(errp, "refcount %" PRIu64 " of cluster %" PRIu64
                           " too large", v, c);
                goto out;
            }
            if (qcow2_rc_reserve(s, c + 1, errp) < 0)
                goto out;
            s->rc[c] = (uint32_t)v;
            if (c + 1 > last)
                last = c + 1;
        }
    }
    s->next_free = last;
    if (s->l1_size && s->l1_offset)
        s->l1_clusters = (uint32_t)(((uint64_t)s->l1_size * 8 + cs - 1) /
                                    cs);
    s->l2m = calloc(s->l1_size ? s->l1_size : 1, sizeof(*s->l2m));
    s->l2m_dirty = calloc(s->l1_size ? s->l1_size : 1, 1);
    if (!s->l2m || !s->l2m_dirty) {
        error_setg(errp, "out of memory");
        goto out;
    }
    s->l2m_cap = s->l1_size;
    if (!s->l1) {
        s->l1 = calloc(1, sizeof(*s->l1));
        if (!s->l1) {
            error_setg(errp, "out of memory");
            goto out;
        }
    }
    s->writable = true;
    ret = 0;
out:
    free(reft);
    free(blkbuf);
    return ret;
}

void qcow2_close_write(struct qcow2_state *s)
{
    for (uint32_t i = 0; s->l2m && i < s->l2m_cap; i++)
        free(s->l2m[i]);
    free(s->l2m);
    s->l2m = NULL;
    free(s->l2m_dirty);
    s->l2m_dirty = NULL;
    free(s->rc);
    s->rc = NULL;
    free(s->old_rb);
    s->old_rb = NULL;
    free(s->w_backing);
    s->w_backing = NULL;
    free(s->w_backing_fmt);
    s->w_backing_fmt = NULL;
}

/* ---- create ---- */

int qcow2_parse_create(struct qcow2_state *s, const struct fmt_create_opts *o,
                       int *pa_out, vf_error **errp)
{
    enum qcow2_prealloc pa_v, *pa = &pa_v;
    struct opts *op = o->o;
    uint64_t cs = 65536;
    bool present = false;
    if (op && opts_get_size(op, "cluster_size", &cs, &present, errp) < 0)
        return -1;
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
        error_setg(errp, "invalid cluster_size %" PRIu64 " (a power of two "
                   "from 512 to 2M)", cs);
        return -1;
    }
    s->cluster_size = (uint32_t)cs;
    s->cluster_bits = (uint32_t)__builtin_ctzll(cs);
    s->version = 3;
    const char *v = op ? opts_get(op, "compat") : NULL;
    if (v) {
        if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
            s->version = 2;
        else if (strcmp(v, "1.1") && strcmp(v, "v3")) {
            error_setg(errp, "invalid compat '%s' (0.10 or 1.1)", v);
            return -1;
        }
    }
    uint64_t rb = 16;
    if (op && opts_get_size(op, "refcount_bits", &rb, &present, errp) < 0)
        return -1;
    if (rb < 1 || rb > 64 || (rb & (rb - 1))) {
        error_setg(errp, "invalid refcount_bits %" PRIu64
                   " (a power of two from 1 to 64)", rb);
        return -1;
    }
    if (s->version == 2 && rb != 16) {
        error_setg(errp, "compat=0.10 needs refcount_bits=16");
        return -1;
    }
    s->refcount_order = (uint32_t)__builtin_ctzll(rb);
    v = op ? opts_get(op, "compression_type") : NULL;
    s->compression_type = QCOW2_COMPRESSION_ZLIB;
    if (v && !strcmp(v, "zstd")) {
        if (s->version == 2) {
            error_setg(errp, "compression_type=zstd needs compat=1.1");
            return -1;
        }
        s->compression_type = QCOW2_COMPRESSION_ZSTD;
    } else if (v && strcmp(v, "zlib")) {
        error_setg(errp, "invalid compression_type '%s' (zlib or zstd)", v);
        return -1;
    }
    s->compression_level = s->compression_type == QCOW2_COMPRESSION_ZSTD
                         ? QCOW2_DEFAULT_ZSTD_LEVEL : QCOW2_DEFAULT_ZLIB_LEVEL;
    uint64_t lvl = 0;
    if (op && opts_get_size(op, "compression_level", &lvl, &present,
                            errp) < 0)
        return -1;
    if (present) {
        uint64_t max = s->compression_type == QCOW2_COMPRESSION_ZSTD ? 19
                                                                     : 12;
        if (lvl < 1 || lvl > max) {
            error_setg(errp, "invalid compression_level %" PRIu64
                       " (1 to %" PRIu64 ")", lvl, max);
            return -1;
        }
        s->compression_level = (int)lvl;
    }
    *pa = PREALLOC_OFF;
    v = op ? opts_get(op, "preallocation") : NULL;
    if (v) {
        if (!strcmp(v, "metadata"))
            *pa = PREALLOC_METADATA;
        else if (!strcmp(v, "falloc"))
            *pa = PREALLOC_FALLOC;
        else if (!strcmp(v, "full"))
            *pa = PREALLOC_FULL;
        else if (strcmp(v, "off")) {
            error_setg(errp, "invalid preallocation '%s' "
                       "(off, metadata, falloc, full)", v);
            return -1;
        }
    }
    bool flag = false;
    if (op && opts_get_bool(op, "lazy_refcounts", &flag, errp) < 0)
        return -1;
    if (flag) {
        error_setg(errp, "lazy_refcounts=on is not supported");
        return -1;
    }
    flag = false;
    if (op && opts_get_bool(op, "extended_l2", &flag, errp) < 0)
        return -1;
    if (flag) {
        error_setg(errp, "extended_l2=on is not supported for writing");
        return -1;
    }
    if (op && opts_get(op, "data_file")) {
        error_setg(errp, "data_file is not supported");
        return -1;
    }
    if (*pa != PREALLOC_OFF && o->backing_file) {
        error_setg(errp, "a backing file and preallocation cannot be used "
                   "together");
        return -1;
    }
    *pa_out = (int)*pa;
    return 0;
}

/* Allocate every L2 table and data cluster up front. */
static int qcow2_preallocate(struct blk *b, enum qcow2_prealloc pa,
                             vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t nclusters = (b->size + cs - 1) >> s->cluster_bits;
    if (!nclusters)
        return 0;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t ntables = (nclusters + per_l2 - 1) / per_l2;
    if (ntables > QCOW2_MAX_PREALLOC_L2_BYTES / cs) {
        error_setg(errp, "image too large to preallocate with cluster_size "
                   "%" PRIu64, cs);
        return -1;
    }
    uint64_t data = qcow2_alloc(s, nclusters, errp);
    if (!data)
        return -1;
    for (uint64_t i = 0; i < nclusters; i++) {
        uint8_t *t = qcow2_l2_mut(b, i / per_l2, errp);
        if (!t)
            return -1;
        l2e_set(s, t, i % per_l2, (data + i * cs) | QCOW2_OFLAG_COPIED);
    }
    uint64_t bytes = nclusters * cs;
    switch (pa) {
    case PREALLOC_METADATA:
        return io_truncate(b->file, data + bytes, errp);
    case PREALLOC_FALLOC:
        return io_falloc(b->file, data, bytes, errp);
    case PREALLOC_FULL: {
        size_t chunk = 1u << 20;
        uint8_t *z = calloc(1, chunk);
        if (!z) {
            error_setg(errp, "out of memory");
            return -1;
        }
        int r = 0;
        for (uint64_t o = 0; o < bytes && r == 0; o += chunk) {
            size_t n = bytes - o < chunk ? (size_t)(bytes - o) : chunk;
            r = io_pwrite(b->file, z, n, data + o, errp);
        }
        free(z);
        return r;
    }
    default:
        return 0;
    }
}

int qcow2_create(struct blk *b, const struct fmt_create_opts *o,
                 vf_error **errp)
{
    struct qcow2_state *s = b->state;
    int pai;
    if (qcow2_parse_create(s, o, &pai, errp) < 0)
        return -1;
    enum qcow2_prealloc pa = (enum qcow2_prealloc)pai;
    if (o->size > QCOW2_MAX_VIRTUAL_SIZE) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large", o->size);
        return -1;
    }
    s->header_len = s->version == 2 ? QCOW2_HDR_V2_LEN : QCOW2_HDR_V3_LEN;
    s->l2_entry_size = 8;
    s->l2_bits = s->cluster_bits - 3;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->coffset_mask = (1ULL << s->csize_shift) - 1;
    s->csize_mask = (1ULL << (s->cluster_bits - 8)) - 1;
    if (s->compression_type == QCOW2_COMPRESSION_ZSTD)
        s->incompat |= QCOW2_INCOMPAT_COMPRESSION;
    s->max_refcount = s->refcount_order >= 5 ? UINT32_MAX
                    : (1ULL << (1u << s->refcount_order)) - 1;
    uint64_t cover = (uint64_t)s->cluster_size << s->l2_bits;
    uint64_t l1 = (o->size + cover - 1) / cover;
    if (l1 > QCOW2_MAX_L1_BYTES / 8) {
        error_setg(errp, "virtual size 0x%" PRIx64 " too large for "
                   "cluster_size %" PRIu32, o->size, s->cluster_size);
        return -1;
    }
    if (qcow2_init_common(s, errp) < 0)
        return -1;
    b->size = o->size;
    b->cluster_size = s->cluster_size;
    b->compressed = o->compress;
    b->zero_init = !o->backing_file;
    s->created = true;
    s->writable = true;
    s->dirty_meta = true;
    s->l1_moved = true;
    s->l1_size = 0;
    if (qcow2_resize_l1(b, (uint32_t)(l1 ? l1 : 0), errp) < 0)
        return -1;
    if (!s->l1 && qcow2_resize_l1(b, 1, errp) < 0)   /* size 0 image */
        return -1;
    s->l1_size = (uint32_t)l1;
    if (o->backing_file) {
        const char *fmt = o->backing_fmt;
        if (!fmt && b->backing)
            fmt = b->backing->drv->name;
        size_t bl = strlen(o->backing_file);
        size_t fl = fmt ? strlen(fmt) : 0;
        if (bl > QCOW2_MAX_BACKING_NAME || fl > QCOW2_MAX_BACKING_NAME) {
            error_setg(errp, "backing file name too long");
            return -1;
        }
        /* header, backing format extension, end marker, name */
        if (s->header_len + 8 + ((fl + 7) & ~7u) + 8 + bl > s->cluster_size) {
            error_setg(errp, "backing file name too long for cluster_size "
                       "%" PRIu32, s->cluster_size);
            return -1;
        }
        s->w_backing = strdup(o->backing_file);
        s->w_backing_fmt = fmt ? strdup(fmt) : NULL;
        if (!s->w_backing || (fmt && !s->w_backing_fmt)) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    if (qcow2_rc_reserve(s, 1, errp) < 0)
        return -1;
    s->rc[0] = 1;                       /* the header cluster */
    s->next_free = 1;
    s->file_size = s->cluster_size;
    if (pa != PREALLOC_OFF && qcow2_preallocate(b, pa, errp) < 0)
        return -1;
    return 0;
}

/* ---- guest writes ---- */

/* Current content of the guest cluster at coff (cluster aligned) whose L2
 * entry is e, into buf (cluster_size bytes).  Lock held. */
static int qcow2_cluster_content(struct blk *b, uint64_t coff, uint64_t e,
                                 uint8_t *buf, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    if (e & QCOW2_OFLAG_COMPRESSED)
        return qcow2_read_compressed(b, e, buf, errp);
    if ((e & QCOW2_OFLAG_ZERO) && s->version >= 3) {
        memset(buf, 0, cs);
        return 0;
    }
    uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
    if (h)
        return io_pread(b->file, buf, cs, h, errp);
    uint64_t n = cs;
    if (coff >= b->size)
        n = 0;
    else if (b->size - coff < n)
        n = b->size - coff;
    memset(buf, 0, cs);
    return n ? blk_read_backing(b, buf, coff, (size_t)n, errp) : 0;
}

/* Is e a normal cluster we may overwrite in place? */
static bool qcow2_in_place(const struct qcow2_state *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED)
        return false;
    uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
    return h && qcow2_rc_of(s, h) == 1;
}

/* A write inside one guest cluster that does not cover it. */
static int qcow2_write_partial(struct blk *b, const uint8_t *p, uint64_t off,
                               size_t n, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t coff = off & ~(cs - 1);
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t gci = coff >> s->cluster_bits;
    uint8_t *buf = NULL;
    int r = -1;
    pthread_mutex_lock(&s->lock);
    uint8_t *t = qcow2_l2_mut(b, gci / per_l2, errp);
    if (!t)
        goto out;
    uint64_t e = l2e_get(s, t, gci % per_l2);
    bool zflag = (e & QCOW2_OFLAG_ZERO) && s->version >= 3 &&
                 !(e & QCOW2_OFLAG_COMPRESSED);
    if (qcow2_in_place(s, e) && !zflag) {
        uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
        pthread_mutex_unlock(&s->lock);
        return io_pwrite(b->file, p, n, h + (off - coff), errp);
    }
    /* read-modify-write the whole cluster, under the lock so that two
     * partial writes to one new cluster cannot race */
    buf = malloc(cs);
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (qcow2_cluster_content(b, coff, e, buf, errp) < 0)
        goto out;
    memcpy(buf + (off - coff), p, n);
    uint64_t h;
    if (qcow2_in_place(s, e)) {
        h = e & QCOW2_L2E_OFFSET_MASK;
    } else {
        h = qcow2_alloc(s, 1, errp);
        if (!h)
            goto out;
        qcow2_release_entry(b, e);
    }
    if (io_pwrite(b->file, buf, cs, h, errp) < 0)
        goto out;
    l2e_set(s, t, gci % per_l2, h | QCOW2_OFLAG_COPIED);
    r = 0;
out:
    pthread_mutex_unlock(&s->lock);
    free(buf);
    return r;
}

/* Whole guest clusters from off (aligned), at most len bytes, within one
 * L2 table: one host-contiguous run per call.  *done gets the bytes. */
static int qcow2_write_full(struct blk *b, const uint8_t *p, uint64_t off,
                            uint64_t len, uint64_t *done, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t gci = off >> s->cluster_bits;
    uint64_t l1i = gci / per_l2;
    uint64_t host0 = 0, k = 0;
    pthread_mutex_lock(&s->lock);
    uint8_t *t = qcow2_l2_mut(b, l1i, errp);
    if (!t) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    /* whole clusters only, but the guest's last cluster may be short:
     * then len ends at b->size */
    bool to_end = off + len == b->size;
    while (k * cs < len && (gci + k) / per_l2 == l1i &&
           ((k + 1) * cs <= len || to_end)) {
        uint64_t i = (gci + k) % per_l2;
        uint64_t e = l2e_get(s, t, i);
        uint64_t h;
        if (qcow2_in_place(s, e)) {
            h = e & QCOW2_L2E_OFFSET_MASK;
            if (k && h != host0 + k * cs)
                break;
        } else {
            if (k && s->next_free << s->cluster_bits != host0 + k * cs)
                break;
            h = qcow2_alloc(s, 1, errp);
            if (!h) {
                if (k)
                    break;
                pthread_mutex_unlock(&s->lock);
                return -1;
            }
            qcow2_release_entry(b, e);
        }
        l2e_set(s, t, i, h | QCOW2_OFLAG_COPIED);
        if (!k)
            host0 = h;
        k++;
    }
    pthread_mutex_unlock(&s->lock);
    uint64_t n = k * cs < len ? k * cs : len;
    *done = n;
    return io_pwrite(b->file, p, (size_t)n, host0, errp);
}

int qcow2_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
                 vf_error **errp)
{
    struct qcow2_state *s = b->state;
    const uint8_t *p = buf;
    uint64_t cs = s->cluster_size;
    if (!s->writable) {
        error_setg(errp, "image is open read-only");
        return -1;
    }
    if (s->ext_l2) {
        error_setg(errp, "writing images with extended L2 entries is not "
                   "supported");
        return -1;
    }
    while (len) {
        uint64_t in = off & (cs - 1);
        uint64_t n;
        bool whole = in == 0 && (len >= cs || off + len == b->size);
        if (whole) {
            if (qcow2_write_full(b, p, off, len, &n, errp) < 0)
                return -1;
        } else {
            n = cs - in < len ? cs - in : len;
            if (qcow2_write_partial(b, p, off, (size_t)n, errp) < 0)
                return -1;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Make one whole guest cluster read as zeros. */
static int qcow2_zero_cluster(struct blk *b, uint64_t gci, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    uint64_t l1i = gci / per_l2;
    bool backing = b->backing || s->w_backing || b->backing_name;
    pthread_mutex_lock(&s->lock);
    if (!backing && !(s->l2m[l1i]) &&
        !(s->l1[l1i] & QCOW2_L1E_OFFSET_MASK)) {
        pthread_mutex_unlock(&s->lock);
        return 0;       /* nothing allocated here, nothing below */
    }
    uint8_t *t = qcow2_l2_mut(b, l1i, errp);
    if (!t) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    uint64_t i = gci % per_l2;
    uint64_t e = l2e_get(s, t, i);
    if (s->version >= 3 && backing && qcow2_in_place(s, e)) {
        /* keep the cluster allocated, reading as zeros */
        l2e_set(s, t, i, e | QCOW2_OFLAG_ZERO);
    } else if (s->version >= 3 && backing) {
        qcow2_release_entry(b, e);
        l2e_set(s, t, i, QCOW2_OFLAG_ZERO);
    } else if (!backing) {
        qcow2_release_entry(b, e);
        l2e_set(s, t, i, 0);
    } else {
        pthread_mutex_unlock(&s->lock);
        return 1;       /* v2 over a backing file: write zeros */
    }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int qcow2_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint8_t *z = NULL;
    if (!s->writable) {
        error_setg(errp, "image is open read-only");
        return -1;
    }
    if (s->ext_l2) {
        error_setg(errp, "writing images with extended L2 entries is not "
                   "supported");
        return -1;
    }
    bool backing = b->backing || s->w_backing || b->backing_name;
    uint64_t cover = cs << s->l2_bits;
    while (len) {
        uint64_t in = off & (cs - 1);
        uint64_t n = cs - in < len ? cs - in : len;
        bool whole = in == 0 && (n == cs || off + n == b->size);
        if (whole && !backing && in == 0 && len >= cover &&
            off % cover == 0) {
            /* skip an L2 table's range that was never allocated */
            uint64_t l1i = off / cover;
            pthread_mutex_lock(&s->lock);
            bool empty = l1i < s->l1_size && !s->l2m[l1i] &&
                         !(s->l1[l1i] & QCOW2_L1E_OFFSET_MASK);
            pthread_mutex_unlock(&s->lock);
            if (empty) {
                off += cover;
                len -= cover;
                continue;
            }
        }
        int r = whole ? qcow2_zero_cluster(b, off >> s->cluster_bits, errp)
                      : 1;
        if (r < 0)
            goto fail;
        if (r > 0) {
            if (!z && !(z = calloc(1, cs))) {
                error_setg(errp, "out of memory");
                goto fail;
            }
            if (qcow2_pwrite(b, z, off, (size_t)n, errp) < 0)
                goto fail;
        }
        off += n;
        len -= n;
    }
    free(z);
    return 0;
fail:
    free(z);
    return -1;
}

/* ---- compression ---- */

struct qcow2_codec {
    int type;
    int level;
    size_t cs;
    struct libdeflate_compressor *ld;
    ZSTD_CCtx *zc;
    uint8_t *pad;           /* the image's short last cluster, padded */
};

void *qcow2_codec_new(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    struct qcow2_codec *c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->type = (int)s->compression_type;
    c->level = s->compression_level;
    c->cs = s->cluster_size;
    c->pad = malloc(c->cs);
    if (!c->pad)
        goto oom;
    if (c->type == QCOW2_COMPRESSION_ZSTD)
        c->zc = ZSTD_createCCtx();
    else
        c->ld = libdeflate_alloc_compressor(c->level);
    if (!c->zc && !c->ld)
        goto oom;
    return c;
oom:
    qcow2_codec_free(c);
    error_setg(errp, "out of memory");
    return NULL;
}

void qcow2_codec_free(void *codec)
{
    struct qcow2_codec *c = codec;
    if (!c)
        return;
    libdeflate_free_compressor(c->ld);
    ZSTD_freeCCtx(c->zc);
    free(c->pad);
    free(c);
}

size_t qcow2_compress(struct blk *b, void *codec, const void *in,
                      size_t len, void *out, size_t cap)
{
    struct qcow2_codec *c = codec;
    (void)b;
    if (len > c->cs)
        return 0;
    if (len < c->cs) {
        /* QEMU inflates exactly one full cluster: pad the short tail */
        memcpy(c->pad, in, len);
        memset(c->pad + len, 0, c->cs - len);
        in = c->pad;
    }
    /* only a payload smaller than a cluster is worth storing */
    size_t lim = cap < c->cs - 1 ? cap : c->cs - 1;
    if (c->type == QCOW2_COMPRESSION_ZSTD) {
        size_t r = ZSTD_compressCCtx(c->zc, out, cap, in, c->cs, c->level);
        if (ZSTD_isError(r) || r > lim)
            return 0;
        return r;
    }
    return libdeflate_deflate_compress(c->ld, in, c->cs, out, lim);
}

int qcow2_pwrite_compressed(struct blk *b, uint64_t off, const void *raw,
                            size_t len, const void *payload, size_t plen,
                            vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t per_l2 = 1ULL << s->l2_bits;
    if (off & (cs - 1) || len > cs) {
        error_setg(errp, "compressed write at 0x%" PRIx64 " not one "
                   "cluster", off);
        return -1;
    }
    if (plen == 0 || plen >= cs)
        return qcow2_pwrite(b, raw, off, len, errp);
    uint64_t gci = off >> s->cluster_bits;
    pthread_mutex_lock(&s->lock);
    uint8_t *t = qcow2_l2_mut(b, gci / per_l2, errp);
    if (!t)
        goto fail;
    uint64_t e = l2e_get(s, t, gci % per_l2);
    if (qcow2_in_place(s, e)) {
        /* already holds a cluster of its own: overwrite it raw */
        pthread_mutex_unlock(&s->lock);
        return qcow2_pwrite(b, raw, off, len, errp);
    }
    uint64_t cur = s->cbyte >> s->cluster_bits;
    bool share = (s->cbyte & (cs - 1)) && cur + 1 == s->next_free &&
                 cur < s->rc_cap && s->rc[cur] < s->max_refcount;
    uint64_t start = share ? s->cbyte : s->next_free << s->cluster_bits;
    uint64_t end = start + plen;
    uint64_t last = (end - 1) >> s->cluster_bits;
    if (end > s->coffset_mask) {
        error_setg(errp, "compressed data beyond the descriptor's reach");
        goto fail;
    }
    if (last >= s->next_free &&
        !qcow2_alloc(s, last + 1 - s->next_free, errp))
        goto fail;
    if (share)
        s->rc[cur]++;
    s->cbyte = end;
    uint64_t extra = ((end - 1) >> 9) - (start >> 9);
    qcow2_release_entry(b, e);
    l2e_set(s, t, gci % per_l2, QCOW2_OFLAG_COMPRESSED |
            (extra << s->csize_shift) | start);
    pthread_mutex_unlock(&s->lock);
    return io_pwrite(b->file, payload, plen, start, errp);
fail:
    pthread_mutex_unlock(&s->lock);
    return -1;
}

/* ---- flush ---- */

uint64_t qcow2_refcount_meta_clusters(uint64_t clusters,
                                      uint32_t cluster_bits,
                                      unsigned refcount_order,
                                      uint64_t *nblocks)
{
    uint64_t cs = 1ULL << cluster_bits;
    uint64_t epb = cs * 8 >> refcount_order;   /* refcounts per block */
    uint64_t ept = cs / 8;                     /* blocks per table cluster */
    uint64_t blocks = 0, table = 0, prev;
    /* the fixed point: blocks that also count themselves and the table */
    do {
        prev = blocks + table;
        blocks = (clusters + blocks + table + epb - 1) / epb;
        table = (blocks + ept - 1) / ept;
    } while (blocks + table != prev);
    if (nblocks)
        *nblocks = blocks;
    return blocks + table;
}

static int qcow2_write_header(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (!s->created) {
        /* an opened image: patch the fields we own, keep the rest */
        uint8_t *h = s->hdr;
        qcow2_put_be64(h + QCOW2_HDR_SIZE, b->size);
        qcow2_put_be32(h + QCOW2_HDR_L1_SIZE, s->l1_size);
        qcow2_put_be64(h + QCOW2_HDR_L1_OFFSET, s->l1_offset);
        qcow2_put_be64(h + QCOW2_HDR_REFT_OFFSET, s->reft_offset);
        qcow2_put_be32(h + QCOW2_HDR_REFT_CLUSTERS, s->reft_clusters);
        size_t n = QCOW2_HDR_V2_LEN;
        if (s->version >= 3) {
            /* we maintain no autoclear feature (bitmaps go stale) */
            qcow2_put_be64(h + QCOW2_HDR_AUTOCLEAR, 0);
            n = QCOW2_HDR_V3_MIN_LEN;
        }
        return io_pwrite(b->file, h, n, 0, errp);
    }
    uint8_t *h = calloc(1, s->cluster_size);
    if (!h) {
        error_setg(errp, "out of memory");
        return -1;
    }
    qcow2_put_be32(h + QCOW2_HDR_MAGIC, QCOW2_MAGIC);
    qcow2_put_be32(h + QCOW2_HDR_VERSION, s->version);
    qcow2_put_be32(h + QCOW2_HDR_CLUSTER_BITS, s->cluster_bits);
    qcow2_put_be64(h + QCOW2_HDR_SIZE, b->size);
    qcow2_put_be32(h + QCOW2_HDR_L1_SIZE, s->l1_size);
    qcow2_put_be64(h + QCOW2_HDR_L1_OFFSET, s->l1_offset);
    qcow2_put_be64(h + QCOW2_HDR_REFT_OFFSET, s->reft_offset);
    qcow2_put_be32(h + QCOW2_HDR_REFT_CLUSTERS, s->reft_clusters);
    if (s->version >= 3) {
        qcow2_put_be64(h + QCOW2_HDR_INCOMPAT, s->incompat);
        qcow2_put_be32(h + QCOW2_HDR_REFCOUNT_ORDER, s->refcount_order);
        qcow2_put_be32(h + QCOW2_HDR_HEADER_LEN, s->header_len);
        h[QCOW2_HDR_COMPRESSION_TYPE] = (uint8_t)s->compression_type;
    }
    size_t o = s->header_len;
    if (s->w_backing_fmt) {
        uint32_t l = (uint32_t)strlen(s->w_backing_fmt);
        qcow2_put_be32(h + o, QCOW2_EXT_BACKING_FMT);
        qcow2_put_be32(h + o + 4, l);
        memcpy(h + o + 8, s->w_backing_fmt, l);
        o += 8 + ((l + 7) & ~7u);
    }
    o += 8;                             /* end of extensions: all zero */
    if (s->w_backing) {
        uint32_t l = (uint32_t)strlen(s->w_backing);
        qcow2_put_be64(h + QCOW2_HDR_BACKING_OFFSET, o);
        qcow2_put_be32(h + QCOW2_HDR_BACKING_SIZE, l);
        memcpy(h + o, s->w_backing, l);   /* fits: checked at create */
        o += l;
    }
    /* the rest of the cluster stays a hole (it reads as zeros) */
    size_t n = (o + 511) & ~(size_t)511;
    int r = io_pwrite(b->file, h, n < s->cluster_size ? n : s->cluster_size,
                      0, errp);
    free(h);
    return r;
}

/* Set bit 63 of an L2 entry iff its cluster's refcount is exactly 1. */
static uint64_t qcow2_fix_copied(const struct qcow2_state *s, uint64_t e)
{
    e &= ~QCOW2_OFLAG_COPIED;
    if (e & QCOW2_OFLAG_COMPRESSED)
        return e;
    uint64_t h = e & QCOW2_L2E_OFFSET_MASK;
    if (h && qcow2_rc_of(s, h) == 1)
        e |= QCOW2_OFLAG_COPIED;
    return e;
}

static int qcow2_write_refcounts(struct blk *b, uint64_t reft,
                                 uint64_t tclusters, uint64_t nblocks,
                                 vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    uint64_t epb = cs * 8 >> s->refcount_order;
    uint64_t first_block = reft + tclusters * cs;
    int r = -1;
    uint8_t *tab = calloc(tclusters, cs);
    uint8_t *rbuf = malloc(cs);
    uint64_t *nb = calloc(nblocks ? nblocks : 1, sizeof(*nb));
    if (!tab || !rbuf || !nb) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < nblocks; i++) {
        memset(rbuf, 0, cs);
        for (uint64_t j = 0; j < epb; j++) {
            uint64_t c = i * epb + j;
            if (c >= s->next_free)
                break;
            uint64_t v = c < s->rc_cap ? s->rc[c] : 0;
            if (v > s->max_refcount) {
                error_setg(errp, "refcount %" PRIu64 " of cluster %" PRIu64
                           " overflows refcount_bits", v, c);
                goto out;
            }
            qcow2_rc_set(rbuf, j, s->refcount_order, v);
        }
        uint64_t bo = first_block + i * cs;
        nb[i] = bo;
        qcow2_put_be64(tab + i * 8, bo);
        if (io_pwrite(b->file, rbuf, cs, bo, errp) < 0)
            goto out;
    }
    if (io_pwrite(b->file, tab, tclusters * cs, reft, errp) < 0)
        goto out;
    free(s->old_rb);
    s->old_rb = nb;
    s->old_rb_n = nblocks;
    nb = NULL;
    s->reft_offset = reft;
    s->reft_clusters = (uint32_t)tclusters;
    r = 0;
out:
    free(tab);
    free(rbuf);
    free(nb);
    return r;
}

/* The L1 table, bit 63 set where the L2 table's refcount is 1. */
static int qcow2_write_l1(struct blk *b, uint32_t l1c, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    size_t l1bytes = (size_t)l1c * s->cluster_size;
    uint8_t *l1buf = calloc(1, l1bytes);
    if (!l1buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t e = s->l1[i] & QCOW2_L1E_OFFSET_MASK;
        if (e && qcow2_rc_of(s, e) == 1)
            e |= QCOW2_OFLAG_COPIED;
        s->l1[i] = e;
        qcow2_put_be64(l1buf + (size_t)i * 8, e);
    }
    int r = io_pwrite(b->file, l1buf, l1bytes, s->l1_offset, errp);
    free(l1buf);
    if (r == 0)
        s->l1_dirty = false;
    return r;
}

static int qcow2_flush_locked(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    uint64_t cs = s->cluster_size;
    /* 1. homes for new L2 tables */
    for (uint32_t i = 0; i < s->l1_size; i++) {
        if (s->l2m[i] && !(s->l1[i] & QCOW2_L1E_OFFSET_MASK)) {
            uint64_t h = qcow2_alloc(s, 1, errp);
            if (!h)
                return -1;
            s->l1[i] = h;
            s->l2m_dirty[i] = 1;
            s->l1_dirty = true;
        }
    }
    /* 2. the L1 table: a new home when it grew */
    uint32_t l1c = (uint32_t)(((uint64_t)s->l1_size * 8 + cs - 1) / cs);
    if (!l1c)
        l1c = 1;
    if (s->l1_moved || !s->l1_offset) {
        for (uint32_t i = 0; s->l1_offset && i < s->l1_clusters; i++)
            qcow2_rc_dec(s, (s->l1_offset >> s->cluster_bits) + i);
        uint64_t h = qcow2_alloc(s, l1c, errp);
        if (!h)
            return -1;
        s->l1_offset = h;
        s->l1_clusters = l1c;
        s->l1_moved = false;
        s->l1_dirty = true;
    }
    /* 3. fresh refcount structures after everything else */
    if (s->reft_offset)
        for (uint32_t i = 0; i < s->reft_clusters; i++)
            qcow2_rc_dec(s, (s->reft_offset >> s->cluster_bits) + i);
    for (uint64_t i = 0; i < s->old_rb_n; i++)
        qcow2_rc_dec(s, s->old_rb[i] >> s->cluster_bits);
    uint64_t nblocks;
    uint64_t meta = qcow2_refcount_meta_clusters(s->next_free,
                                                 s->cluster_bits,
                                                 s->refcount_order, &nblocks);
    uint64_t tclusters = meta - nblocks;
    if (tclusters > QCOW2_MAX_REFT_BYTES / cs) {
        error_setg(errp, "refcount table would exceed 8 MiB");
        return -1;
    }
    uint64_t reft = qcow2_alloc(s, meta, errp);
    if (!reft)
        return -1;
    /* 4. write the L2 tables with exact COPIED flags, then the L1 */
    uint64_t per_l2 = 1ULL << s->l2_bits;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        if (!s->l2m[i] || !s->l2m_dirty[i])
            continue;
        for (uint64_t j = 0; j < per_l2; j++)
            l2e_set(s, s->l2m[i], j,
                    qcow2_fix_copied(s, l2e_get(s, s->l2m[i], j)));
        if (io_pwrite(b->file, s->l2m[i], cs,
                      s->l1[i] & QCOW2_L1E_OFFSET_MASK, errp) < 0)
            return -1;
        s->l2m_dirty[i] = 0;
    }
    if (s->l1_dirty && qcow2_write_l1(b, l1c, errp) < 0)
        return -1;
    if (qcow2_write_refcounts(b, reft, tclusters, nblocks, errp) < 0)
        return -1;
    /* 5. the header last: it switches to the new structures */
    if (qcow2_write_header(b, errp) < 0)
        return -1;
    s->dirty_meta = false;
    return 0;
}

int qcow2_flush(struct blk *b, vf_error **errp)
{
    struct qcow2_state *s = b->state;
    if (!s->writable || !s->dirty_meta)
        return 0;
    pthread_mutex_lock(&s->lock);
    int r = qcow2_flush_locked(b, errp);
    pthread_mutex_unlock(&s->lock);
    return r;
}
