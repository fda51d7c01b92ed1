/*
 * edit-devices.c: --remap-devices BUS and --fstab-uuids: the guest's
 * unstable disk names (/dev/sdX, hdX, vdX, xvdX, nvmeXnY, cciss/cXdY)
 * rewritten for the new hypervisor's disk bus, or replaced by the UUID
 * of the filesystem (or LUKS container) inspection found there.
 *
 * Names map disk by disk: the Nth disk of the source's naming (sdb,
 * hdb, xvdb, vdb, nvme1n1 are all disk 1) becomes the Nth disk of the
 * target's; partition numbers are kept.  This assumes the disks are
 * given to vmferry, and attached on the target, in the guest's order.
 * Where: /etc/fstab (the source field), /etc/crypttab (the device
 * field), root= / resume= / real_root= in GRUB (grub.cfg, menu.lst,
 * grubenv, /etc/default/grub), BLS / systemd-boot entries, extlinux and
 * /etc/kernel/cmdline, and GRUB's device.map.  UUID=, LABEL= and
 * /dev/mapper names are stable and left alone.  virt-v2v does the same
 * through Augeas (convert_linux.ml, remap_block_devices).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* Boot and mount configuration files: a few KiB; a 4 MiB one is junk
 * (hostile tests use 50 MiB). */
#define CONF_MAX (4u << 20)
/* sdzz is disk 701: more disks than any hypervisor attaches. */
#define DISK_MAX 702
#define PART_MAX 4096
/* BLS entry directories: one entry per kernel. */
#define ENTRIES_MAX 10000

enum bus {
    BUS_UUID = -1,             /* --fstab-uuids */
    BUS_VIRTIO_BLK, BUS_VIRTIO_SCSI, BUS_SATA, BUS_XEN, BUS_HYPERV,
    BUS_NVME,
};

static const struct {
    const char *name;
    enum bus bus;
} buses[] = {
    { "virtio-blk", BUS_VIRTIO_BLK }, { "virtio-scsi", BUS_VIRTIO_SCSI },
    { "sata", BUS_SATA }, { "xen", BUS_XEN }, { "hyperv", BUS_HYPERV },
    { "nvme", BUS_NVME },
};

struct devname {
    int disk;                  /* 0-based */
    int part;                  /* 0: the whole disk */
    bool ide;                  /* hdX (an IDE CD-ROM candidate) */
};

/* "a".."z" -> 0..25, "aa" -> 26, ..., as Linux names sd disks. */
static int letters_index(const char *s, size_t *used)
{
    int idx = -1;
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z' && n < 3) {
        idx = (idx + 1) * 26 + (s[n] - 'a');
        n++;
    }
    if (n == 0 || (s[n] >= 'a' && s[n] <= 'z'))
        return -1;
    *used = n;
    return idx;
}

static int number(const char *s, size_t *used, int max)
{
    size_t n = 0;
    int v = 0;
    while (isdigit((unsigned char)s[n])) {
        if (n > 0 && v == 0)
            return -1;          /* a leading zero is not a kernel name */
        v = v * 10 + (s[n] - '0');
        if (v > max)
            return -1;
        n++;
    }
    if (!n)
        return -1;
    *used = n;
    return v;
}

/* Parse the whole of name (what follows "/dev/"). */
static bool parse_dev(const char *name, struct devname *d)
{
    memset(d, 0, sizeof(*d));
    size_t u = 0, u2 = 0;
    const char *s = name;
    if (!strncmp(s, "nvme", 4)) {
        int ctrl = number(s + 4, &u, DISK_MAX - 1);
        if (ctrl < 0 || s[4 + u] != 'n')
            return false;
        s += 4 + u + 1;
        int ns = number(s, &u, 1);
        if (ns != 1)
            return false;       /* other namespaces: no disk order */
        s += u;
        d->disk = ctrl;
        if (*s == 'p') {
            if ((d->part = number(s + 1, &u2, PART_MAX)) <= 0)
                return false;
            s += 1 + u2;
        }
        return *s == 0;
    }
    if (!strncmp(s, "cciss/c", 7)) {
        if (number(s + 7, &u, 15) < 0 || s[7 + u] != 'd')
            return false;
        s += 7 + u + 1;
        if ((d->disk = number(s, &u, DISK_MAX - 1)) < 0)
            return false;
        s += u;
        if (*s == 'p') {
            if ((d->part = number(s + 1, &u2, PART_MAX)) <= 0)
                return false;
            s += 1 + u2;
        }
        return *s == 0;
    }
    if (!strncmp(s, "xvd", 3))
        s += 3;
    else if (!strncmp(s, "sd", 2) || !strncmp(s, "vd", 2) ||
             !strncmp(s, "hd", 2)) {
        d->ide = s[0] == 'h';
        s += 2;
    } else
        return false;
    if ((d->disk = letters_index(s, &u)) < 0 || d->disk >= DISK_MAX)
        return false;
    s += u;
    if (*s) {
        if ((d->part = number(s, &u, PART_MAX)) <= 0)
            return false;
        s += u;
    }
    return *s == 0;
}

static void letters_of(int idx, char *out)
{
    char tmp[8];
    int n = 0;
    idx++;
    while (idx > 0 && n < 7) {
        idx--;
        tmp[n++] = (char)('a' + idx % 26);
        idx /= 26;
    }
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

/* The name of disk / part on bus, with "/dev/". */
static void dev_on_bus(enum bus b, const struct devname *d, char *out,
                       size_t len)
{
    char l[8];
    letters_of(d->disk, l);
    char part[16] = "";
    if (b == BUS_NVME) {
        if (d->part)
            snprintf(part, sizeof(part), "p%d", d->part);
        snprintf(out, len, "/dev/nvme%dn1%s", d->disk, part);
        return;
    }
    if (d->part)
        snprintf(part, sizeof(part), "%d", d->part);
    const char *pre = b == BUS_VIRTIO_BLK ? "vd" : b == BUS_XEN ? "xvd" : "sd";
    snprintf(out, len, "/dev/%s%s%s", pre, l, part);
}

/* ---- UUIDs from the inspection report ---- */

static const char *uuid_in(struct json_object *arr, const char *dev)
{
    size_t n = arr && json_object_is_type(arr, json_type_array)
                   ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        struct json_object *f = json_object_array_get_idx(arr, i);
        const char *d = jget_str(f, "device"), *u = jget_str(f, "uuid");
        if (d && u && *u && !strcmp(d, dev))
            return u;
    }
    return NULL;
}

/* The UUID of what inspection found on disk / part (its names are
 * /dev/sdX by disk order); LUKS containers for crypttab. */
static const char *uuid_of(struct prep *p, const struct devname *d,
                           bool luks)
{
    char dev[64];
    dev_on_bus(BUS_SATA, d, dev, sizeof(dev));
    struct json_object *a, *v;
    if (luks) {
        if (json_object_object_get_ex(p->report, "volumes", &v) &&
            json_object_object_get_ex(v, "encrypted", &a))
            return uuid_in(a, dev);
        return NULL;
    }
    if (json_object_object_get_ex(p->report, "filesystems", &a))
        return uuid_in(a, dev);
    return NULL;
}

/* ---- rewriting one file ---- */

enum where { W_FIELD0, W_FIELD1, W_ARGS, W_ANY };

struct rw {
    struct prep *p;
    const char *file;
    const char *why;
    enum bus bus;
    enum where where;
    char *out;
    size_t len, cap;
    int changes;
    bool oom;
};

static void rw_add(struct rw *r, const char *s, size_t n)
{
    if (r->oom)
        return;
    if (r->len + n + 1 > r->cap) {
        size_t nc = r->cap ? r->cap : 4096;
        while (nc < r->len + n + 1)
            nc *= 2;
        char *no = realloc(r->out, nc);
        if (!no) {
            r->oom = true;
            return;
        }
        r->out = no;
        r->cap = nc;
    }
    memcpy(r->out + r->len, s, n);
    r->len += n;
    r->out[r->len] = 0;
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || strchr("/_.:+-", c);
}

/* The replacement for the device name at [s, s+n) (with "/dev/"), or
 * false to keep it.  fstype: fstab's type field, for CD-ROMs. */
static bool replacement(struct rw *r, const char *s, size_t n, int lineno,
                        const char *fstype, char *out, size_t olen)
{
    char name[256];
    if (n <= 5 || n - 5 >= sizeof(name))
        return false;
    memcpy(name, s + 5, n - 5);
    name[n - 5] = 0;
    struct devname d;
    if (!parse_dev(name, &d)) {
        if ((!strncmp(name, "disk/by-path/", 13) ||
             (!strncmp(name, "disk/by-id/", 11) &&
              strncmp(name + 11, "dm-", 3) && strncmp(name + 11, "lvm-", 4) &&
              strncmp(name + 11, "md-", 3))))
            prep_warn(r->p, "%s:%d: /dev/%s names the old bus; use UUID= "
                      "or LABEL= instead", r->file, lineno, name);
        return false;
    }
    if (r->bus == BUS_UUID) {
        const char *u = uuid_of(r->p, &d, r->where == W_FIELD1);
        if (!u) {
            prep_warn(r->p, "%s:%d: no UUID known for /dev/%s (not on the "
                      "disks given, or no filesystem there); left as a "
                      "device name", r->file, lineno, name);
            return false;
        }
        snprintf(out, olen, "UUID=%s", u);
        return true;
    }
    if (d.ide && fstype &&
        (!strcmp(fstype, "iso9660") || !strcmp(fstype, "udf"))) {
        snprintf(out, olen, "/dev/cdrom");
        return true;
    }
    dev_on_bus(r->bus, &d, out, olen);
    return strcmp(out, s) != 0;
}

/* Copy line [l, l+n) to the output, rewriting its device names. */
static void rw_line(struct rw *r, const char *l, size_t n, int lineno)
{
    size_t i = 0;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    if (i < n && l[i] == '#') {
        rw_add(r, l, n);
        return;
    }
    /* fields of fstab / crypttab */
    const char *f[4] = { 0 };
    size_t fl[4] = { 0 };
    for (size_t k = 0, j = i; k < 4 && j < n; k++) {
        f[k] = l + j;
        while (j < n && l[j] != ' ' && l[j] != '\t' && l[j] != '\n' &&
               l[j] != '\r')
            j++;
        fl[k] = (size_t)(l + j - f[k]);
        while (j < n && (l[j] == ' ' || l[j] == '\t'))
            j++;
    }
    char fstype[32] = "";
    if (r->where == W_FIELD0 && f[2] && fl[2] < sizeof(fstype)) {
        memcpy(fstype, f[2], fl[2]);
        fstype[fl[2]] = 0;
    }
    size_t done = 0;
    for (size_t j = 0; j < n;) {
        size_t start = 0, len = 0;
        bool cand = false;
        if (r->where == W_FIELD0 || r->where == W_FIELD1) {
            int k = r->where == W_FIELD0 ? 0 : 1;
            if (f[k] && fl[k] > 5 && !strncmp(f[k], "/dev/", 5) &&
                (size_t)(f[k] - l) >= j) {
                start = (size_t)(f[k] - l);
                len = fl[k];
                cand = true;
            }
            j = n;
        } else {
            const char *hit = NULL;
            for (size_t k = j; k + 5 <= n; k++)
                if (!strncmp(l + k, "/dev/", 5) &&
                    (k == 0 || strchr(" \t\"'(=", l[k - 1]))) {
                    hit = l + k;
                    break;
                }
            if (!hit)
                break;
            start = (size_t)(hit - l);
            len = 5;
            while (start + len < n && name_char(l[start + len]))
                len++;
            j = start + len;
            if (r->where == W_ARGS) {
                /* only the value of root=, resume=, real_root= */
                static const char *const keys[] = { "root=", "resume=",
                                                    "real_root=", NULL };
                cand = false;
                for (int q = 0; keys[q] && !cand; q++) {
                    size_t kl = strlen(keys[q]);
                    /* after a blank, a quote, or '=' as in grubenv's
                     * kernelopts=root=... */
                    cand = start >= kl &&
                           !strncmp(l + start - kl, keys[q], kl) &&
                           (start == kl ||
                            strchr(" \t\"'=", l[start - kl - 1]));
                }
            } else {
                cand = true;
            }
        }
        if (!cand)
            continue;
        char old[300], new[300];
        snprintf(old, sizeof(old), "%.*s", (int)(len < 299 ? len : 299),
                 l + start);
        if (len >= 299 || !replacement(r, old, len, lineno,
                                       fstype[0] ? fstype : NULL, new,
                                       sizeof(new)))
            continue;
        rw_add(r, l + done, start - done);
        rw_add(r, new, strlen(new));
        done = start + len;
        r->changes++;
        prep_log(r->p, r->file, r->why, "%s:%d: %s -> %s", r->file, lineno,
                 old, new);
    }
    rw_add(r, l + done, n - done);
}

/* grubenv is a 1024-byte block padded with '#': keep its size. */
static bool grubenv_fix(struct rw *r, size_t oldlen)
{
    if (r->len > oldlen) {
        size_t extra = r->len - oldlen, hashes = 0;
        while (hashes < r->len && r->out[r->len - 1 - hashes] == '#')
            hashes++;
        if (hashes < extra)
            return false;
        r->len -= extra;
        r->out[r->len] = 0;
    } else {
        while (r->len < oldlen && !r->oom)
            rw_add(r, "#", 1);
    }
    return !r->oom;
}

static int rewrite_file(struct prep *p, const char *file, enum where where,
                        enum bus bus, const char *why, vf_error **errp)
{
    uint64_t size = 0;
    if (gview_lstat(p->v, file) != GT_FILE)
        return 0;   /* absent, or a link to a file edited by its name */
    gview_stat(p->v, file, &size);
    if (size > CONF_MAX) {
        prep_warn(p, "%s: %llu bytes, larger than any real one (limit %u); "
                  "its device names are not rewritten", file,
                  (unsigned long long)size, CONF_MAX);
        return 0;
    }
    size_t len = 0;
    char *text = prep_read(p, file, CONF_MAX, &len, errp);
    if (!text)
        return -1;
    if (memchr(text, 0, len)) {
        prep_warn(p, "%s: holds NUL bytes, not a text file; left alone",
                  file);
        free(text);
        return 0;
    }
    struct rw r = { .p = p, .file = file, .why = why, .bus = bus,
                    .where = where };
    int lineno = 0;
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        if (l[n] == '\n')
            n++;
        rw_line(&r, l, n, ++lineno);
        l += n;
    }
    int ret = 0;
    const char *base = strrchr(file, '/');
    if (r.oom) {
        error_setg(errp, "out of memory");
        ret = -1;
    } else if (r.changes && !strcmp(base ? base + 1 : file, "grubenv") &&
               !grubenv_fix(&r, len)) {
        prep_warn(p, "%s: the new names do not fit its 1024-byte block; "
                  "left as it was", file);
    } else if (r.changes) {
        ret = gview_write(p->v, file, r.out ? r.out : "", r.len, -1, -1, -1,
                          0, errp);
    }
    free(text);
    free(r.out);
    return ret;
}

struct entries {
    char **v;
    size_t n;
    bool oom;
};

static int entries_cb(const char *name, enum gtype t, void *opaque)
{
    struct entries *e = opaque;
    size_t l = strlen(name);
    if (t != GT_FILE || l < 6 || strcmp(name + l - 5, ".conf"))
        return 0;
    char **nv = realloc(e->v, (e->n + 1) * sizeof(*nv));
    if (!nv || !(nv[e->n] = strdup(name))) {
        if (nv)
            e->v = nv;
        e->oom = true;
        return 1;
    }
    e->v = nv;
    e->n++;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rewrite_all(struct prep *p, enum bus bus, const char *why,
                       vf_error **errp)
{
    static const struct {
        const char *path;
        enum where where;
    } files[] = {
        { "/etc/fstab", W_FIELD0 },
        { "/etc/crypttab", W_FIELD1 },
        { "/boot/grub/grub.cfg", W_ARGS },
        { "/boot/grub2/grub.cfg", W_ARGS },
        { "/boot/grub/menu.lst", W_ARGS },
        { "/boot/grub/grub.conf", W_ARGS },
        { "/boot/grub/grubenv", W_ARGS },
        { "/boot/grub2/grubenv", W_ARGS },
        { "/etc/default/grub", W_ARGS },
        { "/boot/extlinux/extlinux.conf", W_ARGS },
        { "/boot/extlinux.conf", W_ARGS },
        { "/boot/syslinux/syslinux.cfg", W_ARGS },
        { "/etc/kernel/cmdline", W_ARGS },
        { "/boot/grub/device.map", W_ANY },
        { "/boot/grub2/device.map", W_ANY },
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        /* device.map lists devices, not filesystems: no UUIDs there */
        if (bus == BUS_UUID && files[i].where == W_ANY)
            continue;
        if (rewrite_file(p, files[i].path, files[i].where, bus, why,
                         errp) < 0)
            return -1;
    }
    static const char *const dirs[] = { "/boot/loader/entries",
                                         "/boot/efi/loader/entries",
                                         "/efi/loader/entries" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (gview_stat(p->v, dirs[i], NULL) != GT_DIR)
            continue;
        struct entries e = { 0 };
        vf_error *err = NULL;
        if (gview_list(p->v, dirs[i], ENTRIES_MAX, entries_cb, &e,
                       &err) < 0) {
            prep_warn(p, "%s", error_msg(err));
            error_free(err);
        }
        int r = e.oom ? (error_setg(errp, "out of memory"), -1) : 0;
        if (e.n)
            qsort(e.v, e.n, sizeof(*e.v), cmp_name);
        for (size_t k = 0; k < e.n; k++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/%s", dirs[i], e.v[k]);
            if (r == 0)
                r = rewrite_file(p, path, W_ARGS, bus, why, errp);
            free(e.v[k]);
        }
        free(e.v);
        if (r < 0)
            return -1;
    }
    return 0;
}

int edit_remap_devices(struct prep *p, const char *arg, vf_error **errp)
{
    for (size_t i = 0; i < sizeof(buses) / sizeof(buses[0]); i++)
        if (!strcmp(arg, buses[i].name))
            return rewrite_all(p, buses[i].bus, "--remap-devices", errp);
    error_setg(errp, "unknown bus '%s' (virtio-blk, virtio-scsi, sata, xen, "
               "hyperv, nvme)", arg);
    return -1;
}

int edit_fstab_uuids(struct prep *p, const char *arg, vf_error **errp)
{
    return rewrite_all(p, BUS_UUID, "--fstab-uuids", errp);
}
