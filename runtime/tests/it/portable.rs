//! Portable (wasm) providers: memkv, built from source in `actors/`,
//! serving the unmodified kvcounter fixture; modules not signed as
//! providers, and bindings the provider refuses.

use crate::support::*;
use nkeys::KeyPair;
use wascc_bench::{build_providers, sign_module, signed_actor, signed_provider};

fn memkv_unsigned() -> Vec<u8> {
    std::fs::read(build_providers().join("memkv.wasm")).expect("memkv.wasm was built")
}

#[test]
fn a_portable_provider_built_from_source_serves_the_kvcounter_fixture() {
    let work = Workdir::new();
    let memkv = signed_provider("memkv", &KeyPair::new_account());
    let memkv_path = work.write("memkv.wasm", &memkv.wasm);
    let port = free_port();
    let manifest = format!(
        r#"
actors: [{kv}]
capabilities:
  - id: wascc:http_server
  - {{path: {memkv}, env: {{MEMKV_DEFAULT_MAX_KEYS: "2"}}}}
bindings:
  - {{actor: {KVCOUNTER_KEY}, capability: wascc:http_server, values: {{PORT: "{port}", ADDR: 127.0.0.1}}}}
  - {{actor: {KVCOUNTER_KEY}, capability: wascc:keyvalue}}
"#,
        kv = fixture("kvcounter.wasm").display(),
        memkv = memkv_path.display(),
    );
    let host = HostProc::start(work, &manifest, &[]);
    // Its capability id is what it reported, and WASI stdout reaches the log.
    host.wait_log("capability=wascc:keyvalue");
    host.wait_log(&format!(
        "memkv: bound {KVCOUNTER_KEY} (default), at most 2 keys"
    ));

    // The 0.x fixture counts in the provider's memory.
    assert_eq!(get(port, "/a").json()["counter"], 1);
    assert_eq!(get(port, "/a").json()["counter"], 2);
    assert_eq!(get(port, "/b").json()["counter"], 1);
    assert_eq!(get(port, "/a").json()["counter"], 3);
    // The environment it was given limits the binding to two keys: the
    // provider's error reaches the actor, and the host goes on serving.
    let full = get(port, "/c");
    assert_eq!(full.status, 500, "{}", full.text());
    assert!(
        full.text().contains("the binding is full (2 keys)"),
        "{}",
        full.text()
    );
    assert_eq!(get(port, "/b").json()["counter"], 2);
}

#[test]
fn modules_not_signed_as_providers_are_refused_as_providers() {
    let account = KeyPair::new_account();
    let work = Workdir::new();
    let as_actor = sign_module(&memkv_unsigned(), "memkv", &[], &account);
    let echo = signed_actor("echo", &["wascc:http_server"], &account);
    for (name, wasm) in [
        ("memkv-as-actor.wasm", as_actor.wasm),
        ("echo.wasm", echo.wasm),
    ] {
        let path = work.write(name, &wasm);
        let (code, log) = host_fails(
            &work,
            &format!("capabilities: [{{path: {}}}]", path.display()),
            &[],
        );
        assert_ne!(code, 0);
        assert!(
            log.contains(&format!("portable provider {}", path.display()))
                && log.contains("claims do not describe a capability provider"),
            "{name}: {log}"
        );
    }
    // A provider is not an actor either.
    let provider = signed_provider("memkv", &account);
    let path = work.write("memkv.wasm", &provider.wasm);
    let (_, log) = host_fails(&work, &format!("actors: [{}]", path.display()), &[]);
    assert!(log.contains("claims do not describe an actor"), "{log}");
    // waSCC 0.x native plugins are named as such.
    let (_, log) = host_fails(&work, "capabilities: [{path: ./libkeyvalue.so}]", &[]);
    assert!(log.contains("is a native plugin"), "{log}");
}

#[test]
fn the_portable_provider_refuses_bad_binding_values_and_other_binding_names() {
    let work = Workdir::new();
    let memkv = signed_provider("memkv", &KeyPair::new_account());
    let memkv_path = work.write("memkv.wasm", &memkv.wasm);
    let kv = fixture("kvcounter.wasm");
    let cases = [
        (
            "binding: default",
            r#"values: {BOGUS: "1"}"#,
            "refused the binding: unknown binding value BOGUS (memkv takes MAX_KEYS)",
        ),
        (
            "binding: default",
            r#"values: {MAX_KEYS: "-3"}"#,
            r#"MAX_KEYS "-3" is not a positive number"#,
        ),
        (
            "binding: cache",
            "values: {}",
            r#"serves binding "cache" of wascc:keyvalue, not "default""#,
        ),
    ];
    for (provider_binding, values, expected) in cases {
        let manifest = format!(
            r#"
actors: [{kv}]
capabilities: [{{path: {memkv}, {provider_binding}}}]
bindings: [{{actor: {KVCOUNTER_KEY}, capability: wascc:keyvalue, {values}}}]
"#,
            kv = kv.display(),
            memkv = memkv_path.display(),
        );
        let (code, log) = host_fails(&work, &manifest, &[]);
        assert_ne!(code, 0);
        assert!(log.contains(expected), "{provider_binding} {values}: {log}");
    }
}

/// A portable provider of `test:relay` in WAT: it answers an actor's `Echo`
/// by asking the host who is calling (`CurrentCaller`) and calling that
/// actor's `Echo` with "relayed", returning the actor's reply; when the
/// message starts with '!' it calls an actor not bound to it instead.
const RELAY: &str = r#"
(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wapc" "__guest_error" (func $err (param i32 i32)))
  (import "wapc" "__host_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $rlen (result i32)))
  (import "wapc" "__host_response" (func $rbuf (param i32)))
  (import "wapc" "__host_error_len" (func $elen (result i32)))
  (import "wapc" "__host_error" (func $ebuf (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\82\a2id\aatest:relay\a4name\a5relay")
  (data (i32.const 64) "wascc:host")
  (data (i32.const 80) "CurrentCaller")
  (data (i32.const 96) "Echo")
  (data (i32.const 104) "\a7relayed")
  (data (i32.const 128) "MNOTBOUNDNOTBOUNDNOTBOUNDNOTBOUNDNOTBOUNDNOTBOUNDNOTBOUN")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $target i32)
    (call $req (i32.const 1024) (i32.const 2048))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 71))
      (then (call $resp (i32.const 0) (i32.const 26)) (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (i32.const 1024)) (i32.const 69))
      (then (return (i32.const 1))))
    (drop (call $call (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 10)
                      (i32.const 80) (i32.const 13) (i32.const 0) (i32.const 0)))
    (call $rbuf (i32.const 4096))
    (local.set $target (i32.const 4105))
    (if (i32.eq (i32.load8_u (i32.const 2049)) (i32.const 33))
      (then (local.set $target (i32.const 128))))
    (if (i32.eqz (call $call (i32.const 0) (i32.const 0) (local.get $target) (i32.const 56)
                             (i32.const 96) (i32.const 4) (i32.const 104) (i32.const 8)))
      (then
        (call $ebuf (i32.const 8192))
        (call $err (i32.const 8192) (call $elen))
        (return (i32.const 0))))
    (call $rbuf (i32.const 8192))
    (call $resp (i32.const 8192) (call $rlen))
    (i32.const 1)))
"#;

#[test]
fn a_portable_provider_calls_the_actors_bound_to_it_and_no_others() {
    let work = Workdir::new();
    let account = KeyPair::new_account();
    let relay = wascc_claims::sign(
        &wat::parse_str(RELAY).unwrap(),
        &wascc_claims::SignRequest {
            name: "relay".into(),
            provider: true,
            ..Default::default()
        },
        &account,
        &KeyPair::new_module().public_key(),
    )
    .unwrap();
    let kitchen = signed_actor("kitchen", &["wascc:http_server", "test:relay"], &account);
    let port = free_port();
    let manifest = format!(
        r#"
actors: [{k}]
capabilities: [{{id: wascc:http_server}}, {{path: {relay}}}]
bindings:
  - {{actor: {key}, capability: wascc:http_server, values: {{PORT: "{port}", ADDR: 127.0.0.1}}}}
  - {{actor: {key}, capability: test:relay}}
"#,
        k = work.write("kitchen.wasm", &kitchen.wasm).display(),
        relay = work.write("relay.wasm", &relay).display(),
        key = kitchen.key,
    );
    let _host = HostProc::start(work, &manifest, &[]);
    // kitchen → relay (Echo "hi") → kitchen (Echo "relayed") → back.
    let r = http(port, "POST", "/call?test:relay", b"hi");
    assert_eq!(r.json()["reply"], "relayed", "{}", r.text());
    let r = http(port, "POST", "/call?test:relay", b"!");
    let e = r.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        e.contains("portable provider relay may call only actors bound to it"),
        "{}",
        r.text()
    );
}
