/*
 * modindex.c: kmod's index files (modules.dep.bin, modules.alias.bin),
 * the form modprobe reads: the text modules.dep alone is not enough for
 * kmod.  Format 2.1 as kmod's libkmod-index.c describes it: be32 magic
 * 0xB007F457, be32 version 0x00020001, be32 offset of the root node; a
 * node is [prefix NUL] [first char, last char, be32 child offsets for
 * first..last (0: none)] [be32 value count, then per value be32 priority
 * and value NUL], and the top bits of the offset that points at it say
 * which parts are there (0x80000000 prefix, 0x20000000 children,
 * 0x40000000 values; offset in the low 28 bits).  The tree is a radix
 * trie: the arc to a child is one character, the rest of the edge is the
 * child's prefix.  Children are written before their parent, like
 * depmod does, so every offset is known when it is written.
 */
#include <stdlib.h>
#include <string.h>

#include "prepare/initrd-build.h"

#define INDEX_MAGIC 0xB007F457u
#define INDEX_VERSION 0x00020001u
#define NODE_PREFIX 0x80000000u
#define NODE_VALUES 0x40000000u
#define NODE_CHILDS 0x20000000u
#define NODE_MASK 0x0FFFFFFFu
#define CHILD_MAX 128

struct obuf {
    uint8_t *p;
    size_t len, cap;
    vf_error **errp;
    int failed;
};

static int ob_put(struct obuf *o, const void *d, size_t n)
{
    if (o->failed)
        return -1;
    if (n > NODE_MASK || o->len > NODE_MASK - n) {
        /* offsets have 28 bits: an index cannot reach 256 MiB */
        error_setg(o->errp, "kmod index larger than %u bytes", NODE_MASK);
        o->failed = 1;
        return -1;
    }
    if (o->len + n > o->cap) {
        size_t nc = o->cap ? o->cap : 4096;
        while (nc < o->len + n)
            nc *= 2;
        uint8_t *np = realloc(o->p, nc);
        if (!np) {
            error_setg(o->errp, "out of memory for the kmod index");
            o->failed = 1;
            return -1;
        }
        o->p = np;
        o->cap = nc;
    }
    memcpy(o->p + o->len, d, n);
    o->len += n;
    return 0;
}

static int ob_be32(struct obuf *o, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 8), (uint8_t)v };
    return ob_put(o, b, 4);
}

static int cmp_entry(const void *a, const void *b)
{
    const struct modindex_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return strcmp(x->value, y->value);
}

/* Write the node for entries [lo, hi) whose keys agree on their first
 * depth bytes; the root keeps an empty prefix, as depmod's does.
 * Returns its offset with flags, 0 on failure (no node is at offset 0:
 * the header is there). */
static uint32_t write_node(struct obuf *o, const struct modindex_entry *e,
                           size_t lo, size_t hi, size_t depth, int root)
{
    size_t lcp = 0;
    if (!root) {
        const char *a = e[lo].key + depth, *b = e[hi - 1].key + depth;
        while (a[lcp] && a[lcp] == b[lcp])
            lcp++;
    }
    size_t d2 = depth + lcp;
    /* keys ending here sort first */
    size_t v_end = lo;
    while (v_end < hi && e[v_end].key[d2] == 0)
        v_end++;
    uint32_t child[CHILD_MAX] = { 0 };
    int first = CHILD_MAX, last = -1;
    for (size_t i = v_end; i < hi;) {
        unsigned char ch = (unsigned char)e[i].key[d2];
        size_t j = i + 1;
        while (j < hi && (unsigned char)e[j].key[d2] == ch)
            j++;
        uint32_t off = write_node(o, e, i, j, d2 + 1, 0);
        if (!off)
            return 0;
        child[ch] = off;
        if (ch < first)
            first = ch;
        last = ch;
        i = j;
    }
    if (o->failed)
        return 0;
    uint32_t off = (uint32_t)o->len;
    if (lcp) {
        ob_put(o, e[lo].key + depth, lcp);
        ob_put(o, "", 1);
        off |= NODE_PREFIX;
    }
    if (last >= 0) {
        uint8_t fl[2] = { (uint8_t)first, (uint8_t)last };
        ob_put(o, fl, 2);
        for (int c = first; c <= last; c++)
            ob_be32(o, child[c]);
        off |= NODE_CHILDS;
    }
    if (v_end > lo) {
        ob_be32(o, (uint32_t)(v_end - lo));
        for (size_t i = lo; i < v_end; i++) {
            ob_be32(o, e[i].priority);
            ob_put(o, e[i].value, strlen(e[i].value) + 1);
        }
        off |= NODE_VALUES;
    }
    return o->failed ? 0 : off;
}

int modindex_build(struct modindex_entry *entries, size_t n, uint8_t **out,
                   size_t *len, vf_error **errp)
{
    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(entries[i].key);
        if (kl == 0 || kl > MODINDEX_KEY_MAX) {
            error_setg(errp, "kmod index key of %zu bytes (1..%d)", kl,
                       MODINDEX_KEY_MAX);
            return -1;
        }
        for (size_t k = 0; k < kl; k++)
            if ((unsigned char)entries[i].key[k] >= CHILD_MAX) {
                error_setg(errp, "kmod index key '%.64s' is not ASCII",
                           entries[i].key);
                return -1;
            }
    }
    qsort(entries, n, sizeof(*entries), cmp_entry);
    /* the same key and value twice is one value */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(entries[m - 1].key, entries[i].key) ||
            strcmp(entries[m - 1].value, entries[i].value))
            entries[m++] = entries[i];
    struct obuf o = { .errp = errp };
    ob_be32(&o, INDEX_MAGIC);
    ob_be32(&o, INDEX_VERSION);
    ob_be32(&o, 0);
    uint32_t root = m ? write_node(&o, entries, 0, m, 0, 1)
                      : (uint32_t)o.len;
    if (o.failed || !root) {
        free(o.p);
        return -1;
    }
    o.p[8] = (uint8_t)(root >> 24);
    o.p[9] = (uint8_t)(root >> 16);
    o.p[10] = (uint8_t)(root >> 8);
    o.p[11] = (uint8_t)root;
    *out = o.p;
    *len = o.len;
    return 0;
}
