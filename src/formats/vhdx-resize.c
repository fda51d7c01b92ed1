/*
 * vhdx-resize.c: changing a VHDX's virtual size (fixed, dynamic and
 * differencing).
 *
 * [MS-VHDX] v20160714 (see vhdx.h).  The BAT region holds one entry per
 * payload block plus one sector bitmap entry per chunk; a larger disk
 * needs a larger region.  It grows in place: whatever lies after it (data
 * and bitmap blocks, the metadata region) is copied to the end of the
 * file first.  When the log or an unknown region lies there, the BAT
 * moves to the end of the file instead.
 *
 * Crash safety without the log: every write lands where nothing valid
 * points yet, is flushed, and only then does one small pointer change (a
 * BAT entry, a region table entry, the virtual size item).  So every
 * intermediate state is a valid image of the old or the new size, at
 * worst with unreferenced space.
 *
 * New range: reads as zeros.  A dynamic disk leaves new blocks
 * NOT_PRESENT (zeros without a parent); a fixed one allocates them
 * (LeaveBlockAllocated: every block stays FULLY_PRESENT); a differencing
 * one marks them PAYLOAD_BLOCK_ZERO, since NOT_PRESENT there means "read
 * the parent", which may hold data past the child's old end.
 */
#include "formats/vhdx.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/crc32c.h"

/* Load the valid region table (the first, else the second). */
static int vhdx_rt_load(struct blk *b, uint8_t *rt, vf_error **errp)
{
    for (int i = 0; i < 2; i++) {
        if (vhdx_fread(b, rt, VHDX_RT_SIZE, i ? VHDX_RT2_OFF : VHDX_RT1_OFF,
                       errp) < 0)
            return -1;
        if (!memcmp(rt, "regi", 4) &&
            crc32c_skip(rt, VHDX_RT_SIZE, VHDX_RT_CRC) ==
                vhdx_le32(rt + VHDX_RT_CRC) &&
            vhdx_le32(rt + VHDX_RT_COUNT) <= VHDX_RT_MAX)
            return 0;
    }
    error_setg(errp, "both VHDX region tables invalid");
    return -1;
}

/* Point the region table at s's BAT and metadata regions: both copies,
 * the first then the second, each flushed (a reader falls back to the
 * second when the first is torn). */
static int vhdx_rt_store(struct blk *b, struct vhdx_state *s,
                         vf_error **errp)
{
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    int ret = -1;
    if (!rt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (vhdx_rt_load(b, rt, errp) < 0)
        goto out;
    uint32_t n = vhdx_le32(rt + VHDX_RT_COUNT);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *e = rt + VHDX_RT_ENTRIES + i * VHDX_RE_SIZE;
        if (vhdx_guid_is(e, VHDX_GUID_BAT)) {
            vhdx_put64(e + VHDX_RE_OFF, s->bat_off);
            vhdx_put32(e + VHDX_RE_LEN, (uint32_t)s->bat_len);
        } else if (vhdx_guid_is(e, VHDX_GUID_META)) {
            vhdx_put64(e + VHDX_RE_OFF, s->meta_off);
            vhdx_put32(e + VHDX_RE_LEN, (uint32_t)s->meta_len);
        }
    }
    vhdx_put32(rt + VHDX_RT_CRC, crc32c_skip(rt, VHDX_RT_SIZE, VHDX_RT_CRC));
    if (io_pwrite(b->file, rt, VHDX_RT_SIZE, VHDX_RT1_OFF, errp) < 0 ||
        io_flush(b->file, errp) < 0 ||
        io_pwrite(b->file, rt, VHDX_RT_SIZE, VHDX_RT2_OFF, errp) < 0 ||
        io_flush(b->file, errp) < 0)
        goto out;
    s->rt_bad[0] = s->rt_bad[1] = false;
    ret = 0;
out:
    free(rt);
    return ret;
}

/* Is BAT entry i a sector bitmap entry? */
static bool vhdx_is_sb(const struct vhdx_state *s, uint64_t i)
{
    return (i + 1) % (s->chunk_ratio + 1) == 0;
}

/* File bytes BAT entry i owns (0: none). */
static uint64_t vhdx_entry_span(const struct vhdx_state *s, uint64_t i)
{
    unsigned st = s->bat[i] & VHDX_BAT_STATE_MASK;
    if (vhdx_is_sb(s, i))
        return st == VHDX_SB_PRESENT ? VHDX_MIB : 0;
    return st == VHDX_PB_FULL || st == VHDX_PB_PARTIAL ? s->block_size : 0;
}

/* Does a region other than the BAT and the metadata, or the log, overlap
 * [lo, lo+len)?  1 yes, 0 no, -1 error. */
static int vhdx_pinned_in(struct blk *b, struct vhdx_state *s, uint64_t lo,
                         uint64_t len, vf_error **errp)
{
    if (vhdx_overlap(s->log_off, s->log_len, lo, len))
        return 1;
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    if (!rt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = vhdx_rt_load(b, rt, errp);
    uint32_t n = r < 0 ? 0 : vhdx_le32(rt + VHDX_RT_COUNT);
    for (uint32_t i = 0; i < n && r == 0; i++) {
        const uint8_t *e = rt + VHDX_RT_ENTRIES + i * VHDX_RE_SIZE;
        if (!vhdx_guid_is(e, VHDX_GUID_BAT) &&
            !vhdx_guid_is(e, VHDX_GUID_META) &&
            vhdx_overlap(vhdx_le64(e + VHDX_RE_OFF),
                         vhdx_le32(e + VHDX_RE_LEN), lo, len))
            r = 1;
    }
    free(rt);
    return r;
}

/* Give the BAT region new_len bytes (see the top of the file).  On
 * return the region table says so and the region holds the current
 * entries followed by zeros. */
static int vhdx_grow_bat(struct blk *b, struct vhdx_state *s,
                         uint64_t new_len, vf_error **errp)
{
    uint64_t lo = s->bat_off + s->bat_len, glen = new_len - s->bat_len;
    int pinned = vhdx_pinned_in(b, s, lo, glen, errp);
    if (pinned < 0)
        return -1;
    uint64_t dest = (s->next_off + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    if (pinned) {
        /* the BAT moves to the end; the old region becomes free space */
        uint64_t old_off = s->bat_off;
        if (io_truncate(b->file, dest + new_len, errp) < 0)
            return -1;
        s->bat_off = dest;
        if (vhdx_write_bat(b, s, errp) < 0 || io_flush(b->file, errp) < 0) {
            s->bat_off = old_off;
            return -1;
        }
        s->bat_len = new_len;
        s->next_off = dest + new_len;
        s->file_size = s->next_off;
        return vhdx_rt_store(b, s, errp);
    }
    if (dest < lo + glen)
        dest = lo + glen;
    /* 1. copy the blocks in the way to the end, flush, then point the
     * entries at the copies (flushed) */
    uint64_t *nb = malloc((size_t)s->bat_entries * 8 + 8);
    if (!nb) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(nb, s->bat, (size_t)s->bat_entries * 8);
    int ret = -1;
    bool moved = false;
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        uint64_t span = vhdx_entry_span(s, i);
        uint64_t off = s->bat[i] & VHDX_BAT_OFF_MASK;
        if (!span || !vhdx_overlap(off, span, lo, glen))
            continue;
        if (io_copy(b->file, dest, off, span, errp) < 0)
            goto out;
        nb[i] = dest | (s->bat[i] & VHDX_BAT_STATE_MASK);
        dest += span;
        moved = true;
    }
    uint64_t meta_off = s->meta_off;
    if (vhdx_overlap(s->meta_off, s->meta_len, lo, glen)) {
        if (io_copy(b->file, dest, s->meta_off, s->meta_len, errp) < 0)
            goto out;
        meta_off = dest;
        dest = (dest + s->meta_len + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    }
    if (dest > s->file_size && io_truncate(b->file, dest, errp) < 0)
        goto out;
    if (dest > s->file_size)
        s->file_size = dest;
    if (io_flush(b->file, errp) < 0)
        goto out;
    s->next_off = dest;
    if (moved) {
        memcpy(s->bat, nb, (size_t)s->bat_entries * 8);
        if (vhdx_write_bat(b, s, errp) < 0 || io_flush(b->file, errp) < 0)
            goto out;
    }
    /* 2. the metadata region at its copy */
    if (meta_off != s->meta_off) {
        uint64_t old = s->meta_off;
        s->meta_off = meta_off;
        s->vsize_off = s->vsize_off - old + meta_off;
        if (vhdx_rt_store(b, s, errp) < 0)
            goto out;
    }
    /* 3. nothing points into [lo, lo+glen) any more: clear it, then the
     * region takes it */
    if (io_punch(b->file, lo, glen, errp) < 0 || io_flush(b->file, errp) < 0)
        goto out;
    s->bat_len = new_len;
    if (vhdx_rt_store(b, s, errp) < 0)
        goto out;
    ret = 0;
out:
    free(nb);
    return ret;
}

/* Set the chunk bitmap bits of block bi's sectors from byte `in` of the
 * block to its end (differencing: those sectors are now this file's). */
static int vhdx_sb_set_tail(struct blk *b, struct vhdx_state *s,
                            uint64_t bi, uint64_t in, vf_error **errp)
{
    uint64_t sbe = s->bat[vhdx_sb_index(s, bi)];
    if ((sbe & VHDX_BAT_STATE_MASK) != VHDX_SB_PRESENT) {
        error_setg(errp, "VHDX block %" PRIu64 " partially present without "
                   "a sector bitmap", bi);
        return -1;
    }
    uint64_t spb = s->block_size / s->lss;
    uint64_t first = (bi % s->chunk_ratio) * spb + in / s->lss;
    uint64_t end = (bi % s->chunk_ratio) * spb + spb;   /* bits */
    uint64_t b0 = first / 8, b1 = (end + 7) / 8;
    /* one block's bits: at most 256 MiB / 512 / 8 = 64 KiB */
    uint8_t *bm = malloc(b1 - b0);
    if (!bm) {
        error_setg(errp, "out of memory");
        return -1;
    }
    uint64_t at = (sbe & VHDX_BAT_OFF_MASK) + b0;
    int r = vhdx_fread(b, bm, b1 - b0, at, errp);
    for (uint64_t k = first; k < end; k++)
        bm[k / 8 - b0] |= (uint8_t)(1u << (k % 8));
    if (r == 0)
        r = io_pwrite(b->file, bm, b1 - b0, at, errp);
    free(bm);
    return r;
}

/* The block holding the old end, grown past: its bytes past old_size
 * must read as zeros (see the top of the file for wholly new blocks). */
static int vhdx_zero_tail(struct blk *b, struct vhdx_state *s,
                          uint64_t old_size, uint64_t new_size,
                          vf_error **errp)
{
    uint64_t bs = s->block_size, in = old_size % bs;
    if (!in)
        return 0;
    uint64_t bi = old_size / bs;
    uint64_t *e = &s->bat[vhdx_pb_index(s, bi)];
    uint64_t off = *e & VHDX_BAT_OFF_MASK;
    switch (*e & VHDX_BAT_STATE_MASK) {
    case VHDX_PB_FULL:
        return io_punch(b->file, off + in, bs - in, errp);
    case VHDX_PB_PARTIAL:
        if (io_punch(b->file, off + in, bs - in, errp) < 0 ||
            io_flush(b->file, errp) < 0)
            return -1;
        return vhdx_sb_set_tail(b, s, bi, in, errp);
    case VHDX_PB_NOT_PRESENT:
        break;
    default:           /* zero, unmapped, undefined: zeros already */
        return 0;
    }
    if (!s->has_parent)
        return 0;
    uint64_t stop = (bi + 1) * bs < new_size ? (bi + 1) * bs : new_size;
    int d = blk_backing_has_data(b, old_size, stop - old_size, errp);
    if (d <= 0)
        return d;
    /* the parent has data where the child grows: the block becomes the
     * child's own, the parent's bytes before the old end, zeros after */
    uint64_t at = (s->next_off + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    uint8_t *buf = malloc(in);
    if (!buf) {
        error_setg(errp, "out of memory");
        return -1;
    }
    int r = io_truncate(b->file, at + bs, errp);
    if (r == 0)
        r = blk_read_backing(b, buf, bi * bs, in, errp);
    if (r == 0)
        r = io_pwrite(b->file, buf, in, at, errp);
    free(buf);
    if (r < 0)
        return -1;
    s->next_off = at + bs;
    s->file_size = s->next_off;
    *e = at | VHDX_PB_FULL;
    return 0;
}

/* Where the file's live content ends: regions, log, blocks in use. */
static int vhdx_live_end(struct blk *b, struct vhdx_state *s, uint64_t *end,
                         vf_error **errp)
{
    uint64_t e = s->log_off + s->log_len;
    if (e < VHDX_MIB)
        e = VHDX_MIB;
    uint8_t *rt = malloc(VHDX_RT_SIZE);
    if (!rt) {
        error_setg(errp, "out of memory");
        return -1;
    }
    if (vhdx_rt_load(b, rt, errp) < 0) {
        free(rt);
        return -1;
    }
    uint32_t n = vhdx_le32(rt + VHDX_RT_COUNT);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *r = rt + VHDX_RT_ENTRIES + i * VHDX_RE_SIZE;
        uint64_t z = vhdx_le64(r + VHDX_RE_OFF) + vhdx_le32(r + VHDX_RE_LEN);
        if (z > e)
            e = z;
    }
    free(rt);
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        uint64_t span = vhdx_entry_span(s, i);
        uint64_t z = (s->bat[i] & VHDX_BAT_OFF_MASK) + span;
        if (span && z > e)
            e = z;
    }
    *end = e;
    return 0;
}

/* Fill the entries of blocks [from, s->data_blocks) of a grown disk. */
static int vhdx_new_entries(struct blk *b, struct vhdx_state *s,
                            uint64_t from, vf_error **errp)
{
    if (!s->leave_alloc || s->has_parent) {
        /* NOT_PRESENT reads zeros without a parent; with one it would
         * read the parent, so: ZERO (its offset field must stay 0) */
        for (uint64_t i = from; i < s->data_blocks; i++)
            s->bat[vhdx_pb_index(s, i)] = s->has_parent ? VHDX_PB_ZERO : 0;
        return 0;
    }
    /* fixed: every block allocated, fresh (zero) space at the end */
    uint64_t at = (s->next_off + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    uint64_t n = s->data_blocks - from;
    if (io_truncate(b->file, at + n * s->block_size, errp) < 0)
        return -1;
    for (uint64_t i = from; i < s->data_blocks; i++)
        s->bat[vhdx_pb_index(s, i)] =
            (at + (i - from) * s->block_size) | VHDX_PB_FULL;
    s->next_off = at + n * s->block_size;
    s->file_size = s->next_off;
    return 0;
}

static int vhdx_write_vsize(struct blk *b, struct vhdx_state *s,
                            uint64_t size, vf_error **errp)
{
    uint8_t v[8];
    vhdx_put64(v, size);
    if (io_pwrite(b->file, v, 8, s->vsize_off, errp) < 0 ||
        io_flush(b->file, errp) < 0)
        return -1;
    return 0;
}

int vhdx_resize(struct blk *b, uint64_t new_size, vf_error **errp)
{
    struct vhdx_state *s = b->state;
    if (new_size % s->lss || new_size > VHDX_MAX_SIZE) {
        error_setg(errp, "VHDX virtual size %" PRIu64 " invalid (a multiple "
                   "of the %" PRIu32 "-byte logical sector, at most %" PRIu64
                   ")", new_size, s->lss, VHDX_MAX_SIZE);
        return -1;
    }
    struct vhdx_state g = { .block_size = s->block_size, .lss = s->lss,
                            .has_parent = s->has_parent };
    vhdx_geometry(&g, new_size);
    uint64_t new_len = (g.bat_entries * 8 + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    if (!new_len)
        new_len = VHDX_MIB;
    /* the region length is a u32 */
    if (g.bat_entries > VHDX_MAX_BAT || new_len > UINT32_MAX) {
        error_setg(errp, "VHDX virtual size %" PRIu64 " needs a BAT of %"
                   PRIu64 " entries, more than %" PRIu64, new_size,
                   g.bat_entries, (uint64_t)VHDX_MAX_BAT);
        return -1;
    }
    if (new_size == b->size)
        return 0;
    /* the first change of the file: new FileWriteGuid, and a new
     * DataWriteGuid since what the guest sees changes */
    if (!s->writing) {
        vhdx_random_guid(s->hdr + VHDX_H_FILE_WRITE);
        s->writing = true;
    }
    vhdx_random_guid(s->hdr + VHDX_H_DATA_WRITE);
    s->hdr_dirty = false;
    if (vhdx_update_headers(b, s, errp) < 0 || io_flush(b->file, errp) < 0)
        return -1;
    uint64_t old_size = b->size, old_blocks = s->data_blocks;
    uint64_t old_entries = s->bat_entries;
    if (new_size > old_size) {
        if (new_len > s->bat_len && vhdx_grow_bat(b, s, new_len, errp) < 0)
            return -1;
        if (vhdx_zero_tail(b, s, old_size, new_size, errp) < 0)
            return -1;
    }
    uint64_t *nb = calloc(g.bat_entries ? g.bat_entries : 1, 8);
    if (!nb) {
        error_setg(errp, "out of memory");
        return -1;
    }
    /* the chunk layout is the same: the common prefix keeps its place */
    memcpy(nb, s->bat, (size_t)(g.bat_entries < old_entries
                                ? g.bat_entries : old_entries) * 8);
    free(s->bat);
    s->bat = nb;
    s->data_blocks = g.data_blocks;
    s->bat_entries = g.bat_entries;
    if (new_size > old_size) {
        /* blocks and entries first, flushed; the size makes them
         * visible */
        if (vhdx_new_entries(b, s, old_blocks, errp) < 0 ||
            io_flush(b->file, errp) < 0 ||
            vhdx_write_bat(b, s, errp) < 0 || io_flush(b->file, errp) < 0 ||
            vhdx_write_vsize(b, s, new_size, errp) < 0)
            return -1;
    } else {
        /* the size first; then the dropped entries are cleared and the
         * file cut after what is left */
        if (vhdx_write_vsize(b, s, new_size, errp) < 0 ||
            vhdx_write_bat(b, s, errp) < 0)
            return -1;
        if (old_entries > s->bat_entries &&
            io_punch(b->file, s->bat_off + s->bat_entries * 8,
                     (old_entries - s->bat_entries) * 8, errp) < 0)
            return -1;
        uint64_t end;
        if (io_flush(b->file, errp) < 0 || vhdx_live_end(b, s, &end,
                                                        errp) < 0)
            return -1;
        if (end < s->file_size) {
            if (io_truncate(b->file, end, errp) < 0)
                return -1;
            s->file_size = end;
        }
        s->next_off = (end + VHDX_MIB - 1) & ~(VHDX_MIB - 1);
    }
    b->size = new_size;
    s->dirty = false;
    return 0;
}
