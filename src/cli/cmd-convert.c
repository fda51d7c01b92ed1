/*
 * cmd-convert.c: vmferry convert, with qemu-img convert's flags.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/engine.h"

static const char convert_help[] =
    "usage: vmferry convert [-f FMT] -O FMT [-o OPTS] [-c] [-p] [-m N] [-W]\n"
    "                       [-S SIZE] [-B BACKING [-F FMT]] [-n] [--unsafe]\n"
    "                       [--json] SRC DST\n"
    "\n"
    "Copy SRC's guest content into a new image DST, sparse and fsynced.\n"
    "DST appears only when complete (written under a temporary name).\n"
    "\n"
    "  -f, --format FMT        source format (default: probe)\n"
    "  -O, --output-format FMT target format (default: raw)\n"
    "  -o, --options OPTS      target options, key=value,... (as qemu-img)\n"
    "  -c, --compress          compress the target (qcow2)\n"
    "  -p, --progress          progress bar (on a terminal)\n"
    "  -m, --threads N         worker threads (default: number of cores)\n"
    "  -W, --out-of-order      allow out-of-order writes (accepted; vmferry\n"
    "                          orders writes only where the format needs it)\n"
    "  -S, --sparse-size SIZE  zero-detection granule (default 4k, 0 = off)\n"
    "  -B, --backing FILE      the target gets this backing file\n"
    "  -F, --backing-format FMT  its format\n"
    "  -n, --no-create         write into an existing DST\n"
    "      --target-is-zero    with -n: DST already reads as zeros\n"
    "  -t, --cache MODE        target cache: unsafe skips the fsync\n"
    "  -T, --source-cache MODE accepted for qemu-img compatibility\n"
    "  -q, --quiet             no progress\n"
    "      --unsafe            do not fsync the output\n"
    "      --json              print a summary as JSON\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

int cmd_convert(int argc, char **argv)
{
    static const struct option lo[] = {
        { "format", required_argument, NULL, 'f' },
        { "output-format", required_argument, NULL, 'O' },
        { "options", required_argument, NULL, 'o' },
        { "compress", no_argument, NULL, 'c' },
        { "progress", no_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 'm' },
        { "out-of-order", no_argument, NULL, 'W' },
        { "sparse-size", required_argument, NULL, 'S' },
        { "backing", required_argument, NULL, 'B' },
        { "backing-format", required_argument, NULL, 'F' },
        { "no-create", no_argument, NULL, 'n' },
        { "target-is-zero", no_argument, NULL, 'z' },
        { "cache", required_argument, NULL, 't' },
        { "source-cache", required_argument, NULL, 'T' },
        { "quiet", no_argument, NULL, 'q' },
        { "unsafe", no_argument, NULL, 'u' },
        { "json", no_argument, NULL, 'j' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oo = { 0 };
    const char *ofmt = "raw", *backing = NULL, *backing_fmt = NULL;
    bool compress = false, progress = false, no_create = false;
    bool target_zero = false, unsafe = false, json = false, quiet = false;
    struct convert_opts co = { .sparse_size = 4096 };
    vf_error *err = NULL;
    struct opts *o = opts_parse(NULL, &err);
    int c, ret = 1;
    if (!o)
        return cli_fail("convert", err);
    while ((c = getopt_long(argc, argv, "f:O:o:cpm:WS:B:F:nt:T:qh", lo,
                            NULL)) != -1) {
        switch (c) {
        case 'f': oo.format = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'o':
            if (opts_add(o, optarg, &err) < 0)
                goto fail;
            break;
        case 'c': compress = true; break;
        case 'p': progress = true; break;
        case 'm':
            if (cli_parse_threads("convert", optarg, &co.threads) < 0)
                goto out;
            break;
        case 'W': co.out_of_order = true; break;
        case 'S':
            if (parse_size(optarg, &co.sparse_size, &err) < 0) {
                error_prepend(&err, "-S: ");
                goto fail;
            }
            break;
        case 'B': backing = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'n': no_create = true; break;
        case 'z': target_zero = true; break;
        case 't': if (!strcmp(optarg, "unsafe")) unsafe = true; break;
        case 'T': break;
        case 'q': quiet = true; break;
        case 'u': unsafe = true; break;
        case 'j': json = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': fputs(convert_help, stdout); ret = 0; goto out;
        default: fputs(convert_help, stderr); goto out;
        }
    }
    if (optind != argc - 2) {
        fputs(convert_help, stderr);
        goto out;
    }
    if (target_zero && !no_create) {
        cli_failf("convert", "--target-is-zero needs -n");
        goto out;
    }
    const char *srcp = argv[optind], *dstp = argv[optind + 1];
    struct blk *src = blk_open(srcp, true, &oo, &err);
    if (!src)
        goto fail;
    /* -B: copy only what lies above the source's own bottom image */
    if (backing) {
        struct blk *bottom = src;
        while (bottom->backing)
            bottom = bottom->backing;
        co.base = bottom == src ? NULL : bottom;
        co.target_has_backing = true;
    }
    struct blk *dst;
    if (no_create) {
        struct blk_open_opts dopt = { .format = ofmt, .no_backing = false };
        dst = blk_open(dstp, false, &dopt, &err);
        if (dst)
            dst->zero_init = target_zero;
    } else {
        struct fmt_create_opts fco = {
            .size = src->size, .backing_file = backing,
            .backing_fmt = backing_fmt, .compress = compress, .o = o,
        };
        dst = blk_create(dstp, ofmt, &fco, &err);
    }
    if (!dst) {
        blk_close(src);
        goto fail;
    }
    if (!unsafe)
        blk_set_early_writeback(dst);
    if (progress && !quiet && isatty(STDERR_FILENO))
        co.progress = cli_progress;
    struct convert_stats st;
    if (engine_convert(src, dst, &co, &st, &err) < 0 ||
        blk_commit(dst, unsafe, &err) < 0) {
        blk_close(dst);
        blk_close(src);
        goto fail;
    }
    blk_close(dst);
    blk_close(src);
    if (json) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "bytes-read",
                               json_object_new_int64((int64_t)st.bytes_read));
        json_object_object_add(j, "bytes-written",
                               json_object_new_int64(
                                   (int64_t)st.bytes_written));
        json_object_object_add(j, "bytes-zero",
                               json_object_new_int64((int64_t)st.bytes_zero));
        json_object_object_add(j, "seconds",
                               json_object_new_double(st.seconds));
        json_object_object_add(j, "durable", json_object_new_boolean(!unsafe));
        cli_print_json(j);
    }
    ret = 0;
    goto out;
fail:
    ret = cli_fail("convert", err);
out:
    opts_free(o);
    return ret;
}
