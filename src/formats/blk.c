/*
 * blk.c: the format core.  Opens images (probing the driver), opens their
 * backing chains with loop and confinement checks, creates outputs under
 * temporary names and renames them whole, and bounds-checks guest I/O
 * before it reaches a driver.
 */
#include "formats/format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A backing chain deeper than this is a loop or an attack: real chains
 * (snapshot trees) are a few tens of links at most. */
#define BLK_MAX_CHAIN 256

/* One link of the chain being opened, to detect loops by inode. */
struct chain_seen {
    dev_t dev;
    ino_t ino;
    const struct chain_seen *prev;
};

/* Temporary output names not yet renamed, so a SIGINT/SIGTERM handler can
 * unlink them (SIGKILL leaves them, under a name that does not look
 * finished).  A fixed table: the handler may not allocate or lock. */
#define BLK_MAX_TMP 64
static _Atomic(char *) blk_tmp_paths[BLK_MAX_TMP];

static void blk_tmp_register(char *path)
{
    for (int i = 0; i < BLK_MAX_TMP; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&blk_tmp_paths[i], &expected,
                                           path))
            return;
    }
}

static void blk_tmp_forget(char *path)
{
    for (int i = 0; i < BLK_MAX_TMP; i++) {
        char *expected = path;
        if (atomic_compare_exchange_strong(&blk_tmp_paths[i], &expected,
                                           NULL))
            return;
    }
}

/* Working directories of outputs being built (a package), emptied and
 * removed by the handler too.  They hold files only. */
#define BLK_MAX_TMPDIR 8
static _Atomic(const char *) blk_tmp_dirs[BLK_MAX_TMPDIR];

void blk_tmpdir_register(const char *dir)
{
    for (int i = 0; i < BLK_MAX_TMPDIR; i++) {
        const char *expected = NULL;
        if (atomic_compare_exchange_strong(&blk_tmp_dirs[i], &expected, dir))
            return;
    }
}

void blk_tmpdir_forget(const char *dir)
{
    for (int i = 0; i < BLK_MAX_TMPDIR; i++) {
        const char *expected = dir;
        if (atomic_compare_exchange_strong(&blk_tmp_dirs[i], &expected,
                                           NULL))
            return;
    }
}

/* Empty and remove dir with async-signal-safe calls only (getdents64
 * through syscall(), unlinkat, rmdir). */
static void blk_tmpdir_remove(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096] __attribute__((aligned(8)));
    for (int rounds = 0; rounds < 1024; rounds++) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof(reclen));
            if (reclen < 20 || off + reclen > n)
                break;
            const char *name = buf + off + 19;
            if (strcmp(name, ".") && strcmp(name, ".."))
                unlinkat(fd, name, 0);
            off += reclen;
        }
    }
    close(fd);
    rmdir(dir);
}

static void blk_signal_handler(int sig)
{
    for (int i = 0; i < BLK_MAX_TMP; i++) {
        char *p = atomic_load(&blk_tmp_paths[i]);
        if (p)
            unlink(p);
    }
    for (int i = 0; i < BLK_MAX_TMPDIR; i++) {
        const char *d = atomic_load(&blk_tmp_dirs[i]);
        if (d)
            blk_tmpdir_remove(d);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void blk_cleanup_on_signals(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa = { .sa_handler = blk_signal_handler };
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static char *dir_of(const char *path)
{
    char *tmp = strdup(path);
    if (!tmp)
        return NULL;
    char *d = strdup(dirname(tmp));
    free(tmp);
    return d;
}

static const struct fmt_driver *blk_probe_io(struct io *io, const char *name,
                                             vf_error **errp)
{
    /* Probes see at most 64 KiB of head and 512 bytes of tail. */
    static _Thread_local uint8_t head[65536];
    uint8_t tail[512];
    int64_t sz = io_size(io, errp);
    if (sz < 0)
        return NULL;
    if (sz == 0) {
        error_setg(errp, "empty file, not a disk image");
        return NULL;
    }
    size_t hl = (uint64_t)sz < sizeof(head) ? (size_t)sz : sizeof(head);
    size_t tl = (uint64_t)sz < sizeof(tail) ? (size_t)sz : sizeof(tail);
    if (io_pread(io, head, hl, 0, errp) < 0 ||
        io_pread(io, tail, tl, (uint64_t)sz - tl, errp) < 0)
        return NULL;
    struct probe_data d = {
        .head = head, .head_len = hl, .tail = tail, .tail_len = tl,
        .file_size = (uint64_t)sz, .filename = name,
    };
    const struct fmt_driver *best = NULL;
    int best_score = 0;
    for (size_t i = 0; fmt_registry[i]; i++) {
        const struct fmt_driver *drv = fmt_registry[i];
        if (!drv->probe)
            continue;
        int s = drv->probe(&d);
        if (s > best_score) {
            best_score = s;
            best = drv;
        }
    }
    if (!best)
        error_setg(errp, "unknown image format");
    return best;
}

const struct fmt_driver *blk_probe_file(const char *path, vf_error **errp)
{
    struct io *io = io_file_open(path, true, errp);
    if (!io)
        return NULL;
    const struct fmt_driver *d = blk_probe_io(io, path, errp);
    io_close(io);
    return d;
}

static void blk_free(struct blk *b)
{
    if (!b)
        return;
    if (b->drv && b->drv->close && b->state)
        b->drv->close(b);
    free(b->state);
    if (!b->backing_borrowed)
        blk_free(b->backing);
    for (struct blk_outfile *o = b->outs, *n; o; o = n) {
        n = o->next;
        if (o->io != b->file)
            io_close(o->io);
        if (o->tmp_path) {
            blk_tmp_forget(o->tmp_path);
            unlink(o->tmp_path);    /* never committed */
        }
        free(o->tmp_path);
        free(o->final_path);
        free(o);
    }
    if (!b->file_borrowed)
        io_close(b->file);
    free(b->filename);
    free(b->dir);
    free(b->backing_name);
    free(b->backing_fmt);
    pthread_mutex_destroy(&b->wlock);
    free(b);
}

void blk_close(struct blk *b)
{
    blk_free(b);
}

static struct blk *blk_new(const char *name, vf_error **errp)
{
    struct blk *b = calloc(1, sizeof(*b));
    if (!b) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&b->wlock, NULL);
    b->filename = strdup(name);
    b->dir = dir_of(name);
    if (!b->filename || !b->dir) {
        blk_free(b);
        error_setg(errp, "out of memory");
        return NULL;
    }
    return b;
}

bool blk_name_is_confined(const char *name)
{
    if (name[0] == '/')
        return false;
    const char *p = name;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return false;
        if (!e)
            break;
        p = e + 1;
    }
    return true;
}

char *blk_resolve_name(struct blk *b, const char *name, vf_error **errp)
{
    if (!*name) {
        error_setg(errp, "empty file name");
        return NULL;
    }
    if (strstr(name, "://") || !strncmp(name, "json:", 5)) {
        error_setg(errp, "file name '%s' is a protocol, refused", name);
        return NULL;
    }
    if (!blk_name_is_confined(name) && !b->oopts.allow_backing_path) {
        error_setg(errp,
                   "file name '%s' outside the image's directory refused "
                   "(use --allow-backing-path)", name);
        return NULL;
    }
    char *r = NULL;
    if (name[0] == '/') {
        r = strdup(name);
    } else if (asprintf(&r, "%s/%s", b->dir, name) < 0) {
        r = NULL;
    }
    if (!r)
        error_setg(errp, "out of memory");
    return r;
}

struct io *blk_open_sibling(struct blk *b, const char *name, vf_error **errp)
{
    char *path = blk_resolve_name(b, name, errp);
    if (!path)
        return NULL;
    struct io *io = io_file_open(path, true, errp);
    if (!io)
        error_prepend(errp, "%s: ", path);
    free(path);
    return io;
}

static struct blk *blk_open_chain(struct io *io, const char *name,
                                  bool readonly,
                                  const struct blk_open_opts *oo, int depth,
                                  const struct chain_seen *seen,
                                  vf_error **errp);

/* Open b's backing chain from b->backing_name. */
static int blk_open_backing(struct blk *b, const struct chain_seen *seen,
                            vf_error **errp)
{
    if (b->depth + 1 >= BLK_MAX_CHAIN) {
        error_setg(errp, "backing chain deeper than %d images",
                   BLK_MAX_CHAIN);
        return -1;
    }
    char *path = blk_resolve_name(b, b->backing_name, errp);
    if (!path) {
        error_prepend(errp, "backing file: ");
        return -1;
    }
    struct io *io = io_file_open(path, true, errp);
    if (!io) {
        error_prepend(errp, "backing file %s: ", path);
        free(path);
        return -1;
    }
    struct blk_open_opts bo = b->oopts;
    bo.format = b->backing_fmt;
    b->backing = blk_open_chain(io, path, true, &bo, b->depth + 1, seen,
                                errp);
    free(path);
    return b->backing ? 0 : -1;
}

static struct blk *blk_open_chain(struct io *io, const char *name,
                                  bool readonly,
                                  const struct blk_open_opts *oo, int depth,
                                  const struct chain_seen *seen,
                                  vf_error **errp)
{
    struct chain_seen me = { 0 };
    if (io->fd >= 0) {
        struct stat st;
        if (fstat(io->fd, &st) == 0) {
            for (const struct chain_seen *s = seen; s; s = s->prev) {
                if (s->dev == st.st_dev && s->ino == st.st_ino) {
                    error_setg(errp, "backing chain loop at %s", name);
                    io_close(io);
                    return NULL;
                }
            }
            me.dev = st.st_dev;
            me.ino = st.st_ino;
            me.prev = seen;
        }
    }
    struct blk *b = blk_new(name, errp);
    if (!b) {
        io_close(io);
        return NULL;
    }
    b->file = io;
    b->readonly = readonly;
    b->depth = depth;
    if (oo)
        b->oopts = *oo;
    b->oopts.format = NULL;

    const struct fmt_driver *drv;
    if (oo && oo->format) {
        drv = fmt_find(oo->format);
        if (!drv) {
            error_setg(errp, "unknown format '%s'", oo->format);
            goto fail;
        }
    } else {
        drv = blk_probe_io(io, name, errp);
        if (!drv)
            goto fail;
    }
    b->drv = drv;
    b->state = calloc(1, drv->state_size ? drv->state_size : 1);
    if (!b->state) {
        error_setg(errp, "out of memory");
        goto fail;
    }
    if (drv->open(b, errp) < 0)
        goto fail;
    if (b->backing_name && !b->oopts.no_backing &&
        blk_open_backing(b, io->fd >= 0 ? &me : seen, errp) < 0)
        goto fail;
    return b;
fail:
    error_prepend(errp, "%s: ", name);
    blk_free(b);
    return NULL;
}

struct blk *blk_open_io(struct io *io, const char *name, bool readonly,
                        const struct blk_open_opts *oo, vf_error **errp)
{
    return blk_open_chain(io, name, readonly, oo, 0, NULL, errp);
}

struct blk *blk_open(const char *path, bool readonly,
                     const struct blk_open_opts *oo, vf_error **errp)
{
    struct io *io = io_file_open(path, readonly, errp);
    if (!io) {
        error_prepend(errp, "%s: ", path);
        return NULL;
    }
    /* Tests prove that an in-place change cut short at any I/O leaves a
     * consistent image: VMFERRY_TEST_CRASH_IO=N fails the Nth I/O of an
     * image opened read-write and every one after it, as a crash there
     * would. */
    const char *crash = readonly ? NULL : getenv("VMFERRY_TEST_CRASH_IO");
    if (crash && strtoull(crash, NULL, 10) > 0) {
        struct io *w = io_fault_new(io, strtoull(crash, NULL, 10), true);
        if (w)
            io = w;
    }
    return blk_open_io(io, path, readonly, oo, errp);
}

/* A temporary name beside final_path that does not look finished
 * (malloc'd, NULL when out of memory). */
static char *blk_tmp_name(const char *final_path)
{
    char *d = dir_of(final_path);
    char *tmp = strdup(final_path);
    const char *base = tmp ? basename(tmp) : NULL;
    char *tp = NULL;
    if (!d || !base ||
        asprintf(&tp, "%s/.%s.vmferry-%ld-%x.tmp", d, base, (long)getpid(),
                 (unsigned)random()) < 0)
        tp = NULL;
    free(d);
    free(tmp);
    return tp;
}

/* Create a temporary file beside final_path and register it with b. */
static struct io *blk_new_outfile(struct blk *b, const char *final_path,
                                  vf_error **errp)
{
    struct blk_outfile *o = calloc(1, sizeof(*o));
    if (!o) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    char *tp = blk_tmp_name(final_path);
    if (!tp) {
        free(o);
        error_setg(errp, "out of memory");
        return NULL;
    }
    o->io = io_file_create(tp, errp);
    if (!o->io) {
        free(tp);
        free(o);
        return NULL;
    }
    /* Tests prove that a failing write leaves nothing that looks
     * finished: VMFERRY_TEST_FAIL_IO=N fails the Nth output I/O. */
    const char *fail = getenv("VMFERRY_TEST_FAIL_IO");
    if (fail && strtoull(fail, NULL, 10) > 0) {
        struct io *w = io_fault_new(o->io, strtoull(fail, NULL, 10), true);
        if (w)
            o->io = w;
    }
    o->tmp_path = tp;
    blk_tmp_register(tp);
    o->final_path = strdup(final_path);
    if (!o->final_path) {
        blk_tmp_forget(tp);
        io_close(o->io);
        unlink(tp);
        free(tp);
        free(o);
        error_setg(errp, "out of memory");
        return NULL;
    }
    /* keep the main file first: append */
    struct blk_outfile **pp = &b->outs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = o;
    return o->io;
}

struct io *blk_create_sibling(struct blk *b, const char *name,
                              vf_error **errp)
{
    if (b->file_borrowed) {
        error_setg(errp, "output file %s: an image created on a caller's "
                   "io is one file only", name);
        return NULL;
    }
    if (!blk_name_is_confined(name)) {
        error_setg(errp, "output file name '%s' outside the directory",
                   name);
        return NULL;
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%s", b->dir, name) < 0) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    struct io *io = blk_new_outfile(b, path, errp);
    free(path);
    return io;
}

/* The driver for a new fmt image, if it can make what co asks for. */
static const struct fmt_driver *
blk_create_driver(const char *fmt, const struct fmt_create_opts *co,
                  vf_error **errp)
{
    const struct fmt_driver *drv = fmt_find(fmt);
    if (!drv) {
        error_setg(errp, "unknown format '%s'", fmt);
        return NULL;
    }
    if (!drv->create) {
        error_setg(errp, "format %s cannot be written", drv->name);
        return NULL;
    }
    if (co->backing_file && !(drv->flags & FMT_F_BACKING)) {
        error_setg(errp, "format %s does not support backing files",
                   drv->name);
        return NULL;
    }
    if (co->compress && !drv->compress) {
        error_setg(errp, "format %s does not support compression",
                   drv->name);
        return NULL;
    }
    return drv;
}

/* Lay out a new image on b->file: the driver state, the backing chain,
 * the driver's create, the -o keys all used.  0 / -1. */
static int blk_create_layout(struct blk *b, const struct fmt_create_opts *co,
                             vf_error **errp)
{
    b->state = calloc(1, b->drv->state_size ? b->drv->state_size : 1);
    if (!b->state) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (co->backing_file) {
        /* open the backing chain first: the driver may read it */
        b->backing_name = strdup(co->backing_file);
        b->backing_fmt = co->backing_fmt ? strdup(co->backing_fmt) : NULL;
        if (!b->backing_name ||
            (co->backing_fmt && !b->backing_fmt)) {
            error_setg(errp, "out of memory");
            return -1;
        }
        if (blk_open_backing(b, NULL, errp) < 0)
            return -1;
    }
    if (b->drv->create(b, co, errp) < 0)
        return -1;
    return opts_check_unused(co->o, b->drv->name, errp);
}

struct blk *blk_create(const char *path, const char *fmt,
                       const struct fmt_create_opts *co, vf_error **errp)
{
    const struct fmt_driver *drv = blk_create_driver(fmt, co, errp);
    if (!drv)
        return NULL;
    struct blk *b = blk_new(path, errp);
    if (!b)
        return NULL;
    b->drv = drv;
    b->created = true;
    /* -B names are the user's own choice: not confined */
    b->oopts.allow_backing_path = true;
    b->file = blk_new_outfile(b, path, errp);
    if (!b->file)
        goto fail;
    b->outs->io = b->file;
    if (blk_create_layout(b, co, errp) < 0)
        goto fail;
    return b;
fail:
    error_prepend(errp, "%s: ", path);
    blk_free(b);
    return NULL;
}

struct blk *blk_create_io(struct io *io, const char *name, const char *fmt,
                          const struct fmt_create_opts *co, vf_error **errp)
{
    const struct fmt_driver *drv = blk_create_driver(fmt, co, errp);
    if (!drv)
        return NULL;
    struct blk *b = blk_new(name, errp);
    if (!b)
        return NULL;
    b->drv = drv;
    b->created = true;
    b->file_borrowed = true;
    b->oopts.allow_backing_path = true;
    b->file = io;
    if (blk_create_layout(b, co, errp) < 0) {
        error_prepend(errp, "%s: ", name);
        blk_free(b);
        return NULL;
    }
    return b;
}

struct blk *blk_create_overlay(struct blk *base, const char *tmpdir,
                               vf_error **errp)
{
    const struct fmt_driver *drv = fmt_find("qcow2");
    if (!tmpdir)
        tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/var/tmp";
    char *path = NULL;
    if (!drv || asprintf(&path, "%s/vmferry-overlay-XXXXXX", tmpdir) < 0) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "%s: cannot create the overlay", path);
        free(path);
        return NULL;
    }
    close(fd);
    struct io *io = io_file_open(path, false, errp);
    unlink(path);           /* the open file is all we need */
    struct blk *b = io ? blk_new(path, errp) : NULL;
    free(path);
    if (!b) {
        io_close(io);
        return NULL;
    }
    b->drv = drv;
    b->file = io;
    b->state = calloc(1, drv->state_size);
    /* 64 KiB clusters: a 4 KiB filesystem write copies up 64 KiB of the
     * base once, and the tables stay small */
    struct opts *o = opts_parse("cluster_size=65536", errp);
    struct fmt_create_opts co = { .size = base->size, .o = o };
    if (!b->state || !o || drv->create(b, &co, errp) < 0) {
        if (!b->state)
            error_setg(errp, "out of memory");
        error_prepend(errp, "overlay over %s: ", base->filename);
        opts_free(o);
        blk_free(b);
        return NULL;
    }
    opts_free(o);
    b->backing = base;
    b->backing_borrowed = true;
    b->depth = 0;
    return b;
}

void blk_set_early_writeback(struct blk *b)
{
    for (struct blk_outfile *o = b->outs; o; o = o->next)
        o->io->early_writeback = true;
    if (!b->outs)
        b->file->early_writeback = true;
}

int blk_fsync_dir(const char *dir, vf_error **errp)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "%s: cannot open directory", dir);
        return -1;
    }
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r < 0 && e != EINVAL) {
        error_setg_errno(errp, e, "%s: cannot sync directory", dir);
        return -1;
    }
    return 0;
}

struct io *blk_tmp_create(const char *final_path, char **tmp_path,
                          vf_error **errp)
{
    char *tp = blk_tmp_name(final_path);
    if (!tp) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    struct io *io = io_file_create(tp, errp);
    if (!io) {
        error_prepend(errp, "%s: ", tp);
        free(tp);
        return NULL;
    }
    blk_tmp_register(tp);
    *tmp_path = tp;
    return io;
}

int blk_tmp_finish(char *tmp_path, const char *final_path, bool noreplace,
                   vf_error **errp)
{
    int r;
    if (noreplace) {
        r = renameat2(AT_FDCWD, tmp_path, AT_FDCWD, final_path,
                      RENAME_NOREPLACE);
        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* no RENAME_NOREPLACE here: link() never replaces either */
            r = link(tmp_path, final_path);
            if (r == 0)
                unlink(tmp_path);
        }
    } else {
        r = rename(tmp_path, final_path);
    }
    if (r < 0) {
        error_setg_errno(errp, errno, "%s: cannot %s into place",
                         final_path, noreplace ? "move a new file" : "rename");
        return -1;
    }
    blk_tmp_forget(tmp_path);
    return 0;
}

void blk_tmp_abandon(char *tmp_path)
{
    if (!tmp_path)
        return;
    blk_tmp_forget(tmp_path);
    unlink(tmp_path);
}

int blk_commit(struct blk *b, bool unsafe, vf_error **errp)
{
    if (b->drv->flush && b->drv->flush(b, errp) < 0)
        goto fail;
    if (!b->created || b->file_borrowed) {
        if (!unsafe && io_flush(b->file, errp) < 0)
            goto fail;
        return 0;
    }
    for (struct blk_outfile *o = b->outs; o; o = o->next) {
        if (!unsafe && io_flush(o->io, errp) < 0) {
            error_prepend(errp, "%s: ", o->final_path);
            return -1;
        }
    }
    for (struct blk_outfile *o = b->outs; o; o = o->next) {
        if (rename(o->tmp_path, o->final_path) < 0) {
            error_setg_errno(errp, errno, "%s: cannot rename into place",
                             o->final_path);
            return -1;
        }
        blk_tmp_forget(o->tmp_path);
        free(o->tmp_path);
        o->tmp_path = NULL;
    }
    if (!unsafe && blk_fsync_dir(b->dir, errp) < 0)
        return -1;
    return 0;
fail:
    error_prepend(errp, "%s: ", b->filename);
    return -1;
}

static int blk_check_range(struct blk *b, uint64_t off, uint64_t len,
                           vf_error **errp)
{
    if (off > b->size || len > b->size - off) {
        error_setg(errp, "%s: access at 0x%" PRIx64 "+0x%" PRIx64
                   " beyond the virtual size 0x%" PRIx64,
                   b->filename, off, len, b->size);
        return -1;
    }
    return 0;
}

int blk_pread(struct blk *b, void *buf, uint64_t off, size_t len,
              vf_error **errp)
{
    if (blk_check_range(b, off, len, errp) < 0)
        return -1;
    if (!len)
        return 0;
    if (b->drv->pread(b, buf, off, len, errp) < 0) {
        error_prepend(errp, "%s: ", b->filename);
        return -1;
    }
    return 0;
}

int blk_read_backing(struct blk *b, void *buf, uint64_t off, size_t len,
                     vf_error **errp)
{
    size_t n = 0;
    if (b->backing && off < b->backing->size) {
        n = b->backing->size - off < len ? (size_t)(b->backing->size - off)
                                         : len;
        if (blk_pread(b->backing, buf, off, n, errp) < 0)
            return -1;
    }
    memset((uint8_t *)buf + n, 0, len - n);
    return 0;
}

static bool blk_write_locked(struct blk *b)
{
    if (b->drv->flags & FMT_F_PARALLEL_WRITE)
        return false;
    pthread_mutex_lock(&b->wlock);
    return true;
}

int blk_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
               vf_error **errp)
{
    if (blk_check_range(b, off, len, errp) < 0)
        return -1;
    if (!b->drv->pwrite) {
        error_setg(errp, "%s: format %s is read-only", b->filename,
                   b->drv->name);
        return -1;
    }
    if (!len)
        return 0;
    bool l = blk_write_locked(b);
    int r = b->drv->pwrite(b, buf, off, len, errp);
    if (l)
        pthread_mutex_unlock(&b->wlock);
    if (r < 0)
        error_prepend(errp, "%s: ", b->filename);
    return r;
}

int blk_write_zeros(struct blk *b, uint64_t off, uint64_t len,
                    vf_error **errp)
{
    static const uint8_t zeros[65536];
    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        if (b->drv->pwrite(b, zeros, off, n, errp) < 0)
            return -1;
        off += n;
        len -= n;
    }
    return 0;
}

int blk_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp)
{
    if (blk_check_range(b, off, len, errp) < 0)
        return -1;
    if (!len)
        return 0;
    if (!b->drv->pwrite) {
        error_setg(errp, "%s: format %s is read-only", b->filename,
                   b->drv->name);
        return -1;
    }
    bool l = blk_write_locked(b);
    int r = b->drv->zero ? b->drv->zero(b, off, len, errp)
                         : blk_write_zeros(b, off, len, errp);
    if (l)
        pthread_mutex_unlock(&b->wlock);
    if (r < 0)
        error_prepend(errp, "%s: ", b->filename);
    return r;
}

int blk_block_status(struct blk *b, uint64_t off, uint64_t len,
                     uint64_t *pnum, uint64_t *host_off, vf_error **errp)
{
    uint64_t dummy;
    if (!host_off)
        host_off = &dummy;
    *host_off = UINT64_MAX;
    if (off >= b->size) {
        *pnum = 0;
        return BLK_UNALLOC;
    }
    if (len > b->size - off)
        len = b->size - off;
    if (!b->drv->block_status) {
        *pnum = len;
        return BLK_DATA;
    }
    int s = b->drv->block_status(b, off, len, pnum, host_off, errp);
    if (s < 0) {
        error_prepend(errp, "%s: ", b->filename);
        return -1;
    }
    if (*pnum == 0 || *pnum > len) {
        error_setg(errp, "%s: driver %s returned a bad block status length",
                   b->filename, b->drv->name);
        return -1;
    }
    /* Allocated blocks whose bytes are a hole of a sparse container file
     * (qemu-img leaves the zero parts of VHDX, VHD and VDI blocks
     * unwritten) read as zeros: say so, and they are never read. */
    if (s == BLK_DATA && *host_off != UINT64_MAX &&
        (b->drv->flags & FMT_F_HOST_IN_FILE)) {
        uint64_t n = *pnum;
        bool data;
        if (io_extent(b->file, *host_off, &n, &data, errp) < 0) {
            error_prepend(errp, "%s: ", b->filename);
            return -1;
        }
        if (n > 0) {
            if (n < *pnum)
                *pnum = n;
            if (!data) {
                *host_off = UINT64_MAX;
                return BLK_ZERO;
            }
        }
    }
    return s;
}

int blk_block_status_above(struct blk *b, struct blk *base, uint64_t off,
                           uint64_t len, uint64_t *pnum, int *depth,
                           uint64_t *host_off, vf_error **errp)
{
    int d = 0;
    if (off >= b->size) {
        *pnum = 0;
        return BLK_UNALLOC;
    }
    if (len > b->size - off)
        len = b->size - off;
    for (struct blk *l = b; l && l != base; l = l->backing, d++) {
        if (off >= l->size) {          /* a shorter backing: zeros */
            *pnum = len;
            if (depth)
                *depth = d;
            return l == b ? BLK_UNALLOC : BLK_ZERO;
        }
        uint64_t n;
        int s = blk_block_status(l, off, len, &n, host_off, errp);
        if (s < 0)
            return -1;
        if (s != BLK_UNALLOC) {
            *pnum = n;
            if (depth)
                *depth = d;
            return s;
        }
        len = n;
    }
    *pnum = len;
    if (depth)
        *depth = d;
    if (host_off)
        *host_off = UINT64_MAX;
    return BLK_UNALLOC;
}

int blk_backing_has_data(struct blk *b, uint64_t off, uint64_t len,
                         vf_error **errp)
{
    struct blk *p = b->backing;
    if (!p || off >= p->size)
        return 0;
    if (len > p->size - off)
        len = p->size - off;
    while (len) {
        uint64_t n;
        int st = blk_block_status_above(p, NULL, off, len, &n, NULL, NULL,
                                        errp);
        if (st < 0)
            return -1;
        if (st == BLK_DATA)
            return 1;
        if (n == 0 || n > len)
            break;
        off += n;
        len -= n;
    }
    return 0;
}

int blk_count_data_blocks(struct blk *src, uint64_t bs, uint64_t end,
                          uint64_t *count, vf_error **errp)
{
    *count = 0;
    if (!src || !bs)
        return 0;
    if (end > src->size)
        end = src->size;
    uint64_t off = 0, last = UINT64_MAX;
    while (off < end) {
        uint64_t n;
        int st = blk_block_status_above(src, NULL, off, end - off, &n, NULL,
                                        NULL, errp);
        if (st < 0)
            return -1;
        if (st == BLK_DATA) {
            uint64_t g0 = off / bs, g1 = (off + n - 1) / bs;
            if (g0 == last)
                g0++;
            if (g1 >= g0 && g1 != UINT64_MAX)
                *count += g1 - g0 + 1;
            last = g1;
        }
        off += n;
    }
    return 0;
}

void check_add(struct check_report *r, enum check_kind k, const char *fmt,
               ...)
{
    switch (k) {
    case CHECK_CORRUPTION: r->corruptions++; break;
    case CHECK_LEAK: r->leaks++; break;
    case CHECK_ERROR: r->check_errors++; break;
    case CHECK_INFO: break;
    }
    if (r->nmsgs >= CHECK_MAX_MSGS)
        return;
    char **nm = realloc(r->msgs, (r->nmsgs + 1) * sizeof(*nm));
    if (!nm)
        return;
    r->msgs = nm;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r->msgs[r->nmsgs], fmt, ap) >= 0)
        r->nmsgs++;
    va_end(ap);
}

void check_report_free(struct check_report *r)
{
    for (size_t i = 0; i < r->nmsgs; i++)
        free(r->msgs[i]);
    free(r->msgs);
    r->msgs = NULL;
    r->nmsgs = 0;
}
