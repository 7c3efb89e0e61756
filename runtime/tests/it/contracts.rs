//! Our own actors, built from `actors/` and signed here, exercising every
//! operation of the built-in contracts.

use crate::support::*;
use nkeys::KeyPair;
use serde_json::json;
use wascc_bench::signed_actor;

pub const KITCHEN_CAPS: [&str; 4] = [
    "wascc:http_server",
    "wascc:keyvalue",
    "wascc:logging",
    "wascc:extras",
];

/// A host serving the kitchen actor (default and `other` key-value bindings).
pub fn kitchen_host(extra_args: &[&str]) -> (HostProc, u16) {
    let work = Workdir::new();
    let actor = signed_actor("kitchen", &KITCHEN_CAPS, &KeyPair::new_account());
    let path = work.write("kitchen.wasm", &actor.wasm);
    let port = free_port();
    let key = &actor.key;
    let manifest = format!(
        r#"
actors: [{path}]
capabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}, {{id: wascc:logging}}, {{id: wascc:extras}}]
bindings:
  - {{actor: {key}, capability: wascc:http_server, values: {{PORT: "${{KITCHEN_PORT}}", ADDR: 127.0.0.1}}}}
  - {{actor: {key}, capability: wascc:keyvalue}}
  - {{actor: {key}, capability: wascc:keyvalue, binding: other}}
  - {{actor: {key}, capability: wascc:logging}}
  - {{actor: {key}, capability: wascc:extras}}
"#,
        path = path.display()
    );
    let port_s = port.to_string();
    let host = HostProc::start_env(
        work,
        &manifest,
        extra_args,
        &[("KITCHEN_PORT", &port_s), ("RUST_LOG", "info,actor=trace")],
    );
    (host, port)
}

#[test]
fn own_echo_and_counter_actors_serve_http() {
    let work = Workdir::new();
    let issuer = KeyPair::new_account();
    let echo = signed_actor("echo", &["wascc:http_server"], &issuer);
    let counter = signed_actor(
        "kvcounter",
        &["wascc:http_server", "wascc:keyvalue"],
        &issuer,
    );
    let (p1, p2) = (free_port(), free_port());
    let manifest = format!(
        r#"
actors:
  - {}
  - {{ path: {}, engine: interp }}
capabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}]
bindings:
  - {{actor: {}, capability: wascc:http_server, values: {{PORT: "{p1}", ADDR: 127.0.0.1}}}}
  - {{actor: {}, capability: wascc:http_server, values: {{PORT: "{p2}", ADDR: 127.0.0.1}}}}
  - {{actor: {}, capability: wascc:keyvalue}}
"#,
        work.write("echo.wasm", &echo.wasm).display(),
        work.write("kvcounter.wasm", &counter.wasm).display(),
        echo.key,
        counter.key,
        counter.key
    );
    let host = HostProc::start(work, &manifest, &["--trusted-issuer", &issuer.public_key()]);
    let r = http(p1, "POST", "/x?y=z", b"body text");
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .to_lowercase()
            .contains("content-type: application/json"),
        "{}",
        r.headers
    );
    let j = r.json();
    assert_eq!(
        (j["method"].as_str(), j["path"].as_str()),
        (Some("POST"), Some("/x"))
    );
    assert_eq!(j["query_string"], "y=z");
    assert_eq!(j["body"], "body text");
    assert_eq!(get(p2, "/c").json(), json!({"counter": 1}));
    assert_eq!(get(p2, "/c").json(), json!({"counter": 2}));
    assert!(
        host.log().contains("profile=Current"),
        "our actors get the current codec"
    );
}

#[test]
fn every_keyvalue_operation() {
    let (_host, port) = kitchen_host(&[]);
    let r = get(port, "/kv");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "get": "v1", "exists": true, "after_del": null,
            "add": [5, 3], "pushed": [1, 2, 3], "range": ["a", "b", "c"], "after_list_del": 2,
            "tail": ["c"], "cleared": [], "set_added": [1, 1, 0], "set_removed": 1,
            "members": ["x", "y"], "union": ["w", "x", "y"], "intersect": ["y"],
        })
    );
}

#[test]
fn extras_guid_random_and_sequence() {
    let (_host, port) = kitchen_host(&[]);
    let a = get(port, "/extras").json();
    let b = get(port, "/extras").json();
    let guid = a["guid"].as_str().unwrap();
    assert_eq!(guid.len(), 36, "{guid}");
    assert_eq!(guid.as_bytes()[14], b'4', "a v4 uuid: {guid}");
    assert_ne!(a["guid"], b["guid"]);
    for r in [&a, &b] {
        let n = r["random"].as_u64().unwrap();
        assert!((1..=6).contains(&n), "{n}");
    }
    assert_eq!(a["seq"], json!([0, 1]));
    assert_eq!(b["seq"], json!([2, 3]));
}

#[test]
fn logging_at_every_level_and_console_log() {
    let (host, port) = kitchen_host(&[]);
    assert_eq!(get(port, "/log").json(), json!({"logged": 5}));
    let log = host.wait_log("kitchen log line at trace");
    for level in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
        let name = level.to_lowercase();
        let line = log
            .lines()
            .find(|l| l.contains(&format!("kitchen log line at {name}")))
            .unwrap_or_else(|| panic!("no {name} line:\n{log}"));
        assert!(line.contains(level), "{line}");
    }
    assert_eq!(get(port, "/console?hi").json(), json!({"console": true}));
    let log = host.wait_log("kitchen console: hi");
    let line = log
        .lines()
        .find(|l| l.contains("kitchen console: hi"))
        .unwrap();
    assert!(
        line.contains("INFO") && line.contains("actor=\"M"),
        "console lines are info and tagged: {line}"
    );
}

#[test]
fn named_bindings_reach_separate_stores() {
    let (_host, port) = kitchen_host(&[]);
    assert_eq!(
        get(port, "/named").json(),
        json!({"default": 1, "other": 10})
    );
    assert_eq!(
        get(port, "/named").json(),
        json!({"default": 2, "other": 20})
    );
    let r = get(port, "/unbound").json();
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("no binding \"nope\" to capability wascc:keyvalue"),
        "{e}"
    );
}

#[test]
fn capability_not_in_claims_is_refused() {
    let (_host, port) = kitchen_host(&[]);
    let r = get(port, "/denied").json();
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("is not authorized for capability wascc:messaging"),
        "{e}"
    );
    assert!(
        e.contains("wascc:extras, wascc:http_server, wascc:keyvalue, wascc:logging"),
        "{e}"
    );
}

#[test]
fn an_actor_with_the_0_5_codec_shapes_runs() {
    let work = Workdir::new();
    let actor = signed_actor(
        "legacy",
        &["wascc:http_server", "wascc:keyvalue"],
        &KeyPair::new_account(),
    );
    let port = free_port();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}]\nbindings:\n  - {{actor: {k}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n  - {{actor: {k}, capability: wascc:keyvalue}}\n",
        work.write("legacy.wasm", &actor.wasm).display(),
        k = actor.key
    );
    let host = HostProc::start(work, &manifest, &[]);
    assert!(host.log().contains("profile=Compat"), "{}", host.log());
    let r = http(port, "POST", "/p?q=1", b"ab");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"count": 1, "method": "POST", "query_string": "q=1", "body": [97, 98]})
    );
    assert_eq!(get(port, "/p").json()["count"], 2);
}

#[test]
fn an_assemblyscript_actor_runs() {
    let work = Workdir::new();
    let actor = wascc_bench::sign_module(
        &wascc_bench::as_echo_wasm(),
        "as-echo",
        &["wascc:http_server"],
        &KeyPair::new_account(),
    );
    let port = free_port();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        work.write("as_echo.wasm", &actor.wasm).display(),
        actor.key
    );
    let host = HostProc::start(work, &manifest, &["--engine", "interp"]);
    let r = get(port, "/as/path?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"toolchain": "assemblyscript", "method": "GET", "path": "/as/path", "query_string": "x=1"})
    );
    host.wait_log("as-echo handled GET /as/path");
}
