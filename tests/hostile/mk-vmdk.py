#!/usr/bin/env python3
"""mk-vmdk.py: craft small hostile VMDK images from scratch.

    mk-vmdk.py OUTDIR            write every image and OUTDIR/MANIFEST
    mk-vmdk.py --list            print the manifest only

Structures follow VMware's "Virtual Disk Format 5.0" (hosted sparse
"KDMV" extents, streamOptimized markers, text descriptors) and libyal's
libvmdk notes for "COWD"; every number is little-endian, sectors are 512
bytes.  Each image starts from one valid base and breaks one thing:

  sparse base (1 MiB virtual, 8 KiB grains, one 512-entry GT):
    sector 0 header (version 2, flags NL_DETECT|RGD|ZEROED_GTE)
    1-20 embedded descriptor, 21 RGD, 22-25 RGT, 26 GD, 27-30 GT,
    32 grain 0, 48 grain 1, 64 grain 5; grain 7 is a zeroed-grain entry
  stream base: version 3, COMPRESSED|MARKERS, gdOffset GD_AT_END, grain
    markers with zlib data for grains 0, 1, 5, GT marker + GT, GD marker
    + GD, footer marker + footer, end-of-stream marker
  descriptor base: monolithicFlat text descriptor + a 1 MiB flat extent
  seSparse base (sesparse.py): an ESXi seSparse delta over ctl-sparse
    (1 MiB, one grain table): grains 0 and 6 allocated, 1 zeroed, 2
    unmapped, the rest the parent's

Data grains hold a pattern: each 8-byte word is its own guest offset.

MANIFEST lines: NAME<TAB>CLASS<TAB>WHAT (NAME without ".vmdk").  CLASS:
    control  valid: everything succeeds and reads as qemu-img reads it
    open     refused at open: info, convert, check, map, digest fail
    chain    the image is fine but its parent may not be opened: info,
             convert, map, digest fail; check may succeed
    deep     header fine, metadata behind it broken: convert and digest
             fail, check reports it; info and map may succeed
    payload  metadata consistent, a grain's payload broken: convert and
             digest fail; the rest may succeed
    check    content reads, but check must report a problem
    any      odd but arguably legal: anything but a crash or messy error
    aux      helper file, not tested by itself

Python 3 standard library only.
"""

import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sesparse  # noqa: E402

S = 512
GS = 16                      # grain, sectors
G = GS * S
VSEC = 2048                  # 1 MiB virtual
GTES = 512
DATA_GRAINS = (0, 1, 5)


def pattern(off, length):
    return b"".join(struct.pack("<Q", off + i) for i in range(0, length, 8))


def desc_text(create="monolithicSparse", extents=None, extra=""):
    if extents is None:
        extents = 'RW %d SPARSE "self.vmdk"\n' % VSEC
    return ("# Disk DescriptorFile\nversion=1\nCID=12345678\n"
            "parentCID=ffffffff\ncreateType=\"%s\"\n%s\n"
            "# Extent description\n%s\n# The Disk Data Base\n#DDB\n\n"
            "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n"
            % (create, extra, extents)).encode()


def header(version=2, flags=0x7, capacity=VSEC, grain=GS, desc_off=1,
           desc_size=20, gtes=GTES, rgd=21, gd=26, overhead=32,
           nl=b"\n \r\n", alg=0, magic=b"KDMV"):
    h = bytearray(S)
    h[0:4] = magic
    struct.pack_into("<IIQQQQIQQQ", h, 4, version, flags, capacity, grain,
                     desc_off, desc_size, gtes, rgd, gd, overhead)
    h[73:77] = nl
    struct.pack_into("<H", h, 77, alg)
    return h


class Sparse:
    """The sparse base; fields can be changed before build()."""

    def __init__(self):
        self.hdr = {}
        self.desc = desc_text()
        self.gt = [0] * GTES
        for i, g in enumerate(DATA_GRAINS):
            self.gt[g] = 32 + i * GS
        self.gt[7] = 1
        self.rgt = None          # None: same as gt
        self.gd = 27
        self.rgd = 22
        self.tail = b""

    def build(self):
        img = bytearray(32 * S + len(DATA_GRAINS) * G)
        img[0:S] = header(**self.hdr)
        img[S:S + len(self.desc)] = self.desc
        struct.pack_into("<I", img, 21 * S, self.rgd)
        struct.pack_into("<%dI" % GTES, img, 22 * S, *(self.rgt or self.gt))
        struct.pack_into("<I", img, 26 * S, self.gd)
        struct.pack_into("<%dI" % GTES, img, 27 * S, *self.gt)
        for i, g in enumerate(DATA_GRAINS):
            img[(32 + i * GS) * S:(32 + (i + 1) * GS) * S] = pattern(g * G, G)
        return bytes(img) + self.tail


def marker(val, size, typ=0):
    m = bytearray(S)
    struct.pack_into("<QII", m, 0, val, size, typ)
    return bytes(m)


def pad(b):
    return b + bytes(-len(b) % S)


class Stream:
    def __init__(self):
        self.grains = {g: zlib.compress(pattern(g * G, G)) for g in DATA_GRAINS}
        self.sizes = {}          # grain -> marker size override
        self.footer = True
        self.gt_marker_val = 4

    def build(self):
        flags = 0x30001
        out = bytearray(header(version=3, flags=flags, rgd=0,
                               gd=0xffffffffffffffff, overhead=21, alg=1))
        d = desc_text("streamOptimized")
        out += d + bytes(20 * S - len(d))
        gt = [0] * GTES
        for g in sorted(self.grains):
            gt[g] = len(out) // S
            z = self.grains[g]
            out += pad(struct.pack("<QI", g * GS, self.sizes.get(g, len(z))) + z)
        out += marker(self.gt_marker_val, 0, 1)
        gt_sec = len(out) // S
        out += struct.pack("<%dI" % GTES, *gt)
        out += marker(1, 0, 2)
        gd_sec = len(out) // S
        out += pad(struct.pack("<I", gt_sec))
        if self.footer:
            out += marker(1, 0, 3)
            out += header(version=3, flags=flags, rgd=0, gd=gd_sec,
                          overhead=21, alg=1)
            out += marker(0, 0, 0)
        return bytes(out)


images = []                  # (name, class, what, bytes or None, extra files)


def add(name, cls, what, data, aux=None):
    images.append((name, cls, what, data, aux or {}))


def sparse(**hdr):
    s = Sparse()
    s.hdr.update(hdr)
    return s


def flat_desc(extents, create="monolithicFlat", extra=""):
    return desc_text(create, extents, extra)


FLAT = pattern(0, VSEC * S)

# ---- controls ----
add("ctl-sparse", "control", "the sparse base", Sparse().build())
add("ctl-stream", "control", "the stream base", Stream().build())
add("ctl-flat", "control", "monolithicFlat descriptor + flat extent",
    flat_desc('RW %d FLAT "ctl-flat-flat.bin" 0\n' % VSEC),
    {"ctl-flat-flat.bin": FLAT})
cowd = bytearray(S + 32 * 1024 + 3 * S)
struct.pack_into("<4sIIIIIII", cowd, 0, b"COWD", 1, 3, VSEC, 1, 1, 1, 0)
struct.pack_into("<I", cowd, S, 2)               # GD -> GT at sector 2
struct.pack_into("<I", cowd, 2 * S + 4 * 3, 66)  # guest sector 3 -> 66
cowd[66 * S:67 * S] = pattern(3 * S, S)
add("ctl-cowd", "any", "an ESX COWD sparse extent", bytes(cowd))

# ---- descriptors and names ----
add("desc-extent-dotdot", "open", "extent file '../x'",
    flat_desc('RW %d FLAT "../x" 0\n' % VSEC))
add("desc-extent-absolute", "open", "extent file '/etc/passwd'",
    flat_desc('RW %d FLAT "/etc/passwd" 0\n' % VSEC))
add("desc-extent-missing", "open", "extent file that does not exist",
    flat_desc('RW %d FLAT "nope.bin" 0\n' % VSEC))
add("desc-10mb", "open", "a 10 MB descriptor",
    flat_desc('RW %d ZERO\n' % VSEC) + b"#" * (10 << 20) + b"\n")
add("desc-no-extents", "open", "a descriptor without extents",
    flat_desc(""))
add("desc-extents-40000", "open", "40000 ZERO extents",
    flat_desc('RW 1 ZERO\n' * 40000))
add("desc-extent-size-overflow", "open", "extent sizes summing past 2^64",
    flat_desc('RW 4503599627370496 ZERO\n' * 5))
add("desc-extent-type-rdm", "open", "a VMFSRDM extent",
    flat_desc('RW %d VMFSRDM "x.bin"\n' % VSEC))
add("desc-extent-unquoted", "open", "an unterminated file name",
    flat_desc('RW %d FLAT "x.bin\n' % VSEC))
add("desc-flat-offset-past-eof", "any", "flat extent offset past its file",
    flat_desc('RW %d FLAT "ctl-flat-flat.bin" 99999999\n' % VSEC))
add("desc-parent-dotdot", "chain", "parentFileNameHint '../x'",
    flat_desc('RW %d FLAT "ctl-flat-flat.bin" 0\n' % VSEC,
              extra='parentFileNameHint="../x"\n'))
add("desc-parent-self", "chain", "a parent that is the image itself",
    flat_desc('RW %d FLAT "ctl-flat-flat.bin" 0\n' % VSEC,
              extra='parentFileNameHint="desc-parent-self.vmdk"\n'))
add("desc-sparse-extent-is-text", "open", "SPARSE extent naming a text file",
    flat_desc('RW %d SPARSE "desc-no-extents.vmdk"\n' % VSEC))
add("desc-bad-cid", "open", "CID not hex",
    desc_text().replace(b"CID=12345678", b"CID=zzzz"))

# ---- sparse header ----
add("hdr-version-4", "open", "version 4", sparse(version=4).build())
add("hdr-grain-0", "open", "grain size 0", sparse(grain=0).build())
add("hdr-grain-3", "open", "grain size not a power of two",
    sparse(grain=3).build())
add("hdr-grain-2pow40", "open", "grain size 2^40 sectors",
    sparse(grain=1 << 40).build())
add("hdr-gtes-2pow31", "open", "2^31 entries per GT",
    sparse(gtes=1 << 31).build())
add("hdr-gd-2pow32", "open", "a grain directory of 2^32 entries",
    sparse(capacity=1 << 32, grain=1, gtes=1).build())
add("hdr-capacity-2pow63", "open", "capacity 2^63 sectors",
    sparse(capacity=1 << 63).build())
add("hdr-nl-damaged", "open", "line-end check chars mangled",
    sparse(nl=b"\n \n\n").build())
add("hdr-desc-size-huge", "open", "embedded descriptor of 2^40 sectors",
    sparse(desc_size=1 << 40).build())
add("hdr-desc-past-eof", "open", "embedded descriptor past end of file",
    sparse(desc_off=1 << 30).build())
add("hdr-compress-alg-7", "open", "unknown compression algorithm",
    sparse(flags=0x10007, alg=7).build())
add("hdr-gd-past-eof-no-rgd", "open", "GD past end of file, no RGD",
    sparse(flags=0x5, gd=1 << 40).build())
add("truncated-header", "open", "a 100-byte file", Sparse().build()[:100])
s = sparse(gd=1 << 40)
add("hdr-gd-past-eof-rgd-ok", "check", "GD past end of file, RGD fine",
    s.build())

# ---- grain directory / tables ----
s = Sparse(); s.gd = 0x7fffffff
add("gd-entry-past-eof", "deep", "GD entry past end of file (RGD too)",
    (lambda s: (setattr(s, "rgd", 0x7fffffff), s.build())[1])(s))
s = Sparse(); s.gt[5] = 0x100000
s.rgt = list(s.gt)
add("gte-past-eof", "deep", "GT entry beyond end of file", s.build())
s = Sparse(); s.rgt = list(s.gt); s.rgt[1] = 64
add("rgt-mismatch", "check", "redundant GT differs from the primary",
    s.build())
s = Sparse(); s.gt[9] = s.gt[0]; s.rgt = list(s.gt)
add("grains-overlap", "check", "two GT entries share a grain", s.build())
s = Sparse(); s.gt[10] = 27; s.rgt = list(s.gt)
add("grain-over-gt", "check", "a grain on top of the GT", s.build())

# ---- stream ----
st = Stream(); st.sizes[1] = 1 << 20
add("stream-grain-len-huge", "deep", "compressed grain longer than 2 grains",
    st.build())
st = Stream(); st.sizes[5] = 3 * S
add("stream-grain-len-past-eof", "any", "grain length past its data",
    st.build())
st = Stream(); st.grains[1] = b"\x78\x9c" + b"\xff" * 100
add("stream-grain-garbage", "payload", "compressed grain is not zlib",
    st.build())
st = Stream(); st.grains[5] = zlib.compress(bytes(4 * G))
add("stream-grain-inflates-big", "payload", "grain inflates past the grain",
    st.build())
st = Stream(); st.footer = False
add("stream-no-footer", "any", "GD_AT_END without footer: scan markers",
    st.build())
st = Stream(); st.footer = False; st.gt_marker_val = 1 << 40
add("stream-marker-past-eof", "open", "a GT marker claiming 2^40 sectors",
    st.build())
st = Stream(); st.footer = False; st.sizes[1] = 1 << 20
add("stream-scan-grain-huge", "open", "scanned grain marker too long",
    st.build())

# ---- seSparse deltas (descriptor + extent over ctl-sparse) ----
def se_base(capacity=VSEC):
    se = sesparse.SeSparse(capacity)
    for g, gi in ((0, 0), (6, 1)):
        se.grains[gi] = sesparse.pattern(0xa5 << 56, g * 4096, 4096)
        se.map(g, sesparse.gte_alloc(gi))
    se.map(1, 2 << 60)
    se.map(2, 1 << 60)
    return se


def se_add(name, cls, what, se=None, extent=None, desc_sectors=VSEC,
           parent="ctl-sparse.vmdk"):
    ext = name + "-sesparse.vmdk"
    data = extent if extent is not None else (se or se_base()).build()
    add(name, cls, what,
        sesparse.descriptor(desc_sectors, ext, parent, 0x12345678),
        {ext: data})


def se_with(fn, capacity=VSEC):
    se = se_base(capacity)
    fn(se)
    return se


se_add("se-ctl", "control", "seSparse delta over a sparse parent")
se_add("se-bad-magic", "open", "seSparse constant header magic wrong",
       se_with(lambda s: s.hdr.update(magic=0xcafebabf)))
se_add("se-bad-version", "open", "seSparse version 3",
       se_with(lambda s: s.hdr.update(version=0x300000001)))
se_add("se-grain-16", "open", "seSparse grain of 16 sectors",
       se_with(lambda s: s.hdr.update(grain_size=16)))
se_add("se-flags", "open", "seSparse flags set",
       se_with(lambda s: s.hdr.update(flags=1)))
se_add("se-vol-bad-magic", "open", "seSparse volatile header magic wrong",
       se_with(lambda s: s.vol.update(magic=0xcafebabe)))
se_add("se-vol-past-eof", "open", "seSparse volatile header past EOF",
       se_with(lambda s: s.hdr.update(vol_off=1 << 40)))
se_add("se-journal-dirty", "open", "seSparse journal to replay",
       se_with(lambda s: s.vol.update(replay=1)))
se_add("se-capacity-huge", "open", "seSparse capacity 2^62 sectors",
       se_with(lambda s: s.hdr.update(capacity=1 << 62)))
se_add("se-capacity-2pow40", "open",
       "seSparse capacity 2^40 sectors (GD claims too)",
       se_with(lambda s: s.hdr.update(capacity=1 << 40, gd_size=1 << 30)))
se_add("se-gd-too-small", "open", "seSparse GD smaller than the capacity",
       se_with(lambda s: s.hdr.update(gd_size=0)))
se_add("se-gd-past-eof", "open", "seSparse GD offset past end of file",
       se_with(lambda s: s.hdr.update(gd_off=1 << 40)))
se_add("se-offset-2pow60", "open", "seSparse grains offset 2^60 sectors",
       se_with(lambda s: s.hdr.update(grains_off=1 << 60)))
se_add("se-extent-short", "open", "seSparse extent of 100 bytes",
       extent=se_base().build()[:100])
se_add("se-extent-is-kdmv", "open", "SESPARSE extent holding a KDMV file",
       extent=Sparse().build())
se_add("se-gde-bad", "deep", "seSparse GD entry without the allocated mark",
       se_with(lambda s: s.gd_raw.update({0: 0x2000000000000000})))
se_add("se-gt-index-range", "deep", "seSparse GT index out of range",
       se_with(lambda s: s.gd.update({0: 5})))
se_add("se-gt-index-max", "deep", "seSparse GT index 2^32-1",
       se_with(lambda s: s.gd_raw.update({0: 0x10000000ffffffff})))
se_add("se-gt-past-eof", "deep", "seSparse GT in range but past EOF",
       se_with(lambda s: (s.hdr.update(gts_size=1000 * 64),
                          s.gd_raw.update({0: 0x10000000000001f4}))))
se_add("se-grain-past-eof", "deep", "seSparse grain past end of file",
       se_with(lambda s: s.map(3, sesparse.gte_alloc(1000))))
se_add("se-grain-index-max", "deep", "seSparse grain index 2^60-1",
       se_with(lambda s: s.map(3, 0x3fffffffffffffff)))
se_add("se-gte-type-7", "deep", "seSparse GT entry of unknown type",
       se_with(lambda s: s.map(4, 7 << 60)))
se_add("se-gte-unalloc-bits", "deep", "unallocated seSparse entry not 0",
       se_with(lambda s: s.map(4, 5)))
se_add("se-parent-missing", "chain", "seSparse delta whose parent is gone",
       parent="nope.vmdk")
se_add("se-desc-bigger", "any", "descriptor size beyond the capacity",
       desc_sectors=4 * VSEC)
se_add("se-grain-on-header", "any", "seSparse grain 0 is the header",
       se_with(lambda s: s.hdr.update(grains_off=0)))
se_add("se-gt-shared", "check", "two seSparse GD entries share one GT",
       se_with(lambda s: s.gd.update({1: 0}), capacity=2 * 32768),
       desc_sectors=2 * 32768)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        for n, c, w, _, _ in images:
            print("%s\t%s\t%s" % (n, c, w))
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "MANIFEST"), "w") as m:
        for n, c, w, data, aux in images:
            with open(os.path.join(out, n + ".vmdk"), "wb") as f:
                f.write(data)
            for an, ad in aux.items():
                with open(os.path.join(out, an), "wb") as f:
                    f.write(ad)
            m.write("%s\t%s\t%s\n" % (n, c, w))


main()
