/*
 * edit-system.c: services, boot target, first-boot scripts, cloud-init
 * seed and SELinux relabel: --disable-service, --enable-service,
 * --default-target, --firstboot, --firstboot-command, --cloud-init-seed,
 * --selinux-relabel.  The service work is services.c's, the first-boot
 * machinery firstboot.c's; these are the edits' words around them.
 *
 * References: systemd.special(7) (default.target), inittab(5)
 * (initdefault), cloud-init's NoCloud data source (seed files in
 * /var/lib/cloud/seed/nocloud), libguestfs' SELinux_relabel.ml (the
 * guest counts as SELinux with /etc/selinux/config not "disabled").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* Host files: a first-boot script, one cloud-init seed file. */
#define SCRIPT_MAX (16u << 20)
#define SEED_MAX (16u << 20)
/* /etc/inittab, /etc/selinux/config: a few KiB. */
#define CONF_MAX (1u << 20)

#define SEED_DIR "/var/lib/cloud/seed/nocloud"

int edit_disable_service(struct prep *p, const char *arg, vf_error **errp)
{
    int r = prep_service_disable(p, arg, "--disable-service", errp);
    if (r == 0)
        prep_warn(p, "no service %s in the guest; nothing to disable", arg);
    return r < 0 ? -1 : 0;
}

int edit_enable_service(struct prep *p, const char *arg, vf_error **errp)
{
    if (!prep_service_exists(p, arg)) {
        /* a bad name: prep_service_enable says so */
        if (prep_service_enable(p, arg, "--enable-service", errp) < 0)
            return -1;
        error_setg(errp, "no unit file or init script for %s in the guest",
                   arg);
        return -1;
    }
    return prep_service_enable(p, arg, "--enable-service", errp) < 0 ? -1
                                                                     : 0;
}

/* ---- --default-target ---- */

static const struct {
    const char *target;
    char level;
} runlevels[] = {
    { "poweroff", '0' }, { "rescue", '1' }, { "multi-user", '3' },
    { "graphical", '5' }, { "reboot", '6' },
};

/* inittab: the initdefault line ("id:3:initdefault:") set to level. */
static int inittab_set(struct prep *p, char level, vf_error **errp)
{
    size_t len;
    char *text = prep_read(p, "/etc/inittab", CONF_MAX, &len, errp);
    if (!text)
        return -1;
    char *out = malloc(len + 32);
    if (!out) {
        free(text);
        error_setg(errp, "out of memory");
        return -1;
    }
    size_t o = 0;
    bool found = false;
    for (size_t i = 0; i < len;) {
        const char *e = memchr(text + i, '\n', len - i);
        size_t ll = e ? (size_t)(e - (text + i)) : len - i;
        const char *l = text + i;
        /* id:runlevels:action:process */
        const char *c1 = memchr(l, ':', ll);
        const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - l))
                            : NULL;
        if (!found && l[0] != '#' && c2 &&
            (size_t)(l + ll - (c2 + 1)) >= 11 &&
            !strncmp(c2 + 1, "initdefault", 11)) {
            found = true;
            size_t pre = (size_t)(c1 + 1 - l);
            memcpy(out + o, l, pre);
            o += pre;
            out[o++] = level;
            memcpy(out + o, c2, (size_t)(l + ll - c2));
            o += (size_t)(l + ll - c2);
        } else {
            memcpy(out + o, l, ll);
            o += ll;
        }
        if (e)
            out[o++] = '\n';
        i += ll + (e ? 1 : 0);
    }
    int r = -1;
    if (!found) {
        /* busybox and OpenRC inittabs have no run levels */
        error_setg(errp, "/etc/inittab has no initdefault line (not a SysV "
                   "init inittab); the default run level is not changed");
        goto out;
    }
    r = gview_write(p->v, "/etc/inittab", out, o, -1, -1, -1, 0, errp);
    if (r == 0)
        prep_log(p, "/etc/inittab", "--default-target", "Setting the "
                 "default run level to %c in /etc/inittab", level);
out:
    free(out);
    free(text);
    return r;
}

int edit_default_target(struct prep *p, const char *arg, vf_error **errp)
{
    char name[128];
    size_t l = strlen(arg);
    bool typed = l > 7 && !strcmp(arg + l - 7, ".target");
    if (l == 0 || l > 100 || strspn(arg, "abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-_.@") != l ||
        arg[0] == '.') {
        error_setg(errp, "'%.64s' is not a target name", arg);
        return -1;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(typed ? l - 7 : l), arg);
    char level = 0;
    for (size_t i = 0; i < sizeof(runlevels) / sizeof(runlevels[0]); i++)
        if (!strcmp(name, runlevels[i].target))
            level = runlevels[i].level;
    /* "runlevel3" or "3" for an inittab guest */
    if (!strncmp(name, "runlevel", 8) && name[8] >= '0' && name[8] <= '6' &&
        !name[9])
        level = name[8];
    if (name[0] >= '0' && name[0] <= '6' && !name[1])
        level = name[0];
    if (prep_has_systemd(p)) {
        static const char *const dirs[] = {
            "/etc/systemd/system", "/usr/lib/systemd/system",
            "/lib/systemd/system",
        };
        char unit[160], path[256] = "";
        if (level && !typed && (isdigit((unsigned char)name[0]) ||
                                !strncmp(name, "runlevel", 8)))
            snprintf(unit, sizeof(unit), "runlevel%c.target", level);
        else
            snprintf(unit, sizeof(unit), "%s.target", name);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !path[0];
             i++) {
            char cand[256];
            snprintf(cand, sizeof(cand), "%s/%s", dirs[i], unit);
            if (gview_stat(p->v, cand, NULL) == GT_FILE)
                snprintf(path, sizeof(path), "%s", cand);
        }
        if (!path[0]) {
            error_setg(errp, "no unit %s in the guest", unit);
            return -1;
        }
        if (gview_symlink(p->v, path, "/etc/systemd/system/default.target",
                          GV_NOFOLLOW, errp) < 0)
            return -1;
        prep_log(p, "/etc/systemd/system/default.target", "--default-target",
                 "Setting the default target to %s "
                 "(/etc/systemd/system/default.target -> %s)", unit, path);
        return 0;
    }
    if (gview_stat(p->v, "/etc/inittab", NULL) == GT_FILE) {
        if (!level) {
            error_setg(errp, "the guest boots with /etc/inittab, which has no "
                       "run level for %s", arg);
            return -1;
        }
        return inittab_set(p, level, errp);
    }
    error_setg(errp, "the guest has neither systemd nor /etc/inittab");
    return -1;
}

/* ---- first boot ---- */

int edit_firstboot(struct prep *p, const char *arg, vf_error **errp)
{
    size_t len;
    char *text = prep_read_host(arg, SCRIPT_MAX, &len, errp);
    if (!text)
        return -1;
    int r = -1;
    if (memchr(text, 0, len))
        error_setg(errp, "%s: holds a NUL byte; not a script", arg);
    else {
        const char *b = strrchr(arg, '/');
        r = prep_firstboot_add(p, b ? b + 1 : arg, text, "--firstboot", errp);
    }
    free(text);
    return r < 0 ? -1 : 0;
}

int edit_firstboot_command(struct prep *p, const char *arg, vf_error **errp)
{
    char *text = NULL;
    if (asprintf(&text, "#!/bin/sh\n%s\n", arg) < 0) {
        error_setg(errp, "out of memory");
        return -1;
    }
    /* the file name shows the command's first word */
    char name[32];
    size_t n = strcspn(arg, " \t;|&<>");
    snprintf(name, sizeof(name), "%.*s", (int)(n < 24 ? n : 24), arg);
    const char *b = strrchr(name, '/');
    int r = prep_firstboot_add(p, b ? b + 1 : name, text,
                               "--firstboot-command", errp);
    free(text);
    return r < 0 ? -1 : 0;
}

/* ---- --cloud-init-seed ---- */

int edit_cloud_init_seed(struct prep *p, const char *arg, vf_error **errp)
{
    static const char *const files[] = {
        "meta-data", "user-data", "network-config", "vendor-data",
    };
    const char *why = "--cloud-init-seed";
    char *data[4] = { NULL };
    size_t len[4] = { 0 };
    int r = -1;
    bool made_ud = false;
    for (int i = 0; i < 4; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", arg, files[i]) < 0) {
            error_setg(errp, "out of memory");
            goto out;
        }
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            data[i] = prep_read_host(path, SEED_MAX, &len[i], errp);
            if (!data[i]) {
                free(path);
                goto out;
            }
        }
        free(path);
    }
    if (!data[0]) {
        error_setg(errp, "%s: no meta-data file (NoCloud needs it, with an "
                   "instance-id)", arg);
        goto out;
    }
    /* cloud-init there, and reading NoCloud? */
    bool ci = false;
    struct json_object *tools, *t, *v;
    if (p->os && json_object_object_get_ex(p->os, "tools", &tools) &&
        json_object_is_type(tools, json_type_array))
        for (size_t i = 0; i < json_object_array_length(tools); i++) {
            t = json_object_array_get_idx(tools, i);
            if (!json_object_object_get_ex(t, "name", &v) ||
                strcmp(json_object_get_string(v), "cloud-init"))
                continue;
            ci = true;
            if (json_object_object_get_ex(t, "datasource-list", &v) && v &&
                json_object_is_type(v, json_type_string) &&
                !strstr(json_object_get_string(v), "NoCloud"))
                prep_warn(p, "the guest's cloud-init datasource_list has no "
                          "NoCloud; the seed is written but not read");
        }
    if (!ci)
        prep_warn(p, "cloud-init was not found in the guest; the seed is "
                  "written but nothing reads it");
    if (gview_mkdir(p->v, SEED_DIR, 0755, 0, 0, GV_PARENTS | GV_NOFOLLOW,
                    errp) < 0)
        goto out;
    for (int i = 0; i < 4; i++) {
        char dst[128];
        snprintf(dst, sizeof(dst), SEED_DIR "/%s", files[i]);
        /* NoCloud wants user-data too, even empty */
        if (!data[i] && i == 1) {
            data[i] = strdup("");
            len[i] = 0;
            made_ud = true;
            if (!data[i]) {
                error_setg(errp, "out of memory");
                goto out;
            }
        }
        if (!data[i])
            continue;
        /* user-data may hold passwords: root-only, like the rest */
        if (gview_write(p->v, dst, data[i], len[i], 0600, 0, 0, GV_NOFOLLOW,
                        errp) < 0)
            goto out;
        prep_log(p, dst, why, "Writing the cloud-init seed %s (%zu bytes%s)",
                 dst, len[i], made_ud && i == 1 ? ", none given" : "");
    }
    r = 0;
out:
    for (int i = 0; i < 4; i++)
        free(data[i]);
    return r;
}

/* ---- --selinux-relabel ---- */

int edit_selinux_relabel(struct prep *p, const char *arg, vf_error **errp)
{
    size_t len;
    vf_error *err = NULL;
    char *cfg = prep_read(p, "/etc/selinux/config", CONF_MAX, &len, &err);
    if (!cfg) {
        if (err) {
            error_propagate(errp, err);
            return -1;
        }
        prep_warn(p, "no /etc/selinux/config in the guest; nothing to "
                  "relabel");
        return 0;
    }
    char *mode = kv_get(cfg, "SELINUX");
    bool off = mode && !strcmp(mode, "disabled");
    free(mode);
    free(cfg);
    if (off) {
        prep_warn(p, "SELinux is disabled in the guest; not relabelling");
        return 0;
    }
    if (gview_write(p->v, "/.autorelabel", "", 0, 0644, 0, 0, GV_NOFOLLOW,
                    errp) < 0)
        return -1;
    prep_log(p, "/.autorelabel", "--selinux-relabel", "Creating /.autorelabel "
             "(the guest relabels its files at the next boot, then reboots)");
    return 0;
}
