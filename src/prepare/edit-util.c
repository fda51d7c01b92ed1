/*
 * edit-util.c: small helpers the edits share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

bool prep_same_content(struct prep *p, const char *path, const void *data,
                       size_t len)
{
    if (gview_lstat(p->v, path) != GT_FILE)
        return false;
    size_t got = 0;
    vf_error *err = NULL;
    char *cur = prep_read(p, path, len + 1, &got, &err);
    bool same = cur && got == len && !memcmp(cur, data, len);
    free(cur);
    error_free(err);
    return same;
}

char *prep_read(struct prep *p, const char *path, size_t max, size_t *len,
                vf_error **errp)
{
    char *out = NULL;
    if (gview_stat(p->v, path, NULL) != GT_FILE)
        return NULL;
    if (gview_read(p->v, path, max, &out, len, errp) < 0)
        return NULL;
    return out;
}

bool prep_exists(struct prep *p, const char *path)
{
    return gview_stat(p->v, path, NULL) != GT_NONE;
}

struct dirnames {
    const char *prefix, *suffix;
    char **v;
    size_t n;
    bool oom;
};

static int dirnames_cb(const char *name, enum gtype t, void *opaque)
{
    struct dirnames *d = opaque;
    size_t l = strlen(name), sl = d->suffix ? strlen(d->suffix) : 0;
    if (t != GT_FILE ||
        (d->prefix && strncmp(name, d->prefix, strlen(d->prefix))) ||
        (d->suffix && (l <= sl || strcmp(name + l - sl, d->suffix))))
        return 0;
    char **nv = realloc(d->v, (d->n + 1) * sizeof(*nv));
    if (!nv) {
        d->oom = true;
        return 1;
    }
    d->v = nv;
    if (!(d->v[d->n] = strdup(name))) {
        d->oom = true;
        return 1;
    }
    d->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int prep_split(const char *edit, const char *arg, char **a, char **b,
               vf_error **errp)
{
    const char *c = strchr(arg, ':');
    if (!c || c == arg || !c[1]) {
        error_setg(errp, "'%s': expected A:B for %s", arg, edit);
        return -1;
    }
    *a = strndup(arg, (size_t)(c - arg));
    *b = strdup(c + 1);
    if (!*a || !*b) {
        free(*a);
        free(*b);
        error_setg(errp, "out of memory");
        return -1;
    }
    return 0;
}

int64_t prep_os_int(struct prep *p, const char *key, int64_t def)
{
    struct json_object *v;
    if (!p->os || !json_object_object_get_ex(p->os, key, &v) || !v ||
        !json_object_is_type(v, json_type_int))
        return def;
    return json_object_get_int64(v);
}

char *prep_read_host(const char *path, size_t max, size_t *len,
                     vf_error **errp)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    if (!f || fstat(fileno(f), &st) < 0) {
        error_setg_errno(errp, errno, "%s: cannot open", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        error_setg(errp, "%s: not a regular file of at most %zu bytes", path,
                   max);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        error_setg(errp, "%s: out of memory", path);
        goto fail;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f) || n != (size_t)st.st_size) {
        error_setg(errp, "%s: cannot read", path);
        goto fail;
    }
    buf[n] = 0;
    fclose(f);
    if (len)
        *len = n;
    return buf;
fail:
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}

bool prep_has_systemd(struct prep *p)
{
    return gview_stat(p->v, "/etc/systemd/system", NULL) == GT_DIR;
}

bool prep_real_dir(struct prep *p, const char *path)
{
    char buf[4096];
    size_t l = strlen(path);
    if (path[0] != '/' || l >= sizeof(buf))
        return false;
    memcpy(buf, path, l + 1);
    /* each prefix ("/a", "/a/b", ...) then the whole path */
    for (char *s = buf + 1;; s++) {
        char *e = strchr(s, '/');
        if (e)
            *e = 0;
        if (*s && gview_lstat(p->v, buf) != GT_DIR)
            return false;
        if (!e)
            return true;
        *e = '/';
        s = e;
    }
}

static int dir_collect(const char *name, enum gtype t, void *opaque)
{
    struct prep_dir *d = opaque;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct prep_dirent *ne = realloc(d->e, nc * sizeof(*ne));
        if (!ne) {
            d->oom = true;
            return 1;
        }
        d->e = ne;
        d->cap = nc;
    }
    if (!(d->e[d->n].name = strdup(name))) {
        d->oom = true;
        return 1;
    }
    d->e[d->n++].type = (int)t;
    return 0;
}

static int dirent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct prep_dirent *)a)->name,
                  ((const struct prep_dirent *)b)->name);
}

int prep_dir_read(struct prep *p, const char *path, size_t max,
                  struct prep_dir *d, vf_error **errp)
{
    memset(d, 0, sizeof(*d));
    if (gview_list(p->v, path, max, dir_collect, d, errp) < 0) {
        prep_dir_free(d);
        return -1;
    }
    if (d->oom) {
        prep_dir_free(d);
        error_setg(errp, "%s: out of memory listing it", path);
        return -1;
    }
    if (d->n)
        qsort(d->e, d->n, sizeof(*d->e), dirent_cmp);
    return 0;
}

void prep_dir_free(struct prep_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].name);
    free(d->e);
    memset(d, 0, sizeof(*d));
}

int prep_edit_lines(struct prep *p, const char *path, size_t max,
                    prep_line_fn fn, void *opaque, vf_error **errp)
{
    uint64_t size = 0;
    if (gview_lstat(p->v, path) != GT_FILE)
        return 0;
    gview_stat(p->v, path, &size);
    if (size > max) {
        prep_warn(p, "%s: %llu bytes, more than such a file ever holds "
                  "(limit %zu); left alone", path, (unsigned long long)size,
                  max);
        return 0;
    }
    size_t len = 0;
    char *text = prep_read(p, path, max, &len, errp);
    if (!text)
        return -1;
    if (memchr(text, 0, len)) {
        prep_warn(p, "%s: holds NUL bytes, not a text file; left alone",
                  path);
        free(text);
        return 0;
    }
    char *out = NULL, *line = NULL, *repl = NULL;
    size_t olen = 0, ocap = 0;
    int changes = 0, lineno = 0, r = -1;
    line = malloc(PREP_LINE_MAX + 1);
    repl = malloc(PREP_LINE_MAX + 1);
    if (!line || !repl)
        goto oom;
    for (const char *l = text; *l;) {
        size_t n = strcspn(l, "\n");
        bool nl = l[n] == '\n';
        lineno++;
        int what = PREP_LINE_KEEP;
        if (n <= PREP_LINE_MAX) {
            memcpy(line, l, n);
            line[n] = 0;
            repl[0] = 0;
            what = fn(p, opaque, path, lineno, line, repl, PREP_LINE_MAX + 1);
        }
        const char *src = what == PREP_LINE_SET ? repl : l;
        size_t sl = what == PREP_LINE_SET ? strlen(repl) : n;
        if (what == PREP_LINE_DROP) {
            sl = 0;
            nl = false;
        }
        if (what != PREP_LINE_KEEP)
            changes++;
        if (olen + sl + 2 > ocap) {
            size_t nc = ocap ? ocap : 4096;
            while (nc < olen + sl + 2)
                nc *= 2;
            char *no = realloc(out, nc);
            if (!no)
                goto oom;
            out = no;
            ocap = nc;
        }
        memcpy(out + olen, src, sl);
        olen += sl;
        if (nl)
            out[olen++] = '\n';
        l += n + (l[n] == '\n');
    }
    r = changes;
    if (changes &&
        gview_write(p->v, path, out ? out : "", olen, -1, -1, -1, 0,
                    errp) < 0)
        r = -1;
    goto out;
oom:
    error_setg(errp, "out of memory");
out:
    free(text);
    free(out);
    free(line);
    free(repl);
    return r;
}

int prep_list_dir(struct prep *p, const char *dir, const char *prefix,
                  const char *suffix, char ***names, size_t *n,
                  vf_error **errp)
{
    struct dirnames d = { .prefix = prefix, .suffix = suffix };
    *names = NULL;
    *n = 0;
    if (gview_stat(p->v, dir, NULL) != GT_DIR)
        return 0;
    vf_error *err = NULL;
    if (gview_list(p->v, dir, PREP_DIR_MAX, dirnames_cb, &d, &err) < 0) {
        prep_warn(p, "%s", error_msg(err));
        error_free(err);
    }
    if (d.oom) {
        for (size_t i = 0; i < d.n; i++)
            free(d.v[i]);
        free(d.v);
        error_setg(errp, "out of memory");
        return -1;
    }
    if (d.n)
        qsort(d.v, d.n, sizeof(*d.v), cmp_names);
    *names = d.v;
    *n = d.n;
    return 0;
}

void prep_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
