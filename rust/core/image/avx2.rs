//! AVX2 kernels of the resize and the R/B swap, for x86_64 CPUs that have it (checked by the callers
//! at run time: the crate itself is built for baseline x86_64, which only assures SSE2). Each returns how
//! many leading elements it did; the portable code finishes the rest.

use std::arch::x86_64::*;

use super::resize::Columns;

/// Horizontal resize of one row: 16 outputs per step, each gathering the 4 bytes at its offset (its
/// two source bytes are the first and the `step`-th), blending them with pmaddwd and shifting by 4.
///
/// # Safety
/// The CPU supports AVX2; `row.len() == cols.row_len` and `out.len() == cols.offsets.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn resize_row(row: &[u8], cols: &Columns, out: &mut [i16]) -> usize {
    let n = cols.gather_len();
    if n == 0 {
        return 0;
    }
    let (offsets, weights) = cols.tables();
    // Per 32-bit lane: byte 0 -> i16 0, byte `step` -> i16 1 (step is 1..=3 when gather_len > 0).
    let s = cols.step() as i8;
    let lane = |k: i8| [4 * k, -1, 4 * k + s, -1];
    let pick: [i8; 16] = [lane(0), lane(1), lane(2), lane(3)]
        .concat()
        .try_into()
        .expect("16");
    // SAFETY: reads the 16 bytes of `pick`.
    let pick = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(pick.as_ptr().cast()) });
    let blend = |j: usize| {
        // SAFETY: j + 8 <= n <= offsets.len() == weights.len(); every offset below `gather_len` has
        // its 4-byte read inside `row` (an invariant of `Columns`, whose `row_len` is `row.len()`).
        unsafe {
            let idx = _mm256_loadu_si256(offsets.as_ptr().add(j).cast());
            let w = _mm256_loadu_si256(weights.as_ptr().add(j).cast());
            let px = _mm256_i32gather_epi32::<1>(row.as_ptr().cast(), idx);
            _mm256_srai_epi32::<4>(_mm256_madd_epi16(_mm256_shuffle_epi8(px, pick), w))
        }
    };
    for j in (0..n).step_by(16) {
        // packs works per 128-bit lane: restore the order of the four 64-bit quarters after it.
        let packed = _mm256_packs_epi32(blend(j), blend(j + 8));
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
        // SAFETY: j + 16 <= n <= out.len().
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(j).cast(), packed) };
    }
    n
}

/// Horizontal resize of one 3-channel row, one output pixel per step: the 8 bytes at its source pixel
/// pair are shuffled into three (lo, hi) i16 pairs, blended with pmaddwd, and stored as 4 i16 (the
/// fourth is overwritten by the next pixel). Faster than the gather, which is slow on AMD CPUs.
///
/// # Safety
/// The CPU supports AVX2; `row.len() == cols.row_len`, `out.len() == cols.offsets.len()`, 3 channels.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn resize_row3(row: &[u8], cols: &Columns, out: &mut [i16]) -> usize {
    let n = cols.load8_pixels();
    let from: [i8; 3] = if cols.swap_rb() { [2, 1, 0] } else { [0, 1, 2] };
    let pair = |c: usize| [from[c], -1, from[c] + 3, -1];
    let pick: [i8; 16] = [pair(0), pair(1), pair(2), [-1; 4]]
        .concat()
        .try_into()
        .expect("16");
    // SAFETY: reads the 16 bytes of `pick`.
    let pick = unsafe { _mm_loadu_si128(pick.as_ptr().cast()) };
    let (starts, (_, weights)) = (cols.starts(), cols.tables());
    assert!(starts.len() >= n && weights.len() >= 3 * n);
    for k in 0..n {
        // SAFETY: k < n <= starts.len() and 3k < weights.len() (asserted above); for k < load8_pixels,
        // start + 8 <= row_len == row.len() and 3k + 4 <= out.len() (invariants of `Columns`).
        unsafe {
            let start = *starts.get_unchecked(k) as usize;
            let w = _mm_set1_epi32(*weights.get_unchecked(3 * k));
            let px = _mm_loadl_epi64(row.as_ptr().add(start).cast());
            let blend = _mm_srai_epi32::<4>(_mm_madd_epi16(_mm_shuffle_epi8(px, pick), w));
            _mm_storel_epi64(
                out.as_mut_ptr().add(3 * k).cast(),
                _mm_packs_epi32(blend, blend),
            );
        }
    }
    3 * n
}

/// Vertical blend of two horizontally resized rows, 32 outputs per step: pmulhw is exactly the
/// portable kernel's `(a * w) >> 16`, and packuswb its clamp.
///
/// # Safety
/// The CPU supports AVX2; `a`, `b` and `out` have the same length.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn blend_rows(
    a: &[i16],
    b: &[i16],
    w_lo: i16,
    w_hi: i16,
    out: &mut [u8],
) -> usize {
    let n = out.len() / 32 * 32;
    let (w_lo, w_hi, two) = (
        _mm256_set1_epi16(w_lo),
        _mm256_set1_epi16(w_hi),
        _mm256_set1_epi16(2),
    );
    let blend = |i: usize| {
        // SAFETY: i + 16 <= n <= a.len() == b.len().
        let (x, y) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i).cast()),
                _mm256_loadu_si256(b.as_ptr().add(i).cast()),
            )
        };
        let sum = _mm256_add_epi16(_mm256_mulhi_epi16(x, w_lo), _mm256_mulhi_epi16(y, w_hi));
        _mm256_srai_epi16::<2>(_mm256_add_epi16(sum, two))
    };
    for i in (0..n).step_by(32) {
        let packed = _mm256_packus_epi16(blend(i), blend(i + 16));
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
        // SAFETY: i + 32 <= n <= out.len().
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), packed) };
    }
    n
}

/// Swaps bytes 0 and 2 of every 3-byte pixel, five pixels (15 bytes) per 16-byte load. Byte 15 of each
/// load is written back unchanged, so overlapping steps are right in place; each load is issued before
/// the previous step's store, which it overlaps (a load waiting on a partly overlapping store stalls).
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn swap_rb3(pixels: &mut [u8]) -> usize {
    if pixels.len() < 16 {
        return 0;
    }
    let order: [i8; 16] = [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 15];
    // SAFETY: reads the 16 bytes of `order`.
    let order = unsafe { _mm_loadu_si128(order.as_ptr().cast()) };
    let base = pixels.as_mut_ptr();
    // SAFETY: every load and store covers [at, at + 16) with at + 16 <= pixels.len().
    unsafe {
        let mut at = 0;
        let mut current = _mm_loadu_si128(base.cast());
        while at + 15 + 16 <= pixels.len() {
            let next = _mm_loadu_si128(base.add(at + 15).cast());
            _mm_storeu_si128(base.add(at).cast(), _mm_shuffle_epi8(current, order));
            (current, at) = (next, at + 15);
        }
        _mm_storeu_si128(base.add(at).cast(), _mm_shuffle_epi8(current, order));
        at + 15
    }
}
