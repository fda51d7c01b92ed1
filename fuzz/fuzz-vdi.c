/*
 * fuzz-vdi: libFuzzer target for the vdi driver (forced, no probe).
 * Input: a VDI file (header, block map); see fuzz.h for what is done with it.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, "vdi");
}
