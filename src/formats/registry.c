/*
 * registry.c: every format driver, in probe order (cheap, certain magic
 * checks first; raw last because it claims anything).
 */
#include "formats/format.h"

#include <string.h>

extern const struct fmt_driver fmt_qcow2;
extern const struct fmt_driver fmt_vmdk;
extern const struct fmt_driver fmt_vhdx;
extern const struct fmt_driver fmt_vpc;
extern const struct fmt_driver fmt_vdi;
extern const struct fmt_driver fmt_raw;

const struct fmt_driver *const fmt_registry[] = {
    &fmt_qcow2,
    &fmt_vmdk,
    &fmt_vhdx, &fmt_vpc, &fmt_vdi,
    &fmt_raw,
    NULL,
};

const struct fmt_driver *fmt_find(const char *name)
{
    for (size_t i = 0; fmt_registry[i]; i++) {
        const struct fmt_driver *d = fmt_registry[i];
        if (!strcmp(d->name, name))
            return d;
        for (const char *const *a = d->aliases; a && *a; a++)
            if (!strcmp(*a, name))
                return d;
    }
    return NULL;
}
