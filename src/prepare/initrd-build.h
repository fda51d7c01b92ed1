/*
 * initrd-build.h: what the initramfs edit (edit-initramfs.c) builds: an
 * uncompressed cpio "newc" archive (cpio-write.c) and the kmod index
 * files modprobe reads inside it (modindex.c).  Internal to prepare/.
 */
#ifndef VF_PREPARE_INITRD_BUILD_H
#define VF_PREPARE_INITRD_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

struct prep;

/* ---- cpio newc writer (cpio-write.c) ---- */

/* An archive built in memory, at most max bytes (0: 1 GiB). */
struct cpiow {
    uint8_t *buf;
    size_t len, cap, max;
    uint32_t ino;              /* next inode number */
    uint32_t mtime;            /* of every entry (seconds) */
    int finished;
};

/* One entry: a directory (mode 040755...), a regular file or a symlink
 * (data is the target), named without a leading '/'.  0 / -1. */
int cpiow_add(struct cpiow *w, const char *name, uint32_t mode,
              const void *data, size_t len, vf_error **errp);
/* The TRAILER!!! entry; nothing may be added after it. */
int cpiow_finish(struct cpiow *w, vf_error **errp);
void cpiow_free(struct cpiow *w);

/* ---- kmod index (modindex.c) ---- */

/* One key of an index: modules.dep.bin maps a module name to its
 * "path: dep dep" line, modules.alias.bin an alias pattern to a module
 * name.  Lower priority values come first among a key's values. */
struct modindex_entry {
    const char *key;
    const char *value;
    uint32_t priority;
};

/* Serialise entries as kmod's index format 2.1 into a malloc'd *out.
 * Keys must be ASCII (below 128) and at most MODINDEX_KEY_MAX bytes;
 * entries is sorted in place.  0 / -1. */
#define MODINDEX_KEY_MAX 1024
int modindex_build(struct modindex_entry *entries, size_t n, uint8_t **out,
                   size_t *len, vf_error **errp);

/* ---- a kernel's modules, as modprobe sees them (kmods.c) ---- */

/* Growing text; oom set (and nothing more added) when memory ran out. */
struct textbuf {
    char *s;
    size_t len, cap;
    bool oom;
};
void textbuf_add(struct textbuf *t, const char *s, size_t n);
void textbuf_str(struct textbuf *t, const char *s);

/* Module names and paths: real ones are far shorter. */
#define KMOD_PATH_MAX 512
/* Modules added to one initramfs with their dependencies (virtio needs
 * 6, Hyper-V 5), the longest dependency chain followed, and the
 * dependencies read from one modules.dep line (real ones: under 30). */
#define KMOD_CLOSURE_MAX 256
#define KMOD_DEPTH_MAX 32
#define KMOD_DEPS_MAX 256

struct kmod {
    char name[64];             /* '_' form */
    const char *path;          /* relative to the modules dir */
    const char *deps;          /* the text after ':' in modules.dep */
    int color;                 /* closure walk: 0 new, 1 open, 2 done */
};

/* The modules of one kernel: modules.dep (or a walk of its tree when
 * there is none), modules.builtin, modules.alias. */
struct kmod_db {
    struct kmod *v;
    size_t n, cap;
    char *text;                /* modules.dep, cut in place */
    char **walked;             /* paths found by a walk */
    size_t nwalked;
    char *builtin;             /* modules.builtin */
    char *alias;               /* modules.alias */
};

int kmod_db_load(struct prep *p, const char *mdir, const char *ver,
                 struct kmod_db *db, vf_error **errp);
void kmod_db_free(struct kmod_db *db);
struct kmod *kmod_by_name(struct kmod_db *db, const char *name);
/* path relative to the modules dir, or /lib/modules/VER/... (old depmod) */
struct kmod *kmod_by_path(struct kmod_db *db, const char *ver,
                          const char *path);
/* builtin[i] := modules.builtin lists names[i]; one pass over it. */
void kmod_builtin(const struct kmod_db *db, const char *const *names,
                  size_t n, bool *builtin);
/* What the guest falls back to without driver name (for warnings). */
const char *kmod_fallback(const char *name);

/* The modules to add and their dependencies, dependencies first. */
struct kmod_plan {
    struct prep *p;
    struct kmod_db *db;
    const char *ver;
    struct kmod *add[KMOD_CLOSURE_MAX];
    size_t nadd;
    bool loop_warned;
};
/* Add k and (recursively) what it depends on; a loop is cut with a
 * warning; -1 with an error past KMOD_DEPTH_MAX or KMOD_CLOSURE_MAX. */
int kmod_plan_add(struct kmod_plan *pl, struct kmod *k, vf_error **errp);
bool kmod_plan_has(const struct kmod_plan *pl, const struct kmod *k);
/* "path: dep dep\n" for k, naming only dependencies modules.dep lists. */
void kmod_dep_line(struct textbuf *t, struct kmod_plan *pl,
                   const struct kmod *k);
/* The guest's modules.alias lines for the plan's modules. */
void kmod_alias_lines(struct kmod_plan *pl, struct textbuf *t);
/* kmod's indexes of a modules.dep / modules.alias text. */
int kmod_dep_index(const char *text, uint8_t **out, size_t *olen,
                   vf_error **errp);
int kmod_alias_index(const char *text, uint8_t **out, size_t *olen,
                     vf_error **errp);

#endif
