/*
 * guest.h: what the guest-inspection modules share (internal to guest/).
 *
 * A "guest block device" (struct gdev) is a readable byte range of the
 * guest: a whole disk, a partition (a window on a disk) or an LVM logical
 * volume (a list of linear/striped segments over other gdevs).  Every
 * reader above it (filesystem probes, libext2fs, LVM) goes through
 * gdev_pread, so it works on any image format the format layer opens.
 *
 * A "guest view" (struct gview) is one OS's file tree: its root
 * filesystem plus the filesystems its fstab mounts, read-only, through
 * libext2fs.  Paths are absolute guest paths.
 */
#ifndef VF_GUEST_H
#define VF_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"

struct lv_map;
struct gfs;

/* ---- guest block devices (gdev.c) ---- */

#define GDEV_NAME_MAX 128

struct gdev {
    char name[GDEV_NAME_MAX];  /* "/dev/sda1", "/dev/vg0/root" */
    uint64_t size;             /* bytes */
    struct blk *blk;           /* disk and partition: the image */
    uint64_t base;             /* byte offset of the range in blk */
    struct lv_map *lv;         /* LV: its segment map (lvm.c) */
    int disk;                  /* index of the disk it lives on, -1 LV */
    bool is_disk;              /* a whole disk */
    bool has_table;            /* a disk carrying a partition table */
    /* partition facts (part.c) */
    int partnum;               /* 1-based, 0 when not a partition */
    char part_type[40];        /* GPT type GUID or MBR "0x83" */
    char partuuid[40];         /* GPT unique GUID, or MBR "sig-NN" */
    char partlabel[80];        /* GPT name (UTF-8) */
    bool esp, bios_boot, bootable;
    /* filesystem facts (fsprobe.c) */
    char fstype[32];           /* "ext4", "xfs", "LVM2_member", "" */
    char uuid[64];
    char label[80];
    char dmuuid[80];           /* LV: "LVM-<vg uuid><lv uuid>" */
    bool encrypted;            /* LUKS / BitLocker */
    bool container;            /* LVM PV, MD member: holds no fs */
    int md_level;              /* MD member: RAID level (-1 unknown) */
    uint64_t md_off, md_size;  /* MD member: where the array's data is */
    struct gfs *fs;            /* open ext fs, or NULL */
    const char *no_write;      /* why writes are refused (an MD array
                                  exposed through one member), or NULL */
};

/* Read [off, off+len) of d; off+len beyond d->size is an error. */
int gdev_pread(struct gdev *d, void *buf, uint64_t off, size_t len,
               vf_error **errp);

/* Write [off, off+len) of d (its image must be open for writing: an
 * overlay, or --in-place).  Beyond d->size, through an LV hole, or on a
 * device with no_write set: an error naming the device. */
int gdev_pwrite(struct gdev *d, const void *buf, uint64_t off, size_t len,
                vf_error **errp);

/* ---- the inspection context (inspect.c) ---- */

/* How many devices one inspection tracks: 128 GPT partitions on each of
 * a few disks plus LVs is far below; more is hostile. */
#define INSPECT_MAX_DEVS 1024

struct inspect {
    struct blk **disks;
    size_t ndisks;
    struct gdev *devs[INSPECT_MAX_DEVS];
    size_t ndevs;
    struct json_object *warnings;  /* array of strings */
};

/* Add d to the context (takes ownership).  Returns d, or NULL (and frees
 * d) when the device cap is reached, with a warning. */
struct gdev *inspect_add_dev(struct inspect *in, struct gdev *d);
/* Append a warning (printf-style). */
void inspect_warn(struct inspect *in, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The device whose fs UUID / label / PARTUUID / PARTLABEL / name
 * matches, or NULL. */
struct gdev *inspect_find_dev(struct inspect *in, const char *key,
                              const char *value);

/* ---- partition tables (part.c) ---- */

/* Read the partition table of disk (index n), add one gdev per
 * partition to in, return the table's JSON (type "none" when there is
 * no table).  Never fails: damage becomes warnings and JSON facts. */
struct json_object *part_scan(struct inspect *in, struct gdev *disk, int n);

/* ---- filesystem probes (fsprobe.c) ---- */

/* Fill d's fstype/uuid/label/encrypted/container from its magics; the
 * JSON of what was found (NULL when nothing). */
struct json_object *fsprobe(struct gdev *d);
/* The same on a buffer: first len bytes of a device of size dev_size
 * (for the fuzzer and tests).  Returns the type or "". */
const char *fsprobe_buf(const uint8_t *buf, size_t len, uint64_t dev_size,
                        char *uuid, size_t ulen, char *label, size_t llen);

/* ---- FAT12/16/32, read-only (fat.c) ---- */

/* Find path ('/'-separated, from the root) on the FAT filesystem of d.
 * Each component matches an entry's VFAT long name or its 8.3 short name,
 * ASCII letters' case ignored.  1 found (*is_dir and *size, when not
 * NULL, filled: size 0 for a directory), 0 not there, -1 when the volume
 * cannot be read (the error names the bad value: a BPB field, a cluster
 * number, a looping chain). */
int fat_stat(struct gdev *d, const char *path, bool *is_dir, uint64_t *size,
             vf_error **errp);

/* ---- volumes (lvm.c; MD RAID1 arrays are exposed by inspect.c) ---- */

/* Scan every LVM2 PV among in's devices, add LVs as gdevs, return the
 * "lvm" JSON array. */
struct json_object *lvm_scan(struct inspect *in);
/* Parse LVM2 text metadata (for the fuzzer): 0 / -1. */
int lvm_parse_text(const char *text, size_t len, struct json_object **out,
                   vf_error **errp);
void lv_map_free(struct lv_map *m);
int lv_map_read(struct lv_map *m, void *buf, uint64_t off, size_t len,
                vf_error **errp);
int lv_map_write(struct lv_map *m, const void *buf, uint64_t off,
                 size_t len, vf_error **errp);

/* ---- ext2/3/4 through libext2fs (ext.c) ---- */

/* Open d read-only through our io_manager. */
struct gfs *gfs_open(struct gdev *d, vf_error **errp);
void gfs_close(struct gfs *fs);

enum gtype { GT_NONE = 0, GT_FILE, GT_DIR, GT_LINK, GT_OTHER };

struct gview {
    struct {
        char *mp;              /* "/", "/boot" (no trailing slash) */
        struct gfs *fs;
    } m[32];
    int n;
    /* What edits made or rewrote through this view (gview_write,
     * gview_append, gview_mkdir, gview_symlink), as the paths they were
     * given ('//' and a trailing '/' removed), in order, a path repeated
     * only when something else came between; prepare labels them for
     * SELinux afterwards.  written_lost: some were not recorded (more
     * than GV_WRITTEN_MAX, or out of memory). */
    char **written;
    size_t nwritten, written_cap;
    bool written_lost;
};

/* Type of path (symlinks followed), GT_NONE when absent; *size if not
 * NULL gets the file size. */
enum gtype gview_stat(struct gview *v, const char *path, uint64_t *size);
/* Type without following the last symlink. */
enum gtype gview_lstat(struct gview *v, const char *path);
/* Read a whole file of at most max bytes (larger: error naming the
 * size).  *out is malloc'd and NUL-terminated. */
int gview_read(struct gview *v, const char *path, size_t max, char **out,
               size_t *len, vf_error **errp);
/* The target of a symlink, malloc'd, or NULL. */
char *gview_readlink(struct gview *v, const char *path);
/* Call fn for each entry of directory path (not "." and ".."), at most
 * max entries.  fn returns non-zero to stop.  0 / -1. */
int gview_list(struct gview *v, const char *path, size_t max,
               int (*fn)(const char *name, enum gtype t, void *opaque),
               void *opaque, vf_error **errp);

/* Streaming read of a file. */
struct gfile;
struct gfile *gview_open(struct gview *v, const char *path,
                         vf_error **errp);
/* Read up to len bytes; returns the count (0 at end) or -1. */
long gfile_read(struct gfile *f, void *buf, size_t len, vf_error **errp);
uint64_t gfile_size(struct gfile *f);
void gfile_close(struct gfile *f);

/* ---- JBD2 journal replay (jbd2.c) ---- */

struct jbd2_stats {
    uint32_t transactions;     /* committed transactions replayed */
    uint64_t blocks;           /* blocks written to the filesystem */
    uint64_t revoked;          /* logged blocks skipped: revoked later */
};

/* The journal and the filesystem, as jbd2_replay_dev sees them: every
 * callback returns 0 / -1 and sets its error. */
struct jbd2_dev {
    uint32_t blocksize;        /* bytes: the filesystem's and the journal's */
    uint64_t fs_blocks;        /* the filesystem's size, blocks */
    uint64_t j_blocks;         /* the journal's size, blocks */
    /* read / write journal block jblk (< j_blocks), one block */
    int (*jread)(void *opaque, uint64_t jblk, void *buf, vf_error **errp);
    int (*jwrite)(void *opaque, uint64_t jblk, const void *buf,
                  vf_error **errp);
    /* write filesystem block bno (< fs_blocks) */
    int (*fswrite)(void *opaque, uint64_t bno, const void *buf,
                   vf_error **errp);
    /* whether filesystem block bno holds the journal (NULL: never) */
    bool (*in_journal)(void *opaque, uint64_t bno);
    void *opaque;
};

/* Replay the journal of dev: write every block of its committed
 * transactions that no later revoke record cancels to the filesystem,
 * then mark the journal empty (s_start 0).  The whole log is read and
 * checked before the first write: a damaged or hostile journal is an
 * error naming the bad value, with nothing written.  *st (optional) gets
 * what was done.  0 / -1. */
int jbd2_replay_dev(const struct jbd2_dev *dev, struct jbd2_stats *st,
                    vf_error **errp);

/* Replay the internal journal of g (its device must be writable: an
 * overlay, or --in-place) and clear the filesystem's needs_recovery flag
 * in its primary superblock.  An external journal is refused.  g's
 * in-memory superblock is stale afterwards: close g and open the
 * filesystem again.  0 / -1. */
int jbd2_replay(struct gfs *g, struct jbd2_stats *st, vf_error **errp);
/* Whether g's internal journal holds a log to replay (s_start not 0),
 * whatever the needs_recovery flag says; false when it cannot tell. */
bool jbd2_log_pending(struct gfs *g);

/* ---- editing ext2/3/4 (ext-write.c) ---- */

/* If d's ext filesystem needs journal recovery (its needs_recovery flag,
 * or a log in its journal), replay its journal onto d (which must be
 * writable: an overlay, or --in-place) and clear the flag, as the kernel
 * does at mount.  1 when replayed (*st filled), 0
 * when there was nothing to do, -1 when the replay failed (the journal
 * is then left as it was, unless writing to d itself failed). */
int gfs_replay_journal(struct gdev *d, struct jbd2_stats *st,
                       vf_error **errp);
/* Open d read-write for editing: refused (with the reason) when its
 * journal needs recovery (replay it first), it is marked with errors, or
 * it has quotas. */
struct gfs *gfs_open_rw(struct gdev *d, vf_error **errp);
/* Write the superblock, group descriptors and bitmaps of an edited fs.
 * gfs_close() without it drops the edits' metadata: flush first. */
int gfs_flush(struct gfs *g, vf_error **errp);
bool gfs_is_dirty(struct gfs *g);
/* Why g (opened read-only) could not be opened for editing. */
void gfs_set_ro_reason(struct gfs *g, const char *why);

#define GV_NOFOLLOW 0x1   /* refuse a symlink anywhere in the path */
#define GV_PARENTS  0x2   /* mkdir: make missing parents, accept existing */

/* Create or replace a regular file.  mode < 0: keep (new files 0644);
 * uid/gid < 0: keep (new files root).  A symlink as the last component
 * is followed inside its filesystem unless GV_NOFOLLOW.  0 / -1. */
int gview_write(struct gview *v, const char *path, const void *data,
                size_t len, int mode, int64_t uid, int64_t gid,
                unsigned flags, vf_error **errp);
/* Append len bytes to an existing regular file (a symlink anywhere in
 * the path is refused), so large files are written piece by piece. */
int gview_append(struct gview *v, const char *path, const void *data,
                 size_t len, vf_error **errp);
int gview_mkdir(struct gview *v, const char *path, int mode, int64_t uid,
                int64_t gid, unsigned flags, vf_error **errp);
/* Remove a file, symlink or (recursive) directory tree; absent is fine. */
int gview_remove(struct gview *v, const char *path, bool recursive,
                 vf_error **errp);
/* Make path a symlink to target (replacing a file or link there). */
int gview_symlink(struct gview *v, const char *target, const char *path,
                  unsigned flags, vf_error **errp);
/* A hard link path to existing (same filesystem). */
int gview_link(struct gview *v, const char *existing, const char *path,
               vf_error **errp);
int gview_chmod(struct gview *v, const char *path, int mode,
                vf_error **errp);
int gview_chown(struct gview *v, const char *path, int64_t uid, int64_t gid,
                vf_error **errp);
/* Owner and permission bits of path (not following a last symlink). */
int gview_owner(struct gview *v, const char *path, uint32_t *uid,
                uint32_t *gid, int *mode);

/* Paths an edit run writes: a guest's edits make thousands at most
 * (--upload of a tree); more are counted as lost. */
#define GV_WRITTEN_MAX (1u << 20)
/* Free v's list of written paths (inspect_view_free does it). */
void gview_written_free(struct gview *v);

/* Extended attributes, by full name ("security.selinux"), of path
 * itself (a last symlink is not followed).  Only on filesystems with
 * the ext_attr feature: gview_has_xattrs tells, and the others fail on
 * the rest. */
bool gview_has_xattrs(struct gview *v, const char *path);
/* 1 with *val (malloc'd, *len bytes, a NUL added after them) when path
 * has the attribute, 0 when it has not, -1 on error. */
int gview_getxattr(struct gview *v, const char *path, const char *name,
                   char **val, size_t *len, vf_error **errp);
/* Set (add or replace) an attribute; the filesystem must be open for
 * editing.  0 / -1. */
int gview_setxattr(struct gview *v, const char *path, const char *name,
                   const void *val, size_t len, vf_error **errp);

/* ---- OS facts (os.c), kernels (kernels.c), boot (boot.c), apps ---- */

/* Whether fs looks like a Linux root (libguestfs' rule). */
bool os_is_linux_root(struct gview *v);
/* OS facts into os (distro, version, arch, hostname, ...). */
void os_inspect(struct inspect *in, struct gview *v, struct json_object *os);
/* Parse /etc/fstab, resolve sources, add the "mountpoints" array to os,
 * and mount the ext filesystems into v. */
void os_mountpoints(struct inspect *in, struct gview *v,
                    struct json_object *os);
/* Parse an fstab text into the mountpoints array (no resolution, for
 * tests and fuzzing). */
/* Resolve an fstab / root= source (UUID=, LABEL=, /dev/...) to a device
 * of this guest; *unstable is set for /dev/sdX-style names. */
struct gdev *os_resolve(struct inspect *in, const char *spec,
                        bool *unstable);
struct json_object *os_parse_fstab(struct inspect *in, const char *text,
                                   size_t len);

struct json_object *kernels_inspect(struct inspect *in, struct gview *v);
/* The initramfs scanner on a memory buffer (fuzzing): fills found with
 * module names seen.  0 / -1. */
int initramfs_scan_buf(const uint8_t *data, size_t len,
                       struct json_object *result, vf_error **errp);

struct json_object *boot_inspect(struct inspect *in, struct gview *v);
/* Firmware and MBR boot code for the whole guest; with read_esp, whether
 * an ESP holds the fallback loader for arch (the first OS's; NULL:
 * x86_64). */
void boot_disks(struct inspect *in, const char *arch, bool read_esp,
                struct json_object *out);

struct json_object *apps_tools(struct inspect *in, struct gview *v,
                               struct json_object *packages);
struct json_object *apps_network(struct inspect *in, struct gview *v);
struct json_object *apps_packages(struct inspect *in, struct gview *v,
                                  const char *distro);

/* ---- small text helpers (util.c) ---- */

/* Value of KEY=VALUE in a shell-style file (quotes removed), malloc'd, or
 * NULL. */
char *kv_get(const char *text, const char *key);
/* Strip leading and trailing whitespace in place; returns s. */
char *str_trim(char *s);
/* Normalise a module name: '-' becomes '_', the .ko[.xz|.zst|.gz]
 * extension is dropped.  Writes at most len bytes; returns false if name
 * is not a module file. */
bool modname_from_file(const char *file, char *out, size_t len);
/* json helpers: strings from the guest are made valid UTF-8 */
struct json_object *jstr(const char *v);
void jset_str(struct json_object *o, const char *k, const char *v);
void jset_int(struct json_object *o, const char *k, int64_t v);
void jset_bool(struct json_object *o, const char *k, bool v);
const char *jget_str(struct json_object *o, const char *k);
/* guid: 16 bytes (GPT mixed-endian) to "xxxxxxxx-xxxx-..." upper case */
void guid_to_str(const uint8_t *g, char *out);

#endif
