/*
 * part.c: partition tables: MBR (with the extended/logical chain), GPT
 * (CRC32 of header and entry array, backup header recovery) and hybrid
 * MBR.
 *
 * Specs: UEFI Specification 2.10, section 5 (GPT disk layout: header at
 * LBA 1, backup at the last LBA, CRC32 as zlib's crc32); the classic PC
 * MBR and EBR layout (16-byte entries at 446, 0x55AA at 510; logical
 * partitions addressed relative to their EBR, the next EBR relative to
 * the extended partition's start), as util-linux libfdisk reads them.
 * Sector size: 512, or 4096 when the GPT header is found there.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "guest/guest.h"
#include "guest/ondisk.h"

#define MBR_SIG_OFF 510
#define MBR_PART_OFF 446
#define GPT_HDR_SIG 0
#define GPT_HDR_REV 8
#define GPT_HDR_SIZE 12
#define GPT_HDR_CRC 16
#define GPT_HDR_MY_LBA 24
#define GPT_HDR_ALT_LBA 32
#define GPT_HDR_FIRST 40
#define GPT_HDR_LAST 48
#define GPT_HDR_GUID 56
#define GPT_HDR_ENT_LBA 72
#define GPT_HDR_NENT 80
#define GPT_HDR_ENT_SIZE 84
#define GPT_HDR_ENT_CRC 88

/* The spec's minimum array is 16 KiB (128 x 128 bytes); tools never make
 * more than a few thousand entries.  4096 entries of at most 4096 bytes
 * keep the array under 16 MiB even for odd entry sizes. */
#define GPT_MAX_ENTRIES 4096
#define GPT_MAX_ENT_SIZE 4096
/* A logical-partition chain longer than this is a loop or hostile;
 * Linux itself stops far earlier in practice. */
#define MBR_MAX_LOGICAL 128

struct ptype {
    const char *id;
    const char *name;
};

static const struct ptype gpt_types[] = {
    { "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
    { "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
    { "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
    { "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)" },
    { "44479540-F297-41B2-9AF7-D131D5F0458A", "Linux root (x86)" },
    { "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (ARM-64)" },
    { "BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot" },
    { "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
    { "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM" },
    { "A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID" },
    { "CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS" },
    { "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home" },
    { "3B8F8425-20E0-4F3B-907F-1A25A76F98E8", "Linux server data" },
    { "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
    { "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved" },
    { "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery environment" },
    { "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", "Windows LDM metadata" },
    { "AF9B60A0-1431-4F62-BC68-3311714A69AD", "Windows LDM data" },
    { "6A898CC3-1DD2-11B2-99A6-080020736631", "Solaris /usr & Apple ZFS" },
    { "48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS/HFS+" },
    { "516E7CB4-6ECF-11D6-8FF8-00022D09712B", "FreeBSD data" },
    { NULL, NULL },
};

static const struct {
    uint8_t t;
    const char *name;
} mbr_types[] = {
    { 0x01, "FAT12" }, { 0x04, "FAT16 <32M" }, { 0x05, "Extended" },
    { 0x06, "FAT16" }, { 0x07, "HPFS/NTFS/exFAT" }, { 0x0b, "W95 FAT32" },
    { 0x0c, "W95 FAT32 (LBA)" }, { 0x0e, "W95 FAT16 (LBA)" },
    { 0x0f, "W95 Ext'd (LBA)" }, { 0x11, "Hidden FAT12" },
    { 0x27, "Hidden NTFS WinRE" }, { 0x42, "SFS / Windows dynamic" },
    { 0x82, "Linux swap / Solaris" }, { 0x83, "Linux" },
    { 0x85, "Linux extended" }, { 0x8e, "Linux LVM" },
    { 0xa5, "FreeBSD" }, { 0xa6, "OpenBSD" }, { 0xa9, "NetBSD" },
    { 0xee, "GPT" }, { 0xef, "EFI (FAT-12/16/32)" },
    { 0xfd, "Linux raid autodetect" }, { 0, NULL },
};

static const char *mbr_type_name(uint8_t t)
{
    for (int i = 0; mbr_types[i].name; i++)
        if (mbr_types[i].t == t)
            return mbr_types[i].name;
    return "unknown";
}

static const char *gpt_type_name(const char *guid)
{
    for (int i = 0; gpt_types[i].id; i++)
        if (!strcmp(gpt_types[i].id, guid))
            return gpt_types[i].name;
    return "unknown";
}

static bool is_extended(uint8_t t)
{
    return t == 0x05 || t == 0x0f || t == 0x85;
}

/* The disk name plus partition number: sda1, nvme0n1p1 style not needed:
 * we always name disks /dev/sdX. */
static void part_name(char *out, const char *disk, int n)
{
    if (snprintf(out, GDEV_NAME_MAX, "%s%d", disk, n) >= GDEV_NAME_MAX)
        out[0] = 0;
}

static struct gdev *part_new(struct inspect *in, struct gdev *disk,
                             int dn, int num, uint64_t start, uint64_t size)
{
    struct gdev *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    part_name(p->name, disk->name, num);
    p->blk = disk->blk;
    p->base = disk->base + start;
    p->size = size;
    p->disk = dn;
    p->partnum = num;
    return inspect_add_dev(in, p);
}

static struct json_object *part_json(struct gdev *p, uint64_t start,
                                     const char *tname)
{
    struct json_object *o = json_object_new_object();
    jset_str(o, "device", p->name);
    jset_int(o, "number", p->partnum);
    jset_int(o, "start", (int64_t)start);
    jset_int(o, "size", (int64_t)p->size);
    jset_str(o, "type", p->part_type);
    jset_str(o, "type-name", tname);
    return o;
}

/* Clip [start, start+size) to the disk; false (with a warning) when the
 * partition starts beyond it. */
static bool clip(struct inspect *in, struct gdev *disk, const char *what,
                 uint64_t *start, uint64_t *size)
{
    if (*start >= disk->size) {
        inspect_warn(in, "%s: %s starts at byte %" PRIu64
                     " beyond the disk's end (%" PRIu64 ")", disk->name,
                     what, *start, disk->size);
        return false;
    }
    if (*size > disk->size - *start) {
        inspect_warn(in, "%s: %s extends beyond the disk's end; clipped",
                     disk->name, what);
        *size = disk->size - *start;
    }
    return true;
}

static void mbr_logical(struct inspect *in, struct gdev *disk, int dn,
                        uint64_t ext_start, uint64_t ext_size,
                        uint32_t disk_sig, struct json_object *parts)
{
    uint64_t ebr = ext_start;
    int num = 5;
    for (int i = 0; i < MBR_MAX_LOGICAL; i++) {
        uint8_t s[512];
        vf_error *err = NULL;
        if (ebr > disk->size - 512 || gdev_pread(disk, s, ebr, 512, &err) < 0) {
            inspect_warn(in, "%s: extended boot record at byte %" PRIu64
                         " unreadable", disk->name, ebr);
            error_free(err);
            return;
        }
        if (s[MBR_SIG_OFF] != 0x55 || s[MBR_SIG_OFF + 1] != 0xaa) {
            inspect_warn(in, "%s: extended boot record at byte %" PRIu64
                         " has no 0x55aa signature", disk->name, ebr);
            return;
        }
        const uint8_t *e0 = s + MBR_PART_OFF, *e1 = e0 + 16;
        uint8_t t = e0[4];
        uint64_t st = (uint64_t)gle32(e0 + 8) * 512, sz = (uint64_t)gle32(e0 + 12) * 512;
        if (t && sz) {
            uint64_t abs = ebr + st;
            char what[32];
            snprintf(what, sizeof(what), "partition %d", num);
            if (clip(in, disk, what, &abs, &sz)) {
                struct gdev *p = part_new(in, disk, dn, num, abs, sz);
                if (!p)
                    return;
                snprintf(p->part_type, sizeof(p->part_type), "0x%02x", t);
                snprintf(p->partuuid, sizeof(p->partuuid), "%08x-%02x",
                         disk_sig, num);
                p->bootable = e0[0] == 0x80;
                struct json_object *o = part_json(p, abs, mbr_type_name(t));
                jset_bool(o, "bootable", p->bootable);
                jset_bool(o, "logical", true);
                jset_str(o, "partuuid", p->partuuid);
                json_object_array_add(parts, o);
            }
            num++;
        }
        uint64_t next = (uint64_t)gle32(e1 + 8) * 512;
        if (!is_extended(e1[4]) || next == 0)
            return;
        if (next >= ext_size) {
            inspect_warn(in, "%s: next extended boot record beyond the "
                         "extended partition", disk->name);
            return;
        }
        if (ext_start + next == ebr) {
            inspect_warn(in, "%s: extended boot record chain loops",
                         disk->name);
            return;
        }
        ebr = ext_start + next;
    }
    inspect_warn(in, "%s: more than %d logical partitions; rest ignored",
                 disk->name, MBR_MAX_LOGICAL);
}

static void mbr_scan(struct inspect *in, struct gdev *disk, int dn,
                     const uint8_t *s, struct json_object *tab,
                     struct json_object *parts)
{
    uint32_t sig = gle32(s + 440);
    char sigs[16];
    snprintf(sigs, sizeof(sigs), "0x%08x", sig);
    jset_str(tab, "disk-signature", sigs);
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = s + MBR_PART_OFF + 16 * i;
        uint8_t t = e[4];
        uint64_t st = (uint64_t)gle32(e + 8) * 512, sz = (uint64_t)gle32(e + 12) * 512;
        if (!t || !sz)
            continue;
        char what[32];
        snprintf(what, sizeof(what), "partition %d", i + 1);
        if (!clip(in, disk, what, &st, &sz))
            continue;
        struct gdev *p = part_new(in, disk, dn, i + 1, st, sz);
        if (!p)
            return;
        snprintf(p->part_type, sizeof(p->part_type), "0x%02x", t);
        snprintf(p->partuuid, sizeof(p->partuuid), "%08x-%02x", sig, i + 1);
        p->bootable = e[0] == 0x80;
        p->esp = t == 0xef;
        struct json_object *o = part_json(p, st, mbr_type_name(t));
        jset_bool(o, "bootable", p->bootable);
        jset_str(o, "partuuid", p->partuuid);
        json_object_array_add(parts, o);
        if (is_extended(t)) {
            p->container = true;
            mbr_logical(in, disk, dn, st, sz, sig, parts);
        }
    }
}

/* UTF-16LE GPT name to UTF-8 (BMP only; surrogates become '?'). */
static void utf16_name(const uint8_t *p, size_t nchars, char *out,
                       size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < nchars; i++) {
        unsigned c = gle16(p + 2 * i);
        if (!c)
            break;
        if (c >= 0xd800 && c < 0xe000)
            c = '?';
        if (c < 0x80) {
            if (o + 1 >= len)
                break;
            out[o++] = (char)c;
        } else if (c < 0x800) {
            if (o + 2 >= len)
                break;
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            if (o + 3 >= len)
                break;
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = 0;
}

struct gpt_hdr {
    uint64_t my_lba, alt_lba, first, last, ent_lba;
    uint32_t nent, ent_size, ent_crc;
    uint8_t guid[16];
};

/* Read and validate the GPT header at lba; on success fill h.  why gets
 * a short reason on failure. */
static bool gpt_read_hdr(struct gdev *disk, uint32_t ss, uint64_t lba,
                         struct gpt_hdr *h, char *why, size_t wlen)
{
    uint8_t s[4096];
    vf_error *err = NULL;
    if (lba > (disk->size - ss) / ss ||
        gdev_pread(disk, s, lba * ss, ss, &err) < 0) {
        error_free(err);
        snprintf(why, wlen, "header at LBA %" PRIu64 " unreadable", lba);
        return false;
    }
    if (memcmp(s, "EFI PART", 8)) {
        snprintf(why, wlen, "no signature at LBA %" PRIu64, lba);
        return false;
    }
    uint32_t hs = gle32(s + GPT_HDR_SIZE);
    if (hs < 92 || hs > ss) {
        snprintf(why, wlen, "header size %u invalid", hs);
        return false;
    }
    uint32_t crc = gle32(s + GPT_HDR_CRC);
    memset(s + GPT_HDR_CRC, 0, 4);
    uint32_t calc = (uint32_t)crc32(0, s, hs);
    if (crc != calc) {
        snprintf(why, wlen, "header CRC 0x%08x does not match 0x%08x", crc,
                 calc);
        return false;
    }
    h->my_lba = gle64(s + GPT_HDR_MY_LBA);
    h->alt_lba = gle64(s + GPT_HDR_ALT_LBA);
    h->first = gle64(s + GPT_HDR_FIRST);
    h->last = gle64(s + GPT_HDR_LAST);
    h->ent_lba = gle64(s + GPT_HDR_ENT_LBA);
    h->nent = gle32(s + GPT_HDR_NENT);
    h->ent_size = gle32(s + GPT_HDR_ENT_SIZE);
    h->ent_crc = gle32(s + GPT_HDR_ENT_CRC);
    memcpy(h->guid, s + GPT_HDR_GUID, 16);
    if (h->my_lba != lba) {
        snprintf(why, wlen, "header claims LBA %" PRIu64 " but sits at %"
                 PRIu64, h->my_lba, lba);
        return false;
    }
    if (h->nent > GPT_MAX_ENTRIES) {
        snprintf(why, wlen, "entry count %u too large (limit %d)", h->nent,
                 GPT_MAX_ENTRIES);
        return false;
    }
    if (h->ent_size < 128 || h->ent_size > GPT_MAX_ENT_SIZE ||
        h->ent_size % 8) {
        snprintf(why, wlen, "entry size %u invalid", h->ent_size);
        return false;
    }
    return true;
}

/* Read the entry array of h (malloc'd) and check its CRC. */
static uint8_t *gpt_read_entries(struct gdev *disk, uint32_t ss,
                                 const struct gpt_hdr *h, char *why,
                                 size_t wlen)
{
    size_t len = (size_t)h->nent * h->ent_size;  /* <= 16 MiB, see caps */
    if (h->ent_lba > disk->size / ss ||
        len > disk->size - h->ent_lba * ss) {
        snprintf(why, wlen, "entry array at LBA %" PRIu64
                 " beyond the disk's end", h->ent_lba);
        return NULL;
    }
    uint8_t *a = malloc(len ? len : 1);
    vf_error *err = NULL;
    if (!a) {
        snprintf(why, wlen, "out of memory");
        return NULL;
    }
    if (gdev_pread(disk, a, h->ent_lba * ss, len, &err) < 0) {
        error_free(err);
        free(a);
        snprintf(why, wlen, "entry array unreadable");
        return NULL;
    }
    uint32_t calc = (uint32_t)crc32(0, a, (uInt)len);
    if (calc != h->ent_crc) {
        snprintf(why, wlen, "entry array CRC 0x%08x does not match 0x%08x",
                 h->ent_crc, calc);
        free(a);
        return NULL;
    }
    return a;
}

static bool gpt_scan(struct inspect *in, struct gdev *disk, int dn,
                     uint32_t ss, struct json_object *tab,
                     struct json_object *parts)
{
    struct gpt_hdr h, bh;
    char why[160], bwhy[160];
    uint8_t *ents = NULL, *bents = NULL;
    bool pok = gpt_read_hdr(disk, ss, 1, &h, why, sizeof(why));
    if (pok && !(ents = gpt_read_entries(disk, ss, &h, why, sizeof(why))))
        pok = false;
    uint64_t last = disk->size / ss - 1;
    uint64_t blba = pok && h.alt_lba <= last ? h.alt_lba : last;
    bool bok = gpt_read_hdr(disk, ss, blba, &bh, bwhy, sizeof(bwhy));
    if (!bok && blba != last)
        bok = gpt_read_hdr(disk, ss, blba = last, &bh, bwhy, sizeof(bwhy));
    if (bok && !(bents = gpt_read_entries(disk, ss, &bh, bwhy, sizeof(bwhy))))
        bok = false;
    if (!pok && !bok) {
        free(ents);
        free(bents);
        if (!strncmp(why, "no signature", 12))
            return false;
        inspect_warn(in, "%s: GPT primary %s; backup %s", disk->name, why,
                     bwhy);
        jset_str(tab, "type", "gpt");
        jset_str(tab, "error", why);
        jset_bool(tab, "primary-ok", false);
        jset_bool(tab, "backup-ok", false);
        return true;
    }
    jset_str(tab, "type", "gpt");
    jset_int(tab, "sector-size", ss);
    jset_bool(tab, "primary-ok", pok);
    jset_bool(tab, "backup-ok", bok);
    if (!pok) {
        inspect_warn(in, "%s: GPT primary %s; recovered from the backup "
                     "header at LBA %" PRIu64, disk->name, why, blba);
        jset_str(tab, "primary-error", why);
        jset_bool(tab, "recovered-from-backup", true);
    } else if (!bok) {
        inspect_warn(in, "%s: GPT backup %s", disk->name, bwhy);
        jset_str(tab, "backup-error", bwhy);
    }
    const struct gpt_hdr *u = pok ? &h : &bh;
    uint8_t *a = pok ? ents : bents;
    char g[40];
    guid_to_str(u->guid, g);
    jset_str(tab, "disk-guid", g);
    jset_int(tab, "entries", u->nent);
    for (uint32_t i = 0; i < u->nent; i++) {
        const uint8_t *e = a + (size_t)i * u->ent_size;
        static const uint8_t zero[16];
        if (!memcmp(e, zero, 16))
            continue;
        uint64_t fl = gle64(e + 32), ll = gle64(e + 40);
        if (ll < fl || fl > last) {
            inspect_warn(in, "%s: GPT entry %u has an invalid range",
                         disk->name, i + 1);
            continue;
        }
        uint64_t st = fl * ss, sz = (ll - fl + 1) * ss;
        char what[32];
        snprintf(what, sizeof(what), "partition %u", i + 1);
        if (!clip(in, disk, what, &st, &sz))
            continue;
        struct gdev *p = part_new(in, disk, dn, (int)i + 1, st, sz);
        if (!p)
            break;
        guid_to_str(e, p->part_type);
        guid_to_str(e + 16, p->partuuid);
        utf16_name(e + 56, (u->ent_size - 56) / 2 > 36 ? 36 :
                   (u->ent_size - 56) / 2, p->partlabel,
                   sizeof(p->partlabel));
        p->esp = !strcmp(p->part_type, gpt_types[0].id);
        p->bios_boot = !strcmp(p->part_type, gpt_types[1].id);
        uint64_t attrs = gle64(e + 48);
        p->bootable = attrs & 4;  /* legacy BIOS bootable */
        struct json_object *o = part_json(p, st, gpt_type_name(p->part_type));
        jset_str(o, "guid", p->partuuid);
        jset_str(o, "name", p->partlabel);
        struct json_object *fla = json_object_new_array();
        if (attrs & 1)
            json_object_array_add(fla, jstr("required"));
        if (attrs & 2)
            json_object_array_add(fla, jstr("no-block-io"));
        if (attrs & 4)
            json_object_array_add(fla,
                                  jstr("legacy-bios-bootable"));
        json_object_object_add(o, "flags", fla);
        json_object_array_add(parts, o);
    }
    free(ents);
    free(bents);
    return true;
}

struct json_object *part_scan(struct inspect *in, struct gdev *disk, int n)
{
    struct json_object *tab = json_object_new_object();
    struct json_object *parts = json_object_new_array();
    uint8_t s[512];
    vf_error *err = NULL;
    if (disk->size < 1024 || gdev_pread(disk, s, 0, 512, &err) < 0) {
        error_free(err);
        jset_str(tab, "type", "none");
        json_object_put(parts);
        return tab;
    }
    bool has_mbr = s[MBR_SIG_OFF] == 0x55 && s[MBR_SIG_OFF + 1] == 0xaa;
    bool protective = false, others = false;
    if (has_mbr) {
        /* A filesystem boot sector (FAT, NTFS) also ends in 0x55aa:
         * entries with a boot indicator other than 0/0x80 mean no table. */
        for (int i = 0; i < 4; i++) {
            const uint8_t *e = s + MBR_PART_OFF + 16 * i;
            if (e[0] != 0 && e[0] != 0x80)
                has_mbr = false;
            if (e[4] == 0xee)
                protective = true;
            else if (e[4])
                others = true;
        }
    }
    bool gpt = false;
    if (has_mbr && protective) {
        gpt = gpt_scan(in, disk, n, 512, tab, parts);
        if (!gpt && disk->size >= 3 * 4096)
            gpt = gpt_scan(in, disk, n, 4096, tab, parts);
        if (!gpt)
            inspect_warn(in, "%s: protective MBR but no GPT header",
                         disk->name);
    }
    if (gpt) {
        jset_bool(tab, "hybrid-mbr", others);
        if (others)
            inspect_warn(in, "%s: hybrid MBR (GPT plus MBR partitions); "
                         "the GPT is used", disk->name);
    } else if (has_mbr && (others || protective)) {
        jset_str(tab, "type", "mbr");
        mbr_scan(in, disk, n, s, tab, parts);
    } else {
        jset_str(tab, "type", "none");
    }
    if (json_object_array_length(parts) > 0 || gpt)
        disk->has_table = true;
    else if (has_mbr && others)
        disk->has_table = true;
    json_object_object_add(tab, "partitions", parts);
    return tab;
}
