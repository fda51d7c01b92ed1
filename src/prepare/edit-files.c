/*
 * edit-files.c: the plain file edits: hostname, timezone, write,
 * append-line, upload, mkdir, chmod, chown, delete, link (the words and
 * argument forms of virt-customize).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

/* Guest text files we rewrite (/etc/hosts, ...): far below this. */
#define TEXT_MAX (8u << 20)
/* --upload: a host file copied into the guest whole, in memory. */
#define UPLOAD_MAX (256u << 20)

static bool valid_hostname(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (const char *c = h; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
            return false;
    return h[0] != '-' && h[0] != '.';
}

/* Replace whole-word occurrences of old by new in text (malloc'd). */
static char *replace_word(const char *text, const char *old, const char *new,
                          int *count)
{
    size_t ol = strlen(old), nl = strlen(new), tl = strlen(text);
    size_t cap = tl + 1 + (nl > ol ? (nl - ol) * (tl / (ol ? ol : 1) + 1) : 0);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    *count = 0;
    for (size_t i = 0; i < tl;) {
        bool at = ol && !strncmp(text + i, old, ol) &&
                  (i == 0 || strchr(" \t\n", text[i - 1])) &&
                  (!text[i + ol] || strchr(" \t\n#", text[i + ol]));
        if (at) {
            memcpy(out + o, new, nl);
            o += nl;
            i += ol;
            (*count)++;
        } else {
            out[o++] = text[i++];
        }
    }
    out[o] = 0;
    return out;
}

int edit_hostname(struct prep *p, const char *arg, vf_error **errp)
{
    if (!valid_hostname(arg)) {
        error_setg(errp, "'%s' is not a valid host name", arg);
        return -1;
    }
    const char *why = "--hostname";
    char *old = NULL;
    size_t len;
    vf_error *err = NULL;
    char *cur = prep_read(p, "/etc/hostname", 4096, &len, &err);
    error_free(err);
    err = NULL;
    if (cur) {
        old = strdup(str_trim(cur));
        free(cur);
    } else if (prep_os_str(p, "hostname")) {
        old = strdup(prep_os_str(p, "hostname"));
    }
    char line[300];
    snprintf(line, sizeof(line), "%s\n", arg);
    if (gview_write(p->v, "/etc/hostname", line, strlen(line), -1, -1, -1, 0,
                    errp) < 0)
        goto fail;
    prep_log(p, "/etc/hostname", why, "Setting the host name to %s", arg);
    /* SUSE reads /etc/HOSTNAME; RHEL 6 /etc/sysconfig/network */
    if (prep_exists(p, "/etc/HOSTNAME")) {
        if (gview_write(p->v, "/etc/HOSTNAME", line, strlen(line), -1, -1, -1,
                        0, errp) < 0)
            goto fail;
        prep_log(p, "/etc/HOSTNAME", why, "Setting /etc/HOSTNAME");
    }
    /* the old name in /etc/hosts (127.0.1.1 on Debian) */
    char *hosts = old && *old ? prep_read(p, "/etc/hosts", TEXT_MAX, &len,
                                          &err) : NULL;
    if (err) {
        error_propagate(errp, err);
        goto fail;
    }
    if (hosts) {
        int n = 0;
        char *nh = replace_word(hosts, old, arg, &n);
        int r = 0;
        if (!nh) {
            error_setg(errp, "out of memory");
            r = -1;
        } else if (n > 0) {
            r = gview_write(p->v, "/etc/hosts", nh, strlen(nh), -1, -1, -1, 0,
                            errp);
            if (r == 0)
                prep_log(p, "/etc/hosts", why, "Renaming %s to %s in /etc/hosts",
                         old, arg);
        }
        free(nh);
        free(hosts);
        if (r < 0)
            goto fail;
    }
    free(old);
    return 0;
fail:
    free(old);
    return -1;
}

int edit_timezone(struct prep *p, const char *arg, vf_error **errp)
{
    if (!*arg || strstr(arg, "..") || arg[0] == '/' || strlen(arg) > 200) {
        error_setg(errp, "'%s' is not a time zone name", arg);
        return -1;
    }
    char zone[256];
    snprintf(zone, sizeof(zone), "/usr/share/zoneinfo/%s", arg);
    if (gview_stat(p->v, zone, NULL) != GT_FILE)
        prep_warn(p, "%s is not in the guest; /etc/localtime will dangle "
                  "until tzdata is installed", zone);
    if (gview_symlink(p->v, zone, "/etc/localtime", 0, errp) < 0)
        return -1;
    prep_log(p, "/etc/localtime", "--timezone", "Setting the time zone to %s",
             arg);
    if (prep_exists(p, "/etc/timezone")) {
        char line[256];
        snprintf(line, sizeof(line), "%s\n", arg);
        if (gview_write(p->v, "/etc/timezone", line, strlen(line), -1, -1, -1,
                        0, errp) < 0)
            return -1;
        prep_log(p, "/etc/timezone", "--timezone", "Writing /etc/timezone");
    }
    return 0;
}

int edit_write(struct prep *p, const char *arg, vf_error **errp)
{
    char *path, *content;
    if (prep_split("--write", arg, &path, &content, errp) < 0)
        return -1;
    int r = gview_write(p->v, path, content, strlen(content), -1, -1, -1, 0,
                        errp);
    if (r == 0)
        prep_log(p, path, "--write", "Writing %s (%zu bytes)", path,
                 strlen(content));
    free(path);
    free(content);
    return r;
}

int edit_append_line(struct prep *p, const char *arg, vf_error **errp)
{
    char *path, *line;
    if (prep_split("--append-line", arg, &path, &line, errp) < 0)
        return -1;
    size_t len = 0;
    char *cur = prep_read(p, path, TEXT_MAX, &len, errp);
    int r = -1;
    if (!cur && prep_exists(p, path))
        goto out;          /* a read error, or not a regular file */
    size_t ll = strlen(line);
    char *buf = malloc(len + ll + 3);
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    size_t n = 0;
    if (cur) {
        memcpy(buf, cur, len);
        n = len;
        if (n && buf[n - 1] != '\n')
            buf[n++] = '\n';
    }
    memcpy(buf + n, line, ll);
    n += ll;
    buf[n++] = '\n';
    r = gview_write(p->v, path, buf, n, -1, -1, -1, 0, errp);
    if (r == 0)
        prep_log(p, path, "--append-line", "Appending a line to %s", path);
    free(buf);
out:
    free(cur);
    free(path);
    free(line);
    return r;
}

int edit_upload(struct prep *p, const char *arg, vf_error **errp)
{
    char *host, *dest;
    if (prep_split("--upload", arg, &host, &dest, errp) < 0)
        return -1;
    int r = -1;
    char *data = NULL, *full = NULL;
    FILE *f = fopen(host, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) < 0) {
        error_setg_errno(errp, errno, "%s: cannot open", host);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > UPLOAD_MAX) {
        error_setg(errp, "%s: not a regular file of at most %u bytes", host,
                   UPLOAD_MAX);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        error_setg(errp, "%s: cannot read", host);
        goto out;
    }
    /* into a directory: keep the file's name */
    const char *target = dest;
    if (gview_stat(p->v, dest, NULL) == GT_DIR) {
        const char *b = strrchr(host, '/');
        if (asprintf(&full, "%s/%s", dest, b ? b + 1 : host) < 0) {
            full = NULL;
            error_setg(errp, "out of memory");
            goto out;
        }
        target = full;
    }
    r = gview_write(p->v, target, data, (size_t)st.st_size,
                    (int)(st.st_mode & 0777), -1, -1, 0, errp);
    if (r == 0)
        prep_log(p, target, "--upload", "Uploading %s to %s", host, target);
out:
    if (f)
        fclose(f);
    free(data);
    free(full);
    free(host);
    free(dest);
    return r;
}

int edit_mkdir(struct prep *p, const char *arg, vf_error **errp)
{
    if (gview_mkdir(p->v, arg, 0755, -1, -1, GV_PARENTS, errp) < 0)
        return -1;
    prep_log(p, arg, "--mkdir", "Making directory %s", arg);
    return 0;
}

int edit_chmod(struct prep *p, const char *arg, vf_error **errp)
{
    char *m, *path;
    if (prep_split("--chmod", arg, &m, &path, errp) < 0)
        return -1;
    char *end;
    long mode = strtol(m, &end, 8);
    int r = -1;
    if (*end || mode < 0 || mode > 07777)
        error_setg(errp, "'%s' is not an octal mode", m);
    else if ((r = gview_chmod(p->v, path, (int)mode, errp)) == 0)
        prep_log(p, path, "--chmod", "Setting the mode of %s to %04lo", path,
                 mode);
    free(m);
    free(path);
    return r;
}

int edit_chown(struct prep *p, const char *arg, vf_error **errp)
{
    char *ids, *path;
    if (prep_split("--chown", arg, &ids, &path, errp) < 0)
        return -1;
    char *end, *end2 = NULL;
    long uid = strtol(ids, &end, 10), gid = -1;
    if (*end == '.' || *end == ':')
        gid = strtol(end + 1, &end2, 10);
    int r = -1;
    if (end == ids || uid < 0 || uid > 0x7fffffffL || !end2 || *end2 ||
        gid < 0 || gid > 0x7fffffffL)
        error_setg(errp, "'%s': expected numeric UID.GID", ids);
    else if ((r = gview_chown(p->v, path, uid, gid, errp)) == 0)
        prep_log(p, path, "--chown", "Setting the owner of %s to %ld.%ld",
                 path, uid, gid);
    free(ids);
    free(path);
    return r;
}

int edit_delete(struct prep *p, const char *arg, vf_error **errp)
{
    if (!strcmp(arg, "/")) {
        error_setg(errp, "refusing to delete /");
        return -1;
    }
    if (!prep_exists(p, arg) && gview_lstat(p->v, arg) == GT_NONE)
        return 0;
    if (gview_remove(p->v, arg, true, errp) < 0)
        return -1;
    prep_log(p, arg, "--delete", "Deleting %s", arg);
    return 0;
}

int edit_link(struct prep *p, const char *arg, vf_error **errp)
{
    char *target, *links;
    if (prep_split("--link", arg, &target, &links, errp) < 0)
        return -1;
    int r = 0;
    for (char *s = links, *e; s && *s && r == 0; s = e) {
        e = strchr(s, ':');
        if (e)
            *e++ = 0;
        r = gview_symlink(p->v, target, s, 0, errp);
        if (r == 0)
            prep_log(p, s, "--link", "Linking %s -> %s", s, target);
    }
    free(target);
    free(links);
    return r;
}
