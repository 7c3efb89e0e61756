//! `wcc` as a user runs it.

use nkeys::KeyPair;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn wcc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wcc"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/wascc-0.14")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn keys_gen_makes_every_kind() {
    for (kind, prefix) in [
        ("account", 'A'),
        ("module", 'M'),
        ("service", 'V'),
        ("server", 'N'),
        ("operator", 'O'),
        ("cluster", 'C'),
    ] {
        let j = json(&wcc(&["keys", "gen", kind, "--json"]));
        let pk = j["public_key"].as_str().unwrap();
        let seed = j["seed"].as_str().unwrap();
        assert!(pk.starts_with(prefix), "{kind}: {pk}");
        assert!(seed.starts_with(&format!("S{prefix}")), "{kind}: {seed}");
    }
    let out = wcc(&["keys", "gen", "wizard"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn inspect_reads_a_fixture() {
    let j = json(&wcc(&[
        "claims",
        "inspect",
        &fixture("kvcounter.wasm"),
        "--json",
    ]));
    assert_eq!(
        j["subject"],
        "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ"
    );
    assert_eq!(
        j["issuer"],
        "AAGRUXXTGSP4C27RWPTMCHCJF56JD53EQPA2R7RPC5VI4E274KPRMMJ5"
    );
    assert_eq!(j["name"], "Key Value Counter");
    assert_eq!(
        j["caps"],
        serde_json::json!(["wascc:keyvalue", "wascc:http_server"])
    );
    assert_eq!(j["valid"], true);
    assert_eq!(j["provider"], false);
    assert_eq!(j["expires"], Value::Null);
    assert!(j.get("error").is_none());
}

#[test]
fn sign_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let acct = json(&wcc(&["keys", "gen", "account", "--json"]));
    let module = json(&wcc(&["keys", "gen", "module", "--json"]));
    let seed_file = dir.path().join("module.seed");
    std::fs::write(&seed_file, module["seed"].as_str().unwrap()).unwrap();
    let out = dir.path().join("signed.wasm");
    let o = wcc(&[
        "claims",
        "sign",
        &fixture("echo.wasm"),
        "-o",
        out.to_str().unwrap(),
        "--issuer",
        acct["seed"].as_str().unwrap(),
        "--subject",
        seed_file.to_str().unwrap(),
        "--name",
        "Signed Echo",
        "--cap",
        "wascc:http_server",
        "--cap",
        "wascc:logging",
        "--tag",
        "t1",
        "--rev",
        "7",
        "--ver",
        "0.7.0",
        "--expires-in",
        "30d",
        "--not-before",
        "1h",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&wcc(&[
        "claims",
        "inspect",
        out.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(j["issuer"], acct["public_key"]);
    assert_eq!(j["subject"], module["public_key"]);
    assert_eq!(j["name"], "Signed Echo");
    assert_eq!(
        j["caps"],
        serde_json::json!(["wascc:http_server", "wascc:logging"])
    );
    assert_eq!(
        (j["rev"].as_i64(), j["ver"].as_str()),
        (Some(7), Some("0.7.0"))
    );
    let iat = j["issued_at"].as_u64().unwrap();
    assert_eq!(j["expires"].as_u64().unwrap() - iat, 30 * 86_400);
    assert_eq!(j["not_before"].as_u64().unwrap() - iat, 3_600);
    // Not valid for another hour: inspect says so, with the reason.
    assert_eq!(j["valid"], false);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("claims not valid before"),
        "{j}"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let acct = json(&wcc(&["keys", "gen", "account", "--json"]));
    let module = json(&wcc(&["keys", "gen", "module", "--json"]));
    let (a, m) = (
        acct["seed"].as_str().unwrap(),
        module["seed"].as_str().unwrap(),
    );
    let err = |o: Output| {
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wasm");
    let out = out.to_str().unwrap();
    let echo = fixture("echo.wasm");
    let sign = |input: &str, issuer: &str, extra: &[&str]| {
        let mut args = vec![
            "claims",
            "sign",
            input,
            "-o",
            out,
            "--issuer",
            issuer,
            "--subject",
            m,
            "--name",
            "x",
        ];
        args.extend_from_slice(extra);
        wcc(&args)
    };
    let e = err(sign(&echo, m, &[]));
    assert!(
        e.contains("--issuer: expected a seed starting with SA"),
        "{e}"
    );
    let e = err(sign("/nonexistent.wasm", a, &[]));
    assert!(e.contains("cannot read /nonexistent.wasm"), "{e}");
    let e = err(sign(&echo, "/no/such/seed", &[]));
    assert!(e.contains("neither a seed nor a readable file"), "{e}");
    let o = sign(&echo, a, &["--expires-in", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a duration"));
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"nope").unwrap();
    let e = err(wcc(&["claims", "inspect", junk.to_str().unwrap()]));
    assert!(e.contains("not a wasm module"), "{e}");
    // A control signer is a user, account or operator seed.
    let e = err(wcc(&["lattice", "hosts", "--signer", m]));
    assert!(
        e.contains("--signer: expected a seed starting with SU, SA, SO"),
        "{e}"
    );
}

#[test]
fn lattice_hosts_lists_what_the_lattice_state_holds() {
    use wascc_lattice::*;
    let lattice = format!("wcc{}", std::process::id());
    let record = HostRecord {
        id: nkeys::KeyPair::new_server().public_key(),
        lattice: lattice.clone(),
        labels: [("zone".to_string(), "z1".to_string())].into(),
        version: "0.1.0".into(),
        started_at: now_secs(),
        heartbeat_at: now_secs(),
        actors: vec![ActorRecord {
            key: "MABC".into(),
            name: "echo".into(),
            account: "AXYZ".into(),
            caps: vec!["wascc:keyvalue".into()],
        }],
        providers: vec![ProviderRecord {
            capability: "wascc:keyvalue".into(),
            name: "memory".into(),
            key: None,
        }],
        bindings: vec![BindingRecord {
            actor: "MABC".into(),
            capability: "wascc:keyvalue".into(),
            binding: "default".into(),
            values: vec!["URL".into()],
        }],
        exchange: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = LatticeOptions {
        url: "nats://127.0.0.1:4222".into(),
        lattice: lattice.clone(),
        credentials: None,
        tls_ca: None,
        nkey_seed: None,
        control_seed: None,
    };
    let state = rt.block_on(Lattice::connect(&opts)).unwrap();
    rt.block_on(state.put_host(&record)).unwrap();

    let listed = json(&wcc(&["lattice", "hosts", "--lattice", &lattice, "--json"]));
    let back: Vec<HostRecord> = serde_json::from_value(listed).unwrap();
    assert_eq!(back, vec![record.clone()]);
    let text = wcc(&["lattice", "hosts", "--lattice", &lattice]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&record.id) && text.contains("zone=z1"),
        "{text}"
    );
    assert!(text.contains("wascc:keyvalue (memory)"), "{text}");

    rt.block_on(state.remove_host(&record.id)).unwrap();
    let listed = json(&wcc(&["lattice", "hosts", "--lattice", &lattice, "--json"]));
    assert_eq!(listed, serde_json::json!([]));

    let missing = wcc(&["lattice", "stop", "NNOSUCHHOST", "--lattice", &lattice]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("host NNOSUCHHOST: no such host in the lattice"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let bad_label = wcc(&[
        "lattice",
        "label",
        "NNOSUCHHOST",
        "novalue",
        "--lattice",
        &lattice,
    ]);
    assert!(
        String::from_utf8_lossy(&bad_label.stderr).contains("is not a label: expected KEY=VALUE"),
        "{}",
        String::from_utf8_lossy(&bad_label.stderr)
    );

    let bad = wcc(&["lattice", "hosts", "--nats", "nats://127.0.0.1:1"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn lattice_block_list_is_kept_listed_and_lifted() {
    let lattice = format!("wccb{}", std::process::id());
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).to_string();
    let actor = KeyPair::new_module().public_key();
    let account = KeyPair::new_account().public_key();
    let at = ["--lattice", lattice.as_str()];
    let run = |args: &[&str]| wcc(&[args, &at[..]].concat());
    let out = run(&["lattice", "block", &actor, "--reason", "leaked key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("(Actor) is blocked"),
        "{}",
        stderr(&out)
    );
    assert!(run(&["lattice", "block", &account]).status.success());
    let listed = json(&run(&["lattice", "blocked", "--json"]));
    let mut keys = vec![actor.clone(), account.clone()];
    keys.sort();
    let got: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(got, keys);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == actor.as_str())
        .unwrap();
    assert_eq!(entry["kind"], "actor");
    assert_eq!(entry["reason"], "leaked key");

    assert!(run(&["lattice", "unblock", &actor]).status.success());
    let again = run(&["lattice", "unblock", &actor]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("is not blocked"),
        "{}",
        stderr(&again)
    );
    assert!(run(&["lattice", "unblock", &account]).status.success());
    let text = run(&["lattice", "blocked"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Nothing is blocked"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // Keys that cannot be blocked are named.
    let bad = run(&["lattice", "block", "MNOTAKEY"]);
    assert!(
        stderr(&bad).contains("not a public key"),
        "{}",
        stderr(&bad)
    );
    let operator = KeyPair::new_operator().public_key();
    let bad = run(&["lattice", "block", &operator]);
    assert!(stderr(&bad).contains("only actor (M)"), "{}", stderr(&bad));
    // Commands to a host that is not there say so.
    let missing = run(&["lattice", "inventory", "NNOSUCHHOST"]);
    assert!(
        stderr(&missing).contains("no such host in the lattice"),
        "{}",
        stderr(&missing)
    );
    // A module too large for one NATS message is refused before sending,
    // with the way around it.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, vec![0u8; 900_000]).unwrap();
    let too_big = run(&[
        "lattice",
        "start-actor",
        "NNOSUCHHOST",
        big.to_str().unwrap(),
    ]);
    assert!(
        stderr(&too_big).contains("more than the NATS server's max payload")
            && stderr(&too_big).contains("--remote-path"),
        "{}",
        stderr(&too_big)
    );
    let neither = run(&["lattice", "start-provider", "NNOSUCHHOST"]);
    assert!(!neither.status.success());
    assert!(
        stderr(&neither).contains("<MODULE>"),
        "{}",
        stderr(&neither)
    );
}

#[test]
fn lattice_events_prints_signed_events_and_refuses_others() {
    use std::io::{BufRead, BufReader, Read};
    use wascc_lattice::control::{Event, events_subject, publish_event};
    let lattice = format!("wcce{}", std::process::id());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wcc"))
        .args(["lattice", "events", "--lattice", &lattice])
        .args(["--count", "1", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("Following the events of lattice"), "{line}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = wascc_lattice::LatticeOptions {
        url: "nats://127.0.0.1:4222".into(),
        lattice: lattice.clone(),
        ..Default::default()
    };
    let state = rt.block_on(wascc_lattice::Lattice::connect(&opts)).unwrap();
    let host = wascc_lattice::invocation::Sealer::new(KeyPair::new_server());
    let event = Event::new(host.origin(), "label_set", serde_json::json!({"key": "z"}));
    // Unsigned, as anyone who can publish on the subject could send it.
    let forged = serde_json::to_vec(&event).unwrap();
    rt.block_on(async {
        let subject = events_subject(&lattice);
        state
            .client()
            .publish(subject, forged.into())
            .await
            .unwrap();
        state.client().flush().await.unwrap();
        publish_event(&state, &host, &event).await;
        state.client().flush().await.unwrap();
    });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["type"], "com.wascc.lattice.label_set");
    assert_eq!(printed["source"], format!("wascc/host/{}", host.origin()));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("event refused: the event is not signed"),
        "{rest}"
    );
}
