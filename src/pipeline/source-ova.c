/*
 * source-ova.c: an OVA as migrate's source, read in place.
 *
 * Spec: DMTF DSP0243 (OVF 1.1 / 2.x): the OVA is a ustar archive holding
 * the .ovf descriptor (first, so a stream reader meets it before the
 * disks), an optional .mf manifest and .cert, then the files the
 * descriptor's References list.  The manifest's lines are OpenSSL's
 * digest output, `SHA256(name)= hex` (SHA1 in OVF 1.x; `SHA256 (name) =
 * hex` spacing is tolerated); every digest listed is recomputed.
 *
 * The member headers are walked with tar_parse(); each member is a range
 * of the OVA file, and its disks (streamOptimized or monolithicSparse
 * VMDK: self-contained) are opened through io_slice_new() windows over
 * the one OVA io that vm->container owns.  Nothing is extracted.
 *
 * Disk order: disk items (ResourceType 17) sorted by the document
 * position of their controller item, then AddressOnParent, then their
 * own position.
 */
#include "pipeline/source-int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "targets/tar.h"

/* Real OVAs hold an .ovf, a .mf, a .cert and a few disks; thousands of
 * members is an archive that is not an OVA (or an attack on the walk). */
#define OVA_MAX_MEMBERS 4096
/* A descriptor of a VM with 64 disks and every option is well under a
 * megabyte; 16 MiB leaves room for large embedded product sections. */
#define OVA_OVF_MAX (16u << 20)
/* One line per member. */
#define OVA_MF_MAX (1u << 20)
/* tar_parse may ask for up to 8 extended headers of 64 KiB each. */
#define OVA_HDR_MAX (1u << 20)
/* Digests read members through a buffer this big. */
#define OVA_HASH_CHUNK (1u << 20)
/* Hardware items in one VirtualHardwareSection: 64 disks, their
 * controllers, NICs and the rest fit easily. */
#define OVA_MAX_ITEMS 1024

struct ova_member {
    char *name;        /* as stored, a leading "./" removed */
    char type;         /* tar typeflag */
    uint64_t off;      /* of the data in the OVA file */
    uint64_t size;
    bool listed;       /* in the manifest */
};

struct ova {
    const char *path;
    struct io *io;             /* vm->container: borrowed */
    uint64_t fsize;
    struct ova_member *m;
    size_t n, cap;
    const struct blk_open_opts *oo;
    struct src_vm *vm;
};

static bool ova_regular(const struct ova_member *m)
{
    return m->type == '0' || m->type == '7';
}

/* A name the descriptor or manifest may use: one plain file name. */
static bool ova_plain_name(const char *s)
{
    return *s && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") &&
           strcmp(s, "..");
}

static struct ova_member *ova_find(struct ova *o, const char *name)
{
    for (size_t i = 0; i < o->n; i++)
        if (ova_regular(&o->m[i]) && !strcmp(o->m[i].name, name))
            return &o->m[i];
    return NULL;
}

/* ---- the archive ---- */

static int ova_add_member(struct ova *o, const struct tar_entry *te,
                          uint64_t off, vf_error **errp)
{
    if (o->n >= OVA_MAX_MEMBERS) {
        error_setg(errp, "more than %d tar members: not an OVA",
                   OVA_MAX_MEMBERS);
        return -1;
    }
    const char *name = te->name;
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    struct ova_member m = { .type = te->type, .off = off, .size = te->size };
    if (ova_regular(&m) && ova_find(o, name)) {
        error_setg(errp, "member '%s' appears twice in the archive", name);
        return -1;
    }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        struct ova_member *nm = realloc(o->m, nc * sizeof(*nm));
        if (!nm) {
            error_setg(errp, "out of memory");
            return -1;
        }
        o->m = nm;
        o->cap = nc;
    }
    m.name = strdup(name);
    if (!m.name) {
        error_setg(errp, "out of memory");
        return -1;
    }
    o->m[o->n++] = m;
    return 0;
}

/* Walk the member headers (never the data). */
static int ova_walk(struct ova *o, vf_error **errp)
{
    if (o->fsize < TAR_BLOCK) {
        error_setg(errp, "file of %" PRIu64 " bytes is not a tar archive",
                   o->fsize);
        return -1;
    }
    size_t cap = TAR_BLOCK;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    uint64_t pos = 0;
    int ret = -1;
    while (pos < o->fsize) {
        struct tar_entry te;
        size_t want = TAR_BLOCK;
        int64_t r;
        for (;;) {
            if (want > cap) {
                uint8_t *nb = realloc(buf, want);
                if (!nb) {
                    error_setg(errp, "out of memory");
                    goto out;
                }
                buf = nb;
                cap = want;
            }
            if (io_pread(o->io, buf, want, pos, errp) < 0)
                goto out;
            size_t need = 0;
            vf_error *err = NULL;
            r = tar_parse(buf, want, &te, &need, &err);
            if (r >= 0)
                break;
            if (need > want && need <= OVA_HDR_MAX) {
                error_free(err);
                want = need;
                continue;
            }
            error_propagate(errp, err);
            error_prepend(errp, "tar header at offset %" PRIu64 ": ", pos);
            goto out;
        }
        if (r == 0)
            break;      /* the end-of-archive block */
        uint64_t data = pos + (uint64_t)r;
        if (data > o->fsize || te.size > o->fsize - data) {
            error_setg(errp, "member '%s' of %" PRIu64 " bytes runs past "
                       "the end of the archive (truncated?)", te.name,
                       te.size);
            goto out;
        }
        if (te.type == 'S') {
            /* oldgnu sparse members carry extension blocks and a map:
             * no OVA writer makes them */
            error_setg(errp, "member '%s' is a GNU sparse file: not "
                       "supported in an OVA", te.name);
            goto out;
        }
        if (ova_add_member(o, &te, data, errp) < 0)
            goto out;
        pos = data + te.size + tar_padding(te.size);
    }
    ret = 0;
out:
    free(buf);
    return ret;
}

/* ---- the manifest ---- */

struct mf_entry {
    const EVP_MD *md;
    char alg[8];
    struct ova_member *m;
    uint8_t want[EVP_MAX_MD_SIZE];
    unsigned len;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void ova_hex(const uint8_t *d, unsigned len, char *out)
{
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    out[2 * len] = '\0';
}

/* One manifest line, "ALG(name)= hex" with optional blanks around the
 * parentheses and the '='. */
static int ova_mf_line(struct ova *o, char *line, unsigned lineno,
                       const char *mfname, struct mf_entry *e,
                       vf_error **errp)
{
    char *p = line;
    size_t al = 0;
    while (isalnum((unsigned char)p[al]))
        al++;
    char *q = p + al;
    while (*q == ' ' || *q == '\t')
        q++;
    char *eq = strrchr(line, '=');
    char *rp = eq;
    while (rp && rp > q && (rp[-1] == ' ' || rp[-1] == '\t'))
        rp--;
    if (!al || al >= sizeof(e->alg) || *q != '(' || !eq || rp <= q + 1 ||
        rp[-1] != ')') {
        error_setg(errp, "%s line %u is not 'ALGORITHM(name)= digest'",
                   mfname, lineno);
        return -1;
    }
    memcpy(e->alg, p, al);
    e->alg[al] = '\0';
    for (char *c = e->alg; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    if (!strcmp(e->alg, "SHA1")) {
        e->md = EVP_sha1();
    } else if (!strcmp(e->alg, "SHA256")) {
        e->md = EVP_sha256();
    } else if (!strcmp(e->alg, "SHA512")) {
        e->md = EVP_sha512();
    } else {
        error_setg(errp, "%s line %u: digest algorithm '%s' not supported "
                   "(SHA1, SHA256, SHA512)", mfname, lineno, e->alg);
        return -1;
    }
    rp[-1] = '\0';
    const char *name = q + 1;
    if (!ova_plain_name(name)) {
        error_setg(errp, "%s line %u: '%s' is not a plain member name",
                   mfname, lineno, name);
        return -1;
    }
    e->m = ova_find(o, name);
    if (!e->m) {
        error_setg(errp, "%s lists '%s', which is not in the archive",
                   mfname, name);
        return -1;
    }
    if (e->m->listed) {
        error_setg(errp, "%s lists '%s' twice", mfname, name);
        return -1;
    }
    e->m->listed = true;
    char *hex = eq + 1;
    while (*hex == ' ' || *hex == '\t')
        hex++;
    size_t hl = strlen(hex);
    while (hl && (hex[hl - 1] == ' ' || hex[hl - 1] == '\t'))
        hex[--hl] = '\0';
    e->len = (unsigned)EVP_MD_size(e->md);
    if (hl != 2 * (size_t)e->len) {
        error_setg(errp, "%s line %u: %s digest of '%s' has %zu hex "
                   "digits, not %u", mfname, lineno, e->alg, name, hl,
                   2 * e->len);
        return -1;
    }
    for (unsigned i = 0; i < e->len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            error_setg(errp, "%s line %u: digest of '%s' is not hex",
                       mfname, lineno, name);
            return -1;
        }
        e->want[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int ova_digest(struct ova *o, const struct ova_member *m,
                      const EVP_MD *md, uint8_t *buf, uint8_t *out,
                      vf_error **errp)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL)) {
        EVP_MD_CTX_free(ctx);
        error_setg(errp, "cannot start a digest");
        return -1;
    }
    uint64_t off = 0;
    int ret = 0;
    while (off < m->size) {
        size_t n = m->size - off < OVA_HASH_CHUNK ? (size_t)(m->size - off)
                                                  : OVA_HASH_CHUNK;
        if (io_pread(o->io, buf, n, m->off + off, errp) < 0) {
            error_prepend(errp, "member '%s': ", m->name);
            ret = -1;
            break;
        }
        EVP_DigestUpdate(ctx, buf, n);
        off += n;
    }
    unsigned l = 0;
    if (!ret)
        EVP_DigestFinal_ex(ctx, out, &l);
    EVP_MD_CTX_free(ctx);
    return ret;
}

/* Check every digest the manifest lists; record what was checked. */
static int ova_manifest(struct ova *o, struct ova_member *mf,
                        vf_error **errp)
{
    char *text = NULL;
    struct mf_entry *ents = NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    int ret = -1;
    if (src_read_bytes(o->io, mf->off, mf->size, OVA_MF_MAX, mf->name,
                       &text, errp) < 0)
        return -1;
    if (strlen(text) != mf->size) {
        error_setg(errp, "%s holds a NUL byte: not a manifest", mf->name);
        goto out;
    }
    unsigned lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' ||
                     line[l - 1] == '\t'))
            line[--l] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line)
            continue;
        if (n == cap) {
            /* bounded: each entry names a different member */
            size_t nc = cap ? cap * 2 : 8;
            struct mf_entry *ne = realloc(ents, nc * sizeof(*ne));
            if (!ne) {
                error_setg(errp, "out of memory");
                goto out;
            }
            ents = ne;
            cap = nc;
        }
        if (ova_mf_line(o, line, lineno, mf->name, &ents[n], errp) < 0)
            goto out;
        n++;
    }
    if (!n) {
        error_setg(errp, "%s lists no digest", mf->name);
        goto out;
    }
    buf = malloc(OVA_HASH_CHUNK);
    if (!buf) {
        error_setg(errp, "out of memory");
        goto out;
    }
    struct json_object *jm = json_object_new_object();
    struct json_object *verified = json_object_new_array();
    struct json_object *unlisted = json_object_new_array();
    json_object_object_add(jm, "file", json_object_new_string(mf->name));
    json_object_object_add(jm, "algorithm",
                           json_object_new_string(ents[0].alg));
    json_object_object_add(jm, "verified", verified);
    json_object_object_add(jm, "not-listed", unlisted);
    json_object_object_add(o->vm->facts, "manifest", jm);
    for (size_t i = 0; i < n; i++) {
        struct mf_entry *e = &ents[i];
        uint8_t got[EVP_MAX_MD_SIZE];
        if (ova_digest(o, e->m, e->md, buf, got, errp) < 0)
            goto out;
        if (memcmp(got, e->want, e->len)) {
            char hg[2 * EVP_MAX_MD_SIZE + 1], hw[2 * EVP_MAX_MD_SIZE + 1];
            ova_hex(got, e->len, hg);
            ova_hex(e->want, e->len, hw);
            error_setg(errp, "member '%s' has %s %s, but %s says %s",
                       e->m->name, e->alg, hg, mf->name, hw);
            goto out;
        }
        json_object_array_add(verified, json_object_new_string(e->m->name));
        if (strcmp(e->alg, ents[0].alg))
            json_object_object_add(jm, "algorithm",
                                   json_object_new_string("mixed"));
    }
    for (size_t i = 0; i < o->n; i++) {
        const struct ova_member *m = &o->m[i];
        if (ova_regular(m) && !m->listed && m != mf &&
            !(strlen(m->name) > 5 &&
              !strcasecmp(m->name + strlen(m->name) - 5, ".cert"))) {
            json_object_array_add(unlisted, json_object_new_string(m->name));
            src_note(o->vm, "member '%s' is not in the manifest: not "
                     "verified", m->name);
        }
    }
    ret = 0;
out:
    free(buf);
    free(ents);
    free(text);
    return ret;
}

/* ---- the descriptor ---- */

/* A CIM AllocationUnits string ("byte * 2^20", "MegaBytes", "byte") as
 * a power of two.  false when not understood. */
static bool ovf_units_shift(const char *units, unsigned *shift)
{
    char u[64];
    size_t l = 0;
    for (const char *p = units; *p; p++) {
        if (isspace((unsigned char)*p))
            continue;
        if (l + 1 >= sizeof(u))
            return false;
        u[l++] = (char)tolower((unsigned char)*p);
    }
    u[l] = '\0';
    static const struct { const char *name; unsigned shift; } named[] = {
        { "byte", 0 }, { "bytes", 0 },
        { "kilobytes", 10 }, { "kb", 10 }, { "kib", 10 },
        { "megabytes", 20 }, { "mb", 20 }, { "mib", 20 },
        { "gigabytes", 30 }, { "gb", 30 }, { "gib", 30 },
        { "terabytes", 40 }, { "tb", 40 }, { "tib", 40 },
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        if (!strcmp(u, named[i].name)) {
            *shift = named[i].shift;
            return true;
        }
    }
    uint64_t v;
    if (!strncmp(u, "byte*2^", 7) && src_parse_u64(u + 7, 60, &v)) {
        *shift = (unsigned)v;
        return true;
    }
    return false;
}

/* quantity << shift, false when it overflows */
static bool ovf_scale(uint64_t q, unsigned shift, uint64_t *bytes)
{
    if (shift >= 64 || q > (UINT64_MAX >> shift))
        return false;
    *bytes = q << shift;
    return true;
}

/* A hardware item, the fields we use read once. */
struct ovf_item {
    xmlNode *node;
    size_t pos;            /* document order among the items */
    uint64_t rtype;        /* ResourceType, UINT64_MAX if absent */
    char *id, *parent, *addr;
};

struct ovf_disk_ref {
    struct ovf_item *item;
    size_t ctrl_pos;       /* document position of its controller */
    uint64_t addr;         /* AddressOnParent */
};

static int ovf_disk_cmp(const void *a, const void *b)
{
    const struct ovf_disk_ref *x = a, *y = b;
    if (x->ctrl_pos != y->ctrl_pos)
        return x->ctrl_pos < y->ctrl_pos ? -1 : 1;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->item->pos < y->item->pos ? -1 : x->item->pos > y->item->pos;
}

/* The child element of parent whose attribute attr equals val. */
static xmlNode *ovf_find_by(xmlNode *parent, const char *elem,
                           const char *attr, const char *val)
{
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next) {
        if (!src_xml_is(c, elem))
            continue;
        char *v = src_xml_attr(c, attr);
        bool hit = v && !strcmp(v, val);
        free(v);
        if (hit)
            return c;
    }
    return NULL;
}

static const char *ovf_ctrl_type(uint64_t rtype, const char *subtype)
{
    switch (rtype) {
    case 5:
        return "ide";
    case 6:
        return "scsi";
    case 20:
        if (subtype && (strcasestr(subtype, "ahci") ||
                        strcasestr(subtype, "sata")))
            return "sata";
        if (subtype && strcasestr(subtype, "nvme"))
            return "nvme";
        return "other-storage";
    default:
        return NULL;
    }
}

/* Memory (ResourceType 4) into vm->memory_mb. */
static int ovf_memory(struct ova *o, struct ovf_item *it, vf_error **errp)
{
    char *q = src_xml_child_text(it->node, "VirtualQuantity");
    char *u = src_xml_child_text(it->node, "AllocationUnits");
    unsigned shift = 20;
    uint64_t v, bytes;
    int ret = -1;
    if (!q || !src_parse_u64(q, UINT64_MAX, &v)) {
        error_setg(errp, "memory item's VirtualQuantity '%s' is not a "
                   "number", q ? q : "");
        goto out;
    }
    if (!u)
        src_note(o->vm, "memory item without AllocationUnits: read as MiB");
    else if (!ovf_units_shift(u, &shift)) {
        error_setg(errp, "memory AllocationUnits '%s' not understood", u);
        goto out;
    }
    uint64_t mb = 0;
    if (ovf_scale(v, shift, &bytes))    /* whole MiB, rounded up */
        mb = (bytes >> 20) + !!(bytes & ((1u << 20) - 1));
    if (!mb || mb > SRC_MAX_MEMORY_MB) {
        error_setg(errp, "memory of %s x 2^%u bytes out of range (1 MiB to "
                   "64 TiB)", q, shift);
        goto out;
    }
    o->vm->memory_mb = (unsigned)mb;
    ret = 0;
out:
    free(q);
    free(u);
    return ret;
}

static int ovf_cpus(struct ova *o, struct ovf_item *it, vf_error **errp)
{
    char *q = src_xml_child_text(it->node, "VirtualQuantity");
    uint64_t v;
    int ret = 0;
    if (!q || !src_parse_u64(q, SRC_MAX_VCPUS, &v) || !v) {
        error_setg(errp, "CPU item's VirtualQuantity '%s' is not a count "
                   "from 1 to %d", q ? q : "", SRC_MAX_VCPUS);
        ret = -1;
    } else {
        o->vm->vcpus = (unsigned)v;
    }
    free(q);
    return ret;
}

/* Add a JSON field from an item's child element's text, when present. */
static void ovf_fact(struct json_object *j, const char *key, xmlNode *n,
                     const char *elem)
{
    char *v = src_xml_child_text(n, elem);
    if (v && *v)
        json_object_object_add(j, key, json_object_new_string(v));
    free(v);
}

/* Open one disk item: HostResource -> Disk -> File -> tar member. */
static int ovf_open_disk(struct ova *o, xmlNode *envelope,
                         struct ovf_disk_ref *d, const char *ctrl_type,
                         struct json_object *jdisks, vf_error **errp)
{
    xmlNode *refs = src_xml_child(envelope, "References");
    xmlNode *dsec = src_xml_child(envelope, "DiskSection");
    char *host = src_xml_child_text(d->item->node, "HostResource");
    char *disk_id = NULL, *file_id = NULL, *href = NULL, *comp = NULL;
    char *chunk = NULL, *cap = NULL, *capu = NULL, *fmt = NULL;
    char *pop = NULL, *bname = NULL;
    struct blk *b = NULL;
    int ret = -1;
    if (!host || !*host) {
        src_note(o->vm, "disk item %s has no HostResource: skipped",
                 d->item->id ? d->item->id : "?");
        ret = 0;
        goto out;
    }
    const char *h = host;
    if (!strncmp(h, "ovf:", 4))
        h += 4;
    xmlNode *disk = NULL;
    if (!strncmp(h, "/disk/", 6)) {
        disk_id = strdup(h + 6);
        disk = ovf_find_by(dsec, "Disk", "diskId", h + 6);
        if (!disk) {
            error_setg(errp, "HostResource '%s' names a disk that "
                       "DiskSection does not list", host);
            goto out;
        }
        file_id = src_xml_attr(disk, "fileRef");
        cap = src_xml_attr(disk, "capacity");
        capu = src_xml_attr(disk, "capacityAllocationUnits");
        fmt = src_xml_attr(disk, "format");
        pop = src_xml_attr(disk, "populatedSize");
        if (!file_id) {
            src_note(o->vm, "disk '%s' has no file (a blank disk to "
                     "create): skipped", h + 6);
            ret = 0;
            goto out;
        }
    } else if (!strncmp(h, "/file/", 6)) {
        file_id = strdup(h + 6);
    } else {
        error_setg(errp, "disk HostResource '%s' not understood", host);
        goto out;
    }
    if (!file_id) {
        error_setg(errp, "out of memory");
        goto out;
    }
    xmlNode *file = ovf_find_by(refs, "File", "id", file_id);
    if (!file) {
        error_setg(errp, "disk file '%s' is not in References", file_id);
        goto out;
    }
    href = src_xml_attr(file, "href");
    comp = src_xml_attr(file, "compression");
    chunk = src_xml_attr(file, "chunkSize");
    if (!href) {
        error_setg(errp, "File '%s' has no href", file_id);
        goto out;
    }
    if (!ova_plain_name(href)) {
        error_setg(errp, "File '%s' href '%s' is not a plain member name "
                   "(no '/', no '..')", file_id, href);
        goto out;
    }
    if (comp && *comp && strcmp(comp, "identity")) {
        error_setg(errp, "File '%s' is %s-compressed: compressed OVA disks "
                   "are not supported (repack the OVA uncompressed)", href,
                   comp);
        goto out;
    }
    if (chunk && *chunk) {
        error_setg(errp, "File '%s' is split in chunks of %s bytes: not "
                   "supported", href, chunk);
        goto out;
    }
    struct ova_member *m = ova_find(o, href);
    if (!m) {
        error_setg(errp, "the OVF names file '%s', which is not in the "
                   "archive", href);
        goto out;
    }
    uint8_t magic[4] = { 0 };
    if (m->size >= 4 && io_pread(o->io, magic, 4, m->off, errp) < 0)
        goto out;
    if (magic[0] == 0x1f && magic[1] == 0x8b) {
        error_setg(errp, "member '%s' is gzip data: compressed OVA disks "
                   "are not supported", href);
        goto out;
    }
    /* KDMV (hosted sparse, streamOptimized) and COWD are one file each;
     * a descriptor-only VMDK would name extents outside the archive */
    if (m->size < 4 || !(!memcmp(magic, "KDMV", 4) ||
                         !memcmp(magic, "COWD", 4))) {
        error_setg(errp, "member '%s' is not a sparse VMDK "
                   "(streamOptimized or monolithicSparse): other disk "
                   "formats in an OVA are not supported", href);
        goto out;
    }
    /* Named "x.ova/member": reads well, and b->dir is then the OVA file
     * itself, so no name inside the disk could reach a real directory. */
    if (asprintf(&bname, "%s/%s", o->path, href) < 0) {
        bname = NULL;
        error_setg(errp, "out of memory");
        goto out;
    }
    struct io *slice = io_slice_new(o->io, m->off, m->size, false, bname);
    if (!slice) {
        error_setg(errp, "out of memory");
        goto out;
    }
    struct blk_open_opts so = { .format = "vmdk", .no_backing = true };
    b = blk_open_io(slice, bname, true, &so, errp);
    if (!b)
        goto out;
    if (b->backing_name) {
        error_setg(errp, "member '%s' is a delta disk of '%s': not "
                   "supported in an OVA", href, b->backing_name);
        goto out;
    }
    uint64_t capv, capb;
    unsigned shift = 0;
    if (cap && src_parse_u64(cap, UINT64_MAX, &capv) &&
        (!capu || ovf_units_shift(capu, &shift)) &&
        ovf_scale(capv, shift, &capb) && capb != b->size)
        src_note(o->vm, "disk '%s': the OVF says a capacity of %" PRIu64
                 " bytes, the VMDK %" PRIu64, href, capb, b->size);

    struct json_object *jd = json_object_new_object();
    json_object_object_add(jd, "member", json_object_new_string(href));
    json_object_object_add(jd, "disk-id", src_json_str(disk_id));
    json_object_object_add(jd, "file-id", json_object_new_string(file_id));
    json_object_object_add(jd, "controller", src_json_str(d->item->parent));
    json_object_object_add(jd, "controller-type", src_json_str(ctrl_type));
    json_object_object_add(jd, "address-on-parent",
                           src_json_str(d->item->addr));
    json_object_object_add(jd, "format", src_json_str(fmt));
    json_object_object_add(jd, "populated-size", src_json_str(pop));
    json_object_array_add(jdisks, jd);

    struct blk *bb = b;
    b = NULL;
    if (src_add_disk(o->vm, bb, href, errp) < 0)
        goto out;
    ret = 0;
out:
    blk_close(b);
    free(host);
    free(disk_id);
    free(file_id);
    free(href);
    free(comp);
    free(chunk);
    free(cap);
    free(capu);
    free(fmt);
    free(pop);
    free(bname);
    return ret;
}

/* Firmware from vmw:Config / vmw:ExtraConfig key="firmware", or from
 * VirtualBox's vbox:Machine/Hardware/Firmware type. */
static void ovf_firmware(struct ova *o, xmlNode *vs, xmlNode *hw)
{
    for (xmlNode *c = hw->children; c; c = c->next) {
        if (!src_xml_is(c, "Config") && !src_xml_is(c, "ExtraConfig"))
            continue;
        char *k = src_xml_attr(c, "key"), *v = src_xml_attr(c, "value");
        if (k && v && !strcasecmp(k, "firmware")) {
            if (!strcasecmp(v, "efi"))
                o->vm->firmware = "uefi";
            else if (!strcasecmp(v, "bios"))
                o->vm->firmware = "bios";
            else
                src_note(o->vm, "firmware '%s' not understood", v);
        }
        free(k);
        free(v);
    }
    xmlNode *fw = src_xml_child(src_xml_child(src_xml_child(vs, "Machine"),
                                              "Hardware"), "Firmware");
    char *t = fw ? src_xml_attr(fw, "type") : NULL;
    if (t && !o->vm->firmware)
        o->vm->firmware = !strncasecmp(t, "efi", 3) ? "uefi" : "bios";
    free(t);
}

static void ovf_os(struct ova *o, xmlNode *vs)
{
    xmlNode *os = src_xml_child(vs, "OperatingSystemSection");
    if (!os)
        return;
    struct json_object *j = json_object_new_object();
    char *id = src_xml_attr(os, "id"), *t = src_xml_attr(os, "osType");
    json_object_object_add(j, "cim-id", src_json_str(id));
    json_object_object_add(j, "os-type", src_json_str(t));
    ovf_fact(j, "description", os, "Description");
    json_object_object_add(o->vm->facts, "os", j);
    free(id);
    free(t);
}

static void ovf_items_free(struct ovf_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].id);
        free(items[i].parent);
        free(items[i].addr);
    }
    free(items);
}

static int ovf_hardware(struct ova *o, xmlNode *env, xmlNode *vs,
                        xmlNode *hw, vf_error **errp)
{
    struct ovf_item *items = NULL;
    struct ovf_disk_ref *disks = NULL;
    size_t n = 0, nd = 0;
    bool have_mem = false, have_cpu = false, config_noted = false;
    int ret = -1;
    items = calloc(OVA_MAX_ITEMS, sizeof(*items));
    disks = calloc(OVA_MAX_ITEMS, sizeof(*disks));
    struct json_object *ctrls = json_object_new_array();
    struct json_object *nics = json_object_new_array();
    struct json_object *jdisks = json_object_new_array();
    json_object_object_add(o->vm->facts, "controllers", ctrls);
    json_object_object_add(o->vm->facts, "nics", nics);
    json_object_object_add(o->vm->facts, "disks", jdisks);
    if (!items || !disks) {
        error_setg(errp, "out of memory");
        goto out;
    }
    char *vst = src_xml_child_text(src_xml_child(hw, "System"),
                                   "VirtualSystemType");
    json_object_object_add(o->vm->facts, "virtual-system-type",
                           src_json_str(vst));
    free(vst);

    for (xmlNode *c = hw->children; c; c = c->next) {
        if (!src_xml_is(c, "Item") && !src_xml_is(c, "StorageItem") &&
            !src_xml_is(c, "EthernetPortItem"))
            continue;
        char *conf = src_xml_attr(c, "configuration");
        bool has_conf = conf != NULL;
        free(conf);
        if (has_conf) {
            /* deployment options choose between variants of an item;
             * the default configuration is the one without */
            if (!config_noted)
                src_note(o->vm, "hardware items of deployment options "
                         "ignored");
            config_noted = true;
            continue;
        }
        if (n >= OVA_MAX_ITEMS) {
            error_setg(errp, "more than %d hardware items", OVA_MAX_ITEMS);
            goto out;
        }
        struct ovf_item *it = &items[n];
        it->node = c;
        it->pos = n++;
        char *rt = src_xml_child_text(c, "ResourceType");
        if (!rt || !src_parse_u64(rt, 0xffff, &it->rtype))
            it->rtype = UINT64_MAX;
        free(rt);
        it->id = src_xml_child_text(c, "InstanceID");
        it->parent = src_xml_child_text(c, "Parent");
        it->addr = src_xml_child_text(c, "AddressOnParent");
    }
    for (size_t i = 0; i < n; i++) {
        struct ovf_item *it = &items[i];
        char *sub = src_xml_child_text(it->node, "ResourceSubType");
        const char *ct = ovf_ctrl_type(it->rtype, sub);
        if (it->rtype == 3 || it->rtype == 4) {
            bool *seen = it->rtype == 3 ? &have_cpu : &have_mem;
            if (*seen) {
                error_setg(errp, "several %s items",
                           it->rtype == 3 ? "CPU" : "memory");
                free(sub);
                goto out;
            }
            *seen = true;
            if ((it->rtype == 3 ? ovf_cpus(o, it, errp)
                                : ovf_memory(o, it, errp)) < 0) {
                free(sub);
                goto out;
            }
        } else if (ct) {
            struct json_object *j = json_object_new_object();
            json_object_object_add(j, "id", src_json_str(it->id));
            json_object_object_add(j, "type", json_object_new_string(ct));
            json_object_object_add(j, "model", src_json_str(sub));
            ovf_fact(j, "address", it->node, "Address");
            json_object_array_add(ctrls, j);
        } else if (it->rtype == 10) {
            struct json_object *j = json_object_new_object();
            json_object_object_add(j, "model", src_json_str(sub));
            ovf_fact(j, "network", it->node, "Connection");
            ovf_fact(j, "name", it->node, "ElementName");
            ovf_fact(j, "mac", it->node, "Address");
            json_object_array_add(nics, j);
        } else if (it->rtype == 17) {
            struct ovf_disk_ref *d = &disks[nd++];
            d->item = it;
            d->ctrl_pos = SIZE_MAX;
            for (size_t k = 0; it->parent && k < n; k++) {
                if (items[k].id && !strcmp(items[k].id, it->parent)) {
                    d->ctrl_pos = k;
                    break;
                }
            }
            uint64_t a;
            d->addr = it->addr && src_parse_u64(it->addr, UINT32_MAX, &a)
                          ? a : UINT64_MAX;
        }
        free(sub);
    }
    qsort(disks, nd, sizeof(*disks), ovf_disk_cmp);
    for (size_t i = 0; i < nd; i++) {
        const char *ct = NULL;
        if (disks[i].ctrl_pos != SIZE_MAX) {
            struct ovf_item *ci = &items[disks[i].ctrl_pos];
            char *sub = src_xml_child_text(ci->node, "ResourceSubType");
            ct = ovf_ctrl_type(ci->rtype, sub);
            free(sub);
        }
        if (ovf_open_disk(o, env, &disks[i], ct, jdisks, errp) < 0) {
            error_prepend(errp, "disk item %s: ",
                          disks[i].item->id ? disks[i].item->id : "?");
            goto out;
        }
    }
    ovf_firmware(o, vs, hw);
    ret = 0;
out:
    ovf_items_free(items, n);
    free(disks);
    return ret;
}

static int ova_descriptor(struct ova *o, const struct ova_member *ovf,
                          vf_error **errp)
{
    char *text = NULL;
    if (src_read_bytes(o->io, ovf->off, ovf->size, OVA_OVF_MAX, ovf->name,
                       &text, errp) < 0)
        return -1;
    xmlDoc *doc = src_xml_read(text, ovf->size, ovf->name, errp);
    free(text);
    if (!doc)
        return -1;
    int ret = -1;
    xmlNode *env = xmlDocGetRootElement(doc);
    xmlNode *vs = src_xml_child(env, "VirtualSystem");
    xmlNode *hw = src_xml_child(vs, "VirtualHardwareSection");
    if (!src_xml_is(env, "Envelope")) {
        error_setg(errp, "%s: root element <%s> is not an OVF <Envelope>",
                   ovf->name, (const char *)env->name);
        goto out;
    }
    if (!vs && src_xml_child(env, "VirtualSystemCollection")) {
        error_setg(errp, "%s holds several virtual systems "
                   "(VirtualSystemCollection): not supported", ovf->name);
        goto out;
    }
    if (!vs || !hw) {
        error_setg(errp, "%s has no VirtualSystem with a "
                   "VirtualHardwareSection", ovf->name);
        goto out;
    }
    char *name = src_xml_child_text(vs, "Name");
    if (!name || !*name) {
        free(name);
        name = src_xml_attr(vs, "id");
    }
    o->vm->name = name;
    ovf_os(o, vs);
    if (ovf_hardware(o, env, vs, hw, errp) < 0) {
        error_prepend(errp, "%s: ", ovf->name);
        goto out;
    }
    ret = 0;
out:
    xmlFreeDoc(doc);
    return ret;
}

/* ---- the whole ---- */

static bool ova_ext(const char *name, const char *ext)
{
    size_t l = strlen(name), e = strlen(ext);
    return l > e && !strcasecmp(name + l - e, ext);
}

int src_ova_open(const char *path, const struct blk_open_opts *oo,
                 struct src_vm *vm, vf_error **errp)
{
    struct ova o = { .path = path, .oo = oo, .vm = vm };
    int ret = -1;
    o.io = io_file_open(path, true, errp);
    if (!o.io)
        return -1;
    vm->container = o.io;
    int64_t sz = io_size(o.io, errp);
    if (sz < 0)
        return -1;
    o.fsize = (uint64_t)sz;
    if (ova_walk(&o, errp) < 0)
        goto out;

    struct ova_member *ovf = NULL, *mf = NULL, *cert = NULL;
    struct json_object *members = json_object_new_array();
    json_object_object_add(vm->facts, "members", members);
    for (size_t i = 0; i < o.n; i++) {
        struct ova_member *m = &o.m[i];
        struct json_object *jm = json_object_new_object();
        json_object_object_add(jm, "name", json_object_new_string(m->name));
        json_object_object_add(jm, "size", json_object_new_int64(
                                   (int64_t)m->size));
        json_object_array_add(members, jm);
        if (!ova_regular(m) || strchr(m->name, '/'))
            continue;
        struct ova_member **slot = ova_ext(m->name, ".ovf") ? &ovf
                                   : ova_ext(m->name, ".mf") ? &mf
                                   : ova_ext(m->name, ".cert") ? &cert
                                                               : NULL;
        if (slot && *slot) {
            error_setg(errp, "several %s members ('%s', '%s')",
                       slot == &ovf ? ".ovf" : slot == &mf ? ".mf" : ".cert",
                       (*slot)->name, m->name);
            goto out;
        }
        if (slot)
            *slot = m;
    }
    if (!ovf) {
        error_setg(errp, "tar archive without an .ovf descriptor: not an "
                   "OVA");
        goto out;
    }
    json_object_object_add(vm->facts, "ovf", json_object_new_string(
                               ovf->name));
    json_object_object_add(vm->facts, "ovf-first",
                           json_object_new_boolean(ovf == &o.m[0]));
    if (ovf != &o.m[0])
        src_note(vm, "the .ovf is not the archive's first member (VMware "
                 "tools insist on it)");
    if (cert) {
        json_object_object_add(vm->facts, "certificate",
                               json_object_new_string(cert->name));
        src_note(vm, "certificate '%s' not verified", cert->name);
    }
    if (mf) {
        if (ova_manifest(&o, mf, errp) < 0)
            goto out;
    } else {
        json_object_object_add(vm->facts, "manifest", NULL);
        src_note(vm, "no manifest: member digests not checked");
    }
    if (ova_descriptor(&o, ovf, errp) < 0)
        goto out;
    ret = 0;
out:
    for (size_t i = 0; i < o.n; i++)
        free(o.m[i].name);
    free(o.m);
    return ret;
}
