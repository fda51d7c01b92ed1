/*
 * slice.c: a read-only window [off, off+len) of another io, so a disk
 * stored as a member of a container (a VMDK inside an OVA's tar) opens in
 * place, without extracting it.  Offsets are translated; reads past len
 * are zeros (io.h's rule); extents map through to the inner io.
 */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

struct slice {
    struct io *inner;
    uint64_t off;          /* where the window starts in inner */
    uint64_t len;          /* its length: the slice's size */
    bool own_inner;
};

static int slice_pread(struct io *io, void *buf, size_t len, uint64_t off,
                       vf_error **errp)
{
    struct slice *s = io->priv;
    size_t n = 0;
    if (off < s->len)
        n = s->len - off < len ? (size_t)(s->len - off) : len;
    if (n && io_pread(s->inner, buf, n, s->off + off, errp) < 0)
        return -1;
    memset((uint8_t *)buf + n, 0, len - n);
    return 0;
}

static int64_t slice_size(struct io *io, vf_error **errp)
{
    struct slice *s = io->priv;
    return (int64_t)s->len;
}

static int slice_extent(struct io *io, uint64_t off, uint64_t *len,
                        bool *is_data, vf_error **errp)
{
    struct slice *s = io->priv;
    if (off >= s->len) {
        *len = 0;
        *is_data = false;
        return 0;
    }
    uint64_t n;
    bool data;
    if (io_extent(s->inner, s->off + off, &n, &data, errp) < 0)
        return -1;
    if (n == 0) {
        /* the inner store ends inside the window: the rest reads as
         * zeros, which is a hole */
        *len = s->len - off;
        *is_data = false;
        return 0;
    }
    *len = n < s->len - off ? n : s->len - off;
    *is_data = data;
    return 0;
}

static void slice_close(struct io *io)
{
    struct slice *s = io->priv;
    if (!s)
        return;
    if (s->own_inner)
        io_close(s->inner);
    free(s);
}

static const struct io_ops slice_ops = {
    .pread = slice_pread,
    .size = slice_size,
    .extent = slice_extent,
    .close = slice_close,
};

struct io *io_slice_new(struct io *inner, uint64_t off, uint64_t len,
                        bool own_inner, const char *name)
{
    if (!inner)
        return NULL;
    /* the window must be addressable: off + len may not wrap, and the
     * size must fit io_size()'s int64_t */
    if (len > (uint64_t)INT64_MAX || off > (uint64_t)INT64_MAX - len)
        goto fail;
    struct io *io = calloc(1, sizeof(*io));
    struct slice *s = calloc(1, sizeof(*s));
    if (!io || !s || !(io->name = strdup(name ? name : inner->name))) {
        free(io);
        free(s);
        goto fail;
    }
    s->inner = inner;
    s->off = off;
    s->len = len;
    s->own_inner = own_inner;
    io->ops = &slice_ops;
    io->priv = s;
    io->readonly = true;
    io->fd = -1;    /* offsets differ from the file's: no direct access */
    return io;
fail:
    if (own_inner)
        io_close(inner);
    return NULL;
}
