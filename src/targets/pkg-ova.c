/*
 * pkg-ova.c: OVA packages (vmware, aws, cloudstack-vmware, virtualbox
 * --ova), and the aws target with its other disk forms.
 *
 * An OVA (DMTF DSP0243, "distribution as a single file") is a ustar
 * archive: the .ovf descriptor first, then the files in References order
 * (here the disks, streamOptimized VMDKs), then the manifest.  It is
 * written in one pass, with no temporary copy of a disk:
 *
 *   [ovf hdr][ovf: space reserved, written last][pad]
 *   [disk 1 hdr: reserved][disk 1 VMDK, streamed][pad] ... [disk n ...]
 *   [mf hdr][mf][pad][two zero blocks]
 *
 * Each VMDK is created (blk_create_io) on a window into the archive just
 * past its header's space; the VMDK stream writer only appends, and the
 * window digests the bytes as they arrive, so the manifest's digest is
 * that of the member exactly as stored.  When the disk is done its size
 * is known and its header is filled in.  The header's space is what
 * the largest size the stream can reach needs (the VMDK driver's
 * measure of the source: every data grain stored at its worst), so a
 * member that may pass 8 GiB gets room for a pax size record; a real
 * size that needs less fills the space with a pax comment record
 * (tar_member_header_sized).  The .ovf holds the disks' sizes: its space
 * is that of the descriptor written with the largest numbers, and the
 * real one is padded to it with spaces before its final newline
 * (whitespace after the root element is allowed by XML).
 *
 * ovf:populatedSize is the bytes of guest data the VMDK holds: the
 * engine's count of the guest bytes it wrote (the chain's data extents,
 * less the grains its zero detection dropped), which is what a thin
 * copy of the disk allocates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "engine/engine.h"
#include "targets/ovf.h"
#include "targets/package.h"
#include "targets/tar.h"

#define OVA_MODE 0644

/* One member of the archive. */
struct ova_member {
    char *name;
    uint64_t off;              /* its data's offset in the archive */
    uint64_t size;
    char hex[129];             /* its digest (the manifest's algorithm) */
};

struct ova {
    struct pkg *p;
    struct ovf_choice c;
    bool sha1;
    const char *alg;           /* OpenSSL's digest name */
    const char *tag;           /* the manifest's: "SHA256", "SHA1" */
    struct io *io;             /* the archive */
    struct ova_member ovf, mf;
    struct ova_member *dm;     /* the disks */
    struct ovf_disk *od;       /* the disks as the OVF describes them */
    size_t n;
};

static int ova_zeros(struct io *io, uint64_t off, size_t n, vf_error **errp)
{
    static const uint8_t z[TAR_BLOCK];
    while (n) {
        size_t k = n < sizeof(z) ? n : sizeof(z);
        if (io_pwrite(io, z, k, off, errp) < 0)
            return -1;
        off += k;
        n -= k;
    }
    return 0;
}

/* A small member (the .ovf, the manifest): its header at hdr, its data
 * right after the header, the block padding.  *end gets where the next
 * member starts.  The digest goes to m->hex. */
static int ova_small(struct ova *o, struct ova_member *m, uint64_t hdr,
                     const void *data, size_t len, uint64_t *end,
                     vf_error **errp)
{
    uint8_t *h = NULL;
    size_t hl;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    if (tar_member_header(m->name, len, OVA_MODE, o->p->mtime, &h, &hl,
                          errp) < 0)
        return -1;
    m->off = hdr + hl;
    m->size = len;
    int r = -1;
    if (io_pwrite(o->io, h, hl, hdr, errp) < 0 ||
        io_pwrite(o->io, data, len, m->off, errp) < 0 ||
        ova_zeros(o->io, m->off + len, tar_padding(len), errp) < 0)
        goto out;
    if (!EVP_Digest(data, len, md, &ml, EVP_get_digestbyname(o->alg),
                    NULL)) {
        error_setg(errp, "%s digest failed", o->alg);
        goto out;
    }
    pkg_hex(md, ml, m->hex);
    *end = m->off + len + tar_padding(len);
    r = 0;
out:
    free(h);
    return r;
}

/* The header length the .ovf member takes when its data is len bytes. */
static int ova_hdr_len(const char *name, uint64_t size, size_t *hl,
                       vf_error **errp)
{
    uint8_t *h;
    if (tar_member_header(name, size, OVA_MODE, 0, &h, hl, errp) < 0)
        return -1;
    free(h);
    return 0;
}

struct ova_prog {
    struct pkg *p;
    size_t disk;
};

static void ova_progress(void *opaque, uint64_t done, uint64_t total)
{
    struct ova_prog *g = opaque;
    g->p->progress(g->p->opaque, g->disk, done, total);
}

/* Disk i streamed into the archive at *pos (a header's space, then the
 * VMDK); *pos moves past it. */
static int ova_disk(struct ova *o, size_t i, uint64_t *pos, vf_error **errp)
{
    struct pkg *p = o->p;
    struct blk *src = p->disks[i].blk;
    struct ova_member *m = &o->dm[i];
    const struct fmt_driver *vd = fmt_find("vmdk");
    /* VMware's exports say lsilogic for a SCSI disk whatever the
     * controller model; VirtualBox does not read it */
    struct opts *mo = opts_parse("subformat=streamOptimized", errp);
    struct opts *co = opts_parse(o->c.vbox ? "subformat=streamOptimized"
                                 : "subformat=streamOptimized,"
                                   "adapter_type=lsilogic", errp);
    struct io *w = NULL;
    struct blk *d = NULL;
    uint8_t *h = NULL;
    int r = -1;
    if (!mo || !co)
        goto out;
    if (!vd || !vd->measure) {
        error_setg(errp, "no VMDK driver to measure with");
        goto out;
    }
    struct fmt_create_opts fco = { .size = src->size, .o = mo };
    uint64_t bound, full;
    size_t hl;
    if (vd->measure(&fco, src, &bound, &full, errp) < 0 ||
        ova_hdr_len(m->name, bound, &hl, errp) < 0)
        goto out;
    m->off = *pos + hl;
    w = io_window_new(o->io, m->off, o->alg, m->name, errp);
    if (!w)
        goto out;
    fco.o = co;
    d = blk_create_io(w, m->name, "vmdk", &fco, errp);
    if (!d)
        goto out;
    if (d->size != o->od[i].capacity) {
        error_setg(errp, "%s: VMDK of 0x%" PRIx64 " bytes, 0x%" PRIx64
                   " expected", m->name, d->size, o->od[i].capacity);
        goto out;
    }
    struct ova_prog g = { .p = p, .disk = i };
    struct convert_opts cv = {
        .threads = p->threads, .sparse_size = 4096,
        .progress = p->progress ? ova_progress : NULL, .opaque = &g,
    };
    struct convert_stats st;
    /* not fsynced here: the archive is, once, when it is whole */
    if (engine_convert(src, d, &cv, &st, errp) < 0 ||
        blk_commit(d, true, errp) < 0)
        goto out;
    blk_close(d);
    d = NULL;
    m->size = io_window_length(w);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    if (io_window_digest(w, md, &ml, errp) < 0)
        goto out;
    pkg_hex(md, ml, m->hex);
    o->od[i].file_size = m->size;
    o->od[i].populated = st.bytes_written;
    if (tar_member_header_sized(m->name, m->size, OVA_MODE, p->mtime, hl,
                                &h, errp) < 0 ||
        io_pwrite(o->io, h, hl, *pos, errp) < 0 ||
        ova_zeros(o->io, m->off + m->size, tar_padding(m->size), errp) < 0)
        goto out;
    *pos = m->off + m->size + tar_padding(m->size);
    r = 0;
out:
    if (r < 0)
        error_prepend(errp, "%s: ", p->disks[i].src_path);
    free(h);
    blk_close(d);
    io_close(w);
    opts_free(mo);
    opts_free(co);
    return r;
}

static void ova_meta_member(struct ova *o, struct json_object *a,
                            const struct ova_member *m)
{
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "name", json_object_new_string(m->name));
    json_object_object_add(e, "offset", json_object_new_int64((int64_t)m->off));
    json_object_object_add(e, "size", json_object_new_int64((int64_t)m->size));
    json_object_object_add(e, o->alg, json_object_new_string(m->hex));
    json_object_array_add(a, e);
}

/* The members' names, offsets, sizes and digests in p->meta, and the
 * hardware the descriptor declares. */
static void ova_meta(struct ova *o)
{
    struct json_object *a = json_object_new_array();
    ova_meta_member(o, a, &o->ovf);
    for (size_t i = 0; i < o->n; i++)
        ova_meta_member(o, a, &o->dm[i]);
    ova_meta_member(o, a, &o->mf);
    json_object_object_add(o->p->meta, "ova-members", a);
    struct json_object *v = json_object_new_object();
    json_object_object_add(v, "flavour", json_object_new_string(
                               o->c.vbox ? "virtualbox" : "vmware"));
    json_object_object_add(v, "virtual-system-type",
                           json_object_new_string(o->c.hw_family));
    json_object_object_add(v, "controller",
                           json_object_new_string(o->c.ctl_subtype));
    json_object_object_add(v, "nic", json_object_new_string(o->c.nic_subtype));
    json_object_object_add(v, "cim-os-type", json_object_new_int(o->c.cim_os));
    json_object_object_add(v, o->c.vbox ? "virtualbox-os-type"
                                        : "vmware-os-type",
                           json_object_new_string(o->c.vbox ? o->c.vbox_os
                                                            : o->c.vmw_os));
    json_object_object_add(v, "firmware",
                           json_object_new_string(o->c.efi ? "efi" : "bios"));
    json_object_object_add(o->p->meta, "ovf", v);
}

/* The manifest's text: one "ALG(name)= hex" line per member. */
static char *ova_manifest(struct ova *o, size_t *len)
{
    char *s = NULL;
    size_t sl = 0;
    FILE *f = open_memstream(&s, &sl);
    if (!f)
        return NULL;
    fprintf(f, "%s(%s)= %s\n", o->tag, o->ovf.name, o->ovf.hex);
    for (size_t i = 0; i < o->n; i++)
        fprintf(f, "%s(%s)= %s\n", o->tag, o->dm[i].name, o->dm[i].hex);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    *len = sl;
    return s;
}

/* "<vm name><suffix>", malloc'd. */
static char *vm_file(struct pkg *p, const char *suffix)
{
    char *s = NULL;
    return asprintf(&s, "%s%s", p->vm.name, suffix) < 0 ? NULL : s;
}

static void ova_free(struct ova *o)
{
    for (size_t i = 0; o->dm && i < o->n; i++)
        free(o->dm[i].name);
    free(o->dm);
    free(o->od);
    free(o->ovf.name);
    free(o->mf.name);
    io_close(o->io);
}

int pkg_write_ova(struct pkg *p, const char *name, const char *flavour,
                  vf_error **errp)
{
    struct ova o = { .p = p, .n = p->ndisks };
    char *path = NULL, *ovf_ph = NULL, *ovf = NULL, *mf = NULL, *pad = NULL;
    int r = -1;
    bool vbox = !strcmp(flavour, "virtualbox");
    if (!vbox && strcmp(flavour, "vmware")) {
        error_setg(errp, "unknown OVF flavour %s", flavour);
        return -1;
    }
    o.sha1 = p->manifest_alg && !strcmp(p->manifest_alg, "sha1");
    o.alg = o.sha1 ? "sha1" : "sha256";
    o.tag = o.sha1 ? "SHA1" : "SHA256";
    ovf_choose(p, vbox, &o.c);
    o.dm = calloc(o.n ? o.n : 1, sizeof(*o.dm));
    o.od = calloc(o.n ? o.n : 1, sizeof(*o.od));
    o.ovf.name = vm_file(p, ".ovf");
    o.mf.name = vm_file(p, ".mf");
    path = pkg_path(p, name);
    if (!o.dm || !o.od || !o.ovf.name || !o.mf.name || !path) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < o.n; i++) {
        char *base = pkg_disk_base(p, i);
        if (!base || asprintf(&o.dm[i].name, "%s.vmdk", base) < 0) {
            o.dm[i].name = NULL;
            free(base);
            error_setg(errp, "out of memory");
            goto out;
        }
        free(base);
        o.od[i].href = o.dm[i].name;
        /* the VMDK's virtual size: whole sectors */
        o.od[i].capacity = (p->disks[i].blk->size + 511) / 512 * 512;
    }

    /* the archive, in the package's working directory */
    o.io = io_file_create(path, errp);
    if (!o.io) {
        error_prepend(errp, "%s: ", path);
        goto out;
    }
    o.io->early_writeback = !p->unsafe;
    /* Tests prove that a failing write leaves nothing that looks
     * finished: VMFERRY_TEST_FAIL_IO=N fails the Nth archive I/O (as
     * blk_create does for a disk) */
    const char *fail = getenv("VMFERRY_TEST_FAIL_IO");
    if (fail && strtoull(fail, NULL, 10) > 0) {
        struct io *fw = io_fault_new(o.io, strtoull(fail, NULL, 10), true);
        if (fw)
            o.io = fw;
    }

    /* the .ovf's space: the descriptor with the largest numbers */
    size_t ovf_len, len, ovf_hl;
    ovf_ph = ovf_build(p, &o.c, o.od, o.n, true, &ovf_len, errp);
    if (!ovf_ph || ova_hdr_len(o.ovf.name, ovf_len, &ovf_hl, errp) < 0)
        goto out;
    uint64_t pos = ovf_hl + ovf_len + tar_padding(ovf_len);

    for (size_t i = 0; i < o.n; i++)
        if (ova_disk(&o, i, &pos, errp) < 0)
            goto out;

    /* the real descriptor, padded to the space reserved */
    ovf = ovf_build(p, &o.c, o.od, o.n, false, &len, errp);
    if (!ovf)
        goto out;
    if (len > ovf_len || !len || ovf[len - 1] != '\n') {
        error_setg(errp, "OVF descriptor of %zu bytes does not fit the "
                   "%zu reserved", len, ovf_len);
        goto out;
    }
    pad = malloc(ovf_len);
    if (!pad) {
        error_setg(errp, "out of memory");
        goto out;
    }
    memcpy(pad, ovf, len - 1);
    memset(pad + len - 1, ' ', ovf_len - len);
    pad[ovf_len - 1] = '\n';
    uint64_t end;
    if (ova_small(&o, &o.ovf, 0, pad, ovf_len, &end, errp) < 0)
        goto out;

    size_t mf_len = 0;
    mf = ova_manifest(&o, &mf_len);
    if (!mf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (ova_small(&o, &o.mf, pos, mf, mf_len, &pos, errp) < 0 ||
        ova_zeros(o.io, pos, TAR_EOF_LEN, errp) < 0)
        goto out;
    pos += TAR_EOF_LEN;
    if (!p->unsafe && io_flush(o.io, errp) < 0)
        goto out;
    io_close(o.io);
    o.io = NULL;

    /* the whole archive's SHA-256 for manifest.json: its headers were
     * filled in out of order, so it is read back once */
    uint8_t sha[32];
    uint64_t size;
    if (pkg_file_digest(path, false, sha, &size, errp) < 0)
        goto out;
    if (size != pos) {
        error_setg(errp, "%s: %" PRIu64 " bytes, %" PRIu64 " written", path,
                   size, pos);
        goto out;
    }
    if (pkg_add_artifact(p, name, "archive", "ova", size, sha, errp) < 0)
        goto out;
    ova_meta(&o);
    p->pf_controller = o.c.controller;
    r = 0;
out:
    if (r < 0)
        error_prepend(errp, "%s: ", name);
    ova_free(&o);
    free(path);
    free(ovf_ph);
    free(ovf);
    free(pad);
    free(mf);
    return r;
}

int pkg_vmware(struct pkg *p, vf_error **errp)
{
    char *name = vm_file(p, ".ova");
    if (!name) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = pkg_write_ova(p, name, "vmware", errp);
    free(name);
    return r;
}

/* ---- aws ---- */

/* --aws-format: what the disks become, and the ImportImage Format. */
struct aws_form {
    const char *name;          /* --aws-format and Format */
    const char *suffix;        /* file name suffix */
    const char *fmt;           /* driver, NULL: the OVA */
    const char *opts;          /* create options */
    const char *subkey, *subval;
};

static const struct aws_form aws_forms[] = {
    { "ova", ".ova", NULL, NULL, "create-type", "streamOptimized" },
    { "vmdk", ".vmdk", "vmdk", "subformat=streamOptimized", "create-type",
      "streamOptimized" },
    { "raw", ".raw", "raw", NULL, NULL, NULL },
    { "vhd", ".vhd", "vpc", "subformat=dynamic", NULL, NULL },
};

/* import-image.json: the input of `aws ec2 import-image
 * --cli-input-json file://import-image.json` once the files are in S3. */
static int aws_import_json(struct pkg *p, const struct aws_form *f,
                           char **files, size_t nfiles, vf_error **errp)
{
    struct json_object *j = json_object_new_object();
    char desc[512];
    snprintf(desc, sizeof(desc), "%s (vmferry package --target aws)",
             p->vm.name);
    json_object_object_add(j, "Description", json_object_new_string(desc));
    const char *os = p->vm.os_type;
    if (os && (!strcmp(os, "linux") || !strcmp(os, "windows")))
        json_object_object_add(j, "Platform", json_object_new_string(
                                    !strcmp(os, "linux") ? "Linux"
                                                         : "Windows"));
    const char *a = p->vm.arch;
    const char *arch = !a ? NULL : !strcmp(a, "x86_64") ? "x86_64"
                       : !strcmp(a, "aarch64") ? "arm64"
                       : (!strcmp(a, "i386") || !strcmp(a, "i686")) ? "i386"
                       : NULL;
    if (arch)
        json_object_object_add(j, "Architecture",
                               json_object_new_string(arch));
    bool uefi = p->vm.firmware && !strcmp(p->vm.firmware, "uefi");
    json_object_object_add(j, "BootMode", json_object_new_string(
                                uefi ? "uefi" : "legacy-bios"));
    struct json_object *dcs = json_object_new_array();
    for (size_t i = 0; i < nfiles; i++) {
        struct json_object *dc = json_object_new_object();
        struct json_object *ub = json_object_new_object();
        json_object_object_add(dc, "Description",
                               json_object_new_string(files[i]));
        json_object_object_add(dc, "Format", json_object_new_string(f->name));
        json_object_object_add(ub, "S3Bucket",
                               json_object_new_string("<your-bucket>"));
        json_object_object_add(ub, "S3Key", json_object_new_string(files[i]));
        json_object_object_add(dc, "UserBucket", ub);
        json_object_array_add(dcs, dc);
    }
    json_object_object_add(j, "DiskContainers", dcs);
    const char *s = json_object_to_json_string_ext(
        j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    char *text = NULL;
    int r = -1;
    if (!s || asprintf(&text, "%s\n", s) < 0) {
        text = NULL;
        error_setg(errp, "out of memory");
    } else {
        r = pkg_write_file(p, "import-image.json", "metadata", text,
                           strlen(text), 0644, errp);
    }
    free(text);
    json_object_put(j);
    return r;
}

int pkg_aws(struct pkg *p, vf_error **errp)
{
    const char *want = p->aws_format ? p->aws_format : "ova";
    const struct aws_form *f = NULL;
    for (size_t i = 0; i < sizeof(aws_forms) / sizeof(aws_forms[0]); i++)
        if (!strcmp(aws_forms[i].name, want))
            f = &aws_forms[i];
    if (!f) {
        error_setg(errp, "--aws-format %s: ova, vmdk, raw or vhd", want);
        return -1;
    }
    size_t nfiles = f->fmt ? p->ndisks : 1;
    char **files = calloc(nfiles ? nfiles : 1, sizeof(*files));
    int r = -1;
    if (!files) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (!f->fmt) {
        if (!(files[0] = vm_file(p, ".ova"))) {
            error_setg(errp, "out of memory");
            goto out;
        }
        if (pkg_write_ova(p, files[0], "vmware", errp) < 0)
            goto out;
    } else {
        for (size_t i = 0; i < p->ndisks; i++) {
            char *base = pkg_disk_base(p, i);
            if (!base || asprintf(&files[i], "%s%s", base, f->suffix) < 0) {
                files[i] = NULL;
                free(base);
                error_setg(errp, "out of memory");
                goto out;
            }
            free(base);
            if (pkg_write_disk(p, i, files[i], f->fmt, f->opts, errp) < 0)
                goto out;
        }
    }
    if (aws_import_json(p, f, files, nfiles, errp) < 0)
        goto out;
    r = 0;
out:
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return r;
}
