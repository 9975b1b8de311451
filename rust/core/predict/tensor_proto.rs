//! PredictRequest parsing, in plain Rust: request bytes -> model spec + each input tensor located
//! (`tensor_content` as an offset into the request) or decoded (typed `*_val` fields). Sizes are
//! checked against the declared shape before anything is allocated, so a shape that claims 2^40
//! elements costs nothing. `request.rs` turns the result into Python objects.

use crate::dtype::{DType, ValField};
use crate::error::{Error, Result};
use crate::predict::fields::{
    dim, int64_value, map_entry, model_spec, predict_request, tensor, tensor_shape,
};
use crate::predict::wire::{for_each_fixed, for_each_varint, utf8, Reader, Value};

/// A PredictRequest as field views into the request bytes.
#[derive(Default)]
pub struct PredictRequest<'a> {
    pub model_name: &'a str,
    /// 0 when absent: "the default version", as OVMS and ovmsclient treat it.
    pub version: i64,
    /// `model_spec.version_label`; `version` and it are a oneof: the last one on the wire wins.
    pub version_label: Option<&'a str>,
    pub inputs: Vec<(&'a str, TensorView<'a>)>,
    pub output_filter: Vec<&'a str>,
}

/// One TensorProto, undecoded.
#[derive(Default)]
pub struct TensorView<'a> {
    pub dtype: u64,
    pub shape: Vec<i64>,
    /// `tensor_content` as (offset into the request, length).
    pub content: (usize, usize),
    /// Every typed `*_val` occurrence: (field number, value).
    pub vals: Vec<(u32, Value<'a>)>,
}

/// What an input tensor became, before it meets Python.
pub enum Decoded {
    /// `tensor_content` at (offset, element count): a zero-copy view.
    View {
        offset: usize,
        count: usize,
    },
    Floats(Vec<f32>),
    Doubles(Vec<f64>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bools(Vec<bool>),
    /// `string_val` entries as (offset, length) in the request.
    Strings(Vec<(usize, usize)>),
    /// Not decodable as declared: validation raises it in OVMS's order (a zero dimension first, the
    /// others after the shape checks).
    Invalid(Error),
    /// A dtype the server does not serve; the precision check reports it.
    Unsupported,
}

pub fn parse_request(buf: &[u8]) -> Result<PredictRequest<'_>> {
    let mut req = PredictRequest::default();
    let mut r = Reader::new(buf);
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (predict_request::MODEL_SPEC, Value::Bytes(b, off)) => {
                parse_model_spec(r.nested(off, b.len()), &mut req)?
            }
            (predict_request::INPUTS, Value::Bytes(b, off)) => {
                let (name, tensor) = parse_input_entry(r.nested(off, b.len()))?;
                // A map: a repeated key replaces the earlier entry, as protobuf parsers do.
                req.inputs.retain(|(n, _)| *n != name);
                req.inputs.push((name, tensor));
            }
            (predict_request::OUTPUT_FILTER, Value::Bytes(b, _)) => {
                req.output_filter.push(utf8(b, "output_filter")?)
            }
            (
                predict_request::MODEL_SPEC
                | predict_request::INPUTS
                | predict_request::OUTPUT_FILTER,
                _,
            ) => {
                return Err(Error::malformed(format!(
                    "field {field} has the wrong wire type"
                )))
            }
            _ => {} // unknown fields are skipped, as protobuf does
        }
    }
    Ok(req)
}

fn parse_model_spec<'a>(mut r: Reader<'a>, req: &mut PredictRequest<'a>) -> Result<()> {
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (model_spec::NAME, Value::Bytes(b, _)) => req.model_name = utf8(b, "model name")?,
            (model_spec::VERSION, Value::Bytes(b, _)) => {
                let mut w = Reader::new(b);
                req.version = 0;
                while let Some((f, v)) = w.field()? {
                    if let (int64_value::VALUE, Value::Varint(x)) = (f, v) {
                        req.version = x as i64;
                    }
                }
                req.version_label = None;
            }
            (model_spec::VERSION_LABEL, Value::Bytes(b, _)) => {
                req.version_label = Some(utf8(b, "version label")?);
                req.version = 0;
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_input_entry(mut r: Reader<'_>) -> Result<(&str, TensorView<'_>)> {
    let mut name = "";
    let mut tensor = TensorView::default();
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (map_entry::KEY, Value::Bytes(b, _)) => name = utf8(b, "input name")?,
            (map_entry::VALUE, Value::Bytes(b, off)) => {
                tensor = parse_tensor(r.nested(off, b.len()))?
            }
            _ => {}
        }
    }
    Ok((name, tensor))
}

fn parse_tensor(mut r: Reader<'_>) -> Result<TensorView<'_>> {
    let mut t = TensorView::default();
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (tensor::DTYPE, Value::Varint(v)) => t.dtype = v,
            (tensor::TENSOR_SHAPE, Value::Bytes(b, off)) => {
                t.shape = parse_shape(r.nested(off, b.len()))?
            }
            (tensor::TENSOR_CONTENT, Value::Bytes(b, off)) => t.content = (off, b.len()),
            (
                tensor::FLOAT_VAL
                | tensor::DOUBLE_VAL
                | tensor::INT_VAL
                | tensor::STRING_VAL
                | tensor::INT64_VAL
                | tensor::BOOL_VAL
                | tensor::HALF_VAL
                | tensor::UINT32_VAL
                | tensor::UINT64_VAL,
                v,
            ) => t.vals.push((field, v)),
            _ => {}
        }
    }
    Ok(t)
}

fn parse_shape(mut r: Reader<'_>) -> Result<Vec<i64>> {
    let mut dims = Vec::new();
    while let Some((field, value)) = r.field()? {
        match (field, value) {
            (tensor_shape::DIM, Value::Bytes(b, _)) => {
                let mut size = 0i64;
                let mut d = Reader::new(b);
                while let Some((f, v)) = d.field()? {
                    if let (dim::SIZE, Value::Varint(x)) = (f, v) {
                        size = x as i64;
                    }
                }
                dims.push(size);
            }
            (tensor_shape::UNKNOWN_RANK, _) => {}
            _ => {}
        }
    }
    Ok(dims)
}

/// OVMS's first check of an input's shape: no zero or negative dimension (for every dtype, and for
/// both APIs: `RequestInput::new` asks too). Such a shape is never decoded: numpy refuses a zero
/// dimension beside huge ones, even empty.
pub fn zero_dimension<D: Copy + TryInto<i64>>(name: &str, shape: &[D]) -> Option<Error> {
    let dim = |d: D| d.try_into().unwrap_or(i64::MAX);
    shape
        .iter()
        .any(|&d| dim(d) <= 0)
        .then(|| Error::ZeroDimension {
            name: name.to_string(),
            shape: shape.iter().map(|&d| dim(d)).collect(),
        })
}

fn val_field_number(f: ValField) -> u32 {
    match f {
        ValField::Float => tensor::FLOAT_VAL,
        ValField::Double => tensor::DOUBLE_VAL,
        ValField::Int => tensor::INT_VAL,
        ValField::String => tensor::STRING_VAL,
        ValField::Int64 => tensor::INT64_VAL,
        ValField::Bool => tensor::BOOL_VAL,
        ValField::Half => tensor::HALF_VAL,
        ValField::UInt32 => tensor::UINT32_VAL,
        ValField::UInt64 => tensor::UINT64_VAL,
    }
}

impl TensorView<'_> {
    /// Number of elements the shape declares; None when a dim is negative or the byte size of the tensor
    /// would not fit in an isize (numpy's limit).
    fn element_count(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| {
                usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
            })
            .filter(|&n| n <= isize::MAX as usize / 8)
    }

    /// Checks sizes against the shape, then decodes (or locates) the values.
    pub fn decode(&self, name: &str) -> Decoded {
        if let Some(error) = zero_dimension(name, &self.shape) {
            return Decoded::Invalid(error);
        }
        let Some(dtype) = DType::from_wire(self.dtype) else {
            return Decoded::Unsupported;
        };
        let field = val_field_number(dtype.val_field());
        if dtype == DType::String {
            let mut strings = Vec::new();
            for (f, v) in &self.vals {
                if let (tensor::STRING_VAL, Value::Bytes(b, off)) = (*f, v) {
                    strings.push((*off, b.len()));
                }
            }
            return Decoded::Strings(strings);
        }
        let Some(count) = self
            .element_count()
            .filter(|c| c.checked_mul(dtype.size()).is_some())
        else {
            return Decoded::Invalid(Error::ShapeOverflow {
                name: name.to_string(),
                shape: self.shape.clone(),
            });
        };
        let expected_bytes = count * dtype.size();
        let (offset, len) = self.content;
        let typed: Vec<&Value<'_>> = self
            .vals
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| v)
            .collect();
        if len > 0 || typed.is_empty() {
            if len != expected_bytes {
                return Decoded::Invalid(Error::ContentSize {
                    name: name.to_string(),
                    expected: expected_bytes,
                    actual: len,
                });
            }
            return Decoded::View { offset, count };
        }
        // One packed run of float_val / double_val is laid out exactly like tensor_content: view it too.
        if let ([Value::Bytes(b, off)], ValField::Float | ValField::Double) =
            (typed.as_slice(), dtype.val_field())
        {
            if b.len() == expected_bytes {
                return Decoded::View {
                    offset: *off,
                    count,
                };
            }
        }
        match decode_typed(dtype, &typed, count) {
            Ok(Some(d)) => d,
            Ok(None) => Decoded::Invalid(Error::ValueCount {
                name: name.to_string(),
                expected: count,
                actual: count_typed(dtype, &typed),
            }),
            Err(e) => Decoded::Invalid(e),
        }
    }
}

/// Number of values in typed fields, without decoding them: a packed run of fixed-width values is
/// len / width; a packed run of varints has one terminating byte (high bit clear) per value.
fn count_typed(dtype: DType, vals: &[&Value<'_>]) -> usize {
    let width = match dtype.val_field() {
        ValField::Float => Some(4),
        ValField::Double => Some(8),
        _ => None,
    };
    vals.iter()
        .map(|v| match (v, width) {
            (Value::Bytes(b, _), Some(w)) => b.len() / w,
            (Value::Bytes(b, _), None) => b.iter().filter(|&&byte| byte & 0x80 == 0).count(),
            _ => 1,
        })
        .sum()
}

/// Decodes fixed-width little-endian values; packed runs take a straight copy loop.
fn fixed_values<T, const N: usize>(
    vals: &[&Value<'_>],
    count: usize,
    conv: impl Fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(count);
    for v in vals {
        match v {
            Value::Bytes(b, _) if b.len() % N == 0 => out.extend(
                b.chunks_exact(N)
                    .map(|c| conv(c.try_into().expect("chunk of N bytes"))),
            ),
            other => for_each_fixed::<N>(other, |b| out.push(conv(b)))?,
        }
    }
    Ok(out)
}

/// Decodes typed values; Ok(None) when their number is not `count` (checked before allocating).
fn decode_typed(dtype: DType, vals: &[&Value<'_>], count: usize) -> Result<Option<Decoded>> {
    if count_typed(dtype, vals) != count {
        return Ok(None);
    }
    fn varints<T>(vals: &[&Value<'_>], count: usize, conv: impl Fn(u64) -> T) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(count);
        for v in vals {
            for_each_varint(v, |x| out.push(conv(x)))?;
        }
        Ok(out)
    }
    // Narrowing casts follow TensorFlow: int_val holds int32 values that are truncated to the dtype.
    let d = match dtype {
        DType::Float => Decoded::Floats(fixed_values(vals, count, f32::from_le_bytes)?),
        DType::Double => Decoded::Doubles(fixed_values(vals, count, f64::from_le_bytes)?),
        DType::Int32 => Decoded::I32(varints(vals, count, |x| x as i32)?),
        DType::Int16 => Decoded::I16(varints(vals, count, |x| x as i16)?),
        DType::Int8 => Decoded::I8(varints(vals, count, |x| x as i8)?),
        DType::UInt8 => Decoded::U8(varints(vals, count, |x| x as u8)?),
        DType::UInt16 | DType::Half | DType::BFloat16 => {
            Decoded::U16(varints(vals, count, |x| x as u16)?)
        }
        DType::Int64 => Decoded::I64(varints(vals, count, |x| x as i64)?),
        DType::UInt32 => Decoded::U32(varints(vals, count, |x| x as u32)?),
        DType::UInt64 => Decoded::U64(varints(vals, count, |x| x)?),
        DType::Bool => Decoded::Bools(varints(vals, count, |x| x != 0)?),
        DType::String => unreachable!("strings are handled before typed decoding"),
    };
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::wire::{put_key, put_len_field, put_varint, FIXED32, VARINT};

    fn tensor(dtype: u64, shape: &[i64], extra: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut t = Vec::new();
        put_key(&mut t, tensor::DTYPE, VARINT);
        put_varint(&mut t, dtype);
        let mut s = Vec::new();
        for &d in shape {
            let mut size = Vec::new();
            put_key(&mut size, dim::SIZE, VARINT);
            put_varint(&mut size, d as u64);
            put_len_field(&mut s, tensor_shape::DIM, &size);
        }
        put_len_field(&mut t, tensor::TENSOR_SHAPE, &s);
        extra(&mut t);
        t
    }

    fn request(name: &str, input: &str, t: &[u8]) -> Vec<u8> {
        let mut spec = Vec::new();
        put_len_field(&mut spec, model_spec::NAME, name.as_bytes());
        let mut ver = Vec::new();
        put_key(&mut ver, int64_value::VALUE, VARINT);
        put_varint(&mut ver, 3);
        put_len_field(&mut spec, model_spec::VERSION, &ver);
        let mut entry = Vec::new();
        put_len_field(&mut entry, map_entry::KEY, input.as_bytes());
        put_len_field(&mut entry, map_entry::VALUE, t);
        let mut req = Vec::new();
        put_len_field(&mut req, predict_request::MODEL_SPEC, &spec);
        put_len_field(&mut req, predict_request::INPUTS, &entry);
        put_len_field(&mut req, predict_request::OUTPUT_FILTER, b"prob");
        req
    }

    #[test]
    fn parses_spec_inputs_and_content_offsets() {
        let t = tensor(1, &[1, 2], |t| {
            put_len_field(t, tensor::TENSOR_CONTENT, &[0u8; 8])
        });
        let buf = request("m", "data", &t);
        let req = parse_request(&buf).unwrap();
        assert_eq!((req.model_name, req.version), ("m", 3));
        assert_eq!(req.output_filter, vec!["prob"]);
        let (name, view) = &req.inputs[0];
        assert_eq!(*name, "data");
        assert_eq!(view.shape, vec![1, 2]);
        match view.decode(name) {
            Decoded::View { offset, count } => {
                assert_eq!(count, 2);
                assert_eq!(&buf[offset..offset + 8], &[0u8; 8]);
            }
            _ => panic!("expected a view"),
        }
    }

    #[test]
    fn version_label_and_version_are_a_oneof() {
        let mut label = Vec::new();
        put_len_field(&mut label, model_spec::VERSION_LABEL, b"canary");
        let mut ver = Vec::new();
        put_key(&mut ver, int64_value::VALUE, VARINT);
        put_varint(&mut ver, 7);
        let mut version = Vec::new();
        put_len_field(&mut version, model_spec::VERSION, &ver);
        let spec = |parts: &[&[u8]]| {
            let mut spec = Vec::new();
            put_len_field(&mut spec, model_spec::NAME, b"m");
            for part in parts {
                spec.extend_from_slice(part);
            }
            let mut req = Vec::new();
            put_len_field(&mut req, predict_request::MODEL_SPEC, &spec);
            req
        };
        let buf = spec(&[&label]);
        let req = parse_request(&buf).unwrap();
        assert_eq!((req.version, req.version_label), (0, Some("canary")));
        let buf = spec(&[&version, &label]);
        let req = parse_request(&buf).unwrap();
        assert_eq!((req.version, req.version_label), (0, Some("canary")));
        let buf = spec(&[&label, &version]);
        let req = parse_request(&buf).unwrap();
        assert_eq!((req.version, req.version_label), (7, None));
        let buf = spec(&[&version]);
        assert_eq!(parse_request(&buf).unwrap().version_label, None);
        let mut bad = Vec::new();
        put_len_field(&mut bad, model_spec::VERSION_LABEL, &[0xff, 0xfe]);
        assert!(parse_request(&spec(&[&bad])).is_err());
    }

    #[test]
    fn content_size_mismatch_names_both_sizes() {
        let t = tensor(1, &[1, 3], |t| {
            put_len_field(t, tensor::TENSOR_CONTENT, &[0u8; 8])
        });
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        match req.inputs[0].1.decode("x") {
            Decoded::Invalid(e) => assert_eq!(
                e,
                Error::ContentSize {
                    name: "x".into(),
                    expected: 12,
                    actual: 8
                }
            ),
            _ => panic!(),
        }
    }

    #[test]
    fn huge_shape_is_rejected_without_allocating() {
        let t = tensor(1, &[1 << 20, 1 << 20, 1 << 20, 1 << 20], |_| {});
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        assert!(matches!(
            req.inputs[0].1.decode("x"),
            Decoded::Invalid(Error::ShapeOverflow { .. })
        ));
        let t = tensor(1, &[1 << 20, 1 << 20], |_| {});
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        assert!(matches!(
            req.inputs[0].1.decode("x"),
            Decoded::Invalid(Error::ContentSize { actual: 0, .. })
        ));
    }

    #[test]
    fn typed_values_packed_and_unpacked() {
        let t = tensor(1, &[3], |t| {
            let mut packed = Vec::new();
            packed.extend_from_slice(&1.5f32.to_le_bytes());
            packed.extend_from_slice(&2.5f32.to_le_bytes());
            put_len_field(t, tensor::FLOAT_VAL, &packed);
            put_key(t, tensor::FLOAT_VAL, FIXED32);
            t.extend_from_slice(&3.5f32.to_le_bytes());
        });
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        match req.inputs[0].1.decode("x") {
            Decoded::Floats(v) => assert_eq!(v, vec![1.5, 2.5, 3.5]),
            _ => panic!(),
        }
        let t = tensor(3, &[4], |t| put_len_field(t, tensor::INT_VAL, &[1, 2, 3]));
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        assert!(matches!(req.inputs[0].1.decode("x"),
            Decoded::Invalid(Error::ValueCount { name, expected: 4, actual: 3 }) if name == "x"));
    }

    #[test]
    fn one_packed_float_run_is_a_view() {
        let t = tensor(1, &[2], |t| {
            let mut packed = Vec::new();
            packed.extend_from_slice(&1.5f32.to_le_bytes());
            packed.extend_from_slice(&2.5f32.to_le_bytes());
            put_len_field(t, tensor::FLOAT_VAL, &packed);
        });
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        match req.inputs[0].1.decode("x") {
            Decoded::View { offset, count } => {
                assert_eq!(count, 2);
                assert_eq!(&buf[offset..offset + 4], &1.5f32.to_le_bytes());
            }
            _ => panic!("expected a view"),
        }
    }

    #[test]
    fn zero_dim_beside_huge_dims_is_not_decoded() {
        let t = tensor(1, &[0, 1 << 62], |_| {});
        let buf = request("m", "x", &t);
        let req = parse_request(&buf).unwrap();
        assert!(matches!(
            req.inputs[0].1.decode("x"),
            Decoded::Invalid(Error::ZeroDimension { shape, .. }) if shape == [0, 1 << 62]
        ));
        // Before the dtype: a string or unknown dtype with a zero dim is refused alike.
        for dtype in [7, 999] {
            let t = tensor(dtype, &[1, 0], |_| {});
            let buf = request("m", "x", &t);
            let req = parse_request(&buf).unwrap();
            assert!(matches!(
                req.inputs[0].1.decode("x"),
                Decoded::Invalid(Error::ZeroDimension { .. })
            ));
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_request(&[0xff, 0xff, 0xff]).is_err());
        assert!(parse_request(&[0x0a, 0x10, 0x00]).is_err());
    }
}
