/*
 * src-open: open migrate's sources with src_open() and print what came
 * out as JSON, for tests/t-migrate-inputs.sh.
 *
 *   src-open [--allow-backing-path] [-f FMT] SRC...
 *
 * Prints {"kind", "name", "memory-mb", "vcpus", "firmware", "disks":
 * [{"name", "format", "virtual-size", "digest"}], "facts"}, the digest
 * being engine_digest()'s SHA-256 of the guest bytes in hex.  On failure
 * prints "src-open: MESSAGE" on stderr and exits 1.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "pipeline/source.h"

int main(int argc, char **argv)
{
    struct blk_open_opts oo = { 0 };
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--allow-backing-path"))
            oo.allow_backing_path = true;
        else if (!strcmp(argv[i], "-f") && i + 1 < argc)
            oo.format = argv[++i];
        else
            break;
    }
    struct src_vm vm;
    vf_error *err = NULL;
    if (src_open(argv + i, argc - i, &oo, &vm, &err) < 0) {
        fprintf(stderr, "src-open: %s\n", error_msg(err));
        error_free(err);
        return 1;
    }
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string(vm.kind));
    json_object_object_add(o, "name",
                           vm.name ? json_object_new_string(vm.name) : NULL);
    json_object_object_add(o, "memory-mb", json_object_new_int64(vm.memory_mb));
    json_object_object_add(o, "vcpus", json_object_new_int64(vm.vcpus));
    json_object_object_add(o, "firmware", vm.firmware ?
                           json_object_new_string(vm.firmware) : NULL);
    struct json_object *disks = json_object_new_array();
    json_object_object_add(o, "disks", disks);
    int rc = 0;
    for (size_t d = 0; d < vm.ndisks; d++) {
        uint8_t dg[32];
        char hex[65];
        if (engine_digest(vm.disks[d], dg, &err) < 0) {
            fprintf(stderr, "src-open: %s: %s\n", vm.disk_names[d],
                    error_msg(err));
            error_free(err);
            err = NULL;
            rc = 1;
            continue;
        }
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", dg[k]);
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "name",
                               json_object_new_string(vm.disk_names[d]));
        json_object_object_add(j, "format",
                               json_object_new_string(vm.disks[d]->drv->name));
        json_object_object_add(j, "virtual-size",
                               json_object_new_int64((int64_t)vm.disks[d]->size));
        json_object_object_add(j, "digest", json_object_new_string(hex));
        json_object_array_add(disks, j);
    }
    json_object_object_add(o, "facts", json_object_get(vm.facts));
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                        JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    src_close(&vm);
    return rc;
}
