//! Hosts in a lattice over the NATS server on this machine: their records in
//! the JetStream KV state, leaving on shutdown, expiring when killed.

use crate::support::*;
use std::time::{Duration, Instant};
use wascc_lattice::{HostRecord, Lattice, LatticeOptions, limits::HOST_TTL};

const NATS: &str = "nats://127.0.0.1:4222";

/// A runtime for the test's own NATS work and a connection to `lattice`.
fn connect(lattice: &str) -> (tokio::runtime::Runtime, Lattice) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = LatticeOptions {
        url: NATS.into(),
        lattice: lattice.into(),
        credentials: None,
    };
    let state = rt.block_on(Lattice::connect(&opts)).unwrap();
    (rt, state)
}

fn hosts(lattice: &str) -> Vec<HostRecord> {
    let (rt, state) = connect(lattice);
    rt.block_on(state.hosts()).unwrap()
}

fn echo_host(lattice: &str, zone: &str) -> HostProc {
    let port = free_port();
    let manifest = format!(
        "labels: {{region: test}}\nactors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {{id: wascc:logging}}]\nbindings:\n  - {{actor: {ECHO_KEY}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        fixture("echo.wasm").display()
    );
    HostProc::start(
        Workdir::new(),
        &manifest,
        &[
            "--nats",
            NATS,
            "--lattice",
            lattice,
            "--label",
            &format!("zone={zone}"),
            "--shards",
            "1",
        ],
    )
}

#[test]
fn hosts_join_the_lattice_state_leave_it_and_expire_from_it() {
    let lattice = format!("it{}", rand::random::<u32>());
    let a = echo_host(&lattice, "a");
    let b = echo_host(&lattice, "b");
    let listed = hosts(&lattice);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let zones: Vec<&str> = listed.iter().map(|h| h.labels["zone"].as_str()).collect();
    assert!(zones.contains(&"a") && zones.contains(&"b"), "{listed:?}");
    for h in &listed {
        assert!(h.id.starts_with('N') && h.id.len() == 56, "{}", h.id);
        assert_eq!(h.lattice, lattice);
        assert_eq!(h.labels["region"], "test", "manifest labels are kept");
        assert_eq!(h.actors.len(), 1);
        assert_eq!(h.actors[0].key, ECHO_KEY);
        assert!(
            h.providers.iter().any(|p| p.capability == "wascc:logging"),
            "{h:?}"
        );
    }
    // Another lattice on the same server sees none of them.
    assert!(hosts(&format!("{lattice}x")).is_empty());

    // A host that stops leaves at once.
    let (code, log) = b.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("left the lattice"), "{log}");
    let listed = hosts(&lattice);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].labels["zone"], "a");

    // A host killed (SIGKILL) expires after its last heartbeat, within the
    // TTL and the server's expiry sweep (the bound is generous: it tests
    // that the record goes, not how fast).
    drop(a);
    let killed = Instant::now();
    while !hosts(&lattice).is_empty() {
        assert!(
            killed.elapsed() < HOST_TTL + Duration::from_secs(10),
            "killed host still listed after {:?}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn joining_errors_name_the_server_or_the_lattice() {
    let work = Workdir::new();
    let manifest = "actors: []\n";
    let (code, log) = host_fails(&work, manifest, &["--nats", "nats://127.0.0.1:1"]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{log}"
    );
    let (_, log) = host_fails(&work, manifest, &["--nats", NATS, "--lattice", "a.b"]);
    assert!(
        log.contains("lattice name \"a.b\" is invalid: '.' is not allowed"),
        "{log}"
    );
    let (_, log) = host_fails(&work, manifest, &["--lattice", "x"]);
    assert!(log.contains("--nats"), "{log}");
    let (_, log) = host_fails(&work, manifest, &["--label", "novalue"]);
    assert!(log.contains("is not a label: expected KEY=VALUE"), "{log}");
}

#[test]
fn actors_call_actors_on_other_hosts_and_forged_or_replayed_invocations_are_refused() {
    use wascc_lattice::invocation::{Invocation, Sealer};
    let lattice = format!("it{}", rand::random::<u32>());
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let args = [
        "--nats",
        NATS,
        "--lattice",
        lattice.as_str(),
        "--shards",
        "1",
    ];
    let work_b = Workdir::new();
    let b_manifest = format!("actors: [{}]\n", work_b.write("b.wasm", &kb.wasm).display());
    let _b = HostProc::start(work_b, &b_manifest, &args);
    let work_a = Workdir::new();
    let port = free_port();
    let a_manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        work_a.write("a.wasm", &ka.wasm).display(),
        ka.key
    );
    let _a = HostProc::start(work_a, &a_manifest, &args);

    // Actor a (host A) calls actor b, which runs only on host B.
    let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
    assert_eq!(r.json()["reply"], "ping", "{}", r.text());
    // An actor no host runs: a clear error, not a hang.
    let nobody = nkeys::KeyPair::new_module().public_key();
    let r = http(port, "POST", &format!("/call?{nobody}"), b"ping");
    let e = r.json()["error"].as_str().unwrap_or("").to_string();
    assert!(e.contains("no host of the lattice runs it"), "{}", r.text());

    // Seals of our own, sent straight to b's subject.
    let (rt, state) = connect(&lattice);
    let subject = wascc_lattice::actor_subject(&lattice, &kb.key);
    let sealer = Sealer::new(nkeys::KeyPair::new_server());
    let payload = vec![0xa1, b'x'];
    let inv = Invocation {
        lattice: &lattice,
        subject: &subject,
        operation: "Echo",
        payload: &payload,
    };
    let seal = sealer.seal(&inv, wascc_lattice::now_millis());
    let send = |payload: Vec<u8>, seal: &wascc_lattice::invocation::Seal| {
        rt.block_on(wascc_lattice::rpc::request_sealed(
            state.client(),
            &subject,
            "MTEST",
            "Echo",
            payload,
            seal,
        ))
    };
    assert_eq!(send(payload.clone(), &seal), Ok(payload.clone()));
    let replayed = send(payload.clone(), &seal).unwrap_err();
    assert!(replayed.contains("already received"), "{replayed}");
    let fresh = sealer.seal(&inv, wascc_lattice::now_millis());
    let altered = send(vec![0xa1, b'y'], &fresh).unwrap_err();
    assert!(altered.contains("forged or altered"), "{altered}");
    let mut forged = sealer.seal(&inv, wascc_lattice::now_millis());
    forged.origin = nkeys::KeyPair::new_server().public_key();
    let forged = send(payload.clone(), &forged).unwrap_err();
    assert!(forged.contains("forged or altered"), "{forged}");
}

#[test]
fn control_commands_set_labels_and_stop_a_host_with_events() {
    use futures_lite::StreamExt;
    use wascc_lattice::control::{self, LabelRequest};
    let lattice = format!("it{}", rand::random::<u32>());
    let (rt, state) = connect(&lattice);
    let mut events = rt
        .block_on(state.client().subscribe(control::events_subject(&lattice)))
        .unwrap();
    // The SUB must reach the server before the host starts.
    rt.block_on(state.client().flush()).unwrap();
    let mut next_event = || {
        let msg = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), events.next()).await })
            .expect("an event within 10 s")
            .unwrap();
        serde_json::from_slice::<control::Event>(&msg.payload).unwrap()
    };
    let host = echo_host(&lattice, "a");
    let started = next_event();
    assert_eq!(started.kind, "com.wascc.lattice.host_started");
    assert_eq!(started.specversion, "1.0");
    let id = started.source.trim_start_matches("wascc/host/").to_string();

    let cmd = |command: &str, body: &serde_json::Value| {
        rt.block_on(control::request(&state, &id, command, body))
            .unwrap()
    };
    let put = serde_json::to_value(LabelRequest {
        key: "zone".into(),
        value: Some("b".into()),
    })
    .unwrap();
    assert!(cmd("label.put", &put).ok);
    // The record says so at once, not at the next heartbeat.
    let record = rt.block_on(state.hosts()).unwrap();
    assert_eq!(record[0].labels["zone"], "b");
    let e = next_event();
    assert_eq!(e.kind, "com.wascc.lattice.label_set");
    assert_eq!(e.data, serde_json::json!({"key": "zone", "value": "b"}));

    let del = serde_json::json!({"key": "region"});
    assert!(cmd("label.del", &del).ok);
    assert_eq!(next_event().kind, "com.wascc.lattice.label_removed");
    let again = cmd("label.del", &del);
    assert_eq!(
        again.error.as_deref(),
        Some("this host has no label \"region\"")
    );
    let bad = cmd(
        "label.put",
        &serde_json::json!({"key": "a b", "value": "x"}),
    );
    assert!(bad.error.unwrap().contains("holds '=' or white space"));
    let unknown = cmd("teleport", &serde_json::json!({}));
    assert!(
        unknown
            .error
            .unwrap()
            .contains("unknown command \"teleport\"")
    );
    let e = rt
        .block_on(control::request(
            &state,
            "NNOSUCHHOST",
            "stop",
            &serde_json::json!({}),
        ))
        .unwrap_err();
    assert!(e.to_string().contains("no such host in the lattice"), "{e}");

    // Stop: the host drains, leaves and exits cleanly.
    assert!(cmd("stop", &serde_json::json!({})).ok);
    assert_eq!(next_event().kind, "com.wascc.lattice.host_stopped");
    let (code, log) = host.wait_exit();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("stop requested through the lattice"), "{log}");
    assert!(rt.block_on(state.hosts()).unwrap().is_empty());
}
