/*
 * crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as
 * [MS-VHDX] 2.2 requires for headers, region tables, metadata-free log
 * entries.  Table-driven, one byte at a time: VHDX checksums cover at most
 * a few hundred KiB per open, so speed does not matter here.
 */
#ifndef VF_CRC32C_H
#define VF_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc over len bytes of p; start with crc = 0. */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t len);

/* CRC-32C of len bytes at p whose 4-byte checksum field at skip_off (a
 * byte offset inside p) is taken as zero, as VHDX structures define it. */
uint32_t crc32c_skip(const void *p, size_t len, size_t skip_off);

#endif
