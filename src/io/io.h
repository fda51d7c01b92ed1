/*
 * io.h: byte backends under the format drivers.
 *
 * An io is a flat, byte-addressed store: a local file, a memory buffer, or
 * a filter stacked on another io (fault injection for tests, a digesting
 * window into an archive).  Format
 * drivers read and write their containers only through this interface, so
 * every format works on every backend.
 *
 * All calls are thread-safe for disjoint ranges (pread/pwrite semantics).
 * Reads past the end of the store fill the buffer with zeros (SQLite's rule
 * for its VFS); a driver that must tell "beyond end of file" checks
 * io_size() itself.
 */
#ifndef VF_IO_H
#define VF_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct io;

struct io_ops {
    /* Read len bytes at off.  Bytes past the end read as zeros.  0 / -1. */
    int (*pread)(struct io *io, void *buf, size_t len, uint64_t off,
                 vf_error **errp);
    /* Write len bytes at off, extending the store if needed.  0 / -1. */
    int (*pwrite)(struct io *io, const void *buf, size_t len, uint64_t off,
                  vf_error **errp);
    /* Current size in bytes, or -1. */
    int64_t (*size)(struct io *io, vf_error **errp);
    /* Set the size (grow with zeros / shrink).  0 / -1. */
    int (*truncate)(struct io *io, uint64_t size, vf_error **errp);
    /* Make [off, off+len) read as zeros, freeing space where possible.
     * NULL: the core writes zeros. */
    int (*punch)(struct io *io, uint64_t off, uint64_t len, vf_error **errp);
    /* Reserve space for [off, off+len) without changing content (grows the
     * size if needed).  NULL: the core writes zeros past the end. */
    int (*falloc)(struct io *io, uint64_t off, uint64_t len, vf_error **errp);
    /* Report the extent starting at off: *is_data says whether it holds
     * data (true) or is a hole (false); *len gets its length (> 0, never
     * past the end).  NULL: everything is data. */
    int (*extent)(struct io *io, uint64_t off, uint64_t *len, bool *is_data,
                  vf_error **errp);
    /* Make written data durable.  NULL: nothing to do. */
    int (*flush)(struct io *io, vf_error **errp);
    /* Release the backend's state (not the struct io itself). */
    void (*close)(struct io *io);
};

struct io {
    const struct io_ops *ops;
    void *priv;
    char *name;          /* for messages; owned */
    bool readonly;
    int fd;              /* -1 unless a local file: lets the engine mmap */
    bool early_writeback;/* start writeback as data is written, so the
                            final fsync has little left to do */
};

int io_pread(struct io *io, void *buf, size_t len, uint64_t off,
             vf_error **errp);
int io_pwrite(struct io *io, const void *buf, size_t len, uint64_t off,
              vf_error **errp);
int64_t io_size(struct io *io, vf_error **errp);
int io_truncate(struct io *io, uint64_t size, vf_error **errp);
int io_punch(struct io *io, uint64_t off, uint64_t len, vf_error **errp);
int io_falloc(struct io *io, uint64_t off, uint64_t len, vf_error **errp);
int io_extent(struct io *io, uint64_t off, uint64_t *len, bool *is_data,
              vf_error **errp);
int io_flush(struct io *io, vf_error **errp);
/* Copy len bytes from src to dst inside one io, through a bounded buffer
 * (for drivers that relocate metadata or data blocks).  The ranges must
 * not overlap.  0 / -1. */
int io_copy(struct io *io, uint64_t dst, uint64_t src, uint64_t len,
            vf_error **errp);
/* Close and free; accepts NULL. */
void io_close(struct io *io);

/* Local files.  io_file_open: O_RDONLY when readonly, else O_RDWR.
 * io_file_create: creates path exclusively (O_EXCL), mode 0644. */
struct io *io_file_open(const char *path, bool readonly, vf_error **errp);
struct io *io_file_create(const char *path, vf_error **errp);

/* A growable in-memory store, initially size bytes of zeros. */
struct io *io_mem_new(const char *name, uint64_t size, vf_error **errp);
/* A read-only view of a caller-owned buffer (borrowed until io_close). */
struct io *io_mem_view(const char *name, const void *buf, size_t len);

/* A filter over inner (which it owns) that fails the nth I/O call
 * (1-based, counting pread, pwrite, truncate, punch, falloc, flush) with
 * EIO, and every call after it when sticky.  For tests. */
struct io *io_fault_new(struct io *inner, uint64_t nth, bool sticky);

/* A write-once window into inner (borrowed: it must outlive the window,
 * which never closes it): offset X of the window is base + X of inner.
 * For an image streamed straight into an archive member.  Writes must
 * come strictly in order, each starting where the last one ended (an
 * error names both offsets otherwise), so the bytes fed to the digest,
 * as they arrive, are exactly the member's bytes as stored.  alg names
 * the digest (OpenSSL's names: "sha256", "sha1"), or NULL for none.
 * The size is the length written; reads past it give zeros; truncate
 * (except to the current size), punch and falloc are refused; flush
 * flushes inner.  name is for messages (NULL: inner's).  Not a file: fd
 * is -1. */
struct io *io_window_new(struct io *inner, uint64_t base, const char *alg,
                         const char *name, vf_error **errp);
/* Bytes written into a window so far (0 for an io that is not one). */
uint64_t io_window_length(struct io *io);
/* Finish a window's digest into md (up to 64 bytes; *mdlen gets the
 * length); writes after it are refused.  Once only.  0 / -1. */
int io_window_digest(struct io *io, uint8_t *md, unsigned *mdlen,
                     vf_error **errp);

/* A read-only view of [off, off+len) of inner (a disk stored inside a
 * container: a VMDK member of an OVA), named name (NULL: inner's name).
 * Its size is len; reads past len are zeros; writes, truncate and punch
 * are refused; extents map through to inner's.  With own_inner the slice
 * closes inner (also when it fails to make one); without, inner is
 * borrowed and must outlive the slice, so several slices can share one
 * inner (the owner closes them all first).  NULL when out of memory or
 * when off + len does not fit an int64_t. */
struct io *io_slice_new(struct io *inner, uint64_t off, uint64_t len,
                        bool own_inner, const char *name);

#endif
