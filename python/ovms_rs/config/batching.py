"""Dynamic batching parameters: TF Serving's BatchingParameters (session_bundle_config.proto), read from
config.json's per-model `batching` object or from `--batching_parameters_file` (TF Serving's protobuf text
format, or JSON).

    max_batch_size { value: 32 }
    batch_timeout_micros { value: 1000 }
    num_batch_threads { value: 4 }
    max_enqueued_batches { value: 100 }
    allowed_batch_sizes: 8
    allowed_batch_sizes: 32
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

log = logging.getLogger(__name__)

# TF Serving's defaults (BasicBatchScheduler / SharedBatchScheduler options).
DEFAULT_MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_TIMEOUT_MICROS = 0
DEFAULT_MAX_ENQUEUED_BATCHES = 10

_INT_FIELDS = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
)
# Accepted for compatibility with TF Serving's files, without effect here (a warning says so).
_IGNORED_FIELDS = (
    "thread_pool_name",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
    "batch_padding_policy",
)


@dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = DEFAULT_BATCH_TIMEOUT_MICROS
    max_enqueued_batches: int = DEFAULT_MAX_ENQUEUED_BATCHES
    # 0: TF Serving's default, one per CPU core (port::MaxParallelism).
    num_batch_threads: int = 0
    # Batches are padded up to the next of these; empty: run every batch at its own size.
    allowed_batch_sizes: tuple[int, ...] = ()

    @property
    def threads(self) -> int:
        if self.num_batch_threads:
            return self.num_batch_threads
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not Linux
            return os.cpu_count() or 1

    @property
    def timeout_seconds(self) -> float:
        return self.batch_timeout_micros / 1e6

    def padded_size(self, rows: int) -> int:
        """The batch size a batch of `rows` rows runs at: the next allowed size (rows <= max_batch_size)."""
        for size in self.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows


def parse_batching(value: object, where: str = "batching") -> BatchingParameters:
    """A JSON object: {"max_batch_size": 32, ...}; each number may also be the proto JSON {"value": 32}."""
    if isinstance(value, BatchingParameters):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"Invalid {where}: must be a JSON object")
    fields: dict[str, Any] = {}
    for key, item in value.items():
        if key in _IGNORED_FIELDS:
            log.warning("%s: %s is not supported and is ignored", where, key)
            continue
        if key == "allowed_batch_sizes":
            if not isinstance(item, list):
                raise ConfigError(f"Invalid {where}: allowed_batch_sizes must be a list of numbers")
            fields[key] = tuple(_number(where, key, x) for x in item)
        elif key in _INT_FIELDS:
            fields[key] = _number(where, key, item)
        else:
            raise ConfigError(f"Invalid {where}: unknown key '{key}'")
    return _checked(where, fields)


def _number(where: str, key: str, item: object) -> int:
    if isinstance(item, dict) and set(item) == {"value"}:  # google.protobuf wrapper, JSON form
        item = item["value"]
    if isinstance(item, str) and item.strip().lstrip("-").isdigit():
        item = int(item)
    if isinstance(item, bool) or not isinstance(item, int):
        raise ConfigError(f"Invalid {where}: {key} must be an integer, not {item!r}")
    return item


def _checked(where: str, fields: dict[str, Any]) -> BatchingParameters:
    params = BatchingParameters(**fields)
    if params.max_batch_size < 1:
        raise ConfigError(f"Invalid {where}: max_batch_size must be >= 1")
    if params.batch_timeout_micros < 0:
        raise ConfigError(f"Invalid {where}: batch_timeout_micros must be >= 0")
    if params.max_enqueued_batches < 1:
        raise ConfigError(f"Invalid {where}: max_enqueued_batches must be >= 1")
    if params.num_batch_threads < 0:
        raise ConfigError(f"Invalid {where}: num_batch_threads must be >= 0")
    sizes = params.allowed_batch_sizes
    if sizes:
        # TF Serving's rule: increasing, and the last one is max_batch_size.
        if any(s < 1 for s in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ConfigError(f"Invalid {where}: allowed_batch_sizes must increase and be >= 1")
        if sizes[-1] != params.max_batch_size:
            raise ConfigError(
                f"Invalid {where}: the last allowed_batch_sizes entry must equal max_batch_size"
            )
    return params


_TOKEN = re.compile(
    r'\s*(?:(#[^\n]*)|([A-Za-z_][A-Za-z0-9_]*)|(-?\d+)|("[^"]*"|\'[^\']*\')|([{}:;,]))'
)


def parse_text_format(text: str, where: str) -> BatchingParameters:
    """TF Serving's BatchingParameters in protobuf text format (wrapper fields `{ value: N }`)."""
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(
                f"Invalid {where}: cannot parse at offset {pos}: {text[pos : pos + 20]!r}"
            )
        pos = m.end()
        if m.group(1) is None:
            tokens.append(m.group(0).strip())
    fields: dict[str, Any] = {}
    allowed: list[int] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise ConfigError(f"Invalid {where}: unexpected end of file")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        name = take()
        if name in (";", ","):
            continue
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ConfigError(f"Invalid {where}: expected a field name, got {name!r}")
        token = take()
        if token == ":":
            token = take()
        if token == "{":  # a wrapper message: { value: N }
            body: dict[str, str] = {}
            while (key := take()) != "}":
                if take() != ":":
                    raise ConfigError(f"Invalid {where}: expected ':' after {key!r}")
                body[key] = take()
            value: str | None = body.get("value")
        else:
            value = token
        if name in _IGNORED_FIELDS:
            log.warning("%s: %s is not supported and is ignored", where, name)
            continue
        if value is None or not re.fullmatch(r"-?\d+", value):
            raise ConfigError(f"Invalid {where}: {name} needs an integer value, got {value!r}")
        if name == "allowed_batch_sizes":
            allowed.append(int(value))
        elif name in _INT_FIELDS:
            fields[name] = int(value)
        else:
            raise ConfigError(f"Invalid {where}: unknown field '{name}'")
    if allowed:
        fields["allowed_batch_sizes"] = tuple(allowed)
    return _checked(where, fields)


def load_batching_file(path: Path) -> BatchingParameters:
    """--batching_parameters_file: TF Serving's text format, or a JSON object."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(
            f"Unable to read batching parameters file: {path}: {e.strerror}"
        ) from None
    where = f"batching parameters file {path}"
    if text.lstrip().startswith("{") and ":" in text and '"' in text:
        try:
            return parse_batching(json.loads(text), where)
        except json.JSONDecodeError:
            pass  # `max_batch_size { value: 1 }` can't start with "{", but try text format anyway
    return parse_text_format(text, where)
