/*
 * cmd-digest.c: vmferry digest: SHA-256 of the guest-visible bytes, the
 * same for the same content in any format (sha256sum's output shape).
 */
#include <json-c/json.h>
#include <stdio.h>

#include "cli/cli.h"
#include "engine/engine.h"

static const char digest_help[] =
    "usage: vmferry digest [--json] [-f FMT] IMAGE...\n"
    "\n"
    "Print the SHA-256 of each image's guest content (what sha256sum of\n"
    "its raw form would print); holes are hashed without being read.\n"
    "\n"
    "  -f, --format FMT        do not probe: the images are FMT\n"
    "      --json              print JSON: [{\"filename\", \"sha256\"}]\n"
    "      --output=json       the same\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

int cmd_digest(int argc, char **argv)
{
    struct blk_open_opts oo = { 0 };
    int code;
    bool json = false;
    int i = cli_parse_common(argc, argv, digest_help, &oo, &json, &code);
    if (i < 0)
        return code;
    if (i >= argc) {
        fputs(digest_help, stderr);
        return 1;
    }
    int ret = 0;
    struct json_object *arr = json ? json_object_new_array() : NULL;
    for (; i < argc; i++) {
        vf_error *err = NULL;
        struct blk *b = blk_open(argv[i], true, &oo, &err);
        uint8_t d[32];
        if (!b || engine_digest(b, d, &err) < 0) {
            ret = cli_fail("digest", err);
            blk_close(b);
            continue;
        }
        blk_close(b);
        char hex[65];
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", d[k]);
        if (arr) {
            struct json_object *o = json_object_new_object();
            json_object_object_add(o, "filename",
                                   json_object_new_string(argv[i]));
            json_object_object_add(o, "sha256", json_object_new_string(hex));
            json_object_array_add(arr, o);
        } else {
            printf("%s  %s\n", hex, argv[i]);
        }
    }
    if (arr)
        cli_print_json(arr);
    return ret;
}
