//! The parallel path (`parallel.rs`) against the serial fast path and the serde path: the same
//! result bit for bit where it answers, an answer wherever the fast path has one, and the serial
//! paths' errors (through `request::parse`) for every body it leaves.

use super::fast;
use super::parallel;
use super::request::{parse, parse_serde};
use super::request_tests::{inputs, random_body, random_cases, random_ws, Rng, NUMERIC};
use crate::dtype::DType;

/// `parallel` answers exactly when the fast path does, with the same result (Debug shows every
/// float's shortest form and -0.0), which the serde path agrees with.
fn same_as_serial(body: &[u8], spec: &[(String, DType)], task_bytes: usize) -> bool {
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(400)
            .collect::<String>()
    };
    let par = parallel::parse_in_tasks(body, spec, task_bytes);
    let fast = fast::parse(body, spec);
    match (&par, &fast) {
        (None, None) => false,
        (Some(p), Some(f)) => {
            assert_eq!(format!("{p:?}"), format!("{f:?}"), "{}", text());
            let s = parse_serde(body, spec).unwrap_or_else(|e| panic!("{}: {e:?}", text()));
            assert_eq!(format!("{p:?}"), format!("{s:?}"), "{}", text());
            true
        }
        _ => panic!("parallel {par:?} vs fast {fast:?}: {}", text()),
    }
}

/// Bodies in every format, dtype and small shape (often ragged or with a value the fast path leaves
/// to serde), cut into tasks of 1 byte (one array each) up to whole-body.
#[test]
fn parallel_matches_serial_on_random_bodies() {
    let mut rng = Rng(17);
    let mut taken = 0;
    let cases = random_cases();
    for _ in 0..cases {
        let ws = random_ws(&mut rng);
        let shape: Vec<usize> = (0..rng.below(5)).map(|_| rng.below(5)).collect();
        let spec: Vec<(String, DType)> = (0..1 + rng.below(3))
            .map(|i| (["x", "y", "z"][i].to_string(), rng.pick(NUMERIC)))
            .collect();
        let body = random_body(&mut rng, &spec, &shape, ws);
        let task_bytes = rng.pick(&[1, 8, 64, 1 << 20]);
        taken += same_as_serial(body.as_bytes(), &spec, task_bytes) as usize;
    }
    assert!(taken > cases / 10, "{taken} of {cases} taken");
}

/// A number of `dtype` in range, as a client might write it.
fn value(rng: &mut Rng, dtype: DType) -> String {
    match dtype {
        DType::Float | DType::Double => match rng.below(6) {
            0 => {
                let x = f32::from_bits(rng.next() as u32 & 0xBFFF_FFFF); // finite
                match rng.below(2) {
                    0 => format!("{}", x as f64),
                    _ => format!("{:E}", x as f64),
                }
            }
            1 => rng
                .pick(&["0", "-0", "-0.0", "3", "-17", "2.5e-3", "1E+2", "-1e-7"])
                .to_string(),
            2 => format!("{:e}", -((rng.next() >> 11) as f64) / 1e9),
            // Short decimals, as a photo's pixels are written (`204.0`): `number::short_f32`'s.
            3 => {
                let x = (rng.below(20_000_000) as f64 - 10_000_000.0) / 1e4;
                format!("{x:.0$}", rng.below(5))
            }
            _ => {
                let x = (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0;
                format!("{}", x as f64)
            }
        },
        DType::Half => format!("{}", (rng.below(20_000) as f64 - 10_000.0) / 7.0),
        DType::Int8 => format!("{}", rng.below(256) as i64 - 128),
        DType::UInt8 => match rng.below(8) {
            0 => format!("{}.0", rng.below(256)),
            _ => format!("{}", rng.below(256)),
        },
        DType::Int16 => format!("{}", rng.below(65_536) as i64 - 32_768),
        DType::UInt16 => format!("{}", rng.below(65_536)),
        DType::Int32 | DType::Int64 => format!("{}", rng.next() as i32),
        _ => format!("{}", rng.next() as u32),
    }
}

/// An array of `shape` with values of `dtype`, separated by `sep`.
fn array(rng: &mut Rng, shape: &[usize], dtype: DType, sep: &str) -> String {
    match shape.split_first() {
        None => value(rng, dtype),
        Some((&n, rest)) => {
            let items: Vec<String> = (0..n).map(|_| array(rng, rest, dtype, sep)).collect();
            format!("[{}]", items.join(sep))
        }
    }
}

/// A body of `spec`'s inputs, each of `shape` (dim 0 the batch), in format `format` (0: row
/// unnamed, 1: row named, 2: column unnamed, 3: column named).
fn body(
    rng: &mut Rng,
    spec: &[(String, DType)],
    shape: &[usize],
    format: usize,
    sep: &str,
) -> String {
    match format {
        0 => format!(r#"{{"instances": {}}}"#, array(rng, shape, spec[0].1, sep)),
        1 => {
            let rows: Vec<String> = (0..shape[0])
                .map(|_| {
                    let entries: Vec<String> = spec
                        .iter()
                        .map(|(name, dtype)| {
                            format!(r#""{name}": {}"#, array(rng, &shape[1..], *dtype, sep))
                        })
                        .collect();
                    format!("{{{}}}", entries.join(", "))
                })
                .collect();
            format!(
                r#"{{"signature_name": "serving_default", "instances": [{}]}}"#,
                rows.join(sep)
            )
        }
        2 => format!(r#"{{"inputs": {}}}"#, array(rng, shape, spec[0].1, sep)),
        _ => {
            let entries: Vec<String> = spec
                .iter()
                .map(|(name, dtype)| format!(r#""{name}":{}"#, array(rng, shape, *dtype, sep)))
                .collect();
            format!(r#"{{"inputs": {{{}}}}}"#, entries.join(",\n"))
        }
    }
}

/// The dtypes numbers become: `NUMERIC` without BOOL and STRING (its last two), which refuse numbers.
const NUMBERS: &[DType] = NUMERIC.split_at(NUMERIC.len() - 2).0;
const _: () = assert!(matches!(
    NUMERIC.split_at(NUMERIC.len() - 2).1,
    [DType::Bool, DType::String]
));

/// Valid bodies of every format, numeric dtype, batch and several separators, cut into tasks of
/// several sizes: the parallel path takes each one, and its result is the serial paths'. (Arrays of
/// 40 and 90 are pieces `parallel::split` cuts in two.)
#[test]
fn every_format_and_dtype_in_many_tasks() {
    let mut rng = Rng(19);
    let shapes: &[&[usize]] = &[
        &[1, 40],
        &[3, 7, 11],
        &[2, 3, 4, 5],
        &[1, 1, 1, 90],
        &[4, 1],
    ];
    for &dtype in NUMBERS {
        for format in 0..4 {
            for shape in shapes {
                for sep in [",", ", ", " ,\n\t", "\r\n,  "] {
                    let names = if format % 2 == 1 { 1 + rng.below(3) } else { 1 };
                    let spec: Vec<(String, DType)> = (0..names)
                        .map(|i| {
                            (
                                ["a", "b", "c"][i].to_string(),
                                if i == 0 { dtype } else { rng.pick(NUMBERS) },
                            )
                        })
                        .collect();
                    let text = body(&mut rng, &spec, shape, format, sep);
                    for task_bytes in [1, 50, 1000, 1 << 20] {
                        assert!(
                            same_as_serial(text.as_bytes(), &spec, task_bytes),
                            "not taken: {text}"
                        );
                    }
                }
            }
        }
    }
}

/// The byte ranges of the numbers in the tensors of `text` (every number after a `[` or a comma).
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        if c == b',' || c == b'[' {
            let start = i
                + 1
                + b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
            let len = b[start..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                .count();
            if len > 0 {
                spans.push((start, start + len));
            }
        }
    }
    spans
}

/// Large bodies (past `MIN_BODY`, so `request::parse` takes the parallel path first) made ragged,
/// out of range, mistyped, or broken at a random number: the error is the serde path's, word for
/// word, and the parallel path leaves the body.
#[test]
fn large_malformed_bodies_give_the_serial_errors() {
    let mut rng = Rng(23);
    let cases: usize = if cfg!(debug_assertions) { 40 } else { 200 };
    for case in 0..cases {
        let dtype = rng.pick(NUMBERS);
        let spec = inputs(&[("x", dtype)]);
        let format = rng.pick(&[0, 2, 3]);
        let good = body(&mut rng, &spec, &[2, 3, 100, 150], format, ", ");
        assert!(good.len() > parallel::MIN_BODY);
        if case == 0 {
            // The unbroken body first: taken, and as the serial paths parse it.
            assert!(same_as_serial(good.as_bytes(), &spec, 64 * 1024));
            let p = parse(good.as_bytes(), &spec);
            assert_eq!(
                format!("{p:?}"),
                format!("{:?}", parse_serde(good.as_bytes(), &spec))
            );
        }
        let spans = number_spans(&good);
        let (start, end) = spans[rng.below(spans.len())];
        let replacement = match rng.below(12) {
            0 => "1e39".to_string(),
            1 => "300".into(),
            2 => "1.5".into(),
            3 => "-1".into(),
            4 => "null".into(),
            5 => "\"7\"".into(),
            6 => "true".into(),
            7 => "[1]".into(),
            8 => "1, 2".into(), // one more number in this array
            9 => "1,".into(),
            10 => "01".into(),
            _ => "123456789012345678901234".into(),
        };
        let mut bad = format!("{}{replacement}{}", &good[..start], &good[end..]);
        if rng.below(10) == 0 {
            // Or one number fewer: the array, and so the tensor, is ragged.
            let (s, e) = spans[1 + rng.below(spans.len() - 1)];
            if good.as_bytes()[s - 2] == b',' {
                bad = format!("{}{}", &good[..s - 2], &good[e..]);
            }
        }
        if rng.below(20) == 0 {
            bad.truncate(start);
        }
        let serial = parse_serde(bad.as_bytes(), &spec);
        let ours = parse(bad.as_bytes(), &spec);
        assert_eq!(
            format!("{ours:?}"),
            format!("{serial:?}"),
            "case {case}: {replacement}"
        );
        if serial.is_err() {
            assert!(
                parallel::parse(bad.as_bytes(), &spec).is_none(),
                "case {case}"
            );
        }
    }
}

/// Empty arrays beside full ones, arrays of arrays beside numbers, and arrays that differ in length
/// only after the first task: every one left to the serial paths.
#[test]
fn ragged_shapes_are_left_to_the_serial_paths() {
    let f = inputs(&[("x", DType::Float)]);
    for body in [
        r#"{"inputs": [[], [1, 2]]}"#,
        r#"{"inputs": [[1, 2], []]}"#,
        r#"{"inputs": [[1, 2], [3]]}"#,
        r#"{"inputs": [[1], [2, 3]]}"#,
        r#"{"inputs": [[1, 2], [3, 4, 5]]}"#,
        r#"{"inputs": [[[1, 2]], [3, 4]]}"#,
        r#"{"inputs": [[1, 2], [[3, 4]]]}"#,
        r#"{"inputs": [[1, 2], 3]}"#,
        r#"{"inputs": [[1, 2,], [3, 4]]}"#,
        r#"{"inputs": [[1 2], [3, 4]]}"#,
        r#"{"inputs": [[1, 2], [3, 4]"#,
        r#"{"instances": [{"x": [1, 2]}, {"x": [3]}]}"#,
        r#"{"instances": [[[]], [[1]]]}"#,
        r#"{"instances": [[[], []], [[1], [2]]]}"#,
    ] {
        for task_bytes in [1, 1 << 20] {
            assert!(
                parallel::parse_in_tasks(body.as_bytes(), &f, task_bytes).is_none(),
                "{body}"
            );
        }
        let ours = parse(body.as_bytes(), &f);
        assert!(ours.is_err(), "{body}");
        assert_eq!(
            format!("{ours:?}"),
            format!("{:?}", parse_serde(body.as_bytes(), &f))
        );
    }
}

/// Serial (`fast::parse`) against parallel (`request::parse`, which takes the parallel path above
/// `MIN_BODY`) on image bodies as `json.dumps` writes them, and the cost either side of the size
/// threshold.
#[test]
#[ignore = "timing probe: cargo test --release -p ovms_rs_core --lib parallel_timing_probe -- --ignored --nocapture"]
fn parallel_timing_probe() {
    let mut rng = Rng(1);
    let spec = inputs(&[("x", DType::Float)]);
    let image = |rng: &mut Rng, shape: &[usize]| {
        let mut image_value = |r: &mut Rng| {
            let x = (r.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0;
            format!("{}", x as f64)
        };
        fn nest(rng: &mut Rng, shape: &[usize], v: &mut dyn FnMut(&mut Rng) -> String) -> String {
            match shape.split_first() {
                None => v(rng),
                Some((&n, rest)) => {
                    let items: Vec<String> = (0..n).map(|_| nest(rng, rest, v)).collect();
                    format!("[{}]", items.join(", "))
                }
            }
        }
        let format = if shape.len() == 2 {
            "inputs"
        } else {
            "instances"
        };
        format!(r#"{{"{format}": {}}}"#, nest(rng, shape, &mut image_value))
    };
    let runs = 21;
    // Each round times every contender once, in turn: a load that comes and goes hits them alike.
    // Returns each one's min, median and max, in ms.
    let rounds = |fs: &[&dyn Fn()]| {
        let mut t = vec![Vec::new(); fs.len()];
        for _ in 0..runs {
            for (f, t) in fs.iter().zip(&mut t) {
                let start = std::time::Instant::now();
                f();
                t.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        t.into_iter()
            .map(|mut t| {
                t.sort_by(f64::total_cmp);
                [t[0], t[runs / 2], t[runs - 1]]
            })
            .collect::<Vec<_>>()
    };
    let show = |t: [f64; 3]| format!("{:.3} / {:.3} / {:.3}", t[0], t[1], t[2]);
    eprintln!(
        "threads: {}; min / median / max of {runs}, ms",
        rayon::current_num_threads()
    );
    for shape in [
        &[1, 3, 224, 224][..],
        &[8, 3, 224, 224],
        &[1, 150_528], // one flat array, cut at commas
        &[1, 3, 2, 224],
        &[1, 3, 4, 224],
        &[1, 3, 8, 224],
        &[1, 3, 16, 224],
        &[1, 3, 32, 224],
        &[1, 3, 64, 224],
    ] {
        let body = image(&mut rng, shape);
        let b = body.as_bytes();
        let t = rounds(&[
            &|| assert!(fast::parse(b, &spec).is_some()),
            &|| assert!(parallel::parse_in_tasks(b, &spec, parallel::TASK_BYTES).is_some()),
            &|| assert!(parallel::parse_in_tasks(b, &spec, 32 * 1024).is_some()),
            &|| assert!(fast::skim(b, &spec).is_some()),
        ]);
        eprintln!(
            "{shape:?} {} bytes: serial {}, parallel {} (ratio {:.2}x / {:.2}x / {:.2}x); \
             tasks of 32 KB {}; skim {}",
            b.len(),
            show(t[0]),
            show(t[1]),
            t[0][0] / t[1][0],
            t[0][1] / t[1][1],
            t[0][2] / t[1][2],
            show(t[2]),
            show(t[3]),
        );
    }
}

/// One thread's speed on the parallel path's piece parser (`RAYON_NUM_THREADS=1`: every task on the
/// caller), on a photo's pixels as `json.dumps` writes them (`78.0`) and on 17-digit floats.
#[test]
#[ignore = "timing probe: RAYON_NUM_THREADS=1 cargo test --release -p ovms_rs_core --lib piece_timing_probe -- --ignored --nocapture"]
fn piece_timing_probe() {
    let mut rng = Rng(3);
    let spec = inputs(&[("x", DType::Float)]);
    let runs: usize = std::env::var("PROBE_RUNS").map_or(300, |v| v.parse().expect("a count"));
    let body = |value: &mut dyn FnMut() -> String| {
        let rows: Vec<String> = (0..3 * 224)
            .map(|_| {
                let row: Vec<String> = (0..224).map(|_| value()).collect();
                format!("[{}]", row.join(", "))
            })
            .collect();
        let channels: Vec<String> = rows
            .chunks(224)
            .map(|c| format!("[{}]", c.join(", ")))
            .collect();
        format!(r#"{{"instances": [[{}]]}}"#, channels.join(", "))
    };
    let photo = body(&mut || format!("{}.0", rng.below(256)));
    let uniform = body(&mut || {
        format!(
            "{}",
            ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 255.0) as f64
        )
    });
    let only = std::env::var("PROBE_ONLY").unwrap_or_default();
    for (name, body) in [("photo", photo), ("uniform", uniform)] {
        if !name.starts_with(&only) {
            continue;
        }
        let b = body.as_bytes();
        let mut t: Vec<f64> = (0..runs)
            .map(|_| {
                let start = std::time::Instant::now();
                assert!(parallel::parse_in_tasks(b, &spec, parallel::TASK_BYTES).is_some());
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        eprintln!(
            "{name} {} bytes, threads {}: min {:.3} / median {:.3} ms of {runs}",
            b.len(),
            rayon::current_num_threads(),
            t[0],
            t[runs / 2]
        );
    }
}
