/*
 * gce.c: Google Compute Engine image import rules
 * (cloud.google.com/compute/docs/import/import-existing-image): a raw disk
 * whose size is a whole number of GB, packaged as disk.raw in an oldgnu
 * tar.gz (vmferry package --target gce does that), an MBR or GPT with a
 * bootable partition, virtio_scsi and virtio_net drivers.
 */
#include "targets/preflight.h"

static const struct pf_rule gce_rules[] = {
    { .id = "gce-raw", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "the disk is raw (it becomes disk.raw in an oldgnu "
                   "tar.gz: vmferry package --target gce)",
      .arg = "raw",
      .fix = "vmferry convert -O raw IMAGE disk.raw" },
    { .id = "gce-size-gb", .severity = PF_ERROR,
      .check = pf_chk_size_multiple,
      .statement = "the disk size is a whole number of GB (GiB)",
      .num = PF_GiB,
      .fix = "vmferry resize disk.raw SIZE-ROUNDED-UP-TO-GIB" },
    { .id = "gce-bootable", .severity = PF_ERROR,
      .check = pf_chk_bootable_table,
      .statement = "an MBR or GPT with a bootable partition",
      .fix = "mark the boot partition active (sfdisk --activate) or add an "
             "ESP / BIOS-boot partition" },
    { .id = "gce-virtio", .severity = PF_ERROR, .check = pf_chk_drivers,
      .statement = "virtio_scsi (and virtio_pci) usable at boot, virtio_net "
                   "available",
      .arg = "virtio_scsi,virtio_pci,net:virtio_net",
      .fix = "vmferry prepare --target gce IMAGE OUT (adds virtio_scsi to "
             "the initramfs)" },
};

const struct pf_target pf_target_gce = {
    .name = "gce", .desc = "Google Compute Engine image import",
    .rules = gce_rules, .nrules = sizeof(gce_rules) / sizeof(gce_rules[0]),
};
