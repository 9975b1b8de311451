//! PredictResponse writing: outputs (name, dtype, shape, data) -> the serialized reply, sized
//! exactly in advance so that a sink over a new buffer receives each output's data in one copy.

use crate::dtype::DType;
use crate::predict::fields::{
    dim, int64_value, map_entry, model_spec, predict_response, tensor, tensor_shape,
};
use crate::predict::wire::{
    len_field_size, put_key, put_len_field, put_varint, varint_len, Sink, LEN, VARINT,
};

/// An output ready to be written: everything but the data is small and owned.
pub struct Output<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

fn shape_size(shape: &[usize]) -> usize {
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

/// ModelSpec { string name = 1; Int64Value version = 2; }, encoded.
pub fn model_spec(name: &str, version: i64) -> Vec<u8> {
    let mut spec = Vec::new();
    put_len_field(&mut spec, model_spec::NAME, name.as_bytes());
    let mut v = Vec::new();
    put_key(&mut v, int64_value::VALUE, VARINT);
    put_varint(&mut v, version as u64);
    put_len_field(&mut spec, model_spec::VERSION, &v);
    spec
}

/// Writes PredictResponse { map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2; }.
pub fn write_response(out: &mut impl Sink, outputs: &[Output<'_>], spec: &[u8]) {
    for o in outputs {
        put_key(out, predict_response::OUTPUTS, LEN);
        put_varint(out, entry_size(o) as u64);
        put_len_field(out, map_entry::KEY, o.name.as_bytes());
        put_key(out, map_entry::VALUE, LEN);
        put_varint(out, tensor_size(o) as u64);
        put_key(out, tensor::DTYPE, VARINT);
        put_varint(out, o.dtype as u64);
        put_key(out, tensor::TENSOR_SHAPE, LEN);
        put_varint(out, shape_size(&o.shape) as u64);
        for &d in &o.shape {
            put_key(out, tensor_shape::DIM, LEN);
            put_varint(out, (1 + varint_len(d as u64)) as u64);
            put_key(out, dim::SIZE, VARINT);
            put_varint(out, d as u64);
        }
        if !o.data.is_empty() {
            put_len_field(out, tensor::TENSOR_CONTENT, o.data);
        }
    }
    put_len_field(out, predict_response::MODEL_SPEC, spec);
}

/// The exact size [`write_response`] writes.
pub fn response_size(outputs: &[Output<'_>], spec: &[u8]) -> usize {
    outputs
        .iter()
        .map(|o| len_field_size(entry_size(o)))
        .sum::<usize>()
        + len_field_size(spec.len())
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
        assert_eq!(f, predict_response::OUTPUTS);
        assert!(matches!(v, Value::Bytes(b, _) if b.len() == entry_size(&outs[0])));
        let (f, _) = r.field().unwrap().unwrap();
        assert_eq!(f, predict_response::MODEL_SPEC);
        assert!(r.at_end());
    }
}
