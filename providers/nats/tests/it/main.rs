//! `wascc:messaging` against the NATS server on this machine (4222) and
//! against a `nats-server` the test starts, stops and restarts itself.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wascc_contracts::messaging::*;
use wascc_contracts::{
    ActorDispatcher, BindingRef, CapabilityProvider, ProviderContext, ProviderError, ReplyFuture,
    decode, encode,
};
use wascc_provider_nats::NatsMessaging;

const LOCAL: &str = "nats://127.0.0.1:4222";

/// Records what the provider delivers, as the host's dispatcher would
/// hand it to actors.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(String, BrokerMessage)>>,
}

impl ActorDispatcher for Recorder {
    fn dispatch(&self, actor: &str, operation: &str, payload: Vec<u8>) -> ReplyFuture {
        assert_eq!(operation, OP_DELIVER_MESSAGE);
        let m: BrokerMessage = decode(&payload).unwrap();
        self.got.lock().unwrap().push((actor.to_string(), m));
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

impl Recorder {
    fn wait_for(&self, n: usize) -> Vec<(String, BrokerMessage)> {
        let started = Instant::now();
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n || started.elapsed() > Duration::from_secs(10) {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Messaging {
    _rt: tokio::runtime::Runtime,
    provider: NatsMessaging,
    recorder: Arc<Recorder>,
}

fn messaging() -> Messaging {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let provider = NatsMessaging::new(rt.handle().clone());
    let recorder = Arc::new(Recorder::default());
    provider
        .start(ProviderContext {
            dispatcher: recorder.clone(),
        })
        .unwrap();
    Messaging {
        _rt: rt,
        provider,
        recorder,
    }
}

fn b<'a>(actor: &'a str) -> BindingRef<'a> {
    BindingRef {
        actor,
        binding: "default",
    }
}

impl Messaging {
    fn bind(&self, actor: &str, values: &[(&str, &str)]) -> Result<(), String> {
        let v: HashMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        futures_lite::future::block_on(self.provider.bind_actor(b(actor), &v)).map_err(|e| e.0)
    }

    fn call(&self, actor: &str, op: &str, payload: Vec<u8>) -> Result<Vec<u8>, ProviderError> {
        futures_lite::future::block_on(self.provider.handle_call(b(actor), op, &payload).wait())
    }

    fn publish(&self, actor: &str, subject: &str, body: &[u8]) -> Result<bool, String> {
        let m = BrokerMessage {
            subject: subject.into(),
            reply_to: String::new(),
            body: body.to_vec(),
        };
        let r = self
            .call(actor, OP_PUBLISH_MESSAGE, encode(&m).unwrap())
            .map_err(|e| e.0)?;
        Ok(decode::<PublishResponse>(&r).unwrap().published)
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}.{}", rand::random::<u64>())
}

#[test]
fn subscriptions_deliver_published_messages_to_the_actor() {
    let m = messaging();
    let base = unique("wascc.test");
    let subs = format!("{base}.a,{base}.wild.*");
    m.bind("MSUB", &[("URL", LOCAL), ("SUBSCRIPTION", &subs)])
        .unwrap();
    m.bind("MPUB", &[("URL", LOCAL)]).unwrap();
    assert_eq!(m.publish("MPUB", &format!("{base}.a"), b"one"), Ok(true));
    assert_eq!(
        m.publish("MPUB", &format!("{base}.wild.x"), b"two"),
        Ok(true)
    );
    assert_eq!(
        m.publish("MPUB", &format!("{base}.other"), b"not subscribed"),
        Ok(true)
    );
    let got = m.recorder.wait_for(2);
    std::thread::sleep(Duration::from_millis(200));
    let got_all = m.recorder.got.lock().unwrap().clone();
    assert_eq!(got_all.len(), 2, "{got_all:?}");
    assert!(got.iter().all(|(a, _)| a == "MSUB"));
    let mut bodies: Vec<&[u8]> = got.iter().map(|(_, m)| m.body.as_slice()).collect();
    bodies.sort();
    assert_eq!(bodies, [b"one".as_slice(), b"two".as_slice()]);

    // Unbinding stops delivery.
    m.provider.remove_actor(b("MSUB"));
    m.publish("MPUB", &format!("{base}.a"), b"after").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        m.recorder.got.lock().unwrap().len(),
        2,
        "delivered after unbind"
    );
    let e = m.publish("MSUB", &format!("{base}.a"), b"x").unwrap_err();
    assert!(e.contains("has no wascc:messaging binding"), "{e}");
}

#[test]
fn queue_groups_deliver_each_message_once() {
    let m = messaging();
    let subject = unique("wascc.test.q");
    for actor in ["MQ1", "MQ2"] {
        m.bind(
            actor,
            &[
                ("URL", LOCAL),
                ("SUBSCRIPTION", &subject),
                ("QUEUEGROUP_NAME", "workers"),
            ],
        )
        .unwrap();
    }
    m.bind("MPUB", &[("URL", LOCAL)]).unwrap();
    for i in 0..40 {
        m.publish("MPUB", &subject, format!("{i}").as_bytes())
            .unwrap();
    }
    let got = m.recorder.wait_for(40);
    std::thread::sleep(Duration::from_millis(200));
    let got_all = m.recorder.got.lock().unwrap().clone();
    assert_eq!(got_all.len(), 40, "each message once across the group");
    assert_eq!(got.len(), 40);
    let first = got.iter().filter(|(a, _)| a == "MQ1").count();
    assert!(
        first > 0 && first < 40,
        "one member got {first} of 40: no spreading"
    );
}

#[test]
fn requests_get_replies_and_time_out_without_responders() {
    let m = messaging();
    let subject = unique("wascc.test.req");
    // A responder on plain NATS.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let responder = rt.block_on(async_nats::connect(LOCAL)).unwrap();
    let mut sub = rt.block_on(responder.subscribe(subject.clone())).unwrap();
    // In place at the server before the first request: a round trip (a
    // request no one answers; async-nats's flush only writes the buffer).
    let _ = rt.block_on(responder.request("_WASCC_SYNC.responder", "".into()));
    let c = responder.clone();
    rt.spawn(async move {
        use futures_lite::StreamExt;
        while let Some(msg) = sub.next().await {
            let mut reply = b"re:".to_vec();
            reply.extend_from_slice(&msg.payload);
            c.publish(msg.reply.unwrap(), reply.into()).await.unwrap();
        }
    });
    m.bind("MREQ", &[("URL", LOCAL)]).unwrap();
    let req = RequestMessage {
        subject: subject.clone(),
        body: b"ping".to_vec(),
        timeout_ms: 2000,
    };
    let r = m
        .call("MREQ", OP_PERFORM_REQUEST, encode(&req).unwrap())
        .unwrap();
    assert_eq!(r, b"re:ping");
    let req = RequestMessage {
        subject: unique("wascc.test.nobody"),
        body: vec![],
        timeout_ms: 300,
    };
    let started = Instant::now();
    let e = m
        .call("MREQ", OP_PERFORM_REQUEST, encode(&req).unwrap())
        .unwrap_err();
    assert!(e.0.contains("request on"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_binding_values_and_subjects_are_refused() {
    let m = messaging();
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "binding value URL is required"),
        (
            &[("URL", "http://127.0.0.1:4222")],
            "is not a NATS server address",
        ),
        (
            &[("URL", LOCAL), ("SUBSCRIPTION", "a..b")],
            "SUBSCRIPTION subject \"a..b\" is not valid",
        ),
        (
            &[("URL", LOCAL), ("SUBSCRIPTION", "a.>.b")],
            "\">\" must be the last token",
        ),
        (
            &[("URL", LOCAL), ("SUBSCRIPTION", "a b")],
            "holds the character ' '",
        ),
        (
            &[("URL", LOCAL), ("QUEUEGROUP_NAME", "q")],
            "SUBSCRIPTION names no subject",
        ),
        (
            &[("URL", LOCAL), ("SUBJECT", "x")],
            "unknown binding value \"SUBJECT\"",
        ),
    ];
    for (values, want) in cases {
        let e = m.bind("MBAD", values).unwrap_err();
        assert!(e.contains(want), "{values:?}: {e}");
    }
    let e = m
        .bind("MBAD", &[("URL", "nats://127.0.0.1:1")])
        .unwrap_err();
    assert!(
        e.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{e}"
    );
    // Publishing to a wildcard or malformed subject is refused, naming it.
    m.bind("MOK", &[("URL", LOCAL)]).unwrap();
    let e = m.publish("MOK", "a.*", b"x").unwrap_err();
    assert!(
        e.contains("wildcard \"*\" is only allowed in subscriptions"),
        "{e}"
    );
    let e = m.publish("MOK", "", b"x").unwrap_err();
    assert!(e.contains("the subject is empty"), "{e}");
}

struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    fn start(port: u16) -> NatsServer {
        NatsServer::start_with(port, &[])
    }

    /// Started with `extra` arguments (authorization, say).
    fn start_with(port: u16, extra: &[&str]) -> NatsServer {
        // Debian installs it under /usr/sbin, which a user's PATH may lack.
        let bin = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        NatsServer { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_user_and_password_or_a_token_in_the_url_are_sent() {
    for (extra, auth) in [
        (
            &["--user", "wascc", "--pass", "s3cret"][..],
            "wascc:s3cret@",
        ),
        (&["--auth", "t0ken"][..], "t0ken@"),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let _server = NatsServer::start_with(port, extra);
        let m = messaging();
        // Without them: refused, named.
        let e = m
            .bind("MNONE", &[("URL", &format!("nats://127.0.0.1:{port}"))])
            .unwrap_err();
        assert!(e.contains("uthorization"), "{e}");
        let url = format!("nats://{auth}127.0.0.1:{port}");
        m.bind("MSUB", &[("URL", &url), ("SUBSCRIPTION", "jobs")])
            .unwrap();
        m.bind("MPUB", &[("URL", &url)]).unwrap();
        assert_eq!(m.publish("MPUB", "jobs", b"in"), Ok(true));
        assert_eq!(m.recorder.wait_for(1).len(), 1);
    }
}

#[test]
fn a_restarted_server_gets_the_subscriptions_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = NatsServer::start(port);
    let url = format!("nats://127.0.0.1:{port}");
    let m = messaging();
    m.bind("MSUB", &[("URL", &url), ("SUBSCRIPTION", "jobs")])
        .unwrap();
    m.bind("MPUB", &[("URL", &url)]).unwrap();
    m.publish("MPUB", "jobs", b"before").unwrap();
    assert_eq!(m.recorder.wait_for(1).len(), 1);
    futures_lite::future::block_on(m.provider.health()).unwrap();

    server.stop();
    // A request while the server is down fails with an error, in bounded time.
    let req = RequestMessage {
        subject: "jobs.rpc".into(),
        body: vec![],
        timeout_ms: 500,
    };
    let started = Instant::now();
    assert!(
        m.call("MPUB", OP_PERFORM_REQUEST, encode(&req).unwrap())
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a dead server stalled the request"
    );
    let started = Instant::now();
    while futures_lite::future::block_on(m.provider.health()).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "health stayed fine with the server down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let _server = NatsServer::start(server.port);
    let started = Instant::now();
    while futures_lite::future::block_on(m.provider.health()).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no reconnection within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Subscriptions are re-established on reconnect.
    let started = Instant::now();
    while m.recorder.got.lock().unwrap().len() < 2 {
        m.publish("MPUB", "jobs", b"after").unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no delivery after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
