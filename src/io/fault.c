/*
 * fault.c: a filter that fails the Nth I/O call with EIO (SQLite-style
 * fault injection), to prove that a failing write leaves no output that
 * looks finished.
 */
#include "io/io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct fault {
    struct io *inner;
    uint64_t nth;
    bool sticky;
    atomic_uint_fast64_t calls;
};

/* true when this call is the one (or one after it, when sticky) to fail */
static bool fault_hit(struct io *io, vf_error **errp)
{
    struct fault *f = io->priv;
    uint64_t n = atomic_fetch_add(&f->calls, 1) + 1;
    if (n == f->nth || (f->sticky && n > f->nth)) {
        error_setg_errno(errp, EIO, "injected fault on I/O call %llu",
                         (unsigned long long)n);
        return true;
    }
    return false;
}

static int fault_pread(struct io *io, void *buf, size_t len, uint64_t off,
                       vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_pread(f->inner, buf, len, off, errp);
}

static int fault_pwrite(struct io *io, const void *buf, size_t len,
                        uint64_t off, vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_pwrite(f->inner, buf, len, off, errp);
}

static int64_t fault_size(struct io *io, vf_error **errp)
{
    struct fault *f = io->priv;
    return io_size(f->inner, errp);
}

static int fault_truncate(struct io *io, uint64_t size, vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_truncate(f->inner, size, errp);
}

static int fault_punch(struct io *io, uint64_t off, uint64_t len,
                       vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_punch(f->inner, off, len, errp);
}

static int fault_falloc(struct io *io, uint64_t off, uint64_t len,
                        vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_falloc(f->inner, off, len, errp);
}

static int fault_extent(struct io *io, uint64_t off, uint64_t *len,
                        bool *is_data, vf_error **errp)
{
    struct fault *f = io->priv;
    return io_extent(f->inner, off, len, is_data, errp);
}

static int fault_flush(struct io *io, vf_error **errp)
{
    struct fault *f = io->priv;
    return fault_hit(io, errp) ? -1 : io_flush(f->inner, errp);
}

static void fault_close(struct io *io)
{
    struct fault *f = io->priv;
    if (!f)
        return;
    io_close(f->inner);
    free(f);
}

static const struct io_ops fault_ops = {
    .pread = fault_pread,
    .pwrite = fault_pwrite,
    .size = fault_size,
    .truncate = fault_truncate,
    .punch = fault_punch,
    .falloc = fault_falloc,
    .extent = fault_extent,
    .flush = fault_flush,
    .close = fault_close,
};

struct io *io_fault_new(struct io *inner, uint64_t nth, bool sticky)
{
    struct io *io = calloc(1, sizeof(*io));
    struct fault *f = calloc(1, sizeof(*f));
    if (!io || !f || !(io->name = strdup(inner->name))) {
        free(io);
        free(f);
        return NULL;
    }
    f->inner = inner;
    f->nth = nth;
    f->sticky = sticky;
    atomic_init(&f->calls, 0);
    io->ops = &fault_ops;
    io->priv = f;
    io->fd = -1;
    io->readonly = inner->readonly;
    return io;
}
