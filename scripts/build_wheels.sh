#!/usr/bin/env bash
# The release artefacts built here: abi3 manylinux2014 wheels for x86_64 and aarch64 (cross-compiled
# with zig as the linker, so no aarch64 toolchain or container is needed) and the sdist, into $OUT.
# macOS and Windows wheels need those systems: .github/workflows/release.yml builds them.
#   scripts/build_wheels.sh                      # both Linux wheels and the sdist into dist/wheels
#   TARGETS=aarch64-unknown-linux-gnu OUT=/tmp/w scripts/build_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-build}
OUT=${OUT:-dist/wheels}
TARGETS=${TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu}

if [ ! -x "$VENV/bin/maturin" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet "maturin>=1.7,<2" ziglang
fi
# maturin finds zig through `python -m ziglang` of the first python on PATH: the venv's.
export PATH="$PWD/$VENV/bin:$PATH"
mkdir -p "$OUT"

for target in $TARGETS; do
    rustup target add "$target"
    start=$SECONDS
    # Each --target builds under target/<triple>/, apart from the host build of scripts/test.sh.
    maturin build --release --zig --compatibility manylinux2014 --target "$target" --out "$OUT"
    echo "== $target wheel: $((SECONDS - start)) s"
done

start=$SECONDS
maturin sdist --out "$OUT"
echo "== sdist: $((SECONDS - start)) s"
ls -l "$OUT"
