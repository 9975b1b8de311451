//! PredictResponse building: numpy outputs -> the serialized reply, with one copy of each output's data
//! (straight into the reply's `bytes` object, which is not zeroed first).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};

use crate::dtype::DType;
use crate::error::Error;
use crate::predict::wire::{
    len_field_size, put_key, put_len_field, put_varint, varint_len, RawSink, Sink, VARINT,
};

/// Replies larger than this are written with the interpreter released.
const DETACH_BYTES: usize = 256 * 1024;

/// An output ready to be written: everything but the data is small and owned.
pub(crate) struct Output<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

/// Raw views of numpy outputs (C-contiguous numeric arrays), valid while `outputs` lives.
pub(crate) fn output_views<'a, 'py>(
    outputs: &'a [(String, Bound<'py, PyUntypedArray>)],
) -> PyResult<Vec<Output<'a>>> {
    let mut views = Vec::with_capacity(outputs.len());
    for (name, array) in outputs {
        let descr = array.dtype();
        let dtype = DType::from_numpy(descr.kind(), descr.itemsize())
            .ok_or_else(|| Error::OutputPrecision { name: name.clone() })?;
        if !array.is_c_contiguous() {
            return Err(Error::OutputNotContiguous { name: name.clone() }.into());
        }
        let nbytes = array.len() * descr.itemsize();
        // SAFETY: the array is C-contiguous with `len * itemsize` bytes at `data`, and `outputs` keeps it
        // alive (and its buffer unmoved) for as long as the views are used. u8 has no alignment
        // requirement.
        let data = unsafe {
            let ptr = (*array.as_array_ptr()).fields.data as *const u8;
            if nbytes == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(ptr, nbytes)
            }
        };
        views.push(Output {
            name: name.clone(),
            dtype,
            shape: array.shape().to_vec(),
            data,
        });
    }
    Ok(views)
}

fn shape_size(shape: &[usize]) -> usize {
    // TensorShapeProto { repeated Dim dim = 2; }  Dim { int64 size = 1; }
    shape
        .iter()
        .map(|&d| len_field_size(1 + varint_len(d as u64)))
        .sum()
}

fn tensor_size(o: &Output<'_>) -> usize {
    let dtype = 1 + varint_len(o.dtype as u64);
    let shape = len_field_size(shape_size(&o.shape));
    let content = if o.data.is_empty() {
        0
    } else {
        len_field_size(o.data.len())
    };
    dtype + shape + content
}

fn entry_size(o: &Output<'_>) -> usize {
    len_field_size(o.name.len()) + len_field_size(tensor_size(o))
}

fn model_spec(name: &str, version: i64) -> Vec<u8> {
    let mut spec = Vec::new();
    put_len_field(&mut spec, 1, name.as_bytes());
    let mut v = Vec::new();
    put_key(&mut v, 1, VARINT);
    put_varint(&mut v, version as u64);
    put_len_field(&mut spec, 2, &v);
    spec
}

/// Writes PredictResponse { map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2; }.
fn write_response(out: &mut impl Sink, outputs: &[Output<'_>], spec: &[u8]) {
    for o in outputs {
        put_key(out, 1, 2);
        put_varint(out, entry_size(o) as u64);
        put_len_field(out, 1, o.name.as_bytes());
        put_key(out, 2, 2);
        put_varint(out, tensor_size(o) as u64);
        put_key(out, 1, VARINT);
        put_varint(out, o.dtype as u64);
        put_key(out, 2, 2);
        put_varint(out, shape_size(&o.shape) as u64);
        for &d in &o.shape {
            put_key(out, 2, 2);
            put_varint(out, (1 + varint_len(d as u64)) as u64);
            put_key(out, 1, VARINT);
            put_varint(out, d as u64);
        }
        if !o.data.is_empty() {
            put_len_field(out, 4, o.data);
        }
    }
    put_len_field(out, 2, spec);
}

fn response_size(outputs: &[Output<'_>], spec: &[u8]) -> usize {
    outputs
        .iter()
        .map(|o| len_field_size(entry_size(o)))
        .sum::<usize>()
        + len_field_size(spec.len())
}

/// build_predict_response(model_name, version, outputs: list[(name, ndarray)]) -> bytes
///
/// Arrays must be C-contiguous numeric arrays; they are only read, while this call runs.
#[pyfunction]
pub fn build_predict_response<'py>(
    py: Python<'py>,
    model_name: &str,
    version: i64,
    outputs: Vec<(String, Bound<'py, PyUntypedArray>)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let views = output_views(&outputs)?;
    let spec = model_spec(model_name, version);
    let size = response_size(&views, &spec);
    let len = isize::try_from(size).map_err(|_| Error::ReplyTooLarge)?;
    // SAFETY: with a NULL source, PyBytes_FromStringAndSize returns a new bytes object of `len`
    // uninitialised bytes (or NULL with an exception set), visible to no other code until returned; the
    // sink writes all `size` of them (checked) before that. `PyBytes::new_with` would zero them first.
    unsafe {
        let object = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), len);
        let bytes = Bound::from_owned_ptr_or_err(py, object)?.cast_into_unchecked::<PyBytes>();
        let sink = RawSink::new(pyo3::ffi::PyBytes_AsString(object).cast::<u8>(), size);
        let write = move || {
            let mut sink = sink;
            write_response(&mut sink, &views, &spec);
            sink.written()
        };
        let written = if size > DETACH_BYTES {
            py.detach(write)
        } else {
            write()
        };
        assert_eq!(written, size, "PredictResponse size miscomputed");
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::wire::{Reader, Value};

    #[test]
    fn size_matches_what_is_written() {
        let data = vec![7u8; 4000];
        let outs = vec![Output {
            name: "prob".into(),
            dtype: DType::Float,
            shape: vec![1, 1000],
            data: &data,
        }];
        let spec = model_spec("efficientnet-lite0", 1);
        let mut buf = Vec::new();
        write_response(&mut buf, &outs, &spec);
        assert_eq!(buf.len(), response_size(&outs, &spec));
        // Walk it back: one outputs entry then the spec.
        let mut r = Reader::new(&buf);
        let (f, v) = r.field().unwrap().unwrap();
        assert_eq!(f, 1);
        assert!(matches!(v, Value::Bytes(b, _) if b.len() == entry_size(&outs[0])));
        let (f, _) = r.field().unwrap().unwrap();
        assert_eq!(f, 2);
        assert!(r.at_end());
    }
}
