/*
 * ext.c: ext2/3/4 read through libext2fs with an io_manager of our own,
 * backed by a guest block device (struct gdev: a partition or LV of any
 * image format), read-only, with no temporary raw copy; and the "guest
 * view" of one OS's file tree across its mounted filesystems.
 *
 * libext2fs' io_manager contract (e2fsprogs lib/ext2fs/ext2_io.h,
 * unix_io.c as the model): read_blk64(count) reads count blocks, or
 * -count bytes when count is negative.  We refuse writes: inspection
 * never modifies the source.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "guest/ext-int.h"
#include "guest/guest.h"

/* One read through the io_manager: libext2fs asks for group descriptor
 * tables and bitmaps in one go; 64 MiB is far above what any of those is
 * for the filesystems we inspect, and stops a hostile count. */
#define GIO_MAX_READ (64u << 20)
/* A small cache of recently read blocks: libext2fs re-reads directory
 * and extent blocks, and every read through a compressed format costs. */
#define GIO_CACHE 64

struct gio {
    struct gdev *dev;
    struct {
        uint64_t blk;
        int bs;
        uint64_t stamp;
        uint8_t *data;
    } cache[GIO_CACHE];
    uint64_t clock;
    vf_error *last_err;        /* why the last write failed */
};


static struct struct_io_manager gio_manager;

static errcode_t gio_open(const char *name, int flags, io_channel *channel)
{
    struct gdev *dev = NULL;
    if (sscanf(name, "gdev:%p", (void **)&dev) != 1 || !dev)
        return EXT2_ET_BAD_DEVICE_NAME;
    io_channel ch = calloc(1, sizeof(*ch));
    struct gio *g = calloc(1, sizeof(*g));
    if (!ch || !g) {
        free(ch);
        free(g);
        return EXT2_ET_NO_MEMORY;
    }
    g->dev = dev;
    ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    ch->manager = &gio_manager;
    ch->name = strdup(name);
    ch->block_size = 1024;
    ch->refcount = 1;
    ch->private_data = g;
    *channel = ch;
    return 0;
}

static errcode_t gio_close(io_channel ch)
{
    if (--ch->refcount > 0)
        return 0;
    struct gio *g = ch->private_data;
    for (int i = 0; i < GIO_CACHE; i++)
        free(g->cache[i].data);
    error_free(g->last_err);
    free(g);
    free(ch->name);
    free(ch);
    return 0;
}

static errcode_t gio_set_blksize(io_channel ch, int bs)
{
    ch->block_size = bs;
    return 0;
}

static errcode_t gio_read64(io_channel ch, unsigned long long block,
                            int count, void *data)
{
    struct gio *g = ch->private_data;
    uint64_t len = count < 0 ? (uint64_t)(-(int64_t)count)
                             : (uint64_t)count * (uint64_t)ch->block_size;
    if (len > GIO_MAX_READ)
        return EXT2_ET_SHORT_READ;
    if (block > UINT64_MAX / (uint64_t)ch->block_size)
        return EXT2_ET_LLSEEK_FAILED;
    uint64_t off = block * (uint64_t)ch->block_size;
    bool one = count == 1;
    if (one) {
        for (int i = 0; i < GIO_CACHE; i++) {
            if (g->cache[i].data && g->cache[i].blk == block &&
                g->cache[i].bs == ch->block_size) {
                memcpy(data, g->cache[i].data, len);
                g->cache[i].stamp = ++g->clock;
                return 0;
            }
        }
    }
    /* Beyond the device's end reads as zeros (a truncated image). */
    memset(data, 0, len);
    if (off < g->dev->size) {
        uint64_t n = len < g->dev->size - off ? len : g->dev->size - off;
        vf_error *err = NULL;
        if (gdev_pread(g->dev, data, off, (size_t)n, &err) < 0) {
            error_free(err);
            return EXT2_ET_SHORT_READ;
        }
    }
    if (one) {
        int v = 0;
        for (int i = 1; i < GIO_CACHE; i++)
            if (g->cache[i].stamp < g->cache[v].stamp)
                v = i;
        if (g->cache[v].bs != ch->block_size) {
            free(g->cache[v].data);
            g->cache[v].data = malloc(len);
        }
        if (g->cache[v].data) {
            memcpy(g->cache[v].data, data, len);
            g->cache[v].blk = block;
            g->cache[v].bs = ch->block_size;
            g->cache[v].stamp = ++g->clock;
        }
    }
    return 0;
}

static errcode_t gio_read(io_channel ch, unsigned long block, int count,
                          void *data)
{
    return gio_read64(ch, block, count, data);
}

/* Writes reach the device only when it is writable (an overlay or an
 * --in-place image: gdev_pwrite refuses otherwise); cached blocks they
 * overlap are dropped. */
static errcode_t gio_write64(io_channel ch, unsigned long long block,
                             int count, const void *data)
{
    struct gio *g = ch->private_data;
    uint64_t len = count < 0 ? (uint64_t)(-(int64_t)count)
                             : (uint64_t)count * (uint64_t)ch->block_size;
    if (len > GIO_MAX_READ)
        return EXT2_ET_SHORT_WRITE;
    if (block > UINT64_MAX / (uint64_t)ch->block_size)
        return EXT2_ET_LLSEEK_FAILED;
    uint64_t off = block * (uint64_t)ch->block_size;
    for (int i = 0; i < GIO_CACHE; i++) {
        uint64_t co = g->cache[i].blk * (uint64_t)g->cache[i].bs;
        if (g->cache[i].data && co < off + len &&
            off < co + (uint64_t)g->cache[i].bs) {
            free(g->cache[i].data);
            g->cache[i].data = NULL;
            g->cache[i].bs = 0;
        }
    }
    vf_error *err = NULL;
    if (gdev_pwrite(g->dev, data, off, (size_t)len, &err) < 0) {
        g->last_err = err;
        return EXT2_ET_SHORT_WRITE;
    }
    return 0;
}

static errcode_t gio_write(io_channel ch, unsigned long block, int count,
                           const void *data)
{
    return gio_write64(ch, block, count, data);
}

static errcode_t gio_flush(io_channel ch)
{
    return 0;
}

static errcode_t gio_set_option(io_channel ch, const char *opt,
                                const char *arg)
{
    return EXT2_ET_INVALID_ARGUMENT;
}

static struct struct_io_manager gio_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "vmferry guest device",
    .open = gio_open,
    .close = gio_close,
    .set_blksize = gio_set_blksize,
    .read_blk = gio_read,
    .write_blk = gio_write,
    .flush = gio_flush,
    .set_option = gio_set_option,
    .read_blk64 = gio_read64,
    .write_blk64 = gio_write64,
};

static pthread_once_t gfs_once = PTHREAD_ONCE_INIT;

/* So error_message() names libext2fs' errors (once: the table is a
 * process-wide list). */
static void gfs_init_errors(void)
{
    initialize_ext2_error_table();
}

struct gfs *gfs_open(struct gdev *d, vf_error **errp)
{
    return gfs_open_flags(d, false, errp);
}

struct gfs *gfs_open_flags(struct gdev *d, bool rw, vf_error **errp)
{
    char name[64];
    pthread_once(&gfs_once, gfs_init_errors);
    ext2_filsys fs = NULL;
    snprintf(name, sizeof(name), "gdev:%p", (void *)d);
    /* read-only inspection tolerates bad checksums; an edit does not */
    errcode_t e = ext2fs_open2(name, NULL,
                               EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP |
                               (rw ? EXT2_FLAG_RW
                                   : EXT2_FLAG_IGNORE_CSUM_ERRORS),
                               0, 0, &gio_manager, &fs);
    if (e) {
        error_setg(errp, "%s: ext filesystem cannot be opened: %s",
                   d->name, error_message(e));
        return NULL;
    }
    struct gfs *g = calloc(1, sizeof(*g));
    if (!g) {
        ext2fs_close_free(&fs);
        error_setg(errp, "out of memory");
        return NULL;
    }
    g->fs = fs;
    g->dev = d;
    g->rw = rw;
    return g;
}

void gfs_close(struct gfs *g)
{
    if (!g)
        return;
    if (g->rw) {
        /* an unflushed read-write fs is dropped, not written: the caller
         * flushes (gfs_flush) when its edits are whole */
        ext2fs_free(g->fs);
    } else {
        ext2fs_close_free(&g->fs);
    }
    free(g);
}

const char *gfs_io_error(struct gfs *g)
{
    struct gio *io = g->fs->io->private_data;
    return io->last_err ? error_msg(io->last_err) : NULL;
}

/* Which filesystem of v holds path, and the path inside it. */
struct gfs *gview_pick(struct gview *v, const char *path,
                              const char **rest)
{
    int best = -1;
    size_t blen = 0;
    for (int i = 0; i < v->n; i++) {
        const char *mp = v->m[i].mp;
        size_t l = strlen(mp);
        if (!strcmp(mp, "/"))
            l = 0;
        if (!strncmp(path, mp, l) && (path[l] == '/' || path[l] == 0) &&
            (best < 0 || l > blen)) {
            best = i;
            blen = l;
        }
    }
    if (best < 0)
        return NULL;
    *rest = path[blen] ? path + blen : "/";
    return v->m[best].fs;
}

int gview_ino(struct gview *v, const char *path, bool follow,
                     struct gfs **gp, ext2_ino_t *ino)
{
    const char *rest;
    struct gfs *g = gview_pick(v, path, &rest);
    if (!g)
        return -1;
    errcode_t e;
    if (follow)
        e = ext2fs_namei_follow(g->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, rest, ino);
    else
        e = ext2fs_namei(g->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, rest, ino);
    if (e)
        return -1;
    *gp = g;
    return 0;
}

static enum gtype mode_type(uint16_t mode)
{
    if (LINUX_S_ISREG(mode))
        return GT_FILE;
    if (LINUX_S_ISDIR(mode))
        return GT_DIR;
    if (LINUX_S_ISLNK(mode))
        return GT_LINK;
    return GT_OTHER;
}

enum gtype gview_stat(struct gview *v, const char *path, uint64_t *size)
{
    struct gfs *g;
    ext2_ino_t ino;
    struct ext2_inode inode;
    if (gview_ino(v, path, true, &g, &ino) < 0 ||
        ext2fs_read_inode(g->fs, ino, &inode))
        return GT_NONE;
    if (size)
        *size = EXT2_I_SIZE(&inode);
    return mode_type(inode.i_mode);
}

enum gtype gview_lstat(struct gview *v, const char *path)
{
    struct gfs *g;
    ext2_ino_t ino;
    struct ext2_inode inode;
    if (gview_ino(v, path, false, &g, &ino) < 0 ||
        ext2fs_read_inode(g->fs, ino, &inode))
        return GT_NONE;
    return mode_type(inode.i_mode);
}

struct gfile *gview_open(struct gview *v, const char *path, vf_error **errp)
{
    struct gfs *g;
    ext2_ino_t ino;
    ext2_file_t f;
    if (gview_ino(v, path, true, &g, &ino) < 0) {
        error_setg(errp, "%s: not found", path);
        return NULL;
    }
    errcode_t e = ext2fs_file_open(g->fs, ino, 0, &f);
    if (e) {
        error_setg(errp, "%s: cannot open: %s", path, error_message(e));
        return NULL;
    }
    struct gfile *gf = calloc(1, sizeof(*gf));
    if (!gf) {
        ext2fs_file_close(f);
        error_setg(errp, "out of memory");
        return NULL;
    }
    gf->gfs = g;
    gf->f = f;
    struct ext2_inode *inode = ext2fs_file_get_inode(f);
    gf->size = EXT2_I_SIZE(inode);
    /* Files in extents (not inline data) skip libext2fs' block-at-a-time
     * file reads; without a handle gfile_read falls back to them. */
    if ((inode->i_flags & EXT4_EXTENTS_FL) &&
        !(inode->i_flags & EXT4_INLINE_DATA_FL) &&
        ext2fs_extent_open2(g->fs, ino, inode, &gf->eh))
        gf->eh = NULL;
    return gf;
}

/* Read len bytes at f->pos from a file in extents: each mapped run is one
 * read of the device, holes and unwritten extents read as zeros.  A
 * hostile extent (past the filesystem, or a tree libext2fs refuses) is an
 * error naming the block. */
static long gfile_read_extents(struct gfile *f, uint8_t *buf, size_t len,
                               vf_error **errp)
{
    ext2_filsys fs = f->gfs->fs;
    uint64_t bs = fs->blocksize;
    size_t done = 0;
    if (f->pos >= f->size)
        return 0;
    if (len > f->size - f->pos)
        len = (size_t)(f->size - f->pos);
    while (done < len) {
        uint64_t lblk = f->pos / bs, boff = f->pos % bs;
        size_t want = len - done;
        struct ext2fs_extent ex;
        bool mapped = false;
        uint64_t run_end = lblk + 1;   /* of a hole: one block at a time */
        errcode_t e = lblk > 0xffffffffu ? EXT2_ET_EXTENT_NOT_FOUND
                                          : ext2fs_extent_goto2(f->eh, 0,
                                                                (blk64_t)lblk);
        if (!e && !ext2fs_extent_get(f->eh, EXT2_EXTENT_CURRENT, &ex) &&
            ex.e_lblk <= lblk && lblk - ex.e_lblk < ex.e_len) {
            run_end = ex.e_lblk + ex.e_len;
            mapped = !(ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT);
        } else if (e && e != EXT2_ET_EXTENT_NOT_FOUND) {
            error_setg(errp, "reading the extent tree at block %llu: %s",
                       (unsigned long long)lblk, error_message(e));
            return -1;
        }
        uint64_t avail = (run_end - lblk) * bs - boff;
        if (want > avail)
            want = (size_t)avail;
        if (!mapped) {
            memset(buf + done, 0, want);
        } else {
            uint64_t pblk = ex.e_pblk + (lblk - ex.e_lblk);
            if (pblk >= ext2fs_blocks_count(fs->super) ||
                run_end - lblk > ext2fs_blocks_count(fs->super) - pblk) {
                error_setg(errp, "extent at file block %llu points past the "
                           "filesystem (block %llu)",
                           (unsigned long long)lblk, (unsigned long long)pblk);
                return -1;
            }
            uint64_t off = pblk * bs + boff;
            /* beyond the device's end reads as zeros, as in gio_read64 */
            size_t n = 0;
            if (off < f->gfs->dev->size)
                n = f->gfs->dev->size - off < want
                        ? (size_t)(f->gfs->dev->size - off) : want;
            if (n && gdev_pread(f->gfs->dev, buf + done, off, n, errp) < 0)
                return -1;
            memset(buf + done + n, 0, want - n);
        }
        done += want;
        f->pos += want;
    }
    return (long)done;
}

long gfile_read(struct gfile *f, void *buf, size_t len, vf_error **errp)
{
    unsigned int got = 0;
    if (len > (1u << 30))
        len = 1u << 30;
    if (f->eh)
        return gfile_read_extents(f, buf, len, errp);
    errcode_t e = ext2fs_file_read(f->f, buf, (unsigned)len, &got);
    if (e) {
        error_setg(errp, "file read failed: %s", error_message(e));
        return -1;
    }
    return (long)got;
}

uint64_t gfile_size(struct gfile *f)
{
    return f->size;
}

void gfile_close(struct gfile *f)
{
    if (!f)
        return;
    if (f->eh)
        ext2fs_extent_free(f->eh);
    ext2fs_file_close(f->f);
    free(f);
}

int gview_read(struct gview *v, const char *path, size_t max, char **out,
               size_t *len, vf_error **errp)
{
    *out = NULL;
    struct gfile *f = gview_open(v, path, errp);
    if (!f)
        return -1;
    if (f->size > max) {
        error_setg(errp, "%s: size %llu above the limit of %zu bytes", path,
                   (unsigned long long)f->size, max);
        gfile_close(f);
        return -1;
    }
    char *buf = malloc((size_t)f->size + 1);
    if (!buf) {
        error_setg(errp, "%s: out of memory", path);
        gfile_close(f);
        return -1;
    }
    size_t got = 0;
    while (got < f->size) {
        long n = gfile_read(f, buf + got, (size_t)f->size - got, errp);
        if (n < 0) {
            error_prepend(errp, "%s: ", path);
            free(buf);
            gfile_close(f);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    gfile_close(f);
    *out = buf;
    if (len)
        *len = got;
    return 0;
}

char *gview_readlink(struct gview *v, const char *path)
{
    struct gfs *g;
    ext2_ino_t ino;
    struct ext2_inode inode;
    if (gview_ino(v, path, false, &g, &ino) < 0 ||
        ext2fs_read_inode(g->fs, ino, &inode) ||
        !LINUX_S_ISLNK(inode.i_mode))
        return NULL;
    uint64_t sz = EXT2_I_SIZE(&inode);
    if (sz == 0 || sz > 4096)    /* PATH_MAX: longer is not a link Linux
                                    would follow */
        return NULL;
    char *buf = calloc(1, (size_t)sz + 1);
    if (!buf)
        return NULL;
    if (ext2fs_is_fast_symlink(&inode)) {
        if (sz >= sizeof(inode.i_block)) {
            free(buf);
            return NULL;
        }
        memcpy(buf, inode.i_block, (size_t)sz);
    } else if (inode.i_flags & EXT4_INLINE_DATA_FL) {
        size_t n = (size_t)sz;
        char tmp[4096 + 64];
        if (ext2fs_inline_data_get(g->fs, ino, &inode, tmp, &n) || n > sz) {
            free(buf);
            return NULL;
        }
        memcpy(buf, tmp, n);
    } else {
        ext2_file_t f;
        unsigned got = 0;
        if (ext2fs_file_open(g->fs, ino, 0, &f)) {
            free(buf);
            return NULL;
        }
        ext2fs_file_read(f, buf, (unsigned)sz, &got);
        ext2fs_file_close(f);
        buf[got] = 0;
    }
    return buf;
}

struct list_ctx {
    size_t max, n;
    int (*fn)(const char *, enum gtype, void *);
    void *opaque;
    bool capped, stopped;
};

static int list_cb(struct ext2_dir_entry *de, int offset, int blocksize,
                   char *buf, void *priv)
{
    struct list_ctx *c = priv;
    char name[256];
    int nl = ext2fs_dirent_name_len(de);
    memcpy(name, de->name, (size_t)nl);
    name[nl] = 0;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return 0;
    if (c->n >= c->max) {
        c->capped = true;
        return DIRENT_ABORT;
    }
    c->n++;
    enum gtype t = GT_OTHER;
    switch (ext2fs_dirent_file_type(de)) {
    case EXT2_FT_REG_FILE: t = GT_FILE; break;
    case EXT2_FT_DIR: t = GT_DIR; break;
    case EXT2_FT_SYMLINK: t = GT_LINK; break;
    default: break;
    }
    if (c->fn(name, t, c->opaque)) {
        c->stopped = true;
        return DIRENT_ABORT;
    }
    return 0;
}

int gview_list(struct gview *v, const char *path, size_t max,
               int (*fn)(const char *name, enum gtype t, void *opaque),
               void *opaque, vf_error **errp)
{
    struct gfs *g;
    ext2_ino_t ino;
    if (gview_ino(v, path, true, &g, &ino) < 0) {
        error_setg(errp, "%s: not found", path);
        return -1;
    }
    struct list_ctx c = { .max = max, .fn = fn, .opaque = opaque };
    errcode_t e;
    e = ext2fs_dir_iterate(g->fs, ino, 0, NULL, list_cb, &c);
    if (e) {
        error_setg(errp, "%s: cannot list: %s", path, error_message(e));
        return -1;
    }
    if (c.capped) {
        error_setg(errp, "%s: more than %zu entries", path, max);
        return -1;
    }
    return 0;
}
