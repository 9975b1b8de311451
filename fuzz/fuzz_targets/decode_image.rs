//! Any bytes given to the image decoder must come back as an image or an error, never a panic.
//!
//! Run with `cargo +nightly fuzz run decode_image fuzz/seeds` from the repository root
//! (seeds: small JPEG/PNG files, also the fixtures of rust/image/'s unit tests).
#![no_main]

use ovms_rs_core::image::{decode_batch, probe, resize_bilinear};
use libfuzzer_sys::fuzz_target;

/// Decoding is bounded by the header check (2^28 pixels); keep single runs fast for the fuzzer.
const MAX_FUZZ_PIXELS: usize = 1 << 20;

fuzz_target!(|image: &[u8]| {
    let Ok(info) = probe(image) else { return };
    if info.width * info.height > MAX_FUZZ_PIXELS {
        return;
    }
    // A resize target that varies with the input, so plain image files work as seeds.
    let target = (1 + image.len() % 17, 1 + image.len() / 17 % 61);
    if let Ok((shape, pixels)) = decode_batch(&[image, image], None) {
        assert_eq!(shape, [2, info.height, info.width, info.channels]);
        let (one, two) = pixels.split_at(pixels.len() / 2);
        assert_eq!(one, two, "decoding is deterministic");
        let mut resized = vec![0; target.0 * target.1 * info.channels];
        resize_bilinear(
            one,
            info.width,
            info.height,
            info.channels,
            &mut resized,
            target.1,
            target.0,
        );
        let (shape, batch) =
            decode_batch(&[image], Some(target)).expect("decoded once, decodes again");
        assert_eq!(shape, [1, target.0, target.1, info.channels]);
        assert_eq!(batch, resized);
    }
});
