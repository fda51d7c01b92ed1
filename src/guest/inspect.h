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

#define INSPECT_RW 0x2         /* open ext filesystems for editing (the
                                  disks must be writable: overlays) */

/* The same on images already open (not closed here). */
struct json_object *inspect_disks(struct blk *const *disks, size_t n,
                                  unsigned flags, vf_error **errp);

/* For editing (vmferry prepare): inspect and keep the guest open.  The
 * report goes to *report; close with inspect_close (after the disks'
 * users are done with the filesystems, before the disks are closed). */
struct inspect;
struct gview;
struct inspect *inspect_open(struct blk *const *disks, size_t n,
                             unsigned flags, struct json_object **report,
                             vf_error **errp);
/* The file tree of the OS whose root device is root (the report's
 * "root"): the root fs plus its fstab's ext mounts. */
struct gview *inspect_os_view(struct inspect *in, const char *root,
                              vf_error **errp);
void inspect_view_free(struct gview *v);
/* Write the metadata of every edited filesystem.  0 / -1. */
int inspect_flush(struct inspect *in, vf_error **errp);
void inspect_close(struct inspect *in);

#endif
