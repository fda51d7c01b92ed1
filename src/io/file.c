/*
 * file.c: the local-file backend: pread/pwrite, SEEK_DATA/SEEK_HOLE for
 * extents, FALLOC_FL_PUNCH_HOLE for zeroing, fallocate for reservation.
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_pread(struct io *io, void *buf, size_t len, uint64_t off,
                      vf_error **errp)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(io->fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            error_setg_errno(errp, errno, "read at 0x%llx failed",
                             (unsigned long long)off);
            return -1;
        }
        if (r == 0) {            /* past the end: zeros */
            memset(p, 0, len);
            return 0;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

/* With early writeback, every this many bytes written start writeback of
 * the whole file (asynchronously), as nbdcopy does: the disk works while
 * we copy, and the fsync at the end waits for little. */
#define FILE_WRITEBACK_STEP (64u << 20)

struct file_priv {
    atomic_uint_fast64_t dirty;
};

static void file_kick_writeback(struct io *io, size_t len)
{
    struct file_priv *fp = io->priv;
    uint64_t d = atomic_fetch_add(&fp->dirty, len) + len;
    if (d >= FILE_WRITEBACK_STEP &&
        atomic_compare_exchange_strong(&fp->dirty, &d, 0))
        sync_file_range(io->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int file_pwrite(struct io *io, const void *buf, size_t len,
                       uint64_t off, vf_error **errp)
{
    if (io->early_writeback)
        file_kick_writeback(io, len);
    const uint8_t *p = buf;
    while (len) {
        ssize_t r = pwrite(io->fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            error_setg_errno(errp, errno, "write at 0x%llx failed",
                             (unsigned long long)off);
            return -1;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

static int64_t file_size(struct io *io, vf_error **errp)
{
    struct stat st;
    if (fstat(io->fd, &st) < 0) {
        error_setg_errno(errp, errno, "stat failed");
        return -1;
    }
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(io->fd, 0, SEEK_END);
        if (end < 0) {
            error_setg_errno(errp, errno, "cannot size block device");
            return -1;
        }
        return end;
    }
    return st.st_size;
}

static int file_truncate(struct io *io, uint64_t size, vf_error **errp)
{
    if (ftruncate(io->fd, (off_t)size) < 0) {
        error_setg_errno(errp, errno, "cannot resize to %llu bytes",
                         (unsigned long long)size);
        return -1;
    }
    return 0;
}

static int file_write_zeros(struct io *io, uint64_t off, uint64_t len,
                            vf_error **errp)
{
    static const uint8_t zeros[65536];
    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        if (file_pwrite(io, zeros, n, off, errp) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

static int file_punch(struct io *io, uint64_t off, uint64_t len,
                      vf_error **errp)
{
    if (fallocate(io->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
        error_setg_errno(errp, errno, "cannot punch hole at 0x%llx",
                         (unsigned long long)off);
        return -1;
    }
    if (fallocate(io->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
        return 0;
    return file_write_zeros(io, off, len, errp);
}

static int file_falloc(struct io *io, uint64_t off, uint64_t len,
                       vf_error **errp)
{
    int r = posix_fallocate(io->fd, (off_t)off, (off_t)len);
    if (r) {
        error_setg_errno(errp, r, "cannot allocate %llu bytes at 0x%llx",
                         (unsigned long long)len, (unsigned long long)off);
        return -1;
    }
    return 0;
}

static int file_extent(struct io *io, uint64_t off, uint64_t *len,
                       bool *is_data, vf_error **errp)
{
    int64_t sz = file_size(io, errp);
    if (sz < 0)
        return -1;
    if (off >= (uint64_t)sz) {
        *len = 0;
        *is_data = false;
        return 0;
    }
    off_t d = lseek(io->fd, (off_t)off, SEEK_DATA);
    if (d < 0) {
        if (errno == ENXIO) {          /* only a hole up to the end */
            *is_data = false;
            *len = (uint64_t)sz - off;
            return 0;
        }
        /* SEEK_DATA unsupported: everything is data */
        *is_data = true;
        *len = (uint64_t)sz - off;
        return 0;
    }
    if ((uint64_t)d > off) {
        *is_data = false;
        *len = (uint64_t)d - off;
        return 0;
    }
    off_t h = lseek(io->fd, (off_t)off, SEEK_HOLE);
    if (h < 0 || (uint64_t)h <= off)
        h = sz;
    *is_data = true;
    *len = (uint64_t)h - off;
    return 0;
}

static int file_flush(struct io *io, vf_error **errp)
{
    if (fsync(io->fd) < 0) {
        error_setg_errno(errp, errno, "fsync failed");
        return -1;
    }
    return 0;
}

static void file_close(struct io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
    free(io->priv);
}

static const struct io_ops file_ops = {
    .pread = file_pread,
    .pwrite = file_pwrite,
    .size = file_size,
    .truncate = file_truncate,
    .punch = file_punch,
    .falloc = file_falloc,
    .extent = file_extent,
    .flush = file_flush,
    .close = file_close,
};

static struct io *file_wrap(int fd, const char *path, bool readonly,
                            vf_error **errp)
{
    struct io *io = calloc(1, sizeof(*io));
    struct file_priv *fp = calloc(1, sizeof(*fp));
    if (!io || !fp || !(io->name = strdup(path))) {
        free(io);
        free(fp);
        close(fd);
        error_setg(errp, "out of memory");
        return NULL;
    }
    atomic_init(&fp->dirty, 0);
    io->ops = &file_ops;
    io->priv = fp;
    io->fd = fd;
    io->readonly = readonly;
    return io;
}

struct io *io_file_open(const char *path, bool readonly, vf_error **errp)
{
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        error_setg(errp, "is a directory");
        return NULL;
    }
    if (readonly)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return file_wrap(fd, path, readonly, errp);
}

struct io *io_file_create(const char *path, vf_error **errp)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create");
        return NULL;
    }
    return file_wrap(fd, path, false, errp);
}
