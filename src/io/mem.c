/*
 * mem.c: in-memory backends: a growable zero-initialised store (tests,
 * overlays) and a read-only view of a caller's buffer (fuzzing).
 */
#include "io/io.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A memory store bigger than this is a bug or an attack, not a disk we
 * mean to hold in RAM. */
#define MEM_MAX ((uint64_t)1 << 32)

struct mem {
    uint8_t *buf;
    size_t len;
    const uint8_t *view;   /* read-only view, not owned */
    pthread_mutex_t lock;  /* a write may move buf */
};

static int mem_pread(struct io *io, void *buf, size_t len, uint64_t off,
                     vf_error **errp)
{
    struct mem *m = io->priv;
    pthread_mutex_lock(&m->lock);
    const uint8_t *src = m->view ? m->view : m->buf;
    size_t n = 0;
    if (off < m->len)
        n = m->len - off < len ? m->len - (size_t)off : len;
    if (n)
        memcpy(buf, src + off, n);
    memset((uint8_t *)buf + n, 0, len - n);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mem_resize_locked(struct mem *m, uint64_t size, vf_error **errp)
{
    if (size > MEM_MAX) {
        error_setg(errp, "memory store of %llu bytes too large",
                   (unsigned long long)size);
        return -1;
    }
    uint8_t *nb = realloc(m->buf, size ? (size_t)size : 1);
    if (!nb) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (size > m->len)
        memset(nb + m->len, 0, (size_t)size - m->len);
    m->buf = nb;
    m->len = (size_t)size;
    return 0;
}

static int mem_pwrite(struct io *io, const void *buf, size_t len,
                      uint64_t off, vf_error **errp)
{
    struct mem *m = io->priv;
    int ret = 0;
    pthread_mutex_lock(&m->lock);
    if (off > MEM_MAX || len > MEM_MAX - off) {
        error_setg(errp, "write at 0x%llx beyond memory store limit",
                   (unsigned long long)off);
        ret = -1;
    } else if (off + len > m->len) {
        ret = mem_resize_locked(m, off + len, errp);
    }
    if (!ret)
        memcpy(m->buf + off, buf, len);
    pthread_mutex_unlock(&m->lock);
    return ret;
}

static int64_t mem_size(struct io *io, vf_error **errp)
{
    struct mem *m = io->priv;
    pthread_mutex_lock(&m->lock);
    int64_t s = (int64_t)m->len;
    pthread_mutex_unlock(&m->lock);
    return s;
}

static int mem_truncate(struct io *io, uint64_t size, vf_error **errp)
{
    struct mem *m = io->priv;
    pthread_mutex_lock(&m->lock);
    int r = mem_resize_locked(m, size, errp);
    pthread_mutex_unlock(&m->lock);
    return r;
}

static void mem_close(struct io *io)
{
    struct mem *m = io->priv;
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->buf);
    free(m);
}

static const struct io_ops mem_ops = {
    .pread = mem_pread,
    .pwrite = mem_pwrite,
    .size = mem_size,
    .truncate = mem_truncate,
    .close = mem_close,
};

static struct io *mem_alloc(const char *name)
{
    struct io *io = calloc(1, sizeof(*io));
    struct mem *m = calloc(1, sizeof(*m));
    if (!io || !m || !(io->name = strdup(name ? name : "memory"))) {
        free(io);
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    io->ops = &mem_ops;
    io->priv = m;
    io->fd = -1;
    return io;
}

struct io *io_mem_new(const char *name, uint64_t size, vf_error **errp)
{
    struct io *io = mem_alloc(name);
    if (!io) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    if (mem_resize_locked(io->priv, size, errp) < 0) {
        io_close(io);
        return NULL;
    }
    return io;
}

struct io *io_mem_view(const char *name, const void *buf, size_t len)
{
    struct io *io = mem_alloc(name);
    if (!io)
        return NULL;
    struct mem *m = io->priv;
    m->view = buf;
    m->len = len;
    io->readonly = true;
    return io;
}
