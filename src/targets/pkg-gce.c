/*
 * pkg-gce.c: the GCE package (cloud.google.com/compute/docs/import/
 * import-existing-image): the one disk as disk.raw, its size rounded up
 * to a whole GiB, the only member of an oldgnu tar (a sparse 'S' member,
 * so holes are not stored), gzip-compressed, in NAME.tar.gz.
 *
 * Two passes over the disk.  The oldgnu header carries the whole sparse
 * map, so the map is built first: block status, refined by a zero scan so
 * that written zeros become holes too.  The second pass streams header,
 * data runs, padding and the end-of-archive blocks through N workers: the
 * stream is cut into fixed chunks, each compressed into an independent
 * gzip member (RFC 1952 section 2.2: a gzip file is a series of members;
 * gzip, GNU tar, Python and Go's compress/gzip read them as one stream),
 * and an in-order emitter appends the members to the file and hashes
 * them.  The scan runs on the same workers (tasks of 64 granules, their
 * results merged in order).  Memory is bounded by the ring of task slots
 * and the map's bound on its runs, whatever the disk.
 */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libdeflate.h>
#include <openssl/evp.h>

#include "engine/engine.h"
#include "io/io.h"
#include "targets/package.h"
#include "targets/sparse-map.h"
#include "targets/tar.h"

#define GCE_GIB (UINT64_C(1) << 30)
/* Stream bytes per gzip member.  Each member starts with an empty
 * dictionary: on system binaries (256 MiB of /usr, libdeflate level 6)
 * 256 KiB members came out 0.5% larger than 1 MiB ones, 4 MiB members
 * only 0.1% smaller; 1 MiB stays cache-resident while it is filled and
 * compressed. */
#define GCE_CHUNK (1u << 20)
/* libdeflate level.  Measured on the same data, per core (CPU time) and
 * output ratio: level 4 108 MB/s 2.647, 5 90 MB/s 2.700, 6 74 MB/s 2.717,
 * 7 55 MB/s 2.728; `gzip -6` (zlib, what `tar -z` runs) 24 MB/s 2.691.
 * Level 5 is the fastest that keeps the archive the size the canonical
 * `tar --format=oldgnu -Sczf` makes (bench/gce.sh's 4 GiB disk: 0.09%
 * larger); 6 would cost 20% more time for 0.6% less. */
#define GCE_LEVEL 5
/* Zero-scan granule: aligned all-zero granules of data extents become
 * holes.  Coarse, so the map stays short on real filesystems. */
#define GCE_GRANULE (64u << 10)
/* Scan tasks: 64 granules, one bit each. */
#define GCE_SCAN_BLOCK (64 * (uint64_t)GCE_GRANULE)
/* Sparse runs kept in the header: one 512-byte extension block per 21,
 * so 1 Mi runs is a 24 MiB header; past that, data runs are merged
 * across the shortest holes (which are then stored as zeros). */
#define GCE_MAX_RUNS ((size_t)1 << 20)
#define GCE_MAX_THREADS 64
/* Finished members waiting for the emitter, per worker. */
#define GCE_SLOTS_PER_THREAD 3

/* ---- the two passes: ordered tasks on N workers ---- */

/* A task of either pass.  Tasks are taken in order, worked on in
 * parallel, and retired in order (by whichever worker finishes the
 * oldest one), from a ring that bounds how far ahead workers run. */
struct gce_task {
    uint64_t seq;
    bool ready;              /* worked on, waiting to be retired */
    uint64_t pos, len;       /* scan: guest range; stream: tar range */
    uint64_t mask;           /* scan: bit i, granule i of the block has
                                data */
    size_t run;              /* stream: map run of the first data byte */
    uint64_t run_off;        /*   and the offset into it */
    uint8_t *out;            /* stream: the gzip member (outcap bytes) */
    size_t outlen;
};

struct gce;

struct gce_worker {
    struct gce *c;
    pthread_t tid;
    uint8_t *buf;            /* GCE_CHUNK bytes */
    struct libdeflate_compressor *z;
};

struct gce_pass {
    /* Under c->lock: fill t with the next task.  1, 0 at the end, -1. */
    int (*next)(struct gce *c, struct gce_task *t, vf_error **errp);
    /* On a worker, in parallel with the others.  0 / -1. */
    int (*work)(struct gce *c, struct gce_worker *w, struct gce_task *t,
                vf_error **errp);
    /* In task order, one at a time, without c->lock.  0 / -1. */
    int (*retire)(struct gce *c, struct gce_task *t, vf_error **errp);
};

struct gce {
    struct blk *src;
    struct sparse_map map;
    const struct gce_pass *pass;
    struct gce_worker *ws;
    int nt;

    pthread_mutex_t lock;    /* the ring, cursors and failure */
    pthread_cond_t space;    /* a task was retired, or failure */
    pthread_cond_t finished; /* a worker left */
    struct gce_task *ring;
    size_t nslots;
    uint64_t next_seq, retire_seq;
    bool retiring, failed;
    vf_error *err;
    int running;

    /* where the next task starts (scan: guest offset; stream: tar
     * offset), and for the scan the block status it is in */
    uint64_t cursor;
    uint64_t st_end;
    bool st_data;

    /* stream */
    const uint8_t *hdr;      /* tar header blocks */
    size_t hlen;
    uint64_t data;           /* stored data bytes (sum of run lengths) */
    uint64_t total;          /* the whole tar stream */
    size_t outcap;           /* gzip bound for one chunk */
    size_t run;              /* map position of the cursor's data */
    uint64_t run_off;
    /* the retiring worker's (one at a time) */
    struct io *out;
    const char *path;
    uint64_t written, members;
    EVP_MD_CTX *sha;
};

static void gce_fail(struct gce *c, vf_error *e)
{
    if (!c->failed) {
        c->failed = true;
        c->err = e;
        e = NULL;
    }
    pthread_cond_broadcast(&c->space);
    error_free(e);
}

/* Under c->lock: retire every consecutive finished task, unless another
 * worker is doing it. */
static void gce_retire(struct gce *c)
{
    if (c->retiring)
        return;
    c->retiring = true;
    while (!c->failed) {
        struct gce_task *t = &c->ring[c->retire_seq % c->nslots];
        if (!t->ready || t->seq != c->retire_seq)
            break;
        pthread_mutex_unlock(&c->lock);
        vf_error *err = NULL;
        int r = c->pass->retire(c, t, &err);
        pthread_mutex_lock(&c->lock);
        t->ready = false;
        c->retire_seq++;
        pthread_cond_broadcast(&c->space);
        if (r < 0)
            gce_fail(c, err);
    }
    c->retiring = false;
}

static void *gce_worker_main(void *arg)
{
    struct gce_worker *w = arg;
    struct gce *c = w->c;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        vf_error *err = NULL;
        while (!c->failed && c->next_seq >= c->retire_seq + c->nslots)
            pthread_cond_wait(&c->space, &c->lock);
        if (c->failed)
            break;
        /* free: its previous task was retired */
        struct gce_task *t = &c->ring[c->next_seq % c->nslots];
        int r = c->pass->next(c, t, &err);
        if (r <= 0) {
            if (r < 0)
                gce_fail(c, err);
            break;
        }
        t->seq = c->next_seq++;
        t->ready = false;
        pthread_mutex_unlock(&c->lock);
        r = c->pass->work(c, w, t, &err);
        pthread_mutex_lock(&c->lock);
        if (r < 0) {
            gce_fail(c, err);
            break;
        }
        t->ready = true;
        gce_retire(c);
    }
    c->running--;
    pthread_cond_broadcast(&c->finished);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Run pass on the workers until it is done or failed.  When p is given,
 * its progress callback (if any) is called from this thread about 10
 * times a second with the tar stream bytes written. */
static int gce_run(struct gce *c, const struct gce_pass *pass,
                   struct pkg *p, vf_error **errp)
{
    int started = 0;
    pthread_mutex_lock(&c->lock);
    c->pass = pass;
    c->next_seq = c->retire_seq = 0;
    for (int i = 0; i < c->nt; i++) {
        if (pthread_create(&c->ws[i].tid, NULL, gce_worker_main,
                           &c->ws[i])) {
            vf_error *e = NULL;
            error_setg(&e, "cannot start worker thread");
            gce_fail(c, e);
            break;
        }
        started++;
        c->running++;
    }
    while (c->running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->finished, &c->lock, &ts);
        if (p && p->progress && c->running > 0) {
            uint64_t done = c->retire_seq * GCE_CHUNK;
            pthread_mutex_unlock(&c->lock);
            p->progress(p->opaque, 0, done < c->total ? done : c->total,
                        c->total);
            pthread_mutex_lock(&c->lock);
        }
    }
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < started; i++)
        pthread_join(c->ws[i].tid, NULL);
    if (c->failed) {
        error_propagate(errp, c->err);
        c->err = NULL;
        return -1;
    }
    return 0;
}

/* ---- pass 1: the sparse map ---- */

/* The guest's data extents (block status), cut at GCE_SCAN_BLOCK
 * boundaries; holes are skipped here, under the lock, never read. */
static int gce_scan_next(struct gce *c, struct gce_task *t, vf_error **errp)
{
    uint64_t size = c->src->size;
    while (c->cursor < size) {
        if (c->cursor >= c->st_end) {
            uint64_t n;
            int s = blk_block_status_above(c->src, NULL, c->cursor,
                                           size - c->cursor, &n, NULL, NULL,
                                           errp);
            if (s < 0)
                return -1;
            c->st_data = s == BLK_DATA;
            c->st_end = c->cursor + n;
        }
        if (!c->st_data) {
            c->cursor = c->st_end;
            continue;
        }
        uint64_t be = (c->cursor / GCE_SCAN_BLOCK + 1) * GCE_SCAN_BLOCK;
        t->pos = c->cursor;
        t->len = (be < c->st_end ? be : c->st_end) - c->cursor;
        c->cursor += t->len;
        return 1;
    }
    return 0;
}

/* Which granules of the task's range hold a non-zero byte. */
static int gce_scan_work(struct gce *c, struct gce_worker *w,
                         struct gce_task *t, vf_error **errp)
{
    uint64_t base = t->pos / GCE_SCAN_BLOCK * GCE_SCAN_BLOCK;
    uint64_t off = t->pos, end = t->pos + t->len;
    t->mask = 0;
    while (off < end) {
        /* reads aligned to GCE_CHUNK, granules to absolute offsets */
        uint64_t re = (off / GCE_CHUNK + 1) * GCE_CHUNK;
        if (re > end)
            re = end;
        if (blk_pread(c->src, w->buf, off, (size_t)(re - off), errp) < 0)
            return -1;
        for (uint64_t g = off; g < re;) {
            uint64_t ge = (g / GCE_GRANULE + 1) * GCE_GRANULE;
            if (ge > re)
                ge = re;
            if (!buf_is_zero(w->buf + (g - off), (size_t)(ge - g)))
                t->mask |= UINT64_C(1) << ((g - base) / GCE_GRANULE);
            g = ge;
        }
        off = re;
    }
    return 0;
}

static int gce_scan_retire(struct gce *c, struct gce_task *t,
                           vf_error **errp)
{
    uint64_t base = t->pos / GCE_SCAN_BLOCK * GCE_SCAN_BLOCK;
    uint64_t end = t->pos + t->len;
    for (uint64_t m = t->mask; m; m &= m - 1) {
        uint64_t gs = base + (uint64_t)__builtin_ctzll(m) * GCE_GRANULE;
        uint64_t ge = gs + GCE_GRANULE;
        if (gs < t->pos)
            gs = t->pos;
        if (ge > end)
            ge = end;
        if (sparse_map_add(&c->map, gs, ge - gs, errp) < 0)
            return -1;
    }
    return 0;
}

static const struct gce_pass gce_scan_pass = {
    .next = gce_scan_next, .work = gce_scan_work, .retire = gce_scan_retire,
};

/* ---- pass 2: the compressed tar stream ---- */

/* Data bytes of the tar stream in [pos, pos+len). */
static uint64_t gce_data_in(const struct gce *c, uint64_t pos, uint64_t len)
{
    uint64_t lo = pos > c->hlen ? pos : c->hlen;
    uint64_t de = c->hlen + c->data;
    uint64_t hi = pos + len < de ? pos + len : de;
    return hi > lo ? hi - lo : 0;
}

/* The next GCE_CHUNK of the stream, with where its data starts. */
static int gce_stream_next(struct gce *c, struct gce_task *t,
                           vf_error **errp)
{
    if (c->cursor >= c->total)
        return 0;
    t->pos = c->cursor;
    t->len = c->total - c->cursor < GCE_CHUNK ? c->total - c->cursor
                                              : GCE_CHUNK;
    t->run = c->run;
    t->run_off = c->run_off;
    c->cursor += t->len;
    uint64_t d = gce_data_in(c, t->pos, t->len);
    while (d) {
        uint64_t left = c->map.runs[c->run].len - c->run_off;
        if (d < left) {
            c->run_off += d;
            break;
        }
        d -= left;
        c->run++;
        c->run_off = 0;
    }
    return 1;
}

/* The chunk's bytes (header, then disk data read run by run, then zeros:
 * the member's padding and the end-of-archive blocks), compressed into
 * one gzip member. */
static int gce_stream_work(struct gce *c, struct gce_worker *w,
                           struct gce_task *t, vf_error **errp)
{
    uint8_t *in = w->buf;
    size_t k = 0, len = (size_t)t->len;
    if (t->pos < c->hlen) {
        k = c->hlen - t->pos < len ? (size_t)(c->hlen - t->pos) : len;
        memcpy(in, c->hdr + t->pos, k);
    }
    uint64_t d = gce_data_in(c, t->pos, len);
    size_t run = t->run;
    uint64_t ro = t->run_off;
    while (d) {
        const struct tar_sparse *r = &c->map.runs[run];
        uint64_t n = r->len - ro < d ? r->len - ro : d;
        if (blk_pread(c->src, in + k, r->off + ro, (size_t)n, errp) < 0)
            return -1;
        k += (size_t)n;
        d -= n;
        run++;
        ro = 0;
    }
    memset(in + k, 0, len - k);
    t->outlen = libdeflate_gzip_compress(w->z, in, len, t->out, c->outcap);
    if (!t->outlen) {
        error_setg(errp, "gzip compression of %zu bytes failed", len);
        return -1;
    }
    return 0;
}

static int gce_stream_retire(struct gce *c, struct gce_task *t,
                             vf_error **errp)
{
    if (io_pwrite(c->out, t->out, t->outlen, c->written, errp) < 0) {
        error_prepend(errp, "%s: ", c->path);
        return -1;
    }
    EVP_DigestUpdate(c->sha, t->out, t->outlen);
    c->written += t->outlen;
    c->members++;
    return 0;
}

static const struct gce_pass gce_stream_pass = {
    .next = gce_stream_next, .work = gce_stream_work,
    .retire = gce_stream_retire,
};

/* ---- the package ---- */

/* A GCE image name for the VM: [a-z]([-a-z0-9]{0,61}[a-z0-9])?. */
static void gce_image_name(const char *name, char *out, size_t cap)
{
    size_t k = 0;
    if (!isalpha((unsigned char)name[0]))
        k = (size_t)snprintf(out, cap, "vm-");
    for (const char *s = name; *s && k + 1 < cap && k < 63; s++) {
        char ch = (char)tolower((unsigned char)*s);
        if (!isalnum((unsigned char)ch))
            ch = '-';
        if (ch == '-' && k && out[k - 1] == '-')
            continue;
        out[k++] = ch;
    }
    while (k && out[k - 1] == '-')
        k--;
    out[k] = 0;
    if (!k)
        snprintf(out, cap, "vm");
}

static void gce_meta(struct pkg *p, const char *archive, uint64_t realsize,
                     const struct gce *c)
{
    char img[80], cmd[512];
    gce_image_name(p->vm.name, img, sizeof(img));
    bool uefi = p->vm.firmware && !strcmp(p->vm.firmware, "uefi");
    struct json_object *m = p->meta, *feat = json_object_new_array();
    if (uefi)
        json_object_array_add(feat, json_object_new_string("UEFI_COMPATIBLE"));
    snprintf(cmd, sizeof(cmd), "gcloud compute images create %s "
             "--source-uri=gs://BUCKET/%s%s", img, archive,
             uefi ? " --guest-os-features=UEFI_COMPATIBLE" : "");
    json_object_object_add(m, "image-name", json_object_new_string(img));
    json_object_object_add(m, "disk-raw-size",
                           json_object_new_int64((int64_t)realsize));
    json_object_object_add(m, "source-size",
                           json_object_new_int64((int64_t)c->src->size));
    json_object_object_add(m, "sparse-runs",
                           json_object_new_int64((int64_t)c->map.n));
    json_object_object_add(m, "stored-bytes",
                           json_object_new_int64((int64_t)c->data));
    json_object_object_add(m, "tar-size",
                           json_object_new_int64((int64_t)c->total));
    json_object_object_add(m, "gzip-members",
                           json_object_new_int64((int64_t)c->members));
    json_object_object_add(m, "gzip-level", json_object_new_int(GCE_LEVEL));
    json_object_object_add(m, "guest-os-features", feat);
    json_object_object_add(m, "import-command", json_object_new_string(cmd));
}

/* The workers and the ring, for both passes. */
static int gce_setup(struct gce *c, int nt, vf_error **errp)
{
    c->nt = nt;
    c->nslots = (size_t)nt * GCE_SLOTS_PER_THREAD;
    c->ws = calloc((size_t)nt, sizeof(*c->ws));
    c->ring = calloc(c->nslots, sizeof(*c->ring));
    c->sha = EVP_MD_CTX_new();
    if (!c->ws || !c->ring || !c->sha ||
        !EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL))
        goto oom;
    for (int i = 0; i < nt; i++) {
        c->ws[i].c = c;
        c->ws[i].buf = malloc(GCE_CHUNK);
        c->ws[i].z = libdeflate_alloc_compressor(GCE_LEVEL);
        if (!c->ws[i].buf || !c->ws[i].z)
            goto oom;
    }
    /* the bound depends on the length only */
    c->outcap = libdeflate_gzip_compress_bound(c->ws[0].z, GCE_CHUNK);
    for (size_t i = 0; i < c->nslots; i++) {
        c->ring[i].out = malloc(c->outcap);
        if (!c->ring[i].out)
            goto oom;
    }
    return 0;
oom:
    error_setg(errp, "out of memory");
    return -1;
}

static void gce_cleanup(struct gce *c)
{
    io_close(c->out);
    for (int i = 0; c->ws && i < c->nt; i++) {
        free(c->ws[i].buf);
        libdeflate_free_compressor(c->ws[i].z);
    }
    free(c->ws);
    for (size_t i = 0; c->ring && i < c->nslots; i++)
        free(c->ring[i].out);
    free(c->ring);
    EVP_MD_CTX_free(c->sha);
    error_free(c->err);
    sparse_map_free(&c->map);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->space);
    pthread_cond_destroy(&c->finished);
}

int pkg_gce(struct pkg *p, vf_error **errp)
{
    if (p->ndisks != 1) {
        error_setg(errp, "gce: an image holds one disk, %zu given (package "
                   "each disk on its own)", p->ndisks);
        return -1;
    }
    if (p->ofmt && strcmp(p->ofmt, "raw")) {
        error_setg(errp, "gce: the disk is always raw (disk.raw), not %s",
                   p->ofmt);
        return -1;
    }
    struct blk *src = p->disks[0].blk;
    if (!src->size || src->size > UINT64_MAX - GCE_GIB) {
        error_setg(errp, "gce: %s: a disk of %" PRIu64 " bytes",
                   p->disks[0].src_path, src->size);
        return -1;
    }
    uint64_t realsize = (src->size + GCE_GIB - 1) / GCE_GIB * GCE_GIB;
    struct gce c = { .src = src,
                     .map = { .max = GCE_MAX_RUNS,
                              .first_hole = GCE_GRANULE } };
    uint8_t *hdr = NULL;
    char *name = NULL, *path = NULL;
    int nt = p->threads > 0 ? p->threads : engine_default_threads();
    int r = -1;
    if (nt > GCE_MAX_THREADS)
        nt = GCE_MAX_THREADS;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.space, NULL);
    pthread_cond_init(&c.finished, NULL);
    if (gce_setup(&c, nt, errp) < 0)
        goto out;

    /* pass 1: the sparse map, then the header that carries it */
    if (gce_run(&c, &gce_scan_pass, NULL, errp) < 0) {
        error_prepend(errp, "%s: ", p->disks[0].src_path);
        goto out;
    }
    sparse_map_bound(&c.map);
    if (tar_oldgnu_sparse_header("disk.raw", realsize, c.map.runs, c.map.n,
                                 0644, p->mtime, &hdr, &c.hlen, errp) < 0)
        goto out;
    c.hdr = hdr;
    c.data = sparse_map_stored(&c.map);
    c.total = c.hlen + c.data + tar_padding(c.data) + TAR_EOF_LEN;

    /* pass 2: the stream into NAME.tar.gz */
    if (asprintf(&name, "%s.tar.gz", p->vm.name) < 0) {
        name = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    path = pkg_path(p, name);
    if (!path) {
        error_setg(errp, "out of memory");
        goto out;
    }
    c.path = path;
    c.out = io_file_create(path, errp);
    if (!c.out) {
        error_prepend(errp, "%s: ", path);
        goto out;
    }
    c.out->early_writeback = !p->unsafe;
    c.cursor = 0;
    if (gce_run(&c, &gce_stream_pass, p, errp) < 0)
        goto out;
    if (p->progress)
        p->progress(p->opaque, 0, c.total, c.total);
    if (!p->unsafe && io_flush(c.out, errp) < 0) {
        error_prepend(errp, "%s: ", path);
        goto out;
    }
    uint8_t sha[32];
    unsigned shalen;
    EVP_DigestFinal_ex(c.sha, sha, &shalen);
    if (pkg_add_artifact(p, name, "archive", "tar.gz", c.written, sha,
                         errp) < 0)
        goto out;
    gce_meta(p, name, realsize, &c);
    r = 0;
out:
    /* on failure pkg_run removes the working directory, and the partial
     * archive in it */
    gce_cleanup(&c);
    free(hdr);
    free(path);
    free(name);
    return r;
}
