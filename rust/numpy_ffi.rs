//! numpy, as the binding layer calls it, written once: the module (imported once), an array's data,
//! new C-contiguous arrays, and read-only views over request memory.

use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::dtype::DType;

/// The `numpy` module, imported on first use.
pub fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NUMPY: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    Ok(NUMPY
        .get_or_try_init(py, || py.import("numpy").map(Bound::unbind))?
        .bind(py))
}

/// The address of an array's first element.
pub fn data_ptr(array: &Bound<'_, PyUntypedArray>) -> *mut u8 {
    // SAFETY: `as_array_ptr` points at the live PyArrayObject behind `array`.
    unsafe { (*array.as_array_ptr()).fields.data.cast() }
}

/// The bytes of a C-contiguous array whose dtype has `itemsize` (the caller has its descriptor
/// already); None for an array that is not C-contiguous. Valid while `array` is: the caller must not
/// let Python write or resize the array meanwhile (the binding layer only reads arrays handed to it,
/// during the call).
pub fn contiguous_bytes<'a>(
    array: &'a Bound<'_, PyUntypedArray>,
    itemsize: usize,
) -> Option<&'a [u8]> {
    if !array.is_c_contiguous() {
        return None;
    }
    let nbytes = array.len() * itemsize;
    if nbytes == 0 {
        return Some(&[]);
    }
    // SAFETY: the array is C-contiguous with `len * itemsize` bytes at `data`, and the borrow of
    // `array` keeps it alive (and its buffer unmoved) for 'a. u8 has no alignment requirement.
    Some(unsafe { std::slice::from_raw_parts(data_ptr(array), nbytes) })
}

/// An uninitialised C-contiguous array of `descr` and `shape` (the caller writes every byte before
/// handing it to Python).
pub fn new_c_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY: PyArray_NewFromDescr steals a reference to the descriptor, which `into_dtype_ptr` hands
    // over; `dims` has `shape.len()` entries; null strides and data ask numpy for a fresh C-contiguous
    // buffer.
    unsafe {
        let ptr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.clone().into_dtype_ptr(),
            dims.len() as std::os::raw::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into::<PyUntypedArray>()?)
    }
}

/// The numpy descriptor of a wire dtype, from numpy's table of built-in types (no string parsing).
/// The wire's values are little-endian, as these native descriptors are on every target we build for.
pub fn descr(py: Python<'_>, dtype: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    use DType::*;
    Ok(match dtype {
        Float => numpy::dtype::<f32>(py),
        Double => numpy::dtype::<f64>(py),
        Int32 => numpy::dtype::<i32>(py),
        UInt8 => numpy::dtype::<u8>(py),
        Int16 => numpy::dtype::<i16>(py),
        Int8 => numpy::dtype::<i8>(py),
        Int64 => numpy::dtype::<i64>(py),
        Bool => numpy::dtype::<bool>(py),
        BFloat16 | UInt16 => numpy::dtype::<u16>(py),
        UInt32 => numpy::dtype::<u32>(py),
        UInt64 => numpy::dtype::<u64>(py),
        Half | String => PyArrayDescr::new(py, dtype.numpy())?,
    })
}

/// A read-only C-contiguous array of `descr` and `shape` over `data`, with `owner` as its base: one
/// `PyArray_NewFromDescr` and one `PyArray_SetBaseObject` (what `numpy.frombuffer`, setting the flags
/// and `reshape` took four Python calls for). No WRITEABLE flag is passed; numpy sets ALIGNED only when
/// `data` is aligned and reads unaligned data correctly otherwise. numpy refusing the shape (more than
/// its 64 dimensions) is the error returned.
///
/// # Safety
/// `data` must be valid for reads of the shape's element count times the descriptor's itemsize for as
/// long as `owner` lives, and must not be written or moved meanwhile.
pub unsafe fn borrowed_view<'py>(
    py: Python<'py>,
    descr: Bound<'py, PyArrayDescr>,
    shape: &[usize],
    data: *const u8,
    owner: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY (the caller's for `data`): PyArray_NewFromDescr steals the descriptor's reference and
    // wraps `data` without copying (flags 0: read-only); PyArray_SetBaseObject steals the reference to
    // `owner` it is given (also when it fails), and from then on the array keeps `owner` alive.
    let ptr = PY_ARRAY_API.PyArray_NewFromDescr(
        py,
        npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
        descr.into_dtype_ptr(),
        dims.len() as std::os::raw::c_int,
        dims.as_mut_ptr(),
        std::ptr::null_mut(),
        data as *mut std::os::raw::c_void,
        0,
        std::ptr::null_mut(),
    );
    let array = Bound::from_owned_ptr_or_err(py, ptr)?;
    if PY_ARRAY_API.PyArray_SetBaseObject(py, ptr.cast(), owner.clone().into_ptr()) < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(array.cast_into_unchecked())
}
