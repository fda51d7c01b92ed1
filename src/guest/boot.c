/*
 * boot.c: how the guest boots: the bootloader and its config (GRUB 2,
 * GRUB legacy, syslinux/extlinux, systemd-boot), the kernel command
 * line's root= and the device it names; the firmware (UEFI when a GPT
 * has an EFI System Partition and no BIOS-boot partition, as virt-v2v's
 * firmware.ml decides), whether the ESP holds the fallback boot loader
 * (read with fat.c) and the signature of the MBR boot code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

/* grub.cfg of a machine with many kernels is ~100 KiB; BLS entries and
 * /etc/default/grub are small. */
#define BOOTCFG_MAX (4u << 20)
#define BLS_MAX 1000

static const struct {
    const char *path;
    const char *loader;
} loaders[] = {
    { "/boot/grub2/grub.cfg", "grub2" },
    { "/boot/grub/grub.cfg", "grub2" },
    { "/boot/loader/loader.conf", "systemd-boot" },
    { "/boot/efi/loader/loader.conf", "systemd-boot" },
    { "/boot/extlinux/extlinux.conf", "extlinux" },
    { "/boot/syslinux/syslinux.cfg", "syslinux" },
    { "/extlinux.conf", "extlinux" },
    { "/boot/extlinux.conf", "extlinux" },
    { "/boot/grub/menu.lst", "grub-legacy" },
    { "/boot/grub/grub.conf", "grub-legacy" },
    { NULL, NULL },
};

/* The value of root= in a command line (malloc'd), or NULL. */
static char *cmdline_root(const char *line)
{
    const char *p = line;
    while ((p = strstr(p, "root="))) {
        if (p == line || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '"') {
            p += 5;
            size_t n = strcspn(p, " \t\n\"'");
            return strndup(p, n);
        }
        p += 5;
    }
    return NULL;
}

/* First line of text containing a kernel line with root=, for each of
 * the given line prefixes. */
static char *find_cmdline(const char *text, const char *const *prefixes)
{
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        while (n && (*l == ' ' || *l == '\t')) {
            l++;
            n--;
        }
        for (int i = 0; prefixes[i]; i++) {
            size_t pl = strlen(prefixes[i]);
            if (n > pl && !strncmp(l, prefixes[i], pl)) {
                char *line = strndup(l, n);
                if (line && strstr(line, "root="))
                    return line;
                free(line);
            }
        }
        l = nl ? nl + 1 : NULL;
    }
    return NULL;
}

struct bls {
    struct gview *v;
    char *line;
    char path[600];
};

static int bls_cb(const char *name, enum gtype t, void *opaque)
{
    struct bls *b = opaque;
    size_t l = strlen(name);
    if (l < 6 || strcmp(name + l - 5, ".conf"))
        return 0;
    char p[600];
    char *text = NULL;
    vf_error *err = NULL;
    snprintf(p, sizeof(p), "/boot/loader/entries/%s", name);
    if (gview_read(b->v, p, BOOTCFG_MAX, &text, NULL, &err) < 0) {
        error_free(err);
        return 0;
    }
    static const char *const pre[] = { "options", NULL };
    b->line = find_cmdline(text, pre);
    free(text);
    if (b->line) {
        snprintf(b->path, sizeof(b->path), "%s", p);
        return 1;
    }
    return 0;
}

struct json_object *boot_inspect(struct inspect *in, struct gview *v)
{
    struct json_object *o = json_object_new_object();
    const char *loader = NULL, *cfg = NULL;
    for (int i = 0; loaders[i].path; i++) {
        if (gview_stat(v, loaders[i].path, NULL) == GT_FILE) {
            loader = loaders[i].loader;
            cfg = loaders[i].path;
            break;
        }
    }
    jset_str(o, "bootloader", loader);
    jset_str(o, "config", cfg);
    char *line = NULL;
    char src[600] = "";
    char *text = NULL;
    vf_error *err = NULL;
    if (cfg && gview_read(v, cfg, BOOTCFG_MAX, &text, NULL, &err) == 0) {
        static const char *const grub[] = { "linux", "kernel", "append",
                                            "APPEND", "options", NULL };
        line = find_cmdline(text, grub);
        if (line)
            snprintf(src, sizeof(src), "%s", cfg);
        free(text);
    }
    error_free(err);
    err = NULL;
    if (!line && gview_stat(v, "/boot/loader/entries", NULL) == GT_DIR) {
        struct bls b = { .v = v };
        if (gview_list(v, "/boot/loader/entries", BLS_MAX, bls_cb, &b, &err) < 0)
            error_free(err);
        err = NULL;
        if (b.line) {
            line = b.line;
            snprintf(src, sizeof(src), "%s", b.path);
            if (!loader)
                jset_str(o, "bootloader", "grub2");
        }
    }
    static const char *const cmdfiles[] = { "/etc/kernel/cmdline",
                                            "/etc/default/grub", NULL };
    for (int i = 0; !line && cmdfiles[i]; i++) {
        if (gview_read(v, cmdfiles[i], BOOTCFG_MAX, &text, NULL, &err) < 0) {
            error_free(err);
            err = NULL;
            continue;
        }
        if (i == 0) {
            if (strstr(text, "root="))
                line = strdup(str_trim(text));
        } else {
            char *c = kv_get(text, "GRUB_CMDLINE_LINUX");
            if (c && strstr(c, "root="))
                line = c;
            else
                free(c);
        }
        if (line)
            snprintf(src, sizeof(src), "%s", cmdfiles[i]);
        free(text);
    }
    char *root = line ? cmdline_root(line) : NULL;
    jset_str(o, "cmdline", line);
    jset_str(o, "cmdline-source", *src ? src : NULL);
    jset_str(o, "root-arg", root);
    if (root) {
        bool unstable;
        struct gdev *d = os_resolve(in, root, &unstable);
        jset_str(o, "root-device", d ? d->name : NULL);
        jset_bool(o, "root-arg-unstable", unstable);
    } else {
        jset_str(o, "root-device", NULL);
    }
    free(root);
    free(line);
    return o;
}

static const char *mbr_code_kind(const uint8_t *s)
{
    bool zero = true;
    for (int i = 0; i < 440; i++)
        if (s[i])
            zero = false;
    if (zero)
        return "none";
    if (memmem(s, 440, "GRUB", 4))
        return "grub";
    if (memmem(s, 440, "LILO", 4))
        return "lilo";
    if (memmem(s, 440, "SYSLINUX", 8) || memmem(s, 440, "Missing OS", 10))
        return "syslinux";
    if (memmem(s, 440, "Invalid partition table", 23) ||
        memmem(s, 440, "Error loading operating system", 30))
        return "windows";
    return "unknown";
}

/* The loader UEFI firmware boots from a disk when no boot entry names
 * one (the UEFI spec's removable media boot behaviour): what a guest
 * needs on its ESP when it moves to a machine with empty boot entries. */
static const char *boot_fallback_name(const char *arch)
{
    return arch && !strcmp(arch, "aarch64") ? "BOOTAA64.EFI" : "BOOTX64.EFI";
}

/* The fallback loader's path on the first ESP that has it, or NULL; an
 * ESP that cannot be read becomes a warning. */
static struct json_object *boot_esp_loader(struct inspect *in,
                                           const char *arch)
{
    char path[64];
    snprintf(path, sizeof(path), "/EFI/BOOT/%s", boot_fallback_name(arch));
    for (size_t i = 0; i < in->ndevs; i++) {
        struct gdev *d = in->devs[i];
        if (!d->esp)
            continue;
        if (d->fstype[0] && strcmp(d->fstype, "vfat")) {
            inspect_warn(in, "ESP %s holds %s, not a FAT filesystem",
                         d->name, d->fstype);
            continue;
        }
        bool dir = false;
        uint64_t size = 0;
        vf_error *err = NULL;
        int r = fat_stat(d, path, &dir, &size, &err);
        if (r < 0) {
            inspect_warn(in, "ESP %s: %s", d->name, error_msg(err));
            error_free(err);
        } else if (r > 0 && !dir && size == 0) {
            inspect_warn(in, "ESP %s: %s is empty", d->name, path);
        } else if (r > 0 && !dir) {
            return jstr(path);
        }
    }
    return NULL;
}

void boot_disks(struct inspect *in, const char *arch, bool read_esp,
                struct json_object *out)
{
    bool esp = false, bios_boot = false, gpt = false;
    struct json_object *esps = json_object_new_array();
    const char *biosdev = NULL;
    for (size_t i = 0; i < in->ndevs; i++) {
        struct gdev *d = in->devs[i];
        if (d->esp) {
            esp = true;
            json_object_array_add(esps, jstr(d->name));
        }
        if (d->bios_boot) {
            bios_boot = true;
            biosdev = d->name;
        }
        if (d->partnum && strncmp(d->part_type, "0x", 2))
            gpt = true;
    }
    const char *fw = esp && gpt && !bios_boot ? "uefi" : "bios";
    jset_str(out, "type", fw);
    json_object_object_add(out, "esp", esps);
    jset_str(out, "bios-boot-partition", biosdev);
    jset_bool(out, "uefi-capable", esp);
    jset_bool(out, "bios-capable", !gpt || bios_boot);
    if (esp)
        json_object_object_add(out, "uefi-fallback-loader",
                               read_esp ? boot_esp_loader(in, arch) : NULL);
    struct json_object *codes = json_object_new_array();
    for (size_t i = 0; i < in->ndevs; i++) {
        struct gdev *d = in->devs[i];
        if (!d->is_disk)
            continue;
        uint8_t s[512];
        vf_error *err = NULL;
        struct json_object *c = json_object_new_object();
        jset_str(c, "device", d->name);
        if (d->size >= 512 && gdev_pread(d, s, 0, 512, &err) == 0) {
            jset_str(c, "boot-code", mbr_code_kind(s));
            jset_bool(c, "signature-55aa", s[510] == 0x55 && s[511] == 0xaa);
        } else {
            error_free(err);
            jset_str(c, "boot-code", "unreadable");
        }
        json_object_array_add(codes, c);
    }
    json_object_object_add(out, "mbr", codes);
}
