/*
 * fuzz-vmdk: libFuzzer target for the VMDK driver (forced, no probe, no
 * parent or extent files beyond what the input names: a descriptor's
 * extents resolve relative to the working directory and usually fail).
 * Input: a VMDK sparse/stream/COWD file or a text descriptor; see fuzz.h
 * for what is done with it.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, "vmdk");
}
