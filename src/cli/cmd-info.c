/*
 * cmd-info.c: vmferry info: what an image is, like qemu-img info.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const char info_help[] =
    "usage: vmferry info [--json] [-f FMT] [--backing-chain] IMAGE\n"
    "\n"
    "Show an image's format, virtual size, disk usage, backing file and\n"
    "format-specific facts.\n"
    "\n"
    "  -f, --format FMT        do not probe: the image is FMT\n"
    "      --json              print JSON (keys as qemu-img --output=json)\n"
    "      --output=json       the same, as qemu-img spells it\n"
    "      --backing-chain     describe every image of the chain\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

static struct json_object *info_json(struct blk *b, vf_error **errp)
{
    struct json_object *o = json_object_new_object();
    struct stat st;
    uint64_t actual = 0;
    if (b->file->fd >= 0 && fstat(b->file->fd, &st) == 0)
        actual = (uint64_t)st.st_blocks * 512;
    json_object_object_add(o, "virtual-size",
                           json_object_new_int64((int64_t)b->size));
    json_object_object_add(o, "filename",
                           json_object_new_string(b->filename));
    if (b->cluster_size)
        json_object_object_add(o, "cluster-size",
                               json_object_new_int64(b->cluster_size));
    json_object_object_add(o, "format",
                           json_object_new_string(b->drv->name));
    json_object_object_add(o, "actual-size",
                           json_object_new_int64((int64_t)actual));
    if (b->backing_name) {
        json_object_object_add(o, "backing-filename",
                               json_object_new_string(b->backing_name));
        if (b->backing)
            json_object_object_add(
                o, "full-backing-filename",
                json_object_new_string(b->backing->filename));
        if (b->backing_fmt)
            json_object_object_add(o, "backing-filename-format",
                                   json_object_new_string(b->backing_fmt));
    }
    if (b->drv->info) {
        struct json_object *data = json_object_new_object();
        if (b->drv->info(b, data, errp) < 0) {
            json_object_put(data);
            json_object_put(o);
            return NULL;
        }
        struct json_object *spec = json_object_new_object();
        json_object_object_add(spec, "type",
                               json_object_new_string(b->drv->name));
        json_object_object_add(spec, "data", data);
        json_object_object_add(o, "format-specific", spec);
    }
    return o;
}

static void info_print_value(const char *key, struct json_object *v,
                             int indent)
{
    if (json_object_is_type(v, json_type_object)) {
        printf("%*s%s:\n", indent, "", key);
        json_object_object_foreach(v, k, vv)
            info_print_value(k, vv, indent + 4);
    } else if (json_object_is_type(v, json_type_array)) {
        printf("%*s%s:\n", indent, "", key);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            char idx[32];
            snprintf(idx, sizeof(idx), "[%zu]", i);
            info_print_value(idx, json_object_array_get_idx(v, i),
                             indent + 4);
        }
    } else {
        printf("%*s%s: %s\n", indent, "", key, json_object_get_string(v));
    }
}

static void info_print_text(struct json_object *o)
{
    char h[32], h2[32];
    struct json_object *v;
    uint64_t vs = 0, as = 0;
    if (json_object_object_get_ex(o, "virtual-size", &v))
        vs = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "actual-size", &v))
        as = (uint64_t)json_object_get_int64(v);
    json_object_object_get_ex(o, "filename", &v);
    printf("image: %s\n", json_object_get_string(v));
    json_object_object_get_ex(o, "format", &v);
    printf("file format: %s\n", json_object_get_string(v));
    printf("virtual size: %s (%llu bytes)\n",
           cli_human_size(vs, h, sizeof(h)), (unsigned long long)vs);
    printf("disk size: %s\n", cli_human_size(as, h2, sizeof(h2)));
    if (json_object_object_get_ex(o, "cluster-size", &v))
        printf("cluster_size: %s\n", json_object_get_string(v));
    if (json_object_object_get_ex(o, "backing-filename", &v)) {
        printf("backing file: %s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "full-backing-filename", &v))
            printf(" (actual path: %s)", json_object_get_string(v));
        printf("\n");
    }
    if (json_object_object_get_ex(o, "backing-filename-format", &v))
        printf("backing file format: %s\n", json_object_get_string(v));
    if (json_object_object_get_ex(o, "format-specific", &v)) {
        struct json_object *data;
        if (json_object_object_get_ex(v, "data", &data) &&
            json_object_object_length(data)) {
            printf("Format specific information:\n");
            json_object_object_foreach(data, k, vv)
                info_print_value(k, vv, 4);
        }
    }
}

int cmd_info(int argc, char **argv)
{
    static const struct option lo[] = {
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "output", required_argument, NULL, 'o' },
        { "backing-chain", no_argument, NULL, 'b' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oo = { 0 };
    bool json = false, chain = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        switch (c) {
        case 'f': oo.format = optarg; break;
        case 'j': json = true; break;
        case 'o':
            if (strcmp(optarg, "json") && strcmp(optarg, "human"))
                return cli_failf("info", "invalid output format '%s'",
                                 optarg);
            json = !strcmp(optarg, "json");
            break;
        case 'b': chain = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': fputs(info_help, stdout); return 0;
        default: fputs(info_help, stderr); return 1;
        }
    }
    if (optind != argc - 1) {
        fputs(info_help, stderr);
        return 1;
    }
    vf_error *err = NULL;
    struct blk *b = blk_open(argv[optind], true, &oo, &err);
    if (!b)
        return cli_fail("info", err);
    struct json_object *arr = chain && json ? json_object_new_array() : NULL;
    int ret = 0;
    for (struct blk *l = b; l; l = chain ? l->backing : NULL) {
        struct json_object *o = info_json(l, &err);
        if (!o) {
            error_prepend(&err, "%s: ", l->filename);
            ret = cli_fail("info", err);
            break;
        }
        if (arr) {
            json_object_array_add(arr, o);
        } else if (json) {
            cli_print_json(o);
        } else {
            if (l != b)
                printf("\n");
            info_print_text(o);
            json_object_put(o);
        }
    }
    if (arr)
        cli_print_json(arr);
    blk_close(b);
    return ret;
}
