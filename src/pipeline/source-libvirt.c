/*
 * source-libvirt.c: a libvirt domain XML as migrate's source.
 *
 * Spec: libvirt's "Domain XML format" page (formatdomain): name; memory
 * with a unit attribute (KiB when absent; currentMemory and maxMemory are
 * not the guest's size and are ignored); vcpu; os firmware='efi' or a
 * loader of type 'pflash' for UEFI; devices/disk of type 'file' with
 * source/@file and driver/@type; devices/interface.
 *
 * Disk order: disks with a <boot order='N'/> first, by N, then the
 * others in document order.  CD-ROMs and floppies are skipped; disk
 * types other than 'file' (block, network, volume, dir) are refused.
 * Source paths are host paths as libvirt takes them: absolute ones as
 * they are, relative ones from the XML's directory.
 */
#include "pipeline/source-int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A domain XML of a few KiB; 16 MiB is far beyond any real one. */
#define LV_MAX (16u << 20)

/* libvirt's memory units (formatdomain "memory"), as bytes per unit. */
static bool lv_unit(const char *u, uint64_t *mul)
{
    static const struct { const char *name; uint64_t mul; } units[] = {
        { "b", 1 }, { "bytes", 1 },
        { "KB", 1000 }, { "k", 1024 }, { "KiB", 1024 },
        { "MB", 1000000 }, { "M", 1u << 20 }, { "MiB", 1u << 20 },
        { "GB", 1000000000 }, { "G", 1u << 30 }, { "GiB", 1u << 30 },
        { "TB", UINT64_C(1000000000000) }, { "T", UINT64_C(1) << 40 },
        { "TiB", UINT64_C(1) << 40 },
        { "PB", UINT64_C(1000000000000000) }, { "P", UINT64_C(1) << 50 },
        { "PiB", UINT64_C(1) << 50 },
        { "EB", UINT64_C(1000000000000000000) }, { "E", UINT64_C(1) << 60 },
        { "EiB", UINT64_C(1) << 60 },
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcmp(u, units[i].name)) {
            *mul = units[i].mul;
            return true;
        }
    }
    return false;
}

static int lv_memory(struct src_vm *vm, xmlNode *dom, vf_error **errp)
{
    xmlNode *m = src_xml_child(dom, "memory");
    if (!m)
        return 0;
    char *v = src_xml_text(m), *u = src_xml_attr(m, "unit");
    uint64_t q, mul = 1024, mb = 0;
    int ret = -1;
    if (u && !lv_unit(u, &mul)) {
        error_setg(errp, "memory unit '%s' not understood", u);
        goto out;
    }
    if (!v || !src_parse_u64(v, UINT64_MAX, &q)) {
        error_setg(errp, "memory '%s' is not a number", v ? v : "");
        goto out;
    }
    if (!mul || q <= UINT64_MAX / mul) {
        uint64_t bytes = q * mul;    /* whole MiB, rounded up */
        mb = (bytes >> 20) + !!(bytes & ((1u << 20) - 1));
    }
    if (!mb || mb > SRC_MAX_MEMORY_MB) {
        error_setg(errp, "memory of %s %s out of range (1 MiB to 64 TiB)",
                   v, u ? u : "KiB");
        goto out;
    }
    vm->memory_mb = (unsigned)mb;
    ret = 0;
out:
    free(v);
    free(u);
    return ret;
}

static int lv_vcpus(struct src_vm *vm, xmlNode *dom, vf_error **errp)
{
    xmlNode *c = src_xml_child(dom, "vcpu");
    if (!c)
        return 0;
    char *v = src_xml_text(c), *cur = src_xml_attr(c, "current");
    uint64_t n;
    int ret = 0;
    if (!v || !src_parse_u64(v, SRC_MAX_VCPUS, &n) || !n) {
        error_setg(errp, "vcpu '%s' is not a count from 1 to %d",
                   v ? v : "", SRC_MAX_VCPUS);
        ret = -1;
    } else {
        vm->vcpus = (unsigned)n;
        if (cur)
            json_object_object_add(vm->facts, "vcpus-current",
                                   json_object_new_string(cur));
    }
    free(v);
    free(cur);
    return ret;
}

static void lv_os(struct src_vm *vm, xmlNode *dom)
{
    xmlNode *os = src_xml_child(dom, "os");
    if (!os)
        return;
    char *fw = src_xml_attr(os, "firmware");
    if (fw && !strcmp(fw, "efi"))
        vm->firmware = "uefi";
    else if (fw && !strcmp(fw, "bios"))
        vm->firmware = "bios";
    xmlNode *loader = src_xml_child(os, "loader");
    char *lt = loader ? src_xml_attr(loader, "type") : NULL;
    if (lt && !strcmp(lt, "pflash"))
        vm->firmware = "uefi";
    char *sec = loader ? src_xml_attr(loader, "secure") : NULL;
    if (sec)
        json_object_object_add(vm->facts, "secure-boot",
                               json_object_new_boolean(!strcmp(sec, "yes")));
    xmlNode *type = src_xml_child(os, "type");
    if (type) {
        char *arch = src_xml_attr(type, "arch");
        char *mach = src_xml_attr(type, "machine");
        char *t = src_xml_text(type);
        json_object_object_add(vm->facts, "arch", src_json_str(arch));
        json_object_object_add(vm->facts, "machine", src_json_str(mach));
        json_object_object_add(vm->facts, "os-type", src_json_str(t));
        free(arch);
        free(mach);
        free(t);
    }
    free(fw);
    free(lt);
    free(sec);
}

static void lv_fact_attr(struct json_object *j, const char *key, xmlNode *n,
                         const char *attr)
{
    char *v = n ? src_xml_attr(n, attr) : NULL;
    if (v)
        json_object_object_add(j, key, json_object_new_string(v));
    free(v);
}

static void lv_nics(struct src_vm *vm, xmlNode *devs)
{
    struct json_object *nics = json_object_new_array();
    json_object_object_add(vm->facts, "nics", nics);
    for (xmlNode *c = devs ? devs->children : NULL; c; c = c->next) {
        if (!src_xml_is(c, "interface"))
            continue;
        struct json_object *j = json_object_new_object();
        lv_fact_attr(j, "type", c, "type");
        lv_fact_attr(j, "model", src_xml_child(c, "model"), "type");
        lv_fact_attr(j, "mac", src_xml_child(c, "mac"), "address");
        xmlNode *s = src_xml_child(c, "source");
        lv_fact_attr(j, "network", s, "network");
        lv_fact_attr(j, "bridge", s, "bridge");
        lv_fact_attr(j, "dev", s, "dev");
        json_object_array_add(nics, j);
    }
}

struct lv_disk {
    xmlNode *node;
    size_t pos;
    uint64_t boot;     /* boot order, UINT64_MAX when none */
};

static int lv_disk_cmp(const void *a, const void *b)
{
    const struct lv_disk *x = a, *y = b;
    if (x->boot != y->boot)
        return x->boot < y->boot ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int lv_open_disk(struct src_vm *vm, xmlNode *d, const char *dir,
                        const struct blk_open_opts *oo,
                        struct json_object *jdisks, vf_error **errp)
{
    char *type = src_xml_attr(d, "type");
    xmlNode *tgt = src_xml_child(d, "target");
    char *dev = tgt ? src_xml_attr(tgt, "dev") : NULL;
    xmlNode *src = src_xml_child(d, "source");
    char *file = src ? src_xml_attr(src, "file") : NULL;
    xmlNode *drv = src_xml_child(d, "driver");
    char *dtype = drv ? src_xml_attr(drv, "type") : NULL;
    char *path = NULL;
    const char *what = dev ? dev : "?";
    int ret = -1;
    if (type && strcmp(type, "file")) {
        error_setg(errp, "disk %s of type '%s' is not supported (only "
                   "type='file')", what, type);
        goto out;
    }
    if (!file || !*file) {
        error_setg(errp, "disk %s has no source file", what);
        goto out;
    }
    struct blk_open_opts o = { 0 };
    if (oo)
        o = *oo;
    if (dtype) {
        const struct fmt_driver *fd = fmt_find(dtype);
        if (!fd) {
            error_setg(errp, "disk %s driver type '%s' is not a format "
                       "vmferry reads", what, dtype);
            goto out;
        }
        o.format = fd->name;
    }
    if (file[0] == '/')
        path = strdup(file);
    else if (asprintf(&path, "%s/%s", dir, file) < 0)
        path = NULL;
    if (!path) {
        error_setg(errp, "out of memory");
        goto out;
    }
    struct blk *b = src_open_named_disk(path, &o, errp);
    if (!b) {
        error_prepend(errp, "disk %s: ", what);
        goto out;
    }
    struct json_object *j = json_object_new_object();
    json_object_object_add(j, "source", json_object_new_string(file));
    json_object_object_add(j, "target", src_json_str(dev));
    lv_fact_attr(j, "bus", tgt, "bus");
    json_object_object_add(j, "driver-type", src_json_str(dtype));
    lv_fact_attr(j, "boot-order", src_xml_child(d, "boot"), "order");
    json_object_array_add(jdisks, j);
    ret = src_add_disk(vm, b, path, errp);
out:
    free(type);
    free(dev);
    free(file);
    free(dtype);
    free(path);
    return ret;
}

static int lv_disks(struct src_vm *vm, xmlNode *devs, const char *dir,
                    const struct blk_open_opts *oo, vf_error **errp)
{
    struct lv_disk *disks = NULL;
    size_t n = 0, cap = 0;
    int ret = -1;
    struct json_object *jdisks = json_object_new_array();
    json_object_object_add(vm->facts, "disks", jdisks);
    for (xmlNode *c = devs ? devs->children : NULL; c; c = c->next) {
        if (!src_xml_is(c, "disk"))
            continue;
        char *device = src_xml_attr(c, "device");
        bool is_disk = !device || !strcmp(device, "disk");
        bool is_lun = device && !strcmp(device, "lun");
        free(device);
        if (is_lun) {
            error_setg(errp, "a disk of device='lun' (SCSI passthrough) is "
                       "not supported");
            goto out;
        }
        if (!is_disk)
            continue;       /* cdrom, floppy */
        if (n == SRC_MAX_DISKS) {
            error_setg(errp, "more than %d disks", SRC_MAX_DISKS);
            goto out;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct lv_disk *nd = realloc(disks, nc * sizeof(*nd));
            if (!nd) {
                error_setg(errp, "out of memory");
                goto out;
            }
            disks = nd;
            cap = nc;
        }
        struct lv_disk *d = &disks[n];
        d->node = c;
        d->pos = n++;
        d->boot = UINT64_MAX;
        xmlNode *boot = src_xml_child(c, "boot");
        char *order = boot ? src_xml_attr(boot, "order") : NULL;
        uint64_t v;
        if (order && src_parse_u64(order, UINT32_MAX, &v))
            d->boot = v;
        free(order);
    }
    if (n)
        qsort(disks, n, sizeof(*disks), lv_disk_cmp);
    for (size_t i = 0; i < n; i++)
        if (lv_open_disk(vm, disks[i].node, dir, oo, jdisks, errp) < 0)
            goto out;
    ret = 0;
out:
    free(disks);
    return ret;
}

int src_libvirt_open(const char *path, const struct blk_open_opts *oo,
                     struct src_vm *vm, vf_error **errp)
{
    char *text = NULL, *dir = NULL;
    struct io *io = io_file_open(path, true, errp);
    if (!io)
        return -1;
    int64_t sz = io_size(io, errp);
    if (sz < 0 || src_read_bytes(io, 0, (uint64_t)sz, LV_MAX, "the file",
                                 &text, errp) < 0) {
        io_close(io);
        return -1;
    }
    io_close(io);
    xmlDoc *doc = src_xml_read(text, (size_t)sz, "the domain XML", errp);
    free(text);
    if (!doc)
        return -1;
    int ret = -1;
    xmlNode *dom = xmlDocGetRootElement(doc);
    if (!src_xml_is(dom, "domain")) {
        error_setg(errp, "root element <%s> is not a libvirt <domain>",
                   (const char *)dom->name);
        goto out;
    }
    char *dtype = src_xml_attr(dom, "type");
    json_object_object_add(vm->facts, "domain-type", src_json_str(dtype));
    free(dtype);
    char *uuid = src_xml_child_text(dom, "uuid");
    json_object_object_add(vm->facts, "uuid", src_json_str(uuid));
    free(uuid);
    char *name = src_xml_child_text(dom, "name");
    if (name && *name)
        vm->name = name;
    else
        free(name);
    if (lv_memory(vm, dom, errp) < 0 || lv_vcpus(vm, dom, errp) < 0)
        goto out;
    lv_os(vm, dom);
    xmlNode *devs = src_xml_child(dom, "devices");
    lv_nics(vm, devs);
    dir = src_dir_of(path);
    if (!dir) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (lv_disks(vm, devs, dir, oo, errp) < 0)
        goto out;
    ret = 0;
out:
    free(dir);
    xmlFreeDoc(doc);
    return ret;
}
