/*
 * cmd-resize.c: vmferry resize: grow an image, or shrink it when asked
 * and the tail holds no data.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"

static const char resize_help[] =
    "usage: vmferry resize [--shrink] [-f FMT] [--unsafe] IMAGE [+|-]SIZE\n"
    "\n"
    "Change an image's virtual size (raw, qcow2, vmdk, vpc, vhdx, vdi).\n"
    "Growing adds zeros; shrinking needs --shrink and refuses if the\n"
    "cut-off tail holds data.\n"
    "\n"
    "  -f, --format FMT        do not probe: the image is FMT\n"
    "      --shrink            allow making the image smaller\n"
    "      --unsafe            do not fsync\n"
    "  -h, --help              this text\n";

int cmd_resize(int argc, char **argv)
{
    static const struct option lo[] = {
        { "format", required_argument, NULL, 'f' },
        { "shrink", no_argument, NULL, 's' },
        { "unsafe", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oo = { .no_backing = false };
    bool shrink = false, unsafe = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        switch (c) {
        case 'f': oo.format = optarg; break;
        case 's': shrink = true; break;
        case 'u': unsafe = true; break;
        case 'h': fputs(resize_help, stdout); return 0;
        default: fputs(resize_help, stderr); return 1;
        }
    }
    if (optind != argc - 2) {
        fputs(resize_help, stderr);
        return 1;
    }
    const char *path = argv[optind], *ss = argv[optind + 1];
    vf_error *err = NULL;
    int rel = 0;
    if (*ss == '+' || *ss == '-')
        rel = *ss++ == '+' ? 1 : -1;
    uint64_t v;
    if (parse_size(ss, &v, &err) < 0) {
        error_prepend(&err, "%s: ", path);
        return cli_fail("resize", err);
    }
    struct blk *b = blk_open(path, false, &oo, &err);
    if (!b)
        return cli_fail("resize", err);
    uint64_t ns = v;
    if (rel > 0)
        ns = b->size + v < b->size ? UINT64_MAX : b->size + v;
    else if (rel < 0)
        ns = v > b->size ? 0 : b->size - v;
    int ret = 1;
    if (!b->drv->resize) {
        cli_failf("resize", "%s: format %s does not support resize", path,
                  b->drv->name);
        goto out;
    }
    if (ns < b->size) {
        if (!shrink) {
            cli_failf("resize", "%s: shrinking to %" PRIu64 " bytes needs "
                      "--shrink", path, ns);
            goto out;
        }
        /* refuse to cut off data: only tails that read as zeros go */
        uint64_t where;
        int z = engine_range_is_zero(b, ns, b->size, &where, &err);
        if (z < 0)
            goto fail;
        if (!z) {
            cli_failf("resize", "%s: data at 0x%" PRIx64 " beyond the "
                      "new size %" PRIu64 "; not shrinking", path, where, ns);
            goto out;
        }
    }
    if (b->drv->resize(b, ns, &err) < 0 || blk_commit(b, unsafe, &err) < 0)
        goto fail;
    printf("Image resized.\n");
    ret = 0;
    goto out;
fail:
    error_prepend(&err, "%s: ", path);
    ret = cli_fail("resize", err);
out:
    blk_close(b);
    return ret;
}
