/*
 * edit-leftovers.c: --fix-leftovers: what the old hardware left in the
 * guest's configuration that breaks, or misleads, on the new platform
 * (--target's, KVM without one).  virt-v2v's list (convert_linux.ml:
 * remove_blkid_cache, remove_lvm_cache, configure_kernel_modules,
 * configure_display_driver), plus the network files that pin the old
 * NIC's MAC address:
 * - modprobe "alias ethN" and "alias scsi_hostadapter" pointed at the
 *   target's NIC and disk drivers (further scsi_hostadapterN removed);
 * - the blkid caches and LVM's device cache and devices file (LVM
 *   2.03.12+ accepts only the PVs system.devices lists, by the old
 *   bus's IDs) removed;
 * - udev's 70-persistent-net.rules removed, HWADDR= dropped from ifcfg;
 * - X.org Device drivers of another hypervisor set to "modesetting";
 * - netplan, NetworkManager and ifupdown files matching the old MAC
 *   reported (they are the user's to rewrite).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* modprobe.conf, ifcfg and xorg.conf files: a few KiB. */
#define SMALL_CONF_MAX (1u << 20)

static const char *const WHY = "--fix-leftovers";

/* ---- modprobe aliases ---- */

struct aliases {
    const struct prep_platform *pf;
    bool hostadapter_seen;
};

/* "alias NAME MODULE [rest]" split in place; false when not one. */
static bool alias_split(char *l, char **name, char **mod, char **rest)
{
    char *s = l + strspn(l, " \t");
    if (strncmp(s, "alias", 5) || (s[5] != ' ' && s[5] != '\t'))
        return false;
    s += 5 + strspn(s + 5, " \t");
    *name = s;
    s += strcspn(s, " \t");
    if (!*s)
        return false;
    *s++ = 0;
    s += strspn(s, " \t");
    *mod = s;
    s += strcspn(s, " \t");
    *rest = s;
    if (*s)
        *s++ = 0;
    return **mod != 0;
}

static bool digits_only(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

static int alias_line(struct prep *p, void *opaque, const char *path,
                      int lineno, const char *line, char *repl, size_t rl)
{
    struct aliases *a = opaque;
    char buf[PREP_LINE_MAX + 1], *name, *mod, *rest;
    snprintf(buf, sizeof(buf), "%s", line);
    if (!alias_split(buf, &name, &mod, &rest))
        return PREP_LINE_KEEP;
    const char *want = NULL;
    if (!strncmp(name, "eth", 3) && digits_only(name + 3)) {
        want = a->pf->net_driver;
    } else if (!strncmp(name, "scsi_hostadapter", 16) &&
               (!name[16] || digits_only(name + 16))) {
        if (a->hostadapter_seen) {
            prep_log(p, path, WHY, "%s:%d: removing \"%s\" (the new disk "
                     "needs one driver)", path, lineno, line);
            return PREP_LINE_DROP;
        }
        a->hostadapter_seen = true;
        want = a->pf->disk_driver;
    }
    if (!want || !strcmp(mod, want))
        return PREP_LINE_KEEP;
    snprintf(repl, rl, "alias %s %s", name, want);
    prep_log(p, path, WHY, "%s:%d: \"%s\" -> \"%s\"", path, lineno, line,
             repl);
    return PREP_LINE_SET;
}

static int fix_aliases(struct prep *p, const struct prep_platform *pf,
                       vf_error **errp)
{
    struct aliases a = { .pf = pf };
    static const char *const files[] = { "/etc/modprobe.conf",
                                         "/etc/conf.modules" };
    for (size_t i = 0; i < 2; i++)
        if (prep_edit_lines(p, files[i], SMALL_CONF_MAX, alias_line, &a,
                            errp) < 0)
            return -1;
    char **names;
    size_t n;
    if (prep_list_dir(p, "/etc/modprobe.d", NULL, ".conf", &names, &n,
                      errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char path[600];
        snprintf(path, sizeof(path), "/etc/modprobe.d/%s", names[i]);
        r = prep_edit_lines(p, path, SMALL_CONF_MAX, alias_line, &a, errp);
    }
    prep_names_free(names, n);
    return r < 0 ? -1 : 0;
}

/* ---- caches and files to remove ---- */

static int remove_files(struct prep *p, vf_error **errp)
{
    static const struct {
        const char *path, *why;
    } files[] = {
        { "/etc/blkid.tab", "blkid cache of the old devices" },
        { "/etc/blkid.tab.old", "blkid cache of the old devices" },
        { "/etc/blkid/blkid.tab", "blkid cache of the old devices" },
        { "/etc/blkid/blkid.tab.old", "blkid cache of the old devices" },
        { "/etc/lvm/cache/.cache", "LVM cache of the old devices" },
        { "/etc/lvm/devices/system.devices",
          "LVM devices file naming the old disks' IDs" },
        { "/etc/udev/rules.d/70-persistent-net.rules",
          "udev rules naming NICs by the old MAC addresses" },
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (gview_lstat(p->v, files[i].path) == GT_NONE)
            continue;
        if (gview_remove(p->v, files[i].path, false, errp) < 0)
            return -1;
        prep_log(p, files[i].path, WHY, "Removing %s (%s)", files[i].path,
                 files[i].why);
    }
    return 0;
}

/* ---- ifcfg HWADDR= ---- */

static int hwaddr_line(struct prep *p, void *opaque, const char *path,
                       int lineno, const char *line, char *repl, size_t rl)
{
    const char *s = line + strspn(line, " \t");
    if (strncmp(s, "HWADDR=", 7))
        return PREP_LINE_KEEP;
    prep_log(p, path, WHY, "%s:%d: removing %s (the new NIC has another "
             "MAC address)", path, lineno, s);
    return PREP_LINE_DROP;
}

static int fix_ifcfg(struct prep *p, vf_error **errp)
{
    static const char *const dirs[] = { "/etc/sysconfig/network-scripts",
                                        "/etc/sysconfig/network" };
    for (size_t d = 0; d < 2; d++) {
        char **names;
        size_t n;
        if (prep_list_dir(p, dirs[d], "ifcfg-", NULL, &names, &n, errp) < 0)
            return -1;
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/%s", dirs[d], names[i]);
            r = prep_edit_lines(p, path, SMALL_CONF_MAX, hwaddr_line, NULL,
                                errp);
        }
        prep_names_free(names, n);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* ---- X.org display drivers ---- */

struct xorg {
    const struct prep_platform *pf;
    bool in_device;
};

/* Display drivers tied to one hypervisor's virtual GPU. */
static const struct {
    const char *driver, *hypervisor;
} xdrivers[] = {
    { "vmware", "vmware" }, { "vmwgfx", "vmware" },
    { "vboxvideo", "virtualbox" }, { "vboxvga", "virtualbox" },
    { "vboxsvga", "virtualbox" },
    { "hyperv_fb", "hyperv" }, { "hyperv", "hyperv" },
    { "prlvideo", "parallels" }, { "xenfb", "xen" },
    { "qxl", "kvm" }, { "cirrus", "kvm" },
};

static int xorg_line(struct prep *p, void *opaque, const char *path,
                     int lineno, const char *line, char *repl, size_t rl)
{
    struct xorg *x = opaque;
    const char *s = line + strspn(line, " \t");
    if (!strncasecmp(s, "Section", 7)) {
        const char *q = strchr(s, '"');
        x->in_device = q && !strncasecmp(q + 1, "Device\"", 7);
        return PREP_LINE_KEEP;
    }
    if (!strncasecmp(s, "EndSection", 10)) {
        x->in_device = false;
        return PREP_LINE_KEEP;
    }
    if (!x->in_device || strncasecmp(s, "Driver", 6) ||
        (s[6] != ' ' && s[6] != '\t'))
        return PREP_LINE_KEEP;
    const char *q = strchr(s, '"');
    const char *e = q ? strchr(q + 1, '"') : NULL;
    if (!e)
        return PREP_LINE_KEEP;
    size_t dl = (size_t)(e - q - 1);
    for (size_t i = 0; i < sizeof(xdrivers) / sizeof(xdrivers[0]); i++) {
        if (strlen(xdrivers[i].driver) != dl ||
            strncmp(q + 1, xdrivers[i].driver, dl) ||
            !strcmp(xdrivers[i].hypervisor, x->pf->hypervisor))
            continue;
        snprintf(repl, rl, "%.*s%.*s\"modesetting\"%s", (int)(s - line), line,
                 (int)(q - s), s, e + 1);
        prep_log(p, path, WHY, "%s:%d: display driver \"%s\" -> "
                 "\"modesetting\"", path, lineno, xdrivers[i].driver);
        return PREP_LINE_SET;
    }
    return PREP_LINE_KEEP;
}

static int fix_xorg(struct prep *p, const struct prep_platform *pf,
                    vf_error **errp)
{
    static const char *const files[] = { "/etc/X11/xorg.conf",
                                         "/etc/X11/XF86Config" };
    for (size_t i = 0; i < 2; i++) {
        struct xorg x = { .pf = pf };
        if (prep_edit_lines(p, files[i], SMALL_CONF_MAX, xorg_line, &x,
                            errp) < 0)
            return -1;
    }
    char **names;
    size_t n;
    if (prep_list_dir(p, "/etc/X11/xorg.conf.d", NULL, ".conf", &names, &n,
                      errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        char path[600];
        struct xorg x = { .pf = pf };
        snprintf(path, sizeof(path), "/etc/X11/xorg.conf.d/%s", names[i]);
        r = prep_edit_lines(p, path, SMALL_CONF_MAX, xorg_line, &x, errp);
    }
    prep_names_free(names, n);
    return r < 0 ? -1 : 0;
}

/* ---- network files pinned to the old MAC: reported ---- */

static void warn_mac_bound(struct prep *p)
{
    struct json_object *net;
    if (!json_object_object_get_ex(p->os, "network", &net) ||
        !json_object_is_type(net, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(net); i++) {
        struct json_object *e = json_object_array_get_idx(net, i), *mb;
        const char *kind = jget_str(e, "kind"), *file = jget_str(e, "file");
        if (!kind || !file || !json_object_object_get_ex(e, "mac-bound", &mb) ||
            !json_object_get_boolean(mb))
            continue;
        if (!strcmp(kind, "netplan"))
            prep_warn(p, "%s matches the NIC by macaddress: the new NIC has "
                      "another MAC address; edit the match, or give the "
                      "new NIC the old address", file);
        else if (!strcmp(kind, "networkmanager"))
            prep_warn(p, "%s binds the connection to mac-address=: the new "
                      "NIC has another MAC address; remove that line, or "
                      "give the new NIC the old address", file);
        else if (!strcmp(kind, "ifupdown"))
            prep_warn(p, "%s sets hwaddress: check it suits the new NIC",
                      file);
    }
}

int edit_fix_leftovers(struct prep *p, const char *arg, vf_error **errp)
{
    const struct prep_platform *pf = prep_platform(p->target);
    if (!pf)
        pf = prep_platform(NULL);
    if (fix_aliases(p, pf, errp) < 0 || remove_files(p, errp) < 0 ||
        fix_ifcfg(p, errp) < 0 || fix_xorg(p, pf, errp) < 0)
        return -1;
    warn_mac_bound(p);
    return 0;
}
