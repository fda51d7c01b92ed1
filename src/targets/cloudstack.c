/*
 * cloudstack.c: Apache CloudStack registerTemplate: the formats each
 * hypervisor accepts (ui/src/views/image/RegisterOrUploadTemplate.vue
 * fetchFormat; api/.../Storage.java ImageFormat): KVM QCOW2, RAW, VHD,
 * VMDK; XenServer VHD; VMware OVA (a streamOptimized VMDK inside);
 * Hyper-V VHD, VHDX.  One rule table per hypervisor.
 */
#include "targets/preflight.h"

#define CS_TARGET(var, tname, tdesc, fmts, fixcmd)                          \
    static const struct pf_rule var##_rules[] = {                          \
        { .id = tname "-format", .severity = PF_ERROR,                      \
          .check = pf_chk_format,                                           \
          .statement = "template format accepted by " tdesc ": " fmts,     \
          .arg = fmts, .fix = fixcmd },                                     \
        { .id = tname "-no-backing", .severity = PF_ERROR,                  \
          .check = pf_chk_no_backing,                                       \
          .statement = "a template is one self-contained image",           \
          .fix = "vmferry convert IMAGE OUT (flattens the chain)" },        \
    };                                                                      \
    const struct pf_target var = {                                          \
        .name = tname, .desc = "Apache CloudStack, " tdesc,                 \
        .rules = var##_rules,                                               \
        .nrules = sizeof(var##_rules) / sizeof(var##_rules[0]),             \
    }

CS_TARGET(pf_target_cloudstack_kvm, "cloudstack-kvm", "KVM",
          "qcow2,raw,vpc,vmdk", "vmferry convert -O qcow2 IMAGE OUT.qcow2");
CS_TARGET(pf_target_cloudstack_xen, "cloudstack-xen", "XenServer", "vpc",
          "vmferry convert -O vpc IMAGE OUT.vhd");
CS_TARGET(pf_target_cloudstack_vmware, "cloudstack-vmware", "VMware",
          "vmdk:streamOptimized",
          "vmferry convert -O vmdk -o subformat=streamOptimized IMAGE OUT.vmdk "
          "&& vmferry package --target vmware OUT.vmdk DIR");
CS_TARGET(pf_target_cloudstack_hyperv, "cloudstack-hyperv", "Hyper-V",
          "vpc,vhdx", "vmferry convert -O vhdx IMAGE OUT.vhdx");
