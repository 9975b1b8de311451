//! OpenCV-exact bilinear resize (`cv::resize(INTER_LINEAR)` on u8 images).
//!
//! Two passes, as OpenCV's: each needed source row is resized horizontally into i16 (a table of one
//! source offset and one weight pair per output element), then each output row blends two of those.
//! Both passes have an AVX2 kernel (`avx2.rs`), picked at run time; the scalar ones here are the
//! portable build and the reference the AVX2 ones are tested against.

#[cfg(target_arch = "x86_64")]
use super::avx2;

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
            let mut s = floor(f);
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
                w_lo: round_weight((1.0 - frac) * one),
                w_hi: round_weight(frac * one),
            }
        })
        .collect()
}

// `f32::floor` and `round_ties_even` are libm calls on baseline x86_64 (no SSE4.1 roundss), which made
// the tables a few percent of a small resize; these two are exact for the ranges used here.

/// `f.floor()` for any f32 within i64's range.
fn floor(f: f32) -> i64 {
    let t = f as i64; // rounds toward zero
    if (t as f32) > f {
        t - 1
    } else {
        t
    }
}

/// `w.round_ties_even()` as i16 for 0 <= w <= 2^11: adding 2^23 leaves no fraction bits in an f32, so
/// the addition itself rounds to nearest, ties to even (IEEE's default mode, the only one Rust uses).
fn round_weight(w: f32) -> i16 {
    const SHIFT: f32 = (1 << 23) as f32;
    ((w + SHIFT) - SHIFT) as i16
}

/// The horizontal pass of one row size, one entry per output element (`dw * cn`): output `j` blends
/// source byte `offsets[j]` and the byte `step` further on (the same channel of the next pixel) with
/// `weights[j]` (`w_lo | w_hi << 16`, the pair layout of pmaddwd). A channel swap is folded into the
/// offsets; `starts` holds the first byte of each output pixel's source pixel pair.
pub(super) struct Columns {
    offsets: Vec<i32>,
    weights: Vec<i32>,
    starts: Vec<u32>,
    /// `cn`, or 0 for a one-pixel-wide source.
    step: usize,
    swap_rb: bool,
    /// Bytes in a source row.
    row_len: usize,
    /// Leading outputs, a multiple of 16, whose 4-byte reads at `offsets` stay inside the row (the AVX2
    /// gather for 1 and 2 channels).
    gather_len: usize,
    /// Leading output pixels whose 8-byte reads at `starts` stay inside the row, and whose 4-element
    /// write stays inside the output row (the AVX2 kernel for 3 channels).
    load8_pixels: usize,
}

impl Columns {
    fn new(sw: usize, dw: usize, cn: usize, swap_rb: bool) -> Self {
        let step = if sw > 1 { cn } else { 0 };
        let row_len = sw * cn;
        let (mut offsets, mut weights) = (Vec::with_capacity(dw * cn), Vec::with_capacity(dw * cn));
        let mut starts = Vec::with_capacity(dw);
        for t in taps(sw, dw, true) {
            // At the right border lo == hi with weights (2^11, 0); blending the pixel before it with
            // weight 0 gives the same sum and lets every output read two pixels `step` apart.
            let (lo, w_lo, w_hi) = if sw > 1 && t.hi == t.lo {
                (t.lo - 1, 0, t.w_lo + t.w_hi)
            } else {
                (t.lo, t.w_lo, t.w_hi)
            };
            starts.push((lo * cn) as u32);
            for c in 0..cn {
                let from = match (swap_rb, c) {
                    (true, 0) => 2,
                    (true, 2) => 0,
                    _ => c,
                };
                offsets.push((lo * cn + from) as i32);
                weights.push(i32::from(w_lo as u16) | i32::from(w_hi) << 16);
            }
        }
        let within = offsets
            .iter()
            .position(|&o| o as usize + 4 > row_len)
            .unwrap_or(offsets.len());
        let gather_len = if step == 0 || cn > 3 {
            0
        } else {
            within / 16 * 16
        };
        let load8_pixels = if step == 0 || cn != 3 {
            0
        } else {
            let within = starts.iter().position(|&s| s as usize + 8 > row_len);
            within.unwrap_or(dw).min(dw - 1)
        };
        Columns {
            offsets,
            weights,
            starts,
            step,
            swap_rb,
            row_len,
            gather_len,
            load8_pixels,
        }
    }

    pub(super) fn tables(&self) -> (&[i32], &[i32]) {
        (&self.offsets, &self.weights)
    }

    pub(super) fn starts(&self) -> &[u32] {
        &self.starts
    }

    pub(super) fn step(&self) -> usize {
        self.step
    }

    pub(super) fn swap_rb(&self) -> bool {
        self.swap_rb
    }

    pub(super) fn gather_len(&self) -> usize {
        self.gather_len
    }

    pub(super) fn load8_pixels(&self) -> usize {
        self.load8_pixels
    }
}

/// Horizontal pass over one source row, portable. OpenCV keeps the 22-bit blend as i32 and shifts it
/// right by 4 bits before its vertical pass; storing it shifted (at most 255 * 2^11 >> 4 = 32640)
/// fits i16.
fn resize_row_scalar(row: &[u8], cols: &Columns, from: usize, out: &mut [i16]) {
    let entries = cols.offsets[from..].iter().zip(&cols.weights[from..]);
    for (o, (&offset, &w)) in out[from..].iter_mut().zip(entries) {
        let at = offset as usize;
        let (w_lo, w_hi) = (i32::from(w as i16), w >> 16);
        let blend = i32::from(row[at]) * w_lo + i32::from(row[at + cols.step]) * w_hi;
        *o = (blend >> 4) as i16;
    }
}

/// Vertical pass with the rounding of OpenCV's SIMD path (`VResizeLinearVec_32s8u`): 16-bit products
/// keeping their high half, summed and rounded by 2 bits.
fn blend_rows_scalar(a: &[i16], b: &[i16], t: &Tap, from: usize, out: &mut [u8]) {
    for ((o, &a), &b) in out[from..].iter_mut().zip(&a[from..]).zip(&b[from..]) {
        let x = ((i32::from(a) * i32::from(t.w_lo)) >> 16) as i16;
        let y = ((i32::from(b) * i32::from(t.w_hi)) >> 16) as i16;
        *o = ((x + y + 2) >> 2).clamp(0, 255) as u8;
    }
}

/// Which kernels run: AVX2 where the CPU has it, else the portable ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernels {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernels {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            return Kernels::Avx2;
        }
        Kernels::Portable
    }

    fn resize_row(self, row: &[u8], cols: &Columns, out: &mut [i16]) {
        assert!(row.len() == cols.row_len && out.len() == cols.offsets.len());
        let done = match self {
            Kernels::Portable => 0,
            // SAFETY: `Avx2` is only made where the CPU supports AVX2; the lengths are checked above.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 if cols.load8_pixels() > 0 => unsafe {
                avx2::resize_row3(row, cols, out)
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::resize_row(row, cols, out) },
        };
        resize_row_scalar(row, cols, done, out);
    }

    fn blend_rows(self, a: &[i16], b: &[i16], t: &Tap, out: &mut [u8]) {
        assert!(a.len() == out.len() && b.len() == out.len());
        let done = match self {
            Kernels::Portable => 0,
            // SAFETY: `Avx2` is only made where the CPU supports AVX2.
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => unsafe { avx2::blend_rows(a, b, t.w_lo, t.w_hi, out) },
        };
        blend_rows_scalar(a, b, t, done, out);
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
    resize_with(Kernels::detect(), src, (sw, sh, cn), dst, (dw, dh), false);
}

/// [`resize_bilinear`] of a 3- or 4-channel image with channels 0 and 2 swapped on the way (RGB in,
/// BGR out): the swap costs nothing in the horizontal pass.
pub(super) fn resize_bilinear_swap_rb(
    src: &[u8],
    (sw, sh, cn): (usize, usize, usize),
    dst: &mut [u8],
    (dw, dh): (usize, usize),
) {
    assert!(cn >= 3, "swapping R and B needs 3 or 4 channels");
    if (sw, sh) == (dw, dh) {
        dst.copy_from_slice(src);
        return super::swap_rb(dst, cn);
    }
    resize_with(Kernels::detect(), src, (sw, sh, cn), dst, (dw, dh), true);
}

fn resize_with(
    kernels: Kernels,
    src: &[u8],
    (sw, sh, cn): (usize, usize, usize),
    dst: &mut [u8],
    (dw, dh): (usize, usize),
    swap_rb: bool,
) {
    assert_eq!(src.len(), sw * sh * cn, "resize source size");
    assert_eq!(dst.len(), dw * dh * cn, "resize destination size");
    if dst.is_empty() || src.is_empty() {
        return;
    }
    if (sw, sh) == (dw, dh) && !swap_rb {
        dst.copy_from_slice(src);
        return;
    }
    let (cols, ytaps) = (Columns::new(sw, dw, cn, swap_rb), taps(sh, dh, false));
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
                kernels.resize_row(src_row(t.lo), &cols, &mut lo);
            }
            lo_y = t.lo;
        }
        if t.hi != lo_y && t.hi != hi_y {
            kernels.resize_row(src_row(t.hi), &cols, &mut hi);
            hi_y = t.hi;
        }
        let second = if t.hi == lo_y { &lo } else { &hi };
        kernels.blend_rows(&lo, second, t, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn fast_rounding_matches_std() {
        for i in -40_000..40_000 {
            let f = i as f32 / 1024.0 + 0.1 * (i % 7) as f32;
            assert_eq!(floor(f), f.floor() as i64, "{f}");
        }
        for i in 0..=(1 << 15) {
            let w = i as f32 / 16.0 + if i % 3 == 0 { 1e-4 } else { 0.0 };
            assert_eq!(round_weight(w), w.round_ties_even() as i16, "{w}");
        }
    }

    /// Random images and sizes (up- and downscales, one-pixel sides, every channel count): the
    /// detected kernels equal the portable ones, and the R/B swap equals swapping afterwards.
    #[test]
    fn kernels_agree_and_swap_commutes() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut sizes = vec![
            (1, 1),
            (1, 7),
            (2, 1),
            (5, 3),
            (275, 183),
            (224, 224),
            (640, 17),
        ];
        sizes.extend((0..40).map(|_| (1 + next(300), 1 + next(300))));
        for (&(sw, sh), cn) in sizes.iter().flat_map(|s| (1..=4).map(move |cn| (s, cn))) {
            let (dw, dh) = (1 + next(400), 1 + next(300));
            let src: Vec<u8> = (0..sw * sh * cn).map(|_| next(256) as u8).collect();
            let run = |kernels, swap| {
                let mut dst = vec![0; dw * dh * cn];
                resize_with(kernels, &src, (sw, sh, cn), &mut dst, (dw, dh), swap);
                dst
            };
            let want = run(Kernels::Portable, false);
            let case = format!("{sw}x{sh}x{cn} -> {dw}x{dh}");
            assert!(run(Kernels::detect(), false) == want, "{case}");
            if cn >= 3 {
                let mut swapped = want.clone();
                crate::image::swap_rb(&mut swapped, cn);
                assert!(run(Kernels::Portable, true) == swapped, "swap {case}");
                assert!(run(Kernels::detect(), true) == swapped, "swap {case}");
            }
        }
    }
}
