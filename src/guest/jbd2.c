/*
 * jbd2.c: replay of an ext3/ext4 journal (JBD2) that needs recovery, so
 * that `vmferry prepare` can edit a filesystem whose guest was not shut
 * down cleanly.  The committed transactions are written to their places
 * on the guest device (a copy-on-write overlay of the source, or an
 * --in-place image), the journal is marked empty and the filesystem's
 * needs_recovery flag cleared, as the kernel does at mount.
 *
 * Written from Linux's Documentation/filesystems/ext4/journal.rst (the
 * on-disk layout is in jbd2-ondisk.h).  Recovery takes three passes over
 * the log, which starts at s_start with transaction s_sequence and wraps
 * from the journal's end to s_first:
 *   SCAN   finds the last committed transaction: a block without the
 *          magic or with another sequence number, a metadata block whose
 *          checksum does not match, or an unknown block type ends the
 *          log, and a transaction without its commit block is not
 *          replayed (a crash may have torn it).  Every bound is checked
 *          here: a committed transaction with a block beyond the
 *          filesystem, or a data block that does not match its checksum,
 *          is refused before anything is written.
 *   REVOKE collects the revoke records of the committed transactions:
 *          block -> newest transaction that revoked it.
 *   REPLAY writes every logged block, in log order, unless a revoke
 *          record of the same or a later transaction covers it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "guest/ext-int.h"
#include "guest/guest.h"
#include "guest/jbd2-ondisk.h"
#include "guest/ondisk.h"

/* mke2fs makes journals of at most 10,240,000 blocks (its -J size
 * limit); 2^24 leaves room and bounds the block map we build. */
#define JBD2_MAX_BLOCKS (1u << 24)
/* Distinct revoked blocks: a revoke record is written for a freed
 * metadata block; millions of them in one log is not a real journal. */
#define JBD2_MAX_REVOKED (1u << 22)
/* Runs of contiguous blocks in the journal inode's block map: mke2fs
 * writes one or a few extents; this is far above any real journal. */
#define JBD2_MAX_RUNS (1u << 20)

enum jpass { JP_SCAN, JP_REVOKE, JP_REPLAY };

struct jtag {
    uint64_t target;           /* filesystem block */
    uint32_t flags;            /* JBD2_FLAG_* */
    uint32_t csum;             /* v2: low 16 bits; v3: all 32 */
};

struct jrevoke {
    uint64_t bno;
    uint32_t seq;              /* newest transaction revoking bno */
    bool used;
};

struct jlog {
    const struct jbd2_dev *dev;
    uint32_t bs;
    uint32_t first, last;      /* the log: journal blocks [first, last) */
    uint32_t start, seq0;      /* where the log starts, its first ID */
    uint32_t end_seq;          /* after SCAN: first ID not replayed */
    uint32_t incompat;
    bool csum;                 /* csum v2 or v3 */
    bool v3, b64, async, v1sum;
    uint32_t seed;             /* crc32c(~0, journal UUID) */
    size_t tag_bytes;
    uint8_t *jb, *data;        /* one journal block each */
    struct jtag *tags;
    size_t max_tags;
    vf_error *bad;             /* SCAN: what is wrong with the
                                  transaction in progress (jlog_bad) */
    struct jrevoke *rv;        /* open addressing, rv_cap a power of 2 */
    size_t rv_cap, rv_n;
    struct jbd2_stats st;
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t crc32c(uint32_t crc, const void *p, size_t len)
{
    return ext2fs_crc32c_le(crc, p, len);
}

/* Transaction IDs wrap: a is newer than b. */
static bool tid_after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

/* The log block n blocks after b, wrapping from last to first. */
static uint32_t jlog_next(const struct jlog *l, uint32_t b, uint64_t n)
{
    uint64_t room = l->last - l->first;
    return l->first + (uint32_t)(((uint64_t)(b - l->first) + n) % room);
}

static int jlog_read(struct jlog *l, uint32_t b, uint8_t *buf,
                     vf_error **errp)
{
    if (l->dev->jread(l->dev->opaque, b, buf, errp) < 0) {
        error_prepend(errp, "journal block %u: ", b);
        return -1;
    }
    return 0;
}

/* csum v2/v3 descriptor and revoke blocks: the tail checksum. */
static bool jlog_tail_ok(const struct jlog *l, const uint8_t *b)
{
    uint32_t stored = gbe32(b + l->bs - JBD2_TAIL_SIZE);
    static const uint8_t zero[JBD2_TAIL_SIZE];
    uint32_t c = crc32c(l->seed, b, l->bs - JBD2_TAIL_SIZE);
    c = crc32c(c, zero, sizeof(zero));
    return c == stored;
}

static bool jlog_commit_ok(const struct jlog *l, const uint8_t *b)
{
    static const uint8_t zero[4];
    uint32_t stored = gbe32(b + JBD2_CM_CHECKSUM);
    uint32_t c = crc32c(l->seed, b, JBD2_CM_CHECKSUM);
    c = crc32c(c, zero, sizeof(zero));
    c = crc32c(c, b + JBD2_CM_CHECKSUM + 4, l->bs - JBD2_CM_CHECKSUM - 4);
    return c == stored;
}

/* A data block's checksum, as its tag stores it. */
static bool jlog_data_ok(const struct jlog *l, const struct jtag *t,
                         uint32_t seq, const uint8_t *data)
{
    uint8_t s[4];
    put_be32(s, seq);
    uint32_t c = crc32c(crc32c(l->seed, s, 4), data, l->bs);
    return l->v3 ? c == t->csum : (c & 0xffff) == t->csum;
}

/* The tags of descriptor block d into l->tags; their count.  The tags
 * fill the block (less the checksum tail) unless one says LAST_TAG. */
static size_t jlog_tags(struct jlog *l, const uint8_t *d)
{
    size_t end = l->bs - (l->csum ? JBD2_TAIL_SIZE : 0);
    size_t off = JBD2_HEADER_SIZE, n = 0;
    while (end - off >= l->tag_bytes && n < l->max_tags) {
        const uint8_t *t = d + off;
        struct jtag *tag = &l->tags[n++];
        uint64_t hi;
        if (l->v3) {
            tag->flags = gbe32(t + JBD2_TAG3_FLAGS);
            tag->csum = gbe32(t + JBD2_TAG3_CHECKSUM);
            hi = gbe32(t + JBD2_TAG3_BLOCKHI);
        } else {
            tag->flags = gbe16(t + JBD2_TAG_FLAGS);
            tag->csum = gbe16(t + JBD2_TAG_CHECKSUM);
            hi = l->b64 ? gbe32(t + JBD2_TAG_BLOCKHI) : 0;
        }
        tag->target = gbe32(t + JBD2_TAG_BLOCKNR) | (l->b64 ? hi << 32 : 0);
        off += l->tag_bytes;
        if (!(tag->flags & JBD2_FLAG_SAME_UUID)) {
            if (end - off < JBD2_TAG_UUID_SIZE)
                break;
            off += JBD2_TAG_UUID_SIZE;
        }
        if (tag->flags & JBD2_FLAG_LAST_TAG)
            break;
    }
    return n;
}

/* ---- the revoke table ---- */

static size_t rv_slot(const struct jlog *l, uint64_t bno)
{
    uint64_t h = bno * UINT64_C(0x9e3779b97f4a7c15);
    size_t i = (size_t)(h >> 32) & (l->rv_cap - 1);
    while (l->rv[i].used && l->rv[i].bno != bno)
        i = (i + 1) & (l->rv_cap - 1);
    return i;
}

static int rv_add(struct jlog *l, uint64_t bno, uint32_t seq,
                  vf_error **errp)
{
    if (l->rv_n + 1 > l->rv_cap / 2) {
        if (l->rv_n >= JBD2_MAX_REVOKED) {
            error_setg(errp, "more than %u revoked blocks in the journal",
                       JBD2_MAX_REVOKED);
            return -1;
        }
        size_t ncap = l->rv_cap ? l->rv_cap * 2 : 1024;
        struct jrevoke *old = l->rv;
        size_t ocap = l->rv_cap;
        l->rv = calloc(ncap, sizeof(*l->rv));
        if (!l->rv) {
            l->rv = old;
            error_setg(errp, "out of memory");
            return -1;
        }
        l->rv_cap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].used)
                l->rv[rv_slot(l, old[i].bno)] = old[i];
        free(old);
    }
    struct jrevoke *e = &l->rv[rv_slot(l, bno)];
    if (!e->used) {
        e->used = true;
        e->bno = bno;
        e->seq = seq;
        l->rv_n++;
    } else if (tid_after(seq, e->seq)) {
        e->seq = seq;
    }
    return 0;
}

/* Whether a revoke record of transaction seq or a later one covers bno. */
static bool rv_revoked(const struct jlog *l, uint64_t bno, uint32_t seq)
{
    if (!l->rv_cap)
        return false;
    const struct jrevoke *e = &l->rv[rv_slot(l, bno)];
    return e->used && !tid_after(seq, e->seq);
}

/* ---- the passes ---- */

/* SCAN found something wrong in the transaction in progress.  It is an
 * error only if that transaction commits: an uncommitted one may be torn
 * by the crash, and is not replayed anyway. */
static void jlog_bad(struct jlog *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void jlog_bad(struct jlog *l, const char *fmt, ...)
{
    if (l->bad)
        return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    error_setg(&l->bad, "%s", msg);
}

/* A descriptor block at b of transaction seq, whose n tags are parsed:
 * SCAN checks targets and data checksums (*torn: a data block of an
 * async-commit transaction does not match, so it never completed),
 * REPLAY writes.  *v1 accumulates the v1 checksum. */
static int jlog_descriptor(struct jlog *l, enum jpass pass, uint32_t b,
                           uint32_t seq, size_t n, uint32_t *v1, bool *torn,
                           vf_error **errp)
{
    const struct jbd2_dev *dev = l->dev;
    for (size_t i = 0; i < n; i++) {
        const struct jtag *t = &l->tags[i];
        uint32_t db = jlog_next(l, b, i + 1);
        if (pass == JP_SCAN) {
            if (t->target >= dev->fs_blocks)
                jlog_bad(l, "journal block %u (transaction %u) is for "
                         "block %llu, beyond the filesystem's %llu blocks",
                         db, seq, (unsigned long long)t->target,
                         (unsigned long long)dev->fs_blocks);
            else if (dev->in_journal &&
                     dev->in_journal(dev->opaque, t->target))
                jlog_bad(l, "journal block %u (transaction %u) is for "
                         "block %llu, which holds the journal itself", db,
                         seq, (unsigned long long)t->target);
            if (!l->csum && !l->v1sum)
                continue;
            if (jlog_read(l, db, l->data, errp) < 0)
                return -1;
            if (l->v1sum)
                *v1 = ext2fs_crc32_be(*v1, l->data, l->bs);
            if (l->csum && !jlog_data_ok(l, t, seq, l->data)) {
                if (l->async) {
                    /* its commit block may have been written first */
                    *torn = true;
                    return 0;
                }
                jlog_bad(l, "journal block %u (transaction %u, for block "
                         "%llu) does not match its checksum", db, seq,
                         (unsigned long long)t->target);
            }
        } else if (pass == JP_REPLAY) {
            if (rv_revoked(l, t->target, seq)) {
                l->st.revoked++;
                continue;
            }
            if (t->target >= dev->fs_blocks) {   /* SCAN refused it */
                error_setg(errp, "journal block %u changed during its "
                           "replay", db);
                return -1;
            }
            if (jlog_read(l, db, l->data, errp) < 0)
                return -1;
            if (t->flags & JBD2_FLAG_ESCAPE)
                put_be32(l->data, JBD2_MAGIC);
            if (dev->fswrite(dev->opaque, t->target, l->data, errp) < 0) {
                error_prepend(errp, "replaying journal block %u to block "
                              "%llu: ", db, (unsigned long long)t->target);
                return -1;
            }
            l->st.blocks++;
        }
    }
    return 0;
}

static int jlog_revoke(struct jlog *l, enum jpass pass, uint32_t b,
                       uint32_t seq, vf_error **errp)
{
    uint32_t count = gbe32(l->jb + JBD2_RV_COUNT);
    size_t limit = l->bs - (l->csum ? JBD2_TAIL_SIZE : 0);
    if (count < JBD2_RV_RECORDS || count > limit) {
        if (pass == JP_SCAN) {
            jlog_bad(l, "revoke block at journal block %u (transaction "
                     "%u) claims %u bytes of records (at most %zu)", b, seq,
                     count, limit);
            return 0;
        }
        error_setg(errp, "journal block %u changed during its replay", b);
        return -1;
    }
    if (pass != JP_REVOKE)
        return 0;
    size_t rsize = l->b64 ? 8 : 4;
    for (size_t off = JBD2_RV_RECORDS; count - off >= rsize; off += rsize) {
        uint64_t bno = l->b64 ? gbe64(l->jb + off) : gbe32(l->jb + off);
        if (rv_add(l, bno, seq, errp) < 0)
            return -1;
    }
    return 0;
}

/* A v1 (COMPAT_CHECKSUM) commit block: its crc32 of the transaction's
 * descriptor and data blocks.  A commit written before the feature was
 * on carries no checksum (type, size and value zero). */
static bool jlog_v1_ok(const uint8_t *c, uint32_t sum, bool *seen)
{
    uint8_t type = c[JBD2_CM_CSUM_TYPE], size = c[JBD2_CM_CSUM_SIZE];
    uint32_t stored = gbe32(c + JBD2_CM_CHECKSUM);
    if (type == JBD2_CSUM_CRC32 && size == 4 && stored == sum) {
        *seen = true;
        return true;
    }
    return type == 0 && size == 0 && stored == 0 && !*seen;
}

static int jlog_pass(struct jlog *l, enum jpass pass, vf_error **errp)
{
    uint32_t b = l->start, seq = l->seq0;
    uint64_t walked = 0, room = l->last - l->first;
    uint32_t v1 = ~0u;
    bool v1seen = false;
    for (;;) {
        if (pass != JP_SCAN && seq == l->end_seq)
            return 0;
        /* one lap at most: the log does not overlap itself */
        if (walked >= room)
            break;
        if (jlog_read(l, b, l->jb, errp) < 0)
            return -1;
        if (gbe32(l->jb + JBD2_H_MAGIC) != JBD2_MAGIC ||
            gbe32(l->jb + JBD2_H_SEQUENCE) != seq)
            break;
        uint32_t type = gbe32(l->jb + JBD2_H_BLOCKTYPE);
        if (type == JBD2_BT_DESCRIPTOR) {
            if (pass == JP_SCAN && l->csum && !jlog_tail_ok(l, l->jb))
                break;
            size_t n = jlog_tags(l, l->jb);
            if (n > room - walked - 1) {
                /* more tags than the log holds: nothing after it can be
                 * found, so the log ends before this transaction */
                if (pass == JP_SCAN)
                    break;
                error_setg(errp, "journal block %u changed during its "
                           "replay", b);
                return -1;
            }
            if (l->v1sum && pass == JP_SCAN)
                v1 = ext2fs_crc32_be(v1, l->jb, l->bs);
            bool torn = false;
            if (jlog_descriptor(l, pass, b, seq, n, &v1, &torn, errp) < 0)
                return -1;
            if (torn)
                break;
            b = jlog_next(l, b, n + 1);
            walked += n + 1;
        } else if (type == JBD2_BT_COMMIT) {
            if (pass == JP_SCAN) {
                if (l->csum && !jlog_commit_ok(l, l->jb))
                    break;
                if (l->v1sum && !jlog_v1_ok(l->jb, v1, &v1seen))
                    break;
                if (l->bad) {
                    error_propagate(errp, l->bad);
                    l->bad = NULL;
                    return -1;
                }
                v1 = ~0u;
                l->end_seq = seq + 1;
            }
            seq++;
            b = jlog_next(l, b, 1);
            walked++;
        } else if (type == JBD2_BT_REVOKE) {
            if (pass == JP_SCAN && l->csum && !jlog_tail_ok(l, l->jb))
                break;
            if (jlog_revoke(l, pass, b, seq, errp) < 0)
                return -1;
            b = jlog_next(l, b, 1);
            walked++;
        } else {
            break;
        }
    }
    if (pass == JP_SCAN) {
        /* what was wrong with a transaction that never committed */
        error_free(l->bad);
        l->bad = NULL;
        return 0;
    }
    /* SCAN read these very blocks and found the log longer */
    error_setg(errp, "journal block %u changed during its replay", b);
    return -1;
}

/* Check the journal superblock in l->jb; fill l's geometry. */
static int jlog_super(struct jlog *l, vf_error **errp)
{
    const uint8_t *s = l->jb;
    const struct jbd2_dev *dev = l->dev;
    if (gbe32(s + JBD2_H_MAGIC) != JBD2_MAGIC) {
        error_setg(errp, "journal superblock has no JBD2 magic (0x%08x)",
                   gbe32(s + JBD2_H_MAGIC));
        return -1;
    }
    uint32_t type = gbe32(s + JBD2_H_BLOCKTYPE);
    if (type != JBD2_BT_SB_V1 && type != JBD2_BT_SB_V2) {
        error_setg(errp, "journal superblock has block type %u", type);
        return -1;
    }
    uint32_t bs = gbe32(s + JBD2_SB_BLOCKSIZE);
    if (bs != dev->blocksize) {
        error_setg(errp, "journal block size %u differs from the "
                   "filesystem's %u", bs, dev->blocksize);
        return -1;
    }
    uint32_t compat = 0, incompat = 0;
    if (type == JBD2_BT_SB_V2) {
        compat = gbe32(s + JBD2_SB_COMPAT);
        incompat = gbe32(s + JBD2_SB_INCOMPAT);
    }
    uint32_t known = JBD2_INCOMPAT_REVOKE | JBD2_INCOMPAT_64BIT |
                     JBD2_INCOMPAT_ASYNC_COMMIT | JBD2_INCOMPAT_CSUM_V2 |
                     JBD2_INCOMPAT_CSUM_V3;
    if (incompat & JBD2_INCOMPAT_FAST_COMMIT) {
        error_setg(errp, "the journal uses fast commits, which vmferry "
                   "does not replay; mount the filesystem once, or run "
                   "e2fsck on it");
        return -1;
    }
    if (incompat & ~known) {
        error_setg(errp, "the journal has unknown incompatible features "
                   "0x%x", incompat & ~known);
        return -1;
    }
    l->incompat = incompat;
    l->v3 = incompat & JBD2_INCOMPAT_CSUM_V3;
    l->csum = l->v3 || (incompat & JBD2_INCOMPAT_CSUM_V2);
    l->b64 = incompat & JBD2_INCOMPAT_64BIT;
    l->async = incompat & JBD2_INCOMPAT_ASYNC_COMMIT;
    /* v1 and v2/v3 checksums exclude each other; the newer one wins */
    l->v1sum = !l->csum && (compat & JBD2_COMPAT_CHECKSUM);
    if (l->csum) {
        if (s[JBD2_SB_CSUM_TYPE] != JBD2_CSUM_CRC32C) {
            error_setg(errp, "journal checksum type %u is not crc32c",
                       s[JBD2_SB_CSUM_TYPE]);
            return -1;
        }
        static const uint8_t zero[4];
        uint32_t c = crc32c(~0u, s, JBD2_SB_CHECKSUM);
        c = crc32c(c, zero, 4);
        c = crc32c(c, s + JBD2_SB_CHECKSUM + 4,
                   JBD2_SB_SIZE - JBD2_SB_CHECKSUM - 4);
        if (c != gbe32(s + JBD2_SB_CHECKSUM)) {
            error_setg(errp, "journal superblock checksum 0x%08x does not "
                       "match its content (0x%08x)",
                       gbe32(s + JBD2_SB_CHECKSUM), c);
            return -1;
        }
        l->seed = crc32c(~0u, s + JBD2_SB_UUID, 16);
    }
    if (l->v3)
        l->tag_bytes = JBD2_TAG3_SIZE;
    else   /* csum v2 tags carry 2 bytes of padding (Linux's
              journal_tag_bytes(); the document's table omits them) */
        l->tag_bytes = 8 + (l->b64 ? 4 : 0) + (l->csum ? 2 : 0);

    uint32_t maxlen = gbe32(s + JBD2_SB_MAXLEN);
    uint32_t first = gbe32(s + JBD2_SB_FIRST);
    if (maxlen > dev->j_blocks) {
        error_setg(errp, "journal length %u blocks is beyond the journal "
                   "file's %llu blocks", maxlen,
                   (unsigned long long)dev->j_blocks);
        return -1;
    }
    if (first < 1 || first >= maxlen) {
        error_setg(errp, "journal log start %u outside the journal's %u "
                   "blocks", first, maxlen);
        return -1;
    }
    l->first = first;
    l->last = maxlen;
    l->start = gbe32(s + JBD2_SB_START);
    l->seq0 = gbe32(s + JBD2_SB_SEQUENCE);
    if (l->start && (l->start < first || l->start >= maxlen)) {
        error_setg(errp, "journal log head at block %u outside the log "
                   "(blocks %u to %u)", l->start, first, maxlen - 1);
        return -1;
    }
    return 0;
}

int jbd2_replay_dev(const struct jbd2_dev *dev, struct jbd2_stats *st,
                    vf_error **errp)
{
    struct jlog l = { .dev = dev, .bs = dev->blocksize };
    int ret = -1;
    if (st)
        memset(st, 0, sizeof(*st));
    if (dev->blocksize < JBD2_SB_SIZE || dev->blocksize > 65536 ||
        (dev->blocksize & (dev->blocksize - 1))) {
        error_setg(errp, "journal block size %u is not supported",
                   dev->blocksize);
        return -1;
    }
    if (dev->j_blocks < 2) {
        error_setg(errp, "journal of %llu blocks is too small",
                   (unsigned long long)dev->j_blocks);
        return -1;
    }
    l.max_tags = (l.bs - JBD2_HEADER_SIZE) / 8;
    l.jb = malloc(l.bs);
    l.data = malloc(l.bs);
    l.tags = calloc(l.max_tags, sizeof(*l.tags));
    if (!l.jb || !l.data || !l.tags) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (jlog_read(&l, 0, l.jb, errp) < 0 || jlog_super(&l, errp) < 0)
        goto out;
    if (l.start == 0) {        /* the log is empty */
        ret = 0;
        goto out;
    }
    l.end_seq = l.seq0;
    if (jlog_pass(&l, JP_SCAN, errp) < 0 ||
        jlog_pass(&l, JP_REVOKE, errp) < 0 ||
        jlog_pass(&l, JP_REPLAY, errp) < 0)
        goto out;
    l.st.transactions = l.end_seq - l.seq0;

    /* The journal is empty now.  The next transaction ID skips one: a
     * transaction that never committed may have left blocks with ID
     * end_seq in the log, and the next log must not take them for its
     * own. */
    if (jlog_read(&l, 0, l.jb, errp) < 0)
        goto out;
    put_be32(l.jb + JBD2_SB_START, 0);
    put_be32(l.jb + JBD2_SB_SEQUENCE, l.end_seq + 1);
    if (l.csum) {
        put_be32(l.jb + JBD2_SB_CHECKSUM, 0);
        put_be32(l.jb + JBD2_SB_CHECKSUM,
                 crc32c(~0u, l.jb, JBD2_SB_SIZE));
    }
    if (dev->jwrite(dev->opaque, 0, l.jb, errp) < 0) {
        error_prepend(errp, "writing the journal superblock: ");
        goto out;
    }
    if (st)
        *st = l.st;
    ret = 0;
out:
    free(l.jb);
    free(l.data);
    free(l.tags);
    free(l.rv);
    error_free(l.bad);
    return ret;
}

/* ---- the internal journal of an ext filesystem ---- */

struct jrun {
    uint64_t lblk, pblk, len;
};

struct jext {
    ext2_filsys fs;
    uint64_t maxlen;           /* journal blocks mapped */
    struct jrun *runs;         /* by logical block */
    struct jrun *phys;         /* the same, by physical block */
    size_t n, cap;
    uint64_t calls;
    bool bad;                  /* the map is not one block per block */
};

static int jext_map_block(ext2_filsys fs, blk64_t *blocknr,
                          e2_blkcnt_t blockcnt, blk64_t ref_blk,
                          int ref_offset, void *priv)
{
    struct jext *j = priv;
    if (blockcnt < 0)
        return 0;
    if ((uint64_t)blockcnt >= j->maxlen)
        return BLOCK_ABORT;    /* the rest is beyond what the log uses */
    if (++j->calls > j->maxlen) {
        j->bad = true;
        return BLOCK_ABORT;
    }
    uint64_t l = (uint64_t)blockcnt, p = *blocknr;
    if (j->n) {
        struct jrun *r = &j->runs[j->n - 1];
        if (r->lblk + r->len == l && r->pblk + r->len == p) {
            r->len++;
            return 0;
        }
    }
    if (j->n == j->cap) {
        if (j->cap >= JBD2_MAX_RUNS) {
            j->bad = true;
            return BLOCK_ABORT;
        }
        size_t nc = j->cap ? j->cap * 2 : 16;
        struct jrun *nr = realloc(j->runs, nc * sizeof(*nr));
        if (!nr) {
            j->bad = true;
            return BLOCK_ABORT;
        }
        j->runs = nr;
        j->cap = nc;
    }
    j->runs[j->n++] = (struct jrun){ l, p, 1 };
    return 0;
}

static int jrun_by_lblk(const void *a, const void *b)
{
    const struct jrun *x = a, *y = b;
    return x->lblk < y->lblk ? -1 : x->lblk > y->lblk;
}

static int jrun_by_pblk(const void *a, const void *b)
{
    const struct jrun *x = a, *y = b;
    return x->pblk < y->pblk ? -1 : x->pblk > y->pblk;
}

/* The run holding block k (logical or physical), or NULL. */
static const struct jrun *jrun_find(const struct jrun *v, size_t n,
                                    uint64_t k, bool phys)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t s = phys ? v[mid].pblk : v[mid].lblk;
        if (k < s)
            hi = mid;
        else if (k - s >= v[mid].len)
            lo = mid + 1;
        else
            return &v[mid];
    }
    return NULL;
}

static int jext_read(void *opaque, uint64_t jblk, void *buf, vf_error **errp)
{
    struct jext *j = opaque;
    const struct jrun *r = jrun_find(j->runs, j->n, jblk, false);
    if (!r) {
        error_setg(errp, "not mapped by the journal inode");
        return -1;
    }
    errcode_t e = io_channel_read_blk64(j->fs->io,
                                        r->pblk + (jblk - r->lblk), 1, buf);
    if (e) {
        error_setg(errp, "read failed: %s", error_message(e));
        return -1;
    }
    return 0;
}

static int jext_write_fs(void *opaque, uint64_t bno, const void *buf,
                         vf_error **errp)
{
    struct jext *j = opaque;
    errcode_t e = io_channel_write_blk64(j->fs->io, bno, 1, buf);
    if (e) {
        error_setg(errp, "write failed: %s", error_message(e));
        return -1;
    }
    return 0;
}

static int jext_write(void *opaque, uint64_t jblk, const void *buf,
                      vf_error **errp)
{
    struct jext *j = opaque;
    const struct jrun *r = jrun_find(j->runs, j->n, jblk, false);
    if (!r) {
        error_setg(errp, "journal block %llu not mapped",
                   (unsigned long long)jblk);
        return -1;
    }
    return jext_write_fs(opaque, r->pblk + (jblk - r->lblk), buf, errp);
}

static bool jext_in_journal(void *opaque, uint64_t bno)
{
    struct jext *j = opaque;
    return jrun_find(j->phys, j->n, bno, true) != NULL;
}

/* Build the journal inode's block map (its first maxlen blocks). */
static int jext_map(struct jext *j, ext2_ino_t ino, vf_error **errp)
{
    errcode_t e = ext2fs_block_iterate3(j->fs, ino,
                                        BLOCK_FLAG_READ_ONLY |
                                        BLOCK_FLAG_DATA_ONLY,
                                        NULL, jext_map_block, j);
    if (e || j->bad) {
        error_setg(errp, "cannot map the journal inode's blocks%s%s",
                   e ? ": " : "", e ? error_message(e) : "");
        return -1;
    }
    qsort(j->runs, j->n, sizeof(*j->runs), jrun_by_lblk);
    j->phys = malloc((j->n ? j->n : 1) * sizeof(*j->phys));
    if (!j->phys) {
        error_setg(errp, "out of memory");
        return -1;
    }
    memcpy(j->phys, j->runs, j->n * sizeof(*j->phys));
    qsort(j->phys, j->n, sizeof(*j->phys), jrun_by_pblk);
    /* one physical block per logical block, and back */
    for (size_t i = 1; i < j->n; i++) {
        if (j->runs[i].lblk - j->runs[i - 1].lblk < j->runs[i - 1].len ||
            j->phys[i].pblk - j->phys[i - 1].pblk < j->phys[i - 1].len) {
            error_setg(errp, "the journal inode maps a block twice");
            return -1;
        }
    }
    return 0;
}

/* Clear needs_recovery in the primary superblock (1024 bytes at byte
 * 1024), through the io channel so its cache stays coherent. */
static int jext_clear_recover(ext2_filsys fs, vf_error **errp)
{
    uint32_t bs = fs->blocksize;
    uint64_t bno = 1024 / bs;
    size_t off = 1024 % bs;
    uint8_t *b = malloc(bs);
    if (!b) {
        error_setg(errp, "out of memory");
        return -1;
    }
    errcode_t e = io_channel_read_blk64(fs->io, bno, 1, b);
    if (!e) {
        uint8_t *sb = b + off;
        uint32_t incompat = gle32(sb + 0x60);
        incompat &= ~(uint32_t)EXT3_FEATURE_INCOMPAT_RECOVER;
        sb[0x60] = (uint8_t)incompat;
        sb[0x61] = (uint8_t)(incompat >> 8);
        sb[0x62] = (uint8_t)(incompat >> 16);
        sb[0x63] = (uint8_t)(incompat >> 24);
        if (gle32(sb + 0x64) & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM) {
            /* s_checksum: crc32c(~0) of the bytes before it */
            uint32_t c = crc32c(~0u, sb, 0x3FC);
            for (int i = 0; i < 4; i++)
                sb[0x3FC + i] = (uint8_t)(c >> (8 * i));
        }
        e = io_channel_write_blk64(fs->io, bno, 1, b);
    }
    free(b);
    if (e) {
        error_setg(errp, "cannot clear needs_recovery in the superblock: %s",
                   error_message(e));
        return -1;
    }
    return 0;
}

int jbd2_replay(struct gfs *g, struct jbd2_stats *st, vf_error **errp)
{
    ext2_filsys fs = g->fs;
    struct ext2_super_block *sb = fs->super;
    struct jext j = { .fs = fs };
    int ret = -1;
    if (st)
        memset(st, 0, sizeof(*st));
    if (ext2fs_has_feature_journal_dev(sb) || sb->s_journal_inum == 0) {
        char u[40];
        const uint8_t *q = sb->s_journal_uuid;
        snprintf(u, sizeof(u), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x", q[0], q[1], q[2], q[3], q[4],
                 q[5], q[6], q[7], q[8], q[9], q[10], q[11], q[12], q[13],
                 q[14], q[15]);
        error_setg(errp, "its journal is on an external device (device "
                   "0x%x, UUID %s), which vmferry does not replay; run "
                   "e2fsck with that device attached", sb->s_journal_dev,
                   u);
        return -1;
    }
    if (!ext2fs_has_feature_journal(sb)) {
        error_setg(errp, "it needs journal recovery but has no journal");
        return -1;
    }
    struct ext2_inode inode;
    errcode_t e = ext2fs_read_inode(fs, sb->s_journal_inum, &inode);
    if (e) {
        error_setg(errp, "cannot read the journal inode %u: %s",
                   sb->s_journal_inum, error_message(e));
        return -1;
    }
    uint64_t jblocks = EXT2_I_SIZE(&inode) / fs->blocksize;
    if (jblocks > JBD2_MAX_BLOCKS) {
        error_setg(errp, "journal inode of %llu blocks is larger than "
                   "vmferry replays (%u)", (unsigned long long)jblocks,
                   JBD2_MAX_BLOCKS);
        return -1;
    }
    j.maxlen = jblocks;
    if (jext_map(&j, sb->s_journal_inum, errp) < 0)
        goto out;
    struct jbd2_dev dev = {
        .blocksize = fs->blocksize,
        .fs_blocks = ext2fs_blocks_count(sb),
        .j_blocks = jblocks,
        .jread = jext_read,
        .jwrite = jext_write,
        .fswrite = jext_write_fs,
        .in_journal = jext_in_journal,
        .opaque = &j,
    };
    if (jbd2_replay_dev(&dev, st, errp) < 0 ||
        jext_clear_recover(fs, errp) < 0)
        goto out;
    ret = 0;
out:
    free(j.runs);
    free(j.phys);
    return ret;
}

bool jbd2_log_pending(struct gfs *g)
{
    ext2_filsys fs = g->fs;
    struct ext2_super_block *sb = fs->super;
    if (!ext2fs_has_feature_journal(sb) ||
        ext2fs_has_feature_journal_dev(sb) || sb->s_journal_inum == 0)
        return false;
    blk64_t p = 0;
    uint8_t *b = malloc(fs->blocksize);
    bool pending = false;
    if (b && !ext2fs_bmap2(fs, sb->s_journal_inum, NULL, NULL, 0, 0, NULL,
                           &p) &&
        p && p < ext2fs_blocks_count(sb) &&
        !io_channel_read_blk64(fs->io, p, 1, b))
        pending = gbe32(b + JBD2_H_MAGIC) == JBD2_MAGIC &&
                  gbe32(b + JBD2_SB_START) != 0;
    free(b);
    return pending;
}
