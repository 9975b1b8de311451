//! `transpose_layout`: numpy arrays through the NHWC <-> NCHW kernels of `ovms_rs_core::layout`.

use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use ovms_rs_core::layout::{nchw_to_nhwc, nhwc_to_nchw};

use crate::detach::detach_above;
use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::{data_ptr, new_c_array, numpy};

/// Above this many bytes, `transpose_layout` releases the interpreter (below, that costs more than the
/// copy itself: ~1 us per 16 KiB).
const DETACH_BYTES: usize = 16 << 10;

/// transpose_layout(array, to) -> numpy.ndarray
///
/// `to="NCHW"`: move the last axis of `array` to position 1 (N...HWC -> NC...HW); `to="NHWC"`: move axis 1
/// to the end. `array` is a numpy array of rank >= 3 whose itemsize is 1, 2, 4 or 8 (bool, int8..int64,
/// uint8..uint64, float16/32/64); any strides and any data alignment are accepted (non-contiguous input
/// is made contiguous first). Returns a new C-contiguous array of the same dtype. The interpreter is
/// released while the data moves (above 16 KiB); the input must not be written to by another thread
/// meanwhile.
///
/// Raises ValueError for any other `to`, InvalidInput (a ValueError) for rank < 3 or another dtype, and
/// TypeError if `array` is not a numpy array.
#[pyfunction]
pub fn transpose_layout<'py>(
    py: Python<'py>,
    array: Bound<'py, PyAny>,
    to: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let to_nchw = match to {
        "NCHW" => true,
        "NHWC" => false,
        _ => {
            return Err(PyValueError::new_err(format!(
                "transpose_layout: to must be 'NCHW' or 'NHWC', got {to:?}"
            )))
        }
    };
    let mut array = array.cast_into::<PyUntypedArray>()?;
    let shape = array.shape().to_vec();
    if shape.len() < 3 {
        return Err(raise(Error::TransposeRank {
            rank: shape.len(),
            to: to.to_string(),
        }));
    }
    let descr = array.dtype();
    let itemsize = descr.itemsize();
    if DType::from_numpy(descr.kind(), itemsize).is_none() {
        return Err(raise(Error::TransposeDtype {
            dtype: descr.to_string(),
            to: to.to_string(),
        }));
    }
    if !array.is_c_contiguous() {
        array = numpy(py)?
            .call_method1("ascontiguousarray", (&array,))?
            .cast_into::<PyUntypedArray>()?;
    }

    let (n, rest) = (shape[0], &shape[1..]);
    let (c, out_shape) = if to_nchw {
        let c = rest[rest.len() - 1];
        (c, [&[n, c][..], &rest[..rest.len() - 1]].concat())
    } else {
        (rest[0], [&[n][..], &rest[1..], &[rest[0]][..]].concat())
    };
    let len: usize = shape.iter().product();
    let hw = if len == 0 { 0 } else { len / (n * c) };

    let out = new_c_array(py, &array.dtype(), &out_shape)?;
    if len == 0 {
        return Ok(out);
    }
    // Raw addresses, so the closure below is Send; the arrays they point into outlive it (see SAFETY).
    let src = data_ptr(&array) as usize;
    let dst = data_ptr(&out) as usize;
    let work = move || {
        macro_rules! run {
            ($k:literal) => {{
                // SAFETY: `src` is the data of a live (held by `array`), C-contiguous array of `len`
                // elements of $k bytes; `dst` that of the new array `out`, same length, referenced nowhere
                // else. `[u8; $k]` has alignment 1, so any address is aligned for it. Both arrays stay
                // alive, and unmoved, until this closure returns. The input is only read, and the caller
                // must not write it concurrently (documented above), so the shared slice holds.
                let (s, d) = unsafe {
                    (
                        std::slice::from_raw_parts(src as *const [u8; $k], len),
                        std::slice::from_raw_parts_mut(dst as *mut [u8; $k], len),
                    )
                };
                if to_nchw {
                    nhwc_to_nchw(s, d, n, hw, c)
                } else {
                    nchw_to_nhwc(s, d, n, hw, c)
                }
            }};
        }
        match itemsize {
            1 => run!(1),
            2 => run!(2),
            4 => run!(4),
            8 => run!(8),
            _ => unreachable!("itemsize checked above"),
        }
    };
    detach_above(py, len * itemsize, DETACH_BYTES, work);
    Ok(out)
}
