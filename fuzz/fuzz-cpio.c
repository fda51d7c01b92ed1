/*
 * fuzz-cpio: libFuzzer target for the initramfs scanner: concatenated
 * cpio newc archives, uncompressed or gzip / xz / lzma / zstd / lz4 /
 * bzip2 compressed.  Input: an initramfs image.
 */
#include <stdint.h>

#include <json-c/json.h>

#include "core/error.h"
#include "guest/guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *o = json_object_new_object();
    vf_error *err = NULL;
    if (initramfs_scan_buf(data, size, o, &err) < 0)
        error_free(err);
    json_object_put(o);
    return 0;
}
