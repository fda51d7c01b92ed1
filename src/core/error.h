/*
 * error.h: vmferry's one error type.
 *
 * QEMU's Error **errp discipline, simplified: the error pointer is the last
 * argument and may be NULL; a function returns 0/-1 (or a pointer/NULL, or
 * bool) and sets the error exactly once on failure, never on success.  A
 * message is one lower-case phrase naming the bad value; callers add
 * context with error_prepend().  Only cli/ prints.
 */
#ifndef VF_ERROR_H
#define VF_ERROR_H

#include <stdarg.h>

typedef struct vf_error vf_error;

/* Set *errp (if errp is non-NULL) to a new error built from fmt. */
void error_setg(vf_error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(err)" and remembering err. */
void error_setg_errno(vf_error **errp, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing error's message (no-op if errp or *errp is NULL). */
void error_prepend(vf_error **errp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Move src into *dst (freeing src if dst is NULL or already set). */
void error_propagate(vf_error **dst, vf_error *src);

/* Borrowed until error_free(). */
const char *error_msg(const vf_error *e);
/* The errno recorded by error_setg_errno(), or 0. */
int error_errno(const vf_error *e);
/* Accepts NULL. */
void error_free(vf_error *e);

#endif
