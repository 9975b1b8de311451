//! JSON numbers read straight from the body's bytes, for the fast path (`fast.rs`).
//!
//! The grammar is checked as serde_json checks it; anything this module does not decide itself (not a
//! number, bad syntax, an integer of more than 19 digits, an exponent of more than 4 digits, a value
//! out of f64's range) is `None`, and the caller leaves the whole body to the serde path. Digits are
//! gathered eight at a time (SWAR), the last part-word without a loop. The value is the correctly
//! rounded f64, the same bits serde_json gives with `float_roundtrip` (which the serde path is built
//! with), with the same classification (`U` for a non-negative integer, `I` for a negative one, `F`
//! for anything with a fraction or an exponent and for `-0`), so `Tensor::push` casts it as on the
//! serde path.
//!
//! The conversion (`decimal_to_f64`): an integer mantissa of up to 19 digits and a power of ten. A
//! 17-digit fraction (what `json.dumps` writes for a float32 image) has a mantissa above 2^53, so
//! `mant / 10^k` rounds twice and is within 1.5 ulp of the value; an exact comparison in 128-bit
//! integers against the halfway points settles it (stepping one ulp when needed). Whatever that
//! cannot decide goes to the standard library's correctly rounded parser. DT_FLOAT inputs take a
//! shortcut (`scan_f32`) that skips the comparison where it cannot change the f32, and short
//! numbers (a photo's pixels written as floats, `204.0`) a shorter one still (`short_f32`: the
//! whole number from one 8-byte word).
//!
//! Measured on 150,528 float32 image values as 17-digit text in one flat array (2.8 MB; thread CPU,
//! min of 30, a standalone copy of these functions, 2 shared cores, load 5-7): `scan_f32` 4.0 ms;
//! `scan` (the exact f64) 6.6 ms; the same lexing handing each number's text to `str::parse::<f64>`
//! 5.8 ms, to `fast_float2::parse` 5.5 ms, to `lexical_core::parse` 5.3-5.5 ms; `fast_float2::
//! parse_partial` driving the scan 4.5-4.7 ms; serde_json into a `Vec<f32>` 10.4 ms (5.9 ms without
//! `float_roundtrip`). So no dependency was added: std's parser is the exact fallback.

use super::tensor::Number;

/// Powers of ten exact in f64.
const POW10_F64: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 10^-k rounded to f64 (k = 0..=18), for the f32 path's estimate.
const POW10_NEG_F64: [f64; 19] = [
    1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14,
    1e-15, 1e-16, 1e-17, 1e-18,
];

/// Integer powers of ten, 10^0 ..= 10^19 (all that fit in u64).
const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The 8 bytes at `b[i..]` as a little-endian word (the first byte lowest), zero bytes past the end.
#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(s) => u64::from_le_bytes(s.try_into().expect("8 bytes")),
        None => {
            let rest = b.get(i..).unwrap_or_default();
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(buf)
        }
    }
}

/// How many bytes of `v`, from the first, are ASCII digits (0..=8). A byte's test borrows or carries
/// into the next byte only when it is no digit itself, so the first non-digit is always flagged.
#[inline(always)]
fn leading_digits(v: u64) -> usize {
    let non_digit = (v.wrapping_add(0x4646_4646_4646_4646) | v.wrapping_sub(0x3030_3030_3030_3030))
        & 0x8080_8080_8080_8080;
    (non_digit.trailing_zeros() / 8) as usize
}

/// 0x80 in exactly the bytes of `v` that are no ASCII digit (`leading_digits`' test is cheaper but
/// may flag digits after the first non-digit). A byte is a digit when `byte ^ 0x30` < 10; its low
/// seven bits + 0x76 reach bit 7 from 10 on and never carry into the next byte.
#[inline(always)]
fn non_digits(v: u64) -> u64 {
    let t = v ^ 0x3030_3030_3030_3030;
    (((t & 0x7F7F_7F7F_7F7F_7F7F) + 0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080
}

/// `FILL[n]`: ASCII '0' in the low 8 - n bytes (the digits moved above them make 8 digits).
const FILL: [u64; 9] = {
    let mut t = [0u64; 9];
    let mut n = 0;
    while n < 8 {
        t[n] = 0x3030_3030_3030_3030 >> (8 * n);
        n += 1;
    }
    t
};

/// The value of the first `n` (1..=8) bytes of `v`, which are digits: moved to the top, with '0's
/// below, then fast_float's parse_eight_digits_unrolled.
#[inline(always)]
fn digits_value(v: u64, n: usize) -> u64 {
    let v = (v << (8 * (8 - n) as u32)) | FILL[n];
    let v = v.wrapping_sub(0x3030_3030_3030_3030);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = (v & 0x0000_00FF_0000_00FF).wrapping_mul(0x000F_4240_0000_0064);
    let high = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(0x0000_2710_0000_0001);
    (low.wrapping_add(high) >> 32) & 0xFFFF_FFFF
}

/// A run of digits from `b[i..]`, folded into `mant` (wrapping: the caller counts the digits),
/// eight bytes at a time, the last part-word without a loop over its bytes (whose length varies from
/// number to number: a byte loop mispredicts its exit about once per number). Returns the index
/// after the run.
#[inline(always)]
fn digit_run(b: &[u8], mut i: usize, mant: &mut u64) -> usize {
    loop {
        let v = load8(b, i);
        let n = leading_digits(v);
        if n == 0 {
            return i;
        }
        *mant = mant
            .wrapping_mul(POW10_U64[n])
            .wrapping_add(digits_value(v, n));
        i += n;
        if n < 8 {
            return i;
        }
    }
}

/// A JSON number's parts: `±mant * 10^exp10`, `digits` digits in all (mant is exact when <= 19).
struct Lexed {
    negative: bool,
    mant: u64,
    exp10: i32,
    digits: usize,
    /// A fraction or an exponent was written (serde_json's float).
    float: bool,
    start: usize,
    end: usize,
}

/// The JSON number at `b[i..]`, its grammar checked as serde_json checks it.
#[inline(always)]
fn lex(b: &[u8], mut i: usize) -> Option<Lexed> {
    let start = i;
    let negative = b.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    // One leading zero at most, as JSON says ("01" is refused by serde; here it ends the number at
    // "0" and the caller finds a digit where a separator belongs).
    let mut mant = 0u64;
    let int_end = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digit_run(b, i, &mut mant),
        _ => return None,
    };
    lex_after_int(b, start, negative, mant, int_end - i, int_end)
}

/// The rest of `lex` after the integer part (`digits` digits, value `mant`, ending at `i`), for a
/// number that begins at `start`.
#[inline(always)]
fn lex_after_int(
    b: &[u8],
    start: usize,
    negative: bool,
    mut mant: u64,
    digits: usize,
    i: usize,
) -> Option<Lexed> {
    if b.get(i) == Some(&b'.') {
        let end = digit_run(b, i + 1, &mut mant);
        let n = end - (i + 1);
        if n == 0 {
            return None;
        }
        return lex_exponent(
            b,
            Lexed {
                negative,
                mant,
                exp10: -(n.min(1 << 20) as i32),
                digits: digits + n,
                float: true,
                start,
                end,
            },
        );
    }
    lex_exponent(
        b,
        Lexed {
            negative,
            mant,
            exp10: 0,
            digits,
            float: false,
            start,
            end: i,
        },
    )
}

/// `n` with the exponent written after it (at `n.end`), if any, folded in.
#[inline(always)]
fn lex_exponent(b: &[u8], mut n: Lexed) -> Option<Lexed> {
    let mut i = n.end;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let negative_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut e = 0u64;
        let end = digit_run(b, i, &mut e);
        if end == i || end - i > 4 {
            return None;
        }
        n.float = true;
        n.exp10 += if negative_exp { -(e as i32) } else { e as i32 };
        n.end = end;
    }
    Some(n)
}

impl Lexed {
    /// The magnitude, correctly rounded; `None` when out of f64's range.
    #[inline(always)]
    fn magnitude(&self, b: &[u8]) -> Option<f64> {
        let f = match (self.digits <= 19)
            .then(|| decimal_to_f64(self.mant, self.exp10))
            .flatten()
        {
            Some(f) => f,
            // Text of a validated JSON number: ASCII, which std's grammar accepts.
            None => std::str::from_utf8(&b[self.start..self.end])
                .ok()?
                .parse::<f64>()
                .ok()?
                .abs(),
        };
        (!f.is_infinite()).then_some(f) // serde_json: "number out of range"
    }
}

/// Scans the JSON number at `b[i..]`; the number as serde_json hands it to a visitor, and the index
/// after it. `None`: not a number this path decides (see the module docs).
#[inline]
pub(super) fn scan(b: &[u8], i: usize) -> Option<(Number, usize)> {
    let n = lex(b, i)?;
    let number = if !n.float {
        if n.digits > 19 {
            return None;
        }
        if !n.negative {
            Number::U(n.mant)
        } else {
            // serde_json: a float on `-0` and below i64::MIN.
            let neg = (n.mant as i64).wrapping_neg();
            if neg >= 0 {
                Number::F(-(n.mant as f64))
            } else {
                Number::I(neg)
            }
        }
    } else {
        let f = n.magnitude(b)?;
        Number::F(if n.negative { -f } else { f })
    };
    Some((number, n.end))
}

/// The number at `b[i..]` as a DT_FLOAT input takes it: `Tensor::push` of `scan`'s number, i.e. the
/// correctly rounded f64 cast to f32 (`None` also where that is out of f32's range, a refusal).
///
/// Cheaper than `scan` for the common case: `mant * 10^-k` in f64 (three roundings) is within 4 ulp
/// of the value, so the correctly rounded f64 is at most 8 steps of its bit pattern away (16 across
/// a power of two); unless those steps cross a rounding boundary of f32 (an f64 whose low 29 bits
/// are 0x1000_0000), every one of them casts to the same f32, and no exact comparison is needed.
/// Only about 1 in 2^24 values is that near a boundary.
#[inline(always)]
pub(super) fn scan_f32(b: &[u8], i: usize) -> Option<(f32, usize)> {
    let n = match short_f32(b, i) {
        Short::Done(y, end) => return Some((y, end)),
        Short::Lexed(n) => n?,
    };
    if n.digits > 19 && !n.float {
        return None;
    }
    let f = if n.digits <= 18 && (-18..0).contains(&n.exp10) {
        // mant < 10^18 < 2^63: the signed conversion, one instruction.
        let q = (n.mant as i64) as f64 * POW10_NEG_F64[(-n.exp10) as usize];
        let low = q.to_bits() & 0x1FFF_FFFF;
        // f32's normal range (its subnormals round at other bits) and not near a boundary.
        if (f64::from(f32::MIN_POSITIVE)..f64::from(f32::MAX)).contains(&q)
            && low.abs_diff(0x1000_0000) > 32
        {
            q
        } else {
            n.magnitude(b)?
        }
    } else if !n.float {
        n.mant as f64 // one rounding (serde: `U`/`I` as f64, or -0 as -0.0)
    } else {
        n.magnitude(b)?
    };
    let y = (if n.negative { -f } else { f }) as f32;
    (!y.is_infinite()).then_some((y, n.end))
}

/// What `short_f32` made of a number.
enum Short {
    /// The number and the index after it.
    Done(f32, usize),
    /// Not that short: the number lexed (what it read handed on, not read twice), `None` a refusal.
    Lexed(Option<Lexed>),
}

/// `scan_f32` for a number whose text ends within the 8 bytes after its optional `-`: `d+` or
/// `d+.d+` of 7 digits at most, followed by a byte that is no digit, `.`, `e` or `E` (pixels written
/// as floats, `204.0, `, are all like this): one load and one digit test for the whole number
/// instead of one for each digit run. Any other number is lexed from what the word gave (a long
/// fraction goes on from the word's end), so the short test costs the long numbers next to nothing.
/// Measured with `Run::next`'s two-byte separator (the parallel parse of a [1,3,224,224] body on one
/// thread, min of 1000, an Intel Xeon without AMX): a photo's pixels as `json.dumps` writes them
/// (`204.0`, 1.0 MB) 2.55 -> 1.67 ms, 1.53x; 17-digit uniform floats (2.9 MB) 3.51 -> 3.50 ms
/// (callgrind: -6 % instructions there, -37 % on the photo).
#[inline(always)]
fn short_f32(b: &[u8], i: usize) -> Short {
    let negative = b.get(i) == Some(&b'-');
    let at = i + usize::from(negative);
    let v = load8(b, at);
    let flags = non_digits(v);
    let p = (flags.trailing_zeros() / 8) as usize; // the integer part's digits
                                                   // JSON: a leading 0 stands alone ("01" is lex's to refuse); 8 digits or more may go on.
    if p == 0 || p == 8 || (v as u8 == b'0' && p > 1) {
        return Short::Lexed(lex(b, i));
    }
    let after = (v >> (8 * p)) as u8;
    if after != b'.' || p == 7 {
        let int = digits_value(v, p);
        if after == b'.' || after | 0x20 == b'e' {
            return Short::Lexed(lex_after_int(b, i, negative, int, p, at + p));
        }
        let value = (int as i64) as f64; // int < 10^7: exact
        return Short::Done((if negative { -value } else { value }) as f32, at + p);
    }
    // The first non-digit after the point's (the point's flag cleared): where the fraction ends,
    // 8 when it fills the word.
    let end = ((flags & (flags - 1)).trailing_zeros() / 8) as usize;
    let k = end - p - 1; // the fraction's digits within the word
    if k == 0 {
        return Short::Lexed(None); // "1." or "1.x": no digit after the point, as serde refuses
    }
    // The digits with the point taken out (the bytes above it moved down one): one conversion.
    let below = (1u64 << (8 * p)) - 1;
    let mut mant = digits_value((v & below) | ((v >> 8) & !below), p + k);
    if end == 8 || (v >> (8 * end)) as u8 | 0x20 == b'e' {
        // The fraction may go on past the word, or an exponent follows.
        let (n, end) = if end == 8 {
            let run_end = digit_run(b, at + 8, &mut mant);
            (k + run_end - (at + 8), run_end)
        } else {
            (k, at + end)
        };
        return Short::Lexed(lex_exponent(
            b,
            Lexed {
                negative,
                mant,
                exp10: -(n.min(1 << 20) as i32),
                digits: p + n,
                float: true,
                start: i,
                end,
            },
        ));
    }
    // mant < 10^7: the signed conversion is exact and one instruction. `mant * 10^-k` is within an
    // ulp of the value (>= 10^-6, an f32 normal), so it casts to the same f32 unless it lies next
    // to an f32 rounding boundary (`scan_f32`'s test); there the division, both operands exact,
    // gives the correctly rounded f64 (Clinger). Dividing every number cost ~20 % of the scan.
    let m = (mant as i64) as f64;
    let q = m * POW10_NEG_F64[k];
    let low = q.to_bits() & 0x1FFF_FFFF;
    let value = if low.abs_diff(0x1000_0000) > 32 {
        q
    } else {
        m / POW10_F64[k]
    };
    Short::Done((if negative { -value } else { value }) as f32, at + end)
}

/// `mant * 10^exp10` correctly rounded, `mant` exact; `None` where this cannot decide it cheaply.
#[inline]
pub(super) fn decimal_to_f64(mant: u64, exp10: i32) -> Option<f64> {
    if mant == 0 {
        return Some(0.0);
    }
    if exp10 == 0 {
        return Some(mant as f64); // one rounding
    }
    if (1..=22).contains(&exp10) && mant <= 1 << 53 {
        // Clinger: both operands exact, one rounding.
        return Some(mant as f64 * POW10_F64[exp10 as usize]);
    }
    if !(-19..0).contains(&exp10) {
        return None;
    }
    // (For mant <= 2^53 the quotient is exact already, Clinger's case; the comparison below
    // confirms it, cheaper than a branch that mispredicts on 16-17 digit mantissas.)
    let k = (-exp10) as usize;
    // Two roundings: within 1.5 ulp of the value; the exact comparison below settles it.
    let mut f = mant as f64 / POW10_F64[k];
    let ten_k = POW10_U64[k];
    for _ in 0..3 {
        let bits = f.to_bits();
        let biased = (bits >> 52) as i32;
        if biased == 0 {
            return None; // subnormal: cannot come from a 19-digit mantissa over 10^22, but be safe
        }
        let m = (bits & ((1 << 52) - 1)) | (1 << 52);
        let e = biased - 1075; // f = m * 2^e
                               // Everything times 10^k * 2^(1-e): the value -> mant * 2^(1-e), f -> 2m * 10^k, half an
                               // ulp -> 10^k.
        let shift = 1 - e;
        if shift < 0 || shift > 64 + mant.leading_zeros() as i32 {
            return None;
        }
        let value = (mant as u128) << shift;
        let at_f = (2 * m) as u128 * ten_k as u128; // < 2^54 * 10^19 < 2^118
        let half_ulp = ten_k as u128;
        // Both below 2^119 (value is within 1.5 ulp of f): the difference fits in i128.
        let diff = value as i128 - at_f as i128;
        let below = diff < 0;
        if below && m == 1 << 52 {
            return None; // the float below is half an ulp away: not this comparison's case
        }
        let dist = diff.unsigned_abs();
        if dist < half_ulp || (dist == half_ulp && m & 1 == 0) {
            return Some(f);
        }
        f = f64::from_bits(if below { bits - 1 } else { bits + 1 });
    }
    None
}
