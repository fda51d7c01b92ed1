/*
 * vfat-write.c: a FAT12 or FAT16 image with VFAT long file names, written
 * in one pass from files held in memory (config drives, cloud-init seeds).
 *
 * Spec: Microsoft "FAT: General Overview of On-Disk Format", version 1.03
 * (fatgen103, 6 December 2000): boot sector and BPB (section 3), the FAT
 * type decided by the count of clusters alone (3.5), FAT entries (4),
 * directory entries and their dates (6), long names: entry layout, the
 * checksum over the short name, basis-name and numeric-tail generation
 * (7).
 *
 * The label is stored as given, lower case included, in BS_VolLab and in
 * the root's volume-label entry, as mkfs.fat 4.2 -n does (and so Nova's
 * and cloud-localds' vfat drives): cloud-init before 18.1 (ConfigDrive)
 * and 19.1 (NoCloud) asks blkid for exactly LABEL=config-2 / cidata,
 * later ones for either case.  fatgen103 wants short names in upper case;
 * Linux, blkid, mtools and fsck.fat accept lower case in the label.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "targets/fsimage.h"

#define VFAT_SECTOR 512u
#define VFAT_RESERVED 1u          /* sectors before the first FAT */
#define VFAT_NFATS 2u
#define VFAT_ROOT_MIN 512u        /* root entries: mkfs.fat's FAT16 default */
#define VFAT_DIRENT 32u
/* fatgen103 3.5: fewer than 4085 clusters is FAT12, fewer than 65525
 * FAT16.  Stay 16 clusters away from both edges, as it advises, so that
 * readers that count a little differently agree on the type. */
#define VFAT12_MAX_CLUSTERS (4085u - 16 - 1)
#define VFAT16_MIN_CLUSTERS (4085u + 16)
#define VFAT16_MAX_CLUSTERS (65525u - 16 - 1)
/* Size: what the files and directories take, a quarter more and 256 KiB,
 * at least 1 MiB (room to edit the seed in place later). */
#define VFAT_MIN_BYTES (1u << 20)
#define VFAT_SLACK_BYTES (256u << 10)
/* Files and the directories their paths imply: FSIMG_MAX_FILES paths of
 * a few components each. */
#define VFAT_MAX_NODES 512
#define VFAT_NAME_MAX 255         /* a long name, in characters */

/* Boot sector / BPB fields (fatgen103 section 3.1, 3.2), little-endian. */
#define BS_JMP_BOOT 0
#define BS_OEM_NAME 3
#define BPB_BYTS_PER_SEC 11
#define BPB_SEC_PER_CLUS 13
#define BPB_RSVD_SEC_CNT 14
#define BPB_NUM_FATS 16
#define BPB_ROOT_ENT_CNT 17
#define BPB_TOT_SEC16 19
#define BPB_MEDIA 21
#define BPB_FAT_SZ16 22
#define BPB_SEC_PER_TRK 24
#define BPB_NUM_HEADS 26
#define BPB_HIDD_SEC 28
#define BPB_TOT_SEC32 32
#define BS_DRV_NUM 36
#define BS_BOOT_SIG 38
#define BS_VOL_ID 39
#define BS_VOL_LAB 43
#define BS_FIL_SYS_TYPE 54
#define BS_BOOT_CODE 62
#define BS_SIGNATURE 510
#define VFAT_MEDIA 0xF8           /* fixed disk; also FAT[0]'s low byte */

/* Directory entry fields (section 6), little-endian. */
#define DIR_NAME 0
#define DIR_ATTR 11
#define DIR_CRT_TIME 14
#define DIR_CRT_DATE 16
#define DIR_LST_ACC_DATE 18
#define DIR_WRT_TIME 22
#define DIR_WRT_DATE 24
#define DIR_FST_CLUS_LO 26
#define DIR_FILE_SIZE 28
#define ATTR_VOLUME_ID 0x08
#define ATTR_DIRECTORY 0x10
#define ATTR_ARCHIVE 0x20
#define ATTR_LONG_NAME 0x0F

/* Long-name entry fields (section 7): 13 UTF-16LE characters in three
 * runs, the entry's ordinal and the checksum of its short name. */
#define LDIR_ORD 0
#define LDIR_NAME1 1              /* characters 1-5 */
#define LDIR_ATTR 11
#define LDIR_CHKSUM 13
#define LDIR_NAME2 14             /* characters 6-11 */
#define LDIR_NAME3 28             /* characters 12-13 */
#define LDIR_CHARS 13
#define LAST_LONG_ENTRY 0x40

struct vfat_node {
    char *name;                   /* long name; NULL for the root */
    uint8_t sfn[11];              /* short name, space-padded, no dot */
    bool has_sfn;
    bool need_lfn;                /* the short name does not say it all */
    bool is_dir;
    const void *data;             /* files: borrowed */
    size_t len;
    struct vfat_node *parent;
    struct vfat_node *first, *last, *next;   /* dirs: children, in order */
    uint32_t cluster;             /* first cluster; 0: none (empty file) */
    uint32_t nclusters;
    uint32_t nent;                /* dirs: 32-byte entries they hold */
};

struct vfat_geom {
    uint32_t spc;                 /* sectors per cluster */
    uint32_t clusters;            /* count of data clusters */
    uint32_t fat_sectors;         /* per FAT */
    uint32_t root_ents;
    uint32_t root_sectors;
    uint32_t total_sectors;
    bool fat16;
};

struct vfat {
    struct vfat_node *nodes;      /* nodes[0] is the root */
    size_t nnodes;
    struct vfat_geom g;
    uint16_t date, time;          /* DOS stamps for every entry */
};

static void vfat_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void vfat_put32(uint8_t *p, uint32_t v)
{
    vfat_put16(p, (uint16_t)v);
    vfat_put16(p + 2, (uint16_t)(v >> 16));
}

/* A character a short name may hold (section 6.1), other than the
 * letters and digits. */
static bool vfat_sfn_punct(char c)
{
    return c && strchr("!#$%&'()-@^_`{}~", c);
}

/* A character a long name may hold (section 7): printable ASCII but
 * the few Windows reserves.  Our names are ASCII: the UTF-16 of a long
 * name entry is then the byte zero-extended. */
static bool vfat_lfn_char(char c)
{
    return c >= 0x20 && c <= 0x7E && !strchr("\"*/:<>?\\|", c);
}

static int vfat_check_label(const char *label, vf_error **errp)
{
    size_t n = strlen(label);
    bool ok = n >= 1 && n <= 11 && label[0] != ' ';
    for (size_t i = 0; ok && i < n; i++) {
        char c = label[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9') || c == ' ' || vfat_sfn_punct(c);
    }
    if (!ok) {
        error_setg(errp, "FAT volume label '%s' is not 1-11 characters a "
                   "short name may hold", label);
        return -1;
    }
    return 0;
}

static int vfat_check_name(const char *path, const char *name, size_t len,
                           vf_error **errp)
{
    bool ok = len >= 1 && len <= VFAT_NAME_MAX &&
              !(len == 1 && name[0] == '.') &&
              !(len == 2 && name[0] == '.' && name[1] == '.') &&
              name[len - 1] != '.' && name[len - 1] != ' ';
    for (size_t i = 0; ok && i < len; i++)
        ok = vfat_lfn_char(name[i]);
    if (!ok) {
        error_setg(errp, "path '%s': a component is empty, too long or has "
                   "a character FAT cannot hold", path);
        return -1;
    }
    return 0;
}

/* The child of dir called name (FAT compares names without case). */
static struct vfat_node *vfat_lookup(struct vfat_node *dir, const char *name,
                                     size_t len)
{
    for (struct vfat_node *c = dir->first; c; c = c->next)
        if (strlen(c->name) == len && !strncasecmp(c->name, name, len))
            return c;
    return NULL;
}

static struct vfat_node *vfat_new_node(struct vfat *v, struct vfat_node *dir,
                                       const char *name, size_t len,
                                       vf_error **errp)
{
    if (v->nnodes >= VFAT_MAX_NODES) {
        error_setg(errp, "more than %d files and directories",
                   VFAT_MAX_NODES);
        return NULL;
    }
    struct vfat_node *n = &v->nodes[v->nnodes];
    n->name = strndup(name, len);
    if (!n->name) {
        error_setg(errp, "out of memory");
        return NULL;
    }
    v->nnodes++;
    n->parent = dir;
    if (dir->last)
        dir->last->next = n;
    else
        dir->first = n;
    dir->last = n;
    return n;
}

/* Add the file f, and the directories its path names, to the tree. */
static int vfat_add(struct vfat *v, const struct fsimg_file *f,
                    vf_error **errp)
{
    struct vfat_node *dir = &v->nodes[0];
    const char *p = f->path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (vfat_check_name(f->path, p, len, errp) < 0)
            return -1;
        struct vfat_node *n = vfat_lookup(dir, p, len);
        if (!slash) {
            if (n) {
                error_setg(errp, "path '%s' given twice or as a directory "
                           "(FAT names ignore case)", f->path);
                return -1;
            }
            n = vfat_new_node(v, dir, p, len, errp);
            if (!n)
                return -1;
            n->data = f->data;
            n->len = f->len;
            return 0;
        }
        if (n && !n->is_dir) {
            error_setg(errp, "path '%s': '%s' is a file", f->path, n->name);
            return -1;
        }
        if (!n) {
            n = vfat_new_node(v, dir, p, len, errp);
            if (!n)
                return -1;
            n->is_dir = true;
        }
        dir = n;
        p = slash + 1;
    }
}

/* c as a short name holds it: upper case, or '_' when it cannot (then
 * *ok = false: a "lossy" conversion). */
static char vfat_sfn_char(char c, bool *ok)
{
    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || vfat_sfn_punct(c))
        return c;
    *ok = false;
    return '_';
}

/*
 * Section 7's basis name: upper case, a character a short name cannot
 * hold becomes '_' (a "lossy" conversion), spaces and leading periods go,
 * up to 8 characters before the first period and up to 3 after the last
 * one.  *fits: the long name is an 8.3 name already (a numeric tail is
 * not needed).  base[] gets the basis, NUL-terminated, ext[] the
 * extension.
 */
static void vfat_basis(const char *name, char base[9], char ext[4],
                       bool *fits)
{
    const char *p = name;
    while (*p == '.')
        p++;
    bool ok = p == name;          /* leading periods are lost */
    const char *last_dot = strrchr(p, '.');
    const char *first_dot = strchr(p, '.');
    const char *base_end = first_dot ? first_dot : p + strlen(p);
    size_t nb = 0, ne = 0;
    for (const char *q = p; q < base_end; q++) {
        char c = *q;
        if (c == ' ') {
            ok = false;
            continue;
        }
        if (nb == 8) {
            ok = false;
            break;
        }
        base[nb++] = vfat_sfn_char(c, &ok);
    }
    base[nb] = 0;
    if (first_dot != last_dot)
        ok = false;               /* "a.b.c": the middle is lost */
    for (const char *q = last_dot ? last_dot + 1 : ""; *q; q++) {
        char c = *q;
        if (c == ' ') {
            ok = false;
            continue;
        }
        if (ne == 3) {
            ok = false;
            break;
        }
        ext[ne++] = vfat_sfn_char(c, &ok);
    }
    ext[ne] = 0;
    if (nb == 0) {                /* nothing usable before the period */
        base[nb++] = '_';
        base[nb] = 0;
        ok = false;
    }
    *fits = ok;
}

static void vfat_make_sfn(uint8_t sfn[11], const char *base, size_t nb,
                          const char *tail, const char *ext)
{
    memset(sfn, ' ', 11);
    memcpy(sfn, base, nb);
    memcpy(sfn + nb, tail, strlen(tail));
    memcpy(sfn + 8, ext, strlen(ext));
}

static bool vfat_sfn_taken(const struct vfat_node *dir, const uint8_t sfn[11])
{
    for (const struct vfat_node *c = dir->first; c; c = c->next)
        if (c->has_sfn && !memcmp(c->sfn, sfn, 11))
            return true;
    return false;
}

/* Give every child of dir a short name unique in dir: first the names
 * that are 8.3 names already, then the others with the lowest free
 * numeric tail "~N" (section 7). */
static int vfat_short_names(struct vfat_node *dir, vf_error **errp)
{
    char base[9], ext[4];
    bool fits;
    for (struct vfat_node *c = dir->first; c; c = c->next) {
        vfat_basis(c->name, base, ext, &fits);
        if (!fits)
            continue;
        vfat_make_sfn(c->sfn, base, strlen(base), "", ext);
        c->has_sfn = true;
        char shown[13];
        snprintf(shown, sizeof(shown), "%s%s%s", base, *ext ? "." : "", ext);
        c->need_lfn = strcmp(shown, c->name) != 0;
    }
    for (struct vfat_node *c = dir->first; c; c = c->next) {
        if (c->has_sfn)
            continue;
        vfat_basis(c->name, base, ext, &fits);
        c->need_lfn = true;
        for (unsigned n = 1; n <= 999999 && !c->has_sfn; n++) {
            char tail[8];
            int tl = snprintf(tail, sizeof(tail), "~%u", n);
            size_t nb = strlen(base);
            if (nb > 8 - (size_t)tl)
                nb = 8 - (size_t)tl;
            uint8_t sfn[11];
            vfat_make_sfn(sfn, base, nb, tail, ext);
            if (!vfat_sfn_taken(dir, sfn)) {
                memcpy(c->sfn, sfn, 11);
                c->has_sfn = true;
            }
        }
        if (!c->has_sfn) {
            error_setg(errp, "no free short name for '%s'", c->name);
            return -1;
        }
    }
    return 0;
}

static uint32_t vfat_lfn_entries(const struct vfat_node *n)
{
    return n->need_lfn
               ? (uint32_t)((strlen(n->name) + LDIR_CHARS - 1) / LDIR_CHARS)
               : 0;
}

/* Short names everywhere, and how many entries each directory holds:
 * the root its volume label, the others "." and "..", plus one entry per
 * child and its long-name entries. */
static int vfat_layout_dirs(struct vfat *v, vf_error **errp)
{
    for (size_t i = 0; i < v->nnodes; i++) {
        struct vfat_node *d = &v->nodes[i];
        if (!d->is_dir)
            continue;
        if (vfat_short_names(d, errp) < 0)
            return -1;
        d->nent = d->parent ? 2 : 1;   /* "." and "..", or the label */
        for (struct vfat_node *c = d->first; c; c = c->next)
            d->nent += 1 + vfat_lfn_entries(c);
    }
    return 0;
}

static uint64_t vfat_div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* Clusters the files and directories (not the root) take at cs bytes
 * per cluster. */
static uint64_t vfat_need(const struct vfat *v, uint64_t cs)
{
    uint64_t need = 0;
    for (size_t i = 1; i < v->nnodes; i++) {
        const struct vfat_node *n = &v->nodes[i];
        need += n->is_dir ? vfat_div_up((uint64_t)n->nent * VFAT_DIRENT, cs)
                          : vfat_div_up(n->len, cs);
    }
    return need;
}

/* Pick the cluster size and count: the smallest cluster that keeps the
 * count within FAT16, FAT12 when the count allows.  The sizes follow
 * from the count, so that the count a reader computes (section 3.5) is
 * exactly it. */
static int vfat_geometry(struct vfat *v, vf_error **errp)
{
    struct vfat_geom *g = &v->g;
    uint32_t root_n = v->nodes[0].nent;
    g->root_ents = root_n < VFAT_ROOT_MIN ? VFAT_ROOT_MIN
                                          : (root_n + 15) / 16 * 16;
    g->root_sectors = g->root_ents * VFAT_DIRENT / VFAT_SECTOR;
    for (uint32_t spc = 1; spc <= 64; spc *= 2) {
        uint64_t cs = (uint64_t)spc * VFAT_SECTOR;
        uint64_t need = vfat_need(v, cs);
        uint64_t want = need + need / 4 + VFAT_SLACK_BYTES / cs;
        if (want < VFAT_MIN_BYTES / cs)
            want = VFAT_MIN_BYTES / cs;
        if (want > VFAT12_MAX_CLUSTERS && want < VFAT16_MIN_CLUSTERS)
            want = VFAT16_MIN_CLUSTERS;
        if (want > VFAT16_MAX_CLUSTERS)
            continue;
        g->spc = spc;
        g->clusters = (uint32_t)want;
        g->fat16 = want > VFAT12_MAX_CLUSTERS;
        /* FAT12 packs two entries in 3 bytes; entries 0 and 1 are
         * reserved */
        uint64_t fat_bytes = g->fat16 ? (want + 2) * 2
                                      : vfat_div_up((want + 2) * 3, 2);
        g->fat_sectors = (uint32_t)vfat_div_up(fat_bytes, VFAT_SECTOR);
        g->total_sectors = VFAT_RESERVED + VFAT_NFATS * g->fat_sectors +
                           g->root_sectors + g->clusters * spc;
        return 0;
    }
    error_setg(errp, "files too large for a FAT16 image (%llu bytes in "
               "32 KiB clusters)",
               (unsigned long long)vfat_need(v, 32768) * 32768);
    return -1;
}

static void vfat_set_fat(uint8_t *fat, bool fat16, uint32_t i, uint32_t val)
{
    if (fat16) {
        vfat_put16(fat + (size_t)i * 2, (uint16_t)val);
        return;
    }
    uint8_t *p = fat + (size_t)i * 3 / 2;
    if (i & 1) {
        p[0] = (uint8_t)((p[0] & 0x0F) | ((val & 0x0F) << 4));
        p[1] = (uint8_t)(val >> 4);
    } else {
        p[0] = (uint8_t)val;
        p[1] = (uint8_t)((p[1] & 0xF0) | ((val >> 8) & 0x0F));
    }
}

/* Give clusters to the directories and the non-empty files, in tree
 * order, each one contiguous, and chain them in fat. */
static void vfat_allocate(struct vfat *v, uint8_t *fat)
{
    uint64_t cs = (uint64_t)v->g.spc * VFAT_SECTOR;
    uint32_t eoc = v->g.fat16 ? 0xFFFF : 0xFFF;
    uint32_t next = 2;
    vfat_set_fat(fat, v->g.fat16, 0, (eoc & ~0xFFu) | VFAT_MEDIA);
    vfat_set_fat(fat, v->g.fat16, 1, eoc);   /* FAT16: clean, no errors */
    for (size_t i = 1; i < v->nnodes; i++) {
        struct vfat_node *n = &v->nodes[i];
        uint64_t bytes = n->is_dir ? (uint64_t)n->nent * VFAT_DIRENT : n->len;
        n->nclusters = (uint32_t)vfat_div_up(bytes, cs);
        if (!n->nclusters)
            continue;
        n->cluster = next;
        for (uint32_t k = 0; k < n->nclusters; k++, next++)
            vfat_set_fat(fat, v->g.fat16, next,
                         k + 1 < n->nclusters ? next + 1 : eoc);
    }
}

static void vfat_entry(const struct vfat *v, uint8_t *e, const uint8_t *name,
                       uint8_t attr, uint32_t cluster, uint32_t size)
{
    memcpy(e + DIR_NAME, name, 11);
    e[DIR_ATTR] = attr;
    vfat_put16(e + DIR_CRT_TIME, v->time);
    vfat_put16(e + DIR_CRT_DATE, v->date);
    vfat_put16(e + DIR_LST_ACC_DATE, v->date);
    vfat_put16(e + DIR_WRT_TIME, v->time);
    vfat_put16(e + DIR_WRT_DATE, v->date);
    vfat_put16(e + DIR_FST_CLUS_LO, (uint16_t)cluster);
    vfat_put32(e + DIR_FILE_SIZE, size);
}

static uint8_t vfat_checksum(const uint8_t sfn[11])
{
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + sfn[i]);
    return sum;
}

/* Write n's long-name entries (last part first) and its short entry at
 * e; returns the entries written. */
static uint32_t vfat_child_entries(const struct vfat *v, uint8_t *e,
                                   const struct vfat_node *n)
{
    uint32_t nl = vfat_lfn_entries(n), w = 0;
    size_t len = strlen(n->name);
    uint8_t sum = vfat_checksum(n->sfn);
    for (uint32_t k = nl; k >= 1; k--, w++) {
        uint8_t *l = e + (size_t)w * VFAT_DIRENT;
        l[LDIR_ORD] = (uint8_t)(k | (k == nl ? LAST_LONG_ENTRY : 0));
        l[LDIR_ATTR] = ATTR_LONG_NAME;
        l[LDIR_CHKSUM] = sum;
        for (size_t j = 0; j < LDIR_CHARS; j++) {
            size_t idx = (size_t)(k - 1) * LDIR_CHARS + j;
            /* the name, a NUL after it, then 0xFFFF padding */
            uint16_t ch = idx < len ? (uint8_t)n->name[idx]
                          : idx == len ? 0 : 0xFFFF;
            size_t off = j < 5 ? LDIR_NAME1 + 2 * j
                         : j < 11 ? LDIR_NAME2 + 2 * (j - 5)
                                  : LDIR_NAME3 + 2 * (j - 11);
            vfat_put16(l + off, ch);
        }
    }
    vfat_entry(v, e + (size_t)w * VFAT_DIRENT, n->sfn,
               n->is_dir ? ATTR_DIRECTORY : ATTR_ARCHIVE, n->cluster,
               n->is_dir ? 0 : (uint32_t)n->len);
    return w + 1;
}

/* Fill buf (zeroed, room for d->nent entries) with directory d. */
static void vfat_dir_fill(const struct vfat *v, const struct vfat_node *d,
                          const char *label, uint8_t *buf)
{
    uint32_t w = 0;
    if (!d->parent) {
        uint8_t lab[11];
        memset(lab, ' ', sizeof(lab));
        memcpy(lab, label, strlen(label));
        vfat_entry(v, buf, lab, ATTR_VOLUME_ID, 0, 0);
        w = 1;
    } else {
        uint8_t dot[11], dotdot[11];
        memset(dot, ' ', sizeof(dot));
        memset(dotdot, ' ', sizeof(dotdot));
        dot[0] = dotdot[0] = dotdot[1] = '.';
        vfat_entry(v, buf, dot, ATTR_DIRECTORY, d->cluster, 0);
        vfat_entry(v, buf + VFAT_DIRENT, dotdot, ATTR_DIRECTORY,
                   d->parent->parent ? d->parent->cluster : 0, 0);
        w = 2;
    }
    for (const struct vfat_node *c = d->first; c; c = c->next)
        w += vfat_child_entries(v, buf + (size_t)w * VFAT_DIRENT, c);
}

static void vfat_boot_sector(const struct vfat *v, const char *label,
                             uint8_t *bs)
{
    const struct vfat_geom *g = &v->g;
    static const uint8_t jmp[3] = { 0xEB, 0x3C, 0x90 };  /* to BS_BOOT_CODE */
    /* not bootable: INT 18h (the BIOS tries the next device), then halt */
    static const uint8_t code[4] = { 0xCD, 0x18, 0xEB, 0xFE };
    uint32_t serial = 0;
    if (getrandom(&serial, sizeof(serial), GRND_NONBLOCK) != sizeof(serial))
        serial = (uint32_t)time(NULL);
    memcpy(bs + BS_JMP_BOOT, jmp, sizeof(jmp));
    memcpy(bs + BS_OEM_NAME, "MSWIN4.1", 8);   /* what fatgen103 advises */
    vfat_put16(bs + BPB_BYTS_PER_SEC, VFAT_SECTOR);
    bs[BPB_SEC_PER_CLUS] = (uint8_t)g->spc;
    vfat_put16(bs + BPB_RSVD_SEC_CNT, VFAT_RESERVED);
    bs[BPB_NUM_FATS] = VFAT_NFATS;
    vfat_put16(bs + BPB_ROOT_ENT_CNT, (uint16_t)g->root_ents);
    if (g->total_sectors < 0x10000)
        vfat_put16(bs + BPB_TOT_SEC16, (uint16_t)g->total_sectors);
    else
        vfat_put32(bs + BPB_TOT_SEC32, g->total_sectors);
    bs[BPB_MEDIA] = VFAT_MEDIA;
    vfat_put16(bs + BPB_FAT_SZ16, (uint16_t)g->fat_sectors);
    vfat_put16(bs + BPB_SEC_PER_TRK, 32);      /* a made-up geometry */
    vfat_put16(bs + BPB_NUM_HEADS, 64);
    vfat_put32(bs + BPB_HIDD_SEC, 0);
    bs[BS_DRV_NUM] = 0x80;
    bs[BS_BOOT_SIG] = 0x29;                    /* the next three are set */
    vfat_put32(bs + BS_VOL_ID, serial);
    memset(bs + BS_VOL_LAB, ' ', 11);
    memcpy(bs + BS_VOL_LAB, label, strlen(label));
    memcpy(bs + BS_FIL_SYS_TYPE, g->fat16 ? "FAT16   " : "FAT12   ", 8);
    memcpy(bs + BS_BOOT_CODE, code, sizeof(code));
    bs[BS_SIGNATURE] = 0x55;
    bs[BS_SIGNATURE + 1] = 0xAA;
}

/* DOS date and time (section 6.1) of now, local time as DOS keeps it. */
static void vfat_stamp(struct vfat *v)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || tm.tm_year < 80 || tm.tm_year > 207) {
        v->date = (0 << 9) | (1 << 5) | 1;    /* 1980-01-01 */
        v->time = 0;
        return;
    }
    v->date = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) |
                         tm.tm_mday);
    v->time = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) |
                         (tm.tm_sec / 2));
}

static int vfat_emit(struct vfat *v, struct io *out, const char *label,
                     vf_error **errp)
{
    const struct vfat_geom *g = &v->g;
    uint64_t cs = (uint64_t)g->spc * VFAT_SECTOR;
    uint64_t fat_off = (uint64_t)VFAT_RESERVED * VFAT_SECTOR;
    uint64_t fat_bytes = (uint64_t)g->fat_sectors * VFAT_SECTOR;
    uint64_t root_off = fat_off + VFAT_NFATS * fat_bytes;
    uint64_t data_off = root_off + (uint64_t)g->root_sectors * VFAT_SECTOR;
    uint8_t *fat = calloc(1, fat_bytes);
    uint8_t *root = calloc(g->root_ents, VFAT_DIRENT);
    uint8_t bs[VFAT_SECTOR] = { 0 };
    int ret = -1;
    if (!fat || !root) {
        error_setg(errp, "out of memory");
        goto out;
    }
    /* the holes the files and directories leave read as zeros */
    if (io_truncate(out, (uint64_t)g->total_sectors * VFAT_SECTOR, errp) < 0)
        goto out;
    vfat_allocate(v, fat);
    vfat_dir_fill(v, &v->nodes[0], label, root);
    for (size_t i = 1; i < v->nnodes; i++) {
        const struct vfat_node *n = &v->nodes[i];
        uint64_t off = data_off + (uint64_t)(n->cluster - 2) * cs;
        if (!n->nclusters)
            continue;
        if (!n->is_dir) {
            if (io_pwrite(out, n->data, n->len, off, errp) < 0)
                goto out;
            continue;
        }
        uint8_t *buf = calloc(n->nclusters, cs);
        if (!buf) {
            error_setg(errp, "out of memory");
            goto out;
        }
        vfat_dir_fill(v, n, label, buf);
        int r = io_pwrite(out, buf, (size_t)(n->nclusters * cs), off, errp);
        free(buf);
        if (r < 0)
            goto out;
    }
    vfat_boot_sector(v, label, bs);
    if (io_pwrite(out, root, (size_t)g->root_ents * VFAT_DIRENT, root_off,
                  errp) < 0)
        goto out;
    for (uint32_t k = 0; k < VFAT_NFATS; k++)
        if (io_pwrite(out, fat, fat_bytes, fat_off + k * fat_bytes,
                      errp) < 0)
            goto out;
    if (io_pwrite(out, bs, sizeof(bs), 0, errp) < 0)
        goto out;
    ret = 0;
out:
    free(fat);
    free(root);
    return ret;
}

int vfat_write(struct io *out, const char *label,
               const struct fsimg_file *files, size_t n, vf_error **errp)
{
    struct vfat v = { 0 };
    int ret = -1;
    if (vfat_check_label(label, errp) < 0)
        return -1;
    if (n > FSIMG_MAX_FILES) {
        error_setg(errp, "%zu files (at most %d)", n, FSIMG_MAX_FILES);
        return -1;
    }
    v.nodes = calloc(VFAT_MAX_NODES, sizeof(*v.nodes));
    if (!v.nodes) {
        error_setg(errp, "out of memory");
        return -1;
    }
    v.nodes[0].is_dir = true;
    v.nnodes = 1;
    for (size_t i = 0; i < n; i++) {
        /* a FAT file size is 32 bits; the caller's cap is far below */
        if (files[i].len > UINT32_MAX) {
            error_setg(errp, "%s: too large for FAT (%zu bytes)",
                       files[i].path, files[i].len);
            goto out;
        }
        if (vfat_add(&v, &files[i], errp) < 0)
            goto out;
    }
    vfat_stamp(&v);
    if (vfat_layout_dirs(&v, errp) < 0 || vfat_geometry(&v, errp) < 0)
        goto out;
    ret = vfat_emit(&v, out, label, errp);
out:
    for (size_t i = 0; i < v.nnodes; i++)
        free(v.nodes[i].name);
    free(v.nodes);
    return ret;
}
