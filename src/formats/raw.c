/*
 * raw.c: the raw format: the guest disk is the file.  Sparse-aware: block
 * status comes from SEEK_DATA/SEEK_HOLE, zeroing punches holes.  Probed
 * last, it takes whatever no other driver claims.
 */
#include "formats/format.h"

#include <string.h>

static int raw_probe(const struct probe_data *d)
{
    return 1;    /* anything is a raw disk, but everything else wins */
}

static int raw_open(struct blk *b, vf_error **errp)
{
    int64_t sz = io_size(b->file, errp);
    if (sz < 0)
        return -1;
    b->size = (uint64_t)sz;
    return 0;
}

static void raw_close(struct blk *b)
{
}

static int raw_create(struct blk *b, const struct fmt_create_opts *o,
                      vf_error **errp)
{
    const char *pa = opts_get(o->o, "preallocation");
    if (io_truncate(b->file, o->size, errp) < 0)
        return -1;
    if (pa && !strcmp(pa, "falloc")) {
        if (io_falloc(b->file, 0, o->size, errp) < 0)
            return -1;
    } else if (pa && !strcmp(pa, "full")) {
        static const uint8_t zeros[1 << 16];
        for (uint64_t off = 0; off < o->size;) {
            size_t n = o->size - off < sizeof(zeros) ? (size_t)(o->size - off)
                                                     : sizeof(zeros);
            if (io_pwrite(b->file, zeros, n, off, errp) < 0)
                return -1;
            off += n;
        }
    } else if (pa && strcmp(pa, "off")) {
        error_setg(errp, "invalid preallocation mode '%s'", pa);
        return -1;
    }
    b->size = o->size;
    b->zero_init = true;
    return 0;
}

static int raw_pread(struct blk *b, void *buf, uint64_t off, size_t len,
                     vf_error **errp)
{
    return io_pread(b->file, buf, len, off, errp);
}

static int raw_pwrite(struct blk *b, const void *buf, uint64_t off,
                      size_t len, vf_error **errp)
{
    return io_pwrite(b->file, buf, len, off, errp);
}

static int raw_zero(struct blk *b, uint64_t off, uint64_t len,
                    vf_error **errp)
{
    return io_punch(b->file, off, len, errp);
}

static int raw_block_status(struct blk *b, uint64_t off, uint64_t len,
                            uint64_t *pnum, uint64_t *host_off,
                            vf_error **errp)
{
    uint64_t n;
    bool data;
    if (io_extent(b->file, off, &n, &data, errp) < 0)
        return -1;
    if (n == 0 || n > len)   /* past the file's end (a grown blk): zeros */
        n = len;
    *pnum = n;
    *host_off = off;
    return data ? BLK_DATA : BLK_ZERO;
}

static int raw_measure(const struct fmt_create_opts *o, struct blk *src,
                       uint64_t *required, uint64_t *fully, vf_error **errp)
{
    *required = o->size;
    *fully = o->size;
    return 0;
}

static int raw_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    if (io_truncate(b->file, new_size, errp) < 0)
        return -1;
    b->size = new_size;
    return 0;
}

const struct fmt_driver fmt_raw = {
    .name = "raw",
    .desc = "raw disk image (sparse-aware)",
    .flags = FMT_F_PARALLEL_WRITE,
    .probe = raw_probe,
    .open = raw_open,
    .close = raw_close,
    .create = raw_create,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .zero = raw_zero,
    .block_status = raw_block_status,
    .measure = raw_measure,
    .resize = raw_resize,
};
