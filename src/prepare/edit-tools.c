/*
 * edit-tools.c: --remove-tools: the guest tools of the hypervisors the
 * guest leaves (every one but --target's) are disabled now and their
 * packages removed at first boot: VMware (open-vm-tools, the tarball
 * vmware-tools), VirtualBox additions, Hyper-V daemons, Citrix
 * xe-guest-utilities, Parallels tools.  Removing packages needs the
 * guest's package manager, so it runs as a first-boot script; disabling
 * the services now keeps them from running (and failing) before that.
 *
 * virt-v2v removes the same tools by running the package manager in its
 * appliance (convert_linux.ml: unconfigure_vmware, _vbox, _citrix,
 * _prltools); it keeps open-vm-tools when ubuntu-server is installed,
 * because removing it would remove that metapackage, and so do we.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

#define TOOL_PKGS_MAX 32

static const struct family {
    const char *hypervisor;    /* as struct prep_platform names it */
    const char *what;          /* for the log */
    const char *facts[3];      /* inspection's tools names */
    const char *units[12];     /* services, systemd or SysV names */
    const char *pkgs[8];       /* package names; "x*" is a prefix */
    const char *evidence[4];   /* files that mean it is installed */
} families[] = {
    { "vmware", "the VMware tools",
      { "open-vm-tools", "vmware-tools" },
      { "vmtoolsd", "open-vm-tools", "vmware-tools", "vgauth", "vgauthd",
        "vmware-tools-thinprint", "vmware-vmblock-fuse" },
      { "open-vm-tools", "open-vm-tools-desktop", "open-vm-tools-sdmp",
        "vmware-tools*", "VMwareTools", "kmod-vmware-tools*" },
      { "/usr/bin/vmtoolsd", "/etc/vmware-tools/locations" } },
    { "virtualbox", "the VirtualBox guest additions",
      { "virtualbox-guest-additions" },
      { "vboxadd", "vboxadd-service", "vboxadd-x11", "vboxservice",
        "virtualbox-guest-utils" },
      { "virtualbox-guest-utils", "virtualbox-guest-x11",
        "virtualbox-guest-*", "VirtualBox-guest-*" },
      { "/usr/sbin/VBoxService", "/var/lib/VBoxGuestAdditions" } },
    { "hyperv", "the Hyper-V daemons",
      { "hyperv-daemons" },
      { "hv-kvp-daemon", "hv-vss-daemon", "hv-fcopy-daemon", "hypervkvpd",
        "hypervvssd", "hypervfcopyd", "hv_kvp_daemon", "hv_vss_daemon",
        "hv_fcopy_daemon", "hyperv-daemons.hv-kvp-daemon",
        "hyperv-daemons.hv-vss-daemon", "hyperv-daemons.hv-fcopy-daemon" },
      { "hyperv-daemons", "hyperv-daemons-license", "hypervkvpd",
        "hypervvssd", "hypervfcopyd", "hyperv-tools",
        "linux-cloud-tools-*" },
      { "/usr/sbin/hv_kvp_daemon", "/usr/sbin/hypervkvpd" } },
    { "xen", "the Citrix XenServer tools",
      { "xe-guest-utilities" },
      { "xe-linux-distribution", "xe-daemon" },
      { "xe-guest-utilities", "xe-guest-utilities*" },
      { "/usr/sbin/xe-daemon", "/etc/init.d/xe-linux-distribution" } },
    { "parallels", "the Parallels tools",
      { NULL },
      { "prltoolsd", "prl-x11", "prl_fsd", "prlshprint" },
      { "parallels-tools", "parallels-tools*" },
      { "/usr/lib/parallels-tools", "/usr/bin/prltoolsd" } },
};

static bool pkg_match(const char *pat, const char *name)
{
    size_t l = strlen(pat);
    if (l && pat[l - 1] == '*')
        return !strncmp(pat, name, l - 1);
    return !strcmp(pat, name);
}

/* The installed packages' list, or NULL when the database was not
 * read. */
static struct json_object *pkg_list(struct prep *p)
{
    struct json_object *pk, *listed, *list;
    if (!json_object_object_get_ex(p->os, "packages", &pk) ||
        !json_object_object_get_ex(pk, "listed", &listed) ||
        !json_object_get_boolean(listed) ||
        !json_object_object_get_ex(pk, "list", &list) ||
        !json_object_is_type(list, json_type_array))
        return NULL;
    return list;
}

static bool has_fact(struct prep *p, const char *name)
{
    struct json_object *tools;
    if (!name || !json_object_object_get_ex(p->os, "tools", &tools) ||
        !json_object_is_type(tools, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        const char *n = jget_str(json_object_array_get_idx(tools, i), "name");
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

static bool installed_pkg(struct json_object *list, const char *name)
{
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        const char *n = jget_str(json_object_array_get_idx(list, i), "name");
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

/* Packages of f to remove: the installed ones that match when the
 * database was read, else its plain names (the script tolerates absent
 * ones).  Returns how many went into out. */
static size_t family_pkgs(struct prep *p, const struct family *f,
                          struct json_object *list, const char **out,
                          size_t max)
{
    size_t n = 0;
    bool keep_ovt = !strcmp(f->hypervisor, "vmware") &&
                    installed_pkg(list, "ubuntu-server");
    if (list) {
        for (size_t i = 0; i < json_object_array_length(list) && n < max;
             i++) {
            const char *name =
                jget_str(json_object_array_get_idx(list, i), "name");
            if (!name || (keep_ovt && !strncmp(name, "open-vm-tools", 13)))
                continue;
            for (int k = 0; k < 8 && f->pkgs[k]; k++)
                if (pkg_match(f->pkgs[k], name)) {
                    out[n++] = name;
                    break;
                }
        }
        if (keep_ovt)
            prep_warn(p, "open-vm-tools is kept (ubuntu-server depends on "
                      "it); its services are disabled");
        return n;
    }
    for (int k = 0; k < 8 && f->pkgs[k] && n < max; k++)
        if (!strchr(f->pkgs[k], '*'))
            out[n++] = f->pkgs[k];
    return n;
}

static bool family_present(struct prep *p, const struct family *f,
                           struct json_object *list)
{
    for (int k = 0; k < 3 && f->facts[k]; k++)
        if (has_fact(p, f->facts[k]))
            return true;
    for (int k = 0; k < 4 && f->evidence[k]; k++)
        if (prep_exists(p, f->evidence[k]))
            return true;
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        const char *name = jget_str(json_object_array_get_idx(list, i),
                                    "name");
        for (int k = 0; name && k < 8 && f->pkgs[k]; k++)
            if (pkg_match(f->pkgs[k], name))
                return true;
    }
    return false;
}

/* Package names go into a shell script: only the characters package
 * names use (Debian policy 5.6.1, rpm's allowed set). */
static bool pkg_name_ok(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("+-._", *s)))
            return false;
    return true;
}

static int remove_family(struct prep *p, const struct family *f,
                         struct json_object *list, vf_error **errp)
{
    char why[96];
    snprintf(why, sizeof(why), "--remove-tools: %s", f->what);
    int disabled = 0;
    for (int k = 0; k < 12 && f->units[k]; k++) {
        int r = prep_service_disable(p, f->units[k], why, errp);
        if (r < 0)
            return -1;
        disabled += r;
    }
    const char *pkgs[TOOL_PKGS_MAX];
    size_t n = family_pkgs(p, f, list, pkgs, TOOL_PKGS_MAX);
    const char *cmd = n ? prep_pkg_remove_cmd(p) : NULL;
    if (n && !cmd) {
        prep_warn(p, "%s: no package manager known for this guest; their "
                  "packages stay installed", f->what);
        n = 0;
    }
    if (n) {
        /* one package at a time: a name that is not installed must not
         * keep the others */
        char script[8192];
        size_t o = (size_t)snprintf(script, sizeof(script),
                                    "#!/bin/sh\n# vmferry: remove %s\n",
                                    f->what);
        char list_txt[1024] = "";
        for (size_t i = 0; i < n; i++) {
            if (!pkg_name_ok(pkgs[i]))
                continue;
            int w = snprintf(script + o, sizeof(script) - o,
                             "%s %s || true\n", cmd, pkgs[i]);
            if (w < 0 || (size_t)w >= sizeof(script) - o)
                break;
            o += (size_t)w;
            snprintf(list_txt + strlen(list_txt),
                     sizeof(list_txt) - strlen(list_txt), "%s%s",
                     list_txt[0] ? " " : "", pkgs[i]);
        }
        char name[64];
        snprintf(name, sizeof(name), "remove-%s-tools", f->hypervisor);
        int added = list_txt[0] ? prep_firstboot_add(p, name, script, why,
                                                     errp) : 1;
        if (added < 0)
            return -1;
        if (added == 0)
            prep_log(p, NULL, why, "Removing %s at first boot: %s", f->what,
                     list_txt);
    } else if (!disabled) {
        prep_warn(p, "%s: found, but no service or package of theirs to "
                  "disable or remove", f->what);
    }
    return 0;
}

int edit_remove_tools(struct prep *p, const char *arg, vf_error **errp)
{
    const struct prep_platform *pf = p->target ? prep_platform(p->target)
                                               : NULL;
    const char *keep = pf ? pf->hypervisor : NULL;
    struct json_object *list = pkg_list(p);
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const struct family *f = &families[i];
        if (keep && !strcmp(keep, f->hypervisor))
            continue;
        if (!family_present(p, f, list))
            continue;
        if (remove_family(p, f, list, errp) < 0)
            return -1;
    }
    return 0;
}
