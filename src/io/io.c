/*
 * io.c: the io dispatch layer (see io.h) and the core's fallbacks for
 * optional backend calls.
 */
#include "io/io.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int io_pread(struct io *io, void *buf, size_t len, uint64_t off,
             vf_error **errp)
{
    if (!len)
        return 0;
    return io->ops->pread(io, buf, len, off, errp);
}

int io_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
              vf_error **errp)
{
    if (!len)
        return 0;
    if (io->readonly || !io->ops->pwrite) {
        error_setg(errp, "%s: opened read-only", io->name);
        return -1;
    }
    return io->ops->pwrite(io, buf, len, off, errp);
}

int64_t io_size(struct io *io, vf_error **errp)
{
    return io->ops->size(io, errp);
}

int io_truncate(struct io *io, uint64_t size, vf_error **errp)
{
    if (io->readonly || !io->ops->truncate) {
        error_setg(errp, "%s: cannot resize", io->name);
        return -1;
    }
    return io->ops->truncate(io, size, errp);
}

/* Write zeros over [off, off+len) in bounded chunks. */
static int io_write_zeros(struct io *io, uint64_t off, uint64_t len,
                          vf_error **errp)
{
    static const uint8_t zeros[65536];
    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        if (io_pwrite(io, zeros, n, off, errp) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

int io_punch(struct io *io, uint64_t off, uint64_t len, vf_error **errp)
{
    if (!len)
        return 0;
    if (io->ops->punch)
        return io->ops->punch(io, off, len, errp);
    return io_write_zeros(io, off, len, errp);
}

int io_falloc(struct io *io, uint64_t off, uint64_t len, vf_error **errp)
{
    if (!len)
        return 0;
    if (io->ops->falloc)
        return io->ops->falloc(io, off, len, errp);
    int64_t sz = io_size(io, errp);
    if (sz < 0)
        return -1;
    if (off + len <= (uint64_t)sz)
        return 0;
    uint64_t start = off > (uint64_t)sz ? off : (uint64_t)sz;
    if (start > (uint64_t)sz && io_truncate(io, start, errp) < 0)
        return -1;
    return io_write_zeros(io, start, off + len - start, errp);
}

int io_extent(struct io *io, uint64_t off, uint64_t *len, bool *is_data,
              vf_error **errp)
{
    if (io->ops->extent)
        return io->ops->extent(io, off, len, is_data, errp);
    int64_t sz = io_size(io, errp);
    if (sz < 0)
        return -1;
    *is_data = true;
    *len = off < (uint64_t)sz ? (uint64_t)sz - off : 0;
    return 0;
}

int io_flush(struct io *io, vf_error **errp)
{
    if (io->ops->flush)
        return io->ops->flush(io, errp);
    return 0;
}

int io_copy(struct io *io, uint64_t dst, uint64_t src, uint64_t len,
            vf_error **errp)
{
    if (!len)
        return 0;
    if ((src < dst && len > dst - src) || (dst < src && len > src - dst) ||
        src == dst) {
        error_setg(errp, "%s: overlapping copy of 0x%" PRIx64 " bytes from "
                   "0x%" PRIx64 " to 0x%" PRIx64, io->name, len, src, dst);
        return -1;
    }
    /* 1 MiB: one VHDX/VDI block per call for the common sizes, and a
     * bounded allocation whatever len says */
    size_t cap = len < (1u << 20) ? (size_t)len : (1u << 20);
    uint8_t *buf = malloc(cap);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = 0;
    while (len && r == 0) {
        size_t n = len < cap ? (size_t)len : cap;
        r = io_pread(io, buf, n, src, errp);
        if (r == 0)
            r = io_pwrite(io, buf, n, dst, errp);
        src += n;
        dst += n;
        len -= n;
    }
    free(buf);
    return r;
}

void io_close(struct io *io)
{
    if (!io)
        return;
    if (io->ops->close)
        io->ops->close(io);
    free(io->name);
    free(io);
}
