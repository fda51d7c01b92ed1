/*
 * fuzz-vpc: libFuzzer target for the VHD ("vpc") driver (forced, no probe).
 * Input: a VHD file (footer, dynamic header, BAT, locators); see fuzz.h for what is done with it.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one(data, size, "vpc");
}
