/*
 * source.c: migrate's inputs (see source.h): tells disk images from
 * descriptions by content, opens plain disks, hands descriptions to their
 * readers (source-ova.c, source-vmx.c, source-libvirt.c), and holds the
 * helpers those share (bounded reads, numbers, name confinement, XML).
 */
#include "pipeline/source-int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>

/* Detection looks at this much of the file's head: any real .vmx names
 * its config.version in its first lines, and an XML root element sits
 * after at most a prolog and a comment or two. */
#define SRC_SNIFF_LEN 65536

enum src_kind { SRC_DISK, SRC_OVA, SRC_VMX, SRC_LIBVIRT };

static const char *const src_kind_name[] = {
    [SRC_DISK] = "disks", [SRC_OVA] = "ova", [SRC_VMX] = "vmx",
    [SRC_LIBVIRT] = "libvirt",
};

/* ---- helpers shared with the readers ---- */

struct json_object *src_json_str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

void src_note(struct src_vm *vm, const char *fmt, ...)
{
    struct json_object *notes;
    if (!json_object_object_get_ex(vm->facts, "notes", &notes)) {
        notes = json_object_new_array();
        json_object_object_add(vm->facts, "notes", notes);
    }
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (s)
        json_object_array_add(notes, json_object_new_string(s));
    free(s);
}

int src_add_disk(struct src_vm *vm, struct blk *b, const char *name,
                 vf_error **errp)
{
    if (vm->ndisks >= SRC_MAX_DISKS) {
        blk_close(b);
        error_setg(errp, "more than %d disks", SRC_MAX_DISKS);
        return -1;
    }
    char *n = strdup(name);
    if (!n) {
        blk_close(b);
        error_setg(errp, "out of memory");
        return -1;
    }
    vm->disks[vm->ndisks] = b;
    vm->disk_names[vm->ndisks] = n;
    vm->ndisks++;
    return 0;
}

struct blk *src_open_named_disk(const char *path,
                                const struct blk_open_opts *oo,
                                vf_error **errp)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        error_setg_errno(errp, errno, "%s: cannot open", path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        error_setg(errp, "%s is not a regular file or block device", path);
        return NULL;
    }
    return blk_open(path, true, oo, errp);
}

int src_read_bytes(struct io *io, uint64_t off, uint64_t len, size_t max,
                   const char *what, char **out, vf_error **errp)
{
    if (len > max) {
        error_setg(errp, "%s of %" PRIu64 " bytes is larger than the %zu "
                   "KiB allowed", what, len, max >> 10);
        return -1;
    }
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (io_pread(io, buf, (size_t)len, off, errp) < 0) {
        free(buf);
        error_prepend(errp, "%s: ", what);
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

bool src_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    if (*s)
        return false;
    *out = v;
    return true;
}

char *src_dir_of(const char *path)
{
    char *tmp = strdup(path);
    if (!tmp)
        return NULL;
    char *d = strdup(dirname(tmp));
    free(tmp);
    return d;
}

/* ---- XML ---- */

xmlDoc *src_xml_read(const char *buf, size_t len, const char *what,
                     vf_error **errp)
{
    /* Entities are how XML bombs (and external-entity reads) work; no OVF
     * or libvirt domain needs one. */
    if (memmem(buf, len, "<!ENTITY", 8)) {
        error_setg(errp, "%s declares XML entities, refused", what);
        return NULL;
    }
    if (len > INT32_MAX) {
        error_setg(errp, "%s too large", what);
        return NULL;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, buf, (int)len, what, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR |
                                    XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[256] = "parse error";
        if (e && e->message) {
            snprintf(msg, sizeof(msg), "%s", e->message);
            size_t l = strlen(msg);
            while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
                msg[--l] = '\0';
        }
        error_setg(errp, "%s is not well-formed XML (line %d: %s)", what,
                   e ? e->line : 0, msg);
    } else if (!xmlDocGetRootElement(doc)) {
        error_setg(errp, "%s has no root element", what);
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

bool src_xml_is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE &&
           !strcmp((const char *)n->name, local);
}

xmlNode *src_xml_child(const xmlNode *n, const char *local)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (src_xml_is(c, local))
            return c;
    return NULL;
}

/* A malloc'd copy of s with blanks trimmed (NULL for NULL). */
static char *src_trim_dup(const xmlChar *x)
{
    if (!x)
        return NULL;
    const char *s = (const char *)x;
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l && isspace((unsigned char)s[l - 1]))
        l--;
    return strndup(s, l);
}

char *src_xml_attr(const xmlNode *n, const char *local)
{
    /* xmlGetProp matches the local name in any namespace (ovf:id,
     * vmw:key, plain type=) */
    xmlChar *v = xmlGetProp(n, BAD_CAST local);
    char *r = src_trim_dup(v);
    xmlFree(v);
    return r;
}

char *src_xml_text(const xmlNode *n)
{
    xmlChar *v = xmlNodeGetContent(n);
    char *r = src_trim_dup(v);
    xmlFree(v);
    return r;
}

char *src_xml_child_text(const xmlNode *n, const char *local)
{
    xmlNode *c = src_xml_child(n, local);
    return c ? src_xml_text(c) : NULL;
}

/* ---- detection ---- */

static bool src_has_ext(const char *path, const char *ext)
{
    size_t l = strlen(path), e = strlen(ext);
    return l > e && !strcasecmp(path + l - e, ext);
}

/* ustar, pax and GNU headers all carry "ustar" at byte 257. */
static bool src_sniff_tar(const uint8_t *h, size_t n)
{
    return n >= 512 && !memcmp(h + 257, "ustar", 5);
}

/* A text file with a `config.version = ...` or `virtualHW.version = ...`
 * line (whole key, any case). */
static bool src_sniff_vmx(const uint8_t *h, size_t n)
{
    if (memchr(h, 0, n))
        return false;
    static const char *const keys[] = { "config.version",
                                        "virtualhw.version" };
    size_t i = 0;
    while (i < n) {
        const uint8_t *nl = memchr(h + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - h) : n;
        size_t p = i;
        while (p < end && (h[p] == ' ' || h[p] == '\t'))
            p++;
        for (size_t k = 0; k < 2; k++) {
            size_t kl = strlen(keys[k]);
            if (end - p <= kl ||
                strncasecmp((const char *)h + p, keys[k], kl))
                continue;
            size_t q = p + kl;
            while (q < end && (h[q] == ' ' || h[q] == '\t'))
                q++;
            if (q < end && h[q] == '=')
                return true;
        }
        i = end + 1;
    }
    return false;
}

/* The name of an XML document's root element (into root), skipping a
 * byte-order mark, the prolog, comments and a DOCTYPE.  false when the
 * head does not look like XML. */
static bool src_sniff_xml_root(const uint8_t *h, size_t n, char *root,
                               size_t rootsz)
{
    const char *p = (const char *)h, *end = p + n;
    if (n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
        p += 3;
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (end - p < 2 || *p != '<')
            return false;
        const char *close;
        size_t cl = 1;    /* the terminator's length */
        if (p[1] == '?') {
            close = memmem(p, (size_t)(end - p), "?>", 2);
            cl = 2;
        } else if (end - p >= 4 && !memcmp(p, "<!--", 4)) {
            close = memmem(p + 4, (size_t)(end - p - 4), "-->", 3);
            cl = 3;
        } else if (p[1] == '!') {
            /* DOCTYPE, perhaps with an internal subset in brackets */
            const char *gt = memchr(p, '>', (size_t)(end - p));
            const char *br = memchr(p, '[', (size_t)(end - p));
            if (br && gt && br < gt) {
                const char *rb = memchr(br, ']', (size_t)(end - br));
                gt = rb ? memchr(rb, '>', (size_t)(end - rb)) : NULL;
            }
            close = gt;
        } else {
            break;
        }
        if (!close)
            return false;
        p = close + cl;
    }
    p++;
    size_t l = 0;
    while (p + l < end && l + 1 < rootsz &&
           (isalnum((unsigned char)p[l]) || p[l] == '_' || p[l] == ':' ||
            p[l] == '-' || p[l] == '.'))
        l++;
    if (!l || p + l >= end ||
        !(isspace((unsigned char)p[l]) || p[l] == '>' || p[l] == '/'))
        return false;
    memcpy(root, p, l);
    root[l] = '\0';
    return true;
}

static int src_detect(const char *path, const struct blk_open_opts *oo,
                      enum src_kind *kind, vf_error **errp)
{
    *kind = SRC_DISK;
    if (oo && oo->format)
        return 0;
    struct io *io = io_file_open(path, true, errp);
    if (!io)
        return -1;
    static _Thread_local uint8_t head[SRC_SNIFF_LEN];
    int64_t sz = io_size(io, errp);
    size_t hl = sz < 0 ? 0 : (uint64_t)sz < sizeof(head) ? (size_t)sz
                                                         : sizeof(head);
    if (sz < 0 || io_pread(io, head, hl, 0, errp) < 0) {
        io_close(io);
        return -1;
    }
    io_close(io);

    char root[64];
    if (src_sniff_tar(head, hl) || src_has_ext(path, ".ova")) {
        *kind = SRC_OVA;
    } else if (src_sniff_vmx(head, hl) || src_has_ext(path, ".vmx")) {
        *kind = SRC_VMX;
    } else if (src_sniff_xml_root(head, hl, root, sizeof(root))) {
        const char *colon = strrchr(root, ':');
        const char *local = colon ? colon + 1 : root;
        if (!strcmp(root, "domain")) {
            *kind = SRC_LIBVIRT;
        } else if (!strcmp(local, "Envelope")) {
            error_setg(errp, "a bare OVF descriptor is not supported: give "
                       "the OVA (a tar of the .ovf, its manifest and "
                       "disks)");
            return -1;
        } else if (src_has_ext(path, ".xml")) {
            error_setg(errp, "XML root element <%s> is not a libvirt "
                       "<domain>", root);
            return -1;
        }
    } else if (src_has_ext(path, ".ovf")) {
        error_setg(errp, "a bare OVF descriptor is not supported: give the "
                   "OVA");
        return -1;
    }
    return 0;
}

/* ---- open / close ---- */

int src_open(char *const *args, int n, const struct blk_open_opts *oo,
             struct src_vm *vm, vf_error **errp)
{
    memset(vm, 0, sizeof(*vm));
    if (n < 1) {
        error_setg(errp, "no source given");
        return -1;
    }
    if (n > SRC_MAX_DISKS) {
        error_setg(errp, "%d sources given, at most %d disks", n,
                   SRC_MAX_DISKS);
        return -1;
    }
    vm->facts = json_object_new_object();
    if (!vm->facts) {
        error_setg(errp, "out of memory");
        return -1;
    }
    enum src_kind kind = SRC_DISK;
    for (int i = 0; i < n; i++) {
        enum src_kind k;
        if (src_detect(args[i], oo, &k, errp) < 0) {
            error_prepend(errp, "%s: ", args[i]);
            goto fail;
        }
        if (k != SRC_DISK && n > 1) {
            error_setg(errp, "%s: %s description names the whole guest: "
                       "give it alone, not with other sources", args[i],
                       k == SRC_OVA ? "an OVA" : k == SRC_VMX ? "a VMX"
                                                              : "a libvirt");
            goto fail;
        }
        kind = k;
    }
    vm->kind = strdup(src_kind_name[kind]);
    if (!vm->kind) {
        error_setg(errp, "out of memory");
        goto fail;
    }
    int r = 0;
    switch (kind) {
    case SRC_OVA:
        r = src_ova_open(args[0], oo, vm, errp);
        break;
    case SRC_VMX:
        r = src_vmx_open(args[0], oo, vm, errp);
        break;
    case SRC_LIBVIRT:
        r = src_libvirt_open(args[0], oo, vm, errp);
        break;
    case SRC_DISK: {
        struct json_object *fmts = json_object_new_array();
        json_object_object_add(vm->facts, "formats", fmts);
        for (int i = 0; i < n; i++) {
            /* blk_open names the file in its errors */
            struct blk *b = blk_open(args[i], true, oo, errp);
            if (!b || src_add_disk(vm, b, args[i], errp) < 0)
                goto fail;
            json_object_array_add(fmts, json_object_new_string(b->drv->name));
        }
        return 0;
    }
    }
    if (r < 0) {
        error_prepend(errp, "%s: ", args[0]);
        goto fail;
    }
    if (!vm->ndisks) {
        error_setg(errp, "%s: the %s description names no disk", args[0],
                   vm->kind);
        goto fail;
    }
    return 0;
fail:
    src_close(vm);
    return -1;
}

void src_close(struct src_vm *vm)
{
    if (!vm)
        return;
    for (size_t i = 0; i < vm->ndisks; i++) {
        blk_close(vm->disks[i]);
        free(vm->disk_names[i]);
    }
    /* after the disks: their slices borrow it */
    io_close(vm->container);
    json_object_put(vm->facts);
    free(vm->kind);
    free(vm->name);
    memset(vm, 0, sizeof(*vm));
}
