/*
 * fuzz-vhdx: libFuzzer target for the vhdx driver (forced, no probe).
 * Input: a VHDX file (headers, region table, metadata, BAT, log); see fuzz.h for what is done with it.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, "vhdx");
}
