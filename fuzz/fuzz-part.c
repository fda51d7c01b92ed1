/*
 * fuzz-part: libFuzzer target for partition tables, LVM labels and
 * metadata areas, and filesystem / volume probes.  Input: a disk image
 * (raw bytes); it is inspected with INSPECT_NO_FILES (no filesystem is
 * opened, so libext2fs is out of scope here).  Errors and warnings are
 * fine; crashes and sanitizer reports are not.
 */
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "core/error.h"
#include "formats/format.h"
#include "guest/inspect.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct io *io = io_mem_view("fuzz-input", data, size);
    if (!io)
        return 0;
    struct blk_open_opts oo;
    memset(&oo, 0, sizeof(oo));
    oo.format = "raw";
    oo.no_backing = true;
    vf_error *err = NULL;
    struct blk *b = blk_open_io(io, "fuzz-input", true, &oo, &err);
    if (!b) {
        error_free(err);
        return 0;
    }
    struct json_object *r = inspect_disks(&b, 1, INSPECT_NO_FILES, &err);
    if (!r)
        error_free(err);
    json_object_put(r);
    blk_close(b);
    return 0;
}
