#!/bin/bash
# t-fuzz-replay: run every fuzz target's replay driver (fuzz/replay-main.c,
# built by meson as BUILDDIR/replay-fuzz-*) over the saved corpus and the
# saved crashers.  Passes when each exits 0: no crash, no abort from a
# broken driver contract, no sanitizer report in sanitizer builds.
. "$(dirname "$0")/lib.sh"

shopt -s nullglob
replays=("$BUILDDIR"/replay-fuzz-*)
[ ${#replays[@]} -gt 0 ] || skip "no replay-fuzz-* programs in $BUILDDIR"

dirs=()
for d in "$SRCDIR"/fuzz/corpus/* "$SRCDIR/fuzz/crashers"; do
    [ -d "$d" ] && dirs+=("$d")
done
[ ${#dirs[@]} -gt 0 ] || die "no corpus directories under $SRCDIR/fuzz"

bad=0
for r in "${replays[@]}"; do
    [ -f "$r" ] && [ -x "$r" ] || continue    # not meson's *.p dirs
    rc=0
    REPLAY_VERBOSE=1 timeout -k 5 240 "$r" "${dirs[@]}" >"$scratch/log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] || grep -qE 'Sanitizer|runtime error' "$scratch/log"
    then
        echo "$(basename "$r"): exit $rc"
        tail -n 25 "$scratch/log"
        bad=1
    else
        echo "$(basename "$r"): $(grep -v '^replay: /' "$scratch/log" | tail -n 1)"
    fi
done
[ "$bad" -eq 0 ] || die "a replay failed"
