/*
 * source-int.h: what source.c shares with the description readers
 * (source-ova.c, source-vmx.c, source-libvirt.c).  Not for other modules.
 */
#ifndef VF_PIPELINE_SOURCE_INT_H
#define VF_PIPELINE_SOURCE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libxml/tree.h>

#include "pipeline/source.h"

/* Bounds on what a description may claim: more memory or CPUs than any
 * hypervisor gives one guest is a broken or hostile file. */
#define SRC_MAX_MEMORY_MB (UINT64_C(1) << 26)   /* 64 TiB */
#define SRC_MAX_VCPUS 4096

/* The readers: fill vm (kind, name, memory, CPUs, firmware, disks,
 * facts) from the description at path.  vm->facts exists already.
 * 0 / -1; the caller prefixes errors with path and cleans vm up. */
int src_ova_open(const char *path, const struct blk_open_opts *oo,
                 struct src_vm *vm, vf_error **errp);
int src_vmx_open(const char *path, const struct blk_open_opts *oo,
                 struct src_vm *vm, vf_error **errp);
int src_libvirt_open(const char *path, const struct blk_open_opts *oo,
                     struct src_vm *vm, vf_error **errp);

/* Append an opened disk (taken over, also on failure) named name. */
int src_add_disk(struct src_vm *vm, struct blk *b, const char *name,
                 vf_error **errp);

/* blk_open(path) read-only for a disk a description names, refusing
 * what is neither a regular file nor a block device (a FIFO or a
 * terminal would block the read; a directory is a mistake). */
struct blk *src_open_named_disk(const char *path,
                                const struct blk_open_opts *oo,
                                vf_error **errp);

/* Add a line to facts.notes. */
void src_note(struct src_vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON string, or JSON null for NULL. */
struct json_object *src_json_str(const char *s);

/* Read [off, off+len) of io into a new NUL-terminated buffer (*out,
 * malloc'd), refusing len > max with a message naming what.  0 / -1. */
int src_read_bytes(struct io *io, uint64_t off, uint64_t len, size_t max,
                   const char *what, char **out, vf_error **errp);

/* Strict unsigned decimal (surrounding blanks allowed) no bigger than
 * max.  false when s is not one. */
bool src_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* The directory of path (malloc'd, NULL when out of memory). */
char *src_dir_of(const char *path);

/* XML, for the OVF and libvirt readers.  src_xml_read parses buf (len
 * bytes) without network access, refusing entity declarations (the
 * "billion laughs"); what names the document in errors.  Elements and
 * attributes are matched by local name, whatever their namespace: OVF
 * 1.x and 2.x, rasd/sasd/epasd prefixes all read the same. */
xmlDoc *src_xml_read(const char *buf, size_t len, const char *what,
                     vf_error **errp);
bool src_xml_is(const xmlNode *n, const char *local);
/* First element child of n named local, or NULL. */
xmlNode *src_xml_child(const xmlNode *n, const char *local);
/* Attribute / trimmed text content, malloc'd, NULL when absent. */
char *src_xml_attr(const xmlNode *n, const char *local);
char *src_xml_text(const xmlNode *n);
/* Trimmed text of n's first child element named local, or NULL. */
char *src_xml_child_text(const xmlNode *n, const char *local);

#endif
