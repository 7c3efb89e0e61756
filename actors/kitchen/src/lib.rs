//! Kitchen sink: one route per contract operation, for the host's tests.
//! The tests sign it with the capabilities each one needs.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use wascc_actor::prelude::*;
use wascc_actor::{extras, http_client, keyvalue, logging};

actor_handlers! {
    http::OP_HANDLE_REQUEST => route,
    "Echo" => echo_op,
    "Chain" => chain_op,
    messaging::OP_DELIVER_MESSAGE => deliver,
}

/// A message on a subscribed subject: logged to the console, and answered
/// with `re:` + its body when it carries a reply subject.
fn deliver(msg: messaging::BrokerMessage) -> HandlerResult<()> {
    console_log(&format!(
        "kitchen got {:?} on {}",
        String::from_utf8_lossy(&msg.body),
        msg.subject
    ));
    if !msg.reply_to.is_empty() {
        let mut reply = b"re:".to_vec();
        reply.extend_from_slice(&msg.body);
        wascc_actor::messaging::publish("default", &msg.reply_to, "", &reply)?;
    }
    Ok(())
}

/// A route's outcome as JSON: the value, or the host's error.
fn outcome<T: serde::Serialize>(r: HandlerResult<T>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// A non-HTTP operation that answers with the string it was sent, for
/// engine tests and benchmarks.
fn echo_op(msg: String) -> HandlerResult<String> {
    Ok(msg)
}

/// Calls `Chain` on the actor whose key it was sent, with that key: an
/// actor sent its own key recurses until the host's depth limit stops it.
fn chain_op(key: String) -> HandlerResult<String> {
    call_actor(&key, "Chain", &key)
}

/// Calls `operation` on actor `key` with a string, returning its string.
fn call_actor(key: &str, operation: &str, msg: &str) -> HandlerResult<String> {
    let payload = wascc_actor::contracts::encode(&msg)?;
    let reply = host_call("default", key, operation, &payload)?;
    Ok(wascc_actor::contracts::decode(&reply)?)
}

/// Invocations this instance has served: shows whether the host reuses
/// instances or takes a fresh one per invocation.
static SERVED: AtomicU64 = AtomicU64::new(0);

fn route(req: http::Request) -> HandlerResult<http::Response> {
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    let reply: Value = match req.path.as_str() {
        "/count" => json!({ "served": served }),
        // ?KEY: calls `Echo` on actor KEY with the request body.
        "/call" => match call_actor(
            &req.query_string,
            "Echo",
            &String::from_utf8_lossy(&req.body),
        ) {
            Ok(r) => json!({ "reply": r }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        // ?KEY&N: calls `Echo` on actor KEY N times (for benchmarks).
        "/repeat" => {
            let (key, n) = name_and_count(&req.query_string);
            let payload = wascc_actor::contracts::encode(&"x")?;
            for _ in 0..n {
                host_call("default", key, "Echo", &payload)?;
            }
            json!({ "calls": n })
        }
        // ?BINDING&N: N key-value `Get`s through BINDING (provider call benchmarks).
        "/kvget" => {
            let (binding, n) = name_and_count(&req.query_string);
            let kv = keyvalue::host(binding);
            for _ in 0..n {
                kv.get("bench")?;
            }
            json!({ "calls": n })
        }
        // ?KEY: starts a `Chain` at actor KEY.
        "/chain" => match call_actor(&req.query_string, "Chain", &req.query_string) {
            Ok(r) => json!({ "reply": r }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "/kv" => kv()?,
        "/extras" => json!({
            "guid": extras::guid("default")?,
            "random": extras::random("default", 1, 6)?,
            "seq": [extras::sequence("default")?, extras::sequence("default")?],
        }),
        "/log" => {
            for (lvl, name) in [
                (1, "error"),
                (2, "warn"),
                (3, "info"),
                (4, "debug"),
                (5, "trace"),
            ] {
                logging::write("default", lvl, &format!("kitchen log line at {name}"))?;
            }
            json!({ "logged": 5 })
        }
        "/console" => {
            console_log(&format!("kitchen console: {}", req.query_string));
            json!({ "console": true })
        }
        "/named" => {
            let a = keyvalue::default().atomic_add("named", 1)?;
            let b = keyvalue::host("other").atomic_add("named", 10)?;
            json!({ "default": a, "other": b })
        }
        "/unbound" => match keyvalue::host("nope").get("x") {
            Ok(_) => json!({ "error": null }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "/denied" => match host_call(
            "default",
            messaging::CAPABILITY_ID,
            messaging::OP_PUBLISH_MESSAGE,
            &[],
        ) {
            Ok(_) => json!({ "error": null }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "/publish" => outcome(wascc_actor::messaging::publish(
            "default",
            &req.query_string,
            "",
            &req.body,
        )),
        "/request" => outcome(
            wascc_actor::messaging::request("default", &req.query_string, &req.body, 1000)
                .map(|r| String::from_utf8_lossy(&r).into_owned()),
        ),
        "/fetch" => outcome(
            http_client::request("default", "GET", &req.query_string, &[]).map(
                |r| json!({ "status": r.status_code, "body": String::from_utf8_lossy(&r.body) }),
            ),
        ),
        "/logf" => outcome(logging::write_fields(
            "default",
            logging::level::WARN,
            "kitchen structured line",
            &[("order", "42"), ("who", "a b")],
        )),
        "/body" => json!({ "len": req.body.len(), "query": req.query_string }),
        "/trap" => panic!("kitchen was asked to trap"),
        "/loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/fail" => return Err("kitchen was asked to fail".into()),
        other => {
            return Ok(http::Response::with_status(
                404,
                "Not Found",
                format!("no route {other}"),
            ));
        }
    };
    Ok(http::Response::json(serde_json::to_vec(&reply)?))
}

fn kv() -> HandlerResult<Value> {
    let kv = keyvalue::default();
    kv.set("k", "v1", 0)?;
    let got = kv.get("k")?;
    let exists = kv.exists("k")?;
    kv.del("k")?;
    let gone = kv.get("k")?;
    let add = [kv.atomic_add("n", 5)?, kv.atomic_add("n", -2)?];
    let pushed = [
        kv.list_push("l", "a")?,
        kv.list_push("l", "b")?,
        kv.list_push("l", "c")?,
    ];
    let range = kv.list_range("l", 0, -1)?;
    let after_del = kv.list_del_item("l", "b")?;
    let tail = kv.list_range("l", -1, -1)?;
    kv.list_clear("l")?;
    let cleared = kv.list_range("l", 0, -1)?;
    let added = [
        kv.set_add("s1", "x")?,
        kv.set_add("s1", "y")?,
        kv.set_add("s1", "x")?,
    ];
    kv.set_add("s2", "y")?;
    kv.set_add("s2", "z")?;
    let removed = kv.set_remove("s2", "z")?;
    kv.set_add("s2", "w")?;
    Ok(json!({
        "get": got, "exists": exists, "after_del": gone,
        "add": add, "pushed": pushed, "range": range, "after_list_del": after_del, "tail": tail,
        "cleared": cleared, "set_added": added, "set_removed": removed,
        "members": kv.set_members("s1")?,
        "union": kv.set_union(&["s1", "s2"])?,
        "intersect": kv.set_intersect(&["s1", "s2"])?,
    }))
}

/// `NAME&N` (N defaults to 1) from a query string.
fn name_and_count(query: &str) -> (&str, u32) {
    let (name, n) = query.split_once('&').unwrap_or((query, "1"));
    (name, n.parse().unwrap_or(1))
}
