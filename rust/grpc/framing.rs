//! The parts of gRPC-over-HTTP/2 a unary server needs: the 5-byte message prefix, the `grpc-timeout`
//! header, and replies (a message plus status trailers, or a trailers-only error).
//!
//! Reference: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response};
use http_body::Frame;

/// Compressed-flag byte + big-endian u32 length before every message.
pub const PREFIX_LEN: usize = 5;

/// gRPC status codes used by the transport itself (the handler returns any code).
pub mod code {
    pub const OK: i32 = 0;
    pub const CANCELLED: i32 = 1;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
}

/// What a message prefix announces.
#[derive(Debug, PartialEq, Eq)]
pub struct Prefix {
    pub compressed: bool,
    pub len: usize,
}

pub fn parse_prefix(p: &[u8; PREFIX_LEN]) -> Prefix {
    Prefix {
        compressed: p[0] != 0,
        len: u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize,
    }
}

/// `grpc-timeout`: up to 8 ASCII digits and a unit (H, M, S, m, u, n). None when absent or malformed
/// (a malformed value is ignored, as grpc-core does).
pub fn parse_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `grpc-message` is percent-encoded: everything outside printable ASCII, and '%' itself.
pub fn encode_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A unary reply body: the message's 5-byte prefix and the message itself as two data frames (so the
/// message is sent from the buffer Python wrote, never copied behind a prefix), then the trailers (if
/// the status was not already sent in the headers).
pub struct ReplyBody {
    data: [Option<Bytes>; 2],
    trailers: Option<HeaderMap>,
}

impl http_body::Body for ReplyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        for data in &mut self.data {
            if let Some(data) = data.take() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.iter().all(Option::is_none) && self.trailers.is_none()
    }
}

fn grpc_response(body: ReplyBody) -> Response<ReplyBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

fn status_headers(headers: &mut HeaderMap, code: i32, message: &str) {
    headers.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&encode_message(message)) {
            headers.insert("grpc-message", v);
        }
    }
}

/// A successful reply: `message` framed as one gRPC message, then `grpc-status: 0`.
pub fn ok_reply(message: Bytes) -> Response<ReplyBody> {
    let mut prefix = BytesMut::with_capacity(PREFIX_LEN);
    prefix.put_u8(0);
    prefix.put_u32(message.len() as u32);
    let mut trailers = HeaderMap::new();
    status_headers(&mut trailers, code::OK, "");
    grpc_response(ReplyBody {
        data: [
            Some(prefix.freeze()),
            (!message.is_empty()).then_some(message),
        ],
        trailers: Some(trailers),
    })
}

/// An error reply in the trailers-only form: the status travels in the response headers.
pub fn error_reply(code: i32, message: &str) -> Response<ReplyBody> {
    let mut response = grpc_response(ReplyBody {
        data: [None, None],
        trailers: None,
    });
    status_headers(response.headers_mut(), code, message);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", HeaderValue::from_str(value).unwrap());
        parse_timeout(&headers)
    }

    #[test]
    fn timeouts_in_every_unit() {
        assert_eq!(timeout_of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout_of("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("10S"), Some(Duration::from_secs(10)));
        assert_eq!(timeout_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            timeout_of("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(timeout_of("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn malformed_timeouts_are_ignored() {
        for bad in ["", "S", "10", "10x", "123456789S", "-1S", "1.5S"] {
            assert_eq!(timeout_of(bad), None, "{bad:?}");
        }
        assert_eq!(parse_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn prefix_announces_flag_and_length() {
        assert_eq!(
            parse_prefix(&[0, 0, 9, 0x33, 0x0c]),
            Prefix {
                compressed: false,
                len: 602_892
            }
        );
        assert!(parse_prefix(&[1, 0, 0, 0, 0]).compressed);
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("plain text: ok"), "plain text: ok");
        assert_eq!(encode_message("100%\n"), "100%25%0A");
        assert_eq!(encode_message("é"), "%C3%A9");
    }

    #[test]
    fn ok_reply_frames_the_message() {
        let r = ok_reply(Bytes::from_static(b"abc"));
        assert_eq!(r.headers()["content-type"], "application/grpc");
        let body = r.into_body();
        let [prefix, message] = &body.data;
        assert_eq!(prefix.as_deref(), Some(&[0, 0, 0, 0, 3][..]));
        assert_eq!(message.as_deref(), Some(&b"abc"[..]));
        assert_eq!(body.trailers.unwrap()["grpc-status"], "0");
        // An empty message is its prefix alone.
        assert!(ok_reply(Bytes::new()).into_body().data[1].is_none());
    }

    #[test]
    fn error_reply_is_trailers_only() {
        let r = error_reply(code::RESOURCE_EXHAUSTED, "queue full");
        assert_eq!(r.headers()["grpc-status"], "8");
        assert_eq!(r.headers()["grpc-message"], "queue full");
        assert!(http_body::Body::is_end_stream(r.body()));
    }
}
