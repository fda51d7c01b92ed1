/*
 * pkg-gce.c: the GCE package.  Being written: until then it says so.
 */
#include "targets/package.h"

int pkg_gce(struct pkg *p, vf_error **errp)
{
    error_setg(errp, "GCE packages are not implemented yet");
    return -1;
}
