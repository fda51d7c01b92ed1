/*
 * kvm.c: plain KVM / libvirt (the local target): any format QEMU reads;
 * virtio drivers, or a warning that the guest will run on SATA and e1000
 * (slower, but it boots).
 */
#include "targets/preflight.h"

static const struct pf_rule kvm_rules[] = {
    { .id = "kvm-format", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "a format QEMU reads (raw, qcow2, vmdk, vhd, vhdx, vdi)",
      .arg = "raw,qcow2,vmdk,vpc,vhdx,vdi",
      .fix = "vmferry convert -O qcow2 IMAGE OUT.qcow2" },
    { .id = "kvm-virtio", .severity = PF_WARNING, .check = pf_chk_drivers,
      .statement = "virtio_blk and virtio_pci usable at boot and virtio_net "
                   "available; otherwise the guest uses SATA and e1000",
      .arg = "virtio_blk|virtio_scsi,virtio_pci,net:virtio_net",
      .fix = "vmferry prepare --target kvm IMAGE OUT (adds virtio to the "
             "initramfs)" },
};

const struct pf_target pf_target_kvm = {
    .name = "kvm", .desc = "KVM / libvirt (local)",
    .rules = kvm_rules, .nrules = sizeof(kvm_rules) / sizeof(kvm_rules[0]),
};
