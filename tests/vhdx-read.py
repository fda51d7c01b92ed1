#!/usr/bin/env python3
# vhdx-read.py IMAGE [PARENT...] OUT: a second VHDX reader, written from
# [MS-VHDX] alone for the tests, flattening a differencing chain (the
# parents in order, nearest first) into raw OUT.  qemu 7.2 does not open
# differencing VHDX and libvhdi 20210425 reads PAYLOAD_BLOCK_ZERO blocks
# of a differencing disk from the parent (and fails past the parent's
# end), so the tests need this one.  No log replay: images must be clean.
import struct
import sys

MIB = 1 << 20
GUID_BAT = "2dc27766-f623-4200-9d64-115e9bfd4a08"
GUID_META = "8b7ca206-4790-4b9a-b8fe-575f050f886e"
GUID_PARAMS = "caa16737-fa36-4d43-b3b6-33f0aa44e76b"
GUID_SIZE = "2fa54224-cd1b-4876-b211-5dbed83bf4b8"
GUID_LSS = "8141bf1d-a96f-4709-ba47-f233a8faab5f"


def guid(b):
    a, b2, c = struct.unpack_from("<IHH", b)
    return "%08x-%04x-%04x-%s-%s" % (a, b2, c, b[8:10].hex(), b[10:16].hex())


class Vhdx:
    def __init__(self, path):
        self.f = open(path, "rb")
        rt = self.pread(192 * 1024, 64 * 1024)
        assert rt[:4] == b"regi", path
        regions = {}
        for i in range(struct.unpack_from("<I", rt, 8)[0]):
            e = rt[16 + 32 * i:48 + 32 * i]
            off, ln = struct.unpack_from("<QI", e, 16)
            regions[guid(e)] = (off, ln)
        moff, _ = regions[GUID_META]
        mt = self.pread(moff, 64 * 1024)
        assert mt[:8] == b"metadata", path
        items = {}
        for i in range(struct.unpack_from("<H", mt, 10)[0]):
            e = mt[32 + 32 * i:64 + 32 * i]
            o, ln = struct.unpack_from("<II", e, 16)
            items[guid(e)] = self.pread(moff + o, ln)
        self.bs, bits = struct.unpack_from("<II", items[GUID_PARAMS])
        self.diff = bool(bits & 2)
        self.size = struct.unpack_from("<Q", items[GUID_SIZE])[0]
        self.lss = struct.unpack_from("<I", items[GUID_LSS])[0]
        self.cr = (1 << 23) * self.lss // self.bs
        boff, bln = regions[GUID_BAT]
        self.bat = struct.unpack_from("<%dQ" % (bln // 8), self.pread(boff, bln))
        self.parent = None

    def pread(self, off, n):
        self.f.seek(off)
        return self.f.read(n).ljust(n, b"\0")

    def read(self, off, n):
        out = bytearray()
        while n:
            bi, inb = divmod(off, self.bs)
            k = min(n, self.bs - inb)
            if off >= self.size:
                out += bytes(k)
            else:
                k = min(k, self.size - off)
                out += self.read_block(bi, inb, k, off)
            off += k
            n -= k
        return bytes(out)

    def from_parent(self, off, n):
        if self.parent is None:
            return bytes(n)
        return self.parent.read(off, n)

    def read_block(self, bi, inb, n, off):
        e = self.bat[bi + bi // self.cr]
        st, foff = e & 7, e & ~(MIB - 1)
        if st == 6:
            return self.pread(foff + inb, n)
        if st == 0:
            return self.from_parent(off, n)
        if st != 7:                  # zero, unmapped, undefined
            return bytes(n)
        sbe = self.bat[(bi // self.cr) * (self.cr + 1) + self.cr]
        assert sbe & 7 == 6
        out = bytearray()
        spb = self.bs // self.lss
        for s in range(inb // self.lss, (inb + n) // self.lss):
            bit = (bi % self.cr) * spb + s
            byte = self.pread((sbe & ~(MIB - 1)) + bit // 8, 1)[0]
            o = bi * self.bs + s * self.lss
            if byte >> (bit % 8) & 1:
                out += self.pread(foff + s * self.lss, self.lss)
            else:
                out += self.from_parent(o, self.lss)
        return bytes(out)


def main():
    paths, out = sys.argv[1:-1], sys.argv[-1]
    chain = [Vhdx(p) for p in paths]
    for child, parent in zip(chain, chain[1:]):
        child.parent = parent
    top = chain[0]
    with open(out, "wb") as f:
        for off in range(0, top.size, 4 * MIB):
            f.write(top.read(off, min(4 * MIB, top.size - off)))


main()
