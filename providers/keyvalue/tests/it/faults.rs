//! A Redis of the test's own: stopped, restarted, and made slow.

use crate::Kv;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wascc_contracts::keyvalue::*;

struct RedisServer {
    port: u16,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    fn start(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn add(kv: &Kv, n: i32) -> Result<i32, String> {
    kv.call::<_, AddResponse>(
        OP_ADD,
        &AddRequest {
            key: "counter".into(),
            value: n,
        },
    )
    .map(|r| r.value)
}

#[test]
fn a_dead_redis_gives_errors_and_a_restarted_one_serves_again() {
    let mut server = RedisServer::start(free_port());
    let kv = Kv::new(&[
        ("URL", &server.url()),
        ("POOL_SIZE", "2"),
        ("TIMEOUT_MS", "300"),
    ])
    .unwrap();
    assert_eq!(add(&kv, 1), Ok(1));
    server.stop();
    // Every call fails with an error naming Redis, within its timeout.
    for _ in 0..3 {
        let started = Instant::now();
        let e = add(&kv, 1).unwrap_err();
        assert!(e.contains("redis"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a dead redis stalled the call"
        );
    }
    let health =
        futures_lite::future::block_on(wascc_contracts::CapabilityProvider::health(&kv.provider));
    assert!(health.is_err(), "health is fine with redis down");
    // Same port, fresh server (it keeps nothing): the pool reconnects.
    let _server = RedisServer::start(server.port);
    let started = Instant::now();
    let value = loop {
        match add(&kv, 1) {
            Ok(v) => break v,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no reconnection within 10 s: {e}"),
        }
    };
    assert_eq!(value, 1, "the restarted server keeps nothing");
    // Every connection of the pool is back, not just one.
    for _ in 0..4 {
        assert!(add(&kv, 1).is_ok());
    }
    futures_lite::future::block_on(wascc_contracts::CapabilityProvider::health(&kv.provider))
        .unwrap();
}

#[test]
fn a_slow_redis_gives_a_timeout_error() {
    let server = RedisServer::start(free_port());
    let kv = Kv::new(&[
        ("URL", &server.url()),
        ("POOL_SIZE", "1"),
        ("TIMEOUT_MS", "200"),
    ])
    .unwrap();
    assert_eq!(add(&kv, 1), Ok(1));
    // Block the server for 2 s from another connection.
    let port = server.port;
    let blocker = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, b"DEBUG SLEEP 2\r\n").unwrap();
        let mut buf = [0u8; 16];
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let e = add(&kv, 1).unwrap_err();
    assert!(e.contains("did not answer within 200ms"), "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the timeout did not bound the call"
    );
    blocker.join().unwrap();
}
