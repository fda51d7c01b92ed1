/*
 * source-vmx.c: a VMware .vmx as migrate's source.
 *
 * The format has no published spec; what is read here is what VMware
 * Workstation/ESXi write and document in their KB articles: one
 * `key = "value"` per line, keys case-insensitive, '#' comments, a
 * non-printable or quote character in a value written as '|' and two
 * hex digits (`|22` is '"').  Read: displayName, memsize (MiB),
 * numvcpus (1 when absent), firmware, guestOS, ethernetN.*, and the
 * disks: scsiX:Y, sataX:Y, nvmeX:Y and ideX:Y with present = "TRUE", a
 * disk deviceType and a fileName, opened relative to the .vmx's
 * directory (outside it only with allow_backing_path).
 *
 * Disk order: by bus, scsi then sata then nvme then ide, then controller
 * X, then unit Y: the first SCSI disk is what a VMware BIOS boots by
 * default, and the bus a guest type's boot disk sits on comes first in
 * that list for the guest types VMware creates.
 */
#include "pipeline/source-int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A .vmx is a few KiB; one of a megabyte is not one. */
#define VMX_MAX (1u << 20)
/* Longest line: values are names and paths, far below this. */
#define VMX_LINE_MAX 65536u
/* Controller and unit numbers VMware uses: 4 SCSI/SATA/NVMe controllers
 * of at most 64 units (NVMe namespaces, SATA ports 30); the bounds keep
 * hostile numbers out of the names built from them. */
#define VMX_MAX_CTRL 99
#define VMX_MAX_UNIT 999
#define VMX_MAX_NICS 100

struct vmx_kv {
    char *key;     /* lower case */
    char *val;     /* unescaped */
};

struct vmx {
    struct vmx_kv *kv;
    size_t n, cap;
};

static void vmx_free(struct vmx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->kv[i].key);
        free(x->kv[i].val);
    }
    free(x->kv);
}

/* The value of key (any case; the last line wins, as in VMware). */
static const char *vmx_get(const struct vmx *x, const char *key)
{
    for (size_t i = x->n; i-- > 0;)
        if (!strcasecmp(x->kv[i].key, key))
            return x->kv[i].val;
    return NULL;
}

static const char *vmx_getf(const struct vmx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *vmx_getf(const struct vmx *x, const char *fmt, ...)
{
    char key[128];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    return l > 0 && (size_t)l < sizeof(key) ? vmx_get(x, key) : NULL;
}

static bool vmx_true(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
                 !strcmp(v, "1"));
}

static int vmx_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Undo the |XX escapes of v in place. */
static int vmx_unescape(char *v, unsigned lineno, vf_error **errp)
{
    char *w = v;
    for (const char *r = v; *r; r++) {
        if (*r != '|') {
            *w++ = *r;
            continue;
        }
        int hi = r[1] ? vmx_hex(r[1]) : -1;
        int lo = hi >= 0 && r[2] ? vmx_hex(r[2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            error_setg(errp, "line %u: '|' escape not followed by two hex "
                       "digits of a non-NUL byte", lineno);
            return -1;
        }
        *w++ = (char)(hi << 4 | lo);
        r += 2;
    }
    *w = '\0';
    return 0;
}

static int vmx_line(struct vmx *x, char *line, unsigned lineno,
                    vf_error **errp)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t l = strlen(line);
    while (l && (line[l - 1] == ' ' || line[l - 1] == '\t' ||
                 line[l - 1] == '\r'))
        line[--l] = '\0';
    if (!*line || *line == '#')
        return 0;
    char *eq = strchr(line, '=');
    if (!eq) {
        error_setg(errp, "line %u is not 'key = \"value\"'", lineno);
        return -1;
    }
    char *ke = eq;
    while (ke > line && (ke[-1] == ' ' || ke[-1] == '\t'))
        ke--;
    *ke = '\0';
    if (!*line) {
        error_setg(errp, "line %u has no key", lineno);
        return -1;
    }
    for (char *c = line; *c; c++) {
        if (!isalnum((unsigned char)*c) && !strchr("._:-[]", *c)) {
            error_setg(errp, "line %u: '%s' is not a vmx key", lineno,
                       line);
            return -1;
        }
        *c = (char)tolower((unsigned char)*c);
    }
    char *v = eq + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    if (*v == '"') {
        if (vl < 2 || v[vl - 1] != '"') {
            error_setg(errp, "line %u: value of '%s' has no closing quote",
                       lineno, line);
            return -1;
        }
        v[vl - 1] = '\0';
        v++;
        if (strchr(v, '"')) {
            error_setg(errp, "line %u: value of '%s' holds a bare quote "
                       "(VMware writes |22)", lineno, line);
            return -1;
        }
    }
    if (vmx_unescape(v, lineno, errp) < 0)
        return -1;
    if (x->n == x->cap) {
        /* bounded by the file's size limit: a line per entry */
        size_t nc = x->cap ? x->cap * 2 : 64;
        struct vmx_kv *nk = realloc(x->kv, nc * sizeof(*nk));
        if (!nk) {
            error_setg(errp, "out of memory");
            return -1;
        }
        x->kv = nk;
        x->cap = nc;
    }
    struct vmx_kv *kv = &x->kv[x->n];
    kv->key = strdup(line);
    kv->val = strdup(v);
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        error_setg(errp, "out of memory");
        return -1;
    }
    x->n++;
    return 0;
}

static int vmx_parse(char *text, size_t len, struct vmx *x, vf_error **errp)
{
    if (strlen(text) != len) {
        error_setg(errp, "holds a NUL byte: not a .vmx text file");
        return -1;
    }
    unsigned lineno = 0;
    char *p = text;
    while (*p) {
        lineno++;
        char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > VMX_LINE_MAX) {
            error_setg(errp, "line %u is longer than %u bytes", lineno,
                       VMX_LINE_MAX);
            return -1;
        }
        if (nl)
            *nl = '\0';
        if (vmx_line(x, p, lineno, errp) < 0)
            return -1;
        p = nl ? nl + 1 : p + ll;
    }
    return 0;
}

/* ---- disks ---- */

static const char *const vmx_buses[] = { "scsi", "sata", "nvme", "ide" };
#define VMX_NBUSES (sizeof(vmx_buses) / sizeof(vmx_buses[0]))

struct vmx_dev {
    unsigned bus;          /* index into vmx_buses: the sort rank */
    unsigned x, y;
};

static int vmx_dev_cmp(const void *a, const void *b)
{
    const struct vmx_dev *p = a, *q = b;
    if (p->bus != q->bus)
        return p->bus < q->bus ? -1 : 1;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return p->y < q->y ? -1 : p->y > q->y;
}

/* Parse "<bus><x>:<y>.present". */
static bool vmx_dev_key(const char *key, struct vmx_dev *d)
{
    for (unsigned b = 0; b < VMX_NBUSES; b++) {
        size_t bl = strlen(vmx_buses[b]);
        if (strncmp(key, vmx_buses[b], bl))
            continue;
        const char *p = key + bl;
        unsigned long x = 0, y = 0;
        size_t nx = 0, ny = 0;
        for (; isdigit((unsigned char)*p) && nx < 4; p++, nx++)
            x = x * 10 + (unsigned long)(*p - '0');
        if (!nx || *p++ != ':')
            return false;
        for (; isdigit((unsigned char)*p) && ny < 4; p++, ny++)
            y = y * 10 + (unsigned long)(*p - '0');
        if (!ny || strcmp(p, ".present") || x > VMX_MAX_CTRL ||
            y > VMX_MAX_UNIT)
            return false;
        d->bus = b;
        d->x = (unsigned)x;
        d->y = (unsigned)y;
        return true;
    }
    return false;
}

enum vmx_devkind { VMX_DISK, VMX_CDROM, VMX_RDM, VMX_OTHER };

static enum vmx_devkind vmx_classify(const char *dt)
{
    if (!dt || !*dt)
        return VMX_DISK;    /* the default for a present disk unit */
    if (strcasestr(dt, "cdrom"))
        return VMX_CDROM;
    if (!strcasecmp(dt, "rawDisk"))
        return VMX_RDM;
    size_t l = strlen(dt);
    if (!strcasecmp(dt, "disk") || !strcasecmp(dt, "plainDisk") ||
        (l >= 8 && !strcasecmp(dt + l - 8, "harddisk")))
        return VMX_DISK;
    return VMX_OTHER;
}

static int vmx_open_disk(struct src_vm *vm, const struct vmx *x,
                         const struct vmx_dev *d, const char *dir,
                         const struct blk_open_opts *oo,
                         struct json_object *jdisks,
                         struct json_object *jcd, vf_error **errp)
{
    char dev[32];
    snprintf(dev, sizeof(dev), "%s%u:%u", vmx_buses[d->bus], d->x, d->y);
    const char *dt = vmx_getf(x, "%s.deviceType", dev);
    const char *fname = vmx_getf(x, "%s.fileName", dev);
    enum vmx_devkind k = vmx_classify(dt);
    if (k == VMX_CDROM) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "device", json_object_new_string(dev));
        json_object_object_add(j, "file", src_json_str(fname));
        json_object_array_add(jcd, j);
        return 0;
    }
    if (k == VMX_RDM) {
        error_setg(errp, "%s is a raw device mapping: not supported", dev);
        return -1;
    }
    if (k == VMX_OTHER) {
        src_note(vm, "%s of device type '%s' skipped", dev, dt);
        return 0;
    }
    if (!fname || !*fname) {
        error_setg(errp, "disk %s has no fileName", dev);
        return -1;
    }
    if (strstr(fname, "://")) {
        error_setg(errp, "disk %s file '%s' is a protocol, refused", dev,
                   fname);
        return -1;
    }
    if (!blk_name_is_confined(fname) && !(oo && oo->allow_backing_path)) {
        error_setg(errp, "disk %s file '%s' is outside the .vmx's "
                   "directory, refused (use --allow-backing-path)", dev,
                   fname);
        return -1;
    }
    char *path = NULL;
    if (fname[0] == '/')
        path = strdup(fname);
    else if (asprintf(&path, "%s/%s", dir, fname) < 0)
        path = NULL;
    if (!path) {
        error_setg(errp, "out of memory");
        return -1;
    }
    struct blk *b = src_open_named_disk(path, oo, errp);
    if (!b) {
        error_prepend(errp, "disk %s: ", dev);
        free(path);
        return -1;
    }
    struct json_object *j = json_object_new_object();
    json_object_object_add(j, "device", json_object_new_string(dev));
    json_object_object_add(j, "file", json_object_new_string(fname));
    json_object_object_add(j, "device-type", src_json_str(dt));
    json_object_object_add(j, "mode", src_json_str(vmx_getf(x, "%s.mode",
                                                            dev)));
    json_object_array_add(jdisks, j);
    int r = src_add_disk(vm, b, path, errp);
    free(path);
    return r;
}

static int vmx_disks(struct src_vm *vm, const struct vmx *x, const char *dir,
                     const struct blk_open_opts *oo, vf_error **errp)
{
    struct vmx_dev *devs = NULL;
    size_t n = 0;
    int ret = -1;
    struct json_object *jdisks = json_object_new_array();
    struct json_object *jcd = json_object_new_array();
    json_object_object_add(vm->facts, "disks", jdisks);
    json_object_object_add(vm->facts, "cdroms", jcd);
    if (x->n) {
        devs = calloc(x->n, sizeof(*devs));
        if (!devs) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < x->n; i++) {
        struct vmx_dev d;
        if (!vmx_dev_key(x->kv[i].key, &d) ||
            !vmx_true(vmx_get(x, x->kv[i].key)))
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = !vmx_dev_cmp(&devs[k], &d);
        if (!dup)
            devs[n++] = d;
    }
    if (n)
        qsort(devs, n, sizeof(*devs), vmx_dev_cmp);
    for (size_t i = 0; i < n; i++)
        if (vmx_open_disk(vm, x, &devs[i], dir, oo, jdisks, jcd, errp) < 0)
            goto out;
    ret = 0;
out:
    free(devs);
    return ret;
}

/* ---- the rest of the machine ---- */

static void vmx_fact(struct json_object *j, const char *key,
                     const char *val)
{
    if (val)
        json_object_object_add(j, key, json_object_new_string(val));
}

static void vmx_nics_and_controllers(struct src_vm *vm, const struct vmx *x)
{
    struct json_object *nics = json_object_new_array();
    json_object_object_add(vm->facts, "nics", nics);
    for (unsigned i = 0; i < VMX_MAX_NICS; i++) {
        if (!vmx_true(vmx_getf(x, "ethernet%u.present", i)))
            continue;
        struct json_object *j = json_object_new_object();
        char id[32];
        snprintf(id, sizeof(id), "ethernet%u", i);
        json_object_object_add(j, "id", json_object_new_string(id));
        vmx_fact(j, "model", vmx_getf(x, "%s.virtualDev", id));
        vmx_fact(j, "connection-type", vmx_getf(x, "%s.connectionType", id));
        vmx_fact(j, "network", vmx_getf(x, "%s.networkName", id));
        vmx_fact(j, "address-type", vmx_getf(x, "%s.addressType", id));
        const char *mac = vmx_getf(x, "%s.address", id);
        vmx_fact(j, "mac", mac ? mac : vmx_getf(x, "%s.generatedAddress",
                                                id));
        json_object_array_add(nics, j);
    }
    struct json_object *ctrls = json_object_new_array();
    json_object_object_add(vm->facts, "controllers", ctrls);
    for (unsigned b = 0; b < VMX_NBUSES; b++) {
        for (unsigned i = 0; i <= VMX_MAX_CTRL; i++) {
            const char *p = vmx_getf(x, "%s%u.present", vmx_buses[b], i);
            if (!vmx_true(p))
                continue;
            struct json_object *j = json_object_new_object();
            char id[32];
            snprintf(id, sizeof(id), "%s%u", vmx_buses[b], i);
            json_object_object_add(j, "id", json_object_new_string(id));
            json_object_object_add(j, "type",
                                   json_object_new_string(vmx_buses[b]));
            vmx_fact(j, "model", vmx_getf(x, "%s.virtualDev", id));
            json_object_array_add(ctrls, j);
        }
    }
}

static int vmx_machine(struct src_vm *vm, const struct vmx *x,
                       vf_error **errp)
{
    const char *v = vmx_get(x, "displayName");
    if (v && *v && !(vm->name = strdup(v))) {
        error_setg(errp, "out of memory");
        return -1;
    }
    uint64_t n;
    v = vmx_get(x, "memsize");
    if (v) {
        if (!src_parse_u64(v, SRC_MAX_MEMORY_MB, &n) || !n) {
            error_setg(errp, "memsize '%s' is not a size in MiB from 1 to "
                       "64 TiB", v);
            return -1;
        }
        vm->memory_mb = (unsigned)n;
    }
    v = vmx_get(x, "numvcpus");
    vm->vcpus = 1;
    if (v) {
        if (!src_parse_u64(v, SRC_MAX_VCPUS, &n) || !n) {
            error_setg(errp, "numvcpus '%s' is not a count from 1 to %d", v,
                       SRC_MAX_VCPUS);
            return -1;
        }
        vm->vcpus = (unsigned)n;
    }
    v = vmx_get(x, "firmware");
    if (v && !strcasecmp(v, "efi"))
        vm->firmware = "uefi";
    else if (v && !strcasecmp(v, "bios"))
        vm->firmware = "bios";
    else if (v)
        src_note(vm, "firmware '%s' not understood", v);
    vmx_fact(vm->facts, "guest-os", vmx_get(x, "guestOS"));
    vmx_fact(vm->facts, "virtual-hw-version",
             vmx_get(x, "virtualHW.version"));
    vmx_fact(vm->facts, "cores-per-socket", vmx_get(x, "cpuid.coresPerSocket"));
    vmx_fact(vm->facts, "uuid-bios", vmx_get(x, "uuid.bios"));
    vmx_fact(vm->facts, "secure-boot",
             vmx_get(x, "uefi.secureBoot.enabled"));
    vmx_nics_and_controllers(vm, x);
    return 0;
}

int src_vmx_open(const char *path, const struct blk_open_opts *oo,
                 struct src_vm *vm, vf_error **errp)
{
    struct vmx x = { 0 };
    char *text = NULL, *dir = NULL;
    int ret = -1;
    struct io *io = io_file_open(path, true, errp);
    if (!io)
        return -1;
    int64_t sz = io_size(io, errp);
    if (sz < 0 ||
        src_read_bytes(io, 0, (uint64_t)sz, VMX_MAX, "the file", &text,
                       errp) < 0) {
        io_close(io);
        return -1;
    }
    io_close(io);
    if (vmx_parse(text, (size_t)sz, &x, errp) < 0 ||
        vmx_machine(vm, &x, errp) < 0)
        goto out;
    dir = src_dir_of(path);
    if (!dir) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (vmx_disks(vm, &x, dir, oo, errp) < 0)
        goto out;
    ret = 0;
out:
    free(dir);
    free(text);
    vmx_free(&x);
    return ret;
}
