/*
 * edit-initramfs.c: --add-drivers: make sure the drivers the new
 * hypervisor needs are in every kernel's initramfs, without running
 * dracut or update-initramfs (there is no guest to run them in).
 *
 * For each kernel, a driver that is neither built in nor already in the
 * initramfs, but exists as a module of that kernel, goes into a new
 * uncompressed cpio "newc" segment appended to the initramfs file: the
 * kernel unpacks concatenated segments in order, a later file replacing
 * an earlier one (Documentation/driver-api/early-userspace/
 * buffer-format.rst; init/initramfs.c).  The segment holds the module
 * files at the path the initramfs keeps modules (their dependencies from
 * the guest's modules.dep too), the merged modules.dep / modules.alias
 * with kmod's binary indexes (modprobe reads only the .bin files), and
 * what loads them early: initramfs-tools' conf/modules (old lines plus
 * the new names, since the new file replaces the old), or dracut's
 * etc/cmdline.d/50-vmferry.conf with rd.driver.pre=.  The new file is
 * written beside the old one and takes its name only when whole; the
 * original stays as <initrd>.pre-vmferry (a hard link: no copy).  So that
 * the next rebuild inside the guest keeps the drivers, the names also go
 * to /etc/initramfs-tools/modules or /etc/dracut.conf.d/50-vmferry.conf.
 * The kernel's modules and modprobe's indexes are in kmods.c.
 *
 * virt-v2v does the same by running the guest's dracut / mkinitrd /
 * update-initramfs in its appliance (convert_linux.ml, rebuild_initrd).
 * Every file read here comes from the guest and is hostile: sizes,
 * counts and dependency chains are capped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest/guest.h"
#include "guest/initramfs.h"
#include "prepare/initrd-build.h"
#include "prepare/prepare.h"

/* modules.dep and modules.alias inside an initramfs: see kmods.c. */
#define KTEXT_MAX (16u << 20)
/* One module file (the largest in-tree modules are ~20 MiB unpacked),
 * and all the files one segment carries. */
#define MODFILE_MAX (64u << 20)
#define SEGMENT_MAX (512u << 20)
/* Drivers one --add-drivers names. */
#define DRIVERS_MAX 32
/* Entries of the initramfs remembered (directories, symlinks, module
 * files), and the bytes of their names: a big Debian initramfs has ~3000
 * files. */
#define ARC_NAMES_MAX 200000
#define ARC_BYTES_MAX (32u << 20)
/* conf/modules and etc/cmdline.d files: a few lines. */
#define SMALL_MAX (1u << 20)
/* Copying the old initramfs into the new file, piece by piece. */
#define COPY_CHUNK (1u << 20)

/* ---- what the initramfs holds (through the scanner's visitor) ---- */

enum { ARC_DIR = 1, ARC_LINK, ARC_MOD };

struct arc_name {
    char *name;                /* normalised: no leading "./" or "/" */
    int type;
};

struct arc {
    const char *ver;
    struct arc_name *v;
    size_t n, cap, bytes;
    bool overflow, oom;
    const char *toobig;        /* a file to merge larger than we take */
    /* captured files (the last of each name wins, as in the kernel) */
    char *conf_modules;
    char *cmdline_conf;
    char *dep[2], *alias[2];   /* [0] lib/modules/VER, [1] usr/lib/... */
    char *lib_link;            /* target of a "lib" symlink */
    bool itools, dracut;
};

static const char *arc_norm(const char *name)
{
    for (;;) {
        if (name[0] == '/')
            name++;
        else if (name[0] == '.' && name[1] == '/')
            name += 2;
        else
            return name;
    }
}

static void arc_free(struct arc *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].name);
    free(a->v);
    free(a->conf_modules);
    free(a->cmdline_conf);
    for (int i = 0; i < 2; i++) {
        free(a->dep[i]);
        free(a->alias[i]);
    }
    free(a->lib_link);
}

static void arc_remember(struct arc *a, const char *name, int type)
{
    size_t l = strlen(name) + 1;
    if (a->n >= ARC_NAMES_MAX || l > ARC_BYTES_MAX - a->bytes) {
        a->overflow = true;
        return;
    }
    a->bytes += l;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        struct arc_name *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv) {
            a->oom = true;
            return;
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n].name = strdup(name);
    if (!a->v[a->n].name) {
        a->oom = true;
        return;
    }
    a->v[a->n++].type = type;
}

/* Which captured file name is: 0 none, 1 conf/modules, 2 the cmdline
 * file, 3/4 modules.dep, 5/6 modules.alias, 7 the lib symlink. */
static int arc_capture_kind(struct arc *a, const char *name)
{
    if (!strcmp(name, "conf/modules"))
        return 1;
    if (!strcmp(name, "etc/cmdline.d/50-vmferry.conf"))
        return 2;
    if (!strcmp(name, "lib"))
        return 7;
    for (int u = 0; u < 2; u++) {
        const char *pre = u ? "usr/lib/modules/" : "lib/modules/";
        size_t pl = strlen(pre), vl = strlen(a->ver);
        if (strncmp(name, pre, pl) || strncmp(name + pl, a->ver, vl) ||
            name[pl + vl] != '/')
            continue;
        const char *f = name + pl + vl + 1;
        if (!strcmp(f, "modules.dep"))
            return 3 + u;
        if (!strcmp(f, "modules.alias"))
            return 5 + u;
    }
    return 0;
}

static size_t arc_entry(void *opaque, int seg, const char *raw,
                        uint32_t mode, uint32_t size)
{
    struct arc *a = opaque;
    const char *name = arc_norm(raw);
    if (!*name)
        return 0;
    uint32_t type = mode & 0170000;
    char mod[64];
    if (!strcmp(name, "conf/initramfs.conf") ||
        !strcmp(name, "scripts/functions"))
        a->itools = true;
    if (!strncmp(name, "usr/lib/dracut/", 15) ||
        !strncmp(name, "lib/dracut/", 11))
        a->dracut = true;
    if (type == 0040000)
        arc_remember(a, name, ARC_DIR);
    else if (type == 0120000)
        arc_remember(a, name, ARC_LINK);
    else if (type == 0100000 && modname_from_file(name, mod, sizeof(mod)))
        arc_remember(a, name, ARC_MOD);
    int k = arc_capture_kind(a, name);
    if (k == 7)
        return type == 0120000 && size < 4096 ? size : 0;
    if (k == 0 || type != 0100000)
        return 0;
    if (size > (k <= 2 ? SMALL_MAX : KTEXT_MAX)) {
        /* merging a truncated copy would lose lines: refuse */
        a->toobig = k <= 2 ? "conf/modules or etc/cmdline.d file"
                           : k <= 4 ? "modules.dep" : "modules.alias";
        return 0;
    }
    return size;
}

static void arc_data(void *opaque, const char *raw, const uint8_t *d,
                     size_t len)
{
    struct arc *a = opaque;
    const char *name = arc_norm(raw);
    int k = arc_capture_kind(a, name);
    char *s = malloc(len + 1);
    if (!s) {
        a->oom = true;
        return;
    }
    memcpy(s, d, len);
    s[len] = 0;
    char **slot = k == 1 ? &a->conf_modules : k == 2 ? &a->cmdline_conf
                  : k == 3 || k == 4 ? &a->dep[k - 3]
                  : k == 5 || k == 6 ? &a->alias[k - 5]
                  : k == 7 ? &a->lib_link : NULL;
    if (!slot) {
        free(s);
        return;
    }
    free(*slot);
    *slot = s;
}

static int arc_type(const struct arc *a, const char *name)
{
    for (size_t i = a->n; i-- > 0;)
        if (!strcmp(a->v[i].name, name))
            return a->v[i].type;
    return 0;
}

static bool arc_has_module(const struct arc *a, const char *modname)
{
    char mod[64];
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].type == ARC_MOD &&
            modname_from_file(a->v[i].name, mod, sizeof(mod)) &&
            !strcmp(mod, modname))
            return true;
    return false;
}

static long gfile_reader(void *opaque, void *buf, size_t len,
                         vf_error **errp)
{
    return gfile_read(opaque, buf, len, errp);
}

static int arc_scan(struct prep *p, const char *initrd, struct arc *a,
                    vf_error **errp)
{
    struct gfile *f = gview_open(p->v, initrd, errp);
    if (!f)
        return -1;
    struct initrd_visitor vis = { arc_entry, arc_data, a };
    struct initrd_result r;
    memset(&r, 0, sizeof(r));
    r.visit = &vis;
    int rc = initrd_scan(gfile_reader, f, &r, errp);
    gfile_close(f);
    if (rc < 0)
        return -1;
    if (a->oom) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (a->overflow) {
        error_setg(errp, "more than %d entries or %u bytes of names",
                   ARC_NAMES_MAX, ARC_BYTES_MAX);
        return -1;
    }
    if (a->toobig) {
        error_setg(errp, "its %s is larger than vmferry merges", a->toobig);
        return -1;
    }
    if (r.files == 0) {
        error_setg(errp, "no cpio archive in it");
        return -1;
    }
    return 0;
}

/* ---- building the segment ---- */

/* Does a whitespace-separated list (conf/modules, add_drivers) hold
 * word as a line's first word / as a word? */
static bool has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    for (const char *s = text; s && *s;) {
        s += strspn(s, " \t\r\n\",=+");
        size_t l = strcspn(s, " \t\r\n\",=+");
        if (l == wl && !strncmp(s, word, l))
            return true;
        if (*s == '#') {
            s += strcspn(s, "\n");
            continue;
        }
        s += l;
    }
    return false;
}

/* Every ancestor directory of path the archive lacks (and the segment
 * does not have yet), then nothing else. */
static int seg_dirs(struct cpiow *w, const struct arc *a, struct textbuf *made,
                    const char *path, vf_error **errp)
{
    char buf[KMOD_PATH_MAX + 64];
    if (strlen(path) >= sizeof(buf)) {
        error_setg(errp, "%s: path too long", path);
        return -1;
    }
    strcpy(buf, path);
    for (char *s = buf; (s = strchr(s, '/')); s++) {
        *s = 0;
        char key[KMOD_PATH_MAX + 70];
        snprintf(key, sizeof(key), "\n%s\n", buf);
        if (!arc_type(a, buf) && !(made->s && strstr(made->s, key))) {
            if (cpiow_add(w, buf, 0040755, NULL, 0, errp) < 0)
                return -1;
            if (!made->len)
                textbuf_str(made, "\n");
            textbuf_str(made, buf);
            textbuf_str(made, "\n");
        }
        *s = '/';
    }
    return 0;
}

/* modules.dep for the segment: the archive's (or, without one, a line
 * per module file it holds), with the added modules' lines. */
static char *merged_dep(struct kmod_plan *pl, const struct arc *a, int u,
                        const char *base, size_t *len)
{
    struct textbuf t = { 0 };
    const char *old = a->dep[u];
    if (old) {
        for (const char *l = old; *l;) {
            size_t n = strcspn(l, "\n");
            const char *colon = memchr(l, ':', n);
            bool replaced = false;
            if (colon) {
                char path[KMOD_PATH_MAX], mod[64];
                size_t pn = (size_t)(colon - l);
                if (pn < sizeof(path)) {
                    memcpy(path, l, pn);
                    path[pn] = 0;
                    if (modname_from_file(path, mod, sizeof(mod)))
                        for (size_t i = 0; i < pl->nadd; i++)
                            if (!strcmp(pl->add[i]->name, mod))
                                replaced = true;
                }
            }
            if (!replaced && n) {
                textbuf_add(&t, l, n);
                textbuf_str(&t, "\n");
            }
            l += n;
            if (*l)
                l++;
        }
    } else {
        size_t bl = strlen(base);
        for (size_t i = 0; i < a->n; i++) {
            const char *nm = a->v[i].name;
            if (a->v[i].type != ARC_MOD || strncmp(nm, base, bl) ||
                nm[bl] != '/')
                continue;
            const char *rel = nm + bl + 1;
            struct kmod *k = kmod_by_path(pl->db, pl->ver, rel);
            if (k && kmod_plan_has(pl, k))
                continue;
            if (k) {
                kmod_dep_line(&t, pl, k);
            } else {
                textbuf_str(&t, rel);
                textbuf_str(&t, ":\n");
            }
        }
    }
    for (size_t i = 0; i < pl->nadd; i++)
        kmod_dep_line(&t, pl, pl->add[i]);
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    *len = t.len;
    return t.s ? t.s : strdup("");
}

/* The archive's modules.alias plus the guest's lines for the added
 * modules; NULL (nothing to write) when neither has any. */
static char *merged_alias(struct kmod_plan *pl, const struct arc *a, int u)
{
    struct textbuf t = { 0 };
    if (a->alias[u])
        textbuf_str(&t, a->alias[u]);
    if (t.len && t.s[t.len - 1] != '\n')
        textbuf_str(&t, "\n");
    kmod_alias_lines(pl, &t);
    if (t.oom || !t.len) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

enum gen { GEN_UNKNOWN, GEN_ITOOLS, GEN_DRACUT };

static enum gen generator(struct prep *p, const struct arc *a)
{
    if (a->itools)
        return GEN_ITOOLS;
    if (a->dracut)
        return GEN_DRACUT;
    const char *d = prep_os_str(p, "distro");
    static const char *const deb[] = { "debian", "ubuntu", "linuxmint",
                                       "kalilinux", NULL };
    static const char *const rh[] = {
        "rhel", "centos", "fedora", "rocky", "almalinux", "oraclelinux",
        "scientificlinux", "circle", "sles", "opensuse", "sled",
        "opensuse-leap", "opensuse-tumbleweed", NULL };
    for (int i = 0; d && deb[i]; i++)
        if (!strcmp(d, deb[i]))
            return GEN_ITOOLS;
    for (int i = 0; d && rh[i]; i++)
        if (!strcmp(d, rh[i]))
            return GEN_DRACUT;
    return GEN_UNKNOWN;
}

static int seg_file(struct cpiow *w, const struct arc *a,
                    struct textbuf *made, const char *path, const void *d,
                    size_t n, vf_error **errp)
{
    if (seg_dirs(w, a, made, path, errp) < 0)
        return -1;
    return cpiow_add(w, path, 0100644, d, n, errp);
}

static int seg_build(struct kmod_plan *pl, const struct arc *a, const char *base,
                     const char *mdir, const char *const *names, size_t nn,
                     enum gen gen, struct cpiow *w, vf_error **errp)
{
    struct prep *p = pl->p;
    struct textbuf made = { 0 };
    char path[KMOD_PATH_MAX + 128], gpath[1200];
    size_t total = 0;
    int r = -1;
    char *dep = NULL, *alias = NULL;
    uint8_t *bin = NULL;
    size_t blen = 0, dlen = 0;
    int u = !strncmp(base, "usr/", 4);
    /* the module files, where the initramfs keeps modules */
    for (size_t i = 0; i < pl->nadd; i++) {
        snprintf(path, sizeof(path), "%s/%s", base, pl->add[i]->path);
        if (arc_type(a, path) == ARC_MOD)
            continue;   /* the same file is there already */
        snprintf(gpath, sizeof(gpath), "%s/%s", mdir, pl->add[i]->path);
        size_t n = 0;
        char *data = prep_read(p, gpath, MODFILE_MAX, &n, errp);
        if (!data) {
            if (!prep_exists(p, gpath))
                error_setg(errp, "%s: listed in modules.dep but missing",
                           gpath);
            goto out;
        }
        total += n;
        int fr = total > SEGMENT_MAX
                     ? (error_setg(errp, "modules to add exceed %u bytes",
                                   SEGMENT_MAX), -1)
                     : seg_file(w, a, &made, path, data, n, errp);
        free(data);
        if (fr < 0)
            goto out;
    }
    /* modprobe's view of them: modules.dep, its index, the aliases */
    if (!(dep = merged_dep(pl, a, u, base, &dlen))) {
        error_setg(errp, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/modules.dep", base);
    if (seg_file(w, a, &made, path, dep, dlen, errp) < 0 ||
        kmod_dep_index(dep, &bin, &blen, errp) < 0)
        goto out;
    snprintf(path, sizeof(path), "%s/modules.dep.bin", base);
    if (seg_file(w, a, &made, path, bin, blen, errp) < 0)
        goto out;
    free(bin);
    bin = NULL;
    snprintf(path, sizeof(path), "%s/modules.alias.bin", base);
    if (!a->alias[u] && arc_type(a, path))
        prep_warn(p, "kernel %s: the initramfs has modules.alias.bin "
                  "without its text form; its aliases are left as they are "
                  "(the added modules load by name)", pl->ver);
    else if ((alias = merged_alias(pl, a, u))) {
        snprintf(path, sizeof(path), "%s/modules.alias", base);
        if (seg_file(w, a, &made, path, alias, strlen(alias), errp) < 0 ||
            kmod_alias_index(alias, &bin, &blen, errp) < 0)
            goto out;
        snprintf(path, sizeof(path), "%s/modules.alias.bin", base);
        if (seg_file(w, a, &made, path, bin, blen, errp) < 0)
            goto out;
    }
    /* what loads them early */
    struct textbuf cfg = { 0 };
    if (gen == GEN_ITOOLS) {
        if (a->conf_modules) {
            textbuf_str(&cfg, a->conf_modules);
            if (cfg.len && cfg.s[cfg.len - 1] != '\n')
                textbuf_str(&cfg, "\n");
        }
        for (size_t i = 0; i < nn; i++)
            if (!a->conf_modules || !has_word(a->conf_modules, names[i])) {
                textbuf_str(&cfg, names[i]);
                textbuf_str(&cfg, "\n");
            }
        snprintf(path, sizeof(path), "conf/modules");
    } else if (gen == GEN_DRACUT) {
        textbuf_str(&cfg, "rd.driver.pre=");
        bool first = true;
        const char *old = a->cmdline_conf;
        const char *o = old ? strstr(old, "rd.driver.pre=") : NULL;
        if (o) {
            o += 14;
            size_t l = strcspn(o, " \t\r\n");
            textbuf_add(&cfg, o, l);
            first = l == 0;
        }
        for (size_t i = 0; i < nn; i++) {
            if (o && has_word(o, names[i]))
                continue;
            if (!first)
                textbuf_str(&cfg, ",");
            textbuf_str(&cfg, names[i]);
            first = false;
        }
        textbuf_str(&cfg, "\n");
        snprintf(path, sizeof(path), "etc/cmdline.d/50-vmferry.conf");
    }
    if (cfg.oom) {
        free(cfg.s);
        error_setg(errp, "out of memory");
        goto out;
    }
    if (cfg.len && seg_file(w, a, &made, path, cfg.s, cfg.len, errp) < 0) {
        free(cfg.s);
        goto out;
    }
    free(cfg.s);
    if (made.oom) {
        error_setg(errp, "out of memory");
        goto out;
    }
    r = cpiow_finish(w, errp);
out:
    free(made.s);
    free(dep);
    free(alias);
    free(bin);
    return r;
}

/* ---- replacing the initramfs file ---- */

static int copy_into(struct prep *p, const char *from, const char *to,
                     uint64_t *size, vf_error **errp)
{
    struct gfile *f = gview_open(p->v, from, errp);
    if (!f)
        return -1;
    uint8_t *buf = malloc(COPY_CHUNK);
    int r = -1;
    *size = 0;
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (;;) {
        long n = gfile_read(f, buf, COPY_CHUNK, errp);
        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (gview_append(p->v, to, buf, (size_t)n, errp) < 0)
            goto out;
        *size += (uint64_t)n;
    }
    r = 0;
out:
    free(buf);
    gfile_close(f);
    return r;
}

/* initrd := its old content, NUL padding, the segment.  The new file is
 * written whole under a temporary name first (a full /boot fails here,
 * leaving the guest as it was), then takes the name.  The old content
 * stays as initrd.pre-vmferry (a hard link) unless an earlier run kept
 * one already. */
static int initrd_replace(struct prep *p, const char *initrd,
                          const struct cpiow *w, const char *why,
                          vf_error **errp)
{
    char backup[1200], tmp[1200];
    if ((size_t)snprintf(backup, sizeof(backup), "%s.pre-vmferry", initrd) >=
            sizeof(backup) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.vmferry-new", initrd) >=
            sizeof(tmp)) {
        error_setg(errp, "%.64s...: path too long", initrd);
        return -1;
    }
    uint32_t uid = 0, gid = 0;
    int mode = 0644;
    if (gview_owner(p->v, initrd, &uid, &gid, &mode) < 0) {
        error_setg(errp, "%s: cannot read its owner", initrd);
        return -1;
    }
    uint64_t size = 0, old = 0;
    static const uint8_t zeros[1024];
    vf_error *err = NULL;
    gview_stat(p->v, initrd, &old);
    if (gview_remove(p->v, tmp, false, errp) < 0 ||
        gview_write(p->v, tmp, "", 0, mode, uid, gid, GV_NOFOLLOW,
                    errp) < 0)
        return -1;
    if (copy_into(p, initrd, tmp, &size, &err) < 0)
        goto fail;
    /* at least 4 NULs (an lz4 legacy stream ends at a zero block size),
     * and the segment on a 512-byte boundary (the kernel wants 4) */
    size_t pad = (size_t)((512 - size % 512) % 512);
    if (pad < 4)
        pad += 512;
    if (gview_append(p->v, tmp, zeros, pad, &err) < 0 ||
        gview_append(p->v, tmp, w->buf, w->len, &err) < 0)
        goto fail;
    bool fresh = gview_lstat(p->v, backup) == GT_NONE;
    if ((fresh && gview_link(p->v, initrd, backup, errp) < 0) ||
        gview_remove(p->v, initrd, false, errp) < 0 ||
        gview_link(p->v, tmp, initrd, errp) < 0 ||
        gview_remove(p->v, tmp, false, errp) < 0)
        return -1;
    if (fresh)
        prep_log(p, backup, why, "Keeping the original initramfs as %s",
                 backup);
    return 0;
fail:
    /* give the space back; the original was not touched */
    gview_remove(p->v, tmp, false, NULL);
    error_propagate(errp, err);
    error_prepend(errp, "writing the new initramfs (%llu bytes, beside the "
                  "old one until it is whole): ",
                  (unsigned long long)(old + 516 + w->len));
    return -1;
}

/* ---- per kernel ---- */

/* The modules dir the guest really has: /lib/modules/V through a /lib
 * symlink is usr/lib/modules/V. */
static void real_moddir(struct prep *p, const char *mdir, char *out,
                        size_t len)
{
    const char *m = mdir;
    if (!strncmp(m, "/lib/", 5) && gview_lstat(p->v, "/lib") == GT_LINK) {
        char *t = gview_readlink(p->v, "/lib");
        if (t && (!strcmp(t, "usr/lib") || !strcmp(t, "/usr/lib"))) {
            snprintf(out, len, "usr%s", m);
            free(t);
            return;
        }
        free(t);
    }
    snprintf(out, len, "%s", m + 1);
}

static const char *arc_base(const struct arc *a, const char *ver,
                            const char *guest_base, char *out, size_t len)
{
    for (int u = 1; u >= 0; u--) {
        snprintf(out, len, "%slib/modules/%s", u ? "usr/" : "", ver);
        if (arc_type(a, out) == ARC_DIR)
            return out;
    }
    for (int u = 1; u >= 0; u--) {
        snprintf(out, len, "%slib/modules/%s", u ? "usr/" : "", ver);
        size_t l = strlen(out);
        for (size_t i = 0; i < a->n; i++)
            if (!strncmp(a->v[i].name, out, l) && a->v[i].name[l] == '/')
                return out;
    }
    /* a lib -> usr/lib symlink in the archive: through it */
    if (!strncmp(guest_base, "lib/", 4) && a->lib_link &&
        (!strcmp(a->lib_link, "usr/lib") || !strcmp(a->lib_link, "/usr/lib"))) {
        snprintf(out, len, "usr/%s", guest_base);
        return out;
    }
    snprintf(out, len, "%s", guest_base);
    return out;
}

/* A driver fact of inspection's kernel report ("builtin", "initramfs"). */
static bool json_driver(struct json_object *kj, const char *name,
                        const char *fact)
{
    struct json_object *drv, *d, *b;
    return json_object_object_get_ex(kj, "drivers", &drv) &&
           json_object_object_get_ex(drv, name, &d) &&
           json_object_object_get_ex(d, fact, &b) &&
           json_object_get_boolean(b);
}

static bool json_builtin(struct json_object *kj, const char *name)
{
    return json_driver(kj, name, "builtin");
}

/* The regular file a symlink names (one level, same directory when
 * relative), into out. */
static int resolve_link(struct prep *p, const char *link, char *out,
                        size_t len)
{
    char *t = gview_readlink(p->v, link);
    if (!t || !*t || strstr(t, "..")) {
        free(t);
        return -1;
    }
    int n;
    if (t[0] == '/') {
        n = snprintf(out, len, "%s", t);
    } else {
        const char *slash = strrchr(link, '/');
        n = snprintf(out, len, "%.*s/%s", (int)(slash - link), link, t);
    }
    free(t);
    if (n < 0 || (size_t)n >= len || gview_lstat(p->v, out) != GT_FILE)
        return -1;
    return 0;
}

struct added {
    const char *names[DRIVERS_MAX];
    size_t n;
    bool itools, dracut;
};

static int kernel_one(struct prep *p, struct json_object *kj,
                      char *const *want, size_t nwant, struct added *done,
                      vf_error **errp)
{
    const char *ver = jget_str(kj, "version");
    const char *mdir = jget_str(kj, "modules-dir");
    const char *initrd = jget_str(kj, "initramfs");
    const char *why = "--add-drivers";
    if (!ver)
        return 0;
    if (!mdir) {
        prep_warn(p, "kernel %s: no modules directory; drivers not added",
                  ver);
        return 0;
    }
    /* modules are under the name of their directory, which is not
     * always the kernel's (Alpine: vmlinuz-lts, modules 6.1.62-0-lts) */
    const char *slash = strrchr(mdir, '/');
    if (slash && slash[1])
        ver = slash + 1;
    struct kmod_db db = { 0 };
    struct arc a = { .ver = ver };
    struct cpiow w = { .max = SEGMENT_MAX + (64u << 20) };
    struct kmod_plan pl = { .p = p, .db = &db, .ver = ver };
    char real[1100];
    const char *names[DRIVERS_MAX];
    size_t nn = 0;
    int r = -1;
    /* inspection already read this initramfs: when it holds (or the
     * kernel builds in) every wanted driver, there is nothing to add and
     * nothing more to read */
    size_t have = 0;
    for (size_t i = 0; i < nwant; i++)
        if (json_builtin(kj, want[i]) || json_driver(kj, want[i], "initramfs"))
            have++;
    if (have == nwant)
        return 0;
    if (kmod_db_load(p, mdir, ver, &db, errp) < 0)
        goto out;
    /* which of the wanted drivers need adding */
    const char *todo[DRIVERS_MAX];
    bool builtin[DRIVERS_MAX];
    size_t ntodo = 0;
    kmod_builtin(&db, (const char *const *)want, nwant, builtin);
    for (size_t i = 0; i < nwant; i++) {
        if (builtin[i] || json_builtin(kj, want[i]))
            continue;
        if (!kmod_by_name(&db, want[i])) {
            prep_warn(p, "kernel %s has no %s driver: %s", ver, want[i],
                      kmod_fallback(want[i]));
            continue;
        }
        todo[ntodo++] = want[i];
    }
    if (!ntodo) {
        r = 0;
        goto out;
    }
    if (!initrd) {
        prep_warn(p, "kernel %s has no initramfs; %s %s a module and will "
                  "not be loaded before the root filesystem is mounted",
                  ver, todo[0], ntodo > 1 ? "and others are" : "is");
        r = 0;
        goto out;
    }
    /* a symlink (initrd.img -> initrd.img-VER): edit what it names */
    if (gview_lstat(p->v, initrd) == GT_LINK) {
        if (resolve_link(p, initrd, real, sizeof(real)) < 0) {
            prep_warn(p, "%s: a symbolic link vmferry does not follow; "
                      "left unchanged", initrd);
            r = 0;
            goto out;
        }
        initrd = real;
    }
    vf_error *serr = NULL;
    if (arc_scan(p, initrd, &a, &serr) < 0) {
        prep_warn(p, "%s: cannot read it as an initramfs (%s); left "
                  "unchanged, so %s may be missing at boot", initrd,
                  error_msg(serr), todo[0]);
        error_free(serr);
        r = 0;
        goto out;
    }
    for (size_t i = 0; i < ntodo; i++) {
        if (arc_has_module(&a, todo[i]))
            continue;
        if (kmod_plan_add(&pl, kmod_by_name(&db, todo[i]), errp) < 0)
            goto out;
        names[nn++] = todo[i];
    }
    if (!nn) {
        r = 0;
        goto out;
    }
    char gbase[1100], base[1200];
    real_moddir(p, mdir, gbase, sizeof(gbase));
    arc_base(&a, ver, gbase, base, sizeof(base));
    enum gen gen = generator(p, &a);
    w.mtime = (uint32_t)time(NULL);
    if (seg_build(&pl, &a, base, mdir, names, nn, gen, &w, errp) < 0 ||
        initrd_replace(p, initrd, &w, why, errp) < 0) {
        error_prepend(errp, "%s: ", initrd);
        goto out;
    }
    char list[512] = "";
    for (size_t i = 0; i < nn; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 i ? ", " : "", names[i]);
    prep_log(p, initrd, why, "Adding %s to %s (%zu module file%s with "
             "dependencies, loaded early by %s)", list, initrd, pl.nadd,
             pl.nadd == 1 ? "" : "s",
             gen == GEN_ITOOLS ? "conf/modules"
             : gen == GEN_DRACUT ? "rd.driver.pre" : "udev aliases only");
    if (gen == GEN_UNKNOWN)
        prep_warn(p, "%s: not made by initramfs-tools or dracut as far as "
                  "vmferry can tell; %s will load only when udev or mdev "
                  "matches a device alias", initrd, list);
    for (size_t i = 0; i < nn; i++) {
        bool seen = false;
        for (size_t j = 0; j < done->n; j++)
            seen |= !strcmp(done->names[j], names[i]);
        if (!seen && done->n < DRIVERS_MAX)
            done->names[done->n++] = names[i];
    }
    done->itools |= gen == GEN_ITOOLS;
    done->dracut |= gen == GEN_DRACUT;
    r = 0;
out:
    kmod_db_free(&db);
    arc_free(&a);
    cpiow_free(&w);
    return r;
}

/* The guest's own initramfs tools keep the drivers at the next rebuild. */
static int persist(struct prep *p, const struct added *d, vf_error **errp)
{
    const char *why = "--add-drivers";
    if (d->itools) {
        const char *f = "/etc/initramfs-tools/modules";
        size_t len = 0;
        char *old = prep_read(p, f, SMALL_MAX, &len, errp);
        if (!old && prep_exists(p, f))
            return -1;
        struct textbuf t = { 0 };
        if (old) {
            textbuf_add(&t, old, len);
            if (len && old[len - 1] != '\n')
                textbuf_str(&t, "\n");
        }
        size_t before = t.len;
        for (size_t i = 0; i < d->n; i++)
            if (!old || !has_word(old, d->names[i])) {
                textbuf_str(&t, d->names[i]);
                textbuf_str(&t, "\n");
            }
        int r = 0;
        if (t.oom) {
            error_setg(errp, "out of memory");
            r = -1;
        } else if (t.len > before) {
            if (!prep_exists(p, "/etc/initramfs-tools"))
                r = gview_mkdir(p->v, "/etc/initramfs-tools", 0755, -1, -1,
                                GV_PARENTS, errp);
            if (r == 0)
                r = gview_write(p->v, f, t.s, t.len, -1, -1, -1, 0, errp);
            if (r == 0) {
                /* the names added, on one line */
                char names[512];
                snprintf(names, sizeof(names), "%s", t.s + before);
                for (char *c = names; *c; c++)
                    if (*c == '\n')
                        *c = c[1] ? ' ' : 0;
                prep_log(p, f, why, "Listing %s in %s for the next "
                         "update-initramfs", names, f);
            }
        }
        free(old);
        free(t.s);
        if (r < 0)
            return -1;
    }
    if (d->dracut) {
        const char *f = "/etc/dracut.conf.d/50-vmferry.conf";
        size_t len = 0;
        char *old = prep_read(p, f, SMALL_MAX, &len, errp);
        if (!old && prep_exists(p, f))
            return -1;
        struct textbuf t = { 0 };
        textbuf_str(&t, "# vmferry: drivers the new hypervisor needs at boot\n"
               "add_drivers+=\" ");
        const char *s = old ? strstr(old, "add_drivers+=\"") : NULL;
        if (s) {
            s += 14;
            size_t l = strcspn(s, "\"\n");
            char words[1024];
            snprintf(words, sizeof(words), "%.*s", (int)(l < 1023 ? l : 1023),
                     s);
            for (char *tok = strtok(words, " \t"); tok;
                 tok = strtok(NULL, " \t")) {
                bool dup = false;
                for (size_t i = 0; i < d->n; i++)
                    dup |= !strcmp(tok, d->names[i]);
                if (!dup) {
                    textbuf_str(&t, tok);
                    textbuf_str(&t, " ");
                }
            }
        }
        for (size_t i = 0; i < d->n; i++) {
            textbuf_str(&t, d->names[i]);
            textbuf_str(&t, " ");
        }
        textbuf_str(&t, "\"\n");
        int r = 0;
        if (t.oom) {
            error_setg(errp, "out of memory");
            r = -1;
        } else if (!old || strcmp(old, t.s)) {
            if (!prep_exists(p, "/etc/dracut.conf.d"))
                r = gview_mkdir(p->v, "/etc/dracut.conf.d", 0755, -1, -1,
                                GV_PARENTS, errp);
            if (r == 0)
                r = gview_write(p->v, f, t.s, t.len, -1, -1, -1, 0, errp);
            if (r == 0)
                prep_log(p, f, why, "Writing %s for the next dracut run", f);
        }
        free(old);
        free(t.s);
        if (r < 0)
            return -1;
    }
    return 0;
}

int edit_add_drivers(struct prep *p, const char *arg, vf_error **errp)
{
    char *list = strdup(arg);
    char *want[DRIVERS_MAX];
    size_t nwant = 0;
    int r = -1;
    if (!list) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (char *tok = strtok(list, ", \t"); tok; tok = strtok(NULL, ", \t")) {
        size_t l = strlen(tok);
        bool ok = l > 0 && l < 56;
        for (char *c = tok; ok && *c; c++) {
            if (*c == '-')
                *c = '_';
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                 (*c >= '0' && *c <= '9') || *c == '_';
        }
        if (!ok) {
            error_setg(errp, "'%s' is not a module name", tok);
            goto out;
        }
        if (nwant >= DRIVERS_MAX) {
            error_setg(errp, "more than %d drivers", DRIVERS_MAX);
            goto out;
        }
        bool dup = false;
        for (size_t i = 0; i < nwant; i++)
            dup |= !strcmp(want[i], tok);
        if (!dup)
            want[nwant++] = tok;
    }
    if (!nwant) {
        error_setg(errp, "no driver named");
        goto out;
    }
    struct json_object *ks;
    if (!json_object_object_get_ex(p->os, "kernels", &ks) ||
        !json_object_is_type(ks, json_type_array) ||
        json_object_array_length(ks) == 0) {
        prep_warn(p, "no kernel found in /boot; no drivers added");
        r = 0;
        goto out;
    }
    struct added done = { .n = 0 };
    for (size_t i = 0; i < json_object_array_length(ks); i++)
        if (kernel_one(p, json_object_array_get_idx(ks, i), want, nwant,
                       &done, errp) < 0)
            goto out;
    r = persist(p, &done, errp);
out:
    free(list);
    return r;
}
