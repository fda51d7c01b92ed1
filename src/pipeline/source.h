/*
 * source.h: the input side of `vmferry migrate`: what the user names as
 * SRC... becomes one guest (struct src_vm) with its disks opened
 * read-only, in boot order, and what its description said.
 *
 * Inputs, told apart by content (the extension only breaks ties):
 *   disks    one or more disk images of any format (probed);
 *   ova      an OVA: a tar holding an .ovf, optionally a .mf manifest
 *            (every digest it lists is checked) and streamOptimized VMDK
 *            members, which are opened in place (io_slice_new) without
 *            extracting them;
 *   vmx      a VMware .vmx: disks, memory, CPUs, NICs, firmware;
 *   libvirt  a libvirt domain XML: disks, memory, vCPUs, firmware, NICs.
 * A description (ova, vmx, libvirt) is given alone.  With oo->format set,
 * every argument is a disk image of that format.
 *
 * Names a description references are confined as blk_open confines
 * backing files: a .vmx's disks and an OVA's members must stay in the
 * description's directory (the archive) unless oo->allow_backing_path.
 * A libvirt domain names host paths by design (absolute paths are the
 * norm): its disks are opened where it says.
 */
#ifndef VF_PIPELINE_SOURCE_H
#define VF_PIPELINE_SOURCE_H

#include <stddef.h>

#include "core/error.h"
#include "formats/format.h"

struct json_object;

/* A guest has at most this many disks (VMware: 4 SCSI controllers of 15
 * disks plus IDE; libvirt and OVF guests with more are not seen). */
#define SRC_MAX_DISKS 64

struct src_vm {
    char *kind;            /* "disks", "ova", "vmx", "libvirt" */
    char *name;            /* from the description, or NULL */
    unsigned memory_mb;    /* MiB; 0 when not given */
    unsigned vcpus;        /* 0 when not given */
    const char *firmware;  /* "bios", "uefi" (static) or NULL when not said */
    size_t ndisks;
    struct blk *disks[SRC_MAX_DISKS];  /* read-only, in boot order */
    char *disk_names[SRC_MAX_DISKS];   /* the path, or for an OVA the
                                          member name: for messages and
                                          output names */
    struct json_object *facts;  /* what the description said: nics,
                                   controllers, os, manifest check, notes
                                   (an array of strings); an object, never
                                   NULL after a successful src_open */
    /* private: the OVA file that an OVA's disks read through (their
     * slices borrow it); src_close closes it after the disks */
    struct io *container;
};

/* Open args[0..n-1] as one guest into *vm (which src_open initialises).
 * oo (may be NULL) is passed to every blk_open; for an OVA's members the
 * format is forced to vmdk and backing files are refused.  0 / -1; on
 * failure *vm holds nothing to free and the message names the argument
 * (and the member, disk key or element) at fault. */
int src_open(char *const *args, int n, const struct blk_open_opts *oo,
             struct src_vm *vm, vf_error **errp);

/* Close the disks (they stay the vm's until here: do not close them
 * yourself), then the container, and free everything.  Accepts a vm
 * that src_open failed on or zeroed; leaves it zeroed. */
void src_close(struct src_vm *vm);

#endif
