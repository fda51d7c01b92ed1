#!/usr/bin/env python3
"""bench/mkdisk.py: build the benchmark's raw disks from real files.

    mkdisk.py OUT SIZE DATA [--alloc] [--from SPARSE_SRC]

OUT gets SIZE bytes (a sparse file) with DATA bytes of real data in 1 MiB
runs: the machine's /usr/lib and /usr/bin files larger than 64 KiB, in
sorted path order, concatenated and cut into 1 MiB pieces.  Run i goes to
slot (1 MiB units) i * G + (i * 7919 mod G), G = slots / runs: one run per
group of G slots, at a deterministic position inside the group, so data
is spread over the whole disk without a regular stride.

--alloc writes zeros over every other slot (a fully allocated file).
--from SRC copies the data runs out of an earlier disk (made by this
script with the same DATA) instead of reading /usr again, so a huge
sparse disk with the same content is cheap.

Prints nothing; exits non-zero on error.  Python 3 standard library only.
"""

import os
import stat
import sys

MIB = 1 << 20


def source_files():
    paths = []
    for top in ("/usr/lib", "/usr/bin"):
        for d, _, names in os.walk(top):
            for n in names:
                p = os.path.join(d, n)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_size > 65536:
                    paths.append(p)
    paths.sort()
    return paths


def data_runs(count):
    """Yield count 1 MiB pieces of the concatenated files (wrapping)."""
    paths = source_files()
    if not paths:
        sys.exit("mkdisk: no files over 64 KiB in /usr/lib, /usr/bin")
    buf = bytearray()
    made = 0
    while made < count:
        for p in paths:
            try:
                with open(p, "rb") as f:
                    while True:
                        chunk = f.read(MIB)
                        if not chunk:
                            break
                        buf += chunk
                        while len(buf) >= MIB and made < count:
                            yield bytes(buf[:MIB])
                            del buf[:MIB]
                            made += 1
                        if made >= count:
                            return
            except OSError:
                continue


def slot_of(i, groups):
    return i * groups + (i * 7919) % groups


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    alloc = "--alloc" in argv
    src = None
    if "--from" in argv:
        src = argv[argv.index("--from") + 1]
        args.remove(src)
    if len(args) != 3:
        sys.exit("usage: mkdisk.py OUT SIZE DATA [--alloc] [--from SRC]")
    out, size, data = args[0], int(args[1]), int(args[2])
    slots, runs = size // MIB, data // MIB
    if runs < 1 or slots < runs:
        sys.exit("mkdisk: bad SIZE/DATA")
    g = slots // runs

    tmp = out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        used = set()
        if src is None:
            pieces = data_runs(runs)
        else:
            sfd = os.open(src, os.O_RDONLY)
            ssize = os.fstat(sfd).st_size
            sg = (ssize // MIB) // runs
            pieces = (os.pread(sfd, MIB, slot_of(i, sg) * MIB)
                      for i in range(runs))
        for i, piece in enumerate(pieces):
            s = slot_of(i, g)
            used.add(s)
            os.pwrite(fd, piece, s * MIB)
        if src is not None:
            os.close(sfd)
        if alloc:
            zeros = bytes(MIB)
            for s in range(slots):
                if s not in used:
                    os.pwrite(fd, zeros, s * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
