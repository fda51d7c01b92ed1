/*
 * fuzz-probe: libFuzzer target for format probing and whichever driver
 * the probe picks.  Input: any file; see fuzz.h.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, NULL);
}
