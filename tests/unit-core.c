/*
 * unit-core.c: unit tests of the pieces under the formats: option lists,
 * sizes, zero detection, the memory, fault-injection and window backends,
 * the format core's bounds checks, temporary outputs and images created on
 * a caller's io.  Prints one line per failed check; exit status 0 when all
 * pass.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/opts.h"
#include "engine/engine.h"
#include "formats/format.h"
#include "io/io.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static void test_sizes(void)
{
    uint64_t v = 0;
    CHECK(parse_size("64k", &v, NULL) == 0 && v == 65536);
    CHECK(parse_size("2M", &v, NULL) == 0 && v == 2u << 20);
    CHECK(parse_size("1G", &v, NULL) == 0 && v == 1u << 30);
    CHECK(parse_size("1GiB", &v, NULL) == 0 && v == 1u << 30);
    CHECK(parse_size("512", &v, NULL) == 0 && v == 512);
    CHECK(parse_size("16E", &v, NULL) < 0);          /* overflows */
    CHECK(parse_size("-1", &v, NULL) < 0);
    CHECK(parse_size("12q", &v, NULL) < 0);
    CHECK(parse_size("", &v, NULL) < 0);
    vf_error *err = NULL;
    CHECK(parse_size("99999999999999999999999", &v, &err) < 0);
    CHECK(err && strstr(error_msg(err), "9999"));
    error_free(err);
}

static void test_opts(void)
{
    vf_error *err = NULL;
    struct opts *o = opts_parse("cluster_size=64k,compression_type=zstd,"
                                "name=a,,b", &err);
    CHECK(o != NULL);
    uint64_t cs = 0;
    bool present = false;
    CHECK(opts_get_size(o, "cluster_size", &cs, &present, NULL) == 0);
    CHECK(present && cs == 65536);
    CHECK(!strcmp(opts_get(o, "compression_type"), "zstd"));
    CHECK(opts_check_unused(o, "qcow2", &err) < 0);   /* name unused */
    CHECK(err && strstr(error_msg(err), "'name'"));
    error_free(err);
    err = NULL;
    CHECK(!strcmp(opts_get(o, "name"), "a,b"));
    CHECK(opts_check_unused(o, "qcow2", NULL) == 0);
    bool b = false;
    CHECK(opts_add(o, "x=on", NULL) == 0);
    CHECK(opts_get_bool(o, "x", &b, NULL) == 0 && b);
    CHECK(opts_add(o, "y=maybe", NULL) == 0);
    CHECK(opts_get_bool(o, "y", &b, NULL) < 0);
    CHECK(opts_add(o, "novalue", NULL) < 0);
    opts_free(o);
}

static void test_zero(void)
{
    size_t n = 1 << 16;
    uint8_t *p = calloc(1, n + 64);
    for (size_t off = 0; off < 64; off += 7) {
        for (size_t len = 0; len < 700; len += 13) {
            CHECK(buf_is_zero(p + off, len));
            if (len) {
                for (size_t k = 0; k < len; k += len / 5 + 1) {
                    p[off + k] = 1;
                    CHECK(!buf_is_zero(p + off, len));
                    p[off + k] = 0;
                }
            }
        }
    }
    CHECK(buf_is_zero(p, n));
    p[n - 300] = 0x80;
    CHECK(!buf_is_zero(p, n));
    free(p);
}

static void test_mem_and_fault(void)
{
    vf_error *err = NULL;
    struct io *m = io_mem_new("m", 100, &err);
    CHECK(m != NULL);
    uint8_t buf[300];
    memset(buf, 0xaa, sizeof(buf));
    CHECK(io_pread(m, buf, 300, 50, NULL) == 0);   /* past the end: zeros */
    CHECK(buf_is_zero(buf, 300));
    CHECK(io_pwrite(m, "hello", 5, 200, NULL) == 0);
    CHECK(io_size(m, NULL) == 205);
    CHECK(io_pread(m, buf, 5, 200, NULL) == 0 && !memcmp(buf, "hello", 5));
    struct io *f = io_fault_new(m, 2, false);
    CHECK(io_pread(f, buf, 5, 0, NULL) == 0);
    CHECK(io_pwrite(f, buf, 5, 0, &err) < 0);      /* the 2nd call fails */
    CHECK(err && strstr(error_msg(err), "injected"));
    error_free(err);
    CHECK(io_pwrite(f, buf, 5, 0, NULL) == 0);      /* not sticky */
    io_close(f);

    static const uint8_t ro[16] = { 1, 2, 3 };
    struct io *v = io_mem_view("v", ro, sizeof(ro));
    CHECK(io_pwrite(v, "x", 1, 0, NULL) < 0);       /* views are read-only */
    io_close(v);
}

static void test_slice(void)
{
    vf_error *err = NULL;
    struct io *m = io_mem_new("m", 0, NULL);
    CHECK(m != NULL);
    CHECK(io_pwrite(m, "0123456789", 10, 0, NULL) == 0);
    /* two windows borrow one store */
    struct io *a = io_slice_new(m, 2, 5, false, "a");
    struct io *b = io_slice_new(m, 8, 6, false, NULL);   /* past m's end */
    CHECK(a && b);
    CHECK(io_size(a, NULL) == 5 && io_size(b, NULL) == 6);
    CHECK(!strcmp(b->name, "m") && a->readonly && a->fd == -1);
    char buf[16];
    memset(buf, 'x', sizeof(buf));
    CHECK(io_pread(a, buf, 8, 1, NULL) == 0);
    CHECK(!memcmp(buf, "3456\0\0\0\0", 8));     /* zeros past len */
    CHECK(io_pread(b, buf, 6, 0, NULL) == 0);
    CHECK(!memcmp(buf, "89\0\0\0\0", 6));       /* inner's end: zeros */
    CHECK(io_pwrite(a, "z", 1, 0, &err) < 0);
    CHECK(err && strstr(error_msg(err), "read-only"));
    error_free(err);
    err = NULL;
    CHECK(io_truncate(a, 1, NULL) < 0);
    CHECK(io_punch(a, 0, 1, NULL) < 0);
    uint64_t n = 0;
    bool data = false;
    CHECK(io_extent(a, 1, &n, &data, NULL) == 0 && n == 4 && data);
    CHECK(io_extent(a, 5, &n, &data, NULL) == 0 && n == 0);
    CHECK(io_extent(b, 3, &n, &data, NULL) == 0 && n == 3 && !data);
    io_close(a);
    io_close(b);
    /* the store survives its borrowed slices */
    CHECK(io_pread(m, buf, 1, 0, NULL) == 0 && buf[0] == '0');
    /* a window whose end wraps is refused, and an owned inner is closed */
    CHECK(io_slice_new(m, UINT64_MAX - 1, 4, true, "w") == NULL);
    m = io_mem_new("m2", 4, NULL);
    struct io *c = io_slice_new(m, 0, 4, true, "c");
    CHECK(c != NULL);
    io_close(c);    /* closes m2: ASan would see a leak otherwise */
}

static void test_blk(void)
{
    char dir[] = "/tmp/vf-unit-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/out.raw", dir);
    vf_error *err = NULL;
    struct opts *o = opts_parse(NULL, NULL);
    struct fmt_create_opts co = { .size = 1 << 20, .o = o };
    struct blk *b = blk_create(path, "raw", &co, &err);
    CHECK(b != NULL);
    CHECK(access(path, F_OK) != 0);          /* not there until commit */
    uint8_t buf[512] = { 7 };
    CHECK(blk_pwrite(b, buf, (1 << 20) - 512, 512, NULL) == 0);
    CHECK(blk_pwrite(b, buf, (1 << 20) - 511, 512, &err) < 0);
    CHECK(err && strstr(error_msg(err), "beyond the virtual size"));
    error_free(err);
    err = NULL;
    CHECK(blk_pread(b, buf, UINT64_MAX - 10, 100, NULL) < 0);  /* wraps */
    CHECK(blk_commit(b, true, NULL) == 0);
    blk_close(b);
    CHECK(access(path, F_OK) == 0);
    /* an uncommitted output disappears on close */
    char p2[256];
    snprintf(p2, sizeof(p2), "%s/gone.raw", dir);
    b = blk_create(p2, "raw", &co, NULL);
    CHECK(b != NULL);
    blk_close(b);
    CHECK(access(p2, F_OK) != 0);
    rmdir(dir);     /* fails if a temporary was left behind */
    CHECK(access(dir, F_OK) == 0);
    unlink(path);
    CHECK(rmdir(dir) == 0);
    opts_free(o);
}

/* io_window: sequential writes at base, a digest of exactly those
 * bytes, out-of-order writes refused with both offsets named. */
static void test_window(void)
{
    vf_error *err = NULL;
    struct io *m = io_mem_new("ova", 0, NULL);
    CHECK(io_pwrite(m, "HDR", 3, 0, NULL) == 0);
    struct io *w = io_window_new(m, 512, "sha256", "member", &err);
    CHECK(w != NULL && w->fd == -1);
    CHECK(io_pwrite(w, "abc", 3, 0, NULL) == 0);
    CHECK(io_pwrite(w, "defg", 4, 3, NULL) == 0);
    CHECK(io_pwrite(w, "x", 1, 3, &err) < 0);       /* a rewrite */
    CHECK(err && strstr(error_msg(err), "0x3 out of order") &&
          strstr(error_msg(err), "next offset 0x7"));
    error_free(err);
    err = NULL;
    CHECK(io_pwrite(w, "x", 1, 9, NULL) < 0);        /* a gap */
    CHECK(io_size(w, NULL) == 7 && io_window_length(w) == 7);
    CHECK(io_truncate(w, 7, NULL) == 0 && io_truncate(w, 8, NULL) < 0);
    CHECK(io_punch(w, 0, 1, NULL) < 0);
    uint8_t b[16];
    memset(b, 0xee, sizeof(b));
    CHECK(io_pread(w, b, 10, 2, NULL) == 0 && !memcmp(b, "cdefg", 5) &&
          buf_is_zero(b + 5, 5));
    CHECK(io_pread(m, b, 7, 512, NULL) == 0 && !memcmp(b, "abcdefg", 7));
    CHECK(io_pread(m, b, 3, 0, NULL) == 0 && !memcmp(b, "HDR", 3));
    uint8_t md[64];
    unsigned ml = 0;
    CHECK(io_window_digest(w, md, &ml, NULL) == 0 && ml == 32);
    /* sha256("abcdefg") */
    static const uint8_t want[4] = { 0x7d, 0x1a, 0x54, 0x12 };
    CHECK(!memcmp(md, want, 4));
    CHECK(io_window_digest(w, md, &ml, NULL) < 0);   /* once */
    CHECK(io_pwrite(w, "h", 1, 7, NULL) < 0);        /* closed */
    io_close(w);
    CHECK(io_size(m, NULL) == 519);                  /* inner untouched */
    w = io_window_new(m, 0, "nosuchdigest", NULL, &err);
    CHECK(w == NULL && err && strstr(error_msg(err), "nosuchdigest"));
    error_free(err);
    w = io_window_new(m, 1024, NULL, NULL, NULL);    /* no digest */
    CHECK(w && io_pwrite(w, "z", 1, 0, NULL) == 0);
    CHECK(io_window_digest(w, md, &ml, NULL) < 0);
    io_close(w);
    io_close(m);
}

/* blk_create_io: an image laid out on a caller's io, which commit does
 * not rename and close does not close; multi-file formats refused. */
static void test_blk_create_io(void)
{
    vf_error *err = NULL;
    struct io *m = io_mem_new("m", 0, NULL);
    struct opts *o = opts_parse("subformat=streamOptimized", NULL);
    struct fmt_create_opts co = { .size = 1 << 20, .o = o };
    struct blk *b = blk_create_io(m, "in.vmdk", "vmdk", &co, &err);
    CHECK(b != NULL && b->compressed);
    uint8_t *g = malloc(65536);
    memset(g, 0x5a, 65536);
    void *codec = b ? b->drv->codec_new(b, NULL) : NULL;
    uint8_t *z = malloc(2 * 65536 + 64);
    size_t zl = b ? b->drv->compress(b, codec, g, 65536, z, 2 * 65536 + 64)
                  : 0;
    CHECK(b && b->drv->pwrite_compressed(b, 65536, g, 65536, z, zl,
                                         NULL) == 0);
    CHECK(b && blk_commit(b, true, NULL) == 0);
    if (b)
        b->drv->codec_free(codec);
    blk_close(b);
    int64_t sz = io_size(m, NULL);
    CHECK(sz > 65536 / 8);                   /* the io still holds it */
    /* read it back from a copy of the bytes */
    uint8_t *img = malloc(sz > 0 ? (size_t)sz : 1);
    CHECK(io_pread(m, img, (size_t)sz, 0, NULL) == 0);
    struct io *v = io_mem_view("in.vmdk", img, (size_t)sz);
    struct blk *r = blk_open_io(v, "in.vmdk", true, NULL, &err);
    CHECK(r != NULL && r->size == 1 << 20);
    uint8_t back[512];
    CHECK(r && blk_pread(r, back, 65536 + 512, 512, NULL) == 0 &&
          back[0] == 0x5a && back[511] == 0x5a);
    CHECK(r && blk_pread(r, back, 0, 512, NULL) == 0 &&
          buf_is_zero(back, 512));
    blk_close(r);
    free(img);
    io_close(m);                             /* still ours: not freed */
    opts_free(o);

    /* a format that needs a second file cannot live on one io */
    m = io_mem_new("m2", 0, NULL);
    o = opts_parse("subformat=monolithicFlat", NULL);
    co.o = o;
    b = blk_create_io(m, "flat.vmdk", "vmdk", &co, &err);
    CHECK(b == NULL && err && strstr(error_msg(err), "one file only"));
    error_free(err);
    io_close(m);
    opts_free(o);
    free(g);
    free(z);
}

int main(void)
{
    test_sizes();
    test_opts();
    test_zero();
    test_mem_and_fault();
    test_slice();
    test_blk();
    test_window();
    test_blk_create_io();
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all unit checks passed\n");
    return 0;
}
