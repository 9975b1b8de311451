//! NHWC <-> NCHW transposition: moving the channel axis of an `N x ... x C` tensor to position 1, and back.
//!
//! Per batch item both directions are a transpose of an `HW x C` matrix (`HW` = every axis between the
//! first and the channel axis), so the kernels see one row-major `rows x C` side (the channels-last one)
//! and `C` planes of `rows` elements (the channels-first one):
//! - C <= 8: one pass over the pixels with the channel count fixed at compile time, which LLVM turns into
//!   shuffles (vectorised loads and stores on both sides). On x86_64 this is also compiled for AVX2 and
//!   picked at run time; the portable build only assumes SSE2.
//! - wider C: 4 channels at a time over tiles of ~4 KiB, each group gathered into a small stage buffer so
//!   the fixed-C pass does the shuffling while both sides stay in L1.
//!
//! Work over `PARALLEL_BYTES` is cut into row ranges of every batch item, shared by the calling thread and
//! rayon's pool (`parallel::for_each`).
//! Elements are moved as `[u8; K]` (K = the dtype's itemsize): the transpose never looks at values, so one
//! kernel per element size covers every dtype (bool, float16, bfloat16-as-uint16 included), and an
//! alignment of 1 means a slice over an array at any address (e.g. a view over request bytes at an odd
//! offset) is a valid Rust slice.

use crate::parallel;

/// Below this many bytes a transpose runs on the calling thread: handing work to the pool costs more.
pub const PARALLEL_BYTES: usize = 1 << 20;
/// Roughly how much one parallel task moves (small enough to balance two to a few dozen threads).
const TASK_BYTES: usize = 256 << 10;
/// Channel counts up to this take the single-pass kernels.
const MAX_FIXED_C: usize = 8;

/// `src` is `[n, hw, c]` (channels last), `dst` becomes `[n, c, hw]` (channels first).
///
/// Panics if either slice is not `n * hw * c` long.
pub fn nhwc_to_nchw<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut [T],
    n: usize,
    hw: usize,
    c: usize,
) {
    let item = hw * c;
    assert!(
        src.len() == n * item && dst.len() == n * item,
        "nhwc_to_nchw: slice lengths do not match the shape"
    );
    if item == 0 {
        return;
    }
    let Some(rows_per_task) = rows_per_task::<T>(n, hw, c) else {
        for (s, d) in src.chunks_exact(item).zip(dst.chunks_exact_mut(item)) {
            let mut planes: Vec<&mut [T]> = d.chunks_exact_mut(hw).collect();
            deinterleave(s, &mut planes);
        }
        return;
    };
    // Each task gets a row range of one item: a contiguous piece of `src` and the same range of every plane.
    let mut tasks = Vec::new();
    for (s, d) in src.chunks_exact(item).zip(dst.chunks_exact_mut(item)) {
        let mut rest: Vec<&mut [T]> = d.chunks_exact_mut(hw).collect();
        for piece in s.chunks(rows_per_task * c) {
            let rows = piece.len() / c;
            let planes: Vec<&mut [T]> = rest
                .iter_mut()
                .map(|plane| {
                    let (head, tail) = std::mem::take(plane).split_at_mut(rows);
                    *plane = tail;
                    head
                })
                .collect();
            tasks.push((piece, planes));
        }
    }
    parallel::for_each(tasks, |(piece, mut planes)| {
        deinterleave(piece, &mut planes)
    });
}

/// `src` is `[n, c, hw]` (channels first), `dst` becomes `[n, hw, c]` (channels last).
///
/// Panics if either slice is not `n * hw * c` long.
pub fn nchw_to_nhwc<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut [T],
    n: usize,
    hw: usize,
    c: usize,
) {
    let item = hw * c;
    assert!(
        src.len() == n * item && dst.len() == n * item,
        "nchw_to_nhwc: slice lengths do not match the shape"
    );
    if item == 0 {
        return;
    }
    let Some(rows_per_task) = rows_per_task::<T>(n, hw, c) else {
        for (s, d) in src.chunks_exact(item).zip(dst.chunks_exact_mut(item)) {
            let planes: Vec<&[T]> = s.chunks_exact(hw).collect();
            interleave(&planes, d);
        }
        return;
    };
    let mut tasks = Vec::new();
    for (s, d) in src.chunks_exact(item).zip(dst.chunks_exact_mut(item)) {
        for (i, piece) in d.chunks_mut(rows_per_task * c).enumerate() {
            let rows = i * rows_per_task..i * rows_per_task + piece.len() / c;
            let planes: Vec<&[T]> = s
                .chunks_exact(hw)
                .map(|plane| &plane[rows.clone()])
                .collect();
            tasks.push((planes, piece));
        }
    }
    parallel::for_each(tasks, |(planes, piece)| interleave(&planes, piece));
}

/// None: run on this thread. Some(r): give each task `r` rows of one batch item.
fn rows_per_task<T>(n: usize, hw: usize, c: usize) -> Option<usize> {
    let item_bytes = hw * c * size_of::<T>();
    if n * item_bytes < PARALLEL_BYTES || rayon::current_num_threads() < 2 {
        return None;
    }
    let tasks_per_item = item_bytes.div_ceil(TASK_BYTES).min(hw);
    Some(hw.div_ceil(tasks_per_item))
}

/// `src` holds `rows x planes.len()` elements row-major; plane `ch` receives column `ch`.
fn deinterleave<T: Copy>(src: &[T], planes: &mut [&mut [T]]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of this function.
        return unsafe { deinterleave_avx2(src, planes) };
    }
    deinterleave_any(src, planes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn deinterleave_avx2<T: Copy>(src: &[T], planes: &mut [&mut [T]]) {
    deinterleave_any(src, planes)
}

// The `inline(always)` chain below keeps every kernel inside the (AVX2 or portable) entry point, so each
// copy is compiled for that entry point's instruction set.
#[inline(always)]
fn deinterleave_any<T: Copy>(src: &[T], planes: &mut [&mut [T]]) {
    match (planes.len(), size_of::<T>()) {
        (..=MAX_FIXED_C, _) => deinterleave_small(src, planes),
        (_, 1) => deinterleave_wide::<T, 4, 1024>(src, planes),
        (_, 2) => deinterleave_wide::<T, 4, 512>(src, planes),
        (_, 4) => deinterleave_wide::<T, 4, 256>(src, planes),
        _ => deinterleave_wide::<T, 4, 128>(src, planes),
    }
}

#[inline(always)]
fn deinterleave_small<T: Copy>(src: &[T], planes: &mut [&mut [T]]) {
    match planes.len() {
        1 => copy(src, planes[0]),
        2 => deinterleave_fixed::<T, 2>(src, planes),
        3 => deinterleave_fixed::<T, 3>(src, planes),
        4 => deinterleave_fixed::<T, 4>(src, planes),
        5 => deinterleave_fixed::<T, 5>(src, planes),
        6 => deinterleave_fixed::<T, 6>(src, planes),
        7 => deinterleave_fixed::<T, 7>(src, planes),
        8 => deinterleave_fixed::<T, 8>(src, planes),
        _ => unreachable!("deinterleave_small takes 1..=8 planes"),
    }
}

/// One channel: a plain copy, in pieces under 4 KiB. glibc hands bigger copies to `rep movsb`, which on AMD
/// Zen 3 runs at ~2-3 GB/s when source and destination sit at different offsets within 64 bytes (numpy
/// aligns its buffers to 16 only), 10-20x slower than the vector loop smaller copies get.
#[inline(always)]
fn copy<T: Copy>(src: &[T], dst: &mut [T]) {
    let piece = (2048 / size_of::<T>()).max(1);
    for (to, from) in dst.chunks_mut(piece).zip(src.chunks(piece)) {
        to.copy_from_slice(from);
    }
}

#[inline(always)]
fn deinterleave_fixed<T: Copy, const C: usize>(src: &[T], planes: &mut [&mut [T]]) {
    let (pixels, _) = src.as_chunks::<C>();
    let rows = pixels.len();
    let planes: &mut [&mut [T]; C] = planes.try_into().expect("C planes");
    // Same-length slices up front let LLVM drop the per-element bounds checks and vectorise.
    let outs = planes.each_mut().map(|plane| &mut plane[..rows]);
    for (i, px) in pixels.iter().enumerate() {
        for ch in 0..C {
            outs[ch][i] = px[ch];
        }
    }
}

/// More than `MAX_FIXED_C` columns, `G` at a time: a group of columns of a `ROWS`-row tile is gathered into
/// `stage` (one `G`-element move per row), then split by the fixed-C kernel. The last group is shifted left
/// to end at column `c`, redoing a few columns rather than needing a narrower kernel.
#[inline(always)]
fn deinterleave_wide<T: Copy, const G: usize, const ROWS: usize>(
    src: &[T],
    planes: &mut [&mut [T]],
) {
    let c = planes.len();
    let rows = src.len() / c;
    let mut stage = [[src[0]; G]; ROWS];
    for r0 in (0..rows).step_by(ROWS) {
        let r1 = (r0 + ROWS).min(rows);
        let tile = &src[r0 * c..r1 * c];
        let stage = &mut stage[..r1 - r0];
        for ch0 in (0..c).step_by(G).map(|ch0| ch0.min(c - G)) {
            for (to, row) in stage.iter_mut().zip(tile.chunks_exact(c)) {
                *to = row[ch0..ch0 + G].try_into().expect("G columns");
            }
            let mut group = planes[ch0..ch0 + G].iter_mut();
            let mut outs: [&mut [T]; G] =
                std::array::from_fn(|_| &mut group.next().expect("G planes")[r0..r1]);
            deinterleave_fixed::<T, G>(stage.as_flattened(), &mut outs);
        }
    }
}

/// The reverse of [`deinterleave`]: column `ch` of `dst` (`rows x planes.len()`, row-major) comes from
/// plane `ch`.
fn interleave<T: Copy>(planes: &[&[T]], dst: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), the only requirement of this function.
        return unsafe { interleave_avx2(planes, dst) };
    }
    interleave_any(planes, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn interleave_avx2<T: Copy>(planes: &[&[T]], dst: &mut [T]) {
    interleave_any(planes, dst)
}

#[inline(always)]
fn interleave_any<T: Copy>(planes: &[&[T]], dst: &mut [T]) {
    match (planes.len(), size_of::<T>()) {
        (..=MAX_FIXED_C, _) => interleave_small(planes, dst),
        (_, 1) => interleave_wide::<T, 4, 1024>(planes, dst),
        (_, 2) => interleave_wide::<T, 4, 512>(planes, dst),
        (_, 4) => interleave_wide::<T, 4, 256>(planes, dst),
        _ => interleave_wide::<T, 4, 128>(planes, dst),
    }
}

#[inline(always)]
fn interleave_small<T: Copy>(planes: &[&[T]], dst: &mut [T]) {
    match planes.len() {
        1 => copy(planes[0], dst),
        2 => interleave_fixed::<T, 2>(planes, dst),
        3 => interleave_fixed::<T, 3>(planes, dst),
        4 => interleave_fixed::<T, 4>(planes, dst),
        5 => interleave_fixed::<T, 5>(planes, dst),
        6 => interleave_fixed::<T, 6>(planes, dst),
        7 => interleave_fixed::<T, 7>(planes, dst),
        8 => interleave_fixed::<T, 8>(planes, dst),
        _ => unreachable!("interleave_small takes 1..=8 planes"),
    }
}

#[inline(always)]
fn interleave_fixed<T: Copy, const C: usize>(planes: &[&[T]], dst: &mut [T]) {
    let (pixels, _) = dst.as_chunks_mut::<C>();
    let rows = pixels.len();
    let planes: &[&[T]; C] = planes.try_into().expect("C planes");
    let ins = planes.map(|plane| &plane[..rows]);
    for (i, px) in pixels.iter_mut().enumerate() {
        for ch in 0..C {
            px[ch] = ins[ch][i];
        }
    }
}

/// The reverse of [`deinterleave_wide`].
#[inline(always)]
fn interleave_wide<T: Copy, const G: usize, const ROWS: usize>(planes: &[&[T]], dst: &mut [T]) {
    let c = planes.len();
    let rows = dst.len() / c;
    let mut stage = [[planes[0][0]; G]; ROWS];
    for r0 in (0..rows).step_by(ROWS) {
        let r1 = (r0 + ROWS).min(rows);
        let tile = &mut dst[r0 * c..r1 * c];
        let stage = &mut stage[..r1 - r0];
        for ch0 in (0..c).step_by(G).map(|ch0| ch0.min(c - G)) {
            let ins: [&[T]; G] = std::array::from_fn(|k| &planes[ch0 + k][r0..r1]);
            interleave_fixed::<T, G>(&ins, stage.as_flattened_mut());
            for (from, row) in stage.iter().zip(tile.chunks_exact_mut(c)) {
                row[ch0..ch0 + G].copy_from_slice(from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(src: &[u32], n: usize, hw: usize, c: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(src.len());
        for b in 0..n {
            for ch in 0..c {
                for p in 0..hw {
                    out.push(src[(b * hw + p) * c + ch]);
                }
            }
        }
        out
    }

    /// (n, hw, c): tiny C, every fixed-C kernel, wide C with and without a partial channel group or row
    /// tile, odd sizes, and sizes past `PARALLEL_BYTES` (in u64) so the parallel split runs too.
    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 5, 1),
        (2, 7, 3),
        (1, 224 * 224, 3),
        (3, 17 * 13, 4),
        (1, 33, 2),
        (2, 65, 5),
        (1, 129, 6),
        (1, 71, 7),
        (2, 64, 8),
        (1, 130, 9),
        (2, 67, 16),
        (1, 200, 37),
        (2, 3, 300),
        (4, 7 * 9, 64),
        (3, 300 * 301, 3),
        (2, 1000, 97),
    ];

    fn check<T: Copy + Send + Sync + PartialEq + std::fmt::Debug>(to_t: impl Fn(u32) -> T) {
        for &(n, hw, c) in SHAPES {
            let len = n * hw * c;
            let src32: Vec<u32> = (0..len as u32).collect();
            let src: Vec<T> = src32.iter().map(|&v| to_t(v)).collect();
            let want: Vec<T> = reference(&src32, n, hw, c).into_iter().map(&to_t).collect();
            let mut nchw = vec![to_t(u32::MAX); len];
            nhwc_to_nchw(&src, &mut nchw, n, hw, c);
            assert!(nchw == want, "nhwc_to_nchw n={n} hw={hw} c={c}");
            let mut back = vec![to_t(u32::MAX); len];
            nchw_to_nhwc(&nchw, &mut back, n, hw, c);
            assert!(back == src, "nchw_to_nhwc n={n} hw={hw} c={c}");
        }
    }

    #[test]
    fn matches_reference_for_every_element_size() {
        check(|v| v as u8);
        check(|v| v as u16);
        check(|v| v);
        check(|v| v as u64 | (v as u64) << 40);
        check(|v| (v as u16).to_le_bytes());
        check(|v| v.to_le_bytes());
        check(|v| (v as u64 * 0x1_0000_0001).to_le_bytes());
    }

    #[test]
    fn portable_kernels_match_reference() {
        // The entry points take the AVX2 build where the CPU has it; run the portable one directly too.
        fn run<T: Copy + PartialEq + std::fmt::Debug>(to_t: impl Fn(u32) -> T) {
            for &(_, hw, c) in SHAPES {
                let src32: Vec<u32> = (0..(hw * c) as u32).collect();
                let src: Vec<T> = src32.iter().map(|&v| to_t(v)).collect();
                let want: Vec<T> = reference(&src32, 1, hw, c).into_iter().map(&to_t).collect();
                let mut nchw = vec![to_t(u32::MAX); src.len()];
                let mut planes: Vec<&mut [T]> = nchw.chunks_mut(hw).collect();
                deinterleave_any(&src, &mut planes);
                assert!(nchw == want, "deinterleave_any hw={hw} c={c}");
                let mut back = vec![to_t(u32::MAX); src.len()];
                let planes: Vec<&[T]> = nchw.chunks(hw).collect();
                interleave_any(&planes, &mut back);
                assert!(back == src, "interleave_any hw={hw} c={c}");
            }
        }
        run(|v| v as u8);
        run(|v| (v as u16).to_le_bytes());
        run(|v| v.to_le_bytes());
        run(|v| (v as u64 * 0x1_0000_0001).to_le_bytes());
    }

    #[test]
    fn rank5_is_hw_flattened() {
        // [2, 3, 4, 5, 6] channels-last == n=2, hw=3*4*5, c=6.
        let (n, hw, c) = (2, 3 * 4 * 5, 6);
        let src: Vec<u32> = (0..(n * hw * c) as u32).collect();
        let mut dst = vec![0; src.len()];
        nhwc_to_nchw(&src, &mut dst, n, hw, c);
        // dst[b, ch, d, h, w] == src[b, d, h, w, ch]
        let at = |b: usize, ch: usize, d: usize, h: usize, w: usize| {
            dst[(((b * 6 + ch) * 3 + d) * 4 + h) * 5 + w]
        };
        assert_eq!(at(1, 4, 2, 3, 1), src[(((3 + 2) * 4 + 3) * 5 + 1) * 6 + 4]);
        assert_eq!(dst, reference(&src, n, hw, c));
    }

    #[test]
    fn empty_is_a_no_op() {
        let mut dst: [u8; 0] = [];
        nhwc_to_nchw(&[], &mut dst, 0, 5, 3);
        nchw_to_nhwc(&[], &mut dst, 4, 0, 3);
        nchw_to_nhwc(&[], &mut dst, 4, 5, 0);
    }

    #[test]
    #[should_panic(expected = "slice lengths")]
    fn length_mismatch_panics() {
        let mut dst = [0u8; 5];
        nhwc_to_nchw(&[0u8; 6], &mut dst, 1, 2, 3);
    }
}
