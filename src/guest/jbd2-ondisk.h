/*
 * jbd2-ondisk.h: the JBD2 journal's on-disk layout (ext3/ext4 journals),
 * as Linux's Documentation/filesystems/ext4/journal.rst describes it
 * (the "Journal (jbd2)" chapter of the ext4 disk layout, Linux 6.x).
 * Every journal field is big-endian, unlike the rest of ext4.  Offsets
 * are in bytes from the start of the structure; block numbers are in
 * filesystem blocks (the journal's block size is the filesystem's).
 */
#ifndef VF_GUEST_JBD2_ONDISK_H
#define VF_GUEST_JBD2_ONDISK_H

#define JBD2_MAGIC 0xC03B3998u

/* Every journal block starts with this 12-byte header. */
#define JBD2_H_MAGIC      0x0    /* be32: JBD2_MAGIC */
#define JBD2_H_BLOCKTYPE  0x4    /* be32: JBD2_BT_* */
#define JBD2_H_SEQUENCE   0x8    /* be32: transaction ID of the block */
#define JBD2_HEADER_SIZE  12

#define JBD2_BT_DESCRIPTOR 1     /* tags for the data blocks that follow */
#define JBD2_BT_COMMIT     2     /* end of a transaction */
#define JBD2_BT_SB_V1      3     /* journal superblock, version 1 */
#define JBD2_BT_SB_V2      4     /* journal superblock, version 2 */
#define JBD2_BT_REVOKE     5     /* block revocation records */

/* Journal superblock (1024 bytes in journal block 0). */
#define JBD2_SB_BLOCKSIZE   0x0C /* be32: journal block size, bytes */
#define JBD2_SB_MAXLEN      0x10 /* be32: blocks in the journal */
#define JBD2_SB_FIRST       0x14 /* be32: first block of the log */
#define JBD2_SB_SEQUENCE    0x18 /* be32: first transaction ID expected */
#define JBD2_SB_START       0x1C /* be32: block where the log starts;
                                    0: nothing to replay */
#define JBD2_SB_ERRNO       0x20 /* be32 */
/* v2 only from here on (a v1 superblock has no features) */
#define JBD2_SB_COMPAT      0x24 /* be32: JBD2_COMPAT_* */
#define JBD2_SB_INCOMPAT    0x28 /* be32: JBD2_INCOMPAT_* */
#define JBD2_SB_RO_COMPAT   0x2C /* be32 */
#define JBD2_SB_UUID        0x30 /* 16 bytes: seeds csum v2/v3 */
#define JBD2_SB_NR_USERS    0x40 /* be32 */
#define JBD2_SB_CSUM_TYPE   0x50 /* u8: JBD2_CSUM_* */
#define JBD2_SB_CHECKSUM    0xFC /* be32: crc32c(~0, the 1024 bytes with
                                    this field zero), csum v2/v3 */
#define JBD2_SB_SIZE        1024

#define JBD2_COMPAT_CHECKSUM      0x1  /* v1: crc32 of the transaction's
                                          blocks in its commit block */
#define JBD2_INCOMPAT_REVOKE      0x1
#define JBD2_INCOMPAT_64BIT       0x2  /* tags carry t_blocknr_high */
#define JBD2_INCOMPAT_ASYNC_COMMIT 0x4 /* commit written before its data */
#define JBD2_INCOMPAT_CSUM_V2     0x8
#define JBD2_INCOMPAT_CSUM_V3     0x10
#define JBD2_INCOMPAT_FAST_COMMIT 0x20 /* ext4 fast-commit area at the
                                          journal's end */

#define JBD2_CSUM_CRC32  1
#define JBD2_CSUM_CRC32C 4

/* Descriptor block tags, from offset JBD2_HEADER_SIZE.
 * csum v3 (struct journal_block_tag3_s, 16 bytes): */
#define JBD2_TAG3_BLOCKNR   0x0  /* be32: low 32 bits of the target */
#define JBD2_TAG3_FLAGS     0x4  /* be32: JBD2_FLAG_* */
#define JBD2_TAG3_BLOCKHI   0x8  /* be32: high 32 bits (64BIT only) */
#define JBD2_TAG3_CHECKSUM  0xC  /* be32: crc32c(seed, be32 sequence,
                                    the data block as logged) */
#define JBD2_TAG3_SIZE      16
/* otherwise (struct journal_block_tag_s, 8 bytes, 12 with 64BIT): */
#define JBD2_TAG_BLOCKNR    0x0  /* be32 */
#define JBD2_TAG_CHECKSUM   0x4  /* be16: low 16 bits of the same crc32c
                                    (csum v2 only) */
#define JBD2_TAG_FLAGS      0x6  /* be16: JBD2_FLAG_* */
#define JBD2_TAG_BLOCKHI    0x8  /* be32: only with 64BIT */
/* Each tag is followed by a 16-byte UUID unless it has SAME_UUID. */
#define JBD2_TAG_UUID_SIZE  16

#define JBD2_FLAG_ESCAPE    0x1  /* the logged copy's first 4 bytes were
                                    the magic and are stored as zeros */
#define JBD2_FLAG_SAME_UUID 0x2  /* no UUID after this tag */
#define JBD2_FLAG_DELETED   0x4  /* unused */
#define JBD2_FLAG_LAST_TAG  0x8  /* the descriptor's last tag */

/* csum v2/v3: the last 4 bytes of a descriptor or revoke block hold
 * be32 crc32c(seed, the block with those 4 bytes zero). */
#define JBD2_TAIL_SIZE      4

/* Revoke block */
#define JBD2_RV_COUNT       0xC  /* be32: bytes used, header included */
#define JBD2_RV_RECORDS     0x10 /* be32 block numbers, be64 with 64BIT */

/* Commit block */
#define JBD2_CM_CSUM_TYPE   0xC  /* u8: v1 checksum type (JBD2_CSUM_CRC32) */
#define JBD2_CM_CSUM_SIZE   0xD  /* u8: v1 checksum size (4) */
#define JBD2_CM_CHECKSUM    0x10 /* be32: csum v2/v3: crc32c(seed, the
                                    block with this field zero); v1: the
                                    transaction's crc32 */

#endif
