/*
 * cmd-prepare.c: vmferry prepare: edit a guest for its new hypervisor
 * and customize it, without a helper VM: the sources are opened
 * read-only under copy-on-write overlays, inspected, edited through
 * libext2fs, and each overlay is converted to its destination in one
 * pass.  --in-place edits images the user owns instead.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "guest/inspect.h"
#include "prepare/prepare.h"

#define PREP_MAX_DISKS 64

static void prepare_help(FILE *f)
{
    fputs("usage: vmferry prepare [--target T] [EDITS...] [options] SRC... DST\n"
          "       vmferry prepare [EDITS...] --in-place IMAGE...\n"
          "\n"
          "Edit a guest's files (its disks SRC..., in order) and write the\n"
          "result to DST (with several disks, DST is a directory).  The\n"
          "sources are never written: edits go to a copy-on-write overlay\n"
          "and each disk is converted once.  Every change is reported.\n"
          "\n"
          "  -O, --output-format FMT output format (default raw)\n"
          "  -o, --options OPTS      output format options, as in convert\n"
          "  -c, --compress          compressed output (qcow2, vmdk)\n"
          "  -p, --progress          show progress\n"
          "  -m, --threads N         conversion workers\n"
          "  -f, --format FMT        the sources' format (default: probed)\n"
          "      --target T          the conversion edits target T needs\n"
          "      --edits FILE        edits from FILE, one per line\n"
          "      --root DEV          the OS to edit (its root device)\n"
          "      --in-place          edit the images themselves (not a\n"
          "                          migration source)\n"
          "      --unsafe            do not fsync the output\n"
          "      --json              print the changes as JSON\n"
          "  -q, --quiet             no change log on stderr\n"
          "      --allow-data-file   open qcow2 external data files\n"
          "      --allow-backing-path  follow backing names outside the directory\n"
          "  -h, --help              this text\n"
          "\n"
          "Edits (also usable in --edits files without the dashes):\n", f);
    for (const struct prep_edit *e = prep_edits; e->name; e++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s%s", e->name,
                 !e->has_arg ? "" : e->arg_optional ? "[=" : " ",
                 e->has_arg ? e->argname : "",
                 e->has_arg && e->arg_optional ? "]" : "");
        fprintf(f, "  %-28s %s\n", left, e->help);
    }
}

static const char *fmt_ext(const char *fmt)
{
    static const char *const map[][2] = {
        { "raw", "img" }, { "qcow2", "qcow2" }, { "vmdk", "vmdk" },
        { "vpc", "vhd" }, { "vhdx", "vhdx" }, { "vdi", "vdi" },
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(fmt, map[i][0]))
            return map[i][1];
    return fmt;
}

/* DST/<source name without its extension>.<ext of fmt> */
static char *out_name(const char *dir, const char *src, const char *fmt)
{
    char *copy = strdup(src);
    if (!copy)
        return NULL;
    char *b = basename(copy);
    char *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = 0;
    char *out = NULL;
    if (asprintf(&out, "%s/%s.%s", dir, b, fmt_ext(fmt)) < 0)
        out = NULL;
    free(copy);
    return out;
}

/* Report the journals replayed while the guest was opened (inspect's
 * "journal-replayed"); a replay that failed stops prepare, since its
 * filesystem would be converted still needing recovery. */
static int prepare_journals(struct prep *p, struct json_object *report,
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

enum {
    OPT_TARGET = 3000, OPT_EDITS, OPT_ROOT, OPT_IN_PLACE, OPT_UNSAFE,
    OPT_JSON, OPT_EDIT_BASE = 4000,
};

int cmd_prepare(int argc, char **argv)
{
    static const struct option fixed[] = {
        { "output-format", required_argument, NULL, 'O' },
        { "options", required_argument, NULL, 'o' },
        { "compress", no_argument, NULL, 'c' },
        { "progress", no_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 'm' },
        { "format", required_argument, NULL, 'f' },
        { "quiet", no_argument, NULL, 'q' },
        { "target", required_argument, NULL, OPT_TARGET },
        { "edits", required_argument, NULL, OPT_EDITS },
        { "root", required_argument, NULL, OPT_ROOT },
        { "in-place", no_argument, NULL, OPT_IN_PLACE },
        { "unsafe", no_argument, NULL, OPT_UNSAFE },
        { "json", no_argument, NULL, OPT_JSON },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), nedits = 0;
    while (prep_edits[nedits].name)
        nedits++;
    struct option *lo = calloc(nfixed + nedits + 1, sizeof(*lo));
    if (!lo)
        return cli_failf("prepare", "out of memory");
    memcpy(lo, fixed, sizeof(fixed));
    for (size_t i = 0; i < nedits; i++) {
        lo[nfixed + i].name = prep_edits[i].name;
        lo[nfixed + i].has_arg = !prep_edits[i].has_arg ? no_argument
                                 : prep_edits[i].arg_optional
                                     ? optional_argument : required_argument;
        lo[nfixed + i].val = OPT_EDIT_BASE + (int)i;
    }

    struct blk_open_opts oo = { 0 };
    const char *ofmt = "raw", *target = NULL, *root = NULL;
    bool compress = false, progress = false, in_place = false;
    bool unsafe = false, json = false, quiet = false;
    struct convert_opts co = { .sparse_size = 4096 };
    struct prep_queue q = { 0 }, tq = { 0 };
    vf_error *err = NULL;
    struct opts *o = opts_parse(NULL, &err);
    struct blk *src[PREP_MAX_DISKS] = { 0 }, *ov[PREP_MAX_DISKS] = { 0 };
    struct inspect *in = NULL;
    struct json_object *report = NULL, *outs = NULL;
    struct prep p = { 0 };
    int c, ret = 1, ndisks = 0;
    if (!o) {
        free(lo);
        return cli_fail("prepare", err);
    }
    while ((c = getopt_long(argc, argv, "O:o:cpm:f:qh", lo, NULL)) != -1) {
        if (c >= OPT_EDIT_BASE && c < OPT_EDIT_BASE + (int)nedits) {
            if (prep_queue_add(&q, &prep_edits[c - OPT_EDIT_BASE], optarg,
                               &err) < 0)
                goto fail;
            continue;
        }
        switch (c) {
        case 'O': ofmt = optarg; break;
        case 'o':
            if (opts_add(o, optarg, &err) < 0)
                goto fail;
            break;
        case 'c': compress = true; break;
        case 'p': progress = true; break;
        case 'm':
            if (cli_parse_threads("prepare", optarg, &co.threads) < 0)
                goto out;
            break;
        case 'f': oo.format = optarg; break;
        case 'q': quiet = true; break;
        case OPT_TARGET: target = optarg; break;
        case OPT_EDITS:
            if (prep_queue_load(&q, optarg, &err) < 0)
                goto fail;
            break;
        case OPT_ROOT: root = optarg; break;
        case OPT_IN_PLACE: in_place = true; break;
        case OPT_UNSAFE: unsafe = true; break;
        case OPT_JSON: json = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': prepare_help(stdout); ret = 0; goto out;
        default: prepare_help(stderr); goto out;
        }
    }
    int nops = argc - optind;
    ndisks = in_place ? nops : nops - 1;
    if (ndisks < 1 || ndisks > PREP_MAX_DISKS) {
        prepare_help(stderr);
        ndisks = 0;
        goto out;
    }
    const char *dst = in_place ? NULL : argv[argc - 1];
    if (dst && ndisks > 1) {
        struct stat st;
        if (stat(dst, &st) < 0 || !S_ISDIR(st.st_mode)) {
            cli_failf("prepare", "%s: with %d disks the destination must be "
                      "an existing directory", dst, ndisks);
            ndisks = 0;
            goto out;
        }
    }
    if (target && prep_target_edits(&tq, target, &err) < 0)
        goto fail;

    /* the disks: overlays over read-only sources, or the images */
    for (int i = 0; i < ndisks; i++) {
        const char *path = argv[optind + i];
        src[i] = blk_open(path, !in_place, &oo, &err);
        if (!src[i])
            goto fail;
        if (in_place) {
            if (!src[i]->drv->pwrite) {
                error_setg(&err, "%s: %s images cannot be edited in place",
                           path, src[i]->drv->name);
                goto fail;
            }
            ov[i] = src[i];
        } else if (!(ov[i] = blk_create_overlay(src[i], NULL, &err))) {
            goto fail;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    p.t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    p.quiet = quiet;
    p.target = target;
    p.changes = json_object_new_array();
    p.warnings = json_object_new_array();
    in = inspect_open(ov, (size_t)ndisks, INSPECT_RW, &report, &err);
    if (!in)
        goto fail;
    p.in = in;
    p.report = report;
    if (prepare_journals(&p, report, &err) < 0)
        goto fail;
    if (tq.n + q.n > 0) {
        /* the OS to edit: --root, or the first one found */
        struct json_object *oses, *os = NULL;
        if (json_object_object_get_ex(report, "operatingsystems", &oses)) {
            for (size_t i = 0; i < json_object_array_length(oses); i++) {
                struct json_object *e = json_object_array_get_idx(oses, i), *r;
                if (!root ||
                    (json_object_object_get_ex(e, "root", &r) &&
                     !strcmp(json_object_get_string(r), root))) {
                    os = e;
                    break;
                }
            }
        }
        if (!os) {
            error_setg(&err, root ? "no operating system with root %s"
                                  : "no operating system found to edit%s",
                       root ? root : "");
            goto fail;
        }
        struct json_object *r, *w;
        json_object_object_get_ex(os, "root", &r);
        p.os = os;
        /* what inspection could not read (an fstab too large: its
         * filesystems are not mounted, edits there land on the root) */
        if (json_object_object_get_ex(report, "warnings", &w) &&
            json_object_is_type(w, json_type_array))
            for (size_t i = 0; i < json_object_array_length(w); i++)
                prep_warn(&p, "inspection: %s", json_object_get_string(
                              json_object_array_get_idx(w, i)));
        p.v = inspect_os_view(in, json_object_get_string(r), &err);
        if (!p.v || prep_run(&p, &tq, &err) < 0 || prep_run(&p, &q, &err) < 0)
            goto fail;
    }
    if (inspect_flush(in, &err) < 0)
        goto fail;
    inspect_view_free(p.v);
    p.v = NULL;
    inspect_close(in);
    in = NULL;

    /* write out: in place, commit; else convert each overlay */
    outs = json_object_new_array();
    for (int i = 0; i < ndisks; i++) {
        if (in_place) {
            if (blk_commit(src[i], unsafe, &err) < 0)
                goto fail;
            json_object_array_add(outs, json_object_new_string(src[i]->filename));
            continue;
        }
        char *name = ndisks > 1 ? out_name(dst, argv[optind + i], ofmt)
                                : strdup(dst);
        if (!name) {
            error_setg(&err, "out of memory");
            goto fail;
        }
        struct fmt_create_opts fco = { .size = ov[i]->size,
                                       .compress = compress, .o = o };
        struct blk *d = blk_create(name, ofmt, &fco, &err);
        if (!d) {
            free(name);
            goto fail;
        }
        if (!unsafe)
            blk_set_early_writeback(d);
        co.progress = progress && !quiet && isatty(STDERR_FILENO)
                          ? cli_progress : NULL;
        struct convert_stats st;
        if (engine_convert(ov[i], d, &co, &st, &err) < 0 ||
            blk_commit(d, unsafe, &err) < 0) {
            blk_close(d);
            free(name);
            goto fail;
        }
        blk_close(d);
        json_object_array_add(outs, json_object_new_string(name));
        free(name);
    }
    if (json) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "changes", json_object_get(p.changes));
        json_object_object_add(j, "warnings", json_object_get(p.warnings));
        json_object_object_add(j, "outputs", json_object_get(outs));
        cli_print_json(j);
    }
    ret = 0;
    goto out;
fail:
    ret = cli_fail("prepare", err);
out:
    inspect_view_free(p.v);
    inspect_close(in);
    for (int i = 0; i < ndisks; i++) {
        if (ov[i] != src[i])
            blk_close(ov[i]);
        blk_close(src[i]);
    }
    json_object_put(report);
    json_object_put(outs);
    json_object_put(p.changes);
    json_object_put(p.warnings);
    prep_queue_free(&q);
    prep_queue_free(&tq);
    opts_free(o);
    free(lo);
    return ret;
}
