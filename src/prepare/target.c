/*
 * target.c: what each --target is to a Linux guest (its disk bus, the
 * drivers it must find at boot, its hypervisor, its cloud-init
 * datasource), and so which conversion edits --target queues.  The
 * target names are those of the preflight rules (src/targets/).
 *
 * Disk names, per platform documentation:
 * - kvm, openstack, cloudstack-kvm, sce: virtio-blk, /dev/vdX (libvirt's
 *   and Nova's default bus, hw_disk_bus=virtio; CloudStack KVM gives
 *   virtio disks to guests whose OS type supports it).
 * - gce: virtio-scsi, /dev/sdX (persistent disks are SCSI LUNs; third
 *   generation machines use NVMe, hence UUIDs first: Google's import
 *   guide asks for UUID= in /etc/fstab).
 * - aws: NVMe on Nitro instances (/dev/nvmeXn1), xen-blkfront (/dev/xvdX)
 *   on Xen ones; which one depends on the instance type chosen later, so
 *   UUID= (AWS's EBS/NVMe guide recommends it) and both driver sets.
 * - azure: Hyper-V storvsc, /dev/sdX, but sdb is the resource disk and
 *   data disks follow it, so UUID= first (Azure's Linux guide), sdX for
 *   what has none.
 * - cloudstack-hyperv: storvsc, /dev/sdX.  cloudstack-xen: Xen PV,
 *   /dev/xvdX.  vmware, cloudstack-vmware: PVSCSI or LSI Logic, /dev/sdX
 *   ("sata" names).
 * Drivers follow the preflight rules and virt-v2v's list (virtio_pci,
 * virtio_blk, virtio_scsi, virtio_net; Azure's hv_vmbus, hv_storvsc,
 * hv_netvsc).
 */
#include <stdio.h>
#include <string.h>

#include "prepare/prepare.h"

static const struct prep_platform platforms[] = {
    { .target = "kvm", .bus = "virtio-blk", .hypervisor = "kvm",
      .drivers = "virtio_pci,virtio_blk,virtio_scsi,virtio_net",
      .net_driver = "virtio_net", .disk_driver = "virtio_blk",
      .datasources = "NoCloud,None" },
    { .target = "openstack", .bus = "virtio-blk", .hypervisor = "kvm",
      .drivers = "virtio_pci,virtio_blk,virtio_scsi,virtio_net",
      .net_driver = "virtio_net", .disk_driver = "virtio_blk",
      .datasources = "ConfigDrive,OpenStack" },
    { .target = "cloudstack-kvm", .bus = "virtio-blk", .hypervisor = "kvm",
      .drivers = "virtio_pci,virtio_blk,virtio_scsi,virtio_net",
      .net_driver = "virtio_net", .disk_driver = "virtio_blk",
      .datasources = "CloudStack" },
    { .target = "cloudstack-xen", .bus = "xen", .hypervisor = "xen",
      .drivers = "xen_blkfront,xen_netfront",
      .net_driver = "xen_netfront", .disk_driver = "xen_blkfront",
      .datasources = "CloudStack" },
    { .target = "cloudstack-vmware", .bus = "sata", .hypervisor = "vmware",
      .drivers = "vmw_pvscsi,vmxnet3",
      .net_driver = "vmxnet3", .disk_driver = "vmw_pvscsi",
      .datasources = "CloudStack" },
    { .target = "cloudstack-hyperv", .bus = "hyperv", .hypervisor = "hyperv",
      .drivers = "hv_vmbus,hv_storvsc,hv_netvsc",
      .net_driver = "hv_netvsc", .disk_driver = "hv_storvsc",
      .datasources = "CloudStack" },
    { .target = "aws", .uuids = true, .hypervisor = "aws",
      .drivers = "nvme,ena,xen_blkfront,xen_netfront",
      .net_driver = "ena", .disk_driver = "nvme",
      .datasources = "Ec2" },
    { .target = "azure", .uuids = true, .bus = "hyperv",
      .hypervisor = "hyperv",
      .drivers = "hv_vmbus,hv_storvsc,hv_netvsc",
      .net_driver = "hv_netvsc", .disk_driver = "hv_storvsc",
      .datasources = "Azure" },
    { .target = "gce", .uuids = true, .bus = "virtio-scsi",
      .hypervisor = "kvm",
      .drivers = "virtio_pci,virtio_scsi,virtio_net",
      .net_driver = "virtio_net", .disk_driver = "virtio_scsi",
      .datasources = "GCE" },
    /* VMware guests configure through the VMware tools (kept); the
     * cloud-init datasource is left as it is */
    { .target = "vmware", .bus = "sata", .hypervisor = "vmware",
      .drivers = "vmw_pvscsi,vmxnet3",
      .net_driver = "vmxnet3", .disk_driver = "vmw_pvscsi" },
    /* SmartCloud Enterprise ran KVM with virtio; its activation engine
     * predates cloud-init datasources */
    { .target = "sce", .bus = "virtio-blk", .hypervisor = "kvm",
      .drivers = "virtio_pci,virtio_blk,virtio_net",
      .net_driver = "virtio_net", .disk_driver = "virtio_blk" },
};

const struct prep_platform *prep_platform(const char *target)
{
    if (!target)
        target = "kvm";
    for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
        if (!strcmp(platforms[i].target, target))
            return &platforms[i];
    return NULL;
}

static int queue(struct prep_queue *q, const char *edit, const char *arg,
                 vf_error **errp)
{
    const struct prep_edit *e = prep_find_edit(edit);
    if (!e) {
        error_setg(errp, "internal: no edit %s", edit);
        return -1;
    }
    return prep_queue_add(q, e, arg, errp);
}

int prep_target_edits(struct prep_queue *q, const char *target,
                      vf_error **errp)
{
    const struct prep_platform *pf = prep_platform(target);
    if (!pf) {
        char list[512] = "";
        for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                     i ? ", " : "", platforms[i].target);
        error_setg(errp, "unknown target '%s' (known: %s)", target, list);
        return -1;
    }
    /* UUIDs first: what has none is renamed for the bus after */
    if ((pf->uuids && queue(q, "fstab-uuids", NULL, errp) < 0) ||
        (pf->bus && queue(q, "remap-devices", pf->bus, errp) < 0) ||
        queue(q, "add-drivers", pf->drivers, errp) < 0 ||
        queue(q, "remove-tools", NULL, errp) < 0 ||
        queue(q, "fix-leftovers", NULL, errp) < 0 ||
        (pf->datasources &&
         queue(q, "cloud-init-datasource", pf->datasources, errp) < 0))
        return -1;
    return 0;
}
