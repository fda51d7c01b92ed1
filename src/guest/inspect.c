/*
 * inspect.c: the inspection pipeline: disks -> partition tables ->
 * volumes (LVM, MD, encrypted) -> filesystem probes -> libext2fs on every
 * ext filesystem -> Linux roots -> OS facts, mountpoints, kernels, boot,
 * tools, network, packages.  Builds the report of docs/inspect-json.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "guest/guest.h"
#include "guest/inspect.h"

/* A guest with more disks than this is not one VM (AWS allows 21). */
#define INSPECT_MAX_DISKS 64
/* Warnings kept: a hostile guest could otherwise produce millions. */
#define INSPECT_MAX_WARNINGS 200

struct gdev *inspect_add_dev(struct inspect *in, struct gdev *d)
{
    if (in->ndevs >= INSPECT_MAX_DEVS) {
        inspect_warn(in, "more than %d block devices; %s ignored",
                     INSPECT_MAX_DEVS, d->name);
        free(d);
        return NULL;
    }
    in->devs[in->ndevs++] = d;
    return d;
}

void inspect_warn(struct inspect *in, const char *fmt, ...)
{
    size_t n = json_object_array_length(in->warnings);
    if (n > INSPECT_MAX_WARNINGS)
        return;
    if (n == INSPECT_MAX_WARNINGS) {
        json_object_array_add(in->warnings,
                              jstr("too many warnings; "
                                                     "rest dropped"));
        return;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_object_array_add(in->warnings, jstr(buf));
}

struct gdev *inspect_find_dev(struct inspect *in, const char *key,
                              const char *value)
{
    for (size_t i = 0; i < in->ndevs; i++) {
        struct gdev *d = in->devs[i];
        const char *f = NULL;
        bool ci = true;
        if (!strcmp(key, "uuid"))
            f = d->container || d->encrypted ? "" : d->uuid;
        else if (!strcmp(key, "label"))
            f = d->label, ci = false;
        else if (!strcmp(key, "partuuid"))
            f = d->partuuid;
        else if (!strcmp(key, "partlabel"))
            f = d->partlabel, ci = false;
        else if (!strcmp(key, "dmuuid"))
            f = d->dmuuid, ci = false;
        else if (!strcmp(key, "name"))
            f = d->name, ci = false;
        if (!f || !*f)
            continue;
        if (ci ? !strcasecmp(f, value) : !strcmp(f, value))
            return d;
    }
    return NULL;
}

static void disk_name(char *out, int n)
{
    if (n < 26)
        snprintf(out, GDEV_NAME_MAX, "/dev/sd%c", 'a' + n);
    else
        snprintf(out, GDEV_NAME_MAX, "/dev/sd%c%c", 'a' + n / 26 - 1,
                 'a' + n % 26);
}

static struct json_object *disk_json(struct blk *b)
{
    struct json_object *o = json_object_new_object();
    struct stat st;
    uint64_t actual = 0;
    if (b->file && b->file->fd >= 0 && fstat(b->file->fd, &st) == 0)
        actual = (uint64_t)st.st_blocks * 512;
    jset_str(o, "filename", b->filename);
    jset_str(o, "format", b->drv->name);
    jset_int(o, "virtual-size", (int64_t)b->size);
    jset_int(o, "allocated-size", (int64_t)actual);
    jset_str(o, "backing-file", b->backing_name);
    if (b->drv->info) {
        struct json_object *spec = json_object_new_object();
        vf_error *err = NULL;
        if (b->drv->info(b, spec, &err) < 0) {
            error_free(err);
            json_object_put(spec);
        } else {
            json_object_object_add(o, "format-specific", spec);
        }
    }
    return o;
}

/* RAID1 members hold the whole array at their data offset: expose the
 * first member of each array as /dev/mdN (other levels: reported only). */
static void md_assemble(struct inspect *in, struct json_object *md)
{
    size_t n = in->ndevs;
    int num = 0;
    for (size_t i = 0; i < n; i++) {
        struct gdev *m = in->devs[i];
        if (strcmp(m->fstype, "linux_raid_member"))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(in->devs[k]->fstype, "linux_raid_member") &&
                !strcmp(in->devs[k]->uuid, m->uuid))
                seen = true;
        struct json_object *mj = NULL;
        for (size_t k = 0; k < json_object_array_length(md); k++) {
            struct json_object *x = json_object_array_get_idx(md, k);
            const char *dn = jget_str(x, "device");
            if (dn && !strcmp(dn, m->name))
                mj = x;
        }
        bool ok = m->md_level == 1 && m->md_size > 0 &&
                  m->md_off <= m->size && m->md_size <= m->size - m->md_off;
        if (mj)
            jset_bool(mj, "readable", ok);
        if (seen || !ok || m->lv)
            continue;
        struct gdev *a = calloc(1, sizeof(*a));
        if (!a)
            return;
        snprintf(a->name, sizeof(a->name), "/dev/md%d", num++);
        a->blk = m->blk;
        a->base = m->base + m->md_off;
        a->no_write = "an MD array is read through one member; writing "
                      "it would split the mirror";
        a->size = m->md_size;
        a->disk = m->disk;
        if (mj)
            jset_str(mj, "array", a->name);
        if (!inspect_add_dev(in, a))
            return;
    }
}

static void view_free(struct gview *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->m[i].mp);
    v->n = 0;
    gview_written_free(v);
}

static void inspect_root(struct inspect *in, struct gdev *d,
                         struct json_object *oses)
{
    struct gview v = { .n = 1 };
    v.m[0].mp = strdup("/");
    v.m[0].fs = d->fs;
    if (!v.m[0].mp)
        return;
    if (!os_is_linux_root(&v)) {
        view_free(&v);
        return;
    }
    struct json_object *os = json_object_new_object();
    jset_str(os, "root", d->name);
    os_inspect(in, &v, os);
    os_mountpoints(in, &v, os);
    json_object_object_add(os, "kernels", kernels_inspect(in, &v));
    json_object_object_add(os, "boot", boot_inspect(in, &v));
    struct json_object *pk = apps_packages(in, &v, jget_str(os, "distro"));
    json_object_object_add(os, "tools", apps_tools(in, &v, pk));
    json_object_object_add(os, "network", apps_network(in, &v));
    json_object_object_add(os, "packages", pk);
    json_object_array_add(oses, os);
    view_free(&v);
}

struct json_object *inspect_images(char *const *paths, int n,
                                   const struct blk_open_opts *oo,
                                   vf_error **errp)
{
    if (n < 1 || n > INSPECT_MAX_DISKS) {
        error_setg(errp, "%d disks: between 1 and %d expected", n,
                   INSPECT_MAX_DISKS);
        return NULL;
    }
    struct blk **b = calloc((size_t)n, sizeof(*b));
    struct json_object *rep = NULL;
    int i;
    if (!b) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        b[i] = blk_open(paths[i], true, oo, errp);
        if (!b[i])
            break;
    }
    if (i == n)
        rep = inspect_disks(b, (size_t)n, 0, errp);
    for (int k = 0; k < i; k++)
        blk_close(b[k]);
    free(b);
    return rep;
}

struct inspect *inspect_open(struct blk *const *disks, size_t n,
                             unsigned flags, struct json_object **report,
                             vf_error **errp)
{
    *report = NULL;
    if (n < 1 || n > INSPECT_MAX_DISKS) {
        error_setg(errp, "%zu disks: between 1 and %d expected", n,
                   INSPECT_MAX_DISKS);
        return NULL;
    }
    struct inspect *in = calloc(1, sizeof(*in));
    struct json_object *rep = NULL;
    if (!in) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    in->disks = (struct blk **)disks;
    in->ndisks = n;
    in->warnings = json_object_new_array();
    rep = json_object_new_object();
    jset_int(rep, "schema-version", INSPECT_SCHEMA_VERSION);
    struct json_object *dj_arr = json_object_new_array();
    json_object_object_add(rep, "disks", dj_arr);
    for (size_t i = 0; i < in->ndisks; i++) {
        struct gdev *d = calloc(1, sizeof(*d));
        if (!d)
            break;
        disk_name(d->name, (int)i);
        d->blk = in->disks[i];
        d->size = in->disks[i]->size;
        d->disk = (int)i;
        d->is_disk = true;
        if (!inspect_add_dev(in, d))
            break;
        struct json_object *dj = disk_json(in->disks[i]);
        jset_str(dj, "device", d->name);
        json_object_object_add(dj, "partition-table", part_scan(in, d, (int)i));
        json_object_array_add(dj_arr, dj);
    }

    /* Probe every device (partitions after their disk). */
    size_t nphys = in->ndevs;
    struct json_object *fss = json_object_new_array();
    struct json_object *enc = json_object_new_array();
    struct json_object *md = json_object_new_array();
    for (size_t i = 0; i < nphys; i++) {
        struct gdev *d = in->devs[i];
        if (d->has_table || d->container)
            continue;
        struct json_object *f = fsprobe(d);
        if (f && d->encrypted)
            json_object_array_add(enc, json_object_get(f));
        if (f && !strcmp(d->fstype, "linux_raid_member"))
            json_object_array_add(md, json_object_get(f));
        if (f && !d->container && !d->encrypted)
            json_object_array_add(fss, f);
        else
            json_object_put(f);
    }
    md_assemble(in, md);
    struct json_object *vols = json_object_new_object();
    struct json_object *lvm = lvm_scan(in);
    json_object_object_add(vols, "lvm", lvm);
    json_object_object_add(vols, "md", md);
    json_object_object_add(vols, "encrypted", enc);
    for (size_t i = nphys; i < in->ndevs; i++) {
        struct gdev *d = in->devs[i];
        struct json_object *f = fsprobe(d);
        if (f && d->encrypted)
            json_object_array_add(enc, json_object_get(f));
        if (f && !d->container && !d->encrypted)
            json_object_array_add(fss, f);
        else
            json_object_put(f);
    }
    json_object_object_add(rep, "volumes", vols);

    /* Open the ext filesystems; say which others cannot be read yet. */
    for (size_t i = 0; i < json_object_array_length(fss); i++) {
        struct json_object *f = json_object_array_get_idx(fss, i);
        struct gdev *d = inspect_find_dev(in, "name", jget_str(f, "device"));
        if (!d)
            continue;
        if (!strncmp(d->fstype, "ext", 3) && (flags & INSPECT_NO_FILES)) {
            jset_bool(f, "readable", false);
        } else if (!strncmp(d->fstype, "ext", 3)) {
            vf_error *err = NULL;
            if (flags & INSPECT_RW) {
                /* a journal that needs recovery is replayed into the
                 * writable device first; prepare reports it, and stops
                 * when the replay failed */
                struct jbd2_stats js;
                int jr = gfs_replay_journal(d, &js, &err);
                if (jr > 0) {
                    jset_bool(f, "journal-replayed", true);
                    jset_int(f, "journal-transactions", js.transactions);
                    jset_int(f, "journal-blocks", (int64_t)js.blocks);
                } else if (jr < 0) {
                    jset_str(f, "journal-replay-error", error_msg(err));
                    inspect_warn(in, "%s", error_msg(err));
                    error_free(err);
                    err = NULL;
                }
                /* editable when it can be; else read-only, and an edit
                 * on it says why */
                d->fs = gfs_open_rw(d, &err);
                if (!d->fs) {
                    jset_str(f, "not-editable-reason", error_msg(err));
                    char why[256];
                    snprintf(why, sizeof(why), "%s", error_msg(err));
                    error_free(err);
                    err = NULL;
                    d->fs = gfs_open(d, &err);
                    if (d->fs)
                        gfs_set_ro_reason(d->fs, why);
                }
            } else {
                d->fs = gfs_open(d, &err);
            }
            jset_bool(f, "readable", d->fs != NULL);
            if (!d->fs) {
                jset_str(f, "not-readable-reason", error_msg(err));
                inspect_warn(in, "%s", error_msg(err));
                error_free(err);
            }
        } else {
            jset_bool(f, "readable", false);
            jset_str(f, "not-readable-reason",
                     !strcmp(d->fstype, "swap") ? "swap space"
                     : "no reader for this filesystem type yet");
        }
    }
    json_object_object_add(rep, "filesystems", fss);

    struct json_object *oses = json_object_new_array();
    for (size_t i = 0; i < in->ndevs; i++)
        if (in->devs[i]->fs)
            inspect_root(in, in->devs[i], oses);
    json_object_object_add(rep, "operatingsystems", oses);
    struct json_object *fw = json_object_new_object();
    boot_disks(in, jget_str(json_object_array_get_idx(oses, 0), "arch"),
               !(flags & INSPECT_NO_FILES), fw);
    json_object_object_add(rep, "firmware", fw);
    json_object_object_add(rep, "warnings", json_object_get(in->warnings));
    *report = rep;
    return in;
}

void inspect_close(struct inspect *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->ndevs; i++)
        gfs_close(in->devs[i]->fs);
    for (size_t i = 0; i < in->ndevs; i++) {
        lv_map_free(in->devs[i]->lv);
        free(in->devs[i]);
    }
    json_object_put(in->warnings);
    free(in);
}

struct json_object *inspect_disks(struct blk *const *disks, size_t n,
                                  unsigned flags, vf_error **errp)
{
    struct json_object *rep;
    struct inspect *in = inspect_open(disks, n, flags & ~INSPECT_RW, &rep,
                                      errp);
    inspect_close(in);
    return rep;
}

struct gview *inspect_os_view(struct inspect *in, const char *root,
                              vf_error **errp)
{
    struct gdev *d = inspect_find_dev(in, "name", root);
    if (!d || !d->fs) {
        error_setg(errp, "%s: no readable root filesystem there", root);
        return NULL;
    }
    struct gview *v = calloc(1, sizeof(*v));
    if (!v || !(v->m[0].mp = strdup("/"))) {
        free(v);
        error_setg(errp, "out of memory");
        return NULL;
    }
    v->n = 1;
    v->m[0].fs = d->fs;
    /* the fstab's ext mounts, as inspection found them (the facts go to
     * a scratch object: the report has them already) */
    struct json_object *scratch = json_object_new_object();
    os_mountpoints(in, v, scratch);
    json_object_put(scratch);
    return v;
}

void inspect_view_free(struct gview *v)
{
    if (!v)
        return;
    view_free(v);
    free(v);
}

int inspect_flush(struct inspect *in, vf_error **errp)
{
    for (size_t i = 0; i < in->ndevs; i++)
        if (in->devs[i]->fs && gfs_flush(in->devs[i]->fs, errp) < 0)
            return -1;
    return 0;
}
