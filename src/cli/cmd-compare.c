/*
 * cmd-compare.c: vmferry compare: is the guest-visible content equal?
 * Exit 0 identical, 1 different, 2 error (qemu-img compare's codes).
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "engine/engine.h"

static const char compare_help[] =
    "usage: vmferry compare [-f FMT] [-F FMT] [-q] A B\n"
    "\n"
    "Compare the guest content of two images of any formats.  Exit status:\n"
    "0 identical, 1 different, 2 an error.\n"
    "\n"
    "  -f FMT                  format of A (default: probe)\n"
    "  -F FMT                  format of B (default: probe)\n"
    "  -q, --quiet             print nothing\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

int cmd_compare(int argc, char **argv)
{
    static const struct option lo[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oa = { 0 }, ob = { 0 };
    bool quiet = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:F:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'f': oa.format = optarg; break;
        case 'F': ob.format = optarg; break;
        case 'q': quiet = true; break;
        case CLI_OPT_ALLOW_DATA_FILE:
            oa.allow_data_file = ob.allow_data_file = true;
            break;
        case CLI_OPT_ALLOW_BACKING_PATH:
            oa.allow_backing_path = ob.allow_backing_path = true;
            break;
        case 'h': fputs(compare_help, stdout); return 0;
        default: fputs(compare_help, stderr); return 2;
        }
    }
    if (optind != argc - 2) {
        fputs(compare_help, stderr);
        return 2;
    }
    vf_error *err = NULL;
    struct blk *a = blk_open(argv[optind], true, &oa, &err);
    struct blk *b = a ? blk_open(argv[optind + 1], true, &ob, &err) : NULL;
    if (!a || !b) {
        blk_close(a);
        cli_fail("compare", err);
        return 2;
    }
    uint64_t where = 0;
    if (!quiet && a->size != b->size)
        printf("Warning: Image size mismatch!\n");
    int r = engine_compare(a, b, &where, &err);
    blk_close(a);
    blk_close(b);
    if (r < 0) {
        cli_fail("compare", err);
        return 2;
    }
    if (!quiet) {
        if (r)
            printf("Content mismatch at offset %llu!\n",
                   (unsigned long long)where);
        else
            printf("Images are identical.\n");
    }
    return r;
}
