/*
 * kmods.c: a guest kernel's modules as modprobe sees them: modules.dep
 * ("kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/
 * virtio_ring.ko ..."; a walk of the modules tree when there is none),
 * modules.builtin and modules.alias (depmod(8), modules.dep(5)); the
 * dependency closure of the modules an initramfs needs; the text lines
 * and the kmod indexes (modindex.c) that go with them.
 *
 * Every one of these files comes from the guest: counts, line lengths,
 * dependency chains and the paths placed into an initramfs are checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/initrd-build.h"
#include "prepare/prepare.h"

/* modules.dep / modules.alias / modules.builtin: Debian's are ~500 KiB,
 * 1.3 MiB and 30 KiB; 16 MiB is far beyond any real kernel. */
#define KTEXT_MAX (16u << 20)
/* Modules a kernel ships (~6000 today) and aliases (~30000). */
#define KMODS_MAX 100000
#define KALIASES_MAX 1000000
/* A modules tree walked when there is no modules.dep. */
#define WALK_DEPTH 12
#define WALK_MAX 200000

void textbuf_add(struct textbuf *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (n > SIZE_MAX / 4 - t->len) {
        t->oom = true;
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t nc = t->cap ? t->cap : 4096;
        while (nc < t->len + n + 1)
            nc *= 2;
        char *ns = realloc(t->s, nc);
        if (!ns) {
            t->oom = true;
            return;
        }
        t->s = ns;
        t->cap = nc;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

void textbuf_str(struct textbuf *t, const char *s)
{
    textbuf_add(t, s, strlen(s));
}

void kmod_db_free(struct kmod_db *db)
{
    free(db->v);
    free(db->text);
    for (size_t i = 0; i < db->nwalked; i++)
        free(db->walked[i]);
    free(db->walked);
    free(db->builtin);
    free(db->alias);
    memset(db, 0, sizeof(*db));
}

/* A module path we are willing to place in an initramfs: relative,
 * printable, no "." or ".." or empty components. */
static bool modpath_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n >= KMOD_PATH_MAX || p[0] == '/')
        return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
            return false;
    for (const char *s = p; *s;) {
        size_t l = strcspn(s, "/");
        if (l == 0 || (l == 1 && s[0] == '.') ||
            (l == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += l;
        if (*s == '/')
            s++;
    }
    return true;
}

/* "/lib/modules/VER/kernel/x.ko" (old depmod) -> "kernel/x.ko" */
static const char *modpath_rel(const char *p, const char *ver)
{
    if (p[0] != '/')
        return p;
    static const char *const pre[] = { "/lib/modules/", "/usr/lib/modules/" };
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(pre[i]), vl = strlen(ver);
        if (!strncmp(p, pre[i], l) && !strncmp(p + l, ver, vl) &&
            p[l + vl] == '/')
            return p + l + vl + 1;
    }
    return p;
}

static int kmod_add(struct kmod_db *db, const char *path, const char *deps,
                    vf_error **errp)
{
    char name[64];
    if (!modpath_ok(path) || !modname_from_file(path, name, sizeof(name)))
        return 0;   /* not a module we could place: skipped */
    if (db->n >= KMODS_MAX) {
        error_setg(errp, "more than %d modules listed", KMODS_MAX);
        return -1;
    }
    if (db->n == db->cap) {
        size_t nc = db->cap ? db->cap * 2 : 256;
        struct kmod *nv = realloc(db->v, nc * sizeof(*nv));
        if (!nv) {
            error_setg(errp, "out of memory");
            return -1;
        }
        db->v = nv;
        db->cap = nc;
    }
    struct kmod *k = &db->v[db->n++];
    memcpy(k->name, name, sizeof(name));
    k->path = path;
    k->deps = deps;
    k->color = 0;
    return 0;
}

struct kmod *kmod_by_name(struct kmod_db *db, const char *name)
{
    for (size_t i = 0; i < db->n; i++)
        if (!strcmp(db->v[i].name, name))
            return &db->v[i];
    return NULL;
}

struct kmod *kmod_by_path(struct kmod_db *db, const char *ver,
                          const char *path)
{
    const char *rel = modpath_rel(path, ver);
    for (size_t i = 0; i < db->n; i++)
        if (!strcmp(db->v[i].path, rel))
            return &db->v[i];
    return NULL;
}

struct kwalk {
    struct prep *p;
    struct kmod_db *db;
    char dir[1024];            /* guest path being listed */
    size_t base;               /* length of the modules dir in dir */
    int depth;
    size_t seen;
    bool oom;
};

static int kwalk_cb(const char *name, enum gtype t, void *opaque)
{
    struct kwalk *w = opaque;
    if (++w->seen > WALK_MAX)
        return 1;
    size_t l = strlen(w->dir);
    if (l + strlen(name) + 2 >= sizeof(w->dir))
        return 0;
    if (t == GT_DIR && w->depth < WALK_DEPTH) {
        snprintf(w->dir + l, sizeof(w->dir) - l, "/%s", name);
        w->depth++;
        vf_error *err = NULL;
        if (gview_list(w->p->v, w->dir, WALK_MAX, kwalk_cb, w, &err) < 0)
            error_free(err);
        w->depth--;
        w->dir[l] = 0;
    } else if (t == GT_FILE) {
        char mod[64];
        if (!modname_from_file(name, mod, sizeof(mod)))
            return 0;
        if (w->db->nwalked >= KMODS_MAX)
            return 1;
        char *rel = NULL;
        if (asprintf(&rel, "%s/%s", w->dir + w->base + 1, name) < 0) {
            w->oom = true;
            return 1;
        }
        char **nv = realloc(w->db->walked,
                            (w->db->nwalked + 1) * sizeof(*nv));
        if (!nv) {
            free(rel);
            w->oom = true;
            return 1;
        }
        w->db->walked = nv;
        w->db->walked[w->db->nwalked++] = rel;
    }
    return 0;
}

int kmod_db_load(struct prep *p, const char *mdir, const char *ver,
                 struct kmod_db *db, vf_error **errp)
{
    char path[1200];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/modules.dep", mdir);
    db->text = prep_read(p, path, KTEXT_MAX, &len, errp);
    if (!db->text && prep_exists(p, path))
        return -1;
    if (db->text) {
        for (char *line = db->text, *nl; line && *line; line = nl) {
            nl = strchr(line, '\n');
            if (nl)
                *nl++ = 0;
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            *colon = 0;
            if (kmod_add(db, modpath_rel(line, ver), colon + 1, errp) < 0)
                return -1;
        }
    } else {
        prep_warn(p, "%s: no modules.dep; modules found by walking the "
                  "tree, their dependencies not known", mdir);
        struct kwalk w = { .p = p, .db = db };
        snprintf(w.dir, sizeof(w.dir), "%s", mdir);
        w.base = strlen(w.dir);
        vf_error *err = NULL;
        if (gview_list(p->v, w.dir, WALK_MAX, kwalk_cb, &w, &err) < 0)
            error_free(err);
        if (w.oom) {
            error_setg(errp, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < db->nwalked; i++)
            if (kmod_add(db, db->walked[i], "", errp) < 0)
                return -1;
    }
    vf_error *err = NULL;
    snprintf(path, sizeof(path), "%s/modules.builtin", mdir);
    db->builtin = prep_read(p, path, KTEXT_MAX, &len, &err);
    if (err) {
        prep_warn(p, "%s", error_msg(err));
        error_free(err);
        err = NULL;
    }
    snprintf(path, sizeof(path), "%s/modules.alias", mdir);
    db->alias = prep_read(p, path, KTEXT_MAX, &len, &err);
    if (err) {
        prep_warn(p, "%s", error_msg(err));
        error_free(err);
    }
    return 0;
}

void kmod_builtin(const struct kmod_db *db, const char *const *names,
                  size_t n, bool *builtin)
{
    for (size_t i = 0; i < n; i++)
        builtin[i] = false;
    for (const char *l = db->builtin; l && *l;) {
        size_t len = strcspn(l, "\n");
        char line[KMOD_PATH_MAX], mod[64];
        if (len < sizeof(line)) {
            memcpy(line, l, len);
            line[len] = 0;
            if (modname_from_file(line, mod, sizeof(mod)))
                for (size_t i = 0; i < n; i++)
                    if (!strcmp(mod, names[i]))
                        builtin[i] = true;
        }
        l += len;
        if (*l)
            l++;
    }
}

const char *kmod_fallback(const char *name)
{
    static const char *const fb[][2] = {
        { "virtio_blk", "attach its disks as SATA or IDE instead of "
                        "virtio-blk" },
        { "virtio_scsi", "attach its disks as SATA or virtio-blk instead of "
                         "virtio-scsi" },
        { "virtio_pci", "no virtio device works: use SATA disks and an "
                        "e1000 NIC" },
        { "virtio_net", "use an e1000 NIC" },
        { "hv_vmbus", "no Hyper-V device works: a generation 1 VM with IDE "
                      "disks and a legacy NIC (not on Azure)" },
        { "hv_storvsc", "IDE disks on a generation 1 Hyper-V VM (not on "
                        "Azure)" },
        { "hv_netvsc", "a legacy network adapter on Hyper-V generation 1; "
                       "no network on Azure" },
        { "xen_blkfront", "emulated IDE disks (HVM guests only)" },
        { "xen_netfront", "an emulated NIC (HVM guests only)" },
        { "vmw_pvscsi", "use the LSI Logic SCSI controller" },
        { "vmxnet3", "use an e1000 or e1000e NIC" },
        { "nvme", "no disk on NVMe (AWS Nitro) instances: use a Xen "
                  "instance type" },
        { "ena", "no network on AWS Nitro instances" },
    };
    for (size_t i = 0; i < sizeof(fb) / sizeof(fb[0]); i++)
        if (!strcmp(fb[i][0], name))
            return fb[i][1];
    return "the devices it drives will not work";
}

/* Call fn for each dependency path of k (at most KMOD_DEPS_MAX). */
static int each_dep(struct kmod_plan *pl, const struct kmod *k,
                    int (*fn)(struct kmod_plan *, const struct kmod *,
                              struct kmod *, const char *, void *),
                    void *opaque)
{
    int count = 0;
    for (const char *s = k->deps; *s;) {
        s += strspn(s, " \t\r");
        size_t l = strcspn(s, " \t\r");
        if (!l)
            break;
        if (++count > KMOD_DEPS_MAX) {
            prep_warn(pl->p, "kernel %s: %s lists more than %d "
                      "dependencies; the rest ignored", pl->ver, k->name,
                      KMOD_DEPS_MAX);
            break;
        }
        char dep[KMOD_PATH_MAX];
        if (l < sizeof(dep)) {
            memcpy(dep, s, l);
            dep[l] = 0;
            int r = fn(pl, k, kmod_by_path(pl->db, pl->ver, dep), dep,
                       opaque);
            if (r)
                return r;
        }
        s += l;
    }
    return 0;
}

static int plan_visit(struct kmod_plan *pl, struct kmod *k, int depth,
                      vf_error **errp);

struct visit_ctx {
    int depth;
    vf_error **errp;
};

static int visit_dep(struct kmod_plan *pl, const struct kmod *k,
                     struct kmod *d, const char *path, void *opaque)
{
    struct visit_ctx *v = opaque;
    if (!d) {
        prep_warn(pl->p, "kernel %s: %s needs %s, which modules.dep does "
                  "not list; not added", pl->ver, k->name, path);
        return 0;
    }
    return plan_visit(pl, d, v->depth + 1, v->errp) < 0 ? -1 : 0;
}

static int plan_visit(struct kmod_plan *pl, struct kmod *k, int depth,
                      vf_error **errp)
{
    if (k->color == 2)
        return 0;
    if (k->color == 1) {
        if (!pl->loop_warned)
            prep_warn(pl->p, "kernel %s: modules.dep has a dependency loop "
                      "through %s; the loop is cut", pl->ver, k->name);
        pl->loop_warned = true;
        return 0;
    }
    if (depth > KMOD_DEPTH_MAX) {
        error_setg(errp, "kernel %s: modules.dep dependency chain deeper "
                   "than %d", pl->ver, KMOD_DEPTH_MAX);
        return -1;
    }
    k->color = 1;
    struct visit_ctx v = { depth, errp };
    if (each_dep(pl, k, visit_dep, &v) < 0)
        return -1;
    k->color = 2;
    if (pl->nadd >= KMOD_CLOSURE_MAX) {
        error_setg(errp, "kernel %s: more than %d modules to add", pl->ver,
                   KMOD_CLOSURE_MAX);
        return -1;
    }
    pl->add[pl->nadd++] = k;
    return 0;
}

int kmod_plan_add(struct kmod_plan *pl, struct kmod *k, vf_error **errp)
{
    return plan_visit(pl, k, 0, errp);
}

bool kmod_plan_has(const struct kmod_plan *pl, const struct kmod *k)
{
    for (size_t i = 0; i < pl->nadd; i++)
        if (pl->add[i] == k)
            return true;
    return false;
}

static int line_dep(struct kmod_plan *pl, const struct kmod *k,
                    struct kmod *d, const char *path, void *opaque)
{
    if (d) {
        textbuf_str(opaque, " ");
        textbuf_str(opaque, d->path);
    }
    return 0;
}

void kmod_dep_line(struct textbuf *t, struct kmod_plan *pl,
                   const struct kmod *k)
{
    textbuf_str(t, k->path);
    textbuf_str(t, ":");
    each_dep(pl, k, line_dep, t);
    textbuf_str(t, "\n");
}

void kmod_alias_lines(struct kmod_plan *pl, struct textbuf *t)
{
    for (const char *l = pl->db->alias; l && *l;) {
        size_t n = strcspn(l, "\n");
        const char *sp = n > 6 ? memchr(l + 6, ' ', n - 6) : NULL;
        if (sp && !strncmp(l, "alias ", 6)) {
            size_t ml = n - (size_t)(sp + 1 - l);
            for (size_t i = 0; i < pl->nadd; i++)
                if (strlen(pl->add[i]->name) == ml &&
                    !strncmp(sp + 1, pl->add[i]->name, ml)) {
                    textbuf_add(t, l, n);
                    textbuf_str(t, "\n");
                    break;
                }
        }
        l += n;
        if (*l)
            l++;
    }
}

/* Lines of text holding c (an upper bound of the entries to expect). */
static size_t count_lines_with(const char *text, char c)
{
    size_t n = 0;
    for (const char *l = text; *l;) {
        size_t len = strcspn(l, "\n");
        if (memchr(l, c, len))
            n++;
        l += len;
        if (*l)
            l++;
    }
    return n;
}

int kmod_dep_index(const char *text, uint8_t **out, size_t *olen,
                   vf_error **errp)
{
    size_t lines = count_lines_with(text, ':');
    if (lines > KMODS_MAX) {
        error_setg(errp, "modules.dep with more than %d modules", KMODS_MAX);
        return -1;
    }
    struct modindex_entry *e = calloc(lines + 1, sizeof(*e));
    char (*names)[64] = calloc(lines + 1, sizeof(*names));
    char *copy = strdup(text);
    int r = -1;
    if (!e || !names || !copy) {
        error_setg(errp, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (char *l = copy, *nl; l && *l && n < lines; l = nl) {
        nl = strchr(l, '\n');
        if (nl)
            *nl++ = 0;
        char *colon = strchr(l, ':');
        if (!colon)
            continue;
        *colon = 0;
        bool ok = modname_from_file(l, names[n], sizeof(names[n]));
        *colon = ':';
        if (!ok)
            continue;
        e[n].key = names[n];
        e[n].value = l;
        e[n].priority = (uint32_t)n;
        n++;
    }
    r = modindex_build(e, n, out, olen, errp);
out:
    free(e);
    free(names);
    free(copy);
    return r;
}

int kmod_alias_index(const char *text, uint8_t **out, size_t *olen,
                     vf_error **errp)
{
    size_t lines = count_lines_with(text, ' ');
    if (lines > KALIASES_MAX) {
        error_setg(errp, "modules.alias with more than %d aliases",
                   KALIASES_MAX);
        return -1;
    }
    struct modindex_entry *e = calloc(lines + 1, sizeof(*e));
    char *copy = strdup(text);
    int r = -1;
    if (!e || !copy) {
        error_setg(errp, "out of memory");
        goto out;
    }
    size_t n = 0;
    for (char *l = copy, *nl; l && *l && n < lines; l = nl) {
        nl = strchr(l, '\n');
        if (nl)
            *nl++ = 0;
        if (strncmp(l, "alias ", 6))
            continue;
        char *pat = l + 6, *mod = strchr(pat, ' ');
        if (!mod)
            continue;
        *mod++ = 0;
        mod[strcspn(mod, " \t\r")] = 0;
        /* kmod's alias_normalize: '-' is '_' outside brackets */
        int depth = 0;
        bool ok = *pat && *mod && strlen(pat) <= MODINDEX_KEY_MAX;
        for (char *c = pat; ok && *c; c++) {
            if ((unsigned char)*c >= 128)
                ok = false;
            else if (*c == '[')
                depth++;
            else if (*c == ']')
                depth--;
            else if (*c == '-' && depth == 0)
                *c = '_';
        }
        if (!ok || depth != 0)
            continue;
        e[n].key = pat;
        e[n].value = mod;
        e[n].priority = (uint32_t)n;
        n++;
    }
    r = modindex_build(e, n, out, olen, errp);
out:
    free(e);
    free(copy);
    return r;
}
