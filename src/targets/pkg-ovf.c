/*
 * pkg-ovf.c: the OVF descriptor of an OVA (see ovf.h), built with
 * libxml2's tree API.
 *
 * Written from DMTF DSP0243 (OVF 1.1.0): the Envelope with References,
 * DiskSection, NetworkSection and one VirtualSystem holding an
 * OperatingSystemSection and a VirtualHardwareSection of CIM RASD items
 * (DSP1041 resource types: 3 processor, 4 memory, 6 parallel SCSI HBA,
 * 10 Ethernet adapter, 17 disk drive, 20 other storage device).  RASD and
 * VSSD child elements are in the schema's (alphabetical) order.  The
 * VMware dialect adds vmw:osType and vmw:Config (the firmware), as
 * vSphere's own exports carry them; the VirtualBox dialect is what
 * VirtualBox's "OVF 1.0" export writes: virtualbox-2.2 hardware, one
 * SATA (AHCI) controller, vbox:OSType.
 *
 * OS identities: CIM_OperatingSystem.OSType numbers (CIM schema 2.x:
 * 36 LINUX, 80 RHEL 64-bit, 83 SUSE 64-bit, 85 SLES 64-bit, 94 Ubuntu
 * 64-bit, 96 Debian 64-bit, 101 Linux 64-bit, 102 Other 64-bit, 107
 * CentOS 64-bit, 109 Oracle Linux 64-bit, 115 Windows Server 2012 R2)
 * and vSphere's VirtualMachineGuestOsIdentifier names.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <libxml/tree.h>
#include <libxml/xmlstring.h>

#include "targets/ovf.h"

#define NS_ENV "http://schemas.dmtf.org/ovf/envelope/1"
#define NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/common"
#define NS_RASD "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/" \
                "CIM_ResourceAllocationSettingData"
#define NS_VSSD "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/" \
                "CIM_VirtualSystemSettingData"
#define NS_VMW "http://www.vmware.com/schema/ovf"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define NS_VBOX "http://www.virtualbox.org/ovf/machine"
#define VMDK_STREAM_URL \
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

/* A VMware SCSI controller has 16 units, the 8th (7) its own; a VM has
 * at most 4.  VirtualBox's one SATA controller has 30 ports. */
#define VMW_SCSI_UNITS 15
#define VMW_SCSI_CTLS 4
#define VBOX_SATA_PORTS 30

/* ---- what the guest is ---- */

/* The major version of the guest's first kernel ("6.1.0-13-amd64"), or
 * -1. */
static int kernel_major(struct json_object *report)
{
    struct json_object *oses = pkg_jget(report, "operatingsystems");
    struct json_object *os = oses && json_object_is_type(oses, json_type_array)
                             && json_object_array_length(oses)
                                 ? json_object_array_get_idx(oses, 0) : NULL;
    struct json_object *ks = pkg_jget(os, "kernels");
    if (!ks || !json_object_is_type(ks, json_type_array) ||
        !json_object_array_length(ks))
        return -1;
    struct json_object *v = pkg_jget(json_object_array_get_idx(ks, 0), "version");
    const char *s = v && json_object_is_type(v, json_type_string)
                        ? json_object_get_string(v) : NULL;
    if (!s || *s < '0' || *s > '9')
        return -1;
    long m = strtol(s, NULL, 10);
    return m >= 0 && m < 100 ? (int)m : -1;
}

/* major within [lo, hi] (clamped down to hi), or -1 when unknown or
 * below lo */
static int clamp_major(int major, int lo, int hi)
{
    if (major < lo)
        return -1;
    return major > hi ? hi : major;
}

static void choose_os(const struct pkg *p, struct ovf_choice *c)
{
    const struct pkg_vm *vm = &p->vm;
    const char *d = vm->distro ? vm->distro : "";
    bool linux_os = vm->os_type && !strcmp(vm->os_type, "linux");
    bool win = vm->os_type && !strcmp(vm->os_type, "windows");
    bool x32 = vm->arch && (!strcmp(vm->arch, "i386") ||
                            !strcmp(vm->arch, "i686"));
    int m;
    c->vbox_os = "Linux26_64";
    if (win) {
        /* inspection does not tell Windows versions apart: the server
         * family of 2016 and later */
        c->cim_os = 115;
        snprintf(c->vmw_os, sizeof(c->vmw_os), "windows9Server64Guest");
        c->vbox_os = "Windows2016_64";
        return;
    }
    if (!linux_os) {
        c->cim_os = 102;
        snprintf(c->vmw_os, sizeof(c->vmw_os), "otherGuest64");
        c->vbox_os = "Other_64";
        return;
    }
    if (x32) {
        c->cim_os = 36;
        snprintf(c->vmw_os, sizeof(c->vmw_os), "otherLinuxGuest");
        c->vbox_os = "Linux26";
        return;
    }
    if (!strcmp(d, "debian")) {
        c->cim_os = 96;
        c->vbox_os = "Debian_64";
        if ((m = clamp_major(vm->major, 4, 13)) > 0) {
            snprintf(c->vmw_os, sizeof(c->vmw_os), "debian%d_64Guest", m);
            return;
        }
    } else if (!strcmp(d, "ubuntu")) {
        c->cim_os = 94;
        c->vbox_os = "Ubuntu_64";
        snprintf(c->vmw_os, sizeof(c->vmw_os), "ubuntu64Guest");
        return;
    } else if (!strcmp(d, "rhel")) {
        c->cim_os = 80;
        c->vbox_os = "RedHat_64";
        if ((m = clamp_major(vm->major, 3, 10)) > 0) {
            snprintf(c->vmw_os, sizeof(c->vmw_os), "rhel%d_64Guest", m);
            return;
        }
    } else if (!strcmp(d, "centos")) {
        c->cim_os = 107;
        c->vbox_os = "RedHat_64";
        if ((m = clamp_major(vm->major, 6, 9)) > 0)
            snprintf(c->vmw_os, sizeof(c->vmw_os), "centos%d_64Guest", m);
        else
            snprintf(c->vmw_os, sizeof(c->vmw_os), "centos64Guest");
        return;
    } else if (!strcmp(d, "oraclelinux")) {
        c->cim_os = 109;
        c->vbox_os = "Oracle_64";
        if ((m = clamp_major(vm->major, 6, 10)) > 0)
            snprintf(c->vmw_os, sizeof(c->vmw_os), "oracleLinux%d_64Guest",
                     m);
        else
            snprintf(c->vmw_os, sizeof(c->vmw_os), "oracleLinux64Guest");
        return;
    } else if (!strcmp(d, "rocky") || !strcmp(d, "almalinux")) {
        c->cim_os = 101;
        c->vbox_os = "RedHat_64";
        snprintf(c->vmw_os, sizeof(c->vmw_os), "%s_64Guest",
                 !strcmp(d, "rocky") ? "rockylinux" : "almalinux");
        return;
    } else if (!strcmp(d, "fedora")) {
        c->cim_os = 101;
        c->vbox_os = "Fedora_64";
        snprintf(c->vmw_os, sizeof(c->vmw_os), "fedora64Guest");
        return;
    } else if (!strcmp(d, "sles")) {
        c->cim_os = 85;
        c->vbox_os = "OpenSUSE_64";
        m = vm->major;
        if (m == 10 || m == 11 || m == 12 || m == 15 || m == 16)
            snprintf(c->vmw_os, sizeof(c->vmw_os), "sles%d_64Guest", m);
        else
            snprintf(c->vmw_os, sizeof(c->vmw_os), "sles64Guest");
        return;
    } else if (!strcmp(d, "opensuse")) {
        c->cim_os = 83;
        c->vbox_os = "OpenSUSE_64";
        snprintf(c->vmw_os, sizeof(c->vmw_os), "opensuse64Guest");
        return;
    } else if (!strcmp(d, "archlinux")) {
        c->vbox_os = "ArchLinux_64";
    }
    /* any other Linux, or a version too old to have its own id: by the
     * kernel's series */
    c->cim_os = c->cim_os ? c->cim_os : 101;
    int k = kernel_major(p->report);
    const char *series = k == 2 ? "26x" : k == 3 ? "3x" : k == 4 ? "4x"
                                                           : "5x";
    snprintf(c->vmw_os, sizeof(c->vmw_os), "other%sLinux64Guest", series);
}

void ovf_choose(const struct pkg *p, bool vbox, struct ovf_choice *c)
{
    memset(c, 0, sizeof(*c));
    c->vbox = vbox;
    c->efi = p->vm.firmware && !strcmp(p->vm.firmware, "uefi");
    choose_os(p, c);
    if (vbox) {
        c->controller = "sata";
        c->ctl_subtype = "AHCI";
        /* VirtualBox maps a subtype it does not know (virtio) to the OS
         * type's default adapter */
        c->nic_subtype = p->vm.virtio_net ? "virtio" : "E1000";
        c->network = "NAT";
        c->hw_family = "virtualbox-2.2";
        c->max_disks = VBOX_SATA_PORTS;
        return;
    }
    /* pvscsi only when the guest finds its root disk on it at boot; LSI
     * Logic's driver is in every distribution kernel */
    c->controller = p->vm.vmw_pvscsi ? "pvscsi" : "lsilogic";
    c->ctl_subtype = p->vm.vmw_pvscsi ? "VirtualSCSI" : "lsilogic";
    c->nic_subtype = p->vm.vmxnet3 ? "VmxNet3" : "E1000";
    c->network = "VM Network";
    /* ESXi 6.7 and later */
    c->hw_family = "vmx-14";
    c->max_disks = VMW_SCSI_UNITS * VMW_SCSI_CTLS;
}

/* ---- building the XML ---- */

struct ob {
    xmlDocPtr doc;
    xmlNsPtr env, ovf, rasd, vssd, vmw, vboxns;
    bool vbox;                 /* VirtualBox's dialect */
    bool oom;
};

/* A child element with text (escaped on output), or NULL (then b->oom,
 * and every later call on it is a no-op). */
static xmlNodePtr el(struct ob *b, xmlNodePtr parent, xmlNsPtr ns,
                     const char *name, const char *text)
{
    xmlNodePtr n = parent ? xmlNewTextChild(parent, ns, BAD_CAST name,
                                            text ? BAD_CAST text : NULL)
                          : NULL;
    if (!n)
        b->oom = true;
    return n;
}

static xmlNodePtr elf(struct ob *b, xmlNodePtr parent, xmlNsPtr ns,
                      const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static xmlNodePtr elf(struct ob *b, xmlNodePtr parent, xmlNsPtr ns,
                      const char *name, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return el(b, parent, ns, name, buf);
}

static void at(struct ob *b, xmlNodePtr n, xmlNsPtr ns, const char *name,
               const char *val)
{
    if (!n || !xmlNewNsProp(n, ns, BAD_CAST name, BAD_CAST val))
        b->oom = true;
}

static void atf(struct ob *b, xmlNodePtr n, xmlNsPtr ns, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void atf(struct ob *b, xmlNodePtr n, xmlNsPtr ns, const char *name,
                const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    at(b, n, ns, name, buf);
}

/* Text that may go into the document: UTF-8 without control characters
 * (which XML 1.0 cannot carry). */
static bool xml_text_ok(const char *s)
{
    if (!s || !xmlCheckUTF8(BAD_CAST s))
        return false;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++)
        if (*q < 0x20 || *q == 0x7f)
            return false;
    return true;
}

static void build_refs(struct ob *b, xmlNodePtr root,
                       const struct ovf_disk *d, size_t n, bool ph)
{
    xmlNodePtr refs = el(b, root, b->env, "References", NULL);
    for (size_t i = 0; i < n; i++) {
        xmlNodePtr f = el(b, refs, b->env, "File", NULL);
        at(b, f, b->ovf, "href", d[i].href);
        atf(b, f, b->ovf, "id", "file%zu", i + 1);
        atf(b, f, b->ovf, "size", "%" PRIu64, ph ? UINT64_MAX
                                                  : d[i].file_size);
    }
    xmlNodePtr ds = el(b, root, b->env, "DiskSection", NULL);
    el(b, ds, b->env, "Info", b->vbox ? "List of the virtual disks used in "
                                        "the package"
                                      : "Virtual disk information");
    for (size_t i = 0; i < n; i++) {
        xmlNodePtr k = el(b, ds, b->env, "Disk", NULL);
        atf(b, k, b->ovf, "capacity", "%" PRIu64, d[i].capacity);
        if (!b->vbox)
            at(b, k, b->ovf, "capacityAllocationUnits", "byte");
        atf(b, k, b->ovf, "diskId", "vmdisk%zu", i + 1);
        atf(b, k, b->ovf, "fileRef", "file%zu", i + 1);
        at(b, k, b->ovf, "format", VMDK_STREAM_URL);
        atf(b, k, b->ovf, "populatedSize", "%" PRIu64,
            ph ? UINT64_MAX : d[i].populated);
    }
}

static void build_network(struct ob *b, xmlNodePtr root,
                          const struct ovf_choice *c)
{
    xmlNodePtr ns = el(b, root, b->env, "NetworkSection", NULL);
    el(b, ns, b->env, "Info", b->vbox ? "Logical networks used in the "
                                        "package"
                                      : "The list of logical networks");
    xmlNodePtr net = el(b, ns, b->env, "Network", NULL);
    at(b, net, b->ovf, "name", c->network);
    if (b->vbox)
        el(b, net, b->env, "Description", "Logical network used by this "
                                          "appliance.");
    else
        elf(b, net, b->env, "Description", "The %s network", c->network);
}

static void build_os(struct ob *b, const struct pkg *p, xmlNodePtr vs,
                     const struct ovf_choice *c)
{
    xmlNodePtr os = el(b, vs, b->env, "OperatingSystemSection", NULL);
    atf(b, os, b->ovf, "id", "%d", c->cim_os);
    if (!b->vbox)
        at(b, os, b->vmw, "osType", c->vmw_os);
    el(b, os, b->env, "Info", "The kind of installed guest operating "
                              "system");
    if (b->vbox) {
        el(b, os, b->env, "Description", c->vbox_os);
        xmlNodePtr t = el(b, os, b->vboxns, "OSType", c->vbox_os);
        at(b, t, b->ovf, "required", "false");
    } else if (xml_text_ok(p->vm.product)) {
        /* the guest's own name for itself: hostile text, kept only when
         * it is plain UTF-8 */
        el(b, os, b->env, "Description", p->vm.product);
    }
}

/* One RASD Item; its children are added by the caller, in order. */
static xmlNodePtr item(struct ob *b, xmlNodePtr hw)
{
    return el(b, hw, b->env, "Item", NULL);
}

static void build_hw_vmware(struct ob *b, const struct pkg *p,
                            xmlNodePtr hw, const struct ovf_choice *c,
                            size_t n)
{
    unsigned id = 1;
    xmlNodePtr it = item(b, hw);
    el(b, it, b->rasd, "AllocationUnits", "hertz * 10^6");
    el(b, it, b->rasd, "Description", "Number of Virtual CPUs");
    elf(b, it, b->rasd, "ElementName", "%u virtual CPU(s)", p->vm.vcpus);
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceType", "3");
    elf(b, it, b->rasd, "VirtualQuantity", "%u", p->vm.vcpus);

    it = item(b, hw);
    el(b, it, b->rasd, "AllocationUnits", "byte * 2^20");
    el(b, it, b->rasd, "Description", "Memory Size");
    elf(b, it, b->rasd, "ElementName", "%uMB of memory", p->vm.memory_mb);
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceType", "4");
    elf(b, it, b->rasd, "VirtualQuantity", "%u", p->vm.memory_mb);

    /* 15 disks per controller, unit 7 being the controller's own */
    size_t nctl = n ? (n + VMW_SCSI_UNITS - 1) / VMW_SCSI_UNITS : 1;
    unsigned ctl_id[VMW_SCSI_CTLS];
    for (size_t k = 0; k < nctl; k++) {
        ctl_id[k] = id++;
        it = item(b, hw);
        elf(b, it, b->rasd, "Address", "%zu", k);
        el(b, it, b->rasd, "Description", "SCSI Controller");
        elf(b, it, b->rasd, "ElementName", "SCSI Controller %zu", k);
        elf(b, it, b->rasd, "InstanceID", "%u", ctl_id[k]);
        el(b, it, b->rasd, "ResourceSubType", c->ctl_subtype);
        el(b, it, b->rasd, "ResourceType", "6");
    }
    for (size_t i = 0; i < n; i++) {
        size_t u = i % VMW_SCSI_UNITS;
        it = item(b, hw);
        elf(b, it, b->rasd, "AddressOnParent", "%zu", u < 7 ? u : u + 1);
        elf(b, it, b->rasd, "ElementName", "Hard Disk %zu", i + 1);
        elf(b, it, b->rasd, "HostResource", "ovf:/disk/vmdisk%zu", i + 1);
        elf(b, it, b->rasd, "InstanceID", "%u", id++);
        elf(b, it, b->rasd, "Parent", "%u", ctl_id[i / VMW_SCSI_UNITS]);
        el(b, it, b->rasd, "ResourceType", "17");
    }
    it = item(b, hw);
    el(b, it, b->rasd, "AutomaticAllocation", "true");
    el(b, it, b->rasd, "Connection", c->network);
    elf(b, it, b->rasd, "Description", "%s ethernet adapter on \"%s\"",
        c->nic_subtype, c->network);
    el(b, it, b->rasd, "ElementName", "Network adapter 1");
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceSubType", c->nic_subtype);
    el(b, it, b->rasd, "ResourceType", "10");

    if (c->efi) {
        xmlNodePtr cf = el(b, hw, b->vmw, "Config", NULL);
        at(b, cf, b->ovf, "required", "false");
        at(b, cf, b->vmw, "key", "firmware");
        at(b, cf, b->vmw, "value", "efi");
    }
}

static void build_hw_vbox(struct ob *b, const struct pkg *p, xmlNodePtr hw,
                          const struct ovf_choice *c, size_t n)
{
    unsigned id = 1;
    xmlNodePtr it = item(b, hw);
    elf(b, it, b->rasd, "Caption", "%u virtual CPU", p->vm.vcpus);
    el(b, it, b->rasd, "Description", "Number of virtual CPUs");
    elf(b, it, b->rasd, "ElementName", "%u virtual CPU", p->vm.vcpus);
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceType", "3");
    elf(b, it, b->rasd, "VirtualQuantity", "%u", p->vm.vcpus);

    it = item(b, hw);
    el(b, it, b->rasd, "AllocationUnits", "MegaBytes");
    elf(b, it, b->rasd, "Caption", "%u MB of memory", p->vm.memory_mb);
    el(b, it, b->rasd, "Description", "Memory Size");
    elf(b, it, b->rasd, "ElementName", "%u MB of memory", p->vm.memory_mb);
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceType", "4");
    elf(b, it, b->rasd, "VirtualQuantity", "%u", p->vm.memory_mb);

    unsigned ctl = id++;
    it = item(b, hw);
    el(b, it, b->rasd, "Address", "0");
    el(b, it, b->rasd, "Caption", "sataController0");
    el(b, it, b->rasd, "Description", "SATA Controller");
    el(b, it, b->rasd, "ElementName", "sataController0");
    elf(b, it, b->rasd, "InstanceID", "%u", ctl);
    el(b, it, b->rasd, "ResourceSubType", c->ctl_subtype);
    el(b, it, b->rasd, "ResourceType", "20");

    it = item(b, hw);
    el(b, it, b->rasd, "AutomaticAllocation", "true");
    elf(b, it, b->rasd, "Caption", "Ethernet adapter on '%s'", c->network);
    el(b, it, b->rasd, "Connection", c->network);
    elf(b, it, b->rasd, "ElementName", "Ethernet adapter on '%s'",
        c->network);
    elf(b, it, b->rasd, "InstanceID", "%u", id++);
    el(b, it, b->rasd, "ResourceSubType", c->nic_subtype);
    el(b, it, b->rasd, "ResourceType", "10");

    for (size_t i = 0; i < n; i++) {
        it = item(b, hw);
        elf(b, it, b->rasd, "AddressOnParent", "%zu", i);
        elf(b, it, b->rasd, "Caption", "disk%zu", i + 1);
        el(b, it, b->rasd, "Description", "Disk Image");
        elf(b, it, b->rasd, "ElementName", "disk%zu", i + 1);
        elf(b, it, b->rasd, "HostResource", "ovf:/disk/vmdisk%zu", i + 1);
        elf(b, it, b->rasd, "InstanceID", "%u", id++);
        elf(b, it, b->rasd, "Parent", "%u", ctl);
        el(b, it, b->rasd, "ResourceType", "17");
    }
}

char *ovf_build(const struct pkg *p, const struct ovf_choice *c,
                const struct ovf_disk *d, size_t n, bool placeholder,
                size_t *len, vf_error **errp)
{
    const char *name = p->vm.name;
    if (!xml_text_ok(name) || !*name) {
        error_setg(errp, "VM name '%s' is not plain UTF-8 text", name);
        return NULL;
    }
    if (n > c->max_disks) {
        error_setg(errp, "%zu disks: the %s OVF's controllers hold %zu",
                   n, c->vbox ? "VirtualBox" : "VMware", c->max_disks);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!xml_text_ok(d[i].href)) {
            error_setg(errp, "file name '%s' is not plain UTF-8 text",
                       d[i].href);
            return NULL;
        }
    struct ob b = { .vbox = c->vbox };
    b.doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = b.doc ? xmlNewDocNode(b.doc, NULL, BAD_CAST "Envelope",
                                            NULL)
                            : NULL;
    char *out = NULL;
    if (!root)
        goto oom;
    xmlDocSetRootElement(b.doc, root);
    /* the envelope is the default namespace and ovf: as well, for the
     * attributes (which take no default namespace) */
    b.env = xmlNewNs(root, BAD_CAST NS_ENV, NULL);
    if (!c->vbox && !xmlNewNs(root, BAD_CAST NS_CIM, BAD_CAST "cim"))
        goto oom;
    b.ovf = xmlNewNs(root, BAD_CAST NS_ENV, BAD_CAST "ovf");
    b.rasd = xmlNewNs(root, BAD_CAST NS_RASD, BAD_CAST "rasd");
    if (c->vbox)
        b.vboxns = xmlNewNs(root, BAD_CAST NS_VBOX, BAD_CAST "vbox");
    else
        b.vmw = xmlNewNs(root, BAD_CAST NS_VMW, BAD_CAST "vmw");
    b.vssd = xmlNewNs(root, BAD_CAST NS_VSSD, BAD_CAST "vssd");
    xmlNsPtr xsi = xmlNewNs(root, BAD_CAST NS_XSI, BAD_CAST "xsi");
    if (!b.env || !b.ovf || !b.rasd || !b.vssd || !xsi ||
        (c->vbox ? !b.vboxns : !b.vmw))
        goto oom;
    xmlSetNs(root, b.env);
    if (c->vbox) {
        at(&b, root, b.ovf, "version", "1.0");
        xmlNodeSetLang(root, BAD_CAST "en-US");
    }

    build_refs(&b, root, d, n, placeholder);
    build_network(&b, root, c);
    xmlNodePtr vs = el(&b, root, b.env, "VirtualSystem", NULL);
    at(&b, vs, b.ovf, "id", name);
    el(&b, vs, b.env, "Info", "A virtual machine");
    if (!c->vbox)
        el(&b, vs, b.env, "Name", name);
    build_os(&b, p, vs, c);
    xmlNodePtr hw = el(&b, vs, b.env, "VirtualHardwareSection", NULL);
    el(&b, hw, b.env, "Info", c->vbox ? "Virtual hardware requirements for "
                                        "a virtual machine"
                                      : "Virtual hardware requirements");
    xmlNodePtr sys = el(&b, hw, b.env, "System", NULL);
    el(&b, sys, b.vssd, "ElementName", "Virtual Hardware Family");
    el(&b, sys, b.vssd, "InstanceID", "0");
    el(&b, sys, b.vssd, "VirtualSystemIdentifier", name);
    el(&b, sys, b.vssd, "VirtualSystemType", c->hw_family);
    if (c->vbox)
        build_hw_vbox(&b, p, hw, c, n);
    else
        build_hw_vmware(&b, p, hw, c, n);
    if (b.oom)
        goto oom;

    xmlChar *mem = NULL;
    int ml = 0;
    xmlDocDumpFormatMemoryEnc(b.doc, &mem, &ml, "UTF-8", 1);
    if (!mem || ml <= 0) {
        xmlFree(mem);
        goto oom;
    }
    out = malloc((size_t)ml + 1);
    if (out) {
        memcpy(out, mem, (size_t)ml);
        out[ml] = 0;
        *len = (size_t)ml;
    }
    xmlFree(mem);
    if (!out)
        goto oom;
    xmlFreeDoc(b.doc);
    return out;
oom:
    xmlFreeDoc(b.doc);
    error_setg(errp, "out of memory building the OVF descriptor");
    return NULL;
}
