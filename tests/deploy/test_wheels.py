"""The release artefacts of scripts/build_wheels.sh: an abi3 manylinux2014 wheel per Linux architecture,
its extension compiled for that architecture, and an sdist that holds what a source build needs.

They are checked where $OVMS_RS_WHEELS_DIR points (the script's OUT): building the aarch64 wheel is a
full cross release build, too long for every CI run.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
import tomllib
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

WHEELS_DIR_ENV = "OVMS_RS_WHEELS_DIR"
# ELF e_machine values (System V ABI): the architecture the extension was compiled for.
E_MACHINE = {"x86_64": 62, "aarch64": 183}


@pytest.fixture(scope="module")
def wheels_dir() -> Path:
    if not os.environ.get(WHEELS_DIR_ENV):
        pytest.skip(f"set {WHEELS_DIR_ENV} to the output directory of scripts/build_wheels.sh")
    return Path(os.environ[WHEELS_DIR_ENV])


def expected_tags(arch: str) -> set[Tag]:
    return {
        Tag("cp39", "abi3", f"manylinux_2_17_{arch}"),
        Tag("cp39", "abi3", f"manylinux2014_{arch}"),
    }


def wheel_for(wheels_dir: Path, arch: str) -> Path:
    (wheel,) = wheels_dir.glob(f"ovms_rs-*_{arch}.whl")
    return wheel


def elf_machine(header: bytes) -> int:
    assert header[:4] == b"\x7fELF", "not an ELF file"
    assert header[4] == 2, "not a 64-bit ELF file"  # EI_CLASS: ELFCLASS64
    assert header[5] == 1, "not little-endian"  # EI_DATA: ELFDATA2LSB
    return int.from_bytes(header[18:20], "little")  # e_machine follows e_ident[16], e_type[2]


def test_one_wheel_per_architecture_and_an_sdist(wheels_dir: Path) -> None:
    names = sorted(p.name for p in wheels_dir.iterdir())
    assert len(names) == 3, names
    assert [n for n in names if n.endswith(".tar.gz")], names


@pytest.mark.parametrize("arch", sorted(E_MACHINE))
def test_wheel_filename_tags(wheels_dir: Path, arch: str) -> None:
    name, _version, _build, tags = parse_wheel_filename(wheel_for(wheels_dir, arch).name)
    assert name == "ovms-rs"
    assert set(tags) == expected_tags(arch)


@pytest.mark.parametrize("arch", sorted(E_MACHINE))
def test_wheel_metadata_tags(wheels_dir: Path, arch: str) -> None:
    with zipfile.ZipFile(wheel_for(wheels_dir, arch)) as wheel:
        (wheel_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/WHEEL")]
        headers = HeaderParser().parsestr(wheel.read(wheel_file).decode())
    assert headers["Root-Is-Purelib"] == "false"
    tags = {Tag(*tag.split("-")) for tag in headers.get_all("Tag", [])}
    assert tags == expected_tags(arch)


@pytest.mark.parametrize("arch", sorted(E_MACHINE))
def test_extension_is_built_for_the_wheel_architecture(wheels_dir: Path, arch: str) -> None:
    with zipfile.ZipFile(wheel_for(wheels_dir, arch)) as wheel:
        # abi3: one extension for every CPython >= 3.9, no version in its name.
        (native,) = [
            n for n in wheel.namelist() if n.startswith("ovms_rs/_native") and n.endswith(".so")
        ]
        assert native == "ovms_rs/_native.abi3.so"
        with wheel.open(native) as so:
            header = so.read(64)
    assert elf_machine(header) == E_MACHINE[arch]


def test_sdist_holds_the_sources(wheels_dir: Path) -> None:
    (sdist,) = wheels_dir.glob("ovms_rs-*.tar.gz")
    with tarfile.open(sdist) as tar:
        (top,) = {n.split("/")[0] for n in tar.getnames()}
        names = {n.removeprefix(f"{top}/") for n in tar.getnames()}
        cargo_toml = tar.extractfile(f"{top}/Cargo.toml").read().decode()  # type: ignore[union-attr]
    assert {
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "rust/lib.rs",
        "python/ovms_rs/__init__.py",
        "python/ovms_rs/demo/efficientnet-lite0/1/model.xml",
    } <= names
    # The repository's [workspace] names rust/core and benches/loadgen; maturin rewrites Cargo.toml for
    # the sdist, and every member it still names must be in it, or cargo cannot read the manifest.
    members = tomllib.loads(cargo_toml).get("workspace", {}).get("members", [])
    assert all(f"{member}/Cargo.toml" in names for member in members), (members, sorted(names)[:20])
    assert "rust/core/Cargo.toml" in names  # the extension's path dependency, the kernels
