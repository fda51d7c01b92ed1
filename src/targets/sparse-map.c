/*
 * sparse-map.c: a bounded map of data runs for sparse archive members
 * (see sparse-map.h).
 */
#include <stdlib.h>

#include "targets/sparse-map.h"

/* Merge runs separated by holes shorter than m->min_hole, in place. */
static void sparse_map_merge(struct sparse_map *m)
{
    if (!m->n)
        return;
    size_t j = 0;
    for (size_t i = 1; i < m->n; i++) {
        struct tar_sparse *last = &m->runs[j];
        if (m->runs[i].off - (last->off + last->len) < m->min_hole)
            last->len = m->runs[i].off + m->runs[i].len - last->off;
        else
            m->runs[++j] = m->runs[i];
    }
    m->n = j + 1;
}

void sparse_map_bound(struct sparse_map *m)
{
    size_t max = m->max ? m->max : 1;
    while (m->n > max) {
        if (!m->min_hole)
            m->min_hole = m->first_hole ? m->first_hole : 4096;
        else if (m->min_hole > UINT64_MAX / 2)
            m->min_hole = UINT64_MAX;  /* one run: every hole merged */
        else
            m->min_hole *= 2;
        sparse_map_merge(m);
    }
}

int sparse_map_add(struct sparse_map *m, uint64_t off, uint64_t len,
                   vf_error **errp)
{
    if (m->n) {
        struct tar_sparse *last = &m->runs[m->n - 1];
        uint64_t gap = off - (last->off + last->len);
        if (gap == 0 || gap < m->min_hole) {
            last->len = off + len - last->off;
            return 0;
        }
    }
    if (m->n == m->cap) {
        size_t max = m->max ? m->max : 1;
        if (m->cap >= 2 * max) {
            /* full: coalesce (raising min_hole) rather than grow */
            sparse_map_bound(m);
            return sparse_map_add(m, off, len, errp);
        }
        size_t nc = m->cap ? m->cap * 2 : 1024;
        if (nc > 2 * max)
            nc = 2 * max;
        struct tar_sparse *r = realloc(m->runs, nc * sizeof(*r));
        if (!r) {
            error_setg(errp, "out of memory");
            return -1;
        }
        m->runs = r;
        m->cap = nc;
    }
    m->runs[m->n++] = (struct tar_sparse){ .off = off, .len = len };
    return 0;
}

uint64_t sparse_map_stored(const struct sparse_map *m)
{
    uint64_t s = 0;
    for (size_t i = 0; i < m->n; i++)
        s += m->runs[i].len;
    return s;
}

void sparse_map_free(struct sparse_map *m)
{
    free(m->runs);
    m->runs = NULL;
    m->n = m->cap = 0;
}
