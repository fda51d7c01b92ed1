#!/bin/bash
# fuzz/mk-corpus-jbd2.sh: regenerate fuzz/corpus/jbd2/, the seeds of
# fuzz-jbd2: journals written by debugfs (jo/jw/jc, e2fsprogs >= 1.43)
# into small mkfs.ext4 images, without checksums and with v1, v2 and v3
# checksums, 32- and 64-bit tags, 1 and 4 KiB blocks; each holds three
# committed transactions (data, a revoke record, an escaped block) and an
# uncommitted one.  Each seed is the journal inode's content cut after the
# log (a few KiB).  Needs mkfs.ext4 and debugfs.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/fuzz/corpus/jbd2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

mkdir stage
seq 1 3000 > stage/data.txt
python3 -c "
open('a.bin', 'wb').write(b'A' * 65536)
open('esc.bin', 'wb').write(bytes.fromhex('c03b3998') + b'E' * 65532)
"
rm -rf "$out"
mkdir -p "$out"

seed() { # NAME JO-OPTIONS BLOCKSIZE MKFS-OPTIONS
    local name=$1 jo=$2 bs=$3 opts=$4
    # shellcheck disable=SC2086  # opts is a list of options
    mkfs.ext4 -q -F -d stage -b "$bs" -J size=4 -U 0b1e2b3c-4d5e-6f70-8192-a3b4c5d6e7f8 \
        $opts fs.img 16M > /dev/null
    local x y
    read -r x y _ <<< "$(debugfs -R "blocks /data.txt" fs.img 2>/dev/null)"
    printf 'jo %s\njw -b %s,%s a.bin\njw -r %s\njw -b %s esc.bin\njw -b %s a.bin -c\njc\n' \
        "$jo" "$x" "$y" "$x" "$y" "$x" | debugfs -w -f - fs.img > /dev/null 2>&1
    debugfs -R "dump <8> j.bin" fs.img > /dev/null 2>&1
    head -c $((16 * bs)) j.bin > "$out/$name"
}
seed none-64 "" 1024 "-O ^metadata_csum"
seed v1-32 "-c" 1024 "-O ^metadata_csum,^64bit"
seed v2-32 "-c -v 2" 1024 "-O ^64bit"
seed v2-64 "-c -v 2" 1024 ""
seed v3-64 "-c" 1024 ""
seed v3-64-4k "-c" 4096 ""
du -sh "$out"
