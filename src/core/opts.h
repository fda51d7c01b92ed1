/*
 * opts.h: "-o key=value,key=value" option lists, as qemu-img spells them.
 *
 * A driver takes the keys it knows with opts_get*(); the core then refuses
 * whatever nobody took (opts_check_unused), so a typo is an error, not a
 * silently ignored option.  ",," inside a value stands for a comma.
 */
#ifndef VF_OPTS_H
#define VF_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

struct opts;

/* Parse s (may be NULL or empty).  NULL on a malformed list. */
struct opts *opts_parse(const char *s, vf_error **errp);
/* Append the list in s to o (for repeated -o). 0 / -1. */
int opts_add(struct opts *o, const char *s, vf_error **errp);
/* Set key=value, replacing an earlier value. 0 / -1. */
int opts_set(struct opts *o, const char *key, const char *value,
             vf_error **errp);
void opts_free(struct opts *o);

/* Borrowed value of key (marking it used), or NULL if absent. */
const char *opts_get(struct opts *o, const char *key);
/* Size with an optional suffix (k, M, G, T, P, E; powers of 1024; a bare
 * number is bytes).  *present says whether the key was there.  0 / -1. */
int opts_get_size(struct opts *o, const char *key, uint64_t *out,
                  bool *present, vf_error **errp);
/* on/off/true/false/yes/no/1/0.  0 / -1; *out untouched when absent. */
int opts_get_bool(struct opts *o, const char *key, bool *out,
                  vf_error **errp);
/* Fail naming the first key nobody took.  fmt is for the message. */
int opts_check_unused(struct opts *o, const char *fmt, vf_error **errp);

/* Parse a size string ("64k", "2M", "1073741824").  0 / -1. */
int parse_size(const char *s, uint64_t *out, vf_error **errp);

#endif
