"""`python -m ovms_rs.clients.make_demo_data --output_dir DIR`: the walk-through's input files.

Writes into DIR the ten labeled demo photos (`images/*.jpeg`), `input_images.txt` (for
jpeg_classification), `imgs.npy` ([10,3,224,224] float32, BGR, 0..255, bilinear resize; [10,224,224,3]
with --layout NHWC) and `lbs.npy` (their ImageNet class ids, for grpc_serving_client)."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from .. import demo_dir
from .connection import ClientError, describe_os_error
from .images import read_bgr


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ovms_rs.clients.make_demo_data",
        description="Write the demo photos, input_images.txt, imgs.npy and lbs.npy into a folder",
    )
    parser.add_argument(
        "--output_dir", default=".", help="Folder to write into (created if missing). default: ."
    )
    parser.add_argument(
        "--size",
        default=224,
        type=int,
        help="Height and width of the images in imgs.npy. default: 224",
    )
    parser.add_argument(
        "--layout",
        choices=["NCHW", "NHWC"],
        default="NCHW",
        help="Layout of imgs.npy. default: NCHW",
    )
    return parser


def labeled_photos() -> list[tuple[str, int]]:
    """(path relative to the demo data folder, ImageNet class id) of each shipped photo."""
    text = (demo_dir() / "data" / "input_images.txt").read_text()
    return [
        (path, int(label))
        for path, label in (line.split() for line in text.splitlines() if line.strip())
    ]


def photo_batch(paths: Sequence[Path], size: int, layout: str) -> npt.NDArray[np.float32]:
    """The photos, bilinear-resized to size x size, BGR, float32 0..255, stacked in `layout`."""
    batch = np.stack([read_bgr(p, (size, size)) for p in paths]).astype(np.float32)
    return batch if layout == "NHWC" else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class DemoData(NamedTuple):
    photos: int
    imgs_shape: tuple[int, ...]
    labels_shape: tuple[int, ...]


def write_demo_data(output_dir: Path, size: int = 224, layout: str = "NCHW") -> DemoData:
    """Writes the files into output_dir; returns what was written."""
    source = demo_dir() / "data"
    photos = labeled_photos()
    output_dir.mkdir(parents=True, exist_ok=True)
    for path, _ in photos:
        (output_dir / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / path, output_dir / path)
    shutil.copyfile(source / "input_images.txt", output_dir / "input_images.txt")
    imgs = photo_batch([source / path for path, _ in photos], size, layout)
    labels = np.array([label for _, label in photos], dtype=np.int64)
    np.save(output_dir / "imgs.npy", imgs)
    np.save(output_dir / "lbs.npy", labels)
    return DemoData(len(photos), imgs.shape, labels.shape)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 1:
        print("Error: --size must be at least 1", file=sys.stderr)
        return 1
    output_dir = Path(args.output_dir)
    try:
        written = write_demo_data(output_dir, args.size, args.layout)
    except ClientError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Error: {describe_os_error(e)}", file=sys.stderr)
        return 1
    print(f"Wrote {written.photos} labeled photos to {output_dir / 'images'}")
    print(f"Wrote {output_dir / 'input_images.txt'}")
    print(
        f"Wrote {output_dir / 'imgs.npy'}: {written.imgs_shape} float32, BGR, 0..255, {args.layout}"
    )
    print(f"Wrote {output_dir / 'lbs.npy'}: {written.labels_shape} int64 ImageNet class ids")
    return 0


if __name__ == "__main__":
    sys.exit(main())
