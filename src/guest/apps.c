/*
 * apps.c: installed packages (dpkg status, the RPM database in its sqlite
 * form, apk, pacman; the Berkeley DB / ndb RPM forms are reported as
 * present but not listed), hypervisor tools and guest agents, and
 * network configuration that may break on new hardware.
 *
 * RPM header blobs (rpmdb.sqlite's Packages.blob) follow rpm's
 * doc/manual/format_header.md: be32 index count, be32 data size, 16-byte
 * index entries (tag, type, offset, count), then the data store.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ondisk.h"

/* dpkg's status of a large server is ~10 MiB; apk's installed similar. */
#define PKGDB_TEXT_MAX (64u << 20)
/* rpmdb.sqlite of a full RHEL workstation is ~100 MiB. */
#define RPMDB_MAX (256u << 20)
/* Packages listed: a distribution has ~60k packages in total. */
#define PKG_MAX 100000
/* One RPM header: rpm itself caps the data store at 256 MiB; real ones
 * are under 1 MiB.  Index entries: rpm's limit is 0xffff. */
#define RPMHDR_MAX_INDEX 0xffff
#define CONF_MAX (1u << 20)
#define LIST_MAX 10000

static void pkg_add(struct json_object *list, const char *name,
                    const char *epoch, const char *version,
                    const char *release, const char *arch)
{
    if (json_object_array_length(list) >= PKG_MAX)
        return;
    struct json_object *o = json_object_new_object();
    jset_str(o, "name", name);
    if (epoch && *epoch && strcmp(epoch, "0"))
        jset_str(o, "epoch", epoch);
    jset_str(o, "version", version);
    if (release)
        jset_str(o, "release", release);
    jset_str(o, "arch", arch);
    json_object_array_add(list, o);
}

static int pkg_cmp(const void *a, const void *b)
{
    const char *x = jget_str(*(struct json_object *const *)a, "name");
    const char *y = jget_str(*(struct json_object *const *)b, "name");
    return strcmp(x ? x : "", y ? y : "");
}

static void dpkg_flush(struct json_object *list, char *name, char *ver,
                       char *arch, bool installed)
{
    if (!name || !installed)
        return;
    /* Debian "1:2.3-4": epoch, upstream version, revision */
    char *epoch = NULL, *rel = NULL, *v = ver;
    char *colon = v ? strchr(v, ':') : NULL;
    if (colon) {
        *colon = 0;
        epoch = v;
        v = colon + 1;
    }
    char *dash = v ? strrchr(v, '-') : NULL;
    if (dash) {
        *dash = 0;
        rel = dash + 1;
    }
    pkg_add(list, name, epoch, v, rel, arch);
}

/* dpkg status: stanzas of "Field: value", blank-line separated. */
static void parse_dpkg(char *text, struct json_object *list)
{
    char *name = NULL, *ver = NULL, *arch = NULL;
    bool installed = false;
    for (char *l = text;;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = 0;
        if (!*l) {
            dpkg_flush(list, name, ver, arch, installed);
            name = ver = arch = NULL;
            installed = false;
        } else if (!strncmp(l, "Package: ", 9)) {
            name = l + 9;
        } else if (!strncmp(l, "Version: ", 9)) {
            ver = l + 9;
        } else if (!strncmp(l, "Architecture: ", 14)) {
            arch = l + 14;
        } else if (!strncmp(l, "Status: ", 8)) {
            installed = strstr(l, " installed") != NULL;
        }
        if (!nl) {
            dpkg_flush(list, name, ver, arch, installed);
            break;
        }
        l = nl + 1;
    }
}

static void apk_flush(struct json_object *list, char *name, char *ver,
                      char *arch)
{
    if (!name)
        return;
    char *rel = NULL, *r = ver ? strstr(ver, "-r") : NULL;
    if (r) {
        *r = 0;
        rel = r + 2;
    }
    pkg_add(list, name, NULL, ver, rel, arch);
}

/* apk's installed: "P:name", "V:version", "A:arch", blank-line separated */
static void parse_apk(char *text, struct json_object *list)
{
    char *name = NULL, *ver = NULL, *arch = NULL;
    for (char *l = text;;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = 0;
        if (!*l) {
            apk_flush(list, name, ver, arch);
            name = ver = arch = NULL;
        } else if (l[1] == ':') {
            if (l[0] == 'P')
                name = l + 2;
            else if (l[0] == 'V')
                ver = l + 2;
            else if (l[0] == 'A')
                arch = l + 2;
        }
        if (!nl) {
            apk_flush(list, name, ver, arch);
            break;
        }
        l = nl + 1;
    }
}

/* One string tag of an RPM header blob, copied into out. */
static bool rpmhdr_tag(const uint8_t *b, size_t len, uint32_t tag, char *out,
                       size_t olen)
{
    out[0] = 0;
    if (len < 8)
        return false;
    uint32_t il = gbe32(b), dl = gbe32(b + 4);
    if (il > RPMHDR_MAX_INDEX || (uint64_t)il * 16 > len - 8 ||
        dl > len - 8 - (size_t)il * 16)
        return false;
    const uint8_t *idx = b + 8, *data = b + 8 + (size_t)il * 16;
    for (uint32_t i = 0; i < il; i++) {
        const uint8_t *e = idx + (size_t)i * 16;
        if (gbe32(e) != tag)
            continue;
        uint32_t type = gbe32(e + 4), off = gbe32(e + 8);
        if (off >= dl)
            return false;
        if (type == 6 || type == 8 || type == 9) {   /* STRING, ARRAY, I18N */
            size_t n = strnlen((const char *)data + off, dl - off);
            if (n == dl - off)
                return false;   /* not NUL-terminated inside the store */
            snprintf(out, olen, "%.*s", (int)n, (const char *)data + off);
            return true;
        }
        if (type == 4 && dl - off >= 4) {   /* INT32 (epoch) */
            snprintf(out, olen, "%u", gbe32(data + off));
            return true;
        }
        return false;
    }
    return false;
}

static int parse_rpmdb(char *db, size_t len, struct json_object *list,
                       char *why, size_t wlen)
{
    sqlite3 *s = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_open_v2(":memory:", &s, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(why, wlen, "sqlite cannot start");
        goto out;
    }
    /* The buffer stays ours (no SQLITE_DESERIALIZE_FREEONCLOSE); read-only. */
    if (sqlite3_deserialize(s, "main", (unsigned char *)db, (sqlite3_int64)len,
                            (sqlite3_int64)len,
                            SQLITE_DESERIALIZE_READONLY) != SQLITE_OK) {
        snprintf(why, wlen, "rpmdb.sqlite not a database: %s",
                 sqlite3_errmsg(s));
        goto out;
    }
    if (sqlite3_prepare_v2(s, "SELECT blob FROM Packages", -1, &st, NULL) !=
        SQLITE_OK) {
        snprintf(why, wlen, "rpmdb.sqlite: %s", sqlite3_errmsg(s));
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *b = sqlite3_column_blob(st, 0);
        int bl = sqlite3_column_bytes(st, 0);
        char name[256], ver[256], rel[256], epoch[32], arch[64];
        if (!b || bl <= 0 || !rpmhdr_tag(b, (size_t)bl, 1000, name, sizeof(name)))
            continue;
        if (!strncmp(name, "gpg-pubkey", 10))
            continue;
        rpmhdr_tag(b, (size_t)bl, 1001, ver, sizeof(ver));
        rpmhdr_tag(b, (size_t)bl, 1002, rel, sizeof(rel));
        rpmhdr_tag(b, (size_t)bl, 1003, epoch, sizeof(epoch));
        rpmhdr_tag(b, (size_t)bl, 1022, arch, sizeof(arch));
        pkg_add(list, name, epoch, ver, rel, arch);
    }
    if (rc != SQLITE_DONE) {
        snprintf(why, wlen, "rpmdb.sqlite: %s", sqlite3_errmsg(s));
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    sqlite3_close(s);
    return ret;
}

struct pacman {
    struct gview *v;
    struct json_object *list;
};

static int pacman_cb(const char *name, enum gtype t, void *opaque)
{
    struct pacman *p = opaque;
    char path[600];
    char *text = NULL;
    vf_error *err = NULL;
    if (t != GT_DIR)
        return 0;
    snprintf(path, sizeof(path), "/var/lib/pacman/local/%s/desc", name);
    if (gview_read(p->v, path, CONF_MAX, &text, NULL, &err) < 0) {
        error_free(err);
        return 0;
    }
    char *n = NULL, *ver = NULL, *arch = NULL;
    char **want = NULL;
    for (char *l = text, *nl; l; l = nl) {
        nl = strchr(l, '\n');
        if (nl)
            *nl++ = 0;
        if (want) {
            *want = l;
            want = NULL;
        } else if (!strcmp(l, "%NAME%")) {
            want = &n;
        } else if (!strcmp(l, "%VERSION%")) {
            want = &ver;
        } else if (!strcmp(l, "%ARCH%")) {
            want = &arch;
        }
    }
    if (n) {
        char *rel = ver ? strrchr(ver, '-') : NULL;
        if (rel)
            *rel++ = 0;
        pkg_add(p->list, n, NULL, ver, rel, arch);
    }
    free(text);
    return 0;
}

static bool exists(struct gview *v, const char *p)
{
    return gview_stat(v, p, NULL) != GT_NONE;
}

struct json_object *apps_packages(struct inspect *in, struct gview *v,
                                  const char *distro)
{
    struct json_object *o = json_object_new_object();
    struct json_object *list = json_object_new_array();
    char *text = NULL;
    size_t len = 0;
    vf_error *err = NULL;
    const char *fmt = NULL, *db = NULL;
    bool listed = false;
    char why[200] = "";
    if (exists(v, "/var/lib/dpkg/status")) {
        fmt = "deb";
        db = "/var/lib/dpkg/status";
        if (gview_read(v, db, PKGDB_TEXT_MAX, &text, &len, &err) == 0) {
            parse_dpkg(text, list);
            listed = true;
        }
    } else if (exists(v, "/var/lib/rpm/rpmdb.sqlite") ||
               exists(v, "/usr/lib/sysimage/rpm/rpmdb.sqlite")) {
        fmt = "rpm";
        db = exists(v, "/var/lib/rpm/rpmdb.sqlite")
                 ? "/var/lib/rpm/rpmdb.sqlite"
                 : "/usr/lib/sysimage/rpm/rpmdb.sqlite";
        if (gview_read(v, db, RPMDB_MAX, &text, &len, &err) == 0) {
            if (parse_rpmdb(text, len, list, why, sizeof(why)) == 0)
                listed = true;
            else
                inspect_warn(in, "%s: %s", db, why);
        }
    } else if (exists(v, "/var/lib/rpm/Packages") ||
               exists(v, "/usr/lib/sysimage/rpm/Packages") ||
               exists(v, "/var/lib/rpm/Packages.db") ||
               exists(v, "/usr/lib/sysimage/rpm/Packages.db")) {
        fmt = "rpm";
        db = exists(v, "/var/lib/rpm/Packages") ? "/var/lib/rpm/Packages"
             : exists(v, "/var/lib/rpm/Packages.db") ? "/var/lib/rpm/Packages.db"
             : exists(v, "/usr/lib/sysimage/rpm/Packages")
                 ? "/usr/lib/sysimage/rpm/Packages"
                 : "/usr/lib/sysimage/rpm/Packages.db";
        snprintf(why, sizeof(why), "%s RPM database: present, not listed",
                 strstr(db, ".db") ? "ndb" : "Berkeley DB");
    } else if (exists(v, "/lib/apk/db/installed")) {
        fmt = "apk";
        db = "/lib/apk/db/installed";
        if (gview_read(v, db, PKGDB_TEXT_MAX, &text, &len, &err) == 0) {
            parse_apk(text, list);
            listed = true;
        }
    } else if (gview_stat(v, "/var/lib/pacman/local", NULL) == GT_DIR) {
        fmt = "pacman";
        db = "/var/lib/pacman/local";
        struct pacman p = { v, list };
        if (gview_list(v, db, PKG_MAX, pacman_cb, &p, &err) == 0)
            listed = true;
    }
    if (err) {
        snprintf(why, sizeof(why), "%s", error_msg(err));
        inspect_warn(in, "%s", error_msg(err));
        error_free(err);
    }
    free(text);
    (void)distro;
    jset_str(o, "format", fmt);
    jset_str(o, "database", db);
    jset_bool(o, "listed", listed);
    if (*why)
        jset_str(o, "note", why);
    json_object_array_sort(list, pkg_cmp);
    jset_int(o, "count", listed ? (int64_t)json_object_array_length(list) : -1);
    json_object_object_add(o, "list", list);
    return o;
}

/* ---- hypervisor tools and agents ---- */

static bool has_pkg(struct json_object *pk, const char *name)
{
    struct json_object *list;
    if (!pk || !json_object_object_get_ex(pk, "list", &list))
        return false;
    size_t n = json_object_array_length(list);
    for (size_t i = 0; i < n; i++) {
        const char *x = jget_str(json_object_array_get_idx(list, i), "name");
        if (x && !strcmp(x, name))
            return true;
    }
    return false;
}

static const struct tool {
    const char *id;
    const char *paths[4];
    const char *pkgs[4];
} tools[] = {
    { "open-vm-tools", { "/usr/bin/vmtoolsd" }, { "open-vm-tools" } },
    { "vmware-tools", { "/etc/vmware-tools/locations",
                        "/usr/lib/vmware-tools" }, { "vmware-tools" } },
    { "virtualbox-guest-additions", { "/usr/sbin/VBoxService",
                                      "/var/lib/VBoxGuestAdditions" },
      { "virtualbox-guest-utils", "virtualbox-guest-additions" } },
    { "hyperv-daemons", { "/usr/sbin/hv_kvp_daemon", "/usr/sbin/hypervkvpd" },
      { "hyperv-daemons", "hyperv-daemons" } },
    { "xe-guest-utilities", { "/usr/sbin/xe-daemon" },
      { "xe-guest-utilities" } },
    { "qemu-guest-agent", { "/usr/bin/qemu-ga", "/usr/sbin/qemu-ga" },
      { "qemu-guest-agent" } },
    { "cloud-init", { "/usr/bin/cloud-init" }, { "cloud-init" } },
    { "waagent", { "/usr/sbin/waagent", "/usr/bin/waagent" },
      { "walinuxagent", "WALinuxAgent", "waagent" } },
    { "google-guest-agent", { "/usr/bin/google_guest_agent" },
      { "google-guest-agent" } },
};

struct dslist {
    struct gview *v;
    char found[512];
};

static void ds_from_text(const char *text, char *out, size_t olen)
{
    const char *p = strstr(text, "datasource_list:");
    if (!p)
        return;
    p += 16;
    const char *e = strchr(p, ']');
    const char *nl = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p + 1) : nl ? (size_t)(nl - p) : strlen(p);
    char buf[400];
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < 399 ? n : 399), p);
    snprintf(out, olen, "%s", str_trim(buf));
}

static int ds_cb(const char *name, enum gtype t, void *opaque)
{
    struct dslist *d = opaque;
    size_t l = strlen(name);
    if (l < 5 || strcmp(name + l - 4, ".cfg"))
        return 0;
    char p[600];
    char *text = NULL;
    vf_error *err = NULL;
    snprintf(p, sizeof(p), "/etc/cloud/cloud.cfg.d/%s", name);
    if (gview_read(d->v, p, CONF_MAX, &text, NULL, &err) == 0) {
        ds_from_text(text, d->found, sizeof(d->found));
        free(text);
    }
    error_free(err);
    return 0;
}

struct json_object *apps_tools(struct inspect *in, struct gview *v,
                               struct json_object *pk)
{
    struct json_object *arr = json_object_new_array();
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        const struct tool *t = &tools[i];
        const char *ev = NULL;
        for (int k = 0; k < 4 && t->paths[k] && !ev; k++)
            if (exists(v, t->paths[k]))
                ev = t->paths[k];
        for (int k = 0; k < 4 && t->pkgs[k] && !ev; k++)
            if (has_pkg(pk, t->pkgs[k]))
                ev = t->pkgs[k];
        if (!ev)
            continue;
        struct json_object *o = json_object_new_object();
        jset_str(o, "name", t->id);
        jset_str(o, "evidence", ev);
        if (!strcmp(t->id, "cloud-init")) {
            struct dslist d = { .v = v };
            char *text = NULL;
            vf_error *err = NULL;
            if (gview_read(v, "/etc/cloud/cloud.cfg", CONF_MAX, &text, NULL,
                           &err) == 0) {
                ds_from_text(text, d.found, sizeof(d.found));
                free(text);
            }
            error_free(err);
            err = NULL;
            if (gview_stat(v, "/etc/cloud/cloud.cfg.d", NULL) == GT_DIR &&
                gview_list(v, "/etc/cloud/cloud.cfg.d", LIST_MAX, ds_cb, &d,
                           &err) < 0)
                error_free(err);
            jset_str(o, "datasource-list", d.found[0] ? d.found : NULL);
        }
        json_object_array_add(arr, o);
    }
    (void)in;
    return arr;
}

/* ---- network configuration ---- */

struct netscan {
    struct gview *v;
    struct json_object *arr;
    const char *dir;
    const char *prefix;      /* file name prefix, or NULL */
    const char *kind;
};

static void net_add(struct json_object *arr, const char *file,
                    const char *kind, bool mac, struct json_object *ifs,
                    const char *risk)
{
    struct json_object *o = json_object_new_object();
    jset_str(o, "file", file);
    jset_str(o, "kind", kind);
    jset_bool(o, "mac-bound", mac);
    json_object_object_add(o, "interfaces", ifs ? ifs : json_object_new_array());
    jset_str(o, "risk", risk);
    json_object_array_add(arr, o);
}

static int net_cb(const char *name, enum gtype t, void *opaque)
{
    struct netscan *n = opaque;
    if (n->prefix && strncmp(name, n->prefix, strlen(n->prefix)))
        return 0;
    if (!n->prefix && !strcmp(n->kind, "netplan") &&
        (strlen(name) < 6 || strcmp(name + strlen(name) - 5, ".yaml")))
        return 0;
    if (!strcmp(name, "ifcfg-lo"))
        return 0;
    char p[600];
    char *text = NULL;
    vf_error *err = NULL;
    snprintf(p, sizeof(p), "%s/%s", n->dir, name);
    if (gview_read(n->v, p, CONF_MAX, &text, NULL, &err) < 0) {
        error_free(err);
        return 0;
    }
    bool mac = false;
    struct json_object *ifs = json_object_new_array();
    const char *risk = NULL;
    if (!strcmp(n->kind, "ifcfg")) {
        char *hw = kv_get(text, "HWADDR"), *dev = kv_get(text, "DEVICE");
        mac = hw && *hw;
        if (dev)
            json_object_array_add(ifs, jstr(dev));
        risk = mac ? "HWADDR pins the interface to the old MAC address"
                   : "interface name may change on new hardware";
        free(hw);
        free(dev);
    } else if (!strcmp(n->kind, "netplan")) {
        mac = strstr(text, "macaddress:") != NULL;
        risk = mac ? "match on macaddress pins the old NIC"
                   : "interface names may change on new hardware";
    } else {
        mac = strstr(text, "mac-address=") != NULL;
        char *ifn = strstr(text, "interface-name=");
        if (ifn) {
            ifn += 15;
            char buf[64];
            snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(ifn, "\n"), ifn);
            json_object_array_add(ifs, jstr(buf));
        }
        risk = mac ? "mac-address pins the connection to the old NIC"
                   : "interface-name may change on new hardware";
    }
    net_add(n->arr, p, n->kind, mac, ifs, risk);
    free(text);
    return 0;
}

struct json_object *apps_network(struct inspect *in, struct gview *v)
{
    struct json_object *arr = json_object_new_array();
    char *text = NULL;
    vf_error *err = NULL;
    static const char *const udev[] = {
        "/etc/udev/rules.d/70-persistent-net.rules",
        "/etc/udev/rules.d/75-persistent-net-generator.rules", NULL };
    for (int i = 0; udev[i]; i++) {
        if (gview_stat(v, udev[i], NULL) != GT_FILE)
            continue;
        if (gview_read(v, udev[i], CONF_MAX, &text, NULL, &err) < 0) {
            error_free(err);
            err = NULL;
            continue;
        }
        struct json_object *ifs = json_object_new_array();
        for (char *p = text; (p = strstr(p, "NAME=\""));) {
            p += 6;
            char buf[64];
            snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(p, "\""), p);
            json_object_array_add(ifs, jstr(buf));
        }
        net_add(arr, udev[i], "udev-persistent-net",
                strstr(text, "ATTR{address}") != NULL, ifs,
                "rules bind interface names to the old MAC addresses");
        free(text);
    }
    if (gview_read(v, "/etc/network/interfaces", CONF_MAX, &text, NULL,
                   &err) == 0) {
        struct json_object *ifs = json_object_new_array();
        for (char *l = text, *nl; l; l = nl) {
            nl = strchr(l, '\n');
            if (nl)
                *nl++ = 0;
            char *s = str_trim(l);
            char name[64];
            if (sscanf(s, "iface %63s", name) == 1 && strcmp(name, "lo"))
                json_object_array_add(ifs, jstr(name));
        }
        if (json_object_array_length(ifs))
            net_add(arr, "/etc/network/interfaces", "ifupdown",
                    strstr(text, "hwaddress") != NULL, ifs,
                    "interface names may change on new hardware");
        else
            json_object_put(ifs);
        free(text);
    } else {
        error_free(err);
    }
    err = NULL;
    static const struct {
        const char *dir, *prefix, *kind;
    } dirs[] = {
        { "/etc/sysconfig/network-scripts", "ifcfg-", "ifcfg" },
        { "/etc/sysconfig/network", "ifcfg-", "ifcfg" },
        { "/etc/netplan", NULL, "netplan" },
        { "/etc/NetworkManager/system-connections", NULL, "networkmanager" },
    };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        if (gview_stat(v, dirs[i].dir, NULL) != GT_DIR)
            continue;
        struct netscan n = { v, arr, dirs[i].dir, dirs[i].prefix,
                             dirs[i].kind };
        if (gview_list(v, dirs[i].dir, LIST_MAX, net_cb, &n, &err) < 0) {
            inspect_warn(in, "%s", error_msg(err));
            error_free(err);
            err = NULL;
        }
    }
    return arr;
}
