/*
 * edit-users.c: accounts and logins: --user-add, --password,
 * --root-password, --password-lock, --ssh-inject, --no-root-ssh.
 *
 * The account files are passwd(5), shadow(5), group(5) and gshadow(5):
 * colon-separated lines edited in place, owner and mode kept.  Password
 * hashes are made on the host with libxcrypt (crypt_gensalt_rn +
 * crypt_rn), yescrypt where the guest's libc verifies it, SHA-512
 * otherwise.  sshd reads the first value it finds for a keyword
 * (sshd_config(5)), so PermitRootLogin goes where sshd reads it first.
 * Homes are written with GV_NOFOLLOW: a home that is (or runs through) a
 * symbolic link is refused, never written through.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* An account file: 16 MiB is some 200,000 accounts. */
#define ACCT_MAX (16u << 20)
/* One line: names, a home, a shell and a member list; a group of a few
 * thousand members fits.  Longer is not an account file. */
#define ACCT_LINE_MAX (256u << 10)
/* Config files read here (login.defs, sshd_config, ...). */
#define CONF_MAX (1u << 20)
/* --password files and SSH public keys on the host. */
#define SECRET_MAX 4096
#define KEYS_MAX (1u << 20)
/* Keys in one --ssh-inject file: each is compared with every line of
 * authorized_keys. */
#define KEYS_LINES 1000
/* /etc/skel: a few dotfiles. */
#define SKEL_DEPTH 8
#define SKEL_ENTRIES 10000
#define SKEL_BYTES (64u << 20)
#define ID_LIMIT 2147483647L

/* ---- account files ---- */

struct acct {
    const char *path;
    char *text;                /* NULL when the file is absent */
    size_t len;
};

static void acct_free(struct acct *a)
{
    free(a->text);
    a->text = NULL;
}

static int acct_load(struct prep *p, const char *path, struct acct *a,
                     vf_error **errp)
{
    memset(a, 0, sizeof(*a));
    a->path = path;
    if (gview_lstat(p->v, path) == GT_NONE)
        return 0;
    vf_error *err = NULL;
    a->text = prep_read(p, path, ACCT_MAX, &a->len, &err);
    if (!a->text) {
        if (!err)
            error_setg(&err, "%s: not a regular file", path);
        error_propagate(errp, err);
        return -1;
    }
    if (memchr(a->text, 0, a->len)) {
        error_setg(errp, "%s: holds a NUL byte; not an account file", path);
        acct_free(a);
        return -1;
    }
    size_t line = 1;
    for (const char *s = a->text, *end = a->text + a->len; s < end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (l > ACCT_LINE_MAX) {
            error_setg(errp, "%s: line %zu is %zu bytes long (more than %u); "
                       "not editing it", path, line, l, ACCT_LINE_MAX);
            acct_free(a);
            return -1;
        }
        s += l + 1;
    }
    return 0;
}

/* The line whose first field is name: its start and length, or NULL. */
static char *acct_find(const struct acct *a, const char *name, size_t *ll)
{
    size_t nl = strlen(name);
    if (!a->text)
        return NULL;
    for (char *s = a->text, *end = a->text + a->len; s < end;) {
        char *e = memchr(s, '\n', (size_t)(end - s));
        size_t l = e ? (size_t)(e - s) : (size_t)(end - s);
        if (l > nl && !memcmp(s, name, nl) && s[nl] == ':') {
            *ll = l;
            return s;
        }
        s += l + 1;
    }
    return NULL;
}

/* Field idx (0-based) of a line into out; false when absent or longer
 * than out. */
static bool field(const char *line, size_t ll, int idx, char *out,
                  size_t olen)
{
    const char *s = line, *end = line + ll;
    for (int i = 0; i < idx; i++) {
        const char *c = memchr(s, ':', (size_t)(end - s));
        if (!c)
            return false;
        s = c + 1;
    }
    const char *c = memchr(s, ':', (size_t)(end - s));
    size_t l = c ? (size_t)(c - s) : (size_t)(end - s);
    if (l >= olen)
        return false;
    memcpy(out, s, l);
    out[l] = 0;
    return true;
}

/* Replace [at, at+old) of a's text by rep (rl bytes). */
static int acct_splice(struct acct *a, size_t at, size_t old, const char *rep,
                       size_t rl, vf_error **errp)
{
    size_t nl = a->len - old + rl;
    char *n = malloc(nl + 1);
    if (!n) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(n, a->text, at);
    memcpy(n + at, rep, rl);
    memcpy(n + at + rl, a->text + at + old, a->len - at - old);
    n[nl] = 0;
    free(a->text);
    a->text = n;
    a->len = nl;
    return 0;
}

/* Append one line (a newline first if the file lacks its last one). */
static int acct_append(struct acct *a, const char *line, vf_error **errp)
{
    char buf[1024];
    bool nl = a->len && a->text[a->len - 1] != '\n';
    int n = snprintf(buf, sizeof(buf), "%s%s\n", nl ? "\n" : "", line);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        error_setg(errp, "%s: line too long", a->path);
        return -1;
    }
    if (!a->text) {
        a->text = calloc(1, 1);
        if (!a->text) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    return acct_splice(a, a->len, 0, buf, (size_t)n, errp);
}

/* Replace field idx of name's line by val. */
static int acct_set_field(struct acct *a, const char *name, int idx,
                          const char *val, vf_error **errp)
{
    size_t ll = 0;
    char *line = acct_find(a, name, &ll);
    if (!line) {
        error_setg(errp, "%s: no line for %s", a->path, name);
        return -1;
    }
    const char *s = line, *end = line + ll;
    for (int i = 0; i < idx; i++) {
        const char *c = memchr(s, ':', (size_t)(end - s));
        if (!c) {
            error_setg(errp, "%s: the line for %s has too few fields",
                       a->path, name);
            return -1;
        }
        s = c + 1;
    }
    const char *c = memchr(s, ':', (size_t)(end - s));
    size_t old = c ? (size_t)(c - s) : (size_t)(end - s);
    return acct_splice(a, (size_t)(s - a->text), old, val, strlen(val),
                       errp);
}

/* Add member to the member list (field 3) of group's line; a line with
 * only three fields gets the fourth. */
static int acct_add_member(struct acct *a, const char *group,
                           const char *member, vf_error **errp)
{
    size_t ll = 0;
    char *line = acct_find(a, group, &ll);
    if (!line)
        return 0;
    int colons = 0;
    const char *last = NULL;
    for (size_t i = 0; i < ll; i++)
        if (line[i] == ':') {
            colons++;
            last = line + i;
        }
    if (colons < 2) {
        error_setg(errp, "%s: the line for group %s is malformed", a->path,
                   group);
        return -1;
    }
    /* already a member? */
    if (colons >= 3) {
        const char *m = last + 1, *end = line + ll;
        size_t ml = strlen(member);
        while (m < end) {
            const char *c = memchr(m, ',', (size_t)(end - m));
            size_t l = c ? (size_t)(c - m) : (size_t)(end - m);
            if (l == ml && !memcmp(m, member, ml))
                return 0;
            m += l + 1;
        }
    }
    char add[64];
    bool empty = colons >= 3 && last == line + ll - 1;
    snprintf(add, sizeof(add), "%s%s", colons < 3 ? ":" : empty ? "" : ",",
             member);
    return acct_splice(a, (size_t)(line - a->text) + ll, 0, add, strlen(add),
                       errp);
}

static int acct_save(struct prep *p, struct acct *a, const char *why,
                     const char *what, vf_error **errp)
{
    if (gview_write(p->v, a->path, a->text, a->len, -1, -1, -1, 0, errp) < 0)
        return -1;
    prep_log(p, a->path, why, "%s", what);
    return 0;
}

/* A number field: 0..ID_LIMIT, or -1. */
static long parse_id(const char *s)
{
    if (!*s || strlen(s) > 10)
        return -1;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c))
            return -1;
    long v = strtol(s, NULL, 10);
    return v > ID_LIMIT ? -1 : v;
}

/* useradd's rule for names (and ours for groups). */
static bool valid_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 32 || !(islower((unsigned char)n[0]) || n[0] == '_'))
        return false;
    for (const char *c = n; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) &&
            *c != '_' && *c != '-')
            return false;
    return true;
}

/* The ids of field idx of every line, sorted (a hostile file has at
 * most ACCT_MAX / 4 lines). */
struct ids {
    long *v;
    size_t n;
};

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int ids_load(const struct acct *a, int idx, struct ids *ids,
                    vf_error **errp)
{
    size_t lines = 0, cap;
    memset(ids, 0, sizeof(*ids));
    for (size_t i = 0; i < a->len; i++)
        lines += a->text[i] == '\n';
    cap = lines + 1;
    if (!(ids->v = malloc(cap * sizeof(*ids->v)))) {
        error_setg(errp, "out of memory");
        return -1;
    }
    for (char *s = a->text, *end = a->text + a->len; s && s < end;) {
        char *e = memchr(s, '\n', (size_t)(end - s));
        size_t l = e ? (size_t)(e - s) : (size_t)(end - s);
        char f[16];
        long v;
        if (ids->n < cap && field(s, l, idx, f, sizeof(f)) &&
            (v = parse_id(f)) >= 0)
            ids->v[ids->n++] = v;
        s += l + 1;
    }
    qsort(ids->v, ids->n, sizeof(*ids->v), cmp_long);
    return 0;
}

static bool ids_has(const struct ids *ids, long id)
{
    return ids->n && bsearch(&id, ids->v, ids->n, sizeof(*ids->v), cmp_long);
}

/* The next free id in [min, max]: above the highest one used there,
 * else the lowest free one (useradd's choice); -1 when all are used. */
static long ids_pick(const struct ids *ids, long min, long max)
{
    long hi = min - 1;
    for (size_t i = 0; i < ids->n; i++)
        if (ids->v[i] >= min && ids->v[i] <= max)
            hi = ids->v[i];
    if (hi < max)
        return hi + 1;
    long next = min;
    for (size_t i = 0; i < ids->n && next <= max; i++) {
        if (ids->v[i] > next)
            return next;
        if (ids->v[i] == next)
            next++;
    }
    return next <= max ? next : -1;
}

/* KEY VALUE from login.defs, or def. */
static long login_defs(const char *text, const char *key, int base, long def)
{
    size_t kl = strlen(key);
    for (const char *s = text; s && *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!strncmp(s, key, kl) && (s[kl] == ' ' || s[kl] == '\t')) {
            char *end;
            errno = 0;
            long v = strtol(s + kl, &end, base);
            if (!errno && end != s + kl && v >= 0 && v <= ID_LIMIT)
                return v;
        }
        s = strchr(s, '\n');
        if (s)
            s++;
    }
    return def;
}

/* ---- /etc/skel ---- */

struct skel {
    int64_t uid, gid;
    size_t entries, bytes;
};

static int skel_copy(struct prep *p, const char *src, const char *dst,
                     struct skel *k, int depth, vf_error **errp)
{
    struct prep_dir d;
    if (depth > SKEL_DEPTH) {
        prep_warn(p, "%s: nested deeper than %d; not copied", src,
                  SKEL_DEPTH);
        return 0;
    }
    if (prep_dir_read(p, src, SKEL_ENTRIES, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < d.n && r == 0; i++) {
        char *s = NULL, *t = NULL;
        if (asprintf(&s, "%s/%s", src, d.e[i].name) < 0 ||
            asprintf(&t, "%s/%s", dst, d.e[i].name) < 0) {
            error_setg(errp, "out of memory");
            free(s);
            r = -1;
            break;
        }
        if (++k->entries > SKEL_ENTRIES) {
            error_setg(errp, "/etc/skel: more than %d entries", SKEL_ENTRIES);
            r = -1;
        }
        /* the inode decides, not the directory entry's type byte */
        enum gtype ty = r ? GT_NONE : gview_lstat(p->v, s);
        int mode = 0644;
        uint32_t u, g;
        gview_owner(p->v, s, &u, &g, &mode);
        if (ty == GT_DIR) {
            r = gview_mkdir(p->v, t, mode & 07777, k->uid, k->gid,
                            GV_NOFOLLOW, errp);
            if (r == 0)
                r = skel_copy(p, s, t, k, depth + 1, errp);
        } else if (ty == GT_FILE) {
            char *data = NULL;
            size_t len = 0;
            uint64_t sz = 0;
            gview_stat(p->v, s, &sz);
            if (sz > SKEL_BYTES || k->bytes + sz > SKEL_BYTES) {
                error_setg(errp, "/etc/skel: more than %u bytes", SKEL_BYTES);
                r = -1;
            } else if ((r = gview_read(p->v, s, SKEL_BYTES, &data, &len,
                                       errp)) == 0) {
                k->bytes += len;
                r = gview_write(p->v, t, data, len, mode & 07777, k->uid,
                                k->gid, GV_NOFOLLOW, errp);
            }
            free(data);
        } else if (ty == GT_LINK) {
            char *target = gview_readlink(p->v, s);
            if (target) {
                r = gview_symlink(p->v, target, t, GV_NOFOLLOW, errp);
                if (r == 0)
                    r = gview_chown(p->v, t, k->uid, k->gid, errp);
            }
            free(target);
        }
        free(s);
        free(t);
    }
    prep_dir_free(&d);
    return r;
}

/* ---- --user-add ---- */

int edit_user_add(struct prep *p, const char *arg, vf_error **errp)
{
    const char *why = "--user-add";
    char name[64] = "", uidstr[32] = "", groups[1024] = "";
    const char *c1 = strchr(arg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    size_t nl = c1 ? (size_t)(c1 - arg) : strlen(arg);
    if (nl >= sizeof(name) || (c2 && strchr(c2 + 1, ':'))) {
        error_setg(errp, "'%.64s': expected NAME[:UID][:GROUPS]", arg);
        return -1;
    }
    memcpy(name, arg, nl);
    name[nl] = 0;
    if (c1) {
        size_t ul = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
        if (ul >= sizeof(uidstr)) {
            error_setg(errp, "'%.64s': not a user id", c1 + 1);
            return -1;
        }
        memcpy(uidstr, c1 + 1, ul);
        uidstr[ul] = 0;
    }
    if (c2 && snprintf(groups, sizeof(groups), "%s", c2 + 1) >=
                  (int)sizeof(groups)) {
        error_setg(errp, "the group list is too long");
        return -1;
    }
    if (!valid_name(name)) {
        error_setg(errp, "'%.64s' is not a valid user name ([a-z_][a-z0-9_-]*, "
                   "at most 32)", name);
        return -1;
    }
    long uid = -1;
    if (uidstr[0] && ((uid = parse_id(uidstr)) < 1)) {
        error_setg(errp, "'%s' is not a user id (1 to %ld)", uidstr,
                   ID_LIMIT);
        return -1;
    }

    struct acct pw, sh, gr, gs;
    struct ids uids = { 0 }, gids = { 0 };
    int r = -1;
    memset(&sh, 0, sizeof(sh));
    memset(&gr, 0, sizeof(gr));
    memset(&gs, 0, sizeof(gs));
    char *defs = NULL, *home = NULL, *msg = NULL;
    if (acct_load(p, "/etc/passwd", &pw, errp) < 0)
        return -1;
    if (acct_load(p, "/etc/shadow", &sh, errp) < 0 ||
        acct_load(p, "/etc/group", &gr, errp) < 0 ||
        acct_load(p, "/etc/gshadow", &gs, errp) < 0)
        goto out;
    if (!pw.text || !gr.text) {
        error_setg(errp, "the guest has no %s", pw.text ? "/etc/group"
                                                        : "/etc/passwd");
        goto out;
    }
    size_t ll = 0;
    if (acct_find(&pw, name, &ll) || acct_find(&sh, name, &ll)) {
        error_setg(errp, "user %s already exists", name);
        goto out;
    }
    if (acct_find(&gr, name, &ll)) {
        error_setg(errp, "a group named %s already exists", name);
        goto out;
    }
    /* supplementary groups: each must exist */
    char *gsave = NULL;
    char glist[1024];
    snprintf(glist, sizeof(glist), "%s", groups);
    for (char *g = strtok_r(glist, ",", &gsave); g;
         g = strtok_r(NULL, ",", &gsave)) {
        if (strlen(g) > 32 || strspn(g, "abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-") != strlen(g)) {
            error_setg(errp, "'%.64s' is not a group name", g);
            goto out;
        }
        if (!acct_find(&gr, g, &ll)) {
            error_setg(errp, "group '%.64s' does not exist in the guest", g);
            goto out;
        }
    }
    size_t dlen = 0;
    vf_error *derr = NULL;
    defs = prep_read(p, "/etc/login.defs", CONF_MAX, &dlen, &derr);
    error_free(derr);
    long umin = 1000, umax = 60000, gmin = 1000, gmax = 60000;
    long home_mode = -1, umask_v = 022;
    if (defs) {
        umin = login_defs(defs, "UID_MIN", 10, umin);
        umax = login_defs(defs, "UID_MAX", 10, umax);
        gmin = login_defs(defs, "GID_MIN", 10, gmin);
        gmax = login_defs(defs, "GID_MAX", 10, gmax);
        home_mode = login_defs(defs, "HOME_MODE", 8, -1);
        umask_v = login_defs(defs, "UMASK", 8, 022);
    }
    if (umin < 1 || umin > umax)
        umin = 1000, umax = 60000;
    if (gmin < 1 || gmin > gmax)
        gmin = 1000, gmax = 60000;
    if (ids_load(&pw, 2, &uids, errp) < 0 || ids_load(&gr, 2, &gids, errp) < 0)
        goto out;
    if (uid >= 0) {
        if (ids_has(&uids, uid)) {
            error_setg(errp, "uid %ld is already used", uid);
            goto out;
        }
    } else if ((uid = ids_pick(&uids, umin, umax)) < 0) {
        error_setg(errp, "no free uid between %ld and %ld", umin, umax);
        goto out;
    }
    /* the user's private group: the same number when it is free */
    long gid = uid;
    if (ids_has(&gids, gid) && (gid = ids_pick(&gids, gmin, gmax)) < 0) {
        error_setg(errp, "no free gid between %ld and %ld", gmin, gmax);
        goto out;
    }
    if (asprintf(&home, "/home/%s", name) < 0) {
        home = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    const char *shell = gview_stat(p->v, "/bin/bash", NULL) == GT_FILE
                            ? "/bin/bash" : "/bin/sh";
    char line[512];
    snprintf(line, sizeof(line), "%s:%s:%ld:%ld::%s:%s", name,
             sh.text ? "x" : "*", uid, gid, home, shell);
    if (acct_append(&pw, line, errp) < 0)
        goto out;
    if (sh.text) {
        /* "*": no password works, but the account is not locked, so SSH
         * keys log in even where sshd runs without PAM */
        snprintf(line, sizeof(line), "%s:*:%ld:0:99999:7:::", name,
                 (long)(time(NULL) / 86400));
        if (acct_append(&sh, line, errp) < 0)
            goto out;
    }
    snprintf(line, sizeof(line), "%s:x:%ld:", name, gid);
    if (acct_append(&gr, line, errp) < 0)
        goto out;
    if (gs.text) {
        snprintf(line, sizeof(line), "%s:!::", name);
        if (acct_append(&gs, line, errp) < 0)
            goto out;
    }
    snprintf(glist, sizeof(glist), "%s", groups);
    gsave = NULL;
    for (char *g = strtok_r(glist, ",", &gsave); g;
         g = strtok_r(NULL, ",", &gsave))
        if (acct_add_member(&gr, g, name, errp) < 0 ||
            (gs.text && acct_add_member(&gs, g, name, errp) < 0))
            goto out;
    /* every file checked and built: now write */
    if (asprintf(&msg, "Adding user %s (uid %ld, gid %ld, home %s)", name,
                 uid, gid, home) < 0) {
        msg = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    if (acct_save(p, &pw, why, msg, errp) < 0 ||
        (sh.text && acct_save(p, &sh, why, "Adding the user to /etc/shadow "
                              "(no password)", errp) < 0) ||
        acct_save(p, &gr, why, groups[0] ? "Adding the user's group and "
                  "adding it to its supplementary groups"
                  : "Adding the user's group", errp) < 0 ||
        (gs.text && acct_save(p, &gs, why, "Adding the group to "
                              "/etc/gshadow", errp) < 0))
        goto out;
    /* the home, from /etc/skel */
    int hm = home_mode >= 0 ? (int)(home_mode & 07777)
                            : (int)(0777 & ~umask_v);
    if (gview_lstat(p->v, home) != GT_NONE) {
        prep_warn(p, "%s already exists; not copying /etc/skel into it",
                  home);
    } else {
        if (gview_mkdir(p->v, home, hm, uid, gid, GV_PARENTS | GV_NOFOLLOW,
                        errp) < 0)
            goto out;
        struct skel k = { .uid = uid, .gid = gid };
        if (prep_real_dir(p, "/etc/skel") &&
            skel_copy(p, "/etc/skel", home, &k, 0, errp) < 0)
            goto out;
        prep_log(p, home, why, "Making %s (mode %04o) with %zu entries of "
                 "/etc/skel", home, hm, k.entries);
    }
    r = 0;
out:
    acct_free(&pw);
    acct_free(&sh);
    acct_free(&gr);
    acct_free(&gs);
    free(uids.v);
    free(gids.v);
    free(defs);
    free(home);
    free(msg);
    return r;
}

/* ---- passwords ---- */

/* Does the guest's libc verify yescrypt ("$y$") hashes?  libxcrypt with
 * yescrypt as the default: virt-customize's table, and Ubuntu from
 * 22.04. */
static bool guest_yescrypt(struct prep *p)
{
    const char *d = prep_os_str(p, "distro");
    int64_t maj = prep_os_int(p, "major-version", 0);
    if (!d)
        return false;
    static const struct {
        const char *distro;
        int64_t major;
    } t[] = {
        { "debian", 11 }, { "ubuntu", 22 }, { "rhel", 9 }, { "centos", 9 },
        { "rocky", 9 }, { "almalinux", 9 }, { "oraclelinux", 9 },
        { "fedora", 30 }, { "sles", 15 }, { "opensuse", 15 },
        { "archlinux", 0 }, { "linuxmint", 21 },
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(d, t[i].distro))
            return maj >= t[i].major;
    return false;
}

/* The crypt(3) hash of clear for this guest, into out. */
static int hash_password(struct prep *p, const char *clear, char *out,
                         size_t olen, vf_error **errp)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        error_setg(errp, "out of memory");
        return -1;
    }
    /* random salt from the OS (rbytes NULL) */
    const char *prefix = guest_yescrypt(p) ? "$y$" : "$6$";
    if (!crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) &&
        (strcmp(prefix, "$y$") || (prefix = "$6$",
         !crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting))))) {
        error_setg_errno(errp, errno, "cannot make a %s salt", prefix);
        free(cd);
        return -1;
    }
    const char *h = crypt_rn(clear, setting, cd, sizeof(*cd));
    int r = 0;
    if (!h || h[0] == '*' || strlen(h) >= olen) {
        error_setg_errno(errp, errno, "hashing the password failed");
        r = -1;
    } else {
        snprintf(out, olen, "%s", h);
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return r;
}

/* Set user's shadow password field to val (or passwd's, without a
 * shadow file) and the last-change day. */
static int set_pw_field(struct prep *p, const char *user, const char *val,
                        const char *why, const char *what, vf_error **errp)
{
    struct acct sh, pw;
    int r = -1;
    memset(&pw, 0, sizeof(pw));
    if (acct_load(p, "/etc/shadow", &sh, errp) < 0)
        return -1;
    struct acct *a = &sh;
    size_t ll = 0;
    if (!sh.text) {
        if (acct_load(p, "/etc/passwd", &pw, errp) < 0)
            goto out;
        a = &pw;
    }
    if (!acct_find(a, user, &ll)) {
        error_setg(errp, "user %s is not in %s", user, a->path);
        goto out;
    }
    if (acct_set_field(a, user, 1, val, errp) < 0)
        goto out;
    if (a == &sh) {
        char day[24];
        snprintf(day, sizeof(day), "%ld", (long)(time(NULL) / 86400));
        if (acct_set_field(a, user, 2, day, errp) < 0)
            goto out;
    }
    r = acct_save(p, a, why, what, errp);
out:
    acct_free(&sh);
    acct_free(&pw);
    return r;
}

static int set_password(struct prep *p, const char *user, const char *file,
                        const char *why, vf_error **errp)
{
    size_t len;
    char *clear = prep_read_host(file, SECRET_MAX, &len, errp);
    if (!clear)
        return -1;
    /* the first line is the password */
    clear[strcspn(clear, "\r\n")] = 0;
    int r = -1;
    char hash[CRYPT_OUTPUT_SIZE], what[128];
    if (!*clear) {
        error_setg(errp, "%s: the password is empty", file);
    } else if (hash_password(p, clear, hash, sizeof(hash), errp) == 0) {
        snprintf(what, sizeof(what), "Setting the password of %s (%s)", user,
                 !strncmp(hash, "$y$", 3) ? "yescrypt" : "SHA-512");
        r = set_pw_field(p, user, hash, why, what, errp);
        explicit_bzero(hash, sizeof(hash));
    }
    explicit_bzero(clear, len);
    free(clear);
    return r;
}

int edit_password(struct prep *p, const char *arg, vf_error **errp)
{
    char *user, *file;
    if (prep_split("--password", arg, &user, &file, errp) < 0)
        return -1;
    int r = -1;
    if (!valid_name(user) && strcmp(user, "root"))
        error_setg(errp, "'%.64s' is not a user name", user);
    else
        r = set_password(p, user, file, "--password", errp);
    free(user);
    free(file);
    return r;
}

int edit_root_password(struct prep *p, const char *arg, vf_error **errp)
{
    return set_password(p, "root", arg, "--root-password", errp);
}

int edit_password_lock(struct prep *p, const char *arg, vf_error **errp)
{
    struct acct sh;
    if (!valid_name(arg)) {
        error_setg(errp, "'%.64s' is not a user name", arg);
        return -1;
    }
    if (acct_load(p, "/etc/shadow", &sh, errp) < 0)
        return -1;
    int r = -1;
    size_t ll = 0;
    char *line = sh.text ? acct_find(&sh, arg, &ll) : NULL;
    char cur[4096], val[4100];
    if (!sh.text) {
        error_setg(errp, "the guest has no /etc/shadow");
    } else if (!line) {
        error_setg(errp, "user %s is not in /etc/shadow", arg);
    } else if (!field(line, ll, 1, cur, sizeof(cur))) {
        error_setg(errp, "/etc/shadow: the line for %s is malformed", arg);
    } else if (cur[0] == '!') {
        r = 0;                 /* already locked */
    } else {
        snprintf(val, sizeof(val), "!%s", cur);
        char what[128];
        snprintf(what, sizeof(what), "Locking the password of %s", arg);
        if (acct_set_field(&sh, arg, 1, val, errp) == 0)
            r = acct_save(p, &sh, "--password-lock", what, errp);
    }
    acct_free(&sh);
    return r;
}

/* ---- --ssh-inject ---- */

/* An absolute path without "." or ".." components. */
static bool plain_path(const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *s = path; s && *s; s = strchr(s + 1, '/')) {
        const char *c = s + 1;
        size_t l = strcspn(c, "/");
        if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return false;
    }
    return true;
}

int edit_ssh_inject(struct prep *p, const char *arg, vf_error **errp)
{
    const char *why = "--ssh-inject";
    char *user, *file;
    if (prep_split("--ssh-inject", arg, &user, &file, errp) < 0)
        return -1;
    struct acct pw;
    char *key = NULL, *cur = NULL, *buf = NULL, *ssh = NULL, *ak = NULL;
    int r = -1;
    memset(&pw, 0, sizeof(pw));
    size_t klen = 0, clen = 0;
    if (!(key = prep_read_host(file, KEYS_MAX, &klen, errp)))
        goto out;
    size_t nkeys = 0;
    for (size_t i = 0; i < klen; i++)
        nkeys += key[i] == '\n';
    if (!klen || memchr(key, 0, klen) || nkeys > KEYS_LINES) {
        error_setg(errp, "%s: not an SSH public key file (at most %d keys)",
                   file, KEYS_LINES);
        goto out;
    }
    if (acct_load(p, "/etc/passwd", &pw, errp) < 0)
        goto out;
    size_t ll = 0;
    char *line = acct_find(&pw, user, &ll);
    char uids[16], gids[16], home[4096];
    if (!line) {
        error_setg(errp, "user %.64s is not in /etc/passwd", user);
        goto out;
    }
    long uid, gid;
    if (!field(line, ll, 2, uids, sizeof(uids)) ||
        !field(line, ll, 3, gids, sizeof(gids)) ||
        !field(line, ll, 5, home, sizeof(home)) ||
        (uid = parse_id(uids)) < 0 || (gid = parse_id(gids)) < 0 ||
        !plain_path(home)) {
        error_setg(errp, "/etc/passwd: the line for %s is malformed", user);
        goto out;
    }
    size_t hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        home[--hl] = 0;
    /* the home itself: a real directory (or absent: made), never a link */
    enum gtype ht = gview_lstat(p->v, home);
    if (ht == GT_LINK) {
        error_setg(errp, "%s's home %s is a symbolic link; not writing "
                   "through it", user, home);
        goto out;
    }
    if (ht == GT_NONE) {
        if (gview_mkdir(p->v, home, 0700, uid, gid, GV_PARENTS | GV_NOFOLLOW,
                        errp) < 0)
            goto out;
        prep_log(p, home, why, "Making %s's home %s", user, home);
    } else if (ht != GT_DIR) {
        error_setg(errp, "%s's home %s is not a directory", user, home);
        goto out;
    }
    if (asprintf(&ssh, "%s/.ssh", strcmp(home, "/") ? home : "") < 0 ||
        asprintf(&ak, "%s/authorized_keys", ssh) < 0) {
        error_setg(errp, "out of memory");
        goto out;
    }
    enum gtype st = gview_lstat(p->v, ssh);
    if (st == GT_NONE) {
        if (gview_mkdir(p->v, ssh, 0700, uid, gid, GV_NOFOLLOW, errp) < 0)
            goto out;
        prep_log(p, ssh, why, "Making %s (mode 0700, owner %ld:%ld)", ssh,
                 uid, gid);
    } else if (st != GT_DIR) {
        error_setg(errp, "%s is %s; not writing through it", ssh,
                   st == GT_LINK ? "a symbolic link" : "not a directory");
        goto out;
    }
    /* the path is known to be links-free up to .ssh: check the file */
    enum gtype at = gview_lstat(p->v, ak);
    if (at != GT_NONE && at != GT_FILE) {
        error_setg(errp, "%s is %s; not writing through it", ak,
                   at == GT_LINK ? "a symbolic link" : "not a regular file");
        goto out;
    }
    vf_error *err = NULL;
    if (at == GT_FILE && !(cur = prep_read(p, ak, KEYS_MAX, &clen, &err))) {
        error_propagate(errp, err);
        goto out;
    }
    /* append the keys not there yet (a rerun adds nothing) */
    buf = malloc(clen + klen + 2);
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    size_t n = clen;
    if (clen)
        memcpy(buf, cur, clen);
    if (n && buf[n - 1] != '\n')
        buf[n++] = '\n';
    int added = 0;
    for (char *s = key, *e; s < key + klen; s = e + 1) {
        e = memchr(s, '\n', (size_t)(key + klen - s));
        if (!e)
            e = key + klen;
        size_t l = (size_t)(e - s);
        while (l && (s[l - 1] == '\r' || s[l - 1] == ' '))
            l--;
        if (!l || *s == '#')
            continue;
        bool dup = false;
        for (char *c = buf; c < buf + n && !dup;) {
            char *ce = memchr(c, '\n', (size_t)(buf + n - c));
            size_t cl = ce ? (size_t)(ce - c) : (size_t)(buf + n - c);
            dup = cl == l && !memcmp(c, s, l);
            c += cl + 1;
        }
        if (dup)
            continue;
        memmove(buf + n, s, l);
        n += l;
        buf[n++] = '\n';
        added++;
    }
    if (!added && at == GT_FILE) {
        r = 0;
        goto out;
    }
    if (gview_write(p->v, ak, buf, n, 0600, uid, gid, GV_NOFOLLOW, errp) < 0)
        goto out;
    prep_log(p, ak, why, "Adding %d SSH key%s to %s (mode 0600, owner "
             "%ld:%ld)", added, added == 1 ? "" : "s", ak, uid, gid);
    r = 0;
out:
    acct_free(&pw);
    free(key);
    free(cur);
    free(buf);
    free(ssh);
    free(ak);
    free(user);
    free(file);
    return r;
}

/* ---- --no-root-ssh ---- */

/* The keyword of an sshd_config line (lower-cased into kw) and where its
 * arguments start; false for blank and comment lines. */
static bool sshd_kw(const char *line, size_t ll, char *kw, size_t kwlen,
                    const char **args)
{
    size_t i = 0, k = 0;
    while (i < ll && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == ll || line[i] == '#')
        return false;
    while (i < ll && !strchr(" \t=", line[i]) && k + 1 < kwlen)
        kw[k++] = (char)tolower((unsigned char)line[i++]);
    kw[k] = 0;
    while (i < ll && strchr(" \t=", line[i]))
        i++;
    *args = line + i;
    return k > 0;
}

/* Rewrite every PermitRootLogin line of text before its first Match
 * (those are the ones sshd reads) to "PermitRootLogin no"; with
 * insert, add one before the first Match (or at the end) when none was
 * there.  *changed counts the lines changed or added; NULL when out of
 * memory. */
static char *sshd_rewrite(const char *text, size_t len, bool insert,
                          int *changed, size_t *olen)
{
    static const char want[] = "PermitRootLogin no";
    size_t wl = sizeof(want) - 1;
    /* each line may grow to want; one line may be added */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    char *out = malloc(len + (lines + 1) * (wl + 2) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool seen = false, in_match = false;
    *changed = 0;
    for (size_t i = 0; i < len;) {
        const char *e = memchr(text + i, '\n', len - i);
        size_t ll = e ? (size_t)(e - (text + i)) : len - i;
        char kw[32];
        const char *args;
        bool is_kw = sshd_kw(text + i, ll, kw, sizeof(kw), &args);
        if (is_kw && !strcmp(kw, "match"))
            in_match = true;
        if (insert && !seen && in_match) {
            memcpy(out + o, want, wl);
            o += wl;
            out[o++] = '\n';
            seen = true;
            (*changed)++;
        }
        if (is_kw && !in_match && !strcmp(kw, "permitrootlogin")) {
            seen = true;
            size_t al = (size_t)(text + i + ll - args);
            if (!(al >= 2 && !strncasecmp(args, "no", 2) &&
                  (al == 2 || strchr(" \t#\r", args[2])))) {
                memcpy(out + o, want, wl);
                o += wl;
                (*changed)++;
                if (e)
                    out[o++] = '\n';
                i += ll + (e ? 1 : 0);
                continue;
            }
        }
        memcpy(out + o, text + i, ll);
        o += ll;
        if (e)
            out[o++] = '\n';
        i += ll + (e ? 1 : 0);
    }
    if (insert && !seen) {
        if (o && out[o - 1] != '\n')
            out[o++] = '\n';
        memcpy(out + o, want, wl);
        o += wl;
        out[o++] = '\n';
        (*changed)++;
    }
    out[o] = 0;
    *olen = o;
    return out;
}

/* Write text back if it changed. */
static int sshd_put(struct prep *p, const char *path, const char *text,
                    size_t len, bool insert, vf_error **errp)
{
    int changed = 0;
    size_t olen = 0;
    char *out = sshd_rewrite(text, len, insert, &changed, &olen);
    if (!out) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = 0;
    if (changed) {
        r = gview_write(p->v, path, out, olen, -1, -1, -1, GV_NOFOLLOW, errp);
        if (r == 0)
            prep_log(p, path, "--no-root-ssh", "Setting PermitRootLogin no "
                     "in %s", path);
    }
    free(out);
    return r;
}

int edit_no_root_ssh(struct prep *p, const char *arg, vf_error **errp)
{
    const char *cfg = "/etc/ssh/sshd_config";
    const char *dropdir = "/etc/ssh/sshd_config.d";
    const char *drop = "/etc/ssh/sshd_config.d/50-vmferry.conf";
    size_t len = 0;
    vf_error *err = NULL;
    char *text = prep_read(p, cfg, CONF_MAX, &len, &err);
    if (!text && err) {
        error_propagate(errp, err);
        return -1;
    }
    if (!text) {
        /* openSUSE keeps the vendor file in /usr/etc, which includes the
         * drop-in directory */
        if (gview_stat(p->v, "/usr/etc/ssh/sshd_config", NULL) != GT_FILE) {
            prep_warn(p, "no %s in the guest (no SSH server?); nothing to "
                      "change for --no-root-ssh", cfg);
            return 0;
        }
    }
    /* Include of the drop-in directory, and whether PermitRootLogin (or
     * Match) comes first */
    bool include = text == NULL;
    for (size_t i = 0; text && i < len;) {
        const char *e = memchr(text + i, '\n', len - i);
        size_t ll = e ? (size_t)(e - (text + i)) : len - i;
        char kw[32];
        const char *args;
        if (sshd_kw(text + i, ll, kw, sizeof(kw), &args)) {
            if (!strcmp(kw, "match") || !strcmp(kw, "permitrootlogin"))
                break;
            if (!strcmp(kw, "include") &&
                memmem(args, (size_t)(text + i + ll - args),
                       "sshd_config.d/", 14)) {
                include = true;
                break;
            }
        }
        i += ll + (e ? 1 : 0);
    }
    int r = 0;
    if (!include) {
        r = sshd_put(p, cfg, text, len, true, errp);
        free(text);
        return r;
    }
    /* drop-ins read before ours may set it: theirs would win */
    free(text);
    if (gview_lstat(p->v, dropdir) == GT_NONE &&
        gview_mkdir(p->v, dropdir, 0755, -1, -1, GV_NOFOLLOW, errp) < 0)
        return -1;
    struct prep_dir d;
    if (prep_dir_read(p, dropdir, 10000, &d, errp) < 0)
        return -1;
    for (size_t i = 0; i < d.n && r == 0; i++) {
        const char *n = d.e[i].name;
        char path[512];
        if (strcmp(n, "50-vmferry.conf") >= 0)
            break;
        size_t l = strlen(n);
        if (l < 6 || strcmp(n + l - 5, ".conf") || d.e[i].type != GT_FILE)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dropdir, n);
        size_t dl;
        char *dt = prep_read(p, path, CONF_MAX, &dl, errp);
        if (!dt) {
            r = -1;
            break;
        }
        r = sshd_put(p, path, dt, dl, false, errp);
        free(dt);
    }
    prep_dir_free(&d);
    if (r < 0)
        return -1;
    static const char conf[] =
        "# written by vmferry prepare --no-root-ssh\nPermitRootLogin no\n";
    if (gview_write(p->v, drop, conf, sizeof(conf) - 1, 0644, 0, 0,
                    GV_NOFOLLOW, errp) < 0)
        return -1;
    prep_log(p, drop, "--no-root-ssh", "Writing %s (PermitRootLogin no)",
             drop);
    return 0;
}
