#!/usr/bin/env python3
"""mk-qcow2.py: craft small hostile qcow2 images from scratch.

    mk-qcow2.py OUTDIR            write every image and OUTDIR/MANIFEST
    mk-qcow2.py --list            print the manifest only

Layout and fields follow QEMU's docs/interop/qcow2.txt (header version 3,
all numbers big-endian).  Every image starts from one valid, consistent
base (512-byte clusters so files stay a few KiB, 1 MiB virtual, refcounts
right, so `qemu-img check` calls it clean) and breaks exactly one thing.

The base, cluster by cluster:
    0  header, header extensions, backing file name
    1  refcount table (one entry)
    2  refcount block (16-bit refcounts)
    3  L1 table (32 entries for 1 MiB, only the first one used)
    4  L2 table
    5  guest cluster 0    6  guest cluster 1    7  guest cluster 5
    8  compressed guest cluster 9 (raw deflate)
Guest cluster 7 is a v3 "reads as zeros" entry; the rest is unallocated.
Data clusters hold the gen-pattern content: every 8-byte word is its own
guest offset, little-endian.

MANIFEST lines: NAME<TAB>CLASS<TAB>WHAT.  CLASS says what a reader must
do:
    control  a valid image: everything succeeds
    open     refuse to open: info, convert, check, map, digest all fail
    deep     the header is fine but the metadata behind it is not: reading
             the guest data (convert, digest) must fail and check must
             report it; info and map may succeed
    payload  metadata is consistent but a cluster's payload is broken:
             convert and digest must fail; the rest may succeed
    check    only the refcounts are wrong: check must report it; the
             guest data reads fine, so the rest may succeed
    any      odd but arguably legal: anything but a crash or a messy
             error
Helper files (backing targets) are listed with CLASS "aux".

Python 3 standard library only.
"""

import os
import struct
import sys
import zlib

MAGIC = b"QFI\xfb"
CB = 9                       # cluster_bits of the base image
CS = 1 << CB                 # cluster size
VSIZE = 1 << 20              # virtual size of the base image

OFLAG_COPIED = 1 << 63
OFLAG_COMPRESSED = 1 << 62
OFLAG_ZERO = 1

# Header field offsets (qcow2.txt, "Header").
H_VERSION = 4
H_BACKING_OFFSET = 8
H_BACKING_SIZE = 16
H_CLUSTER_BITS = 20
H_SIZE = 24
H_CRYPT = 32
H_L1_SIZE = 36
H_L1_OFFSET = 40
H_RT_OFFSET = 48
H_RT_CLUSTERS = 56
H_NB_SNAPSHOTS = 60
H_SNAPSHOTS_OFFSET = 64
H_INCOMPAT = 72
H_COMPAT = 80
H_AUTOCLEAR = 88
H_REFCOUNT_ORDER = 96
H_HEADER_LENGTH = 100
H_COMPRESSION_TYPE = 104
HEADER_LENGTH = 112

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_NAMES = 0x6803F857
EXT_DATA_FILE = 0x44415441

# Host clusters of the base layout.
C_HEADER, C_RT, C_RB, C_L1, C_L2 = 0, 1, 2, 3, 4
C_DATA0, C_DATA1, C_DATA5, C_COMPRESSED = 5, 6, 7, 8
NCLUSTERS = 9


def pattern(guest_off, length):
    """The gen-pattern content of [guest_off, guest_off + length)."""
    assert guest_off % 8 == 0 and length % 8 == 0
    return b"".join(struct.pack("<Q", guest_off + i)
                    for i in range(0, length, 8))


def deflate_raw(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -12)
    return c.compress(data) + c.flush()


class Image:
    """A base image whose fields a variant may change before build()."""

    def __init__(self):
        self.version = 3
        self.cluster_bits = CB
        self.size = VSIZE
        self.crypt = 0
        self.l1_size = VSIZE // (CS * (CS // 8))
        self.l1_offset = C_L1 * CS
        self.rt_offset = C_RT * CS
        self.rt_clusters = 1
        self.nb_snapshots = 0
        self.snapshots_offset = 0
        self.incompat = 0
        self.compat = 0
        self.autoclear = 0
        self.refcount_order = 4
        self.header_length = HEADER_LENGTH
        self.backing = None          # bytes
        self.backing_offset = None   # override the computed offset
        self.backing_size = None     # override len(backing)
        self.extensions = []         # (type, data bytes, declared len)
        self.l1 = [C_L2 * CS | OFLAG_COPIED]
        self.l2 = {}                 # guest cluster -> entry
        self.rt = [C_RB * CS]
        self.truncate_to = None
        self.backing_at_end = False
        self.post = []               # callables(bytearray) run last

        self.l2[0] = C_DATA0 * CS | OFLAG_COPIED
        self.l2[1] = C_DATA1 * CS | OFLAG_COPIED
        self.l2[5] = C_DATA5 * CS | OFLAG_COPIED
        self.l2[7] = OFLAG_ZERO
        self.compressed_payload = deflate_raw(pattern(9 * CS, CS))
        self.l2[9] = self.compressed_entry(C_COMPRESSED * CS,
                                           len(self.compressed_payload))

    @staticmethod
    def compressed_entry(host_off, length, cluster_bits=CB):
        """An L2 descriptor for compressed data at host_off: bits 0..x-1
        the byte offset, x..61 the number of 512-byte sectors the data
        spans minus one, where x = 62 - (cluster_bits - 8)."""
        x = 62 - (cluster_bits - 8)
        nsect = (host_off + length - 1) // 512 - host_off // 512
        assert host_off < (1 << x)
        return OFLAG_COMPRESSED | (nsect << x) | host_off

    def header(self):
        h = bytearray(CS)
        h[0:4] = MAGIC
        struct.pack_into(">I", h, H_VERSION, self.version)
        struct.pack_into(">I", h, H_CLUSTER_BITS, self.cluster_bits)
        struct.pack_into(">Q", h, H_SIZE, self.size)
        struct.pack_into(">I", h, H_CRYPT, self.crypt)
        struct.pack_into(">I", h, H_L1_SIZE, self.l1_size)
        struct.pack_into(">Q", h, H_L1_OFFSET, self.l1_offset)
        struct.pack_into(">Q", h, H_RT_OFFSET, self.rt_offset)
        struct.pack_into(">I", h, H_RT_CLUSTERS, self.rt_clusters)
        struct.pack_into(">I", h, H_NB_SNAPSHOTS, self.nb_snapshots)
        struct.pack_into(">Q", h, H_SNAPSHOTS_OFFSET, self.snapshots_offset)
        struct.pack_into(">Q", h, H_INCOMPAT, self.incompat)
        struct.pack_into(">Q", h, H_COMPAT, self.compat)
        struct.pack_into(">Q", h, H_AUTOCLEAR, self.autoclear)
        struct.pack_into(">I", h, H_REFCOUNT_ORDER, self.refcount_order)
        struct.pack_into(">I", h, H_HEADER_LENGTH, self.header_length)
        # compression_type 0 (zlib) and padding stay zero.

        pos = HEADER_LENGTH
        for etype, data, declared in self.extensions:
            n = len(data) if declared is None else declared
            struct.pack_into(">II", h, pos, etype, n)
            pos += 8
            h[pos:pos + len(data)] = data
            pos += (len(data) + 7) & ~7
        struct.pack_into(">II", h, pos, EXT_END, 0)
        pos += 8

        if self.backing is not None:
            off = pos if self.backing_offset is None else self.backing_offset
            size = (len(self.backing) if self.backing_size is None
                    else self.backing_size)
            struct.pack_into(">Q", h, H_BACKING_OFFSET, off)
            struct.pack_into(">I", h, H_BACKING_SIZE, size)
            if off + len(self.backing) <= CS:
                h[off:off + len(self.backing)] = self.backing
            elif self.backing_offset is None:
                # Too long for the header cluster: build() appends it.
                self.backing_at_end = True
        return h

    def build(self):
        img = bytearray(NCLUSTERS * CS)
        img[0:CS] = self.header()

        for i, e in enumerate(self.rt):
            struct.pack_into(">Q", img, C_RT * CS + 8 * i, e)
        for c in range(NCLUSTERS):
            struct.pack_into(">H", img, C_RB * CS + 2 * c, 1)
        for i, e in enumerate(self.l1):
            struct.pack_into(">Q", img, C_L1 * CS + 8 * i, e)
        for g, e in self.l2.items():
            struct.pack_into(">Q", img, C_L2 * CS + 8 * g, e)

        img[C_DATA0 * CS:C_DATA0 * CS + CS] = pattern(0, CS)
        img[C_DATA1 * CS:C_DATA1 * CS + CS] = pattern(CS, CS)
        img[C_DATA5 * CS:C_DATA5 * CS + CS] = pattern(5 * CS, CS)
        p = self.compressed_payload
        img[C_COMPRESSED * CS:C_COMPRESSED * CS + len(p)] = p

        if self.backing_at_end:
            struct.pack_into(">Q", img, H_BACKING_OFFSET, len(img))
            img += self.backing
        for f in self.post:
            f(img)
        if self.truncate_to is not None:
            del img[self.truncate_to:]
        return bytes(img)


def poke(fmt, off, value):
    """A post-build step that overwrites one field."""
    def f(img):
        struct.pack_into(fmt, img, off, value)
    return f


# ---- the variants ---------------------------------------------------------

VARIANTS = []   # (name, class, what, builder -> bytes)


def variant(name, cls, what):
    def deco(fn):
        VARIANTS.append((name, cls, what, fn))
        return fn
    return deco


def simple(name, cls, what, **fields):
    """A variant that only sets Image attributes."""
    def fn():
        im = Image()
        for k, v in fields.items():
            setattr(im, k, v)
        return im.build()
    VARIANTS.append((name, cls, what, fn))


@variant("control-base", "control", "the valid base image itself")
def _():
    return Image().build()


@variant("control-backing", "control",
         "valid image whose backing file is a sibling raw image")
def _():
    im = Image()
    im.backing = b"aux-backing.raw"
    im.extensions.append((EXT_BACKING_FORMAT, b"raw", None))
    return im.build()


@variant("aux-backing.raw", "aux", "raw backing file for control-backing")
def _():
    # Shorter than the image on purpose: reads past its end are zeros.
    return bytes(range(256)) * 256


simple("l1-size-huge", "open", "l1_size 0xffffffff", l1_size=0xFFFFFFFF)
simple("l1-size-too-small", "open",
       "l1_size 0 for a 1 MiB disk with data", l1_size=0)
simple("l1-offset-beyond-eof", "open", "L1 table at 1 GiB, file is 4.5 KiB",
       l1_offset=1 << 30)
simple("l1-offset-unaligned", "open", "L1 table offset not cluster aligned",
       l1_offset=C_L1 * CS + 8)
simple("l1-offset-huge", "open", "L1 table offset near 2^64",
       l1_offset=0xFFFFFFFFFFFFF000)
simple("refcount-table-overlaps-header", "open",
       "refcount table at offset 0, on top of the header", rt_offset=0)
simple("refcount-table-clusters-huge", "open",
       "refcount_table_clusters 0xffffffff", rt_clusters=0xFFFFFFFF)
simple("refcount-table-beyond-eof", "check", "refcount table at 1 TiB",
       rt_offset=1 << 40)
simple("cluster-bits-8", "open", "cluster_bits 8 (256-byte clusters)",
       cluster_bits=8)
simple("cluster-bits-22", "open", "cluster_bits 22 (4 MiB clusters)",
       cluster_bits=22)
simple("cluster-bits-63", "open", "cluster_bits 63", cluster_bits=63)
simple("cluster-bits-0", "open", "cluster_bits 0", cluster_bits=0)
simple("incompat-bit10", "open", "unknown incompatible feature bit 10",
       incompat=1 << 10)
simple("incompat-all", "open", "every incompatible feature bit set",
       incompat=0xFFFFFFFFFFFFFFFF)
simple("corrupt-bit", "open", "incompatible bit 1 (corrupt) set",
       incompat=1 << 1)
simple("crypt-method-1", "open", "encryption method 1 (AES)", crypt=1)
simple("crypt-method-2", "open", "encryption method 2 (LUKS)", crypt=2)
simple("version-1", "open", "version 1 with a qcow2 layout", version=1)
simple("version-4", "open", "version 4", version=4)
simple("version-huge", "open", "version 0xffffffff", version=0xFFFFFFFF)
simple("header-length-0", "open", "header_length 0", header_length=0)
simple("header-length-huge", "open", "header_length 0xffffffff",
       header_length=0xFFFFFFFF)
simple("header-length-unaligned", "open",
       "header_length 105, not a multiple of 8", header_length=105)
simple("size-2pow63", "open", "virtual size 2^63", size=1 << 63)
simple("size-max", "open", "virtual size 2^64-1", size=0xFFFFFFFFFFFFFFFF)
simple("refcount-order-7", "open", "refcount_order 7 (128-bit refcounts)",
       refcount_order=7)
simple("nb-snapshots-huge", "open",
       "nb_snapshots 0xffffffff, snapshot table beyond end of file",
       nb_snapshots=0xFFFFFFFF, snapshots_offset=1 << 30)
simple("external-data-file", "open",
       "incompatible bit 2 (external data file) set",
       incompat=1 << 2,
       extensions=[(EXT_DATA_FILE, b"hostile-data.raw", None)])
simple("backing-loop-self", "open", "backing file is the image itself",
       backing=b"backing-loop-self.qcow2")
simple("backing-loop-a", "open", "a -> b -> a backing loop",
       backing=b"backing-loop-b.qcow2")
simple("backing-loop-b", "open", "b -> a -> b backing loop",
       backing=b"backing-loop-a.qcow2")
simple("backing-name-2000", "open", "backing file name of 2000 bytes",
       backing=b"b" * 2000)
simple("backing-etc-passwd", "open",
       "backing file /etc/passwd (an absolute path outside the directory)",
       backing=b"/etc/passwd")
simple("backing-dotdot", "open",
       "backing file ../x (outside the image's directory; ../x exists)",
       backing=b"../x")
simple("backing-offset-beyond-eof", "open",
       "backing file name offset at 1 GiB", backing=b"x",
       backing_offset=1 << 30)
simple("backing-size-huge", "open", "backing_file_size 0xffffffff",
       backing=b"x", backing_size=0xFFFFFFFF)


@variant("truncated-30", "open", "the first 30 bytes of a header")
def _():
    return Image().build()[:30]


@variant("empty", "open", "an empty file")
def _():
    return b""


@variant("header-ext-len-over-cluster", "open",
         "a header extension longer than the cluster")
def _():
    im = Image()
    im.extensions.append((0x12345678, b"\0" * 8, CS + 8))
    return im.build()


@variant("header-ext-len-4g", "open",
         "backing format extension of length 0xffffffff")
def _():
    im = Image()
    im.extensions.append((EXT_BACKING_FORMAT, b"raw\0\0\0\0\0", 0xFFFFFFFF))
    return im.build()


@variant("header-ext-no-end", "any",
         "header extensions that never end (no end marker in the cluster)")
def _():
    im = Image()
    im.post.append(lambda img: img.__setitem__(
        slice(HEADER_LENGTH, CS),
        struct.pack(">II", 0x12345678, 0) * ((CS - HEADER_LENGTH) // 8)))
    return im.build()


@variant("compressed-past-eof", "deep",
         "compressed-cluster descriptor running past the end of the file")
def _():
    im = Image()
    # Start 100 bytes before the end and claim the most sectors the
    # descriptor can say (62 - x bits of them).
    x = 62 - (CB - 8)
    off = NCLUSTERS * CS - 100
    im.l2[9] = OFLAG_COMPRESSED | (((1 << (62 - x)) - 1) << x) | off
    return im.build()


@variant("compressed-offset-beyond-eof", "deep",
         "compressed-cluster descriptor starting at 1 GiB")
def _():
    im = Image()
    im.l2[9] = Image.compressed_entry(1 << 30, 100)
    return im.build()


@variant("compressed-garbage", "payload",
         "compressed cluster whose payload is not deflate data")
def _():
    im = Image()
    im.compressed_payload = b"\xff" * 500
    im.l2[9] = Image.compressed_entry(C_COMPRESSED * CS, 500)
    return im.build()


@variant("l2-offset-beyond-eof", "deep", "L1 entry points at 1 GiB")
def _():
    im = Image()
    im.l1[0] = (1 << 30) | OFLAG_COPIED
    return im.build()


@variant("l2-offset-unaligned", "deep", "L1 entry not cluster aligned")
def _():
    im = Image()
    im.l1[0] = (C_L2 * CS + 8) | OFLAG_COPIED
    return im.build()


@variant("data-offset-beyond-eof", "deep",
         "L2 entry for guest cluster 0 points at 1 GiB")
def _():
    im = Image()
    im.l2[0] = (1 << 30) | OFLAG_COPIED
    return im.build()


@variant("data-offset-unaligned", "deep",
         "L2 entry for guest cluster 1 not cluster aligned")
def _():
    im = Image()
    im.l2[1] = (C_DATA1 * CS + 256) | OFLAG_COPIED
    return im.build()


@variant("data-offset-is-l1", "check",
         "L2 entry for guest cluster 5 points at the L1 table's cluster")
def _():
    im = Image()
    im.l2[5] = C_L1 * CS | OFLAG_COPIED
    return im.build()


@variant("refcount-block-beyond-eof", "check",
         "refcount table entry points at 1 GiB")
def _():
    im = Image()
    im.rt[0] = 1 << 30
    return im.build()


def manifest():
    return "".join("%s\t%s\t%s\n" % (n, c, w) for n, c, w, _ in VARIANTS)


def filename(name):
    return name if name.startswith("aux-") else name + ".qcow2"


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        sys.stdout.write(manifest())
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: mk-qcow2.py OUTDIR | --list\n")
        return 2
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    for name, cls, _, fn in VARIANTS:
        with open(os.path.join(out, filename(name)), "wb") as f:
            f.write(fn())
    with open(os.path.join(out, "MANIFEST"), "w") as f:
        f.write(manifest())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
