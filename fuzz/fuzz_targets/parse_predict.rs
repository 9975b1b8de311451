//! Any bytes given to the PredictRequest parser must come back as a request or an error, never a
//! panic; and whatever an input decodes to must be made of those bytes (no allocation beyond them)
//! and have a shape numpy can represent.
//!
//! Run with `cargo +nightly fuzz run parse_predict` from the repository root. The CI-sized counterpart
//! is tests/reliability/test_fuzz_parser.py (hypothesis over `_native.parse_predict_request`).
#![no_main]

use ovms_rs_core::dtype::DType;
use ovms_rs_core::error::Error;
use ovms_rs_core::predict::tensor_proto::{parse_request, Decoded};
use libfuzzer_sys::fuzz_target;

/// numpy refuses a shape whose dimensions multiply (zeros included, as numpy computes it) past isize.
fn numpy_can_hold(shape: &[i64], item_size: usize) -> bool {
    shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(item_size.max(1), |acc: usize, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
        .is_some_and(|bytes| bytes <= isize::MAX as usize)
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request(data) else {
        return;
    };
    for (name, tensor) in &request.inputs {
        let dtype = DType::from_wire(tensor.dtype);
        let size = dtype.map_or(0, DType::size);
        let values = match tensor.decode(name) {
            Decoded::Unsupported => {
                assert!(dtype.is_none(), "a known dtype reported as unsupported");
                continue;
            }
            Decoded::Invalid(error) => {
                let zero_dim = tensor.shape.iter().any(|&d| d <= 0);
                assert_eq!(
                    matches!(error, Error::ZeroDimension { .. }),
                    zero_dim,
                    "a zero dimension is reported as such, and only it: {error:?}"
                );
                continue;
            }
            Decoded::Strings(spans) => {
                assert_eq!(dtype, Some(DType::String));
                for (offset, len) in spans {
                    assert!(offset.checked_add(len).is_some_and(|end| end <= data.len()));
                }
                continue;
            }
            Decoded::View { offset, count } => {
                let end = count.checked_mul(size).and_then(|n| n.checked_add(offset));
                assert!(end.is_some_and(|end| end <= data.len()), "a view past the request");
                count
            }
            Decoded::Floats(v) => v.len(),
            Decoded::Doubles(v) => v.len(),
            Decoded::I8(v) => v.len(),
            Decoded::U8(v) => v.len(),
            Decoded::I16(v) => v.len(),
            Decoded::U16(v) => v.len(),
            Decoded::I32(v) => v.len(),
            Decoded::I64(v) => v.len(),
            Decoded::U32(v) => v.len(),
            Decoded::U64(v) => v.len(),
            Decoded::Bools(v) => v.len(),
        };
        // Every value took at least one byte of the request: nothing was allocated beyond its content.
        assert!(values <= data.len(), "{values} values from {} bytes", data.len());
        let declared = tensor
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| u64::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
        assert_eq!(declared, Some(values as u64), "values do not match the shape");
        assert!(
            numpy_can_hold(&tensor.shape, size),
            "shape {:?} decoded, but numpy cannot make an array of it",
            tensor.shape
        );
    }
});
