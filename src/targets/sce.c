/*
 * sce.c: the seed rules of IBM SmartCloud Enterprise image import: raw
 * format, exactly the / and /boot partitions, ext3, not encrypted, at
 * most 60 GB, no LVM, not Windows, virtio enabled.
 */
#include "targets/preflight.h"

static const struct pf_rule sce_rules[] = {
    { .id = "sce-raw", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "the disk is raw", .arg = "raw",
      .fix = "vmferry convert -O raw IMAGE OUT.raw" },
    { .id = "sce-partitions", .severity = PF_ERROR,
      .check = pf_chk_mountpoints,
      .statement = "exactly the / and /boot partitions", .arg = "/,/boot",
      .fix = "move the other mountpoints' data into /" },
    { .id = "sce-ext3", .severity = PF_ERROR, .check = pf_chk_fs_types,
      .statement = "filesystems are ext3", .arg = "ext3",
      .fix = "recreate / and /boot as ext3" },
    { .id = "sce-not-encrypted", .severity = PF_ERROR,
      .check = pf_chk_not_encrypted,
      .statement = "no encrypted volume",
      .fix = "decrypt the volume before import" },
    { .id = "sce-size", .severity = PF_ERROR, .check = pf_chk_max_size,
      .statement = "the disk is at most 60 GB", .num = 60 * PF_GiB,
      .fix = "vmferry resize --shrink IMAGE 60G" },
    { .id = "sce-no-lvm", .severity = PF_ERROR, .check = pf_chk_no_lvm,
      .statement = "no LVM",
      .fix = "move the root filesystem out of LVM onto a partition" },
    { .id = "sce-not-windows", .severity = PF_ERROR,
      .check = pf_chk_not_windows,
      .statement = "not Windows", .fix = "none: Linux guests only" },
    { .id = "sce-virtio", .severity = PF_ERROR, .check = pf_chk_drivers,
      .statement = "virtio enabled: virtio_blk and virtio_pci usable at "
                   "boot, virtio_net available",
      .arg = "virtio_blk,virtio_pci,net:virtio_net",
      .fix = "vmferry prepare --target kvm IMAGE OUT (adds virtio to the "
             "initramfs)" },
};

const struct pf_target pf_target_sce = {
    .name = "sce", .desc = "IBM SmartCloud Enterprise (seed rules)",
    .rules = sce_rules, .nrules = sizeof(sce_rules) / sizeof(sce_rules[0]),
};
