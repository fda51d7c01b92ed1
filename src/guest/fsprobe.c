/*
 * fsprobe.c: what a block device holds, from its magic numbers: file
 * systems (ext2/3/4, xfs, btrfs, ntfs, vfat, exfat, swap, iso9660, jfs,
 * squashfs, f2fs, reiserfs) and containers (LVM2 PV, MD RAID member,
 * LUKS 1/2, BitLocker), with label, UUID and size.
 *
 * Offsets are those util-linux libblkid checks (libblkid/src/superblocks/
 * *.c) and the filesystems' own headers: ext superblock at 1024 (Linux
 * Documentation/filesystems/ext4/super.rst), XFS sb at 0 (big-endian),
 * btrfs at 64 KiB, swap's "SWAPSPACE2" at page size - 10, ISO 9660's
 * "CD001" at 32769, MD 1.x at 0 / 4096 and 0.90 at the end.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ondisk.h"

/* How much of a device's head the probes look at: btrfs' superblock
 * ends below 0x11000. */
#define PROBE_HEAD 0x11000
#define MD_MAGIC 0xa92b4efcu

static void copy_label(char *out, size_t olen, const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && p[i]; i++)
        if (o + 1 < olen)
            out[o++] = isprint(p[i]) || p[i] >= 0x80 ? (char)p[i] : '?';
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = 0;
}

static void uuid_fmt(char *out, size_t olen, const uint8_t *u)
{
    snprintf(out, olen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
             u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

static bool at(const uint8_t *buf, size_t len, size_t off, const char *m,
               size_t mlen)
{
    return off <= len && mlen <= len - off && !memcmp(buf + off, m, mlen);
}

static const char *ext_kind(const uint8_t *sb)
{
    uint32_t compat = gle32(sb + 92), incompat = gle32(sb + 96),
             ro = gle32(sb + 100);
    if ((incompat & ~0x3u) || (ro & ~0x3u))  /* beyond filetype/recover,
                                                sparse_super/large_file */
        return "ext4";
    if (compat & 0x4)
        return "ext3";
    return "ext2";
}

const char *fsprobe_buf(const uint8_t *buf, size_t len, uint64_t dev_size,
                        char *uuid, size_t ulen, char *label, size_t llen)
{
    uuid[0] = label[0] = 0;
    if (at(buf, len, 0, "LUKS\xba\xbe", 6) && len >= 208) {
        copy_label(uuid, ulen, buf + 168, 40);
        return gbe16(buf + 6) == 2 ? "crypto_LUKS2" : "crypto_LUKS";
    }
    for (int s = 0; s < 4; s++) {
        size_t o = (size_t)s * 512;
        if (at(buf, len, o, "LABELONE", 8) && at(buf, len, o + 24, "LVM2 001", 8)) {
            uint32_t ph = gle32(buf + o + 20);
            if (ph < 512 && ph + 32 <= 512)
                copy_label(uuid, ulen, buf + o + ph, 32);
            return "LVM2_member";
        }
    }
    for (size_t o = 0; o <= 4096; o += 4096) {
        if (len >= o + 256 && gle32(buf + o) == MD_MAGIC &&
            gle32(buf + o + 4) == 1) {
            uuid_fmt(uuid, ulen, buf + o + 16);
            copy_label(label, llen, buf + o + 32, 32);
            return "linux_raid_member";
        }
    }
    if (at(buf, len, 3, "-FVE-FS-", 8))
        return "BitLocker";
    if (at(buf, len, 0x10040, "_BHRfS_M", 8)) {
        uuid_fmt(uuid, ulen, buf + 0x10020);
        copy_label(label, llen, buf + 0x1012b, 256);
        return "btrfs";
    }
    if (len >= 2048 && gle16(buf + 1024 + 56) == 0xef53) {
        const uint8_t *sb = buf + 1024;
        uuid_fmt(uuid, ulen, sb + 104);
        copy_label(label, llen, sb + 120, 16);
        return ext_kind(sb);
    }
    if (at(buf, len, 0, "XFSB", 4) && len >= 120) {
        uuid_fmt(uuid, ulen, buf + 32);
        copy_label(label, llen, buf + 108, 12);
        return "xfs";
    }
    if (at(buf, len, 3, "NTFS    ", 8) && len >= 0x50) {
        snprintf(uuid, ulen, "%016" PRIX64, gle64(buf + 0x48));
        return "ntfs";
    }
    if (at(buf, len, 3, "EXFAT   ", 8) && len >= 104) {
        uint32_t v = gle32(buf + 100);
        snprintf(uuid, ulen, "%04X-%04X", v >> 16, v & 0xffff);
        return "exfat";
    }
    if (len >= 512 && buf[510] == 0x55 && buf[511] == 0xaa) {
        if (at(buf, len, 82, "FAT32   ", 8)) {
            uint32_t v = gle32(buf + 67);
            snprintf(uuid, ulen, "%04X-%04X", v >> 16, v & 0xffff);
            copy_label(label, llen, buf + 71, 11);
            if (!strcmp(label, "NO NAME"))
                label[0] = 0;
            return "vfat";
        }
        if (at(buf, len, 54, "FAT1", 4)) {
            uint32_t v = gle32(buf + 39);
            snprintf(uuid, ulen, "%04X-%04X", v >> 16, v & 0xffff);
            copy_label(label, llen, buf + 43, 11);
            if (!strcmp(label, "NO NAME"))
                label[0] = 0;
            return "vfat";
        }
    }
    static const size_t pages[] = { 4096, 8192, 16384, 65536 };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        if (at(buf, len, pages[i] - 10, "SWAPSPACE2", 10) ||
            at(buf, len, pages[i] - 10, "SWAP-SPACE", 10)) {
            if (len >= 1024 + 44) {
                uuid_fmt(uuid, ulen, buf + 1024 + 12);
                copy_label(label, llen, buf + 1024 + 28, 16);
            }
            return "swap";
        }
    }
    if (at(buf, len, 0x8001, "CD001", 5) && len >= 0x8048) {
        copy_label(label, llen, buf + 0x8028, 32);
        return "iso9660";
    }
    if (at(buf, len, 0x8000, "JFS1", 4)) {
        copy_label(label, llen, buf + 0x8000 + 101, 16);
        return "jfs";
    }
    if (at(buf, len, 0, "hsqs", 4))
        return "squashfs";
    if (len >= 1028 && gle32(buf + 1024) == 0xf2f52010)
        return "f2fs";
    if (at(buf, len, 0x10034, "ReIsEr2Fs", 9) ||
        at(buf, len, 0x10034, "ReIsEr3Fs", 9) ||
        at(buf, len, 0x10034, "ReIsErFs", 8))
        return "reiserfs";
    (void)dev_size;
    return "";
}

static const struct {
    int word;   /* 0 compat, 1 incompat, 2 ro_compat */
    uint32_t bit;
    const char *name;
} ext_features[] = {
    { 0, 0x4, "has_journal" }, { 0, 0x8, "ext_attr" },
    { 0, 0x10, "resize_inode" }, { 0, 0x20, "dir_index" },
    { 0, 0x200, "sparse_super2" }, { 0, 0x1000, "orphan_file" },
    { 1, 0x2, "filetype" }, { 1, 0x4, "needs_recovery" },
    { 1, 0x8, "journal_dev" }, { 1, 0x10, "meta_bg" },
    { 1, 0x40, "extent" }, { 1, 0x80, "64bit" }, { 1, 0x100, "mmp" },
    { 1, 0x200, "flex_bg" }, { 1, 0x400, "ea_inode" },
    { 1, 0x2000, "metadata_csum_seed" }, { 1, 0x4000, "large_dir" },
    { 1, 0x8000, "inline_data" }, { 1, 0x10000, "encrypt" },
    { 1, 0x20000, "casefold" },
    { 2, 0x1, "sparse_super" }, { 2, 0x2, "large_file" },
    { 2, 0x8, "huge_file" }, { 2, 0x10, "uninit_bg" },
    { 2, 0x20, "dir_nlink" }, { 2, 0x40, "extra_isize" },
    { 2, 0x100, "quota" }, { 2, 0x200, "bigalloc" },
    { 2, 0x400, "metadata_csum" }, { 2, 0x1000, "read-only" },
    { 2, 0x2000, "project" }, { 2, 0x8000, "verity" },
    { 2, 0x10000, "orphan_present" },
};

static void ext_facts(const uint8_t *sb, struct json_object *o)
{
    uint32_t w[3] = { gle32(sb + 92), gle32(sb + 96), gle32(sb + 100) };
    struct json_object *f = json_object_new_array();
    for (size_t i = 0; i < sizeof(ext_features) / sizeof(ext_features[0]); i++)
        if (w[ext_features[i].word] & ext_features[i].bit)
            json_object_array_add(f, jstr(ext_features[i].name));
    json_object_object_add(o, "features", f);
    uint16_t state = gle16(sb + 58);
    const char *st = "not clean";
    if (w[1] & 0x4)
        st = "needs journal recovery";
    else if (state & 2)
        st = "errors";
    else if (state & 1)
        st = "clean";
    jset_str(o, "state", st);
    jset_bool(o, "needs-recovery", (w[1] & 0x4) != 0);
    jset_int(o, "mount-count", gle16(sb + 52));
    jset_int(o, "max-mount-count", (int16_t)gle16(sb + 54));
    uint32_t lbs = gle32(sb + 24);
    jset_int(o, "block-size", lbs < 7 ? 1024 << lbs : 0);
    char lm[72];
    copy_label(lm, sizeof(lm), sb + 136, 64);
    jset_str(o, "last-mounted", lm);
}

struct json_object *fsprobe(struct gdev *d)
{
    size_t len = d->size < PROBE_HEAD ? (size_t)d->size : PROBE_HEAD;
    uint8_t *buf = calloc(1, PROBE_HEAD);
    vf_error *err = NULL;
    if (!buf)
        return NULL;
    if (len < 512 || gdev_pread(d, buf, 0, len, &err) < 0) {
        error_free(err);
        free(buf);
        return NULL;
    }
    const char *t = fsprobe_buf(buf, len, d->size, d->uuid, sizeof(d->uuid),
                                d->label, sizeof(d->label));
    /* MD 0.90 / 1.0 superblocks sit near the end. */
    if (!*t && d->size >= 128 * 1024) {
        uint8_t s[256];
        uint64_t o90 = (d->size & ~(uint64_t)0xffff) - 0x10000;
        uint64_t o10 = ((d->size - 8192) & ~(uint64_t)4095);
        if (gdev_pread(d, s, o90, sizeof(s), &err) == 0 &&
            gle32(s) == MD_MAGIC && gle32(s + 4) == 0) {
            t = "linux_raid_member";
            snprintf(d->uuid, sizeof(d->uuid), "%08x:%08x:%08x:%08x",
                     gle32(s + 20), gle32(s + 0x94), gle32(s + 0x98),
                     gle32(s + 0x9c));
            /* 0.90: data from 0 up to the superblock */
            d->md_level = (int32_t)gle32(s + 28);
            d->md_off = 0;
            d->md_size = o90;
        } else if (error_free(err), err = NULL,
                   gdev_pread(d, s, o10, sizeof(s), &err) == 0 &&
                   gle32(s) == MD_MAGIC && gle32(s + 4) == 1) {
            t = "linux_raid_member";
            uuid_fmt(d->uuid, sizeof(d->uuid), s + 16);
            copy_label(d->label, sizeof(d->label), s + 32, 32);
            d->md_level = (int32_t)gle32(s + 72);
            d->md_off = gle64(s + 128) * 512;
            d->md_size = gle64(s + 136) * 512;
        }
        error_free(err);
    }
    if (!*t) {
        free(buf);
        return NULL;
    }
    snprintf(d->fstype, sizeof(d->fstype), "%s", t);
    struct json_object *o = json_object_new_object();
    jset_str(o, "device", d->name);
    jset_str(o, "type", t);
    jset_str(o, "label", d->label);
    jset_str(o, "uuid", d->uuid);
    jset_int(o, "size", (int64_t)d->size);
    if (!strncmp(t, "crypto_LUKS", 11) || !strcmp(t, "BitLocker")) {
        d->encrypted = true;
        jset_bool(o, "encrypted", true);
    }
    if (!strcmp(t, "LVM2_member") || !strcmp(t, "linux_raid_member"))
        d->container = true;
    if (!strncmp(t, "ext", 3))
        ext_facts(buf + 1024, o);
    if (!strcmp(t, "linux_raid_member") && len >= 4096 + 256) {
        for (size_t off = 0; off <= 4096; off += 4096) {
            if (gle32(buf + off) == MD_MAGIC && gle32(buf + off + 4) == 1) {
                int32_t level = (int32_t)gle32(buf + off + 72);
                d->md_level = level;
                /* data_offset and data_size are in 512-byte sectors */
                d->md_off = gle64(buf + off + 128) * 512;
                d->md_size = gle64(buf + off + 136) * 512;
                jset_int(o, "raid-level", level);
                jset_int(o, "raid-disks", gle32(buf + off + 92));
                jset_int(o, "data-offset", (int64_t)(gle64(buf + off + 128) * 512));
                jset_str(o, "md-version", off ? "1.2" : "1.1");
            }
        }
    }
    free(buf);
    return o;
}
