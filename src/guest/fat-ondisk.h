/*
 * fat-ondisk.h: FAT12/16/32 on-disk fields, from Microsoft's "FAT: General
 * Overview of On-Disk Format" (fatgen103, version 1.03, December 6, 2000).
 * Offsets are bytes; every multi-byte field is little-endian (read with
 * gle16 / gle32 from ondisk.h).
 */
#ifndef VF_GUEST_FAT_ONDISK_H
#define VF_GUEST_FAT_ONDISK_H

/* ---- boot sector and BPB (fatgen103 section 3) ---- */

#define FAT_BPB_BYTS_PER_SEC  11   /* le16: 512, 1024, 2048 or 4096 */
#define FAT_BPB_SEC_PER_CLUS  13   /* u8: power of two, 1..128 */
#define FAT_BPB_RSVD_SEC_CNT  14   /* le16: sectors before the first FAT,
                                      never 0 (the boot sector is one) */
#define FAT_BPB_NUM_FATS      16   /* u8: copies of the FAT, normally 2 */
#define FAT_BPB_ROOT_ENT_CNT  17   /* le16: FAT12/16 root directory
                                      entries (32 bytes each); 0 on FAT32 */
#define FAT_BPB_TOT_SEC16     19   /* le16: total sectors, or 0: see 32 */
#define FAT_BPB_FAT_SZ16      22   /* le16: sectors per FAT, or 0: FAT32 */
#define FAT_BPB_TOT_SEC32     32   /* le32: total sectors when TotSec16 0 */
/* FAT32 only (fatgen103 section 3.3) */
#define FAT_BPB32_FAT_SZ32    36   /* le32: sectors per FAT */
#define FAT_BPB32_EXT_FLAGS   40   /* le16: bit 7 set: only the FAT numbered
                                      by bits 0-3 is active (no mirror) */
#define FAT_BPB32_ROOT_CLUS   44   /* le32: first cluster of the root */
#define FAT_BS_SIGNATURE      510  /* 0x55 0xAA, whatever the sector size */

#define FAT_EXT_NO_MIRROR     0x80
#define FAT_EXT_ACTIVE_MASK   0x0f

/* FAT type by count of data clusters (section 3.5): fewer than 4085 is
 * FAT12, fewer than 65525 FAT16, else FAT32; FAT32 entries are 28 bits,
 * so cluster numbers end at 0x0FFFFFF6 (0x0FFFFFF7 marks a bad one). */
#define FAT12_MAX_CLUSTERS    4084u
#define FAT16_MAX_CLUSTERS    65524u
#define FAT32_MAX_CLUSTERS    0x0ffffff5u

/* ---- FAT entries (section 4) ---- */

#define FAT12_MASK 0x00000fffu
#define FAT16_MASK 0x0000ffffu
#define FAT32_MASK 0x0fffffffu   /* the high 4 bits are reserved */
/* after masking: a bad cluster is MASK - 8, end of chain >= MASK - 7 */

/* ---- directory entries (section 6), 32 bytes each ---- */

#define FAT_DIRENT_SIZE       32
#define FAT_DIR_NAME          0    /* 11 bytes: 8 + 3, space padded;
                                      byte 0: 0x00 end, 0xE5 free,
                                      0x05 stands for 0xE5 */
#define FAT_DIR_ATTR          11   /* u8: FAT_ATTR_* */
#define FAT_DIR_FST_CLUS_HI   20   /* le16: high word of the first cluster
                                      (FAT32; 0 on FAT12/16) */
#define FAT_DIR_FST_CLUS_LO   26   /* le16: low word of the first cluster */
#define FAT_DIR_FILE_SIZE     28   /* le32: bytes (0 for directories) */

#define FAT_NAME_END          0x00
#define FAT_NAME_FREE         0xe5
#define FAT_NAME_KANJI_E5     0x05

#define FAT_ATTR_READ_ONLY    0x01
#define FAT_ATTR_HIDDEN       0x02
#define FAT_ATTR_SYSTEM       0x04
#define FAT_ATTR_VOLUME_ID    0x08
#define FAT_ATTR_DIRECTORY    0x10
#define FAT_ATTR_ARCHIVE      0x20
#define FAT_ATTR_LONG_NAME    0x0f   /* RO|HIDDEN|SYSTEM|VOLUME_ID */
#define FAT_ATTR_LONG_MASK    0x3f

/* Our cap on one directory's walk: 65536 entries (2 MiB), the most
 * Linux's fat driver lets a directory grow to (FAT_MAX_DIR_ENTRIES); an
 * ESP's directories hold a handful. */
#define FAT_DIR_MAX_ENTRIES   65536u

/* ---- long-name entries (section 7), 32 bytes each ---- */

#define FAT_LDIR_ORD          0    /* u8: 1..20; FAT_LAST_LONG set on the
                                      first one stored (the name's end) */
#define FAT_LDIR_NAME1        1    /* 5 UCS-2 (le16) characters */
#define FAT_LDIR_CHKSUM       13   /* u8: checksum of the short name */
#define FAT_LDIR_NAME2        14   /* 6 UCS-2 characters */
#define FAT_LDIR_NAME3        28   /* 2 UCS-2 characters */
#define FAT_LAST_LONG         0x40
#define FAT_LDIR_ORD_MASK     0x3f
#define FAT_LDIR_CHARS        13   /* characters per entry */
#define FAT_LFN_MAX_ENTRIES   20   /* 255 characters at most */

#endif
