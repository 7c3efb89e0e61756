//! Capability providers in a serving host: the fixtures on the real Redis
//! and NATS, our kitchen actor through every provider, and the run-time
//! host API (stop and start providers, bind and unbind while serving).

use crate::support::*;
use nkeys::KeyPair;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wascc_bench::signed_actor;

const REDIS: &str = "redis://127.0.0.1:6379/0";
const NATS: &str = "nats://127.0.0.1:4222";

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", rand::random::<u32>())
}

fn actor_key(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let opts = wascc_claims::VerifyOptions {
        trusted_issuers: vec![],
        now: None,
    };
    wascc_claims::verify(&bytes, &opts).unwrap().claims.sub
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .output()
        .expect("redis-cli must be installed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn fixtures_count_in_redis_and_receive_from_nats() {
    let work = Workdir::new();
    let kitchen = signed_actor(
        "kitchen",
        &["wascc:http_server", "wascc:messaging", "wascc:logging"],
        &KeyPair::new_account(),
    );
    let kitchen_path = work.write("kitchen.wasm", &kitchen.wasm);
    let subscriber = actor_key(&fixture("subscriber.wasm"));
    let (kv_port, k_port) = (free_port(), free_port());
    let (to_fixture, to_kitchen) = (unique("wascc.it.sub."), unique("wascc.it.rpc."));
    let manifest = format!(
        r#"
actors: [{kv}, {sub}, {kitchen}]
capabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}, {{id: wascc:messaging}}, {{id: wascc:logging}}]
bindings:
  - {{actor: {KVCOUNTER_KEY}, capability: wascc:http_server, values: {{PORT: "{kv_port}", ADDR: 127.0.0.1}}}}
  - {{actor: {KVCOUNTER_KEY}, capability: wascc:keyvalue, values: {{URL: "{REDIS}"}}}}
  - {{actor: {subscriber}, capability: wascc:messaging, values: {{URL: "{NATS}", SUBSCRIPTION: "{to_fixture}"}}}}
  - {{actor: {k}, capability: wascc:http_server, values: {{PORT: "{k_port}", ADDR: 127.0.0.1}}}}
  - {{actor: {k}, capability: wascc:messaging, values: {{URL: "{NATS}", SUBSCRIPTION: "{to_kitchen}"}}}}
  - {{actor: {k}, capability: wascc:logging}}
"#,
        kv = fixture("kvcounter.wasm").display(),
        sub = fixture("subscriber.wasm").display(),
        kitchen = kitchen_path.display(),
        k = kitchen.key,
    );
    let host = HostProc::start_env(work, &manifest, &[], &[("RUST_LOG", "info,actor=trace")]);

    // kvcounter counts in Redis: the count is there for anyone to read.
    let path = unique("/wascc-it-");
    assert_eq!(get(kv_port, &path).json()["counter"], 1);
    assert_eq!(get(kv_port, &path).json()["counter"], 2);
    let needle = path.trim_start_matches('/');
    let keys = redis_cli(&["--scan", "--pattern", &format!("*{needle}*")]);
    assert_eq!(keys.lines().count(), 1, "keys in redis: {keys:?}");
    assert_eq!(redis_cli(&["GET", keys.trim()]), "2");
    redis_cli(&["DEL", keys.trim()]);

    // The subscriber fixture receives what kitchen publishes to its subject.
    let r = http(
        k_port,
        "POST",
        &format!("/publish?{to_fixture}"),
        b"hello fixture",
    );
    assert_eq!(r.json()["ok"], serde_json::Value::Null, "{}", r.text());
    assert!(r.json().get("error").is_none(), "{}", r.text());
    let line = host.wait_log(&to_fixture);
    assert!(
        line.contains(&subscriber),
        "not from the subscriber: {line}"
    );

    // Request/reply through NATS: kitchen asks, kitchen (subscribed) answers.
    let r = http(k_port, "POST", &format!("/request?{to_kitchen}"), b"ping");
    assert_eq!(r.json()["ok"], "re:ping", "{}", r.text());
    // Nobody listens: an error, not a hang.
    let r = http(
        k_port,
        "POST",
        &format!("/request?{}", unique("wascc.it.nobody.")),
        b"x",
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("request on"),
        "{}",
        r.text()
    );
    let r = get(k_port, "/publish?bad..subject");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("empty token"),
        "{}",
        r.text()
    );

    // Structured log fields.
    get(k_port, "/logf");
    let line = host.wait_log("kitchen structured line");
    assert!(line.contains(r#"order=42 who="a b""#), "{line}");
}

/// A host running the kitchen (HTTP on the first port, an HTTP client
/// binding with `client_values`) and the echo actor (HTTP on the second
/// port), started with `args`; and a server that accepts and never
/// answers.
fn kitchen_with_http_client(
    client_values: &str,
    args: &[&str],
) -> (HostProc, u16, u16, std::net::TcpListener) {
    let work = Workdir::new();
    let issuer = KeyPair::new_account();
    let kitchen = signed_actor(
        "kitchen",
        &["wascc:http_server", "wascc:http_client"],
        &issuer,
    );
    let echo = signed_actor("echo", &["wascc:http_server"], &issuer);
    let (k_port, e_port) = (free_port(), free_port());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let manifest = format!(
        r#"
actors: [{k}, {e}]
capabilities: [{{id: wascc:http_server}}, {{id: wascc:http_client}}]
bindings:
  - {{actor: {kk}, capability: wascc:http_server, values: {{PORT: "{k_port}", ADDR: 127.0.0.1}}}}
  - {{actor: {kk}, capability: wascc:http_client, values: {{{client_values}}}}}
  - {{actor: {ek}, capability: wascc:http_server, values: {{PORT: "{e_port}", ADDR: 127.0.0.1}}}}
"#,
        k = work.write("kitchen.wasm", &kitchen.wasm).display(),
        e = work.write("echo.wasm", &echo.wasm).display(),
        kk = kitchen.key,
        ek = echo.key,
    );
    let host = HostProc::start(work, &manifest, args);
    (host, k_port, e_port, silent)
}

#[test]
fn a_provider_call_gives_up_at_the_calling_invocations_deadline() {
    // An HTTP request the provider would wait 120 s for (a server that
    // accepts and never answers): the kitchen's invocation has 300 ms, and
    // its caller hears of the deadline instead of waiting out the
    // provider's timeout (past the 60 s this test's client waits).
    let (_host, port, e_port, silent) =
        kitchen_with_http_client(r#"TIMEOUT_MS: "120000""#, &["--call-deadline-ms", "300"]);
    let silent_port = silent.local_addr().unwrap().port();
    let r = get(port, &format!("/fetch?http://127.0.0.1:{silent_port}/"));
    assert!(r.text().contains("deadline"), "{}", r.text());
    assert!(!r.text().contains("took longer than"), "{}", r.text());
    // The actor serves on.
    let r = get(port, &format!("/fetch?http://127.0.0.1:{e_port}/hello"));
    assert_eq!(r.json()["ok"]["status"], 200, "{}", r.text());
}

#[test]
fn the_http_client_fetches_with_a_timeout_and_a_size_limit() {
    let (_host, k_port, e_port, silent) =
        kitchen_with_http_client(r#"TIMEOUT_MS: "500", MAX_RESPONSE_BYTES: "4096""#, &[]);
    let silent_port = silent.local_addr().unwrap().port();
    let r = get(k_port, &format!("/fetch?http://127.0.0.1:{e_port}/hello"));
    assert_eq!(r.json()["ok"]["status"], 200, "{}", r.text());
    assert!(
        r.json()["ok"]["body"].as_str().unwrap().contains("/hello"),
        "{}",
        r.text()
    );

    let started = std::time::Instant::now();
    let r = get(k_port, &format!("/fetch?http://127.0.0.1:{silent_port}/"));
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("took longer than 500ms"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(silent);

    let big = "x".repeat(5000);
    let r = get(k_port, &format!("/fetch?http://127.0.0.1:{e_port}/{big}"));
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("limit is 4096 bytes"),
        "{}",
        r.text()
    );
    let r = get(k_port, "/fetch?https://example.invalid/");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("https is not supported"),
        "{}",
        r.text()
    );
}

#[test]
fn bad_binding_values_fail_the_manifest_naming_them() {
    let kitchen = signed_actor(
        "kitchen",
        &["wascc:messaging", "wascc:keyvalue"],
        &KeyPair::new_account(),
    );
    let cases = [
        ("wascc:messaging", "{}", "binding value URL is required"),
        (
            "wascc:messaging",
            r#"{URL: "nats://127.0.0.1:4222", SUBSCRIPTION: "a b"}"#,
            "SUBSCRIPTION subject \"a b\" is not valid",
        ),
        (
            "wascc:keyvalue",
            r#"{URL: "postgres://x"}"#,
            "is not a Redis URL",
        ),
        (
            "wascc:keyvalue",
            r#"{FOO: "1"}"#,
            "unknown binding value \"FOO\" for wascc:keyvalue",
        ),
    ];
    for (cap, values, want) in cases {
        let work = Workdir::new();
        let manifest = format!(
            "actors: [{}]\ncapabilities: [{{id: {cap}}}]\nbindings:\n  - {{actor: {}, capability: {cap}, values: {values}}}\n",
            work.write("k.wasm", &kitchen.wasm).display(),
            kitchen.key
        );
        let (code, log) = host_fails(&work, &manifest, &[]);
        assert_ne!(code, 0);
        assert!(log.contains(want), "{cap} {values}: {log}");
        assert!(
            log.contains(&kitchen.key),
            "the error does not name the actor: {log}"
        );
    }
}

/// A host in this process, with its control handle.
struct InProcess {
    control: wascc_runtime::HostControl,
    shutdown: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _work: Workdir,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn in_process(work: Workdir, manifest: &str, port: u16) -> InProcess {
    let path = work.write("manifest.yaml", manifest.as_bytes());
    let m = wascc_runtime::Manifest::load(&path).unwrap();
    let host = wascc_runtime::Host::build(&m, &wascc_runtime::HostOptions::default()).unwrap();
    let control = host.control();
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let thread = std::thread::spawn(move || {
        host.run(&wascc_runtime::RunOptions::default(), flag)
            .unwrap();
    });
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "host did not serve"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    InProcess {
        control,
        shutdown,
        thread: Some(thread),
        _work: work,
    }
}

#[test]
fn providers_and_bindings_change_while_the_host_serves() {
    use futures_lite::future::block_on;
    let work = Workdir::new();
    let kitchen = signed_actor(
        "kitchen",
        &[
            "wascc:http_server",
            "wascc:keyvalue",
            "wascc:logging",
            "wascc:extras",
        ],
        &KeyPair::new_account(),
    );
    let port = free_port();
    let key = kitchen.key.clone();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}]\nbindings:\n  - {{actor: {key}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n  - {{actor: {key}, capability: wascc:keyvalue}}\n",
        work.write("kitchen.wasm", &kitchen.wasm).display()
    );
    let host = in_process(work, &manifest, port);
    let c = &host.control;
    let kv_ok = || get(port, "/kv").status == 200;
    assert!(kv_ok(), "{}", get(port, "/kv").text());
    let bound: Vec<String> = c.bindings().into_iter().map(|b| b.capability).collect();
    assert_eq!(bound, ["wascc:http_server", "wascc:keyvalue"]);

    // Unbind: the next call is refused with the missing binding named.
    block_on(c.unbind(&key, "wascc:keyvalue", "default")).unwrap();
    let r = get(port, "/kv");
    assert_eq!(r.status, 500);
    assert!(
        r.text()
            .contains("has no binding \"default\" to capability wascc:keyvalue"),
        "{}",
        r.text()
    );
    // Bind again (now on Redis): served again.
    let mut values = BTreeMap::new();
    values.insert("URL".to_string(), REDIS.to_string());
    block_on(c.bind(&key, "wascc:keyvalue", "default", values)).unwrap();
    assert!(kv_ok(), "{}", get(port, "/kv").text());

    // Stop the provider: calls say no provider runs; start it: the recorded
    // binding is applied again.
    block_on(c.stop_provider("wascc:keyvalue")).unwrap();
    let r = get(port, "/kv");
    assert!(
        r.text()
            .contains("no provider for capability wascc:keyvalue runs on this host"),
        "{}",
        r.text()
    );
    let e = block_on(c.stop_provider("wascc:keyvalue")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no provider of capability wascc:keyvalue runs"),
        "{e}"
    );
    block_on(c.start_builtin("wascc:keyvalue")).unwrap();
    assert!(kv_ok(), "{}", get(port, "/kv").text());
    block_on(c.health("wascc:keyvalue")).unwrap();
    let e = block_on(c.start_builtin("wascc:keyvalue")).unwrap_err();
    assert!(e.to_string().contains("already runs"), "{e}");

    // A provider started at run time serves new bindings.
    let e = block_on(c.bind(&key, "wascc:extras", "default", BTreeMap::new())).unwrap_err();
    assert!(
        e.to_string()
            .contains("no provider of capability wascc:extras runs"),
        "{e}"
    );
    block_on(c.start_builtin("wascc:extras")).unwrap();
    block_on(c.bind(&key, "wascc:extras", "default", BTreeMap::new())).unwrap();
    assert_eq!(
        get(port, "/extras").status,
        200,
        "{}",
        get(port, "/extras").text()
    );

    // Refusals name what is wrong.
    let e = block_on(c.bind(&key, "wascc:messaging", "default", BTreeMap::new())).unwrap_err();
    assert!(
        e.to_string()
            .contains("claims do not list capability wascc:messaging"),
        "{e}"
    );
    let e = block_on(c.bind("MNOPE", "wascc:keyvalue", "default", BTreeMap::new())).unwrap_err();
    assert!(
        e.to_string()
            .contains("actor MNOPE does not run on this host"),
        "{e}"
    );
    let mut bad = BTreeMap::new();
    bad.insert("URL".to_string(), "http://nope".to_string());
    let e = block_on(c.bind(&key, "wascc:keyvalue", "other", bad)).unwrap_err();
    assert!(e.to_string().contains("is not a Redis URL"), "{e}");
    let e = block_on(c.start_builtin("wascc:teleport")).unwrap_err();
    assert!(e.to_string().contains("has no built-in provider"), "{e}");
    // A refused binding changed nothing.
    assert!(kv_ok());
    assert_eq!(c.providers().len(), 3, "the HTTP server, key-value, extras");
}

#[test]
fn a_call_in_flight_finishes_while_its_provider_stops() {
    use futures_lite::future::block_on;
    use std::io::{Read, Write};
    let work = Workdir::new();
    let kitchen = signed_actor(
        "kitchen",
        &["wascc:http_server", "wascc:http_client"],
        &KeyPair::new_account(),
    );
    let port = free_port();
    let key = kitchen.key.clone();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {{id: wascc:http_client}}]\nbindings:\n  - {{actor: {key}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n  - {{actor: {key}, capability: wascc:http_client}}\n",
        work.write("kitchen.wasm", &kitchen.wasm).display()
    );
    let host = in_process(work, &manifest, port);

    // A server that answers its one request only when told to.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_port = slow.local_addr().unwrap().port();
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    let (answer, answer_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = slow.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = conn.read(&mut buf).unwrap();
        accepted_tx.send(()).unwrap();
        answer_rx.recv().unwrap();
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow")
            .unwrap();
    });
    let call =
        std::thread::spawn(move || get(port, &format!("/fetch?http://127.0.0.1:{slow_port}/")));
    accepted.recv().unwrap();

    // Stop the provider while the call waits on the server: stopping waits
    // for the call, which completes normally once the server answers.
    let control = host.control.clone();
    let stopper = std::thread::spawn(move || block_on(control.stop_provider("wascc:http_client")));
    // New calls are refused as soon as the stop begins, while the old one
    // is still in flight.
    let started = std::time::Instant::now();
    loop {
        let r = get(port, "/fetch?http://127.0.0.1:1/");
        if r.text()
            .contains("no provider for capability wascc:http_client runs on this host")
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "never refused: {}",
            r.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !stopper.is_finished(),
        "stop_provider returned with a call in flight"
    );
    answer.send(()).unwrap();
    stopper.join().unwrap().unwrap();
    let r = call.join().unwrap();
    assert_eq!(r.json()["ok"]["status"], 200, "{}", r.text());
    assert_eq!(r.json()["ok"]["body"], "slow", "{}", r.text());
    server.join().unwrap();
}
