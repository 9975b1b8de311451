"""ovms_rs: a drop-in replacement for OpenVINO Model Server's TensorFlow Serving gRPC API."""

from importlib.resources import files
from pathlib import Path

__version__ = "0.1.0"

DEMO_MODEL_NAME = "efficientnet-lite0"


def demo_dir() -> Path:
    """The package's demo data: the demo model repository and labeled photos."""
    return Path(str(files(__name__).joinpath("demo")))
