/*
 * ovf.h: the OVF descriptor of an OVA package (pkg-ovf.c), in VMware's
 * or VirtualBox's dialect of OVF 1.0 (DMTF DSP0243 1.x).
 *
 * The descriptor is built twice: first with the largest number every
 * size can be (to reserve its space at the head of the archive, before
 * the disks are written), then with the real sizes, padded to the same
 * length.  Nothing else in it changes between the two.
 */
#ifndef VF_OVF_H
#define VF_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "targets/package.h"

/* The hardware and guest identity the descriptor declares. */
struct ovf_choice {
    bool vbox;                 /* VirtualBox's dialect, else VMware's */
    const char *controller;    /* for pf_controller: "pvscsi",
                                  "lsilogic" or "sata" */
    const char *ctl_subtype;   /* rasd:ResourceSubType of the controller:
                                  "VirtualSCSI", "lsilogic", "AHCI" */
    const char *nic_subtype;   /* "VmxNet3", "E1000", "virtio" */
    const char *network;       /* the logical network's name */
    int cim_os;                /* CIM_OperatingSystem.OSType */
    char vmw_os[40];           /* VMware guest id (vmw:osType) */
    const char *vbox_os;       /* VirtualBox OS type */
    const char *hw_family;     /* vssd:VirtualSystemType */
    bool efi;                  /* firmware efi */
    size_t max_disks;          /* what the controllers can hold */
};

/* One disk of the package, in References order. */
struct ovf_disk {
    const char *href;          /* the member's name */
    uint64_t file_size;        /* ovf:size of the File */
    uint64_t capacity;         /* virtual size in bytes */
    uint64_t populated;        /* ovf:populatedSize in bytes */
};

/* Decide the hardware and guest identity for p's VM (vbox: VirtualBox's
 * dialect). */
void ovf_choose(const struct pkg *p, bool vbox, struct ovf_choice *c);

/* The descriptor of p's VM with disks d[0..n-1] (the file sizes and
 * populated sizes replaced by UINT64_MAX when placeholder), as UTF-8
 * XML; malloc'd, *len its length.  NULL with an error on failure (a VM
 * name that is not valid XML text, more disks than the controllers
 * hold, out of memory). */
char *ovf_build(const struct pkg *p, const struct ovf_choice *c,
                const struct ovf_disk *d, size_t n, bool placeholder,
                size_t *len, vf_error **errp);

#endif
