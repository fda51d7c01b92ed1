/*
 * migrate.c: inspect → preflight → prepare → package → verify (see
 * migrate.h).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "guest/inspect.h"
#include "pipeline/migrate.h"
#include "prepare/session.h"
#include "targets/package.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct stages {
    struct json_object *arr;
    const char *cur;
    double t0;
    const struct migrate_opts *o;
};

static void stage_begin(struct stages *s, const char *name, const char *msg)
{
    s->cur = name;
    s->t0 = now();
    if (s->o->stage)
        s->o->stage(s->o->opaque, msg);
}

static void stage_end(struct stages *s)
{
    struct json_object *e = json_object_new_object();
    json_object_object_add(e, "stage", json_object_new_string(s->cur));
    json_object_object_add(e, "seconds",
                           json_object_new_double(now() - s->t0));
    json_object_array_add(s->arr, e);
}

/* Re-read every artifact from storage and check its digest; compare the
 * guest content of each plain disk image with the disk it came from. */
static int verify(struct pkg *p, struct blk *const *src,
                  struct json_object *out, vf_error **errp)
{
    struct json_object *arts = p->artifacts;
    size_t disk = 0;
    for (size_t i = 0; i < json_object_array_length(arts); i++) {
        struct json_object *a = json_object_array_get_idx(arts, i);
        const char *name = json_object_get_string(pkg_jget(a, "name"));
        const char *want = json_object_get_string(pkg_jget(a, "sha256"));
        const char *role = json_object_get_string(pkg_jget(a, "role"));
        const char *fmt = pkg_jget(a, "format")
                              ? json_object_get_string(pkg_jget(a, "format"))
                              : NULL;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", p->outdir, name) < 0) {
            error_setg(errp, "out of memory");
            return -1;
        }
        /* from storage, not the page cache (when it was fsynced) */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
        uint8_t sha[32];
        char hex[65];
        uint64_t size;
        if (pkg_file_digest(path, false, sha, &size, errp) < 0) {
            free(path);
            return -1;
        }
        pkg_hex(sha, 32, hex);
        struct json_object *v = json_object_new_object();
        json_object_object_add(v, "name", json_object_new_string(name));
        json_object_object_add(v, "sha256", json_object_new_string(hex));
        json_object_object_add(v, "sha256-ok",
                               json_object_new_boolean(!strcmp(hex, want)));
        json_object_array_add(out, v);
        if (strcmp(hex, want)) {
            error_setg(errp, "%s: SHA-256 %s read back, %s written", path,
                       hex, want);
            free(path);
            return -1;
        }
        if (role && !strcmp(role, "disk") && fmt && fmt_find(fmt) &&
            disk < p->ndisks) {
            struct blk_open_opts oo = { .format = fmt };
            struct blk *b = blk_open(path, true, &oo, errp);
            uint64_t at = 0;
            int r = b ? engine_compare(src[disk], b, &at, errp) : -1;
            blk_close(b);
            if (r < 0) {
                free(path);
                return -1;
            }
            json_object_object_add(v, "content-ok",
                                   json_object_new_boolean(r == 0));
            if (r) {
                error_setg(errp, "%s: guest content differs from disk %zu "
                           "at offset %llu", path, disk + 1,
                           (unsigned long long)at);
                free(path);
                return -1;
            }
            disk++;
        }
        free(path);
    }
    return 0;
}

int migrate_run(struct blk *const *disks, char *const *names, size_t n,
                const struct migrate_opts *o, struct json_object **result,
                vf_error **errp)
{
    const char *to = o->to ? o->to : "local";
    const struct pkg_target *t = pkg_find(to);
    struct prep_session ps = { 0 };
    struct pkg p = { 0 };
    struct pkg_disk pd[PREP_MAX_DISKS];
    struct stages st = { .arr = json_object_new_array(), .o = o };
    struct json_object *res = json_object_new_object(), *report0 = NULL;
    char *outdir = NULL;
    int r = -1;
    *result = res;
    json_object_object_add(res, "target", json_object_new_string(to));
    json_object_object_add(res, "stages", st.arr);
    if (!t) {
        error_setg(errp, "unknown target %s", to);
        return -1;
    }
    if (n < 1 || n > PREP_MAX_DISKS) {
        error_setg(errp, "%zu disks (1 to %d)", n, PREP_MAX_DISKS);
        return -1;
    }

    /* inspect and preflight the source as it is */
    stage_begin(&st, "inspect", "Inspecting the source");
    report0 = inspect_disks(disks, n, 0, errp);
    if (!report0)
        goto out;
    stage_end(&st);
    p.target = t->name;
    p.ofmt = o->ofmt;
    p.ostr = o->ostr;
    p.manifest_alg = o->manifest_alg ? o->manifest_alg : "sha256";
    p.aws_format = o->aws_format;
    p.preallocation = o->preallocation;
    p.bz2 = o->bz2;
    p.ova = o->ova;
    p.threads = o->threads;
    p.unsafe = o->unsafe;
    p.force = true; /* the source's verdict is information */
    p.mtime = pkg_mtime();
    p.progress = o->progress;
    p.opaque = o->opaque;
    p.vm.memory_mb = o->memory_mb;
    p.vm.vcpus = o->vcpus;
    if (o->name && !(p.vm.name = strdup(o->name))) {
        error_setg(errp, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        pd[i].blk = disks[i];
        pd[i].src_path = names[i];
    }
    p.disks = pd;
    p.ndisks = n;
    p.report = report0;
    stage_begin(&st, "preflight", "Checking the source against the target");
    if (pkg_vm_fill(&p, errp) < 0 || pkg_preflight(&p, t, errp) < 0)
        goto out;
    json_object_object_add(res, "name", json_object_new_string(p.vm.name));
    json_object_object_add(res, "preflight-source",
                           json_object_get(p.preflight));
    stage_end(&st);

    /* the conversion edits and those given, on overlays */
    stage_begin(&st, "prepare", "Preparing the guest");
    struct prep_session_opts so = { .target = pkg_prep_target(t->name),
                                    .q = o->q, .root = o->root,
                                    .quiet = o->quiet };
    int sr = prep_session_run_blks(&ps, disks, (int)n, &so, errp);
    json_object_object_add(res, "changes", json_object_get(ps.p.changes));
    json_object_object_add(res, "warnings", json_object_get(ps.p.warnings));
    if (sr < 0)
        goto out;
    /* the guest as it will be written */
    p.report = inspect_disks(ps.ov, n, 0, errp);
    if (!p.report)
        goto out;
    for (size_t i = 0; i < n; i++)
        pd[i].blk = ps.ov[i];
    free(p.vm.name);
    p.vm.name = o->name ? strdup(o->name) : NULL;
    if (o->name && !p.vm.name) {
        error_setg(errp, "out of memory");
        goto out;
    }
    if (pkg_vm_fill(&p, errp) < 0)
        goto out;
    /* a description's firmware wins over inspection's guess */
    if (o->firmware)
        p.vm.firmware = o->firmware;
    p.force = o->force;
    if (pkg_preflight(&p, t, errp) < 0)
        goto out;
    stage_end(&st);

    /* package: the copy streams into it */
    if (o->outdir) {
        outdir = strdup(o->outdir);
    } else if (asprintf(&outdir, "./%s", p.vm.name) < 0) {
        outdir = NULL;
    }
    if (!outdir) {
        error_setg(errp, "out of memory");
        goto out;
    }
    p.outdir = outdir;
    json_object_object_add(res, "outdir", json_object_new_string(outdir));
    stage_begin(&st, "package", "Copying and packaging");
    if (pkg_run(&p, t, errp) < 0)
        goto out;
    stage_end(&st);
    json_object_object_add(res, "preflight", json_object_get(p.preflight));
    json_object_object_add(res, "artifacts", json_object_get(p.artifacts));
    json_object_object_add(res, "metadata", json_object_get(p.meta));

    if (!o->no_verify) {
        struct json_object *v = json_object_new_array();
        json_object_object_add(res, "verify", v);
        stage_begin(&st, "verify", "Verifying what was written");
        if (verify(&p, ps.ov, v, errp) < 0)
            goto out;
        stage_end(&st);
    }
    r = 0;
out:
    if (r < 0 && errp && *errp)
        json_object_object_add(res, "error",
                               json_object_new_string(error_msg(*errp)));
    if (p.report != report0)
        json_object_put(p.report);
    json_object_put(report0);
    json_object_put(p.preflight);
    p.preflight = NULL;
    pkg_free(&p);
    prep_session_close(&ps);
    free(outdir);
    return r;
}
