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

struct initrd_result {
    /* in: module names looked for ('_' form); out: found[i] */
    const char *want[INITRD_MAX_WANT];
    bool found[INITRD_MAX_WANT];
    int nwant;
    /* out */
    uint64_t files;
    bool microcode;            /* an early microcode archive */
    const char *compression;   /* of the main archive, or NULL */
    struct {
        const char *compression;
        uint64_t files;
    } segs[INITRD_MAX_SEGS_KEPT];
    int nsegs;
};

/* Scan the initramfs read through read(); 0 / -1 (what was found before
 * an error stays in r). */
int initrd_scan(initrd_read_fn read, void *opaque, struct initrd_result *r,
                vf_error **errp);
void initrd_note_module(struct initrd_result *r, const char *mod);

#endif
