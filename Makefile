# The developer loop (pydantic-core's style): `make dev` once, then `make test-fast` while working.
# CI runs `bash .ci/run` (scripts/test.sh): the wheel as users get it, every test.
VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: dev dev-release test-fast test lint fuzz-check miri bench bench-load

$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip "maturin>=1.7,<2"

dev: $(PY)  ## debug build of the extension, installed editable with the test extra (python/ used in place)
	$(VENV)/bin/pip install -q -e '.[test,bench]' "ruff==0.17.6" mypy starlette uvicorn
	maturin develop --quiet

dev-release: $(PY)  ## the same, optimised (for benchmarks)
	maturin develop --release --quiet

test-fast:  ## Rust unit tests (the extension and rust/core: default-members) + every pytest suite but the slow ones (a few minutes on 2 cores)
	cargo test --quiet --lib
	$(PY) -m pytest tests -q -p no:cacheprovider -m "not slow" -x

test:  ## what CI runs, in a fresh venv (.venv-test)
	bash scripts/test.sh

lint:  ## fmt, clippy, ruff, mypy (package, tests, benches), stubtest
	cargo fmt --all --check
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
	$(VENV)/bin/mypy python/ovms_rs tests benches
	@# each tests/*/conftest.py is a module named `conftest`: one run each (pyproject.toml's [tool.mypy])
	for c in tests/*/conftest.py; do $(VENV)/bin/mypy "$$c" || exit 1; done
	$(PY) -m mypy.stubtest ovms_rs._native

fuzz-check:  ## the fuzz targets build, over rust/core alone (cargo fuzz run needs nightly; see fuzz/)
	cd fuzz && cargo build --quiet

# Tree Borrows: crossbeam-epoch (under rayon) breaks Stacked Borrows' rules, a known incompatibility of
# its own (it runs Miri under Tree Borrows itself). 4 CPUs: Miri reports 1 by default, and for_each then
# never shares work. Leaks ignored: rayon's global pool threads outlive the test harness.
MIRIFLAGS ?= -Zmiri-tree-borrows -Zmiri-num-cpus=4 -Zmiri-ignore-leaks -Zmiri-permissive-provenance
miri:  ## Miri over rust/parallel.rs's tests (miri/; nightly with the miri component; minutes, not in CI)
	cd miri && MIRIFLAGS="$(MIRIFLAGS)" cargo +nightly miri test --quiet --lib --target-dir ../target/miri

bench:  ## micro-benchmarks of the Rust paths against their baselines (same run, ratios)
	$(PY) -m pytest benches/bench_*.py -q -s -p no:cacheprovider

bench-load:  ## the end-to-end load benchmarks (minutes)
	$(PY) -m benches.load
	$(PY) -m benches.rest_load
