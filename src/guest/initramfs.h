/*
 * initramfs.h: the streaming initramfs scanner (initramfs.c): which files
 * (and so which kernel modules) an initramfs holds.
 */
#ifndef VF_GUEST_INITRAMFS_H
#define VF_GUEST_INITRAMFS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Read up to len bytes; 0 at end, -1 on error. */
typedef long (*initrd_read_fn)(void *opaque, void *buf, size_t len,
                               vf_error **errp);

#define INITRD_MAX_WANT 32
#define INITRD_MAX_SEGS_KEPT 8
/* Most bytes of one entry's data a visitor may capture. */
#define INITRD_CAPTURE_MAX (16u << 20)

/* Optional: sees every entry (not the trailers) in archive order, as the
 * kernel unpacks them (a later entry of the same name replaces an
 * earlier one). */
struct initrd_visitor {
    /* seg: the segment's index; name as stored; mode: cpio mode bits;
     * size: data bytes.  Returns how many bytes of the data to capture
     * (0: none; capped at INITRD_CAPTURE_MAX). */
    size_t (*entry)(void *opaque, int seg, const char *name, uint32_t mode,
                    uint32_t size);
    /* The captured bytes of the entry entry() asked for, once read
     * whole (borrowed until it returns). */
    void (*data)(void *opaque, const char *name, const uint8_t *data,
                 size_t len);
    void *opaque;
};

struct initrd_result {
    /* in: module names looked for ('_' form); out: found[i] */
    const char *want[INITRD_MAX_WANT];
    bool found[INITRD_MAX_WANT];
    int nwant;
    /* in, optional */
    const struct initrd_visitor *visit;
    bool stop_when_found;      /* stop once every want[] is found (not
                                  with a visitor) */
    /* out */
    uint64_t files;
    bool microcode;            /* an early microcode archive */
    const char *compression;   /* of the main archive, or NULL */
    struct {
        const char *compression;
        uint64_t files;
    } segs[INITRD_MAX_SEGS_KEPT];
    int nsegs;
    bool partial;              /* stopped early (stop_when_found): files
                                  and segs cover what was read */
};

/* Scan the initramfs read through read(); 0 / -1 (what was found before
 * an error stays in r). */
int initrd_scan(initrd_read_fn read, void *opaque, struct initrd_result *r,
                vf_error **errp);
void initrd_note_module(struct initrd_result *r, const char *mod);

#endif
