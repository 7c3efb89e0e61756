//! A real host, in this process, for benchmarks of calls a guest makes.
//! Actor → actor: three kitchen actors on two shards, `a` on shard 0 only,
//! `b` on shard 1 only and `c` on every shard, with HTTP bound to `a`; `a`'s
//! `/repeat` route calls another actor's `Echo` N times, so one HTTP request
//! carries N actor calls made by a guest, as in production. Actor →
//! provider: one kitchen actor whose `/kvget` route makes N key-value
//! `Get`s through a binding ([`CallHost::key_value`]).

use crate::signed_actor;
use nkeys::KeyPair;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wascc_runtime::{Host, HostOptions, Manifest, RunOptions};

/// The running host and a keep-alive connection to `a`.
pub struct CallHost {
    b: String,
    c: String,
    conn: Mutex<BufReader<TcpStream>>,
    port: u16,
    shutdown: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Other hosts of the same lattice, in this process.
    others: Vec<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// The port of the host's `/metrics`, when it serves them.
    metrics: Option<u16>,
    _dir: tempfile::TempDir,
}

const CAPS: [&str; 1] = ["wascc:http_server"];

impl CallHost {
    /// Builds the actors, starts the host on two shards and connects.
    /// Panics on failure: callers are benchmarks.
    pub fn start() -> CallHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let [a, b, c] = kitchens(&dir, ["a", "b", "c"]);
        let port = free_port();
        let text = format!(
            "actors:\n  - {{path: {}, shards: 1}}\n  - {{path: {}, shards: 1}}\n  - {}\n\
             capabilities: [{{id: wascc:http_server}}]\n\
             bindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
            a.1.display(),
            b.1.display(),
            c.1.display(),
            a.0
        );
        Self::launch(dir, &text, port, 2, b.0, c.0, None)
    }

    /// A one-shard host whose kitchen actor is bound to `wascc:keyvalue`:
    /// with `portable`, to the memkv portable provider (binding `default`);
    /// otherwise to the built-in provider, in memory (binding `default`) and
    /// on the Redis at `redis` (binding `redis`) when given.
    pub fn key_value(portable: bool, redis: Option<&str>) -> CallHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer = KeyPair::new_account();
        let kitchen = signed_actor("kitchen", &["wascc:http_server", "wascc:keyvalue"], &issuer);
        let path = dir.path().join("kitchen.wasm");
        std::fs::write(&path, &kitchen.wasm).expect("write actor");
        let key = &kitchen.key;
        let port = free_port();
        let provider = if portable {
            let memkv = crate::signed_provider("memkv", &issuer);
            let p = dir.path().join("memkv.wasm");
            std::fs::write(&p, &memkv.wasm).expect("write provider");
            format!("{{path: {}}}", p.display())
        } else {
            "{id: wascc:keyvalue}".to_string()
        };
        let mut text = format!(
            "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {provider}]\nbindings:\n\
             \x20 - {{actor: {key}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n\
             \x20 - {{actor: {key}, capability: wascc:keyvalue}}\n",
            path.display()
        );
        if let Some(url) = redis {
            text.push_str(&format!(
                "  - {{actor: {key}, capability: wascc:keyvalue, binding: redis, values: {{URL: \"{url}\"}}}}\n"
            ));
        }
        Self::launch(dir, &text, port, 1, String::new(), String::new(), None)
    }

    /// Two hosts of one lattice on the NATS server at `nats`, in this
    /// process: kitchen `a` (HTTP) on one, kitchen `b` only on the other,
    /// so that `a` calling [`remote`](Self::remote) crosses hosts.
    pub fn across_hosts(nats: &str) -> CallHost {
        Self::across(across_lattice(nats, None))
    }

    /// [`across_hosts`](Self::across_hosts) in `lattice`.
    pub fn across(lattice: wascc_lattice::LatticeOptions) -> CallHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let [a, b] = kitchens(&dir, ["a", "b"]);
        let other = format!("actors: [{}]\n", b.1.display());
        let other = spawn_host(&dir, &other, (1, 1), Some(lattice.clone()), None);
        let port = free_port();
        let text = format!(
            "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\n\
             bindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
            a.1.display(),
            a.0
        );
        let metrics = free_port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], metrics));
        let mut host = Self::launch_on(
            dir,
            &text,
            port,
            1,
            (b.0, String::new()),
            Some(lattice),
            Some(addr),
        );
        host.others.push(other);
        // The other host serves once its subscription is in place.
        let deadline = Instant::now() + Duration::from_secs(30);
        while host.try_request(&format!("/repeat?{}&1", host.b)).is_err() {
            assert!(Instant::now() < deadline, "the other host never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }

    /// The actor on the other host (see [`across_hosts`](Self::across_hosts)).
    pub fn remote(&self) -> &str {
        &self.b
    }

    /// How long the host's calls to other hosts took so far (its
    /// `/metrics`); empty for a host without metrics or lattice.
    pub fn call_durations(&self) -> wascc_lattice::latency::Buckets {
        let text = self
            .metrics
            .and_then(|port| get_metrics(port).ok())
            .unwrap_or_default();
        wascc_lattice::latency::Buckets::parse(&text, wascc_lattice::rpc::CALL_DURATIONS)
    }

    fn launch(
        dir: tempfile::TempDir,
        text: &str,
        port: u16,
        shards: usize,
        b: String,
        c: String,
        lattice: Option<wascc_lattice::LatticeOptions>,
    ) -> CallHost {
        Self::launch_on(dir, text, port, shards, (b, c), lattice, None)
    }

    fn launch_on(
        dir: tempfile::TempDir,
        text: &str,
        port: u16,
        shards: usize,
        (b, c): (String, String),
        lattice: Option<wascc_lattice::LatticeOptions>,
        metrics: Option<std::net::SocketAddr>,
    ) -> CallHost {
        let (shutdown, thread) = spawn_host(&dir, text, (shards, 0), lattice, metrics);
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("host did not listen: {e}"),
            }
        };
        stream.set_nodelay(true).expect("nodelay");
        CallHost {
            b,
            c,
            conn: Mutex::new(BufReader::new(stream)),
            port,
            shutdown,
            thread: Some(thread),
            others: Vec::new(),
            metrics: metrics.map(|a| a.port()),
            _dir: dir,
        }
    }

    /// An actor on `a`'s shard (`c` runs everywhere).
    pub fn same_shard(&self) -> &str {
        &self.c
    }

    /// An actor on the other shard.
    pub fn cross_shard(&self) -> &str {
        &self.b
    }

    /// Makes `a` call `target`'s `Echo` `n` times in one HTTP request and
    /// returns the round trip.
    pub fn repeat(&self, target: &str, n: u64) -> Duration {
        self.request(&format!("/repeat?{target}&{n}"))
    }

    /// Like [`repeat`](Self::repeat), in requests of at most
    /// [`MAX_CALLS_PER_REQUEST`] calls; returns the summed round trips.
    pub fn repeat_chunked(&self, target: &str, n: u64) -> Duration {
        self.chunked(n, MAX_CALLS_PER_REQUEST, |k| {
            format!("/repeat?{target}&{k}")
        })
    }

    /// Like [`repeat`](Self::repeat) for calls within the host, in
    /// requests of at most [`MAX_LOCAL_CALLS_PER_REQUEST`] calls.
    pub fn repeat_local(&self, target: &str, n: u64) -> Duration {
        self.chunked(n, MAX_LOCAL_CALLS_PER_REQUEST, |k| {
            format!("/repeat?{target}&{k}")
        })
    }

    fn chunked(&self, n: u64, per_request: u64, path: impl Fn(u64) -> String) -> Duration {
        if n == 0 {
            return self.request(&path(0));
        }
        let mut total = Duration::ZERO;
        let mut left = n;
        while left > 0 {
            let k = left.min(per_request);
            total += self.request(&path(k));
            left -= k;
        }
        total
    }

    /// Makes the kitchen actor call key-value `Get` `n` times through
    /// `binding`, in requests of at most [`MAX_CALLS_PER_REQUEST`] calls
    /// (criterion asks for millions; one invocation must end within its
    /// deadline), and returns the summed round trips.
    pub fn kv_get(&self, binding: &str, n: u64) -> Duration {
        self.chunked(n, MAX_CALLS_PER_REQUEST, |k| {
            format!("/kvget?{binding}&{k}")
        })
    }

    fn request(&self, path: &str) -> Duration {
        self.try_request(path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_request(&self, path: &str) -> Result<Duration, String> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        request_on(&mut conn, path)
    }

    /// `callers` clients, each on its own connection, making `a` call
    /// `target`'s `Echo` in requests of `per_request` calls, one request
    /// after another: the calls completed in about `slice` once they run
    /// steadily ([`STEADY_AFTER`]) and the time they were counted over (so
    /// `a` has up to `callers` invocations calling at once).
    pub fn repeat_concurrently(
        &self,
        target: &str,
        callers: usize,
        per_request: u64,
        slice: Duration,
    ) -> (u64, Duration) {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let path = format!("/repeat?{target}&{per_request}");
        let threads: Vec<_> = (0..callers.max(1))
            .map(|_| {
                let (stop, done, path, port) =
                    (stop.clone(), done.clone(), path.clone(), self.port);
                std::thread::spawn(move || {
                    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let mut conn = BufReader::new(stream);
                    while !stop.load(Ordering::Relaxed) {
                        request_on(&mut conn, &path).unwrap_or_else(|e| panic!("{e}"));
                        done.fetch_add(per_request, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Counted from when every caller has had requests complete: a
        // request counts its calls when it ends, so a window opened with
        // the callers would miss the first request of each.
        std::thread::sleep(STEADY_AFTER);
        let (before, started) = (done.load(Ordering::Relaxed), Instant::now());
        std::thread::sleep(slice);
        let calls = done.load(Ordering::Relaxed) - before;
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        (calls, elapsed)
    }
}

/// Sends one bodiless POST of `path` on a keep-alive connection and reads
/// the response: its round trip, or the failure.
pub(crate) fn request_on(conn: &mut BufReader<TcpStream>, path: &str) -> Result<Duration, String> {
    let req = format!("POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: 0\r\n\r\n");
    let started = Instant::now();
    let io = |e: std::io::Error| format!("{path}: {e}");
    conn.get_mut().write_all(req.as_bytes()).map_err(io)?;
    let mut len = 0usize;
    let mut status = String::new();
    conn.read_line(&mut status).map_err(io)?;
    let mut headers_done = false;
    while !headers_done {
        let mut line = String::new();
        conn.read_line(&mut line).map_err(io)?;
        headers_done = line == "\r\n" || line.is_empty();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    conn.read_exact(&mut body).map_err(io)?;
    let elapsed = started.elapsed();
    if status.contains(" 200 ") && body.windows(6).any(|w| w == b"\"calls") {
        Ok(elapsed)
    } else {
        Err(format!(
            "{path} failed: {status} {}",
            String::from_utf8_lossy(&body)
        ))
    }
}

/// How long concurrent callers run before their completions are counted
/// (their first requests in flight; connections made).
pub const STEADY_AFTER: Duration = Duration::from_millis(50);

/// Calls one benchmark request makes at most: 2,000 calls of even 500 µs
/// stay within the host's default 2 s call deadline, and the request's own
/// cost (≈ 80 µs) adds about 40 ns per call.
pub const MAX_CALLS_PER_REQUEST: u64 = 2_000;

/// Calls one benchmark request makes within a host at most: 200,000 calls
/// of even 5 µs (a cross-shard call is ~4 µs) take 1 s, within the host's
/// default 2 s call deadline; the request's cost adds under 1 ns per call.
pub const MAX_LOCAL_CALLS_PER_REQUEST: u64 = 200_000;

/// Kitchen actors signed by one account, written to `dir` as `NAME.wasm`:
/// each one's key and path.
pub(crate) fn kitchens<const N: usize>(
    dir: &tempfile::TempDir,
    names: [&str; N],
) -> [(String, std::path::PathBuf); N] {
    let issuer = KeyPair::new_account();
    names.map(|n| {
        let s = signed_actor("kitchen", &CAPS, &issuer);
        let path = dir.path().join(format!("{n}.wasm"));
        std::fs::write(&path, &s.wasm).expect("write actor");
        (s.key, path)
    })
}

/// The lattice of [`CallHost::across_hosts`] on the NATS server at `nats`
/// (trusting `tls_ca` for its certificate).
pub(crate) fn across_lattice(
    nats: &str,
    tls_ca: Option<std::path::PathBuf>,
) -> wascc_lattice::LatticeOptions {
    wascc_lattice::LatticeOptions {
        url: nats.to_string(),
        lattice: format!("bench{}", std::process::id()),
        tls_ca,
        ..Default::default()
    }
}

/// Builds a host from manifest `text` (paths relative to `dir`) and runs it
/// on a thread of its own until the returned flag is set.
/// Set by [`pin_hosts`]: hosts are pinned and spin this long.
static PINNED_SPIN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// From now on, hosts this process starts are pinned, each to the CPU its
/// role names (of those this process may use, round-robin: so that a
/// caller and the host it calls get different CPUs), and their shards
/// spin `spin` before parking, as the host binary's `--cpus` and
/// `--spin-us` do. Without it, hosts are not pinned and do not spin.
pub fn pin_hosts(spin: Duration) {
    let _ = PINNED_SPIN.set(spin);
}

/// Starts a host of `text` on `shards` shards (on CPU number `cpu` of
/// those allowed when [`pin_hosts`] was called) in a thread of its own.
pub(crate) fn spawn_host(
    dir: &tempfile::TempDir,
    text: &str,
    (shards, cpu): (usize, usize),
    lattice: Option<wascc_lattice::LatticeOptions>,
    metrics: Option<std::net::SocketAddr>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let manifest = Manifest::parse(text, dir.path(), &|_| None).expect("manifest");
    let host = Host::build(&manifest, &HostOptions::default()).expect("host");
    let shutdown = Arc::new(AtomicBool::new(false));
    let stop = shutdown.clone();
    let thread = std::thread::spawn(move || {
        let allowed = wascc_scheduler::allowed_cpus();
        let pinned = PINNED_SPIN.get().filter(|_| !allowed.is_empty());
        let opts = RunOptions {
            shards,
            pin: pinned.is_some(),
            cpus: pinned.map_or(Vec::new(), |_| vec![allowed[cpu % allowed.len()]]),
            spin: pinned.copied().unwrap_or_default(),
            lattice,
            metrics,
            ..Default::default()
        };
        if let Err(e) = host.run(&opts, stop) {
            panic!("host failed: {e}");
        }
    });
    (shutdown, thread)
}

/// The text of `GET /metrics` on `port`.
fn get_metrics(port: u16) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Drop for CallHost {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        for (stop, _) in &self.others {
            stop.store(true, Ordering::Relaxed);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (_, t) in self.others.drain(..) {
            let _ = t.join();
        }
    }
}
