#!/usr/bin/env python3
"""mk-guest-hostile.py: hostile guest disks for `vmferry inspect`.

    mk-guest-hostile.py OUTDIR             every image + OUTDIR/MANIFEST
    mk-guest-hostile.py --corpus FUZZDIR   tiny seeds for fuzz/corpus/
                                           {part,lvm,cpio}/

MANIFEST lines: NAME<TAB>EXPECT, EXPECT a substring of one of the report's
warnings (or of the partition table's error).  `vmferry inspect` must
succeed on every image (damage inside a guest is a warning, not a
failure) with no sanitizer report.

Layouts follow the UEFI spec (GPT header fields at fixed offsets, CRC32
over header_size bytes with the CRC field zeroed), the MBR/EBR layout,
LVM2's label / PV header / mda_header, and the cpio newc header (110
ASCII-hex bytes).
"""
import os
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MK = os.path.join(HERE, "..", "fixtures", "mk-guest.py")
MIB = 1 << 20


def sfdisk(path, size, script):
    with open(path, "wb") as f:
        f.truncate(size)
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", path],
                   input=script.encode(), check=True, stdout=subprocess.DEVNULL)


def gpt_disk(path, size=MIB):
    sfdisk(path, size, "label: gpt\nstart=34, size=100, type=linux\n")


def gpt_patch(path, lba, fields):
    """Set header fields {offset: (fmt, value)} at lba and fix the CRC."""
    with open(path, "r+b") as f:
        f.seek(lba * 512)
        h = bytearray(f.read(512))
        for off, (fmt, val) in fields.items():
            struct.pack_into(fmt, h, off, val)
        hs = struct.unpack_from("<I", h, 12)[0]
        struct.pack_into("<I", h, 16, 0)
        struct.pack_into("<I", h, 16, zlib.crc32(bytes(h[:hs])))
        f.seek(lba * 512)
        f.write(h)


def both_headers(path, fields):
    n = os.path.getsize(path) // 512
    gpt_patch(path, 1, fields)
    gpt_patch(path, n - 1, fields)


def pv_disk(path, text_or_size, size=2 * MIB):
    """A bare PV (no partition table): label at sector 1, mda at 4 KiB.
    text_or_size: metadata bytes, or an int: a raw_locn size claimed
    with no text behind it."""
    with open(path, "wb") as f:
        f.truncate(size)
    label = bytearray(512)
    label[0:8] = b"LABELONE"
    struct.pack_into("<Q", label, 8, 1)
    struct.pack_into("<I", label, 20, 32)
    label[24:32] = b"LVM2 001"
    hdr = b"H" * 32 + struct.pack("<Q", size)
    hdr += struct.pack("<QQQQ", MIB, 0, 0, 0)
    hdr += struct.pack("<QQQQ", 4096, MIB - 4096, 0, 0)
    label[32:32 + len(hdr)] = hdr
    mda = bytearray(512)
    mda[4:20] = b" LVM2 x[5A%r0N*>"
    struct.pack_into("<IQQ", mda, 20, 1, 4096, MIB - 4096)
    if isinstance(text_or_size, int):
        struct.pack_into("<QQ", mda, 40, 512, text_or_size)
        text = b""
    else:
        text = text_or_size + b"\0"
        struct.pack_into("<QQ", mda, 40, 512, len(text))
    with open(path, "r+b") as f:
        f.seek(512)
        f.write(label)
        f.seek(4096)
        f.write(mda + text)


def cpio_entry(name, data=b"", namesize=None, mode=0o100644):
    ns = len(name) + 1 if namesize is None else namesize
    h = b"070701" + b"".join(b"%08X" % v for v in (
        0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, ns, 0))
    body = h + name.encode() + b"\0"
    body += b"\0" * (-len(body) % 4)
    body += data + b"\0" * (-len(data) % 4)
    return body


def cpio(entries):
    out = b"".join(cpio_entry(*e) for e in entries)
    return out + cpio_entry("TRAILER!!!", mode=0)


def mkguest(distro, out, *args):
    subprocess.run([sys.executable, MK, distro, out, *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def build(outdir):
    os.makedirs(outdir, exist_ok=True)
    man = []
    p = lambda n: os.path.join(outdir, n)  # noqa: E731

    gpt_disk(p("gpt-entries-2p32.raw"))
    both_headers(p("gpt-entries-2p32.raw"), {80: ("<I", 0xFFFFFFFF)})
    man.append(("gpt-entries-2p32.raw", "entry count 4294967295 too large"))

    gpt_disk(p("gpt-bad-crc.raw"))
    n = MIB // 512
    with open(p("gpt-bad-crc.raw"), "r+b") as f:
        for lba in (1, n - 1):
            f.seek(lba * 512 + 16)
            f.write(b"\xde\xad\xbe\xef")
    man.append(("gpt-bad-crc.raw", "header CRC 0xefbeadde does not match"))

    gpt_disk(p("gpt-entries-beyond-end.raw"))
    both_headers(p("gpt-entries-beyond-end.raw"), {72: ("<Q", 1 << 60)})
    man.append(("gpt-entries-beyond-end.raw", "beyond the disk's end"))

    gpt_disk(p("gpt-entry-size-odd.raw"))
    both_headers(p("gpt-entry-size-odd.raw"), {84: ("<I", 129)})
    man.append(("gpt-entry-size-odd.raw", "entry size 129 invalid"))

    sfdisk(p("mbr-ebr-loop.raw"), 4 * MIB,
           "label: dos\nstart=2048, size=4000, type=5\nstart=2100, size=100, type=83\n")
    with open(p("mbr-ebr-loop.raw"), "r+b") as f:
        # the EBR's "next" entry points back at itself (relative 0 is
        # "none", so point the second EBR back at the first one)
        f.seek(2048 * 512 + 446 + 16)
        f.write(struct.pack("<B3sB3sII", 0, b"\0" * 3, 5, b"\0" * 3, 0, 100))
        f.seek(2048 * 512 + 446 + 16)
        f.write(struct.pack("<B3sB3sII", 0, b"\0" * 3, 5, b"\0" * 3, 200, 100))
        f.seek((2048 + 200) * 512 + 446 + 16)
        f.write(struct.pack("<B3sB3sII", 0, b"\0" * 3, 5, b"\0" * 3, 200, 100))
        f.seek((2048 + 200) * 512 + 510)
        f.write(b"\x55\xaa")
    man.append(("mbr-ebr-loop.raw", "extended boot record chain loops"))

    with open(p("mbr-beyond-end.raw"), "wb") as f:
        f.truncate(MIB)
        f.seek(446)
        f.write(struct.pack("<B3sB3sII", 0x80, b"\0" * 3, 0x83, b"\0" * 3,
                            0xFFFFFF00, 0xFF))
        f.seek(510)
        f.write(b"\x55\xaa")
    man.append(("mbr-beyond-end.raw", "beyond the disk's end"))

    pv_disk(p("lvm-text-100mb.raw"), 100 * MIB)
    man.append(("lvm-text-100mb.raw", "LVM metadata text size 104857600 too large"))

    pv_disk(p("lvm-text-garbage.raw"), b"vg0 { physical_volumes { pv0 { id = }")
    man.append(("lvm-text-garbage.raw", "LVM metadata"))

    pv_disk(p("lvm-deep.raw"), b"a { " * 5000 + b"}" * 5000)
    man.append(("lvm-deep.raw", "nested too deep"))

    mkguest("rhel", p("lvm-segment-beyond-pv.raw"), "--lvm-bad-segment")
    man.append(("lvm-segment-beyond-pv.raw", "segment beyond the PV"))

    ird = os.path.join(outdir, ".cpio-4g-name.img")
    with open(ird, "wb") as f:
        f.write(cpio([("init", b"#!/bin/sh\n")]) +
                cpio_entry("x", namesize=0xFFFFFFFF))
    mkguest("alpine", p("cpio-name-4g.raw"), "--initrd-file", ird)
    os.unlink(ird)
    man.append(("cpio-name-4g.raw", "cpio name length 4294967295 invalid"))

    ird = os.path.join(outdir, ".xz-truncated.img")
    data = subprocess.run(["xz", "-c"], input=cpio([("init", b"x" * 100000)]),
                          stdout=subprocess.PIPE, check=True).stdout
    with open(ird, "wb") as f:
        f.write(data[:len(data) // 2])
    mkguest("alpine", p("initrd-xz-truncated.raw"), "--initrd-file", ird)
    os.unlink(ird)
    man.append(("initrd-xz-truncated.raw", "initramfs"))

    fst = os.path.join(outdir, ".fstab-50mb")
    with open(fst, "w") as f:
        line = "# " + "x" * 78 + "\n"
        f.write("/dev/sda1 / ext4 defaults 0 1\n")
        f.write(line * (50 * MIB // len(line)))
    mkguest("alpine", p("fstab-50mb.raw"), "--fstab-file", fst,
            "--root-mb", "80", "--size-mb", "96")
    os.unlink(fst)
    man.append(("fstab-50mb.raw", "/etc/fstab: size"))

    # an ext superblock magic over garbage
    with open(p("ext-garbage.raw"), "wb") as f:
        f.truncate(8 * MIB)
        f.seek(1024)
        f.write(bytes(range(256)) * 4)
        f.seek(1024 + 56)
        f.write(b"\x53\xef")
        f.seek(1024 + 24)
        f.write(struct.pack("<I", 2))
    man.append(("ext-garbage.raw", "ext filesystem cannot be opened"))

    with open(p("MANIFEST"), "w") as f:
        for n, e in man:
            f.write("%s\t%s\n" % (n, e))


def corpus(fuzzdir):
    for d in ("part", "lvm", "cpio"):
        os.makedirs(os.path.join(fuzzdir, d), exist_ok=True)
    part = lambda n: os.path.join(fuzzdir, "part", n)  # noqa: E731
    gpt_disk(part("gpt-128k"), 128 * 1024)
    sfdisk(part("mbr-logical-128k"), 128 * 1024,
           "label: dos\nstart=1, size=40, type=83\nstart=41, type=5\n"
           "start=60, size=20, type=83\nstart=90, size=20, type=82\n")
    pv_disk(part("pv-64k"), b'vg { id = "x" extent_size = 8 physical_volumes '
            b'{ pv0 { id = "HHHHHH-HHHH-HHHH-HHHH-HHHH-HHHH-HHHHHH" pe_start = 16 '
            b'pe_count = 10 } } logical_volumes { lv { segment1 { start_extent = 0 '
            b'extent_count = 2 type = "striped" stripe_count = 1 stripes = [ "pv0", 0 ] '
            b'} } } }', size=64 * 1024)
    lvm = lambda n: os.path.join(fuzzdir, "lvm", n)  # noqa: E731
    with open(lvm("vg.txt"), "wb") as f:
        f.write(b'rhel {\nid = "a"\nseqno = 3\nextent_size = 8192\n'
                b'physical_volumes {\npv0 {\nid = "b"\npe_start = 2048\npe_count = 9\n}\n}\n'
                b'logical_volumes {\nroot {\nstatus = ["READ", "WRITE"]\n'
                b'segment1 {\nstart_extent = 0\nextent_count = 4\ntype = "striped"\n'
                b'stripe_count = 2\nstripe_size = 128\nstripes = [\n"pv0", 0,\n"pv0", 4\n]\n}\n}\n}\n}\n'
                b'contents = "Text Format Volume Group"\nversion = 1\n')
    with open(lvm("comments.txt"), "wb") as f:
        f.write(b'# c\nvg { a = -1 b = 1.5 c = [ ] d = "q\\"x" }\n')
    cp = lambda n: os.path.join(fuzzdir, "cpio", n)  # noqa: E731
    arch = cpio([("init", b"#!/bin/sh\n"),
                 ("lib/modules/6.1/kernel/drivers/block/virtio_blk.ko.xz", b"m")])
    with open(cp("newc"), "wb") as f:
        f.write(arch)
    for name, cmd in (("gzip", ["gzip", "-n"]), ("xz", ["xz", "--check=crc32"]),
                      ("lzma", ["xz", "--format=lzma"]), ("zstd", ["zstd", "-q"]),
                      ("lz4", ["lz4", "-l", "-q"]), ("lz4frame", ["lz4", "-q"]),
                      ("bzip2", ["bzip2"])):
        data = subprocess.run(cmd + ["-c"], input=arch, stdout=subprocess.PIPE,
                              check=True).stdout
        with open(cp(name), "wb") as f:
            f.write(data)
    mc = cpio([("kernel/x86/microcode/GenuineIntel.bin", b"\1" * 16)])
    mc += b"\0" * (-len(mc) % 512)
    with open(cp("microcode+gzip"), "wb") as f:
        f.write(mc + open(cp("gzip"), "rb").read())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        corpus(sys.argv[2])
    elif len(sys.argv) == 2:
        build(sys.argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
