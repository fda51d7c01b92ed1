/*
 * vmware.c: VMware vSphere / Workstation import: a streamOptimized VMDK
 * in an OVA (vmferry package --target vmware wraps it), and a driver for
 * the chosen SCSI controller (--controller: pvscsi needs vmw_pvscsi at
 * boot; LSI Logic, SATA and IDE drivers are in every distribution
 * kernel).
 */
#include "targets/preflight.h"

static const struct pf_rule vmware_rules[] = {
    { .id = "vmware-stream-vmdk", .severity = PF_ERROR,
      .check = pf_chk_format,
      .statement = "disks are streamOptimized VMDK (for the OVA)",
      .arg = "vmdk:streamOptimized",
      .fix = "vmferry convert -O vmdk -o subformat=streamOptimized IMAGE OUT.vmdk" },
    { .id = "vmware-controller-driver", .severity = PF_ERROR,
      .check = pf_chk_controller,
      .statement = "the guest has a driver for the virtual disk controller",
      .fix = "use --controller lsilogic, or vmferry prepare --target vmware "
             "IMAGE OUT (adds vmw_pvscsi to the initramfs)" },
};

const struct pf_target pf_target_vmware = {
    .name = "vmware", .desc = "VMware vSphere / Workstation (OVA)",
    .rules = vmware_rules,
    .nrules = sizeof(vmware_rules) / sizeof(vmware_rules[0]),
};
