/*
 * azure.c: Azure rules (MicrosoftDocs azure-compute-docs
 * create-upload-generic.md; Add-AzVhd): a fixed VHD whose virtual size is
 * a whole number of MiB, footer cookie "conectix", at most 32 TiB, and
 * the Hyper-V drivers in the initramfs.
 */
#include "targets/preflight.h"

static const struct pf_rule azure_rules[] = {
    { .id = "azure-fixed-vhd", .severity = PF_ERROR, .check = pf_chk_format,
      .statement = "disks are fixed VHD", .arg = "vpc:fixed",
      .fix = "vmferry convert -O vpc -o subformat=fixed,force_size IMAGE OUT.vhd" },
    { .id = "azure-size-mib", .severity = PF_ERROR,
      .check = pf_chk_size_multiple,
      .statement = "virtual size is a whole number of MiB", .num = PF_MiB,
      .fix = "vmferry resize IMAGE SIZE-ROUNDED-UP-TO-MIB, then convert" },
    { .id = "azure-cookie", .severity = PF_ERROR, .check = pf_chk_vhd_cookie,
      .statement = "the VHD footer cookie is conectix",
      .fix = "vmferry convert -O vpc -o subformat=fixed,force_size IMAGE OUT.vhd" },
    { .id = "azure-size", .severity = PF_ERROR, .check = pf_chk_max_size,
      .statement = "each disk is at most 32 TiB", .num = 32 * PF_TiB,
      .fix = "shrink the disk: vmferry resize --shrink IMAGE SIZE" },
    { .id = "azure-hyperv-initramfs", .severity = PF_ERROR,
      .check = pf_chk_drivers,
      .statement = "Hyper-V drivers (hv_vmbus, hv_storvsc) are in the "
                   "initramfs or built in, hv_netvsc available",
      .arg = "hv_vmbus,hv_storvsc,net:hv_netvsc",
      .fix = "vmferry prepare --target azure IMAGE OUT (adds hv_vmbus, "
             "hv_storvsc to the initramfs)" },
};

const struct pf_target pf_target_azure = {
    .name = "azure", .desc = "Microsoft Azure (managed disk upload)",
    .rules = azure_rules,
    .nrules = sizeof(azure_rules) / sizeof(azure_rules[0]),
};
