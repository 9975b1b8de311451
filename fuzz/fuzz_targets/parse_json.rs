//! Any bytes given to the REST body parser's parallel path (`json/parallel.rs`) must come back as
//! `None` or as exactly what the serial paths make of them, never a panic; and where the serial paths
//! refuse a body, the parallel path must have left it to them.
//!
//! The first byte picks the model's inputs and the task size (small tasks cut arrays at commas), the
//! rest is the body. Run with `cargo +nightly fuzz run parse_json` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovms_rs_core::dtype::DType;
use ovms_rs_core::json::request::{parse_parallel, parse_serial};

const DTYPES: [DType; 8] = [
    DType::Float,
    DType::Double,
    DType::Half,
    DType::Int8,
    DType::UInt8,
    DType::Int32,
    DType::UInt64,
    DType::Bool,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dtype = DTYPES[usize::from(pick & 7)];
    let expected: Vec<(String, DType)> = match (pick >> 3) & 3 {
        0 | 1 => vec![("x".into(), dtype)],
        2 => vec![("x".into(), dtype), ("y".into(), DType::Float)],
        _ => vec![("x".into(), DType::Int64), ("y".into(), dtype)],
    };
    let task_bytes = [1, 7, 64, usize::MAX][usize::from(pick >> 5) & 3];
    let Some(parallel) = parse_parallel(body, &expected, task_bytes) else {
        return;
    };
    match parse_serial(body, &expected) {
        Ok(serial) => assert_eq!(format!("{parallel:?}"), format!("{serial:?}")),
        Err(e) => panic!("the parallel path parsed a body the serial paths refuse: {e:?}"),
    }
});
