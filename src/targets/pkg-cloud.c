/*
 * pkg-cloud.c: packages that are disks plus a metadata document:
 * openstack (glance.json: the image properties Nova reads),
 * cloudstack-* (register-template.json: the registerTemplate API call),
 * azure (fixed VHDs in Azure mode), hyperv (VHDX), virtualbox (VDI, or
 * an OVA in VirtualBox's OVF flavour) and sce (a raw image).
 */
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "targets/package.h"

static struct json_object *jstr_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* Is tool (inspection's name) installed in the guest? */
static bool has_tool(struct pkg *p, const char *tool)
{
    struct json_object *oses = pkg_jget(p->report, "operatingsystems");
    struct json_object *os = oses && json_object_array_length(oses)
                                 ? json_object_array_get_idx(oses, 0) : NULL;
    struct json_object *tools = pkg_jget(os, "tools");
    for (size_t i = 0; tools && i < json_object_array_length(tools); i++) {
        struct json_object *n = pkg_jget(json_object_array_get_idx(tools, i),
                                     "name");
        if (n && !strcmp(json_object_get_string(n), tool))
            return true;
    }
    return false;
}

static char *disk_name(struct pkg *p, size_t i, const char *ext,
                       vf_error **errp)
{
    char *base = pkg_disk_base(p, i), *name = NULL;
    if (!base || asprintf(&name, "%s.%s", base, ext) < 0) {
        name = NULL;
        error_setg(errp, "out of memory");
    }
    free(base);
    return name;
}

/* Every disk as fmt (with opts), named <base>.<ext>; names[] may be NULL. */
static int write_disks(struct pkg *p, const char *fmt, const char *opts,
                       const char *ext, char **names, vf_error **errp)
{
    for (size_t i = 0; i < p->ndisks; i++) {
        char *n = disk_name(p, i, ext, errp);
        if (!n || pkg_write_disk(p, i, n, fmt, opts, errp) < 0) {
            free(n);
            return -1;
        }
        if (names)
            names[i] = n;
        else
            free(n);
    }
    return 0;
}

static int write_json(struct pkg *p, const char *name,
                      struct json_object *j, vf_error **errp)
{
    const char *s = json_object_to_json_string_ext(
        j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    char *text = NULL;
    int r = -1;
    if (asprintf(&text, "%s\n", s) < 0)
        error_setg(errp, "out of memory");
    else
        r = pkg_write_file(p, name, "metadata", text, strlen(text), 0644,
                           errp);
    free(text);
    return r;
}

static uint64_t gib_up(uint64_t v)
{
    return (v + (1ull << 30) - 1) >> 30;
}

/* ---- openstack ---- */

int pkg_openstack(struct pkg *p, vf_error **errp)
{
    const char *fmt = p->ofmt ? p->ofmt : "qcow2";
    static const char *const ok[] = { "qcow2", "raw", "vmdk", "vpc", "vhdx",
                                      "vdi", NULL };
    const char *ext = NULL;
    for (size_t i = 0; ok[i]; i++)
        if (!strcmp(fmt, ok[i]))
            ext = !strcmp(fmt, "raw") ? "img" : !strcmp(fmt, "vpc") ? "vhd"
                                                                    : fmt;
    if (!ext) {
        error_setg(errp, "-O %s: Glance takes qcow2, raw, vmdk, vpc, vhdx "
                   "or vdi", fmt);
        return -1;
    }
    /* Glance's disk_format names; VMDKs must be streamOptimized or
     * monolithicSparse, so stream them */
    const char *dfmt = !strcmp(fmt, "vpc") ? "vhd" : fmt;
    const char *opts = !strcmp(fmt, "vmdk") && !p->ostr
                           ? "subformat=streamOptimized" : NULL;
    char **names = calloc(p->ndisks, sizeof(*names));
    struct json_object *g = NULL;
    int r = -1;
    if (!names) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (write_disks(p, fmt, opts, ext, names, errp) < 0)
        goto out;
    g = json_object_new_object();
    struct pkg_vm *vm = &p->vm;
    json_object_object_add(g, "name", json_object_new_string(vm->name));
    json_object_object_add(g, "file", json_object_new_string(names[0]));
    json_object_object_add(g, "disk_format", json_object_new_string(dfmt));
    json_object_object_add(g, "container_format",
                           json_object_new_string("bare"));
    json_object_object_add(g, "min_disk", json_object_new_int64(
                               (int64_t)gib_up(p->disks[0].blk->size)));
    json_object_object_add(g, "min_ram",
                           json_object_new_int((int)vm->memory_mb));
    struct json_object *pr = json_object_new_object();
    json_object_object_add(pr, "hw_disk_bus",
                           json_object_new_string(vm->disk_bus));
    if (!strcmp(vm->disk_bus, "scsi"))
        json_object_object_add(pr, "hw_scsi_model",
                               json_object_new_string("virtio-scsi"));
    json_object_object_add(pr, "hw_vif_model",
                           json_object_new_string(vm->nic_model));
    json_object_object_add(pr, "hw_firmware_type",
                           json_object_new_string(vm->firmware));
    json_object_object_add(pr, "hw_machine_type",
                           json_object_new_string("q35"));
    if (has_tool(p, "qemu-guest-agent"))
        json_object_object_add(pr, "hw_qemu_guest_agent",
                               json_object_new_string("yes"));
    json_object_object_add(pr, "os_type", json_object_new_string(
                               !strcmp(vm->os_type, "windows") ? "windows"
                                                               : "linux"));
    json_object_object_add(pr, "os_distro", jstr_or_null(vm->osinfo));
    json_object_object_add(pr, "os_version", jstr_or_null(vm->version));
    json_object_object_add(pr, "architecture",
                           json_object_new_string(vm->arch));
    json_object_object_add(pr, "hypervisor_type",
                           json_object_new_string("qemu"));
    json_object_object_add(pr, "vm_mode", json_object_new_string("hvm"));
    json_object_object_add(g, "properties", pr);
    if (p->ndisks > 1) {
        struct json_object *more = json_object_new_array();
        for (size_t i = 1; i < p->ndisks; i++) {
            struct json_object *d = json_object_new_object();
            json_object_object_add(d, "file", json_object_new_string(names[i]));
            json_object_object_add(d, "disk_format",
                                   json_object_new_string(dfmt));
            json_object_object_add(d, "container_format",
                                   json_object_new_string("bare"));
            json_object_object_add(d, "min_disk", json_object_new_int64(
                                       (int64_t)gib_up(p->disks[i].blk->size)));
            json_object_array_add(more, d);
        }
        json_object_object_add(g, "data_disks", more);
    }
    if (write_json(p, "glance.json", g, errp) < 0)
        goto out;
    json_object_object_add(p->meta, "glance", json_object_get(g));
    r = 0;
out:
    for (size_t i = 0; i < p->ndisks; i++)
        free(names[i]);
    free(names);
    json_object_put(g);
    return r;
}

/* ---- cloudstack ---- */

/* bzip2 src into dst (both in the package dir); the digest of dst. */
static int bzip2_file(struct pkg *p, const char *src, const char *dst,
                      uint8_t sha[32], uint64_t *size, vf_error **errp)
{
    char *sp = pkg_path(p, src), *dp = pkg_path(p, dst);
    int in = -1, out = -1, r = -1;
    char *ib = malloc(1 << 20), *ob = malloc(1 << 20);
    bz_stream bz = { 0 };
    bool bz_init = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint64_t total = 0;
    if (!sp || !dp || !ib || !ob || !ctx ||
        !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        error_setg(errp, "out of memory");
        goto out;
    }
    in = open(sp, O_RDONLY | O_CLOEXEC);
    out = open(dp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (in < 0 || out < 0) {
        error_setg_errno(errp, errno, "%s", in < 0 ? sp : dp);
        goto out;
    }
    if (BZ2_bzCompressInit(&bz, 9, 0, 0) != BZ_OK) {
        error_setg(errp, "bzip2 init failed");
        goto out;
    }
    bz_init = true;
    bool eof = false;
    for (;;) {
        if (!bz.avail_in && !eof) {
            ssize_t n = read(in, ib, 1 << 20);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                error_setg_errno(errp, errno, "%s: read", sp);
                goto out;
            }
            eof = n == 0;
            bz.next_in = ib;
            bz.avail_in = (unsigned)n;
        }
        bz.next_out = ob;
        bz.avail_out = 1 << 20;
        int rc = BZ2_bzCompress(&bz, eof ? BZ_FINISH : BZ_RUN);
        if (rc != BZ_RUN_OK && rc != BZ_FINISH_OK && rc != BZ_STREAM_END) {
            error_setg(errp, "bzip2 failed (%d)", rc);
            goto out;
        }
        size_t have = (1 << 20) - bz.avail_out;
        for (size_t off = 0; off < have;) {
            ssize_t w = write(out, ob + off, have - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                error_setg_errno(errp, errno, "%s: write", dp);
                goto out;
            }
            off += (size_t)w;
        }
        EVP_DigestUpdate(ctx, ob, have);
        total += have;
        if (rc == BZ_STREAM_END)
            break;
    }
    if (!p->unsafe && fsync(out) < 0) {
        error_setg_errno(errp, errno, "%s: fsync", dp);
        goto out;
    }
    unsigned l;
    EVP_DigestFinal_ex(ctx, sha, &l);
    *size = total;
    r = 0;
out:
    if (bz_init)
        BZ2_bzCompressEnd(&bz);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (r < 0 && dp)
        unlink(dp);
    EVP_MD_CTX_free(ctx);
    free(ib);
    free(ob);
    free(sp);
    free(dp);
    return r;
}

/* CloudStack's guest OS type names (its guest_os table's display
 * names), as a hint: the operator picks the ostypeid. */
static void cs_ostype(struct pkg *p, char *buf, size_t len)
{
    const struct pkg_vm *vm = &p->vm;
    bool b64 = strcmp(vm->arch, "i386") && strcmp(vm->arch, "i686");
    const char *d = vm->distro ? vm->distro : "";
    if (!strcmp(d, "debian") && vm->major > 0)
        snprintf(buf, len, "Debian GNU/Linux %d (%d-bit)", vm->major,
                 b64 ? 64 : 32);
    else if (!strcmp(d, "ubuntu") && vm->major > 0)
        snprintf(buf, len, "Ubuntu %d.%02d (%d-bit)", vm->major,
                 vm->minor < 0 ? 0 : vm->minor, b64 ? 64 : 32);
    else if ((!strcmp(d, "rhel") || !strcmp(d, "centos") ||
              !strcmp(d, "rocky") || !strcmp(d, "almalinux") ||
              !strcmp(d, "oraclelinux")) && vm->major > 0)
        snprintf(buf, len, "%s %d", !strcmp(d, "rhel") ? "Red Hat Enterprise "
                 "Linux" : !strcmp(d, "centos") ? "CentOS"
                 : !strcmp(d, "rocky") ? "Rocky Linux"
                 : !strcmp(d, "almalinux") ? "AlmaLinux" : "Oracle Linux",
                 vm->major);
    else if (!strcmp(d, "sles") && vm->major > 0)
        snprintf(buf, len, "SUSE Linux Enterprise Server %d (%d-bit)",
                 vm->major, b64 ? 64 : 32);
    else if (!strcmp(vm->os_type, "windows"))
        snprintf(buf, len, "Windows Server (64-bit)");
    else
        snprintf(buf, len, "Other Linux (%d-bit)", b64 ? 64 : 32);
}

int pkg_cloudstack(struct pkg *p, vf_error **errp)
{
    const char *hv, *fmt, *cs_fmt, *ext, *opts = NULL;
    if (!strcmp(p->target, "cloudstack-kvm")) {
        hv = "KVM", fmt = "qcow2", cs_fmt = "QCOW2", ext = "qcow2";
    } else if (!strcmp(p->target, "cloudstack-xen")) {
        hv = "XenServer", fmt = "vpc", cs_fmt = "VHD", ext = "vhd";
        opts = "subformat=dynamic";
    } else if (!strcmp(p->target, "cloudstack-vmware")) {
        hv = "VMware", fmt = NULL, cs_fmt = "OVA", ext = "ova";
    } else {
        hv = "Hyper-V", fmt = "vhdx", cs_fmt = "VHDX", ext = "vhdx";
    }
    if (p->ndisks != 1) {
        error_setg(errp, "a CloudStack template is one disk (%zu given)",
                   p->ndisks);
        return -1;
    }
    char *name = NULL, *bzname = NULL;
    struct json_object *t = NULL;
    int r = -1;
    if (asprintf(&name, "%s.%s", p->vm.name, ext) < 0) {
        name = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    if (fmt ? pkg_write_disk(p, 0, name, fmt, opts, errp) < 0
            : pkg_write_ova(p, name, "vmware", errp) < 0)
        goto out;
    /* the file CloudStack downloads, and its digest */
    const char *file = name;
    struct json_object *arts = p->artifacts;
    struct json_object *last = json_object_array_get_idx(
        arts, json_object_array_length(arts) - 1);
    const char *hex = json_object_get_string(pkg_jget(last, "sha256"));
    char bzhex[65];
    if (p->bz2) {
        uint8_t sha[32];
        uint64_t size;
        if (asprintf(&bzname, "%s.bz2", name) < 0) {
            bzname = NULL;
            error_setg(errp, "out of memory");
            goto out;
        }
        if (bzip2_file(p, name, bzname, sha, &size, errp) < 0)
            goto out;
        /* the template is the .bz2: the uncompressed file goes */
        char *up = pkg_path(p, name);
        if (up)
            unlink(up);
        free(up);
        json_object_array_del_idx(arts, json_object_array_length(arts) - 1,
                                  1);
        if (pkg_add_artifact(p, bzname, "disk", "bz2", size, sha, errp) < 0)
            goto out;
        pkg_hex(sha, 32, bzhex);
        hex = bzhex;
        file = bzname;
    }
    char ost[96], chk[80];
    cs_ostype(p, ost, sizeof(ost));
    snprintf(chk, sizeof(chk), "{SHA-256}%s", hex);
    bool ci = has_tool(p, "cloud-init");
    t = json_object_new_object();
    json_object_object_add(t, "command", json_object_new_string(
                               "registerTemplate"));
    json_object_object_add(t, "name", json_object_new_string(p->vm.name));
    json_object_object_add(t, "displaytext", json_object_new_string(
                               p->vm.product ? p->vm.product : p->vm.name));
    json_object_object_add(t, "format", json_object_new_string(cs_fmt));
    json_object_object_add(t, "hypervisor", json_object_new_string(hv));
    json_object_object_add(t, "ostype", json_object_new_string(ost));
    json_object_object_add(t, "ostypeid", json_object_new_string(
                               "<the id of that ostype: listOsTypes>"));
    json_object_object_add(t, "passwordenabled", json_object_new_boolean(ci));
    json_object_object_add(t, "sshkeyenabled", json_object_new_boolean(ci));
    json_object_object_add(t, "isdynamicallyscalable", json_object_new_boolean(
                               !strcmp(hv, "XenServer")
                                   ? has_tool(p, "xe-guest-utilities")
                               : !strcmp(hv, "VMware")
                                   ? (has_tool(p, "open-vm-tools") ||
                                      has_tool(p, "vmware-tools"))
                                   : false));
    json_object_object_add(t, "requireshvm", json_object_new_boolean(true));
    json_object_object_add(t, "bits", json_object_new_int(
                               strcmp(p->vm.arch, "i386") ? 64 : 32));
    json_object_object_add(t, "checksum", json_object_new_string(chk));
    json_object_object_add(t, "file", json_object_new_string(file));
    json_object_object_add(t, "url", json_object_new_string(
                               "<http(s) URL where the file is served>"));
    json_object_object_add(t, "zoneid", json_object_new_string("-1"));
    if (!strcmp(hv, "VMware"))
        json_object_object_add(t, "deployasis", json_object_new_boolean(false));
    if (write_json(p, "register-template.json", t, errp) < 0)
        goto out;
    json_object_object_add(p->meta, "register-template", json_object_get(t));
    r = 0;
out:
    json_object_put(t);
    free(name);
    free(bzname);
    return r;
}

/* ---- azure, hyperv, virtualbox, sce ---- */

int pkg_azure(struct pkg *p, vf_error **errp)
{
    if (write_disks(p, "vpc", "subformat=fixed,azure=on", "vhd", NULL,
                    errp) < 0)
        return -1;
    json_object_object_add(p->meta, "note", json_object_new_string(
                               "upload as a page blob (azcopy, az storage "
                               "blob upload --type page)"));
    return 0;
}

int pkg_hyperv(struct pkg *p, vf_error **errp)
{
    if (write_disks(p, "vhdx", p->ostr && p->ofmt && !strcmp(p->ofmt, "vhdx")
                                   ? NULL : "subformat=dynamic",
                    "vhdx", NULL, errp) < 0)
        return -1;
    return 0;
}

int pkg_virtualbox(struct pkg *p, vf_error **errp)
{
    if (p->ova) {
        char *name = NULL;
        if (asprintf(&name, "%s.ova", p->vm.name) < 0) {
            error_setg(errp, "out of memory");
            return -1;
        }
        int r = pkg_write_ova(p, name, "virtualbox", errp);
        free(name);
        return r;
    }
    if (write_disks(p, "vdi", NULL, "vdi", NULL, errp) < 0)
        return -1;
    return 0;
}

int pkg_sce(struct pkg *p, vf_error **errp)
{
    if (p->ndisks != 1) {
        error_setg(errp, "an SCE image is one disk (%zu given)", p->ndisks);
        return -1;
    }
    char *name = disk_name(p, 0, "img", errp);
    if (!name || pkg_write_disk(p, 0, name, "raw", NULL, errp) < 0) {
        free(name);
        return -1;
    }
    json_object_object_add(p->meta, "image", json_object_new_string(name));
    json_object_object_add(p->meta, "image-size", json_object_new_int64(
                               (int64_t)p->disks[0].blk->size));
    free(name);
    return 0;
}
