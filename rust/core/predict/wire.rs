//! Protocol-buffer wire format: just enough to walk PredictRequest / TensorProto without generated code
//! and to write PredictResponse. Every read is bounds-checked; nothing here trusts a length it read.

use crate::error::{Error, Result};

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// A cursor over one message's bytes. `pos` is the offset into the top-level buffer, so fields can be
/// exposed as (offset, len) views of the original request without copying.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

/// One field as it sits on the wire.
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Payload bytes and their offset in the top-level buffer.
    Bytes(&'a [u8], usize),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// A reader over a sub-message previously returned as `Value::Bytes(payload, offset)`.
    pub fn nested(&self, offset: usize, len: usize) -> Reader<'a> {
        Reader {
            buf: self.buf,
            pos: offset,
            end: offset + len,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .filter(|_| self.pos < self.end)
                .ok_or_else(|| Error::malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<(&'a [u8], usize)> {
        let start = self.pos;
        let stop = start
            .checked_add(n)
            .filter(|&s| s <= self.end)
            .ok_or_else(|| Error::malformed("field runs past the end of the message"))?;
        self.pos = stop;
        Ok((&self.buf[start..stop], start))
    }

    /// The next (field number, value), or None at the end of the message.
    pub fn field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number =
            u32::try_from(key >> 3).map_err(|_| Error::malformed("field number too large"))?;
        if number == 0 {
            return Err(Error::malformed("field number 0"));
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                let (b, _) = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            FIXED32 => {
                let (b, _) = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            LEN => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| Error::malformed("length too large"))?;
                let (b, off) = self.take(len)?;
                Value::Bytes(b, off)
            }
            other => return Err(Error::malformed(format!("unsupported wire type {other}"))),
        };
        Ok(Some((number, value)))
    }
}

/// Decodes a packed run of varints (or calls `f` once for an unpacked one).
pub fn for_each_varint(value: &Value<'_>, mut f: impl FnMut(u64)) -> Result<()> {
    match value {
        Value::Varint(v) => f(*v),
        Value::Bytes(b, _) => {
            let mut r = Reader::new(b);
            while !r.at_end() {
                f(r.varint()?);
            }
        }
        _ => return Err(Error::malformed("expected varint values")),
    }
    Ok(())
}

/// Decodes a packed run of fixed-width little-endian values (or one unpacked value).
pub fn for_each_fixed<const N: usize>(value: &Value<'_>, mut f: impl FnMut([u8; N])) -> Result<()> {
    match value {
        Value::Fixed32(v) if N == 4 => f(v.to_le_bytes()[..N].try_into().expect("N bytes")),
        Value::Fixed64(v) if N == 8 => f(v.to_le_bytes()[..N].try_into().expect("N bytes")),
        Value::Bytes(b, _) => {
            if b.len() % N != 0 {
                return Err(Error::malformed(
                    "packed field length is not a multiple of its width",
                ));
            }
            for chunk in b.chunks_exact(N) {
                f(chunk.try_into().expect("N bytes"));
            }
        }
        _ => return Err(Error::malformed("expected fixed-width values")),
    }
    Ok(())
}

pub fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::malformed(format!("{what} is not valid UTF-8")))
}

// ---- writing ----

pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Where encoded bytes go: a growable Vec (tests, small messages) or a preallocated reply buffer.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes into a buffer sized in advance (a new reply `bytes` object's, not initialised), so data is copied
/// exactly once and never preceded by zeroing.
pub struct RawSink {
    ptr: *mut u8,
    cap: usize,
    pos: usize,
}

// SAFETY: a RawSink is the only writer of its buffer (see `new`), wherever it runs.
unsafe impl Send for RawSink {}

impl RawSink {
    /// # Safety
    /// `ptr` must be valid for writes of `cap` bytes for as long as the sink is used, and nothing else may
    /// access those bytes meanwhile.
    pub unsafe fn new(ptr: *mut u8, cap: usize) -> Self {
        RawSink { ptr, cap, pos: 0 }
    }

    pub fn written(&self) -> usize {
        self.pos
    }
}

impl Sink for RawSink {
    fn put(&mut self, bytes: &[u8]) {
        // The caller computed the exact size; overflowing it is a bug, not a client error.
        assert!(bytes.len() <= self.cap - self.pos, "RawSink overflow");
        // SAFETY: in bounds (checked above) of the buffer `new` was given; `bytes` cannot overlap it,
        // since nothing else accesses that buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.pos), bytes.len());
        }
        self.pos += bytes.len();
    }
}

pub fn put_varint(out: &mut impl Sink, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    out.put(&tmp[..=n]);
}

pub fn put_key(out: &mut impl Sink, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// Size of a length-delimited field (key + length + payload) with a one-byte key.
pub fn len_field_size(payload: usize) -> usize {
    1 + varint_len(payload as u64) + payload
}

pub fn put_len_field(out: &mut impl Sink, field: u32, payload: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, payload.len() as u64);
    out.put(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            assert_eq!(Reader::new(&out).varint().unwrap(), v);
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0x0a, 0x05, 0x01]);
        assert!(r.field().is_err());
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let mut buf = vec![0x0a];
        put_varint(&mut buf, u64::MAX);
        assert!(Reader::new(&buf).field().is_err());
    }
}
