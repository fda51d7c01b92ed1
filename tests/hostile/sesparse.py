#!/usr/bin/env python3
"""sesparse.py: craft ESXi seSparse VMDK deltas (descriptor + extent).

    sesparse.py delta PARENT_RAW PARENT_VMDK OUTDIR NAME
        write OUTDIR/NAME.vmdk (createType seSparse, parent PARENT_VMDK,
        whose CID is read from its embedded descriptor), the extent
        OUTDIR/NAME-sesparse.vmdk, and OUTDIR/NAME.expected.raw: what the
        delta must read as (PARENT_RAW with the delta's grains over it).

Imported by mk-vmdk.py for the hostile images.

VMware never published seSparse; the layout follows what QEMU's
block/vmdk.c reads (vmdk_open_se_sparse, get_cluster_offset).  Every
number is little-endian; header offsets and sizes are 512-byte sectors:

  constant header (sector 0), 26 LE64 fields then zero padding:
    magic 0xcafebabe, version 0x200000001, capacity, grain size (8),
    grain table size (64), flags (0), 4 reserved (0), volatile header
    offset/size, journal header offset/size, journal offset/size, grain
    directory offset/size, grain tables offset/size, free bitmap
    offset/size, backmap offset/size, grains offset/size
  volatile header (sector 1): magic 0xcafecafe, free GT number, next
    transaction, replay-journal flag (0)
  grain directory: LE64 per 16 MiB of disk; 0 = no grain table, else
    0x10000000_xxxxxxxx with a grain-table index in the low 32 bits
  grain tables: 4096 LE64 entries (32 KiB) each, at tables offset +
    index * 64 sectors; top nibble 0 = unallocated (read the parent),
    1 = unmapped, 2 = zero (both read as zeros), 3 = allocated with the
    grain index G stored as ((G & 0xfff) << 48) | (G >> 12)
  grains: 4 KiB each at grains offset + G * 8 sectors

Python 3 standard library only.
"""

import os
import re
import struct
import sys

S = 512
GRAIN = 4096                 # bytes
GTES = 4096                  # entries per grain table
GT_SECT = 64
PER_GT = GRAIN * GTES        # 16 MiB of disk per grain table

FIELDS = ("magic version capacity grain_size gt_size flags r1 r2 r3 r4 "
          "vol_off vol_size jhdr_off jhdr_size journal_off journal_size "
          "gd_off gd_size gts_off gts_size bitmap_off bitmap_size "
          "backmap_off backmap_size grains_off grains_size").split()


def gte_alloc(index):
    """The GT entry of an allocated grain stored at grain index index."""
    return (3 << 60) | ((index & 0xfff) << 48) | (index >> 12)


def pattern(tag, off, length):
    """Delta data: each 8-byte word is tag | its guest offset."""
    return b"".join(struct.pack("<Q", tag | (off + i))
                    for i in range(0, length, 8))


class SeSparse:
    """A seSparse extent; change the fields before build().

    gd: {GD index: GT index}; gt[GT index]: {entry: raw LE64 value};
    grains: {grain index: 4096 bytes}; hdr: header field overrides;
    gd_raw: {GD index: raw LE64 value} overrides.
    """

    def __init__(self, capacity):
        self.capacity = capacity             # sectors
        self.ngd = max(1, -(-capacity * S // PER_GT))
        self.gd = {}
        self.gt = {}
        self.grains = {}
        self.hdr = {}
        self.vol = {}
        self.gd_raw = {}
        self.ngts = self.ngd                 # room in the GT area

    def map(self, g, value):
        """Set grain g's GT entry (GT index = its GD index by default)."""
        i = g // GTES
        t = self.gd.setdefault(i, i)
        self.gt.setdefault(t, {})[g % GTES] = value

    def layout(self):
        gd_off = 8
        gd_size = -(-self.ngd * 8 // S)
        gts_off = -(-(gd_off + gd_size) // 8) * 8
        grains_off = gts_off + self.ngts * GT_SECT
        h = dict(magic=0xcafebabe, version=0x200000001,
                 capacity=self.capacity, grain_size=8, gt_size=64,
                 vol_off=1, vol_size=1, jhdr_off=2, jhdr_size=2,
                 journal_off=4, journal_size=4, gd_off=gd_off,
                 gd_size=gd_size, gts_off=gts_off,
                 gts_size=self.ngts * GT_SECT, grains_off=grains_off,
                 grains_size=-(-self.capacity // 8) * 8)
        h.update(self.hdr)
        return h

    def chunks(self, limit=1 << 40):
        """(offset, bytes) pieces of the file and its total size; pieces
        a hostile header puts at or past limit are left out (so they lie
        past the end of the file)."""
        h = self.layout()
        out = []
        hdr = bytearray(S)
        struct.pack_into("<26Q", hdr, 0, *[h.get(f, 0) for f in FIELDS])
        out.append((0, bytes(hdr)))
        v = dict(magic=0xcafecafe, free_gt=len(self.gt), txn=1, replay=0)
        v.update(self.vol)
        out.append((h["vol_off"] * S,
                    struct.pack("<4Q", v["magic"], v["free_gt"], v["txn"],
                                v["replay"]) + bytes(S - 32)))
        gd = [0] * self.ngd
        for i, t in self.gd.items():
            gd[i] = (0x10000000 << 32) | t
        for i, raw in self.gd_raw.items():
            gd[i] = raw
        out.append((h["gd_off"] * S, struct.pack("<%dQ" % self.ngd, *gd)))
        for t, ents in self.gt.items():
            tab = [0] * GTES
            for k, val in ents.items():
                tab[k] = val
            out.append((h["gts_off"] * S + t * GT_SECT * S,
                        struct.pack("<%dQ" % GTES, *tab)))
        for gi, data in self.grains.items():
            out.append((h["grains_off"] * S + gi * GRAIN, data))
        out = [(o, d) for o, d in out if o < limit]
        end = max(o + len(d) for o, d in out)
        if h["grains_off"] * S < limit:
            end = max(end, h["grains_off"] * S)
        return out, -(-end // S) * S

    def build(self):
        """The whole extent as bytes (for small images)."""
        pieces, size = self.chunks(64 << 20)
        img = bytearray(size)
        for o, d in pieces:
            img[o:o + len(d)] = d
        return bytes(img)

    def write(self, path):
        """Write the extent, leaving holes where nothing is."""
        pieces, size = self.chunks()
        with open(path, "wb") as f:
            f.truncate(size)
            for o, d in pieces:
                f.seek(o)
                f.write(d)


def descriptor(capacity, extent, parent, parent_cid, cid=0x5e5e5e5e):
    """The text descriptor ESXi writes for a seSparse snapshot delta."""
    return ("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
            "CID=%08x\nparentCID=%08x\ncreateType=\"seSparse\"\n"
            "parentFileNameHint=\"%s\"\n# Extent description\n"
            "RW %d SESPARSE \"%s\"\n\n# The Disk Data Base\n#DDB\n\n"
            "ddb.grain = \"8\"\nddb.longContentID = "
            "\"0123456789abcdef0123456789abcdef\"\n"
            "ddb.thinProvisioned = \"1\"\nddb.toolsInstallType = \"4\"\n"
            "ddb.virtualHWVersion = \"14\"\n"
            % (cid, parent_cid, parent, capacity, extent)).encode()


def parent_cid(path):
    """The CID in a VMDK's embedded (or text) descriptor."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    m = re.search(rb"\nCID=([0-9a-fA-F]{1,8})", head)
    if not m:
        sys.exit("sesparse.py: no CID in %s" % path)
    return int(m.group(1), 16)


def make_delta(parent_raw, parent_vmdk, outdir, name):
    """A delta over a 40 MiB-ish parent: allocated grains (some next to
    each other on disk, some at grain indices past 4096 so both halves of
    the scattered index matter), zero and unmapped grains over parent
    data, a GD entry of 0, and grain tables in another order than the
    GD's."""
    with open(parent_raw, "rb") as f:
        want = bytearray(f.read())
    size = len(want)
    if size % S or size < 2 * PER_GT + 8 * GRAIN:
        sys.exit("sesparse.py: parent of %d bytes: need > 32 MiB, whole "
                 "sectors" % size)
    se = SeSparse(size // S)
    ngd = se.ngd
    # GD entry 0 -> the last GT slot, the last GD entry -> slot 0, the
    # ones between (if any, and the second always) unmapped
    se.ngts = ngd + 1
    se.gd = {0: ngd, ngd - 1: 0}
    grains = []                      # (guest grain, grain index)
    grains += [(3, 4097), (5, 0), (6, 1), (7, 2), (8, 3), (100, 5000),
               (4095, 7)]
    last = size // GRAIN - 1
    grains += [((ngd - 1) * GTES, 4), (last - 1, 5), (last, 6)]
    for n, (g, gi) in enumerate(grains):
        data = pattern((0xa5 + n) << 56, g * GRAIN, GRAIN)
        se.grains[gi] = data
        se.map(g, gte_alloc(gi))
        want[g * GRAIN:(g + 1) * GRAIN] = data
    zeros = [(10, 2), (11, 1), (4094, 2), ((ngd - 1) * GTES + 9, 1),
             (last - 3, 2)]
    for g, t in zeros:
        se.map(g, t << 60)
        want[g * GRAIN:(g + 1) * GRAIN] = bytes(GRAIN)
    # grain 12 and everything else: unallocated, the parent's
    ext = name + "-sesparse.vmdk"
    se.write(os.path.join(outdir, ext))
    with open(os.path.join(outdir, name + ".vmdk"), "wb") as f:
        f.write(descriptor(size // S, ext, os.path.basename(parent_vmdk),
                           parent_cid(parent_vmdk)))
    with open(os.path.join(outdir, name + ".expected.raw"), "wb") as f:
        f.write(want)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "delta":
        make_delta(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
