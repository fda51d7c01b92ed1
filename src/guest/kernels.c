/*
 * kernels.c: the guest's kernels: each /boot/vmlinuz-* with its modules
 * directory, config and initramfs; for each paravirtual driver (virtio,
 * Hyper-V, Xen, VMware) whether it exists as a module (.ko, .ko.xz,
 * .ko.zst, .ko.gz), is built in (modules.builtin or CONFIG_...=y), and is
 * inside the initramfs (so the root disk can be found at boot).
 *
 * virt-v2v's rule (libguestfs-common mldrivers/linux_kernels.ml): a
 * driver is supported when its module file exists or the config says so;
 * we add the initramfs check it leaves to dracut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/initramfs.h"
#include "guest/readahead.h"

/* /boot and /lib/modules listings: a few dozen entries in practice. */
#define DIR_MAX 10000
/* Kernels reported: more than this many installed kernels is junk. */
#define KERNELS_MAX 32
/* modules.dep / modules.builtin / config: a few MiB at most (Debian's
 * modules.dep is ~500 KiB, config ~270 KiB). */
#define KTEXT_MAX (16u << 20)
/* Read-ahead chunk for the initramfs (two of them in memory). */
#define RA_CHUNK (1u << 20)
/* Walking a modules tree without modules.dep: depth and entry caps. */
#define MODWALK_DEPTH 12
#define MODWALK_MAX 200000

static const struct kdrv {
    const char *name;      /* module name, '_' form */
    const char *config;    /* CONFIG_ symbol */
    const char *group;     /* virtio, hyperv, xen, vmware */
    bool storage;          /* needed to find the root disk */
} kdrvs[] = {
    { "virtio_blk", "CONFIG_VIRTIO_BLK", "virtio", true },
    { "virtio_scsi", "CONFIG_SCSI_VIRTIO", "virtio", true },
    { "virtio_net", "CONFIG_VIRTIO_NET", "virtio", false },
    { "virtio_pci", "CONFIG_VIRTIO_PCI", "virtio", true },
    { "hv_vmbus", "CONFIG_HYPERV", "hyperv", true },
    { "hv_storvsc", "CONFIG_HYPERV_STORAGE", "hyperv", true },
    { "hv_netvsc", "CONFIG_HYPERV_NET", "hyperv", false },
    { "xen_blkfront", "CONFIG_XEN_BLKDEV_FRONTEND", "xen", true },
    { "xen_netfront", "CONFIG_XEN_NETDEV_FRONTEND", "xen", false },
    { "vmw_pvscsi", "CONFIG_VMWARE_PVSCSI", "vmware", true },
    { "vmxnet3", "CONFIG_VMXNET3", "vmware", false },
};
#define NDRV (sizeof(kdrvs) / sizeof(kdrvs[0]))

struct kstate {
    bool module[NDRV], builtin[NDRV], initrd[NDRV];
    size_t nmods;
};

static void note_module(struct kstate *k, const char *path)
{
    char mod[64];
    if (!modname_from_file(path, mod, sizeof(mod)))
        return;
    k->nmods++;
    for (size_t i = 0; i < NDRV; i++)
        if (!strcmp(mod, kdrvs[i].name))
            k->module[i] = true;
}

struct walk {
    struct gview *v;
    struct kstate *k;
    char path[1024];
    int depth;
    size_t seen;
};

static int walk_cb(const char *name, enum gtype t, void *opaque);

static void walk_dir(struct walk *w)
{
    vf_error *err = NULL;
    if (w->depth > MODWALK_DEPTH || w->seen > MODWALK_MAX)
        return;
    if (gview_list(w->v, w->path, MODWALK_MAX, walk_cb, w, &err) < 0)
        error_free(err);
}

static int walk_cb(const char *name, enum gtype t, void *opaque)
{
    struct walk *w = opaque;
    if (++w->seen > MODWALK_MAX)
        return 1;
    size_t l = strlen(w->path);
    if (t == GT_DIR) {
        if (l + strlen(name) + 2 >= sizeof(w->path))
            return 0;
        sprintf(w->path + l, "/%s", name);
        w->depth++;
        walk_dir(w);
        w->depth--;
        w->path[l] = 0;
    } else if (t == GT_FILE) {
        note_module(w->k, name);
    }
    return 0;
}

static void scan_modules(struct inspect *in, struct gview *v,
                         const char *mdir, struct kstate *k,
                         struct json_object *kj)
{
    char p[1100];
    char *text = NULL;
    size_t len;
    vf_error *err = NULL;
    if (snprintf(p, sizeof(p), "%s/modules.dep", mdir) >= (int)sizeof(p))
        return;
    if (gview_stat(v, p, NULL) == GT_FILE &&
        gview_read(v, p, KTEXT_MAX, &text, &len, &err) == 0) {
        /* "kernel/drivers/block/virtio_blk.ko.xz: dep dep" per line */
        for (char *line = text, *nl; line && *line; line = nl) {
            nl = strchr(line, '\n');
            if (nl)
                *nl++ = 0;
            char *colon = strchr(line, ':');
            if (colon)
                *colon = 0;
            note_module(k, line);
        }
        free(text);
        jset_str(kj, "modules-source", "modules.dep");
    } else {
        if (err) {
            inspect_warn(in, "%s", error_msg(err));
            error_free(err);
            err = NULL;
        }
        struct walk w = { .v = v, .k = k };
        if (snprintf(w.path, sizeof(w.path), "%s", mdir) >= (int)sizeof(w.path))
            return;
        walk_dir(&w);
        jset_str(kj, "modules-source", "directory walk");
    }
    if (snprintf(p, sizeof(p), "%s/modules.builtin", mdir) >= (int)sizeof(p))
        return;
    if (gview_stat(v, p, NULL) == GT_FILE &&
        gview_read(v, p, KTEXT_MAX, &text, &len, &err) == 0) {
        for (char *line = text, *nl; line && *line; line = nl) {
            nl = strchr(line, '\n');
            if (nl)
                *nl++ = 0;
            char mod[64];
            if (!modname_from_file(line, mod, sizeof(mod)))
                continue;
            for (size_t i = 0; i < NDRV; i++)
                if (!strcmp(mod, kdrvs[i].name))
                    k->builtin[i] = true;
        }
        free(text);
    }
    error_free(err);
}

static void scan_config(struct gview *v, const char *path, struct kstate *k)
{
    char *text = NULL;
    size_t len;
    vf_error *err = NULL;
    if (gview_read(v, path, KTEXT_MAX, &text, &len, &err) < 0) {
        error_free(err);
        return;
    }
    for (size_t i = 0; i < NDRV; i++) {
        char key[80];
        snprintf(key, sizeof(key), "\n%s=y", kdrvs[i].config);
        if (strstr(text, key) || !strncmp(text, key + 1, strlen(key + 1)))
            k->builtin[i] = true;
        snprintf(key, sizeof(key), "\n%s=m", kdrvs[i].config);
        /* =m alone does not prove the file exists: module[] stays as the
         * modules tree says. */
    }
    free(text);
}

static long gfile_reader(void *opaque, void *buf, size_t len,
                         vf_error **errp)
{
    return gfile_read(opaque, buf, len, errp);
}

static void scan_initrd(struct inspect *in, struct gview *v,
                        const char *path, struct kstate *k,
                        struct json_object *kj)
{
    vf_error *err = NULL;
    struct gfile *f = gview_open(v, path, &err);
    struct json_object *ij = json_object_new_object();
    json_object_object_add(kj, "initramfs-contents", ij);
    if (!f) {
        jset_str(ij, "error", error_msg(err));
        error_free(err);
        return;
    }
    struct initrd_result r;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < NDRV; i++)
        r.want[r.nwant++] = kdrvs[i].name;
    r.stop_when_found = true;
    /* Reading through ext4 and the image format overlaps inflating: the
     * helper thread alone touches the view until readahead_end. */
    struct readahead *ra = readahead_start(gfile_reader, f, RA_CHUNK, NULL);
    int rc = ra ? initrd_scan(readahead_read, ra, &r, &err)
                : initrd_scan(gfile_reader, f, &r, &err);
    readahead_end(ra);
    gfile_close(f);
    for (size_t i = 0; i < NDRV; i++)
        k->initrd[i] = r.found[i];
    jset_int(ij, "files", (int64_t)r.files);
    jset_str(ij, "compression", r.compression ? r.compression : "none");
    jset_bool(ij, "early-microcode", r.microcode);
    if (r.partial)
        jset_bool(ij, "complete", false);
    struct json_object *segs = json_object_new_array();
    for (int i = 0; i < r.nsegs; i++) {
        struct json_object *s = json_object_new_object();
        jset_str(s, "compression", r.segs[i].compression);
        jset_int(s, "files", (int64_t)r.segs[i].files);
        json_object_array_add(segs, s);
    }
    json_object_object_add(ij, "segments", segs);
    if (rc < 0) {
        jset_str(ij, "error", error_msg(err));
        inspect_warn(in, "%s: %s", path, error_msg(err));
        error_free(err);
    }
}

/* pats: pairs of prefix and suffix around the version, NULL-ended */
static const char *first_existing(struct gview *v, char *buf, size_t len,
                                  const char *const *pats, const char *ver)
{
    for (int i = 0; pats[i]; i += 2) {
        if (snprintf(buf, len, "%s%s%s", pats[i], ver, pats[i + 1]) >=
            (int)len)
            continue;
        if (gview_stat(v, buf, NULL) == GT_FILE)
            return buf;
    }
    return NULL;
}

struct names {
    char **v;
    size_t n, cap;
    size_t max;
};

static int collect_cb(const char *name, enum gtype t, void *opaque)
{
    struct names *ns = opaque;
    if (ns->n >= ns->max)
        return 1;
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 16;
        char **nv = realloc(ns->v, nc * sizeof(*nv));
        if (!nv)
            return 1;
        ns->v = nv;
        ns->cap = nc;
    }
    ns->v[ns->n] = strdup(name);
    if (ns->v[ns->n])
        ns->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
}

/* The modules directory for kernel version ver: /lib/modules/ver, or
 * (Alpine's vmlinuz-lts) the one whose name ends in "-ver". */
static bool find_moddir(struct gview *v, const char *ver,
                        struct names *mods, char *out, size_t len)
{
    snprintf(out, len, "/lib/modules/%s", ver);
    if (gview_stat(v, out, NULL) == GT_DIR)
        return true;
    snprintf(out, len, "/usr/lib/modules/%s", ver);
    if (gview_stat(v, out, NULL) == GT_DIR)
        return true;
    size_t vl = strlen(ver);
    for (size_t i = 0; i < mods->n; i++) {
        size_t ml = strlen(mods->v[i]);
        if (ml > vl + 1 && mods->v[i][ml - vl - 1] == '-' &&
            !strcmp(mods->v[i] + ml - vl, ver)) {
            snprintf(out, len, "/lib/modules/%s", mods->v[i]);
            return true;
        }
    }
    return false;
}

static struct json_object *kernel_one(struct inspect *in, struct gview *v,
                                      const char *file, struct names *mods)
{
    const char *ver = file + strlen("vmlinuz-");
    struct json_object *kj = json_object_new_object();
    char path[1100], mdir[1100], cfg[1100], initrd[1100];
    snprintf(path, sizeof(path), "/boot/%s", file);
    jset_str(kj, "version", ver);
    jset_str(kj, "vmlinuz", path);
    struct kstate k;
    memset(&k, 0, sizeof(k));
    bool have_mdir = find_moddir(v, ver, mods, mdir, sizeof(mdir));
    jset_str(kj, "modules-dir", have_mdir ? mdir : NULL);
    if (have_mdir)
        scan_modules(in, v, mdir, &k, kj);
    static const char *const cfgs[] = { "/boot/config-", "", NULL };
    const char *c = first_existing(v, cfg, sizeof(cfg), cfgs, ver);
    if (!c && have_mdir) {
        if (snprintf(cfg, sizeof(cfg), "%s/config", mdir) < (int)sizeof(cfg) &&
            gview_stat(v, cfg, NULL) == GT_FILE)
            c = cfg;
    }
    jset_str(kj, "config", c);
    if (c)
        scan_config(v, c, &k);
    static const char *const irds[] = {
        "/boot/initrd.img-", "", "/boot/initramfs-", ".img",
        "/boot/initrd-", "", "/boot/initramfs-", "", "/boot/initrd-", ".img",
        NULL };
    const char *ir = first_existing(v, initrd, sizeof(initrd), irds, ver);
    jset_str(kj, "initramfs", ir);
    if (ir)
        scan_initrd(in, v, ir, &k, kj);
    jset_int(kj, "modules", (int64_t)k.nmods);
    struct json_object *dj = json_object_new_object();
    for (size_t i = 0; i < NDRV; i++) {
        struct json_object *o = json_object_new_object();
        jset_bool(o, "module", k.module[i]);
        jset_bool(o, "builtin", k.builtin[i]);
        jset_bool(o, "initramfs", k.initrd[i]);
        jset_bool(o, "available", k.module[i] || k.builtin[i]);
        jset_bool(o, "at-boot", k.builtin[i] || k.initrd[i]);
        json_object_object_add(dj, kdrvs[i].name, o);
    }
    json_object_object_add(kj, "drivers", dj);
    /* Per hypervisor: can the root disk be found at boot (every storage
     * driver of the group, except that one of virtio_blk / virtio_scsi
     * suffices), and is the network driver available. */
    static const char *const groups[] = { "virtio", "hyperv", "xen",
                                          "vmware" };
    struct json_object *gj = json_object_new_object();
    for (size_t g = 0; g < 4; g++) {
        bool boot = true, net = false, virtio_disk = false;
        for (size_t i = 0; i < NDRV; i++) {
            if (strcmp(kdrvs[i].group, groups[g]))
                continue;
            bool at = k.builtin[i] || k.initrd[i];
            if (!strcmp(kdrvs[i].name, "virtio_blk") ||
                !strcmp(kdrvs[i].name, "virtio_scsi"))
                virtio_disk |= at;
            else if (kdrvs[i].storage)
                boot &= at;
            else
                net |= k.module[i] || k.builtin[i];
        }
        if (g == 0)
            boot &= virtio_disk;
        struct json_object *o = json_object_new_object();
        jset_bool(o, "storage-at-boot", boot);
        jset_bool(o, "network", net);
        json_object_object_add(gj, groups[g], o);
    }
    json_object_object_add(kj, "hypervisors", gj);
    return kj;
}

struct json_object *kernels_inspect(struct inspect *in, struct gview *v)
{
    struct json_object *arr = json_object_new_array();
    struct names boot = { .max = DIR_MAX }, mods = { .max = DIR_MAX };
    vf_error *err = NULL;
    if (gview_stat(v, "/boot", NULL) != GT_DIR)
        return arr;
    if (gview_list(v, "/boot", DIR_MAX, collect_cb, &boot, &err) < 0) {
        inspect_warn(in, "%s", error_msg(err));
        error_free(err);
        err = NULL;
    }
    if (gview_stat(v, "/lib/modules", NULL) == GT_DIR &&
        gview_list(v, "/lib/modules", DIR_MAX, collect_cb, &mods, &err) < 0) {
        inspect_warn(in, "%s", error_msg(err));
        error_free(err);
    }
    if (boot.n)                /* an empty /boot: v is NULL */
        qsort(boot.v, boot.n, sizeof(char *), cmp_str);
    int count = 0;
    for (size_t i = 0; i < boot.n; i++) {
        if (strncmp(boot.v[i], "vmlinuz-", 8) || !boot.v[i][8])
            continue;
        char p[600];
        snprintf(p, sizeof(p), "/boot/%s", boot.v[i]);
        if (gview_stat(v, p, NULL) != GT_FILE)
            continue;
        if (++count > KERNELS_MAX) {
            inspect_warn(in, "more than %d kernels in /boot; rest ignored",
                         KERNELS_MAX);
            break;
        }
        json_object_array_add(arr, kernel_one(in, v, boot.v[i], &mods));
    }
    names_free(&boot);
    names_free(&mods);
    return arr;
}
