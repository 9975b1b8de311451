//! Closed-loop gRPC load generator driven by `benches/loadgen_native.py` over stdin/stdout.
//!
//! The Python (grpcio) client costs ~0.3 ms of CPU per 602 KB request, which sits inside every latency
//! at concurrency 1 and saturates the client core at concurrency >= 4. This one speaks HTTP/2 with the
//! `h2` crate on a single-threaded tokio runtime: requests are framed once at load time and sent as
//! shared `Bytes` (no per-call copy in user space), one connection per request in flight.
//!
//! Protocol, one line per command:
//!   `load KEY PATH`   PATH holds the serialized requests, each as a u32 LE length + bytes -> `ok N`
//!   `run KEY HOST:PORT METHOD CONCURRENCY COUNT SECONDS WARMUP`
//!                     -> `ready ERRORS` after each connection's warm-up calls; then waits for `go`
//!                     -> one JSON object: latencies_ns, errors, first_error, outcomes (calls by
//!                        gRPC status code, or "transport" for calls without one), start, end,
//!                        client_cpu_s
//!   `stop` (or end of input)

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Request};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Per-call deadline, as the Python load generator's.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Receive windows large enough that a reply never waits for a WINDOW_UPDATE.
const WINDOW: u32 = 16 << 20;

type Result<T> = std::result::Result<T, String>;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut generator = Generator::default();
    let mut lines = io::stdin().lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["load", key, path] => generator.load(key, path),
            ["run", key, address, method, concurrency, count, seconds, warmup] => {
                let run = Run::parse(key, address, method, concurrency, count, seconds, warmup);
                run.and_then(|run| runtime.block_on(generator.run(run, &mut lines)))
            }
            ["stop"] => break,
            _ => Err(format!("unknown command: {line:?}")),
        };
        let line = reply.unwrap_or_else(|e| format!("error {e}"));
        let mut out = io::stdout().lock();
        // A closed pipe means the driver has gone; nothing left to do.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}

struct Run {
    key: String,
    address: SocketAddr,
    path: String,
    concurrency: usize,
    count: u64,
    seconds: f64,
    warmup: usize,
}

impl Run {
    fn parse(
        key: &str,
        address: &str,
        method: &str,
        concurrency: &str,
        count: &str,
        seconds: &str,
        warmup: &str,
    ) -> Result<Run> {
        let bad = |what: &str| format!("bad {what}");
        Ok(Run {
            key: key.to_owned(),
            address: address.parse().map_err(|_| bad("address"))?,
            path: method.to_owned(),
            concurrency: concurrency.parse().map_err(|_| bad("concurrency"))?,
            count: count.parse().map_err(|_| bad("count"))?,
            seconds: seconds.parse().map_err(|_| bad("seconds"))?,
            warmup: warmup.parse().map_err(|_| bad("warmup"))?,
        })
    }
}

#[derive(Default)]
struct Generator {
    /// Framed gRPC messages (5-byte prefix + request) per workload key.
    requests: HashMap<String, Arc<Vec<Bytes>>>,
}

impl Generator {
    fn load(&mut self, key: &str, path: &str) -> Result<String> {
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let mut framed = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(4).ok_or("truncated length")?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let (message, tail) = tail.split_at_checked(len).ok_or("truncated request")?;
            let mut frame = BytesMut::with_capacity(5 + len);
            frame.put_u8(0); // not compressed
            frame.put_u32(len as u32);
            frame.put_slice(message);
            framed.push(frame.freeze());
            rest = tail;
        }
        if framed.is_empty() {
            return Err(format!("{path}: no requests"));
        }
        let n = framed.len();
        self.requests.insert(key.to_owned(), Arc::new(framed));
        Ok(format!("ok {n}"))
    }

    async fn run(
        &mut self,
        run: Run,
        control: &mut impl Iterator<Item = io::Result<String>>,
    ) -> Result<String> {
        let requests = self
            .requests
            .get(&run.key)
            .ok_or(format!("no requests loaded for {}", run.key))?
            .clone();
        // Fresh connections for every run, closed at its end: a server being stopped does not wait out
        // its grace period for idle connections that would otherwise stay open.
        let mut senders = Vec::new();
        let mut connections = Vec::new();
        for _ in 0..run.concurrency {
            let (sender, connection) = connect(run.address).await?;
            senders.push(sender);
            connections.push(connection);
        }
        let uri: Arc<str> = format!("http://{}{}", run.address, run.path).into();

        // Warm-up: every connection makes its calls before anything is measured.
        let mut tally = Tally::default();
        for (offset, sender) in senders.iter().enumerate() {
            for i in 0..run.warmup {
                let body = requests[(offset + i) % requests.len()].clone();
                if let Err(e) = call(sender.clone(), &uri, body).await {
                    tally.fail(e);
                }
            }
        }
        println!("ready {}", tally.errors);
        io::stdout().flush().map_err(|e| e.to_string())?;
        match control.next() {
            Some(Ok(line)) if line.trim() == "go" => {}
            other => return Err(format!("expected go, got {other:?}")),
        }

        let tickets = Arc::new(AtomicU64::new(0));
        let cpu0 = process_cpu_seconds();
        let start = monotonic_seconds();
        let deadline = Instant::now() + Duration::from_secs_f64(run.seconds);
        let workers: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(offset, sender)| {
                let requests = requests.clone();
                let tickets = tickets.clone();
                let uri = uri.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut i = offset;
                    while tickets.fetch_add(1, Ordering::Relaxed) < run.count
                        && Instant::now() <= deadline
                    {
                        let body = requests[i % requests.len()].clone();
                        i += 1;
                        tally.record(call(sender.clone(), &uri, body).await);
                    }
                    tally
                })
            })
            .collect();
        for worker in workers {
            tally.merge(worker.await.map_err(|e| e.to_string())?);
        }
        let end = monotonic_seconds();
        let cpu = process_cpu_seconds() - cpu0;
        // Every sender is gone with its worker: each connection says GOAWAY and closes.
        for connection in connections {
            let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
        }
        Ok(tally.to_json(start, end, cpu))
    }
}

/// Latencies of the successful calls, and the failures.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    /// Calls by how they ended: the gRPC status code, or "transport".
    outcomes: BTreeMap<String, u64>,
}

impl Tally {
    fn record(&mut self, outcome: Result<u64>) {
        match outcome {
            Ok(latency) => {
                self.latencies_ns.push(latency);
                *self.outcomes.entry("0".to_owned()).or_default() += 1;
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, error: String) {
        self.errors += 1;
        let code = error
            .strip_prefix("status ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or("transport");
        *self.outcomes.entry(code.to_owned()).or_default() += 1;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_ns.extend(other.latencies_ns);
        self.errors += other.errors;
        for (code, n) in other.outcomes {
            *self.outcomes.entry(code).or_default() += n;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn to_json(&self, start: f64, end: f64, cpu: f64) -> String {
        let latencies: Vec<String> = self.latencies_ns.iter().map(u64::to_string).collect();
        let first_error = self
            .first_error
            .as_deref()
            .map_or("null".to_owned(), json_string);
        let outcomes: Vec<String> = self
            .outcomes
            .iter()
            .map(|(code, n)| format!("{}: {n}", json_string(code)))
            .collect();
        format!(
            "{{\"latencies_ns\": [{}], \"errors\": {}, \"first_error\": {first_error}, \"outcomes\": {{{}}}, \
             \"start\": {start}, \"end\": {end}, \"client_cpu_s\": {cpu}}}",
            latencies.join(","),
            self.errors,
            outcomes.join(", "),
        )
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An HTTP/2 connection: its sender, and the task that drives it (ends once every sender is dropped).
async fn connect(address: SocketAddr) -> Result<(SendRequest<Bytes>, JoinHandle<()>)> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .handshake(tcp)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {address}: {e}"))?;
    let task = tokio::spawn(async move {
        // An error here (the server went away) also fails the calls on it, which are counted.
        let _ = connection.await;
    });
    Ok((sender, task))
}

/// One unary call; returns its latency in nanoseconds, or the gRPC status (or transport error) as text.
async fn call(sender: SendRequest<Bytes>, uri: &str, body: Bytes) -> Result<u64> {
    let started = Instant::now();
    tokio::time::timeout(CALL_TIMEOUT, exchange(sender, uri, body))
        .await
        .map_err(|_| "DEADLINE_EXCEEDED: client timeout".to_owned())??;
    Ok(started.elapsed().as_nanos() as u64)
}

async fn exchange(sender: SendRequest<Bytes>, uri: &str, body: Bytes) -> Result<()> {
    let mut sender = sender.ready().await.map_err(|e| e.to_string())?;
    let request = Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| e.to_string())?;
    let (response, mut stream) = sender
        .send_request(request, false)
        .map_err(|e| e.to_string())?;
    // Above the window, h2 keeps the (shared, uncopied) rest until the server grants more.
    stream.send_data(body, true).map_err(|e| e.to_string())?;
    let response = response.await.map_err(|e| e.to_string())?;
    let (head, mut reply) = response.into_parts();
    if let Some(status) = grpc_status(&head.headers) {
        return status; // trailers-only reply: an error before any message
    }
    while let Some(chunk) = reply.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = reply.flow_control().release_capacity(chunk.len());
    }
    let trailers = reply.trailers().await.map_err(|e| e.to_string())?;
    trailers
        .as_ref()
        .and_then(grpc_status)
        .unwrap_or(Err("reply without grpc-status".to_owned()))
}

fn grpc_status(headers: &HeaderMap) -> Option<Result<()>> {
    let code = headers.get("grpc-status")?.to_str().unwrap_or("?");
    if code == "0" {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    Some(Err(format!("status {code}: {message}")))
}

fn clock_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The clock behind Python's `time.perf_counter()` on Linux, so spans compare with the other targets'.
fn monotonic_seconds() -> f64 {
    clock_seconds(libc::CLOCK_MONOTONIC)
}

fn process_cpu_seconds() -> f64 {
    clock_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}
