/*
 * services.c: enable and disable a guest's services offline, the way its
 * init system's own tools would:
 *   - systemd (systemctl mask / enable): links under /etc/systemd/system,
 *     made from the unit file's [Install] section (systemd.unit(5));
 *   - SysV init (update-rc.d, chkconfig): S and K links in /etc/rcN.d or
 *     /etc/rc.d/rcN.d, levels and order from the script's LSB or
 *     chkconfig header;
 *   - OpenRC (rc-update): /etc/runlevels/LEVEL/NAME links.
 * Also the guest's package-removal command.  Unit files and init scripts
 * are hostile like every guest file: read with a cap, and a name read from
 * one is checked before it becomes part of a path.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* A unit file or an init script is a few KiB. */
#define UNIT_FILE_MAX (1u << 20)
/* Entries in one directory of links (/etc/systemd/system, an rc dir):
 * hundreds in practice. */
#define SVC_DIR_MAX 100000
/* Names kept from one [Install] key: real units list one to three. */
#define INSTALL_MAX 16
#define UNIT_MAX 256

#define SD_ETC "/etc/systemd/system"

static const char *const unit_dirs[] = {
    SD_ETC, "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
    "/lib/systemd/system",
};

static const char *const unit_types[] = {
    ".service", ".socket", ".timer", ".target", ".path", ".mount",
    ".automount", ".swap", ".slice", NULL,
};

struct svc {
    char unit[UNIT_MAX];       /* "sshd.service", "getty@tty1.service" */
    char templ[UNIT_MAX];      /* an instance's template "getty@.service" */
    char sysv[UNIT_MAX];       /* init script name of a .service, or "" */
};

static bool has_suffix(const char *s, const char *suf)
{
    size_t l = strlen(s), sl = strlen(suf);
    return l > sl && !strcmp(s + l - sl, suf);
}

/* systemd's unit name rule: [A-Za-z0-9:_.\\@-], a known type suffix. */
static bool unit_name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l >= UNIT_MAX || n[0] == '.' || n[0] == '-')
        return false;
    for (const char *c = n; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr(":-_.\\@", *c))
            return false;
    for (int i = 0; unit_types[i]; i++)
        if (has_suffix(n, unit_types[i]))
            return true;
    return false;
}

static int svc_parse(const char *in, struct svc *s, vf_error **errp)
{
    memset(s, 0, sizeof(*s));
    bool typed = false;
    for (int i = 0; unit_types[i]; i++)
        typed |= has_suffix(in, unit_types[i]);
    int n = snprintf(s->unit, sizeof(s->unit), "%s%s", in,
                     typed ? "" : ".service");
    if (n < 0 || (size_t)n >= sizeof(s->unit) || !unit_name_ok(s->unit)) {
        error_setg(errp, "'%.64s' is not a service or unit name", in);
        return -1;
    }
    const char *dot = strrchr(s->unit, '.');
    const char *at = strchr(s->unit, '@');
    if (at && at + 1 < dot)
        snprintf(s->templ, sizeof(s->templ), "%.*s%s",
                 (int)(at + 1 - s->unit), s->unit, dot);
    if (!strcmp(dot, ".service") && !strpbrk(s->unit, "@\\:"))
        snprintf(s->sysv, sizeof(s->sysv), "%.*s", (int)(dot - s->unit),
                 s->unit);
    return 0;
}

static bool is_mask(struct prep *p, const char *path)
{
    char *t = gview_readlink(p->v, path);
    bool m = t && !strcmp(t, "/dev/null");
    free(t);
    return m;
}

/* The unit file of name: the first unit directory holding it as a file
 * (or a link to one) that is not a mask.  Its guest path into out. */
static bool unit_find(struct prep *p, const char *name, char *out,
                      size_t len)
{
    for (size_t i = 0; i < sizeof(unit_dirs) / sizeof(unit_dirs[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", unit_dirs[i], name);
        if (gview_stat(p->v, path, NULL) == GT_FILE && !is_mask(p, path)) {
            snprintf(out, len, "%s", path);
            return true;
        }
    }
    return false;
}

/* ---- [Install] ---- */

enum { INST_WANTED, INST_REQUIRED, INST_ALIAS, INST_ALSO, INST_N };
static const char *const inst_keys[INST_N] = {
    "WantedBy", "RequiredBy", "Alias", "Also",
};

struct install {
    char v[INST_N][INSTALL_MAX][UNIT_MAX];
    int n[INST_N];
    char default_instance[UNIT_MAX];
    bool skipped;              /* names dropped (invalid or too many) */
};

static int install_read(struct prep *p, const char *path,
                        struct install *in, vf_error **errp)
{
    memset(in, 0, sizeof(*in));
    vf_error *err = NULL;
    char *text = prep_read(p, path, UNIT_FILE_MAX, NULL, &err);
    if (!text) {
        if (err) {
            error_propagate(errp, err);
            return -1;
        }
        return 0;
    }
    bool sect = false;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *s = str_trim(line);
        if (*s == '[') {
            sect = !strcmp(s, "[Install]");
            continue;
        }
        char *eq = strchr(s, '=');
        if (!sect || !eq || *s == '#' || *s == ';')
            continue;
        *eq = 0;
        char *key = str_trim(s), *val = str_trim(eq + 1);
        if (!strcmp(key, "DefaultInstance")) {
            if (strlen(val) < 64 && *val && !strpbrk(val, "/@"))
                snprintf(in->default_instance, sizeof(in->default_instance),
                         "%s", val);
            continue;
        }
        int k = 0;
        while (k < INST_N && strcmp(key, inst_keys[k]))
            k++;
        if (k == INST_N)
            continue;
        if (!*val)             /* "WantedBy=" empties the list */
            in->n[k] = 0;
        char *save = NULL;
        for (char *tok = strtok_r(val, " \t", &save); tok;
             tok = strtok_r(NULL, " \t", &save)) {
            if (!unit_name_ok(tok) || in->n[k] >= INSTALL_MAX) {
                in->skipped = true;
                continue;
            }
            snprintf(in->v[k][in->n[k]++], UNIT_MAX, "%s", tok);
        }
    }
    free(text);
    return 0;
}

/* ---- links ---- */

/* Make link -> target unless it is already so.  1 made, 0 there, -1. */
static int put_link(struct prep *p, const char *target, const char *link,
                    const char *why, vf_error **errp)
{
    char *cur = gview_readlink(p->v, link);
    bool same = cur && !strcmp(cur, target);
    free(cur);
    if (same)
        return 0;
    if (gview_symlink(p->v, target, link, GV_NOFOLLOW, errp) < 0)
        return -1;
    prep_log(p, link, why, "Linking %s -> %s", link, target);
    return 1;
}

static int drop(struct prep *p, const char *path, const char *why,
                vf_error **errp)
{
    if (gview_remove(p->v, path, false, errp) < 0)
        return -1;
    prep_log(p, path, why, "Removing %s", path);
    return 1;
}

/* ---- systemd ---- */

/* The names a unit is known by: itself, the real unit an alias link in
 * /etc/systemd/system points to, and the Alias= names of its file. */
struct names {
    char v[2 + INSTALL_MAX][UNIT_MAX];
    int n;
};

static void names_add(struct names *nm, const char *s)
{
    for (int i = 0; i < nm->n; i++)
        if (!strcmp(nm->v[i], s))
            return;
    if (nm->n < (int)(sizeof(nm->v) / sizeof(nm->v[0])))
        snprintf(nm->v[nm->n++], UNIT_MAX, "%s", s);
}

static bool names_has(const struct names *nm, const char *s)
{
    for (int i = 0; i < nm->n; i++)
        if (!strcmp(nm->v[i], s))
            return true;
    return false;
}

/* An alias link /etc/systemd/system/NAME -> .../REAL: REAL into real. */
static bool alias_of(struct prep *p, const char *unit, char *real,
                     size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), SD_ETC "/%s", unit);
    char *t = gview_readlink(p->v, path);
    if (!t)
        return false;
    const char *b = strrchr(t, '/');
    b = b ? b + 1 : t;
    bool ok = strcmp(t, "/dev/null") && strcmp(b, unit) && unit_name_ok(b);
    if (ok)
        snprintf(real, len, "%s", b);
    free(t);
    return ok;
}

/* Remove every link named by nm (or an instance of templ) from the
 * *.wants and *.requires directories of /etc/systemd/system. */
static int sd_unlink_wants(struct prep *p, const struct names *nm,
                           const char *templ, const char *why,
                           vf_error **errp)
{
    struct prep_dir d;
    int changed = 0;
    if (!prep_real_dir(p, SD_ETC))
        return 0;
    if (prep_dir_read(p, SD_ETC, SVC_DIR_MAX, &d, errp) < 0)
        return -1;
    size_t tl = templ ? strlen(templ) : 0;
    const char *tdot = templ ? strrchr(templ, '.') : NULL;
    for (size_t i = 0; i < d.n && changed >= 0; i++) {
        const char *dn = d.e[i].name;
        if (d.e[i].type != GT_DIR ||
            !(has_suffix(dn, ".wants") || has_suffix(dn, ".requires")))
            continue;
        char dir[512];
        snprintf(dir, sizeof(dir), SD_ETC "/%s", dn);
        struct prep_dir w;
        if (prep_dir_read(p, dir, SVC_DIR_MAX, &w, errp) < 0) {
            changed = -1;
            break;
        }
        for (size_t j = 0; j < w.n; j++) {
            const char *en = w.e[j].name;
            /* "getty@.service" disables "getty@tty1.service" too */
            bool inst = templ && tdot && !strncmp(en, templ, (size_t)(tdot - templ)) &&
                        has_suffix(en, tdot) && strlen(en) >= tl;
            if (!names_has(nm, en) && !inst)
                continue;
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dir, en);
            if (drop(p, path, why, errp) < 0) {
                changed = -1;
                break;
            }
            changed = 1;
        }
        prep_dir_free(&w);
    }
    prep_dir_free(&d);
    return changed;
}

static int sd_disable(struct prep *p, const struct svc *s, const char *why,
                      bool sysv_script, vf_error **errp)
{
    struct names nm = { .n = 0 };
    char file[512], real[UNIT_MAX];
    int changed = 0, r;
    /* an alias ("sshd.service" -> ssh.service on Debian): the real unit
     * is the one masked, the alias link goes */
    const char *mname = s->unit;
    names_add(&nm, s->unit);
    if (alias_of(p, s->unit, real, sizeof(real))) {
        names_add(&nm, real);
        mname = real;
    }
    bool found = unit_find(p, mname, file, sizeof(file));
    if (found) {
        struct install *in = calloc(1, sizeof(*in));
        if (!in) {
            error_setg(errp, "out of memory");
            return -1;
        }
        if (install_read(p, file, in, errp) < 0) {
            free(in);
            return -1;
        }
        for (int i = 0; i < in->n[INST_ALIAS]; i++)
            names_add(&nm, in->v[INST_ALIAS][i]);
        free(in);
    }
    /* a template given without an instance: every instance */
    bool is_templ = strstr(s->unit, "@.") != NULL;
    if ((r = sd_unlink_wants(p, &nm, is_templ ? s->unit : NULL, why,
                             errp)) < 0)
        return -1;
    changed |= r;
    for (int i = 0; i < nm.n; i++) {
        char path[512];
        snprintf(path, sizeof(path), SD_ETC "/%s", nm.v[i]);
        if (strcmp(nm.v[i], mname) && gview_lstat(p->v, path) == GT_LINK &&
            !is_mask(p, path)) {
            if (drop(p, path, why, errp) < 0)
                return -1;
            changed = 1;
        }
    }
    if (!found && !changed && !sysv_script)
        return 0;
    /* mask: the unit cannot be started, even by another unit */
    char mpath[512];
    snprintf(mpath, sizeof(mpath), SD_ETC "/%s", mname);
    enum gtype t = gview_lstat(p->v, mpath);
    if (t == GT_NONE || (t == GT_LINK && !is_mask(p, mpath))) {
        /* a linked unit's link is replaced by the mask too */
        if (gview_symlink(p->v, "/dev/null", mpath, GV_NOFOLLOW, errp) < 0)
            return -1;
        prep_log(p, mpath, why, "Masking %s (%s -> /dev/null)", mname,
                 mpath);
        changed = 1;
    } else if (t != GT_LINK) {
        prep_warn(p, "%s is a unit file in " SD_ETC "; not masked (its "
                  "links were removed)", mpath);
    }
    return changed;
}

static int sd_enable(struct prep *p, const char *unit, const char *why,
                     int depth, vf_error **errp);

static int sd_enable_links(struct prep *p, const char *unit,
                           const char *file, const char *why, int depth,
                           vf_error **errp)
{
    struct install *in = calloc(1, sizeof(*in));
    if (!in) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int changed = 0, r = 0;
    if (install_read(p, file, in, errp) < 0) {
        free(in);
        return -1;
    }
    if (in->skipped)
        prep_warn(p, "%s: some [Install] names are not unit names or are "
                  "too many; ignored", file);
    /* a template is enabled as an instance: the one given, or its
     * DefaultInstance */
    char lname[UNIT_MAX];
    snprintf(lname, sizeof(lname), "%s", unit);
    const char *at = strstr(unit, "@.");
    if (at) {
        if (!in->default_instance[0]) {
            prep_warn(p, "%s is a template with no DefaultInstance; give an "
                      "instance (name@instance)", unit);
            free(in);
            return 0;
        }
        int n = snprintf(lname, sizeof(lname), "%.*s@%s%s",
                         (int)(at - unit), unit, in->default_instance, at + 1);
        if (n < 0 || (size_t)n >= sizeof(lname) || !unit_name_ok(lname)) {
            free(in);
            return 0;
        }
    }
    static const char *const sfx[2] = { ".wants", ".requires" };
    for (int k = INST_WANTED; k <= INST_REQUIRED && r >= 0; k++) {
        for (int i = 0; i < in->n[k] && r >= 0; i++) {
            char dir[512], link[1024];
            snprintf(dir, sizeof(dir), SD_ETC "/%s%s", in->v[k][i], sfx[k]);
            if (gview_lstat(p->v, dir) == GT_NONE &&
                gview_mkdir(p->v, dir, 0755, -1, -1, GV_NOFOLLOW, errp) < 0) {
                r = -1;
                break;
            }
            snprintf(link, sizeof(link), "%s/%s", dir, lname);
            if ((r = put_link(p, file, link, why, errp)) > 0)
                changed = 1;
        }
    }
    for (int i = 0; i < in->n[INST_ALIAS] && r >= 0; i++) {
        char link[512];
        snprintf(link, sizeof(link), SD_ETC "/%s", in->v[INST_ALIAS][i]);
        if (gview_lstat(p->v, link) == GT_FILE)
            continue;          /* a unit file of that name: not ours */
        if ((r = put_link(p, file, link, why, errp)) > 0)
            changed = 1;
    }
    for (int i = 0; i < in->n[INST_ALSO] && r >= 0; i++) {
        if ((r = sd_enable(p, in->v[INST_ALSO][i], why, depth + 1,
                           errp)) > 0)
            changed = 1;
    }
    if (r >= 0 && !in->n[INST_WANTED] && !in->n[INST_REQUIRED] &&
        !in->n[INST_ALIAS] && !in->n[INST_ALSO])
        prep_warn(p, "%s has no [Install] section (a static unit); nothing "
                  "to link", file);
    free(in);
    return r < 0 ? -1 : changed;
}

static int sd_enable(struct prep *p, const char *unit, const char *why,
                     int depth, vf_error **errp)
{
    if (depth > 4)             /* Also= chains: a loop, or hostile */
        return 0;
    int changed = 0;
    char mpath[512], file[512], real[UNIT_MAX];
    snprintf(mpath, sizeof(mpath), SD_ETC "/%s", unit);
    if (is_mask(p, mpath)) {
        if (gview_remove(p->v, mpath, false, errp) < 0)
            return -1;
        prep_log(p, mpath, why, "Unmasking %s (removing %s)", unit, mpath);
        changed = 1;
    }
    /* an alias in /etc names the real unit: enable that one */
    const char *name = unit;
    if (alias_of(p, unit, real, sizeof(real)))
        name = real;
    bool found = unit_find(p, name, file, sizeof(file));
    if (!found) {
        /* an instance ("getty@tty2.service"): its template's file */
        const char *at = strchr(name, '@'), *dot = strrchr(name, '.');
        char templ[UNIT_MAX];
        if (at && dot && at + 1 < dot) {
            snprintf(templ, sizeof(templ), "%.*s%s", (int)(at + 1 - name),
                     name, dot);
            found = unit_find(p, templ, file, sizeof(file));
        }
    }
    if (!found)
        return changed;
    int r = sd_enable_links(p, name, file, why, depth, errp);
    return r < 0 ? -1 : (changed | r);
}

bool prep_service_exists(struct prep *p, const char *unit)
{
    struct svc s;
    char file[512], script[512];
    if (svc_parse(unit, &s, NULL) < 0)
        return false;
    if (unit_find(p, s.unit, file, sizeof(file)) ||
        (s.templ[0] && unit_find(p, s.templ, file, sizeof(file))))
        return true;
    snprintf(script, sizeof(script), "/etc/init.d/%s", s.sysv);
    return s.sysv[0] && gview_stat(p->v, script, NULL) == GT_FILE;
}

/* ---- SysV and OpenRC ---- */

static const char rc_levels[] = "0123456S";

/* The real directory of run level c: /etc/rc.d/rcN.d (Red Hat, where
 * /etc/rcN.d links to it) or /etc/rcN.d. */
static bool rc_dir(struct prep *p, char c, char *out, size_t len)
{
    snprintf(out, len, "/etc/rc.d/rc%c.d", c);
    if (prep_real_dir(p, out))
        return true;
    snprintf(out, len, "/etc/rc%c.d", c);
    return prep_real_dir(p, out);
}

/* "S20name" or "K01name" for name? */
static bool rc_link_of(const char *e, const char *name, char kind)
{
    return e[0] == kind && isdigit((unsigned char)e[1]) &&
           isdigit((unsigned char)e[2]) && !strcmp(e + 3, name);
}

static bool is_openrc(struct prep *p)
{
    return prep_real_dir(p, "/etc/runlevels");
}

static int sysv_disable(struct prep *p, const char *name, const char *why,
                        vf_error **errp)
{
    int changed = 0;
    for (const char *c = rc_levels; *c; c++) {
        char dir[64];
        struct prep_dir d;
        if (!rc_dir(p, *c, dir, sizeof(dir)))
            continue;
        if (prep_dir_read(p, dir, SVC_DIR_MAX, &d, errp) < 0)
            return -1;
        int r = 0;
        for (size_t i = 0; i < d.n && r >= 0; i++) {
            if (!rc_link_of(d.e[i].name, name, 'S') &&
                !rc_link_of(d.e[i].name, name, 'K'))
                continue;
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", dir, d.e[i].name);
            if ((r = drop(p, path, why, errp)) > 0)
                changed = 1;
        }
        prep_dir_free(&d);
        if (r < 0)
            return -1;
    }
    if (is_openrc(p)) {
        struct prep_dir d;
        if (prep_dir_read(p, "/etc/runlevels", SVC_DIR_MAX, &d, errp) < 0)
            return -1;
        int r = 0;
        for (size_t i = 0; i < d.n && r >= 0; i++) {
            char path[512];
            snprintf(path, sizeof(path), "/etc/runlevels/%s/%s", d.e[i].name,
                     name);
            if (d.e[i].type == GT_DIR && gview_lstat(p->v, path) != GT_NONE &&
                (r = drop(p, path, why, errp)) > 0)
                changed = 1;
        }
        prep_dir_free(&d);
        if (r < 0)
            return -1;
    }
    return changed;
}

/* Levels and order from the script's header: "# chkconfig: 2345 55 25"
 * or the LSB "# Default-Start: 2 3 4 5" / "# Default-Stop: 0 1 6". */
struct rc_header {
    char start[16], stop[16];
    int sprio, kprio;
};

static void levels_from(const char *v, char *out, size_t len)
{
    size_t n = 0;
    for (; *v && n + 1 < len; v++)
        if (strchr("0123456S", *v) && !memchr(out, *v, n))
            out[n++] = *v;
    out[n] = 0;
}

static int rc_header_read(struct prep *p, const char *script,
                          struct rc_header *h, vf_error **errp)
{
    snprintf(h->start, sizeof(h->start), "2345");
    snprintf(h->stop, sizeof(h->stop), "016");
    h->sprio = 20;
    h->kprio = 80;
    vf_error *err = NULL;
    char *text = prep_read(p, script, UNIT_FILE_MAX, NULL, &err);
    if (!text) {
        error_propagate(errp, err);
        return err ? -1 : 0;
    }
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *s = str_trim(line);
        if (*s != '#')
            continue;
        s = str_trim(s + 1);
        if (!strncmp(s, "chkconfig:", 10)) {
            char lv[16];
            int a, b;
            if (sscanf(s + 10, "%15s %d %d", lv, &a, &b) == 3 && a >= 0 &&
                a <= 99 && b >= 0 && b <= 99) {
                h->start[0] = h->stop[0] = 0;
                if (strcmp(lv, "-"))
                    levels_from(lv, h->start, sizeof(h->start));
                size_t n = 0;
                for (const char *c = "0123456"; *c; c++)
                    if (!strchr(h->start, *c))
                        h->stop[n++] = *c;
                h->stop[n] = 0;
                h->sprio = a;
                h->kprio = b;
                break;
            }
        } else if (!strncmp(s, "Default-Start:", 14)) {
            h->start[0] = 0;
            levels_from(s + 14, h->start, sizeof(h->start));
        } else if (!strncmp(s, "Default-Stop:", 13)) {
            h->stop[0] = 0;
            levels_from(s + 13, h->stop, sizeof(h->stop));
        }
    }
    free(text);
    return 0;
}

/* Is there an S (kind 'S'), K ('K') or either (0) link for name in dir? */
static int rc_has(struct prep *p, const char *dir, const char *name,
                  char kind, char *found, size_t flen, vf_error **errp)
{
    struct prep_dir d;
    if (prep_dir_read(p, dir, SVC_DIR_MAX, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < d.n && !r; i++)
        if ((kind != 'K' && rc_link_of(d.e[i].name, name, 'S')) ||
            (kind != 'S' && rc_link_of(d.e[i].name, name, 'K'))) {
            r = 1;
            if (found)
                snprintf(found, flen, "%s/%s", dir, d.e[i].name);
        }
    prep_dir_free(&d);
    return r;
}

static int sysv_enable(struct prep *p, const char *name, const char *why,
                       vf_error **errp)
{
    char script[512], target[512];
    snprintf(script, sizeof(script), "/etc/init.d/%s", name);
    if (gview_stat(p->v, script, NULL) != GT_FILE)
        return 0;
    int changed = 0;
    if (is_openrc(p)) {
        struct prep_dir d;
        if (prep_dir_read(p, "/etc/runlevels", SVC_DIR_MAX, &d, errp) < 0)
            return -1;
        bool there = false;
        for (size_t i = 0; i < d.n && !there; i++) {
            char path[512];
            snprintf(path, sizeof(path), "/etc/runlevels/%s/%s", d.e[i].name,
                     name);
            there = gview_lstat(p->v, path) != GT_NONE;
        }
        prep_dir_free(&d);
        if (there || !prep_real_dir(p, "/etc/runlevels/default"))
            return 0;
        char link[512];
        snprintf(link, sizeof(link), "/etc/runlevels/default/%s", name);
        return put_link(p, script, link, why, errp);
    }
    struct rc_header h;
    if (rc_header_read(p, script, &h, errp) < 0)
        return -1;
    snprintf(target, sizeof(target), "../init.d/%s", name);
    for (int pass = 0; pass < 2; pass++) {
        const char *levels = pass ? h.stop : h.start;
        char kind = pass ? 'K' : 'S';
        for (const char *c = levels; *c; c++) {
            char dir[64], link[512], old[512];
            if (!rc_dir(p, *c, dir, sizeof(dir)))
                continue;
            int r = rc_has(p, dir, name, pass ? 0 : 'S', NULL, 0, errp);
            if (r < 0)
                return -1;
            if (r)
                continue;
            /* a start level holding a K link (a disabled service) */
            if (!pass) {
                while ((r = rc_has(p, dir, name, 'K', old, sizeof(old),
                                   errp)) > 0)
                    if (drop(p, old, why, errp) < 0)
                        return -1;
                if (r < 0)
                    return -1;
            }
            snprintf(link, sizeof(link), "%s/%c%02d%s", dir, kind,
                     pass ? h.kprio : h.sprio, name);
            if ((r = put_link(p, target, link, why, errp)) < 0)
                return -1;
            changed |= r;
        }
    }
    return changed;
}

/* ---- the helpers ---- */

int prep_service_disable(struct prep *p, const char *unit, const char *why,
                         vf_error **errp)
{
    struct svc s;
    if (svc_parse(unit, &s, errp) < 0)
        return -1;
    char script[512];
    snprintf(script, sizeof(script), "/etc/init.d/%s", s.sysv);
    bool sysv_script = s.sysv[0] && gview_stat(p->v, script, NULL) == GT_FILE;
    int changed = 0, r;
    if (prep_has_systemd(p)) {
        if ((r = sd_disable(p, &s, why, sysv_script, errp)) < 0)
            return -1;
        changed |= r;
    }
    if (s.sysv[0]) {
        if ((r = sysv_disable(p, s.sysv, why, errp)) < 0)
            return -1;
        changed |= r;
    }
    return changed;
}

int prep_service_enable(struct prep *p, const char *unit, const char *why,
                        vf_error **errp)
{
    struct svc s;
    if (svc_parse(unit, &s, errp) < 0)
        return -1;
    int changed = 0, r;
    if (prep_has_systemd(p)) {
        if ((r = sd_enable(p, s.unit, why, 0, errp)) < 0)
            return -1;
        changed |= r;
    }
    if (s.sysv[0]) {
        if ((r = sysv_enable(p, s.sysv, why, errp)) < 0)
            return -1;
        changed |= r;
    }
    return changed;
}

const char *prep_pkg_remove_cmd(struct prep *p)
{
    static const struct {
        const char *mgr, *cmd;
    } cmds[] = {
        { "apt", "apt-get -y purge" }, { "dnf", "dnf -y remove" },
        { "yum", "yum -y remove" }, { "zypper", "zypper -n rm" },
        { "apk", "apk del" }, { "pacman", "pacman -Rns --noconfirm" },
    };
    const char *m = prep_os_str(p, "package-management");
    const char *d = prep_os_str(p, "distro");
    if ((!m || !strcmp(m, "unknown")) && d) {
        /* facts from an older report: the distro decides */
        if (!strcmp(d, "debian") || !strcmp(d, "ubuntu") ||
            !strcmp(d, "linuxmint") || !strcmp(d, "kalilinux"))
            m = "apt";
        else if (!strcmp(d, "sles") || !strcmp(d, "opensuse"))
            m = "zypper";
        else if (!strcmp(d, "alpinelinux"))
            m = "apk";
        else if (!strcmp(d, "archlinux"))
            m = "pacman";
        else if (!strcmp(d, "fedora") || !strcmp(d, "rhel") ||
                 !strcmp(d, "centos") || !strcmp(d, "rocky") ||
                 !strcmp(d, "almalinux") || !strcmp(d, "oraclelinux"))
            m = prep_os_int(p, "major-version", 0) >= 8 ||
                        !strcmp(d, "fedora") ? "dnf" : "yum";
    }
    for (size_t i = 0; m && i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(m, cmds[i].mgr))
            return cmds[i].cmd;
    return NULL;
}
