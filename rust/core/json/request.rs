//! TF Serving REST predict bodies -> typed tensors, in one pass over the JSON text.
//!
//! Two paths, one result (three for bodies above `parallel::MIN_BODY`: `parallel.rs` parses their
//! numbers on several threads, or leaves the body to these two). The fast path (`fast.rs`) reads the
//! common bodies (numbers in nested arrays) with a hand-written scanner (`number.rs`: SWAR digits,
//! correctly rounded values) and gives up on anything else; the serde path then streams the body
//! through serde_json with `DeserializeSeed`s that write every number straight into the typed
//! vector of the model input it belongs to (the model's precision is known before parsing), and
//! that track the nesting to check that arrays are rectangular. Every refusal comes from the serde
//! path. No JSON tree is built: a [1,3,224,224] image is 150,528 numbers, and a `serde_json::Value`
//! per number would cost more than the parse itself.
//!
//! Measured on a 2.9 MB body of that image as `json.dumps` writes it, 17-digit floats
//! (`timing_probe` in request_tests.rs, release, min of 15, 2 shared cores, load 4.9-6.5): this parse
//! 3.75 ms (the fast path); the serde path alone 10.3 ms (6.8 ms before it was built with
//! `float_roundtrip`, which makes it correctly rounded: without it, about 1 in 5 such numbers came
//! out 1 ulp off in f64, invisible after the cast to f32); serde_json into a `Value` tree 10.5 ms;
//! serde_json's skim of the text without converting a number 3.9 ms. simd-json's tape alone was
//! 9.7-13.7 ms in an earlier run (not taken).
//!
//! Formats, as TF Serving's `json_tensor.cc` and OVMS's `rest_parser.cpp` define them:
//! - row: `{"instances": [...]}`, named (every instance an object, one key per input; each instance adds
//!   one to dim 0) or unnamed (the whole array is the sole input's tensor);
//! - column: `{"inputs": ...}`, a bare value/array for the sole input, or an object of named tensors.
//!
//! A value `{"b64": "..."}` is binary (decoded from base64, the tensor becomes DT_STRING); JSON strings
//! are accepted for U8 and STRING inputs only. Numbers out of range for the input's type (and fractions
//! for integer types) are refused: OVMS casts them silently.

use std::cell::RefCell;
use std::fmt;

use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::{ErrorKind, JsonError};
use super::fast;
use super::parallel;
use super::tensor::{JsonInput, Malformed, Number, Tensor};
use crate::dtype::DType;

/// Row (`instances` -> `predictions`) or column (`inputs` -> `outputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Row,
    Column,
}

#[derive(Debug)]
pub struct JsonRequest {
    pub format: Format,
    pub inputs: Vec<JsonInput>,
}

/// The failure that stopped the parse: serde errors carry text only, so the kind waits here.
type Failure = RefCell<Option<JsonError>>;

/// What the parse is doing, shared by every seed.
struct Context<'a> {
    expected: &'a [(String, DType)],
    failure: Failure,
    /// Which tensor-level kind a `Malformed` becomes.
    malformed_kind: std::cell::Cell<ErrorKind>,
}

impl Context<'_> {
    fn fail<E: de::Error>(&self, kind: ErrorKind, detail: impl Into<Option<String>>) -> E {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(JsonError::new(kind, detail));
        }
        E::custom("refused")
    }

    fn malformed<E: de::Error>(&self, m: Malformed) -> E {
        self.fail(self.malformed_kind.get(), m.0)
    }

    fn tensor(&self, name: &str) -> Tensor {
        Tensor::for_input(self.expected, name)
    }

    fn sole_input(&self) -> Option<&(String, DType)> {
        sole_input(self.expected)
    }
}

/// The model's input when it has exactly one (what the unnamed formats feed).
pub(super) fn sole_input(expected: &[(String, DType)]) -> Option<&(String, DType)> {
    match expected {
        [only] => Some(only),
        _ => None,
    }
}

/// One value of a tensor at `depth`: a nested array, a scalar, or a `{"b64": ...}` object.
struct Node<'c, 't> {
    cx: &'c Context<'c>,
    tensor: &'t mut Tensor,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! leaf_number {
    ($method:ident, $t:ty, $wrap:expr) => {
        fn $method<E: de::Error>(self, v: $t) -> Result<(), E> {
            self.tensor
                .number(self.depth, $wrap(v))
                .map_err(|m| self.cx.malformed(m))
        }
    };
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string, array or {\"b64\": ...}")
    }

    leaf_number!(visit_u64, u64, Number::U);
    leaf_number!(visit_i64, i64, Number::I);
    leaf_number!(visit_f64, f64, Number::F);

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.tensor
            .boolean(self.depth, v)
            .map_err(|m| self.cx.malformed(m))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.tensor
            .string(self.depth, v.as_bytes().to_vec(), false)
            .map_err(|m| self.cx.malformed(m))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        let m = Malformed(format!("null value; input name: {}", self.tensor.name));
        Err(self.cx.malformed(m))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node { cx, tensor, depth } = self;
        tensor.open(depth).map_err(|m| cx.malformed(m))?;
        let mut len = 0;
        while seq
            .next_element_seed(Node {
                cx,
                tensor: &mut *tensor,
                depth: depth + 1,
            })?
            .is_some()
        {
            len += 1;
        }
        tensor.close(depth, len).map_err(|m| cx.malformed(m))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Node { cx, tensor, depth } = self;
        let bad = |tensor: &Tensor| {
            Malformed(format!(
                "an object that is not {{\"b64\": \"...\"}}; input name: {}",
                tensor.name
            ))
        };
        let key: Option<std::borrow::Cow<'de, str>> = map.next_key()?;
        if key.as_deref() != Some("b64") {
            return Err(cx.malformed(bad(tensor)));
        }
        let Ok(text) = map.next_value::<std::borrow::Cow<'de, str>>() else {
            return Err(cx.malformed(bad(tensor)));
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(cx.malformed(bad(tensor)));
        }
        let bytes = decode_b64(&text).map_err(|e| {
            cx.malformed(Malformed(format!(
                "b64 value is not base64 ({e}); input name: {}",
                tensor.name
            )))
        })?;
        tensor
            .string(depth, bytes, true)
            .map_err(|m| cx.malformed(m))
    }
}

fn decode_b64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    // Standard alphabet; padding optional, as absl::Base64Unescape (OVMS's decoder) allows.
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(text)
}

/// The body: an object; `instances` or `inputs` parsed, `signature_name` and other keys skipped.
struct Body<'c> {
    cx: &'c Context<'c>,
    tensors: &'c RefCell<Vec<Tensor>>,
}

impl<'de> DeserializeSeed<'de> for Body<'_> {
    type Value = Option<Format>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Format>, D::Error> {
        d.deserialize_any(self)
    }
}

fn not_object<E: de::Error>(cx: &Context<'_>) -> E {
    cx.fail(ErrorKind::BodyNotObject, None)
}

/// The scalars and arrays a visitor refuses with `$fail(cx)`.
macro_rules! refuse_non_maps {
    ($fail:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err($fail(self.cx))
        }
    };
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = Option<Format>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    refuse_non_maps!(not_object);

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Option<Format>, A::Error> {
        Err(not_object(self.cx))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Format>, A::Error> {
        let mut format = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let this = match key.as_ref() {
                "instances" => Format::Row,
                "inputs" => Format::Column,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if format.is_some() {
                return Err(self.cx.fail(ErrorKind::UnknownOrder, None));
            }
            format = Some(this);
            let mut tensors = self.tensors.borrow_mut();
            let tensors = &mut *tensors;
            let cx = self.cx;
            match this {
                Format::Row => {
                    cx.malformed_kind.set(ErrorKind::CouldNotParseInstance);
                    map.next_value_seed(Instances { cx, tensors })?
                }
                Format::Column => {
                    cx.malformed_kind.set(ErrorKind::CouldNotParseInput);
                    map.next_value_seed(Inputs { cx, tensors })?
                }
            }
        }
        Ok(format)
    }
}

/// Row format: `instances` must be a non-empty array, named or unnamed by its first element.
struct Instances<'c, 't> {
    cx: &'c Context<'c>,
    tensors: &'t mut Vec<Tensor>,
}

fn instances_not_array<E: de::Error>(cx: &Context<'_>) -> E {
    cx.fail(ErrorKind::InstancesNotArray, None)
}

impl<'de> DeserializeSeed<'de> for Instances<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Instances<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of instances")
    }

    refuse_non_maps!(instances_not_array);

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(instances_not_array(self.cx))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Instances { cx, tensors } = self;
        let mut mode = RowMode::Unknown;
        let mut count = 0;
        while seq
            .next_element_seed(Instance {
                cx,
                tensors: &mut *tensors,
                mode: &mut mode,
            })?
            .is_some()
        {
            count += 1;
        }
        match mode {
            RowMode::Unknown => return Err(cx.fail(ErrorKind::NoInstances, None)),
            RowMode::Unnamed => {
                let tensor = tensors.first_mut().expect("unnamed mode has its tensor");
                tensor.open(0).map_err(|m| cx.malformed(m))?;
                tensor.close(0, count).map_err(|m| cx.malformed(m))?;
            }
            RowMode::Named => {
                if tensors.iter().any(|t| t.instances != count) {
                    return Err(cx.fail(ErrorKind::InstancesBatchSizeDiffer, None));
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowMode {
    Unknown,
    Named,
    Unnamed,
}

/// One element of `instances`.
struct Instance<'c, 't, 'm> {
    cx: &'c Context<'c>,
    tensors: &'t mut Vec<Tensor>,
    mode: &'m mut RowMode,
}

impl Instance<'_, '_, '_> {
    /// The unnamed tensor, created on the first element (the model must have one input).
    fn unnamed<E: de::Error>(&mut self) -> Result<usize, E> {
        match *self.mode {
            RowMode::Named => return Err(self.cx.fail(ErrorKind::NamedInstanceNotObject, None)),
            RowMode::Unnamed => return Ok(0),
            RowMode::Unknown => {}
        }
        let Some((name, _)) = self.cx.sole_input() else {
            return Err(self.cx.fail(ErrorKind::UnnamedNeedsOneInput, None));
        };
        self.tensors.push(self.cx.tensor(name));
        *self.mode = RowMode::Unnamed;
        Ok(0)
    }

    fn node(&mut self) -> Node<'_, '_> {
        Node {
            cx: self.cx,
            tensor: &mut self.tensors[0],
            depth: 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Instance<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! unnamed_scalar {
    ($method:ident, $t:ty) => {
        fn $method<E: de::Error>(mut self, v: $t) -> Result<(), E> {
            self.unnamed::<E>()?;
            self.node().$method(v)
        }
    };
}

impl<'de> Visitor<'de> for Instance<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an instance")
    }

    unnamed_scalar!(visit_u64, u64);
    unnamed_scalar!(visit_i64, i64);
    unnamed_scalar!(visit_f64, f64);
    unnamed_scalar!(visit_bool, bool);
    unnamed_scalar!(visit_str, &str);

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(match *self.mode {
            RowMode::Unknown => self.cx.fail(ErrorKind::NotNamedOrNonamed, None),
            RowMode::Named => self.cx.fail(ErrorKind::NamedInstanceNotObject, None),
            RowMode::Unnamed => self.cx.malformed(Malformed("null value".into())),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<(), A::Error> {
        self.unnamed::<A::Error>()?;
        self.node().visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Instance { cx, tensors, mode } = self;
        let Some(first) = map.next_key::<String>()? else {
            return Err(cx.malformed(Malformed("an empty instance object".into())));
        };
        let mut key = Some(first);
        // `{"b64": "..."}` alone is an unnamed binary value; an input called "b64" is named.
        if key.as_deref() == Some("b64") && *mode != RowMode::Named {
            let value: serde_json::Value = map.next_value()?;
            key = map.next_key()?;
            if value.is_string() && key.is_none() {
                let mut instance = Instance { cx, tensors, mode };
                instance.unnamed::<A::Error>()?;
                let b64 =
                    serde_json::Value::Object([("b64".to_owned(), value)].into_iter().collect());
                return instance.node().deserialize(b64).map_err(refused);
            }
            named_value(cx, tensors, mode, "b64", value).map_err(refused)?;
        } else if let Some(first) = key.take() {
            named_entry(cx, tensors, mode, &first, &mut map)?;
            key = map.next_key()?;
        }
        while let Some(k) = key {
            named_entry(cx, tensors, mode, &k, &mut map)?;
            key = map.next_key()?;
        }
        Ok(())
    }
}

/// A parse of a buffered value failed: the reason is in the context already.
fn refused<E: de::Error>(_: serde_json::Error) -> E {
    E::custom("refused")
}

/// The tensor a named instance's key feeds (created on first sight); refuses a name given twice.
fn named_tensor<'t, E: de::Error>(
    cx: &Context<'_>,
    tensors: &'t mut Vec<Tensor>,
    mode: &mut RowMode,
    key: &str,
) -> Result<&'t mut Tensor, E> {
    match *mode {
        RowMode::Unnamed => {
            return Err(cx.malformed(Malformed("an object among unnamed instances".into())))
        }
        RowMode::Unknown => *mode = RowMode::Named,
        RowMode::Named => {}
    }
    let at = match tensors.iter().position(|t| t.name == key) {
        Some(at) => at,
        None => {
            tensors.push(cx.tensor(key));
            tensors.len() - 1
        }
    };
    Ok(&mut tensors[at])
}

fn named_entry<'de, A: MapAccess<'de>>(
    cx: &Context<'_>,
    tensors: &mut Vec<Tensor>,
    mode: &mut RowMode,
    key: &str,
    map: &mut A,
) -> Result<(), A::Error> {
    let tensor = named_tensor::<A::Error>(cx, tensors, mode, key)?;
    tensor.instances += 1;
    map.next_value_seed(Node {
        cx,
        tensor,
        depth: 1,
    })
}

fn named_value(
    cx: &Context<'_>,
    tensors: &mut Vec<Tensor>,
    mode: &mut RowMode,
    key: &str,
    value: serde_json::Value,
) -> Result<(), serde_json::Error> {
    let tensor = named_tensor::<serde_json::Error>(cx, tensors, mode, key)?;
    tensor.instances += 1;
    Node {
        cx,
        tensor,
        depth: 1,
    }
    .deserialize(value)
}

/// Column format: a value for the sole input, or an object of named tensors.
struct Inputs<'c, 't> {
    cx: &'c Context<'c>,
    tensors: &'t mut Vec<Tensor>,
}

impl Inputs<'_, '_> {
    fn sole<E: de::Error>(&mut self) -> Result<Node<'_, '_>, E> {
        let Some((name, _)) = self.cx.sole_input() else {
            return Err(self.cx.fail(ErrorKind::UnnamedNeedsOneInput, None));
        };
        self.tensors.push(self.cx.tensor(name));
        Ok(Node {
            cx: self.cx,
            tensor: &mut self.tensors[0],
            depth: 0,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Inputs<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! sole_scalar {
    ($method:ident, $t:ty) => {
        fn $method<E: de::Error>(mut self, v: $t) -> Result<(), E> {
            self.sole::<E>()?.$method(v)
        }
    };
}

impl<'de> Visitor<'de> for Inputs<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("inputs")
    }

    sole_scalar!(visit_u64, u64);
    sole_scalar!(visit_i64, i64);
    sole_scalar!(visit_f64, f64);
    sole_scalar!(visit_bool, bool);

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.cx.fail(ErrorKind::InputsNotObject, None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.cx.fail(ErrorKind::InputsNotObject, None))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, seq: A) -> Result<(), A::Error> {
        self.sole::<A::Error>()?.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Inputs { cx, tensors } = self;
        let mut any = false;
        while let Some(key) = map.next_key::<String>()? {
            any = true;
            if tensors.iter().any(|t| t.name == key) {
                return Err(cx.fail(
                    ErrorKind::CouldNotParseInput,
                    format!("input given twice: {key}"),
                ));
            }
            tensors.push(cx.tensor(&key));
            let tensor = tensors.last_mut().expect("just pushed");
            map.next_value_seed(Node {
                cx,
                tensor,
                depth: 0,
            })?;
        }
        if !any {
            return Err(cx.fail(ErrorKind::NoInputs, None));
        }
        Ok(())
    }
}

/// Parses a predict body. `expected` is the model's inputs with their dtypes (what numbers become).
pub fn parse(body: &[u8], expected: &[(String, DType)]) -> Result<JsonRequest, JsonError> {
    // Large bodies on several threads (`parallel.rs`); what it leaves is parsed serially.
    if let Some(parsed) = parallel::parse(body, expected) {
        return Ok(parsed);
    }
    parse_serial(body, expected)
}

/// The serial paths alone: the fast path, then serde (what `parse` does below the parallel path's
/// size, and with every body the parallel path leaves).
pub fn parse_serial(body: &[u8], expected: &[(String, DType)]) -> Result<JsonRequest, JsonError> {
    if let Some(parsed) = fast::parse(body, expected) {
        return Ok(parsed);
    }
    parse_serde(body, expected)
}

/// The parallel path alone at any size, in tasks of about `task_bytes` of text (for fuzz/): `None`
/// where it leaves the body to the serial paths, else their result.
pub fn parse_parallel(
    body: &[u8],
    expected: &[(String, DType)],
    task_bytes: usize,
) -> Option<JsonRequest> {
    parallel::parse_in_tasks(body, expected, task_bytes.max(1))
}

/// The serde path alone: every body the fast path leaves, and every refusal.
pub(super) fn parse_serde(
    body: &[u8],
    expected: &[(String, DType)],
) -> Result<JsonRequest, JsonError> {
    let cx = Context {
        expected,
        failure: RefCell::new(None),
        malformed_kind: std::cell::Cell::new(ErrorKind::CouldNotParseInstance),
    };
    let tensors = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Body {
        cx: &cx,
        tensors: &tensors,
    }
    .deserialize(&mut de)
    .and_then(|format| de.end().map(|()| format));
    if let Some(failure) = cx.failure.take() {
        return Err(failure);
    }
    let format = match parsed {
        Ok(Some(format)) => format,
        Ok(None) => return Err(JsonError::new(ErrorKind::UnknownOrder, None)),
        Err(e) => return Err(JsonError::new(ErrorKind::JsonInvalid, format!("{e}"))),
    };
    let inputs = tensors
        .into_inner()
        .into_iter()
        .map(Tensor::finish)
        .collect();
    Ok(JsonRequest { format, inputs })
}
