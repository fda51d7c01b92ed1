# C unit tests of the core pieces (tests/unit-core.c) and of the sparse
# member map of archives (tests/unit-sparse-map.c).
. "$(dirname "$0")/lib.sh"
"$BUILDDIR/unit-core"
"$BUILDDIR/unit-sparse-map"
