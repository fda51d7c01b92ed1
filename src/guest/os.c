/*
 * os.c: operating-system facts of a Linux root, found the way libguestfs
 * does (daemon/inspect_fs_unix.ml): a root has /etc, /bin (or a bin ->
 * usr/bin link) and /etc/fstab or /etc/hosts; the distro and version come
 * from /etc/os-release first, then the older release files; the
 * architecture from the ELF header of /bin/bash (or ls, echo, rm, sh);
 * the hostname from /etc/HOSTNAME, /etc/hostname or
 * /etc/sysconfig/network.  Also /etc/fstab with each source resolved to
 * a partition or LV of this guest.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guest/guest.h"
#include "guest/ondisk.h"

/* Release files are a few lines; 64 KiB is generous. */
#define SMALL_FILE_MAX (64u * 1024)
/* A real fstab is a few KiB; 1 MiB is thousands of entries. */
#define FSTAB_MAX (1u << 20)
#define FSTAB_MAX_ENTRIES 1000

bool os_is_linux_root(struct gview *v)
{
    if (gview_stat(v, "/etc", NULL) != GT_DIR)
        return false;
    bool bin = gview_stat(v, "/bin", NULL) == GT_DIR;
    if (!bin)
        return false;
    return gview_stat(v, "/etc/fstab", NULL) == GT_FILE ||
           gview_stat(v, "/etc/hosts", NULL) == GT_FILE;
}

static char *read_small(struct gview *v, const char *path)
{
    char *s = NULL;
    vf_error *err = NULL;
    if (gview_stat(v, path, NULL) != GT_FILE)
        return NULL;
    if (gview_read(v, path, SMALL_FILE_MAX, &s, NULL, &err) < 0) {
        error_free(err);
        return NULL;
    }
    return s;
}

static const struct {
    const char *id;       /* os-release ID */
    const char *distro;   /* libguestfs' distro name */
} distro_ids[] = {
    { "debian", "debian" }, { "ubuntu", "ubuntu" }, { "rhel", "rhel" },
    { "centos", "centos" }, { "fedora", "fedora" }, { "rocky", "rocky" },
    { "almalinux", "almalinux" }, { "ol", "oraclelinux" },
    { "sles", "sles" }, { "sled", "sles" }, { "opensuse", "opensuse" },
    { "opensuse-leap", "opensuse" }, { "opensuse-tumbleweed", "opensuse" },
    { "alpine", "alpinelinux" }, { "arch", "archlinux" },
    { "gentoo", "gentoo" }, { "linuxmint", "linuxmint" },
    { "kali", "kalilinux" }, { "amzn", "amazonlinux" },
    { "photon", "photon" }, { "circle", "circle" }, { "void", "voidlinux" },
    { NULL, NULL },
};

static void set_version(struct json_object *os, const char *ver)
{
    if (!ver || !*ver)
        return;
    jset_str(os, "version", ver);
    char *end;
    long maj = strtol(ver, &end, 10);
    long min = 0;
    if (end == ver)
        return;
    if (*end == '.')
        min = strtol(end + 1, NULL, 10);
    jset_int(os, "major-version", maj);
    jset_int(os, "minor-version", min);
}

/* "Red Hat Enterprise Linux release 9.2 (Plow)" -> distro + version */
static bool parse_redhat(const char *s, struct json_object *os)
{
    static const struct {
        const char *prefix;
        const char *distro;
    } rh[] = {
        { "Red Hat Enterprise Linux", "rhel" }, { "CentOS", "centos" },
        { "Fedora", "fedora" }, { "Rocky Linux", "rocky" },
        { "AlmaLinux", "almalinux" }, { "Scientific Linux", "scientificlinux" },
        { "Oracle Linux", "oraclelinux" }, { NULL, NULL },
    };
    const char *d = "redhat-based";
    for (int i = 0; rh[i].prefix; i++)
        if (!strncmp(s, rh[i].prefix, strlen(rh[i].prefix)))
            d = rh[i].distro;
    jset_str(os, "distro", d);
    const char *r = strstr(s, "release ");
    if (r) {
        char ver[32];
        size_t n = 0;
        r += 8;
        while (n + 1 < sizeof(ver) && (isdigit((unsigned char)r[n]) || r[n] == '.'))
            n++;
        memcpy(ver, r, n);
        ver[n] = 0;
        set_version(os, ver);
    }
    char *nl = strdup(s);
    if (nl) {
        nl[strcspn(nl, "\n")] = 0;
        jset_str(os, "product-name", nl);
        free(nl);
    }
    return true;
}

static void os_distro(struct gview *v, struct json_object *os)
{
    char *s;
    if ((s = read_small(v, "/etc/os-release")) ||
        (s = read_small(v, "/usr/lib/os-release"))) {
        char *id = kv_get(s, "ID"), *ver = kv_get(s, "VERSION_ID"),
             *pretty = kv_get(s, "PRETTY_NAME"), *build = kv_get(s, "BUILD_ID");
        const char *distro = "unknown";
        for (int i = 0; id && distro_ids[i].id; i++)
            if (!strcmp(id, distro_ids[i].id))
                distro = distro_ids[i].distro;
        if (!strcmp(distro, "unknown") && id)
            distro = id;
        jset_str(os, "distro", distro);
        jset_str(os, "product-name", pretty);
        set_version(os, ver);
        if (build)
            jset_str(os, "build-id", build);
        jset_str(os, "version-source", "/etc/os-release");
        free(id);
        free(ver);
        free(pretty);
        free(build);
        free(s);
        /* Debian's os-release has only the major: debian_version has the
         * point release (libguestfs falls through on a minor of 0). */
        if (!strcmp(distro, "debian") &&
            (s = read_small(v, "/etc/debian_version"))) {
            str_trim(s);
            if (isdigit((unsigned char)s[0]) && strchr(s, '.'))
                set_version(os, s);
            free(s);
        }
        return;
    }
    if ((s = read_small(v, "/etc/redhat-release"))) {
        parse_redhat(s, os);
        jset_str(os, "version-source", "/etc/redhat-release");
        free(s);
        return;
    }
    if ((s = read_small(v, "/etc/SuSE-release"))) {
        jset_str(os, "distro", strstr(s, "openSUSE") ? "opensuse" : "sles");
        char *ver = kv_get(s, "VERSION"), *pl = kv_get(s, "PATCHLEVEL");
        char buf[64];
        snprintf(buf, sizeof(buf), "%s.%s", ver ? str_trim(ver) : "0",
                 pl ? str_trim(pl) : "0");
        set_version(os, buf);
        s[strcspn(s, "\n")] = 0;
        jset_str(os, "product-name", s);
        jset_str(os, "version-source", "/etc/SuSE-release");
        free(ver);
        free(pl);
        free(s);
        return;
    }
    if ((s = read_small(v, "/etc/lsb-release"))) {
        char *id = kv_get(s, "DISTRIB_ID"), *rel = kv_get(s, "DISTRIB_RELEASE"),
             *desc = kv_get(s, "DISTRIB_DESCRIPTION");
        if (id) {
            for (char *p = id; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            jset_str(os, "distro", id);
            set_version(os, rel);
            jset_str(os, "product-name", desc);
            jset_str(os, "version-source", "/etc/lsb-release");
        }
        free(id);
        free(rel);
        free(desc);
        free(s);
        if (id)
            return;
    }
    if ((s = read_small(v, "/etc/debian_version"))) {
        jset_str(os, "distro", "debian");
        set_version(os, str_trim(s));
        jset_str(os, "version-source", "/etc/debian_version");
        free(s);
        return;
    }
    if ((s = read_small(v, "/etc/alpine-release"))) {
        jset_str(os, "distro", "alpinelinux");
        set_version(os, str_trim(s));
        jset_str(os, "version-source", "/etc/alpine-release");
        free(s);
        return;
    }
    if (gview_stat(v, "/etc/arch-release", NULL) == GT_FILE) {
        jset_str(os, "distro", "archlinux");
        return;
    }
    if ((s = read_small(v, "/etc/gentoo-release"))) {
        jset_str(os, "distro", "gentoo");
        free(s);
        return;
    }
    jset_str(os, "distro", "unknown");
}

static const char *elf_arch(const uint8_t *h, size_t n)
{
    if (n < 20 || memcmp(h, "\x7f" "ELF", 4))
        return NULL;
    bool be = h[5] == 2;
    uint16_t m = be ? gbe16(h + 18) : gle16(h + 18);
    bool is64 = h[4] == 2;
    switch (m) {
    case 3: return "i386";
    case 62: return "x86_64";
    case 183: return "aarch64";
    case 40: return "arm";
    case 21: return is64 ? (be ? "ppc64" : "ppc64le") : "ppc";
    case 20: return "ppc";
    case 22: return "s390x";
    case 243: return is64 ? "riscv64" : "riscv32";
    case 8: return is64 ? "mips64" : "mips";
    case 258: return "loongarch64";
    default: return "unknown";
    }
}

static void os_arch(struct gview *v, struct json_object *os)
{
    static const char *const bins[] = { "/bin/bash", "/bin/ls", "/bin/echo",
                                        "/bin/rm", "/bin/sh", "/bin/busybox",
                                        NULL };
    for (int i = 0; bins[i]; i++) {
        vf_error *err = NULL;
        if (gview_stat(v, bins[i], NULL) != GT_FILE)
            continue;
        struct gfile *f = gview_open(v, bins[i], &err);
        if (!f) {
            error_free(err);
            continue;
        }
        uint8_t h[64];
        long n = gfile_read(f, h, sizeof(h), &err);
        gfile_close(f);
        if (n < 0) {
            error_free(err);
            continue;
        }
        const char *a = elf_arch(h, (size_t)n);
        if (a) {
            jset_str(os, "arch", a);
            jset_str(os, "arch-source", bins[i]);
            return;
        }
    }
    jset_str(os, "arch", "unknown");
}

static void os_hostname(struct gview *v, struct json_object *os)
{
    char *s;
    if ((s = read_small(v, "/etc/HOSTNAME")) ||
        (s = read_small(v, "/etc/hostname"))) {
        char *t = str_trim(s);
        t[strcspn(t, "\n")] = 0;
        if (*t) {
            jset_str(os, "hostname", t);
            free(s);
            return;
        }
        free(s);
    }
    if ((s = read_small(v, "/etc/sysconfig/network"))) {
        char *h = kv_get(s, "HOSTNAME");
        if (h)
            jset_str(os, "hostname", h);
        free(h);
        free(s);
        if (h)
            return;
    }
    jset_str(os, "hostname", NULL);
}

static void os_packaging(struct json_object *os)
{
    const char *d = jget_str(os, "distro");
    struct json_object *mj;
    int major = json_object_object_get_ex(os, "major-version", &mj)
                    ? json_object_get_int(mj) : 0;
    const char *fmt = "unknown", *mgr = "unknown";
    if (!d)
        return;
    if (!strcmp(d, "debian") || !strcmp(d, "ubuntu") ||
        !strcmp(d, "linuxmint") || !strcmp(d, "kalilinux")) {
        fmt = "deb";
        mgr = "apt";
    } else if (!strcmp(d, "fedora")) {
        fmt = "rpm";
        mgr = major >= 22 ? "dnf" : "yum";
    } else if (!strcmp(d, "rhel") || !strcmp(d, "centos") ||
               !strcmp(d, "rocky") || !strcmp(d, "almalinux") ||
               !strcmp(d, "oraclelinux") || !strcmp(d, "circle") ||
               !strcmp(d, "scientificlinux") || !strcmp(d, "redhat-based") ||
               !strcmp(d, "amazonlinux")) {
        fmt = "rpm";
        mgr = major >= 8 || !strcmp(d, "rocky") || !strcmp(d, "almalinux")
                  ? "dnf" : "yum";
    } else if (!strcmp(d, "sles") || !strcmp(d, "opensuse")) {
        fmt = "rpm";
        mgr = "zypper";
    } else if (!strcmp(d, "alpinelinux")) {
        fmt = "apk";
        mgr = "apk";
    } else if (!strcmp(d, "archlinux")) {
        fmt = "pacman";
        mgr = "pacman";
    } else if (!strcmp(d, "gentoo")) {
        fmt = "ebuild";
        mgr = "portage";
    } else if (!strcmp(d, "voidlinux")) {
        fmt = "xbps";
        mgr = "xbps";
    }
    jset_str(os, "package-format", fmt);
    jset_str(os, "package-management", mgr);
}

void os_inspect(struct inspect *in, struct gview *v, struct json_object *os)
{
    jset_str(os, "type", "linux");
    os_distro(v, os);
    os_arch(v, os);
    os_hostname(v, os);
    char *s = read_small(v, "/etc/machine-id");
    if (s) {
        char *t = str_trim(s);
        jset_str(os, "machine-id", *t ? t : NULL);
        free(s);
    } else {
        jset_str(os, "machine-id", NULL);
    }
    os_packaging(os);
}

/* ---- fstab ---- */

static bool pseudo_fs(const char *t)
{
    static const char *const p[] = { "proc", "sysfs", "tmpfs", "devpts",
                                     "devtmpfs", "cgroup", "cgroup2",
                                     "securityfs", "debugfs", "none",
                                     "efivarfs", "nfs", "nfs4", "cifs",
                                     "autofs", "binfmt_misc", "fuse", NULL };
    for (int i = 0; p[i]; i++)
        if (!strcmp(t, p[i]))
            return true;
    return false;
}

/* Decode fstab's octal escapes (\040 for a space) in place. */
static void unoctal(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
            p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
}

struct json_object *os_parse_fstab(struct inspect *in, const char *text,
                                   size_t len)
{
    struct json_object *arr = json_object_new_array();
    size_t pos = 0, count = 0;
    while (pos < len) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + 1;
        if (n > 4096) {    /* longer than PATH_MAX plus options: junk */
            inspect_warn(in, "/etc/fstab: line of %zu bytes ignored", n);
            continue;
        }
        char line[4097];
        memcpy(line, l, n);
        line[n] = 0;
        char *c = strchr(line, '#');
        if (c)
            *c = 0;
        char *save = NULL;
        char *spec = strtok_r(line, " \t\r", &save);
        char *file = strtok_r(NULL, " \t\r", &save);
        char *type = strtok_r(NULL, " \t\r", &save);
        char *opts = strtok_r(NULL, " \t\r", &save);
        if (!spec || !file)
            continue;
        if (!type)
            type = "auto";
        if (pseudo_fs(type) || !strncmp(spec, "/dev/fd", 7) ||
            !strncmp(spec, "/dev/cdrom", 10) || !strncmp(spec, "/dev/sr", 7) ||
            !strcmp(spec, "/dev/root"))
            continue;
        if (++count > FSTAB_MAX_ENTRIES) {
            inspect_warn(in, "/etc/fstab: more than %d entries; rest ignored",
                         FSTAB_MAX_ENTRIES);
            break;
        }
        unoctal(spec);
        unoctal(file);
        struct json_object *o = json_object_new_object();
        jset_str(o, "mountpoint", !strcmp(type, "swap") ? "swap" : file);
        jset_str(o, "source", spec);
        jset_str(o, "fstype", type);
        jset_str(o, "options", opts ? opts : "defaults");
        json_object_array_add(arr, o);
    }
    return arr;
}

/* /dev/sdXN, /dev/hdXN, /dev/vdXN, /dev/xvdXN: disk index and partition;
 * /dev/nvmeCnNpP too.  Returns false if spec is none of these. */
static bool plain_name(const char *spec, int *disk, int *part)
{
    static const char *const pre[] = { "/dev/sd", "/dev/hd", "/dev/vd",
                                       "/dev/xvd", NULL };
    for (int i = 0; pre[i]; i++) {
        size_t l = strlen(pre[i]);
        if (strncmp(spec, pre[i], l))
            continue;
        const char *p = spec + l;
        int d = 0, nl = 0;
        while (*p >= 'a' && *p <= 'z' && nl < 3) {
            d = d * 26 + (*p - 'a' + 1);
            p++;
            nl++;
        }
        if (!nl)
            return false;
        *disk = d - 1;
        *part = *p ? atoi(p) : 0;
        return true;
    }
    unsigned c, ns, pp = 0;
    int n = 0;
    if (sscanf(spec, "/dev/nvme%un%up%u%n", &c, &ns, &pp, &n) >= 2) {
        *disk = (int)c;
        *part = (int)pp;
        return true;
    }
    return false;
}

struct gdev *os_resolve(struct inspect *in, const char *spec,
                        bool *unstable)
{
    static const struct {
        const char *prefix;
        const char *key;
    } keys[] = {
        { "UUID=", "uuid" }, { "LABEL=", "label" },
        { "PARTUUID=", "partuuid" }, { "PARTLABEL=", "partlabel" },
        { "/dev/disk/by-uuid/", "uuid" }, { "/dev/disk/by-label/", "label" },
        { "/dev/disk/by-partuuid/", "partuuid" },
        { "/dev/disk/by-partlabel/", "partlabel" },
        { "/dev/disk/by-id/dm-uuid-", "dmuuid" },
        { NULL, NULL },
    };
    *unstable = false;
    for (int i = 0; keys[i].prefix; i++) {
        size_t l = strlen(keys[i].prefix);
        if (!strncmp(spec, keys[i].prefix, l)) {
            char val[256];
            snprintf(val, sizeof(val), "%s", spec + l);
            size_t vl = strlen(val);
            if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
                val[vl - 1] = 0;
                memmove(val, val + 1, vl - 1);
            }
            return inspect_find_dev(in, keys[i].key, val);
        }
    }
    if (!strncmp(spec, "/dev/mapper/", 12)) {
        /* VG-LV, with '-' inside names doubled */
        char vg[128], lv[128];
        const char *p = spec + 12;
        size_t o = 0;
        while (*p && o + 1 < sizeof(vg)) {
            if (p[0] == '-' && p[1] == '-') {
                vg[o++] = '-';
                p += 2;
            } else if (p[0] == '-') {
                break;
            } else {
                vg[o++] = *p++;
            }
        }
        vg[o] = 0;
        if (*p != '-')
            return NULL;
        p++;
        o = 0;
        while (*p && o + 1 < sizeof(lv)) {
            if (p[0] == '-' && p[1] == '-')
                p++;
            lv[o++] = *p++;
        }
        lv[o] = 0;
        char name[300];
        snprintf(name, sizeof(name), "/dev/%s/%s", vg, lv);
        return inspect_find_dev(in, "name", name);
    }
    int disk, part;
    if (plain_name(spec, &disk, &part)) {
        *unstable = true;
        if (disk < 0 || disk >= 26 * 27)
            return NULL;
        char name[64];
        char letters[4];
        int d = disk + 1, k = 0;
        char tmp[4];
        while (d > 0 && k < 3) {
            d--;
            tmp[k++] = (char)('a' + d % 26);
            d /= 26;
        }
        for (int i = 0; i < k; i++)
            letters[i] = tmp[k - 1 - i];
        letters[k] = 0;
        if (part)
            snprintf(name, sizeof(name), "/dev/sd%s%d", letters, part);
        else
            snprintf(name, sizeof(name), "/dev/sd%s", letters);
        return inspect_find_dev(in, "name", name);
    }
    return inspect_find_dev(in, "name", spec);
}

static int mp_depth_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return (int)strlen(x) - (int)strlen(y);
}

void os_mountpoints(struct inspect *in, struct gview *v,
                    struct json_object *os)
{
    char *text = NULL;
    size_t len = 0;
    vf_error *err = NULL;
    struct json_object *arr;
    if (gview_stat(v, "/etc/fstab", NULL) != GT_FILE) {
        json_object_object_add(os, "mountpoints", json_object_new_array());
        return;
    }
    if (gview_read(v, "/etc/fstab", FSTAB_MAX, &text, &len, &err) < 0) {
        inspect_warn(in, "%s", error_msg(err));
        error_free(err);
        json_object_object_add(os, "mountpoints", json_object_new_array());
        return;
    }
    arr = os_parse_fstab(in, text, len);
    free(text);
    const char *mps[32];
    struct gdev *devs[32];
    int nm = 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);
        bool unstable;
        const char *spec = jget_str(o, "source");
        struct gdev *d = os_resolve(in, spec, &unstable);
        jset_str(o, "device", d ? d->name : NULL);
        jset_bool(o, "unstable-name", unstable);
        if (!d)
            inspect_warn(in, "/etc/fstab: %s not found on this guest's disks",
                         spec);
        const char *mp = jget_str(o, "mountpoint");
        if (d && mp[0] == '/' && strcmp(mp, "/") && nm < 32 &&
            !strncmp(d->fstype, "ext", 3)) {
            mps[nm] = mp;
            devs[nm++] = d;
        }
    }
    /* Mount the ext filesystems, shallow first. */
    for (int i = 0; i < nm; i++) {
        for (int j = i + 1; j < nm; j++) {
            if (mp_depth_cmp(&mps[j], &mps[i]) < 0) {
                const char *t = mps[i];
                mps[i] = mps[j];
                mps[j] = t;
                struct gdev *td = devs[i];
                devs[i] = devs[j];
                devs[j] = td;
            }
        }
    }
    for (int i = 0; i < nm && v->n < 32; i++) {
        struct gdev *d = devs[i];
        if (!d->fs) {
            d->fs = gfs_open(d, &err);
            if (!d->fs) {
                inspect_warn(in, "%s", error_msg(err));
                error_free(err);
                err = NULL;
                continue;
            }
        }
        v->m[v->n].mp = strdup(mps[i]);
        v->m[v->n].fs = d->fs;
        if (v->m[v->n].mp)
            v->n++;
    }
    json_object_object_add(os, "mountpoints", arr);
}
