/*
 * unit-sparse-map.c: unit tests of targets/sparse-map.c, the bounded run
 * map of sparse archive members: touching runs merge, the bound holds
 * while the map grows and after sparse_map_bound, merging only stores
 * holes (never drops data).  Prints one line per failed check; exit
 * status 0 when all pass.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "targets/sparse-map.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Every byte of [off, off+len) is inside some run of m. */
static int covered(const struct sparse_map *m, uint64_t off, uint64_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->runs[i].off <= off &&
            off + len <= m->runs[i].off + m->runs[i].len)
            return 1;
    return 0;
}

/* Sorted, not overlapping, not touching, no empty run. */
static int well_formed(const struct sparse_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        if (!m->runs[i].len)
            return 0;
        if (i && m->runs[i].off <= m->runs[i - 1].off + m->runs[i - 1].len)
            return 0;
    }
    return 1;
}

static void test_merge_touching(void)
{
    struct sparse_map m = { .max = 16, .first_hole = 4096 };
    CHECK(sparse_map_add(&m, 0, 100, NULL) == 0);
    CHECK(sparse_map_add(&m, 100, 50, NULL) == 0);     /* touching */
    CHECK(sparse_map_add(&m, 151, 10, NULL) == 0);     /* 1-byte hole */
    CHECK(m.n == 2 && m.runs[0].len == 150 && m.runs[1].off == 151);
    CHECK(sparse_map_stored(&m) == 160);
    sparse_map_bound(&m);                              /* fits: no change */
    CHECK(m.n == 2 && m.min_hole == 0);
    sparse_map_free(&m);
    CHECK(m.runs == NULL && m.n == 0);
}

/* 10000 runs of 1 KiB with holes of growing size, max 100: the bound
 * holds all along (memory) and at the end; every data byte stays in. */
static void test_bound(void)
{
    struct sparse_map m = { .max = 100, .first_hole = 4096 };
    uint64_t off = 0, offs[10000];
    size_t peak = 0;
    for (int i = 0; i < 10000; i++) {
        off += 1024 + (uint64_t)(i % 97) * 4096;   /* the hole before */
        offs[i] = off;
        CHECK(sparse_map_add(&m, off, 1024, NULL) == 0);
        if (m.n > peak)
            peak = m.n;
        off += 1024;
    }
    CHECK(peak <= 2 * m.max && m.cap <= 2 * m.max);
    sparse_map_bound(&m);
    CHECK(m.n <= 100 && m.n > 0);
    CHECK(well_formed(&m));
    int lost = 0;
    for (int i = 0; i < 10000; i++)
        lost += !covered(&m, offs[i], 1024);
    CHECK(lost == 0);
    /* what is stored is the data plus the merged holes, nothing past */
    CHECK(m.runs[0].off == offs[0]);
    CHECK(m.runs[m.n - 1].off + m.runs[m.n - 1].len == offs[9999] + 1024);
    CHECK(m.min_hole >= 4096);
    sparse_map_free(&m);
}

/* Holes too big to ever be "short": the map still ends in one run
 * (min_hole saturates instead of overflowing). */
static void test_huge_holes(void)
{
    struct sparse_map m = { .max = 1 };
    CHECK(sparse_map_add(&m, 0, 1, NULL) == 0);
    CHECK(sparse_map_add(&m, UINT64_C(1) << 62, 1, NULL) == 0);
    CHECK(sparse_map_add(&m, (UINT64_C(1) << 63) + 5, 7, NULL) == 0);
    sparse_map_bound(&m);
    CHECK(m.n == 1 && m.runs[0].off == 0 &&
          m.runs[0].len == (UINT64_C(1) << 63) + 12);
    sparse_map_free(&m);
}

int main(void)
{
    test_merge_touching();
    test_bound();
    test_huge_holes();
    if (failures)
        printf("%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
