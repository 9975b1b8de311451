//! The REST body parser against TF Serving's documented examples and the refusals OVMS makes.

use super::error::ErrorKind;
use super::fast;
use super::number;
use super::request::{parse, parse_serde, Format, JsonRequest};
use super::tensor::{self, Number, Values, MAX_DEPTH};
use crate::dtype::DType;

pub(super) fn inputs(spec: &[(&str, DType)]) -> Vec<(String, DType)> {
    spec.iter().map(|&(n, d)| (n.to_string(), d)).collect()
}

/// Parses `body` (fast path first, as the server does), and checks that the fast path, where it
/// answers, answers as the serde path does.
fn ok(body: &str, spec: &[(&str, DType)]) -> JsonRequest {
    same_on_both_paths(body.as_bytes(), &inputs(spec));
    parse(body.as_bytes(), &inputs(spec)).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

/// The fast path gives up on every body the serde path refuses, and gives the serde path's result
/// (bit for bit: Debug prints -0.0 and every float's shortest form) on those it parses. Returns
/// whether the serde path accepted it and whether the fast path took it.
fn same_on_both_paths(body: &[u8], spec: &[(String, DType)]) -> (bool, bool) {
    let text = String::from_utf8_lossy(body);
    match (fast::parse(body, spec), parse_serde(body, spec)) {
        (None, s) => (s.is_ok(), false),
        (Some(f), Err(e)) => panic!("{text}: fast path parsed {f:?}, serde refused {e:?}"),
        (Some(f), Ok(s)) => {
            assert_eq!(format!("{f:?}"), format!("{s:?}"), "{text}");
            (true, true)
        }
    }
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
    // A [1,3,224,224] float32 image as `json.dumps(x.tolist())` writes it: 17-digit floats.
    let mut rng = Rng(1);
    let mut value = || {
        format!(
            "{}",
            ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0) as f64
        )
    };
    let row = |value: &mut dyn FnMut() -> String| {
        format!(
            "[{}]",
            (0..224).map(|_| value()).collect::<Vec<_>>().join(", ")
        )
    };
    let plane = |value: &mut dyn FnMut() -> String| {
        format!(
            "[{}]",
            (0..224).map(|_| row(value)).collect::<Vec<_>>().join(", ")
        )
    };
    let planes: Vec<String> = (0..3).map(|_| plane(&mut value)).collect();
    let body = format!(r#"{{"instances": [[{}]]}}"#, planes.join(", "));
    let spec = inputs(&[("x", DType::Float)]);
    let min_of = |f: &dyn Fn()| {
        (0..15)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .expect("rounds")
    };
    let fast = min_of(&|| assert!(fast::parse(body.as_bytes(), &spec).is_some()));
    let ours = min_of(&|| assert_eq!(parse(body.as_bytes(), &spec).unwrap().inputs.len(), 1));
    let serde = min_of(&|| assert!(parse_serde(body.as_bytes(), &spec).is_ok()));
    let tree = min_of(&|| {
        let v: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
        assert!(v.is_object());
    });
    let skim = min_of(&|| {
        let raw: Box<serde_json::value::RawValue> =
            serde_json::from_slice(body.as_bytes()).unwrap();
        assert!(!raw.get().is_empty());
    });
    eprintln!(
        "{} bytes, min of 15: parse {ours:?} (fast path alone {fast:?}), serde path {serde:?}, \
         Value tree {tree:?}, raw skim {skim:?}",
        body.len()
    );
}

/// SplitMix64: reproducible random cases without a dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

/// Numbers at the edges: signs, zeros, integer limits of every dtype, f16/f32/f64 limits, halfway
/// cases, subnormals, exponents, and text JSON forbids.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0E-0",
    "1",
    "-1",
    "1.5",
    "3.0",
    "-3.0",
    "1e2",
    "1E+2",
    "1e-2",
    "255",
    "256",
    "-128",
    "-129",
    "127",
    "128",
    "32767",
    "32768",
    "-32769",
    "65504",
    "65519.99",
    "65520",
    "70000",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234",
    "1e38",
    "3.4028234663852886e38",
    "3.4028235677973366e38",
    "3.4028235677973367e38",
    "1e39",
    "-1e39",
    "1.401298464324817e-45",
    "7.006492321624085e-46",
    "1e-46",
    "4.9e-324",
    "2.4703282292062327e-324",
    "2.2250738585072014e-308",
    "2.2250738585072011e-308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "1e308",
    "1e309",
    "1e400",
    "-1e400",
    "1e-400",
    "0e9999",
    "1e9999",
    "1e-9999",
    "0.1",
    "0.2",
    "0.30000000000000004",
    "123.45678100585938",
    "9007199254740993",
    "9007199254740993.0",
    "4503599627370496.5",
    "4503599627370497.5",
    "0.000001234567890123456789",
    "1.2345678901234567e-05",
    "1.2345678901234567e+20",
    "2.5e-1",
    "5e-324",
    "1.0000000000000002",
    "0.99999999999999994",
    "0.99999999999999995",
    "12345678901234567890e-10",
    "01",
    "-01",
    "00",
    "1.",
    ".5",
    "-.5",
    "+1",
    "-",
    "1e",
    "1e+",
    "1e-",
    "--1",
    "1.e5",
    "0x10",
    "1_0",
    "NaN",
    "Infinity",
    "-Infinity",
    "1.5.2",
    "1e5e5",
    "1ee5",
    "0.",
    "-0.",
    "1 2",
];

/// How many random bodies a property test runs: fewer in debug builds.
pub(super) fn random_cases() -> usize {
    if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    }
}

/// The whitespace a random body puts between its tokens: none, spaces, or every kind JSON allows.
pub(super) fn random_ws(rng: &mut Rng) -> &'static [&'static str] {
    match rng.below(3) {
        0 => &[""],
        1 => &["", " "],
        _ => &["", " ", "\n", "\t", "\r\n  "],
    }
}

/// A random number's text: a float32 or float64 as Python writes it, digits with a point and an
/// exponent anywhere, a halfway case rounded to 17-19 digits, an integer, or an edge case.
pub(super) fn random_number(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => {
            let x = f32::from_bits(rng.next() as u32);
            if x.is_finite() {
                format!("{}", x as f64)
            } else {
                "1".into()
            }
        }
        1 => {
            let x = f64::from_bits(rng.next());
            match (x.is_finite(), rng.below(2)) {
                (false, _) => "2".into(),
                (true, 0) => format!("{x:?}"),
                (true, _) => format!("{x:e}"),
            }
        }
        2 => {
            // Halfway between two neighbouring floats, written with 17 to 19 significant digits
            // (rounded or truncated): the cases correct rounding is about.
            let x = f64::from_bits(rng.next() >> 2 | 0x3000_0000_0000_0000);
            let up = f64::from_bits(x.to_bits() + 1);
            let mid = x / 2.0 + up / 2.0; // not exact; the digits around it are what matter
            let digits = 16 + rng.below(3);
            format!("{mid:.digits$e}")
        }
        3 => {
            let (int, frac) = (rng.below(8), rng.below(22));
            let mut s = String::new();
            if rng.below(3) == 0 {
                s.push('-');
            }
            s += &if int == 0 {
                "0".to_string()
            } else {
                format!("{}{}", 1 + rng.below(9), rng.digits(int - 1))
            };
            if frac > 0 {
                s += &format!(".{}", rng.digits(frac));
            }
            if rng.below(3) == 0 {
                let sign = rng.pick(&["", "+", "-"]);
                s += &format!("{}{sign}{}", rng.pick(&["e", "E"]), rng.below(40));
            }
            s
        }
        4 => format!("{}", rng.next() as i64 >> rng.below(64)),
        5 => format!("{}", (rng.below(2000) as f32 - 1000.0) / 8.0),
        6 => {
            // A float32 image value as json.dumps writes it (what the benchmark sends).
            let x = (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0;
            format!("{}", x as f64)
        }
        _ => rng.pick(EDGE_NUMBERS).to_string(),
    }
}

/// The fast path's number scanner against serde_json (built with `float_roundtrip`) and the standard
/// library's correctly rounded parser, over edge cases and random text.
#[test]
fn number_scan_matches_serde_and_std() {
    let check = |text: &str| -> bool {
        let serde = serde_json::from_str::<serde_json::Number>(text);
        let as_f32 = number::scan_f32(text.as_bytes(), 0);
        let Some((n, end)) = number::scan(text.as_bytes(), 0) else {
            assert!(as_f32.is_none(), "{text}: scan_f32 took what scan leaves");
            return false;
        };
        // scan_f32 is scan + the cast `Tensor::push` makes for DT_FLOAT (None where it refuses).
        let x = match n {
            Number::U(v) => v as f64,
            Number::I(v) => v as f64,
            Number::F(v) => v,
        };
        let expected = Some((x as f32, end)).filter(|(y, _)| y.is_finite());
        assert_eq!(
            as_f32.map(|(y, e)| (y.to_bits(), e)),
            expected.map(|(y, e)| (y.to_bits(), e)),
            "{text}"
        );
        if end < text.len() {
            return false; // the caller needs a separator there, finds none and gives up
        }
        let serde = serde.unwrap_or_else(|e| panic!("{text}: scanned, serde refused: {e}"));
        match n {
            Number::U(v) => assert_eq!(serde.as_u64(), Some(v), "{text}"),
            Number::I(v) => {
                assert!(serde.is_i64() && !serde.is_u64(), "{text}");
                assert_eq!(serde.as_i64(), Some(v), "{text}");
            }
            Number::F(v) => {
                assert!(serde.is_f64(), "{text}");
                let s = serde.as_f64().expect("f64");
                assert_eq!(v.to_bits(), s.to_bits(), "{text}: {v:e} vs serde {s:e}");
                let std: f64 = text.parse().expect("std parses what serde does");
                assert_eq!(v.to_bits(), std.to_bits(), "{text}: {v:e} vs std {std:e}");
            }
        }
        true
    };
    for text in EDGE_NUMBERS {
        check(text);
    }
    for bad in [
        "01", "-01", "00", "1.", ".5", "+1", "-", "1e", "1e+", "--1", "1.e5", "NaN", "1.5.2",
        "0x10", "1e5e5", "0.", "1 2",
    ] {
        assert!(
            serde_json::from_str::<serde_json::Number>(bad).is_err(),
            "{bad}"
        );
        assert!(!check(bad), "{bad} must not scan whole");
    }
    let mut rng = Rng(7);
    let mut scanned = 0;
    let cases = if cfg!(debug_assertions) {
        300_000
    } else {
        5_000_000
    };
    for _ in 0..cases {
        scanned += check(&random_number(&mut rng)) as usize;
    }
    assert!(scanned > cases * 3 / 4, "{scanned} of {cases}");
}

/// `scan_f32`'s short path (a number within one 8-byte word, `short_f32`) gives what the general path
/// gives (`scan` and the cast), the end index too, whatever follows the number: separators, the
/// bytes that continue a number (digit, `.`, `e`), garbage, the body's end.
#[test]
fn short_numbers_match_the_general_path_before_any_suffix() {
    let mut rng = Rng(13);
    let suffixes = [
        "", ",", ", ", " ", "]", "}", "\n", "e5", "E-2", ".", ".5", "x", "0", "-", "12345678",
    ];
    let mut texts: Vec<String> = [
        "0",
        "-0",
        "0.0",
        "-0.0",
        "0.5",
        "01",
        "-01",
        "00",
        "1",
        "-1",
        "9999999",
        "-9999999",
        "1234567",
        "12345678",
        "123456.7",
        "12345.6",
        "12345.67",
        "1234.567",
        "0.000001",
        "0.0000001",
        "-0.000001",
        "204.0",
        "255.0",
        "1.",
        "-",
        "-.5",
        "1.e5",
        "0e0",
        "7e",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..20_000 {
        // [-] 1..8 digits, a point somewhere in them or none.
        let n = 1 + rng.below(8);
        let mut d = rng.digits(n);
        if rng.below(4) != 0 {
            d.insert(rng.below(n + 1), '.');
        }
        texts.push(if rng.below(3) == 0 {
            format!("-{d}")
        } else {
            d
        });
    }
    for text in &texts {
        for suffix in suffixes {
            let body = format!("{text}{suffix}");
            let b = body.as_bytes();
            let general =
                number::scan(b, 0).and_then(|(n, end)| Some((tensor::to_f32(n)?.to_bits(), end)));
            let short = number::scan_f32(b, 0).map(|(y, end)| (y.to_bits(), end));
            assert_eq!(short, general, "{body:?}");
            // The same number later in a body (the word loaded from the middle of the buffer).
            let later = format!("[{body}");
            let shifted =
                number::scan_f32(later.as_bytes(), 1).map(|(y, end)| (y.to_bits(), end - 1));
            assert_eq!(shifted, general, "{later:?}");
        }
    }
}

/// The image values (float32s as json.dumps writes them: 17 significant digits) are decided by the
/// exact comparison, not left to the standard library's parser.
#[test]
fn image_values_take_the_exact_comparison() {
    let mut rng = Rng(5);
    let mut deferred = 0;
    for _ in 0..100_000 {
        let x = (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0;
        let text = format!("{}", x as f64);
        let point = text.find('.').map_or(0, |p| text.len() - p - 1);
        let mant: u64 = text.replace('.', "").parse().expect("digits");
        match number::decimal_to_f64(mant, -(point as i32)) {
            Some(v) => assert_eq!(v, x as f64, "{text}"),
            None => deferred += 1,
        }
    }
    assert!(deferred < 100, "{deferred} deferred");
}

/// Halfway cases that fit in 19 digits (exact binary midpoints: ties go to even) and their
/// neighbours one unit in the last digit away, through the exact comparison.
#[test]
fn ties_and_near_ties_round_correctly() {
    let mut rng = Rng(11);
    for _ in 0..100_000 {
        // The midpoint between floats q * 2^(1-s) and (q+1) * 2^(1-s), q in [2^52, 2^53), is
        // (2q+1) / 2^s: s decimal places, 16 + s significant digits.
        let s = 1 + rng.below(3) as u32;
        let q = (1u64 << 52) | (rng.next() >> 12);
        let scaled = (2 * q as u128 + 1) * 5u128.pow(s);
        let text = format!(
            "{}.{:0w$}",
            scaled / 10u128.pow(s),
            scaled % 10u128.pow(s),
            w = s as usize
        );
        for t in [text.clone(), nudge(&text, 1), nudge(&text, -1)] {
            let (n, end) = number::scan(t.as_bytes(), 0).expect("a number");
            assert_eq!(end, t.len());
            let Number::F(v) = n else { panic!("{t}") };
            let std: f64 = t.parse().expect("std parses it");
            assert_eq!(v.to_bits(), std.to_bits(), "{t}");
        }
    }
}

/// Values next to f32 rounding boundaries (halfway between neighbouring f32s, and the overflow and
/// subnormal edges), as 17-digit text and one unit in the last digit either side: the f32 path's
/// shortcut must step aside for them.
#[test]
fn f32_rounding_boundaries_cast_as_the_exact_value() {
    let mut rng = Rng(13);
    let mut cases = vec![f32::MAX, f32::MIN_POSITIVE, 65504.0, 1.0, 0.5];
    cases.extend((0..50_000).map(|_| f32::from_bits(rng.next() as u32 & 0x7F7F_FFFF)));
    for x in cases {
        let up = f32::from_bits(x.to_bits() + 1);
        let mid = if up.is_finite() {
            (f64::from(x) + f64::from(up)) / 2.0 // exact
        } else {
            f64::from(x) + 2f64.powi(103) // where f32 overflows
        };
        for digits in [15, 16, 17, 18] {
            let text = format!("{mid:.digits$e}");
            let mantissa = text.split('e').next().expect("mantissa").to_string();
            let exp = text.split('e').nth(1).expect("exponent");
            for m in [mantissa.clone(), nudge(&mantissa, 1), nudge(&mantissa, -1)] {
                let t = format!("{m}e{exp}");
                let exact = t.parse::<f64>().expect("std parses it") as f32;
                let got = number::scan_f32(t.as_bytes(), 0).map(|(y, _)| y.to_bits());
                assert_eq!(
                    got,
                    Some(exact.to_bits()).filter(|_| exact.is_finite()),
                    "{t}"
                );
                // Written out without an exponent too, where that is short enough.
                if (1e-6..1e6).contains(&mid) {
                    let plain = format!("{}", t.parse::<f64>().expect("std"));
                    let exact = plain.parse::<f64>().expect("std") as f32;
                    let got = number::scan_f32(plain.as_bytes(), 0).map(|(y, _)| y.to_bits());
                    assert_eq!(got, Some(exact.to_bits()), "{plain}");
                }
            }
        }
    }
}

/// `text` with its last digit moved by `by` (carrying as needed).
fn nudge(text: &str, by: i64) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let point = text.len() - text.find('.').expect("a point") - 1;
    let v = (digits.parse::<i128>().expect("digits") + by as i128).to_string();
    let (int, frac) = v.split_at(v.len() - point);
    format!("{}.{frac}", if int.is_empty() { "0" } else { int })
}

pub(super) const NUMERIC: &[DType] = &[
    DType::Float,
    DType::Double,
    DType::Half,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Bool,
    DType::String,
];

/// A random nested array (or scalar) of `shape`, sometimes ragged or with a value the fast path
/// leaves to serde, with random whitespace.
fn random_tensor(rng: &mut Rng, shape: &[usize], ws: &[&str]) -> String {
    let mut s = String::new();
    match shape.split_first() {
        None => {
            s += &match rng.below(60) {
                0 => rng
                    .pick(&["true", "null", "\"ab\"", "{\"b64\": \"aGk=\"}", "[]", "[1]"])
                    .to_string(),
                _ => random_number(rng),
            };
        }
        Some((&n, rest)) => {
            s.push('[');
            let n = if rng.below(40) == 0 { n + 1 } else { n };
            for i in 0..n {
                if i > 0 {
                    s += rng.pick(ws);
                    s.push(',');
                }
                s += rng.pick(ws);
                s += &random_tensor(rng, rest, ws);
            }
            s += rng.pick(ws);
            s += if rng.below(200) == 0 { ",]" } else { "]" };
        }
    }
    s
}

/// A random body: row or column, named or unnamed, with or without other keys.
pub(super) fn random_body(
    rng: &mut Rng,
    spec: &[(String, DType)],
    shape: &[usize],
    ws: &[&str],
) -> String {
    let value = match rng.below(4) {
        0 => {
            let mut rows = vec![1 + rng.below(3)];
            rows.extend_from_slice(shape);
            let w = rng.pick(ws);
            format!(r#""instances":{w}{}"#, random_tensor(rng, &rows, ws))
        }
        1 => {
            let count = rng.below(3) + usize::from(rng.below(10) != 0);
            let mut objects = Vec::new();
            for _ in 0..count {
                let mut entries = Vec::new();
                for (name, _) in spec {
                    if rng.below(20) != 0 {
                        let w = rng.pick(ws);
                        entries.push(format!(r#""{name}":{w}{}"#, random_tensor(rng, shape, ws)));
                    }
                }
                objects.push(format!("{{{}}}", entries.join(",")));
            }
            let sep = format!(",{}", rng.pick(ws));
            format!(r#""instances": [{}]"#, objects.join(&sep))
        }
        2 => {
            let w = rng.pick(ws);
            format!(r#""inputs":{w}{}"#, random_tensor(rng, shape, ws))
        }
        _ => {
            let mut entries = Vec::new();
            for (name, _) in spec {
                let w = rng.pick(ws);
                entries.push(format!(r#""{name}" :{w}{}"#, random_tensor(rng, shape, ws)));
            }
            format!(r#""inputs": {{{}}}"#, entries.join(", "))
        }
    };
    let (a, b) = (rng.pick(ws), rng.pick(ws));
    match rng.below(6) {
        0 => format!(r#"{{"signature_name": "serving_default", {value}}}"#),
        1 => format!(r#"{{{value},{a}"signature_name":"s"{b}}}"#),
        2 => format!(r#"{{"x": 1.5e3, {value}, "y": -0}}"#),
        3 => format!("{a}{{{b}{value}{a}}}{b}"),
        4 => format!(r#"{{"instances": [1], {value}}}"#),
        _ => format!("{{{value}}}"),
    }
}

/// Whole bodies in every format, dtype and shape, against the serde path.
#[test]
fn fast_path_matches_serde_on_random_bodies() {
    let mut rng = Rng(3);
    let (mut accepted, mut taken) = (0, 0);
    let mut left: Vec<String> = Vec::new();
    let cases = random_cases();
    for _ in 0..cases {
        let ws = random_ws(&mut rng);
        let shape: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(4)).collect();
        let names = ["x", "y", if rng.below(10) == 0 { "b64" } else { "z" }];
        let spec: Vec<(String, DType)> = (0..1 + rng.below(3))
            .map(|i| {
                let dtype = match rng.below(2) {
                    0 => rng.pick(&[DType::Float, DType::Double]),
                    _ => rng.pick(NUMERIC),
                };
                (names[i].to_string(), dtype)
            })
            .collect();
        let body = random_body(&mut rng, &spec, &shape, ws);
        let (ok, fast) = same_on_both_paths(body.as_bytes(), &spec);
        accepted += ok as usize;
        taken += fast as usize;
        if ok && !fast && left.len() < 20 {
            left.push(body);
        }
    }
    // Both kinds are common, and the fast path takes most accepted bodies (the rest carry a value
    // it leaves to serde: `{"b64"}`, an input called "b64", an integer of more than 19 digits).
    assert!(accepted > cases / 4, "{accepted} of {cases} accepted");
    assert!(
        taken > accepted * 4 / 5,
        "{taken} of {accepted} taken; some left: {left:#?}"
    );
}
