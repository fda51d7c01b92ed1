/*
 * util.c: small helpers of the guest modules: the gdev read path, shell
 * style KEY=VALUE lookup, module-name normalisation, JSON shorthands.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

int gdev_pread(struct gdev *d, void *buf, uint64_t off, size_t len,
               vf_error **errp)
{
    if (off > d->size || len > d->size - off) {
        error_setg(errp, "%s: read of %zu bytes at 0x%llx beyond its end "
                   "(%llu bytes)", d->name, len, (unsigned long long)off,
                   (unsigned long long)d->size);
        return -1;
    }
    if (d->lv)
        return lv_map_read(d->lv, buf, off, len, errp);
    return blk_pread(d->blk, buf, d->base + off, len, errp);
}

int gdev_pwrite(struct gdev *d, const void *buf, uint64_t off, size_t len,
                vf_error **errp)
{
    if (off > d->size || len > d->size - off) {
        error_setg(errp, "%s: write of %zu bytes at 0x%llx beyond its end "
                   "(%llu bytes)", d->name, len, (unsigned long long)off,
                   (unsigned long long)d->size);
        return -1;
    }
    if (d->no_write) {
        error_setg(errp, "%s: cannot write: %s", d->name, d->no_write);
        return -1;
    }
    if (d->lv)
        return lv_map_write(d->lv, buf, off, len, errp);
    return blk_pwrite(d->blk, buf, d->base + off, len, errp);
}

char *str_trim(char *s)
{
    char *e;
    while (*s && isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

char *kv_get(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        if (!strncmp(q, "export ", 7))
            q += 7;
        if ((size_t)(p + n - q) > klen && !strncmp(q, key, klen) &&
            q[klen] == '=') {
            q += klen + 1;
            size_t vlen = (size_t)(p + n - q);
            char *v = strndup(q, vlen);
            if (!v)
                return NULL;
            char *t = str_trim(v);
            size_t tl = strlen(t);
            if (tl >= 2 && (t[0] == '"' || t[0] == '\'') && t[tl - 1] == t[0]) {
                t[tl - 1] = 0;
                t++;
            }
            char *r = strdup(t);
            free(v);
            return r;
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

bool modname_from_file(const char *file, char *out, size_t len)
{
    static const char *const exts[] = { ".ko", ".ko.xz", ".ko.zst",
                                        ".ko.gz", NULL };
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t bl = strlen(base);
    for (int i = 0; exts[i]; i++) {
        size_t el = strlen(exts[i]);
        if (bl > el && !strcmp(base + bl - el, exts[i])) {
            size_t n = bl - el;
            if (n >= len)
                return false;
            for (size_t k = 0; k < n; k++)
                out[k] = base[k] == '-' ? '_' : base[k];
            out[n] = 0;
            return true;
        }
    }
    return false;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0. */
static int utf8_seq(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3
            : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

struct json_object *jstr(const char *v)
{
    if (!v)
        return NULL;
    const unsigned char *p = (const unsigned char *)v;
    size_t len = strlen(v);
    bool clean = true;
    for (size_t i = 0; i < len;) {
        int n = utf8_seq(p + i);
        if (!n) {
            clean = false;
            break;
        }
        i += (size_t)n;
    }
    if (clean)
        return json_object_new_string(v);
    /* Guest bytes that are not UTF-8 become '?': JSON must be UTF-8. */
    char *c = malloc(len + 1);
    if (!c)
        return json_object_new_string("");
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int n = utf8_seq(p + i);
        if (!n) {
            c[o++] = '?';
            i++;
        } else {
            memcpy(c + o, p + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        }
    }
    c[o] = 0;
    struct json_object *j = json_object_new_string(c);
    free(c);
    return j;
}

void jset_str(struct json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, jstr(v));
}

void jset_int(struct json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

void jset_bool(struct json_object *o, const char *k, bool v)
{
    json_object_object_add(o, k, json_object_new_boolean(v));
}

const char *jget_str(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !v)
        return NULL;
    return json_object_get_string(v);
}

void guid_to_str(const uint8_t *g, char *out)
{
    sprintf(out, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
            "%02X%02X%02X%02X%02X%02X",
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9],
            g[10], g[11], g[12], g[13], g[14], g[15]);
}
