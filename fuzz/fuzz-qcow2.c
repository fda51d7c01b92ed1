/*
 * fuzz-qcow2: libFuzzer target for the qcow2 driver (forced, no probe).
 * Input: a qcow2 file; see fuzz.h for what is done with it.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, "qcow2");
}
