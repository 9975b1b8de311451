//! `decode_images`: binary (encoded image) inputs through `ovms_rs_core::image` (OVMS's
//! `cv::imdecode` + `cv::resize` output), with the pixels counted against the memory budget and the
//! decode time in the metrics.

use numpy::ndarray::Array4;
use numpy::{IntoPyArray, PyArray4};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ovms_rs_core::image::{decode_batch_within, MAX_SIDE};

use crate::error::{raise, Error};
use crate::overload::budget::{self, Reservation};

/// decode_images(images: list[bytes], height: int | None, width: int | None) -> uint8 ndarray [N,H,W,C]
///
/// Decodes JPEG/PNG images the way OVMS's `cv::imdecode(IMREAD_UNCHANGED)` does (BGR, gray 1 channel,
/// alpha BGRA) and, when `height` and `width` are given, resizes each with OpenCV's bilinear kernel.
/// Raises `InvalidInput` with OVMS's kind (`IMAGE_*`) for a bad image or batch.
#[pyfunction]
#[pyo3(signature = (images, height=None, width=None))]
pub fn decode_images<'py>(
    py: Python<'py>,
    images: Vec<Bound<'py, PyBytes>>,
    height: Option<usize>,
    width: Option<usize>,
) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let size = match (height, width) {
        (None, None) => None,
        (Some(h), Some(w)) if (1..=MAX_SIDE).contains(&h) && (1..=MAX_SIDE).contains(&w) => {
            Some((h, w))
        }
        _ => {
            let message =
                format!("height and width must be given together, each in 1..={MAX_SIDE}");
            return Err(PyValueError::new_err(message));
        }
    };
    let slices: Vec<&[u8]> = images.iter().map(|b| b.as_bytes()).collect();
    let started = std::time::Instant::now();
    let mut reservation = Reservation::default();
    let (shape, pixels) = py
        .detach(|| {
            decode_batch_within(&slices, size, |bytes| {
                reservation =
                    budget::try_reserve(bytes).map_err(|r| Error::Exhausted(r.message()))?;
                Ok(())
            })
        })
        .map_err(raise)?;
    crate::metrics::registry().observe_image_decode(started.elapsed());
    let array = Array4::from_shape_vec(shape, pixels)
        .map_err(|e| PyValueError::new_err(format!("decoded batch has the wrong size: {e}")))?;
    if !reservation.is_held() {
        return Ok(array.into_pyarray(py));
    }
    // The pixels count against the memory budget for as long as the array (or a view of it) lives:
    // the array's base object owns them and the reservation.
    let owner = Bound::new(
        py,
        DecodedPixels {
            array,
            _reservation: reservation,
        },
    )?;
    let view = &owner.get().array;
    // SAFETY: `view` is the array `owner` owns and keeps alive as the new array's base; it is never
    // moved or reallocated (the pyclass is frozen).
    Ok(unsafe { PyArray4::borrow_from_array(view, owner.clone().into_any()) })
}

/// A decoded batch that holds its memory-budget reservation until numpy lets go of it.
#[pyclass(frozen, module = "ovms_rs._native")]
struct DecodedPixels {
    array: Array4<u8>,
    _reservation: Reservation,
}
