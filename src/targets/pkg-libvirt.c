/*
 * pkg-libvirt.c: the local / libvirt package: the disks (qcow2, or -O
 * raw, --preallocation), NAME.xml (a libvirt domain, valid for
 * virt-xml-validate) and run.sh (the same machine as a
 * qemu-system-x86_64 command line).
 *
 * The devices follow what the guest can boot from: virtio-blk when its
 * kernel has virtio_blk at boot, else virtio-scsi, else SATA; the NIC
 * virtio when virtio_net is available, else e1000.  The machine is q35
 * (SATA is its AHCI controller); UEFI guests get libvirt's firmware
 * autoselection and OVMF in run.sh.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlwriter.h>

#include "targets/package.h"

/* The absolute path the package will have once renamed. */
static char *final_dir(struct pkg *p)
{
    char *abs = realpath(p->dir, NULL);
    if (!abs)
        return NULL;
    /* p->dir is outdir + ".vmferry-partial" */
    size_t l = strlen(abs), sl = strlen(".vmferry-partial");
    if (l > sl && !strcmp(abs + l - sl, ".vmferry-partial"))
        abs[l - sl] = 0;
    return abs;
}

static const char *disk_dev(const char *bus, size_t i, char *buf,
                            size_t len)
{
    /* vda..vdz, sda..sdz (package.c allows at most 64 disks: two letters
     * past 26, as the kernel names them) */
    const char *pre = !strcmp(bus, "virtio") ? "vd" : "sd";
    if (i < 26)
        snprintf(buf, len, "%s%c", pre, (char)('a' + i));
    else
        snprintf(buf, len, "%s%c%c", pre, (char)('a' + i / 26 - 1),
                 (char)('a' + i % 26));
    return buf;
}

#define W(call)                                                            \
    do {                                                                   \
        if ((call) < 0)                                                    \
            goto xmlfail;                                                  \
    } while (0)

/* <name k1="v1" k2="v2"> (a NULL key or value is left out), left open. */
static int xopen(xmlTextWriterPtr w, const char *name, const char *k1,
                 const char *v1, const char *k2, const char *v2)
{
    if (xmlTextWriterStartElement(w, BAD_CAST name) < 0 ||
        (k1 && v1 && xmlTextWriterWriteAttribute(w, BAD_CAST k1,
                                                 BAD_CAST v1) < 0) ||
        (k2 && v2 && xmlTextWriterWriteAttribute(w, BAD_CAST k2,
                                                 BAD_CAST v2) < 0))
        return -1;
    return 0;
}

/* <name k1="v1" k2="v2">text</name>, text NULL: an empty element. */
static int xleaf(xmlTextWriterPtr w, const char *name, const char *k1,
                 const char *v1, const char *k2, const char *v2,
                 const char *text)
{
    if (xopen(w, name, k1, v1, k2, v2) < 0 ||
        (text && xmlTextWriterWriteString(w, BAD_CAST text) < 0))
        return -1;
    return xmlTextWriterEndElement(w);
}

#define XEND() W(xmlTextWriterEndElement(w))

static int domain_xml(struct pkg *p, char **names, const char *fmt,
                      const char *dir, char **out, vf_error **errp)
{
    xmlBufferPtr buf = xmlBufferCreate();
    xmlTextWriterPtr w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
    const char *bus = p->vm.disk_bus;
    bool uefi = !strcmp(p->vm.firmware, "uefi");
    char tmp[64], num[24];
    if (!w) {
        xmlBufferFree(buf);
        error_setg(errp, "out of memory");
        return -1;
    }
    xmlTextWriterSetIndent(w, 1);
    xmlTextWriterSetIndentString(w, BAD_CAST "  ");
    W(xopen(w, "domain", "type", "kvm", NULL, NULL));
    W(xleaf(w, "name", NULL, NULL, NULL, NULL, p->vm.name));
    snprintf(num, sizeof(num), "%u", p->vm.memory_mb);
    W(xleaf(w, "memory", "unit", "MiB", NULL, NULL, num));
    snprintf(num, sizeof(num), "%u", p->vm.vcpus);
    W(xleaf(w, "vcpu", NULL, NULL, NULL, NULL, num));
    if (p->vm.osinfo) {
        /* virt-install's way of recording the OS */
        W(xopen(w, "metadata", NULL, NULL, NULL, NULL));
        W(xmlTextWriterStartElementNS(w, BAD_CAST "libosinfo",
                                      BAD_CAST "libosinfo",
                                      BAD_CAST "http://libosinfo.org/xmlns/libvirt/domain/1.0"));
        snprintf(tmp, sizeof(tmp), "http://%s/%s", p->vm.distro &&
                 !strcmp(p->vm.distro, "debian") ? "debian.org"
                 : p->vm.distro && !strcmp(p->vm.distro, "ubuntu")
                     ? "ubuntu.com" : "libosinfo.org",
                 p->vm.osinfo);
        W(xmlTextWriterStartElementNS(w, BAD_CAST "libosinfo", BAD_CAST "os",
                                      NULL));
        W(xmlTextWriterWriteAttribute(w, BAD_CAST "id", BAD_CAST tmp));
        XEND();
        XEND();
        XEND();
    }
    W(xopen(w, "os", "firmware", uefi ? "efi" : NULL, NULL, NULL));
    W(xleaf(w, "type", "arch", p->vm.arch, "machine", "q35", "hvm"));
    W(xleaf(w, "boot", "dev", "hd", NULL, NULL, NULL));
    XEND();
    W(xopen(w, "features", NULL, NULL, NULL, NULL));
    W(xleaf(w, "acpi", NULL, NULL, NULL, NULL, NULL));
    W(xleaf(w, "apic", NULL, NULL, NULL, NULL, NULL));
    XEND();
    W(xleaf(w, "cpu", "mode", "host-model", NULL, NULL, NULL));
    W(xleaf(w, "clock", "offset", !strcmp(p->vm.os_type, "windows")
                                      ? "localtime" : "utc",
            NULL, NULL, NULL));
    W(xleaf(w, "on_poweroff", NULL, NULL, NULL, NULL, "destroy"));
    W(xleaf(w, "on_reboot", NULL, NULL, NULL, NULL, "restart"));
    W(xleaf(w, "on_crash", NULL, NULL, NULL, NULL, "destroy"));
    W(xopen(w, "devices", NULL, NULL, NULL, NULL));
    if (!strcmp(bus, "scsi")) {
        W(xopen(w, "controller", "type", "scsi", "index", "0"));
        W(xmlTextWriterWriteAttribute(w, BAD_CAST "model",
                                      BAD_CAST "virtio-scsi"));
        XEND();
    }
    for (size_t i = 0; i < p->ndisks; i++) {
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        W(xopen(w, "disk", "type", "file", "device", "disk"));
        W(xleaf(w, "driver", "name", "qemu", "type", fmt, NULL));
        W(xleaf(w, "source", "file", path, NULL, NULL, NULL));
        W(xleaf(w, "target", "dev", disk_dev(bus, i, tmp, sizeof(tmp)),
                "bus", bus, NULL));
        if (i == 0)
            W(xleaf(w, "boot", "order", "1", NULL, NULL, NULL));
        XEND();
    }
    W(xopen(w, "interface", "type", "network", NULL, NULL));
    W(xleaf(w, "source", "network", "default", NULL, NULL, NULL));
    W(xleaf(w, "model", "type", p->vm.nic_model, NULL, NULL, NULL));
    XEND();
    W(xopen(w, "serial", "type", "pty", NULL, NULL));
    W(xleaf(w, "target", "port", "0", NULL, NULL, NULL));
    XEND();
    W(xopen(w, "console", "type", "pty", NULL, NULL));
    W(xleaf(w, "target", "type", "serial", "port", "0", NULL));
    XEND();
    W(xleaf(w, "input", "type", "tablet", "bus", "usb", NULL));
    W(xopen(w, "graphics", "type", "vnc", "autoport", "yes"));
    W(xmlTextWriterWriteAttribute(w, BAD_CAST "listen",
                                  BAD_CAST "127.0.0.1"));
    XEND();
    W(xopen(w, "video", NULL, NULL, NULL, NULL));
    W(xleaf(w, "model", "type", "vga", NULL, NULL, NULL));
    XEND();
    if (p->vm.virtio_storage || p->vm.virtio_net) {
        W(xopen(w, "rng", "model", "virtio", NULL, NULL));
        W(xleaf(w, "backend", "model", "random", NULL, NULL, "/dev/urandom"));
        XEND();
    }
    XEND(); /* devices */
    XEND(); /* domain */
    W(xmlTextWriterEndDocument(w));
    xmlFreeTextWriter(w);
    *out = strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    if (!*out) {
        error_setg(errp, "out of memory");
        return -1;
    }
    return 0;
xmlfail:
    xmlFreeTextWriter(w);
    xmlBufferFree(buf);
    error_setg(errp, "cannot build the libvirt domain XML");
    return -1;
}

/* Single-quote s for sh (a ' becomes '\''). */
static void shq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static int run_sh(struct pkg *p, char **names, const char *fmt, char **out,
                  vf_error **errp)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *bus = p->vm.disk_bus;
    bool uefi = !strcmp(p->vm.firmware, "uefi");
    if (!f) {
        error_setg(errp, "out of memory");
        return -1;
    }
    fprintf(f, "#!/bin/bash\n"
            "# run.sh: boot %s with QEMU as %s.xml describes it (written by\n"
            "# vmferry package).  KVM when it works here, else TCG.\n"
            "# Direct kernel boot when VMFERRY_KERNEL is set (with\n"
            "# VMFERRY_INITRD and VMFERRY_APPEND); VMFERRY_MEMORY overrides\n"
            "# the memory (MiB).  Arguments are passed on to QEMU (e.g.\n"
            "# -snapshot).  The serial console is on this terminal.\n"
            "set -euo pipefail\n"
            "here=$(cd \"$(dirname \"$0\")\" && pwd)\n"
            "# QEMU tries each -accel in order: KVM, then TCG (VMFERRY_ACCEL\n"
            "# picks one, e.g. tcg where /dev/kvm exists but does not work)\n"
            "if [ -n \"${VMFERRY_ACCEL:-}\" ]; then accel=(-accel \"$VMFERRY_ACCEL\")\n"
            "else accel=(-accel kvm -accel tcg); fi\n"
            "args=(-machine q35 \"${accel[@]}\" "
            "-m \"${VMFERRY_MEMORY:-%u}\" -smp %u\n"
            "      -nodefaults -display none -serial mon:stdio)\n",
            p->vm.name, p->vm.name, p->vm.memory_mb, p->vm.vcpus);
    if (uefi)
        fprintf(f, "code=/usr/share/OVMF/OVMF_CODE.fd\n"
                "vars=\"$here/%s_VARS.fd\"\n"
                "[ -e \"$vars\" ] || cp /usr/share/OVMF/OVMF_VARS.fd \"$vars\"\n"
                "args+=(-drive \"if=pflash,format=raw,readonly=on,file=$code\"\n"
                "      -drive \"if=pflash,format=raw,file=$vars\")\n",
                p->vm.name);
    if (!strcmp(bus, "scsi"))
        fputs("args+=(-device virtio-scsi-pci,id=scsi0)\n", f);
    for (size_t i = 0; i < p->ndisks; i++) {
        fprintf(f, "args+=(-drive \"file=$here/");
        /* names are ours (vm name based): quote anyway */
        fputs("\"", f);
        shq(f, names[i]);
        fprintf(f, "\",format=%s,if=none,id=disk%zu\"\n", fmt, i);
        if (!strcmp(bus, "virtio"))
            fprintf(f, "      -device virtio-blk-pci,drive=disk%zu%s)\n", i,
                    i == 0 ? ",bootindex=1" : "");
        else if (!strcmp(bus, "scsi"))
            fprintf(f, "      -device scsi-hd,drive=disk%zu,bus=scsi0.0%s)\n",
                    i, i == 0 ? ",bootindex=1" : "");
        else
            fprintf(f, "      -device ide-hd,drive=disk%zu,bus=ide.%zu%s)\n",
                    i, i, i == 0 ? ",bootindex=1" : "");
    }
    fprintf(f, "args+=(-netdev user,id=net0 -device %s,netdev=net0)\n",
            !strcmp(p->vm.nic_model, "virtio") ? "virtio-net-pci" : "e1000");
    fputs("if [ -n \"${VMFERRY_KERNEL:-}\" ]; then\n"
          "    args+=(-kernel \"$VMFERRY_KERNEL\")\n"
          "    [ -z \"${VMFERRY_INITRD:-}\" ] || args+=(-initrd \"$VMFERRY_INITRD\")\n"
          "    [ -z \"${VMFERRY_APPEND:-}\" ] || args+=(-append \"$VMFERRY_APPEND\")\n"
          "fi\n"
          "exec qemu-system-x86_64 \"${args[@]}\" \"$@\"\n", f);
    if (fclose(f) != 0) {
        free(text);
        error_setg(errp, "out of memory");
        return -1;
    }
    *out = text;
    return 0;
}

int pkg_libvirt(struct pkg *p, vf_error **errp)
{
    const char *fmt = p->ofmt ? p->ofmt : "qcow2";
    if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
        error_setg(errp, "-O %s: the %s target writes qcow2 or raw", fmt,
                   p->target);
        return -1;
    }
    char **names = calloc(p->ndisks, sizeof(*names));
    char *xml = NULL, *sh = NULL, *dir = NULL, *xname = NULL;
    int r = -1;
    if (!names)
        goto oom;
    for (size_t i = 0; i < p->ndisks; i++) {
        char *base = pkg_disk_base(p, i);
        if (!base || asprintf(&names[i], "%s.%s", base,
                              !strcmp(fmt, "raw") ? "img" : fmt) < 0) {
            names[i] = NULL;
            free(base);
            goto oom;
        }
        free(base);
        if (pkg_write_disk(p, i, names[i], fmt, NULL, errp) < 0)
            goto out;
    }
    if (!(dir = final_dir(p)) || asprintf(&xname, "%s.xml", p->vm.name) < 0) {
        xname = NULL;
        goto oom;
    }
    if (domain_xml(p, names, fmt, dir, &xml, errp) < 0 ||
        pkg_write_file(p, xname, "metadata", xml, strlen(xml), 0644,
                       errp) < 0 ||
        run_sh(p, names, fmt, &sh, errp) < 0 ||
        pkg_write_file(p, "run.sh", "script", sh, strlen(sh), 0755,
                       errp) < 0)
        goto out;
    json_object_object_add(p->meta, "domain-xml",
                           json_object_new_string(xname));
    json_object_object_add(p->meta, "machine", json_object_new_string("q35"));
    json_object_object_add(p->meta, "disk-bus",
                           json_object_new_string(p->vm.disk_bus));
    json_object_object_add(p->meta, "nic-model",
                           json_object_new_string(p->vm.nic_model));
    r = 0;
    goto out;
oom:
    error_setg(errp, "out of memory");
out:
    for (size_t i = 0; names && i < p->ndisks; i++)
        free(names[i]);
    free(names);
    free(xml);
    free(sh);
    free(dir);
    free(xname);
    return r;
}
