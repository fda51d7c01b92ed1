/*
 * session.c: open, inspect and edit one guest (see session.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest/inspect.h"
#include "prepare/session.h"

/* Report the journals replayed while the guest was opened (inspect's
 * "journal-replayed"); a replay that failed stops, since its filesystem
 * would be converted still needing recovery. */
static int session_journals(struct prep *p, struct json_object *report,
                            vf_error **errp)
{
    struct json_object *fss, *v;
    if (!json_object_object_get_ex(report, "filesystems", &fss))
        return 0;
    for (size_t i = 0; i < json_object_array_length(fss); i++) {
        struct json_object *f = json_object_array_get_idx(fss, i);
        if (json_object_object_get_ex(f, "journal-replay-error", &v)) {
            error_setg(errp, "%s", json_object_get_string(v));
            return -1;
        }
        if (!json_object_object_get_ex(f, "journal-replayed", &v) ||
            !json_object_get_boolean(v))
            continue;
        const char *dev = "?";
        int64_t nt = 0, nb = 0;
        if (json_object_object_get_ex(f, "device", &v))
            dev = json_object_get_string(v);
        if (json_object_object_get_ex(f, "journal-transactions", &v))
            nt = json_object_get_int64(v);
        if (json_object_object_get_ex(f, "journal-blocks", &v))
            nb = json_object_get_int64(v);
        prep_log(p, NULL, "the guest was not shut down cleanly: its "
                 "journal is replayed before any edit, as the kernel "
                 "does at mount",
                 "Replayed the journal of %s (%lld transaction%s, %lld "
                 "block%s)", dev, (long long)nt, nt == 1 ? "" : "s",
                 (long long)nb, nb == 1 ? "" : "s");
    }
    return 0;
}

/* The OS to edit: --root, or the first one found. */
static struct json_object *session_os(struct json_object *report,
                                      const char *root, vf_error **errp)
{
    struct json_object *oses;
    if (json_object_object_get_ex(report, "operatingsystems", &oses)) {
        for (size_t i = 0; i < json_object_array_length(oses); i++) {
            struct json_object *e = json_object_array_get_idx(oses, i), *r;
            if (!root || (json_object_object_get_ex(e, "root", &r) &&
                          !strcmp(json_object_get_string(r), root)))
                return e;
        }
    }
    error_setg(errp, root ? "no operating system with root %s"
                          : "no operating system found to edit%s",
               root ? root : "");
    return NULL;
}

static int session_edit(struct prep_session *s,
                        const struct prep_session_opts *o, vf_error **errp);

int prep_session_run(struct prep_session *s, char *const *paths, int n,
                     const struct prep_session_opts *o, vf_error **errp)
{
    memset(s, 0, sizeof(*s));
    s->p.changes = json_object_new_array();
    s->p.warnings = json_object_new_array();
    if (n < 1 || n > PREP_MAX_DISKS) {
        error_setg(errp, "%d disks (1 to %d)", n, PREP_MAX_DISKS);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        s->src[i] = blk_open(paths[i], !o->in_place, o->oo, errp);
        if (!s->src[i])
            return -1;
        s->n = i + 1;
    }
    return session_edit(s, o, errp);
}

int prep_session_run_blks(struct prep_session *s, struct blk *const *blks,
                          int n, const struct prep_session_opts *o,
                          vf_error **errp)
{
    memset(s, 0, sizeof(*s));
    s->p.changes = json_object_new_array();
    s->p.warnings = json_object_new_array();
    s->borrowed = true;
    if (n < 1 || n > PREP_MAX_DISKS || o->in_place) {
        error_setg(errp, "%d disks (1 to %d, not in place)", n,
                   PREP_MAX_DISKS);
        return -1;
    }
    for (int i = 0; i < n; i++)
        s->src[i] = blks[i];
    s->n = n;
    return session_edit(s, o, errp);
}

static int session_edit(struct prep_session *s,
                        const struct prep_session_opts *o, vf_error **errp)
{
    struct prep_queue tq = { 0 };
    struct inspect *in = NULL;
    int r = -1, n = s->n;
    if (o->target && prep_target_edits(&tq, o->target, errp) < 0)
        goto out;
    for (int i = 0; i < n; i++) {
        if (o->in_place) {
            if (!s->src[i]->drv->pwrite) {
                error_setg(errp, "%s: %s images cannot be edited in place",
                           s->src[i]->filename, s->src[i]->drv->name);
                goto out;
            }
            s->ov[i] = s->src[i];
        } else if (!(s->ov[i] = blk_create_overlay(s->src[i], NULL, errp))) {
            goto out;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s->p.t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    s->p.quiet = o->quiet;
    s->p.target = o->target;
    in = inspect_open(s->ov, (size_t)n, INSPECT_RW, &s->report, errp);
    if (!in)
        goto out;
    s->p.in = in;
    s->p.report = s->report;
    if (session_journals(&s->p, s->report, errp) < 0)
        goto out;
    if (tq.n + (o->q ? o->q->n : 0) > 0) {
        struct json_object *os = session_os(s->report, o->root, errp), *rt, *w;
        if (!os)
            goto out;
        json_object_object_get_ex(os, "root", &rt);
        s->p.os = os;
        /* what inspection could not read (an fstab too large: its
         * filesystems are not mounted, edits there land on the root) */
        if (json_object_object_get_ex(s->report, "warnings", &w) &&
            json_object_is_type(w, json_type_array))
            for (size_t i = 0; i < json_object_array_length(w); i++)
                prep_warn(&s->p, "inspection: %s", json_object_get_string(
                              json_object_array_get_idx(w, i)));
        s->p.v = inspect_os_view(in, json_object_get_string(rt), errp);
        if (!s->p.v || prep_run(&s->p, &tq, errp) < 0 ||
            (o->q && prep_run(&s->p, o->q, errp) < 0))
            goto out;
        /* after every edit, so that all they wrote is covered */
        if (prep_selinux_label(&s->p, errp) < 0) {
            error_prepend(errp, "SELinux labels: ");
            goto out;
        }
    }
    if (inspect_flush(in, errp) < 0)
        goto out;
    r = 0;
out:
    inspect_view_free(s->p.v);
    s->p.v = NULL;
    inspect_close(in);
    s->p.in = NULL;
    s->p.os = NULL;
    prep_queue_free(&tq);
    return r;
}

void prep_session_close(struct prep_session *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->ov[i] && s->ov[i] != s->src[i])
            blk_close(s->ov[i]);
        if (!s->borrowed)
            blk_close(s->src[i]);
        s->ov[i] = s->src[i] = NULL;
    }
    s->n = 0;
    json_object_put(s->report);
    json_object_put(s->p.changes);
    json_object_put(s->p.warnings);
    s->report = s->p.changes = s->p.warnings = NULL;
    s->p.report = NULL;
}
