/*
 * migrate.h: the whole cold migration of one guest: inspect → preflight
 * → prepare (the target's conversion edits plus those given) → package
 * (the conversion streams into it) → verify.
 *
 * Preflight runs twice before any byte is copied: on the source as it
 * is (reported: what the migration will have to fix), and on the
 * prepared guest with the package's format facts (a failing error-level
 * rule stops the migration unless --force).  The package runs it once
 * more on what it wrote.  Verify re-reads every artifact from storage
 * (its cached pages dropped) and checks its SHA-256 against the one
 * recorded while writing, and compares each plain disk image's guest
 * content with the prepared source.
 */
#ifndef VF_MIGRATE_H
#define VF_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"
#include "prepare/prepare.h"

struct migrate_opts {
    const char *to;                /* package target (default "local") */
    const char *outdir;            /* NULL: ./NAME */
    const char *name;              /* VM name (NULL: from the source) */
    unsigned memory_mb, vcpus;     /* 0: from the source, else defaults */
    const char *firmware;          /* from a description, or NULL */
    const struct prep_queue *q;    /* edits given */
    const char *root;              /* the OS to edit */
    const char *ofmt, *ostr;       /* -O / -o where the target allows */
    const char *manifest_alg;      /* OVA manifests: sha256 / sha1 */
    const char *aws_format;
    const char *preallocation;
    bool bz2, ova;
    bool force;                    /* go on when preflight fails */
    bool unsafe;                   /* no fsync */
    bool no_verify;
    bool quiet;                    /* no change log */
    int threads;
    /* one bar per disk: called with disk index, bytes done, total */
    void (*progress)(void *opaque, size_t disk, uint64_t done,
                     uint64_t total);
    /* a stage starts ("Inspecting", ...) */
    void (*stage)(void *opaque, const char *what);
    void *opaque;
};

/* Migrate the guest whose disks are disks[0..n-1] (opened read-only by
 * the caller, never written; names for messages and file names).
 * *result gets the summary document: {target, outdir, name, stages:
 * [{stage, seconds}], changes, warnings, preflight-source, preflight,
 * artifacts, verify}, also when a stage fails after the source was
 * inspected (then with "error").  0 / -1. */
int migrate_run(struct blk *const *disks, char *const *names, size_t n,
                const struct migrate_opts *o, struct json_object **result,
                vf_error **errp);

#endif
