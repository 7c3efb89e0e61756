//! The waSCC 0.14 fixtures, unmodified, over real HTTP on every engine kind.

use crate::support::*;

fn fixture_manifest(echo: u16, kv: u16, logger: u16) -> String {
    format!(
        r#"
labels: {{ test: fixtures }}
actors:
  - {echo_path}
  - {kv_path}
  - {logger_path}
  - {subscriber_path}
capabilities:
  - id: wascc:http_server
  - id: wascc:keyvalue
  - id: wascc:logging
bindings:
  - actor: {ECHO_KEY}
    capability: wascc:http_server
    values: {{ PORT: "{echo}", ADDR: 127.0.0.1 }}
  - actor: {KVCOUNTER_KEY}
    capability: wascc:http_server
    values: {{ PORT: "{kv}", ADDR: 127.0.0.1 }}
  - actor: {KVCOUNTER_KEY}
    capability: wascc:keyvalue
  - actor: {LOGGER_KEY}
    capability: wascc:http_server
    values: {{ PORT: "{logger}", ADDR: 127.0.0.1 }}
  - actor: {LOGGER_KEY}
    capability: wascc:logging
"#,
        echo_path = fixture("echo.wasm").display(),
        kv_path = fixture("kvcounter.wasm").display(),
        logger_path = fixture("logger.wasm").display(),
        subscriber_path = fixture("subscriber.wasm").display(),
    )
}

fn run_fixtures(engine: &str) {
    let (echo, kv, logger) = (free_port(), free_port(), free_port());
    let work = Workdir::new();
    let aot = work.dir.path().join("aot").display().to_string();
    let host = HostProc::start(
        work,
        &fixture_manifest(echo, kv, logger),
        &["--engine", engine, "--aot-dir", &aot],
    );

    // echo: a JSON echo of the request, as codec 0.6 decoded it.
    let r = http(echo, "PUT", "/foo/bar?a=1&b=two", b"hello");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["method"], "PUT");
    assert_eq!(j["path"], "/foo/bar");
    assert_eq!(j["query_string"], "a=1&b=two");
    assert_eq!(j["headers"]["x-test"], "yes");
    assert_eq!(j["body"], serde_json::json!([104, 101, 108, 108, 111]));

    // kvcounter: a counter per path, through wascc:keyvalue.
    assert_eq!(
        get(kv, "/alpha").json(),
        serde_json::json!({ "counter": 1 })
    );
    assert_eq!(
        get(kv, "/alpha").json(),
        serde_json::json!({ "counter": 2 })
    );
    assert_eq!(get(kv, "/beta").json(), serde_json::json!({ "counter": 1 }));

    // logger: log lines through wascc:logging, tagged with the actor's key.
    let r = get(logger, "/anything");
    assert_eq!(r.status, 200, "{}", r.text());
    // It writes "Received an HTTP request" at info, then again at warn.
    for level in ["INFO", "WARN"] {
        let line = host.wait_line(level, |l| {
            l.contains(level) && l.contains("Received an HTTP request")
        });
        assert!(
            line.contains(LOGGER_KEY),
            "log line not tagged with the actor: {line}"
        );
    }
}

#[test]
fn fixtures_run_on_jit() {
    run_fixtures("jit");
}

#[test]
fn fixtures_run_on_interp() {
    run_fixtures("interp");
}

#[test]
fn fixtures_run_on_aot() {
    run_fixtures("aot");
}

#[test]
fn fixtures_run_on_constrained() {
    run_fixtures("constrained");
}

#[test]
fn aot_engine_reuses_precompiled_modules_across_restarts() {
    let work = Workdir::new();
    let aot = work.dir.path().join("aot");
    let aot_arg = aot.to_str().unwrap().to_string();
    let port = free_port();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {ECHO_KEY}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        fixture("echo.wasm").display()
    );
    let host = HostProc::start(
        Workdir::new(),
        &manifest,
        &["--engine", "aot", "--aot-dir", &aot_arg],
    );
    assert_eq!(get(port, "/").status, 200);
    drop(host);
    let files: Vec<_> = std::fs::read_dir(&aot)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let cwasm: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cwasm.len(), 1, "one precompiled module: {files:?}");
    let before = std::fs::metadata(cwasm[0]).unwrap().modified().unwrap();
    let host = HostProc::start(
        Workdir::new(),
        &manifest,
        &["--engine", "aot", "--aot-dir", &aot_arg],
    );
    assert_eq!(get(port, "/").status, 200);
    assert_eq!(
        std::fs::metadata(cwasm[0]).unwrap().modified().unwrap(),
        before,
        "the file was rewritten"
    );
    assert!(!host.log().contains("discarding precompiled module"));
}
