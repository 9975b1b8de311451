//! The transport floor for workload (c): tonic's HTTP/2 server, with the settings the server's gRPC
//! transport uses (`rust/grpc/mod.rs`), that reads each request to its end and answers a canned reply.
//!
//! No server on this stack can beat it: it does what every one must (accept, HTTP/2, receive the whole
//! 602 KB message, send a reply) and nothing else: no copy of the message, no thread hand-off, no Python.
//!
//!     ovms-rs-floor --port N [--grpc_bind_address 127.0.0.1] --reply FILE [--copy] [--hand-off]
//!
//! FILE is the serialized PredictResponse to answer with (`benches/floor_server.py` writes the demo's).
//! For splitting the server's overhead, two steps the real server takes can be added: `--copy` gathers
//! the message into one new buffer (the server's reassembly copy into the `bytearray` Python reads),
//! `--hand-off` answers from a blocking-pool thread (where the server runs its Python handler), so the
//! request crosses threads twice as the server's does.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;

// The same as rust/grpc/mod.rs.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;
const MAX_FRAME: u32 = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = value("--port").expect("--port").parse().expect("--port N");
    let host = value("--grpc_bind_address").unwrap_or_else(|| "127.0.0.1".into());
    let reply = std::fs::read(value("--reply").expect("--reply FILE")).expect("reply file");
    let addr: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()
        .expect("address")
        .next()
        .expect("address");
    // One worker per allowed CPU, as the server's shared runtime (rust/runtime.rs).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // --max-frame BYTES: to measure what the frame size the server advertises costs.
    let max_frame = value("--max-frame").map_or(MAX_FRAME, |v| v.parse().expect("--max-frame N"));
    let floor = Floor {
        reply: framed(&reply),
        copy: args.iter().any(|a| a == "--copy"),
        hand_off: args.iter().any(|a| a == "--hand-off"),
    };
    runtime.block_on(async move {
        tonic::transport::Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(max_frame)
            .tcp_nodelay(true)
            .serve(addr, floor)
            .await
            .expect("serve");
    });
}

/// The message with its 5-byte gRPC prefix.
fn framed(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

#[derive(Clone)]
struct Floor {
    reply: Bytes,
    copy: bool,
    hand_off: bool,
}

impl tower_service::Service<Request<tonic::body::Body>> for Floor {
    type Response = Response<Reply>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let Floor {
            reply,
            copy,
            hand_off,
        } = self.clone();
        Box::pin(async move {
            let mut body = request.into_body();
            // Every frame received (flow control credited); kept only for --copy.
            let mut chunks = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let (true, Ok(data)) = (copy, frame.into_data()) {
                    chunks.push(data);
                }
            }
            let gather = move || {
                let len = chunks.iter().map(Bytes::len).sum();
                let mut message = Vec::with_capacity(len);
                for chunk in chunks {
                    message.extend_from_slice(&chunk);
                }
                std::hint::black_box(message);
            };
            if hand_off {
                tokio::task::spawn_blocking(gather).await.expect("hand-off");
            } else {
                gather();
            }
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let mut response = Response::new(Reply {
                data: Some(reply),
                trailers: Some(trailers),
            });
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            Ok(response)
        })
    }
}

/// One data frame, then the status trailers.
struct Reply {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}
