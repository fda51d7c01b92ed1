/*
 * cmd-map.c: vmferry map: the chain's data / zero / hole extents, in
 * qemu-img map's text and JSON shapes.
 */
#include <json-c/json.h>
#include <stdio.h>

#include "cli/cli.h"
#include "engine/engine.h"

static const char map_help[] =
    "usage: vmferry map [--json] [-f FMT] IMAGE\n"
    "\n"
    "Print which guest ranges hold data, read as zeros, or are unallocated\n"
    "(and where data lives in the file).\n"
    "\n"
    "  -f, --format FMT        do not probe: the image is FMT\n"
    "      --json              print JSON (as qemu-img map --output=json)\n"
    "      --output=json       the same\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

struct map_out {
    struct json_object *arr;
    struct blk *b;
};

static int map_emit(void *opaque, const struct map_extent *e,
                    vf_error **errp)
{
    struct map_out *m = opaque;
    if (m->arr) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "start",
                               json_object_new_int64((int64_t)e->start));
        json_object_object_add(o, "length",
                               json_object_new_int64((int64_t)e->length));
        json_object_object_add(o, "depth", json_object_new_int(e->depth));
        json_object_object_add(o, "present",
                               json_object_new_boolean(e->present));
        json_object_object_add(o, "zero", json_object_new_boolean(e->zero));
        json_object_object_add(o, "data", json_object_new_boolean(e->data));
        if (e->offset != UINT64_MAX)
            json_object_object_add(o, "offset",
                                   json_object_new_int64((int64_t)e->offset));
        json_object_array_add(m->arr, o);
        return 0;
    }
    if (!e->data)
        return 0;
    /* text: like qemu-img map's human output, data extents only */
    struct blk *l = m->b;
    for (int d = 0; d < e->depth && l->backing; d++)
        l = l->backing;
    if (e->offset != UINT64_MAX)
        printf("%#-16llx %#-16llx %#-16llx %s\n",
               (unsigned long long)e->start, (unsigned long long)e->length,
               (unsigned long long)e->offset, l->filename);
    else
        printf("%#-16llx %#-16llx %-16s %s\n", (unsigned long long)e->start,
               (unsigned long long)e->length, "-", l->filename);
    return 0;
}

int cmd_map(int argc, char **argv)
{
    struct blk_open_opts oo = { 0 };
    bool json = false;
    int code;
    int i = cli_parse_common(argc, argv, map_help, &oo, &json, &code);
    if (i < 0)
        return code;
    if (i != argc - 1) {
        fputs(map_help, stderr);
        return 1;
    }
    vf_error *err = NULL;
    struct blk *b = blk_open(argv[i], true, &oo, &err);
    if (!b)
        return cli_fail("map", err);
    struct map_out m = { .arr = json ? json_object_new_array() : NULL,
                         .b = b };
    if (!json)
        printf("%-16s %-16s %-16s %s\n", "Offset", "Length", "Mapped to",
               "File");
    int r = engine_map(b, map_emit, &m, &err);
    blk_close(b);
    if (r < 0) {
        json_object_put(m.arr);
        return cli_fail("map", err);
    }
    if (m.arr)
        cli_print_json(m.arr);
    return 0;
}
