/*
 * tar.h: tar member headers for the packages vmferry writes (OVA: ustar
 * with pax records when a member does not fit; GCE: oldgnu with sparse
 * members), and a header parser for reading packages back (OVA input).
 *
 * Written from POSIX pax/ustar (IEEE 1003.1, "pax" interchange format)
 * and the GNU tar manual's "Formats" and "Sparse Formats" chapters.
 * Only headers: the caller streams the member data itself, then
 * tar_padding() zero bytes, and ends the archive with TAR_EOF_LEN zeros.
 */
#ifndef VF_TAR_H
#define VF_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define TAR_BLOCK 512
#define TAR_EOF_LEN (2 * TAR_BLOCK)

/* Zero bytes that follow size bytes of member data (0..511). */
size_t tar_padding(uint64_t size);

/* The header block(s) of a regular file member of size bytes: one ustar
 * block, preceded by a pax extended header ('x') when the name is longer
 * than ustar holds or the size is 8 GiB or more.  *out is malloc'd,
 * *outlen a multiple of TAR_BLOCK.  0 / -1. */
int tar_member_header(const char *name, uint64_t size, unsigned mode,
                      int64_t mtime, uint8_t **out, size_t *outlen,
                      vf_error **errp);

/* The same member's header made exactly len bytes long (a multiple of
 * TAR_BLOCK, at most 64 KiB), for a header reserved before the member's
 * size was known: reserve tar_member_header's length for the largest
 * size the member can reach, then fill it in with the real size, which
 * may need fewer blocks.  The extra blocks are a pax extended header, or
 * grow the one there is, holding a "comment" record (readers ignore
 * it).  Fails when len is shorter than the header needs, or when it is
 * one block more than a header without pax records (a pax header takes
 * two blocks).  *out is malloc'd.  0 / -1. */
int tar_member_header_sized(const char *name, uint64_t size, unsigned mode,
                            int64_t mtime, size_t len, uint8_t **out,
                            vf_error **errp);

/* One data run of a sparse member: [off, off+len) of the file is stored;
 * everything between runs reads as zeros. */
struct tar_sparse {
    uint64_t off, len;
};

/* The header of an oldgnu sparse member ('S'): the file is realsize bytes
 * and its data is the runs of map (sorted, not overlapping, inside
 * [0, realsize]), stored back to back after the header(s), their lengths
 * summed being the member's size.  The first 4 runs sit in the header,
 * the rest in extension blocks of 21.  A file that ends in a hole gets a
 * last run of length 0 at realsize, as GNU tar writes it.  Numbers that
 * do not fit octal are written base-256 (GNU).  Names over 100 bytes are
 * refused.  *out is malloc'd.  0 / -1. */
int tar_oldgnu_sparse_header(const char *name, uint64_t realsize,
                             const struct tar_sparse *map, size_t n,
                             unsigned mode, int64_t mtime, uint8_t **out,
                             size_t *outlen, vf_error **errp);

/* A member as read back by tar_parse. */
struct tar_entry {
    char name[512];            /* from pax path, or prefix/name */
    char type;                 /* typeflag: '0' regular, '5' dir, ... */
    uint64_t size;             /* data bytes stored after the headers */
};

/* Parse the header block(s) at the start of buf (len bytes, a multiple
 * of TAR_BLOCK): pax 'x' / GNU 'L' records are folded into the entry they
 * describe.  Returns the number of header bytes consumed (the member's
 * data follows), 0 at the end-of-archive zero block, or -1 (a bad
 * checksum, a number that does not parse, a record past buf: naming
 * what).  When buf is too short for the records, returns -1 with *need
 * set to the length required (else *need is 0).  'g' global headers and
 * unknown pax keys are skipped. */
int64_t tar_parse(const uint8_t *buf, size_t len, struct tar_entry *e,
                  size_t *need, vf_error **errp);

#endif
