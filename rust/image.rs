//! `decode_images`: binary (encoded image) inputs through `ovms_rs_core::image` (OVMS's
//! `cv::imdecode` + `cv::resize` output), read where they lie (a request's `RequestStrings`, or a list
//! of `bytes`), written in the model's precision, with the bytes allocated counted against the memory
//! budget and the decode time in the metrics.

use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use ovms_rs_core::image::{decode_batch_within, f16, Pixel, MAX_SIDE};

use crate::dtype::DType;
use crate::error::{raise, Error};
use crate::numpy_ffi::{array_over, descr_of};
use crate::overload::budget::{self, Reservation};
use crate::predict::strings::RequestStrings;

/// decode_images(images: RequestStrings | list[bytes], height: int | None, width: int | None,
/// dtype: numpy.dtype | None) -> ndarray [N,H,W,C] of `dtype` (uint8 when None)
///
/// Decodes JPEG/PNG images the way OVMS's `cv::imdecode(IMREAD_UNCHANGED)` does (BGR, gray 1 channel,
/// alpha BGRA) and, when `height` and `width` are given, resizes each with OpenCV's bilinear kernel;
/// the samples are written as `dtype` (a numeric one: numpy's `uint8.astype`, no scaling) with the
/// interpreter released. Raises `InvalidInput` with OVMS's kind (`IMAGE_*`) for a bad image or batch.
#[pyfunction]
#[pyo3(signature = (images, height=None, width=None, dtype=None))]
pub fn decode_images<'py>(
    py: Python<'py>,
    images: &Bound<'py, PyAny>,
    height: Option<usize>,
    width: Option<usize>,
    dtype: Option<Bound<'py, PyArrayDescr>>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
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
    let descr = match dtype {
        Some(descr) => descr,
        None => descr_of(py, DType::UInt8)?,
    };
    let element = DType::from_numpy(descr.kind(), descr.itemsize())
        .filter(|_| descr.is_native_byteorder() != Some(false));
    let owned: Vec<Bound<'py, PyBytes>>;
    let slices: Vec<&[u8]> = match images.cast::<RequestStrings>() {
        Ok(strings) => strings.get().slices(py)?,
        Err(_) => {
            owned = images.extract()?;
            owned.iter().map(|b| b.as_bytes()).collect()
        }
    };
    macro_rules! decode {
        ($t:ty) => {
            decode_as::<$t>(py, &slices, size, descr)
        };
    }
    match element {
        Some(DType::UInt8) => decode!(u8),
        Some(DType::Int8) => decode!(i8),
        Some(DType::UInt16) => decode!(u16),
        Some(DType::Int16) => decode!(i16),
        Some(DType::UInt32) => decode!(u32),
        Some(DType::Int32) => decode!(i32),
        Some(DType::UInt64) => decode!(u64),
        Some(DType::Int64) => decode!(i64),
        Some(DType::Half) => decode!(f16),
        Some(DType::Float) => decode!(f32),
        Some(DType::Double) => decode!(f64),
        _ => Err(PyValueError::new_err(format!(
            "decode_images: dtype must be a native-endian integer or float type, got {descr}"
        ))),
    }
}

fn decode_as<'py, T: Pixel + 'static>(
    py: Python<'py>,
    slices: &[&[u8]],
    size: Option<(usize, usize)>,
    descr: Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    assert_eq!(descr.itemsize(), size_of::<T>(), "the pixel type's descr");
    let started = std::time::Instant::now();
    let mut reservation = Reservation::default();
    let (shape, pixels) = py
        .detach(|| {
            decode_batch_within::<T>(slices, size, |bytes| {
                reservation =
                    budget::try_reserve(bytes).map_err(|r| Error::Exhausted(r.message()))?;
                Ok(())
            })
        })
        .map_err(raise)?;
    crate::metrics::registry().observe_image_decode(started.elapsed());
    // The bytes count against the memory budget for as long as the array (or a view of it) lives:
    // the array's base object owns them and the reservation.
    let owner = Bound::new(
        py,
        DecodedPixels {
            pixels: Box::new(pixels),
            _reservation: reservation,
        },
    )?;
    let data = owner.get().pixels.data();
    // SAFETY: `data` is the start of the `shape`'s product of `T`s that `owner` owns (a Vec, boxed, never
    // moved or reallocated: the pyclass is frozen) and that nothing else references; `owner` is the
    // array's base, and `descr` is `T`'s type (matched by the caller).
    unsafe { array_over(py, descr, &shape, data, true, owner.into_any()) }
}

/// A decoded batch's memory, whatever its element type.
trait PixelBuffer: Send + Sync {
    fn data(&self) -> *const u8;
}

impl<T: Pixel> PixelBuffer for Vec<T> {
    fn data(&self) -> *const u8 {
        self.as_ptr().cast()
    }
}

/// A decoded batch that holds its memory-budget reservation until numpy lets go of it.
#[pyclass(frozen, module = "ovms_rs._native")]
struct DecodedPixels {
    pixels: Box<dyn PixelBuffer>,
    _reservation: Reservation,
}
