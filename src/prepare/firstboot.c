/*
 * firstboot.c: scripts the guest runs once, at its next boot.
 *
 * Each script is a file in /usr/lib/vmferry/firstboot/scripts, named
 * NNNN-NAME so they run in the order they were added (across several
 * prepare runs too).  A runner, /usr/lib/vmferry/firstboot/firstboot.sh,
 * moves each script aside, runs it with its output appended to
 * /var/log/vmferry-firstboot.log, and removes it: a script that reboots
 * the guest is not run twice.  The runner is started by whatever the guest
 * boots with: a systemd unit (vmferry-firstboot.service, wanted by
 * multi-user.target, skipped once the directory is empty), a SysV or
 * OpenRC script /etc/init.d/vmferry-firstboot with its links, or a line
 * in /etc/rc.local.  virt-customize's firstboot.ml does the same job with
 * the same pieces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

#define FB_DIR "/usr/lib/vmferry/firstboot"
#define FB_SCRIPTS FB_DIR "/scripts"
#define FB_RUNNER FB_DIR "/firstboot.sh"
#define FB_UNIT "/etc/systemd/system/vmferry-firstboot.service"
/* Scripts already waiting in the guest: a few, 9999 is the name space. */
#define FB_MAX 9999
#define TEXT_MAX (1u << 20)

static const char fb_runner[] =
    "#!/bin/sh\n"
    "# vmferry first-boot runner: runs each script of " FB_SCRIPTS "\n"
    "# once, in name order, its output appended to\n"
    "# /var/log/vmferry-firstboot.log.  A script is moved aside before it\n"
    "# runs and removed after, so one that reboots is not run again.\n"
    "d=" FB_SCRIPTS "\n"
    "log=/var/log/vmferry-firstboot.log\n"
    "lock=/run/vmferry-firstboot.lock\n"
    "[ -d /run ] || lock=/tmp/vmferry-firstboot.lock\n"
    "mkdir \"$lock\" 2>/dev/null || exit 0\n"
    "trap 'rmdir \"$lock\"' EXIT\n"
    "for f in \"$d\"/*; do\n"
    "    [ -f \"$f\" ] || continue\n"
    "    run=\"" FB_DIR "/running-${f##*/}\"\n"
    "    mv -f \"$f\" \"$run\" || { rm -f \"$f\"; continue; }\n"
    "    echo \"=== $(date '+%Y-%m-%d %H:%M:%S') running ${f##*/}\" >> \"$log\"\n"
    "    chmod 0755 \"$run\"\n"
    "    \"$run\" >> \"$log\" 2>&1 < /dev/null\n"
    "    echo \"=== ${f##*/} exited with status $?\" >> \"$log\"\n"
    "    rm -f \"$run\"\n"
    "done\n"
    "exit 0\n";

static const char fb_unit[] =
    "# vmferry first-boot scripts (" FB_SCRIPTS ")\n"
    "[Unit]\n"
    "Description=vmferry first-boot scripts\n"
    "After=network-online.target\n"
    "Wants=network-online.target\n"
    "Before=ssh.service sshd.service\n"
    "ConditionDirectoryNotEmpty=" FB_SCRIPTS "\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "ExecStart=" FB_RUNNER "\n"
    "RemainAfterExit=yes\n"
    "TimeoutSec=0\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

static const char fb_sysv[] =
    "#!/bin/sh\n"
    "### BEGIN INIT INFO\n"
    "# Provides:          vmferry-firstboot\n"
    "# Required-Start:    $local_fs $remote_fs $network $syslog\n"
    "# Required-Stop:\n"
    "# Default-Start:     2 3 4 5\n"
    "# Default-Stop:\n"
    "# Short-Description: vmferry first-boot scripts\n"
    "### END INIT INFO\n"
    "# chkconfig: 2345 99 01\n"
    "# description: vmferry first-boot scripts\n"
    "case \"$1\" in\n"
    "start) " FB_RUNNER " ;;\n"
    "stop|status|restart|reload|force-reload) ;;\n"
    "*) echo \"usage: $0 start\" >&2; exit 3 ;;\n"
    "esac\n"
    "exit 0\n";

static const char fb_openrc[] =
    "#!/sbin/openrc-run\n"
    "description=\"vmferry first-boot scripts\"\n"
    "depend() {\n"
    "    need localmount\n"
    "    use net\n"
    "    before sshd\n"
    "}\n"
    "start() {\n"
    "    ebegin \"Running vmferry first-boot scripts\"\n"
    "    " FB_RUNNER "\n"
    "    eend 0\n"
    "}\n";

/* The highest NNNN of the scripts waiting in the guest. */
static int fb_last(struct prep *p, vf_error **errp)
{
    struct prep_dir d;
    int last = 0;
    if (gview_stat(p->v, FB_SCRIPTS, NULL) != GT_DIR)
        return 0;
    if (prep_dir_read(p, FB_SCRIPTS, FB_MAX, &d, errp) < 0)
        return -1;
    for (size_t i = 0; i < d.n; i++) {
        const char *n = d.e[i].name;
        int v = 0, k = 0;
        while (k < 4 && n[k] >= '0' && n[k] <= '9')
            v = v * 10 + (n[k++] - '0');
        if (k == 4 && n[4] == '-' && v > last)
            last = v;
    }
    prep_dir_free(&d);
    return last;
}

static int fb_write(struct prep *p, const char *path, const char *text,
                    int mode, const char *why, const char *what,
                    vf_error **errp)
{
    if (prep_same_content(p, path, text, strlen(text)))
        return 0;
    if (gview_write(p->v, path, text, strlen(text), mode, 0, 0, GV_NOFOLLOW,
                    errp) < 0)
        return -1;
    prep_log(p, path, why, "%s", what);
    return 0;
}

/* /etc/rc.local (or /etc/rc.d/rc.local, where Red Hat keeps it): the
 * runner's line before its final "exit 0". */
static int fb_rc_local(struct prep *p, const char *why, vf_error **errp)
{
    const char *path = gview_lstat(p->v, "/etc/rc.d/rc.local") == GT_FILE
                           ? "/etc/rc.d/rc.local" : "/etc/rc.local";
    size_t len = 0;
    vf_error *err = NULL;
    char *cur = prep_read(p, path, TEXT_MAX, &len, &err);
    if (err) {
        error_propagate(errp, err);
        return -1;
    }
    if (cur && strstr(cur, FB_RUNNER)) {
        free(cur);
        return 0;
    }
    const char *line = FB_RUNNER "\n";
    size_t ll = strlen(line);
    char *out = malloc(len + ll + 32);
    if (!out) {
        free(cur);
        error_setg(errp, "out of memory");
        return -1;
    }
    size_t n = 0;
    if (!cur) {
        n = (size_t)sprintf(out, "#!/bin/sh\n%sexit 0\n", line);
    } else {
        /* before the last line that is "exit 0", else at the end */
        char *ex = NULL;
        for (char *s = cur; (s = strstr(s, "exit 0")); s += 6)
            if ((s == cur || s[-1] == '\n') &&
                (s[6] == '\n' || s[6] == 0 || s[6] == ' '))
                ex = s;
        size_t at = ex ? (size_t)(ex - cur) : len;
        memcpy(out, cur, at);
        n = at;
        if (n && out[n - 1] != '\n')
            out[n++] = '\n';
        memcpy(out + n, line, ll);
        n += ll;
        memcpy(out + n, cur + at, len - at);
        n += len - at;
    }
    int r = gview_write(p->v, path, out, n, 0755, -1, -1, GV_NOFOLLOW, errp);
    if (r == 0)
        prep_log(p, path, why, "Running the first-boot scripts from %s",
                 path);
    free(out);
    free(cur);
    return r;
}

/* The runner and what starts it, once per run. */
static int fb_install(struct prep *p, const char *why, vf_error **errp)
{
    if (gview_mkdir(p->v, FB_SCRIPTS, 0755, 0, 0, GV_PARENTS | GV_NOFOLLOW,
                    errp) < 0 ||
        fb_write(p, FB_RUNNER, fb_runner, 0755, why,
                 "Installing the first-boot runner " FB_RUNNER, errp) < 0)
        return -1;
    bool sd = prep_has_systemd(p);
    bool openrc = prep_real_dir(p, "/etc/runlevels");
    /* Red Hat's /etc/init.d links to rc.d/init.d: write the real one */
    const char *initd_dir = prep_real_dir(p, "/etc/rc.d/init.d")
                                ? "/etc/rc.d/init.d"
                                : prep_real_dir(p, "/etc/init.d")
                                      ? "/etc/init.d" : NULL;
    bool initd = initd_dir != NULL;
    char script[64], what[128];
    snprintf(script, sizeof(script), "%s/vmferry-firstboot",
             initd ? initd_dir : "/etc/init.d");
    snprintf(what, sizeof(what), "Installing the %s script %s",
             prep_real_dir(p, "/etc/runlevels") ? "OpenRC" : "SysV init",
             script);
    bool rcdirs = false;
    static const char *const rc[] = {
        "/etc/rc2.d", "/etc/rc3.d", "/etc/rc.d/rc3.d",
    };
    for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++)
        rcdirs |= gview_stat(p->v, rc[i], NULL) == GT_DIR;
    if (sd && fb_write(p, FB_UNIT, fb_unit, 0644, why,
                       "Installing the systemd unit " FB_UNIT, errp) < 0)
        return -1;
    if (initd && (openrc || rcdirs) &&
        fb_write(p, script, openrc ? fb_openrc : fb_sysv, 0755, why, what,
                 errp) < 0)
        return -1;
    if ((sd || (initd && (openrc || rcdirs))) &&
        prep_service_enable(p, "vmferry-firstboot.service", why, errp) < 0)
        return -1;
    if (!sd && !(initd && (openrc || rcdirs)))
        return fb_rc_local(p, why, errp);
    return 0;
}

int prep_firstboot_add(struct prep *p, const char *name, const char *script,
                       const char *why, vf_error **errp)
{
    if (p->firstboot_n == 0 && fb_install(p, why, errp) < 0)
        return -1;
    int last = fb_last(p, errp);
    if (last < 0)
        return -1;
    if (last >= FB_MAX) {
        error_setg(errp, FB_SCRIPTS " already holds script %d; no number "
                   "left", last);
        return -1;
    }
    /* NNNN-name, the name reduced to [A-Za-z0-9._-] */
    char base[64];
    size_t n = 0;
    for (const char *c = name; *c && n < 40; c++)
        base[n++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || strchr("._-", *c))
                        ? *c : '_';
    base[n] = 0;
    char path[128];
    snprintf(path, sizeof(path), FB_SCRIPTS "/%04d-%s", last + 1,
             n ? base : "script");
    /* a script without "#!" is a shell script */
    bool shebang = !strncmp(script, "#!", 2);
    size_t sl = strlen(script);
    char *text = malloc(sl + 16);
    if (!text) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int k = sprintf(text, "%s", shebang ? "" : "#!/bin/sh\n");
    memcpy(text + k, script, sl);
    size_t tl = (size_t)k + sl;
    if (tl && text[tl - 1] != '\n')
        text[tl++] = '\n';
    /* the same script already waiting (a guest prepared before) */
    struct prep_dir d;
    if (gview_stat(p->v, FB_SCRIPTS, NULL) == GT_DIR) {
        if (prep_dir_read(p, FB_SCRIPTS, FB_MAX, &d, errp) < 0) {
            free(text);
            return -1;
        }
        bool dup = false;
        for (size_t i = 0; i < d.n && !dup; i++) {
            const char *e = d.e[i].name;
            char ep[160];
            if (strlen(e) < 6 || e[4] != '-' || strcmp(e + 5, path +
                                                       strlen(FB_SCRIPTS) + 6))
                continue;
            snprintf(ep, sizeof(ep), FB_SCRIPTS "/%s", e);
            dup = prep_same_content(p, ep, text, tl);
        }
        prep_dir_free(&d);
        if (dup) {
            free(text);
            return 1;
        }
    }
    int r = gview_write(p->v, path, text, tl, 0755, 0, 0, GV_NOFOLLOW, errp);
    free(text);
    if (r < 0)
        return -1;
    p->firstboot_n++;
    prep_log(p, path, why, "Adding first-boot script %s", path);
    return 0;
}
