//! The REST body parser against TF Serving's documented examples and the refusals OVMS makes.

use super::error::ErrorKind;
use super::request::{parse, Format, JsonRequest};
use super::tensor::{Values, MAX_DEPTH};
use crate::dtype::DType;

fn inputs(spec: &[(&str, DType)]) -> Vec<(String, DType)> {
    spec.iter().map(|&(n, d)| (n.to_string(), d)).collect()
}

fn ok(body: &str, spec: &[(&str, DType)]) -> JsonRequest {
    parse(body.as_bytes(), &inputs(spec)).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn err(body: &str, spec: &[(&str, DType)]) -> ErrorKind {
    parse(body.as_bytes(), &inputs(spec))
        .map(|r| panic!("{body}: parsed as {r:?}"))
        .unwrap_err()
        .kind
}

#[test]
fn unnamed_rows_are_the_sole_input() {
    let r = ok(r#"{"instances": [[1, 2], [3, 4]]}"#, &[("x", DType::Float)]);
    assert_eq!(r.format, Format::Row);
    assert_eq!(r.inputs[0].name, "x");
    assert_eq!(r.inputs[0].shape, vec![2, 2]);
    assert_eq!(r.inputs[0].values, Values::F32(vec![1.0, 2.0, 3.0, 4.0]));
    let r = ok(r#"{"instances": [1, 2, 3]}"#, &[("x", DType::Int64)]);
    assert_eq!(r.inputs[0].shape, vec![3]);
    assert_eq!(r.inputs[0].values, Values::I64(vec![1, 2, 3]));
}

#[test]
fn named_rows_add_one_to_dim0_per_instance() {
    // TF Serving's REST API document, row format with named inputs.
    let body = r#"{"signature_name": "serving_default", "instances": [
        {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
        {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]}"#;
    let spec = [
        ("tag", DType::String),
        ("signal", DType::Int32),
        ("sensor", DType::Float),
    ];
    let r = ok(body, &spec);
    let by_name = |n: &str| r.inputs.iter().find(|i| i.name == n).unwrap();
    assert_eq!(by_name("tag").shape, vec![2]);
    assert_eq!(by_name("tag").dtype, DType::String);
    assert_eq!(
        by_name("tag").values,
        Values::Strings(vec![b"foo".to_vec(), b"bar".to_vec()])
    );
    assert_eq!(by_name("signal").shape, vec![2, 5]);
    assert_eq!(by_name("sensor").shape, vec![2, 2, 2]);
    assert_eq!(
        by_name("sensor").values,
        Values::F32(vec![1., 2., 3., 4., 4., 5., 6., 8.])
    );
}

#[test]
fn columns_named_unnamed_and_scalar() {
    let body =
        r#"{"inputs": {"tag": ["foo", "bar"], "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]]}}"#;
    let r = ok(body, &[("tag", DType::String), ("signal", DType::Int32)]);
    assert_eq!(r.format, Format::Column);
    assert_eq!(r.inputs[1].shape, vec![2, 5]);
    let r = ok(r#"{"inputs": 7.5}"#, &[("x", DType::Double)]);
    assert_eq!(r.inputs[0].shape, Vec::<usize>::new());
    assert_eq!(r.inputs[0].values, Values::F64(vec![7.5]));
    let r = ok(r#"{"inputs": [[1], [2]]}"#, &[("x", DType::UInt8)]);
    assert_eq!(r.inputs[0].shape, vec![2, 1]);
}

#[test]
fn b64_values_become_strings() {
    let r = ok(
        r#"{"instances": [{"b64": "aGVsbG8="}, {"b64": "aGk"}]}"#,
        &[("image", DType::Float)],
    );
    assert_eq!(r.inputs[0].dtype, DType::String);
    assert_eq!(r.inputs[0].shape, vec![2]);
    assert_eq!(
        r.inputs[0].values,
        Values::Strings(vec![b"hello".to_vec(), b"hi".to_vec()])
    );
    let r = ok(
        r#"{"instances": [{"image": {"b64": "aGk="}}]}"#,
        &[("image", DType::Float)],
    );
    assert_eq!(r.inputs[0].shape, vec![1]);
    let r = ok(
        r#"{"inputs": {"image": [{"b64": "aGk="}]}}"#,
        &[("image", DType::Float)],
    );
    assert_eq!(r.inputs[0].shape, vec![1]);
    // An input named "b64" beside others is a named instance.
    let r = ok(
        r#"{"instances": [{"b64": [1], "other": [2]}]}"#,
        &[("b64", DType::Float), ("other", DType::Float)],
    );
    assert_eq!(r.inputs.len(), 2);
}

#[test]
fn every_numeric_dtype() {
    for (dtype, len) in [
        (DType::Float, 3),
        (DType::Double, 3),
        (DType::Half, 3),
        (DType::Int8, 3),
        (DType::Int16, 3),
        (DType::Int32, 3),
        (DType::Int64, 3),
        (DType::UInt8, 3),
        (DType::UInt16, 3),
        (DType::UInt32, 3),
        (DType::UInt64, 3),
    ] {
        let r = ok(r#"{"instances": [1, 2.0, 3]}"#, &[("x", dtype)]);
        assert_eq!(r.inputs[0].values.len(), len, "{dtype:?}");
        assert_eq!(r.inputs[0].dtype, dtype);
    }
    let r = ok(r#"{"instances": [true, false]}"#, &[("x", DType::Bool)]);
    assert_eq!(r.inputs[0].values, Values::Bool(vec![true, false]));
    let r = ok(r#"{"instances": [-1.5e300]}"#, &[("x", DType::Double)]);
    assert_eq!(r.inputs[0].values, Values::F64(vec![-1.5e300]));
}

#[test]
fn out_of_range_and_fractions_are_refused() {
    use ErrorKind::CouldNotParseInstance as Bad;
    assert_eq!(err(r#"{"instances": [256]}"#, &[("x", DType::UInt8)]), Bad);
    assert_eq!(err(r#"{"instances": [-1]}"#, &[("x", DType::UInt32)]), Bad);
    assert_eq!(err(r#"{"instances": [1.5]}"#, &[("x", DType::Int32)]), Bad);
    assert_eq!(err(r#"{"instances": [1e39]}"#, &[("x", DType::Float)]), Bad);
    assert_eq!(err(r#"{"instances": [70000]}"#, &[("x", DType::Half)]), Bad);
    assert_eq!(err(r#"{"instances": [1]}"#, &[("x", DType::Bool)]), Bad);
    assert_eq!(
        err(r#"{"inputs": [1e39]}"#, &[("x", DType::Float)]),
        ErrorKind::CouldNotParseInput
    );
}

#[test]
fn ragged_and_mixed_arrays_are_refused() {
    use ErrorKind::CouldNotParseInstance as Bad;
    let f = [("x", DType::Float)];
    assert_eq!(err(r#"{"instances": [[1, 2], [3]]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [[1], 2]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [1, [2]]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [[[]], [1]]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [1, "a"]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [1, null]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [[1], {"b64": "aGk="}]}"#, &f), Bad);
    assert_eq!(err(r#"{"instances": [{"b64": "%%%"}]}"#, &f), Bad);
    // b64 beside other keys inside a value is not binary, and not an ndarray either.
    assert_eq!(
        err(r#"{"instances": [{"x": {"b64": "aGk=", "y": 1}}]}"#, &f),
        Bad
    );
    // A string for an input that is neither U8 nor STRING.
    assert_eq!(err(r#"{"instances": ["abc"]}"#, &f), Bad);
}

#[test]
fn structure_errors_have_ovms_kinds() {
    use ErrorKind::*;
    let f = [("x", DType::Float)];
    let two = [("x", DType::Float), ("y", DType::Float)];
    assert_eq!(err("[1, 2]", &f), BodyNotObject);
    assert_eq!(err("3", &f), BodyNotObject);
    assert_eq!(err("{}", &f), UnknownOrder);
    assert_eq!(
        err(r#"{"instances": [1], "inputs": [1]}"#, &f),
        UnknownOrder
    );
    assert_eq!(err(r#"{"instances": 5}"#, &f), InstancesNotArray);
    assert_eq!(err(r#"{"instances": []}"#, &f), NoInstances);
    assert_eq!(
        err(r#"{"instances": [{"x": 1}, 2]}"#, &f),
        NamedInstanceNotObject
    );
    assert_eq!(
        err(r#"{"instances": [{"x": 1}, {"x": 2, "y": 3}]}"#, &two),
        InstancesBatchSizeDiffer
    );
    assert_eq!(err(r#"{"instances": [null]}"#, &two), NotNamedOrNonamed);
    assert_eq!(err(r#"{"instances": [[1]]}"#, &two), UnnamedNeedsOneInput);
    assert_eq!(err(r#"{"inputs": {}}"#, &f), NoInputs);
    assert_eq!(err(r#"{"inputs": "text"}"#, &f), InputsNotObject);
    assert_eq!(err(r#"{"instances": [1"#, &f), JsonInvalid);
    assert_eq!(err(r#"{"instances": [1]} trailing"#, &f), JsonInvalid);
    assert_eq!(err("", &f), JsonInvalid);
}

#[test]
fn deep_nesting_is_refused_without_recursion_trouble() {
    let f = [("x", DType::Float)];
    let deep = |n: usize| format!(r#"{{"instances": {}1{}}}"#, "[".repeat(n), "]".repeat(n));
    assert_eq!(
        ok(&deep(MAX_DEPTH - 1), &f).inputs[0].shape.len(),
        MAX_DEPTH - 1
    );
    assert_eq!(
        err(&deep(MAX_DEPTH + 1), &f),
        ErrorKind::CouldNotParseInstance
    );
    assert_eq!(err(&deep(100_000), &f), ErrorKind::CouldNotParseInstance);
    // Deep nesting in an ignored key: serde_json skips it without recursing.
    let ignored = format!(
        r#"{{"x": {}{}, "instances": [1]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(ok(&ignored, &f).inputs[0].shape, vec![1]);
}

#[test]
fn unknown_names_still_parse_for_validation_to_refuse() {
    let r = ok(r#"{"inputs": {"nope": [1, 2]}}"#, &[("x", DType::Int8)]);
    assert_eq!(r.inputs[0].name, "nope");
    assert_eq!(r.inputs[0].shape, vec![2]);
}

#[test]
fn empty_arrays_keep_their_shape() {
    let r = ok(r#"{"inputs": [[], []]}"#, &[("x", DType::Float)]);
    assert_eq!(r.inputs[0].shape, vec![2, 0]);
    assert!(r.inputs[0].values.is_empty());
}

#[test]
fn every_kind_has_a_distinct_catalogue_name() {
    let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), ErrorKind::ALL.len());
}

#[test]
#[ignore = "timing probe: cargo test --release --lib timing_probe -- --ignored --nocapture"]
fn timing_probe() {
    let n = 150_528;
    let body = {
        let mut s = String::from(r#"{"instances": [[[["#);
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("{}", (i as f64 * 0.6180339887498949) % 255.0));
        }
        s.push_str("]]]]}");
        s
    };
    let spec = inputs(&[("x", DType::Float)]);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = parse(body.as_bytes(), &spec).unwrap();
        let ours = t.elapsed();
        let t = std::time::Instant::now();
        let v: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
        let tree = t.elapsed();
        let t = std::time::Instant::now();
        let raw: Box<serde_json::value::RawValue> =
            serde_json::from_slice(body.as_bytes()).unwrap();
        let skim = t.elapsed();
        eprintln!(
            "{} bytes: ours {ours:?}, Value tree {tree:?}, raw skim {skim:?} ({} {})",
            body.len(),
            r.inputs[0].values.len(),
            v.is_object() && !raw.get().is_empty()
        );
    }
}
