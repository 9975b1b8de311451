//! Request bodies handed to Python, and replies handed back to the transport without a copy.
//!
//! The ownership rule for request memory, decided here once: a request's bytes belong to that request
//! alone, nothing writes them, and the model may read its tensors in place (OpenVINO only reads its
//! inputs; numpy views over them are flagged read-only, `models/inference.py` aliases them writable
//! for OpenVINO alone). A message HTTP/2 delivered in one piece (one DATA frame: what clients that
//! honour the server's 1 MiB frame size send for a 602 KB request) is handed over as it lies in the
//! transport's receive buffer (`RequestBody`, no copy); one in several pieces is gathered once into a
//! new `bytearray`.
//!
//! What the parser makes from a request keeps it alive through `RequestPins`: tensor views have it as
//! their numpy base, binary inputs (`RequestStrings`) hold it. A `bytearray` is pinned through a
//! `memoryview` of it, a buffer export that makes any resize raise `BufferError` while a view lives
//! (the transport's bytearray is never resized; a caller's own one cannot be either, then).

use bytes::Bytes;
use numpy::ndarray::ArrayView1;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};

/// Bodies larger than this are copied with the interpreter released.
pub const DETACH_BYTES: usize = 256 * 1024;

/// The chunks, back to back, as a new `bytearray` (so the model may read its tensors in place rather
/// than copy them), in memory that is not zeroed first (`PyByteArray::new_with` would memset it).
/// Each chunk is dropped once copied, so a large body is held about once, not twice, while it moves.
pub fn bytearray_from_chunks<'py>(
    py: Python<'py>,
    chunks: Vec<Bytes>,
    len: usize,
) -> PyResult<Bound<'py, PyByteArray>> {
    assert_eq!(
        chunks.iter().map(Bytes::len).sum::<usize>(),
        len,
        "chunks add up to the length"
    );
    let size = isize::try_from(len).expect("a body length fits in isize");
    // SAFETY: with a NULL source, PyByteArray_FromStringAndSize returns a new bytearray of `len`
    // uninitialised bytes (or NULL with an exception set); nothing reads them before `gather` has
    // written all `len` of them (the chunks add up to exactly `len`, asserted above).
    unsafe {
        let object = pyo3::ffi::PyByteArray_FromStringAndSize(std::ptr::null(), size);
        let bytes = Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked::<PyByteArray>();
        let out = SendPtr(pyo3::ffi::PyByteArray_AsString(object).cast::<u8>());
        crate::detach::detach_above(py, len, DETACH_BYTES, move || gather(chunks, out));
        Ok(bytes)
    }
}

/// The start of a buffer, written from a thread without the interpreter.
#[derive(Clone, Copy)]
struct SendPtr(*mut u8);
// SAFETY: the buffer is only written by the one thread that `gather` runs on, while the owning object
// is alive and not yet visible to any other code.
unsafe impl Send for SendPtr {}

/// Copies the chunks back to back to `out`, freeing each as it goes.
///
/// # Safety
/// `out` must be valid for writes of the chunks' total length.
unsafe fn gather(chunks: Vec<Bytes>, out: SendPtr) {
    let mut at = 0;
    for chunk in chunks {
        std::ptr::copy_nonoverlapping(chunk.as_ptr(), out.0.add(at), chunk.len());
        at += chunk.len();
    }
}

/// A request message received in one piece, shared with Python where the transport received it.
///
/// `numpy_view()` is a uint8 array over it whose base is this object, the base of its tensors' views
/// (so it lives as long as any of them); `bytes(body)` is a copy, for the cold paths that parse with
/// protobuf.
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct RequestBody {
    bytes: Bytes,
}

impl RequestBody {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// A uint8 array over the whole body with `body` as its base, the base of its tensors' views.
    /// Writable as numpy sees it, as a request's own `bytearray` is: see the module's ownership rule
    /// (the parser flags every tensor view read-only).
    pub fn numpy_view<'py>(body: &Bound<'py, RequestBody>) -> Bound<'py, PyAny> {
        let data = ArrayView1::from(body.get().as_slice());
        // SAFETY: the array's memory is `body`'s `Bytes`, which neither moves nor is freed while
        // `body` lives, and `body` is the array's base object. Nothing writes it (module docs): the
        // region belongs to this message alone (HTTP/2 split the frame out of its receive buffer).
        unsafe { PyArray1::<u8>::borrow_from_array(&data, body.clone().into_any()) }.into_any()
    }
}

#[pymethods]
impl RequestBody {
    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }
}

/// The objects that keep one request's memory alive and unmoved for what is made of it, each made on
/// first need (a request of binary inputs only never makes the array base).
pub struct RequestPins<'py> {
    request: Bound<'py, PyAny>,
    pin: Option<Bound<'py, PyAny>>,
    array_base: Option<Bound<'py, PyAny>>,
}

impl<'py> RequestPins<'py> {
    pub fn new(request: &Bound<'py, PyAny>) -> Self {
        RequestPins {
            request: request.clone(),
            pin: None,
            array_base: None,
        }
    }

    /// The request itself, or a `memoryview` of a `bytearray` (an export: it cannot be resized while
    /// this lives).
    pub fn pin(&mut self) -> PyResult<&Bound<'py, PyAny>> {
        if self.pin.is_none() {
            let pin = if self.request.is_instance_of::<PyByteArray>() {
                PyMemoryView::from(&self.request)?.into_any()
            } else {
                self.request.clone()
            };
            self.pin = Some(pin);
        }
        Ok(self.pin.as_ref().expect("set above"))
    }

    /// The base object for numpy views of the request's tensors: the pin, or for a `RequestBody` a
    /// writable uint8 array over it (numpy lets `models/inference.py` alias a view writable only when
    /// its base is writable: a bytearray's memoryview is, `bytes` is not).
    pub fn array_base(&mut self) -> PyResult<Bound<'py, PyAny>> {
        if self.array_base.is_none() {
            let base = match self.request.cast::<RequestBody>() {
                Ok(body) => RequestBody::numpy_view(body),
                Err(_) => self.pin()?.clone(),
            };
            self.array_base = Some(base);
        }
        Ok(self.array_base.clone().expect("set above"))
    }
}

/// The request as the handler gets it: the single chunk itself (`RequestBody`), or the chunks
/// gathered into a new `bytearray`.
pub fn request_object<'py>(
    py: Python<'py>,
    mut chunks: Vec<Bytes>,
    len: usize,
) -> PyResult<Bound<'py, PyAny>> {
    if chunks.len() == 1 {
        return request_body(py, chunks.pop().expect("one chunk"));
    }
    Ok(bytearray_from_chunks(py, chunks, len)?.into_any())
}

/// A request received into one buffer, handed over as it lies there (`RequestBody`, no copy).
pub fn request_body(py: Python<'_>, bytes: Bytes) -> PyResult<Bound<'_, PyAny>> {
    Ok(Bound::new(py, RequestBody { bytes })?.into_any())
}

/// A Python `bytes` object as the transport's `Bytes`, without copying it.
pub fn bytes_of(reply: Bound<'_, PyBytes>) -> Bytes {
    let data = reply.as_bytes();
    let (ptr, len) = (data.as_ptr(), data.len());
    Bytes::from_owner(PyBytesOwner {
        _object: reply.unbind(),
        ptr,
        len,
    })
}

/// Keeps the bytes object alive (its reference is dropped later, under the interpreter lock, by
/// PyO3's pending-decref pool) while the transport sends its buffer.
struct PyBytesOwner {
    _object: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the buffer belongs to an immutable bytes object kept alive by `_object`; reading it from any
// thread needs no interpreter lock.
unsafe impl Send for PyBytesOwner {}
unsafe impl Sync for PyBytesOwner {}

impl AsRef<[u8]> for PyBytesOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the Send/Sync impls: `ptr..ptr+len` is the live, unmoving buffer of `_object`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
