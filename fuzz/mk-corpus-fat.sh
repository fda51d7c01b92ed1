#!/bin/bash
# fuzz/mk-corpus-fat.sh: regenerate fuzz/corpus/fat/, the seeds of
# fuzz-fat: FAT volumes made by mkfs.vfat and filled by mtools (FAT12 with
# 8.3 and long names over several clusters, FAT16 with a fixed root, the
# FAT32 of 8034 clusters mkfs.fat -F 32 makes on 8 MiB, empty because
# mtools cannot write it), each cut after its last non-zero 512 bytes:
# fuzz-fat pads its input with zeros.  Needs dosfstools and mtools.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/fuzz/corpus/fat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
rm -rf "$out"
mkdir -p "$out"
head -c 300 /dev/zero | tr '\0' 'L' > loader
echo menuentry > cfg

# vol NAME KIB BITS [mkfs.vfat options]
vol() {
    rm -f "$1"
    truncate -s "$2K" "$1"
    mkfs.vfat -F "$3" -i 12345678 "${@:4}" "$1" > /dev/null 2>&1
}
cut0() { # IMAGE OUT: the image up to its last non-zero sector
    python3 - "$1" "$2" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
n = len(b.rstrip(b"\0"))
n = (n + 511) // 512 * 512
open(sys.argv[2], "wb").write(b[:n])
PY
}

vol fat12 128 12 -s 1
mmd -i fat12 ::/EFI ::/EFI/BOOT ::/efi/ubuntu
for i in 1 2 3 4 5 6; do
    mcopy -i fat12 cfg "::/EFI/BOOT/fallback-entry-number-$i-with-a-long-name.efi"
done
mcopy -i fat12 loader ::/EFI/BOOT/BOOTX64.EFI
mcopy -i fat12 loader ::/efi/ubuntu/grubx64.efi
cut0 fat12 "$out/fat12-lfn"

vol fat16 2200 16 -s 1
mmd -i fat16 ::/efi ::/efi/Boot ::/EFI/ubuntu
mcopy -i fat16 loader ::/efi/Boot/BootX64.efi
mcopy -i fat16 cfg ::/EFI/ubuntu/a-long-menu-entry-file-name-1.cfg
cut0 fat16 "$out/fat16-mixed-case"

vol fat32 8192 32
cut0 fat32 "$out/fat32-small-empty"
du -sh "$out"
