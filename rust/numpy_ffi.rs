//! numpy, as the binding layer calls it, written once: the module (imported once), an array's data,
//! new C-contiguous arrays, arrays over memory another object owns, and the descriptor of a dtype.

use numpy::npyffi::{self, npy_intp, NPY_TYPES, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};

use crate::dtype::DType;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

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

/// numpy's descriptor of a served dtype (bfloat16 as its raw 16-bit pattern, as `DType::numpy` says),
/// from numpy's table of builtin descriptors (no string to parse).
pub fn descr_of(py: Python<'_>, dtype: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    use numpy::dtype as of;
    Ok(match dtype {
        DType::Float => of::<f32>(py),
        DType::Double => of::<f64>(py),
        DType::Int32 => of::<i32>(py),
        DType::UInt8 => of::<u8>(py),
        DType::Int16 => of::<i16>(py),
        DType::Int8 => of::<i8>(py),
        DType::Int64 => of::<i64>(py),
        DType::Bool => of::<bool>(py),
        DType::BFloat16 | DType::UInt16 => of::<u16>(py),
        DType::UInt32 => of::<u32>(py),
        DType::UInt64 => of::<u64>(py),
        // SAFETY: PyArray_DescrFromType returns a new reference to a builtin descriptor (or NULL with
        // an exception set).
        DType::Half => unsafe {
            let ptr = PY_ARRAY_API.PyArray_DescrFromType(py, NPY_TYPES::NPY_HALF as _);
            Bound::from_owned_ptr_or_err(py, ptr.cast())?.cast_into_unchecked()
        },
        DType::String => {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "strings have no array",
            ))
        }
    })
}

/// A C-contiguous array of `descr` and `shape` over `data`, whose memory `base` keeps alive (numpy
/// holds `base` as the array's base object): one C call, no copy. Read-only unless `writeable`;
/// numpy sets ALIGNED itself from the address (an unaligned view is read element by element).
///
/// # Safety
/// `data` must point to `shape`'s product times the itemsize of readable bytes (writable ones if
/// `writeable`), which stay valid and unmoved for as long as `base` lives, and which nothing writes
/// meanwhile unless the array is writable and that is the array's own memory.
pub unsafe fn array_over<'py>(
    py: Python<'py>,
    descr: Bound<'py, PyArrayDescr>,
    shape: &[usize],
    data: *const u8,
    writeable: bool,
    base: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    let mut flags = npyffi::NPY_ARRAY_C_CONTIGUOUS;
    if writeable {
        flags |= npyffi::NPY_ARRAY_WRITEABLE;
    }
    // SAFETY: the descriptor's reference is stolen (handed over by `into_dtype_ptr`); `dims` has
    // `shape.len()` entries; with a data pointer numpy uses `flags` (contiguity filled in from the
    // null strides, ALIGNED computed from the address) and never frees the memory. SetBaseObject
    // steals the reference to `base`, also when it fails; the caller's contract keeps the memory valid
    // for as long as the base lives.
    unsafe {
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.into_dtype_ptr(),
            dims.len() as std::os::raw::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data as *mut std::os::raw::c_void,
            flags,
            std::ptr::null_mut(),
        );
        let array = Bound::from_owned_ptr_or_err(py, array)?;
        if PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_ptr().cast(), base.into_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(array.cast_into_unchecked::<PyUntypedArray>())
    }
}
