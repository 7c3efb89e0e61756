//! Starting hosts and talking HTTP to them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The waSCC 0.14 fixtures (`../shared/fixtures` beside the repository).
pub fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/wascc-0.14")
        .join(name);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

/// Fixture actor keys (read from their claims by `wcc claims inspect`).
pub const ECHO_KEY: &str = "MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2";
pub const KVCOUNTER_KEY: &str = "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ";
pub const LOGGER_KEY: &str = "MDW7BWQDVYBRC6WKSJRRZL27R73EVBWQINYLPFDRCWDZDFQO4JMO4U6J";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `wascc-host` with its log captured.
pub struct HostProc {
    child: Child,
    log: Sink,
    out: Sink,
    _dir: tempfile::TempDir,
}

/// A folder for a test's manifest and modules.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Self {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

type Sink = Arc<Mutex<String>>;

fn collect(from: impl std::io::Read + Send + 'static) -> Sink {
    let sink = Arc::new(Mutex::new(String::new()));
    let into = sink.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let mut l = into.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    sink
}

fn spawn(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, Sink, Sink) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wascc-host"));
    cmd.arg("--manifest").arg(manifest).args(args);
    cmd.env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start wascc-host");
    let log = collect(child.stderr.take().unwrap());
    let out = collect(child.stdout.take().unwrap());
    (child, log, out)
}

/// Runs a host that must fail before serving; returns its exit code and log.
pub fn host_fails(work: &Workdir, manifest: &str, args: &[&str]) -> (i32, String) {
    let path = work.write("manifest.yaml", manifest.as_bytes());
    let (mut child, log, _) = spawn(&path, args, &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            let log = log.lock().unwrap().clone();
            return (status.code().unwrap_or(-1), log);
        }
        if log.lock().unwrap().contains("host ready") || Instant::now() > deadline {
            let _ = child.kill();
            panic!("host did not fail; log:\n{}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl HostProc {
    /// Starts a host on `manifest` (written into `work`) and waits until it
    /// is ready. Panics with the host's log if it exits instead.
    pub fn start(work: Workdir, manifest: &str, args: &[&str]) -> HostProc {
        Self::start_env(work, manifest, args, &[])
    }

    pub fn start_env(
        work: Workdir,
        manifest: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> HostProc {
        let path = work.write("manifest.yaml", manifest.as_bytes());
        let (mut child, log, out) = spawn(&path, args, env);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if log.lock().unwrap().contains("host ready") {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "host exited with {status} before it was ready; log:\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "host not ready in time; log:\n{}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        HostProc {
            child,
            log,
            out,
            _dir: work.dir,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a log line satisfies `pred` and returns it.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| pred(l)) {
                return l.to_string();
            }
            assert!(Instant::now() < deadline, "no log line {what}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most 60 s) for the host to exit on its own; returns the
    /// exit code and the log.
    pub fn wait_exit(mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "host did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.log())
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(self) -> (i32, String) {
        let (code, log, _) = self.terminate_output();
        (code, log)
    }

    /// Sends SIGTERM; returns the exit code, the log and standard output.
    pub fn terminate_output(mut self) -> (i32, String, String) {
        // The kill(1) command keeps libc and unsafe out of the tests.
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = self.out.lock().unwrap().clone();
        (status.code().unwrap_or(-1), self.log(), out)
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response as a test reads it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nx-test: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub fn get(port: u16, path: &str) -> Reply {
    http(port, "GET", path, b"")
}

/// A `nats-server` with JetStream that a test starts, kills and restarts
/// (its JetStream store in a directory of its own, kept across restarts).
pub struct OwnNats {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
    args: Vec<String>,
}

impl OwnNats {
    /// Starts one on a free port; `args` are added (a config file, say).
    pub fn start(args: &[&str]) -> OwnNats {
        let mut n = OwnNats {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and store; returns when it
    /// accepts connections.
    pub fn restart(&mut self) {
        // Debian installs it under /usr/sbin, which a user's PATH may lack.
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it and starts a new one on the same port with an empty store:
    /// a server replaced, its JetStream state gone.
    pub fn replace(&mut self) {
        self.kill();
        self.store = tempfile::tempdir().unwrap();
        self.restart();
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `done` every `every` until it holds and returns how long that
/// took; panics naming `what` after `limit` (a generous bound: it tests
/// that a thing happens, never how fast).
pub fn wait_until(
    what: &str,
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(every);
    }
    started.elapsed()
}

/// Prometheus samples as `name{labels}` → value.
/// The value of metric `name` on the metrics endpoint at `port` (0 when
/// it has none).
pub fn sample(port: u16, name: &str) -> u64 {
    scrape(port).get(name).copied().unwrap_or(0)
}

pub fn scrape(port: u16) -> std::collections::HashMap<String, u64> {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        // Counters and counts; sums in seconds are not integers.
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("sample line");
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

pub fn sum(samples: &std::collections::HashMap<String, u64>, name: &str, label: &str) -> u64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(label))
        .map(|(_, v)| v)
        .sum()
}
