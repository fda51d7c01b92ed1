/*
 * configdrive.c: the files of a cloud-init NoCloud seed or an OpenStack
 * config drive, assembled from the user's inputs and written as an ISO
 * 9660 or FAT image (fsimage.h).
 *
 * References: cloud-init's NoCloud and ConfigDrive datasources
 * (doc/rtd/reference/datasources/nocloud.rst, configdrive.rst;
 * cloudinit/sources/DataSourceNoCloud.py, helpers/openstack.py).
 *
 * NoCloud reads meta-data and user-data (both must exist) and the optional
 * network-config from the root of a vfat or iso9660 filesystem labelled
 * cidata.  ConfigDrive reads openstack/<version>/meta_data.json (needs
 * "uuid", its instance id), user_data and network_data.json, where
 * <version> is the newest directory it knows (2012-08-10, 2013-04-04,
 * ..., 2015-10-15, ...) present on the drive, "latest" when none is.
 * Nova writes every version it supports plus "latest", and puts
 * network_data.json only in 2015-10-15 and later.  We write 2012-08-10
 * and latest, and 2015-10-15 too when there is network data: with only
 * 2012-08-10 beside latest, cloud-init would read 2012-08-10 and miss
 * network_data.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/format.h"
#include "targets/configdrive.h"
#include "targets/fsimage.h"

#define CD_LABEL_NOCLOUD "cidata"
#define CD_LABEL_CONFIG2 "config-2"
/* RFC 1035: a domain name is at most 253 characters as text. */
#define CD_HOSTNAME_MAX 253
/* Instance ids are short ("i-0123...", UUIDs); cloud-init makes a
 * directory name of it. */
#define CD_IID_MAX 255
/* Public keys in all the key files together. */
#define CD_MAX_KEYS 256
/* Files of the largest layout: config-2 with everything, three times. */
#define CD_MAX_FILES 9

struct cd_buf {
    char *data;                   /* NUL-terminated (not counted in len) */
    size_t len;
};

struct cd {
    const struct configdrive_opts *o;
    bool config2;
    size_t budget;                /* bytes of input still allowed */
    struct cd_buf user, meta, net;
    char iid[CD_IID_MAX + 1];
    char *keys[CD_MAX_KEYS];      /* borrowed from key_bufs */
    size_t nkeys;
    struct cd_buf key_bufs[CONFIGDRIVE_MAX_KEY_FILES];
    struct fsimg_file files[CD_MAX_FILES];
    size_t nfiles;
};

int configdrive_fs_parse(const char *name, enum configdrive_fs *fs,
                         vf_error **errp)
{
    if (!strcmp(name, "iso")) {
        *fs = CONFIGDRIVE_ISO;
    } else if (!strcmp(name, "vfat")) {
        *fs = CONFIGDRIVE_VFAT;
    } else {
        error_setg(errp, "unknown format '%s' (iso or vfat)", name);
        return -1;
    }
    return 0;
}

/* s for a message: bytes other than printable ASCII as \xNN, cut at 64
 * characters. */
static const char *cd_shown(const char *s, char *buf, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; s[i] && w + 8 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 64) {
            w += (size_t)snprintf(buf + w, len - w, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7F && c != '\\')
            buf[w++] = (char)c;
        else
            w += (size_t)snprintf(buf + w, len - w, "\\x%02x", c);
    }
    buf[w] = 0;
    return buf;
}

/* Printable ASCII only?  What the metadata generators put in YAML and
 * JSON, so that nothing needs more than quoting. */
static bool cd_printable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7F)
            return false;
    }
    return true;
}

/* Read the regular file path whole into b, charged to the budget. */
static int cd_read(struct cd *c, const char *path, struct cd_buf *b,
                   vf_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        error_setg_errno(errp, errno, "%s: cannot open", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > c->budget) {
        error_setg(errp, "%s: the files given exceed the %u MiB a config "
                   "drive may hold", path, CONFIGDRIVE_CONTENT_MAX >> 20);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    b->data = malloc(size + 1);
    if (!b->data) {
        error_setg(errp, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    while (got < size) {
        ssize_t r = read(fd, b->data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                error_setg_errno(errp, errno, "%s: cannot read", path);
            else
                error_setg(errp, "%s: shrank while being read", path);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    b->data[size] = 0;
    b->len = size;
    c->budget -= size;
    return 0;
}

/* Parse b as one JSON object (nothing after it but white space). */
static struct json_object *cd_json_object(const struct cd_buf *b,
                                          const char *path, vf_error **errp)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    struct json_object *o = NULL;
    if (b->len <= INT32_MAX)
        o = json_tokener_parse_ex(tok, b->data, (int)b->len);
    size_t end = json_tokener_get_parse_end(tok);
    bool tail = false;
    for (size_t i = end; o && i < b->len; i++)
        tail |= !strchr(" \t\r\n", b->data[i]) || !b->data[i];
    if (!o || tail || !json_object_is_type(o, json_type_object)) {
        enum json_tokener_error je = json_tokener_get_error(tok);
        error_setg(errp, "%s: not a JSON object (%s)", path,
                   o ? (tail ? "data after it" : "another JSON type")
                     : je == json_tokener_continue
                         ? "it ends early"
                         : json_tokener_error_desc(je));
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* Does an authorized_keys line hold a public key: a key type word (after
 * options, if any) followed by the base64 blob?  Every blob starts with
 * "AAAA", the high bytes of the type name's 32-bit length (RFC 4253
 * 6.6).  Catches a wrong file given by mistake. */
static bool cd_key_line(const char *line)
{
    static const char *const types[] = { "ssh-", "ecdsa-", "sk-ssh-",
                                         "sk-ecdsa-" };
    for (const char *w = line; w; w = strchr(w, ' ')) {
        while (*w == ' ')
            w++;
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            const char *sp = strchr(w, ' ');
            if (!strncmp(w, types[i], strlen(types[i])) && sp &&
                !strncmp(sp + 1, "AAAA", 4))
                return true;
        }
    }
    return false;
}

/* The public keys of one key file: its lines but blank ones and
 * comments (what cloud-init keeps of authorized_keys). */
static int cd_keys(struct cd *c, const char *path, struct cd_buf *b,
                   vf_error **errp)
{
    if (cd_read(c, path, b, errp) < 0)
        return -1;
    size_t before = c->nkeys, lineno = 0;
    if (memchr(b->data, 0, b->len)) {
        error_setg(errp, "%s: not a text file of public keys", path);
        return -1;
    }
    for (char *line = b->data, *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = 0;
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' ||
                     line[l - 1] == '\t'))
            line[--l] = 0;
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        if (!strncmp(line, "-----BEGIN", 10)) {
            error_setg(errp, "%s: a private key, not public keys (give the "
                       ".pub file)", path);
            return -1;
        }
        if (!cd_printable(line)) {
            error_setg(errp, "%s: line %zu: a public key must be printable "
                       "ASCII", path, lineno);
            return -1;
        }
        if (!cd_key_line(line)) {
            error_setg(errp, "%s: line %zu is not an SSH public key", path,
                       lineno);
            return -1;
        }
        if (c->nkeys == CD_MAX_KEYS) {
            error_setg(errp, "%s: more than %d public keys in all", path,
                       CD_MAX_KEYS);
            return -1;
        }
        c->keys[c->nkeys++] = line;
    }
    if (c->nkeys == before) {
        error_setg(errp, "%s: no public key in it", path);
        return -1;
    }
    return 0;
}

/* A random (version 4) UUID, as Nova's instance uuids are. */
static int cd_uuid(char out[37], vf_error **errp)
{
    uint8_t u[16];
    size_t got = 0;
    while (got < sizeof(u)) {
        ssize_t r = getrandom(u + got, sizeof(u) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error_setg_errno(errp, errno, "cannot get random bytes");
            return -1;
        }
        got += (size_t)r;
    }
    u[6] = (uint8_t)((u[6] & 0x0F) | 0x40);    /* version 4 */
    u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);    /* RFC 4122 variant */
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
    return 0;
}

static int cd_check_inputs(struct cd *c, vf_error **errp)
{
    const struct configdrive_opts *o = c->o;
    char shown[300];
    if (!strcmp(o->label, CD_LABEL_CONFIG2)) {
        c->config2 = true;
    } else if (strcmp(o->label, CD_LABEL_NOCLOUD)) {
        error_setg(errp, "unknown label '%s' (cidata or config-2)",
                   cd_shown(o->label, shown, sizeof(shown)));
        return -1;
    }
    if (o->network_config && c->config2) {
        error_setg(errp, "network-config is for the NoCloud layout (label "
                   "cidata); config-2 takes network_data.json");
        return -1;
    }
    if (o->network_data && !c->config2) {
        error_setg(errp, "network_data.json is for the config-2 layout; "
                   "NoCloud (label cidata) takes network-config");
        return -1;
    }
    if (o->meta_data && (o->instance_id || o->hostname || o->n_ssh_keys)) {
        error_setg(errp, "metadata given as a file is used as it is: no "
                   "instance id, host name or SSH key can be added to it");
        return -1;
    }
    if (o->n_ssh_keys > CONFIGDRIVE_MAX_KEY_FILES) {
        error_setg(errp, "%zu SSH key files (at most %d)", o->n_ssh_keys,
                   CONFIGDRIVE_MAX_KEY_FILES);
        return -1;
    }
    if (o->hostname) {
        size_t l = strlen(o->hostname);
        if (l == 0 || l > CD_HOSTNAME_MAX) {
            error_setg(errp, "host name of %zu characters (1 to %d)", l,
                       CD_HOSTNAME_MAX);
            return -1;
        }
        /* RFC 1123 names, and '_' that some sites use */
        if (strspn(o->hostname, "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != l) {
            error_setg(errp, "host name '%s' has a character other than "
                       "letters, digits, '-', '_' and '.'",
                       cd_shown(o->hostname, shown, sizeof(shown)));
            return -1;
        }
    }
    if (o->instance_id) {
        size_t l = strlen(o->instance_id);
        if (l == 0 || l > CD_IID_MAX) {
            error_setg(errp, "instance id of %zu characters (1 to %d)", l,
                       CD_IID_MAX);
            return -1;
        }
        if (!cd_printable(o->instance_id)) {
            error_setg(errp, "instance id '%s' has a control character or "
                       "a byte beyond ASCII",
                       cd_shown(o->instance_id, shown, sizeof(shown)));
            return -1;
        }
    }
    return 0;
}

/* Append s to the YAML text as a single-quoted scalar (a quote is
 * doubled; s is printable ASCII, so nothing else needs escaping). */
static void cd_yaml_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* NoCloud's meta-data: instance-id, local-hostname, public-keys. */
static int cd_nocloud_meta(struct cd *c, vf_error **errp)
{
    FILE *f = open_memstream(&c->meta.data, &c->meta.len);
    if (!f) {
        error_setg_errno(errp, errno, "cannot build meta-data");
        return -1;
    }
    fputs("instance-id: ", f);
    cd_yaml_quoted(f, c->iid);
    fputc('\n', f);
    if (c->o->hostname) {
        fputs("local-hostname: ", f);
        cd_yaml_quoted(f, c->o->hostname);
        fputc('\n', f);
    }
    if (c->nkeys)
        fputs("public-keys:\n", f);
    for (size_t i = 0; i < c->nkeys; i++) {
        fputs("  - ", f);
        cd_yaml_quoted(f, c->keys[i]);
        fputc('\n', f);
    }
    if (ferror(f) | fclose(f)) {
        error_setg(errp, "cannot build meta-data: out of memory");
        return -1;
    }
    return 0;
}

/* OpenStack's meta_data.json as Nova writes it (the keys cloud-init
 * reads: uuid, hostname, public_keys; name, launch_index and keys for
 * other readers). */
static int cd_config2_meta(struct cd *c, vf_error **errp)
{
    struct json_object *o = json_object_new_object();
    struct json_object *pk = json_object_new_object();
    struct json_object *keys = json_object_new_array();
    if (!o || !pk || !keys) {
        json_object_put(o);
        json_object_put(pk);
        json_object_put(keys);
        error_setg(errp, "out of memory");
        return -1;
    }
    json_object_object_add(o, "uuid", json_object_new_string(c->iid));
    if (c->o->hostname) {
        json_object_object_add(o, "hostname",
                               json_object_new_string(c->o->hostname));
        json_object_object_add(o, "name",
                               json_object_new_string(c->o->hostname));
    }
    json_object_object_add(o, "launch_index", json_object_new_int(0));
    for (size_t i = 0; i < c->nkeys; i++) {
        char name[32];
        snprintf(name, sizeof(name), "key-%zu", i);
        json_object_object_add(pk, name, json_object_new_string(c->keys[i]));
        struct json_object *k = json_object_new_object();
        json_object_object_add(k, "name", json_object_new_string(name));
        json_object_object_add(k, "type", json_object_new_string("ssh"));
        json_object_object_add(k, "data", json_object_new_string(c->keys[i]));
        json_object_array_add(keys, k);
    }
    if (c->nkeys) {
        json_object_object_add(o, "public_keys", pk);
        json_object_object_add(o, "keys", keys);
    } else {
        json_object_put(pk);
        json_object_put(keys);
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    c->meta.data = s ? malloc(len + 2) : NULL;
    if (!c->meta.data) {
        json_object_put(o);
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(c->meta.data, s, len);
    c->meta.data[len] = '\n';
    c->meta.data[len + 1] = 0;
    c->meta.len = len + 1;
    json_object_put(o);
    return 0;
}

/* Read what was given, generate what was not. */
static int cd_gather(struct cd *c, vf_error **errp)
{
    const struct configdrive_opts *o = c->o;
    if (o->user_data && cd_read(c, o->user_data, &c->user, errp) < 0)
        return -1;
    if (o->network_config && cd_read(c, o->network_config, &c->net, errp) < 0)
        return -1;
    if (o->network_data) {
        if (cd_read(c, o->network_data, &c->net, errp) < 0)
            return -1;
        struct json_object *j = cd_json_object(&c->net, o->network_data,
                                               errp);
        if (!j)
            return -1;
        json_object_put(j);
    }
    if (o->meta_data) {
        if (cd_read(c, o->meta_data, &c->meta, errp) < 0)
            return -1;
        if (!c->config2)
            return 0;
        struct json_object *j = cd_json_object(&c->meta, o->meta_data, errp);
        if (!j)
            return -1;
        struct json_object *u;
        bool ok = json_object_object_get_ex(j, "uuid", &u) &&
                  json_object_is_type(u, json_type_string);
        json_object_put(j);
        if (!ok) {
            error_setg(errp, "%s: no \"uuid\" string (cloud-init takes it "
                       "as the instance id)", o->meta_data);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < o->n_ssh_keys; i++)
        if (cd_keys(c, o->ssh_keys[i], &c->key_bufs[i], errp) < 0)
            return -1;
    if (o->instance_id)
        snprintf(c->iid, sizeof(c->iid), "%s", o->instance_id);
    else if (cd_uuid(c->iid, errp) < 0)
        return -1;
    return c->config2 ? cd_config2_meta(c, errp) : cd_nocloud_meta(c, errp);
}

static void cd_add(struct cd *c, const char *path, const struct cd_buf *b)
{
    /* an absent user-data reads as empty: "" is a valid pointer */
    c->files[c->nfiles++] = (struct fsimg_file){
        .path = path, .data = b->data ? b->data : "", .len = b->len };
}

static void cd_layout(struct cd *c)
{
    if (!c->config2) {
        cd_add(c, "meta-data", &c->meta);
        cd_add(c, "user-data", &c->user);   /* NoCloud needs it, even empty */
        if (c->net.data)
            cd_add(c, "network-config", &c->net);
        return;
    }
    cd_add(c, "openstack/latest/meta_data.json", &c->meta);
    if (c->user.data)
        cd_add(c, "openstack/latest/user_data", &c->user);
    if (c->net.data)
        cd_add(c, "openstack/latest/network_data.json", &c->net);
    cd_add(c, "openstack/2012-08-10/meta_data.json", &c->meta);
    if (c->user.data)
        cd_add(c, "openstack/2012-08-10/user_data", &c->user);
    if (!c->net.data)
        return;
    cd_add(c, "openstack/2015-10-15/meta_data.json", &c->meta);
    if (c->user.data)
        cd_add(c, "openstack/2015-10-15/user_data", &c->user);
    cd_add(c, "openstack/2015-10-15/network_data.json", &c->net);
}

/* Write the image under a temporary name, fsync, rename, fsync the
 * directory. */
static int cd_write(struct cd *c, const char *out, vf_error **errp)
{
    char *tmp = NULL, *dcopy = NULL;
    struct io *io = blk_tmp_create(out, &tmp, errp);
    int ret = -1;
    if (!io)
        return -1;
    int r = c->o->fs == CONFIGDRIVE_ISO
                ? iso9660_write(io, c->o->label, c->files, c->nfiles, errp)
                : vfat_write(io, c->o->label, c->files, c->nfiles, errp);
    if (r < 0 || io_flush(io, errp) < 0) {
        error_prepend(errp, "%s: ", out);
        goto out;
    }
    io_close(io);
    io = NULL;
    if (blk_tmp_finish(tmp, out, false, errp) < 0)
        goto out;
    free(tmp);
    tmp = NULL;
    dcopy = strdup(out);
    if (!dcopy) {
        error_setg(errp, "out of memory");
        goto out;
    }
    ret = blk_fsync_dir(dirname(dcopy), errp);
out:
    io_close(io);
    blk_tmp_abandon(tmp);
    free(tmp);
    free(dcopy);
    return ret;
}

int configdrive_build(const struct configdrive_opts *o, const char *out,
                      vf_error **errp)
{
    struct cd *c = calloc(1, sizeof(*c));
    int ret = -1;
    if (!c) {
        error_setg(errp, "out of memory");
        return -1;
    }
    c->o = o;
    c->budget = CONFIGDRIVE_CONTENT_MAX;
    if (cd_check_inputs(c, errp) < 0 || cd_gather(c, errp) < 0)
        goto out;
    cd_layout(c);
    ret = cd_write(c, out, errp);
out:
    free(c->user.data);
    free(c->meta.data);
    free(c->net.data);
    for (size_t i = 0; i < CONFIGDRIVE_MAX_KEY_FILES; i++)
        free(c->key_bufs[i].data);
    free(c);
    return ret;
}
