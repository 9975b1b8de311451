"""Every TFS dtype, in tensor_content and in its typed *_val field, reaches the model intact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from helpers import ServerProcess, output_array, predict_request, tensor_proto

# numpy dtype, OpenVINO type, the TensorProto field TF Serving uses for typed values
DTYPES: list[tuple[Any, ov.Type, str]] = [
    (np.float32, ov.Type.f32, "float_val"),
    (np.float64, ov.Type.f64, "double_val"),
    (np.float16, ov.Type.f16, "half_val"),
    (np.int8, ov.Type.i8, "int_val"),
    (np.int16, ov.Type.i16, "int_val"),
    (np.int32, ov.Type.i32, "int_val"),
    (np.int64, ov.Type.i64, "int64_val"),
    (np.uint8, ov.Type.u8, "int_val"),
    (np.uint16, ov.Type.u16, "int_val"),
    (np.uint32, ov.Type.u32, "uint32_val"),
    (np.uint64, ov.Type.u64, "uint64_val"),
    (np.bool_, ov.Type.boolean, "bool_val"),
]


@pytest.fixture(scope="module")
def dtype_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One identity-like model per dtype: y = convert(x, f64), input x [2,3] of that dtype."""
    root = Path(tmp_path_factory.mktemp("dtypes"))
    entries = []
    for np_dtype, ov_type, _ in DTYPES:
        name = np.dtype(np_dtype).name
        x = ops.parameter([2, 3], ov_type, name="x")
        y = ops.convert(x, ov.Type.f64)
        y.output(0).get_tensor().set_names({"y"})
        (root / name / "1").mkdir(parents=True)
        ov.save_model(
            ov.Model([ops.result(y)], [x], name),
            str(root / name / "1" / "model.xml"),
            compress_to_fp16=False,
        )
        entries.append(f'{{"config": {{"name": "{name}", "base_path": "{name}"}}}}')
    config = root / "config.json"
    config.write_text('{"model_config_list": [' + ",".join(entries) + "]}")
    with ServerProcess("--config_path", str(config), log_path=root / "server.log") as server:
        yield server


def _values(np_dtype: Any) -> np.ndarray[Any, Any]:
    if np_dtype is np.bool_:
        return np.array([[True, False, True], [False, False, True]])
    info = np.iinfo(np_dtype) if np.issubdtype(np_dtype, np.integer) else None
    if info is not None:
        return np.array([[info.min, 0, 1], [2, info.max - 1, info.max]], dtype=np_dtype)
    return np.array([[-1.5, 0.0, 0.25], [3.0, 1024.0, -7.125]], dtype=np_dtype)


@pytest.mark.parametrize(
    "np_dtype, ov_type, field", DTYPES, ids=[np.dtype(d[0]).name for d in DTYPES]
)
def test_tensor_content_and_typed_values(
    dtype_server: ServerProcess, np_dtype: Any, ov_type: ov.Type, field: str
) -> None:
    name = np.dtype(np_dtype).name
    x = _values(np_dtype)
    stub = dtype_server.prediction_stub()
    reply = stub.Predict(predict_request({"x": tensor_proto(x)}, model=name), timeout=30)
    expected = x.astype(np.float64)
    _check(output_array(reply.outputs["y"]), expected, np_dtype)

    typed = tensor_proto(x)
    typed.ClearField("tensor_content")
    if field == "half_val":
        values: list[Any] = x.view(np.uint16).ravel().tolist()
    else:
        values = x.ravel().tolist()
    getattr(typed, field).extend(values)
    reply = stub.Predict(predict_request({"x": typed}, model=name), timeout=30)
    _check(output_array(reply.outputs["y"]), expected, np_dtype)


def _check(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], np_dtype: Any) -> None:
    if np.dtype(np_dtype).itemsize >= 4 and np.issubdtype(np_dtype, np.integer):
        # OpenVINO's CPU plugin converts wide integers through f32 inside the graph.
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(actual, expected)
