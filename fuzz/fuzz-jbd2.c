/*
 * fuzz-jbd2: libFuzzer target for the JBD2 journal replay
 * (guest/jbd2.c, jbd2_replay_dev).  Input: a journal file (block 0 its
 * superblock), with the block size its superblock names (1, 2 or 4 KiB;
 * else 1 KiB).  The journal is 16384 blocks long whatever the input's
 * size (blocks past the input read as zeros); the filesystem is 2^20
 * blocks, of which [2^19, 2^19 + 16384) hold the journal.  Replayed
 * blocks are checksummed, not kept.  Errors are fine; crashes, sanitizer
 * reports and writes outside the contract (abort) are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "guest/guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_JBLOCKS   16384u
#define FZ_FSBLOCKS  (1u << 20)
#define FZ_JSTART    (1u << 19)

struct fz {
    uint8_t *j;                /* a private copy of the input */
    size_t size;
    uint32_t bs;
    uint32_t sum;              /* of what was written */
};

static void fz_contract(const char *what, uint64_t v)
{
    fprintf(stderr, "fuzz-jbd2: contract broken: %s (%llu)\n", what,
            (unsigned long long)v);
    abort();
}

static int fz_jread(void *opaque, uint64_t jblk, void *buf, vf_error **errp)
{
    struct fz *f = opaque;
    if (jblk >= FZ_JBLOCKS)
        fz_contract("journal read beyond j_blocks", jblk);
    memset(buf, 0, f->bs);
    uint64_t off = jblk * f->bs;
    if (off < f->size) {
        size_t n = f->size - off < f->bs ? (size_t)(f->size - off) : f->bs;
        memcpy(buf, f->j + off, n);
    }
    return 0;
}

static int fz_jwrite(void *opaque, uint64_t jblk, const void *buf,
                     vf_error **errp)
{
    struct fz *f = opaque;
    if (jblk >= FZ_JBLOCKS)
        fz_contract("journal write beyond j_blocks", jblk);
    uint64_t off = jblk * f->bs;
    if (off < f->size) {
        size_t n = f->size - off < f->bs ? (size_t)(f->size - off) : f->bs;
        memcpy(f->j + off, buf, n);
    }
    return 0;
}

static int fz_fswrite(void *opaque, uint64_t bno, const void *buf,
                      vf_error **errp)
{
    struct fz *f = opaque;
    if (bno >= FZ_FSBLOCKS)
        fz_contract("filesystem write beyond fs_blocks", bno);
    if (bno >= FZ_JSTART && bno - FZ_JSTART < FZ_JBLOCKS)
        fz_contract("filesystem write into the journal", bno);
    const uint8_t *p = buf;
    for (uint32_t i = 0; i < f->bs; i++)
        f->sum = f->sum * 31 + p[i];
    return 0;
}

static bool fz_in_journal(void *opaque, uint64_t bno)
{
    return bno >= FZ_JSTART && bno - FZ_JSTART < FZ_JBLOCKS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f = { .size = size, .bs = 1024 };
    if (size >= 16) {
        uint32_t bs = (uint32_t)data[12] << 24 | (uint32_t)data[13] << 16 |
                      (uint32_t)data[14] << 8 | data[15];
        if (bs == 2048 || bs == 4096)
            f.bs = bs;
    }
    f.j = malloc(size ? size : 1);
    if (!f.j)
        return 0;
    memcpy(f.j, data, size);
    struct jbd2_dev dev = {
        .blocksize = f.bs,
        .fs_blocks = FZ_FSBLOCKS,
        .j_blocks = FZ_JBLOCKS,
        .jread = fz_jread,
        .jwrite = fz_jwrite,
        .fswrite = fz_fswrite,
        .in_journal = fz_in_journal,
        .opaque = &f,
    };
    struct jbd2_stats st;
    vf_error *err = NULL;
    if (jbd2_replay_dev(&dev, &st, &err) < 0)
        error_free(err);
    else if (st.blocks > FZ_JBLOCKS)
        fz_contract("more blocks replayed than the log holds", st.blocks);
    free(f.j);
    return 0;
}
