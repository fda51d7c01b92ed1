/*
 * openstack.c: OpenStack Glance/Nova rules (glance doc/source/user/
 * formats.rst; the 2024 image format inspector: CVE-2024-32498 for qcow2
 * data-file, CVE-2022-47951 for VMDK create types): no qcow2 external
 * data file, VMDK only streamOptimized or monolithicSparse, no backing
 * file, virtio drivers when the disk bus (hw_disk_bus) is virtio.
 */
#include "targets/preflight.h"

static const struct pf_rule openstack_rules[] = {
    { .id = "openstack-format", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "a disk_format Glance knows (raw, qcow2, vmdk, vhd, "
                   "vhdx, vdi)",
      .arg = "raw,qcow2,vmdk,vpc,vhdx,vdi",
      .fix = "vmferry convert -O qcow2 IMAGE OUT.qcow2" },
    { .id = "openstack-no-data-file", .severity = PF_ERROR,
      .check = pf_chk_no_data_file,
      .statement = "no qcow2 external data file",
      .fix = "vmferry convert -O qcow2 IMAGE OUT.qcow2" },
    { .id = "openstack-vmdk-type", .severity = PF_ERROR,
      .check = pf_chk_vmdk_types,
      .statement = "VMDK only streamOptimized or monolithicSparse",
      .arg = "streamOptimized,monolithicSparse",
      .fix = "vmferry convert -O vmdk -o subformat=streamOptimized IMAGE OUT.vmdk" },
    { .id = "openstack-no-backing", .severity = PF_ERROR,
      .check = pf_chk_no_backing,
      .statement = "no backing file",
      .fix = "vmferry convert -O qcow2 IMAGE OUT.qcow2 (flattens the chain)" },
    { .id = "openstack-virtio", .severity = PF_ERROR,
      .check = pf_chk_drivers_if_virtio,
      .statement = "with hw_disk_bus=virtio: virtio_blk and virtio_pci "
                   "usable at boot, virtio_net available",
      .arg = "virtio_blk,virtio_pci,net:virtio_net",
      .fix = "vmferry prepare --target openstack IMAGE OUT, or upload with "
             "hw_disk_bus=sata" },
};

const struct pf_target pf_target_openstack = {
    .name = "openstack", .desc = "OpenStack Glance / Nova (KVM)",
    .rules = openstack_rules,
    .nrules = sizeof(openstack_rules) / sizeof(openstack_rules[0]),
};
