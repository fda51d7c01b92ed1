/*
 * fuzz-lvm: libFuzzer target for the LVM2 text metadata parser (the
 * "vg { physical_volumes { ... } logical_volumes { ... } }" language).
 * Input: metadata text.  PV labels and metadata areas on disk are fuzzed
 * by fuzz-part.
 */
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"
#include "guest/guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *o = NULL;
    vf_error *err = NULL;
    if (lvm_parse_text((const char *)data, size, &o, &err) < 0)
        error_free(err);
    json_object_put(o);
    return 0;
}
