//! The parallel path of the predict-body parser, for large bodies: the numbers of an image-sized
//! body parsed on several threads.
//!
//! Why: the serial fast path (`fast.rs`) spends ~23 ns a number, ~3.5 ms on a [1,3,224,224] f32
//! body of 17-digit floats (2.9 MB), about half of a REST request's time at concurrency 1 and most
//! of the gap to gRPC's latency (BENCHMARKS.md, issue 15). Numbers in arrays are independent once
//! it is known where each array lies and where its values go.
//!
//! How: `fast::skim` walks the body as the fast path does (the same `Tensor` calls, so the same
//! nesting, raggedness and depth checks) but only locates each innermost array of numbers (a
//! `memchr` for its `]`: no number holds one) and takes its length to be its depth's (the first
//! one's: its commas + 1). Then the arrays, in their order, are cut into tasks of about
//! `TASK_BYTES` of text (a longer array into pieces at commas, counted with `memchr`), each parsing
//! its numbers with the fast path's own functions (`number::scan_f32`, or `number::scan` + the
//! conversion `Tensor::push` makes) straight into its slice of the preallocated typed output. A
//! task checks that every array has exactly the assumed length and the fast path's grammar
//! (numbers, commas, whitespace); any surprise (a length, a string, a number the fast path refuses,
//! a value out of range) is `None`, and `request::parse` parses the body serially (fast path, then
//! serde), which decides it and gives every error. So a body this path returns is one the fast
//! path returns the same for, bit for bit, and it returns every body above the size the fast path
//! takes (tested in parallel_tests.rs).
//!
//! Measured (`parallel_timing_probe` in parallel_tests.rs, `benches.rest_parse_threads`; details in
//! benches/results/rest/parallel-parse.md), AMD EPYC, 2 shared vCPUs: with the second core free,
//! the 2.9 MB body in 1.3-1.6 ms instead of 2.2-3.0 ms (1.7-2.1x, min and median of 21), a
//! [8,3,224,224] body (23 MB) 1.6-2.1x, of which the skim is ~2%; the REST p50 at concurrency 1 on
//! the demo model 6.90 -> 5.67 ms, no loss at concurrency 8. While another process holds the
//! second core, no gain (the caller parses every task itself) and the skim's ~2% lost.
//!
//! Each task parses its pieces two runs at a time (each piece cut at a comma near its middle, the
//! two halves' numbers scanned alternately in one loop). Measured on one thread
//! (`RAYON_NUM_THREADS=1`, `parse_in_tasks` of 2.9 MB image bodies, min / median of 31, two runs
//! each, Intel Xeon with AMX): [1,3,224,224] 2.62-2.63 / 2.70-2.74 ms against 2.82-2.87 / 2.95-2.96
//! ms one number at a time (1.08-1.09x), one flat array of 150,528 2.73-2.82 / 2.84-2.92 against
//! 3.05 / 3.13-3.14 ms (1.08-1.12x). Less than a dependency-bound loop would give: the scan is mostly
//! bound by its instruction count (~20 ns a number on this CPU).

use std::sync::atomic::{AtomicBool, Ordering};

use super::fast;
use super::number;
use super::request::JsonRequest;
use super::tensor::{self, Tensor, Values};
use crate::dtype::DType;
use crate::parallel;

/// Bodies smaller than this are parsed serially. Measured with a free second core: medians
/// 1.1-1.4x at 104 KB (~75 us serially), 0.8-1.0x at 52 KB, where waking a pool thread costs about
/// what it saves.
pub(super) const MIN_BODY: usize = 128 * 1024;

/// About the text one task parses (~50 us of numbers). Measured with a free second core (min and
/// median of 21-41, bodies of 0.1-2.9 MB, the probe runs that compared sizes): 32 and 64 KB within
/// the noise of each other (either 5-30% ahead in some runs), 16 KB behind both in three runs of
/// four; 8-512 KB alike on the 2.9 MB body. A `MIN_BODY` body still makes 2 tasks.
pub(super) const TASK_BYTES: usize = 64 * 1024;

/// The body parsed on several threads, or `None`: too small, one thread, or anything this path does
/// not decide (parse it serially; see the module docs).
pub(super) fn parse(body: &[u8], expected: &[(String, DType)]) -> Option<JsonRequest> {
    if body.len() < MIN_BODY || rayon::current_num_threads() < 2 {
        return None;
    }
    parse_in_tasks(body, expected, TASK_BYTES)
}

/// `parse` at any size, with tasks of about `task_bytes` (tests cut small bodies into many tasks).
pub(super) fn parse_in_tasks(
    body: &[u8],
    expected: &[(String, DType)],
    task_bytes: usize,
) -> Option<JsonRequest> {
    let (format, mut tensors) = fast::skim(body, expected)?;
    for tensor in &mut tensors {
        fill(body, tensor, task_bytes)?;
    }
    Some(JsonRequest {
        format,
        inputs: tensors.into_iter().map(Tensor::finish).collect(),
    })
}

/// Parses the arrays the skim located into `tensor.values` (already complete if there are none:
/// its numbers, if any, were scalars the skim parsed itself).
fn fill(body: &[u8], tensor: &mut Tensor, task_bytes: usize) -> Option<()> {
    if tensor.spans.is_empty() {
        return Some(());
    }
    // The arrays sit at depth rank - 1; an earlier empty array there can make the length 0, which
    // the serial path refuses as ragged.
    let len = tensor
        .rank
        .and_then(|r| *tensor.dims.get(r.checked_sub(1)?)?)?;
    let total = tensor.spans.len().checked_mul(len)?;
    // Every number takes a byte of the body at least: no allocation beyond its size.
    if len == 0 || total > body.len() || !tensor.values.is_empty() {
        return None;
    }
    let spans = std::mem::take(&mut tensor.spans);
    let job = Job {
        body,
        spans: &spans,
        len,
        task_bytes,
    };
    match &mut tensor.values {
        Values::F32(v) => job.run::<F32>(v),
        Values::F64(v) => job.run::<F64>(v),
        Values::F16(v) => job.run::<F16>(v),
        Values::I8(v) => job.run::<Int<i8>>(v),
        Values::I16(v) => job.run::<Int<i16>>(v),
        Values::I32(v) => job.run::<Int<i32>>(v),
        Values::I64(v) => job.run::<Int<i64>>(v),
        Values::U8(v) => job.run::<Int<u8>>(v),
        Values::U16(v) => job.run::<Int<u16>>(v),
        Values::U32(v) => job.run::<Int<u32>>(v),
        Values::U64(v) => job.run::<Int<u64>>(v),
        // A number for a BOOL input is a refusal; strings never reach the skim's arrays.
        Values::Bool(_) | Values::Strings(_) => None,
    }
}

/// How a number's text becomes a value of the input's type: as on the fast path.
trait Kind {
    type T: Copy + Default + Send;
    fn scan(b: &[u8], i: usize) -> Option<(Self::T, usize)>;
}

struct F32;
struct F64;
struct F16;
struct Int<T>(std::marker::PhantomData<T>);

impl Kind for F32 {
    type T = f32;
    #[inline(always)]
    fn scan(b: &[u8], i: usize) -> Option<(f32, usize)> {
        number::scan_f32(b, i)
    }
}

impl Kind for F64 {
    type T = f64;
    #[inline(always)]
    fn scan(b: &[u8], i: usize) -> Option<(f64, usize)> {
        let (n, i) = number::scan(b, i)?;
        Some((tensor::to_f64(n), i))
    }
}

impl Kind for F16 {
    type T = u16;
    #[inline(always)]
    fn scan(b: &[u8], i: usize) -> Option<(u16, usize)> {
        let (n, i) = number::scan(b, i)?;
        Some((tensor::to_f16_bits(n)?, i))
    }
}

impl<T: TryFrom<i64> + TryFrom<u64> + Copy + Default + Send> Kind for Int<T> {
    type T = T;
    #[inline(always)]
    fn scan(b: &[u8], i: usize) -> Option<(T, usize)> {
        let (n, i) = number::scan(b, i)?;
        Some((tensor::to_int(n)?, i))
    }
}

/// One tensor's arrays: where they lie and how many numbers each must hold.
struct Job<'a> {
    body: &'a [u8],
    spans: &'a [(usize, usize)],
    len: usize,
    task_bytes: usize,
}

/// A run of numbers one task parses: `count` of them, from `start` (an array's first number, or
/// just after a comma) to `end` (the array's `]`, or a comma between its numbers).
#[derive(Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    count: usize,
}

impl Job<'_> {
    fn run<K: Kind>(&self, out: &mut Vec<K::T>) -> Option<()> {
        let pieces = self.pieces()?;
        *out = vec![K::T::default(); self.spans.len() * self.len];
        let mut tasks = Vec::new();
        let (mut pieces, mut rest) = (&pieces[..], &mut out[..]);
        while !pieces.is_empty() {
            let (mut bytes, mut values) = (0, 0);
            let count = pieces
                .iter()
                .take_while(|p| {
                    let more = bytes < self.task_bytes;
                    bytes += p.end - p.start;
                    values += if more { p.count } else { 0 };
                    more
                })
                .count();
            let (these, others) = pieces.split_at(count);
            let (slice, after) = std::mem::take(&mut rest).split_at_mut(values);
            tasks.push((these, slice));
            (pieces, rest) = (others, after);
        }
        let failed = AtomicBool::new(false);
        parallel::for_each(tasks, |(pieces, out)| {
            if failed.load(Ordering::Relaxed) || self.parse::<K>(pieces, out).is_none() {
                failed.store(true, Ordering::Relaxed);
            }
        });
        (!failed.into_inner()).then_some(())
    }

    /// The arrays as pieces of at most about `task_bytes`: an array longer than that (a flat
    /// input's one array) is cut at commas, each piece's count its commas + 1 (the last piece's,
    /// what the array's length leaves; none left is a ragged array).
    fn pieces(&self) -> Option<Vec<Piece>> {
        let b = self.body;
        let mut pieces = Vec::with_capacity(self.spans.len());
        for &(start, end) in self.spans {
            let (mut from, mut left) = (start, self.len);
            while end - from > self.task_bytes {
                let Some(k) = memchr::memchr(b',', &b[from + self.task_bytes..end]) else {
                    break;
                };
                let cut = from + self.task_bytes + k;
                let count = memchr::memchr_iter(b',', &b[from..cut]).count() + 1;
                left = left.checked_sub(count).filter(|&left| left > 0)?;
                pieces.push(Piece {
                    start: from,
                    end: cut,
                    count,
                });
                from = cut + 1;
            }
            pieces.push(Piece {
                start: from,
                end,
                count: left,
            });
        }
        Some(pieces)
    }

    /// The numbers of `pieces` into `out`, in order, with the fast path's grammar: each piece is
    /// `number (ws , ws number)* ws` and holds exactly its count.
    fn parse<K: Kind>(&self, pieces: &[Piece], mut out: &mut [K::T]) -> Option<()> {
        let b = self.body;
        for piece in pieces {
            let (these, rest) = std::mem::take(&mut out).split_at_mut(piece.count);
            out = rest;
            match split(b, piece) {
                Some((first, second)) => {
                    let (a, z) = these.split_at_mut(first.count);
                    let (mut x, mut y) = (Run::new(b, &first), Run::new(b, &second));
                    // Two independent runs in one loop: each number's scan is a chain of
                    // dependent loads, shifts and multiplies; interleaving two lets the core
                    // overlap them (8-12 % a thread, measured: the module docs).
                    let both = a.len().min(z.len());
                    for (u, v) in a[..both].iter_mut().zip(&mut z[..both]) {
                        *u = x.next::<K>()?;
                        *v = y.next::<K>()?;
                    }
                    x.rest::<K>(&mut a[both..])?;
                    y.rest::<K>(&mut z[both..])?;
                }
                None => Run::new(b, piece).rest::<K>(these)?,
            }
        }
        Some(())
    }
}

/// Pieces of fewer numbers are parsed in one run.
const MIN_SPLIT: usize = 16;

/// A piece cut in two at a comma near its middle, each half's count its own (the first's commas
/// + 1); `None` for a piece too short to be worth it, or one without a comma there.
fn split(b: &[u8], piece: &Piece) -> Option<(Piece, Piece)> {
    if piece.count < MIN_SPLIT {
        return None;
    }
    let middle = piece.start + (piece.end - piece.start) / 2;
    let cut = middle + memchr::memchr(b',', &b[middle..piece.end])?;
    let count = memchr::memchr_iter(b',', &b[piece.start..cut]).count() + 1;
    let rest = piece.count.checked_sub(count).filter(|&n| n > 0)?;
    let first = Piece {
        start: piece.start,
        end: cut,
        count,
    };
    let second = Piece {
        start: cut + 1,
        end: piece.end,
        count: rest,
    };
    Some((first, second))
}

/// A piece's numbers, one at a time, with its grammar checked.
struct Run<'a> {
    b: &'a [u8],
    i: usize,
    end: usize,
    first: bool,
}

impl<'a> Run<'a> {
    fn new(b: &'a [u8], piece: &Piece) -> Self {
        Run {
            b,
            i: ws(b, piece.start),
            end: piece.end,
            first: true,
        }
    }

    /// The next number, after the separator before it unless it is the first. `i` is left just
    /// after the number: the separator is the next call's (or `rest`'s end check's) to read.
    #[inline(always)]
    fn next<K: Kind>(&mut self) -> Option<K::T> {
        if !self.first {
            // `, ` as json.dumps writes it: two bytes compared at once instead of a whitespace
            // loop on either side of the comma (~9 % of a photo body's instructions). More whitespace
            // after it fails the scan below, and the serial paths take the body.
            self.i = if self.b.get(self.i..self.i + 2) == Some(b", ") {
                self.i + 2
            } else {
                let comma = ws(self.b, self.i);
                if self.b.get(comma) != Some(&b',') {
                    return None;
                }
                ws(self.b, comma + 1)
            };
        }
        self.first = false;
        let (value, next) = K::scan(self.b, self.i)?;
        self.i = next;
        Some(value)
    }

    /// The piece's remaining numbers into `out`, which must be all it holds.
    fn rest<K: Kind>(mut self, out: &mut [K::T]) -> Option<()> {
        for value in out {
            *value = self.next::<K>()?;
        }
        (ws(self.b, self.i) == self.end).then_some(())
    }
}

/// The index after the JSON whitespace at `b[i..]` (serde_json's set, as the fast path skips).
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}
