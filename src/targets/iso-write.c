/*
 * iso-write.c: an ISO 9660 image with Joliet and Rock Ridge, built by
 * libisofs (libisofs.h of libisofs 1.5) from files held in memory, and
 * streamed into an io.
 *
 * ECMA-119 wants the volume id in d-characters (upper case, digits, '_'):
 * libisofs would turn "config-2" into "CONFIG_2", which no cloud-init
 * would find; relaxed volume attributes keep it as given, as genisoimage
 * -V does.  Joliet carries the id as given too.
 */
#define LIBISOFS_WITHOUT_LIBBURN 1   /* use libisofs.h's struct burn_source */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
/* libisofs.h uses uint32_t, off_t, mode_t without including their headers */
#include <libisofs/libisofs.h>

#include "targets/fsimage.h"

#define ISO9660_FILE_MODE 0644
#define ISO9660_DIR_MODE 0755
/* Read the image from the generator thread one 2 KiB block at a time:
 * libisofs' burn_source read answers EOF, dropping the data, when less
 * than the size asked for is left (ecma119.c bs_read), and the image is
 * a whole number of blocks. */
#define ISO9660_BLOCK 2048
/* Gather blocks into writes of this size. */
#define ISO9660_CHUNK (64u << 10)
/* ECMA-119 8.4.6: the volume id field is 32 bytes. */
#define ISO9660_VOLID_MAX 32

/* Turn a libisofs error code into our error, with libisofs' own last
 * message when it queued one. */
static void iso9660_error(vf_error **errp, int code, const char *what)
{
    char msg[ISO_MSGS_MESSAGE_LEN], sev[80];
    int ecode = 0, imgid = 0;
    if (iso_obtain_msgs("SORRY", &ecode, &imgid, msg, sev) == 1 && *msg)
        error_setg(errp, "%s: %s (%s)", what, iso_error_to_msg(code), msg);
    else
        error_setg(errp, "%s: %s", what, iso_error_to_msg(code));
}

static void iso9660_own(IsoNode *node, mode_t mode)
{
    iso_node_set_permissions(node, mode);
    iso_node_set_uid(node, 0);
    iso_node_set_gid(node, 0);
}

/* Every component of path is a name: not empty, not "." or "..". */
static int iso9660_check_path(const char *path, vf_error **errp)
{
    for (const char *p = path; p; ) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len > 255 || (len == 1 && p[0] == '.') ||
            (len == 2 && p[0] == '.' && p[1] == '.')) {
            error_setg(errp, "path '%s' has an empty, too long, '.' or "
                       "'..' component", path);
            return -1;
        }
        p = slash ? slash + 1 : NULL;
    }
    return 0;
}

/* The directory a path's parent components name, made as needed; *base
 * gets the last component. */
static int iso9660_parent(IsoDir *root, const char *path, IsoDir **parent,
                          const char **base, vf_error **errp)
{
    IsoDir *dir = root;
    const char *p = path;
    const char *slash;
    char name[256];
    if (iso9660_check_path(path, errp) < 0)
        return -1;
    while ((slash = strchr(p, '/'))) {
        size_t len = (size_t)(slash - p);   /* 1-255: checked */
        memcpy(name, p, len);
        name[len] = 0;
        IsoNode *node = NULL;
        int r = iso_dir_get_node(dir, name, &node);
        if (r == 1) {
            if (iso_node_get_type(node) != LIBISO_DIR) {
                error_setg(errp, "path '%s': '%s' is a file", path, name);
                return -1;
            }
            dir = (IsoDir *)node;
        } else {
            IsoDir *nd = NULL;
            r = iso_tree_add_new_dir(dir, name, &nd);
            if (r < 0) {
                iso9660_error(errp, r, path);
                return -1;
            }
            iso9660_own((IsoNode *)nd, ISO9660_DIR_MODE);
            dir = nd;
        }
        p = slash + 1;
    }
    *parent = dir;
    *base = p;
    return 0;
}

/* Add files[i], sharing the stream of an earlier file with the same
 * content (libisofs then writes the data once). */
static int iso9660_add(IsoDir *root, const struct fsimg_file *files,
                       size_t i, IsoStream **streams, vf_error **errp)
{
    const struct fsimg_file *f = &files[i];
    IsoDir *dir;
    const char *base;
    if (iso9660_parent(root, f->path, &dir, &base, errp) < 0)
        return -1;
    IsoStream *st = NULL;
    for (size_t k = 0; k < i && !st; k++)
        if (streams[k] && files[k].data == f->data && files[k].len == f->len)
            st = streams[k];
    if (st) {
        iso_stream_ref(st);
    } else {
        /* the stream owns (and free()s) its buffer */
        unsigned char *copy = malloc(f->len ? f->len : 1);
        if (!copy) {
            error_setg(errp, "out of memory");
            return -1;
        }
        if (f->len)
            memcpy(copy, f->data, f->len);
        int r = iso_memory_stream_new(copy, f->len, &st);
        if (r < 0) {
            free(copy);
            iso9660_error(errp, r, f->path);
            return -1;
        }
    }
    IsoFile *file = NULL;
    int r = iso_tree_add_new_file(dir, base, st, &file);
    if (r < 0) {
        iso_stream_unref(st);
        iso9660_error(errp, r, f->path);
        return -1;
    }
    iso9660_own((IsoNode *)file, ISO9660_FILE_MODE);
    streams[i] = st;              /* borrowed: the file holds the ref */
    return 0;
}

static IsoWriteOpts *iso9660_opts(vf_error **errp)
{
    IsoWriteOpts *o = NULL;
    int r = iso_write_opts_new(&o, 0);
    if (r < 0) {
        iso9660_error(errp, r, "ISO write options");
        return NULL;
    }
    /* level 2: ECMA-119 names of up to 31 characters, for readers that
     * see neither Rock Ridge nor Joliet */
    iso_write_opts_set_iso_level(o, 2);
    iso_write_opts_set_rockridge(o, 1);
    iso_write_opts_set_joliet(o, 1);
    iso_write_opts_set_relaxed_vol_atts(o, 1);
    /* Joliet names as given, as genisoimage writes them: no ";1" version
     * and no "." forced into names that have none (bit 1: Joliet only) */
    iso_write_opts_set_omit_version_numbers(o, 2);
    iso_write_opts_set_no_force_dots(o, 2);
    /* keep the modes and owners set on the nodes */
    iso_write_opts_set_replace_mode(o, 0, 0, 0, 0);
    /* no time zone to get wrong (libisofs.h: west of GMT, some readers
     * apply the offset twice) */
    iso_write_opts_set_always_gmt(o, 1);
    return o;
}

/* Pull the image from libisofs' generator thread into out. */
static int iso9660_stream(IsoImage *img, IsoWriteOpts *opts, struct io *out,
                          vf_error **errp)
{
    struct burn_source *bs = NULL;
    int r = iso_image_create_burn_source(img, opts, &bs);
    if (r < 0) {
        iso9660_error(errp, r, "ISO image");
        return -1;
    }
    unsigned char *buf = malloc(ISO9660_CHUNK);
    uint64_t off = 0;
    int ret = -1;
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    size_t fill = 0;
    for (;;) {
        int n = bs->read_xt(bs, buf + fill, ISO9660_BLOCK);
        if (n < 0) {
            iso9660_error(errp, (int)ISO_BUF_READ_ERROR, "ISO image");
            goto out;
        }
        fill += (size_t)n;
        if (fill && (n == 0 || fill == ISO9660_CHUNK)) {
            if (io_pwrite(out, buf, fill, off, errp) < 0)
                goto out;
            off += fill;
            fill = 0;
        }
        if (n == 0)
            break;
    }
    ret = 0;
out:
    if (ret < 0)
        bs->cancel(bs);           /* stops and joins the generator */
    bs->free_data(bs);
    free(bs);
    free(buf);
    return ret;
}

int iso9660_write(struct io *out, const char *volid,
                  const struct fsimg_file *files, size_t n, vf_error **errp)
{
    size_t vl = strlen(volid);
    if (vl < 1 || vl > ISO9660_VOLID_MAX) {
        error_setg(errp, "ISO volume id '%s' is not 1-%d bytes", volid,
                   ISO9660_VOLID_MAX);
        return -1;
    }
    if (n > FSIMG_MAX_FILES) {
        error_setg(errp, "%zu files (at most %d)", n, FSIMG_MAX_FILES);
        return -1;
    }
    /* bit 0: leave the process' locale alone (our names are ASCII) */
    int r = iso_init_with_flag(1);
    if (r < 0) {
        error_setg(errp, "cannot initialize libisofs: %s",
                   iso_error_to_msg(r));
        return -1;
    }
    /* queue what goes wrong for iso9660_error(), print nothing: only
     * cli/ prints */
    iso_set_msgs_severities("SORRY", "NEVER", "vmferry");
    IsoImage *img = NULL;
    IsoWriteOpts *opts = NULL;
    IsoStream *streams[FSIMG_MAX_FILES] = { 0 };
    int ret = -1;
    r = iso_image_new(volid, &img);
    if (r < 0) {
        iso9660_error(errp, r, "ISO image");
        goto out;
    }
    iso_image_set_application_id(img, "vmferry");
    IsoDir *root = iso_image_get_root(img);
    iso9660_own((IsoNode *)root, ISO9660_DIR_MODE);
    for (size_t i = 0; i < n; i++)
        if (iso9660_add(root, files, i, streams, errp) < 0)
            goto out;
    opts = iso9660_opts(errp);
    if (!opts)
        goto out;
    ret = iso9660_stream(img, opts, out, errp);
out:
    if (opts)
        iso_write_opts_free(opts);
    if (img)
        iso_image_unref(img);
    iso_finish();
    return ret;
}
