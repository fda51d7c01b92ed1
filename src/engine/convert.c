/*
 * convert.c: the extent-driven copy.
 *
 * A shared cursor walks the source chain's block status once.  Each worker
 * takes the next job under a mutex: a zero range (any length, never read)
 * or a data range of at most one chunk.  Data is read, scanned for zeros
 * in -S granules, and written as runs of data with the zero runs left as
 * holes (or zeroed when the target does not start out zero).  Compressed
 * targets get whole granules compressed on the workers; their writes, and
 * all writes to stream-only targets, happen in job order: finished jobs
 * wait in a bounded ring, and whichever worker finishes the oldest one
 * writes every consecutive finished job (the in-order emitter).
 */
#include "engine/engine.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes of source read per job: cache-sized, so the zero scan and the
 * write touch data while it is still hot. */
#define CONVERT_CHUNK (1u << 20)
/* Upper bound on all workers' buffers together. */
#define CONVERT_MEM_BUDGET (16u << 20)
#define CONVERT_MAX_THREADS 64
/* Ring slots per worker for ordered outputs: enough that a worker finds
 * a free slot while one slow job holds up the writer. */
#define CONVERT_RING_PER_THREAD 4

enum job_kind { JOB_NONE, JOB_DATA, JOB_ZERO, JOB_SKIP };

struct slot;

struct job {
    enum job_kind kind;
    uint64_t off, len;
    uint64_t seq;
};

struct convert {
    struct blk *src, *dst;
    const struct convert_opts *o;
    bool ordered;            /* writes in job order */
    bool compressed;
    uint64_t granule;        /* compressed/stream write unit */
    size_t chunk;            /* max data job length */
    uint64_t end;            /* bytes to copy (source size) */

    pthread_mutex_t lock;    /* cursor, seq, ring, error */
    pthread_cond_t space;    /* ordered: a ring slot was freed */
    uint64_t cursor;
    uint64_t next_seq;       /* next job's sequence number */
    uint64_t write_seq;      /* ordered: the next job to write */
    struct slot *slots;      /* ordered: the ring, nslots long */
    size_t nslots;
    size_t cslot;            /* bytes per compressed payload */
    bool emitting;           /* a worker is writing from the ring */
    int cur_status;          /* status cached from the last query */
    uint64_t cur_status_end; /* ...valid up to here */
    bool failed;
    vf_error *err;

    atomic_uint_fast64_t done, rd, wr, zr;
    int running;
    pthread_cond_t finished;
};

static void convert_fail(struct convert *c, vf_error *e)
{
    pthread_mutex_lock(&c->lock);
    if (!c->failed) {
        c->failed = true;
        c->err = e;
        e = NULL;
    }
    pthread_cond_broadcast(&c->space);
    pthread_mutex_unlock(&c->lock);
    error_free(e);
}

/* Under c->lock: the next job, or JOB_NONE at the end. */
static int convert_next_job(struct convert *c, struct job *j,
                            vf_error **errp)
{
again:
    j->kind = JOB_NONE;
    if (c->failed || c->cursor >= c->end)
        return 0;
    uint64_t off = c->cursor;
    uint64_t left = c->end - off;
    int s;
    uint64_t n;
    if (off < c->cur_status_end) {
        s = c->cur_status;
        n = c->cur_status_end - off;
    } else {
        s = blk_block_status_above(c->src, c->o->base, off, left, &n, NULL,
                                   NULL, errp);
        if (s < 0)
            return -1;
        c->cur_status = s;
        c->cur_status_end = off + n;
    }
    uint64_t g = c->granule;
    if (s == BLK_DATA) {
        j->kind = JOB_DATA;
        j->len = n < c->chunk ? n : c->chunk;
        if (g > 1) {   /* whole granules, however the extents fall */
            uint64_t e = off + j->len;
            e = (e + g - 1) / g * g;
            if (e > c->end)
                e = c->end;
            j->len = e - off;
        }
    } else {
        /* zero or unallocated: with -B, unallocated stays with the backing
         * file and zeros must be written; otherwise a zero-initialised
         * target needs nothing at all */
        if (c->o->target_has_backing)
            j->kind = (s == BLK_UNALLOC && c->o->base) ? JOB_SKIP : JOB_ZERO;
        else
            j->kind = c->dst->zero_init ? JOB_SKIP : JOB_ZERO;
        j->len = n;
        if (g > 1) {
            /* a granule that is only partly zero is read as data */
            uint64_t e = (off + n) / g * g;
            if (off + n >= c->end)
                e = c->end;
            if (e <= off) {
                j->kind = JOB_DATA;
                e = off + g < c->end ? off + g : c->end;
            }
            j->len = e - off;
        }
    }
    j->off = off;
    c->cursor = off + j->len;
    if (j->kind == JOB_SKIP) {
        /* nothing to do, and nothing to wait for: ordered writers must
         * not stall behind a hole, so a skip takes no turn */
        atomic_fetch_add(&c->zr, j->len);
        atomic_fetch_add(&c->done, j->len);
        goto again;
    }
    j->seq = c->next_seq++;
    return 0;
}

/* Write buf's data runs, leaving or zeroing its zero runs. */
static int convert_write_runs(struct convert *c, const uint8_t *buf,
                              uint64_t off, uint64_t len, vf_error **errp)
{
    uint64_t s = c->o->sparse_size;
    bool zero_needed = !c->dst->zero_init || c->o->target_has_backing;
    if (!s) {
        atomic_fetch_add(&c->wr, len);
        return blk_pwrite(c->dst, buf, off, len, errp);
    }
    uint64_t pos = 0;
    while (pos < len) {
        /* granules aligned to absolute guest offsets */
        uint64_t gend = ((off + pos) / s + 1) * s - off;
        if (gend > len)
            gend = len;
        bool z = buf_is_zero(buf + pos, gend - pos);
        uint64_t run = pos;
        pos = gend;
        while (pos < len) {
            uint64_t ge = pos + s < len ? pos + s : len;
            if (buf_is_zero(buf + pos, ge - pos) != z)
                break;
            pos = ge;
        }
        if (z) {
            atomic_fetch_add(&c->zr, pos - run);
            if (zero_needed &&
                blk_zero(c->dst, off + run, pos - run, errp) < 0)
                return -1;
        } else {
            atomic_fetch_add(&c->wr, pos - run);
            if (blk_pwrite(c->dst, buf + run, off + run, pos - run,
                           errp) < 0)
                return -1;
        }
    }
    return 0;
}

/* One job's buffers.  Unordered copies give each worker its own slot;
 * ordered ones (compressed and stream outputs) use a ring of slots indexed
 * by job sequence, so a worker never waits for an earlier job to finish:
 * it leaves its result in the ring and takes the next job, and whoever
 * completes the oldest job writes every consecutive finished one (the
 * in-order emitter).  The ring bounds how far ahead workers may run. */
struct slot {
    uint8_t *buf;
    uint8_t *cbuf;          /* compressed payloads, one cslot per granule */
    size_t *clen;           /* payload lengths; SIZE_MAX: all-zero granule */
    struct job j;
    bool ready;             /* processed, waiting to be written */
};

struct worker {
    struct convert *c;
    pthread_t tid;
    struct slot *own;       /* unordered mode */
    void *codec;
};

/* Compress every granule of slot s's job (on the worker's thread). */
static void slot_compress(struct convert *c, struct worker *w,
                          struct slot *s)
{
    size_t ng = (size_t)((s->j.len + c->granule - 1) / c->granule);
    for (size_t i = 0; i < ng; i++) {
        uint64_t go = (uint64_t)i * c->granule;
        size_t gl = (size_t)(s->j.len - go < c->granule ? s->j.len - go
                                                        : c->granule);
        if (c->o->sparse_size && buf_is_zero(s->buf + go, gl)) {
            s->clen[i] = SIZE_MAX;
            continue;
        }
        s->clen[i] = c->dst->drv->compress(c->dst, w->codec, s->buf + go, gl,
                                           s->cbuf + i * c->cslot, c->cslot);
    }
}

/* Read (and compress) slot s's job. */
static int slot_process(struct convert *c, struct worker *w, struct slot *s,
                        vf_error **errp)
{
    if (s->j.kind != JOB_DATA)
        return 0;
    if (blk_pread(c->src, s->buf, s->j.off, (size_t)s->j.len, errp) < 0)
        return -1;
    atomic_fetch_add(&c->rd, s->j.len);
    if (c->compressed)
        slot_compress(c, w, s);
    return 0;
}

/* Write slot s's job to the target.  The format core names the file in
 * every error except the compressed path's, which bypasses it. */
static int slot_write(struct convert *c, struct slot *s, vf_error **errp)
{
    const struct job *j = &s->j;
    if (j->kind == JOB_ZERO) {
        atomic_fetch_add(&c->zr, j->len);
        return blk_zero(c->dst, j->off, j->len, errp);
    }
    if (!c->compressed)
        return convert_write_runs(c, s->buf, j->off, j->len, errp);
    size_t ng = (size_t)((j->len + c->granule - 1) / c->granule);
    for (size_t i = 0; i < ng; i++) {
        uint64_t go = (uint64_t)i * c->granule;
        size_t gl = (size_t)(j->len - go < c->granule ? j->len - go
                                                      : c->granule);
        if (s->clen[i] == SIZE_MAX) {
            atomic_fetch_add(&c->zr, gl);
            continue;
        }
        atomic_fetch_add(&c->wr, gl);
        pthread_mutex_lock(&c->dst->wlock);
        int r = c->dst->drv->pwrite_compressed(c->dst, j->off + go,
                                               s->buf + go, gl,
                                               s->cbuf + i * c->cslot,
                                               s->clen[i], errp);
        pthread_mutex_unlock(&c->dst->wlock);
        if (r < 0) {
            error_prepend(errp, "%s: ", c->dst->filename);
            return -1;
        }
    }
    return 0;
}

/* Under c->lock, ordered mode: write every consecutive finished job from
 * write_seq on, unless another worker is already doing it. */
static void convert_emit(struct convert *c)
{
    if (c->emitting)
        return;
    c->emitting = true;
    while (!c->failed) {
        struct slot *s = &c->slots[c->write_seq % c->nslots];
        if (!s->ready || s->j.seq != c->write_seq)
            break;
        pthread_mutex_unlock(&c->lock);
        vf_error *err = NULL;
        int r = slot_write(c, s, &err);
        atomic_fetch_add(&c->done, s->j.len);
        pthread_mutex_lock(&c->lock);
        s->ready = false;
        c->write_seq++;
        pthread_cond_broadcast(&c->space);
        if (r < 0) {
            if (!c->failed) {
                c->failed = true;
                c->err = err;
                err = NULL;
            }
            error_free(err);
        }
    }
    c->emitting = false;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct convert *c = w->c;
    for (;;) {
        vf_error *err = NULL;
        struct job j;
        pthread_mutex_lock(&c->lock);
        /* ordered: run at most nslots jobs ahead of the writer */
        while (c->ordered && !c->failed &&
               c->next_seq >= c->write_seq + c->nslots)
            pthread_cond_wait(&c->space, &c->lock);
        int r = convert_next_job(c, &j, &err);
        pthread_mutex_unlock(&c->lock);
        if (r < 0) {
            convert_fail(c, err);
            break;
        }
        if (j.kind == JOB_NONE)
            break;
        struct slot *s = c->ordered ? &c->slots[j.seq % c->nslots] : w->own;
        s->j = j;
        if (slot_process(c, w, s, &err) < 0) {
            convert_fail(c, err);
            break;
        }
        if (!c->ordered) {
            if (slot_write(c, s, &err) < 0) {
                convert_fail(c, err);
                break;
            }
            atomic_fetch_add(&c->done, j.len);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        s->ready = true;
        convert_emit(c);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_lock(&c->lock);
    c->running--;
    pthread_cond_broadcast(&c->finished);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int engine_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CONVERT_MAX_THREADS ? CONVERT_MAX_THREADS : (int)n;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int engine_convert(struct blk *src, struct blk *dst,
                   const struct convert_opts *o, struct convert_stats *st,
                   vf_error **errp)
{
    double t0 = now_seconds();
    if (dst->size < src->size) {
        error_setg(errp, "target is smaller (%" PRIu64 " bytes) than the "
                   "source (%" PRIu64 " bytes)", dst->size, src->size);
        return -1;
    }
    if (o->sparse_size & 511 || o->sparse_size > (16u << 20)) {
        error_setg(errp, "invalid -S %" PRIu64 " (a multiple of 512 up to "
                   "16 MiB)", o->sparse_size);
        return -1;
    }
    struct convert c = { .src = src, .dst = dst, .o = o, .end = src->size };
    c.compressed = dst->compressed;
    c.ordered = c.compressed || (dst->drv->flags & FMT_F_STREAM) ||
                !o->out_of_order;
    /* out-of-order is always safe for targets that place data by offset;
     * order only matters for compressed and stream outputs */
    if (!c.compressed && !(dst->drv->flags & FMT_F_STREAM))
        c.ordered = false;
    c.granule = (c.compressed || (dst->drv->flags & FMT_F_STREAM)) &&
                dst->cluster_size ? dst->cluster_size : 1;
    int nt = o->threads > 0 ? o->threads : engine_default_threads();
    if (nt > CONVERT_MAX_THREADS)
        nt = CONVERT_MAX_THREADS;
    /* ordered outputs keep a ring of CONVERT_RING_PER_THREAD slots per
     * worker so nobody waits behind a slow job; compressed slots also hold
     * payloads of up to 2x + 64 bytes per granule */
    size_t nslots = c.ordered ? (size_t)nt * CONVERT_RING_PER_THREAD
                              : (size_t)nt;
    size_t chunk = CONVERT_MEM_BUDGET / nslots;
    if (c.compressed)
        chunk /= 3;
    if (chunk > CONVERT_CHUNK)
        chunk = CONVERT_CHUNK;
    if (chunk < 65536)
        chunk = 65536;
    if (c.granule > 1)
        chunk = chunk < c.granule ? c.granule : chunk / c.granule * c.granule;
    c.chunk = chunk;
    c.cslot = 2 * c.granule + 64;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.space, NULL);
    pthread_cond_init(&c.finished, NULL);
    atomic_init(&c.done, 0);
    atomic_init(&c.rd, 0);
    atomic_init(&c.wr, 0);
    atomic_init(&c.zr, 0);

    struct worker *ws = calloc((size_t)nt, sizeof(*ws));
    c.slots = calloc(nslots, sizeof(*c.slots));
    int started = 0, ret = -1;
    if (!ws || !c.slots) {
        error_setg(errp, "out of memory");
        goto out;
    }
    c.nslots = nslots;
    for (size_t i = 0; i < nslots; i++) {
        struct slot *sl = &c.slots[i];
        sl->buf = aligned_alloc(4096, (chunk + 4095) / 4096 * 4096);
        if (c.compressed) {
            size_t ng = chunk / c.granule;
            sl->cbuf = malloc(ng * c.cslot);
            sl->clen = calloc(ng, sizeof(*sl->clen));
        }
        if (!sl->buf || (c.compressed && (!sl->cbuf || !sl->clen))) {
            error_setg(errp, "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < nt; i++) {
        struct worker *w = &ws[i];
        w->c = &c;
        w->own = &c.slots[i];
        if (c.compressed && dst->drv->codec_new) {
            w->codec = dst->drv->codec_new(dst, errp);
            if (!w->codec)
                goto out;
        }
    }
    c.running = nt;
    for (int i = 0; i < nt; i++) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) {
            pthread_mutex_lock(&c.lock);
            c.running -= nt - i;
            c.failed = true;
            pthread_cond_broadcast(&c.space);
            pthread_mutex_unlock(&c.lock);
            error_setg(&c.err, "cannot start worker thread");
            break;
        }
        started++;
    }
    pthread_mutex_lock(&c.lock);
    while (c.running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c.finished, &c.lock, &ts);
        if (o->progress && c.running > 0) {
            pthread_mutex_unlock(&c.lock);
            o->progress(o->opaque, atomic_load(&c.done), c.end);
            pthread_mutex_lock(&c.lock);
        }
    }
    pthread_mutex_unlock(&c.lock);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    if (c.failed) {
        error_propagate(errp, c.err);
        c.err = NULL;
        goto out;
    }
    if (o->progress)
        o->progress(o->opaque, c.end, c.end);
    ret = 0;
out:
    if (ws) {
        for (int i = 0; i < nt; i++)
            if (ws[i].codec && dst->drv->codec_free)
                dst->drv->codec_free(ws[i].codec);
        free(ws);
    }
    if (c.slots) {
        for (size_t i = 0; i < c.nslots; i++) {
            free(c.slots[i].buf);
            free(c.slots[i].cbuf);
            free(c.slots[i].clen);
        }
        free(c.slots);
    }
    error_free(c.err);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.space);
    pthread_cond_destroy(&c.finished);
    if (st) {
        st->bytes_read = atomic_load(&c.rd);
        st->bytes_written = atomic_load(&c.wr);
        st->bytes_zero = atomic_load(&c.zr);
        st->seconds = now_seconds() - t0;
    }
    return ret;
}
