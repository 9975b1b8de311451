"""The one Python dtype table (ovms_rs.dtypes) against Rust's (rust/dtype.rs) and the protobuf enum."""

from __future__ import annotations

import numpy as np
from ovms_rs import _native, dtypes
from ovms_rs._proto.tensorflow.core.framework import tensor_pb2, types_pb2


def test_the_python_table_is_rusts() -> None:
    rust = _native.dtype_table()
    python = [(d.wire, d.precision, d.numpy, d.size, d.val_field) for d in dtypes.TABLE]
    assert len(rust) == len(python) == 14
    for (wire, precision, numpy, size, val_field), ours in zip(rust, python, strict=True):
        assert (wire, precision, np.dtype(numpy), size, val_field) == ours


def test_names_and_fields_are_the_protos() -> None:
    fields = {f.name for f in tensor_pb2.TensorProto.DESCRIPTOR.fields}
    for d in dtypes.TABLE:
        assert types_pb2.DataType.Name(d.wire) == d.name
        assert d.val_field in fields
    assert dtypes.DT_STRING == types_pb2.DT_STRING
    assert dtypes.DT_BFLOAT16 == types_pb2.DT_BFLOAT16


def test_sizes_and_lookups() -> None:
    for d in dtypes.TABLE:
        assert d.size == (0 if d.wire == dtypes.DT_STRING else d.numpy.itemsize)
        assert dtypes.BY_WIRE[d.wire] is d and dtypes.BY_PRECISION[d.precision] is d
    # An array's own dtype finds its wire dtype; bfloat16's uint16 bits are DT_UINT16's.
    assert dtypes.BY_NUMPY[np.zeros(1, np.float32).dtype].name == "DT_FLOAT"
    assert dtypes.BY_NUMPY[np.zeros(1, np.uint16).dtype].name == "DT_UINT16"
    assert dtypes.BY_NUMPY[np.zeros(1, bool).dtype].name == "DT_BOOL"
    assert len(dtypes.BY_NUMPY) == 12
    assert dtypes.precision_of_dtype(1) == "FP32"
    assert dtypes.precision_of_dtype(8) == "UNDEFINED"  # complex64: not served
