#!/usr/bin/env python3
"""mk-vhd.py: craft VHD, VHDX and VDI images from their specs (stdlib only).

    mk-vhd.py OUTDIR                  hostile images + OUTDIR/MANIFEST
    mk-vhd.py pending-log IMG RAW     a VHDX with a pending log entry, and
                                      the raw content a correct replay gives
    mk-vhd.py chains DIR              differencing VHD and VHDX chains with
                                      partial blocks, and their flat content

MANIFEST lines: FILE<TAB>FORMAT<TAB>CLASS<TAB>WHAT.  CLASS:
    open     opening must fail (info, convert, check, map exit non-zero)
    parent   the parent cannot be opened: like open, but check (which
             does not open parents, as qemu-img check) may succeed
    payload  opening may work; convert and digest must fail
    control  a benign image: everything succeeds, content as expected
    any      anything but a crash or a messy error

Layouts follow Microsoft's VHD specification v1.0, [MS-VHDX] v20160714 and
VirtualBox's VDI 1.1 header; nothing here is copied from an implementation.
"""
import os
import struct
import sys
import uuid

MIB = 1 << 20

# ---------------------------------------------------------------- VHD


def vhd_checksum(b):
    return (~sum(b)) & 0xFFFFFFFF


def vhd_footer(size, dtype, data_off, creator=b"win "):
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI", f, 8, 2, 0x00010000, data_off, 0)
    f[28:32] = creator
    struct.pack_into(">I4sQQ", f, 32, 0x00010000, b"Wi2k", size, size)
    struct.pack_into(">HBBI", f, 56, 1024, 16, 63, dtype)
    f[68:84] = uuid.uuid4().bytes
    struct.pack_into(">I", f, 64, vhd_checksum(f))
    return f


def vhd_fix_footer(f):
    struct.pack_into(">I", f, 64, 0)
    struct.pack_into(">I", f, 64, vhd_checksum(f))


def vhd_dynamic(size=4 * MIB, block=2 * MIB, blocks_data=None, dtype=3,
                locators=(), entries=None, parent_name="", bitmaps=None):
    """A dynamic (or differencing) VHD; blocks_data: {index: bytes};
    bitmaps: {index: sector bitmap bytes} (default: all sectors present)."""
    blocks_data = blocks_data or {}
    bitmaps = bitmaps or {}
    n = entries if entries is not None else (size + block - 1) // block
    bat_off = 512 + 1024
    bat_bytes = (n * 4 + 511) // 512 * 512
    pos = bat_off + bat_bytes
    loc_blobs = []
    for code, data in locators:
        loc_blobs.append((code, pos, data))
        pos += (len(data) + 511) // 512 * 512
    bat = bytearray(b"\xff" * bat_bytes)
    body = bytearray()
    bmp = ((block // 512 + 7) // 8 + 511) // 512 * 512
    for idx in sorted(blocks_data):
        struct.pack_into(">I", bat, idx * 4, pos // 512)
        data = blocks_data[idx].ljust(block, b"\0")
        body += bitmaps.get(idx, b"\xff" * bmp).ljust(bmp, b"\0") + data
        pos += bmp + block
    dyn = bytearray(1024)
    dyn[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", dyn, 8, 0xFFFFFFFFFFFFFFFF, bat_off,
                     0x00010000, n, block)
    pn = parent_name.encode("utf-16-be")[:512]
    dyn[64:64 + len(pn)] = pn
    for i, (code, off, data) in enumerate(loc_blobs):
        struct.pack_into(">4sIIIQ", dyn, 576 + 24 * i, code,
                         (len(data) + 511) // 512, len(data), 0, off)
    struct.pack_into(">I", dyn, 36, vhd_checksum(dyn))
    foot = vhd_footer(size, dtype, 512)
    img = bytearray(foot) + dyn + bat
    for code, off, data in loc_blobs:
        img += data.ljust((len(data) + 511) // 512 * 512, b"\0")
    img += body + foot
    return img


def vhd_dyn_fix(img):
    dyn = img[512:1536]
    struct.pack_into(">I", dyn, 36, 0)
    struct.pack_into(">I", dyn, 36, vhd_checksum(dyn))
    img[512:1536] = dyn


# ---------------------------------------------------------------- CRC-32C


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = _crc_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = CRC_T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf, off=4):
    struct.pack_into("<I", buf, off, 0)
    struct.pack_into("<I", buf, off, crc32c(bytes(buf)))
    return buf


def guid(s):
    return uuid.UUID(s).bytes_le


G_BAT = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
G_META = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
G_FP = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
G_VS = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
G_P83 = guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
G_LSS = guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
G_PSS = guid("CDA348C7-445D-4471-9CC9-E9885251C556")
G_PL = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
G_PLT = guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")

# ---------------------------------------------------------------- VHDX
# Layout: header section 0-1 MiB, log 1-2 MiB, metadata 2-3 MiB,
# BAT 3-4 MiB, payload blocks from 4 MiB.

LOG_OFF, META_OFF, BAT_OFF, DATA_OFF = MIB, 2 * MIB, 3 * MIB, 4 * MIB


def vhdx_header(seq, log_guid=bytes(16), log_len=MIB):
    h = bytearray(4096)
    h[0:4] = b"head"
    struct.pack_into("<Q", h, 8, seq)
    h[16:32] = uuid.uuid4().bytes_le
    h[32:48] = uuid.uuid4().bytes_le
    h[48:64] = log_guid
    struct.pack_into("<HHIQ", h, 64, 0, 1, log_len, LOG_OFF)
    return with_crc(h)


def vhdx_regions(regions):
    rt = bytearray(65536)
    rt[0:4] = b"regi"
    struct.pack_into("<I", rt, 8, len(regions))
    for i, (g, off, ln, req) in enumerate(regions):
        struct.pack_into("<16sQII", rt, 16 + 32 * i, g, off, ln, req)
    return with_crc(rt)


def vhdx_metadata(size, block, lss=512, flags=0, extra=()):
    m = bytearray(MIB)
    m[0:8] = b"metadata"
    items = [(G_FP, struct.pack("<II", block, flags), 4),
             (G_VS, struct.pack("<Q", size), 6),
             (G_P83, uuid.uuid4().bytes_le, 6),
             (G_LSS, struct.pack("<I", lss), 6),
             (G_PSS, struct.pack("<I", 4096), 6)] + list(extra)
    struct.pack_into("<H", m, 10, len(items))
    pos = 65536
    for i, (g, data, fl) in enumerate(items):
        struct.pack_into("<16sIII", m, 32 + 32 * i, g, pos, len(data), fl)
        m[pos:pos + len(data)] = data
        pos += (len(data) + 7) // 8 * 8
    return m


def vhdx_image(size=8 * MIB, block=MIB, blocks_data=None, log_guid=bytes(16),
               regions=None, meta=None, bat_override=None, parent=False,
               lss=512):
    """blocks_data: {block index: bytes}; payload blocks laid out in order."""
    blocks_data = blocks_data or {}
    img = bytearray(DATA_OFF)
    img[0:8] = b"vhdxfile"
    cr = "mk-vhd.py".encode("utf-16-le")
    img[8:8 + len(cr)] = cr
    img[64 * 1024:68 * 1024] = vhdx_header(1, log_guid)
    img[128 * 1024:132 * 1024] = vhdx_header(2, log_guid)
    rt = vhdx_regions(regions or [(G_BAT, BAT_OFF, MIB, 1),
                                  (G_META, META_OFF, MIB, 1)])
    img[192 * 1024:256 * 1024] = rt
    img[256 * 1024:320 * 1024] = rt
    m = meta if meta is not None else vhdx_metadata(
        size, block, lss, 2 if parent else 0)
    img[META_OFF:META_OFF + MIB] = m
    chunk = (1 << 23) * lss // block
    bat = bytearray(MIB)
    pos = DATA_OFF
    payload = bytearray()
    for idx in sorted(blocks_data):
        struct.pack_into("<Q", bat, 8 * (idx + idx // chunk), pos | 6)
        payload += blocks_data[idx].ljust(block, b"\0")
        pos += block
    if bat_override:
        for i, v in bat_override.items():
            struct.pack_into("<Q", bat, 8 * i, v)
    img[BAT_OFF:BAT_OFF + MIB] = bat
    return img + payload


def log_entry(seq, log_guid, descs, tail=0, flushed=0, last=0):
    """descs: ("data", file_off, 4096 bytes) or ("zero", file_off, len)."""
    ndata = sum(1 for d in descs if d[0] == "data")
    dsec = (64 + 32 * len(descs) + 4095) // 4096
    e = bytearray(4096 * (dsec + ndata))
    e[0:4] = b"loge"
    struct.pack_into("<IIIQII16sQQ", e, 4, 0, len(e), tail, seq, len(descs),
                     0, log_guid, flushed, last)
    k = 0
    for i, d in enumerate(descs):
        o = 64 + 32 * i
        if d[0] == "zero":
            struct.pack_into("<4sIQQQ", e, o, b"zero", 0, d[2], d[1], seq)
        else:
            sec = d[2]
            e[o:o + 4] = b"desc"
            e[o + 4:o + 8] = sec[4092:4096]      # trailing bytes
            e[o + 8:o + 16] = sec[0:8]           # leading bytes
            struct.pack_into("<QQ", e, o + 16, d[1], seq)
            ds = 4096 * (dsec + k)
            e[ds:ds + 4] = b"data"
            struct.pack_into("<I", e, ds + 4, seq >> 32)
            e[ds + 8:ds + 4092] = sec[8:4092]
            struct.pack_into("<I", e, ds + 4092, seq & 0xFFFFFFFF)
            k += 1
    return with_crc(e)


def pattern(seed, n):
    out = bytearray(n)
    x = seed * 2654435761 & 0xFFFFFFFF
    for i in range(0, n, 4):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        struct.pack_into("<I", out, i, x)
    return bytes(out)


def pending_log(bad=None):
    """A dynamic VHDX (8 MiB, 1 MiB blocks) whose file holds block 0 only,
    and a log entry that (a) rewrites the BAT's first sector to add block 1
    at 5 MiB, (b) writes 4 KiB of block 1, (c) zeroes 4 KiB of block 0.
    The file already holds the (zero) space of block 1, as a writer that
    grew the file before logging leaves it.  Returns (image, expected raw)."""
    lg = uuid.uuid4().bytes_le
    a = pattern(1, MIB)
    img = vhdx_image(blocks_data={0: a}, log_guid=lg) + bytes(MIB)
    bat0 = bytearray(img[BAT_OFF:BAT_OFF + 4096])
    struct.pack_into("<Q", bat0, 8, (5 * MIB) | 6)
    b = pattern(2, 4096)
    descs = [("data", BAT_OFF, bytes(bat0)),
             ("data", 5 * MIB, b),
             ("zero", DATA_OFF + 8192, 4096)]
    flushed, last = 6 * MIB, 6 * MIB
    if bad == "past-last":
        descs[1] = ("data", 7 * MIB, b)
    if bad == "flushed":
        flushed = 9 * MIB
        last = 9 * MIB
    e = log_entry(7, lg, descs, 0, flushed, last)
    img[LOG_OFF:LOG_OFF + len(e)] = e
    raw = bytearray(8 * MIB)
    raw[0:MIB] = a
    raw[8192:12288] = bytes(4096)
    raw[MIB:MIB + 4096] = b
    return img, raw


# ---------------------------------------------------------------- VDI


def vdi_image(size=4 * MIB, bmap=None, blocks=None, block=MIB, dtype=1,
              data=None):
    n = blocks if blocks is not None else (size + block - 1) // block
    h = bytearray(512)
    t = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
    h[0:len(t)] = t
    off_bmap = 512
    off_data = 512 + (n * 4 + 511) // 512 * 512
    struct.pack_into("<IIII", h, 0x40, 0xBEDA107F, 0x00010001, 0x180, dtype)
    struct.pack_into("<II", h, 0x154, off_bmap, off_data)
    struct.pack_into("<I", h, 0x168, 512)
    data = data or {}
    bm = bmap if bmap is not None else [0xFFFFFFFF] * n
    body = bytearray()
    k = 0
    for idx in sorted(data):
        if bmap is None:
            bm[idx] = k
        body += data[idx].ljust(block, b"\0")
        k += 1
    struct.pack_into("<QIIII", h, 0x170, size, block, 0, n, k)
    h[0x188:0x198] = uuid.uuid4().bytes_le
    h[0x198:0x1a8] = uuid.uuid4().bytes_le
    m = bytearray(off_data - off_bmap)
    for i, v in enumerate(bm[:n]):
        struct.pack_into("<I", m, 4 * i, v)
    return h + m + body


# ---------------------------------------------------------------- hostile


def hostile(out):
    man = []

    def put(name, fmt, cls, what, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        man.append((name, fmt, cls, what))

    # VHD
    put("vhd-control-dynamic.vhd", "vpc", "control", "benign dynamic VHD",
        vhd_dynamic(blocks_data={1: pattern(3, 2 * MIB)}))
    put("vhd-control-fixed.vhd", "vpc", "control", "benign fixed VHD",
        pattern(4, 2 * MIB) + vhd_footer(2 * MIB, 2, 0xFFFFFFFFFFFFFFFF))
    f = vhd_footer(2 * MIB, 2, 0xFFFFFFFFFFFFFFFF)
    f[64] ^= 0x55
    put("vhd-bad-checksum.vhd", "vpc", "open", "fixed VHD, footer checksum "
        "wrong", bytes(2 * MIB) + f)
    f = vhd_footer(8 * MIB, 2, 0xFFFFFFFFFFFFFFFF)
    put("vhd-size-beyond-eof.vhd", "vpc", "open", "fixed VHD claiming more "
        "data than the file has", bytes(MIB) + f)
    put("vhd-truncated.vhd", "vpc", "open", "300 bytes of a footer",
        bytes(vhd_footer(MIB, 2, 0xFFFFFFFFFFFFFFFF))[:300])
    img = vhd_dynamic(blocks_data={0: pattern(5, 2 * MIB)})
    struct.pack_into(">I", img, 1536, 0x7FFFFFF0)
    put("vhd-bat-beyond-eof.vhd", "vpc", "open", "BAT entry past the end",
        img)
    img = vhd_dynamic()
    struct.pack_into(">I", img, 512 + 32, 0x80000000)
    vhd_dyn_fix(img)
    put("vhd-block-size-huge.vhd", "vpc", "open", "2 GiB blocks", img)
    img = vhd_dynamic()
    struct.pack_into(">I", img, 512 + 32, 0)
    vhd_dyn_fix(img)
    put("vhd-block-size-zero.vhd", "vpc", "open", "0-byte blocks", img)
    img = vhd_dynamic()
    struct.pack_into(">I", img, 512 + 28, 0xFFFFFFFF)
    vhd_dyn_fix(img)
    put("vhd-bat-entries-huge.vhd", "vpc", "open", "4G BAT entries", img)
    img = vhd_dynamic()
    img[512 + 100] ^= 1
    put("vhd-dyn-bad-checksum.vhd", "vpc", "open", "dynamic header checksum "
        "wrong", img)
    img = vhd_dynamic()
    struct.pack_into(">Q", img, 512 + 16, 1 << 40)
    vhd_dyn_fix(img)
    put("vhd-bat-offset-huge.vhd", "vpc", "open", "BAT offset 1 TiB", img)
    img = vhd_dynamic()
    foot = bytearray(img[:512])
    struct.pack_into(">Q", foot, 16, 1 << 50)
    vhd_fix_footer(foot)
    img[:512] = foot
    img[-512:] = foot
    put("vhd-dyn-offset-huge.vhd", "vpc", "open", "dynamic header offset "
        "past the end", img)
    put("vhd-parent-dotdot.vhd", "vpc", "parent", "differencing, W2ru parent "
        "..\\x.vhd", vhd_dynamic(dtype=4, locators=[
            (b"W2ru", "..\\x.vhd".encode("utf-16-le"))]))
    put("vhd-parent-absolute.vhd", "vpc", "parent", "differencing, Mac X "
        "parent file:///etc/passwd", vhd_dynamic(dtype=4, locators=[
            (b"MacX", b"file:///etc/passwd")]))
    put("vhd-parent-windows.vhd", "vpc", "parent", "differencing, W2ku parent "
        "C:\\x.vhd only", vhd_dynamic(dtype=4, locators=[
            (b"W2ku", "C:\\x.vhd".encode("utf-16-le"))]))
    img = vhd_dynamic(dtype=4, locators=[(b"W2ru", b"a\0")])
    struct.pack_into(">I", img, 512 + 576 + 8, 0x7FFFFFFF)
    vhd_dyn_fix(img)
    put("vhd-locator-len-huge.vhd", "vpc", "open", "parent locator of 2 GiB",
        img)
    put("vhd-parent-missing.vhd", "vpc", "parent", "differencing, parent "
        "absent", vhd_dynamic(dtype=4, locators=[
            (b"W2ru", ".\\absent.vhd".encode("utf-16-le"))]))
    img = vhd_dynamic(blocks_data={0: pattern(6, 2 * MIB)})
    img[100] ^= 1       # footer copy at 0 no longer matches
    put("vhd-footer-copy-differs.vhd", "vpc", "any", "footer copy damaged",
        img)

    # VHDX
    put("vhdx-control.vhdx", "vhdx", "control", "benign dynamic VHDX",
        vhdx_image(blocks_data={2: pattern(7, MIB)}))
    img = vhdx_image()
    img[64 * 1024 + 200] ^= 1
    img[128 * 1024 + 200] ^= 1
    put("vhdx-headers-bad-crc.vhdx", "vhdx", "open", "both headers fail "
        "CRC-32C", img)
    img = vhdx_image()
    img[192 * 1024 + 100] ^= 1
    img[256 * 1024 + 100] ^= 1
    put("vhdx-regions-bad-crc.vhdx", "vhdx", "open", "both region tables "
        "fail CRC-32C", img)
    put("vhdx-region-overlap.vhdx", "vhdx", "open", "BAT and metadata "
        "regions overlap", vhdx_image(regions=[
            (G_BAT, BAT_OFF, MIB, 1), (G_META, BAT_OFF, MIB, 1)]))
    put("vhdx-region-unknown-required.vhdx", "vhdx", "open", "an unknown "
        "required region", vhdx_image(regions=[
            (G_BAT, BAT_OFF, MIB, 1), (G_META, META_OFF, MIB, 1),
            (uuid.uuid4().bytes_le, 4 * MIB, MIB, 1)]) + bytes(MIB))
    put("vhdx-bat-beyond-eof.vhdx", "vhdx", "open", "BAT entry at 1 TiB",
        vhdx_image(bat_override={0: (1 << 40) | 6}))
    put("vhdx-block-size-huge.vhdx", "vhdx", "open", "1 GiB blocks",
        vhdx_image(meta=vhdx_metadata(8 * MIB, 1 << 30)))
    put("vhdx-size-huge.vhdx", "vhdx", "open", "virtual size 2^62",
        vhdx_image(meta=vhdx_metadata(1 << 62, MIB)))
    put("vhdx-lss-3.vhdx", "vhdx", "open", "logical sector size 3",
        vhdx_image(meta=vhdx_metadata(8 * MIB, MIB, lss=3)))
    put("vhdx-truncated.vhdx", "vhdx", "open", "the first 70 KiB",
        bytes(vhdx_image()[:70 * 1024]))
    pl = bytearray(20 + 12)
    pl[0:16] = G_PLT
    k = "relative_path".encode("utf-16-le")
    v = "..\\parent.vhdx".encode("utf-16-le")
    struct.pack_into("<H", pl, 18, 1)
    struct.pack_into("<IIHH", pl, 20, 32, 32 + len(k), len(k), len(v))
    pl += k + v
    put("vhdx-parent-dotdot.vhdx", "vhdx", "parent", "differencing, parent "
        "..\\parent.vhdx", vhdx_image(parent=True, meta=vhdx_metadata(
            8 * MIB, MIB, flags=2, extra=[(G_PL, bytes(pl), 4)])))
    pl2 = bytearray(pl)
    struct.pack_into("<H", pl2, 18, 60000)
    put("vhdx-parent-count-huge.vhdx", "vhdx", "open", "parent locator of "
        "60000 entries", vhdx_image(parent=True, meta=vhdx_metadata(
            8 * MIB, MIB, flags=2, extra=[(G_PL, bytes(pl2), 4)])))
    img, _ = pending_log()
    put("vhdx-log-control.vhdx", "vhdx", "control", "pending log, valid",
        img)
    img, _ = pending_log("past-last")
    put("vhdx-log-past-eof.vhdx", "vhdx", "open", "log entry writes past "
        "its last file offset", img)
    img, _ = pending_log("flushed")
    put("vhdx-log-flushed-past-eof.vhdx", "vhdx", "open", "log says the file "
        "is longer than it is", img)
    img, _ = pending_log()
    struct.pack_into("<I", img, 64 * 1024 + 68, 1 << 31)
    img[64 * 1024:68 * 1024] = with_crc(bytearray(img[64 * 1024:68 * 1024]))
    img[128 * 1024:132 * 1024] = img[64 * 1024:68 * 1024]
    put("vhdx-log-len-huge.vhdx", "vhdx", "open", "log of 2 GiB", img)

    # VDI
    put("vdi-control.vdi", "vdi", "control", "benign dynamic VDI",
        vdi_image(data={1: pattern(8, MIB)}))
    put("vdi-bmap-out-of-range.vdi", "vdi", "open", "block map entry 1000 "
        "of 4", vdi_image(bmap=[1000, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
    put("vdi-bmap-beyond-eof.vdi", "vdi", "open", "block 0 past the end",
        vdi_image(bmap=[0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
    img = vdi_image()
    struct.pack_into("<I", img, 0x178, 1 << 31)
    put("vdi-block-size-huge.vdi", "vdi", "open", "2 GiB blocks", img)
    img = vdi_image()
    struct.pack_into("<I", img, 0x180, 0xFFFFFFFF)
    put("vdi-blocks-huge.vdi", "vdi", "open", "4G blocks", img)
    img = vdi_image()
    struct.pack_into("<Q", img, 0x170, 1 << 60)
    put("vdi-size-huge.vdi", "vdi", "open", "disk size 2^60", img)
    put("vdi-truncated.vdi", "vdi", "open", "the first 200 bytes",
        bytes(vdi_image()[:200]))
    put("vdi-diff.vdi", "vdi", "open", "a differencing VDI",
        vdi_image(dtype=4))

    with open(os.path.join(out, "MANIFEST"), "w") as f:
        for m in man:
            f.write("\t".join(m) + "\n")


def sector_bitmap(nsec, present, msb_first):
    """Bitmap of nsec sectors, bits set for sector indexes in present."""
    bm = bytearray((nsec + 7) // 8)
    for i in present:
        bm[i // 8] |= (0x80 >> (i % 8)) if msb_first else (1 << (i % 8))
    return bytes(bm)


def chains(out):
    """Differencing chains with partial blocks, and their flat content.
    VHD: base.vhd <- mid.vhd <- top.vhd (2 MiB blocks, 6 MiB disk).
    VHDX: base.vhdx <- top.vhdx (1 MiB blocks, 4 MiB disk)."""
    size = 6 * MIB
    a, b, c = pattern(11, 2 * MIB), pattern(12, 2 * MIB), pattern(13, 2 * MIB)
    flat = bytearray(size)
    flat[0:2 * MIB] = a
    flat[2 * MIB:4 * MIB] = b
    base = vhd_dynamic(size, blocks_data={0: a, 1: b})
    # mid: block 1, sectors 0-99 and 2000-2047 its own; block 2 whole
    midb = pattern(14, 2 * MIB)
    own = list(range(100)) + list(range(2000, 2048))
    for i in own:
        flat[2 * MIB + 512 * i:2 * MIB + 512 * (i + 1)] = \
            midb[512 * i:512 * (i + 1)]
    flat[4 * MIB:6 * MIB] = c
    mid = vhd_dynamic(size, dtype=4, blocks_data={1: midb, 2: c},
                      bitmaps={1: sector_bitmap(4096, own, True)},
                      locators=[(b"W2ku", "C:\\vms\\base.vhd".encode(
                          "utf-16-le")), (b"W2ru", ".\\base.vhd".encode(
                              "utf-16-le"))], parent_name="base.vhd")
    # top: block 0 sectors 7..9 only
    topb = pattern(15, 2 * MIB)
    for i in (7, 8, 9):
        flat[512 * i:512 * (i + 1)] = topb[512 * i:512 * (i + 1)]
    top = vhd_dynamic(size, dtype=4, blocks_data={0: topb},
                      bitmaps={0: sector_bitmap(4096, (7, 8, 9), True)},
                      locators=[(b"MacX", b"file://./mid.vhd")])
    for n, d in (("base.vhd", base), ("mid.vhd", mid), ("top.vhd", top),
                 ("vhd-chain.raw", flat)):
        with open(os.path.join(out, n), "wb") as f:
            f.write(d)
    # VHDX: top has block 0 full, block 2 partial (sectors 0-7), block 3
    # zero, block 1 not present (parent's)
    vsize = 4 * MIB
    pb = [pattern(21 + i, MIB) for i in range(4)]
    flat = bytearray(b"".join(pb))
    basex = vhdx_image(vsize, MIB, blocks_data={i: pb[i] for i in range(4)})
    t0, t2 = pattern(31, MIB), pattern(32, MIB)
    flat[0:MIB] = t0
    flat[2 * MIB:2 * MIB + 4096] = t2[:4096]
    flat[3 * MIB:4 * MIB] = bytes(MIB)
    pl = bytearray(20 + 12 * 2)
    pl[0:16] = G_PLT
    struct.pack_into("<H", pl, 18, 2)
    kv = [("parent_linkage", "{%s}" % uuid.uuid4()),
          ("relative_path", ".\\base.vhdx")]
    pos = len(pl)
    blobs = b""
    for i, (k, v) in enumerate(kv):
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        struct.pack_into("<IIHH", pl, 20 + 12 * i, pos, pos + len(kb),
                         len(kb), len(vb))
        blobs += kb + vb
        pos += len(kb) + len(vb)
    pl += blobs
    meta = vhdx_metadata(vsize, MIB, flags=2, extra=[(G_PL, bytes(pl), 4)])
    chunk = (1 << 23) * 512 // MIB          # 4096 blocks per chunk
    ov = {0: (DATA_OFF) | 6, 2: (DATA_OFF + MIB) | 7, 3: 2,
          chunk: (DATA_OFF + 2 * MIB) | 6}
    topx = vhdx_image(vsize, MIB, bat_override=ov, meta=meta, parent=True)
    bm = bytearray(MIB)
    # bitmap bits for block 2: sectors 2*2048 .. ; LSB first
    for i in range(8):
        bit = 2 * 2048 + i
        bm[bit // 8] |= 1 << (bit % 8)
    topx += t0 + t2 + bytes(bm)
    for n, d in (("base.vhdx", basex), ("top.vhdx", topx),
                 ("vhdx-chain.raw", flat)):
        with open(os.path.join(out, n), "wb") as f:
            f.write(d)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "chains":
        chains(sys.argv[2])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "pending-log":
        img, raw = pending_log()
        with open(sys.argv[2], "wb") as f:
            f.write(img)
        with open(sys.argv[3], "wb") as f:
            f.write(raw)
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    hostile(sys.argv[1])


if __name__ == "__main__":
    main()
