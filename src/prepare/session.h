/*
 * session.h: one guest prepared for writing out: its disks opened
 * read-only under copy-on-write overlays (or read-write, in place),
 * inspected, and edited (a target's conversion edits, then the edits
 * given).  vmferry prepare, package and migrate then convert the
 * overlays wherever they go.
 */
#ifndef VF_PREP_SESSION_H
#define VF_PREP_SESSION_H

#include <stdbool.h>

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"
#include "prepare/prepare.h"

#define PREP_MAX_DISKS 64

struct prep_session_opts {
    const struct blk_open_opts *oo;
    const char *target;           /* queue target's conversion edits */
    const struct prep_queue *q;   /* edits given (may be NULL or empty) */
    const char *root;             /* the OS to edit, or NULL: the first */
    bool quiet;                   /* no change log on stderr */
    bool in_place;                /* edit the images themselves */
};

struct prep_session {
    int n;
    struct blk *src[PREP_MAX_DISKS];   /* as opened */
    struct blk *ov[PREP_MAX_DISKS];    /* what to convert (the overlay,
                                          or src[i] in place) */
    struct prep p;                     /* changes and warnings */
    struct json_object *report;        /* inspection before the edits */
    bool borrowed;                     /* src[] are the caller's */
};

/* Open, inspect and edit.  On failure the session is still closed with
 * prep_session_close.  0 / -1. */
int prep_session_run(struct prep_session *s, char *const *paths, int n,
                     const struct prep_session_opts *o, vf_error **errp);
/* The same on images the caller opened (read-only; they stay the
 * caller's and must outlive the session). */
int prep_session_run_blks(struct prep_session *s, struct blk *const *blks,
                          int n, const struct prep_session_opts *o,
                          vf_error **errp);
void prep_session_close(struct prep_session *s);

#endif
