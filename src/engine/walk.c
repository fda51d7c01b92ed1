/*
 * walk.c: whole-image walks on block status: compare, digest and map.
 * Zero and unallocated ranges are never read.
 */
#include "engine/engine.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WALK_CHUNK (1u << 20)

/* Status of [off, off+len) of b: true for "reads as zeros", *n how far. */
static int walk_zero_status(struct blk *b, uint64_t off, uint64_t len,
                            uint64_t *n, bool *zero, vf_error **errp)
{
    int s = blk_block_status_above(b, NULL, off, len, n, NULL, NULL, errp);
    if (s < 0)
        return -1;
    *zero = s != BLK_DATA;
    return 0;
}

/* Is [off, end) of b all zeros?  *where gets the first non-zero offset. */
static int walk_tail_is_zero(struct blk *b, uint64_t off, uint64_t end,
                             uint8_t *buf, uint64_t *where, vf_error **errp)
{
    while (off < end) {
        uint64_t n;
        bool z;
        if (walk_zero_status(b, off, end - off, &n, &z, errp) < 0)
            return -1;
        if (!z) {
            if (n > WALK_CHUNK)
                n = WALK_CHUNK;
            if (blk_pread(b, buf, off, (size_t)n, errp) < 0)
                return -1;
            if (!buf_is_zero(buf, (size_t)n)) {
                for (uint64_t i = 0; i < n; i++) {
                    if (buf[i]) {
                        *where = off + i;
                        break;
                    }
                }
                return 1;
            }
        }
        off += n;
    }
    return 0;
}

int engine_range_is_zero(struct blk *b, uint64_t off, uint64_t end,
                         uint64_t *where, vf_error **errp)
{
    uint8_t *buf = malloc(WALK_CHUNK);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = walk_tail_is_zero(b, off, end, buf, where, errp);
    free(buf);
    return r < 0 ? -1 : !r;
}

/* Compare [off, end) of a and b, both at least end long.  0 equal, 1
 * different (*mismatch the first differing offset), -1 on error. */
static int compare_range(struct blk *a, struct blk *b, uint64_t off,
                         uint64_t end, uint8_t *ba, uint8_t *bb,
                         uint64_t *mismatch, vf_error **errp)
{
    while (off < end) {
        uint64_t na, nb;
        bool za, zb;
        if (walk_zero_status(a, off, end - off, &na, &za, errp) < 0 ||
            walk_zero_status(b, off, end - off, &nb, &zb, errp) < 0)
            return -1;
        uint64_t n = na < nb ? na : nb;
        if (za && zb) {
            off += n;
            continue;
        }
        if (n > WALK_CHUNK)
            n = WALK_CHUNK;
        if ((!za && blk_pread(a, ba, off, (size_t)n, errp) < 0) ||
            (!zb && blk_pread(b, bb, off, (size_t)n, errp) < 0))
            return -1;
        if (za)
            memset(ba, 0, (size_t)n);
        if (zb)
            memset(bb, 0, (size_t)n);
        if (memcmp(ba, bb, (size_t)n)) {
            for (uint64_t i = 0; i < n; i++) {
                if (ba[i] != bb[i]) {
                    *mismatch = off + i;
                    break;
                }
            }
            return 1;
        }
        off += n;
    }
    return 0;
}

/* The common part is cut into segments that worker threads take in
 * order; the answer is the lowest mismatch any of them found (segments
 * past it are skipped once one is known). */
#define CMP_SEGMENT (64ull << 20)

struct cmp_job {
    struct blk *a, *b;
    uint64_t common;
    pthread_mutex_t lock;
    uint64_t next;             /* next segment start */
    uint64_t first;            /* lowest mismatch found, UINT64_MAX */
    vf_error *err;
};

static void *cmp_worker(void *opaque)
{
    struct cmp_job *j = opaque;
    uint8_t *ba = malloc(WALK_CHUNK), *bb = malloc(WALK_CHUNK);
    for (;;) {
        pthread_mutex_lock(&j->lock);
        uint64_t off = j->next;
        bool stop = j->err || off >= j->common || off >= j->first || !ba ||
                    !bb;
        if (!ba || !bb) {
            if (!j->err)
                error_setg(&j->err, "out of memory");
        }
        j->next = off + CMP_SEGMENT;
        pthread_mutex_unlock(&j->lock);
        if (stop)
            break;
        uint64_t end = off + CMP_SEGMENT < j->common ? off + CMP_SEGMENT
                                                      : j->common;
        uint64_t at = UINT64_MAX;
        vf_error *err = NULL;
        int r = compare_range(j->a, j->b, off, end, ba, bb, &at, &err);
        pthread_mutex_lock(&j->lock);
        if (r < 0 && !j->err)
            j->err = err;
        else
            error_free(err);
        if (r == 1 && at < j->first)
            j->first = at;
        pthread_mutex_unlock(&j->lock);
    }
    free(ba);
    free(bb);
    return NULL;
}

int engine_compare(struct blk *a, struct blk *b, uint64_t *mismatch,
                   vf_error **errp)
{
    uint64_t common = a->size < b->size ? a->size : b->size;
    struct cmp_job j = { .a = a, .b = b, .common = common,
                         .first = UINT64_MAX };
    pthread_mutex_init(&j.lock, NULL);
    int nt = engine_default_threads();
    if ((uint64_t)nt > common / CMP_SEGMENT + 1)
        nt = (int)(common / CMP_SEGMENT + 1);
    if (nt > 16)
        nt = 16;
    pthread_t th[16];
    int started = 0;
    for (int i = 1; i < nt; i++)
        if (pthread_create(&th[started], NULL, cmp_worker, &j) == 0)
            started++;
    cmp_worker(&j);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.lock);
    if (j.err) {
        error_propagate(errp, j.err);
        return -1;
    }
    if (j.first != UINT64_MAX) {
        *mismatch = j.first;
        return 1;
    }
    uint8_t *buf = malloc(WALK_CHUNK);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    struct blk *longer = a->size > b->size ? a : b;
    int ret = walk_tail_is_zero(longer, common, longer->size, buf, mismatch,
                                errp);
    free(buf);
    return ret;
}

int engine_digest(struct blk *b, uint8_t out[32], vf_error **errp)
{
    static const uint8_t zeros[WALK_CHUNK];
    uint8_t *buf = malloc(WALK_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ret = -1;
    if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        error_setg(errp, "out of memory");
        goto out;
    }
    uint64_t off = 0;
    while (off < b->size) {
        uint64_t n;
        bool z;
        if (walk_zero_status(b, off, b->size - off, &n, &z, errp) < 0)
            goto out;
        while (n) {
            size_t c = n < WALK_CHUNK ? (size_t)n : WALK_CHUNK;
            const uint8_t *p = zeros;
            if (!z) {
                if (blk_pread(b, buf, off, c, errp) < 0)
                    goto out;
                p = buf;
            }
            EVP_DigestUpdate(ctx, p, c);
            off += c;
            n -= c;
        }
    }
    unsigned int l = 32;
    EVP_DigestFinal_ex(ctx, out, &l);
    ret = 0;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return ret;
}

static int chain_length(struct blk *b)
{
    int n = 0;
    for (; b; b = b->backing)
        n++;
    return n;
}

int engine_map(struct blk *b,
               int (*cb)(void *opaque, const struct map_extent *e,
                         vf_error **errp),
               void *opaque, vf_error **errp)
{
    struct map_extent cur = { 0 };
    bool have = false;
    uint64_t off = 0;
    int nlayers = chain_length(b);
    while (off < b->size) {
        uint64_t n, host;
        int depth;
        int s = blk_block_status_above(b, NULL, off, b->size - off, &n,
                                       &depth, &host, errp);
        if (s < 0)
            return -1;
        struct map_extent e = {
            .start = off, .length = n,
            .depth = s == BLK_UNALLOC ? nlayers - 1 : depth,
            .present = s != BLK_UNALLOC,
            .zero = s != BLK_DATA,
            .data = s == BLK_DATA,
            .offset = host,
        };
        if (s == BLK_UNALLOC)
            e.offset = UINT64_MAX;   /* depth: the bottom, as qemu-img */
        if (have && cur.depth == e.depth && cur.present == e.present &&
            cur.zero == e.zero && cur.data == e.data &&
            ((cur.offset == UINT64_MAX && e.offset == UINT64_MAX) ||
             (cur.offset != UINT64_MAX && e.offset != UINT64_MAX &&
              cur.offset + cur.length == e.offset))) {
            cur.length += n;
        } else {
            if (have && cb(opaque, &cur, errp) < 0)
                return -1;
            cur = e;
            have = true;
        }
        off += n;
    }
    if (have && cb(opaque, &cur, errp) < 0)
        return -1;
    return 0;
}
