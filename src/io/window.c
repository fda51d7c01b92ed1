/*
 * window.c: a write-once window into another io, for an image streamed
 * straight into an archive (a streamOptimized VMDK into an OVA, after
 * its tar header).  Offset X of the window is base + X of the inner io;
 * writes must come strictly in order, each where the last one ended, so
 * that the bytes fed to the digest are exactly the member's bytes as
 * stored.  See io.h.
 */
#include "io/io.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct window {
    struct io *inner;          /* borrowed */
    uint64_t base;             /* inner offset of window offset 0 */
    pthread_mutex_t lock;      /* len, ctx, done */
    uint64_t len;              /* bytes written: the next write's offset */
    EVP_MD_CTX *ctx;           /* NULL: no digest */
    bool done;                 /* digest taken: no more writes */
};

static int window_pread(struct io *io, void *buf, size_t len, uint64_t off,
                        vf_error **errp)
{
    struct window *w = io->priv;
    pthread_mutex_lock(&w->lock);
    uint64_t have = w->len;
    pthread_mutex_unlock(&w->lock);
    /* past what was written reads as zeros (io.h), and never reaches
     * whatever inner holds beyond the window */
    size_t n = off < have ? (have - off < len ? (size_t)(have - off) : len)
                          : 0;
    if (n && io_pread(w->inner, buf, n, w->base + off, errp) < 0)
        return -1;
    memset((uint8_t *)buf + n, 0, len - n);
    return 0;
}

static int window_pwrite(struct io *io, const void *buf, size_t len,
                         uint64_t off, vf_error **errp)
{
    struct window *w = io->priv;
    int r = -1;
    pthread_mutex_lock(&w->lock);
    if (w->done) {
        error_setg(errp, "%s: write at 0x%" PRIx64 " after the window was "
                   "closed", io->name, off);
        goto out;
    }
    if (off != w->len) {
        error_setg(errp, "%s: write at 0x%" PRIx64 " out of order: the "
                   "window is written sequentially, next offset 0x%" PRIx64,
                   io->name, off, w->len);
        goto out;
    }
    if (len > UINT64_MAX - w->base - w->len) {
        error_setg(errp, "%s: write of 0x%zx bytes at 0x%" PRIx64
                   " beyond 2^64", io->name, len, off);
        goto out;
    }
    if (io_pwrite(w->inner, buf, len, w->base + off, errp) < 0)
        goto out;
    if (w->ctx && !EVP_DigestUpdate(w->ctx, buf, len)) {
        error_setg(errp, "%s: digest update failed", io->name);
        goto out;
    }
    w->len += len;
    r = 0;
out:
    pthread_mutex_unlock(&w->lock);
    return r;
}

static int64_t window_size(struct io *io, vf_error **errp)
{
    struct window *w = io->priv;
    pthread_mutex_lock(&w->lock);
    uint64_t l = w->len;
    pthread_mutex_unlock(&w->lock);
    return (int64_t)l;
}

/* Only the size it already has: anything else would rewrite or skip
 * bytes the digest has seen. */
static int window_truncate(struct io *io, uint64_t size, vf_error **errp)
{
    struct window *w = io->priv;
    pthread_mutex_lock(&w->lock);
    uint64_t l = w->len;
    pthread_mutex_unlock(&w->lock);
    if (size == l)
        return 0;
    error_setg(errp, "%s: cannot resize a sequential window from 0x%" PRIx64
               " to 0x%" PRIx64, io->name, l, size);
    return -1;
}

static int window_punch(struct io *io, uint64_t off, uint64_t len,
                        vf_error **errp)
{
    error_setg(errp, "%s: cannot punch 0x%" PRIx64 "+0x%" PRIx64 " in a "
               "sequential window", io->name, off, len);
    return -1;
}

static int window_falloc(struct io *io, uint64_t off, uint64_t len,
                         vf_error **errp)
{
    error_setg(errp, "%s: cannot reserve 0x%" PRIx64 "+0x%" PRIx64 " in a "
               "sequential window", io->name, off, len);
    return -1;
}

static int window_flush(struct io *io, vf_error **errp)
{
    struct window *w = io->priv;
    return io_flush(w->inner, errp);
}

static void window_close(struct io *io)
{
    struct window *w = io->priv;
    if (!w)
        return;
    EVP_MD_CTX_free(w->ctx);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static const struct io_ops window_ops = {
    .pread = window_pread,
    .pwrite = window_pwrite,
    .size = window_size,
    .truncate = window_truncate,
    .punch = window_punch,
    .falloc = window_falloc,
    .flush = window_flush,
    .close = window_close,
};

struct io *io_window_new(struct io *inner, uint64_t base, const char *alg,
                         const char *name, vf_error **errp)
{
    const EVP_MD *md = NULL;
    if (alg) {
        md = EVP_get_digestbyname(alg);
        if (!md) {
            error_setg(errp, "unknown digest %s", alg);
            return NULL;
        }
    }
    struct io *io = calloc(1, sizeof(*io));
    struct window *w = calloc(1, sizeof(*w));
    if (!io || !w || !(io->name = strdup(name ? name : inner->name))) {
        free(io);
        free(w);
        error_setg(errp, "out of memory");
        return NULL;
    }
    w->inner = inner;
    w->base = base;
    pthread_mutex_init(&w->lock, NULL);
    if (md && (!(w->ctx = EVP_MD_CTX_new()) ||
               !EVP_DigestInit_ex(w->ctx, md, NULL))) {
        EVP_MD_CTX_free(w->ctx);
        pthread_mutex_destroy(&w->lock);
        free(io->name);
        free(io);
        free(w);
        error_setg(errp, "cannot start a %s digest", alg);
        return NULL;
    }
    io->ops = &window_ops;
    io->priv = w;
    io->fd = -1;       /* never mmap'd: every byte goes through pwrite */
    io->readonly = false;
    return io;
}

static struct window *window_of(struct io *io)
{
    return io && io->ops == &window_ops ? io->priv : NULL;
}

uint64_t io_window_length(struct io *io)
{
    struct window *w = window_of(io);
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    uint64_t l = w->len;
    pthread_mutex_unlock(&w->lock);
    return l;
}

int io_window_digest(struct io *io, uint8_t *md, unsigned *mdlen,
                     vf_error **errp)
{
    struct window *w = window_of(io);
    if (!w || !w->ctx) {
        error_setg(errp, "%s: not a window with a digest",
                   io ? io->name : "(null)");
        return -1;
    }
    int r = 0;
    pthread_mutex_lock(&w->lock);
    if (w->done || !EVP_DigestFinal_ex(w->ctx, md, mdlen)) {
        error_setg(errp, "%s: digest %s", io->name,
                   w->done ? "already taken" : "failed");
        r = -1;
    }
    w->done = true;
    pthread_mutex_unlock(&w->lock);
    return r;
}
