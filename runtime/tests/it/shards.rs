//! Several shards: placement, actor-to-actor calls on one shard and across
//! shards, instance policies, actor-time metering, and a saturated shard
//! not starving the others.

use crate::contracts::KITCHEN_CAPS;
use crate::support::*;
use nkeys::KeyPair;
use serde_json::Value;
use wascc_bench::signed_actor;

/// Two kitchen actors (different keys): `a` everywhere, `b` with the given
/// manifest options; each on its own HTTP port.
struct Pair {
    host: HostProc,
    a: String,
    b: String,
    port_a: u16,
    port_b: u16,
    metrics: u16,
}

fn pair(shards: &str, a_opts: &str, b_opts: &str) -> Pair {
    pair_with(shards, a_opts, b_opts, &[])
}

fn pair_with(shards: &str, a_opts: &str, b_opts: &str, extra: &[&str]) -> Pair {
    let work = Workdir::new();
    let issuer = KeyPair::new_account();
    let a = signed_actor("kitchen", &KITCHEN_CAPS, &issuer);
    let b = signed_actor("kitchen", &KITCHEN_CAPS, &issuer);
    let (port_a, port_b, metrics) = (free_port(), free_port(), free_port());
    let manifest = format!(
        r#"
actors:
  - {{ path: {}{a_opts} }}
  - {{ path: {}{b_opts} }}
capabilities: [{{id: wascc:http_server}}]
bindings:
  - {{actor: {ak}, capability: wascc:http_server, values: {{PORT: "{port_a}", ADDR: 127.0.0.1}}}}
  - {{actor: {bk}, capability: wascc:http_server, values: {{PORT: "{port_b}", ADDR: 127.0.0.1}}}}
"#,
        work.write("a.wasm", &a.wasm).display(),
        work.write("b.wasm", &b.wasm).display(),
        ak = a.key,
        bk = b.key,
    );
    let metrics_addr = format!("127.0.0.1:{metrics}");
    let mut args = vec!["--shards", shards, "--metrics", &metrics_addr, "--json"];
    args.extend_from_slice(extra);
    let host = HostProc::start(work, &manifest, &args);
    Pair {
        host,
        a: a.key,
        b: b.key,
        port_a,
        port_b,
        metrics,
    }
}

#[test]
fn actors_call_actors_on_their_own_and_other_shards() {
    // b runs on one shard only (shard 0, the least loaded); a everywhere.
    let p = pair("2", "", ", shards: 1");
    p.host.wait_line("b placed on shard 0", |l| {
        l.contains("actor placed") && l.contains(&p.b) && l.contains("shards=0")
    });
    // Separate connections spread over both shards' listeners; a on shard 1
    // must cross to shard 0 to reach b.
    for i in 0..40 {
        let msg = format!("hello {i}");
        let r = http(p.port_a, "POST", &format!("/call?{}", p.b), msg.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["reply"], Value::from(msg), "{}", r.text());
    }
    let m = scrape(p.metrics);
    let b_label = format!("actor=\"{}\"", p.b);
    assert_eq!(
        sum(&m, "wascc_actor_invocations_total", &b_label),
        40,
        "b ran every call: {m:?}"
    );
    let b_on_1: u64 = m
        .iter()
        .filter(|(k, _)| {
            k.starts_with("wascc_actor_invocations_total{")
                && k.contains(&b_label)
                && k.contains("shard=\"1\"")
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(b_on_1, 0, "b is placed on shard 0 only: {m:?}");
    let a_on = |s: &str| -> u64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("wascc_actor_invocations_total{")
                    && k.contains(&format!("actor=\"{}\"", p.a))
                    && k.contains(&format!("shard=\"{s}\""))
            })
            .map(|(_, v)| v)
            .sum()
    };
    assert!(
        a_on("0") > 0 && a_on("1") > 0,
        "connections reached both shards' listeners: {m:?}"
    );
    assert_eq!(
        m["wascc_shard_cross_out_total{shard=\"1\"}"],
        a_on("1"),
        "every call from shard 1 crossed"
    );
    assert_eq!(
        m["wascc_shard_cross_in_total{shard=\"0\"}"],
        a_on("1"),
        "and ran on shard 0"
    );

    // An HTTP request to b accepted on shard 1 crosses too.
    for _ in 0..10 {
        let r = http(p.port_b, "POST", "/body", b"x");
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // Exact metering: per shard, the actor time of every invocation and
    // instantiation adds up to what the shard measured.
    let (code, log, out) = p.host.terminate_output();
    assert_eq!(code, 0, "{log}");
    let usage: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for shard in usage["shards"].as_array().unwrap() {
        let id = shard["shard"].as_u64().unwrap();
        let actors: u64 = usage["actors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["shard"].as_u64() == Some(id))
            .map(|a| a["actor_time_ns"].as_u64().unwrap())
            .sum();
        assert_eq!(
            actors,
            shard["busy_ns"].as_u64().unwrap(),
            "shard {id}: {usage:#}"
        );
        assert!(actors > 0, "shard {id} ran actors: {usage:#}");
    }
    let b_runs: u64 = usage["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["actor"].as_str() == Some(p.b.as_str()))
        .map(|a| a["invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(b_runs, 50, "{usage:#}");
    assert!(
        usage["actors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["account"].as_str().is_some_and(|k| k.starts_with('A'))),
        "usage names the paying account: {usage:#}"
    );
}

#[test]
fn actor_calls_fail_clearly() {
    let p = pair("1", "", "");
    let r = http(p.port_a, "POST", &format!("/chain?{}", p.a), b"");
    let err = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("exceeds the call depth limit of 16"),
        "{}",
        r.text()
    );
    let stranger = KeyPair::new_module().public_key();
    let r = http(p.port_a, "POST", &format!("/call?{stranger}"), b"x");
    let err = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains(&format!("actor {stranger} is not running on this host")),
        "{}",
        r.text()
    );
    // The host serves on after both.
    let r = http(p.port_b, "POST", &format!("/call?{}", p.a), b"still here");
    assert_eq!(r.json()["reply"], "still here", "{}", r.text());
}

#[test]
fn instance_policy_reuse_keeps_state_and_fresh_does_not() {
    let p = pair("1", ", instances: reuse", ", instances: fresh");
    let served = |port| -> Vec<u64> {
        (0..3)
            .map(|_| get(port, "/count").json()["served"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(served(p.port_a), vec![1, 2, 3], "a warm instance is reused");
    assert_eq!(
        served(p.port_b),
        vec![1, 1, 1],
        "every invocation gets a fresh instance"
    );
}

#[test]
fn a_saturated_shard_does_not_starve_the_other() {
    // b (on one shard only) spins in four requests at once, with a deadline
    // far beyond the test; a, on the other shard, answers meanwhile.
    // Requests to a accepted on b's shard still get through: a spinning
    // guest yields to its shard every epoch tick.
    let p = pair_with(
        "2",
        ", shards: 1",
        ", shards: 1",
        &["--call-deadline-ms", "60000"],
    );
    p.host.wait_line("a on 0", |l| {
        l.contains("actor placed") && l.contains(&p.a) && l.contains("shards=0")
    });
    p.host.wait_line("b on 1", |l| {
        l.contains("actor placed") && l.contains(&p.b) && l.contains("shards=1")
    });
    let port_b = p.port_b;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                // The host is killed under them; only completion matters.
                let _ = std::panic::catch_unwind(|| get(port_b, "/loop"));
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        })
        .collect();
    // Let b's shard get busy with them.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..20 {
        let r = http(p.port_a, "POST", "/body", b"x");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        done.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a answered 20 requests while every spinning request on the other shard was still running"
    );
    drop(p);
    for s in spinners {
        s.join().unwrap();
    }
}

#[test]
fn pipelined_requests_on_one_connection_are_all_answered_in_order() {
    use std::io::{Read, Write};
    let p = pair("2", "", "");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p.port_a)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut burst = String::new();
    for i in 0..3 {
        burst.push_str(&format!(
            "POST /body?n={i} HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n{}\r\nx",
            if i == 2 { "connection: close\r\n" } else { "" }
        ));
    }
    s.write_all(burst.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let answered: Vec<usize> = (0..3)
        .map(|i| {
            all.find(&format!("\"query\":\"n={i}\""))
                .unwrap_or(usize::MAX)
        })
        .collect();
    assert!(
        answered.iter().all(|&at| at != usize::MAX) && answered.windows(2).all(|w| w[0] < w[1]),
        "three answers in order: {all}"
    );
}

#[test]
fn a_port_held_by_another_process_is_refused_not_shared() {
    // Shards bind with SO_REUSEPORT; a plain bind first must refuse a port
    // someone else listens on (another process of ours could share it).
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let work = Workdir::new();
    let a = signed_actor("kitchen", &KITCHEN_CAPS, &KeyPair::new_account());
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        work.write("a.wasm", &a.wasm).display(),
        a.key
    );
    let (code, log) = host_fails(&work, &manifest, &[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{log}"
    );
}

/// How many shards the host runs (glommio names a shard's threads
/// `wascc-shard-<i>-<executor id>`), and the CPU lists of their threads.
fn shard_cpus(pid: u32) -> (usize, Vec<String>) {
    let (mut names, mut cpus) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap()
        };
        let name = field("Name:");
        if name.starts_with("wascc-shard-") {
            cpus.insert(field("Cpus_allowed_list:"));
            names.insert(name);
        }
    }
    (names.len(), cpus.into_iter().collect())
}

#[test]
fn cpus_pins_shards_to_the_cpus_named_and_a_bad_list_is_refused() {
    let allowed = wascc_scheduler::allowed_cpus();
    let last = allowed
        .last()
        .expect("this process may run on some CPU")
        .to_string();
    let host = HostProc::start(Workdir::new(), "actors: []\n", &["--cpus", &last]);
    // One shard (as many as CPUs named), pinned to the CPU named.
    assert_eq!(shard_cpus(host.pid()), (1, vec![last.clone()]));
    let both = format!("{last},{last}");
    let host = HostProc::start(
        Workdir::new(),
        "actors: []\n",
        &["--cpus", &both, "--shards", "2"],
    );
    assert_eq!(shard_cpus(host.pid()), (2, vec![last.clone()]));
    // Without --cpus: every CPU this process may use, one shard each.
    let host = HostProc::start(Workdir::new(), "actors: []\n", &[]);
    let each: Vec<String> = allowed.iter().map(|c| c.to_string()).collect();
    assert_eq!(shard_cpus(host.pid()), (allowed.len(), each));
    for (list, says) in [
        ("3-1", "\"3-1\" is not a CPU or a range of CPUs"),
        ("0,x", "\"x\" is not a CPU or a range of CPUs"),
        ("100000", "CPU 100000 is not one this process may run on"),
    ] {
        let (code, log) = host_fails(&Workdir::new(), "actors: []\n", &["--cpus", list]);
        assert_eq!(code, 2, "{log}");
        assert!(log.contains(says), "{list}: {log}");
    }
    let (code, log) = host_fails(
        &Workdir::new(),
        "actors: []\n",
        &["--cpus", &last, "--no-pin"],
    );
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("cannot be used with"), "{log}");
}

/// CPU time (user and system, in clock ticks) the shard threads of process
/// `pid` have used so far.
fn shard_ticks(pid: u32) -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue;
        };
        // pid (comm) state … utime stime: fields 14 and 15, counted from
        // after the command's closing parenthesis (names may hold spaces).
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !comm.contains("(wascc-shard-") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    ticks
}

#[test]
fn spin_us_keeps_an_idle_shard_polling_and_a_bad_value_is_refused() {
    let cpu = wascc_scheduler::allowed_cpus()
        .last()
        .expect("this process may run on some CPU")
        .to_string();
    // An idle shard wakes every few ms (its timers); with a long spin it
    // polls on between them instead of sleeping, and its CPU time shows it.
    let used_in_a_second = |spin: &str| {
        let host = HostProc::start(
            Workdir::new(),
            "actors: []\n",
            &["--cpus", &cpu, "--spin-us", spin],
        );
        let before = shard_ticks(host.pid());
        std::thread::sleep(std::time::Duration::from_secs(1));
        shard_ticks(host.pid()) - before
    };
    let spinning = used_in_a_second("20000");
    let sleeping = used_in_a_second("0");
    assert!(
        spinning >= 10 && spinning > 4 * sleeping,
        "shard CPU ticks in a second: {spinning} spinning 20 ms, {sleeping} not spinning"
    );
    for (args, says) in [
        (&["--spin-us", "100001"][..], "100001 is not in 0..=100000"),
        (&["--spin-us", "-1"][..], "unexpected argument '-1'"),
        (&["--spin-us", "50", "--no-pin"][..], "cannot be used with"),
    ] {
        let (code, log) = host_fails(&Workdir::new(), "actors: []\n", args);
        assert_eq!(code, 2, "{log}");
        assert!(log.contains(says), "{args:?}: {log}");
    }
}
