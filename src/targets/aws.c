/*
 * aws.c: AWS VM Import rules (awsdocs/vm-import-export-user-guide:
 * prerequisites.md, limitations-image.md): image under 16 TiB, format
 * raw, stream-optimized VMDK, VHD/VHDX or OVA, 64-bit Linux or Windows,
 * BIOS+MBR or UEFI with a fallback loader, root on the boot disk,
 * ext2/3/4, XFS, btrfs (no subvolumes), JFS or NTFS, no seSparse, at most
 * 21 disks.
 */
#include "targets/preflight.h"

static const struct pf_rule aws_rules[] = {
    { .id = "aws-size", .severity = PF_ERROR, .check = pf_chk_max_size,
      .statement = "each disk image is under 16 TiB",
      .num = 16 * PF_TiB - 1,
      .fix = "split the data onto more disks; AWS refuses 16 TiB images" },
    { .id = "aws-format", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "disks are raw, streamOptimized VMDK, VHD, VHDX (or OVA)",
      .arg = "raw,vmdk:streamOptimized,vpc,vhdx",
      .fix = "vmferry convert -O vmdk -o subformat=streamOptimized IMAGE OUT.vmdk" },
    { .id = "aws-64bit-os", .severity = PF_ERROR, .check = pf_chk_64bit,
      .statement = "a 64-bit Linux or Windows operating system",
      .fix = "none: AWS imports only 64-bit guests" },
    { .id = "aws-boot-mode", .severity = PF_ERROR, .check = pf_chk_boot_mode,
      .statement = "BIOS with an MBR boot disk, or UEFI with a fallback "
                   "EFI/BOOT loader",
      .fix = "UEFI: install the loader as \\EFI\\BOOT\\BOOTX64.EFI on the "
             "ESP (grub-install --removable, or copy shimx64.efi there) and "
             "import with --boot-mode uefi; BIOS: convert the boot disk to "
             "MBR" },
    { .id = "aws-root-on-boot-disk", .severity = PF_ERROR,
      .check = pf_chk_root_on_boot_disk,
      .statement = "the root filesystem is on the boot disk (the disk with "
                   "the MBR)",
      .fix = "give the boot disk first: vmferry preflight --target aws "
             "BOOTDISK OTHERS..." },
    { .id = "aws-filesystems", .severity = PF_ERROR, .check = pf_chk_fs_types,
      .statement = "filesystems are ext2/3/4, XFS, btrfs (no subvolumes), "
                   "JFS or NTFS",
      .arg = "ext2,ext3,ext4,xfs,btrfs,jfs,ntfs,vfat,swap",
      .fix = "move the data to an ext4 or XFS filesystem" },
    { .id = "aws-no-sesparse", .severity = PF_ERROR,
      .check = pf_chk_no_sesparse,
      .statement = "no seSparse VMDK",
      .fix = "vmferry convert -O vmdk -o subformat=streamOptimized IMAGE OUT.vmdk" },
    { .id = "aws-max-disks", .severity = PF_ERROR, .check = pf_chk_max_disks,
      .statement = "at most 21 disks in one import", .num = 21,
      .fix = "import the extra disks with ImportSnapshot" },
};

const struct pf_target pf_target_aws = {
    .name = "aws", .desc = "Amazon EC2 VM Import",
    .rules = aws_rules, .nrules = sizeof(aws_rules) / sizeof(aws_rules[0]),
};
