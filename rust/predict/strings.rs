//! `RequestStrings`: the `string_val` entries of one input (binary inputs: encoded images) as spans of
//! the request they came in, so that `decode_images` reads them where they lie and no `bytes` is made
//! per entry. The REST codec's entries (decoded from `b64`) are owned here instead.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList};

use super::request::request_buffer;

enum Entries {
    /// (offset, len) into `body` (the object the parser read); `_pin` keeps it alive and unmoved (a
    /// `bytearray`'s memoryview: see `py_buffer::RequestPins`).
    Spans {
        body: Py<PyAny>,
        _pin: Py<PyAny>,
        spans: Vec<(usize, usize)>,
    },
    Owned(Vec<Vec<u8>>),
}

/// The entries of a DT_STRING input: `len()`, `has_empty`, and (for cold users) indexing and
/// iteration, each entry a new `bytes`.
#[pyclass(frozen, module = "ovms_rs._native")]
pub struct RequestStrings {
    entries: Entries,
}

impl RequestStrings {
    /// Spans of `body`, which `pin` keeps in place (the parser's spans: each lies inside `body`).
    pub fn spans(
        body: &Bound<'_, PyAny>,
        pin: &Bound<'_, PyAny>,
        spans: Vec<(usize, usize)>,
    ) -> Self {
        RequestStrings {
            entries: Entries::Spans {
                body: body.clone().unbind(),
                _pin: pin.clone().unbind(),
                spans,
            },
        }
    }

    pub fn owned(items: Vec<Vec<u8>>) -> Self {
        RequestStrings {
            entries: Entries::Owned(items),
        }
    }

    /// Every entry where it lies (valid while `self` is: its pin forbids moving the request).
    pub fn slices<'a>(&'a self, py: Python<'a>) -> PyResult<Vec<&'a [u8]>> {
        Ok(match &self.entries {
            Entries::Spans { body, spans, .. } => {
                let buf = request_buffer(body.bind(py))?;
                spans.iter().map(|&(at, len)| &buf[at..at + len]).collect()
            }
            Entries::Owned(items) => items.iter().map(Vec::as_slice).collect(),
        })
    }

    fn entry<'a>(&'a self, py: Python<'a>, at: usize) -> PyResult<&'a [u8]> {
        Ok(match &self.entries {
            Entries::Spans { body, spans, .. } => {
                let (start, len) = spans[at];
                &request_buffer(body.bind(py))?[start..start + len]
            }
            Entries::Owned(items) => &items[at],
        })
    }

    fn len(&self) -> usize {
        match &self.entries {
            Entries::Spans { spans, .. } => spans.len(),
            Entries::Owned(items) => items.len(),
        }
    }
}

#[pymethods]
impl RequestStrings {
    fn __len__(&self) -> usize {
        self.len()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyBytes>> {
        let len = self.len() as isize;
        let at = if index < 0 { index + len } else { index };
        if !(0..len).contains(&at) {
            return Err(PyIndexError::new_err("RequestStrings index out of range"));
        }
        Ok(PyBytes::new(py, self.entry(py, at as usize)?))
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        let items = self.slices(py)?.into_iter().map(|s| PyBytes::new(py, s));
        PyList::new(py, items)?.try_iter()
    }

    /// Whether any entry is empty (OVMS refuses such a binary input before decoding any of it).
    #[getter]
    fn has_empty(&self) -> bool {
        match &self.entries {
            Entries::Spans { spans, .. } => spans.iter().any(|&(_, len)| len == 0),
            Entries::Owned(items) => items.iter().any(Vec::is_empty),
        }
    }
}
