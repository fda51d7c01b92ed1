/*
 * readahead.c: a reader thread with two buffers.  The helper fills one
 * while the consumer drains the other; a buffer changes hands under the
 * mutex, so its contents are visible to the side that takes it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/readahead.h"

struct readahead {
    readahead_fn fn;
    void *opaque;
    size_t chunk;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *buf[2];
    size_t len[2];
    bool full[2];
    int rd;                /* the consumer's buffer */
    size_t off;            /* consumed bytes of buf[rd] */
    bool stop;             /* the consumer is gone */
    vf_error *err;         /* the helper's read error */
};

static void *readahead_main(void *opaque)
{
    struct readahead *ra = opaque;
    int w = 0;
    for (;;) {
        pthread_mutex_lock(&ra->mu);
        while (ra->full[w] && !ra->stop)
            pthread_cond_wait(&ra->cv, &ra->mu);
        bool stop = ra->stop;
        pthread_mutex_unlock(&ra->mu);
        if (stop)
            return NULL;
        /* fill the whole chunk: the consumer then sees end of stream as
         * a chunk of length 0 */
        size_t got = 0;
        long n = 1;
        vf_error *err = NULL;
        while (got < ra->chunk) {
            n = ra->fn(ra->opaque, ra->buf[w] + got, ra->chunk - got, &err);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        pthread_mutex_lock(&ra->mu);
        ra->len[w] = got;
        ra->full[w] = true;
        if (n < 0)
            ra->err = err;
        pthread_cond_broadcast(&ra->cv);
        pthread_mutex_unlock(&ra->mu);
        if (n <= 0)
            return NULL;
        w ^= 1;
    }
}

struct readahead *readahead_start(readahead_fn fn, void *opaque,
                                  size_t chunk, vf_error **errp)
{
    struct readahead *ra = calloc(1, sizeof(*ra));
    if (ra) {
        ra->buf[0] = malloc(chunk);
        ra->buf[1] = malloc(chunk);
    }
    if (!ra || !ra->buf[0] || !ra->buf[1]) {
        if (ra) {
            free(ra->buf[0]);
            free(ra->buf[1]);
        }
        free(ra);
        error_setg(errp, "out of memory for read-ahead buffers");
        return NULL;
    }
    ra->fn = fn;
    ra->opaque = opaque;
    ra->chunk = chunk;
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    int e = pthread_create(&ra->th, NULL, readahead_main, ra);
    if (e) {
        error_setg_errno(errp, e, "cannot start the read-ahead thread");
        pthread_mutex_destroy(&ra->mu);
        pthread_cond_destroy(&ra->cv);
        free(ra->buf[0]);
        free(ra->buf[1]);
        free(ra);
        return NULL;
    }
    return ra;
}

long readahead_read(void *opaque, void *out, size_t len, vf_error **errp)
{
    struct readahead *ra = opaque;
    pthread_mutex_lock(&ra->mu);
    while (!ra->full[ra->rd])
        pthread_cond_wait(&ra->cv, &ra->mu);
    int r = ra->rd;
    size_t avail = ra->len[r] - ra->off;
    if (avail == 0) {
        /* the helper's last chunk: end of stream, or its error */
        long ret = 0;
        if (ra->err) {
            error_propagate(errp, ra->err);
            ra->err = NULL;
            ret = -1;
        }
        pthread_mutex_unlock(&ra->mu);
        return ret;
    }
    pthread_mutex_unlock(&ra->mu);
    /* buf[r] is the consumer's until it is handed back below */
    if (len > avail)
        len = avail;
    memcpy(out, ra->buf[r] + ra->off, len);
    ra->off += len;
    /* a full chunk goes back to the helper; a short one is the last and
     * stays, so the next call sees the end (or the helper's error) */
    if (ra->off == ra->len[r] && ra->len[r] == ra->chunk) {
        pthread_mutex_lock(&ra->mu);
        ra->full[r] = false;
        ra->off = 0;
        ra->rd ^= 1;
        pthread_cond_broadcast(&ra->cv);
        pthread_mutex_unlock(&ra->mu);
    }
    return (long)len;
}

void readahead_end(struct readahead *ra)
{
    if (!ra)
        return;
    pthread_mutex_lock(&ra->mu);
    ra->stop = true;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
    pthread_join(ra->th, NULL);
    error_free(ra->err);
    pthread_mutex_destroy(&ra->mu);
    pthread_cond_destroy(&ra->cv);
    free(ra->buf[0]);
    free(ra->buf[1]);
    free(ra);
}
