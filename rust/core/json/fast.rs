//! The fast path of the predict-body parser: the common bodies (numbers in nested arrays, in any of
//! the four formats) read in one hand-written pass over the bytes, without serde.
//!
//! It decides nothing on its own: on anything it does not handle (a string, `true`/`false`/`null`,
//! `{"b64"}`, an escape in a key, a nested value under an ignored key, bad syntax, a number out of
//! range, a ragged array, any refusal) it gives up with `None` and `request::parse` parses the body
//! again through serde, which gives the error or the result. When it does return, the result is the
//! one the serde path gives: the same `Tensor` calls in the same order, and numbers with serde_json's
//! classification and correctly rounded values (`number.rs`; checked against the serde path in
//! request_tests.rs). Its recursion is bounded by `Tensor::open`'s depth limit.
//!
//! What it buys, on a [1,3,224,224] f32 body of 17-digit floats (2.8 MB), is in `request.rs`.

use super::number;
use super::request::{sole_input, Format, JsonRequest};
use super::tensor::{Tensor, Values};
use crate::dtype::DType;

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// The parallel path's structural pass: innermost arrays of numbers are located, not parsed.
    skim: bool,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    /// Skips JSON whitespace (serde_json's set).
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// After an element: skips `,` (true) or `close` (false) with the whitespace around it.
    #[inline(always)]
    fn separator(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.next()? {
            b',' => {
                self.ws();
                Some(true)
            }
            c if c == close => Some(false),
            _ => None,
        }
    }

    /// A string of printable ASCII without escapes (anything else is left to serde).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => return None,
                0x20..=0x7e => {}
                _ => return None,
            }
        }
        std::str::from_utf8(&self.b[start..self.i - 1]).ok()
    }

    /// The value of a key the body does not use (`signature_name`): a simple string or a number;
    /// anything else is left to serde.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            _ => number::scan(self.b, self.i).map(|(_, i)| self.i = i),
        }
    }

    /// One value of `tensor` at `depth`.
    fn value(&mut self, tensor: &mut Tensor, depth: usize) -> Option<()> {
        match self.peek()? {
            b'[' => self.array(tensor, depth),
            _ => {
                let (n, i) = number::scan(self.b, self.i)?;
                self.i = i;
                tensor.number(depth, n).ok()
            }
        }
    }

    /// An array of `tensor` at `depth`: of arrays, or of numbers (the hot loop).
    fn array(&mut self, tensor: &mut Tensor, depth: usize) -> Option<()> {
        self.eat(b'[')?;
        tensor.open(depth).ok()?;
        self.ws();
        let mut len = 0;
        match self.peek()? {
            b']' => self.i += 1,
            b'[' => loop {
                self.value(tensor, depth + 1)?;
                len += 1;
                if !self.separator(b']')? {
                    break;
                }
            },
            _ => {
                // Numbers only: any other element after a number is a refusal on the serde path.
                tensor.leaf(depth + 1).ok()?;
                if self.skim {
                    len = self.skim_numbers(tensor, depth)?;
                } else if let Values::F32(values) = &mut tensor.values {
                    // DT_FLOAT, the common case: `scan_f32` is `scan` + `Tensor::push`, cheaper.
                    loop {
                        let (y, i) = number::scan_f32(self.b, self.i)?;
                        self.i = i;
                        values.push(y);
                        len += 1;
                        if !self.separator(b']')? {
                            break;
                        }
                    }
                } else {
                    loop {
                        let (n, i) = number::scan(self.b, self.i)?;
                        self.i = i;
                        tensor.push(n).ok()?;
                        len += 1;
                        if !self.separator(b']')? {
                            break;
                        }
                    }
                }
            }
        }
        tensor.close(depth, len).ok()
    }

    /// The skim's innermost array of numbers, after its `[`: its span up to the first `]` is kept
    /// for `parallel.rs` to parse. Its length is taken to be the one its depth had (that every array
    /// there must have) or, for the first, its commas + 1; the parallel parse checks it.
    fn skim_numbers(&mut self, tensor: &mut Tensor, depth: usize) -> Option<usize> {
        let start = self.i;
        let end = start + memchr::memchr(b']', &self.b[start..])?;
        let len = match tensor.dims[depth] {
            Some(len) => len,
            None => memchr::memchr_iter(b',', &self.b[start..end]).count() + 1,
        };
        tensor.spans.push((start, end));
        self.i = end + 1;
        Some(len)
    }

    /// Row format: unnamed (the sole input's values) or named (objects of input -> value).
    fn instances(&mut self, expected: &[(String, DType)], tensors: &mut Vec<Tensor>) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        let mut count = 0;
        if self.peek()? == b'{' {
            loop {
                self.eat(b'{')?;
                self.ws();
                loop {
                    let key = self.string()?;
                    if key == "b64" {
                        return None;
                    }
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let at = match tensors.iter().position(|t| t.name == key) {
                        Some(at) => at,
                        None => {
                            tensors.push(Tensor::for_input(expected, key));
                            tensors.len() - 1
                        }
                    };
                    let tensor = &mut tensors[at];
                    tensor.instances += 1;
                    self.value(tensor, 1)?;
                    if !self.separator(b'}')? {
                        break;
                    }
                }
                count += 1;
                if !self.separator(b']')? {
                    break;
                }
            }
            if tensors.iter().any(|t| t.instances != count) {
                return None;
            }
        } else {
            if self.peek()? == b']' {
                return None;
            }
            let (name, _) = sole_input(expected)?;
            let mut tensor = Tensor::for_input(expected, name);
            loop {
                self.value(&mut tensor, 1)?;
                count += 1;
                if !self.separator(b']')? {
                    break;
                }
            }
            tensor.open(0).ok()?;
            tensor.close(0, count).ok()?;
            tensors.push(tensor);
        }
        Some(())
    }

    /// Column format: a value for the sole input, or an object of input -> value.
    fn inputs(&mut self, expected: &[(String, DType)], tensors: &mut Vec<Tensor>) -> Option<()> {
        if self.peek()? != b'{' {
            let (name, _) = sole_input(expected)?;
            let mut tensor = Tensor::for_input(expected, name);
            self.value(&mut tensor, 0)?;
            tensors.push(tensor);
            return Some(());
        }
        self.eat(b'{')?;
        self.ws();
        loop {
            let key = self.string()?;
            if tensors.iter().any(|t| t.name == key) {
                return None;
            }
            self.ws();
            self.eat(b':')?;
            self.ws();
            let mut tensor = Tensor::for_input(expected, key);
            self.value(&mut tensor, 0)?;
            tensors.push(tensor);
            if !self.separator(b'}')? {
                break;
            }
        }
        Some(())
    }
}

/// The body parsed without serde, or `None`: parse it through serde (see the module docs).
pub(super) fn parse(body: &[u8], expected: &[(String, DType)]) -> Option<JsonRequest> {
    let (format, tensors) = scan(body, expected, false)?;
    Some(JsonRequest {
        format,
        inputs: tensors.into_iter().map(Tensor::finish).collect(),
    })
}

/// The parallel path's structural pass: the same walk and `Tensor` calls as `parse`, but every
/// innermost array of numbers is only located (`Tensor::spans`), its length assumed (see
/// `skim_numbers`); `parallel.rs` parses them and checks the assumption.
pub(super) fn skim(body: &[u8], expected: &[(String, DType)]) -> Option<(Format, Vec<Tensor>)> {
    scan(body, expected, true)
}

fn scan(body: &[u8], expected: &[(String, DType)], skim: bool) -> Option<(Format, Vec<Tensor>)> {
    let mut s = Scanner {
        b: body,
        i: 0,
        skim,
    };
    let mut format = None;
    let mut tensors = Vec::new();
    s.ws();
    s.eat(b'{')?;
    s.ws();
    loop {
        let key = s.string()?;
        s.ws();
        s.eat(b':')?;
        s.ws();
        match key {
            "instances" | "inputs" if format.is_some() => return None,
            "instances" => {
                format = Some(Format::Row);
                s.instances(expected, &mut tensors)?;
            }
            "inputs" => {
                format = Some(Format::Column);
                s.inputs(expected, &mut tensors)?;
            }
            _ => s.skip_value()?,
        }
        if !s.separator(b'}')? {
            break;
        }
    }
    s.ws();
    if s.i != body.len() {
        return None;
    }
    Some((format?, tensors))
}
