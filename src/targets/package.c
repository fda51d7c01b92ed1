/*
 * package.c: the package lifecycle (working directory, artifacts,
 * manifest.json, the final rename), the VM facts taken from inspection,
 * and the table of targets.  See package.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "engine/engine.h"
#include "targets/package.h"
#include "targets/preflight.h"

const struct pkg_target pkg_targets[] = {
    { "local", "a libvirt domain XML, a run.sh and qcow2 disks",
      "kvm", pkg_libvirt },
    { "libvirt", "the same as local", "kvm", pkg_libvirt },
    { "openstack", "qcow2 disks and glance.json (image properties)",
      "openstack", pkg_openstack },
    { "cloudstack-kvm", "qcow2 and register-template.json",
      "cloudstack-kvm", pkg_cloudstack },
    { "cloudstack-xen", "dynamic VHD and register-template.json",
      "cloudstack-xen", pkg_cloudstack },
    { "cloudstack-vmware", "an OVA and register-template.json",
      "cloudstack-vmware", pkg_cloudstack },
    { "cloudstack-hyperv", "VHDX and register-template.json",
      "cloudstack-hyperv", pkg_cloudstack },
    { "vmware", "an OVA (OVF first, streamOptimized VMDKs, manifest)",
      "vmware", pkg_vmware },
    { "aws", "an OVA and import-image.json (or --aws-format vmdk|raw|vhd)",
      "aws", pkg_aws },
    { "gce", "disk.raw in an oldgnu sparse tar, gzip'd on all cores",
      "gce", pkg_gce },
    { "azure", "a fixed VHD of a whole number of MiB", "azure", pkg_azure },
    { "hyperv", "VHDX disks", NULL, pkg_hyperv },
    { "virtualbox", "VDI disks (or --ova: an OVA in VirtualBox's OVF)",
      NULL, pkg_virtualbox },
    { "sce", "a raw image and the seed's manifest", "sce", pkg_sce },
    { NULL, NULL, NULL, NULL },
};

int64_t pkg_mtime(void)
{
    /* reproducible builds' convention: archives dated SOURCE_DATE_EPOCH */
    const char *e = getenv("SOURCE_DATE_EPOCH");
    if (e && *e) {
        char *end;
        errno = 0;
        long long v = strtoll(e, &end, 10);
        if (!*end && !errno && v >= 0 && v < (1LL << 33))
            return (int64_t)v;
    }
    return (int64_t)time(NULL);
}

const char *pkg_prep_target(const char *to)
{
    static const char *const map[][2] = {
        { "local", "kvm" }, { "libvirt", "kvm" },
        { "openstack", "openstack" }, { "cloudstack-kvm", "cloudstack-kvm" },
        { "cloudstack-xen", "cloudstack-xen" },
        { "cloudstack-vmware", "cloudstack-vmware" },
        { "cloudstack-hyperv", "cloudstack-hyperv" },
        { "hyperv", "cloudstack-hyperv" }, { "vmware", "vmware" },
        { "aws", "aws" }, { "gce", "gce" }, { "azure", "azure" },
        { "sce", "sce" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i][0], to))
            return map[i][1];
    return NULL; /* virtualbox: SATA and e1000 need no driver */
}

const struct pkg_target *pkg_find(const char *name)
{
    for (const struct pkg_target *t = pkg_targets; t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

/* ---- facts from inspection ---- */

struct json_object *pkg_jget(struct json_object *o, const char *k)
{
    struct json_object *v;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

const char *pkg_jstr(struct json_object *o, const char *k)
{
    struct json_object *v = pkg_jget(o, k);
    return v && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v) : NULL;
}

static bool jbool(struct json_object *o, const char *k)
{
    struct json_object *v = pkg_jget(o, k);
    return v && json_object_get_boolean(v);
}

/* libosinfo short ids for the distros inspection names */
static const char *osinfo_id(const char *distro, int major, int minor,
                             char *buf, size_t len)
{
    if (!distro || major < 0)
        return NULL;
    if (!strcmp(distro, "debian"))
        snprintf(buf, len, "debian%d", major);
    else if (!strcmp(distro, "ubuntu"))
        snprintf(buf, len, "ubuntu%d.%02d", major, minor < 0 ? 0 : minor);
    else if (!strcmp(distro, "rhel") || !strcmp(distro, "centos") ||
             !strcmp(distro, "rocky") || !strcmp(distro, "almalinux") ||
             !strcmp(distro, "oraclelinux"))
        snprintf(buf, len, "%s%d.%d",
                 !strcmp(distro, "oraclelinux") ? "ol" : distro, major,
                 minor < 0 ? 0 : minor);
    else if (!strcmp(distro, "fedora"))
        snprintf(buf, len, "fedora%d", major);
    else if (!strcmp(distro, "sles") && minor > 0)
        snprintf(buf, len, "sles%dsp%d", major, minor);
    else if (!strcmp(distro, "sles"))
        snprintf(buf, len, "sles%d", major);
    else if (!strcmp(distro, "opensuse"))
        snprintf(buf, len, "opensuse%d.%d", major, minor < 0 ? 0 : minor);
    else if (!strcmp(distro, "alpinelinux"))
        snprintf(buf, len, "alpinelinux%d.%d", major, minor < 0 ? 0 : minor);
    else
        return NULL;
    return buf;
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

char *pkg_name_sanitize(const char *s)
{
    char *n = strndup(s, 64);
    if (!n)
        return NULL;
    for (char *c = n; *c; c++)
        if (!name_char_ok(*c) || (c == n && *c == '.'))
            *c = '_';
    if (!n[0]) {
        free(n);
        return strdup("guest");
    }
    return n;
}

int pkg_vm_fill(struct pkg *p, vf_error **errp)
{
    struct pkg_vm *vm = &p->vm;
    static char osinfo_buf[64];
    if (vm->name) {
        /* it names files, a libvirt domain and QEMU -drive options */
        size_t l = strlen(vm->name);
        for (size_t i = 0; i < l; i++)
            if (!name_char_ok(vm->name[i]) || l > 64 || vm->name[0] == '.') {
                error_setg(errp, "--name %s: 1 to 64 of A-Z a-z 0-9 . _ - "
                           "(not starting with .)", vm->name);
                return -1;
            }
        if (!l) {
            error_setg(errp, "--name is empty");
            return -1;
        }
    }
    if (!vm->memory_mb)
        vm->memory_mb = 2048;
    if (!vm->vcpus)
        vm->vcpus = 2;
    if (!vm->name) {
        const char *src = p->ndisks ? p->disks[0].src_path : "guest";
        const char *b = strrchr(src, '/');
        b = b ? b + 1 : src;
        vm->name = strdup(b);
        if (!vm->name) {
            error_setg(errp, "out of memory");
            return -1;
        }
        char *dot = strrchr(vm->name, '.');
        if (dot && dot != vm->name)
            *dot = 0;
        char *clean = pkg_name_sanitize(vm->name);
        free(vm->name);
        vm->name = clean;
        if (!vm->name) {
            error_setg(errp, "out of memory");
            return -1;
        }
    }
    vm->firmware = pkg_jstr(pkg_jget(p->report, "firmware"), "type");
    if (!vm->firmware)
        vm->firmware = "bios";
    vm->os_type = "unknown";
    vm->arch = "x86_64";
    vm->major = vm->minor = -1;
    struct json_object *oses = pkg_jget(p->report, "operatingsystems");
    struct json_object *os = oses && json_object_array_length(oses)
                                 ? json_object_array_get_idx(oses, 0) : NULL;
    if (os) {
        vm->os_type = pkg_jstr(os, "type") ? pkg_jstr(os, "type") : "linux";
        vm->distro = pkg_jstr(os, "distro");
        vm->version = pkg_jstr(os, "version");
        vm->product = pkg_jstr(os, "product-name");
        const char *a = pkg_jstr(os, "arch");
        if (a && strcmp(a, "unknown"))
            vm->arch = a;
        struct json_object *v;
        if ((v = pkg_jget(os, "major-version")))
            vm->major = json_object_get_int(v);
        if ((v = pkg_jget(os, "minor-version")))
            vm->minor = json_object_get_int(v);
        vm->osinfo = osinfo_id(vm->distro, vm->major, vm->minor, osinfo_buf,
                               sizeof(osinfo_buf));
        /* drivers: any kernel that has them at boot */
        struct json_object *ks = pkg_jget(os, "kernels");
        for (size_t i = 0; ks && i < json_object_array_length(ks); i++) {
            struct json_object *k = json_object_array_get_idx(ks, i);
            struct json_object *d = pkg_jget(k, "drivers");
            struct json_object *hv = pkg_jget(pkg_jget(k, "hypervisors"), "virtio");
            if (jbool(hv, "storage-at-boot"))
                vm->virtio_storage = true;
            if (jbool(pkg_jget(d, "virtio_blk"), "at-boot") &&
                jbool(pkg_jget(d, "virtio_pci"), "at-boot"))
                vm->virtio_blk = true;
            if (jbool(pkg_jget(d, "virtio_scsi"), "at-boot") &&
                jbool(pkg_jget(d, "virtio_pci"), "at-boot"))
                vm->virtio_scsi = true;
            if (jbool(pkg_jget(d, "virtio_net"), "available"))
                vm->virtio_net = true;
            if (jbool(pkg_jget(d, "vmw_pvscsi"), "at-boot"))
                vm->vmw_pvscsi = true;
            if (jbool(pkg_jget(d, "vmxnet3"), "available"))
                vm->vmxnet3 = true;
        }
    } else if (pkg_jget(p->report, "filesystems")) {
        /* NTFS and no Linux root: a Windows guest (not inspected) */
        struct json_object *fss = pkg_jget(p->report, "filesystems");
        for (size_t i = 0; i < json_object_array_length(fss); i++) {
            const char *t = pkg_jstr(json_object_array_get_idx(fss, i), "type");
            if (t && !strcmp(t, "ntfs"))
                vm->os_type = "windows";
        }
    }
    vm->disk_bus = vm->virtio_blk ? "virtio" : vm->virtio_scsi ? "scsi"
                                                               : "sata";
    vm->nic_model = vm->virtio_net ? "virtio" : "e1000";
    return 0;
}

/* ---- the working directory ---- */

char *pkg_path(struct pkg *p, const char *name)
{
    char *s = NULL;
    if (asprintf(&s, "%s/%s", p->dir, name) < 0)
        return NULL;
    return s;
}

char *pkg_disk_base(struct pkg *p, size_t i)
{
    char *s = NULL;
    int r = p->ndisks == 1 ? asprintf(&s, "%s", p->vm.name)
                           : asprintf(&s, "%s-disk%zu", p->vm.name, i + 1);
    return r < 0 ? NULL : s;
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

int pkg_begin(struct pkg *p, vf_error **errp)
{
    struct stat st;
    if (!p->outdir[0]) {
        error_setg(errp, "empty output directory name");
        return -1;
    }
    if (stat(p->outdir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || dir_is_empty(p->outdir) != 1) {
            error_setg(errp, "%s: already exists (and is not an empty "
                       "directory)", p->outdir);
            return -1;
        }
    } else if (errno != ENOENT) {
        error_setg_errno(errp, errno, "%s", p->outdir);
        return -1;
    }
    if (asprintf(&p->dir, "%s.vmferry-partial", p->outdir) < 0) {
        p->dir = NULL;
        error_setg(errp, "out of memory");
        return -1;
    }
    if (mkdir(p->dir, 0755) < 0) {
        error_setg_errno(errp, errno, "%s: cannot create (a previous run's "
                         "leftover? remove it)", p->dir);
        free(p->dir);
        p->dir = NULL;
        return -1;
    }
    blk_tmpdir_register(p->dir);
    p->artifacts = json_object_new_array();
    if (!p->meta)
        p->meta = json_object_new_object();
    return 0;
}

void pkg_abort(struct pkg *p)
{
    if (!p->dir)
        return;
    DIR *d = opendir(p->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *f = pkg_path(p, e->d_name);
            if (f)
                unlink(f);
            free(f);
        }
        closedir(d);
    }
    rmdir(p->dir);
    blk_tmpdir_forget(p->dir);
    free(p->dir);
    p->dir = NULL;
}

void pkg_free(struct pkg *p)
{
    if (p->dir)
        blk_tmpdir_forget(p->dir);
    free(p->dir);
    free(p->vm.name);
    json_object_put(p->artifacts);
    json_object_put(p->meta);
    p->dir = NULL;
    p->vm.name = NULL;
    p->artifacts = p->meta = NULL;
}

void pkg_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

int pkg_add_artifact(struct pkg *p, const char *name, const char *role,
                     const char *format, uint64_t size,
                     const uint8_t sha256[32], vf_error **errp)
{
    char hex[65];
    pkg_hex(sha256, 32, hex);
    struct json_object *a = json_object_new_object();
    if (!a) {
        error_setg(errp, "out of memory");
        return -1;
    }
    json_object_object_add(a, "name", json_object_new_string(name));
    json_object_object_add(a, "role", json_object_new_string(role));
    json_object_object_add(a, "format",
                           format ? json_object_new_string(format) : NULL);
    json_object_object_add(a, "size", json_object_new_int64((int64_t)size));
    json_object_object_add(a, "sha256", json_object_new_string(hex));
    json_object_array_add(p->artifacts, a);
    p->bytes_written += size;
    return 0;
}

int pkg_file_digest(const char *path, bool sha1, uint8_t *out,
                    uint64_t *size, vf_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        error_setg_errno(errp, errno, "%s", path);
        return -1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int r = -1;
    uint64_t total = 0;
    if (!buf || !ctx ||
        !EVP_DigestInit_ex(ctx, sha1 ? EVP_sha1() : EVP_sha256(), NULL)) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            error_setg_errno(errp, errno, "%s: read", path);
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        total += (uint64_t)n;
    }
    unsigned l;
    EVP_DigestFinal_ex(ctx, out, &l);
    if (size)
        *size = total;
    r = 0;
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return r;
}

int pkg_write_file(struct pkg *p, const char *name, const char *role,
                   const void *data, size_t len, unsigned mode,
                   vf_error **errp)
{
    char *path = pkg_path(p, name);
    if (!path) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    int r = -1;
    if (fd < 0) {
        error_setg_errno(errp, errno, "%s", path);
        free(path);
        return -1;
    }
    const uint8_t *d = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, d, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            error_setg_errno(errp, errno, "%s: write", path);
            goto out;
        }
        d += n;
        left -= (size_t)n;
    }
    if (!p->unsafe && fsync(fd) < 0) {
        error_setg_errno(errp, errno, "%s: fsync", path);
        goto out;
    }
    uint8_t sha[32];
    unsigned l;
    if (!EVP_Digest(data, len, sha, &l, EVP_sha256(), NULL)) {
        error_setg(errp, "sha256 failed");
        goto out;
    }
    r = pkg_add_artifact(p, name, role, NULL, len, sha, errp);
out:
    close(fd);
    free(path);
    return r;
}

struct pkg_prog {
    struct pkg *p;
    size_t i;
};

static void pkg_prog_cb(void *opaque, uint64_t done, uint64_t total)
{
    struct pkg_prog *pp = opaque;
    pp->p->progress(pp->p->opaque, pp->i, done, total);
}

int pkg_write_disk(struct pkg *p, size_t i, const char *name,
                   const char *fmt, const char *optstr, vf_error **errp)
{
    char *path = pkg_path(p, name);
    struct opts *o = opts_parse(optstr, errp);
    struct blk *d = NULL;
    int r = -1;
    if (!path || !o) {
        if (!path)
            error_setg(errp, "out of memory");
        goto out;
    }
    if (p->ostr && p->ofmt && !strcmp(fmt, p->ofmt) &&
        opts_add(o, p->ostr, errp) < 0)
        goto out;
    if (p->preallocation && !opts_get(o, "preallocation") &&
        (!strcmp(fmt, "raw") || !strcmp(fmt, "qcow2")) &&
        opts_set(o, "preallocation", p->preallocation, errp) < 0)
        goto out;
    struct fmt_create_opts fco = { .size = p->disks[i].blk->size, .o = o };
    d = blk_create(path, fmt, &fco, errp);
    if (!d)
        goto out;
    if (!p->unsafe)
        blk_set_early_writeback(d);
    struct pkg_prog pp = { p, i };
    struct convert_opts co = { .threads = p->threads, .sparse_size = 4096,
                               .progress = p->progress ? pkg_prog_cb : NULL,
                               .opaque = &pp };
    struct convert_stats st;
    if (engine_convert(p->disks[i].blk, d, &co, &st, errp) < 0 ||
        blk_commit(d, p->unsafe, errp) < 0)
        goto out;
    blk_close(d);
    d = NULL;
    uint8_t sha[32];
    uint64_t size;
    if (pkg_file_digest(path, false, sha, &size, errp) < 0 ||
        pkg_add_artifact(p, name, "disk", fmt, size, sha, errp) < 0)
        goto out;
    r = 0;
out:
    blk_close(d);
    opts_free(o);
    free(path);
    return r;
}

int pkg_finish(struct pkg *p, vf_error **errp)
{
    struct json_object *m = json_object_new_object();
    json_object_object_add(m, "vmferry-package", json_object_new_int(1));
    json_object_object_add(m, "target", json_object_new_string(p->target));
    json_object_object_add(m, "name", json_object_new_string(p->vm.name));
    struct json_object *vm = json_object_new_object();
    json_object_object_add(vm, "memory-mb",
                           json_object_new_int((int)p->vm.memory_mb));
    json_object_object_add(vm, "vcpus", json_object_new_int((int)p->vm.vcpus));
    json_object_object_add(vm, "firmware",
                           json_object_new_string(p->vm.firmware));
    json_object_object_add(vm, "os-type", json_object_new_string(p->vm.os_type));
    json_object_object_add(vm, "distro", p->vm.distro
                           ? json_object_new_string(p->vm.distro) : NULL);
    json_object_object_add(vm, "version", p->vm.version
                           ? json_object_new_string(p->vm.version) : NULL);
    json_object_object_add(vm, "osinfo", p->vm.osinfo
                           ? json_object_new_string(p->vm.osinfo) : NULL);
    json_object_object_add(vm, "arch", json_object_new_string(p->vm.arch));
    json_object_object_add(vm, "disk-bus",
                           json_object_new_string(p->vm.disk_bus));
    json_object_object_add(vm, "nic-model",
                           json_object_new_string(p->vm.nic_model));
    json_object_object_add(m, "vm", vm);
    json_object_object_add(m, "artifacts", json_object_get(p->artifacts));
    json_object_object_add(m, "metadata", json_object_get(p->meta));
    const char *s = json_object_to_json_string_ext(
        m, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    char *text = NULL;
    int r = -1;
    if (asprintf(&text, "%s\n", s) < 0) {
        text = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    /* written by hand, not recorded: the manifest does not list itself */
    char *path = pkg_path(p, "manifest.json");
    FILE *f = path ? fopen(path, "wx") : NULL;
    if (!f) {
        error_setg_errno(errp, errno, "%s", path ? path : "manifest.json");
        free(path);
        goto out;
    }
    bool ok = fputs(text, f) >= 0 && fflush(f) == 0 &&
              (p->unsafe || fsync(fileno(f)) == 0);
    ok = (fclose(f) == 0) && ok;
    free(path);
    if (!ok) {
        error_setg_errno(errp, errno, "%s/manifest.json: write", p->dir);
        goto out;
    }
    if (!p->unsafe && blk_fsync_dir(p->dir, errp) < 0)
        goto out;
    /* an empty outdir is replaced; anything else was refused at begin */
    if (rename(p->dir, p->outdir) < 0) {
        error_setg_errno(errp, errno, "%s: cannot rename to %s", p->dir,
                         p->outdir);
        goto out;
    }
    char *parent = strdup(p->outdir);
    if (parent) {
        char *sl = strrchr(parent, '/');
        if (sl == parent)
            sl[1] = 0;
        else if (sl)
            *sl = 0;
        if (!p->unsafe)
            blk_fsync_dir(sl ? parent : ".", NULL);
        free(parent);
    }
    blk_tmpdir_forget(p->dir);
    free(p->dir);
    p->dir = NULL;
    r = 0;
out:
    free(text);
    json_object_put(m);
    return r;
}

/* ---- the whole run ---- */

/* The inspection report with the disks' format facts replaced by what
 * the package holds, for the preflight rules. */
static struct json_object *pkg_pf_report(struct pkg *p)
{
    struct json_object *r = NULL;
    if (json_object_deep_copy(p->report, &r, NULL) < 0)
        return NULL;
    struct json_object *ds = pkg_jget(r, "disks");
    for (size_t i = 0; p->pf_format && ds &&
                       i < json_object_array_length(ds); i++) {
        struct json_object *d = json_object_array_get_idx(ds, i);
        json_object_object_add(d, "format",
                               json_object_new_string(p->pf_format));
        json_object_object_add(d, "backing-file", NULL);
        struct json_object *fs = json_object_new_object();
        if (p->pf_subkey)
            json_object_object_add(fs, p->pf_subkey,
                                   json_object_new_string(p->pf_subval));
        json_object_object_add(d, "format-specific", fs);
        struct json_object *vs = pkg_jget(d, "virtual-size");
        uint64_t a = p->pf_size_align;
        if (vs && a) {
            uint64_t v = (uint64_t)json_object_get_int64(vs);
            if (v % a && v <= UINT64_MAX - a)
                v += a - v % a;
            json_object_object_add(d, "virtual-size",
                                   json_object_new_int64((int64_t)v));
        }
    }
    return r;
}

static void pkg_plan_pf(struct pkg *p, const struct pkg_target *t)
{
    const char *n = t->name;
    p->pf_subkey = p->pf_subval = NULL;
    p->pf_size_align = 0;
    /* an OVA's SCSI controller, as pkg-ovf.c chooses it */
    p->pf_controller = p->vm.vmw_pvscsi ? "pvscsi" : "lsilogic";
    if (!strcmp(n, "local") || !strcmp(n, "libvirt") ||
        !strcmp(n, "openstack")) {
        p->pf_format = p->ofmt ? p->ofmt : "qcow2";
        if (!strcmp(p->pf_format, "vmdk")) {
            p->pf_subkey = "create-type";
            p->pf_subval = "streamOptimized";
        }
    } else if (!strcmp(n, "cloudstack-kvm")) {
        p->pf_format = "qcow2";
    } else if (!strcmp(n, "cloudstack-xen")) {
        p->pf_format = "vpc";
        p->pf_subkey = "subformat";
        p->pf_subval = "dynamic";
    } else if (!strcmp(n, "cloudstack-hyperv") || !strcmp(n, "hyperv")) {
        p->pf_format = "vhdx";
    } else if (!strcmp(n, "gce")) {
        p->pf_format = "raw";
        p->pf_size_align = 1ull << 30;
    } else if (!strcmp(n, "azure")) {
        p->pf_format = "vpc";
        p->pf_subkey = "subformat";
        p->pf_subval = "fixed";
        p->pf_size_align = 1ull << 20;
    } else if (!strcmp(n, "sce")) {
        p->pf_format = "raw";
    } else if (!strcmp(n, "virtualbox") && !p->ova) {
        p->pf_format = "vdi";
    } else if (!strcmp(n, "aws") && p->aws_format &&
               strcmp(p->aws_format, "ova") && strcmp(p->aws_format, "vmdk")) {
        p->pf_format = !strcmp(p->aws_format, "vhd") ? "vpc" : "raw";
    } else {
        /* OVAs and AWS's VMDK: streamOptimized VMDKs */
        p->pf_format = "vmdk";
        p->pf_subkey = "create-type";
        p->pf_subval = "streamOptimized";
    }
}

static int pkg_check(struct pkg *p, const struct pkg_target *t,
                     vf_error **errp)
{
    if (!t->preflight)
        return 0;
    const struct pf_target *pt = pf_find(t->preflight);
    struct json_object *rep = pkg_pf_report(p);
    if (!pt || !rep) {
        json_object_put(rep);
        error_setg(errp, "preflight target %s unavailable", t->preflight);
        return -1;
    }
    struct pf_ctx c = { .report = rep, .disk_bus = p->vm.disk_bus,
                        .controller = p->pf_controller ? p->pf_controller
                                                       : "pvscsi" };
    bool ok;
    json_object_put(p->preflight);
    p->preflight = pf_run(pt, &c, &ok);
    json_object_put(rep);
    if (ok || p->force)
        return 0;
    struct json_object *rules = pkg_jget(p->preflight, "rules");
    for (size_t i = 0; rules && i < json_object_array_length(rules); i++) {
        struct json_object *ru = json_object_array_get_idx(rules, i);
        const char *res = pkg_jstr(ru, "result"), *sev = pkg_jstr(ru, "severity");
        if (res && !strcmp(res, "fail") && sev && !strcmp(sev, "error")) {
            const char *fix = pkg_jstr(ru, "fix");
            error_setg(errp, "preflight %s: %s failed (%s): %s%s%s",
                       t->preflight, pkg_jstr(ru, "id"), pkg_jstr(ru, "statement"),
                       pkg_jstr(ru, "evidence") ? pkg_jstr(ru, "evidence") : "",
                       fix ? "; fix: " : "", fix ? fix : "");
            return -1;
        }
    }
    error_setg(errp, "preflight %s failed", t->preflight);
    return -1;
}

int pkg_preflight(struct pkg *p, const struct pkg_target *t,
                  vf_error **errp)
{
    pkg_plan_pf(p, t);
    return pkg_check(p, t, errp);
}

int pkg_run(struct pkg *p, const struct pkg_target *t, vf_error **errp)
{
    pkg_plan_pf(p, t);
    if (pkg_begin(p, errp) < 0)
        return -1;
    if (t->run(p, errp) < 0 || pkg_check(p, t, errp) < 0 ||
        pkg_finish(p, errp) < 0) {
        pkg_abort(p);
        return -1;
    }
    return 0;
}
