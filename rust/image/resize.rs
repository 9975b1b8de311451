//! OpenCV-exact bilinear resize (`cv::resize(INTER_LINEAR)` on u8 images).

/// Fixed-point bits of the bilinear weights (OpenCV's INTER_RESIZE_COEF_BITS).
const COEF_BITS: u32 = 11;

/// One output coordinate: the two source indices it blends and their weights (summing to 2^11).
#[derive(Clone, Copy, Debug)]
struct Tap {
    lo: usize,
    hi: usize,
    w_lo: i16,
    w_hi: i16,
}

/// OpenCV's coordinate map for INTER_LINEAR: half-pixel centres computed in f32, weights rounded
/// half-to-even to 11 bits. Columns clamp their weight at the borders; rows clamp only the index.
fn taps(src: usize, dst: usize, clamp_weights: bool) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp_weights && s < 0 {
                (s, frac) = (0, 0.0);
            }
            if clamp_weights && s >= last {
                (s, frac) = (last, 0.0);
            }
            let one = (1 << COEF_BITS) as f32;
            Tap {
                lo: s.clamp(0, last) as usize,
                hi: (s + 1).clamp(0, last) as usize,
                w_lo: ((1.0 - frac) * one).round_ties_even() as i16,
                w_hi: (frac * one).round_ties_even() as i16,
            }
        })
        .collect()
}

/// Horizontal pass over one source row. OpenCV keeps the 22-bit blend as i32 and shifts it right by
/// 4 bits before its vertical pass; storing it shifted (at most 255 * 2^11 >> 4 = 32640) fits i16.
fn resize_row<const CN: usize>(row: &[u8], taps: &[Tap], out: &mut [i16]) {
    let (pixels, _) = row.as_chunks::<CN>();
    for (o, t) in out.as_chunks_mut::<CN>().0.iter_mut().zip(taps) {
        let (a, b) = (pixels[t.lo], pixels[t.hi]);
        for c in 0..CN {
            let blend = i32::from(a[c]) * i32::from(t.w_lo) + i32::from(b[c]) * i32::from(t.w_hi);
            o[c] = (blend >> 4) as i16;
        }
    }
}

fn resize_row_dyn(cn: usize, row: &[u8], taps: &[Tap], out: &mut [i16]) {
    match cn {
        1 => resize_row::<1>(row, taps, out),
        2 => resize_row::<2>(row, taps, out),
        3 => resize_row::<3>(row, taps, out),
        4 => resize_row::<4>(row, taps, out),
        _ => {
            for (o, t) in out.chunks_exact_mut(cn).zip(taps) {
                for c in 0..cn {
                    let blend = i32::from(row[t.lo * cn + c]) * i32::from(t.w_lo)
                        + i32::from(row[t.hi * cn + c]) * i32::from(t.w_hi);
                    o[c] = (blend >> 4) as i16;
                }
            }
        }
    }
}

/// Vertical pass with the rounding of OpenCV's SIMD path (`VResizeLinearVec_32s8u`): 16-bit products
/// keeping their high half, summed and rounded by 2 bits. Written in i16 so it compiles to pmulhw.
fn blend_rows(a: &[i16], b: &[i16], t: &Tap, out: &mut [u8]) {
    let n = out.len().min(a.len()).min(b.len());
    let (a, b, out) = (&a[..n], &b[..n], &mut out[..n]);
    for i in 0..n {
        let x = ((i32::from(a[i]) * i32::from(t.w_lo)) >> 16) as i16;
        let y = ((i32::from(b[i]) * i32::from(t.w_hi)) >> 16) as i16;
        out[i] = ((x + y + 2) >> 2).clamp(0, 255) as u8;
    }
}

/// Bilinear resize of an interleaved u8 image, as `cv2.resize(src, (dw, dh), interpolation=INTER_LINEAR)`.
///
/// # Panics
/// If a buffer length does not match its size (a caller bug, never the data).
pub fn resize_bilinear(
    src: &[u8],
    sw: usize,
    sh: usize,
    cn: usize,
    dst: &mut [u8],
    dw: usize,
    dh: usize,
) {
    assert_eq!(src.len(), sw * sh * cn, "resize source size");
    assert_eq!(dst.len(), dw * dh * cn, "resize destination size");
    if dst.is_empty() || src.is_empty() {
        return;
    }
    if (sw, sh) == (dw, dh) {
        dst.copy_from_slice(src);
        return;
    }
    let (xtaps, ytaps) = (taps(sw, dw, true), taps(sh, dh, false));
    let src_row = |y: usize| &src[y * sw * cn..(y + 1) * sw * cn];
    // The two horizontally resized source rows the current output row blends; output rows walk down
    // the source monotonically, so each source row is resized at most once.
    let (mut lo, mut hi) = (vec![0i16; dw * cn], vec![0i16; dw * cn]);
    let (mut lo_y, mut hi_y) = (usize::MAX, usize::MAX);
    for (t, out) in ytaps.iter().zip(dst.chunks_exact_mut(dw * cn)) {
        if t.lo != lo_y {
            if t.lo == hi_y {
                std::mem::swap(&mut lo, &mut hi);
                hi_y = usize::MAX;
            } else {
                resize_row_dyn(cn, src_row(t.lo), &xtaps, &mut lo);
            }
            lo_y = t.lo;
        }
        if t.hi != lo_y && t.hi != hi_y {
            resize_row_dyn(cn, src_row(t.hi), &xtaps, &mut hi);
            hi_y = t.hi;
        }
        let second = if t.hi == lo_y { &lo } else { &hi };
        blend_rows(&lo, second, t, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::image::test_support::*;

    #[test]
    fn resize_matches_cv2_vectors() {
        // Expected values printed by cv2.resize(..., interpolation=cv2.INTER_LINEAR), OpenCV 5.0.
        assert_eq!(resized(&[0, 255], (2, 1, 1), (4, 1)), [0, 64, 191, 255]);
        let a = [10, 200, 30, 250, 0, 128, 7, 77, 177];
        #[rustfmt::skip]
        let up = [10, 86, 200, 98, 30, 160, 126, 75, 85, 91, 159, 107, 29, 99, 146, 7, 35, 77, 137, 177];
        assert_eq!(resized(&a, (3, 3, 1), (5, 4)), up);
        assert_eq!(resized(&a, (3, 3, 1), (2, 2)), [90, 78, 65, 138]);
    }

    #[test]
    fn resize_properties() {
        let src: Vec<u8> = (0..7 * 5 * 3).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(resized(&src, (7, 5, 3), (7, 5)), src);
        let flat = vec![123u8; 7 * 5 * 4];
        for size in [(31, 17), (3, 2), (1, 1), (7, 1), (1, 9)] {
            assert!(
                resized(&flat, (7, 5, 4), size).iter().all(|&v| v == 123),
                "{size:?}"
            );
        }
        // An exact 2x downscale averages each 2x2 block with rounding (OpenCV's INTER_AREA fast path).
        let src: Vec<u8> = (0..8 * 6 * 2).map(|i| (i * 91 % 256) as u8).collect();
        let half = resized(&src, (8, 6, 2), (4, 3));
        for (i, &v) in half.iter().enumerate() {
            let (c, x, y) = (i % 2, i / 2 % 4, i / 8);
            let at = |dx: usize, dy: usize| u32::from(src[((2 * y + dy) * 8 + 2 * x + dx) * 2 + c]);
            assert_eq!(
                u32::from(v),
                (at(0, 0) + at(1, 0) + at(0, 1) + at(1, 1) + 2) >> 2
            );
        }
    }
}
