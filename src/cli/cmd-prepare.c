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
#include "prepare/session.h"


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
    size_t nedits;
    struct option *lo = cli_edit_longopts("prepare", fixed,
                                          sizeof(fixed) / sizeof(fixed[0]),
                                          OPT_EDIT_BASE, &nedits);
    if (!lo)
        return 1;

    struct blk_open_opts oo = { 0 };
    const char *ofmt = "raw", *target = NULL, *root = NULL;
    bool compress = false, progress = false, in_place = false;
    bool unsafe = false, json = false, quiet = false;
    struct convert_opts co = { .sparse_size = 4096 };
    struct prep_queue q = { 0 };
    struct prep_session ps = { 0 };
    vf_error *err = NULL;
    struct opts *o = opts_parse(NULL, &err);
    struct json_object *outs = NULL;
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

    struct prep_session_opts so = { .oo = &oo, .target = target, .q = &q,
                                    .root = root, .quiet = quiet,
                                    .in_place = in_place };
    if (prep_session_run(&ps, argv + optind, ndisks, &so, &err) < 0)
        goto fail;

    /* write out: in place, commit; else convert each overlay */
    outs = json_object_new_array();
    for (int i = 0; i < ndisks; i++) {
        if (in_place) {
            if (blk_commit(ps.src[i], unsafe, &err) < 0)
                goto fail;
            json_object_array_add(outs, json_object_new_string(ps.src[i]->filename));
            continue;
        }
        char *name = ndisks > 1 ? out_name(dst, argv[optind + i], ofmt)
                                : strdup(dst);
        if (!name) {
            error_setg(&err, "out of memory");
            goto fail;
        }
        struct fmt_create_opts fco = { .size = ps.ov[i]->size,
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
        if (engine_convert(ps.ov[i], d, &co, &st, &err) < 0 ||
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
        json_object_object_add(j, "changes", json_object_get(ps.p.changes));
        json_object_object_add(j, "warnings", json_object_get(ps.p.warnings));
        json_object_object_add(j, "outputs", json_object_get(outs));
        cli_print_json(j);
    }
    ret = 0;
    goto out;
fail:
    ret = cli_fail("prepare", err);
out:
    prep_session_close(&ps);
    json_object_put(outs);
    prep_queue_free(&q);
    opts_free(o);
    free(lo);
    return ret;
}
