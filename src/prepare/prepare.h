/*
 * prepare.h: guest preparation (vmferry prepare): edits applied to a
 * guest's filesystems through libext2fs, on copy-on-write overlays of the
 * source disks (or on an image the user owns, --in-place), then converted
 * to the destination in one pass.
 *
 * An edit is a word with an optional argument, the same on the command
 * line (--hostname web1) and in an --edits file (hostname web1).  Each
 * edit is a function of prepare.c's table; the conversion edits a
 * --target turns on are edits too.  Every change an edit makes is
 * reported with prep_log: printed as it happens ("[0.04] ..."), and
 * listed in the --json document (file, what changed, why).
 */
#ifndef VF_PREPARE_H
#define VF_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"

struct gview;
struct inspect;

struct prep {
    struct inspect *in;
    struct json_object *report;    /* inspect's report of the guest */
    struct json_object *os;        /* the OS being edited (in report) */
    struct gview *v;               /* its file tree, writable */
    const char *target;            /* --target, or NULL */
    struct json_object *changes;   /* [{file, change, why}] */
    struct json_object *warnings;  /* [string] */
    double t0;                     /* start, for the log's timestamps */
    bool quiet;                    /* no log lines on stderr */
    /* firstboot scripts added so far (firstboot.c numbers them) */
    int firstboot_n;
};

/* One change, printed and recorded.  file may be NULL. */
void prep_log(struct prep *p, const char *file, const char *why,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A warning (printed, and listed in the JSON). */
void prep_warn(struct prep *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A fact of the OS being edited ("distro", "hostname", ...), or NULL. */
const char *prep_os_str(struct prep *p, const char *key);

/* ---- the edits ---- */

typedef int (*prep_fn)(struct prep *p, const char *arg, vf_error **errp);

struct prep_edit {
    const char *name;          /* the option word, without "--" */
    bool has_arg;
    prep_fn fn;
    const char *argname;       /* for --help, e.g. "HOSTNAME" */
    const char *help;          /* one line */
    bool arg_optional;         /* with has_arg: may be left out
                                  (--sysprep[=OPS]); fn then gets NULL */
};

/* NULL-name-terminated table of every edit, in --help order. */
extern const struct prep_edit prep_edits[];
const struct prep_edit *prep_find_edit(const char *name);

/* A queue of edits to run in order. */
struct prep_queue {
    struct {
        const struct prep_edit *e;
        char *arg;
    } *v;
    size_t n, cap;
};
int prep_queue_add(struct prep_queue *q, const struct prep_edit *e,
                   const char *arg, vf_error **errp);
/* Parse an --edits file: one edit per line ("word arg", "--word arg",
 * "word=arg"); blank lines and # comments skipped.  0 / -1 naming the
 * line. */
int prep_queue_load(struct prep_queue *q, const char *path,
                    vf_error **errp);
void prep_queue_free(struct prep_queue *q);
/* Run every edit; stops at the first error (naming the edit). */
int prep_run(struct prep *p, const struct prep_queue *q, vf_error **errp);

/* Queue the conversion edits target needs (target.c); an unknown target
 * is an error listing the known ones. */
int prep_target_edits(struct prep_queue *q, const char *target,
                      vf_error **errp);

/* What a target platform is to a Linux guest (target.c). */
struct prep_platform {
    const char *target;        /* --target name */
    const char *bus;           /* --remap-devices BUS, or NULL */
    bool uuids;                /* --fstab-uuids before the remap */
    const char *drivers;       /* --add-drivers LIST */
    const char *hypervisor;    /* "kvm", "xen", "vmware", "hyperv", "aws":
                                  whose guest tools are kept */
    const char *net_driver;    /* for modprobe.conf "alias ethN" */
    const char *disk_driver;   /* for "alias scsi_hostadapter" */
    const char *datasources;   /* cloud-init datasource_list, or NULL */
};
/* The platform of target (NULL: kvm, the local default), or NULL when
 * unknown. */
const struct prep_platform *prep_platform(const char *target);

/* ---- helpers for the edits (edit-util.c) ---- */

/* Read a whole guest file (at most max bytes); NULL if absent. */
char *prep_read(struct prep *p, const char *path, size_t max, size_t *len,
                vf_error **errp);
/* Is path a regular file (not a link) holding exactly these len bytes?
 * Edits skip a write that would change nothing, so preparing a guest
 * twice changes it once. */
bool prep_same_content(struct prep *p, const char *path, const void *data,
                       size_t len);
/* Does path exist (following symlinks)? */
bool prep_exists(struct prep *p, const char *path);
/* Split "A:B" at the first ':' into malloc'd *a and *b; -1 with an error
 * naming the edit when there is no ':' or either side is empty. */
int prep_split(const char *edit, const char *arg, char **a, char **b,
               vf_error **errp);
/* A number among the OS facts ("major-version"), or def. */
int64_t prep_os_int(struct prep *p, const char *key, int64_t def);
/* Read a host file (regular, at most max bytes) whole: malloc'd and
 * NUL-terminated. */
char *prep_read_host(const char *path, size_t max, size_t *len,
                     vf_error **errp);
/* Does the guest use systemd (/etc/systemd/system is a directory)? */
bool prep_has_systemd(struct prep *p);
/* Is path a directory reached through no symbolic link (every component
 * checked)?  Edits that walk guest trees or write into homes use it, so a
 * link cannot send them somewhere else. */
bool prep_real_dir(struct prep *p, const char *path);
/* The entries of a directory (following a link to it), sorted by name;
 * more than max is an error. */
struct prep_dirent {
    char *name;
    int type;                  /* enum gtype of the entry itself */
};
struct prep_dir {
    struct prep_dirent *e;
    size_t n, cap;
    bool oom;
};
int prep_dir_read(struct prep *p, const char *path, size_t max,
                  struct prep_dir *d, vf_error **errp);
void prep_dir_free(struct prep_dir *d);

/* Rewrite a guest text file line by line.  fn gets each line (no
 * newline; lines longer than PREP_LINE_MAX are kept as they are) and
 * returns PREP_LINE_KEEP, PREP_LINE_DROP, or PREP_LINE_SET after writing
 * the new line into repl (replen bytes); it logs its changes.  Absent
 * files, symlinks, files over max bytes or with NUL bytes (a warning)
 * are left alone.  Returns the number of lines changed, or -1. */
#define PREP_LINE_MAX 4095
enum { PREP_LINE_KEEP, PREP_LINE_DROP, PREP_LINE_SET };
typedef int (*prep_line_fn)(struct prep *p, void *opaque, const char *path,
                            int lineno, const char *line, char *repl,
                            size_t replen);
int prep_edit_lines(struct prep *p, const char *path, size_t max,
                    prep_line_fn fn, void *opaque, vf_error **errp);
/* The regular files of dir whose names start with prefix and end with
 * suffix (either may be NULL), sorted, at most PREP_DIR_MAX; an absent
 * dir gives none.  Free with prep_names_free. */
#define PREP_DIR_MAX 10000
int prep_list_dir(struct prep *p, const char *dir, const char *prefix,
                  const char *suffix, char ***names, size_t *n,
                  vf_error **errp);
void prep_names_free(char **names, size_t n);

/* ---- guest system helpers shared by the edits ---- */

/* services.c: disable a service the way the guest's init would: systemd
 * (unit masked: a symlink to /dev/null in /etc/systemd/system, its
 * *.wants / *.requires links removed), SysV (rc?.d S/K links removed)
 * and OpenRC (/etc/runlevels/ links removed).  Enable: unmasked, the
 * links its unit's [Install] section asks for, rc links from the
 * script's LSB or chkconfig header, the OpenRC default runlevel.  unit
 * is "name" or "name.TYPE" (.service when no type).  Absent is not an
 * error: returns 1 when something changed, 0 when nothing changed (or
 * nothing was there), -1 on error (a name that is not a unit name).
 * Each change is logged with why. */
int prep_service_disable(struct prep *p, const char *unit, const char *why,
                         vf_error **errp);
int prep_service_enable(struct prep *p, const char *unit, const char *why,
                        vf_error **errp);
/* Is there a unit file (or its template) or an init script for unit? */
bool prep_service_exists(struct prep *p, const char *unit);
/* firstboot.c: run script once at the next boot, after the ones added
 * before it (a systemd unit plus a SysV fallback, logging to
 * /var/log/vmferry-firstboot.log).  name is for the script's file name.
 * Returns 0 when added, 1 when the same script (name and content) is
 * already waiting (a guest prepared before), -1 on error. */
int prep_firstboot_add(struct prep *p, const char *name, const char *script,
                       const char *why, vf_error **errp);
/* The guest's command to remove packages non-interactively ("apt-get -y
 * purge", "dnf -y remove", "yum -y remove", "zypper -n rm", "apk del",
 * "pacman -Rns --noconfirm"), or NULL when unknown. */
const char *prep_pkg_remove_cmd(struct prep *p);

/* selinux.c: SELinux labels.  The guest's policy type ("targeted",
 * "mls", ...; *type malloc'd) when /etc/selinux/config is there and its
 * SELINUX= is not "disabled": 1; 0 when the guest does not use SELinux;
 * -1 when the config cannot be read. */
int prep_selinux_policy(struct prep *p, char **type, vf_error **errp);
/* After the edits, in a guest that uses SELinux: every file, directory
 * and link they made or rewrote (the view's written list) that has no
 * security.selinux gets the context the guest's file_contexts gives
 * it.  When those cannot be used: a warning, and /.autorelabel.  0 / -1
 * (a filesystem error). */
int prep_selinux_label(struct prep *p, vf_error **errp);

/* ---- edits (one group per file) ---- */

/* edit-devices.c */
int edit_remap_devices(struct prep *p, const char *arg, vf_error **errp);
int edit_fstab_uuids(struct prep *p, const char *arg, vf_error **errp);

/* edit-initramfs.c */
int edit_add_drivers(struct prep *p, const char *arg, vf_error **errp);

/* edit-tools.c */
int edit_remove_tools(struct prep *p, const char *arg, vf_error **errp);

/* edit-leftovers.c */
int edit_fix_leftovers(struct prep *p, const char *arg, vf_error **errp);

/* edit-cloudinit.c */
int edit_cloud_init_datasource(struct prep *p, const char *arg,
                               vf_error **errp);

/* edit-files.c */
int edit_hostname(struct prep *p, const char *arg, vf_error **errp);
int edit_timezone(struct prep *p, const char *arg, vf_error **errp);
int edit_write(struct prep *p, const char *arg, vf_error **errp);
int edit_append_line(struct prep *p, const char *arg, vf_error **errp);
int edit_upload(struct prep *p, const char *arg, vf_error **errp);
int edit_mkdir(struct prep *p, const char *arg, vf_error **errp);
int edit_chmod(struct prep *p, const char *arg, vf_error **errp);
int edit_chown(struct prep *p, const char *arg, vf_error **errp);
int edit_delete(struct prep *p, const char *arg, vf_error **errp);
int edit_link(struct prep *p, const char *arg, vf_error **errp);

/* edit-users.c */
int edit_user_add(struct prep *p, const char *arg, vf_error **errp);
int edit_password(struct prep *p, const char *arg, vf_error **errp);
int edit_root_password(struct prep *p, const char *arg, vf_error **errp);
int edit_password_lock(struct prep *p, const char *arg, vf_error **errp);
int edit_ssh_inject(struct prep *p, const char *arg, vf_error **errp);
int edit_no_root_ssh(struct prep *p, const char *arg, vf_error **errp);

/* edit-system.c */
int edit_disable_service(struct prep *p, const char *arg, vf_error **errp);
int edit_enable_service(struct prep *p, const char *arg, vf_error **errp);
int edit_default_target(struct prep *p, const char *arg, vf_error **errp);
int edit_firstboot(struct prep *p, const char *arg, vf_error **errp);
int edit_firstboot_command(struct prep *p, const char *arg, vf_error **errp);
int edit_cloud_init_seed(struct prep *p, const char *arg, vf_error **errp);
int edit_selinux_relabel(struct prep *p, const char *arg, vf_error **errp);

/* sysprep.c */
int edit_sysprep(struct prep *p, const char *arg, vf_error **errp);

#endif
