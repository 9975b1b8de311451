//! JPEG/PNG decoding and bilinear resize for binary (encoded image) inputs. (placeholder, being written)

use numpy::PyArray4;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// decode_images(images: list[bytes], height: int | None, width: int | None) -> uint8 ndarray [N,H,W,C]
#[pyfunction]
#[pyo3(signature = (images, height=None, width=None))]
pub fn decode_images<'py>(
    _py: Python<'py>,
    images: Vec<Bound<'py, PyBytes>>,
    height: Option<usize>,
    width: Option<usize>,
) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let _ = (images, height, width);
    Err(pyo3::exceptions::PyNotImplementedError::new_err("decode_images"))
}
