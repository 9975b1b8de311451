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
//!
//!     ovms-rs-floor --port N --infer MODEL.xml [--nireq N] [--threads N] [--openvino-c LIB] [--input-copy]
//!
//! `--infer`: instead of the canned reply, what a Python-free Predict would do (issue 20's "design change
//! that would remove Python from the floor"): gather the message, parse the PredictRequest
//! (`ovms_rs_core`), check it against the model, wrap its `tensor_content` as an OpenVINO tensor (no
//! copy: the message is gathered at the place in its buffer that puts the content 64-byte aligned where
//! the previous request had it; a request whose content lands elsewhere is copied into an aligned buffer,
//! and the log says which happened), infer on a blocking-pool thread with one of `--nireq` infer
//! requests of ONE compiled model (CPU, PERFORMANCE_HINT=LATENCY, INFERENCE_NUM_THREADS=`--threads`
//! unless 0), and answer a real PredictResponse with the model's output. OpenVINO's C API is loaded at
//! run time from LIB (or $OVMS_RS_OPENVINO_C): `openvino/libs/libopenvino_c.so*` of the wheel.
//! `--input-copy` copies tensor_content into the infer request's own input tensor instead of wrapping
//! it, for comparison.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use ovms_rs_core::dtype::DType;
use ovms_rs_core::predict::response::{model_spec, response_size, write_response, Output};
use ovms_rs_core::predict::tensor_proto::parse_request;

mod openvino;

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
    let infer = value("--infer").map(|xml| {
        let library = value("--openvino-c")
            .or_else(|| std::env::var("OVMS_RS_OPENVINO_C").ok())
            .expect(
                "--openvino-c LIB or $OVMS_RS_OPENVINO_C: libopenvino_c.so of the openvino wheel",
            );
        let number = |flag: &str, default: usize| {
            value(flag).map_or(default, |v| v.parse().expect("a number"))
        };
        Arc::new(Infer::load(
            &library,
            &xml,
            number("--nireq", 1),
            number("--threads", 0),
            args.iter().any(|a| a == "--input-copy"),
        ))
    });
    let reply = match (&infer, value("--reply")) {
        (_, Some(file)) => std::fs::read(file).expect("reply file"),
        (Some(_), None) => Vec::new(),
        (None, None) => panic!("--reply FILE or --infer MODEL.xml"),
    };
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
        infer,
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
    infer: Option<Arc<Infer>>,
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
            infer,
        } = self.clone();
        Box::pin(async move {
            let mut body = request.into_body();
            // Every frame received (flow control credited); kept only for --copy and --infer.
            let keep = copy || infer.is_some();
            let mut chunks = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let (true, Ok(data)) = (keep, frame.into_data()) {
                    chunks.push(data);
                }
            }
            if let Some(infer) = infer {
                // On a blocking-pool thread, as the server runs its handler.
                let answer = tokio::task::spawn_blocking(move || infer.predict(chunks))
                    .await
                    .unwrap_or_else(|e| Err((13, format!("predict panicked: {e}"))));
                return Ok(answer.map_or_else(|(code, message)| failed(code, &message), ok));
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
            Ok(ok(reply))
        })
    }
}

/// A reply carrying `data` (a framed message), status OK.
fn ok(data: Bytes) -> Response<Reply> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    respond(Some(data), trailers)
}

/// A reply with no message: gRPC status `code` and `message` (ASCII without control characters).
fn failed(code: u32, message: &str) -> Response<Reply> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    let message = HeaderValue::from_str(message)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid request"));
    trailers.insert("grpc-message", message);
    respond(None, trailers)
}

fn respond(data: Option<Bytes>, trailers: HeaderMap) -> Response<Reply> {
    let mut response = Response::new(Reply {
        data,
        trailers: Some(trailers),
    });
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

const INVALID_ARGUMENT: u32 = 3;
const NOT_FOUND: u32 = 5;
const INTERNAL: u32 = 13;
/// The alignment the input is wrapped at (a cache line; f32 itself needs 4).
const ALIGN: usize = 64;

/// --infer: one compiled model, its infer requests, and what replies need.
struct Infer {
    model: openvino::ModelInfo,
    model_name: String,
    version: i64,
    spec: Vec<u8>,
    free: Mutex<Vec<openvino::InferRequest>>,
    returned: Condvar,
    /// Where the previous request's tensor_content began in its message: the next one is gathered so
    /// that this offset is aligned.
    offset_hint: AtomicUsize,
    /// --input-copy: copy tensor_content into the request's own input tensor instead of wrapping it.
    copy_in: bool,
    wrapped: AtomicU64,
    /// Wall time (ns) of the wrapped requests' gather, check, and inference + reply, summed: printed
    /// with the counts, to split the floor's cost.
    spent: [AtomicU64; 3],
    copied: AtomicU64,
}

impl Infer {
    fn load(library: &str, xml: &str, nireq: usize, threads: usize, copy_in: bool) -> Infer {
        let (model, requests) = openvino::compile(library, xml, nireq, threads)
            .unwrap_or_else(|e| panic!("OpenVINO: {e}"));
        assert_eq!(model.input_type, openvino::F32, "an f32 input");
        assert_eq!(model.output_type, openvino::F32, "an f32 output");
        assert_eq!(
            model.input_bytes,
            model.input_shape.iter().product::<usize>() * 4,
            "4 bytes per element: F32 is OpenVINO's f32"
        );
        // <repository>/<model name>/<version>/model.xml, as ovms_rs serves it.
        let path = std::path::Path::new(xml);
        let version_dir = path.parent().expect("the model's version directory");
        let version: i64 = version_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let model_name = version_dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("model")
            .to_owned();
        eprintln!(
            "floor+openvino: {model_name} version {version}: {} {:?} -> {} {:?}; nireq {}, \
             PERFORMANCE_HINT {}, INFERENCE_NUM_THREADS {}",
            model.input_name,
            model.input_shape,
            model.output_name,
            model.output_shape,
            requests.len(),
            model.hint,
            model.threads
        );
        Infer {
            spec: model_spec(&model_name, version),
            model,
            model_name,
            version,
            free: Mutex::new(requests),
            returned: Condvar::new(),
            offset_hint: AtomicUsize::new(0),
            copy_in,
            wrapped: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            spent: Default::default(),
        }
    }

    /// The request's frames (its 5-byte gRPC prefix first) -> the framed PredictResponse.
    fn predict(&self, chunks: Vec<Bytes>) -> Result<Bytes, (u32, String)> {
        let t0 = std::time::Instant::now();
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let len = total
            .checked_sub(5)
            .ok_or((INVALID_ARGUMENT, "no gRPC message".to_owned()))?;
        // The reassembly copy every server on this stack makes (the real one into the bytearray Python
        // reads), placed so that tensor_content is aligned if it sits where the last request's did.
        let mut message = Vec::with_capacity(len + ALIGN);
        let hint = self.offset_hint.load(Ordering::Relaxed);
        let shift = (ALIGN - (message.as_ptr() as usize + hint) % ALIGN) % ALIGN;
        message.resize(shift, 0);
        let mut skip = 5;
        for chunk in &chunks {
            let n = skip.min(chunk.len());
            skip -= n;
            message.extend_from_slice(&chunk[n..]);
        }
        drop(chunks);
        let t1 = std::time::Instant::now();
        let (offset, bytes) = self.check(&message[shift..])?;
        let t2 = std::time::Instant::now();
        if self.copy_in {
            let input = &message[shift + offset..shift + offset + bytes];
            let mut request = self.take();
            let answer = request.infer_copying(input, |prob| self.reply(prob));
            self.put(request);
            return answer.map_err(|e| (INTERNAL, e));
        }
        let start = shift + offset;
        let input = &mut message[start..start + bytes];
        let mut scratch: Vec<u8> = Vec::new();
        let input = if (input.as_ptr() as usize).is_multiple_of(ALIGN) {
            let n = self.wrapped.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= 1024 && n.is_power_of_two() {
                let us = |i: usize| self.spent[i].load(Ordering::Relaxed) as f64 / 1e3 / n as f64;
                eprintln!(
                    "floor+openvino: {n} inputs wrapped without a copy, {} copied; mean wall us: \
                     gather {:.1}, parse+check {:.1}, infer+reply {:.1}",
                    self.copied.load(Ordering::Relaxed),
                    us(0),
                    us(1),
                    us(2)
                );
            }
            if n == 1 {
                eprintln!("floor+openvino: tensor_content at offset {offset}: aligned, wrapped without a copy");
            }
            input
        } else {
            self.offset_hint.store(offset, Ordering::Relaxed);
            let n = self.copied.fetch_add(1, Ordering::Relaxed);
            if n < 4 {
                eprintln!("floor+openvino: tensor_content at offset {offset} (not where the last one was): copied into an aligned buffer");
            }
            scratch.reserve_exact(bytes + ALIGN);
            let pad = scratch.as_ptr().align_offset(ALIGN);
            scratch.resize(pad, 0);
            scratch.extend_from_slice(input);
            &mut scratch[pad..]
        };
        let mut request = self.take();
        let answer = request.infer(input, &self.model.input_shape, |prob| self.reply(prob));
        self.put(request);
        for (spent, d) in self.spent.iter().zip([t1 - t0, t2 - t1, t2.elapsed()]) {
            spent.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
        answer.map_err(|e| (INTERNAL, e))
    }

    /// The framed PredictResponse carrying the output `prob`.
    fn reply(&self, prob: &[u8]) -> Bytes {
        let outputs = [Output {
            name: self.model.output_name.clone(),
            dtype: DType::Float,
            shape: self.model.output_shape.clone(),
            data: prob,
        }];
        let size = response_size(&outputs, &self.spec);
        let mut reply = Vec::with_capacity(5 + size);
        reply.push(0);
        reply.extend_from_slice(&(size as u32).to_be_bytes());
        write_response(&mut reply, &outputs, &self.spec);
        Bytes::from(reply)
    }

    /// What the server checks before inference: the model (name and version), one input named as the
    /// model's, DT_FLOAT, the model's shape, and tensor_content of that size. Returns the content's
    /// (offset, length) in `message`.
    fn check(&self, message: &[u8]) -> Result<(usize, usize), (u32, String)> {
        let request = parse_request(message).map_err(|e| (INVALID_ARGUMENT, e.to_string()))?;
        if request.model_name != self.model_name {
            return Err((
                NOT_FOUND,
                format!(
                    "Model with requested name is not found: {}",
                    request.model_name
                ),
            ));
        }
        if request.version != 0 && request.version != self.version {
            return Err((
                NOT_FOUND,
                "Model with requested version is not found".to_owned(),
            ));
        }
        let [(name, tensor)] = request.inputs.as_slice() else {
            return Err((
                INVALID_ARGUMENT,
                format!("expected 1 input, got {}", request.inputs.len()),
            ));
        };
        if *name != self.model.input_name {
            return Err((INVALID_ARGUMENT, format!("unexpected input: {name}")));
        }
        if tensor.dtype != DType::Float as u64 {
            return Err((INVALID_ARGUMENT, "Invalid input precision".to_owned()));
        }
        let shape_matches = tensor.shape.len() == self.model.input_shape.len()
            && tensor
                .shape
                .iter()
                .zip(&self.model.input_shape)
                .all(|(&a, &b)| a == b as i64);
        if !shape_matches {
            return Err((
                INVALID_ARGUMENT,
                format!("Invalid input shape: {:?}", tensor.shape),
            ));
        }
        let (offset, bytes) = tensor.content;
        if bytes != self.model.input_bytes {
            // Typed *_val fields are the server's slow path; this floor serves tensor_content only.
            return Err((
                INVALID_ARGUMENT,
                format!(
                    "tensor_content of {bytes} bytes, expected {}",
                    self.model.input_bytes
                ),
            ));
        }
        Ok((offset, bytes))
    }

    fn take(&self) -> openvino::InferRequest {
        let mut free = self.free.lock().expect("pool");
        loop {
            if let Some(request) = free.pop() {
                return request;
            }
            free = self.returned.wait(free).expect("pool");
        }
    }

    fn put(&self, request: openvino::InferRequest) {
        self.free.lock().expect("pool").push(request);
        self.returned.notify_one();
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
