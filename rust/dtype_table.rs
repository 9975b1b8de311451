//! The Python face of the core's dtype table (`ovms_rs_core::dtype`).

use ovms_rs_core::dtype::DType;
use pyo3::prelude::*;

/// dtype_table() -> list[(wire, precision, numpy, size, val_field)]: every dtype, as Rust handles
/// it; `ovms_rs/dtypes.py` holds the same table for Python (a test compares them).
#[pyfunction]
pub fn dtype_table() -> Vec<(u32, &'static str, &'static str, usize, &'static str)> {
    let row = |d: DType| {
        (
            d as u32,
            d.precision(),
            d.numpy(),
            d.size(),
            d.val_field().name(),
        )
    };
    DType::ALL.into_iter().map(row).collect()
}
