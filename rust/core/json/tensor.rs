//! One tensor of a REST body as it is parsed: the accumulator (`Tensor`) that checks the nesting is
//! rectangular and converts every number straight to the model input's type, and what it becomes
//! (`JsonInput`).

use std::fmt;

use crate::dtype::DType;

/// Deeper nesting than this is refused (OVMS's limit; deeper costs stack for nothing).
pub const MAX_DEPTH: usize = 100;

/// A tensor's values, typed as the model input wants them.
#[derive(Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// IEEE half floats as their bit patterns.
    F16(Vec<u16>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    /// JSON strings or decoded `b64` values: the tensor is DT_STRING.
    Strings(Vec<Vec<u8>>),
}

impl Values {
    pub(super) fn for_dtype(dtype: DType) -> Values {
        use DType::*;
        match dtype {
            Float | BFloat16 | String => Values::F32(Vec::new()),
            Double => Values::F64(Vec::new()),
            Half => Values::F16(Vec::new()),
            Int8 => Values::I8(Vec::new()),
            Int16 => Values::I16(Vec::new()),
            Int32 => Values::I32(Vec::new()),
            Int64 => Values::I64(Vec::new()),
            UInt8 => Values::U8(Vec::new()),
            UInt16 => Values::U16(Vec::new()),
            UInt32 => Values::U32(Vec::new()),
            UInt64 => Values::U64(Vec::new()),
            Bool => Values::Bool(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::F16(v) | Values::U16(v) => v.len(),
            Values::I8(v) => v.len(),
            Values::I16(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::U8(v) => v.len(),
            Values::U32(v) => v.len(),
            Values::U64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One input as the request gave it.
#[derive(Debug)]
pub struct JsonInput {
    pub name: String,
    /// What the values are: the model's dtype, DT_STRING for strings, DT_FLOAT for names the model
    /// does not have (validation refuses those before looking at their type).
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub values: Values,
}

/// A JSON number as serde hands it over.
#[derive(Clone, Copy)]
pub(super) enum Number {
    U(u64),
    I(i64),
    F(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::U(v) => write!(f, "{v}"),
            Number::I(v) => write!(f, "{v}"),
            Number::F(v) => write!(f, "{v:?}"),
        }
    }
}

/// `n` as an integer type; `None` when out of its range or a fraction (the push's refusal).
pub(super) fn to_int<T: TryFrom<i64> + TryFrom<u64>>(n: Number) -> Option<T> {
    match n {
        Number::U(v) => T::try_from(v).ok(),
        Number::I(v) => T::try_from(v).ok(),
        // Whole numbers written as floats (`3.0`) are fine; fractions are not.
        Number::F(v) if v.fract() == 0.0 && v.abs() < 1.8e19 => {
            if v < 0.0 {
                T::try_from(v as i64).ok()
            } else {
                T::try_from(v as u64).ok()
            }
        }
        Number::F(_) => None,
    }
}

pub(super) fn to_f64(n: Number) -> f64 {
    match n {
        Number::U(v) => v as f64,
        Number::I(v) => v as f64,
        Number::F(v) => v,
    }
}

/// `n` as DT_FLOAT takes it; `None` when a finite value overflows f32 (the push's refusal).
#[inline]
pub(super) fn to_f32(n: Number) -> Option<f32> {
    let x = to_f64(n);
    let y = x as f32;
    (!(y.is_infinite() && x.is_finite())).then_some(y)
}

/// `n` as DT_HALF takes it (the bit pattern); `None` when a finite value overflows f16.
#[inline]
pub(super) fn to_f16_bits(n: Number) -> Option<u16> {
    let x = to_f64(n);
    let y = half::f16::from_f64(x);
    (!(y.is_infinite() && x.is_finite())).then_some(y.to_bits())
}

/// Accumulates one tensor: its values and, per nesting depth, the array length seen there.
pub(super) struct Tensor {
    pub(super) name: String,
    pub(super) dtype: DType,
    pub(super) values: Values,
    /// Length of the arrays at each depth (every array at one depth must have the same length).
    pub(super) dims: Vec<Option<usize>>,
    /// The depth at which scalars sit, once the first one was seen.
    pub(super) rank: Option<usize>,
    /// Named row format: how many instances gave this input (its dim 0).
    pub(super) instances: usize,
    /// Only when the parallel path's skim (`parallel.rs`) made this tensor: where each innermost
    /// array of numbers lies in the body (from after its `[` to its `]`), its numbers not parsed yet.
    pub(super) spans: Vec<(usize, usize)>,
}

/// A tensor-level problem: which kind it is depends on the format (instance or input).
pub(super) struct Malformed(pub(super) String);

impl Tensor {
    pub(super) fn new(name: &str, dtype: DType) -> Tensor {
        Tensor {
            name: name.to_owned(),
            dtype,
            values: Values::for_dtype(dtype),
            dims: Vec::new(),
            rank: None,
            instances: 0,
            spans: Vec::new(),
        }
    }

    /// The tensor for input `name`, typed as the model's input of that name (DT_FLOAT if none).
    pub(super) fn for_input(expected: &[(String, DType)], name: &str) -> Tensor {
        let dtype = expected
            .iter()
            .find(|(n, _)| n == name)
            .map_or(DType::Float, |&(_, d)| d);
        Tensor::new(name, dtype)
    }

    pub(super) fn ragged(&self) -> Malformed {
        Malformed(format!(
            "arrays are not rectangular or mix kinds of values; input name: {}",
            self.name
        ))
    }

    pub(super) fn open(&mut self, depth: usize) -> Result<(), Malformed> {
        if depth >= MAX_DEPTH {
            return Err(Malformed(format!(
                "nesting deeper than {MAX_DEPTH}; input name: {}",
                self.name
            )));
        }
        if self.rank.is_some_and(|r| depth >= r) {
            return Err(self.ragged());
        }
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        Ok(())
    }

    pub(super) fn close(&mut self, depth: usize, len: usize) -> Result<(), Malformed> {
        match self.dims[depth] {
            None => self.dims[depth] = Some(len),
            Some(seen) if seen == len => {}
            Some(_) => return Err(self.ragged()),
        }
        Ok(())
    }

    pub(super) fn leaf(&mut self, depth: usize) -> Result<(), Malformed> {
        match self.rank {
            None if self.dims.len() <= depth => self.rank = Some(depth),
            Some(r) if r == depth => {}
            _ => return Err(self.ragged()),
        }
        Ok(())
    }

    pub(super) fn number(&mut self, depth: usize, n: Number) -> Result<(), Malformed> {
        self.leaf(depth)?;
        self.push(n)
    }

    /// A number at the depth `leaf` accepted last (the fast path checks the depth once per array).
    #[inline]
    pub(super) fn push(&mut self, n: Number) -> Result<(), Malformed> {
        let out_of_range = || {
            Malformed(format!(
                "value {n} is out of range for {}; input name: {}",
                self.dtype.precision(),
                self.name
            ))
        };
        match &mut self.values {
            Values::F32(v) => v.push(to_f32(n).ok_or_else(out_of_range)?),
            Values::F64(v) => v.push(to_f64(n)),
            Values::F16(v) => v.push(to_f16_bits(n).ok_or_else(out_of_range)?),
            Values::I8(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::I16(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::I32(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::I64(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::U8(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::U16(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::U32(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::U64(v) => v.push(to_int(n).ok_or_else(out_of_range)?),
            Values::Bool(_) => {
                return Err(Malformed(format!(
                    "a number for a BOOL input (use true/false); input name: {}",
                    self.name
                )))
            }
            Values::Strings(_) => return Err(self.ragged()),
        }
        Ok(())
    }

    pub(super) fn boolean(&mut self, depth: usize, b: bool) -> Result<(), Malformed> {
        self.leaf(depth)?;
        match &mut self.values {
            Values::Bool(v) => v.push(b),
            _ => {
                return Err(Malformed(format!(
                    "true/false for a {} input; input name: {}",
                    self.dtype.precision(),
                    self.name
                )))
            }
        }
        Ok(())
    }

    /// A string value; `binary` for a decoded `b64` (accepted for any input), else a JSON string
    /// (accepted for U8 and STRING inputs, as OVMS does).
    pub(super) fn string(
        &mut self,
        depth: usize,
        bytes: Vec<u8>,
        binary: bool,
    ) -> Result<(), Malformed> {
        self.leaf(depth)?;
        if !matches!(self.values, Values::Strings(_)) {
            let may_switch = binary || matches!(self.dtype, DType::UInt8 | DType::String);
            if !self.values.is_empty() || !may_switch {
                return Err(Malformed(format!(
                    "a string for a {} input; input name: {}",
                    self.dtype.precision(),
                    self.name
                )));
            }
            self.values = Values::Strings(Vec::new());
            self.dtype = DType::String;
        }
        if let Values::Strings(v) = &mut self.values {
            v.push(bytes);
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> JsonInput {
        if self.instances > 0 {
            if self.dims.is_empty() {
                self.dims.push(None);
            }
            self.dims[0] = Some(self.instances);
        }
        let rank = self.rank.unwrap_or(self.dims.len());
        let shape: Vec<usize> = self.dims[..rank.min(self.dims.len())]
            .iter()
            .map(|d| d.unwrap_or(0))
            .collect();
        JsonInput {
            name: self.name,
            dtype: self.dtype,
            shape,
            values: self.values,
        }
    }
}
