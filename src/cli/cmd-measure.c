/*
 * cmd-measure.c: vmferry measure: how big an output would be.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli/cli.h"

static const char measure_help[] =
    "usage: vmferry measure -O FMT [-o OPTS] [-c] [--json]\n"
    "                       (--size SIZE | [-f FMT] SRC)\n"
    "\n"
    "Print the bytes an image of format FMT needs to hold SRC's content\n"
    "(required size), and a fully allocated one (fully allocated size).\n"
    "\n"
    "  -O, --output-format FMT target format\n"
    "  -o, --options OPTS      target options, as for convert\n"
    "  -c, --compress          accepted for qemu-img compatibility\n"
    "  -f, --format FMT        source format (default: probe)\n"
    "  -s, --size SIZE         measure an empty image of SIZE instead\n"
    "      --json              print JSON\n"
    "      --output=json       the same\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

int cmd_measure(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output-format", required_argument, NULL, 'O' },
        { "options", required_argument, NULL, 'o' },
        { "compress", no_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "size", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "output", required_argument, NULL, 'J' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oo = { 0 };
    const char *ofmt = NULL;
    bool json = false, have_size = false, compress = false;
    uint64_t size = 0;
    vf_error *err = NULL;
    struct opts *o = opts_parse(NULL, &err);
    struct blk *src = NULL;
    int c, ret = 1;
    if (!o)
        return cli_fail("measure", err);
    while ((c = getopt_long(argc, argv, "O:o:cf:s:h", lo, NULL)) != -1) {
        switch (c) {
        case 'O': ofmt = optarg; break;
        case 'o':
            if (opts_add(o, optarg, &err) < 0)
                goto fail;
            break;
        case 'c': compress = true; break;
        case 'f': oo.format = optarg; break;
        case 's':
            if (parse_size(optarg, &size, &err) < 0)
                goto fail;
            have_size = true;
            break;
        case 'j': json = true; break;
        case 'J': json = optarg[0] == 'j'; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': fputs(measure_help, stdout); ret = 0; goto out;
        default: fputs(measure_help, stderr); goto out;
        }
    }
    if (!ofmt || (have_size ? optind != argc : optind != argc - 1)) {
        fputs(measure_help, stderr);
        goto out;
    }
    const struct fmt_driver *drv = fmt_find(ofmt);
    if (!drv) {
        cli_failf("measure", "unknown format '%s'", ofmt);
        goto out;
    }
    if (!have_size) {
        src = blk_open(argv[optind], true, &oo, &err);
        if (!src)
            goto fail;
        size = src->size;
    }
    struct fmt_create_opts fco = { .size = size, .compress = compress,
                                   .o = o };
    uint64_t req = size, full = size;
    if (drv->measure && drv->measure(&fco, src, &req, &full, &err) < 0)
        goto fail;
    if (!drv->measure) {
        cli_failf("measure", "format %s does not support size measurement",
                  drv->name);
        goto out;
    }
    if (opts_check_unused(o, drv->name, &err) < 0)
        goto fail;
    if (json) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "required",
                               json_object_new_int64((int64_t)req));
        json_object_object_add(j, "fully-allocated",
                               json_object_new_int64((int64_t)full));
        cli_print_json(j);
    } else {
        printf("required size: %llu\nfully allocated size: %llu\n",
               (unsigned long long)req, (unsigned long long)full);
    }
    ret = 0;
    goto out;
fail:
    ret = cli_fail("measure", err);
out:
    blk_close(src);
    opts_free(o);
    return ret;
}
