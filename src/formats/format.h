/*
 * format.h: the format-driver contract.
 *
 * Every disk format (raw, qcow2, vmdk, vpc, vhdx, vdi, ...) is one driver:
 * a const struct fmt_driver at the bottom of its file, everything above it
 * static.  The core (formats/blk.c) owns the struct blk, allocates the
 * driver's state (state_size bytes, zeroed), opens backing chains, writes
 * outputs under temporary names and renames them when they are whole.
 *
 * Units: every offset and length is in bytes.  "Guest" offsets address the
 * virtual disk; "host" offsets address the container file.
 *
 * Threads: pread and block_status may be called from several threads at
 * once (drivers lock their own metadata caches).  Unless the driver sets
 * FMT_F_PARALLEL_WRITE, the core serialises pwrite, zero and
 * pwrite_compressed with one mutex.
 */
#ifndef VF_FORMAT_H
#define VF_FORMAT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/opts.h"
#include "io/io.h"

struct json_object;
struct fmt_driver;

/* Block status of a guest range, as one layer of a chain sees it. */
enum blk_status {
    BLK_UNALLOC = 0,   /* not allocated in this layer: read the backing
                          image, or zeros when there is none */
    BLK_DATA = 1,      /* allocated in this layer, may hold non-zero bytes */
    BLK_ZERO = 2,      /* allocated in this layer, reads as zeros */
};

/* How to open an image. */
struct blk_open_opts {
    const char *format;        /* force this driver (NULL: probe) */
    bool allow_data_file;      /* qcow2 external data files */
    bool allow_backing_path;   /* backing/extent names outside the dir */
    bool no_backing;           /* do not open backing files */
};

/* An output file beside the main one (VMDK extents, ...): created under a
 * temporary name, renamed to final_path by blk_commit(). */
struct blk_outfile {
    struct io *io;
    char *tmp_path;
    char *final_path;
    struct blk_outfile *next;
};

/* An open image.  Fields marked (driver) are set by the driver's open or
 * create; the rest belong to the core. */
struct blk {
    const struct fmt_driver *drv;
    void *state;               /* drv->state_size bytes, zeroed */
    struct io *file;           /* the main container */
    char *filename;            /* as the user gave it */
    char *dir;                 /* directory for relative names */
    bool readonly;
    struct blk_open_opts oopts;

    uint64_t size;             /* (driver) virtual size in bytes */
    uint32_t cluster_size;     /* (driver) allocation unit, 0 if none */
    char *backing_name;        /* (driver, malloc'd) backing file name as
                                  stored in the image, or NULL */
    char *backing_fmt;         /* (driver, malloc'd) its format, or NULL */
    bool compressed;           /* (driver, create) data must be written via
                                  compress + pwrite_compressed, one
                                  cluster_size granule at a time */
    struct blk *backing;       /* opened by the core */
    bool backing_borrowed;     /* backing belongs to the caller
                                  (blk_create_overlay): not closed */
    int depth;                 /* 0 for the top of a chain */

    /* writing */
    bool created;              /* made by blk_create: renamed on commit */
    bool file_borrowed;        /* made by blk_create_io: file is the
                                  caller's, never renamed nor closed */
    bool zero_init;            /* (driver, create) unwritten ranges read
                                  as zeros (fresh file, no backing) */
    pthread_mutex_t wlock;     /* serialises writes (see above) */
    struct blk_outfile *outs;  /* main file first */
};
typedef struct blk blk;

/* What `create` needs. */
struct fmt_create_opts {
    uint64_t size;             /* virtual size in bytes */
    const char *backing_file;  /* -B, or NULL */
    const char *backing_fmt;   /* -F, or NULL (then probed) */
    bool compress;             /* -c */
    struct opts *o;            /* -o list: take your keys with opts_get* */
};

/* `check` results, reported like qemu-img check. */
enum check_kind { CHECK_CORRUPTION, CHECK_LEAK, CHECK_ERROR, CHECK_INFO };
struct check_report {
    uint64_t corruptions, leaks, check_errors;
    uint64_t total_clusters, allocated_clusters;
    uint64_t fragmented_clusters, compressed_clusters;
    uint64_t image_end_offset;
    bool have_cluster_stats;   /* the four cluster counts are meaningful */
    char **msgs;               /* first CHECK_MAX_MSGS messages */
    size_t nmsgs;
};
#define CHECK_MAX_MSGS 1000
/* Count one finding of kind k and remember its message. */
void check_add(struct check_report *r, enum check_kind k, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));
void check_report_free(struct check_report *r);

/* What probe sees: never more than this; probes must not allocate. */
struct probe_data {
    const uint8_t *head;       /* first head_len bytes of the file */
    size_t head_len;           /* up to 64 KiB (less for small files) */
    const uint8_t *tail;       /* last tail_len bytes of the file */
    size_t tail_len;           /* up to 512 */
    uint64_t file_size;
    const char *filename;
};

#define FMT_F_STREAM          0x1  /* writes arrive whole granules, in
                                      increasing guest order, each once */
#define FMT_F_PARALLEL_WRITE  0x2  /* pwrite/zero are thread-safe */
#define FMT_F_BACKING         0x4  /* create accepts a backing file */
#define FMT_F_HOST_IN_FILE    0x8  /* block_status' host offsets are in
                                      b->file: the core refines BLK_DATA
                                      with the file's holes (a hole inside
                                      an allocated block reads as zeros) */

struct fmt_driver {
    const char *name;          /* qemu-img's name: "qcow2", "vpc", ... */
    const char *const *aliases;/* NULL-terminated, or NULL */
    const char *desc;          /* one line for --help */
    size_t state_size;
    unsigned flags;            /* FMT_F_* */

    /* Score 0..100 for how sure the driver is that d is its format (0 =
     * not mine).  Looks only at d; never fails, never allocates.  NULL:
     * never probed (must be named with -f). */
    int (*probe)(const struct probe_data *d);

    /* b->file is open (read-only unless !b->readonly).  Read and validate
     * the metadata; set b->size, cluster_size, backing_name/backing_fmt.
     * The core opens the backing chain afterwards.  Every value read is
     * hostile: bound it before it sizes an allocation or a loop.  0 / -1;
     * on failure the core calls close(). */
    int (*open)(struct blk *b, vf_error **errp);

    /* Free what open/create added to the state.  Called once, also after
     * a failed open/create; must cope with a half-initialised state.
     * Writing metadata is flush's job, not close's. */
    void (*close)(struct blk *b);

    /* b->file is a new, empty file.  Lay out an image of o->size bytes,
     * set b->size, cluster_size, zero_init, compressed, and write the
     * initial metadata.  Take your -o keys from o->o.  NULL: the format is
     * read-only. */
    int (*create)(struct blk *b, const struct fmt_create_opts *o,
                  vf_error **errp);

    /* Read [off, off+len) of the guest disk, off+len <= b->size.  Ranges
     * unallocated in this layer come from blk_read_backing().  0 / -1. */
    int (*pread)(struct blk *b, void *buf, uint64_t off, size_t len,
                 vf_error **errp);

    /* Write [off, off+len), off+len <= b->size.  FMT_F_STREAM drivers get
     * whole granules in increasing order.  NULL: read-only. */
    int (*pwrite)(struct blk *b, const void *buf, uint64_t off, size_t len,
                  vf_error **errp);

    /* Make [off, off+len) read as zeros, deallocating where the format can
     * express it.  NULL: the core writes zero buffers with pwrite. */
    int (*zero)(struct blk *b, uint64_t off, uint64_t len, vf_error **errp);

    /* Status of the range starting at off, at most len bytes: returns an
     * enum blk_status and sets *pnum (> 0, <= len) to how far it holds.
     * *host_off gets the host offset of off for BLK_DATA when the data is
     * stored uncompressed and contiguously, else UINT64_MAX.  -1 on error.
     * NULL: everything is BLK_DATA. */
    int (*block_status)(struct blk *b, uint64_t off, uint64_t len,
                        uint64_t *pnum, uint64_t *host_off, vf_error **errp);

    /* Write all pending metadata and make the image consistent (not
     * necessarily durable: the core fsyncs after).  Called before close on
     * every image opened for writing.  NULL: nothing pending. */
    int (*flush)(struct blk *b, vf_error **errp);

    /* Check metadata consistency into r.  -1 only if the check itself
     * could not run.  NULL: "format does not support checks". */
    int (*check)(struct blk *b, struct check_report *r, vf_error **errp);

    /* Add format-specific fields to spec (a JSON object).  NULL: none. */
    int (*info)(struct blk *b, struct json_object *spec, vf_error **errp);

    /* Bytes the output of o would need: *required for src's content (src
     * may be NULL: an empty image), *fully for a fully allocated image.
     * NULL: the core reports the virtual size plus nothing. */
    int (*measure)(const struct fmt_create_opts *o, struct blk *src,
                   uint64_t *required, uint64_t *fully, vf_error **errp);

    /* Change the virtual size.  Shrinking is asked for only with --shrink
     * and after the core checked the tail holds no data.  NULL: not
     * supported. */
    int (*resize)(struct blk *b, uint64_t new_size, vf_error **errp);

    /* Compressed writes (b->compressed): the engine's workers call
     * compress() in parallel, each with its own codec from codec_new(),
     * then pwrite_compressed() one granule (cluster_size bytes, or the
     * image's short tail) at a time.  compress returns the payload length
     * written to out (cap >= 2 * len + 64), or 0 if it did not shrink the
     * data (then pwrite_compressed gets plen == 0 and stores raw). */
    void *(*codec_new)(struct blk *b, vf_error **errp);
    void (*codec_free)(void *codec);
    size_t (*compress)(struct blk *b, void *codec, const void *in, size_t len,
                       void *out, size_t cap);
    int (*pwrite_compressed)(struct blk *b, uint64_t off, const void *raw,
                             size_t len, const void *payload, size_t plen,
                             vf_error **errp);
};

/* ---- the registry (formats/registry.c) ---- */

/* In probe order, raw last; NULL-terminated. */
extern const struct fmt_driver *const fmt_registry[];
/* By name or alias, or NULL. */
const struct fmt_driver *fmt_find(const char *name);

/* ---- the core (formats/blk.c) ---- */

/* Open path read-only (or read-write) and its backing chain. */
struct blk *blk_open(const char *path, bool readonly,
                     const struct blk_open_opts *oo, vf_error **errp);
/* Open an image held by io (ownership passes to the blk, also on
 * failure); name is for messages and relative backing names. */
struct blk *blk_open_io(struct io *io, const char *name, bool readonly,
                        const struct blk_open_opts *oo, vf_error **errp);
/* Which driver would open path (probing), or NULL with an error. */
const struct fmt_driver *blk_probe_file(const char *path, vf_error **errp);
/* Create path (under a temporary name until blk_commit). */
struct blk *blk_create(const char *path, const char *fmt,
                       const struct fmt_create_opts *co, vf_error **errp);
/* Create an image on a caller-owned io (a window into an archive being
 * written, a memory store): the driver lays it out on io as on a new
 * file.  The io stays the caller's: blk_commit() flushes the metadata
 * (and io, unless unsafe) but renames nothing, and blk_close() neither
 * closes io nor removes what was written; the caller closes io after
 * the blk.  name is for messages and the names a format records (a VMDK
 * descriptor's extent line).  Only single-file formats: a driver that
 * asks for a sibling file fails.  A backing file is accepted as for
 * blk_create. */
struct blk *blk_create_io(struct io *io, const char *name, const char *fmt,
                          const struct fmt_create_opts *co,
                          vf_error **errp);
/* A private copy-on-write layer over base (which stays read-only and
 * stays the caller's: close the overlay first): a qcow2 image in an
 * already-unlinked file under tmpdir ($TMPDIR or /var/tmp when NULL),
 * holding only what is written to it.  Reads and block status fall
 * through to base where nothing was written, so the engine converts
 * base + overlay in one pass.  Nothing is left on disk when the process
 * ends, however it ends. */
struct blk *blk_create_overlay(struct blk *base, const char *tmpdir,
                               vf_error **errp);
/* Flush metadata, fsync (unless unsafe), rename temporaries to their
 * final names, fsync the directory.  For images opened read-write, and
 * those made by blk_create_io, flush and fsync only.  0 / -1. */
int blk_commit(struct blk *b, bool unsafe, vf_error **errp);
/* Close the chain; an uncommitted created image's files are unlinked.
 * Accepts NULL. */
void blk_close(struct blk *b);

/* The output will be fsynced at commit: start writeback of its files as
 * they are written (see io.h early_writeback). */
void blk_set_early_writeback(struct blk *b);

/* Unlink not-yet-committed outputs on SIGINT, SIGTERM, SIGHUP, SIGPIPE
 * (then die of the signal as usual).  For programs, once, at start. */
/* A working directory (files only, no subdirectories) the handler also
 * empties and removes; dir must stay valid until forgotten. */
void blk_tmpdir_register(const char *dir);
void blk_tmpdir_forget(const char *dir);
void blk_cleanup_on_signals(void);

/* Guest I/O through the driver, bounds-checked.  Reads of ranges
 * unallocated in the whole chain return zeros. */
int blk_pread(struct blk *b, void *buf, uint64_t off, size_t len,
              vf_error **errp);
int blk_pwrite(struct blk *b, const void *buf, uint64_t off, size_t len,
               vf_error **errp);
int blk_zero(struct blk *b, uint64_t off, uint64_t len, vf_error **errp);

/* For drivers: write zeros over [off, off+len) through the driver's own
 * pwrite (no locking, no bounds check: call it from inside the driver). */
int blk_write_zeros(struct blk *b, uint64_t off, uint64_t len,
                    vf_error **errp);

/* For drivers: fill buf with [off, off+len) of b's backing image (zeros
 * beyond its end or when b has none). */
int blk_read_backing(struct blk *b, void *buf, uint64_t off, size_t len,
                     vf_error **errp);

/* Status of this layer only (BLK_UNALLOC possible). */
int blk_block_status(struct blk *b, uint64_t off, uint64_t len,
                     uint64_t *pnum, uint64_t *host_off, vf_error **errp);
/* Status through the chain down to (not including) base, NULL for all:
 * BLK_DATA, BLK_ZERO, or BLK_UNALLOC when nothing down to base has it.
 * *depth gets the layer that answered (0 = top). */
int blk_block_status_above(struct blk *b, struct blk *base, uint64_t off,
                           uint64_t len, uint64_t *pnum, int *depth,
                           uint64_t *host_off, vf_error **errp);

/* For drivers growing a layer: does anything below b (its backing chain)
 * hold data in [off, off+len)?  1 yes, 0 no (unallocated, zero, or past
 * the backing's end: reads as zeros), -1 on error.  Data that happens to
 * be zeros counts as data. */
int blk_backing_has_data(struct blk *b, uint64_t off, uint64_t len,
                         vf_error **errp);

/* How many bs-sized, bs-aligned blocks of [0, end) hold data somewhere
 * in src's chain (what a sparse output of block size bs must allocate;
 * for measure).  src may be NULL: none.  0 / -1. */
int blk_count_data_blocks(struct blk *src, uint64_t bs, uint64_t end,
                          uint64_t *count, vf_error **errp);

/* Create an extra output file next to the main one (name relative to the
 * image's directory); owned by b, renamed on commit.  For multi-file
 * formats; refused for an image made by blk_create_io. */
struct io *blk_create_sibling(struct blk *b, const char *name,
                              vf_error **errp);
/* Open a file a multi-file format references (extent, parent), confined
 * to b->dir unless allow_backing_path.  Read-only. */
struct io *blk_open_sibling(struct blk *b, const char *name,
                            vf_error **errp);
/* Does a relative name stay inside its directory (not absolute, no ".."
 * component)?  The confinement rule for names an image stores. */
bool blk_name_is_confined(const char *name);
/* Resolve name relative to b->dir with the confinement rule; malloc'd. */
char *blk_resolve_name(struct blk *b, const char *name, vf_error **errp);

/* For drivers that add or replace files beside an image opened
 * read-write (VMDK extents and descriptors on resize).  blk_tmp_create
 * makes a new file beside final_path under a temporary name (*tmp_path,
 * malloc'd), unlinked on SIGINT/SIGTERM/SIGHUP/SIGPIPE until it is
 * finished or abandoned.  blk_tmp_finish renames it to final_path (the
 * caller fsyncs it first; with noreplace it fails rather than replace an
 * existing file); on failure it stays registered: abandon it.
 * blk_tmp_abandon unlinks it (NULL accepted).  The caller frees
 * tmp_path after finish or abandon.  blk_fsync_dir makes renames in dir
 * durable. */
struct io *blk_tmp_create(const char *final_path, char **tmp_path,
                          vf_error **errp);
int blk_tmp_finish(char *tmp_path, const char *final_path, bool noreplace,
                   vf_error **errp);
void blk_tmp_abandon(char *tmp_path);
int blk_fsync_dir(const char *dir, vf_error **errp);

#endif
