/*
 * ext-write.c: editing ext2/3/4 through libext2fs: the file operations
 * `vmferry prepare` is made of (write, mkdir, remove, symlink, link,
 * chmod, chown), on a filesystem opened read-write over a writable guest
 * device (a copy-on-write overlay of the source, or an --in-place image).
 *
 * Recipes and gotchas: shared/reference/guest-conversion.md section 6 and
 * e2fsprogs' lib/ext2fs (namei.c, link.c, unlink.c, mkdir.c, symlink.c,
 * fileio.c, punch.c).  Every edit is checked afterwards by e2fsck -fn in
 * the tests.  A journal that needs recovery is replayed first (jbd2.c,
 * gfs_replay_journal).  Refused up front: a filesystem marked with
 * errors, the quota feature (libext2fs does not keep the quota files in
 * step); and per file: content stored inline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest/ext-int.h"
#include "guest/guest.h"
#include "guest/ondisk.h"

/* Recursive removal: deeper or larger trees are not a guest's /etc. */
#define RM_MAX_DEPTH 64
#define RM_MAX_ENTRIES 1000000

int gfs_replay_journal(struct gdev *d, struct jbd2_stats *st,
                       vf_error **errp)
{
    /* the primary superblock: magic, s_feature_compat, _incompat */
    uint8_t sb[0x64];
    if (st)
        memset(st, 0, sizeof(*st));
    if (d->size < 2048)
        return 0;
    if (gdev_pread(d, sb, 1024, sizeof(sb), errp) < 0)
        return -1;
    bool recover = gle32(sb + 0x60) & EXT3_FEATURE_INCOMPAT_RECOVER;
    if (gle16(sb + 0x38) != EXT2_SUPER_MAGIC ||
        (!recover && !(gle32(sb + 0x5C) & EXT3_FEATURE_COMPAT_HAS_JOURNAL)))
        return 0;
    /* read-only open: before the replay, checksums may not match */
    vf_error *err = NULL;
    struct gfs *g = gfs_open_flags(d, false, &err);
    if (!g) {
        if (!recover) {        /* opening it for editing will say why */
            error_free(err);
            return 0;
        }
        error_propagate(errp, err);
        return -1;
    }
    /* needs_recovery clear over a log with transactions (a tool cleared
     * the flag): the kernel would still replay them at mount, over our
     * edits, so replay them now */
    if (!recover && !jbd2_log_pending(g)) {
        gfs_close(g);
        return 0;
    }
    int r = -1;
    if (d->no_write)
        error_setg(errp, "its journal needs recovery, and %s", d->no_write);
    else
        r = jbd2_replay(g, st, errp);
    gfs_close(g);
    if (r < 0) {
        error_prepend(errp, "%s: cannot replay the journal: ", d->name);
        return -1;
    }
    return 1;
}

/* The kernel does not keep the superblock's free counts current: it sums
 * the group descriptors at mount, so after a crash or a journal replay
 * they may be stale.  Edits adjust them, so start from the sums too. */
static void gfs_sync_free_counts(struct gfs *g)
{
    ext2_filsys fs = g->fs;
    uint64_t clusters = 0, inodes = 0;
    for (dgrp_t i = 0; i < fs->group_desc_count; i++) {
        clusters += ext2fs_bg_free_blocks_count(fs, i);
        inodes += ext2fs_bg_free_inodes_count(fs, i);
    }
    blk64_t blocks = EXT2FS_C2B(fs, clusters);
    if (blocks != ext2fs_free_blocks_count(fs->super) ||
        inodes != fs->super->s_free_inodes_count) {
        ext2fs_free_blocks_count_set(fs->super, blocks);
        fs->super->s_free_inodes_count = (uint32_t)inodes;
        ext2fs_mark_super_dirty(fs);
        g->dirty = true;
    }
}

struct gfs *gfs_open_rw(struct gdev *d, vf_error **errp)
{
    struct gfs *g = gfs_open_flags(d, true, errp);
    if (!g)
        return NULL;
    ext2_filsys fs = g->fs;
    const char *why = NULL;
    if (ext2fs_has_feature_journal_needs_recovery(fs->super))
        why = "its journal needs recovery (the guest was not shut down "
              "cleanly) and was not replayed";
    else if (fs->super->s_state & EXT2_ERROR_FS)
        why = "it is marked as having errors; run e2fsck on it first";
    else if (ext2fs_has_feature_quota(fs->super))
        why = "it has the quota feature, which editing would leave "
              "inconsistent";
    if (why) {
        error_setg(errp, "%s: cannot edit this ext filesystem: %s", d->name,
                   why);
        gfs_close(g);
        return NULL;
    }
    errcode_t e = ext2fs_read_bitmaps(fs);
    if (e) {
        error_setg(errp, "%s: cannot read the allocation bitmaps: %s",
                   d->name, error_message(e));
        gfs_close(g);
        return NULL;
    }
    gfs_sync_free_counts(g);
    return g;
}

static int gfs_err(struct gfs *g, errcode_t e, const char *what,
                   const char *path, vf_error **errp)
{
    const char *io = gfs_io_error(g);
    error_setg(errp, "%s: %s failed: %s%s%s", path, what, error_message(e),
               io ? ": " : "", io ? io : "");
    return -1;
}

int gfs_flush(struct gfs *g, vf_error **errp)
{
    if (!g->rw || !g->dirty)
        return 0;
    errcode_t e = ext2fs_flush(g->fs);
    if (e)
        return gfs_err(g, e, "writing the superblock and bitmaps",
                       g->dev->name, errp);
    g->dirty = false;
    return 0;
}

void gfs_set_ro_reason(struct gfs *g, const char *why)
{
    snprintf(g->ro_reason, sizeof(g->ro_reason), "%s", why);
}

bool gfs_is_dirty(struct gfs *g)
{
    return g && g->dirty;
}

/* ---- paths ---- */

struct wpath {
    struct gfs *g;
    ext2_ino_t dir;            /* the parent directory */
    char name[EXT2_NAME_LEN + 1];
    ext2_ino_t ino;            /* the entry itself, 0 when absent */
    struct ext2_inode inode;   /* its inode when present */
};

/* Resolve path's parent directory and look up its last component (not
 * followed).  GV_NOFOLLOW refuses a symlink anywhere on the way (so an
 * edit cannot be redirected, e.g. a home directory that links to /etc). */
static int wpath_get(struct gview *v, const char *path, unsigned flags,
                     struct wpath *w, vf_error **errp)
{
    memset(w, 0, sizeof(*w));
    const char *rest;
    if (path[0] != '/') {
        error_setg(errp, "%s: not an absolute guest path", path);
        return -1;
    }
    w->g = gview_pick(v, path, &rest);
    if (!w->g) {
        error_setg(errp, "%s: no filesystem of the guest holds it", path);
        return -1;
    }
    if (!w->g->rw) {
        error_setg(errp, "%s: cannot edit %s: %s", path, w->g->dev->name,
                   w->g->ro_reason[0] ? w->g->ro_reason
                                      : "the filesystem is open read-only");
        return -1;
    }
    ext2_filsys fs = w->g->fs;
    /* rest is "/a/b/c": walk "a", "b"; "c" is the name */
    const char *last = strrchr(rest, '/');
    const char *base = last + 1;
    size_t blen = strlen(base);
    if (blen == 0 || blen > EXT2_NAME_LEN || !strcmp(base, ".") ||
        !strcmp(base, "..")) {
        error_setg(errp, "%s: not a name that can be edited", path);
        return -1;
    }
    memcpy(w->name, base, blen + 1);
    ext2_ino_t dir = EXT2_ROOT_INO;
    const char *p = rest;
    while (p < last) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        if (!e || e > last)
            e = last;
        size_t l = (size_t)(e - p);
        if (l == 0)
            break;
        ext2_ino_t next;
        errcode_t er = ext2fs_lookup(fs, dir, p, (int)l, NULL, &next);
        if (er) {
            error_setg(errp, "%s: directory %.*s not found", path, (int)l, p);
            return -1;
        }
        struct ext2_inode in;
        if ((er = ext2fs_read_inode(fs, next, &in)))
            return gfs_err(w->g, er, "reading an inode", path, errp);
        if (LINUX_S_ISLNK(in.i_mode)) {
            if (flags & GV_NOFOLLOW) {
                error_setg(errp, "%s: %.*s is a symbolic link; not followed "
                           "for this edit", path, (int)l, p);
                return -1;
            }
            /* follow it inside this filesystem (namei resolves absolute
             * targets against the guest root) */
            char comp[EXT2_NAME_LEN + 1];
            snprintf(comp, sizeof(comp), "%.*s", (int)l, p);
            if ((er = ext2fs_namei_follow(fs, EXT2_ROOT_INO, dir, comp,
                                          &next)) ||
                (er = ext2fs_read_inode(fs, next, &in))) {
                error_setg(errp, "%s: the link %s does not resolve", path,
                           comp);
                return -1;
            }
        }
        if (!LINUX_S_ISDIR(in.i_mode)) {
            error_setg(errp, "%s: %.*s is not a directory", path, (int)l, p);
            return -1;
        }
        dir = next;
        p = e;
    }
    w->dir = dir;
    errcode_t er = ext2fs_lookup(fs, dir, w->name, (int)blen, NULL, &w->ino);
    if (er == EXT2_ET_FILE_NOT_FOUND) {
        w->ino = 0;
        return 0;
    }
    if (er)
        return gfs_err(w->g, er, "looking up", path, errp);
    if ((er = ext2fs_read_inode(fs, w->ino, &w->inode)))
        return gfs_err(w->g, er, "reading an inode", path, errp);
    return 0;
}

static int ftype_of(uint16_t mode)
{
    if (LINUX_S_ISREG(mode))
        return EXT2_FT_REG_FILE;
    if (LINUX_S_ISDIR(mode))
        return EXT2_FT_DIR;
    if (LINUX_S_ISLNK(mode))
        return EXT2_FT_SYMLINK;
    if (LINUX_S_ISCHR(mode))
        return EXT2_FT_CHRDEV;
    if (LINUX_S_ISBLK(mode))
        return EXT2_FT_BLKDEV;
    if (LINUX_S_ISFIFO(mode))
        return EXT2_FT_FIFO;
    if (LINUX_S_ISSOCK(mode))
        return EXT2_FT_SOCK;
    return EXT2_FT_UNKNOWN;
}

static errcode_t link_entry(ext2_filsys fs, ext2_ino_t dir, const char *name,
                            ext2_ino_t ino, int ftype)
{
    errcode_t e = ext2fs_link(fs, dir, name, ino, ftype);
    if (e == EXT2_ET_DIR_NO_SPACE) {
        if ((e = ext2fs_expand_dir(fs, dir)))
            return e;
        e = ext2fs_link(fs, dir, name, ino, ftype);
    }
    return e;
}

static void set_owner(struct ext2_inode *in, int64_t uid, int64_t gid)
{
    if (uid >= 0) {
        in->i_uid = (uint16_t)uid;
        ext2fs_set_i_uid_high(*in, (uint16_t)((uint32_t)uid >> 16));
    }
    if (gid >= 0) {
        in->i_gid = (uint16_t)gid;
        ext2fs_set_i_gid_high(*in, (uint16_t)((uint32_t)gid >> 16));
    }
}

/* A new empty inode of type|mode linked as w->name in w->dir. */
static int new_inode(struct wpath *w, uint16_t mode, int64_t uid, int64_t gid,
                     const char *path, vf_error **errp)
{
    ext2_filsys fs = w->g->fs;
    ext2_ino_t ino;
    errcode_t e = ext2fs_new_inode(fs, w->dir, mode, NULL, &ino);
    if (e)
        return gfs_err(w->g, e, "allocating an inode", path, errp);
    if ((e = link_entry(fs, w->dir, w->name, ino, ftype_of(mode))))
        return gfs_err(w->g, e, "adding the directory entry", path, errp);
    ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
    struct ext2_inode in;
    memset(&in, 0, sizeof(in));
    in.i_mode = mode;
    set_owner(&in, uid < 0 ? 0 : uid, gid < 0 ? 0 : gid);
    in.i_atime = in.i_ctime = in.i_mtime = (uint32_t)time(NULL);
    in.i_links_count = 1;
    if (ext2fs_has_feature_extents(fs->super) && LINUX_S_ISREG(mode)) {
        ext2_extent_handle_t h;
        in.i_flags |= EXT4_EXTENTS_FL;
        /* initialises the extent header in i_block */
        if ((e = ext2fs_extent_open2(fs, ino, &in, &h)))
            return gfs_err(w->g, e, "initialising extents", path, errp);
        ext2fs_extent_free(h);
    }
    if ((e = ext2fs_write_new_inode(fs, ino, &in)))
        return gfs_err(w->g, e, "writing the new inode", path, errp);
    w->ino = ino;
    w->inode = in;
    w->g->dirty = true;
    return 0;
}

/* ---- what was written ---- */

/* Record path in v's written list (see struct gview). */
static void written_add(struct gview *v, const char *path)
{
    if (v->written_lost)
        return;
    size_t l = strlen(path);
    char *c = malloc(l + 1);
    if (!c) {
        v->written_lost = true;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < l; i++)
        if (path[i] != '/' || n == 0 || c[n - 1] != '/')
            c[n++] = path[i];
    if (n > 1 && c[n - 1] == '/')
        n--;
    c[n] = 0;
    /* a file written piece by piece (gview_append) appears once */
    if (v->nwritten && !strcmp(v->written[v->nwritten - 1], c)) {
        free(c);
        return;
    }
    if (v->nwritten >= GV_WRITTEN_MAX) {
        free(c);
        v->written_lost = true;
        return;
    }
    if (v->nwritten == v->written_cap) {
        size_t nc = v->written_cap ? v->written_cap * 2 : 64;
        char **nw = realloc(v->written, nc * sizeof(*nw));
        if (!nw) {
            free(c);
            v->written_lost = true;
            return;
        }
        v->written = nw;
        v->written_cap = nc;
    }
    v->written[v->nwritten++] = c;
}

void gview_written_free(struct gview *v)
{
    for (size_t i = 0; i < v->nwritten; i++)
        free(v->written[i]);
    free(v->written);
    v->written = NULL;
    v->nwritten = v->written_cap = 0;
    v->written_lost = false;
}

/* ---- operations ---- */

int gview_write(struct gview *v, const char *path, const void *data,
                size_t len, int mode, int64_t uid, int64_t gid,
                unsigned flags, vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, flags, &w, errp) < 0)
        return -1;
    ext2_filsys fs = w.g->fs;
    errcode_t e;
    /* a file written through a link to it is not the link's name */
    bool through_link = w.ino && LINUX_S_ISLNK(w.inode.i_mode);
    if (through_link) {
        if (flags & GV_NOFOLLOW) {
            error_setg(errp, "%s: is a symbolic link; not written through",
                       path);
            return -1;
        }
        ext2_ino_t t;
        if (ext2fs_namei_follow(fs, EXT2_ROOT_INO, w.dir, w.name, &t) ||
            ext2fs_read_inode(fs, t, &w.inode)) {
            error_setg(errp, "%s: a symbolic link that does not resolve "
                       "inside its filesystem", path);
            return -1;
        }
        w.ino = t;
    }
    if (w.ino && !LINUX_S_ISREG(w.inode.i_mode)) {
        error_setg(errp, "%s: exists and is not a regular file", path);
        return -1;
    }
    if (w.ino && (w.inode.i_flags & EXT4_INLINE_DATA_FL)) {
        error_setg(errp, "%s: its content is stored inline in the inode, "
                   "which vmferry does not rewrite yet", path);
        return -1;
    }
    if (!w.ino &&
        new_inode(&w, (uint16_t)(LINUX_S_IFREG | (mode < 0 ? 0644 : mode)),
                  uid, gid, path, errp) < 0)
        return -1;
    w.g->dirty = true;
    ext2_file_t f;
    if ((e = ext2fs_file_open(fs, w.ino, EXT2_FILE_WRITE, &f)))
        return gfs_err(w.g, e, "opening for writing", path, errp);
    if ((e = ext2fs_file_set_size2(f, 0))) {
        ext2fs_file_close(f);
        return gfs_err(w.g, e, "truncating", path, errp);
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        unsigned n = len - done > (1u << 30) ? (1u << 30)
                                              : (unsigned)(len - done);
        unsigned wrote = 0;
        if ((e = ext2fs_file_write(f, p + done, n, &wrote)) || wrote == 0) {
            ext2fs_file_close(f);
            return gfs_err(w.g, e ? e : EXT2_ET_SHORT_WRITE, "writing", path,
                           errp);
        }
        done += wrote;
    }
    if ((e = ext2fs_file_close(f)))
        return gfs_err(w.g, e, "closing", path, errp);
    /* owner, mode and times of an existing file as asked */
    struct ext2_inode in;
    if ((e = ext2fs_read_inode(fs, w.ino, &in)))
        return gfs_err(w.g, e, "reading an inode", path, errp);
    if (mode >= 0)
        in.i_mode = (uint16_t)((in.i_mode & LINUX_S_IFMT) | (mode & 07777));
    set_owner(&in, uid, gid);
    in.i_mtime = in.i_ctime = (uint32_t)time(NULL);
    if ((e = ext2fs_write_inode(fs, w.ino, &in)))
        return gfs_err(w.g, e, "writing an inode", path, errp);
    if (!through_link)
        written_add(v, path);
    return 0;
}

int gview_append(struct gview *v, const char *path, const void *data,
                 size_t len, vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, GV_NOFOLLOW, &w, errp) < 0)
        return -1;
    if (!w.ino || !LINUX_S_ISREG(w.inode.i_mode)) {
        error_setg(errp, "%s: %s", path, w.ino ? "not a regular file"
                                                : "not found");
        return -1;
    }
    if (w.inode.i_flags & EXT4_INLINE_DATA_FL) {
        error_setg(errp, "%s: its content is stored inline in the inode, "
                   "which vmferry does not rewrite yet", path);
        return -1;
    }
    ext2_filsys fs = w.g->fs;
    ext2_file_t f;
    errcode_t e = ext2fs_file_open(fs, w.ino, EXT2_FILE_WRITE, &f);
    if (e)
        return gfs_err(w.g, e, "opening for writing", path, errp);
    w.g->dirty = true;
    if ((e = ext2fs_file_llseek(f, 0, EXT2_SEEK_END, NULL))) {
        ext2fs_file_close(f);
        return gfs_err(w.g, e, "seeking to the end", path, errp);
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        unsigned n = len - done > (1u << 30) ? (1u << 30)
                                              : (unsigned)(len - done);
        unsigned wrote = 0;
        if ((e = ext2fs_file_write(f, p + done, n, &wrote)) || wrote == 0) {
            ext2fs_file_close(f);
            return gfs_err(w.g, e ? e : EXT2_ET_SHORT_WRITE, "appending",
                           path, errp);
        }
        done += wrote;
    }
    if ((e = ext2fs_file_close(f)))
        return gfs_err(w.g, e, "closing", path, errp);
    written_add(v, path);
    return 0;
}

int gview_mkdir(struct gview *v, const char *path, int mode, int64_t uid,
                int64_t gid, unsigned flags, vf_error **errp)
{
    if (flags & GV_PARENTS) {
        /* make each ancestor first (a path is at most PATH_MAX long) */
        char buf[4096];
        if (strlen(path) >= sizeof(buf)) {
            error_setg(errp, "%.64s...: path too long", path);
            return -1;
        }
        strcpy(buf, path);
        for (char *s = buf + 1; (s = strchr(s, '/')); s++) {
            *s = 0;
            if (gview_stat(v, buf, NULL) != GT_DIR &&
                gview_mkdir(v, buf, 0755, -1, -1, flags & ~GV_PARENTS,
                            errp) < 0)
                return -1;
            *s = '/';
        }
    }
    struct wpath w;
    if (wpath_get(v, path, flags, &w, errp) < 0)
        return -1;
    ext2_filsys fs = w.g->fs;
    if (w.ino) {
        if (LINUX_S_ISDIR(w.inode.i_mode) && (flags & GV_PARENTS))
            return 0;
        error_setg(errp, "%s: already exists", path);
        return -1;
    }
    errcode_t e = ext2fs_mkdir(fs, w.dir, 0, w.name);
    if (e == EXT2_ET_DIR_NO_SPACE) {
        if (!(e = ext2fs_expand_dir(fs, w.dir)))
            e = ext2fs_mkdir(fs, w.dir, 0, w.name);
    }
    if (e)
        return gfs_err(w.g, e, "making the directory", path, errp);
    w.g->dirty = true;
    ext2_ino_t ino;
    struct ext2_inode in;
    if ((e = ext2fs_lookup(fs, w.dir, w.name, (int)strlen(w.name), NULL,
                           &ino)) ||
        (e = ext2fs_read_inode(fs, ino, &in)))
        return gfs_err(w.g, e, "reading the new directory", path, errp);
    in.i_mode = (uint16_t)(LINUX_S_IFDIR | ((mode < 0 ? 0755 : mode) & 07777));
    set_owner(&in, uid, gid);
    if ((e = ext2fs_write_inode(fs, ino, &in)))
        return gfs_err(w.g, e, "writing an inode", path, errp);
    written_add(v, path);
    return 0;
}

/* Drop one link to ino (named name in dir); free it at zero. */
static int drop_inode(struct gfs *g, ext2_ino_t dir, const char *name,
                      ext2_ino_t ino, const char *path, vf_error **errp)
{
    ext2_filsys fs = g->fs;
    struct ext2_inode in;
    errcode_t e = ext2fs_unlink(fs, dir, name, ino, 0);
    if (e)
        return gfs_err(g, e, "removing the directory entry", path, errp);
    g->dirty = true;
    if ((e = ext2fs_read_inode(fs, ino, &in)))
        return gfs_err(g, e, "reading an inode", path, errp);
    bool isdir = LINUX_S_ISDIR(in.i_mode);
    if (isdir) {
        /* "." and the parent's ".." link */
        in.i_links_count = 0;
        struct ext2_inode pin;
        if (!ext2fs_read_inode(fs, dir, &pin) && pin.i_links_count > 2) {
            pin.i_links_count--;
            ext2fs_write_inode(fs, dir, &pin);
        }
    } else if (in.i_links_count > 0) {
        in.i_links_count--;
    }
    if (in.i_links_count == 0) {
        in.i_dtime = (uint32_t)time(NULL);
        if (ext2fs_inode_has_valid_blocks2(fs, &in) &&
            (e = ext2fs_punch(fs, ino, &in, NULL, 0, ~0ULL)))
            return gfs_err(g, e, "freeing the blocks", path, errp);
        if ((e = ext2fs_write_inode(fs, ino, &in)))
            return gfs_err(g, e, "writing an inode", path, errp);
        /* extended attributes that did not fit in the inode (SELinux
         * labels on 128-byte inodes, ACLs) live in a block that inodes
         * may share: drop this inode's reference, freed at zero */
        if (ext2fs_file_acl_block(fs, &in) &&
            (e = ext2fs_free_ext_attr(fs, ino, NULL)))
            return gfs_err(g, e, "freeing the extended attribute block",
                           path, errp);
        ext2fs_inode_alloc_stats2(fs, ino, -1, isdir);
    } else if ((e = ext2fs_write_inode(fs, ino, &in))) {
        return gfs_err(g, e, "writing an inode", path, errp);
    }
    return 0;
}

struct rm_ctx {
    char **names;
    size_t n, cap;
    bool overflow;
};

static int rm_collect(ext2_ino_t dir, int entry, struct ext2_dir_entry *de,
                      int offset, int blocksize, char *buf, void *priv)
{
    struct rm_ctx *c = priv;
    int l = ext2fs_dirent_name_len(de);
    if ((l == 1 && de->name[0] == '.') ||
        (l == 2 && de->name[0] == '.' && de->name[1] == '.'))
        return 0;
    if (c->n >= RM_MAX_ENTRIES) {
        c->overflow = true;
        return DIRENT_ABORT;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 32;
        char **nn = realloc(c->names, nc * sizeof(*nn));
        if (!nn) {
            c->overflow = true;
            return DIRENT_ABORT;
        }
        c->names = nn;
        c->cap = nc;
    }
    c->names[c->n] = strndup(de->name, (size_t)l);
    if (!c->names[c->n]) {
        c->overflow = true;
        return DIRENT_ABORT;
    }
    c->n++;
    return 0;
}

static int rm_tree(struct gview *v, const char *path, int depth,
                   vf_error **errp)
{
    if (depth > RM_MAX_DEPTH) {
        error_setg(errp, "%s: directories nested deeper than %d", path,
                   RM_MAX_DEPTH);
        return -1;
    }
    struct wpath w;
    if (wpath_get(v, path, 0, &w, errp) < 0)
        return -1;
    if (!w.ino)
        return 0;
    if (LINUX_S_ISDIR(w.inode.i_mode)) {
        struct rm_ctx c = { 0 };
        errcode_t e = ext2fs_dir_iterate2(w.g->fs, w.ino, 0, NULL,
                                          rm_collect, &c);
        int r = 0;
        if (e || c.overflow) {
            r = e ? gfs_err(w.g, e, "listing", path, errp) : -1;
            if (!e)
                error_setg(errp, "%s: too many entries to remove", path);
        }
        for (size_t i = 0; i < c.n; i++) {
            char *sub = NULL;
            if (!r && asprintf(&sub, "%s/%s", path, c.names[i]) < 0) {
                error_setg(errp, "out of memory");
                r = -1;
            }
            if (!r && rm_tree(v, sub, depth + 1, errp) < 0)
                r = -1;
            free(sub);
            free(c.names[i]);
        }
        free(c.names);
        if (r < 0)
            return -1;
    }
    return drop_inode(w.g, w.dir, w.name, w.ino, path, errp);
}

int gview_remove(struct gview *v, const char *path, bool recursive,
                 vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, 0, &w, errp) < 0)
        return -1;
    if (!w.ino)
        return 0;
    if (LINUX_S_ISDIR(w.inode.i_mode)) {
        if (!recursive) {
            error_setg(errp, "%s: is a directory", path);
            return -1;
        }
        return rm_tree(v, path, 0, errp);
    }
    return drop_inode(w.g, w.dir, w.name, w.ino, path, errp);
}

int gview_symlink(struct gview *v, const char *target, const char *path,
                  unsigned flags, vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, flags, &w, errp) < 0)
        return -1;
    if (strlen(target) >= 4096 || !*target) {
        error_setg(errp, "%s: link target empty or too long", path);
        return -1;
    }
    if (w.ino) {
        if (LINUX_S_ISDIR(w.inode.i_mode)) {
            error_setg(errp, "%s: is a directory", path);
            return -1;
        }
        if (drop_inode(w.g, w.dir, w.name, w.ino, path, errp) < 0)
            return -1;
    }
    errcode_t e = ext2fs_symlink(w.g->fs, w.dir, 0, w.name, target);
    if (e == EXT2_ET_DIR_NO_SPACE) {
        if (!(e = ext2fs_expand_dir(w.g->fs, w.dir)))
            e = ext2fs_symlink(w.g->fs, w.dir, 0, w.name, target);
    }
    if (e)
        return gfs_err(w.g, e, "making the symbolic link", path, errp);
    w.g->dirty = true;
    written_add(v, path);
    return 0;
}

int gview_link(struct gview *v, const char *existing, const char *path,
               vf_error **errp)
{
    struct wpath a, w;
    if (wpath_get(v, existing, 0, &a, errp) < 0 ||
        wpath_get(v, path, 0, &w, errp) < 0)
        return -1;
    if (!a.ino || LINUX_S_ISDIR(a.inode.i_mode)) {
        error_setg(errp, "%s: %s", existing,
                   a.ino ? "is a directory" : "not found");
        return -1;
    }
    if (a.g != w.g) {
        error_setg(errp, "%s: on another filesystem than %s", path, existing);
        return -1;
    }
    if (w.ino) {
        error_setg(errp, "%s: already exists", path);
        return -1;
    }
    if (a.inode.i_links_count >= 65000) {
        error_setg(errp, "%s: too many links", existing);
        return -1;
    }
    errcode_t e = link_entry(w.g->fs, w.dir, w.name, a.ino,
                             ftype_of(a.inode.i_mode));
    if (e)
        return gfs_err(w.g, e, "adding the directory entry", path, errp);
    w.g->dirty = true;
    a.inode.i_links_count++;
    if ((e = ext2fs_write_inode(w.g->fs, a.ino, &a.inode)))
        return gfs_err(w.g, e, "writing an inode", existing, errp);
    return 0;
}

static int set_attr(struct gview *v, const char *path, int mode, int64_t uid,
                    int64_t gid, unsigned flags, vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, flags, &w, errp) < 0)
        return -1;
    if (!w.ino) {
        error_setg(errp, "%s: not found", path);
        return -1;
    }
    if (mode >= 0)
        w.inode.i_mode =
            (uint16_t)((w.inode.i_mode & LINUX_S_IFMT) | (mode & 07777));
    set_owner(&w.inode, uid, gid);
    w.inode.i_ctime = (uint32_t)time(NULL);
    errcode_t e = ext2fs_write_inode(w.g->fs, w.ino, &w.inode);
    if (e)
        return gfs_err(w.g, e, "writing an inode", path, errp);
    w.g->dirty = true;
    return 0;
}

int gview_chmod(struct gview *v, const char *path, int mode, vf_error **errp)
{
    return set_attr(v, path, mode, -1, -1, 0, errp);
}

int gview_chown(struct gview *v, const char *path, int64_t uid, int64_t gid,
                vf_error **errp)
{
    return set_attr(v, path, -1, uid, gid, 0, errp);
}

int gview_owner(struct gview *v, const char *path, uint32_t *uid,
                uint32_t *gid, int *mode)
{
    struct gfs *g;
    ext2_ino_t ino;
    struct ext2_inode in;
    if (gview_ino(v, path, false, &g, &ino) < 0 ||
        ext2fs_read_inode(g->fs, ino, &in))
        return -1;
    if (uid)
        *uid = inode_uid(in);
    if (gid)
        *gid = inode_gid(in);
    if (mode)
        *mode = in.i_mode & 07777;
    return 0;
}

/* ---- extended attributes ---- */

bool gview_has_xattrs(struct gview *v, const char *path)
{
    const char *rest;
    struct gfs *g = gview_pick(v, path, &rest);
    return g && ext2fs_has_feature_xattr(g->fs->super);
}

/* An attribute handle on ino with its attributes read. */
static errcode_t xattrs_load(struct gfs *g, ext2_ino_t ino,
                             struct ext2_xattr_handle **h)
{
    errcode_t e = ext2fs_xattrs_open(g->fs, ino, h);
    if (e)
        return e;
    if ((e = ext2fs_xattrs_read(*h)))
        ext2fs_xattrs_close(h);
    return e;
}

static int xattr_fs_check(struct gfs *g, const char *path, vf_error **errp)
{
    if (ext2fs_has_feature_xattr(g->fs->super))
        return 0;
    error_setg(errp, "%s: the filesystem on %s has no extended attributes "
               "(no ext_attr feature)", path, g->dev->name);
    return -1;
}

int gview_getxattr(struct gview *v, const char *path, const char *name,
                   char **val, size_t *len, vf_error **errp)
{
    struct gfs *g;
    ext2_ino_t ino;
    if (gview_ino(v, path, false, &g, &ino) < 0) {
        error_setg(errp, "%s: not found", path);
        return -1;
    }
    if (xattr_fs_check(g, path, errp) < 0)
        return -1;
    struct ext2_xattr_handle *h;
    errcode_t e = xattrs_load(g, ino, &h);
    if (e)
        return gfs_err(g, e, "reading the extended attributes", path, errp);
    void *raw = NULL;
    size_t rlen = 0;
    e = ext2fs_xattr_get(h, name, &raw, &rlen);
    ext2fs_xattrs_close(&h);
    if (e == EXT2_ET_EA_KEY_NOT_FOUND)
        return 0;
    if (e)
        return gfs_err(g, e, "reading an extended attribute", path, errp);
    /* a value is at most a block, or 64 KiB in an EA inode */
    char *out = malloc(rlen + 1);
    if (!out) {
        ext2fs_free_mem(&raw);
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(out, raw, rlen);
    out[rlen] = 0;
    ext2fs_free_mem(&raw);
    *val = out;
    *len = rlen;
    return 1;
}

int gview_setxattr(struct gview *v, const char *path, const char *name,
                   const void *val, size_t len, vf_error **errp)
{
    struct wpath w;
    if (wpath_get(v, path, 0, &w, errp) < 0)
        return -1;
    if (!w.ino) {
        error_setg(errp, "%s: not found", path);
        return -1;
    }
    if (xattr_fs_check(w.g, path, errp) < 0)
        return -1;
    struct ext2_xattr_handle *h;
    errcode_t e = xattrs_load(w.g, w.ino, &h);
    if (e)
        return gfs_err(w.g, e, "reading the extended attributes", path,
                       errp);
    /* ext2fs_xattr_set writes the attributes back itself (in the inode,
     * or an attribute block it allocates): no ext2fs_xattrs_write */
    e = ext2fs_xattr_set(h, name, val, len);
    ext2fs_xattrs_close(&h);
    if (e)
        return gfs_err(w.g, e, "setting an extended attribute", path,
                       errp);
    w.g->dirty = true;
    return 0;
}
