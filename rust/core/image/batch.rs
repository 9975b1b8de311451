//! Batches: one `[N, H, W, C]` buffer from many encoded images, with OVMS's error order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::pixel::{widen, Pixel};
use super::resize::{resize_bilinear, resize_bilinear_swap_rb};
use super::{
    decode_into, decode_unswapped, parsing_failed, probe_codec, ImageInfo, Probe, MAX_BATCH_BYTES,
};
use crate::error::{Error, Result};
use crate::parallel;

/// The first rule of OVMS's per-image validation that `this` breaks against the batch's first image.
fn mismatch(first: &ImageInfo, this: &ImageInfo, same_size: bool) -> Option<Error> {
    if same_size && (first.width, first.height) != (this.width, this.height) {
        Some(Error::ImageResolutionMismatch)
    } else if first.channels != this.channels {
        Some(Error::ImageChannelsMismatch)
    } else {
        None
    }
}

/// Bytes one image of a batch needs: its decoded pixels, plus its resized copy when it is resized.
fn batch_bytes(info: &ImageInfo, size: Option<(usize, usize)>) -> Option<usize> {
    let resized = match size {
        Some((height, width)) if (width, height) != (info.width, info.height) => {
            height.checked_mul(width)?.checked_mul(info.channels)?
        }
        _ => 0,
    };
    info.byte_len().checked_add(resized)
}

/// Bytes one image of a batch in `T` allocates: its share of the batch, plus its scratch (the decoded
/// image when resized; for a type other than u8, also the 8-bit samples before the cast).
fn allocated_bytes<T: Pixel>(info: &ImageInfo, target: usize, resized: bool) -> usize {
    let decoded = if resized { info.byte_len() } else { 0 };
    let samples = if T::as_u8_mut(&mut []).is_some() {
        0
    } else {
        target
    };
    target * std::mem::size_of::<T>() + decoded + samples
}

/// Decodes every image into one `[N, H, W, C]` buffer, resized to `size = (height, width)` when given,
/// else all images must share one size. Errors are OVMS's, in its order: an empty entry first, then
/// image by image a parse failure before a size or channel mismatch with the first image. A batch whose
/// headers add up to more than [`MAX_BATCH_BYTES`] fails as a parse failure before anything is decoded.
pub fn decode_batch(
    images: &[&[u8]],
    size: Option<(usize, usize)>,
) -> Result<([usize; 4], Vec<u8>)> {
    decode_batch_within::<u8>(images, size, |_| Ok(()))
}

/// `decode_batch` into elements of `T` (the model's precision, cast as numpy's `astype` casts u8),
/// calling `reserve` with the bytes the decode will allocate (the batch in `T` and each image's
/// scratch), from the headers, before allocating any of it; its error is returned. The
/// [`MAX_BATCH_BYTES`] limit counts 8-bit samples whatever `T` is.
pub fn decode_batch_within<T: Pixel>(
    images: &[&[u8]],
    size: Option<(usize, usize)>,
    reserve: impl FnOnce(usize) -> Result<()>,
) -> Result<([usize; 4], Vec<T>)> {
    if images.iter().any(|data| data.is_empty()) {
        return Err(Error::ImageEmpty);
    }
    let mut probes: Vec<Probe> = Vec::with_capacity(images.len());
    // Checked image by image, so that no image is decoded (not even to order errors) past the budget.
    let mut budget = MAX_BATCH_BYTES;
    for data in images {
        let probe = probe_codec(data)?;
        budget = batch_bytes(&probe.info, size)
            .and_then(|bytes| budget.checked_sub(bytes))
            .ok_or_else(parsing_failed)?;
        let broken = probes
            .first()
            .and_then(|first| mismatch(&first.info, &probe.info, size.is_none()));
        probes.push(probe);
        if let Some(mismatch) = broken {
            // OVMS decodes images one at a time: an earlier (or this) image that fails to decode wins.
            let failed = AtomicBool::new(false);
            let decoded: Vec<_> = images.iter().zip(&probes).collect();
            parallel::for_each(decoded, |(data, probe)| {
                if !failed.load(Ordering::Relaxed)
                    && decode_into(data, probe, &mut vec![0; probe.info.byte_len()]).is_err()
                {
                    failed.store(true, Ordering::Relaxed);
                }
            });
            return Err(if failed.into_inner() {
                parsing_failed()
            } else {
                mismatch
            });
        }
    }
    let Some(first) = probes.first().map(|p| p.info) else {
        let (height, width) = size.unwrap_or((0, 0));
        return Ok(([0, height, width, 0], Vec::new()));
    };
    let (height, width) = size.unwrap_or((first.height, first.width));
    let target = ImageInfo {
        width,
        height,
        channels: first.channels,
    };
    let shape = [images.len(), height, width, first.channels];
    let total = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(parsing_failed)?;
    let target_len = target.byte_len();
    let allocated = probes.iter().fold(0usize, |acc, p| {
        let resized = (p.info.width, p.info.height) != (width, height);
        acc.saturating_add(allocated_bytes::<T>(&p.info, target_len, resized))
    });
    reserve(allocated)?;
    let mut out = vec![T::default(); total];
    let decode_u8 = |dst: &mut [u8], data: &[u8], probe: &Probe| {
        let info = probe.info;
        if (info.width, info.height) == (width, height) {
            return decode_into(data, probe, dst);
        }
        // The decoded image at its own size, before resizing into `dst`.
        let mut scratch = vec![0; info.byte_len()];
        let (w, h, cn) = (info.width, info.height, info.channels);
        if decode_unswapped(data, probe, &mut scratch)? {
            resize_bilinear_swap_rb(&scratch, (w, h, cn), dst, (width, height));
        } else {
            resize_bilinear(&scratch, w, h, cn, dst, width, height);
        }
        Ok(())
    };
    let decode_one = |dst: &mut [T], data: &[u8], probe: &Probe| {
        if let Some(dst) = T::as_u8_mut(dst) {
            return decode_u8(dst, data, probe);
        }
        let mut samples = vec![0; target_len];
        decode_u8(&mut samples, data, probe)?;
        widen(&samples, dst);
        Ok(())
    };
    let tasks: Vec<_> = out
        .chunks_mut(target_len)
        .zip(images.iter().zip(&probes))
        .enumerate()
        .collect();
    // The lowest failing index wins, as when OVMS decodes one image after another.
    let first_error: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let first = || first_error.lock().unwrap_or_else(PoisonError::into_inner);
    parallel::for_each(tasks, |(i, (dst, (data, probe)))| {
        if first().as_ref().is_some_and(|(j, _)| *j < i) {
            return; // an earlier image already failed the request
        }
        if let Err(error) = decode_one(dst, data, probe) {
            let mut first = first();
            if first.as_ref().is_none_or(|(j, _)| i < *j) {
                *first = Some((i, error));
            }
        }
    });
    if let Some((_, error)) = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(error);
    }
    Ok((shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::test_support::*;
    use crate::image::{PARSING_FAILED, STRING_VAL_EMPTY};

    const RESOLUTION_MISMATCH: Error = Error::ImageResolutionMismatch;
    const CHANNELS_MISMATCH: Error = Error::ImageChannelsMismatch;

    #[test]
    fn batch_shapes_and_errors() {
        let png_rgb = raw_png(5, 4, 2, 3, &[9; 60], false);
        let (shape, pixels) = decode_batch(&[PHOTO, PHOTO_PROGRESSIVE, PHOTO], None).unwrap();
        assert_eq!(shape, [3, 32, 48, 3]);
        assert_eq!(pixels[..4608], decoded(PHOTO).1[..]);
        assert_eq!(pixels[..4608], pixels[2 * 4608..]);
        let (shape, pixels) = decode_batch(&[PHOTO, &png_rgb], Some((10, 20))).unwrap();
        assert_eq!(shape, [2, 10, 20, 3]);
        assert!(pixels[600..].iter().all(|&v| v == 9));
        assert_eq!(decode_batch(&[], None).unwrap(), ([0, 0, 0, 0], vec![]));

        let err = |images: &[&[u8]], size| decode_batch(images, size).unwrap_err();
        assert_eq!(err(&[PHOTO, &png_rgb], None), RESOLUTION_MISMATCH);
        assert_eq!(err(&[PHOTO, GRAY], Some((8, 8))), CHANNELS_MISMATCH);
        assert_eq!(err(&[b"garbage", b""], None), STRING_VAL_EMPTY);
        // OVMS decodes image by image: a body that fails to decode before the mismatch wins ...
        let cut = &PHOTO[..PHOTO.len() - 2];
        assert_eq!(err(&[PHOTO, cut, &png_rgb], None), PARSING_FAILED);
        assert_eq!(err(&[PHOTO, &png_rgb, cut], None), RESOLUTION_MISMATCH);
        // ... and an image after the first is checked against the first only after it decodes.
        assert_eq!(err(&[&png_rgb, cut], None), PARSING_FAILED);
        assert_eq!(err(&[PHOTO, cut], Some((8, 8))), PARSING_FAILED);
    }

    #[test]
    fn typed_batches_are_the_u8_batch_cast_and_reserve_what_they_allocate() {
        let png_rgb = raw_png(5, 4, 2, 3, &[9; 60], false);
        for size in [None, Some((10, 20))] {
            let images: &[&[u8]] = if size.is_some() {
                &[PHOTO, &png_rgb]
            } else {
                &[PHOTO, PHOTO]
            };
            let (mut reserved_u8, mut reserved_f32) = (0, 0);
            let (shape, bytes) = decode_batch_within::<u8>(images, size, |n| {
                reserved_u8 = n;
                Ok(())
            })
            .unwrap();
            let (typed_shape, floats) = decode_batch_within::<f32>(images, size, |n| {
                reserved_f32 = n;
                Ok(())
            })
            .unwrap();
            assert_eq!(shape, typed_shape);
            assert!(bytes.iter().zip(&floats).all(|(&b, &f)| f32::from(b) == f));
            let pixels = shape.iter().product::<usize>();
            let scratch = reserved_u8 - pixels; // the decoded copies of resized images
            assert_eq!(scratch == 0, size.is_none());
            assert_eq!(reserved_f32, 4 * pixels + scratch + pixels);
        }
        let err = decode_batch_within::<f32>(&[PHOTO, GRAY], Some((8, 8)), |_| Ok(())).unwrap_err();
        assert_eq!(err, CHANNELS_MISMATCH);
    }

    #[test]
    fn batch_over_budget_fails_before_decoding() {
        let err = |images: &[&[u8]], size| decode_batch(images, size).unwrap_err();
        // Five headers of 16000x16000x3 (768 MB each): the second one is already over 1 GiB.
        let jpeg = jpeg_with_size(16000, 16000);
        assert_eq!(err(&[&jpeg[..]; 5], None), PARSING_FAILED);
        // ... and before a mismatch, which would decode the images to order its errors.
        assert_eq!(err(&[&jpeg, &jpeg, PHOTO], None), PARSING_FAILED);
        // Resized copies count: two small images resized to 16384x16384x3 need 1.5 GiB.
        assert_eq!(err(&[PHOTO, PHOTO], Some((16384, 16384))), PARSING_FAILED);
        // The budget itself: one 16384x16384 RGBA image (1 GiB) fits, resized or not.
        let at_limit = ImageInfo {
            width: 16384,
            height: 16384,
            channels: 4,
        };
        assert_eq!(batch_bytes(&at_limit, None), Some(MAX_BATCH_BYTES));
        assert_eq!(
            batch_bytes(&at_limit, Some((16384, 16384))),
            Some(MAX_BATCH_BYTES)
        );
        assert_eq!(
            batch_bytes(&at_limit, Some((1, 2))),
            Some(MAX_BATCH_BYTES + 8)
        );
        assert_eq!(batch_bytes(&at_limit, Some((usize::MAX, 2))), None);
    }
}
