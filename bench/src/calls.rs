//! A real host, in this process, for benchmarks of actor → actor calls:
//! three kitchen actors on two shards, `a` on shard 0 only, `b` on shard 1
//! only and `c` on every shard, with HTTP bound to `a`. `a`'s `/repeat`
//! route calls another actor's `Echo` N times, so one HTTP request carries
//! N actor calls made by a guest, as in production.

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
    shutdown: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

const CAPS: [&str; 1] = ["wascc:http_server"];

impl CallHost {
    /// Builds the actors, starts the host on two shards and connects.
    /// Panics on failure: callers are benchmarks.
    pub fn start() -> CallHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let issuer = KeyPair::new_account();
        let [a, b, c] = ["a", "b", "c"].map(|n| {
            let s = signed_actor("kitchen", &CAPS, &issuer);
            let path = dir.path().join(format!("{n}.wasm"));
            std::fs::write(&path, &s.wasm).expect("write actor");
            (s.key, path)
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let text = format!(
            "actors:\n  - {{path: {}, shards: 1}}\n  - {{path: {}, shards: 1}}\n  - {}\n\
             capabilities: [{{id: wascc:http_server}}]\n\
             bindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
            a.1.display(),
            b.1.display(),
            c.1.display(),
            a.0
        );
        let manifest = Manifest::parse(&text, dir.path(), &|_| None).expect("manifest");
        let host = Host::build(&manifest, &HostOptions::default()).expect("host");
        let shutdown = Arc::new(AtomicBool::new(false));
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let opts = RunOptions {
                shards: 2,
                pin: false,
                metrics: None,
            };
            if let Err(e) = host.run(&opts, stop) {
                panic!("host failed: {e}");
            }
        });
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
            b: b.0,
            c: c.0,
            conn: Mutex::new(BufReader::new(stream)),
            shutdown,
            thread: Some(thread),
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
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let req = format!(
            "POST /repeat?{target}&{n} HTTP/1.1\r\nhost: bench\r\ncontent-length: 0\r\n\r\n"
        );
        let started = Instant::now();
        conn.get_mut().write_all(req.as_bytes()).expect("send");
        let mut len = 0usize;
        let mut status = String::new();
        conn.read_line(&mut status).expect("status line");
        assert!(status.contains(" 200 "), "repeat failed: {status}");
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).expect("body");
        let elapsed = started.elapsed();
        assert!(
            body.windows(6).any(|w| w == b"\"calls"),
            "repeat failed: {}",
            String::from_utf8_lossy(&body)
        );
        elapsed
    }
}

impl Drop for CallHost {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
