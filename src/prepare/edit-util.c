/*
 * edit-util.c: small helpers the edits share.
 */
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

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
