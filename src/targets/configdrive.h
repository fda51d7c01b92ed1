/*
 * configdrive.h: cloud-init seeds and OpenStack config drives, built from
 * the user's files into a small ISO 9660 or FAT image.
 *
 * Two layouts, chosen by the label:
 *  - "cidata": cloud-init's NoCloud seed: meta-data (YAML), user-data,
 *    network-config in the root;
 *  - "config-2": an OpenStack config drive (version 2):
 *    openstack/latest/meta_data.json, user_data, network_data.json,
 *    mirrored under older version directories as Nova does (configdrive.c
 *    says which and why).
 * The metadata is taken as given or generated from an instance id, a host
 * name and SSH public keys.
 */
#ifndef VF_CONFIGDRIVE_H
#define VF_CONFIGDRIVE_H

#include <stddef.h>

#include "core/error.h"

enum configdrive_fs {
    CONFIGDRIVE_ISO,              /* ISO 9660, Joliet, Rock Ridge */
    CONFIGDRIVE_VFAT,             /* FAT12/FAT16 with long names */
};

/* At most this many SSH key files. */
#define CONFIGDRIVE_MAX_KEY_FILES 16
/* All the files read, together, at most (a seed is kilobytes; Nova caps
 * user data at 64 KiB). */
#define CONFIGDRIVE_CONTENT_MAX (64u << 20)

struct configdrive_opts {
    enum configdrive_fs fs;
    const char *label;            /* "cidata" or "config-2" */
    /* Host files, read whole and used byte for byte; NULL when absent. */
    const char *user_data;        /* NoCloud: an empty user-data if NULL */
    const char *meta_data;        /* instead of generated metadata (for
                                     config-2: a JSON object with "uuid") */
    const char *network_config;   /* cidata: network-config (v1/v2 YAML) */
    const char *network_data;     /* config-2: network_data.json (JSON) */
    /* What generated metadata says (not with meta_data): */
    const char *instance_id;      /* NULL: a random UUID */
    const char *hostname;         /* NULL: none */
    const char *const *ssh_keys;  /* host files of public keys, one a line
                                     (authorized_keys format) */
    size_t n_ssh_keys;
};

/* "iso" or "vfat" into *fs.  0 / -1. */
int configdrive_fs_parse(const char *name, enum configdrive_fs *fs,
                         vf_error **errp);

/* Build the drive o describes at path out: written under a temporary name
 * beside it, fsynced, renamed over out, and the directory fsynced; on
 * failure nothing is left.  0 / -1. */
int configdrive_build(const struct configdrive_opts *o, const char *out,
                      vf_error **errp);

#endif
