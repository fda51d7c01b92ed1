/*
 * selinux.c: SELinux labels on what prepare writes.  In a guest that
 * uses SELinux (/etc/selinux/config present, SELINUX= not "disabled"),
 * every file, directory and symbolic link the edits made or rewrote and
 * that carries no security.selinux attribute gets the context the
 * guest's own policy gives its path, as restorecon would: the policy's
 * file_contexts (with .local, .homedirs, .subs and .subs_dist beside
 * it) is copied to a private directory on the host and matched by
 * libselinux's file backend.  A file the edits rewrote in place keeps
 * the label it had.  When the contexts cannot be used, /.autorelabel
 * makes the guest relabel its whole filesystem at the next boot (what
 * --selinux-relabel asks for anyway).
 *
 * References: selabel_file(5) and file_contexts(5) (the files, the
 * order of precedence, <<none>>), libselinux's label_file.c (3.4: the
 * text files are read whole at selabel_open; contexts are checked
 * against the loaded policy only with SELABEL_OPT_VALIDATE, which is
 * off here since the host's policy, if any, is not the guest's),
 * libguestfs' SELinux_relabel.ml (setfiles in the appliance, else
 * /.autorelabel).  The kernel and setfiles store a context with its
 * terminating NUL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <selinux/label.h>
#include <selinux/selinux.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* /etc/selinux/config: a few lines. */
#define CONF_MAX (1u << 20)
/* One file_contexts file: RHEL 9's targeted policy is about 400 KiB,
 * homedirs a few KiB; 16 MiB is forty times that. */
#define FC_MAX (16u << 20)
/* Lines over all the files: RHEL's are under 10000.  Each line is a
 * regex libselinux may try on every lookup. */
#define FC_LINES_MAX 200000
/* Symbolic links followed resolving one path (the kernel's limit). */
#define LINKS_MAX 40
#define PATH_MAX_LEN 4096
/* A context: "user:role:type:range"; the kernel takes at most a page,
 * real ones are under a hundred bytes. */
#define CTX_MAX 1024

#define ATTR "security.selinux"
#define FC_DIR "/etc/selinux/%s/contexts/files"

/* The files read, base first; libselinux finds the others by these
 * suffixes next to the base (SELABEL_OPT_BASEONLY off). */
static const char *const fc_suffix[] = {
    "", ".local", ".homedirs", ".subs", ".subs_dist",
};
#define FC_N (sizeof(fc_suffix) / sizeof(fc_suffix[0]))

int prep_selinux_policy(struct prep *p, char **type, vf_error **errp)
{
    *type = NULL;
    size_t len;
    vf_error *err = NULL;
    char *cfg = prep_read(p, "/etc/selinux/config", CONF_MAX, &len, &err);
    if (!cfg) {
        if (!err)
            return 0;
        error_propagate(errp, err);
        return -1;
    }
    char *mode = kv_get(cfg, "SELINUX");
    bool off = mode && !strcmp(mode, "disabled");
    free(mode);
    if (!off) {
        char *t = kv_get(cfg, "SELINUXTYPE");
        *type = t && *t ? t : strdup("targeted");
        if (t && !*t)
            free(t);
    }
    free(cfg);
    if (off)
        return 0;
    if (!*type) {
        error_setg(errp, "out of memory");
        return -1;
    }
    return 1;
}

/* A policy type is a directory name under /etc/selinux. */
static bool policy_name_ok(const char *t)
{
    size_t l = strlen(t);
    if (l == 0 || l > 64 || t[0] == '.')
        return false;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.-") == l;
}

/* "user:role:type" with an optional MLS/MCS range, printable, no
 * spaces: what the guest's file_contexts gives is hostile input, and
 * libselinux checks nothing without a policy to check against. */
static bool context_ok(const char *c)
{
    size_t l = strlen(c);
    if (l == 0 || l >= CTX_MAX)
        return false;
    int fields = 1;
    for (const char *s = c; *s; s++) {
        if (*s <= ' ' || *s > '~')
            return false;
        if (*s == ':') {
            if (s == c || s[-1] == ':')
                return false;
            fields++;
        }
    }
    return fields >= 3 && c[l - 1] != ':';
}

/* ---- libselinux's messages ---- */

/* libselinux logs through one process-wide callback, with no pointer of
 * ours: the first error or warning of an open goes here, for the
 * warning that says why the contexts could not be used. */
static char sel_msg[512];

static int __attribute__((format(printf, 2, 3)))
sel_log(int type, const char *fmt, ...)
{
    if ((type != SELINUX_ERROR && type != SELINUX_WARNING) || sel_msg[0])
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sel_msg, sizeof(sel_msg), fmt, ap);
    va_end(ap);
    size_t l = strlen(sel_msg);
    while (l && (sel_msg[l - 1] == '\n' || sel_msg[l - 1] == ' '))
        sel_msg[--l] = 0;
    return 0;
}

/* ---- the guest's file contexts, on the host ---- */

struct fc_copy {
    char dir[PATH_MAX_LEN];        /* the private directory */
    bool made[FC_N];               /* which files were written there */
};

static void fc_copy_remove(struct fc_copy *c)
{
    if (!c->dir[0])
        return;
    for (size_t i = 0; i < FC_N; i++) {
        if (!c->made[i])
            continue;
        char f[PATH_MAX_LEN + 64];
        snprintf(f, sizeof(f), "%s/file_contexts%s", c->dir, fc_suffix[i]);
        unlink(f);
        c->made[i] = false;
    }
    rmdir(c->dir);
    c->dir[0] = 0;
}

static int write_all(const char *path, const char *data, size_t len,
                     vf_error **errp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    if (fd < 0) {
        error_setg_errno(errp, errno, "%s: cannot create", path);
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            error_setg_errno(errp, n < 0 ? errno : EIO, "%s: cannot write",
                             path);
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    if (close(fd) < 0) {
        error_setg_errno(errp, errno, "%s: cannot write", path);
        return -1;
    }
    return 0;
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    for (const char *e = s; (e = memchr(e, '\n', len - (size_t)(e - s)));
         e++)
        n++;
    return n + 1;
}

/* Copy the guest's file_contexts files of policy type into a new
 * private directory (c->dir).  The base file must be there; the others
 * are copied when present.  0 / -1 (the error says why, in guest
 * terms). */
static int fc_copy_make(struct prep *p, const char *type, struct fc_copy *c,
                        vf_error **errp)
{
    memset(c, 0, sizeof(*c));
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if ((size_t)snprintf(c->dir, sizeof(c->dir), "%s/vmferry-selinux.XXXXXX",
                         tmp) >= sizeof(c->dir)) {
        c->dir[0] = 0;
        error_setg(errp, "TMPDIR too long");
        return -1;
    }
    if (!mkdtemp(c->dir)) {
        error_setg_errno(errp, errno, "%s: cannot make a directory", c->dir);
        c->dir[0] = 0;
        return -1;
    }
    size_t lines = 0;
    for (size_t i = 0; i < FC_N; i++) {
        char gpath[256], hpath[PATH_MAX_LEN + 64];
        snprintf(gpath, sizeof(gpath), FC_DIR "/file_contexts%s", type,
                 fc_suffix[i]);
        size_t len = 0;
        vf_error *err = NULL;
        char *text = prep_read(p, gpath, FC_MAX, &len, &err);
        if (!text) {
            if (err || i == 0) {
                if (err)
                    error_propagate(errp, err);
                else
                    error_setg(errp, "%s: not found", gpath);
                return -1;
            }
            continue;
        }
        lines += count_lines(text, len);
        if (lines > FC_LINES_MAX) {
            free(text);
            error_setg(errp, "%s: more than %d lines of file contexts", gpath,
                       FC_LINES_MAX);
            return -1;
        }
        snprintf(hpath, sizeof(hpath), "%s/file_contexts%s", c->dir,
                 fc_suffix[i]);
        int r = write_all(hpath, text, len, errp);
        free(text);
        if (r < 0)
            return -1;
        c->made[i] = true;
    }
    return 0;
}

/* msg with the first mention of host directory hdir made gdir. */
static void msg_rename(char *out, size_t outlen, const char *msg,
                       const char *hdir, const char *gdir)
{
    const char *at = strstr(msg, hdir);
    if (!at)
        snprintf(out, outlen, "%s", msg);
    else
        snprintf(out, outlen, "%.*s%s%s", (int)(at - msg), msg, gdir,
                 at + strlen(hdir));
}

/* Open the guest's contexts with libselinux (its log callback set to
 * sel_log).  The copies are read whole by selabel_open, so they are
 * removed before this returns. */
static struct selabel_handle *fc_open(struct prep *p, const char *type,
                                      vf_error **errp)
{
    struct fc_copy c;
    if (fc_copy_make(p, type, &c, errp) < 0) {
        fc_copy_remove(&c);
        return NULL;
    }
    char base[PATH_MAX_LEN + 64], hdir[PATH_MAX_LEN];
    snprintf(base, sizeof(base), "%s/file_contexts", c.dir);
    snprintf(hdir, sizeof(hdir), "%s", c.dir);
    const struct selinux_opt opts[] = {
        { SELABEL_OPT_PATH, base },
        { SELABEL_OPT_BASEONLY, NULL },   /* .local and .homedirs too */
        { SELABEL_OPT_VALIDATE, NULL },   /* no host policy to ask */
    };
    sel_msg[0] = 0;
    errno = 0;
    struct selabel_handle *h =
        selabel_open(SELABEL_CTX_FILE, opts, sizeof(opts) / sizeof(opts[0]));
    int en = errno;
    fc_copy_remove(&c);
    if (!h) {
        /* libselinux names our copy: name the guest's directory */
        char gdir[256], msg[sizeof(sel_msg) + 256];
        snprintf(gdir, sizeof(gdir), FC_DIR, type);
        msg_rename(msg, sizeof(msg),
                   sel_msg[0] ? sel_msg : strerror(en ? en : EINVAL), hdir,
                   gdir);
        error_setg(errp, "%s", msg);
    }
    return h;
}

/* ---- labelling ---- */

/* path with the symbolic links among its directories resolved in the
 * guest (absolute targets from the guest root, as its kernel sees
 * them), its last component as it is: the name restorecon would match
 * (/etc/init.d/x is /etc/rc.d/init.d/x on RHEL).  malloc'd; NULL when a
 * link does not resolve within LINKS_MAX or the name grows past
 * PATH_MAX_LEN (the caller then matches path as given). */
static char *resolve_dirs(struct prep *p, const char *path)
{
    char done[PATH_MAX_LEN], todo[PATH_MAX_LEN], next[PATH_MAX_LEN];
    size_t dl = 0;
    int links = 0;
    done[0] = 0;
    if ((size_t)snprintf(todo, sizeof(todo), "%s", path) >= sizeof(todo))
        return NULL;
    const char *t = todo;
    for (;;) {
        while (*t == '/')
            t++;
        if (!*t)
            break;
        size_t cl = strcspn(t, "/");
        const char *rest = t + cl;
        bool last = rest[strspn(rest, "/")] == 0;
        if (cl == 1 && t[0] == '.') {
            t = rest;
            continue;
        }
        if (cl == 2 && t[0] == '.' && t[1] == '.') {
            while (dl > 0 && done[dl - 1] != '/')
                dl--;
            if (dl > 0)
                dl--;
            done[dl] = 0;
            t = rest;
            continue;
        }
        if (dl + 1 + cl >= sizeof(done))
            return NULL;
        size_t parent = dl;
        done[dl++] = '/';
        memcpy(done + dl, t, cl);
        dl += cl;
        done[dl] = 0;
        if (last || gview_lstat(p->v, done) != GT_LINK) {
            t = rest;
            continue;
        }
        char *target = gview_readlink(p->v, done);
        if (++links > LINKS_MAX || !target || !*target) {
            free(target);
            return NULL;
        }
        dl = target[0] == '/' ? 0 : parent;
        done[dl] = 0;
        int n = snprintf(next, sizeof(next), "%s%s", target, rest);
        free(target);
        if (n < 0 || (size_t)n >= sizeof(next))
            return NULL;
        memcpy(todo, next, (size_t)n + 1);
        t = todo;
    }
    return strdup(dl ? done : "/");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct label_stats {
    size_t labelled;           /* given a context */
    size_t kept;               /* already had one */
    size_t none;               /* the policy gives none (<<none>>, or
                                  no line matches) */
    const char *none_eg;       /* one of them (borrowed from the list) */
    size_t no_xattr;           /* on filesystems without ext_attr */
    const char *no_xattr_eg;
};

/* Label each written path that has no label.  -1 on an error of the
 * filesystem (errp); 0 otherwise, with *why set when the policy failed
 * on a path (what is left stays unlabelled). */
static int label_all(struct prep *p, struct selabel_handle *h,
                     struct label_stats *st, vf_error **why, vf_error **errp)
{
    struct gview *v = p->v;
    qsort(v->written, v->nwritten, sizeof(*v->written), cmp_str);
    for (size_t i = 0; i < v->nwritten; i++) {
        const char *path = v->written[i];
        if (i > 0 && !strcmp(path, v->written[i - 1]))
            continue;
        int mode;
        switch (gview_lstat(v, path)) {
        case GT_FILE: mode = S_IFREG; break;
        case GT_DIR: mode = S_IFDIR; break;
        case GT_LINK: mode = S_IFLNK; break;
        default: continue;     /* removed by a later edit */
        }
        if (!gview_has_xattrs(v, path)) {
            if (!st->no_xattr++)
                st->no_xattr_eg = path;
            continue;
        }
        char *cur = NULL;
        size_t curlen;
        int r = gview_getxattr(v, path, ATTR, &cur, &curlen, errp);
        free(cur);
        if (r < 0)
            return -1;
        if (r > 0) {
            st->kept++;
            continue;
        }
        char *name = resolve_dirs(p, path);
        char *ctx = NULL;
        errno = 0;
        if (selabel_lookup_raw(h, &ctx, name ? name : path, mode) < 0) {
            int en = errno;
            free(name);
            if (en == ENOENT) {
                if (!st->none++)
                    st->none_eg = path;
                continue;
            }
            /* a regex libselinux could not compile or run */
            error_setg(why, "%s: matching it failed%s%s", path,
                       sel_msg[0] ? ": " : en ? ": " : "",
                       sel_msg[0] ? sel_msg : en ? strerror(en) : "");
            return 0;
        }
        free(name);
        if (!context_ok(ctx)) {
            error_setg(why, "%s: the policy gives it '%.64s', not a "
                       "context", path, ctx);
            freecon(ctx);
            return 0;
        }
        r = gview_setxattr(v, path, ATTR, ctx, strlen(ctx) + 1, errp);
        freecon(ctx);
        if (r < 0)
            return -1;
        st->labelled++;
    }
    return 0;
}

/* The fallback: the guest relabels everything at its next boot. */
static int autorelabel(struct prep *p, vf_error **errp)
{
    if (gview_lstat(p->v, "/.autorelabel") == GT_FILE)
        return 0;
    if (gview_write(p->v, "/.autorelabel", "", 0, 0644, 0, 0, GV_NOFOLLOW,
                    errp) < 0)
        return -1;
    prep_log(p, "/.autorelabel", "files vmferry wrote could not be "
             "labelled from the guest's SELinux policy",
             "Creating /.autorelabel (the guest relabels its files at the "
             "next boot, then reboots)");
    return 0;
}

int prep_selinux_label(struct prep *p, vf_error **errp)
{
    struct gview *v = p->v;
    if (!v || (!v->nwritten && !v->written_lost))
        return 0;
    char *type;
    int r = prep_selinux_policy(p, &type, errp);
    if (r <= 0)
        return r;
    r = -1;
    /* libselinux's messages: captured, not printed */
    union selinux_callback old = selinux_get_callback(SELINUX_CB_LOG);
    union selinux_callback cb = { .func_log = sel_log };
    selinux_set_callback(SELINUX_CB_LOG, cb);
    vf_error *why = NULL;
    struct label_stats st = { 0 };
    struct selabel_handle *h = NULL;
    if (!policy_name_ok(type))
        error_setg(&why, "SELINUXTYPE=%s in /etc/selinux/config is not a "
                   "policy name", type);
    else
        h = fc_open(p, type, &why);
    if (h) {
        sel_msg[0] = 0;
        if (label_all(p, h, &st, &why, errp) < 0)
            goto out;
    }
    if (st.labelled)
        prep_log(p, NULL, "the guest uses SELinux: a file without a label "
                 "is unlabeled_t, which confined services (sshd reading "
                 "authorized_keys, systemd running a unit) are denied",
                 "Labelled %zu new file%s from the guest's SELinux policy "
                 "(%s)", st.labelled, st.labelled == 1 ? "" : "s", type);
    if (st.none)
        prep_warn(p, "the guest's SELinux policy gives no label to %s "
                  "(and %zu other file%s vmferry wrote): left unlabelled",
                  st.none_eg, st.none - 1, st.none == 2 ? "" : "s");
    if (st.no_xattr)
        prep_warn(p, "%s (and %zu other file%s vmferry wrote) cannot have a "
                  "SELinux label: its filesystem has no extended attributes "
                  "(no ext_attr feature)", st.no_xattr_eg, st.no_xattr - 1,
                  st.no_xattr == 2 ? "" : "s");
    if (!why && v->written_lost)
        error_setg(&why, "more than %u files written", GV_WRITTEN_MAX);
    if (why) {
        prep_warn(p, "cannot label what vmferry wrote from the guest's "
                  "SELinux policy (%s): %s", type, error_msg(why));
        if (autorelabel(p, errp) < 0)
            goto out;
    }
    r = 0;
out:
    if (h)
        selabel_close(h);
    selinux_set_callback(SELINUX_CB_LOG, old);
    error_free(why);
    free(type);
    return r;
}
