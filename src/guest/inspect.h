/*
 * inspect.h: offline guest inspection: the whole report of one guest (its
 * disks, in order) as a json-c object.  The schema is documented in
 * docs/inspect-json.md and is stable.
 */
#ifndef VF_INSPECT_H
#define VF_INSPECT_H

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"

/* Version of the JSON schema (docs/inspect-json.md). */
#define INSPECT_SCHEMA_VERSION 1

/* Inspect the guest whose disks are paths[0..n-1], opened read-only with
 * oo.  Returns the report (caller releases it with json_object_put), or
 * NULL with an error when an image cannot be opened.  Damage inside the
 * guest is reported as warnings in the report, not as an error. */
struct json_object *inspect_images(char *const *paths, int n,
                                   const struct blk_open_opts *oo,
                                   vf_error **errp);

/* Flags for inspect_disks. */
#define INSPECT_NO_FILES 0x1   /* stop after tables, volumes and probes:
                                  no filesystem is opened (fuzzing) */

/* The same on images already open (not closed here). */
struct json_object *inspect_disks(struct blk *const *disks, size_t n,
                                  unsigned flags, vf_error **errp);

#endif
