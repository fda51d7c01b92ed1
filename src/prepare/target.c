/*
 * target.c: which conversion edits each --target turns on.
 */
#include "prepare/prepare.h"

int prep_target_edits(struct prep_queue *q, const char *target,
                      vf_error **errp)
{
    error_setg(errp, "--target %s: the conversion edits are not in this "
               "build yet; give the edits one by one", target);
    return -1;
}
