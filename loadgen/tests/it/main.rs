//! `wascc-loadgen` as a user runs it, against a small HTTP server the test
//! runs itself (the load generator is what is under test, not the server).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

/// Serves keep-alive HTTP/1.1 answering every request with `status`.
fn server(status: u16) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
                        if s.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wascc-loadgen"))
        .args(args)
        .output()
        .unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_fixed_rate_run_sends_its_schedule_and_reports_percentiles() {
    let port = server(200);
    let url = format!("http://127.0.0.1:{port}/x");
    let j = report(&loadgen(&[
        "http",
        &url,
        "--rate",
        "400",
        "--duration",
        "1",
        "--connections",
        "4",
        "--json",
    ]));
    for key in [
        "requests",
        "errors",
        "achieved_rps",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
    ] {
        assert!(j.get(key).is_some(), "missing {key}: {j}");
    }
    // Open loop: exactly the scheduled 400 requests in one second, never more.
    assert_eq!(j["requests"], 400, "{j}");
    assert_eq!(j["errors"], 0);
    let (p50, p99, max) = (
        j["p50_us"].as_u64().unwrap(),
        j["p99_us"].as_u64().unwrap(),
        j["max_us"].as_u64().unwrap(),
    );
    assert!(p50 >= 1 && p50 <= p99 && p99 <= max, "{j}");
}

#[test]
fn a_closed_loop_run_counts_every_response() {
    let port = server(200);
    let url = format!("http://127.0.0.1:{port}/");
    let j = report(&loadgen(&[
        "http",
        &url,
        "--duration",
        "0.5",
        "--connections",
        "2",
        "--json",
    ]));
    assert!(j["requests"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(j["errors"], 0);
}

#[test]
fn error_statuses_are_errors() {
    let port = server(503);
    let url = format!("http://127.0.0.1:{port}/");
    let out = loadgen(&[
        "http",
        &url,
        "--rate",
        "50",
        "--duration",
        "0.2",
        "--connections",
        "1",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no request succeeded (10 errors); first error: status 503"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_is_reported() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = loadgen(&[
        "http",
        &format!("http://127.0.0.1:{port}/"),
        "--duration",
        "0.2",
        "--connections",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Connection refused"));
}

#[test]
fn bad_arguments_are_named() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["http", "https://example/"],
            "scheme https is not supported",
        ),
        (&["http", "127.0.0.1:80/"], "invalid URL"),
        (
            &["http", "http://127.0.0.1:1/", "--rate", "fast"],
            "\"fast\" is neither a number nor max",
        ),
        (
            &["http", "http://127.0.0.1:1/", "--connections", "0"],
            "invalid connections: 0 is not in 1..=10000",
        ),
        (
            &["http", "http://127.0.0.1:1/", "--duration=0"],
            "invalid duration: 0 is not a positive number",
        ),
    ];
    for (args, needle) in cases {
        let out = loadgen(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn find_max_reports_the_highest_rate_meeting_the_objective() {
    let port = server(200);
    let url = format!("http://127.0.0.1:{port}/");
    let out = loadgen(&[
        "http",
        &url,
        "--find-max",
        "--slo-p99-ms",
        "50",
        "--duration",
        "0.2",
        "--connections",
        "4",
        "--json",
    ]);
    let j = report(&out);
    let best = j["max_rate_meeting_slo"].as_f64().unwrap();
    let ceiling = j["closed_loop_rps"].as_f64().unwrap();
    assert!(best >= 1.0 && best <= ceiling * 1.1, "{j}");
    assert_eq!(j["errors"], 0);
    assert!(j["p99_us"].as_u64().unwrap() <= 50_000, "{j}");
    let steps = String::from_utf8_lossy(&out.stderr);
    assert!(steps.contains("meets the objective"), "{steps}");

    let out = loadgen(&["http", &url, "--find-max"]);
    assert_eq!(out.status.code(), Some(2), "--find-max needs --slo-p99-ms");
}
