/*
 * qcow2-unit: unit and model tests for the qcow2 driver, in memory.
 *
 *   qcow2-unit [ITERATIONS]
 *
 * 1. refcount entries of every width (1..64 bits) round-trip.
 * 2. A random write/zero/compressed-write workload against a byte model,
 *    for several create options, with a backing image in some runs.  At
 *    checkpoints the image is flushed, reopened read-only (content, block
 *    status and check must agree with the model) and reopened read-write
 *    to continue, so open-for-write and re-layout are exercised too.
 * 3. Mutation: random bytes of finished images are corrupted and the
 *    result is opened, read, mapped, checked and written: any outcome but
 *    a crash or a sanitizer report is fine.
 *
 * The driver is driven directly (struct blk built here), so the test does
 * not depend on the registry or the CLI.  Exit 0 on success.
 */
#include "formats/format.h"
#include "formats/qcow2.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct fmt_driver fmt_qcow2;

static int failures;

#define EXPECT(c, ...)                                                      \
    do {                                                                    \
        if (!(c)) {                                                         \
            fprintf(stderr, "qcow2-unit: %s:%d: ", __FILE__, __LINE__);     \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static void die_err(const char *what, vf_error *e)
{
    fprintf(stderr, "qcow2-unit: %s: %s\n", what, e ? error_msg(e) : "?");
    exit(1);
}

static struct blk *blk_make(struct io *io, bool readonly)
{
    struct blk *b = calloc(1, sizeof(*b));
    if (!b)
        exit(1);
    b->drv = &fmt_qcow2;
    b->file = io;
    b->readonly = readonly;
    b->state = calloc(1, fmt_qcow2.state_size);
    b->filename = strdup("mem.qcow2");
    b->dir = strdup(".");
    pthread_mutex_init(&b->wlock, NULL);
    if (!b->state || !b->filename || !b->dir)
        exit(1);
    return b;
}

/* Free b and its io; not its backing. */
static void blk_free_test(struct blk *b)
{
    if (!b)
        return;
    fmt_qcow2.close(b);
    free(b->state);
    io_close(b->file);
    free(b->filename);
    free(b->dir);
    free(b->backing_name);
    free(b->backing_fmt);
    pthread_mutex_destroy(&b->wlock);
    free(b);
}

/* The bytes of b's file. */
static uint8_t *file_bytes(struct blk *b, size_t *len)
{
    vf_error *e = NULL;
    int64_t sz = io_size(b->file, &e);
    if (sz < 0)
        die_err("io_size", e);
    uint8_t *p = malloc(sz ? (size_t)sz : 1);
    if (!p || io_pread(b->file, p, (size_t)sz, 0, &e) < 0)
        die_err("io_pread", e);
    *len = (size_t)sz;
    return p;
}

static struct io *mem_copy(const uint8_t *p, size_t len)
{
    vf_error *e = NULL;
    struct io *io = io_mem_new("mem.qcow2", 0, &e);
    if (!io || io_pwrite(io, p, len, 0, &e) < 0)
        die_err("io_mem_new", e);
    return io;
}

/* ---- 1. refcount widths ---- */

static void test_refcounts(void)
{
    uint8_t rb[4096];
    for (unsigned order = 0; order <= 6; order++) {
        unsigned bits = 1u << order;
        uint64_t mask = bits == 64 ? UINT64_MAX : (1ULL << bits) - 1;
        uint64_t n = sizeof(rb) * 8 / bits;
        uint64_t *model = calloc(n, sizeof(*model));
        memset(rb, 0, sizeof(rb));
        for (int i = 0; i < 5000; i++) {
            uint64_t idx = rnd_below(n), v = rnd() & mask;
            qcow2_rc_set(rb, idx, order, v);
            model[idx] = v;
        }
        for (uint64_t i = 0; i < n; i++)
            if (qcow2_rc_get(rb, i, order) != model[i]) {
                EXPECT(0, "refcount order %u index %" PRIu64 " wrong",
                       order, i);
                break;
            }
        free(model);
    }
    /* bit 0 is the least significant bit of a sub-byte entry */
    memset(rb, 0, 8);
    qcow2_rc_set(rb, 0, 0, 1);
    EXPECT(rb[0] == 1, "1-bit refcount 0 not in bit 0");
    qcow2_rc_set(rb, 1, 2, 0xf);
    EXPECT(rb[0] == 0xf1, "4-bit refcount 1 not in the high nibble");
}

/* ---- threads: concurrent reads share the L2 cache and the pool ---- */

struct rd_arg {
    struct blk *b;
    const uint8_t *model;
    uint64_t seed;
    int bad;
};

static void *reader(void *p)
{
    struct rd_arg *a = p;
    uint64_t x = a->seed, size = a->b->size;
    uint8_t *buf = malloc(65536);
    for (int i = 0; i < 400; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t off = x % size, len = 1 + (x >> 20) % 65536;
        if (len > size - off)
            len = size - off;
        vf_error *e = NULL;
        if (fmt_qcow2.pread(a->b, buf, off, len, &e) < 0 ||
            memcmp(buf, a->model + off, len))
            a->bad++;
        error_free(e);
        uint64_t pnum, host;
        e = NULL;
        if (fmt_qcow2.block_status(a->b, off, size - off, &pnum, &host,
                                   &e) < 0)
            a->bad++;
        error_free(e);
    }
    free(buf);
    return NULL;
}

static void test_threads(const uint8_t *bytes, size_t len,
                         const uint8_t *model, struct blk *backing)
{
    vf_error *e = NULL;
    struct blk *b = blk_make(mem_copy(bytes, len), true);
    b->backing = backing;
    if (fmt_qcow2.open(b, &e) < 0)
        die_err("threads", e);
    pthread_t t[4];
    struct rd_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct rd_arg){ .b = b, .model = model,
                                .seed = 0x1234567ULL * (uint64_t)(i + 1) };
        pthread_create(&t[i], NULL, reader, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        EXPECT(a[i].bad == 0, "threaded reader %d saw %d bad reads", i,
               a[i].bad);
    }
    blk_free_test(b);
}

/* ---- 2. model workload ---- */

struct wl {
    const char *opts;
    bool compress;
    bool backing;
};

static void verify_ro(const uint8_t *bytes, size_t len, const uint8_t *model,
                      uint64_t size, struct blk *backing, const char *what)
{
    vf_error *e = NULL;
    struct blk *b = blk_make(mem_copy(bytes, len), true);
    b->backing = backing;
    if (fmt_qcow2.open(b, &e) < 0)
        die_err(what, e);
    EXPECT(b->size == size, "%s: size %" PRIu64, what, b->size);
    uint8_t *buf = malloc(size ? size : 1);
    if (fmt_qcow2.pread(b, buf, 0, size, &e) < 0)
        die_err(what, e);
    for (uint64_t i = 0; i < size; i++)
        if (buf[i] != model[i]) {
            EXPECT(0, "%s: content differs at 0x%" PRIx64, what, i);
            break;
        }
    /* block status: ZERO reads zeros, UNALLOC reads the backing */
    for (uint64_t off = 0; off < size;) {
        uint64_t pnum, host;
        int st = fmt_qcow2.block_status(b, off, size - off, &pnum, &host, &e);
        if (st < 0)
            die_err(what, e);
        EXPECT(pnum > 0 && pnum <= size - off, "%s: bad pnum", what);
        if (st == BLK_ZERO)
            for (uint64_t i = 0; i < pnum; i++)
                if (model[off + i]) {
                    EXPECT(0, "%s: BLK_ZERO over data at 0x%" PRIx64, what,
                           off + i);
                    break;
                }
        if (st == BLK_DATA && host != UINT64_MAX) {
            uint8_t *h = malloc(pnum);
            if (io_pread(b->file, h, pnum, host, &e) < 0)
                die_err(what, e);
            EXPECT(!memcmp(h, model + off, pnum),
                   "%s: host_off 0x%" PRIx64 " wrong", what, host);
            free(h);
        }
        off += pnum;
    }
    struct check_report r;
    memset(&r, 0, sizeof(r));
    if (fmt_qcow2.check(b, &r, &e) < 0)
        die_err(what, e);
    EXPECT(r.corruptions == 0 && r.leaks == 0 && r.check_errors == 0,
           "%s: check found %" PRIu64 " corruptions, %" PRIu64 " leaks: %s",
           what, r.corruptions, r.leaks, r.nmsgs ? r.msgs[0] : "");
    check_report_free(&r);
    free(buf);
    blk_free_test(b);
}

static void random_op(struct blk *b, uint8_t *model, void *codec)
{
    vf_error *e = NULL;
    uint64_t size = b->size, cs = b->cluster_size;
    uint64_t off = rnd_below(size);
    uint64_t len = 1 + rnd_below(rnd() % 4 ? 3 * cs : 40 * cs);
    if (len > size - off)
        len = size - off;
    unsigned op = (unsigned)rnd_below(10);
    if (getenv("QCOW2_UNIT_PARANOID"))
        fprintf(stderr, "op %u off 0x%" PRIx64 " len 0x%" PRIx64 "\n", op,
                off, len);
    if (op < 5) {
        uint8_t *p = malloc(len);
        uint8_t v = (uint8_t)rnd();
        for (uint64_t i = 0; i < len; i++)
            p[i] = (i % 7) ? v : (uint8_t)(i >> 3);
        if (fmt_qcow2.pwrite(b, p, off, len, &e) < 0)
            die_err("pwrite", e);
        memcpy(model + off, p, len);
        free(p);
    } else if (op < 7) {
        if (fmt_qcow2.zero(b, off, len, &e) < 0)
            die_err("zero", e);
        memset(model + off, 0, len);
    } else if (codec) {
        off &= ~(cs - 1);
        len = size - off < cs ? size - off : cs;
        uint8_t *p = malloc(cs), *out = malloc(2 * cs + 64);
        memset(p, (int)rnd_below(4), len);
        if (rnd() & 1)
            for (uint64_t i = 0; i < len; i += 1 + rnd_below(64))
                p[i] = (uint8_t)rnd();
        size_t plen = fmt_qcow2.compress(b, codec, p, len, out, 2 * cs + 64);
        if (fmt_qcow2.pwrite_compressed(b, off, p, len, out, plen, &e) < 0)
            die_err("pwrite_compressed", e);
        memcpy(model + off, p, len);
        free(p);
        free(out);
    }
}

static uint8_t *corpus[32];
static size_t corpus_len[32];
static int ncorpus;

static void test_workload(const struct wl *w, uint64_t size, int rounds)
{
    vf_error *e = NULL;
    struct blk *base = NULL;
    uint8_t *model = calloc(1, size);
    if (w->backing) {
        /* a backing image with a pattern, smaller than the overlay */
        struct opts *bo = opts_parse("cluster_size=4k", &e);
        struct fmt_create_opts bco = { .size = size / 2 + 512, .o = bo };
        base = blk_make(io_mem_new("base", 0, &e), false);
        if (fmt_qcow2.create(base, &bco, &e) < 0)
            die_err("create base", e);
        for (uint64_t i = 0; i < bco.size; i++)
            model[i] = (uint8_t)(i * 7 + 1);
        if (fmt_qcow2.pwrite(base, model, 0, bco.size, &e) < 0 ||
            fmt_qcow2.flush(base, &e) < 0)
            die_err("write base", e);
        opts_free(bo);
    }
    struct opts *o = opts_parse(w->opts, &e);
    if (!o)
        die_err("opts", e);
    struct fmt_create_opts co = {
        .size = size, .compress = w->compress, .o = o,
        .backing_file = w->backing ? "base.qcow2" : NULL,
        .backing_fmt = w->backing ? "qcow2" : NULL,
    };
    struct blk *b = blk_make(io_mem_new("mem.qcow2", 0, &e), false);
    b->backing = base;
    if (fmt_qcow2.create(b, &co, &e) < 0)
        die_err(w->opts, e);
    for (int round = 0; round < rounds; round++) {
        void *codec = w->compress ? fmt_qcow2.codec_new(b, &e) : NULL;
        for (int i = 0; i < 150; i++) {
            random_op(b, model, codec);
            if (getenv("QCOW2_UNIT_PARANOID")) {
                uint8_t *chk = malloc(size);
                if (fmt_qcow2.pread(b, chk, 0, size, &e) < 0)
                    die_err("pread", e);
                for (uint64_t j = 0; j < size; j++)
                    if (chk[j] != model[j]) {
                        fprintf(stderr, "op %d round %d: differs at 0x%"
                                PRIx64 " got %02x want %02x\n", i, round, j,
                                chk[j], model[j]);
                        exit(1);
                    }
                free(chk);
            }
        }
        fmt_qcow2.codec_free(codec);
        if (fmt_qcow2.flush(b, &e) < 0)
            die_err("flush", e);
        size_t len;
        uint8_t *bytes = file_bytes(b, &len);
        char what[160];
        snprintf(what, sizeof(what), "%s%s%s round %d", w->opts,
                 w->compress ? " -c" : "", w->backing ? " +backing" : "",
                 round);
        verify_ro(bytes, len, model, size, base, what);
        /* reopen read-write and go on from the file's bytes */
        blk_free_test(b);
        b = blk_make(mem_copy(bytes, len), false);
        b->backing = base;
        if (fmt_qcow2.open(b, &e) < 0)
            die_err(what, e);
        b->compressed = w->compress;
        if (ncorpus < 32) {
            corpus[ncorpus] = bytes;
            corpus_len[ncorpus++] = len;
        } else {
            free(bytes);
        }
    }
    /* grow and shrink */
    if (fmt_qcow2.resize(b, size + 3 * b->cluster_size + 100, &e) < 0 ||
        fmt_qcow2.resize(b, size, &e) < 0 || fmt_qcow2.flush(b, &e) < 0)
        die_err("resize", e);
    size_t len;
    uint8_t *bytes = file_bytes(b, &len);
    verify_ro(bytes, len, model, size, base, "after resize");
    test_threads(bytes, len, model, base);
    free(bytes);
    blk_free_test(b);
    blk_free_test(base);
    opts_free(o);
    free(model);
}

/* ---- 3. mutation ---- */

static void try_image(const uint8_t *p, size_t len)
{
    vf_error *e = NULL;
    struct blk *b = blk_make(mem_copy(p, len), true);
    if (fmt_qcow2.open(b, &e) == 0) {
        uint64_t size = b->size < (8u << 20) ? b->size : (8u << 20);
        uint8_t *buf = malloc(65536);
        for (uint64_t off = 0; off < size; off += 65536) {
            uint64_t n = size - off < 65536 ? size - off : 65536;
            vf_error *e2 = NULL;
            if (fmt_qcow2.pread(b, buf, off, n, &e2) < 0)
                error_free(e2);
        }
        for (uint64_t off = 0; off < size;) {
            uint64_t pnum, host;
            vf_error *e2 = NULL;
            if (fmt_qcow2.block_status(b, off, size - off, &pnum, &host,
                                       &e2) < 0) {
                error_free(e2);
                break;
            }
            off += pnum;
        }
        struct check_report r;
        memset(&r, 0, sizeof(r));
        vf_error *e2 = NULL;
        if (fmt_qcow2.check(b, &r, &e2) < 0)
            error_free(e2);
        check_report_free(&r);
        free(buf);
    }
    error_free(e);
    e = NULL;
    blk_free_test(b);
    /* and read-write: open, a few writes, flush */
    b = blk_make(mem_copy(p, len), false);
    if (fmt_qcow2.open(b, &e) == 0) {
        uint8_t buf[5000];
        memset(buf, 0x5a, sizeof(buf));
        for (int i = 0; i < 4 && b->size; i++) {
            uint64_t off = rnd_below(b->size);
            uint64_t n = b->size - off < sizeof(buf) ? b->size - off
                                                     : sizeof(buf);
            vf_error *e2 = NULL;
            if (fmt_qcow2.pwrite(b, buf, off, n, &e2) < 0)
                error_free(e2);
        }
        vf_error *e2 = NULL;
        if (fmt_qcow2.flush(b, &e2) < 0)
            error_free(e2);
    }
    error_free(e);
    blk_free_test(b);
}

static void test_mutation(int iters)
{
    for (int it = 0; it < iters && ncorpus; it++) {
        int k = (int)rnd_below((uint64_t)ncorpus);
        size_t len = corpus_len[k];
        uint8_t *p = malloc(len);
        memcpy(p, corpus[k], len);
        int nflip = 1 + (int)rnd_below(8);
        for (int f = 0; f < nflip; f++) {
            /* half the hits in the header, half anywhere */
            size_t pos = rnd() & 1 ? rnd_below(len < 512 ? len : 512)
                                   : rnd_below(len);
            uint64_t r = rnd();
            if (r % 3 == 0)
                p[pos] = (uint8_t)r;
            else if (r % 3 == 1)
                p[pos] ^= (uint8_t)(1u << (r >> 8) % 8);
            else
                p[pos] = (r >> 8) & 1 ? 0xff : 0;
        }
        try_image(p, len);
        free(p);
    }
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 1500;
    test_refcounts();
    static const struct wl wls[] = {
        { "cluster_size=4k", false, false },
        { "cluster_size=4k", true, false },
        { "cluster_size=4k,compression_type=zstd", true, false },
        { "cluster_size=512,refcount_bits=1", true, false },
        { "cluster_size=64k,refcount_bits=2", true, false },
        { "cluster_size=4k,compat=0.10", true, false },
        { "cluster_size=4k,refcount_bits=64", false, false },
        { "cluster_size=4k", false, true },
        { "cluster_size=4k,compat=0.10", true, true },
        { "cluster_size=4k,preallocation=metadata", false, false },
    };
    for (size_t i = 0; i < sizeof(wls) / sizeof(wls[0]); i++)
        test_workload(&wls[i], (1u << 20) + 1536 * (i & 1), 3);
    test_mutation(iters);
    for (int i = 0; i < ncorpus; i++)
        free(corpus[i]);
    if (failures) {
        fprintf(stderr, "qcow2-unit: %d failure(s)\n", failures);
        return 1;
    }
    printf("qcow2-unit: ok\n");
    return 0;
}
