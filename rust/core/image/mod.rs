//! Binary (encoded image) inputs: JPEG/PNG decoding and OpenCV-compatible bilinear resize.
//!
//! OVMS decodes each image with `cv::imdecode(IMREAD_UNCHANGED)` and resizes it with
//! `cv::resize(INTER_LINEAR)`; this module reproduces that output:
//! - colour -> 3 channels in **BGR** order; grayscale -> 1 channel (a PNG tRNS gray key is ignored);
//!   PNG with alpha, gray+alpha, or an RGB/palette tRNS chunk -> 4 channels BGRA; CMYK/YCCK JPEG -> BGR;
//! - 16-bit PNG samples keep their high byte (what libpng's strip-16 gives OpenCV's 8-bit reads);
//! - the resize is OpenCV's fixed-point kernel (half-pixel centres, 11-bit weights, the rounding of its
//!   SIMD vertical pass), bit-exact with cv2 on every size tried (see `tests/test_native_image.py`).
//!
//! Decoders, picked by measurement against cv2 (libjpeg-turbo, libpng):
//! - `zune-jpeg`: fastest pure-Rust JPEG decoder measured, decodes straight into the caller's buffer in
//!   RGB (its SIMD colour conversion has no BGR variant; the resize swaps R and B for free, an
//!   unresized image gets a separate swap). Its 4:2:0 chroma upsampling rounds twice where
//!   libjpeg-turbo rounds once, so pixels differ from cv2 by ~0.2 on average (at most a few levels). `jpeg-decoder` was closer (~0.1) but slower, spawns
//!   threads per image and is in maintenance mode.
//! - `png`: faster than `zune-png` on most colour types and rejects the same corrupt files as libpng.
//!
//! Hostile input: sizes are checked from the header before anything is allocated, decoder panics are
//! caught and reported as parse failures, and nothing from the data is unwrapped.
//!
//! Layout: this file holds the limits, header probing and per-image dispatch; `jpeg`, `png`, `resize`,
//! `batch` and `pixel` (the cast to the model's precision) hold one concern each, `avx2` the x86_64
//! SIMD kernels. The extension's `image` module
//! is the Python face (`decode_images`, with the memory budget and the metrics).

#[cfg(target_arch = "x86_64")]
mod avx2;
mod batch;
mod jpeg;
mod pixel;
mod png;
mod resize;

#[cfg(test)]
mod mutation_tests;
#[cfg(test)]
mod test_support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use zune_core::colorspace::ColorSpace;

use crate::error::{Error, Result};

pub use batch::{decode_batch, decode_batch_within};
pub use half::f16;
pub use pixel::Pixel;
pub use resize::resize_bilinear;

/// Largest width or height accepted (checked from the header, before decoding).
pub const MAX_SIDE: usize = 16384;
/// Largest number of pixels accepted (checked from the header, before decoding).
pub const MAX_PIXELS: usize = 1 << 28;
/// Largest total size of a decoded batch, resized copies included (checked from the headers, before
/// decoding).
pub const MAX_BATCH_BYTES: usize = 1 << 30;

// OVMS's refusals of an image or batch are `Error::Image*` kinds (its wording: `ovms_rs.errors`).
#[cfg(test)]
pub(crate) const PARSING_FAILED: Error = Error::ImageParsingFailed;
#[cfg(test)]
pub(crate) const STRING_VAL_EMPTY: Error = Error::ImageEmpty;

fn parsing_failed() -> Error {
    Error::ImageParsingFailed
}

/// Size and channel count of a decoded image (row-major, interleaved `height x width x channels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl ImageInfo {
    pub fn byte_len(&self) -> usize {
        self.width * self.height * self.channels
    }
}

/// What the header said, and how to decode the rest.
#[derive(Clone, Copy, Debug)]
struct Probe {
    info: ImageInfo,
    codec: Codec,
}

#[derive(Clone, Copy, Debug)]
enum Codec {
    /// `out` is what zune-jpeg writes; `swap_rb`: it is RGB, to be turned into BGR (zune-jpeg's BGR
    /// output skips its SIMD colour conversion, and has no BGR path from CMYK).
    Jpeg {
        out: ColorSpace,
        swap_rb: bool,
        progressive: bool,
    },
    Png,
}

fn check_size(width: usize, height: usize) -> Result<()> {
    let ok = (1..=MAX_SIDE).contains(&width)
        && (1..=MAX_SIDE).contains(&height)
        && width * height <= MAX_PIXELS;
    if ok {
        Ok(())
    } else {
        Err(parsing_failed())
    }
}

/// Reads the header of one encoded image: its size and the channel count it decodes to.
pub fn probe(data: &[u8]) -> Result<ImageInfo> {
    probe_codec(data).map(|p| p.info)
}

fn probe_codec(data: &[u8]) -> Result<Probe> {
    if data.is_empty() {
        Err(Error::ImageEmpty)
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg::probe_jpeg(data)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        png::probe_png(data)
    } else {
        Err(parsing_failed())
    }
}

/// Decodes the image `probe` describes into `out` (`probe.info.byte_len()` bytes).
fn decode_into(data: &[u8], probe: &Probe, out: &mut [u8]) -> Result<()> {
    if decode_unswapped(data, probe, out)? {
        swap_rb(out, probe.info.channels);
    }
    Ok(())
}

/// [`decode_into`], except that channels 0 and 2 are left in the decoder's (RGB) order where the
/// result is true: the resize swaps them for free.
fn decode_unswapped(data: &[u8], probe: &Probe, out: &mut [u8]) -> Result<bool> {
    // The decoders are fuzzed upstream, but a panic on a hostile image must stay a client error.
    catch_unwind(AssertUnwindSafe(|| decode_into_unguarded(data, probe, out)))
        .unwrap_or_else(|_| Err(parsing_failed()))
}

fn decode_into_unguarded(data: &[u8], probe: &Probe, out: &mut [u8]) -> Result<bool> {
    if out.len() != probe.info.byte_len() {
        return Err(parsing_failed());
    }
    match probe.codec {
        Codec::Jpeg {
            out: colorspace,
            swap_rb,
            progressive,
        } => {
            jpeg::decode_jpeg(data, probe.info, colorspace, progressive, out)?;
            Ok(swap_rb)
        }
        Codec::Png => png::decode_png(data, probe.info, out).map(|()| false),
    }
}

/// Swaps channels 0 and 2 of every pixel of an interleaved image with `cn` (3 or 4) channels.
fn swap_rb(pixels: &mut [u8], cn: usize) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if cn == 3 && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement.
        done = unsafe { avx2::swap_rb3(pixels) };
    }
    pixels[done..]
        .chunks_exact_mut(cn)
        .for_each(|px| px.swap(0, 2));
}

/// Decodes one image (for tests and tools; servers use [`decode_batch`]).
pub fn decode(data: &[u8]) -> Result<(ImageInfo, Vec<u8>)> {
    let probe = probe_codec(data)?;
    let mut out = vec![0; probe.info.byte_len()];
    decode_into(data, &probe, &mut out)?;
    Ok((probe.info, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_support::*;

    #[test]
    fn huge_headers_fail_before_decoding() {
        for data in [
            jpeg_with_size(16385, 16),
            jpeg_with_size(20000, 20000),
            jpeg_with_size(65535, 65535),
        ] {
            assert_eq!(error(probe(&data)), PARSING_FAILED);
            assert_eq!(error(decode(&data)), PARSING_FAILED);
        }
        for data in [
            png_with_size(16385, 1),
            png_with_size(16384, 16385),
            png_with_size(u32::MAX, u32::MAX),
        ] {
            assert_eq!(error(probe(&data)), PARSING_FAILED);
            assert_eq!(error(decode(&data)), PARSING_FAILED);
        }
        // The limit itself is accepted by the header check (not decoded here: 768 MiB).
        let at_limit = ImageInfo {
            width: 16384,
            height: 16384,
            channels: 3,
        };
        let mut jpeg_at_limit = jpeg_with_size(16384, 16384);
        let min_len = 16384 * 16384 / jpeg::MIN_PIXELS_PER_BYTE;
        assert_eq!(
            error(probe(&jpeg_at_limit)),
            PARSING_FAILED,
            "too few bytes for that size"
        );
        jpeg_at_limit.resize(min_len, 0);
        assert_eq!(probe(&jpeg_at_limit).unwrap(), at_limit);
        assert_eq!(probe(&png_with_size(16384, 16384)).unwrap(), at_limit);
        // A header that promises more than the data holds: libjpeg (so cv2) pads a baseline JPEG with
        // grey, libpng fails.
        assert_eq!(
            decode(&jpeg_with_size(480, 320)).map(|d| d.0).ok(),
            Some(ImageInfo {
                width: 480,
                height: 320,
                channels: 3
            })
        );
        assert_eq!(error(decode(&png_with_size(64, 64))), PARSING_FAILED);
    }

    #[test]
    fn swap_rb_swaps_every_pixel() {
        for cn in [3, 4] {
            for pixels in (0..70).chain([1000, 50_001]) {
                let src: Vec<u8> = (0..pixels * cn).map(|i| (i * 7 % 251) as u8).collect();
                let mut got = src.clone();
                swap_rb(&mut got, cn);
                for (a, b) in got.chunks_exact(cn).zip(src.chunks_exact(cn)) {
                    assert_eq!([a[0], a[1], a[2]], [b[2], b[1], b[0]], "{pixels} x {cn}");
                    assert_eq!(a[3..], b[3..]);
                }
            }
        }
    }

    #[test]
    fn garbage_and_empty() {
        assert_eq!(error(decode(b"")), STRING_VAL_EMPTY);
        for data in [
            &b"not an image"[..],
            b"\xFF\xD8\xFF",
            b"\x89PNG\r\n\x1a\n",
            b"GIF89a....",
            b"BM....",
        ] {
            assert_eq!(error(decode(data)), PARSING_FAILED, "{data:?}");
        }
    }
}
