/*
 * tar.c: ustar, pax and oldgnu sparse member headers (see tar.h).
 *
 * Field offsets are those of the ustar header (POSIX) and, for oldgnu, of
 * GNU tar's "struct oldgnu_header" as its manual describes it: atime,
 * ctime, offset, longnames, then four sparse runs, isextended and
 * realsize where ustar has its prefix.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/tar.h"

/* ustar fields */
#define T_NAME 0
#define T_MODE 100
#define T_UID 108
#define T_GID 116
#define T_SIZE 124
#define T_MTIME 136
#define T_CHKSUM 148
#define T_TYPE 156
#define T_MAGIC 257
#define T_UNAME 265
#define T_GNAME 297
#define T_PREFIX 345
/* oldgnu fields */
#define G_SPARSE 386          /* 4 x (offset[12], numbytes[12]) */
#define G_ISEXT 482
#define G_REALSIZE 483
#define G_EXT_RUNS 21         /* runs in an extension block */
#define G_EXT_ISEXT 504

#define PAX_MAX (64 * 1024)   /* bound on pax / long-name records read */

size_t tar_padding(uint64_t size)
{
    return (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
}

/* A number into a field of w bytes: octal with a NUL when it fits in
 * w - 1 digits, else base-256 (GNU: first byte 0x80, big-endian). */
static void put_num(uint8_t *f, size_t w, uint64_t v)
{
    uint64_t lim = (uint64_t)1 << (3 * (w - 1));
    if (w - 1 >= 21 || v < lim) {
        for (size_t i = w - 1; i-- > 0;) {
            f[i] = (uint8_t)('0' + (v & 7));
            v >>= 3;
        }
        f[w - 1] = 0;
        return;
    }
    memset(f, 0, w);
    f[0] = 0x80;
    for (size_t i = w; i-- > 1 && v;) {
        f[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static void put_str(uint8_t *f, size_t w, const char *s)
{
    size_t l = strlen(s);
    memcpy(f, s, l < w ? l : w);
}

static void put_chksum(uint8_t *h)
{
    memset(h + T_CHKSUM, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    /* six octal digits, NUL, space */
    snprintf((char *)h + T_CHKSUM, 7, "%06o", sum & 0777777);
    h[T_CHKSUM + 6] = 0;
    h[T_CHKSUM + 7] = ' ';
}

static void fill_common(uint8_t *h, const char *name, unsigned mode,
                        int64_t mtime, char type)
{
    put_str(h + T_NAME, 100, name);
    put_num(h + T_MODE, 8, mode & 07777);
    put_num(h + T_UID, 8, 0);
    put_num(h + T_GID, 8, 0);
    put_num(h + T_MTIME, 12, mtime > 0 ? (uint64_t)mtime : 0);
    h[T_TYPE] = (uint8_t)type;
    put_str(h + T_UNAME, 32, "root");
    put_str(h + T_GNAME, 32, "root");
}

/* Append one "LEN key=value\n" pax record to rec (cap bytes). */
static int pax_record(char *rec, size_t cap, size_t *used, const char *key,
                      const char *val)
{
    size_t body = strlen(key) + strlen(val) + 3; /* ' ' '=' '\n' */
    size_t total = body + 1;
    /* the length counts its own digits */
    for (;;) {
        char d[24];
        size_t nd = (size_t)snprintf(d, sizeof(d), "%zu", total);
        if (body + nd == total)
            break;
        total = body + nd;
    }
    if (*used + total + 1 > cap)
        return -1;
    snprintf(rec + *used, cap - *used, "%zu %s=%s\n", total, key, val);
    *used += total;
    return 0;
}

/* tar_member_header, made pad_to bytes long when pad_to is not 0 (see
 * tar_member_header_sized). */
static int member_header(const char *name, uint64_t size, unsigned mode,
                         int64_t mtime, size_t pad_to, uint8_t **out,
                         size_t *outlen, vf_error **errp)
{
    size_t nl = strlen(name);
    if (!nl || nl > 4096) {
        error_setg(errp, "tar member name of %zu bytes", nl);
        return -1;
    }
    /* a reservation is a few blocks: 64 KiB is far more than any */
    if (pad_to % TAR_BLOCK || pad_to > 64 * 1024) {
        error_setg(errp, "tar member %s: header length %zu not a block "
                   "multiple up to 64 KiB", name, pad_to);
        return -1;
    }
    bool long_name = nl > 100, big = size >= ((uint64_t)1 << 33);
    size_t cap = 4096 + 128 + pad_to;
    char *rec = malloc(cap);
    uint8_t *h = NULL;
    if (!rec) {
        error_setg(errp, "out of memory");
        return -1;
    }
    size_t used = 0;
    if (long_name && pax_record(rec, cap, &used, "path", name) < 0)
        goto toolong;
    if (big) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRIu64, size);
        if (pax_record(rec, cap, &used, "size", v) < 0)
            goto toolong;
    }
    size_t paxlen = used ? TAR_BLOCK + used + tar_padding(used) : 0;
    if (pad_to && pad_to != paxlen + TAR_BLOCK) {
        /* records to fill pad_to - 2 blocks exactly: the pax header
         * block and the ustar block take the rest */
        if (pad_to < paxlen + TAR_BLOCK) {
            error_setg(errp, "tar member %s of %" PRIu64 " bytes: its "
                       "header needs %zu bytes, %zu reserved", name, size,
                       paxlen + TAR_BLOCK, pad_to);
            goto fail;
        }
        if (pad_to < 3 * TAR_BLOCK) {
            error_setg(errp, "tar member %s: a header cannot be padded "
                       "to %zu bytes (pax takes two blocks)", name, pad_to);
            goto fail;
        }
        /* at least one block more than used: >= 512 bytes to fill, so
         * the comment record always fits */
        size_t fill = pad_to - 2 * TAR_BLOCK - used;
        size_t digits = 1;
        for (size_t v = fill; v >= 10; v /= 10)
            digits++;
        /* "<fill> comment=<spaces>\n" is fill bytes long */
        size_t vlen = fill - digits - 10;
        int n = snprintf(rec + used, cap - used, "%zu comment=%*s\n", fill,
                         (int)vlen, "");
        if (n < 0 || (size_t)n != fill)
            goto toolong;
        used += fill;
        paxlen = TAR_BLOCK + used;
    }
    h = calloc(1, paxlen + TAR_BLOCK);
    if (!h) {
        error_setg(errp, "out of memory");
        goto fail;
    }
    if (used) {
        /* the extended header names itself after the member, as pax
         * suggests (%d/PaxHeaders/%f) */
        char pn[101];
        const char *base = strrchr(name, '/');
        snprintf(pn, sizeof(pn), "PaxHeaders/%.88s", base ? base + 1 : name);
        fill_common(h, pn, 0644, mtime, 'x');
        put_num(h + T_SIZE, 12, used);
        memcpy(h + T_MAGIC, "ustar\0" "00", 8);
        put_chksum(h);
        memcpy(h + TAR_BLOCK, rec, used);
    }
    uint8_t *u = h + paxlen;
    /* a name that does not fit keeps its last 100 bytes here (readers
     * without pax get something recognisable); pax path= overrides */
    fill_common(u, long_name ? name + nl - 100 : name, mode, mtime, '0');
    put_num(u + T_SIZE, 12, size);
    memcpy(u + T_MAGIC, "ustar\0" "00", 8);
    put_chksum(u);
    free(rec);
    *out = h;
    *outlen = paxlen + TAR_BLOCK;
    return 0;
toolong:
    error_setg(errp, "tar member %s: pax records too long", name);
fail:
    free(rec);
    free(h);
    return -1;
}

int tar_member_header(const char *name, uint64_t size, unsigned mode,
                      int64_t mtime, uint8_t **out, size_t *outlen,
                      vf_error **errp)
{
    return member_header(name, size, mode, mtime, 0, out, outlen, errp);
}

int tar_member_header_sized(const char *name, uint64_t size, unsigned mode,
                            int64_t mtime, size_t len, uint8_t **out,
                            vf_error **errp)
{
    size_t l;
    if (!len) {
        error_setg(errp, "tar member %s: no header length", name);
        return -1;
    }
    return member_header(name, size, mode, mtime, len, out, &l, errp);
}

int tar_oldgnu_sparse_header(const char *name, uint64_t realsize,
                             const struct tar_sparse *map, size_t n,
                             unsigned mode, int64_t mtime, uint8_t **out,
                             size_t *outlen, vf_error **errp)
{
    size_t nl = strlen(name);
    if (!nl || nl > 100) {
        error_setg(errp, "oldgnu member name %s: 1 to 100 bytes allowed",
                   name);
        return -1;
    }
    uint64_t stored = 0, end = 0;
    for (size_t i = 0; i < n; i++) {
        if (map[i].off < end || map[i].len > realsize ||
            map[i].off > realsize - map[i].len) {
            error_setg(errp, "sparse run %zu (0x%" PRIx64 "+0x%" PRIx64
                       ") out of order or past the file's end", i,
                       map[i].off, map[i].len);
            return -1;
        }
        end = map[i].off + map[i].len;
        stored += map[i].len;
    }
    /* a file ending in a hole (or empty) records its end as a run of 0 */
    bool tail = n == 0 || end < realsize;
    size_t runs = n + (tail ? 1 : 0);
    size_t ext = runs > 4 ? (runs - 4 + G_EXT_RUNS - 1) / G_EXT_RUNS : 0;
    if (ext > SIZE_MAX / TAR_BLOCK - 1) {
        error_setg(errp, "sparse map of %zu runs too large", n);
        return -1;
    }
    uint8_t *h = calloc(1 + ext, TAR_BLOCK);
    if (!h) {
        error_setg(errp, "out of memory");
        return -1;
    }
    fill_common(h, name, mode, mtime, 'S');
    put_num(h + T_SIZE, 12, stored);
    memcpy(h + T_MAGIC, "ustar  \0", 8);
    put_num(h + G_REALSIZE, 12, realsize);
    for (size_t i = 0; i < runs; i++) {
        uint64_t off = i < n ? map[i].off : realsize;
        uint64_t len = i < n ? map[i].len : 0;
        uint8_t *f;
        if (i < 4) {
            f = h + G_SPARSE + 24 * i;
        } else {
            size_t b = 1 + (i - 4) / G_EXT_RUNS;
            f = h + TAR_BLOCK * b + 24 * ((i - 4) % G_EXT_RUNS);
        }
        put_num(f, 12, off);
        put_num(f + 12, 12, len);
    }
    if (ext)
        h[G_ISEXT] = 1;
    for (size_t b = 1; b < ext; b++)
        h[TAR_BLOCK * b + G_EXT_ISEXT] = 1;
    put_chksum(h);
    *out = h;
    *outlen = (1 + ext) * TAR_BLOCK;
    return 0;
}

/* ---- reading ---- */

/* A numeric field: octal (spaces/NULs around it) or base-256. */
static int get_num(const uint8_t *f, size_t w, uint64_t *v)
{
    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return -1; /* negative or too large */
        uint64_t x = 0;
        for (size_t i = 1; i < w; i++) {
            if (x >> 56)
                return -1;
            x = x << 8 | f[i];
        }
        *v = x;
        return 0;
    }
    size_t i = 0;
    while (i < w && f[i] == ' ')
        i++;
    uint64_t x = 0;
    bool any = false;
    for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
        if (x >> 61)
            return -1;
        x = x << 3 | (uint64_t)(f[i] - '0');
        any = true;
    }
    for (; i < w; i++)
        if (f[i] != ' ' && f[i] != 0)
            return -1;
    *v = any ? x : 0;
    return 0;
}

static bool block_is_zero(const uint8_t *b)
{
    for (size_t i = 0; i < TAR_BLOCK; i++)
        if (b[i])
            return false;
    return true;
}

static int check_block(const uint8_t *h, vf_error **errp)
{
    uint64_t want;
    if (get_num(h + T_CHKSUM, 8, &want) < 0) {
        error_setg(errp, "tar header checksum field does not parse");
        return -1;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += (i >= T_CHKSUM && i < T_CHKSUM + 8) ? ' ' : h[i];
    if (sum != want) {
        error_setg(errp, "tar header checksum 0%" PRIo64 " does not match "
                   "its content (0%o)", want, sum);
        return -1;
    }
    return 0;
}

/* Fold pax records (rec, len bytes) into e. */
static int pax_apply(const char *rec, size_t len, struct tar_entry *e,
                     bool *have_path, bool *have_size, vf_error **errp)
{
    size_t i = 0;
    while (i < len) {
        if (rec[i] == 0)
            break; /* padding */
        size_t rl = 0, j = i;
        while (j < len && rec[j] >= '0' && rec[j] <= '9' && rl < PAX_MAX) {
            rl = rl * 10 + (size_t)(rec[j] - '0');
            j++;
        }
        if (j == i || j >= len || rec[j] != ' ' || rl <= j - i ||
            rl > len - i || rec[i + rl - 1] != '\n') {
            error_setg(errp, "pax record at byte %zu is malformed", i);
            return -1;
        }
        const char *kv = rec + j + 1, *end = rec + i + rl - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq) {
            error_setg(errp, "pax record at byte %zu has no '='", i);
            return -1;
        }
        size_t kl = (size_t)(eq - kv), vl = (size_t)(end - eq - 1);
        if (kl == 4 && !memcmp(kv, "path", 4)) {
            if (vl >= sizeof(e->name) || memchr(eq + 1, 0, vl)) {
                error_setg(errp, "pax path of %zu bytes", vl);
                return -1;
            }
            memcpy(e->name, eq + 1, vl);
            e->name[vl] = 0;
            *have_path = true;
        } else if (kl == 4 && !memcmp(kv, "size", 4)) {
            uint64_t v = 0;
            if (!vl || vl > 19) {
                error_setg(errp, "pax size of %zu digits", vl);
                return -1;
            }
            for (size_t k = 0; k < vl; k++) {
                char c = eq[1 + k];
                if (c < '0' || c > '9') {
                    error_setg(errp, "pax size is not a number");
                    return -1;
                }
                v = v * 10 + (uint64_t)(c - '0');
            }
            e->size = v;
            *have_size = true;
        }
        i += rl;
    }
    return 0;
}

int64_t tar_parse(const uint8_t *buf, size_t len, struct tar_entry *e,
                  size_t *need, vf_error **errp)
{
    size_t pos = 0;
    bool have_path = false, have_size = false;
    uint64_t pax_size = 0;
    *need = 0;
    memset(e, 0, sizeof(*e));
    for (int hops = 0; hops < 8; hops++) {
        if (len - pos < TAR_BLOCK) {
            *need = pos + TAR_BLOCK;
            error_setg(errp, "tar header truncated");
            return -1;
        }
        const uint8_t *h = buf + pos;
        if (block_is_zero(h))
            return hops ? (error_setg(errp, "tar archive ends inside a "
                                      "member's extended headers"), -1)
                        : 0;
        if (check_block(h, errp) < 0)
            return -1;
        uint64_t size;
        if (get_num(h + T_SIZE, 12, &size) < 0) {
            error_setg(errp, "tar header size field does not parse");
            return -1;
        }
        char type = (char)h[T_TYPE];
        if (type == 'x' || type == 'g' || type == 'L') {
            if (size > PAX_MAX) {
                error_setg(errp, "tar extended header of %" PRIu64
                           " bytes (at most %d)", size, PAX_MAX);
                return -1;
            }
            size_t blocks = TAR_BLOCK + (size_t)size +
                            tar_padding(size);
            if (len - pos < blocks) {
                *need = pos + blocks;
                error_setg(errp, "tar extended header truncated");
                return -1;
            }
            const char *rec = (const char *)h + TAR_BLOCK;
            if (type == 'x') {
                struct tar_entry tmp = *e;
                if (pax_apply(rec, (size_t)size, &tmp, &have_path,
                              &have_size, errp) < 0)
                    return -1;
                if (have_path)
                    memcpy(e->name, tmp.name, sizeof(e->name));
                pax_size = tmp.size;
            } else if (type == 'L') {
                size_t l = strnlen(rec, (size_t)size);
                if (l >= sizeof(e->name)) {
                    error_setg(errp, "GNU long name of %zu bytes", l);
                    return -1;
                }
                memcpy(e->name, rec, l);
                e->name[l] = 0;
                have_path = true;
            }
            pos += blocks;
            continue;
        }
        if (!have_path) {
            char nm[101], px[156];
            memcpy(nm, h + T_NAME, 100);
            nm[100] = 0;
            bool ustar = !memcmp(h + T_MAGIC, "ustar\0", 6);
            if (ustar && h[T_PREFIX]) {
                memcpy(px, h + T_PREFIX, 155);
                px[155] = 0;
                snprintf(e->name, sizeof(e->name), "%s/%s", px, nm);
            } else {
                snprintf(e->name, sizeof(e->name), "%s", nm);
            }
        }
        e->type = type ? type : '0';
        e->size = have_size ? pax_size : size;
        return (int64_t)(pos + TAR_BLOCK);
    }
    error_setg(errp, "tar member with more than 8 extended headers");
    return -1;
}
