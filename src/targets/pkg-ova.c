/*
 * pkg-ova.c: OVA packages (vmware, aws, cloudstack-vmware, virtualbox
 * --ova).  Being written: until then these targets say so.
 */
#include "targets/package.h"

int pkg_write_ova(struct pkg *p, const char *name, const char *flavour,
                  vf_error **errp)
{
    error_setg(errp, "OVA packages are not implemented yet");
    return -1;
}

int pkg_vmware(struct pkg *p, vf_error **errp)
{
    return pkg_write_ova(p, "x.ova", "vmware", errp);
}

int pkg_aws(struct pkg *p, vf_error **errp)
{
    return pkg_write_ova(p, "x.ova", "vmware", errp);
}
