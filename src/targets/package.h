/*
 * package.h: `vmferry package`: a guest's disks written the way a target
 * imports them, with the target's metadata and a manifest.json.
 *
 * A package is built in a working directory beside OUTDIR (OUTDIR's name
 * with ".vmferry-partial" appended) and renamed to OUTDIR when it is
 * whole, so a killed run leaves nothing that looks finished.  Each
 * target is one function (pkg_targets[]); it writes its artifacts into
 * p->dir through the helpers below, which record each artifact's size
 * and SHA-256 for manifest.json.
 */
#ifndef VF_PACKAGE_H
#define VF_PACKAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"
#include "core/opts.h"
#include "formats/format.h"

/* What the metadata says about the VM: from the options, the source's
 * description (a .vmx, an OVF, a domain XML) and inspection. */
struct pkg_vm {
    char *name;                /* --name, else the first disk's base name */
    unsigned memory_mb;        /* --memory (default 2048) */
    unsigned vcpus;            /* --vcpus (default 2) */
    const char *firmware;      /* "bios" or "uefi" (inspection) */
    const char *os_type;       /* "linux", "windows" or "unknown" */
    const char *distro;        /* inspection's, or NULL */
    const char *version;       /* "12.4", or NULL */
    int major, minor;          /* -1 when unknown */
    const char *arch;          /* "x86_64", ... (default x86_64) */
    const char *product;       /* product name, or NULL */
    const char *osinfo;        /* libosinfo short id ("debian12"), or NULL */
    /* What the guest can use, as inspection found it */
    bool virtio_storage;       /* virtio_pci + virtio_blk or _scsi at boot */
    bool virtio_blk, virtio_scsi, virtio_net;
    bool vmw_pvscsi;           /* VMware paravirtual SCSI at boot */
    bool vmxnet3;              /* VMware's paravirtual NIC available */
    const char *disk_bus;      /* "virtio", "scsi" or "sata" */
    const char *nic_model;     /* "virtio" or "e1000" */
};

/* One disk to write: what the engine reads (the source, or the overlay
 * holding the prepare edits). */
struct pkg_disk {
    struct blk *blk;
    const char *src_path;      /* as given, for names and messages */
};

struct pkg;
typedef void (*pkg_progress_fn)(void *opaque, size_t disk, uint64_t done,
                                uint64_t total);

struct pkg {
    const char *target;        /* as given */
    const char *outdir;        /* final directory */
    char *dir;                 /* working directory (renamed at the end) */
    struct pkg_vm vm;
    struct pkg_disk *disks;
    size_t ndisks;
    struct json_object *report;    /* inspection of what is written */
    const char *ofmt;          /* -O override, or NULL: the target's own */
    const char *ostr;          /* -o list for the -O format, or NULL */
    const char *preallocation; /* --preallocation MODE, or NULL */
    const char *manifest_alg;  /* --manifest sha256 (default) | sha1 */
    bool bz2;                  /* --bz2: CloudStack disks compressed */
    bool ova;                  /* --ova: an OVA where the target offers
                                  one as an alternative (virtualbox) */
    const char *aws_format;    /* --aws-format ova|vmdk|raw|vhd */
    int threads;               /* 0: cores */
    bool unsafe;               /* no fsync */
    bool force;                /* a failing preflight is recorded, not
                                  fatal (migrate --force) */
    int64_t mtime;             /* timestamps written into archives
                                  (pkg_mtime()) */
    pkg_progress_fn progress;  /* may be NULL */
    void *opaque;
    /* What the package's disks are (pkg_preflight / pkg_run plan them
     * from the target and the options), for the preflight run over the
     * inspection report: the report's disks are the sources; these
     * replace their format facts. */
    const char *pf_format;     /* driver name: "vmdk", "raw", "vpc", ... */
    const char *pf_subkey;     /* "create-type", "subformat", or NULL */
    const char *pf_subval;     /* "streamOptimized", "fixed", ... */
    uint64_t pf_size_align;    /* virtual sizes rounded up to it (0: no) */
    const char *pf_controller; /* the VM's disk controller ("pvscsi",
                                  "lsilogic", "sata"), for the controller
                                  rules (NULL: pvscsi) */
    struct json_object *preflight; /* pf_run's verdict, after pkg_run */
    struct json_object *artifacts; /* [{name, role, format, size, sha256}] */
    struct json_object *meta;      /* target metadata for manifest.json */
    uint64_t bytes_written;        /* sum of artifact sizes */
};

/* Known targets, for --help and lookup. */
struct pkg_target {
    const char *name;
    const char *desc;
    const char *preflight;     /* the preflight target to run, or NULL */
    int (*run)(struct pkg *p, vf_error **errp);
};
extern const struct pkg_target pkg_targets[];
const struct pkg_target *pkg_find(const char *name);
/* The time archives are dated with: SOURCE_DATE_EPOCH when it is set
 * (reproducible packages), else now. */
int64_t pkg_mtime(void);
/* The prepare platform (`vmferry prepare --target`) whose conversion
 * edits package target to needs, or NULL when it needs none. */
const char *pkg_prep_target(const char *to);

/* Member k of JSON object o (NULL when o is NULL or has none), and the
 * same when it is a string; for reading inspection reports. */
struct json_object *pkg_jget(struct json_object *o, const char *k);
const char *pkg_jstr(struct json_object *o, const char *k);

/* A VM name made acceptable (A-Z a-z 0-9 . _ -, at most 64, not
 * starting with '.'; others become '_'): malloc'd, NULL when out of
 * memory. */
char *pkg_name_sanitize(const char *s);

/* Fill p->vm from p->report and what the caller already set (name,
 * memory, vcpus).  0 / -1. */
int pkg_vm_fill(struct pkg *p, vf_error **errp);

/* The whole package: pkg_begin, the target's function, the preflight
 * run of t->preflight (a failing error-level rule stops with its
 * statement and evidence), pkg_finish; pkg_abort on any failure.  p->vm
 * must be filled.  0 / -1. */
int pkg_run(struct pkg *p, const struct pkg_target *t, vf_error **errp);

/* Set p->pf_* for what target t writes with p's options (the target's
 * function may refine them), and run t's preflight rules over p->report
 * with those format facts: p->preflight gets the verdict.  A failing
 * error-level rule is an error naming it (statement, evidence, fix)
 * unless p->force.  0 / -1. */
int pkg_preflight(struct pkg *p, const struct pkg_target *t,
                  vf_error **errp);

/* Create the working directory for outdir (which must not exist, or be
 * an empty directory).  0 / -1. */
int pkg_begin(struct pkg *p, vf_error **errp);
/* Write manifest.json, fsync, and rename the working directory to
 * outdir.  0 / -1. */
int pkg_finish(struct pkg *p, vf_error **errp);
/* Remove the working directory and what is in it (after a failure). */
void pkg_abort(struct pkg *p);
void pkg_free(struct pkg *p);

/* Record an artifact: name relative to the package, role ("disk",
 * "metadata", "script", "archive"), format (or NULL), size, SHA-256. */
int pkg_add_artifact(struct pkg *p, const char *name, const char *role,
                     const char *format, uint64_t size,
                     const uint8_t sha256[32], vf_error **errp);
/* Write a small file of the package (whole, fsynced) and record it. */
int pkg_write_file(struct pkg *p, const char *name, const char *role,
                   const void *data, size_t len, unsigned mode,
                   vf_error **errp);
/* Convert disk i into the package as name, format fmt with options
 * optstr (may be NULL; p->o is added when it is the -O format), and
 * record it; its SHA-256 is computed by reading the file back.  0 / -1. */
int pkg_write_disk(struct pkg *p, size_t i, const char *name,
                   const char *fmt, const char *optstr, vf_error **errp);
/* SHA-256 (or SHA-1 when sha1) of a whole file; *size gets its size. */
int pkg_file_digest(const char *path, bool sha1, uint8_t *out,
                    uint64_t *size, vf_error **errp);
/* Lower-case hex of n bytes into out (2n + 1). */
void pkg_hex(const uint8_t *in, size_t n, char *out);
/* "<dir>/<name>", malloc'd. */
char *pkg_path(struct pkg *p, const char *name);
/* The base name for disk i's file: "<vm name>" for one disk,
 * "<vm name>-disk<i+1>" for several. */
char *pkg_disk_base(struct pkg *p, size_t i);

/* An OVA of every disk as a streamOptimized VMDK (pkg-ova.c): the .ovf
 * first, then the disks, then the manifest (p->manifest_alg); flavour
 * "vmware" or "virtualbox" (VirtualBox's OVF dialect).  Digests are
 * computed while the disks stream into the archive.  Recorded as one
 * artifact of role "archive"; the members' digests go to
 * p->meta["ova-members"].  0 / -1. */
int pkg_write_ova(struct pkg *p, const char *name, const char *flavour,
                  vf_error **errp);

/* The targets (one file each). */
int pkg_libvirt(struct pkg *p, vf_error **errp);      /* pkg-libvirt.c */
int pkg_openstack(struct pkg *p, vf_error **errp);    /* pkg-cloud.c */
int pkg_cloudstack(struct pkg *p, vf_error **errp);   /* pkg-cloud.c */
int pkg_azure(struct pkg *p, vf_error **errp);        /* pkg-cloud.c */
int pkg_hyperv(struct pkg *p, vf_error **errp);       /* pkg-cloud.c */
int pkg_virtualbox(struct pkg *p, vf_error **errp);   /* pkg-cloud.c */
int pkg_sce(struct pkg *p, vf_error **errp);          /* pkg-cloud.c */
int pkg_vmware(struct pkg *p, vf_error **errp);       /* pkg-ova.c */
int pkg_aws(struct pkg *p, vf_error **errp);          /* pkg-ova.c */
int pkg_gce(struct pkg *p, vf_error **errp);          /* pkg-gce.c */

#endif
