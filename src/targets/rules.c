/*
 * rules.c: the preflight rule engine and the checks the targets share.
 * Every check reads the inspection report (docs/inspect-json.md) and
 * writes the evidence it found into ev, whatever the result.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/preflight.h"

extern const struct pf_target pf_target_aws, pf_target_azure, pf_target_gce,
    pf_target_openstack, pf_target_cloudstack_kvm, pf_target_cloudstack_xen,
    pf_target_cloudstack_vmware, pf_target_cloudstack_hyperv,
    pf_target_vmware, pf_target_kvm, pf_target_sce;

const struct pf_target *const pf_targets[] = {
    &pf_target_aws, &pf_target_azure, &pf_target_gce, &pf_target_openstack,
    &pf_target_cloudstack_kvm, &pf_target_cloudstack_xen,
    &pf_target_cloudstack_vmware, &pf_target_cloudstack_hyperv,
    &pf_target_vmware, &pf_target_kvm, &pf_target_sce, NULL,
};

const struct pf_target *pf_find(const char *name)
{
    for (int i = 0; pf_targets[i]; i++)
        if (!strcmp(pf_targets[i]->name, name))
            return pf_targets[i];
    return NULL;
}

/* Evidence is cut at its buffer's end: drop a UTF-8 sequence cut short. */
static void utf8_trim(char *s)
{
    size_t l = strlen(s), i = l;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && l - i < 3)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xc0) {
        unsigned char c = (unsigned char)s[i - 1];
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (l - (i - 1) < need)
            s[i - 1] = 0;
    }
}

struct json_object *pf_run(const struct pf_target *t, const struct pf_ctx *c,
                           bool *ok)
{
    struct json_object *o = json_object_new_object();
    struct json_object *arr = json_object_new_array();
    int errors = 0, warnings = 0;
    for (size_t i = 0; i < t->nrules; i++) {
        const struct pf_rule *r = &t->rules[i];
        char ev[512] = "";
        enum pf_result res = r->check(c, r, ev, sizeof(ev));
        utf8_trim(ev);
        struct json_object *rj = json_object_new_object();
        json_object_object_add(rj, "id", json_object_new_string(r->id));
        json_object_object_add(rj, "statement",
                               json_object_new_string(r->statement));
        json_object_object_add(rj, "severity", json_object_new_string(
                                   r->severity == PF_ERROR ? "error"
                                                           : "warning"));
        json_object_object_add(rj, "result", json_object_new_string(
                                   res == PF_PASS ? "pass"
                                   : res == PF_FAIL ? "fail" : "n/a"));
        json_object_object_add(rj, "evidence", json_object_new_string(ev));
        json_object_object_add(rj, "fix", r->fix && res == PF_FAIL
                                              ? json_object_new_string(r->fix)
                                              : NULL);
        json_object_array_add(arr, rj);
        if (res == PF_FAIL) {
            if (r->severity == PF_ERROR)
                errors++;
            else
                warnings++;
        }
    }
    *ok = errors == 0;
    json_object_object_add(o, "target", json_object_new_string(t->name));
    json_object_object_add(o, "verdict",
                           json_object_new_string(*ok ? "pass" : "fail"));
    json_object_object_add(o, "errors", json_object_new_int(errors));
    json_object_object_add(o, "warnings", json_object_new_int(warnings));
    json_object_object_add(o, "rules", arr);
    return o;
}

/* ---- report access ---- */

static struct json_object *get(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

static const char *gstr(struct json_object *o, const char *k)
{
    struct json_object *v = get(o, k);
    return v ? json_object_get_string(v) : NULL;
}

static bool gbool(struct json_object *o, const char *k)
{
    struct json_object *v = get(o, k);
    return v && json_object_get_boolean(v);
}

static size_t alen(struct json_object *a)
{
    return a && json_object_is_type(a, json_type_array)
               ? json_object_array_length(a) : 0;
}

static struct json_object *aidx(struct json_object *a, size_t i)
{
    return json_object_array_get_idx(a, i);
}

/* Append printf text to ev. */
static void evf(char *ev, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void evf(char *ev, size_t len, const char *fmt, ...)
{
    size_t l = strlen(ev);
    if (l + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev + l, len - l, fmt, ap);
    va_end(ap);
}

/* Is word in the comma list? */
static bool in_list(const char *list, const char *word)
{
    size_t wl = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && !strncmp(p, word, l))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* The disk's format, refined with its VMDK create type or VHD subformat
 * ("vmdk:streamOptimized", "vpc:fixed") when the driver reports it. */
static void disk_format(struct json_object *d, char *out, size_t len)
{
    const char *f = gstr(d, "format");
    struct json_object *fs = get(d, "format-specific");
    const char *sub = gstr(fs, "create-type");
    if (!sub)
        sub = gstr(fs, "subformat");
    if (sub)
        snprintf(out, len, "%s:%s", f ? f : "?", sub);
    else
        snprintf(out, len, "%s", f ? f : "?");
}

static struct json_object *disks(const struct pf_ctx *c)
{
    return get(c->report, "disks");
}

static struct json_object *oses(const struct pf_ctx *c)
{
    return get(c->report, "operatingsystems");
}

enum pf_result pf_chk_format(const struct pf_ctx *c, const struct pf_rule *r,
                             char *ev, size_t len)
{
    enum pf_result res = PF_PASS;
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        char f[96];
        disk_format(aidx(ds, i), f, sizeof(f));
        const char *base = gstr(aidx(ds, i), "format");
        /* "vmdk" in the list takes any VMDK; "vmdk:X" only create type X */
        bool okf = in_list(r->arg, f) || (base && in_list(r->arg, base));
        evf(ev, len, "%sdisk %zu: %s", i ? "; " : "", i + 1, f);
        if (!okf)
            res = PF_FAIL;
    }
    return res;
}

enum pf_result pf_chk_max_size(const struct pf_ctx *c, const struct pf_rule *r,
                               char *ev, size_t len)
{
    enum pf_result res = PF_PASS;
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        uint64_t v = (uint64_t)json_object_get_int64(get(aidx(ds, i),
                                                         "virtual-size"));
        evf(ev, len, "%sdisk %zu: %" PRIu64 " bytes", i ? "; " : "", i + 1, v);
        if (v > r->num)
            res = PF_FAIL;
    }
    evf(ev, len, " (limit %" PRIu64 ")", r->num);
    return res;
}

enum pf_result pf_chk_size_multiple(const struct pf_ctx *c,
                                    const struct pf_rule *r, char *ev,
                                    size_t len)
{
    enum pf_result res = PF_PASS;
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        uint64_t v = (uint64_t)json_object_get_int64(get(aidx(ds, i),
                                                         "virtual-size"));
        evf(ev, len, "%sdisk %zu: %" PRIu64 " bytes%s", i ? "; " : "", i + 1,
            v, v % r->num ? " (not a multiple)" : "");
        if (v % r->num)
            res = PF_FAIL;
    }
    return res;
}

enum pf_result pf_chk_max_disks(const struct pf_ctx *c,
                                const struct pf_rule *r, char *ev, size_t len)
{
    size_t n = alen(disks(c));
    evf(ev, len, "%zu disks (limit %" PRIu64 ")", n, r->num);
    return n <= r->num ? PF_PASS : PF_FAIL;
}

enum pf_result pf_chk_64bit(const struct pf_ctx *c, const struct pf_rule *r,
                            char *ev, size_t len)
{
    struct json_object *os = oses(c);
    if (!alen(os)) {
        evf(ev, len, "no operating system found");
        return PF_FAIL;
    }
    enum pf_result res = PF_PASS;
    for (size_t i = 0; i < alen(os); i++) {
        const char *a = gstr(aidx(os, i), "arch");
        evf(ev, len, "%s%s %s on %s", i ? "; " : "",
            gstr(aidx(os, i), "type"), a ? a : "?", gstr(aidx(os, i), "root"));
        if (!a || (strcmp(a, "x86_64") && strcmp(a, "aarch64")))
            res = PF_FAIL;
    }
    return res;
}

enum pf_result pf_chk_not_windows(const struct pf_ctx *c,
                                  const struct pf_rule *r, char *ev,
                                  size_t len)
{
    struct json_object *os = oses(c), *fs = get(c->report, "filesystems");
    for (size_t i = 0; i < alen(os); i++) {
        const char *t = gstr(aidx(os, i), "type");
        if (t && !strcmp(t, "windows")) {
            evf(ev, len, "Windows on %s", gstr(aidx(os, i), "root"));
            return PF_FAIL;
        }
    }
    if (!alen(os)) {
        for (size_t i = 0; i < alen(fs); i++) {
            const char *t = gstr(aidx(fs, i), "type");
            if (t && !strcmp(t, "ntfs")) {
                evf(ev, len, "NTFS on %s and no Linux root: Windows guest",
                    gstr(aidx(fs, i), "device"));
                return PF_FAIL;
            }
        }
    }
    evf(ev, len, "%s", alen(os) ? gstr(aidx(os, 0), "type")
                                : "no Windows filesystem");
    return PF_PASS;
}

/* A UEFI guest boots on a new machine (whose NVRAM has no boot entry for
 * it) only from the fallback loader, \EFI\BOOT\BOOT<arch>.EFI on an ESP:
 * inspection says whether one is there (uefi-fallback-loader). */
static enum pf_result boot_uefi_loader(const struct pf_ctx *c,
                                       struct json_object *fw, char *ev,
                                       size_t len)
{
    struct json_object *ldr;
    if (!json_object_object_get_ex(fw, "uefi-fallback-loader", &ldr)) {
        /* a report from before the ESP was read */
        evf(ev, len, "; the report does not say whether the ESP holds "
            "the EFI/BOOT fallback loader (inspect again to check)");
        return PF_PASS;
    }
    if (ldr) {
        evf(ev, len, "; fallback loader %s on the ESP",
            json_object_get_string(ldr));
        return PF_PASS;
    }
    const char *arch = alen(oses(c)) ? gstr(aidx(oses(c), 0), "arch")
                                     : NULL;
    struct json_object *esps = get(fw, "esp"), *warns = get(c->report,
                                                            "warnings");
    evf(ev, len, "; ESP");
    for (size_t i = 0; i < alen(esps); i++)
        evf(ev, len, "%s %s", i ? "," : "",
            json_object_get_string(aidx(esps, i)));
    evf(ev, len, " has no \\EFI\\BOOT\\%s",
        arch && !strcmp(arch, "aarch64") ? "BOOTAA64.EFI" : "BOOTX64.EFI");
    /* an ESP that could not be read: say why (inspection's warning) */
    for (size_t i = 0; i < alen(warns); i++) {
        const char *w = json_object_get_string(aidx(warns, i));
        if (w && !strncmp(w, "ESP ", 4)) {
            evf(ev, len, " (%s)", w);
            break;
        }
    }
    return PF_FAIL;
}

enum pf_result pf_chk_boot_mode(const struct pf_ctx *c,
                                const struct pf_rule *r, char *ev, size_t len)
{
    struct json_object *fw = get(c->report, "firmware");
    const char *t = gstr(fw, "type");
    struct json_object *d0 = aidx(disks(c), 0);
    const char *pt = gstr(get(d0, "partition-table"), "type");
    evf(ev, len, "firmware %s, boot disk table %s", t ? t : "?",
        pt ? pt : "?");
    if (t && !strcmp(t, "uefi"))
        return boot_uefi_loader(c, fw, ev, len);
    return pt && !strcmp(pt, "mbr") ? PF_PASS : PF_FAIL;
}

/* Which disk holds device name (an LV: the disk of its first PV). */
static int dev_disk(const struct pf_ctx *c, const char *dev)
{
    struct json_object *ds = disks(c);
    for (size_t i = 0; dev && i < alen(ds); i++) {
        const char *dn = gstr(aidx(ds, i), "device");
        if (dn && !strncmp(dev, dn, strlen(dn)) &&
            (dev[strlen(dn)] == 0 ||
             (dev[strlen(dn)] >= '0' && dev[strlen(dn)] <= '9')))
            return (int)i;
    }
    struct json_object *lvm = get(get(c->report, "volumes"), "lvm");
    for (size_t i = 0; dev && i < alen(lvm); i++) {
        struct json_object *vg = aidx(lvm, i), *lvs = get(vg, "lvs");
        for (size_t k = 0; k < alen(lvs); k++) {
            const char *ld = gstr(aidx(lvs, k), "device");
            if (ld && !strcmp(ld, dev)) {
                const char *pd = gstr(aidx(get(vg, "pvs"), 0), "device");
                return pd && strcmp(pd, dev) ? dev_disk(c, pd) : -1;
            }
        }
    }
    return -1;
}

enum pf_result pf_chk_root_on_boot_disk(const struct pf_ctx *c,
                                        const struct pf_rule *r, char *ev,
                                        size_t len)
{
    struct json_object *os = oses(c);
    if (!alen(os)) {
        evf(ev, len, "no operating system found");
        return PF_FAIL;
    }
    const char *root = gstr(aidx(os, 0), "root");
    int d = dev_disk(c, root);
    evf(ev, len, "root %s on disk %d", root ? root : "?", d + 1);
    return d == 0 ? PF_PASS : PF_FAIL;
}

enum pf_result pf_chk_fs_types(const struct pf_ctx *c, const struct pf_rule *r,
                               char *ev, size_t len)
{
    enum pf_result res = PF_PASS;
    struct json_object *os = oses(c);
    if (!alen(os)) {
        evf(ev, len, "no operating system found");
        return PF_FAIL;
    }
    struct json_object *fs = get(c->report, "filesystems");
    struct json_object *mps = get(aidx(os, 0), "mountpoints");
    int n = 0;
    for (size_t i = 0; i < alen(mps); i++) {
        const char *mp = gstr(aidx(mps, i), "mountpoint");
        const char *dev = gstr(aidx(mps, i), "device");
        if (!mp || mp[0] != '/' || !dev)
            continue;
        const char *t = gstr(aidx(mps, i), "fstype");
        for (size_t k = 0; k < alen(fs); k++)
            if (!strcmp(gstr(aidx(fs, k), "device"), dev))
                t = gstr(aidx(fs, k), "type");
        evf(ev, len, "%s%s %s", n++ ? ", " : "", mp, t ? t : "?");
        if (!t || !in_list(r->arg, t))
            res = PF_FAIL;
    }
    return res;
}

enum pf_result pf_chk_no_sesparse(const struct pf_ctx *c,
                                  const struct pf_rule *r, char *ev,
                                  size_t len)
{
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        char f[96];
        disk_format(aidx(ds, i), f, sizeof(f));
        if (!strcmp(f, "vmdk:seSparse")) {
            evf(ev, len, "disk %zu is a seSparse VMDK", i + 1);
            return PF_FAIL;
        }
    }
    evf(ev, len, "no seSparse VMDK");
    return PF_PASS;
}

/* Is driver usable (at boot, or as a module for "net:") in some kernel of
 * the first OS?  *kver gets the kernel that has it. */
static bool driver_ok(const struct pf_ctx *c, const char *drv, bool net,
                      const char **kver)
{
    struct json_object *ks = get(aidx(oses(c), 0), "kernels");
    for (size_t i = 0; i < alen(ks); i++) {
        struct json_object *d = get(get(aidx(ks, i), "drivers"), drv);
        if (net ? gbool(d, "available") : gbool(d, "at-boot")) {
            *kver = gstr(aidx(ks, i), "version");
            return true;
        }
    }
    return false;
}

enum pf_result pf_chk_drivers(const struct pf_ctx *c, const struct pf_rule *r,
                              char *ev, size_t len)
{
    if (!alen(oses(c))) {
        evf(ev, len, "no operating system found");
        return PF_FAIL;
    }
    if (!alen(get(aidx(oses(c), 0), "kernels"))) {
        evf(ev, len, "no kernel found in /boot");
        return PF_FAIL;
    }
    enum pf_result res = PF_PASS;
    int n = 0;
    for (const char *p = r->arg; p && *p;) {
        const char *e = strchr(p, ',');
        char item[64];
        snprintf(item, sizeof(item), "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        bool net = !strncmp(item, "net:", 4);
        const char *name = net ? item + 4 : item;
        /* "a|b": either will do */
        char alt[64];
        snprintf(alt, sizeof(alt), "%s", name);
        bool ok = false;
        const char *kv = NULL;
        for (char *s = alt, *bar; s && !ok; s = bar) {
            bar = strchr(s, '|');
            if (bar)
                *bar++ = 0;
            ok = driver_ok(c, s, net, &kv);
        }
        evf(ev, len, "%s%s %s", n++ ? "; " : "", name,
            ok ? (net ? "available" : "usable at boot")
               : (net ? "missing" : "not in the initramfs nor built in"));
        if (!ok)
            res = PF_FAIL;
        p = e ? e + 1 : NULL;
    }
    return res;
}

enum pf_result pf_chk_drivers_if_virtio(const struct pf_ctx *c,
                                        const struct pf_rule *r, char *ev,
                                        size_t len)
{
    const char *bus = c->disk_bus ? c->disk_bus : "virtio";
    if (strcmp(bus, "virtio")) {
        evf(ev, len, "disk bus %s", bus);
        return PF_NA;
    }
    evf(ev, len, "disk bus virtio: ");
    return pf_chk_drivers(c, r, ev, len);
}

enum pf_result pf_chk_bootable_table(const struct pf_ctx *c,
                                     const struct pf_rule *r, char *ev,
                                     size_t len)
{
    struct json_object *t = get(aidx(disks(c), 0), "partition-table");
    const char *tt = gstr(t, "type");
    struct json_object *ps = get(t, "partitions");
    evf(ev, len, "boot disk table %s", tt ? tt : "?");
    if (!tt || (strcmp(tt, "mbr") && strcmp(tt, "gpt")))
        return PF_FAIL;
    for (size_t i = 0; i < alen(ps); i++) {
        struct json_object *p = aidx(ps, i);
        const char *tn = gstr(p, "type-name");
        bool legacy = false;
        struct json_object *fl = get(p, "flags");
        for (size_t k = 0; k < alen(fl); k++)
            if (!strcmp(json_object_get_string(aidx(fl, k)),
                        "legacy-bios-bootable"))
                legacy = true;
        if (gbool(p, "bootable") || legacy ||
            (tn && (!strcmp(tn, "EFI System") || !strcmp(tn, "BIOS boot")))) {
            evf(ev, len, ", bootable %s (%s)", gstr(p, "device"),
                tn ? tn : "");
            return PF_PASS;
        }
    }
    evf(ev, len, ", no bootable partition");
    return PF_FAIL;
}

enum pf_result pf_chk_no_data_file(const struct pf_ctx *c,
                                   const struct pf_rule *r, char *ev,
                                   size_t len)
{
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        const char *df = gstr(get(aidx(ds, i), "format-specific"), "data-file");
        if (df) {
            evf(ev, len, "disk %zu has data-file %s", i + 1, df);
            return PF_FAIL;
        }
    }
    evf(ev, len, "no external data file");
    return PF_PASS;
}

enum pf_result pf_chk_vmdk_types(const struct pf_ctx *c,
                                 const struct pf_rule *r, char *ev,
                                 size_t len)
{
    struct json_object *ds = disks(c);
    enum pf_result res = PF_NA;
    for (size_t i = 0; i < alen(ds); i++) {
        const char *f = gstr(aidx(ds, i), "format");
        if (!f || strcmp(f, "vmdk"))
            continue;
        const char *ct = gstr(get(aidx(ds, i), "format-specific"),
                              "create-type");
        evf(ev, len, "%sdisk %zu: VMDK %s", res == PF_NA ? "" : "; ", i + 1,
            ct ? ct : "?");
        if (res == PF_NA)
            res = PF_PASS;
        if (!ct || !in_list(r->arg, ct))
            res = PF_FAIL;
    }
    if (res == PF_NA)
        evf(ev, len, "no VMDK disk");
    return res;
}

enum pf_result pf_chk_no_backing(const struct pf_ctx *c,
                                 const struct pf_rule *r, char *ev,
                                 size_t len)
{
    struct json_object *ds = disks(c);
    for (size_t i = 0; i < alen(ds); i++) {
        const char *b = gstr(aidx(ds, i), "backing-file");
        if (b) {
            evf(ev, len, "disk %zu has backing file %s", i + 1, b);
            return PF_FAIL;
        }
    }
    evf(ev, len, "no backing file");
    return PF_PASS;
}

enum pf_result pf_chk_no_lvm(const struct pf_ctx *c, const struct pf_rule *r,
                             char *ev, size_t len)
{
    struct json_object *lvm = get(get(c->report, "volumes"), "lvm");
    if (alen(lvm)) {
        evf(ev, len, "LVM volume group %s", gstr(aidx(lvm, 0), "vg"));
        return PF_FAIL;
    }
    evf(ev, len, "no LVM");
    return PF_PASS;
}

enum pf_result pf_chk_not_encrypted(const struct pf_ctx *c,
                                    const struct pf_rule *r, char *ev,
                                    size_t len)
{
    struct json_object *enc = get(get(c->report, "volumes"), "encrypted");
    if (alen(enc)) {
        evf(ev, len, "%s is %s", gstr(aidx(enc, 0), "device"),
            gstr(aidx(enc, 0), "type"));
        return PF_FAIL;
    }
    evf(ev, len, "no encrypted volume");
    return PF_PASS;
}

enum pf_result pf_chk_mountpoints(const struct pf_ctx *c,
                                  const struct pf_rule *r, char *ev,
                                  size_t len)
{
    struct json_object *os = oses(c);
    if (!alen(os)) {
        evf(ev, len, "no operating system found");
        return PF_FAIL;
    }
    struct json_object *mps = get(aidx(os, 0), "mountpoints");
    enum pf_result res = PF_PASS;
    size_t want = 0, seen = 0;
    for (const char *p = r->arg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        want++;
    evf(ev, len, "mountpoints:");
    for (size_t i = 0; i < alen(mps); i++) {
        const char *mp = gstr(aidx(mps, i), "mountpoint");
        if (!mp || mp[0] != '/')
            continue;
        evf(ev, len, " %s", mp);
        if (in_list(r->arg, mp))
            seen++;
        else
            res = PF_FAIL;
    }
    if (seen != want)
        res = PF_FAIL;
    return res;
}

enum pf_result pf_chk_vhd_cookie(const struct pf_ctx *c,
                                 const struct pf_rule *r, char *ev,
                                 size_t len)
{
    struct json_object *ds = disks(c);
    enum pf_result res = PF_PASS;
    for (size_t i = 0; i < alen(ds); i++) {
        const char *f = gstr(aidx(ds, i), "format");
        bool vhd = f && !strcmp(f, "vpc");
        evf(ev, len, "%sdisk %zu: %s", i ? "; " : "", i + 1,
            vhd ? "VHD footer cookie conectix (checked by the vpc driver)"
                : "not a VHD, no conectix footer");
        if (!vhd)
            res = PF_FAIL;
    }
    return res;
}

enum pf_result pf_chk_controller(const struct pf_ctx *c,
                                 const struct pf_rule *r, char *ev,
                                 size_t len)
{
    const char *ctl = c->controller ? c->controller : "pvscsi";
    if (strcmp(ctl, "pvscsi")) {
        evf(ev, len, "controller %s: its driver (mptspi/ahci/ata_piix) is "
            "in every distribution kernel", ctl);
        return PF_PASS;
    }
    struct pf_rule rr = *r;
    rr.arg = "vmw_pvscsi";
    evf(ev, len, "controller pvscsi: ");
    return pf_chk_drivers(c, &rr, ev, len);
}
