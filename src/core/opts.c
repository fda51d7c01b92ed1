/*
 * opts.c: "-o key=value,..." lists (see opts.h).
 */
#include "core/opts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct opt {
    char *key, *value;
    bool used;
};

struct opts {
    struct opt *v;
    size_t n;
};

/* A list longer than this is not a typo but an attack on the parser. */
#define OPTS_MAX 256

int opts_set(struct opts *o, const char *key, const char *value,
             vf_error **errp)
{
    for (size_t i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].key, key)) {
            char *nv = strdup(value);
            if (!nv)
                goto oom;
            free(o->v[i].value);
            o->v[i].value = nv;
            return 0;
        }
    }
    if (o->n >= OPTS_MAX) {
        error_setg(errp, "too many options (more than %d)", OPTS_MAX);
        return -1;
    }
    struct opt *nv = realloc(o->v, (o->n + 1) * sizeof(*nv));
    if (!nv)
        goto oom;
    o->v = nv;
    o->v[o->n].key = strdup(key);
    o->v[o->n].value = strdup(value);
    o->v[o->n].used = false;
    if (!o->v[o->n].key || !o->v[o->n].value) {
        free(o->v[o->n].key);
        free(o->v[o->n].value);
        goto oom;
    }
    o->n++;
    return 0;
oom:
    error_setg(errp, "out of memory");
    return -1;
}

int opts_add(struct opts *o, const char *s, vf_error **errp)
{
    if (!s)
        return 0;
    size_t len = strlen(s);
    char *buf = malloc(len + 1);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    const char *p = s;
    while (*p) {
        /* one item: up to an unescaped comma; ",," is a literal comma */
        size_t bl = 0;
        while (*p) {
            if (*p == ',') {
                if (p[1] == ',') {
                    buf[bl++] = ',';
                    p += 2;
                    continue;
                }
                p++;
                break;
            }
            buf[bl++] = *p++;
        }
        buf[bl] = 0;
        if (!bl)
            continue;
        char *eq = strchr(buf, '=');
        if (!eq || eq == buf) {
            error_setg(errp, "invalid option '%s' (expected key=value)", buf);
            free(buf);
            return -1;
        }
        *eq = 0;
        if (opts_set(o, buf, eq + 1, errp) < 0) {
            free(buf);
            return -1;
        }
    }
    free(buf);
    return 0;
}

struct opts *opts_parse(const char *s, vf_error **errp)
{
    struct opts *o = calloc(1, sizeof(*o));
    if (!o) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    if (opts_add(o, s, errp) < 0) {
        opts_free(o);
        return NULL;
    }
    return o;
}

void opts_free(struct opts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].key);
        free(o->v[i].value);
    }
    free(o->v);
    free(o);
}

const char *opts_get(struct opts *o, const char *key)
{
    if (!o)
        return NULL;
    for (size_t i = 0; i < o->n; i++) {
        if (!strcmp(o->v[i].key, key)) {
            o->v[i].used = true;
            return o->v[i].value;
        }
    }
    return NULL;
}

int parse_size(const char *s, uint64_t *out, vf_error **errp)
{
    if (!s || !*s || *s == '-') {
        error_setg(errp, "invalid size '%s'", s ? s : "");
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) {
        error_setg(errp, "invalid size '%s'", s);
        return -1;
    }
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'b': case 'B': shift = 0; break;
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        case 'p': case 'P': shift = 50; break;
        case 'e': case 'E': shift = 60; break;
        default:
            error_setg(errp, "invalid size suffix in '%s'", s);
            return -1;
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B' && shift)
            end++;
        if (*end) {
            error_setg(errp, "invalid size '%s'", s);
            return -1;
        }
    }
    if (shift && v > (UINT64_MAX >> shift)) {
        error_setg(errp, "size '%s' too large", s);
        return -1;
    }
    *out = (uint64_t)v << shift;
    return 0;
}

int opts_get_size(struct opts *o, const char *key, uint64_t *out,
                  bool *present, vf_error **errp)
{
    const char *v = opts_get(o, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    if (parse_size(v, out, errp) < 0) {
        error_prepend(errp, "option %s: ", key);
        return -1;
    }
    return 0;
}

int opts_get_bool(struct opts *o, const char *key, bool *out, vf_error **errp)
{
    const char *v = opts_get(o, key);
    if (!v)
        return 0;
    if (!strcasecmp(v, "on") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "yes") || !strcmp(v, "1")) {
        *out = true;
    } else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") ||
               !strcasecmp(v, "no") || !strcmp(v, "0")) {
        *out = false;
    } else {
        error_setg(errp, "option %s: invalid boolean '%s'", key, v);
        return -1;
    }
    return 0;
}

int opts_check_unused(struct opts *o, const char *fmt, vf_error **errp)
{
    if (!o)
        return 0;
    for (size_t i = 0; i < o->n; i++) {
        if (!o->v[i].used) {
            error_setg(errp, "invalid option '%s' for format %s", o->v[i].key,
                       fmt);
            return -1;
        }
    }
    return 0;
}
