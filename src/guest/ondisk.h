/*
 * ondisk.h: explicit little/big-endian readers for the guest modules'
 * on-disk structures (never cast a struct over a buffer).
 */
#ifndef VF_GUEST_ONDISK_H
#define VF_GUEST_ONDISK_H

#include <stdint.h>

static inline uint16_t gle16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t gle32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t gle64(const uint8_t *p)
{
    return (uint64_t)gle32(p) | (uint64_t)gle32(p + 4) << 32;
}

static inline uint16_t gbe16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t gbe32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t gbe64(const uint8_t *p)
{
    return (uint64_t)gbe32(p) << 32 | gbe32(p + 4);
}

#endif
