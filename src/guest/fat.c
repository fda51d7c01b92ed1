/*
 * fat.c: a small read-only FAT12/FAT16/FAT32 reader: enough to find a
 * file by path (is it there, a directory or not, how big), which is what
 * inspection needs from an EFI System Partition.
 *
 * Written from Microsoft's "FAT: General Overview of On-Disk Format"
 * (fatgen103, version 1.03, December 6, 2000): the BPB (section 3), the
 * FAT type from the count of clusters (3.5), FAT entries (4), directory
 * entries (6) and long names (7).  Field offsets are in fat-ondisk.h.
 *
 * Every byte is hostile: the BPB is checked before any field of it sizes
 * a read, every cluster number is checked against the volume's count,
 * and a directory walk stops at FAT_DIR_MAX_ENTRIES entries or when its
 * cluster chain loops.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/fat-ondisk.h"
#include "guest/guest.h"
#include "guest/ondisk.h"

/* The FAT is read through a window of this many bytes (a multiple of
 * 2048: see fat_entry). */
#define FAT_WIN 4096u
/* Longest path component compared (bytes of UTF-8): 255 UCS-2
 * characters take at most 765 bytes. */
#define FAT_NAME_MAX 1024u

struct fat_vol {
    struct gdev *d;
    unsigned bits;            /* 12, 16 or 32 */
    uint32_t clus_bytes;      /* bytes per cluster, <= 128 * 4096 */
    uint32_t nclus;           /* data clusters: numbers 2 .. nclus + 1 */
    uint64_t fat_off;         /* bytes into d: the FAT in use */
    uint64_t fat_bytes;       /* its size, bytes */
    uint64_t root_off;        /* FAT12/16: the fixed root directory */
    uint32_t root_ents;       /* FAT12/16: its entries */
    uint32_t root_clus;       /* FAT32: the root's first cluster */
    uint64_t data_off;        /* bytes into d: cluster 2 */
    uint8_t win[FAT_WIN];     /* a window on the FAT */
    uint64_t win_off;         /* its offset in the FAT */
    uint32_t win_len;         /* 0: empty */
};

static bool pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

/* Check the BPB of d and fill v (fatgen103 section 3). */
static int fat_mount(struct fat_vol *v, struct gdev *d, vf_error **errp)
{
    uint8_t bs[512];
    memset(v, 0, sizeof(*v));
    v->d = d;
    if (d->size < sizeof(bs)) {
        error_setg(errp, "FAT volume of %" PRIu64 " bytes: no room for a "
                   "boot sector", d->size);
        return -1;
    }
    if (gdev_pread(d, bs, 0, sizeof(bs), errp) < 0)
        return -1;
    if (bs[FAT_BS_SIGNATURE] != 0x55 || bs[FAT_BS_SIGNATURE + 1] != 0xaa) {
        error_setg(errp, "FAT boot sector signature 0x%02x%02x, not 0x55aa",
                   bs[FAT_BS_SIGNATURE], bs[FAT_BS_SIGNATURE + 1]);
        return -1;
    }
    uint32_t bps = gle16(bs + FAT_BPB_BYTS_PER_SEC);
    uint32_t spc = bs[FAT_BPB_SEC_PER_CLUS];
    uint32_t rsvd = gle16(bs + FAT_BPB_RSVD_SEC_CNT);
    uint32_t nfats = bs[FAT_BPB_NUM_FATS];
    uint32_t root_ents = gle16(bs + FAT_BPB_ROOT_ENT_CNT);
    uint32_t fatsz16 = gle16(bs + FAT_BPB_FAT_SZ16);
    uint32_t fatsz = fatsz16 ? fatsz16 : gle32(bs + FAT_BPB32_FAT_SZ32);
    uint32_t totsec = gle16(bs + FAT_BPB_TOT_SEC16);
    if (!totsec)
        totsec = gle32(bs + FAT_BPB_TOT_SEC32);
    if (!pow2(bps) || bps < 512 || bps > 4096) {
        error_setg(errp, "FAT bytes per sector %" PRIu32 " not a power of "
                   "two from 512 to 4096", bps);
        return -1;
    }
    if (!pow2(spc)) {   /* a u8: so at most 128 */
        error_setg(errp, "FAT sectors per cluster %" PRIu32 " not a power "
                   "of two from 1 to 128", spc);
        return -1;
    }
    if (!rsvd) {
        error_setg(errp, "FAT reserved sector count 0");
        return -1;
    }
    /* the spec says 2, allows 1; more than 4 copies nobody writes */
    if (nfats < 1 || nfats > 4) {
        error_setg(errp, "FAT count %" PRIu32 " not from 1 to 4", nfats);
        return -1;
    }
    if (!fatsz) {
        error_setg(errp, "FAT size of 0 sectors");
        return -1;
    }
    if (!totsec) {
        error_setg(errp, "FAT total sector count 0");
        return -1;
    }
    /* 64-bit products of 32-bit fields cannot overflow */
    uint64_t vol_bytes = (uint64_t)totsec * bps;
    if (vol_bytes > d->size) {
        error_setg(errp, "FAT volume of %" PRIu64 " bytes larger than its "
                   "device (%" PRIu64 " bytes)", vol_bytes, d->size);
        return -1;
    }
    uint64_t root_secs = ((uint64_t)root_ents * FAT_DIRENT_SIZE + bps - 1) /
                         bps;
    uint64_t meta = rsvd + (uint64_t)nfats * fatsz + root_secs;
    if (meta >= totsec) {
        error_setg(errp, "FAT metadata of %" PRIu64 " sectors fills the "
                   "volume of %" PRIu32 " sectors", meta, totsec);
        return -1;
    }
    uint64_t nclus = (totsec - meta) / spc;
    if (nclus == 0) {
        error_setg(errp, "FAT volume of no data cluster");
        return -1;
    }
    if (nclus > FAT32_MAX_CLUSTERS) {
        error_setg(errp, "FAT cluster count %" PRIu64 " beyond FAT32's "
                   "%u", nclus, FAT32_MAX_CLUSTERS);
        return -1;
    }
    v->nclus = (uint32_t)nclus;
    v->bits = nclus <= FAT12_MAX_CLUSTERS ? 12
              : nclus <= FAT16_MAX_CLUSTERS ? 16 : 32;
    /* The spec's rule has one exception in the field: `mkfs.fat -F 32`
     * makes FAT32 volumes of fewer than 65525 clusters (a small ESP), and
     * Linux's fat driver and dosfstools read a BPB whose 16-bit FAT size
     * is 0 (only the FAT32 BPB has it so) as FAT32 whatever the count. */
    if (!fatsz16) {
        v->bits = 32;
    } else if (v->bits == 32) {
        error_setg(errp, "FAT with %" PRIu64 " clusters (FAT32) but a "
                   "16-bit FAT size", nclus);
        return -1;
    }
    v->clus_bytes = spc * bps;
    /* entries 0 .. nclus + 1 must fit in the FAT */
    uint64_t n = nclus + 2;
    uint64_t need = v->bits == 12 ? (n * 3 + 1) / 2 : n * (v->bits / 8);
    v->fat_bytes = (uint64_t)fatsz * bps;
    if (v->fat_bytes < need) {
        error_setg(errp, "FAT%u of %" PRIu32 " sectors too small for %"
                   PRIu64 " clusters", v->bits, fatsz, nclus);
        return -1;
    }
    uint32_t active = 0;
    if (v->bits == 32) {
        if (root_ents) {
            error_setg(errp, "FAT32 root entry count %" PRIu32 ", not 0",
                       root_ents);
            return -1;
        }
        uint16_t ext = gle16(bs + FAT_BPB32_EXT_FLAGS);
        if (ext & FAT_EXT_NO_MIRROR)
            active = ext & FAT_EXT_ACTIVE_MASK;
        if (active >= nfats) {
            error_setg(errp, "FAT32 active FAT %" PRIu32 " of %" PRIu32
                       " FATs", active, nfats);
            return -1;
        }
        v->root_clus = gle32(bs + FAT_BPB32_ROOT_CLUS);
        if (v->root_clus < 2 || v->root_clus - 2 >= v->nclus) {
            error_setg(errp, "FAT32 root directory cluster %" PRIu32
                       " beyond the volume's %" PRIu32 " clusters",
                       v->root_clus, v->nclus);
            return -1;
        }
    } else if (!root_ents) {
        error_setg(errp, "FAT%u root directory of 0 entries", v->bits);
        return -1;
    }
    v->fat_off = ((uint64_t)rsvd + (uint64_t)active * fatsz) * bps;
    v->root_off = (rsvd + (uint64_t)nfats * fatsz) * bps;
    v->root_ents = root_ents;
    v->data_off = meta * bps;
    return 0;
}

/* The FAT entry of cluster c (2 .. nclus + 1), masked (section 4). */
static int fat_entry(struct fat_vol *v, uint32_t c, uint32_t *out,
                     vf_error **errp)
{
    uint64_t off;
    unsigned w;
    if (v->bits == 12) {
        off = (uint64_t)c + c / 2;
        w = 2;
    } else {
        off = (uint64_t)c * (v->bits / 8);
        w = v->bits / 8;
    }
    /* fat_mount checked that entry nclus + 1 ends inside the FAT, so
     * off + w <= fat_bytes.  A window starting at off rounded down to
     * 2048 holds the whole entry (a FAT12 one may straddle sectors). */
    if (v->win_len == 0 || off < v->win_off ||
        off + w > v->win_off + v->win_len) {
        uint64_t start = off & ~(uint64_t)2047;
        uint64_t len = v->fat_bytes - start;
        if (len > FAT_WIN)
            len = FAT_WIN;
        v->win_len = 0;
        if (gdev_pread(v->d, v->win, v->fat_off + start, (size_t)len,
                       errp) < 0)
            return -1;
        v->win_off = start;
        v->win_len = (uint32_t)len;
    }
    const uint8_t *p = v->win + (off - v->win_off);
    if (v->bits == 12) {
        uint32_t x = gle16(p);
        *out = (c & 1) ? x >> 4 : x & FAT12_MASK;
    } else if (v->bits == 16) {
        *out = gle16(p);
    } else {
        *out = gle32(p) & FAT32_MASK;
    }
    return 0;
}

static uint32_t fat_mask(const struct fat_vol *v)
{
    return v->bits == 12 ? FAT12_MASK : v->bits == 16 ? FAT16_MASK
                                                      : FAT32_MASK;
}

/* ---- names ---- */

/* Checksum of an 11-byte short name (section 7), kept in each of its
 * long-name entries. */
static uint8_t fat_lfn_sum(const uint8_t *name)
{
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + name[i]);
    return sum;
}

/* "BASE.EXT" of a short entry, trailing spaces dropped. */
static void fat_short_name(const uint8_t *e, char *out)
{
    size_t o = 0;
    int base = 8, ext = 3;
    while (base > 0 && e[base - 1] == ' ')
        base--;
    while (ext > 0 && e[8 + ext - 1] == ' ')
        ext--;
    for (int i = 0; i < base; i++)
        out[o++] = (char)(i == 0 && e[0] == FAT_NAME_KANJI_E5 ? FAT_NAME_FREE
                                                              : e[i]);
    if (ext) {
        out[o++] = '.';
        for (int i = 0; i < ext; i++)
            out[o++] = (char)e[8 + i];
    }
    out[o] = 0;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Equal, ASCII letters' case ignored (other bytes compared as they are). */
static bool fat_name_eq(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++)
        if (ascii_lower((unsigned char)a[i]) !=
            ascii_lower((unsigned char)b[i]))
            return false;
    return i == alen && !b[i];
}

/* A long name being collected, entry by entry (section 7): the entries
 * come last part first, ordinals counting down to 1, each carrying the
 * checksum of the short entry that follows them. */
struct fat_lfn {
    uint16_t u[FAT_LFN_MAX_ENTRIES * FAT_LDIR_CHARS];
    unsigned parts;           /* entries of the name; 0: none */
    unsigned next;            /* ordinal expected next; 0: complete */
    uint8_t sum;
};

static void fat_lfn_add(struct fat_lfn *l, const uint8_t *e)
{
    unsigned ord = e[FAT_LDIR_ORD] & FAT_LDIR_ORD_MASK;
    if (e[FAT_LDIR_ORD] & FAT_LAST_LONG) {
        l->parts = 0;
        if (ord < 1 || ord > FAT_LFN_MAX_ENTRIES)
            return;
        l->parts = ord;
        l->next = ord;
        l->sum = e[FAT_LDIR_CHKSUM];
    } else if (!l->parts || ord != l->next || ord == 0 ||
               e[FAT_LDIR_CHKSUM] != l->sum) {
        l->parts = 0;   /* out of sequence: forget the long name */
        return;
    }
    static const uint8_t at[FAT_LDIR_CHARS] = {
        FAT_LDIR_NAME1, FAT_LDIR_NAME1 + 2, FAT_LDIR_NAME1 + 4,
        FAT_LDIR_NAME1 + 6, FAT_LDIR_NAME1 + 8,
        FAT_LDIR_NAME2, FAT_LDIR_NAME2 + 2, FAT_LDIR_NAME2 + 4,
        FAT_LDIR_NAME2 + 6, FAT_LDIR_NAME2 + 8, FAT_LDIR_NAME2 + 10,
        FAT_LDIR_NAME3, FAT_LDIR_NAME3 + 2,
    };
    uint16_t *dst = l->u + (ord - 1) * FAT_LDIR_CHARS;
    for (unsigned i = 0; i < FAT_LDIR_CHARS; i++)
        dst[i] = gle16(e + at[i]);
    l->next = ord - 1;
}

/* The collected long name as UTF-8 into out (FAT_NAME_MAX bytes), when
 * it is complete and belongs to the short entry e; else false. */
static bool fat_lfn_get(const struct fat_lfn *l, const uint8_t *e, char *out)
{
    if (!l->parts || l->next != 0 || fat_lfn_sum(e) != l->sum)
        return false;
    size_t n = l->parts * FAT_LDIR_CHARS, o = 0;
    for (size_t i = 0; i < n && l->u[i]; i++) {
        uint32_t c = l->u[i];
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < n &&
            l->u[i + 1] >= 0xdc00 && l->u[i + 1] < 0xe000) {
            c = 0x10000 + ((c - 0xd800) << 10) + (l->u[i + 1] - 0xdc00);
            i++;
        } else if (c >= 0xd800 && c < 0xe000) {
            c = '?';   /* a lone surrogate */
        }
        /* 260 units give at most 780 bytes: out has room */
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | c >> 18);
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = 0;
    return o > 0;
}

/* ---- directories ---- */

struct fat_found {
    bool is_dir;
    uint32_t clus;            /* first cluster */
    uint32_t size;            /* bytes */
    bool dotdot;              /* the ".." entry */
};

/* Look for name (len bytes) in the directory starting at cluster clus
 * (0: the FAT12/16 fixed root).  dir names the directory in errors.
 * 1 found (*f filled), 0 not there, -1 error. */
static int fat_dir_find(struct fat_vol *v, uint32_t clus, const char *dir,
                        const char *name, size_t len, struct fat_found *f,
                        vf_error **errp)
{
    uint8_t *buf = malloc(v->clus_bytes);
    struct fat_lfn *lfn = calloc(1, sizeof(*lfn));
    char *lname = malloc(FAT_NAME_MAX);
    int ret = -1;
    if (!buf || !lfn || !lname) {
        error_setg(errp, "out of memory");
        goto out;
    }
    const uint32_t first = clus;
    uint64_t fixed_left = (uint64_t)v->root_ents * FAT_DIRENT_SIZE;
    uint64_t fixed_off = v->root_off;
    uint32_t entries = 0;
    /* loop detection (Brent): compare with a cluster saved at each
     * power-of-two step; the step count is bounded by nclus anyway */
    uint32_t steps = 0, mark = clus, power = 1;
    for (;;) {
        size_t chunk;
        if (first == 0) {
            if (fixed_left == 0) {
                ret = 0;
                goto out;
            }
            chunk = fixed_left < v->clus_bytes ? (size_t)fixed_left
                                                : v->clus_bytes;
            if (gdev_pread(v->d, buf, fixed_off, chunk, errp) < 0)
                goto out;
            fixed_off += chunk;
            fixed_left -= chunk;
        } else {
            if (clus < 2 || clus - 2 >= v->nclus) {
                error_setg(errp, "directory %s: cluster %" PRIu32
                           " beyond the volume's %" PRIu32 " clusters", dir,
                           clus, v->nclus);
                goto out;
            }
            chunk = v->clus_bytes;
            if (gdev_pread(v->d, buf,
                           v->data_off + (uint64_t)(clus - 2) * chunk,
                           chunk, errp) < 0)
                goto out;
        }
        for (size_t o = 0; o + FAT_DIRENT_SIZE <= chunk;
             o += FAT_DIRENT_SIZE) {
            const uint8_t *e = buf + o;
            if (++entries > FAT_DIR_MAX_ENTRIES) {
                error_setg(errp, "directory %s: more than %u entries", dir,
                           FAT_DIR_MAX_ENTRIES);
                goto out;
            }
            if (e[FAT_DIR_NAME] == FAT_NAME_END) {
                ret = 0;   /* no entry follows (section 6) */
                goto out;
            }
            if (e[FAT_DIR_NAME] == FAT_NAME_FREE) {
                lfn->parts = 0;
                continue;
            }
            uint8_t attr = e[FAT_DIR_ATTR];
            if ((attr & FAT_ATTR_LONG_MASK) == FAT_ATTR_LONG_NAME) {
                fat_lfn_add(lfn, e);
                continue;
            }
            if (attr & FAT_ATTR_VOLUME_ID) {
                lfn->parts = 0;
                continue;
            }
            char sname[16];
            fat_short_name(e, sname);
            bool hit = fat_name_eq(name, len, sname);
            if (!hit && fat_lfn_get(lfn, e, lname))
                hit = fat_name_eq(name, len, lname);
            lfn->parts = 0;
            if (!hit)
                continue;
            f->is_dir = (attr & FAT_ATTR_DIRECTORY) != 0;
            f->clus = gle16(e + FAT_DIR_FST_CLUS_LO);
            if (v->bits == 32)   /* FAT12/16 keep the high word 0 */
                f->clus |= (uint32_t)gle16(e + FAT_DIR_FST_CLUS_HI) << 16;
            f->size = gle32(e + FAT_DIR_FILE_SIZE);
            f->dotdot = !strcmp(sname, "..");
            ret = 1;
            goto out;
        }
        if (first == 0)
            continue;
        uint32_t next;
        if (fat_entry(v, clus, &next, errp) < 0)
            goto out;
        uint32_t mask = fat_mask(v);
        if (next >= mask - 7) {
            ret = 0;   /* end of chain */
            goto out;
        }
        if (next == mask - 8) {
            error_setg(errp, "directory %s: bad cluster after cluster %" PRIu32
                       " in its chain", dir, clus);
            goto out;
        }
        if (next < 2 || next - 2 >= v->nclus) {
            error_setg(errp, "directory %s: cluster %" PRIu32 " (after %"
                       PRIu32 ") beyond the volume's %" PRIu32 " clusters",
                       dir, next, clus, v->nclus);
            goto out;
        }
        if (next == mark) {
            error_setg(errp, "directory %s: cluster chain loops at cluster %"
                       PRIu32, dir, next);
            goto out;
        }
        if (++steps >= v->nclus) {
            error_setg(errp, "directory %s: cluster chain longer than the "
                       "volume's %" PRIu32 " clusters", dir, v->nclus);
            goto out;
        }
        if (steps == power) {
            mark = next;
            power = power <= UINT32_MAX / 2 ? power * 2 : UINT32_MAX;
        }
        clus = next;
    }
out:
    free(lname);
    free(lfn);
    free(buf);
    return ret;
}

int fat_stat(struct gdev *d, const char *path, bool *is_dir, uint64_t *size,
             vf_error **errp)
{
    struct fat_vol *v = malloc(sizeof(*v));
    char *dir = malloc(FAT_NAME_MAX);
    int ret = -1;
    if (!v || !dir) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (fat_mount(v, d, errp) < 0)
        goto out;
    struct fat_found cur = { .is_dir = true,
                             .clus = v->bits == 32 ? v->root_clus : 0 };
    size_t dl = 0;
    dir[0] = 0;
    for (const char *p = path; ; ) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, "/");
        if (!cur.is_dir) {
            ret = 0;   /* a file where a directory is wanted */
            goto out;
        }
        if (n >= FAT_NAME_MAX || dl + 1 + n >= FAT_NAME_MAX) {
            ret = 0;   /* longer than any FAT name */
            goto out;
        }
        struct fat_found f = { 0 };
        int r = fat_dir_find(v, cur.clus, dl ? dir : "/", p, n, &f, errp);
        if (r <= 0) {
            ret = r;
            goto out;
        }
        dir[dl++] = '/';
        memcpy(dir + dl, p, n);
        dl += n;
        dir[dl] = 0;
        if (f.is_dir && f.clus == 0) {
            if (!f.dotdot) {
                error_setg(errp, "directory %s at cluster 0", dir);
                goto out;
            }
            /* ".." of a directory in the root (section 6) */
            f.clus = v->bits == 32 ? v->root_clus : 0;
        }
        cur = f;
        p += n;
    }
    if (is_dir)
        *is_dir = cur.is_dir;
    if (size)
        *size = cur.is_dir ? 0 : cur.size;
    ret = 1;
out:
    free(dir);
    free(v);
    return ret;
}
