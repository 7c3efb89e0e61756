//! Hosts in a lattice over the NATS server on this machine: their records in
//! the JetStream KV state, leaving on shutdown, expiring when killed.

use crate::support::*;
use std::time::{Duration, Instant};
use wascc_lattice::{HostRecord, Lattice, LatticeOptions, limits::HOST_TTL};

const NATS: &str = "nats://127.0.0.1:4222";

/// A runtime for the test's own NATS work and a connection to `lattice`.
fn connect(lattice: &str) -> (tokio::runtime::Runtime, Lattice) {
    connect_to(NATS, lattice)
}

fn connect_to(url: &str, lattice: &str) -> (tokio::runtime::Runtime, Lattice) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = LatticeOptions {
        url: url.into(),
        lattice: lattice.into(),
        credentials: None,
        tls_ca: None,
        nkey_seed: None,
        control_seed: None,
    };
    let state = rt.block_on(Lattice::connect(&opts)).unwrap();
    (rt, state)
}

/// The events of a lattice, subscribed to before anything happens.
struct Events {
    rt: tokio::runtime::Runtime,
    /// The connection the subscription lives on.
    _state: Lattice,
    /// The events, each checked (signed by the host it comes from).
    sub: futures_lite::stream::Boxed<wascc_lattice::control::Event>,
}

impl Events {
    fn watch(lattice: &str) -> Events {
        use futures_lite::StreamExt;
        let (rt, state) = connect(lattice);
        let sub = rt
            .block_on(
                state
                    .client()
                    .subscribe(wascc_lattice::control::events_subject(lattice)),
            )
            .unwrap()
            .map({
                let lattice = lattice.to_string();
                move |m| {
                    wascc_lattice::control::verify_event(&lattice, m.headers.as_ref(), &m.payload)
                        .unwrap()
                }
            })
            .boxed();
        // The SUB must be in place at the server before anything happens.
        rt.block_on(state.sync()).unwrap();
        Events {
            rt,
            _state: state,
            sub,
        }
    }

    /// The next event (of `kind`, skipping others, when given).
    fn next(&mut self, kind: Option<&str>) -> wascc_lattice::control::Event {
        use futures_lite::StreamExt;
        loop {
            let e = self
                .rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), self.sub.next()).await
                })
                .unwrap_or_else(|_| panic!("no {kind:?} event within 10 s"))
                .unwrap();
            match kind {
                Some(k) if e.kind != format!("com.wascc.lattice.{k}") => continue,
                _ => return e,
            }
        }
    }
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
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let with_metrics = |port: u16| {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        v.extend(["--metrics".to_string(), format!("127.0.0.1:{port}")]);
        v
    };
    let (args_a, args_b) = (with_metrics(metrics_a), with_metrics(metrics_b));
    let work_b = Workdir::new();
    let b_manifest = format!("actors: [{}]\n", work_b.write("b.wasm", &kb.wasm).display());
    let b = HostProc::start(
        work_b,
        &b_manifest,
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b_id = host_id(&b);
    let work_a = Workdir::new();
    let port = free_port();
    let a_manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        work_a.write("a.wasm", &ka.wasm).display(),
        ka.key
    );
    let _a = HostProc::start(
        work_a,
        &a_manifest,
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // Actor a (host A) calls actor b, which runs only on host B.
    let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
    assert_eq!(r.json()["reply"], "ping", "{}", r.text());
    // Once each host has the other's exchange key from the lattice state,
    // invocations carry MAC tags, not signatures, and pass.
    let sent = |seal: &str| sum(&scrape(metrics_a), "wascc_lattice_sent_total", seal);
    let accepted = || {
        sum(
            &scrape(metrics_b),
            "wascc_lattice_received_total",
            "accepted",
        )
    };
    wait_until(
        "a call sealed with a MAC",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
            assert_eq!(r.json()["reply"], "ping", "{}", r.text());
            sent("mac") > 0
        },
    );
    let (macs, signed, received) = (sent("mac"), sent("signature"), accepted());
    let timed = || sample(metrics_a, "wascc_lattice_call_duration_seconds_count");
    let timed_before = timed();
    for _ in 0..5 {
        let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
        assert_eq!(r.json()["reply"], "ping", "{}", r.text());
    }
    // Host A timed each of its calls.
    assert_eq!(timed(), timed_before + 5);
    let text = get(metrics_a, "/metrics").text();
    let durations =
        wascc_lattice::latency::Buckets::parse(&text, wascc_lattice::rpc::CALL_DURATIONS);
    assert_eq!(durations.count(), timed_before + 5, "{text}");
    let p50 = durations.quantile(0.5).expect("a median");
    assert!(
        p50 > Duration::ZERO && p50 < Duration::from_secs(5),
        "{p50:?}"
    );
    assert_eq!(sent("mac"), macs + 5);
    assert_eq!(sent("signature"), signed);
    assert_eq!(accepted(), received + 5);
    // Host B's shard took them on its own connection, not its services
    // thread.
    let by_shards = sample(metrics_b, "wascc_lattice_shard_received_total");
    assert!(by_shards >= 5, "{by_shards}");
    // And host A's shard sent them on its own connection, not through its
    // services thread.
    let sent_by_shards = sample(metrics_a, "wascc_lattice_shard_sent_total");
    assert!(sent_by_shards >= 5, "{sent_by_shards}");
    assert_eq!(
        scrape(metrics_a).get("wascc_lattice_resealed_total"),
        Some(&0)
    );
    // A host the state lists as running b but gone without a word (its
    // record stays until the TTL): the callers that pick it get no
    // responders at once and go on to the next host; no call fails.
    let (rt, state) = connect(&lattice);
    let ghost = nkeys::KeyPair::new_server().public_key();
    let mut record = rt
        .block_on(state.hosts())
        .unwrap()
        .into_iter()
        .find(|h| h.id == b_id)
        .unwrap();
    record.id = ghost.clone();
    record.exchange = None;
    rt.block_on(state.put_host(&record)).unwrap();
    let redirected = || sample(metrics_a, "wascc_lattice_redirected_total");
    let sent_on = |what: &str, past: u64| {
        wait_until(
            what,
            Duration::from_secs(10),
            Duration::from_millis(5),
            || {
                let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
                assert_eq!(r.json()["reply"], "ping", "{}", r.text());
                redirected() > past
            },
        )
    };
    sent_on("a call sent on past the gone host", 0);
    // The same host answering that it no longer serves b (it stopped b
    // and the news has not reached host A): the next host, again.
    let moved = vec![
        ("wascc-error", format!("host {ghost} does not serve it")),
        ("wascc-moved", "1".to_string()),
    ];
    let past = redirected();
    {
        let prefix = wascc_lattice::host_prefix(&lattice, &ghost);
        let _stopped = Impostor::answer(&format!("{prefix}>"), moved);
        sent_on("a call sent on past the host that moved", past);
    }
    rt.block_on(state.remove_host(&ghost)).unwrap();
    // An actor no host runs: a clear error, not a hang.
    let nobody = nkeys::KeyPair::new_module().public_key();
    let r = http(port, "POST", &format!("/call?{nobody}"), b"ping");
    let e = r.json()["error"].as_str().unwrap_or("").to_string();
    assert!(e.contains("no host of the lattice runs it"), "{}", r.text());
    // Something that takes its invocations and never answers: the caller
    // gets an error, not a hang (the call gives up at the calling actor's
    // 2 s deadline, before the 5 s reply timeout, and the actor, past its
    // deadline, is interrupted as it resumes); then calls go on as before.
    {
        let _silent = Impostor::silent(&wascc_lattice::actor_subject(&lattice, &nobody));
        let r = http(port, "POST", &format!("/call?{nobody}"), b"ping");
        assert!(r.text().contains("exceeded its deadline"), "{}", r.text());
    }
    let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
    assert_eq!(r.json()["reply"], "ping", "{}", r.text());
    // Something that is not a host answering on an actor's subject (any
    // NATS user of the lattice can subscribe): its replies are refused,
    // sealed or not.
    for seal in [
        None,
        Some(format!("{b_id} - -")),
        Some(format!("{b_id} AAAAAAAAAAAAAAAAAAAAAA -")),
    ] {
        let headers = seal.map(|s| vec![("wascc-reply", s)]).unwrap_or_default();
        let _impostor = Impostor::answer(&wascc_lattice::actor_subject(&lattice, &nobody), headers);
        let r = http(port, "POST", &format!("/call?{nobody}"), b"ping");
        let e = r.json()["error"].as_str().unwrap_or("").to_string();
        assert!(
            e.contains("the reply is not sealed by a host of the lattice")
                || e.contains("does not match it (forged or altered)"),
            "{}",
            r.text()
        );
    }

    // Seals of our own, sent straight to b's subject.
    let subject = wascc_lattice::actor_subject(&lattice, &kb.key);
    let sealer = Sealer::new(nkeys::KeyPair::new_server());
    let payload = vec![0xa1, b'x'];
    let inv = Invocation {
        lattice: &lattice,
        subject: &subject,
        operation: "Echo",
        payload: &payload,
        depth: 1,
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
    // The call depth travels signed: raised, it is refused as altered;
    // past the limit, the receiving host refuses to go deeper.
    let mut deeper = sealer.seal(&inv, wascc_lattice::now_millis());
    deeper.depth = 0;
    let deeper = send(payload.clone(), &deeper).unwrap_err();
    assert!(deeper.contains("forged or altered"), "{deeper}");
    let too_deep = sealer.seal(
        &Invocation {
            depth: wascc_runtime::limits::MAX_CALL_DEPTH + 1,
            ..inv
        },
        wascc_lattice::now_millis(),
    );
    let too_deep = send(payload.clone(), &too_deep).unwrap_err();
    assert!(
        too_deep.contains("exceeds the call depth limit of 16"),
        "{too_deep}"
    );
    // On host B's own subject, an actor it does not run: it says so, and
    // that it moved (a caller tries another host); no seal is checked.
    let elsewhere = wascc_lattice::actor_subject(&lattice, &ka.key);
    let moved = rt
        .block_on(state.client().request(
            wascc_lattice::host_subject(&lattice, &b_id, &elsewhere),
            payload.clone().into(),
        ))
        .unwrap();
    let h = moved.headers.unwrap();
    assert_eq!(
        h.get("wascc-error").map(|v| v.as_str()),
        Some(format!("host {b_id} does not serve {elsewhere}").as_str())
    );
    assert!(h.get("wascc-moved").is_some());
    // On its own subject for b, the same checks as on the actor's.
    let own = wascc_lattice::host_subject(&lattice, &b_id, &subject);
    let direct = |seal: &wascc_lattice::invocation::Seal| {
        rt.block_on(wascc_lattice::rpc::request_sealed(
            state.client(),
            &own,
            "MTEST",
            "Echo",
            payload.clone(),
            seal,
        ))
    };
    let seal = sealer.seal(&inv, wascc_lattice::now_millis());
    assert_eq!(direct(&seal), Ok(payload.clone()));
    let replayed = direct(&seal).unwrap_err();
    assert!(replayed.contains("already received"), "{replayed}");

    // MAC-tagged seals of our own: this test joins as a participant (its
    // exchange key in the state), tags for host B from its view.
    let me = rt
        .block_on(wascc_lattice::Participant::join(
            &state,
            nkeys::KeyPair::new_server(),
        ))
        .unwrap();
    // (The test's runtime runs the view's watch only while it is driven.)
    let drive = || rt.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    let mut accepted_seal = None;
    wait_until(
        "B checks our MAC tags",
        Duration::from_secs(10),
        Duration::from_millis(1),
        || {
            drive();
            let Some(seal) = tagged(&me, &subject, &inv) else {
                return false;
            };
            assert!(seal.signature.is_empty() && seal.tags.len() == 1);
            let route = me.directory.recipients(&subject).unwrap();
            let hosts: Vec<&str> = route.targets().iter().map(|t| t.host.as_str()).collect();
            assert_eq!(hosts, [b_id.as_str()]);
            match send(payload.clone(), &seal) {
                Ok(reply) => {
                    assert_eq!(reply, payload);
                    accepted_seal = Some(seal);
                    true
                }
                // B has not read our record yet.
                Err(e) if e.contains("no MAC tag") => false,
                Err(e) => panic!("{e}"),
            }
        },
    );
    let seal = accepted_seal.unwrap();
    let replayed = send(payload.clone(), &seal).unwrap_err();
    assert!(replayed.contains("already received"), "{replayed}");
    let fresh = tagged(&me, &subject, &inv).unwrap();
    let altered = send(vec![0xa1, b'y'], &fresh).unwrap_err();
    assert!(altered.contains("no MAC tag from host"), "{altered}");
    // Another lattice member cannot speak for us: its tags are its own.
    let other = rt
        .block_on(wascc_lattice::Participant::join(
            &state,
            nkeys::KeyPair::new_server(),
        ))
        .unwrap();
    let mut forged = None;
    wait_until(
        "a route with keys",
        Duration::from_secs(10),
        Duration::from_millis(1),
        || {
            drive();
            forged = tagged(&other, &subject, &inv);
            forged.is_some()
        },
    );
    let mut forged = forged.unwrap();
    forged.origin = me.sealer.origin().to_string();
    let forged = send(payload.clone(), &forged).unwrap_err();
    assert!(forged.contains("no MAC tag from host"), "{forged}");
    // Ours still pass.
    assert_eq!(send(payload.clone(), &fresh), Ok(payload.clone()));
}

/// A seal by `who` with MAC tags for the hosts serving `subject`, if its
/// view has keys for every one.
fn tagged(
    who: &wascc_lattice::Participant,
    subject: &str,
    inv: &wascc_lattice::invocation::Invocation<'_>,
) -> Option<wascc_lattice::invocation::Seal> {
    let route = who.directory.recipients(subject)?;
    let keys: Option<Vec<_>> = route.targets().iter().map(|t| t.peer.clone()).collect();
    Some(
        who.sealer
            .seal_for(inv, wascc_lattice::now_millis(), &keys?),
    )
}

#[test]
fn control_commands_set_labels_and_stop_a_host_with_events() {
    use wascc_lattice::control::{self, LabelRequest};
    let lattice = format!("it{}", rand::random::<u32>());
    let mut events = Events::watch(&lattice);
    let host = echo_host(&lattice, "a");
    let started = events.next(None);
    assert_eq!(started.kind, "com.wascc.lattice.host_started");
    assert_eq!(started.specversion, "1.0");
    let id = started.source.trim_start_matches("wascc/host/").to_string();
    let (rt, state) = connect(&lattice);
    let mut next_event = || events.next(None);

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
    // Something that is not that host answering on its control subjects
    // (any NATS user can subscribe): its replies are refused, unsigned or
    // with a made-up signature.
    let fake = nkeys::KeyPair::new_server().public_key();
    let subject = control::control_subject(&lattice, &fake, ">");
    let stolen = format!("{fake} AAAA");
    for headers in [vec![], vec![("wascc-control-reply", stolen)]] {
        let _impostor = Impostor::answer(&subject, headers);
        let e = rt
            .block_on(control::request(
                &state,
                &fake,
                "stop",
                &serde_json::json!({}),
            ))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("the reply is not signed by host {fake}")),
            "{e}"
        );
    }

    // Stop: the host drains, leaves and exits cleanly.
    assert!(cmd("stop", &serde_json::json!({})).ok);
    assert_eq!(next_event().kind, "com.wascc.lattice.host_stopped");
    let (code, log) = host.wait_exit();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("stop requested through the lattice"), "{log}");
    assert!(rt.block_on(state.hosts()).unwrap().is_empty());
}

#[test]
fn a_host_can_require_signed_control_requests() {
    use wascc_lattice::control::{self, LabelRequest};
    let lattice = format!("it{}", rand::random::<u32>());
    let operator = nkeys::KeyPair::new_user();
    let work = Workdir::new();
    let manifest = format!("actors: [{}]\n", fixture("echo.wasm").display());
    let host = lattice_host_with(
        NATS,
        &lattice,
        work,
        &manifest,
        &["--control-key", &operator.public_key()],
    );
    let id = host_id(&host);
    let signed_by = |seed: Option<String>| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = LatticeOptions {
            url: NATS.into(),
            lattice: lattice.clone(),
            credentials: None,
            tls_ca: None,
            nkey_seed: None,
            control_seed: seed,
        };
        let state = rt.block_on(Lattice::connect(&opts)).unwrap();
        (rt, state)
    };
    let label = LabelRequest {
        key: "zone".into(),
        value: Some("a".into()),
    };
    let put = |(rt, state): &(tokio::runtime::Runtime, Lattice)| {
        rt.block_on(control::request(state, &id, "label.put", &label))
            .unwrap()
    };
    let unsigned = put(&signed_by(None));
    assert!(!unsigned.ok);
    let e = unsigned.error.unwrap_or_default();
    assert!(e.contains("accepts only signed control requests"), "{e}");
    let stranger = put(&signed_by(Some(nkeys::KeyPair::new_user().seed().unwrap())));
    let e = stranger.error.unwrap_or_default();
    assert!(e.contains("may not control this host"), "{e}");
    assert!(!hosts(&lattice)[0].labels.contains_key("zone"));
    let ours = signed_by(Some(operator.seed().unwrap()));
    let reply = put(&ours);
    assert!(reply.ok, "{:?}", reply.error);
    assert_eq!(hosts(&lattice)[0].labels["zone"], "a");
    // The same signed request sent twice: the second is a replay.
    let (rt, state) = &ours;
    let subject = format!("{}.{id}.label.del", wascc_lattice::control_prefix(&lattice));
    let body = br#"{"key":"zone"}"#.to_vec();
    let seal = control::sign_control(
        &operator,
        &lattice,
        &subject,
        &body,
        wascc_lattice::now_millis(),
    );
    let send = || {
        let mut h = async_nats::HeaderMap::new();
        h.insert("wascc-control-seal", seal.as_str());
        let msg = rt
            .block_on(
                state
                    .client()
                    .request_with_headers(subject.clone(), h, body.clone().into()),
            )
            .unwrap();
        serde_json::from_slice::<control::ControlReply>(&msg.payload).unwrap()
    };
    assert!(send().ok);
    let replayed = send();
    let e = replayed.error.unwrap_or_default();
    assert!(e.contains("replay"), "{e}");
    let log = host.log();
    assert!(
        log.contains("may not control this host"),
        "refusals are logged: {log}"
    );
}

/// The host's key, from its "joined the lattice" log line.
fn host_id(host: &HostProc) -> String {
    let line = host.wait_log("joined the lattice");
    let line = line
        .lines()
        .find(|l| l.contains("joined the lattice"))
        .unwrap()
        .to_string();
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("host="))
        .unwrap_or_else(|| panic!("no host= in {line}"))
        .to_string()
}

/// A host in `lattice` running only what `manifest` says, on one shard.
fn lattice_host(lattice: &str, work: Workdir, manifest: &str) -> HostProc {
    lattice_host_at(NATS, lattice, work, manifest)
}

fn lattice_host_at(url: &str, lattice: &str, work: Workdir, manifest: &str) -> HostProc {
    lattice_host_with(url, lattice, work, manifest, &[])
}

/// A one-shard lattice host with `more` arguments.
fn lattice_host_with(
    url: &str,
    lattice: &str,
    work: Workdir,
    manifest: &str,
    more: &[&str],
) -> HostProc {
    let mut args = vec!["--nats", url, "--lattice", lattice, "--shards", "1"];
    args.extend_from_slice(more);
    HostProc::start(work, manifest, &args)
}

/// A host serving a kitchen actor on HTTP (`/call?KEY` calls actor KEY).
fn kitchen_host(lattice: &str, kitchen: &wascc_bench::SignedActor) -> (HostProc, u16) {
    kitchen_host_at(NATS, lattice, kitchen)
}

fn kitchen_host_at(
    url: &str,
    lattice: &str,
    kitchen: &wascc_bench::SignedActor,
) -> (HostProc, u16) {
    kitchen_host_with(url, lattice, kitchen, &[])
}

/// [`kitchen_host_at`] with `more` arguments.
fn kitchen_host_with(
    url: &str,
    lattice: &str,
    kitchen: &wascc_bench::SignedActor,
    more: &[&str],
) -> (HostProc, u16) {
    let work = Workdir::new();
    let port = free_port();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        work.write("kitchen.wasm", &kitchen.wasm).display(),
        kitchen.key
    );
    (lattice_host_with(url, lattice, work, &manifest, more), port)
}

/// Calls actor `key` through the kitchen on `port` (each call must
/// succeed) until the host whose metrics are on `metrics` has taken one on
/// a shard's own connection: once the caller's view lists that host; before,
/// calls take the actor's queue group, which its services thread serves.
fn call_until_a_shard_takes_it(port: u16, key: &str, metrics: u16) {
    wait_until(
        "a call taken by the other host's shard",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            assert_eq!(call_through(port, key).unwrap(), "ping");
            sample(metrics, "wascc_lattice_shard_received_total") > 0
        },
    );
}

/// What actor `key`'s `/call` answered: its reply, or its error (the
/// kitchen's, or the host's when the kitchen itself failed).
fn call_through(port: u16, key: &str) -> Result<String, String> {
    let r = http(port, "POST", &format!("/call?{key}"), b"ping");
    if r.status != 200 {
        return Err(r.text());
    }
    let v = r.json();
    match v["reply"].as_str() {
        Some(reply) => Ok(reply.to_string()),
        None => Err(v["error"].as_str().unwrap_or(&r.text()).to_string()),
    }
}

#[test]
fn control_commands_start_and_stop_actors_and_providers_bind_and_list_inventory() {
    let lattice = format!("it{}", rand::random::<u32>());
    let mut events = Events::watch(&lattice);
    let mut next_event = |kind: &str| events.next(Some(kind));
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:keyvalue"], &account);
    let b = lattice_host(&lattice, Workdir::new(), "actors: []\n");
    let b_id = host_id(&b);
    let (_a, port) = kitchen_host(&lattice, &ka);
    let e = call_through(port, &kb.key).unwrap_err();
    assert!(e.contains("no host of the lattice runs it"), "{e}");

    let (rt2, state2) = connect(&lattice);
    let cmd = |command: &str, body: serde_json::Value| {
        rt2.block_on(wascc_lattice::control::request(
            &state2, &b_id, command, &body,
        ))
        .unwrap()
    };
    // Start: the module travels in the request.
    let module = data_encoding::BASE64.encode(&kb.wasm);
    let started = cmd("actor.start", serde_json::json!({ "module": module }));
    assert!(started.ok, "{started:?}");
    let data = started.data.unwrap();
    assert_eq!(data["key"], kb.key.as_str());
    assert_eq!(data["caps"], serde_json::json!(["wascc:keyvalue"]));
    assert_eq!(next_event("actor_started").data["key"], kb.key.as_str());
    let record = rt2.block_on(state2.hosts()).unwrap();
    let on_b = record.iter().find(|h| h.id == b_id).unwrap();
    assert_eq!(on_b.actors.len(), 1, "the record says so at once");
    assert_eq!(on_b.actors[0].account, account.public_key());
    // …and the lattice reaches it.
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");
    let again = cmd("actor.start", serde_json::json!({ "module": module }));
    assert!(
        again.error.unwrap().contains("already runs on this host"),
        "a second start is refused"
    );

    // Providers and bindings.
    let p = cmd(
        "provider.start",
        serde_json::json!({"capability": "wascc:keyvalue"}),
    );
    assert!(p.ok, "{p:?}");
    assert_eq!(
        next_event("provider_started").data["capability"],
        "wascc:keyvalue"
    );
    let bind =
        serde_json::json!({"actor": kb.key, "capability": "wascc:keyvalue", "binding": "cache"});
    assert!(cmd("binding.put", bind.clone()).ok);
    assert_eq!(next_event("binding_set").data["binding"], "cache");
    let denied = cmd(
        "binding.put",
        serde_json::json!({"actor": kb.key, "capability": "wascc:messaging"}),
    );
    assert!(
        denied
            .error
            .unwrap()
            .contains("claims do not list capability wascc:messaging")
    );
    let inv = cmd("inventory", serde_json::json!({}));
    let inv: wascc_lattice::HostRecord = serde_json::from_value(inv.data.unwrap()).unwrap();
    assert_eq!(inv.id, b_id);
    assert_eq!(inv.actors[0].key, kb.key);
    assert!(
        inv.providers
            .iter()
            .any(|p| p.capability == "wascc:keyvalue")
    );
    assert_eq!(inv.bindings.len(), 1);
    assert_eq!(inv.bindings[0].binding, "cache");
    assert!(cmd("binding.del", bind.clone()).ok);
    assert_eq!(next_event("binding_removed").data["actor"], kb.key.as_str());
    let gone = cmd("binding.del", bind);
    assert!(gone.error.unwrap().contains("has no binding \"cache\""));
    assert!(
        cmd(
            "provider.stop",
            serde_json::json!({"capability": "wascc:keyvalue"})
        )
        .ok
    );
    assert_eq!(
        next_event("provider_stopped").data["capability"],
        "wascc:keyvalue"
    );

    // Stop: gone from the lattice at once.
    assert!(cmd("actor.stop", serde_json::json!({"key": kb.key})).ok);
    assert_eq!(next_event("actor_stopped").data["key"], kb.key.as_str());
    let e = call_through(port, &kb.key).unwrap_err();
    assert!(e.contains("no host of the lattice runs it"), "{e}");
    let twice = cmd("actor.stop", serde_json::json!({"key": kb.key}));
    assert!(twice.error.unwrap().contains("does not run on this host"));
    // …and it can start again.
    assert!(cmd("actor.start", serde_json::json!({ "module": module })).ok);
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");

    // Bad requests are named and change nothing.
    let junk = cmd(
        "actor.start",
        serde_json::json!({"module": data_encoding::BASE64.encode(b"nope")}),
    );
    assert!(
        junk.error.unwrap().contains("module sent in the request"),
        "names the module"
    );
    let neither = cmd("actor.start", serde_json::json!({}));
    assert!(
        neither
            .error
            .unwrap()
            .contains("give exactly one of module")
    );
    let typo = cmd("actor.start", serde_json::json!({"modul": "x"}));
    assert!(typo.error.unwrap().contains("unknown field `modul`"));
    let missing = cmd(
        "actor.start",
        serde_json::json!({"path": "/nonexistent.wasm"}),
    );
    assert!(
        missing
            .error
            .unwrap()
            .contains("/nonexistent.wasm on this host: cannot read")
    );
    let inv = cmd("inventory", serde_json::json!({}));
    let inv: wascc_lattice::HostRecord = serde_json::from_value(inv.data.unwrap()).unwrap();
    assert_eq!(inv.actors.len(), 1, "{inv:?}");
    drop(b);
}

#[test]
fn the_block_list_stops_and_refuses_a_key_on_every_host_and_persists() {
    let lattice = format!("it{}", rand::random::<u32>());
    let mut events = Events::watch(&lattice);
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let work_b = Workdir::new();
    let b_manifest = format!("actors: [{}]\n", work_b.write("b.wasm", &kb.wasm).display());
    let b = lattice_host(&lattice, work_b, &b_manifest);
    let b_id = host_id(&b);
    let (_a, port) = kitchen_host(&lattice, &ka);
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");

    let (rt, state) = connect(&lattice);
    let entry = wascc_lattice::blocklist::BlockEntry::new(&kb.key, Some("test".into())).unwrap();
    let blocked_at = Instant::now();
    rt.block_on(state.block(&entry)).unwrap();
    // Refused from host A (the call) and stopped on host B. The wait bound
    // is generous: it tests that the block arrives, the benchmark how fast.
    // Until host A has the block, its call may find no host running the
    // actor (host B stopped it first): refused either way.
    let mut first_refusal = None;
    loop {
        match call_through(port, &kb.key) {
            Err(e) if e.contains("is blocked in the lattice") => break,
            Err(e) => {
                assert!(e.contains("no host of the lattice runs it"), "{e}");
                first_refusal.get_or_insert(blocked_at.elapsed());
            }
            Ok(_) => {}
        }
        assert!(
            blocked_at.elapsed() < Duration::from_secs(10),
            "block not applied"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!(
        "block took effect after {:?} (first refusal {first_refusal:?})",
        blocked_at.elapsed()
    );
    b.wait_log("blocked in the lattice: stopping");
    b.wait_log("actor stopped");
    // Announced as a command's stop is, with the key that was blocked.
    let stopped = events.next(Some("actor_stopped"));
    assert_eq!(stopped.data["key"], kb.key.as_str());
    assert_eq!(stopped.data["blocked"], kb.key.as_str());
    let listed = rt.block_on(state.blocked()).unwrap();
    assert_eq!(listed, vec![entry.clone()]);

    // A start is refused, on any host, also one that joins later.
    let cmd = |host: &str, command: &str, body: serde_json::Value| {
        rt.block_on(wascc_lattice::control::request(
            &state, host, command, &body,
        ))
        .unwrap()
    };
    let module = data_encoding::BASE64.encode(&kb.wasm);
    let refused = cmd(
        &b_id,
        "actor.start",
        serde_json::json!({ "module": module }),
    );
    assert!(refused.error.unwrap().contains("is blocked in the lattice"));
    let work_c = Workdir::new();
    let c_manifest = format!("actors: [{}]\n", work_c.write("b.wasm", &kb.wasm).display());
    let c = lattice_host(&lattice, work_c, &c_manifest);
    let c_id = host_id(&c);
    c.wait_log("actor stopped");
    let inv = cmd(&c_id, "inventory", serde_json::json!({}));
    assert_eq!(inv.data.unwrap()["actors"], serde_json::json!([]));

    // Lifted: it starts and serves again.
    rt.block_on(state.unblock(&kb.key)).unwrap();
    let e = rt.block_on(state.unblock(&kb.key)).unwrap_err();
    assert!(e.to_string().contains("is not blocked"), "{e}");
    let started = loop {
        let r = cmd(
            &b_id,
            "actor.start",
            serde_json::json!({ "module": module }),
        );
        if r.ok || blocked_at.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(started.ok, "{started:?}");
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");

    // An account: every actor and provider module it signed stops, the
    // calling actor included.
    let memkv = wascc_bench::signed_provider("memkv", &account);
    let p = cmd(
        &b_id,
        "provider.start",
        serde_json::json!({"module": data_encoding::BASE64.encode(&memkv.wasm)}),
    );
    assert!(p.ok, "{p:?}");
    let acct = wascc_lattice::blocklist::BlockEntry::new(&account.public_key(), None).unwrap();
    rt.block_on(state.block(&acct)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http(port, "POST", &format!("/call?{}", kb.key), b"ping");
        if r.status == 503 {
            // Host A no longer runs the kitchen (nor does any other host).
            assert!(
                r.text().contains("no host of the lattice runs it"),
                "{}",
                r.text()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "account block not applied: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    b.wait_log("provider stopped");
    let inv = cmd(&b_id, "inventory", serde_json::json!({}));
    assert_eq!(inv.data.unwrap()["providers"], serde_json::json!([]));
    // …and a module it signed does not start.
    let p = cmd(
        &b_id,
        "provider.start",
        serde_json::json!({"module": data_encoding::BASE64.encode(&memkv.wasm)}),
    );
    assert!(p.error.unwrap().contains("is blocked in the lattice"));
    rt.block_on(state.unblock(&account.public_key())).unwrap();
    // Bad keys are refused by name.
    let e = wascc_lattice::blocklist::BlockEntry::new("MNOTAKEY", None).unwrap_err();
    assert!(e.to_string().contains("not a public key"), "{e}");
    drop(c);
}

#[test]
fn http_and_providers_on_one_host_serve_actors_on_another_both_ways() {
    let lattice = format!("it{}", rand::random::<u32>());
    let account = nkeys::KeyPair::new_account();
    let kitchen = wascc_bench::signed_actor(
        "kitchen",
        &["wascc:http_server", "wascc:keyvalue"],
        &account,
    );
    // Host A runs the actors (the 0.x kvcounter, unmodified, and a kitchen)
    // with no provider; host B runs the HTTP server and key-value.
    let work_a = Workdir::new();
    let a_manifest = format!(
        "actors: [{}, {}]\n",
        fixture("kvcounter.wasm").display(),
        work_a.write("kitchen.wasm", &kitchen.wasm).display()
    );
    let metrics_a = free_port();
    let _a = lattice_host_with(
        NATS,
        &lattice,
        work_a,
        &a_manifest,
        &["--metrics", &format!("127.0.0.1:{metrics_a}")],
    );
    let metrics_b = free_port();
    let b = lattice_host_with(
        NATS,
        &lattice,
        Workdir::new(),
        "capabilities: [{id: wascc:http_server}, {id: wascc:keyvalue}]\n",
        &["--metrics", &format!("127.0.0.1:{metrics_b}")],
    );
    let b_id = host_id(&b);
    let (rt, state) = connect(&lattice);
    let cmd = |command: &str, body: serde_json::Value| {
        let r = rt
            .block_on(wascc_lattice::control::request(
                &state, &b_id, command, &body,
            ))
            .unwrap();
        assert!(r.ok, "{command} {body}: {r:?}");
    };
    let (kv_port, k_port) = (free_port(), free_port());
    for (actor, port) in [(KVCOUNTER_KEY, kv_port), (kitchen.key.as_str(), k_port)] {
        cmd(
            "binding.put",
            serde_json::json!({"actor": actor, "capability": "wascc:http_server",
                "values": {"PORT": port.to_string(), "ADDR": "127.0.0.1"}}),
        );
        cmd(
            "binding.put",
            serde_json::json!({"actor": actor, "capability": "wascc:keyvalue"}),
        );
    }
    // HTTP on B → kvcounter on A → key-value on B, and back: the 0.x
    // actor's codec shape is kept on both legs. B's shards send the
    // requests to A on their own connections.
    let path = format!("/cross-{}", rand::random::<u32>());
    let b_sent = sample(metrics_b, "wascc_lattice_shard_sent_total");
    assert_eq!(get(kv_port, &path).json()["counter"], 1);
    assert_eq!(get(kv_port, &path).json()["counter"], 2);
    assert!(sample(metrics_b, "wascc_lattice_shard_sent_total") >= b_sent + 2);
    // Every key-value operation through the lattice, for our own SDK's
    // shape, each sent by A's shard on its own connection.
    let sent_by_shard = || sample(metrics_a, "wascc_lattice_shard_sent_total");
    let before = sent_by_shard();
    let r = get(k_port, "/kv");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        sent_by_shard() >= before + 15,
        "{} then {}",
        before,
        sent_by_shard()
    );
    assert_eq!(
        r.json(),
        serde_json::json!({
            "get": "v1", "exists": true, "after_del": null,
            "add": [5, 3], "pushed": [1, 2, 3], "range": ["a", "b", "c"], "after_list_del": 2,
            "tail": ["c"], "cleared": [], "set_added": [1, 1, 0], "set_removed": 1,
            "members": ["x", "y"], "union": ["w", "x", "y"], "intersect": ["y"],
        })
    );
    // The inventory shows B's bindings of A's actors.
    let inv = rt
        .block_on(wascc_lattice::control::request(
            &state,
            &b_id,
            "inventory",
            &serde_json::json!({}),
        ))
        .unwrap();
    let inv: wascc_lattice::HostRecord = serde_json::from_value(inv.data.unwrap()).unwrap();
    assert_eq!(inv.bindings.len(), 4, "{inv:?}");
    assert!(inv.actors.is_empty());

    // Unbound on B: the actor's call is refused by name, as on one host.
    cmd(
        "binding.del",
        serde_json::json!({"actor": kitchen.key, "capability": "wascc:keyvalue"}),
    );
    let r = get(k_port, "/kv");
    assert!(
        r.text()
            .contains("has no binding \"default\" to capability wascc:keyvalue on any host"),
        "{}",
        r.text()
    );
    // An actor no host runs cannot be bound.
    let nobody = nkeys::KeyPair::new_module().public_key();
    let r = rt
        .block_on(wascc_lattice::control::request(
            &state,
            &b_id,
            "binding.put",
            &serde_json::json!({"actor": nobody, "capability": "wascc:keyvalue"}),
        ))
        .unwrap();
    assert!(r.error.unwrap().contains("runs on no host of the lattice"));
    // Unbinding the HTTP server closes its listener (each shard closes
    // its own at its next look at the table).
    cmd(
        "binding.del",
        serde_json::json!({"actor": KVCOUNTER_KEY, "capability": "wascc:http_server"}),
    );
    wait_until(
        "the listener closes after unbinding",
        Duration::from_secs(10),
        Duration::from_millis(10),
        || std::net::TcpStream::connect(("127.0.0.1", kv_port)).is_err(),
    );
}

#[test]
fn hosts_ride_out_a_nats_server_restart() {
    let mut nats = OwnNats::start(&[]);
    let url = nats.url();
    let lattice = "faults";
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let work_b = Workdir::new();
    let b_manifest = format!("actors: [{}]\n", work_b.write("b.wasm", &kb.wasm).display());
    let b = lattice_host_at(&url, lattice, work_b, &b_manifest);
    let b_id = host_id(&b);
    let (a, port) = kitchen_host_at(&url, lattice, &ka);
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");

    nats.kill();
    // A call during the outage gets a clear error, not silence.
    let asked = Instant::now();
    let e = call_through(port, &kb.key).unwrap_err();
    eprintln!("during the outage, after {:?}: {e}", asked.elapsed());
    // At once when the host has seen the connection drop; else when the
    // calling actor's own deadline ends its wait.
    assert!(
        e.contains("the lattice's NATS server is unreachable")
            || e.contains("exceeded its deadline"),
        "{e}"
    );

    nats.restart();
    let limit = Duration::from_secs(30);
    let took = wait_until(
        "serving again after the restart",
        limit,
        Duration::from_millis(20),
        || call_through(port, &kb.key).is_ok(),
    );
    eprintln!("serving again {took:?} after the restart");
    // The state, lost with the server's memory, is written again.
    let (rt, state) = connect_to(&url, lattice);
    let listed = |rt: &tokio::runtime::Runtime, state: &Lattice| {
        rt.block_on(state.hosts()).map(|h| h.len()).unwrap_or(0) == 2
    };
    let took = wait_until(
        "both hosts back in the state",
        limit,
        Duration::from_millis(50),
        || listed(&rt, &state),
    );
    eprintln!("both hosts listed {:?} later", took);
    // Control still reaches host B.
    let inv = rt
        .block_on(wascc_lattice::control::request(
            &state,
            &b_id,
            "inventory",
            &serde_json::json!({}),
        ))
        .unwrap();
    assert!(inv.ok, "{inv:?}");
    // The block list still reaches both hosts (their watches of it are
    // made again when the server is back).
    let entry = wascc_lattice::blocklist::BlockEntry::new(&kb.key, None).unwrap();
    rt.block_on(state.block(&entry)).unwrap();
    let took = wait_until(
        "the block applied",
        limit,
        Duration::from_millis(20),
        || call_through(port, &kb.key).is_err(),
    );
    eprintln!("block applied {took:?} after it was written");
    b.wait_log("actor stopped");

    // A server replaced by one with an empty store: the hosts write the
    // lattice state again, buckets included.
    // (Nothing of the test's connects before: it would make the buckets.)
    drop(state);
    drop(rt);
    nats.replace();
    // One of the hosts makes the buckets again (whichever beats first).
    let restored = "host record written again (the lattice state was restored)";
    wait_until(
        "the state restored",
        limit,
        Duration::from_millis(20),
        || a.log().contains(restored) || b.log().contains(restored),
    );
    let (rt, state) = connect_to(&url, lattice);
    wait_until("both hosts back", limit, Duration::from_millis(50), || {
        listed(&rt, &state)
    });
    drop(b);
}

#[test]
fn a_lattice_can_require_nats_credentials_and_trust_only_named_hosts() {
    // A NATS server that admits one user, by nkey.
    let user = nkeys::KeyPair::new_user();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("auth.conf");
    std::fs::write(
        &conf,
        format!(
            "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let nats = OwnNats::start(&["-c", conf.to_str().unwrap()]);
    let url = nats.url();
    let seed_file = conf_dir.path().join("user.nk");
    std::fs::write(&seed_file, user.seed().unwrap()).unwrap();
    let seed_file = seed_file.to_str().unwrap();

    // Without the credential: refused, named.
    let work = Workdir::new();
    let (code, log) = host_fails(&work, "actors: []\n", &["--nats", &url]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("cannot connect to NATS at {url}")) && log.contains("uthorization"),
        "{log}"
    );
    let wrong = nkeys::KeyPair::new_server().seed().unwrap();
    let (_, log) = host_fails(
        &work,
        "actors: []\n",
        &["--nats", &url, "--nats-nkey", &wrong],
    );
    assert!(log.contains("not a user seed"), "{log}");

    // Host A has a stable key; host B trusts only it.
    let a_key = nkeys::KeyPair::new_server();
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kc = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let start = |actor: &wascc_bench::SignedActor, extra: &[&str]| {
        let work = Workdir::new();
        let port = free_port();
        let manifest = format!(
            "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
            work.write("k.wasm", &actor.wasm).display(),
            actor.key
        );
        let mut args = vec!["--nats", &url, "--nats-nkey", seed_file, "--shards", "1"];
        args.extend_from_slice(extra);
        (HostProc::start(work, &manifest, &args), port)
    };
    let a_seed = a_key.seed().unwrap();
    let a_public = a_key.public_key();
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let (ma, mb) = (
        format!("127.0.0.1:{metrics_a}"),
        format!("127.0.0.1:{metrics_b}"),
    );
    let (a, a_port) = start(&ka, &["--host-seed", &a_seed, "--metrics", &ma]);
    assert_eq!(host_id(&a), a_public, "the host key comes from its seed");
    let (b, _) = start(&kb, &["--trusted-host", &a_public, "--metrics", &mb]);
    let (_c, c_port) = start(&kc, &[]);
    assert_eq!(call_through(a_port, &kb.key).unwrap(), "ping");
    // The shards' own connections authenticate with the nkey too (they sign
    // the server's nonce): A's shard sent the call, B's shard took it.
    call_until_a_shard_takes_it(a_port, &kb.key, metrics_b);
    assert!(sample(metrics_a, "wascc_lattice_shard_sent_total") > 0);
    let e = call_through(c_port, &kb.key).unwrap_err();
    assert!(e.contains("is not trusted"), "{e}");
    b.wait_log("is not trusted");
    // The names are checked.
    let (_, log) = host_fails(
        &Workdir::new(),
        "actors: []\n",
        &["--nats", &url, "--trusted-host", &account.public_key()],
    );
    assert!(log.contains("is not a host (server) public key"), "{log}");
}

/// A JWT as nats-server checks it: `claims` (with `iss`, `sub`, `iat` and
/// `jti` filled in) signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, mut claims: serde_json::Value) -> String {
    let b64 = |b: &[u8]| data_encoding::BASE64URL_NOPAD.encode(b);
    claims["iss"] = issuer.public_key().into();
    claims["sub"] = subject.into();
    claims["iat"] = (wascc_lattice::now_millis() / 1000).into();
    claims["jti"] = format!("{:032X}", rand::random::<u128>()).into();
    let signed = format!(
        "{}.{}",
        b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
        b64(claims.to_string().as_bytes())
    );
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&signature))
}

/// A NATS server in operator mode trusting one account with JetStream, and
/// a credentials file for a user of that account and one of an account it
/// does not know.
struct OperatorNats {
    nats: OwnNats,
    creds: std::path::PathBuf,
    stranger: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl OperatorNats {
    fn start() -> OperatorNats {
        use serde_json::json;
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        let unknown = nkeys::KeyPair::new_account();
        // JetStream needs a system account.
        let system = nkeys::KeyPair::new_account();
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            json!({"name": "SYS", "nats": {"type": "account", "version": 2}}),
        );
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            json!({"name": "wascc-it", "nats": {"type": "operator", "version": 2}}),
        );
        let unlimited = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
        });
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            json!({"name": "lattice", "nats": {"limits": unlimited, "type": "account", "version": 2}}),
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("operator.conf");
        std::fs::write(
            &conf,
            format!(
                "operator: {operator_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
                 resolver_preload: {{\n  {sys}: {system_jwt}\n  {}: {account_jwt}\n}}\n",
                account.public_key(),
                sys = system.public_key(),
            ),
        )
        .unwrap();
        let creds_of = |issuer: &nkeys::KeyPair, name: &str| {
            let user = nkeys::KeyPair::new_user();
            let user_jwt = jwt(
                issuer,
                &user.public_key(),
                json!({"name": name, "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}}),
            );
            let path = dir.path().join(format!("{name}.creds"));
            std::fs::write(
                &path,
                format!(
                    "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                     ************************* IMPORTANT *************************\n\
                     NKEY Seed printed below can be used to sign and prove identity.\n\n\
                     -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                    user.seed().unwrap()
                ),
            )
            .unwrap();
            path
        };
        let creds = creds_of(&account, "host");
        let stranger = creds_of(&unknown, "stranger");
        let nats = OwnNats::start(&["-c", conf.to_str().unwrap()]);
        OperatorNats {
            nats,
            creds,
            stranger,
            _dir: dir,
        }
    }
}

/// Two hosts of a lattice (see [`kitchens_across`]).
struct Across {
    _a: HostProc,
    _b: HostProc,
    port: u16,
    b_key: String,
    metrics_a: u16,
    metrics_b: u16,
}

/// Two one-shard hosts of `lattice` at `url`, each given `auth` (arguments
/// to reach the server): B runs a kitchen alone, A serves another on HTTP
/// (`port`), through which it calls B's (`b_key`); each serves metrics.
fn kitchens_across(url: &str, lattice: &str, auth: &[&str]) -> Across {
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let (metrics_a, metrics_b) = (free_port(), free_port());
    let with_metrics = |port: u16| {
        let mut args: Vec<String> = auth.iter().map(|a| a.to_string()).collect();
        args.extend(["--metrics".to_string(), format!("127.0.0.1:{port}")]);
        args
    };
    let work = Workdir::new();
    let manifest = format!("actors: [{}]\n", work.write("k.wasm", &kb.wasm).display());
    let more = with_metrics(metrics_b);
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    let b = lattice_host_with(url, lattice, work, &manifest, &more);
    let more = with_metrics(metrics_a);
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    let (a, port) = kitchen_host_with(url, lattice, &ka, &more);
    Across {
        _a: a,
        _b: b,
        port,
        b_key: kb.key,
        metrics_a,
        metrics_b,
    }
}

/// How many hosts the lattice state lists to a client connected with
/// `opts`.
fn hosts_listed(opts: LatticeOptions) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = rt.block_on(Lattice::connect(&opts)).unwrap();
    rt.block_on(state.hosts()).unwrap().len()
}

/// Refused at connect, with the reason in the log.
fn refused_with(log: &str, url: &str, reason: &str) -> bool {
    log.contains(&format!("cannot connect to NATS at {url}")) && log.contains(reason)
}

#[test]
fn hosts_join_a_lattice_on_an_operator_mode_server_with_a_credentials_file() {
    let server = OperatorNats::start();
    let url = server.nats.url();
    let creds = server.creds.to_str().unwrap();
    let lattice = format!("it{}", rand::random::<u32>());

    // Refused without credentials, and with a user of an account the
    // server does not know; each says so.
    let stranger = server.stranger.to_str().unwrap();
    for auth in [&[][..], &["--nats-creds", stranger][..]] {
        let mut args = vec!["--nats", url.as_str()];
        args.extend_from_slice(auth);
        let (code, log) = host_fails(&Workdir::new(), "actors: []\n", &args);
        assert_eq!(code, 1, "{log}");
        assert!(refused_with(&log, &url, "uthorization"), "{log}");
    }

    // With the credentials file the calls go shard to shard, each shard on
    // a connection of its own that presents the user JWT and signs the
    // server's nonce.
    let across = kitchens_across(&url, &lattice, &["--nats-creds", creds]);
    call_until_a_shard_takes_it(across.port, &across.b_key, across.metrics_b);
    assert!(sample(across.metrics_a, "wascc_lattice_shard_sent_total") > 0);
    // The state (JetStream KV under the account) lists both hosts to a
    // client with the same credentials.
    let listed = hosts_listed(LatticeOptions {
        url: url.clone(),
        lattice: lattice.clone(),
        credentials: Some(server.creds.clone()),
        ..Default::default()
    });
    assert_eq!(listed, 2);
}

/// A private CA and a certificate it signs for 127.0.0.1 (openssl), in `dir`:
/// the paths of the CA's certificate, the server's certificate and its key.
fn private_ca(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=wascc test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    ["ca.pem", "server.pem", "server.key"].map(|f| dir.join(f))
}

#[test]
fn hosts_join_a_lattice_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = private_ca(dir.path());
    let nats = OwnNats::start(&[
        "--tls",
        "--tlscert",
        cert.to_str().unwrap(),
        "--tlskey",
        key.to_str().unwrap(),
    ]);
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let ca = ca.to_str().unwrap();
    let lattice = format!("it{}", rand::random::<u32>());

    // Without the CA the server's certificate is not trusted: refused, and
    // the error says why; a CA file without a certificate is named.
    let (code, log) = host_fails(&Workdir::new(), "actors: []\n", &["--nats", &url]);
    assert_eq!(code, 1, "{log}");
    let untrusted = "IO error: invalid peer certificate: UnknownIssuer";
    assert!(refused_with(&log, &url, untrusted), "{log}");
    let not_a_ca = ["--nats", &url, "--nats-tls-ca", key.to_str().unwrap()];
    let (code, log) = host_fails(&Workdir::new(), "actors: []\n", &not_a_ca);
    assert_eq!(code, 1, "{log}");
    assert!(
        refused_with(&log, &url, "no PEM certificate in it"),
        "{log}"
    );

    // With it the calls go shard to shard, each shard on a TLS connection
    // of its own that trusts the CA.
    let across = kitchens_across(&url, &lattice, &["--nats-tls-ca", ca]);
    call_until_a_shard_takes_it(across.port, &across.b_key, across.metrics_b);
    let (received, sent) = (
        sample(across.metrics_b, "wascc_lattice_shard_received_total"),
        sample(across.metrics_a, "wascc_lattice_shard_sent_total"),
    );
    for _ in 0..20 {
        assert_eq!(call_through(across.port, &across.b_key).unwrap(), "ping");
    }
    assert_eq!(
        sample(across.metrics_b, "wascc_lattice_shard_received_total"),
        received + 20
    );
    assert_eq!(
        sample(across.metrics_a, "wascc_lattice_shard_sent_total"),
        sent + 20
    );
    let listed = hosts_listed(LatticeOptions {
        url: url.clone(),
        lattice: lattice.clone(),
        tls_ca: Some(ca.into()),
        ..Default::default()
    });
    assert_eq!(listed, 2);
}

#[test]
fn shards_connect_with_a_user_and_password_or_a_token_in_the_url() {
    for (server_args, auth) in [
        (&["--user", "wascc", "--pass", "s3cret"][..], "wascc:s3cret"),
        (&["--auth", "t0ken"][..], "t0ken"),
    ] {
        let nats = OwnNats::start(server_args);
        let url = format!("nats://{auth}@127.0.0.1:{}", nats.port);
        let lattice = format!("it{}", rand::random::<u32>());
        let account = nkeys::KeyPair::new_account();
        let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
        let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
        let metrics_b = free_port();
        let work = Workdir::new();
        let manifest = format!("actors: [{}]\n", work.write("k.wasm", &kb.wasm).display());
        let mb = format!("127.0.0.1:{metrics_b}");
        let _b = HostProc::start(
            work,
            &manifest,
            &[
                "--nats",
                &url,
                "--lattice",
                &lattice,
                "--shards",
                "1",
                "--metrics",
                &mb,
            ],
        );
        let (_a, port) = kitchen_host_at(&url, &lattice, &ka);
        // B's shard, on its own connection with the URL's credentials,
        // takes the calls.
        call_until_a_shard_takes_it(port, &kb.key, metrics_b);
    }
}

#[test]
fn a_call_over_the_servers_max_payload_is_refused_and_calls_go_on() {
    // A server that takes messages of at most 8 KiB (it closes a client's
    // connection on a larger one).
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("small.conf");
    std::fs::write(&conf, "max_payload: 8192\n").unwrap();
    let nats = OwnNats::start(&["-c", conf.to_str().unwrap()]);
    let url = nats.url();
    let lattice = format!("it{}", rand::random::<u32>());
    let account = nkeys::KeyPair::new_account();
    let ka = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let kb = wascc_bench::signed_actor("kitchen", &["wascc:http_server"], &account);
    let (_b, _) = kitchen_host_at(&url, &lattice, &kb);
    let (_a, port) = kitchen_host_at(&url, &lattice, &ka);
    assert_eq!(call_through(port, &kb.key).unwrap(), "ping");
    let big = vec![b'x'; 20_000];
    let r = http(port, "POST", &format!("/call?{}", kb.key), &big);
    let e = r.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        e.contains("exceeds the NATS server's max payload of 8192"),
        "{}",
        r.text()
    );
    // The shard's connection was not closed by the server: calls go on.
    for _ in 0..3 {
        assert_eq!(call_through(port, &kb.key).unwrap(), "ping");
    }
}

/// A NATS client answering every request on a subject with `pwned` (and
/// header `wascc-reply: SEAL`), on its own thread, until dropped.
struct Impostor {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Impostor {
    /// Answers every request on `subject` with `headers` (the queue group
    /// of an actor's subject: its last token).
    fn answer(subject: &str, headers: Vec<(&'static str, String)>) -> Impostor {
        Impostor::start(subject, Some(headers))
    }

    /// Takes every request on `subject` and never answers.
    fn silent(subject: &str) -> Impostor {
        Impostor::start(subject, None)
    }

    fn start(subject: &str, headers: Option<Vec<(&'static str, String)>>) -> Impostor {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let subject = subject.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use futures_lite::StreamExt;
                let client = async_nats::connect(NATS).await.unwrap();
                let queue = match subject.rsplit('.').next().unwrap() {
                    ">" => "ghost".to_string(),
                    last => last.to_string(),
                };
                let mut sub = client.queue_subscribe(subject, queue).await.unwrap();
                // In place at the server (a round trip; flush only writes):
                // a request no one answers.
                let _ = client.request("_WASCC_SYNC.impostor", "".into()).await;
                ready.send(()).unwrap();
                let serve = async {
                    while let Some(msg) = sub.next().await {
                        let (Some(reply), Some(headers)) = (msg.reply, &headers) else {
                            continue;
                        };
                        let mut h = async_nats::HeaderMap::new();
                        for (name, value) in headers {
                            h.insert(*name, value.as_str());
                        }
                        let _ = client.publish_with_headers(reply, h, "pwned".into()).await;
                        let _ = client.flush().await;
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        is_ready.recv().unwrap();
        Impostor {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
