# shellcheck shell=bash
# tests/lib.sh: sourced by every tests/t-*.sh.
#
# The runner (tests/run) sets VMFERRY, BUILDDIR, SRCDIR, TESTS_DIR and a
# fresh TMPDIR per test.  Exit codes: 0 pass, 77 skip, anything else fail.
# A test can also be run by hand:
#   VMFERRY=build/vmferry BUILDDIR=build bash tests/t-foo.sh

set -euo pipefail

: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${TESTS_DIR:=$SRCDIR/tests}"
: "${BUILDDIR:=$SRCDIR/build}"
: "${VMFERRY:=$BUILDDIR/vmferry}"
export SRCDIR TESTS_DIR BUILDDIR VMFERRY

test_name=$(basename "$0" .sh)

# die MSG...: fail the test.
die() {
    echo "$test_name: FAIL: $*" >&2
    exit 1
}

# skip MSG...: skip the test (exit 77).
skip() {
    echo "$test_name: SKIP: $*" >&2
    exit 77
}

# require CMD...: skip unless every command is on PATH (or is an
# executable path).
require() {
    local c
    for c in "$@"; do
        if [[ $c == */* ]]; then
            [ -x "$c" ] || skip "$c is missing"
        else
            command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
        fi
    done
}

# A per-test scratch directory, removed on exit.  Under the runner's
# TMPDIR (itself removed after the test).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vf-$test_name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# The pattern generator built by meson from tests/gen-pattern.c.
GEN_PATTERN="$BUILDDIR/gen-pattern"

# gen_pattern ARGS...: run tests/gen-pattern (see its --help).
gen_pattern() {
    [ -x "$GEN_PATTERN" ] || die "$GEN_PATTERN is not built"
    "$GEN_PATTERN" "$@"
}

# sha256_of FILE: the hex SHA-256 of FILE's bytes.
sha256_of() {
    local h
    h=$(sha256sum < "$1") || die "cannot hash $1"
    echo "${h%% *}"
}

# raw_digest IMAGE: SHA-256 of what qemu-img sees as the guest bytes.
raw_digest() {
    local out="$scratch/.raw_digest.$$"
    qemu-img convert -O raw "$1" "$out" || die "qemu-img convert $1 failed"
    sha256_of "$out"
    rm -f "$out"
}

# expect_rc WANT CMD...: run CMD, fail unless it exits WANT.
expect_rc() {
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    [ "$rc" -eq "$want" ] || die "exit $rc (wanted $want): $*"
}
