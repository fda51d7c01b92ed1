/*
 * cmd-inspect.c: vmferry inspect: offline guest inspection (partitions,
 * volumes, filesystems, OS, kernels, boot, tools, network, packages).
 * The JSON is documented in docs/inspect-json.md.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "guest/inspect.h"

static const char inspect_help[] =
    "usage: vmferry inspect [--json] [-f FMT] IMAGE...\n"
    "\n"
    "Inspect a guest offline: its disks (several images are one guest's\n"
    "disks, in order), partition tables, LVM, encrypted volumes,\n"
    "filesystems, operating system, mountpoints, kernels and their\n"
    "drivers (also inside the initramfs), bootloader and firmware,\n"
    "hypervisor tools, network configuration and installed packages.\n"
    "Nothing is mounted or modified; no root needed.\n"
    "\n"
    "  -f, --format FMT        do not probe: every image is FMT\n"
    "      --json              print JSON (docs/inspect-json.md)\n"
    "      --output=json       the same\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

static const char *js(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !v)
        return NULL;
    return json_object_get_string(v);
}

static int64_t ji(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !v)
        return 0;
    return json_object_get_int64(v);
}

static bool jb(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) && v &&
           json_object_get_boolean(v);
}

static struct json_object *ja(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) ||
        !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}

#define FOREACH(arr, i, e)                                                  \
    for (size_t i = 0, n_##i = (arr) ? json_object_array_length(arr) : 0;   \
         i < n_##i && ((e) = json_object_array_get_idx(arr, i)); i++)

static void print_kernel(struct json_object *k)
{
    char h[32];
    struct json_object *dr, *hv, *ic;
    printf("    kernel %s%s%s\n", js(k, "version"),
           js(k, "initramfs") ? ", initramfs " : ", no initramfs",
           js(k, "initramfs") ? js(k, "initramfs") : "");
    if (json_object_object_get_ex(k, "initramfs-contents", &ic)) {
        struct json_object *cj;
        bool partial = json_object_object_get_ex(ic, "complete", &cj) &&
                       !json_object_get_boolean(cj);
        printf("      initramfs: %lld%s files%s, %s%s%s%s\n",
               (long long)ji(ic, "files"), partial ? "+" : "",
               partial ? " (read until every driver was found)" : "",
               js(ic, "compression"),
               jb(ic, "early-microcode") ? ", early microcode" : "",
               js(ic, "error") ? ", error: " : "",
               js(ic, "error") ? js(ic, "error") : "");
    }
    (void)h;
    if (json_object_object_get_ex(k, "hypervisors", &hv)) {
        printf("      boots on:");
        json_object_object_foreach(hv, name, g)
            printf(" %s=%s%s", name, jb(g, "storage-at-boot") ? "yes" : "no",
                   jb(g, "network") ? "" : "(no net)");
        printf("\n");
    }
    if (json_object_object_get_ex(k, "drivers", &dr)) {
        printf("      drivers:");
        json_object_object_foreach(dr, name, d) {
            const char *w = jb(d, "builtin") ? "built-in"
                            : jb(d, "initramfs") ? "initramfs"
                            : jb(d, "module") ? "module" : NULL;
            if (w)
                printf(" %s(%s)", name, w);
        }
        printf("\n");
    }
}

static void print_text(struct json_object *r)
{
    char h[32];
    struct json_object *e, *e2;
    FOREACH(ja(r, "disks"), i, e) {
        struct json_object *pt;
        json_object_object_get_ex(e, "partition-table", &pt);
        printf("%s: %s (%s, %s)\n", js(e, "device"), js(e, "filename"),
               js(e, "format"),
               cli_human_size((uint64_t)ji(e, "virtual-size"), h, sizeof(h)));
        printf("  partition table: %s%s%s\n", js(pt, "type"),
               jb(pt, "hybrid-mbr") ? " (hybrid MBR)" : "",
               jb(pt, "recovered-from-backup") ? " (recovered from backup)" : "");
        FOREACH(ja(pt, "partitions"), j, e2)
            printf("  %-12s %10s  %s%s%s\n", js(e2, "device"),
                   cli_human_size((uint64_t)ji(e2, "size"), h, sizeof(h)),
                   js(e2, "type-name"), js(e2, "name") && *js(e2, "name") ? " " : "",
                   js(e2, "name") ? js(e2, "name") : "");
    }
    struct json_object *vols;
    if (json_object_object_get_ex(r, "volumes", &vols)) {
        FOREACH(ja(vols, "lvm"), i, e) {
            printf("LVM VG %s\n", js(e, "vg"));
            FOREACH(ja(e, "lvs"), j, e2)
                printf("  %-20s %10s%s%s\n", js(e2, "device"),
                       cli_human_size((uint64_t)ji(e2, "size"), h, sizeof(h)),
                       jb(e2, "readable") ? "" : "  not readable: ",
                       jb(e2, "readable") ? "" : js(e2, "error"));
        }
        FOREACH(ja(vols, "md"), i, e)
            printf("MD member %s (RAID level %lld)\n", js(e, "device"),
                   (long long)ji(e, "raid-level"));
        FOREACH(ja(vols, "encrypted"), i, e)
            printf("encrypted %s: %s\n", js(e, "device"), js(e, "type"));
    }
    printf("filesystems:\n");
    FOREACH(ja(r, "filesystems"), i, e)
        printf("  %-20s %-8s %s%s%s%s\n", js(e, "device"), js(e, "type"),
               js(e, "uuid"), js(e, "label") && *js(e, "label") ? " label=" : "",
               js(e, "label") && *js(e, "label") ? js(e, "label") : "",
               jb(e, "needs-recovery") ? " (journal needs recovery)" : "");
    FOREACH(ja(r, "operatingsystems"), i, e) {
        struct json_object *pk, *b;
        printf("operating system on %s: %s %s (%s), %s\n", js(e, "root"),
               js(e, "distro"), js(e, "version") ? js(e, "version") : "?",
               js(e, "product-name") ? js(e, "product-name") : "",
               js(e, "arch"));
        printf("  hostname: %s\n", js(e, "hostname") ? js(e, "hostname") : "-");
        printf("  packages: %s / %s", js(e, "package-format"),
               js(e, "package-management"));
        if (json_object_object_get_ex(e, "packages", &pk))
            printf(", %lld installed", (long long)ji(pk, "count"));
        printf("\n  mountpoints:\n");
        FOREACH(ja(e, "mountpoints"), j, e2)
            printf("    %-12s %s -> %s%s\n", js(e2, "mountpoint"),
                   js(e2, "source"),
                   js(e2, "device") ? js(e2, "device") : "(not found)",
                   jb(e2, "unstable-name") ? "  [unstable name]" : "");
        FOREACH(ja(e, "kernels"), j, e2)
            print_kernel(e2);
        if (json_object_object_get_ex(e, "boot", &b))
            printf("  bootloader: %s (%s), root=%s\n",
                   js(b, "bootloader") ? js(b, "bootloader") : "none",
                   js(b, "config") ? js(b, "config") : "-",
                   js(b, "root-arg") ? js(b, "root-arg") : "-");
        printf("  tools:");
        FOREACH(ja(e, "tools"), j, e2)
            printf(" %s", js(e2, "name"));
        printf("\n");
        FOREACH(ja(e, "network"), j, e2)
            printf("  network: %s: %s\n", js(e2, "file"), js(e2, "risk"));
    }
    struct json_object *fw;
    if (json_object_object_get_ex(r, "firmware", &fw)) {
        struct json_object *ldr;
        printf("firmware: %s", js(fw, "type"));
        /* the key is there when the guest has an ESP */
        if (json_object_object_get_ex(fw, "uefi-fallback-loader", &ldr)) {
            if (ldr)
                printf(", fallback loader %s", json_object_get_string(ldr));
            else
                printf(", no fallback loader on the ESP");
        }
        printf("\n");
    }
    FOREACH(ja(r, "warnings"), i, e)
        printf("warning: %s\n", json_object_get_string(e));
}

int cmd_inspect(int argc, char **argv)
{
    struct blk_open_opts oo = { 0 };
    bool json = false;
    int rc = 0;
    int first = cli_parse_common(argc, argv, inspect_help, &oo, &json, &rc);
    if (first < 0)
        return rc;
    if (first >= argc) {
        fputs(inspect_help, stderr);
        return 1;
    }
    vf_error *err = NULL;
    struct json_object *r = inspect_images(argv + first, argc - first, &oo,
                                           &err);
    if (!r)
        return cli_fail("inspect", err);
    if (json) {
        cli_print_json(r);
    } else {
        print_text(r);
        json_object_put(r);
    }
    return 0;
}
