//! An open-loop, fixed-rate HTTP load generator for capacity planning.
//!
//! Requests are scheduled at fixed intervals from the start (request `i` is
//! due at `start + i / rate`) and spread round-robin over keep-alive
//! connections; when a slow response delays the next request, its latency
//! is measured from its *intended* send time, so a stalled server is charged
//! for the requests it delayed (no coordinated omission, as in wrk2). `rate: None` runs closed-loop as fast as each
//! connection can go, measuring from the actual send.
//!
//! Not for: anything the host runs; it depends on no other waSCC crate.

pub mod limits;

use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Errors of the load generator's input.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LoadgenError {
    /// The URL cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A plan parameter is out of range.
    #[error("invalid {what}: {reason}")]
    Plan {
        /// The parameter.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` to connect to.
    pub addr: String,
    /// The request bytes sent each time.
    pub request: Vec<u8>,
}

impl Target {
    /// Parses an `http://host[:port]/path?query` URL (plain HTTP only).
    pub fn parse(url: &str) -> Result<Target, LoadgenError> {
        let err = |reason: &str| LoadgenError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| err(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(err(&format!("scheme {other} is not supported, only http"))),
            None => return Err(err("no scheme; write http://host:port/path")),
        }
        let host = uri.host().ok_or_else(|| err("no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let path = if path.is_empty() { "/" } else { path };
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: wascc-loadgen\r\n\r\n"
        )
        .into_bytes();
        Ok(Target {
            addr: format!("{host}:{port}"),
            request,
        })
    }
}

/// How to load the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Requests per second over all connections; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// How long to send.
    pub duration: Duration,
    /// Keep-alive connections.
    pub connections: usize,
    /// Longest wait for one response.
    pub timeout: Duration,
}

impl Plan {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let plan = |what, reason: String| Err(LoadgenError::Plan { what, reason });
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0)
        {
            return plan(
                "rate",
                format!("{r} is not a positive number of requests per second"),
            );
        }
        if self.connections == 0 || self.connections > limits::MAX_CONNECTIONS {
            return plan(
                "connections",
                format!(
                    "{} is not in 1..={}",
                    self.connections,
                    limits::MAX_CONNECTIONS
                ),
            );
        }
        if self.duration.is_zero() || self.duration > limits::MAX_DURATION {
            return plan(
                "duration",
                format!(
                    "{:?} is not in (0, {:?}]",
                    self.duration,
                    limits::MAX_DURATION
                ),
            );
        }
        if self.timeout.is_zero() {
            return plan("timeout", "must be greater than 0".into());
        }
        Ok(())
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Responses with a 2xx or 3xx status.
    pub requests: u64,
    /// Connection failures, timeouts, malformed responses and 4xx/5xx statuses.
    pub errors: u64,
    /// Seconds from the start to the end of the run.
    pub elapsed: Duration,
    /// Latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// The first error seen, for the user.
    pub first_error: Option<String>,
}

impl Report {
    /// Successful requests per second.
    pub fn achieved_rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The JSON summary (`requests`, `errors`, `achieved_rps`, `p50_us`,
    /// `p90_us`, `p99_us`, `p999_us`, `max_us`, and `first_error`).
    pub fn to_json(&self) -> serde_json::Value {
        let q = |p: f64| self.latency_us.value_at_quantile(p);
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "achieved_rps": (self.achieved_rps() * 10.0).round() / 10.0,
            "p50_us": q(0.5),
            "p90_us": q(0.9),
            "p99_us": q(0.99),
            "p999_us": q(0.999),
            "max_us": self.latency_us.max(),
            "first_error": self.first_error,
        })
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to the longest timeout, 3 significant digits.
    Histogram::new_with_bounds(1, limits::MAX_RECORDED_US, 3).expect("constant bounds are valid")
}

struct ConnResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `plan` against `target` on a single-threaded runtime; `progress`
/// counts completed requests as they finish (for a progress display).
pub async fn run(target: Target, plan: Plan, progress: Arc<AtomicU64>) -> Report {
    let target = Arc::new(target);
    let start = Instant::now();
    let end = start + plan.duration;
    let mut tasks = Vec::with_capacity(plan.connections);
    for k in 0..plan.connections {
        tasks.push(tokio::spawn(connection(
            k as u64,
            target.clone(),
            plan.clone(),
            start,
            end,
            progress.clone(),
        )));
    }
    let mut report = Report {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: histogram(),
        first_error: None,
    };
    for t in tasks {
        match t.await {
            Ok(r) => {
                let _ = report.latency_us.add(&r.hist);
                report.requests += r.ok;
                report.errors += r.errors;
                if report.first_error.is_none() {
                    report.first_error = r.first_error;
                }
            }
            Err(e) => {
                report.errors += 1;
                report
                    .first_error
                    .get_or_insert_with(|| format!("connection task failed: {e}"));
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

async fn connection(
    k: u64,
    target: Arc<Target>,
    plan: Plan,
    start: Instant,
    end: Instant,
    progress: Arc<AtomicU64>,
) -> ConnResult {
    let mut out = ConnResult {
        hist: histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
    };
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(limits::READ_BUFFER);
    let step = plan.connections as u64;
    let mut i = k;
    // When the previous response came back, for charging waits fairly.
    let mut prev_done = start;
    loop {
        let intended = match plan.rate {
            Some(rate) => start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        if intended >= end {
            break;
        }
        i += step;
        if plan.rate.is_some() {
            tokio::time::sleep_until(intended.into()).await;
        }
        // Latency runs from the intended send time when the server made us
        // late (the previous response came back after it: the request
        // queued behind a slow one, so the server is charged for the wait).
        // When the connection was idle in time, any lateness is our timer's
        // (tokio's has 1 ms granularity), so it runs from the actual send.
        let measured_from = if prev_done > intended {
            intended
        } else {
            Instant::now()
        };
        let result = tokio::time::timeout(plan.timeout, async {
            if stream.is_none() {
                let s = TcpStream::connect(&target.addr)
                    .await
                    .map_err(|e| format!("connect {}: {e}", target.addr))?;
                let _ = s.set_nodelay(true);
                stream = Some(s);
            }
            let s = stream.as_mut().ok_or("no connection")?;
            exchange(s, &target.request, &mut buf).await
        })
        .await
        .unwrap_or_else(|_| Err(format!("no response within {:?}", plan.timeout)));
        prev_done = Instant::now();
        match result {
            Ok((status, keep_alive)) if status < 400 => {
                let us = prev_done
                    .duration_since(measured_from)
                    .as_micros()
                    .clamp(1, limits::MAX_RECORDED_US as u128) as u64;
                let _ = out.hist.record(us);
                out.ok += 1;
                progress.fetch_add(1, Ordering::Relaxed);
                if !keep_alive {
                    stream = None;
                }
            }
            other => {
                out.errors += 1;
                let msg = match other {
                    Ok((status, _)) => format!("status {status}"),
                    Err(e) => e,
                };
                out.first_error.get_or_insert(msg);
                stream = None;
                if plan.rate.is_none() {
                    // Closed loop against a dead server must not spin.
                    tokio::time::sleep(limits::ERROR_BACKOFF).await;
                }
            }
        }
    }
    out
}

/// Sends one request and reads one response; returns its status and
/// whether the connection stays open.
// PERFORMANCE_CRITICAL_PATH: the generator must not be the bottleneck; the
// buffer is reused and headers are parsed in place.
async fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    buf.clear();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; limits::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = resp.code.unwrap_or(0);
                let mut length = None;
                let mut keep_alive = resp.version == Some(1);
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse::<usize>().ok());
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        keep_alive = !h.value.eq_ignore_ascii_case(b"close");
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err("chunked responses are not supported; the server must send content-length".into());
                    }
                }
                let length = length.ok_or("response has no content-length")?;
                let total = head_len + length;
                while buf.len() < total {
                    read_more(s, buf).await?;
                }
                return Ok((status, keep_alive));
            }
            Ok(httparse::Status::Partial) => read_more(s, buf).await?,
            Err(e) => return Err(format!("malformed response: {e}")),
        }
    }
}

/// Reads into `buf`'s spare capacity (no zeroing, no copy: a zeroed 16 KiB
/// chunk per read cost more than parsing the response).
async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.reserve(limits::READ_CHUNK);
    let n = s.read_buf(buf).await.map_err(|e| format!("receive: {e}"))?;
    if n == 0 {
        return Err("connection closed mid-response".into());
    }
    Ok(())
}
