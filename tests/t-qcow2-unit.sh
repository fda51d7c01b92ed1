#!/bin/bash
# t-qcow2-unit: the qcow2 driver's unit, model and mutation tests
# (tests/qcow2-unit.c), built by meson into BUILDDIR.
set -eu
if [ -f "$(dirname "$0")/lib.sh" ]; then
    . "$(dirname "$0")/lib.sh"
fi
: "${BUILDDIR:?BUILDDIR must point at the build directory}"
[ -x "$BUILDDIR/qcow2-unit" ] || { echo "qcow2-unit not built: skip"; exit 77; }
# 1000 mutated images: about 10 s in an ASan build
"$BUILDDIR/qcow2-unit" 1000
