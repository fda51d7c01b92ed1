/*
 * initramfs.c: what files an initramfs holds, streamed (never whole in
 * memory): concatenated cpio "newc" archives (magic 070701 / 070702 with
 * CRC), the first usually uncompressed (early microcode), then one
 * compressed with gzip, xz, lzma, zstd, lz4 (legacy or frame) or bzip2.
 *
 * Format: the kernel's Documentation/driver-api/early-userspace/
 * buffer-format.rst (110-byte ASCII-hex header, name padded to 4 bytes
 * from the header start, data padded to 4, "TRAILER!!!" ends an archive,
 * NUL padding between archives) and usr/initramfs / init/initramfs.c for
 * the compressed segments.  Decompression by ISA-L (gzip), liblzma, libzstd,
 * liblz4 and libbz2.
 */
#include <bzlib.h>
#include <isa-l/igzip_lib.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "guest/guest.h"
#include "guest/initramfs.h"
#include "guest/ondisk.h"

#define SRC_BUF (256u * 1024)
#define OUT_BUF (256u * 1024)
/* Linux's PATH_MAX: a longer name is not one the kernel would unpack. */
#define CPIO_NAME_MAX 4096
/* Stop decompressing past 1 GiB: real initramfs images unpack to a few
 * hundred MiB at most; more is a decompression bomb. */
#define INITRD_MAX_OUT (1ull << 30)
/* lz4 legacy blocks hold at most 8 MiB of output (lz4 CLI, kernel). */
#define LZ4_LEGACY_BLOCK (8u << 20)
/* Segments: microcode + main + a few appended; more is hostile. */
#define INITRD_MAX_SEGMENTS 64

struct src {
    initrd_read_fn read;
    void *opaque;
    uint8_t *buf;
    size_t pos, len;
    bool eof;
};

static int src_fill(struct src *s, vf_error **errp)
{
    if (s->pos < s->len || s->eof)
        return 0;
    long n = s->read(s->opaque, s->buf, SRC_BUF, errp);
    if (n < 0)
        return -1;
    s->pos = 0;
    s->len = (size_t)n;
    if (n == 0)
        s->eof = true;
    return 0;
}

/* Make at least want bytes available at pos (fewer at end of file). */
static int src_peek(struct src *s, size_t want, vf_error **errp)
{
    if (s->len - s->pos >= want || s->eof)
        return 0;
    memmove(s->buf, s->buf + s->pos, s->len - s->pos);
    s->len -= s->pos;
    s->pos = 0;
    while (s->len < want && !s->eof) {
        long n = s->read(s->opaque, s->buf + s->len, SRC_BUF - s->len, errp);
        if (n < 0)
            return -1;
        if (n == 0)
            s->eof = true;
        s->len += (size_t)n;
    }
    return 0;
}

/* ---- cpio newc, push parser ---- */

enum { CP_HDR, CP_NAME, CP_SKIP, CP_BETWEEN, CP_DONE };

struct cpio {
    int state;
    uint8_t hdr[110];
    size_t hlen;
    char name[CPIO_NAME_MAX + 1];
    uint32_t namesize, nlen;
    uint64_t skip;
    uint64_t pos;              /* bytes consumed in this stream */
    uint32_t filesize, mode;
    uint64_t files;
    struct initrd_result *r;
    char err[160];
    /* a visitor's capture of the current entry's data */
    int seg;
    uint64_t skip_total;       /* name padding + data + data padding */
    uint64_t data_at;          /* where the data starts in that span */
    uint8_t *cap;
    size_t cap_want, cap_len;
};

static uint32_t hex8(const uint8_t *p, bool *ok)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else {
            *ok = false;
            return 0;
        }
        v = v << 4 | (uint32_t)d;
    }
    return v;
}

static void cpio_entry(struct cpio *c)
{
    struct initrd_result *r = c->r;
    c->files++;
    r->files++;
    char mod[64];
    if ((c->mode & 0170000) == 0100000 &&
        modname_from_file(c->name, mod, sizeof(mod)))
        initrd_note_module(r, mod);
    if (strstr(c->name, "kernel/x86/microcode/"))
        r->microcode = true;
    const struct initrd_visitor *vis = r->visit;
    if (!vis || !vis->entry)
        return;
    size_t want = vis->entry(vis->opaque, c->seg, c->name, c->mode,
                             c->filesize);
    if (want > c->filesize)
        want = c->filesize;
    if (want > INITRD_CAPTURE_MAX)
        want = INITRD_CAPTURE_MAX;
    c->cap_len = 0;
    c->cap_want = 0;
    if (!vis->data)
        return;
    /* malloc(0) may be NULL: one spare byte keeps the capture valid */
    c->cap = malloc(want + 1);
    if (c->cap)
        c->cap_want = want;
    else
        snprintf(c->err, sizeof(c->err), "out of memory for %zu bytes of "
                 "%.60s", want, c->name);
}

/* Bytes [at, at+n) of the current entry's padded data span went by. */
static void cpio_capture(struct cpio *c, const uint8_t *d, uint64_t at,
                         size_t n)
{
    if (!c->cap)
        return;
    uint64_t lo = c->data_at + c->cap_len, hi = c->data_at + c->cap_want;
    if (at + n <= lo || at >= hi || at > lo)
        return;
    size_t off = (size_t)(lo - at);
    size_t take = n - off;
    if (take > hi - lo)
        take = (size_t)(hi - lo);
    memcpy(c->cap + c->cap_len, d + off, take);
    c->cap_len += take;
}

/* The current entry's span was consumed: hand over its capture. */
static void cpio_entry_done(struct cpio *c)
{
    if (!c->cap)
        return;
    const struct initrd_visitor *vis = c->r->visit;
    if (c->cap_len == c->cap_want)
        vis->data(vis->opaque, c->name, c->cap, c->cap_len);
    free(c->cap);
    c->cap = NULL;
    c->cap_len = c->cap_want = 0;
}

static uint64_t pad4(uint64_t v)
{
    return (4 - (v & 3)) & 3;
}

/* Consume up to n bytes of d.  With stop_between, return at the first
 * non-NUL byte after a trailer that does not start a new header. */
static size_t cpio_feed(struct cpio *c, const uint8_t *d, size_t n,
                        bool stop_between)
{
    size_t i = 0;
    while (i < n && c->state != CP_DONE) {
        switch (c->state) {
        case CP_BETWEEN:
            if (d[i] == 0) {
                i++;
                c->pos++;
                break;
            }
            if (d[i] != '0') {
                if (stop_between)
                    return i;
                c->state = CP_DONE;   /* trailing junk: ignore */
                return n;
            }
            c->state = CP_HDR;
            c->hlen = 0;
            /* fall through */
        case CP_HDR: {
            size_t take = sizeof(c->hdr) - c->hlen;
            if (take > n - i)
                take = n - i;
            memcpy(c->hdr + c->hlen, d + i, take);
            c->hlen += take;
            i += take;
            c->pos += take;
            if (c->hlen < sizeof(c->hdr))
                break;
            if (memcmp(c->hdr, "070701", 6) && memcmp(c->hdr, "070702", 6)) {
                snprintf(c->err, sizeof(c->err),
                         "cpio header magic %.6s is not newc", c->hdr);
                c->state = CP_DONE;
                return i;
            }
            bool ok = true;
            c->mode = hex8(c->hdr + 14, &ok);
            c->filesize = hex8(c->hdr + 54, &ok);
            c->namesize = hex8(c->hdr + 94, &ok);
            if (!ok) {
                snprintf(c->err, sizeof(c->err), "cpio header has non-hex "
                         "digits");
                c->state = CP_DONE;
                return i;
            }
            if (c->namesize == 0 || c->namesize > CPIO_NAME_MAX) {
                snprintf(c->err, sizeof(c->err),
                         "cpio name length %u invalid (limit %d)",
                         c->namesize, CPIO_NAME_MAX);
                c->state = CP_DONE;
                return i;
            }
            c->nlen = 0;
            c->state = CP_NAME;
            break;
        }
        case CP_NAME: {
            size_t take = c->namesize - c->nlen;
            if (take > n - i)
                take = n - i;
            memcpy(c->name + c->nlen, d + i, take);
            c->nlen += (uint32_t)take;
            i += take;
            c->pos += take;
            if (c->nlen < c->namesize)
                break;
            c->name[c->namesize - 1] = 0;
            c->data_at = pad4(c->pos);
            c->skip = c->data_at + c->filesize;
            c->skip += pad4(c->pos + c->skip);
            c->skip_total = c->skip;
            if (!strcmp(c->name, "TRAILER!!!")) {
                c->state = CP_BETWEEN;
                c->skip = 0;
                break;
            }
            cpio_entry(c);
            if (c->err[0]) {
                c->state = CP_DONE;
                return i;
            }
            c->state = CP_SKIP;
            break;
        }
        case CP_SKIP: {
            uint64_t take = c->skip;
            if (take > n - i)
                take = n - i;
            cpio_capture(c, d + i, c->skip_total - c->skip, (size_t)take);
            i += (size_t)take;
            c->pos += take;
            c->skip -= take;
            break;
        }
        }
        if (c->state == CP_SKIP && c->skip == 0) {
            cpio_entry_done(c);
            c->state = CP_HDR;
            c->hlen = 0;
        }
    }
    return i;
}

/* ---- decompressors: each reads s from s->pos, feeds c, leaves s->pos at
 * the first byte after its stream ---- */

static int out_feed(struct cpio *c, const uint8_t *d, size_t n,
                    uint64_t *total, vf_error **errp)
{
    *total += n;
    if (*total > INITRD_MAX_OUT) {
        error_setg(errp, "initramfs unpacks to more than %llu bytes",
                   (unsigned long long)INITRD_MAX_OUT);
        return -1;
    }
    if (c->state != CP_DONE)
        cpio_feed(c, d, n, false);
    /* Asked only which drivers are there, and all are: the rest of the
     * archive cannot change the answer (inflating it is most of what
     * inspect spends on a Debian initramfs) */
    struct initrd_result *r = c->r;
    if (r->stop_when_found && !r->visit && r->nwant > 0 && !c->err[0]) {
        for (int i = 0; i < r->nwant; i++)
            if (!r->found[i])
                return 0;
        r->partial = true;
        return 1;
    }
    return 0;
}

static const char *isal_why(int r)
{
    switch (r) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "back-reference before the start";
    case ISAL_INVALID_WRAPPER: return "bad gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "compression method is not deflate";
    case ISAL_INCORRECT_CHECKSUM: return "CRC-32 or length mismatch";
    default: return "igzip error";
    }
}

/* gzip through ISA-L's igzip (streaming, 2-3x zlib's inflate speed: the
 * gzip initramfs is most of what inspect spends).  ISAL_GZIP parses the
 * header and checks the trailer's CRC-32 and length.  At the end of the
 * member igzip hands back the bytes it had read ahead, so s->pos lands on
 * the next segment. */
static int dec_gzip(struct src *s, struct cpio *c, uint8_t *out,
                    uint64_t *total, vf_error **errp)
{
    struct inflate_state *z = malloc(sizeof(*z));
    if (!z) {
        error_setg(errp, "out of memory for the gzip decoder");
        return -1;
    }
    isal_inflate_init(z);
    z->crc_flag = ISAL_GZIP;
    int ret = -1;
    bool out_full = false;   /* igzip may hold output for the next call */
    for (;;) {
        if (src_fill(s, errp) < 0)
            break;
        if (s->pos == s->len && !out_full) {
            error_setg(errp, "gzip stream truncated");
            break;
        }
        z->next_in = s->buf + s->pos;
        z->avail_in = (uint32_t)(s->len - s->pos);
        z->next_out = out;
        z->avail_out = OUT_BUF;
        int zr = isal_inflate(z);
        s->pos = s->len - z->avail_in;
        if (zr != ISAL_DECOMP_OK) {
            error_setg(errp, "gzip data corrupt: %s", isal_why(zr));
            break;
        }
        out_full = z->avail_out == 0;
        int fr = out_feed(c, out, OUT_BUF - z->avail_out, total, errp);
        if (fr < 0)
            break;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
        if (z->block_state == ISAL_BLOCK_FINISH) {
            ret = 0;
            break;
        }
    }
    free(z);
    return ret;
}

static int dec_xz(struct src *s, struct cpio *c, uint8_t *out,
                  uint64_t *total, bool alone, vf_error **errp)
{
    lzma_stream z = LZMA_STREAM_INIT;
    /* 256 MiB of decoder memory: xz -9 needs 65 MiB */
    lzma_ret lr = alone ? lzma_alone_decoder(&z, 256u << 20)
                        : lzma_stream_decoder(&z, 256u << 20, 0);
    if (lr != LZMA_OK) {
        error_setg(errp, "liblzma init failed");
        return -1;
    }
    int ret = -1;
    for (;;) {
        if (src_fill(s, errp) < 0)
            break;
        z.next_in = s->buf + s->pos;
        z.avail_in = s->len - s->pos;
        z.next_out = out;
        z.avail_out = OUT_BUF;
        lr = lzma_code(&z, s->eof ? LZMA_FINISH : LZMA_RUN);
        s->pos = s->len - z.avail_in;
        int fr = out_feed(c, out, OUT_BUF - z.avail_out, total, errp);
        if (fr < 0)
            break;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
        if (lr == LZMA_STREAM_END) {
            ret = 0;
            break;
        }
        if (lr != LZMA_OK) {
            error_setg(errp, "%s data corrupt (liblzma error %d)",
                       alone ? "lzma" : "xz", (int)lr);
            break;
        }
        if (s->eof && z.avail_out == OUT_BUF) {
            error_setg(errp, "xz stream truncated");
            break;
        }
    }
    lzma_end(&z);
    return ret;
}

static int dec_zstd(struct src *s, struct cpio *c, uint8_t *out,
                    uint64_t *total, vf_error **errp)
{
    ZSTD_DStream *z = ZSTD_createDStream();
    if (!z) {
        error_setg(errp, "zstd init failed");
        return -1;
    }
    int ret = -1;
    for (;;) {
        if (src_fill(s, errp) < 0)
            break;
        if (s->pos == s->len) {
            error_setg(errp, "zstd stream truncated");
            break;
        }
        ZSTD_inBuffer ib = { s->buf, s->len, s->pos };
        ZSTD_outBuffer ob = { out, OUT_BUF, 0 };
        size_t zr = ZSTD_decompressStream(z, &ob, &ib);
        s->pos = ib.pos;
        if (ZSTD_isError(zr)) {
            error_setg(errp, "zstd data corrupt: %s", ZSTD_getErrorName(zr));
            break;
        }
        int fr = out_feed(c, out, ob.pos, total, errp);
        if (fr < 0)
            break;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
        if (zr == 0) {
            ret = 0;
            break;
        }
    }
    ZSTD_freeDStream(z);
    return ret;
}

static int dec_bzip2(struct src *s, struct cpio *c, uint8_t *out,
                     uint64_t *total, vf_error **errp)
{
    bz_stream z;
    memset(&z, 0, sizeof(z));
    if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) {
        error_setg(errp, "bzip2 init failed");
        return -1;
    }
    int ret = -1;
    for (;;) {
        if (src_fill(s, errp) < 0)
            break;
        if (s->pos == s->len) {
            error_setg(errp, "bzip2 stream truncated");
            break;
        }
        z.next_in = (char *)s->buf + s->pos;
        z.avail_in = (unsigned)(s->len - s->pos);
        z.next_out = (char *)out;
        z.avail_out = OUT_BUF;
        int br = BZ2_bzDecompress(&z);
        s->pos = s->len - z.avail_in;
        if (br != BZ_OK && br != BZ_STREAM_END) {
            error_setg(errp, "bzip2 data corrupt (error %d)", br);
            break;
        }
        int fr = out_feed(c, out, OUT_BUF - z.avail_out, total, errp);
        if (fr < 0)
            break;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
        if (br == BZ_STREAM_END) {
            ret = 0;
            break;
        }
    }
    BZ2_bzDecompressEnd(&z);
    return ret;
}

static int dec_lz4frame(struct src *s, struct cpio *c, uint8_t *out,
                        uint64_t *total, vf_error **errp)
{
    LZ4F_dctx *z = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&z, LZ4F_VERSION))) {
        error_setg(errp, "lz4 init failed");
        return -1;
    }
    int ret = -1;
    for (;;) {
        if (src_fill(s, errp) < 0)
            break;
        if (s->pos == s->len) {
            error_setg(errp, "lz4 stream truncated");
            break;
        }
        size_t isz = s->len - s->pos, osz = OUT_BUF;
        size_t lr = LZ4F_decompress(z, out, &osz, s->buf + s->pos, &isz, NULL);
        s->pos += isz;
        if (LZ4F_isError(lr)) {
            error_setg(errp, "lz4 data corrupt: %s", LZ4F_getErrorName(lr));
            break;
        }
        int fr = out_feed(c, out, osz, total, errp);
        if (fr < 0)
            break;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
        if (lr == 0) {
            ret = 0;
            break;
        }
    }
    LZ4F_freeDecompressionContext(z);
    return ret;
}

/* Legacy lz4 (lz4 -l, what the kernel's unlz4 reads): magic, then blocks
 * of le32 compressed size + data, each unpacking to at most 8 MiB. */
static int dec_lz4legacy(struct src *s, struct cpio *c, uint64_t *total,
                         vf_error **errp)
{
    int bound = LZ4_compressBound(LZ4_LEGACY_BLOCK);
    uint8_t *in = malloc((size_t)bound), *o = malloc(LZ4_LEGACY_BLOCK);
    int ret = -1;
    if (!in || !o) {
        error_setg(errp, "out of memory");
        goto out;
    }
    s->pos += 4;   /* the magic */
    for (;;) {
        if (src_peek(s, 4, errp) < 0)
            goto out;
        if (s->len - s->pos < 4) {
            ret = 0;   /* end of file ends the stream */
            break;
        }
        uint32_t bs = gle32(s->buf + s->pos);
        if (bs == 0x184c2102) {   /* another legacy stream follows */
            s->pos += 4;
            continue;
        }
        if (bs == 0 || bs > (uint32_t)bound) {
            ret = 0;   /* not a block size: the stream ended */
            break;
        }
        s->pos += 4;
        size_t got = 0;
        while (got < bs) {
            if (src_fill(s, errp) < 0)
                goto out;
            if (s->pos == s->len) {
                error_setg(errp, "lz4 block truncated");
                goto out;
            }
            size_t take = s->len - s->pos;
            if (take > bs - got)
                take = bs - got;
            memcpy(in + got, s->buf + s->pos, take);
            got += take;
            s->pos += take;
        }
        int n = LZ4_decompress_safe((const char *)in, (char *)o, (int)bs,
                                    LZ4_LEGACY_BLOCK);
        if (n < 0) {
            error_setg(errp, "lz4 block corrupt");
            goto out;
        }
        int fr = out_feed(c, o, (size_t)n, total, errp);
        if (fr < 0)
            goto out;
        if (fr > 0) {      /* stopped early: every driver found */
            ret = 0;
            break;
        }
    }
out:
    free(in);
    free(o);
    return ret;
}

void initrd_note_module(struct initrd_result *r, const char *mod)
{
    for (int i = 0; i < r->nwant; i++)
        if (!strcmp(r->want[i], mod))
            r->found[i] = true;
}

int initrd_scan(initrd_read_fn read, void *opaque, struct initrd_result *r,
                vf_error **errp)
{
    struct src s = { .read = read, .opaque = opaque };
    struct cpio *c = calloc(1, sizeof(*c));
    uint8_t *out = malloc(OUT_BUF);
    s.buf = malloc(SRC_BUF);
    uint64_t total = 0;
    int ret = -1;
    if (!c || !out || !s.buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (int seg = 0;; seg++) {
        /* NUL padding between segments */
        for (;;) {
            if (src_fill(&s, errp) < 0)
                goto out;
            while (s.pos < s.len && s.buf[s.pos] == 0)
                s.pos++;
            if (s.pos < s.len || s.eof)
                break;
        }
        if (s.pos == s.len) {
            ret = 0;
            break;
        }
        if (seg >= INITRD_MAX_SEGMENTS) {
            error_setg(errp, "more than %d initramfs segments",
                       INITRD_MAX_SEGMENTS);
            goto out;
        }
        if (src_peek(&s, 6, errp) < 0)
            goto out;
        const uint8_t *p = s.buf + s.pos;
        size_t avail = s.len - s.pos;
        free(c->cap);
        memset(c, 0, sizeof(*c));
        c->r = r;
        c->seg = seg;
        c->state = CP_HDR;
        const char *kind = NULL;
        int rc;
        if (avail >= 6 && !memcmp(p, "07070", 5)) {
            kind = "none";
            rc = 0;
            while (c->state != CP_DONE) {
                if (src_fill(&s, errp) < 0)
                    goto out;
                if (s.pos == s.len)
                    break;
                size_t used = cpio_feed(c, s.buf + s.pos, s.len - s.pos, true);
                s.pos += used;
                if (c->state == CP_BETWEEN && s.pos < s.len)
                    break;   /* a compressed segment follows */
            }
        } else if (avail >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e)) {
            kind = "gzip";
            rc = dec_gzip(&s, c, out, &total, errp);
        } else if (avail >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6)) {
            kind = "xz";
            rc = dec_xz(&s, c, out, &total, false, errp);
        } else if (avail >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0) {
            kind = "lzma";
            rc = dec_xz(&s, c, out, &total, true, errp);
        } else if (avail >= 4 && gle32(p) == 0xfd2fb528) {
            kind = "zstd";
            rc = dec_zstd(&s, c, out, &total, errp);
        } else if (avail >= 4 && gle32(p) == 0x184c2102) {
            kind = "lz4";
            rc = dec_lz4legacy(&s, c, &total, errp);
        } else if (avail >= 4 && gle32(p) == 0x184d2204) {
            kind = "lz4";
            rc = dec_lz4frame(&s, c, out, &total, errp);
        } else if (avail >= 3 && !memcmp(p, "BZh", 3)) {
            kind = "bzip2";
            rc = dec_bzip2(&s, c, out, &total, errp);
        } else {
            error_setg(errp, "unknown initramfs segment (bytes %02x %02x %02x "
                       "%02x)", p[0], avail > 1 ? p[1] : 0,
                       avail > 2 ? p[2] : 0, avail > 3 ? p[3] : 0);
            goto out;
        }
        if (r->nsegs < INITRD_MAX_SEGS_KEPT) {
            r->segs[r->nsegs].compression = kind;
            r->segs[r->nsegs].files = c->files;
            r->nsegs++;
        }
        if (rc < 0)
            goto out;
        if (c->err[0]) {
            error_setg(errp, "%s", c->err);
            goto out;
        }
        if (r->partial) {
            if (strcmp(kind, "none"))
                r->compression = kind;
            ret = 0;
            break;
        }
        if (c->state != CP_BETWEEN && c->state != CP_DONE && c->files) {
            error_setg(errp, "cpio archive truncated (no trailer)");
            goto out;
        }
        if (strcmp(kind, "none"))
            r->compression = kind;
    }
out:
    if (c)
        free(c->cap);
    free(c);
    free(out);
    free(s.buf);
    return ret;
}

struct mem_src {
    const uint8_t *p;
    size_t len, pos;
};

static long mem_read(void *opaque, void *buf, size_t len, vf_error **errp)
{
    struct mem_src *m = opaque;
    size_t n = m->len - m->pos < len ? m->len - m->pos : len;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return (long)n;
}

int initramfs_scan_buf(const uint8_t *data, size_t len,
                       struct json_object *result, vf_error **errp)
{
    struct mem_src m = { data, len, 0 };
    struct initrd_result r;
    memset(&r, 0, sizeof(r));
    int ret = initrd_scan(mem_read, &m, &r, errp);
    jset_int(result, "files", (int64_t)r.files);
    return ret;
}
