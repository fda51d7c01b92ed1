/*
 * fuzz.h: what every format fuzz target does with its input.
 *
 * The input becomes a read-only memory io; the format layer opens it
 * (forced driver or probe, never a backing file), then we read a few
 * ranges, walk the block status of the whole disk, ask the driver for its
 * info and run its check.  Everything is bounded (reads, iterations) so
 * one input cannot take long whatever sizes it claims.  A broken driver
 * contract (pnum out of range, unknown status) aborts: the fuzzer keeps
 * that input as a crasher.
 *
 * Header-only (static functions) because meson links each fuzz/fuzz-*.c
 * with fuzz/replay-main.c alone.
 */
#ifndef VF_FUZZ_H
#define VF_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_READ_BUDGET   (16u << 20)  /* guest bytes read per input */
#define FUZZ_READ_MAX      (1u << 20)   /* one read */
#define FUZZ_STATUS_STEPS  100000       /* block_status calls per input */

/* The contract says this cannot happen: make the fuzzer notice. */
static void fuzz_contract(const char *what, uint64_t a, uint64_t b)
{
    fprintf(stderr, "fuzz: driver contract broken: %s (%llu, %llu)\n", what,
            (unsigned long long)a, (unsigned long long)b);
    abort();
}

/* FNV-1a over the input: picks read offsets, deterministically. */
static uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* Read [off, off+len) clipped to the disk and the budget; errors are
 * fine (hostile input), crashes are not. */
static void fuzz_read(struct blk *b, uint8_t *buf, uint64_t off,
                      uint64_t len, uint64_t *budget)
{
    if (off >= b->size || *budget == 0)
        return;
    if (len > b->size - off)
        len = b->size - off;
    if (len > FUZZ_READ_MAX)
        len = FUZZ_READ_MAX;
    if (len > *budget)
        len = *budget;
    if (len == 0)
        return;
    *budget -= len;
    vf_error *err = NULL;
    if (blk_pread(b, buf, off, (size_t)len, &err) < 0)
        error_free(err);
}

static void fuzz_exercise(struct blk *b, const uint8_t *data, size_t size)
{
    uint64_t budget = FUZZ_READ_BUDGET;
    uint8_t *buf = malloc(FUZZ_READ_MAX);
    vf_error *err = NULL;
    if (!buf)
        return;

    /* The start, the end, and a few input-chosen unaligned ranges. */
    fuzz_read(b, buf, 0, 65536, &budget);
    if (b->size > 65536)
        fuzz_read(b, buf, b->size - 65536, 65536, &budget);
    uint64_t h = fuzz_hash(data, size);
    for (int i = 0; i < 6 && b->size; i++) {
        h = h * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        uint64_t off = (h >> 11) % b->size;
        fuzz_read(b, buf, off, 1 + (h & 0x3ffff), &budget);
    }

    /* Walk the whole disk's block status; read what claims to be data. */
    uint64_t off = 0;
    for (int steps = 0; off < b->size && steps < FUZZ_STATUS_STEPS;
         steps++) {
        uint64_t pnum = 0, host = 0;
        int st = blk_block_status(b, off, b->size - off, &pnum, &host, &err);
        if (st < 0) {
            error_free(err);
            err = NULL;
            break;
        }
        if (st != BLK_UNALLOC && st != BLK_DATA && st != BLK_ZERO)
            fuzz_contract("block_status returned an unknown status",
                          (uint64_t)st, off);
        if (pnum == 0 || pnum > b->size - off)
            fuzz_contract("block_status pnum out of range", off, pnum);
        if (st == BLK_DATA)
            fuzz_read(b, buf, off, pnum, &budget);
        off += pnum;
    }

    if (b->drv->info) {
        struct json_object *spec = json_object_new_object();
        if (spec) {
            if (b->drv->info(b, spec, &err) < 0) {
                error_free(err);
                err = NULL;
            }
            json_object_put(spec);
        }
    }

    if (b->drv->check) {
        struct check_report r;
        memset(&r, 0, sizeof(r));
        if (b->drv->check(b, &r, &err) < 0) {
            error_free(err);
            err = NULL;
        }
        if (r.nmsgs > CHECK_MAX_MSGS)
            fuzz_contract("check kept too many messages", r.nmsgs, 0);
        check_report_free(&r);
    }
    free(buf);
}

/* Open data as an image of format fmt (NULL: probe) and exercise it. */
static int fuzz_one(const uint8_t *data, size_t size, const char *fmt)
{
    struct io *io = io_mem_view("fuzz-input", data, size);
    if (!io)
        return 0;
    struct blk_open_opts oo;
    memset(&oo, 0, sizeof(oo));
    oo.format = fmt;
    oo.no_backing = true;
    vf_error *err = NULL;
    /* blk_open_io owns io from here on, also when it fails. */
    struct blk *b = blk_open_io(io, "fuzz-input", true, &oo, &err);
    if (!b) {
        error_free(err);
        return 0;
    }
    fuzz_exercise(b, data, size);
    blk_close(b);
    return 0;
}

#endif
