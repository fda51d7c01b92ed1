/*
 * pkg-libvirt.c: the local / libvirt package.
 */
#include <stdio.h>
#include <stdlib.h>

#include "targets/package.h"

int pkg_libvirt(struct pkg *p, vf_error **errp)
{
    size_t i;
    for (i = 0; i < p->ndisks; i++) {
        char *base = pkg_disk_base(p, i), *name = NULL;
        const char *fmt = p->ofmt ? p->ofmt : "qcow2";
        if (!base || asprintf(&name, "%s.%s", base, fmt) < 0) {
            free(base);
            error_setg(errp, "out of memory");
            return -1;
        }
        free(base);
        int r = pkg_write_disk(p, i, name, fmt, NULL, errp);
        free(name);
        if (r < 0)
            return -1;
    }
    return 0;
}
