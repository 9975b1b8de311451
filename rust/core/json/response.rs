//! Predict outputs -> the TF Serving REST reply (`predictions` for row requests, `outputs` for column
//! requests), shaped as TF Serving's `MakeJsonFromTensors` shapes it.
//!
//! Floats are written as the shortest text that reads back to the same value (ryu), whole numbers with
//! `.0`; NaN and infinities as TF Serving writes them (`NaN`, `Infinity`, `-Infinity`: not strict JSON).
//! Unlike OVMS, FP16, U16, U32, U64 and BOOL outputs are written too (OVMS refuses them).

use crate::dtype::DType;
use crate::json::request::Format;

/// One output, as raw little-endian C-order data.
pub struct OutputRef<'a> {
    pub name: &'a str,
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

/// Why a reply cannot be written (OVMS: REST_PROTO_TO_STRING_ERROR, 500).
#[derive(Debug, PartialEq, Eq)]
pub struct ReplyError(pub String);

/// Writes the reply body for `format`.
pub fn write_reply(format: Format, outputs: &[OutputRef<'_>]) -> Result<Vec<u8>, ReplyError> {
    let values: usize = outputs
        .iter()
        .map(|o| o.data.len() / o.dtype.size().max(1))
        .sum();
    let mut out = Vec::with_capacity(64 + values * 12);
    match format {
        Format::Row => write_rows(&mut out, outputs)?,
        Format::Column => write_columns(&mut out, outputs),
    }
    Ok(out)
}

fn write_columns(out: &mut Vec<u8>, outputs: &[OutputRef<'_>]) {
    out.extend_from_slice(b"{\"outputs\":");
    write_outputs(out, outputs, |o| (o.shape, o.data));
    out.push(b'}');
}

/// The sole output's tensor bare, several as `{"<name>": tensor, ...}`; `part` picks what of each output
/// is written (all of it, or one row).
fn write_outputs<'a>(
    out: &mut Vec<u8>,
    outputs: &[OutputRef<'a>],
    part: impl Fn(&OutputRef<'a>) -> (&'a [usize], &'a [u8]),
) {
    if let [only] = outputs {
        let (shape, data) = part(only);
        write_tensor(out, only.dtype, shape, data);
        return;
    }
    out.push(b'{');
    for (i, o) in outputs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(out, o.name);
        let (shape, data) = part(o);
        write_tensor(out, o.dtype, shape, data);
    }
    out.push(b'}');
}

/// Row `row` of an output: its shape without dim 0, and its data.
fn row_of<'a>(o: &OutputRef<'a>, row: usize) -> (&'a [usize], &'a [u8]) {
    let stride = o.data.len() / o.shape[0].max(1);
    (&o.shape[1..], &o.data[row * stride..(row + 1) * stride])
}

fn write_rows(out: &mut Vec<u8>, outputs: &[OutputRef<'_>]) -> Result<(), ReplyError> {
    let mut batch = None;
    for o in outputs {
        let Some(&n) = o.shape.first() else {
            return Err(ReplyError(format!(
                "output {} is a scalar: it has no rows",
                o.name
            )));
        };
        if batch.is_some_and(|b| b != n) {
            return Err(ReplyError(
                "outputs have different batch sizes (dim 0)".into(),
            ));
        }
        batch = Some(n);
    }
    out.extend_from_slice(b"{\"predictions\":[");
    for row in 0..batch.unwrap_or(0) {
        if row > 0 {
            out.push(b',');
        }
        write_outputs(out, outputs, |o| row_of(o, row));
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

fn write_key(out: &mut Vec<u8>, name: &str) {
    // serde_json's string escaping; a name is short and this is the cold part of a reply.
    serde_json::to_writer(&mut *out, name).expect("writing to a Vec cannot fail");
    out.push(b':');
}

/// A nested JSON array of `shape` (a bare value for a scalar).
fn write_tensor(out: &mut Vec<u8>, dtype: DType, shape: &[usize], data: &[u8]) {
    match shape {
        [] => write_values(out, dtype, data, false),
        [_] => {
            out.push(b'[');
            write_values(out, dtype, data, true);
            out.push(b']');
        }
        [n, rest @ ..] => {
            out.push(b'[');
            let stride = data.len() / (*n).max(1);
            for i in 0..*n {
                if i > 0 {
                    out.push(b',');
                }
                write_tensor(out, dtype, rest, &data[i * stride..(i + 1) * stride]);
            }
            out.push(b']');
        }
    }
}

/// Every element of `data`, comma-separated when `list`.
fn write_values(out: &mut Vec<u8>, dtype: DType, data: &[u8], list: bool) {
    macro_rules! each {
        ($n:literal, $t:ty, $write:expr) => {
            for (i, chunk) in data.chunks_exact($n).enumerate() {
                if list && i > 0 {
                    out.push(b',');
                }
                let v = <$t>::from_le_bytes(chunk.try_into().expect("exact chunk"));
                $write(out, v);
            }
        };
    }
    let mut ints = itoa::Buffer::new();
    let mut int = |out: &mut Vec<u8>, v: i128| out.extend_from_slice(ints.format(v).as_bytes());
    use DType::*;
    match dtype {
        Float => each!(4, f32, |out: &mut Vec<u8>, v: f32| write_f32(out, v)),
        Double => each!(8, f64, |out: &mut Vec<u8>, v: f64| write_f64(out, v)),
        Half => each!(2, u16, |out: &mut Vec<u8>, v: u16| write_f32(
            out,
            half::f16::from_bits(v).to_f32()
        )),
        BFloat16 => each!(2, u16, |out: &mut Vec<u8>, v: u16| write_f32(
            out,
            half::bf16::from_bits(v).to_f32()
        )),
        Int8 => each!(1, i8, |out: &mut Vec<u8>, v: i8| int(out, v.into())),
        Int16 => each!(2, i16, |out: &mut Vec<u8>, v: i16| int(out, v.into())),
        Int32 => each!(4, i32, |out: &mut Vec<u8>, v: i32| int(out, v.into())),
        Int64 => each!(8, i64, |out: &mut Vec<u8>, v: i64| int(out, v.into())),
        UInt8 => each!(1, u8, |out: &mut Vec<u8>, v: u8| int(out, v.into())),
        UInt16 => each!(2, u16, |out: &mut Vec<u8>, v: u16| int(out, v.into())),
        UInt32 => each!(4, u32, |out: &mut Vec<u8>, v: u32| int(out, v.into())),
        UInt64 => each!(8, u64, |out: &mut Vec<u8>, v: u64| int(out, v.into())),
        Bool => each!(1, u8, |out: &mut Vec<u8>, v: u8| out
            .extend_from_slice(if v != 0 { b"true" } else { b"false" })),
        String => {}
    }
}

fn write_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        write_non_finite(out, v.is_nan(), v.is_sign_negative());
    }
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        write_non_finite(out, v.is_nan(), v.is_sign_negative());
    }
}

fn write_non_finite(out: &mut Vec<u8>, nan: bool, negative: bool) {
    out.extend_from_slice(match (nan, negative) {
        (true, _) => b"NaN",
        (false, false) => b"Infinity",
        (false, true) => b"-Infinity",
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn text(format: Format, outputs: &[OutputRef<'_>]) -> String {
        String::from_utf8(write_reply(format, outputs).unwrap()).unwrap()
    }

    #[test]
    fn row_one_output_gives_one_slice_per_row() {
        let data = f32s(&[1.0, 0.5, -2.0, 3.25]);
        let o = OutputRef {
            name: "y",
            dtype: DType::Float,
            shape: &[2, 2],
            data: &data,
        };
        assert_eq!(
            text(Format::Row, &[o]),
            r#"{"predictions":[[1.0,0.5],[-2.0,3.25]]}"#
        );
    }

    #[test]
    fn row_1d_output_gives_bare_values_and_several_outputs_give_objects() {
        let a = f32s(&[1.0, 2.0]);
        let b: Vec<u8> = [7i64, 8].iter().flat_map(|x| x.to_le_bytes()).collect();
        let outs = [
            OutputRef {
                name: "a",
                dtype: DType::Float,
                shape: &[2],
                data: &a,
            },
            OutputRef {
                name: "b",
                dtype: DType::Int64,
                shape: &[2, 1],
                data: &b,
            },
        ];
        assert_eq!(
            text(Format::Row, &outs),
            r#"{"predictions":[{"a":1.0,"b":[7]},{"a":2.0,"b":[8]}]}"#
        );
        assert_eq!(
            text(Format::Column, &outs),
            r#"{"outputs":{"a":[1.0,2.0],"b":[[7],[8]]}}"#
        );
    }

    #[test]
    fn column_scalar_and_special_floats() {
        let data = f32s(&[f32::NAN]);
        let o = OutputRef {
            name: "s",
            dtype: DType::Float,
            shape: &[],
            data: &data,
        };
        assert_eq!(text(Format::Column, &[o]), r#"{"outputs":NaN}"#);
        let data = f32s(&[f32::INFINITY, f32::NEG_INFINITY, 0.1]);
        let o = OutputRef {
            name: "s",
            dtype: DType::Float,
            shape: &[3],
            data: &data,
        };
        assert_eq!(
            text(Format::Column, &[o]),
            r#"{"outputs":[Infinity,-Infinity,0.1]}"#
        );
    }

    #[test]
    fn rows_need_a_shared_batch_dimension() {
        let a = f32s(&[1.0]);
        let scalar = OutputRef {
            name: "a",
            dtype: DType::Float,
            shape: &[],
            data: &a,
        };
        assert!(write_reply(Format::Row, &[scalar]).is_err());
        let b = f32s(&[1.0, 2.0]);
        let outs = [
            OutputRef {
                name: "a",
                dtype: DType::Float,
                shape: &[1],
                data: &a,
            },
            OutputRef {
                name: "b",
                dtype: DType::Float,
                shape: &[2],
                data: &b,
            },
        ];
        assert!(write_reply(Format::Row, &outs).is_err());
    }

    #[test]
    fn integers_bools_and_halves() {
        let u: Vec<u8> = [u64::MAX].iter().flat_map(|x| x.to_le_bytes()).collect();
        let o = OutputRef {
            name: "u",
            dtype: DType::UInt64,
            shape: &[1],
            data: &u,
        };
        assert_eq!(
            text(Format::Column, &[o]),
            r#"{"outputs":[18446744073709551615]}"#
        );
        let b = [1u8, 0];
        let o = OutputRef {
            name: "b",
            dtype: DType::Bool,
            shape: &[2],
            data: &b,
        };
        assert_eq!(text(Format::Column, &[o]), r#"{"outputs":[true,false]}"#);
        let h: Vec<u8> = half::f16::from_f32(1.5).to_bits().to_le_bytes().to_vec();
        let o = OutputRef {
            name: "h",
            dtype: DType::Half,
            shape: &[1],
            data: &h,
        };
        assert_eq!(text(Format::Column, &[o]), r#"{"outputs":[1.5]}"#);
    }
}
