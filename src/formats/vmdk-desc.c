/*
 * vmdk-desc.c: VMDK text descriptors, parsed and built.
 *
 * Spec: VMware "Virtual Disk Format 5.0", section "The Descriptor File":
 * "key=value" header lines (version, CID, parentCID, createType,
 * parentFileNameHint), extent lines `ACCESS SECTORS TYPE "FILE" [OFFSET]`
 * (TYPE FLAT, VMFS, ZERO, SPARSE, VMFSSPARSE, or ESXi's SESPARSE) and the
 * disk database (ddb.*).  Extent and parent names are resolved
 * through blk_open_sibling(), which refuses absolute and ".." names
 * unless --allow-backing-path.
 */
#include "formats/vmdk.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *vmdk_trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    char *e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return p;
}

/* Strip one pair of double quotes. */
static char *vmdk_unquote(char *v)
{
    size_t l = strlen(v);
    if (l >= 2 && v[0] == '"' && v[l - 1] == '"') {
        v[l - 1] = '\0';
        return v + 1;
    }
    return v;
}

static int vmdk_set_str(char **dst, const char *v, vf_error **errp)
{
    char *d = strdup(v);
    if (!d) {
        error_setg(errp, "out of memory");
        return -1;
    }
    free(*dst);
    *dst = d;
    return 0;
}

static int vmdk_parse_hex32(const char *v, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 16);
    if (errno || end == v || *end || x > UINT32_MAX)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

/* Parse one extent line (the access word already checked). */
static int vmdk_parse_extent(char *line, struct vmdk_extent *e,
                             vf_error **errp)
{
    char *p = line;
    while (*p && *p != ' ' && *p != '\t')     /* access */
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end;
    errno = 0;
    unsigned long long sectors = strtoull(p, &end, 10);
    if (errno || end == p || *p == '-') {
        error_setg(errp, "VMDK extent line with bad size '%s'", line);
        return -1;
    }
    /* guest bytes must fit 64 bits with room to add extents */
    if (sectors > (UINT64_C(1) << 52)) {
        error_setg(errp, "VMDK extent size 0x%llx sectors too large",
                   sectors);
        return -1;
    }
    p = end;
    while (*p == ' ' || *p == '\t')
        p++;
    char *type = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    e->len = (uint64_t)sectors * VMDK_SECTOR;
    if (!strcmp(type, "ZERO")) {
        e->type = VMDK_EXT_ZERO;
        return 0;
    }
    if (!strcmp(type, "FLAT") || !strcmp(type, "VMFS"))
        e->type = VMDK_EXT_FLAT;
    else if (!strcmp(type, "SPARSE"))
        e->type = VMDK_EXT_SPARSE;
    else if (!strcmp(type, "VMFSSPARSE"))
        e->type = VMDK_EXT_COWD;
    else if (!strcmp(type, "SESPARSE"))
        e->type = VMDK_EXT_SESPARSE;
    else {
        error_setg(errp, "unsupported VMDK extent type '%s'", type);
        return -1;
    }
    if (*p != '"') {
        error_setg(errp, "VMDK extent line without a quoted file name");
        return -1;
    }
    char *name = ++p;
    p = strchr(p, '"');
    if (!p) {
        error_setg(errp, "VMDK extent file name without closing quote");
        return -1;
    }
    *p++ = '\0';
    e->fname = strdup(name);
    if (!e->fname) {
        error_setg(errp, "out of memory");
        return -1;
    }
    p = vmdk_trim(p);
    if (*p && e->type == VMDK_EXT_FLAT) {
        errno = 0;
        unsigned long long o = strtoull(p, &end, 10);
        if (errno || *end || *p == '-' || o > (UINT64_C(1) << 52)) {
            error_setg(errp, "VMDK flat extent offset '%s' invalid", p);
            return -1;
        }
        e->flat_off = (uint64_t)o * VMDK_SECTOR;
    }
    return 0;
}

static int vmdk_open_extent(struct blk *b, struct vmdk_extent *e,
                            vf_error **errp)
{
    if (e->type == VMDK_EXT_ZERO)
        return 0;
    if (b->readonly) {
        e->io = blk_open_sibling(b, e->fname, errp);
    } else {
        /* resize changes extents: the same confinement, read-write */
        char *path = blk_resolve_name(b, e->fname, errp);
        if (!path)
            return -1;
        e->io = io_file_open(path, false, errp);
        if (!e->io)
            error_prepend(errp, "%s: ", path);
        free(path);
    }
    if (!e->io)
        return -1;
    e->own_io = true;
    int64_t sz = io_size(e->io, errp);
    if (sz < 0)
        return -1;
    e->file_size = (uint64_t)sz;
    if (e->type == VMDK_EXT_FLAT)
        return 0;
    if (e->type == VMDK_EXT_SESPARSE ? vmdk_se_open(e, errp) < 0
                                     : vmdk_sparse_open(e, NULL, errp) < 0) {
        error_prepend(errp, "%s: ", e->fname);
        return -1;
    }
    return 0;
}

int vmdk_desc_parse(struct blk *b, struct vmdk_state *s, bool embedded,
                    vf_error **errp)
{
    char *text = strdup(s->desc);
    if (!text) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int ret = -1;
    size_t cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line = vmdk_trim(line);
        if (!*line || *line == '#')
            continue;
        if (!strncmp(line, "RW ", 3) || !strncmp(line, "RDONLY ", 7) ||
            !strncmp(line, "NOACCESS ", 9) || !strncmp(line, "RW\t", 3)) {
            if (embedded)
                continue;   /* a KDMV file is its own single extent */
            if (s->n_ext >= VMDK_EXTENTS_MAX) {
                error_setg(errp, "VMDK descriptor has more than %u extents",
                           VMDK_EXTENTS_MAX);
                goto out;
            }
            if (s->n_ext == cap) {
                size_t nc = cap ? cap * 2 : 4;
                struct vmdk_extent *ne = realloc(s->ext, nc * sizeof(*ne));
                if (!ne) {
                    error_setg(errp, "out of memory");
                    goto out;
                }
                s->ext = ne;
                cap = nc;
            }
            struct vmdk_extent *e = &s->ext[s->n_ext++];
            memset(e, 0, sizeof(*e));
            if (vmdk_parse_extent(line, e, errp) < 0)
                goto out;
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq)
            continue;     /* tolerated, like VMware's own readers */
        *eq = '\0';
        char *key = vmdk_trim(line);
        char *val = vmdk_unquote(vmdk_trim(eq + 1));
        if (!strcmp(key, "CID")) {
            if (vmdk_parse_hex32(val, &s->cid) < 0) {
                error_setg(errp, "VMDK descriptor CID '%s' invalid", val);
                goto out;
            }
        } else if (!strcmp(key, "parentCID")) {
            if (vmdk_parse_hex32(val, &s->parent_cid) < 0) {
                error_setg(errp, "VMDK descriptor parentCID '%s' invalid",
                           val);
                goto out;
            }
            s->have_parent_cid = true;
        } else if (!strcmp(key, "createType")) {
            if (vmdk_set_str(&s->create_type, val, errp) < 0)
                goto out;
        } else if (!strcmp(key, "parentFileNameHint")) {
            if (vmdk_set_str(&s->parent_hint, val, errp) < 0)
                goto out;
        } else if (!strcmp(key, "ddb.adapterType")) {
            if (vmdk_set_str(&s->adapter, val, errp) < 0)
                goto out;
        } else if (!strcmp(key, "ddb.virtualHWVersion")) {
            if (vmdk_set_str(&s->hwversion, val, errp) < 0)
                goto out;
        } else if (!strcmp(key, "ddb.toolsVersion")) {
            if (vmdk_set_str(&s->tools_version, val, errp) < 0)
                goto out;
        }
    }
    if (!embedded) {
        if (!s->n_ext) {
            error_setg(errp, "VMDK descriptor lists no extents");
            goto out;
        }
        uint64_t pos = 0;
        for (size_t i = 0; i < s->n_ext; i++) {
            struct vmdk_extent *e = &s->ext[i];
            e->start = pos;
            if (e->len > (UINT64_C(1) << 62) - pos) {
                error_setg(errp, "VMDK extents add up to more than 2^62 "
                           "bytes");
                goto out;
            }
            pos += e->len;
        }
        for (size_t i = 0; i < s->n_ext; i++)
            if (vmdk_open_extent(b, &s->ext[i], errp) < 0)
                goto out;
    }
    ret = 0;
out:
    free(text);
    return ret;
}

static const char *vmdk_sub_name(int sub)
{
    switch (sub) {
    case VMDK_SUB_MONO_SPARSE: return "monolithicSparse";
    case VMDK_SUB_MONO_FLAT: return "monolithicFlat";
    case VMDK_SUB_2GB_SPARSE: return "twoGbMaxExtentSparse";
    case VMDK_SUB_2GB_FLAT: return "twoGbMaxExtentFlat";
    case VMDK_SUB_STREAM: return "streamOptimized";
    case VMDK_SUB_VMFS: return "vmfs";
    }
    return "monolithicSparse";
}

/* Text grows in a malloc'd buffer; a failed append poisons it. */
struct vmdk_sb {
    char *p;
    size_t len, cap;
    bool oom;
};

static void vmdk_sb_add(struct vmdk_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vmdk_sb_add(struct vmdk_sb *sb, const char *fmt, ...)
{
    if (sb->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->p ? sb->p + sb->len : NULL,
                          sb->p ? sb->cap - sb->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->oom = true;
            return;
        }
        if (sb->p && (size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        size_t nc = (sb->cap ? sb->cap : 1024) * 2 + (size_t)n;
        char *np = realloc(sb->p, nc);
        if (!np) {
            sb->oom = true;
            return;
        }
        sb->p = np;
        sb->cap = nc;
    }
}

char *vmdk_desc_build(struct blk *b, struct vmdk_state *s, vf_error **errp)
{
    struct vmdk_sb sb = { 0 };
    vmdk_sb_add(&sb, "# Disk DescriptorFile\nversion=1\nCID=%08" PRIx32
                "\nparentCID=%08" PRIx32 "\ncreateType=\"%s\"\n",
                s->cid, s->have_parent_cid ? s->parent_cid : 0xffffffffu,
                vmdk_sub_name(s->sub));
    if (s->parent_hint)
        vmdk_sb_add(&sb, "parentFileNameHint=\"%s\"\n", s->parent_hint);
    vmdk_sb_add(&sb, "\n# Extent description\n");
    for (size_t i = 0; i < s->n_ext; i++) {
        const struct vmdk_extent *e = &s->ext[i];
        const char *t = e->type == VMDK_EXT_SPARSE ? "SPARSE"
                        : s->sub == VMDK_SUB_VMFS ? "VMFS" : "FLAT";
        vmdk_sb_add(&sb, "RW %" PRIu64 " %s \"%s\"%s\n",
                    e->len / VMDK_SECTOR, t, e->fname,
                    e->type == VMDK_EXT_FLAT && s->sub != VMDK_SUB_VMFS
                    ? " 0" : "");
    }
    vmdk_sb_add(&sb, "\n# The Disk Data Base\n#DDB\n\n");
    vmdk_sb_add(&sb, "ddb.virtualHWVersion = \"%s\"\n", s->hwversion);
    vmdk_sb_add(&sb, "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                "ddb.geometry.heads = \"%" PRIu32 "\"\n"
                "ddb.geometry.sectors = \"63\"\n", s->geo_cyl, s->geo_heads);
    vmdk_sb_add(&sb, "ddb.adapterType = \"%s\"\n", s->adapter);
    if (s->tools_version)
        vmdk_sb_add(&sb, "ddb.toolsVersion = \"%s\"\n", s->tools_version);
    const uint8_t *u = s->uuid;
    vmdk_sb_add(&sb, "ddb.uuid = \"%02x %02x %02x %02x %02x %02x %02x %02x"
                "-%02x %02x %02x %02x %02x %02x %02x %02x\"\n", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                u[12], u[13], u[14], u[15]);
    vmdk_sb_add(&sb, "ddb.longContentID = \"");
    for (int i = 0; i < 16; i++)
        vmdk_sb_add(&sb, "%02x", u[(i * 7) % 16] ^ (uint8_t)s->cid);
    vmdk_sb_add(&sb, "\"\n");
    if (sb.oom) {
        free(sb.p);
        error_setg(errp, "out of memory");
        return NULL;
    }
    return sb.p;
}

static bool vmdk_is_extent_line(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return !strncmp(p, "RW ", 3) || !strncmp(p, "RDONLY ", 7) ||
           !strncmp(p, "NOACCESS ", 9) || !strncmp(p, "RW\t", 3);
}

/* Is line (len bytes) the ddb key key, and where does its value start? */
static const char *vmdk_ddb_value(const char *line, size_t len,
                                  const char *key)
{
    const char *p = line, *end = line + len;
    size_t kl = strlen(key);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(end - p) <= kl || strncmp(p, key, kl))
        return NULL;
    p += kl;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p < end && *p == '=' ? p + 1 : NULL;
}

/* The number in a ddb value like ' "16"' (0 when it is not one). */
static uint64_t vmdk_ddb_number(const char *v, const char *end)
{
    while (v < end && (*v == ' ' || *v == '\t' || *v == '"'))
        v++;
    uint64_t n = 0;
    for (int k = 0; v < end && *v >= '0' && *v <= '9'; v++, k++) {
        if (k > 9)
            return 0;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    return n;
}

uint64_t vmdk_geo_cylinders(uint64_t size, uint32_t heads, uint32_t sectors)
{
    /* as qemu-img writes it: not capped at the BIOS's 16383 (VMware
     * takes the size from the extents, not from the geometry) */
    return size / ((uint64_t)heads * sectors * VMDK_SECTOR);
}

char *vmdk_desc_resized(const char *desc, size_t keep, uint64_t last_sectors,
                        char *const *add, size_t n_add, uint64_t size,
                        vf_error **errp)
{
    size_t n_ext = 0;
    uint64_t heads = 0, sectors = 0;
    for (const char *line = desc; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *v;
        if (vmdk_is_extent_line(line))
            n_ext++;
        else if ((v = vmdk_ddb_value(line, len, "ddb.geometry.heads")))
            heads = vmdk_ddb_number(v, line + len);
        else if ((v = vmdk_ddb_value(line, len, "ddb.geometry.sectors")))
            sectors = vmdk_ddb_number(v, line + len);
        if (!nl)
            break;
        line = nl + 1;
    }
    if (!n_ext && keep != SIZE_MAX) {
        error_setg(errp, "VMDK descriptor lists no extents");
        return NULL;
    }
    if (keep > n_ext)
        keep = n_ext;
    /* BIOS geometry: heads 1-255, sectors per track 1-63 */
    bool geo = heads >= 1 && heads <= 255 && sectors >= 1 && sectors <= 63;
    struct vmdk_sb sb = { 0 };
    size_t k = 0;
    for (const char *line = desc; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *eol = len && line[len - 1] == '\r' ? "\r\n" : "\n";
        const char *v;
        if (vmdk_is_extent_line(line)) {
            if (++k < keep) {
                vmdk_sb_add(&sb, "%.*s\n", (int)len, line);
            } else if (k == keep) {
                /* ACCESS SECTORS rest: only the number changes */
                const char *num = line;
                while (*num == ' ' || *num == '\t')
                    num++;
                while (*num && *num != ' ' && *num != '\t')
                    num++;
                while (*num == ' ' || *num == '\t')
                    num++;
                const char *end = num;
                while (*end >= '0' && *end <= '9')
                    end++;
                vmdk_sb_add(&sb, "%.*s%" PRIu64 "%.*s\n",
                            (int)(num - line), line, last_sectors,
                            (int)(line + len - end), end);
                for (size_t i = 0; i < n_add; i++)
                    vmdk_sb_add(&sb, "%s%s", add[i], eol);
            }
        } else if (geo && (v = vmdk_ddb_value(line, len,
                                              "ddb.geometry.cylinders"))) {
            vmdk_sb_add(&sb, "%.*s \"%" PRIu64 "\"%s", (int)(v - line), line,
                        vmdk_geo_cylinders(size, (uint32_t)heads,
                                           (uint32_t)sectors), eol);
        } else {
            vmdk_sb_add(&sb, "%.*s%s", (int)len, line, nl ? "\n" : "");
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    if (sb.oom || !sb.p) {
        free(sb.p);
        error_setg(errp, "out of memory");
        return NULL;
    }
    return sb.p;
}
