/*
 * sysprep.c: --sysprep[=OPS]: remove what makes the guest one particular
 * machine (its machine id, SSH host keys, logs, shell histories, DHCP
 * leases, temporary files, package caches, cron and mail spools, backup
 * files, persistent NIC names), so that each copy starts as a new one.
 * The operations and their names follow virt-sysprep's
 * (guestfs-tools sysprep/sysprep_operation_*.ml).
 *
 * Trees are walked without following symbolic links: a directory is
 * entered only when its own inode is a directory, a link is removed as a
 * link, never through it (a guest's /var/log/x -> /etc/passwd must not
 * empty /etc/passwd).  Walks are bounded in depth and entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* Trees walked: /var/log, /etc, spools.  Deeper is not a real system. */
#define SP_DEPTH 32
/* Entries in one directory, and visited by one operation. */
#define SP_DIR_MAX 100000
#define SP_TOTAL_MAX 1000000

struct sp_walk {
    const char *why;
    /* what to do with a file or link (name is the entry's): 0 keep,
     * 1 remove, 2 empty (regular files only) */
    int (*pick)(const char *name, int type);
    bool dirs_too;             /* remove directories under the top one */
    size_t visited, removed, emptied;
};

static int sp_walk_dir(struct prep *p, const char *dir, struct sp_walk *w,
                       int depth, vf_error **errp)
{
    if (depth > SP_DEPTH) {
        prep_warn(p, "%s: nested deeper than %d; not cleaned", dir, SP_DEPTH);
        return 0;
    }
    struct prep_dir d;
    if (prep_dir_read(p, dir, SP_DIR_MAX, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < d.n && r == 0; i++) {
        char *path = NULL;
        if (++w->visited > SP_TOTAL_MAX) {
            error_setg(errp, "%s: more than %d entries to clean", dir,
                       SP_TOTAL_MAX);
            r = -1;
            break;
        }
        if (asprintf(&path, "%s/%s", dir, d.e[i].name) < 0) {
            error_setg(errp, "out of memory");
            r = -1;
            break;
        }
        /* the inode decides, not the entry's type byte */
        enum gtype t = gview_lstat(p->v, path);
        if (t == GT_DIR) {
            if (w->dirs_too) {
                if ((r = gview_remove(p->v, path, true, errp)) == 0)
                    w->removed++;
            } else {
                r = sp_walk_dir(p, path, w, depth + 1, errp);
            }
        } else if (t == GT_FILE || t == GT_LINK) {
            int what = w->pick ? w->pick(d.e[i].name, (int)t) : 1;
            uint64_t size = 0;
            if (what == 2 && t == GT_FILE) {
                gview_stat(p->v, path, &size);
                if (size && (r = gview_write(p->v, path, "", 0, -1, -1, -1,
                                             GV_NOFOLLOW, errp)) == 0)
                    w->emptied++;
            } else if (what == 1) {
                if ((r = gview_remove(p->v, path, false, errp)) == 0)
                    w->removed++;
            }
        } else if (t == GT_OTHER && w->dirs_too) {
            if ((r = gview_remove(p->v, path, false, errp)) == 0)
                w->removed++;
        }
        free(path);
    }
    prep_dir_free(&d);
    return r;
}

/* Clean dir (when it is a real directory, reached through no link). */
static int sp_clean(struct prep *p, const char *dir, struct sp_walk *w,
                    vf_error **errp)
{
    if (!prep_real_dir(p, dir)) {
        if (gview_lstat(p->v, dir) == GT_LINK)
            prep_warn(p, "%s is a symbolic link; not cleaned", dir);
        return 0;
    }
    size_t r0 = w->removed, e0 = w->emptied;
    if (sp_walk_dir(p, dir, w, 0, errp) < 0)
        return -1;
    size_t r = w->removed - r0, e = w->emptied - e0;
    if (r && e)
        prep_log(p, dir, w->why, "Emptying %zu and removing %zu files under "
                 "%s", e, r, dir);
    else if (r)
        prep_log(p, dir, w->why, "Removing %zu entr%s under %s", r,
                 r == 1 ? "y" : "ies", dir);
    else if (e)
        prep_log(p, dir, w->why, "Emptying %zu files under %s", e, dir);
    return 0;
}

/* Remove one file or link, when its directory is real. */
static int sp_remove(struct prep *p, const char *path, const char *why,
                     vf_error **errp)
{
    char dir[512];
    const char *s = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", (int)(s - path), path);
    enum gtype t = gview_lstat(p->v, path);
    if ((t != GT_FILE && t != GT_LINK) || (dir[0] && !prep_real_dir(p, dir)))
        return 0;
    if (gview_remove(p->v, path, false, errp) < 0)
        return -1;
    prep_log(p, path, why, "Removing %s", path);
    return 1;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t l = strlen(s), sl = strlen(suf);
    return l >= sl && !strcmp(s + l - sl, suf);
}

static bool all_digits(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* ---- the operations ---- */

static int op_machine_id(struct prep *p, const char *why, vf_error **errp)
{
    uint64_t size = 0;
    enum gtype t = gview_lstat(p->v, "/etc/machine-id");
    if (t == GT_FILE && gview_stat(p->v, "/etc/machine-id", &size) &&
        size > 0) {
        if (gview_write(p->v, "/etc/machine-id", "", 0, -1, -1, -1,
                        GV_NOFOLLOW, errp) < 0)
            return -1;
        prep_log(p, "/etc/machine-id", why, "Emptying /etc/machine-id (a "
                 "new one is made at the next boot)");
    } else if (t == GT_LINK) {
        prep_warn(p, "/etc/machine-id is a symbolic link; left alone");
    }
    return sp_remove(p, "/var/lib/dbus/machine-id", why, errp) < 0 ? -1 : 0;
}

/* Does the guest make missing SSH host keys when sshd starts?  Red Hat
 * (sshd-keygen), SUSE (sshd-gen-keys-start), Arch (sshdgenkeys), Alpine
 * (its sshd init script) do; Debian and Ubuntu do not. */
static bool ssh_keys_regenerated(struct prep *p)
{
    static const char *const ev[] = {
        "/usr/lib/systemd/system/sshd-keygen@.service",
        "/usr/lib/systemd/system/sshd-keygen.service",
        "/lib/systemd/system/sshd-keygen.service",
        "/usr/lib/systemd/system/sshdgenkeys.service",
        "/usr/sbin/sshd-gen-keys-start",
    };
    for (size_t i = 0; i < sizeof(ev) / sizeof(ev[0]); i++)
        if (prep_exists(p, ev[i]))
            return true;
    const char *d = prep_os_str(p, "distro");
    static const char *const yes[] = {
        "rhel", "centos", "fedora", "rocky", "almalinux", "oraclelinux",
        "sles", "opensuse", "archlinux", "alpinelinux",
    };
    for (size_t i = 0; d && i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!strcmp(d, yes[i]))
            /* sshd-keygen came with Red Hat 7 */
            return i >= 3 || !strcmp(d, "fedora") ||
                   prep_os_int(p, "major-version", 7) >= 7;
    return false;
}

static int pick_host_key(const char *name, int type)
{
    return !strncmp(name, "ssh_host_", 9) ? 1 : 0;
}

static int op_ssh_hostkeys(struct prep *p, const char *why, vf_error **errp)
{
    struct sp_walk w = { .why = why, .pick = pick_host_key };
    if (!prep_real_dir(p, "/etc/ssh"))
        return 0;
    /* only /etc/ssh itself, not its subdirectories */
    struct prep_dir d;
    if (prep_dir_read(p, "/etc/ssh", SP_DIR_MAX, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < d.n && r >= 0; i++) {
        char path[512];
        if (!pick_host_key(d.e[i].name, d.e[i].type))
            continue;
        snprintf(path, sizeof(path), "/etc/ssh/%s", d.e[i].name);
        if ((r = sp_remove(p, path, why, errp)) > 0)
            w.removed++;
    }
    prep_dir_free(&d);
    if (r < 0)
        return -1;
    if (w.removed && !ssh_keys_regenerated(p) &&
        prep_firstboot_add(p, "ssh-hostkeys",
                           "#!/bin/sh\n# vmferry --sysprep removed the SSH "
                           "host keys: make new ones before sshd starts\n"
                           "ssh-keygen -A\n", why, errp) < 0)
        return -1;
    return 0;
}

/* Rotated and compressed logs go; live ones are emptied (daemons keep
 * writing to them, wtmp and lastlog keep their owner and mode); the
 * journal's files go. */
static int pick_log(const char *name, int type)
{
    static const char *const gone[] = {
        ".gz", ".xz", ".bz2", ".zst", ".lz4", ".old", ".journal",
        ".journal~",
    };
    if (type == GT_LINK)
        return 0;
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (has_suffix(name, gone[i]))
            return 1;
    const char *dot = strrchr(name, '.'), *dash = strrchr(name, '-');
    if (dot && all_digits(dot + 1, strlen(dot + 1)))
        return 1;              /* syslog.1 */
    if (dash && strlen(dash + 1) == 8 && all_digits(dash + 1, 8))
        return 1;              /* messages-20240101 */
    return 2;
}

static int op_logfiles(struct prep *p, const char *why, vf_error **errp)
{
    struct sp_walk w = { .why = why, .pick = pick_log };
    return sp_clean(p, "/var/log", &w, errp);
}

static int op_bash_history(struct prep *p, const char *why, vf_error **errp)
{
    static const char *const hist[] = {
        ".bash_history", ".zsh_history", ".sh_history", ".ash_history",
        ".history",
    };
    struct prep_dir d = { 0 };
    if (prep_real_dir(p, "/home") &&
        prep_dir_read(p, "/home", SP_DIR_MAX, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i <= d.n && r >= 0; i++) {
        char home[512];
        if (i == d.n)
            snprintf(home, sizeof(home), "/root");
        else
            snprintf(home, sizeof(home), "/home/%s", d.e[i].name);
        for (size_t k = 0; k < sizeof(hist) / sizeof(hist[0]) && r >= 0;
             k++) {
            char path[600];
            snprintf(path, sizeof(path), "%s/%s", home, hist[k]);
            r = sp_remove(p, path, why, errp);
        }
    }
    prep_dir_free(&d);
    return r < 0 ? -1 : 0;
}

static int pick_lease(const char *name, int type)
{
    return strstr(name, "lease") || !strncmp(name, "dhclient", 8) ? 1 : 0;
}

static int op_dhcp_client_state(struct prep *p, const char *why,
                                vf_error **errp)
{
    static const char *const all[] = {
        "/var/lib/dhclient", "/var/lib/dhcpcd", "/var/lib/udhcpc",
        "/var/lib/systemd/netif/leases",
    };
    static const char *const leases[] = {
        "/var/lib/dhcp", "/var/lib/NetworkManager", "/var/lib/wicked",
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        struct sp_walk w = { .why = why };
        if (sp_clean(p, all[i], &w, errp) < 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof(leases) / sizeof(leases[0]); i++) {
        struct sp_walk w = { .why = why, .pick = pick_lease };
        if (sp_clean(p, leases[i], &w, errp) < 0)
            return -1;
    }
    return 0;
}

static int op_tmp_files(struct prep *p, const char *why, vf_error **errp)
{
    static const char *const dirs[] = { "/tmp", "/var/tmp" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct sp_walk w = { .why = why, .dirs_too = true };
        if (sp_clean(p, dirs[i], &w, errp) < 0)
            return -1;
    }
    return 0;
}

static int pick_apt_bin(const char *name, int type)
{
    return has_suffix(name, ".bin") ? 1 : 0;
}

static int op_package_manager_cache(struct prep *p, const char *why,
                                    vf_error **errp)
{
    static const char *const dirs[] = {
        "/var/cache/apt/archives", "/var/cache/dnf", "/var/cache/yum",
        "/var/cache/zypp/packages", "/var/cache/apk", "/var/cache/pacman/pkg",
    };
    /* files only: apt wants archives/partial to exist */
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct sp_walk w = { .why = why };
        if (sp_clean(p, dirs[i], &w, errp) < 0)
            return -1;
    }
    if (!prep_real_dir(p, "/var/cache/apt"))
        return 0;
    struct prep_dir d;
    if (prep_dir_read(p, "/var/cache/apt", SP_DIR_MAX, &d, errp) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < d.n && r >= 0; i++) {
        char path[512];
        if (!pick_apt_bin(d.e[i].name, d.e[i].type))
            continue;
        snprintf(path, sizeof(path), "/var/cache/apt/%s", d.e[i].name);
        r = sp_remove(p, path, why, errp);
    }
    prep_dir_free(&d);
    return r < 0 ? -1 : 0;
}

static int op_files_in(struct prep *p, const char *const *dirs, size_t n,
                       const char *why, vf_error **errp)
{
    /* files only: the spool directories keep their owners and modes
     * (Debian's crontabs is 1730 root:crontab) */
    for (size_t i = 0; i < n; i++) {
        struct sp_walk w = { .why = why };
        if (sp_clean(p, dirs[i], &w, errp) < 0)
            return -1;
    }
    return 0;
}

static int op_cron_spool(struct prep *p, const char *why, vf_error **errp)
{
    static const char *const dirs[] = {
        "/var/spool/cron", "/var/spool/at", "/var/spool/atjobs",
        "/var/spool/atspool",
    };
    return op_files_in(p, dirs, sizeof(dirs) / sizeof(dirs[0]), why, errp);
}

static int op_mail_spool(struct prep *p, const char *why, vf_error **errp)
{
    static const char *const dirs[] = { "/var/spool/mail", "/var/mail" };
    return op_files_in(p, dirs, sizeof(dirs) / sizeof(dirs[0]), why, errp);
}

static int pick_backup(const char *name, int type)
{
    return has_suffix(name, "~") || has_suffix(name, ".bak") ? 1 : 0;
}

static int op_backup_files(struct prep *p, const char *why, vf_error **errp)
{
    static const char *const dirs[] = { "/etc", "/root" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct sp_walk w = { .why = why, .pick = pick_backup };
        if (sp_clean(p, dirs[i], &w, errp) < 0)
            return -1;
    }
    return 0;
}

static int op_passwd_backups(struct prep *p, const char *why,
                             vf_error **errp)
{
    static const char *const files[] = {
        "/etc/passwd-", "/etc/shadow-", "/etc/group-", "/etc/gshadow-",
        "/etc/subuid-", "/etc/subgid-",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (sp_remove(p, files[i], why, errp) < 0)
            return -1;
    return 0;
}

static int op_udev_persistent_net(struct prep *p, const char *why,
                                  vf_error **errp)
{
    return sp_remove(p, "/etc/udev/rules.d/70-persistent-net.rules", why,
                     errp) < 0 ? -1 : 0;
}

static const struct {
    const char *name;
    int (*fn)(struct prep *p, const char *why, vf_error **errp);
} sp_ops[] = {
    { "machine-id", op_machine_id },
    { "ssh-hostkeys", op_ssh_hostkeys },
    { "logfiles", op_logfiles },
    { "bash-history", op_bash_history },
    { "dhcp-client-state", op_dhcp_client_state },
    { "tmp-files", op_tmp_files },
    { "package-manager-cache", op_package_manager_cache },
    { "cron-spool", op_cron_spool },
    { "mail-spool", op_mail_spool },
    { "backup-files", op_backup_files },
    { "passwd-backups", op_passwd_backups },
    { "udev-persistent-net", op_udev_persistent_net },
};
#define SP_NOPS (sizeof(sp_ops) / sizeof(sp_ops[0]))

int edit_sysprep(struct prep *p, const char *arg, vf_error **errp)
{
    bool on[SP_NOPS];
    /* no list, or one starting with "-name": everything (but those) */
    bool all = !arg || !*arg || arg[0] == '-';
    for (size_t i = 0; i < SP_NOPS; i++)
        on[i] = all;
    if (arg && strlen(arg) > 1024) {
        error_setg(errp, "the operation list is too long");
        return -1;
    }
    char list[1100];
    snprintf(list, sizeof(list), "%s", arg ? arg : "");
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        bool off = t[0] == '-';
        const char *n = off ? t + 1 : t;
        size_t i = 0;
        while (i < SP_NOPS && strcmp(n, sp_ops[i].name))
            i++;
        if (i == SP_NOPS) {
            char known[512];
            size_t k = 0;
            for (size_t j = 0; j < SP_NOPS && k < sizeof(known); j++)
                k += (size_t)snprintf(known + k, sizeof(known) - k, "%s%s",
                                      j ? ", " : "", sp_ops[j].name);
            error_setg(errp, "unknown operation '%.64s' (known: %s)", n,
                       known);
            return -1;
        }
        on[i] = !off;
    }
    for (size_t i = 0; i < SP_NOPS; i++) {
        char why[64];
        snprintf(why, sizeof(why), "--sysprep %s", sp_ops[i].name);
        if (on[i] && sp_ops[i].fn(p, why, errp) < 0) {
            error_prepend(errp, "%s: ", sp_ops[i].name);
            return -1;
        }
    }
    return 0;
}
