#!/usr/bin/env bash
# The test command (README): Rust unit tests, then the wheel built the way users get it, installed into
# a fresh venv, and the pytest suite run against that installed wheel (not the source tree).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-test}

echo "== the test venv and everything it installs, in the background while Rust compiles (downloads, not CPU)"
rm -rf "$VENV" dist
"$PYTHON" -m venv "$VENV"
DEPS_LOG=$(mktemp)
# The package's dependencies and test extra (read from pyproject.toml: the wheel is not built yet); TF
# Serving's own Python stubs, as a client (tests/test_third_party_clients.py; not a [test] extra: it brings
# all of tensorflow, ~2 GB installed, ~1 min, so here the test fails rather than skips without it); the
# linters, pinned where their output moves between releases.
(
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "maturin>=1.7,<2" ziglang "ruff==0.17.6" mypy tensorflow-serving-api \
      $("$PYTHON" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(" ".join(p["dependencies"] + p["optional-dependencies"]["test"]))')
) >"$DEPS_LOG" 2>&1 &
DEPS=$!
# System packages the tests use: HAProxy and wrk (tests/deploy/test_replicas.py), curl.
APT_LOG=$(mktemp)
(
  if ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy wrk curl >/dev/null
  fi
) >"$APT_LOG" 2>&1 &
APT=$!
waited() {  # waited PID LOG WHAT: the background job's status, its log shown if it failed
  wait "$1" || { cat "$2"; echo "$3 failed"; exit 1; }
}

echo "== cargo fmt, clippy, test (the extension, its core crate rust/core and benches/loadgen)"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo test --quiet --workspace
# The load benchmark's compiled client (tests/test_bench_smoke.py runs it; built here so its time is not
# the test's).
cargo build --release --quiet -p ovms_rs_loadgen

echo "== build the wheel (maturin, abi3, manylinux via zig)"
waited "$DEPS" "$DEPS_LOG" "installing the test venv's dependencies"
# maturin finds zig through `python -m ziglang` of the first python on PATH: the venv's.
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --zig --compatibility manylinux2014 --out dist
ls dist

echo "== the aarch64 wheel and the sdist (tests/deploy/test_wheels.py checks every wheel's tags and arch)"
# A checking build: unoptimised, many codegen units, no LTO (140 s optimised without LTO, measured; the
# release profile's fat LTO keeps one core busy for minutes): the tags and the architecture are what is
# tested here, and .github/workflows/release.yml builds the shipped wheels with the full profile.
mkdir -p dist/wheels && cp dist/ovms_rs-*.whl dist/wheels/
CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    TARGETS=aarch64-unknown-linux-gnu OUT=dist/wheels VENV="$VENV" bash scripts/build_wheels.sh
export OVMS_RS_WHEELS_DIR="$PWD/dist/wheels"

echo "== install the wheel and the test dependencies"
"$VENV/bin/pip" install --quiet "$(ls dist/ovms_rs-*.whl)[test]"
(cd /tmp && "$OLDPWD/$VENV/bin/python" -c "import ovms_rs, ovms_rs._native as n; print('testing', ovms_rs.__file__)")
export OVMS_RS_REQUIRE_TFS_API=1  # installed above

echo "== lint and types (ruff, mypy --strict over the package, tests and benches, stubtest of the extension against _native.pyi)"
"$VENV/bin/ruff" check python tests benches
"$VENV/bin/ruff" format --check python tests benches
"$VENV/bin/mypy" python/ovms_rs tests benches
for c in tests/*/conftest.py; do "$VENV/bin/mypy" "$c"; done  # each a module named `conftest`: one run each
(cd /tmp && "$OLDPWD/$VENV/bin/python" -m mypy.stubtest ovms_rs._native)

waited "$APT" "$APT_LOG" "installing HAProxy, wrk and curl"

echo "== pytest"
# Run from tests/ so `import ovms_rs` can only find the installed wheel.
"$VENV/bin/python" -m pytest tests -q -p no:cacheprovider "$@"
