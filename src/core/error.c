/*
 * error.c: the one error type (see error.h for the discipline).
 */
#include "core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vf_error {
    char *msg;
    int err;
};

static char *error_vformat(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

static void error_set_common(vf_error **errp, int err, char *msg)
{
    if (!errp) {
        free(msg);
        return;
    }
    if (*errp) {            /* set exactly once: keep the first */
        free(msg);
        return;
    }
    vf_error *e = calloc(1, sizeof(*e));
    if (!e) {
        free(msg);
        abort();
    }
    e->msg = msg ? msg : strdup("out of memory");
    e->err = err;
    *errp = e;
}

void error_setg(vf_error **errp, const char *fmt, ...)
{
    if (!errp)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = error_vformat(fmt, ap);
    va_end(ap);
    error_set_common(errp, 0, m);
}

void error_setg_errno(vf_error **errp, int err, const char *fmt, ...)
{
    if (!errp)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = error_vformat(fmt, ap);
    va_end(ap);
    char *full = NULL;
    if (m && asprintf(&full, "%s: %s", m, strerror(err)) < 0)
        full = NULL;
    free(m);
    error_set_common(errp, err, full);
}

void error_prepend(vf_error **errp, const char *fmt, ...)
{
    if (!errp || !*errp)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *pre = error_vformat(fmt, ap);
    va_end(ap);
    char *full = NULL;
    if (pre && asprintf(&full, "%s%s", pre, (*errp)->msg) >= 0) {
        free((*errp)->msg);
        (*errp)->msg = full;
    }
    free(pre);
}

void error_propagate(vf_error **dst, vf_error *src)
{
    if (!src)
        return;
    if (!dst || *dst) {
        error_free(src);
        return;
    }
    *dst = src;
}

const char *error_msg(const vf_error *e)
{
    return e ? e->msg : "";
}

int error_errno(const vf_error *e)
{
    return e ? e->err : 0;
}

void error_free(vf_error *e)
{
    if (!e)
        return;
    free(e->msg);
    free(e);
}
