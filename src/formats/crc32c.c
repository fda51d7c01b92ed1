/*
 * crc32c.c: CRC-32C (Castagnoli) with a 256-entry table built on first
 * use.  Check value: crc32c("123456789") = 0xE3069283.
 */
#include "formats/crc32c.h"

#include <pthread.h>

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

uint32_t crc32c_update(uint32_t crc, const void *p, size_t len)
{
    const uint8_t *b = p;
    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
    while (len--)
        crc = crc32c_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c_skip(const void *p, size_t len, size_t skip_off)
{
    static const uint8_t zero4[4];
    const uint8_t *b = p;
    uint32_t c = crc32c_update(0, b, skip_off);
    c = crc32c_update(c, zero4, 4);
    return crc32c_update(c, b + skip_off + 4, len - skip_off - 4);
}
