/*
 * prepare.c: the edit table, the edit queue (command line and --edits
 * files), running it, and the change log.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prepare/prepare.h"

/* An --edits file: a few hundred lines in practice. */
#define EDITS_FILE_MAX (4u << 20)
#define EDITS_MAX 10000

const struct prep_edit prep_edits[] = {
    { "hostname", true, edit_hostname, "HOSTNAME",
      "set the host name (/etc/hostname, /etc/hosts, distro files)" },
    { "timezone", true, edit_timezone, "TZ",
      "set the time zone (/etc/localtime, /etc/timezone)" },
    { "write", true, edit_write, "FILE:CONTENT",
      "write CONTENT to FILE (created 0644 root, or replaced)" },
    { "append-line", true, edit_append_line, "FILE:LINE",
      "append LINE to FILE (a newline first when it lacks one)" },
    { "upload", true, edit_upload, "HOSTFILE:PATH",
      "copy a host file into the guest (PATH may be a directory)" },
    { "mkdir", true, edit_mkdir, "DIR", "make DIR and its parents" },
    { "chmod", true, edit_chmod, "MODE:PATH", "set permissions (octal)" },
    { "chown", true, edit_chown, "UID.GID:PATH", "set the owner (numeric)" },
    { "delete", true, edit_delete, "PATH",
      "remove a file or a directory tree" },
    { "link", true, edit_link, "TARGET:LINK[:LINK...]",
      "make symbolic links to TARGET" },
    { "user-add", true, edit_user_add, "NAME[:UID][:GROUPS]",
      "add a user, its group and a home from /etc/skel" },
    { "password", true, edit_password, "USER:FILE",
      "set USER's password to the first line of the host FILE" },
    { "root-password", true, edit_root_password, "FILE",
      "set root's password to the first line of the host FILE" },
    { "password-lock", true, edit_password_lock, "USER",
      "lock USER's password (SSH keys still log in)" },
    { "ssh-inject", true, edit_ssh_inject, "USER:KEYFILE",
      "append the host KEYFILE's keys to USER's authorized_keys" },
    { "no-root-ssh", false, edit_no_root_ssh, NULL,
      "PermitRootLogin no for sshd" },
    { "disable-service", true, edit_disable_service, "NAME",
      "disable and mask a service (systemd, SysV, OpenRC)" },
    { "enable-service", true, edit_enable_service, "NAME",
      "enable a service as its unit's [Install] or script asks" },
    { "default-target", true, edit_default_target, "TARGET",
      "boot into TARGET (multi-user, graphical, ...)" },
    { "firstboot", true, edit_firstboot, "SCRIPT",
      "run the host SCRIPT once at the guest's next boot" },
    { "firstboot-command", true, edit_firstboot_command, "CMD",
      "run the shell command CMD once at the next boot" },
    { "cloud-init-seed", true, edit_cloud_init_seed, "DIR",
      "copy DIR's meta-data, user-data, ... as a NoCloud seed" },
    { "selinux-relabel", false, edit_selinux_relabel, NULL,
      "relabel the guest's files at its next boot (SELinux)" },
    { "sysprep", true, edit_sysprep, "OPS",
      "reset machine-specific state (all operations, or OPS)", true },
    { "remap-devices", true, edit_remap_devices, "BUS",
      "rename /dev/sdX-style disks for BUS (virtio-blk, virtio-scsi, sata, "
      "xen, hyperv, nvme)" },
    { "fstab-uuids", false, edit_fstab_uuids, NULL,
      "use UUID= for /dev/sdX-style names (fstab, crypttab, root=)" },
    { "add-drivers", true, edit_add_drivers, "LIST",
      "put these kernel modules in every initramfs (virtio_blk,...)" },
    { "remove-tools", false, edit_remove_tools, NULL,
      "disable other hypervisors' guest tools, remove them at first boot" },
    { "fix-leftovers", false, edit_fix_leftovers, NULL,
      "modprobe aliases, device caches, MAC-bound NIC config, X drivers" },
    { "cloud-init-datasource", true, edit_cloud_init_datasource, "LIST",
      "cloud-init's datasource_list (Ec2,...), its old instance removed" },
    { NULL },
};

const struct prep_edit *prep_find_edit(const char *name)
{
    for (const struct prep_edit *e = prep_edits; e->name; e++)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Names from the guest can hold control characters: not on a terminal. */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

void prep_log(struct prep *p, const char *file, const char *why,
              const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub(msg);
    if (!p->quiet)
        fprintf(stderr, "[%6.2f] %s\n", now() - p->t0, msg);
    struct json_object *c = json_object_new_object();
    json_object_object_add(c, "file", file ? json_object_new_string(file)
                                           : NULL);
    json_object_object_add(c, "change", json_object_new_string(msg));
    json_object_object_add(c, "why", why ? json_object_new_string(why)
                                         : NULL);
    json_object_array_add(p->changes, c);
}

void prep_warn(struct prep *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    scrub(msg);
    if (!p->quiet)
        fprintf(stderr, "[%6.2f] warning: %s\n", now() - p->t0, msg);
    json_object_array_add(p->warnings, json_object_new_string(msg));
}

const char *prep_os_str(struct prep *p, const char *key)
{
    struct json_object *v;
    if (!p->os || !json_object_object_get_ex(p->os, key, &v) || !v ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int prep_queue_add(struct prep_queue *q, const struct prep_edit *e,
                   const char *arg, vf_error **errp)
{
    if (q->n >= EDITS_MAX) {
        error_setg(errp, "more than %d edits", EDITS_MAX);
        return -1;
    }
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 16;
        void *nv = realloc(q->v, nc * sizeof(*q->v));
        if (!nv) {
            error_setg(errp, "out of memory");
            return -1;
        }
        q->v = nv;
        q->cap = nc;
    }
    q->v[q->n].e = e;
    q->v[q->n].arg = arg ? strdup(arg) : NULL;
    if (arg && !q->v[q->n].arg) {
        error_setg(errp, "out of memory");
        return -1;
    }
    q->n++;
    return 0;
}

void prep_queue_free(struct prep_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->v[i].arg);
    free(q->v);
    q->v = NULL;
    q->n = q->cap = 0;
}

int prep_queue_load(struct prep_queue *q, const char *path, vf_error **errp)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        error_setg_errno(errp, errno, "%s: cannot open", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    int lineno = 0, r = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        total += (size_t)n;
        if (total > EDITS_FILE_MAX) {
            error_setg(errp, "%s: larger than %u bytes", path,
                       EDITS_FILE_MAX);
            r = -1;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            continue;
        if (!strncmp(s, "--", 2))
            s += 2;
        size_t wl = strcspn(s, " \t=");
        char word[64];
        if (wl == 0 || wl >= sizeof(word)) {
            error_setg(errp, "%s:%d: no edit word", path, lineno);
            r = -1;
            break;
        }
        memcpy(word, s, wl);
        word[wl] = 0;
        char *arg = s + wl;
        if (*arg == '=')
            arg++;
        else
            while (*arg == ' ' || *arg == '\t')
                arg++;
        const struct prep_edit *e = prep_find_edit(word);
        if (!e) {
            error_setg(errp, "%s:%d: unknown edit '%s'", path, lineno, word);
            r = -1;
            break;
        }
        if (e->has_arg && !*arg && !e->arg_optional) {
            error_setg(errp, "%s:%d: %s needs an argument (%s)", path, lineno,
                       word, e->argname);
            r = -1;
            break;
        }
        if (!e->has_arg && *arg) {
            error_setg(errp, "%s:%d: %s takes no argument", path, lineno,
                       word);
            r = -1;
            break;
        }
        if (prep_queue_add(q, e, e->has_arg && *arg ? arg : NULL,
                           errp) < 0) {
            r = -1;
            break;
        }
    }
    if (r == 0 && ferror(f)) {
        error_setg(errp, "%s: read error", path);
        r = -1;
    }
    free(line);
    fclose(f);
    return r;
}

int prep_run(struct prep *p, const struct prep_queue *q, vf_error **errp)
{
    for (size_t i = 0; i < q->n; i++) {
        if (q->v[i].e->fn(p, q->v[i].arg, errp) < 0) {
            error_prepend(errp, "--%s: ", q->v[i].e->name);
            return -1;
        }
    }
    return 0;
}
