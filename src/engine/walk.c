/*
 * walk.c: whole-image walks on block status: compare, digest and map.
 * Zero and unallocated ranges are never read.
 */
#include "engine/engine.h"

#include <openssl/evp.h>
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

int engine_compare(struct blk *a, struct blk *b, uint64_t *mismatch,
                   vf_error **errp)
{
    uint64_t common = a->size < b->size ? a->size : b->size;
    uint8_t *ba = malloc(WALK_CHUNK), *bb = malloc(WALK_CHUNK);
    int ret = -1;
    if (!ba || !bb) {
        error_setg(errp, "out of memory");
        goto out;
    }
    uint64_t off = 0;
    while (off < common) {
        uint64_t na, nb;
        bool za, zb;
        if (walk_zero_status(a, off, common - off, &na, &za, errp) < 0 ||
            walk_zero_status(b, off, common - off, &nb, &zb, errp) < 0)
            goto out;
        uint64_t n = na < nb ? na : nb;
        if (za && zb) {
            off += n;
            continue;
        }
        if (n > WALK_CHUNK)
            n = WALK_CHUNK;
        if ((!za && blk_pread(a, ba, off, (size_t)n, errp) < 0) ||
            (!zb && blk_pread(b, bb, off, (size_t)n, errp) < 0))
            goto out;
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
            ret = 1;
            goto out;
        }
        off += n;
    }
    struct blk *longer = a->size > b->size ? a : b;
    ret = walk_tail_is_zero(longer, common, longer->size, ba, mismatch,
                            errp);
out:
    free(ba);
    free(bb);
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
