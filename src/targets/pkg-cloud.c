/*
 * pkg-cloud.c: packages that are disks plus a metadata document
 * (openstack, cloudstack-*, azure, hyperv, virtualbox, sce).
 */
#include "targets/package.h"

#define STUB(fn) \
    int fn(struct pkg *p, vf_error **errp) \
    { \
        error_setg(errp, "target %s is not implemented yet", p->target); \
        return -1; \
    }
STUB(pkg_openstack)
STUB(pkg_cloudstack)
STUB(pkg_azure)
STUB(pkg_hyperv)
STUB(pkg_virtualbox)
STUB(pkg_sce)
