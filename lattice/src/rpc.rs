//! Remote invocation of actors over NATS. A host serves its actors on
//! `wasmbus.v1.<lattice>.actor.<key>` (queue group: the key, so that one
//! host of several running the actor takes each invocation) and on its own
//! subjects, `wasmbus.v1.<lattice>.host.<host>.actor.<key>`. A caller sends
//! to one of the hosts its view ([`Directory`]) lists as serving the actor,
//! in turn, on that host's subject; on the queue-group subject only when
//! its view lists none (or those it tried answered that they no longer
//! serve it). A host's own subscription lives as long as the host: a
//! stopped actor's invocations are answered, never lost — unsubscribing
//! drops what the server sent in the meantime (async-nats forgets the
//! subscription as soon as its UNSUB is written, before the server has
//! seen it). Every invocation is sealed ([`crate::invocation`]); the seal
//! and the operation travel as NATS headers beside the unchanged payload.
//! A reply carries the actor's payload, or the header `wascc-error`.

use crate::actor_subject;
use crate::blocklist::BlockSet;
use crate::directory::Directory;
use crate::invocation::{
    Answer, Invocation, Refused, Seal, Sealer, Verifier, reply_bytes, signed_by,
};
use crate::limits::{MAX_HOSTS_TRIED, MAX_REMOTE_CALL, REMOTE_CALL_TIMEOUT};
use crate::pairing::PeerKey;
use crate::state::Lattice;
use async_nats::HeaderMap;
use futures_lite::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A boxed reply of an invocation.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;

/// What a host offers the lattice: invoking the actors it runs.
pub trait LocalActors: Send + Sync + 'static {
    /// Invokes `operation` on local actor `actor` for `origin` (the calling
    /// actor's key, or a host key) with the payload as sent (taken before
    /// the call returns: the future owns nothing of it). With `shape`, the
    /// payload is a message from a provider in the current codec shape, to
    /// be reshaped for the actor's codec; without, it travels as the
    /// calling actor wrote it. `depth` is the invocation's call depth.
    fn invoke(
        &self,
        origin: &str,
        actor: &str,
        operation: &str,
        payload: &[u8],
        shape: bool,
        depth: u32,
    ) -> ReplyFuture;
}

/// A binding of an actor to a provider on a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingKey {
    /// The actor's key.
    pub actor: String,
    /// The capability id.
    pub capability: String,
    /// The binding name.
    pub binding: String,
}

/// What a host offers the lattice: calls through the bindings it holds.
pub trait LocalProviders: Send + Sync + 'static {
    /// Calls `operation` of the provider behind `binding` for its actor;
    /// the reply is the provider's, in the current codec shape (the
    /// calling host reshapes it for the actor).
    fn call(&self, binding: &BindingKey, operation: &str, payload: &[u8]) -> ReplyFuture;
}

/// The metric of [`Rpc::call_durations_prometheus`].
pub const CALL_DURATIONS: &str = "wascc_lattice_call_duration_seconds";

const H_OPERATION: &str = "wascc-op";
const H_CALLER: &str = "wascc-caller";
/// The seal in one header: `<origin> <timestamp ms> <seq> <depth> <tags>
/// <signature>`, tags base64url joined by `,`, `-` for none.
const H_SEAL: &str = "wascc-seal";
const H_ERROR: &str = "wascc-error";
/// The seal of a reply: `<answering host> <tag> <signature>` (`-` for
/// none), over [`crate::invocation::reply_bytes`].
const H_REPLY: &str = "wascc-reply";
/// On an error reply: the seal carried no tag for the receiving host and
/// no signature; the sender signs the invocation and sends it again.
const H_RESEAL: &str = "wascc-reseal";
/// On an error reply: this host does not serve the subject (any more);
/// the sender tries another.
const H_MOVED: &str = "wascc-moved";
const H_SHAPE: &str = "wascc-shape";
/// The value of `wascc-shape` for a provider's message in the current shape.
const SHAPE_CURRENT: &str = "current";

/// Sends one sealed invocation and waits for its reply (or an error that
/// names what failed). Public so that tests can send seals of their own;
/// the reply's seal is not checked.
pub async fn request_sealed(
    client: &async_nats::Client,
    subject: &str,
    caller: &str,
    operation: &str,
    payload: Vec<u8>,
    seal: &Seal,
) -> Result<Vec<u8>, String> {
    request_with(
        client,
        subject,
        caller,
        operation,
        payload.into(),
        seal,
        (false, None),
    )
    .await
    .map(|(payload, _)| payload.to_vec())
    .map_err(|e| e.message)
}

/// Why a request failed.
struct Failed {
    message: String,
    /// The receiver could not check the seal's tags: sign and send again.
    reseal: bool,
    /// The receiver does not serve the subject: try another host.
    moved: bool,
}

impl From<String> for Failed {
    fn from(message: String) -> Self {
        Failed {
            message,
            reseal: false,
            moved: false,
        }
    }
}

fn seal_header(seal: &Seal) -> String {
    let mut out = format!(
        "{} {} {} {} ",
        seal.origin, seal.timestamp_ms, seal.seq, seal.depth
    );
    if seal.tags.is_empty() {
        out.push('-');
    }
    for (i, t) in seal.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        data_encoding::BASE64URL_NOPAD.encode_append(t, &mut out);
    }
    out.push(' ');
    out.push_str(if seal.signature.is_empty() {
        "-"
    } else {
        &seal.signature
    });
    out
}

async fn request_with(
    client: &async_nats::Client,
    subject: &str,
    caller: &str,
    operation: &str,
    payload: bytes::Bytes,
    seal: &Seal,
    (shape, deadline): (bool, Option<Instant>),
) -> Result<(bytes::Bytes, Option<String>), Failed> {
    // The calling invocation's deadline, when it comes before the reply
    // timeout (see `crate::pending`).
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let by_deadline = left.is_some_and(|l| l < REMOTE_CALL_TIMEOUT);
    let wait = left.map_or(REMOTE_CALL_TIMEOUT, |l| l.min(REMOTE_CALL_TIMEOUT));
    let mut h = HeaderMap::new();
    for (name, value) in invocation_headers(caller, operation, seal, shape) {
        h.insert(name, value.as_str());
    }
    let request = async_nats::Request::new()
        .headers(h)
        .payload(payload)
        .timeout(Some(wait));
    let reply = client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|e| match e.kind() {
            // On a host's own subject: the host is gone (killed; the view
            // keeps it until its record expires). Another is tried.
            async_nats::RequestErrorKind::NoResponders => Failed {
                message: "no host of the lattice runs it".to_string(),
                reseal: false,
                moved: true,
            },
            async_nats::RequestErrorKind::TimedOut if by_deadline => {
                crate::pending::CALLER_DEADLINE_PASSED.to_string().into()
            }
            async_nats::RequestErrorKind::TimedOut => {
                format!("no reply within {REMOTE_CALL_TIMEOUT:?}").into()
            }
            _ => e.to_string().into(),
        })?;
    reply_from(&reply.headers.as_ref(), reply.payload)
}

/// The headers of an invocation: its operation, caller, seal and, for a
/// provider's message in the current codec shape, that shape.
fn invocation_headers(
    caller: &str,
    operation: &str,
    seal: &Seal,
    shape: bool,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (H_OPERATION, operation.to_string()),
        (H_CALLER, caller.to_string()),
    ];
    if shape {
        h.push((H_SHAPE, SHAPE_CURRENT.to_string()));
    }
    h.push((H_SEAL, seal_header(seal)));
    h
}

/// A reply read from a shard's connection: its payload and seal, or the
/// error it carries (the server's "no responders" status: the host is
/// gone, another is tried).
fn reply_of(msg: crate::wire::Msg) -> Result<(bytes::Bytes, Option<String>), Failed> {
    if msg.status == Some(503) {
        return Err(Failed {
            message: "no host of the lattice runs it".to_string(),
            reseal: false,
            moved: true,
        });
    }
    reply_from(msg.headers.as_slice(), msg.payload.into())
}

/// A reply's payload and seal, or the error its headers carry.
fn reply_from<H: Headers + ?Sized>(
    h: &H,
    payload: bytes::Bytes,
) -> Result<(bytes::Bytes, Option<String>), Failed> {
    if let Some(err) = h.get(H_ERROR) {
        return Err(Failed {
            message: err.to_string(),
            reseal: h.get(H_RESEAL).is_some(),
            moved: h.get(H_MOVED).is_some(),
        });
    }
    Ok((payload, h.get(H_REPLY).map(str::to_string)))
}

/// Checks the seal of a successful reply to invocation `answer` (its
/// `responder` taken from the seal): a MAC tag with the keys shared with
/// the answering host, or its signature; refused from a blocked host. An
/// error reply is not checked: it is reported as an error either way.
fn check_reply(
    directory: &Directory,
    blocked: &BlockSet,
    answer: Answer<'_>,
    seal: Option<&str>,
    payload: &[u8],
) -> Result<(), String> {
    let unsealed = || "the reply is not sealed by a host of the lattice".to_string();
    let mut parts = seal.ok_or_else(unsealed)?.split(' ');
    let (Some(responder), Some(tag), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(unsealed());
    };
    if let Some(k) = blocked.any(&[responder]) {
        return Err(format!(
            "the reply comes from host {k}, which is blocked in the lattice"
        ));
    }
    let answer = Answer {
        responder,
        ..answer
    };
    let bytes = reply_bytes(&answer, false, payload);
    let tagged = tag != "-"
        && directory.peer(responder).is_some_and(|p| {
            data_encoding::BASE64URL_NOPAD
                .decode(tag.as_bytes())
                .ok()
                .and_then(|t| t.try_into().ok())
                .is_some_and(|t: crate::pairing::Tag| p.check(&bytes, &[t]))
        });
    if tagged || (sig != "-" && signed_by(responder, &bytes, sig)) {
        return Ok(());
    }
    tracing::warn!(%responder, subject = %answer.subject, "reply refused: its seal does not match");
    Err(format!(
        "the reply's seal (host {responder}) does not match it (forged or altered)"
    ))
}

/// Counts of a host's remote invocations, by how they were sealed.
#[derive(Debug, Default)]
pub struct RpcCounters {
    sent_tagged: AtomicU64,
    sent_signed: AtomicU64,
    resealed: AtomicU64,
    redirected: AtomicU64,
    received: AtomicU64,
    refused: AtomicU64,
    by_shards: AtomicU64,
    sent_by_shards: AtomicU64,
    /// How long calls to other hosts took, from sealing to the checked
    /// reply (or the error), whichever path sent them.
    calls: crate::latency::LatencyHistogram,
}

/// A snapshot of [`RpcCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RpcCounts {
    /// Invocations sent with MAC tags.
    pub sent_tagged: u64,
    /// Invocations sent signed (no key for some host serving the subject).
    pub sent_signed: u64,
    /// Tagged invocations sent again signed (the receiver had no tag).
    pub resealed: u64,
    /// Invocations sent again to another host (the one tried no longer
    /// served the subject).
    pub redirected: u64,
    /// Invocations received whose seal passed.
    pub received: u64,
    /// Invocations received and refused (seal, block list).
    pub refused: u64,
    /// Invocations received by the shards on their own connections.
    pub by_shards: u64,
    /// Invocations sent by the shards on their own connections.
    pub sent_by_shards: u64,
}

impl RpcCounts {
    /// The counts in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        format!(
            "# HELP wascc_lattice_sent_total Invocations sent to other hosts, by seal.\n\
             # TYPE wascc_lattice_sent_total counter\n\
             wascc_lattice_sent_total{{seal=\"mac\"}} {}\n\
             wascc_lattice_sent_total{{seal=\"signature\"}} {}\n\
             # HELP wascc_lattice_resealed_total Tagged invocations sent again signed.\n\
             # TYPE wascc_lattice_resealed_total counter\n\
             wascc_lattice_resealed_total {}\n\
             # HELP wascc_lattice_redirected_total Invocations sent again to another host: the one tried no longer served the subject.\n\
             # TYPE wascc_lattice_redirected_total counter\n\
             wascc_lattice_redirected_total {}\n\
             # HELP wascc_lattice_received_total Invocations from other hosts, by outcome of the checks.\n\
             # TYPE wascc_lattice_received_total counter\n\
             wascc_lattice_received_total{{outcome=\"accepted\"}} {}\n\
             wascc_lattice_received_total{{outcome=\"refused\"}} {}\n\
             # HELP wascc_lattice_shard_received_total Invocations received by the shards on their own connections (of those above).\n\
             # TYPE wascc_lattice_shard_received_total counter\n\
             wascc_lattice_shard_received_total {}\n\
             # HELP wascc_lattice_shard_sent_total Invocations sent by the shards on their own connections (of those sent).\n\
             # TYPE wascc_lattice_shard_sent_total counter\n\
             wascc_lattice_shard_sent_total {}\n",
            self.sent_tagged,
            self.sent_signed,
            self.resealed,
            self.redirected,
            self.received,
            self.refused,
            self.by_shards,
            self.sent_by_shards
        )
    }
}

impl RpcCounters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RpcCounts {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RpcCounts {
            sent_tagged: read(&self.sent_tagged),
            sent_signed: read(&self.sent_signed),
            resealed: read(&self.resealed),
            redirected: read(&self.redirected),
            received: read(&self.received),
            refused: read(&self.refused),
            by_shards: read(&self.by_shards),
            sent_by_shards: read(&self.sent_by_shards),
        }
    }
}

/// A host's side of remote invocation: calling actors and providers
/// elsewhere, and serving its own actors and bindings (added and removed as
/// they start, stop, bind and unbind).
pub struct Rpc {
    lattice: Lattice,
    sealer: Arc<Sealer>,
    directory: Arc<Directory>,
    runtime: tokio::runtime::Handle,
    local: Arc<dyn LocalActors>,
    providers: Arc<dyn LocalProviders>,
    verifier: Arc<Mutex<Verifier>>,
    blocked: Arc<BlockSet>,
    counters: Arc<RpcCounters>,
    outbox: Arc<Outbox>,
    /// Publishes the outbox.
    replier: tokio::task::JoinHandle<()>,
    /// Each subject served: what serves it, and the signal that ends its
    /// queue-group subscription. Shared with the task that receives on
    /// this host's own subjects.
    serving: Arc<Mutex<HashMap<String, Subscription>>>,
    /// Receives on this host's own subjects (made with the first subject
    /// served).
    own: tokio::sync::OnceCell<tokio::task::JoinHandle<()>>,
    /// Turns through the hosts serving a subject.
    turn: std::sync::atomic::AtomicUsize,
    /// `wasmbus.v1.<lattice>.`, and this host's own subjects' prefix
    /// (`….host.<host>.`), made once rather than per invocation.
    lattice_prefix: String,
    own_prefix: String,
    /// The host's shards take the invocations of its actors on its own
    /// subject ([`Rpc::admit`]); the services thread only its bindings'.
    shards_take_actors: std::sync::atomic::AtomicBool,
}

impl Rpc {
    /// Remote invocation in `lattice` for the host whose key `sealer`
    /// holds and whose view of the lattice is `directory` (for the MAC
    /// keys it shares with other hosts), serving `local` actors and
    /// `providers` with seals checked by `verifier`; invocations from or
    /// to a key in `blocked` are refused. NATS work runs on `runtime`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lattice: Lattice,
        sealer: Arc<Sealer>,
        directory: Arc<Directory>,
        runtime: tokio::runtime::Handle,
        local: Arc<dyn LocalActors>,
        providers: Arc<dyn LocalProviders>,
        verifier: Verifier,
        blocked: Arc<BlockSet>,
    ) -> Arc<Rpc> {
        let outbox = Arc::new(Outbox::default());
        let replier = runtime.spawn(outbox.clone().publish(lattice.client().clone()));
        let lattice_prefix = crate::lattice_prefix(lattice.name());
        let own_prefix = crate::host_prefix(lattice.name(), sealer.origin());
        Arc::new(Rpc {
            outbox,
            replier,
            lattice,
            sealer,
            directory,
            runtime,
            local,
            providers,
            verifier: Arc::new(Mutex::new(verifier)),
            blocked,
            counters: Arc::default(),
            serving: Arc::default(),
            own: tokio::sync::OnceCell::new(),
            turn: Default::default(),
            lattice_prefix,
            own_prefix,
            shards_take_actors: Default::default(),
        })
    }

    /// Leaves the invocations of this host's actors on its own subject to
    /// its shards' connections ([`actor_subjects`](Self::actor_subjects),
    /// [`admit`](Self::admit)); before the first subject is served.
    pub fn leave_actors_to_shards(&self) {
        self.shards_take_actors.store(true, Ordering::Relaxed);
    }

    /// The subjects on which this host's actors are invoked on the host's
    /// own subject (`wasmbus.v1.<lattice>.host.<host>.actor.>`), and the
    /// queue group its shards share them in.
    pub fn actor_subjects(&self) -> (String, String) {
        (
            format!("{}actor.>", self.own_prefix),
            self.sealer.origin().to_string(),
        )
    }

    /// Checks an invocation a shard received on `subject` (this host's own)
    /// with `headers` and `payload`, as the services thread checks those it
    /// receives: the actor must be served here (otherwise `wascc-moved`),
    /// the seal must pass, the block list must allow it. Counted.
    pub fn admit(
        &self,
        subject: &str,
        headers: &[(String, String)],
        payload: &[u8],
    ) -> Result<Admitted, Refusal> {
        RpcCounters::bump(&self.counters.by_shards);
        let me = self.sealer.origin();
        let moved = |what: &str| {
            Refusal(Failed {
                message: format!("host {me} does not serve {what}"),
                reseal: false,
                moved: true,
            })
        };
        let rest = subject
            .strip_prefix(self.own_prefix.as_str())
            .ok_or_else(|| moved(subject))?;
        let canonical = format!("{}{rest}", self.lattice_prefix);
        let server = lock(&self.serving)
            .get(&canonical)
            .map(|s| s.server.clone())
            .ok_or_else(|| moved(&canonical))?;
        let Served::Actor(actor) = &server.served else {
            return Err(moved(&canonical));
        };
        let actor = actor.clone();
        let caller = header(headers, H_CALLER).unwrap_or("").to_string();
        let shape = header(headers, H_SHAPE) == Ok(SHAPE_CURRENT);
        let checked = parse_seal(headers)
            .map_err(Failed::from)
            .and_then(|(operation, seal)| {
                let peer = self.directory.peer(&seal.origin);
                server
                    .check(payload, &caller, operation, &seal, peer.as_deref())
                    .map(|(operation, depth)| (operation, depth, seal, peer))
            });
        RpcCounters::bump(if checked.is_ok() {
            &self.counters.received
        } else {
            &self.counters.refused
        });
        let (operation, depth, asked, peer) = checked.map_err(Refusal)?;
        Ok(Admitted {
            server,
            asked,
            peer,
            actor,
            operation,
            depth,
            shape,
            caller,
        })
    }

    /// How long this host's calls to other hosts took, in the Prometheus
    /// text format (`wascc_lattice_call_duration_seconds`).
    pub fn call_durations_prometheus(&self) -> String {
        self.counters.calls.prometheus(
            CALL_DURATIONS,
            "Calls to actors and providers on other hosts, from sealing to the checked reply or the error.",
        )
    }

    /// How many invocations were sent and received, by seal and outcome.
    pub fn counts(&self) -> RpcCounts {
        self.counters.snapshot()
    }

    /// The lattice.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    /// Invokes `operation` on `actor` on whichever host runs it, at call
    /// depth `depth` (`shape`: see [`LocalActors::invoke`]), giving up at
    /// `deadline` (the calling invocation's) if that comes before the reply
    /// timeout. The future may be awaited on any executor (the work runs on
    /// the runtime).
    pub fn call_actor(
        self: &Arc<Self>,
        caller: &str,
        actor: &str,
        operation: &str,
        payload: Vec<u8>,
        (shape, depth): (bool, u32),
        deadline: Option<Instant>,
    ) -> ReplyFuture {
        let subject = actor_subject(self.lattice.name(), actor);
        self.call(
            Call {
                subject,
                caller,
                parties: &[actor, caller],
                operation,
                shape,
                depth,
                deadline,
            },
            payload,
            format!("remote call to actor {actor}"),
        )
    }

    /// Calls `operation` of the provider behind `binding` on whichever host
    /// holds that binding for the actor, giving up at `deadline` as
    /// [`call_actor`](Self::call_actor) does; the reply is in the current
    /// codec shape.
    pub fn call_provider(
        self: &Arc<Self>,
        binding: &BindingKey,
        operation: &str,
        payload: Vec<u8>,
        deadline: Option<Instant>,
    ) -> ReplyFuture {
        let subject = binding_subject(self.lattice.name(), binding);
        self.call(
            Call {
                subject,
                caller: &binding.actor,
                parties: &[&binding.actor],
                operation,
                shape: false,
                depth: 0,
                deadline,
            },
            payload,
            provider_call_what(binding),
        )
    }

    fn call(self: &Arc<Self>, call: Call<'_>, payload: Vec<u8>, what: String) -> ReplyFuture {
        if let Err(e) = self.precheck(call.parties, payload.len(), &what) {
            return Box::pin(async move { Err(e) });
        }
        // Disconnected: say so at once rather than after the reply timeout
        // (the client reconnects in the background).
        if self.lattice.client().connection_state() != async_nats::connection::State::Connected {
            return Box::pin(async move {
                Err(format!(
                    "{what}: the lattice's NATS server is unreachable (reconnecting)"
                ))
            });
        }
        let this = self.clone();
        let owned = OwnedCall::from(&call);
        let work = async move {
            let client = this.lattice.client();
            let payload = bytes::Bytes::from(payload);
            let (caller, operation, shape) = (&owned.caller, &owned.operation, owned.shape);
            let deadline = owned.deadline;
            let send = |to: String, seal: Seal| {
                let payload = payload.clone();
                let how = (shape, deadline);
                async move { request_with(client, &to, caller, operation, payload, &seal, how).await }
            };
            let call = (
                owned.subject.as_str(),
                owned.operation.as_str(),
                owned.depth,
            );
            this.attempts(call, &payload, &what, send).await
        };
        // On the services runtime, whose NATS client needs it, not on the
        // caller's thread (a shard): a signature, when one is needed, costs
        // tens of µs. (Run in the caller's task when the caller is on the
        // services runtime already, 64 concurrent callers got half the
        // throughput in `wascc-bench lattice`.)
        let task = self.runtime.spawn(work);
        Box::pin(async move {
            task.await
                .unwrap_or_else(|e| Err(format!("remote call task failed: {e}")))
        })
    }

    /// Calls `operation` of `to` (an actor on whichever host runs it, or
    /// the provider behind a binding on whichever host holds it) as
    /// [`call_actor`](Self::call_actor) and
    /// [`call_provider`](Self::call_provider) do, but sends each attempt
    /// through `send` (subject, headers, payload → the reply message, or
    /// why none came): a shard's own lattice connection, which keeps the
    /// calling invocation's deadline. Runs in the caller's task.
    pub async fn call_over<S, F>(
        &self,
        to: Over<'_>,
        operation: &str,
        payload: Vec<u8>,
        send: S,
    ) -> Result<Vec<u8>, String>
    where
        S: Fn(String, Vec<(&'static str, String)>, bytes::Bytes) -> F,
        F: Future<Output = Result<crate::wire::Msg, String>>,
    {
        let lattice = self.lattice.name();
        let shape = matches!(to, Over::Delivery(_));
        let (subject, caller, parties, depth, what) = match to {
            Over::Actor {
                caller,
                actor,
                depth,
            } => (
                actor_subject(lattice, actor),
                caller,
                [actor, caller],
                depth,
                format!("remote call to actor {actor}"),
            ),
            Over::Provider(binding) => (
                binding_subject(lattice, binding),
                binding.actor.as_str(),
                [binding.actor.as_str(); 2],
                0,
                provider_call_what(binding),
            ),
            Over::Delivery(actor) => (
                actor_subject(lattice, actor),
                PROVIDER_CALLER,
                [actor; 2],
                0,
                format!("remote call to actor {actor}"),
            ),
        };
        self.precheck(&parties, payload.len(), &what)?;
        let payload = bytes::Bytes::from(payload);
        let attempt = |to: String, seal: Seal| {
            RpcCounters::bump(&self.counters.sent_by_shards);
            let headers = invocation_headers(caller, operation, &seal, shape);
            let sent = send(to, headers, payload.clone());
            async move { reply_of(sent.await.map_err(Failed::from)?) }
        };
        self.attempts((&subject, operation, depth), &payload, &what, attempt)
            .await
    }

    /// Refuses a call before it is sent: a party blocked, a payload over
    /// the lattice's limit.
    fn precheck(&self, parties: &[&str], len: usize, what: &str) -> Result<(), String> {
        if let Some(k) = self.blocked.any(parties) {
            return Err(format!("{what}: {k} is blocked in the lattice"));
        }
        if len > MAX_REMOTE_CALL {
            return Err(format!(
                "{what}: payload of {len} bytes exceeds the lattice limit of {MAX_REMOTE_CALL}"
            ));
        }
        Ok(())
    }

    /// Sends `call` (through `send`: subject and seal → the reply and its
    /// seal) to the hosts the view lists as serving its subject, in turn,
    /// up to [`MAX_HOSTS_TRIED`] of them, then to its queue group; checks
    /// the reply's seal.
    async fn attempts<S, F>(
        &self,
        (subject, operation, depth): (&str, &str, u32),
        payload: &[u8],
        what: &str,
        send: S,
    ) -> Result<Vec<u8>, String>
    where
        S: Fn(String, Seal) -> F,
        F: Future<Output = Result<(bytes::Bytes, Option<String>), Failed>>,
    {
        let started = std::time::Instant::now();
        let result = async {
            let Rpc {
                lattice,
                sealer,
                directory,
                counters,
                blocked,
                ..
            } = self;
            let lattice = lattice.name();
            let inv = Invocation {
                lattice,
                subject,
                operation,
                payload,
                depth,
            };
            let send = |to: String, seal: Seal| {
                let seq = seal.seq;
                let sent = send(to, seal);
                async move {
                    sent.await
                        .map(|(payload, reply_seal)| (seq, payload, reply_seal))
                }
            };
            let route = directory.recipients(subject);
            let targets = route.as_deref().map(|r| r.targets()).unwrap_or_default();
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            let mut reply = None;
            // A blocked host gets none (its answers would be refused).
            let open = (0..targets.len())
                .map(|i| &targets[(turn + i) % targets.len()])
                .filter(|t| blocked.any(&[t.host.as_str()]).is_none());
            for target in open.take(MAX_HOSTS_TRIED) {
                let to = crate::host_subject(lattice, &target.host, subject);
                let seal = match &target.peer {
                    Some(peer) => {
                        RpcCounters::bump(&counters.sent_tagged);
                        sealer.seal_for(&inv, crate::now_millis(), std::slice::from_ref(peer))
                    }
                    None => {
                        RpcCounters::bump(&counters.sent_signed);
                        sealer.seal(&inv, crate::now_millis())
                    }
                };
                let answer = match send(to.clone(), seal).await {
                    // The receiver has a newer exchange key than the view
                    // (it restarted): signed, anyone can check it. The
                    // invocation did not run there.
                    Err(Failed { reseal: true, .. }) if target.peer.is_some() => {
                        RpcCounters::bump(&counters.resealed);
                        send(to, sealer.seal(&inv, crate::now_millis())).await
                    }
                    other => other,
                };
                match answer {
                    // It stopped serving the subject and the view has not
                    // heard yet: the next one.
                    Err(Failed { moved: true, .. }) => RpcCounters::bump(&counters.redirected),
                    other => {
                        reply = Some(other);
                        break;
                    }
                }
            }
            // The view lists no host (one that started serving it a moment
            // ago may not be in it yet): whichever host NATS picks in the
            // subject's queue group, signed.
            let reply = match reply {
                Some(reply) => reply,
                None => {
                    RpcCounters::bump(&counters.sent_signed);
                    send(subject.to_string(), sealer.seal(&inv, crate::now_millis())).await
                }
            };
            let (seq, reply, reply_seal) = reply.map_err(|e| format!("{what}: {}", e.message))?;
            let answer = Answer {
                lattice,
                subject,
                origin: sealer.origin(),
                seq,
                responder: "",
            };
            check_reply(directory, blocked, answer, reply_seal.as_deref(), &reply)
                .map_err(|e| format!("{what}: {e}"))?;
            Ok(reply.to_vec())
        }
        .await;
        self.counters.calls.record(started.elapsed());
        result
    }

    /// Serves actor `key` to the lattice (until [`unserve`](Self::unserve)):
    /// invocations whose seal passes are run by the local actors; refusals
    /// are logged and answered with an error naming the reason. Serving an
    /// actor already served does nothing.
    pub async fn serve(&self, key: &str) -> Result<(), crate::LatticeError> {
        let subject = actor_subject(self.lattice.name(), key);
        self.subscribe(subject, key.to_string(), Served::Actor(key.to_string()))
            .await
    }

    /// Stops serving actor `key` (its subscription ends; invocations go to
    /// other hosts running it, or get "no host of the lattice runs it").
    /// Returns once the subscription's UNSUB is queued on the connection,
    /// so that an invocation this host sends afterwards (of an actor it no
    /// longer runs) is never routed to it: async-nats would drop it, and
    /// its caller wait out the timeout.
    ///
    /// Shards send on NATS connections of their own, which the server does
    /// not order with this one's UNSUB: it also waits (up to
    /// [`UNSERVE_FLUSH_TIMEOUT`](crate::limits::UNSERVE_FLUSH_TIMEOUT)) until
    /// the server has processed the UNSUB, so that nothing any connection
    /// of this host sends afterwards is routed to the ended subscription.
    pub async fn unserve(&self, key: &str) {
        if let Some(queued) = self.unsubscribe(&actor_subject(self.lattice.name(), key)) {
            let _ = queued.await;
            // Disconnected, the server has dropped the subscription with the
            // connection, and a reconnect does not renew an ended one.
            let client = self.lattice.client();
            if client.connection_state() == async_nats::connection::State::Connected {
                let flushed = client.flush();
                let _ = tokio::time::timeout(crate::limits::UNSERVE_FLUSH_TIMEOUT, flushed).await;
            }
        }
    }

    /// Serves a binding this host holds to the lattice: hosts running the
    /// actor without the binding call the provider here.
    pub async fn serve_binding(&self, binding: &BindingKey) -> Result<(), crate::LatticeError> {
        for token in [&binding.capability, &binding.binding] {
            if token.is_empty()
                || !token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
            {
                return Err(crate::LatticeError::InvalidName {
                    name: token.clone(),
                    reason: "a binding served to the lattice needs a name (and capability id) of letters, digits, _, - and :".into(),
                });
            }
        }
        let subject = binding_subject(self.lattice.name(), binding);
        self.subscribe(subject.clone(), subject, Served::Binding(binding.clone()))
            .await
    }

    /// Stops serving a binding.
    pub fn unserve_binding(&self, binding: &BindingKey) {
        self.unsubscribe(&binding_subject(self.lattice.name(), binding));
    }

    async fn subscribe(
        &self,
        subject: String,
        queue: String,
        served: Served,
    ) -> Result<(), crate::LatticeError> {
        if self.lock_serving().contains_key(&subject) {
            return Ok(());
        }
        self.listen().await?;
        let mut sub = self
            .lattice
            .client()
            .queue_subscribe(subject.clone(), queue)
            .await
            .map_err(|e| crate::LatticeError::Connect {
                url: "the lattice".into(),
                reason: format!("cannot subscribe to {subject}: {e}"),
            })?;
        // One shared context per subject: a message costs one Arc clone.
        let server = Arc::new(Server {
            lattice: self.lattice.name().to_string(),
            subject: subject.clone(),
            served,
            local: self.local.clone(),
            providers: self.providers.clone(),
            verifier: self.verifier.clone(),
            directory: self.directory.clone(),
            blocked: self.blocked.clone(),
            counters: self.counters.clone(),
            outbox: self.outbox.clone(),
            sealer: self.sealer.clone(),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<Drained>();
        let serves = server.clone();
        self.runtime.spawn(async move {
            let drained = loop {
                tokio::select! {
                    msg = sub.next() => match msg {
                        Some(msg) => {
                            let server = server.clone();
                            tokio::spawn(async move { server.serve_one(msg).await });
                        }
                        None => return,
                    },
                    drained = &mut stopped => break drained.ok(),
                }
            };
            // Drained, not dropped: what the client holds is still
            // answered, with an error if what it names is gone. (What the
            // server sends between our UNSUB and its processing of it is
            // lost: async-nats forgets the subscription at once. Callers
            // come here only when their view lists no host; see the
            // module's doc.)
            let _ = sub.drain().await;
            // The UNSUB is queued on the connection: what this host sends
            // from now on reaches the server after it.
            if let Some(d) = drained {
                let _ = d.send(());
            }
            while let Some(msg) = sub.next().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve_one(msg).await });
            }
        });
        let serving = Subscription {
            stop,
            server: serves,
        };
        if let Some(old) = self.lock_serving().insert(subject, serving) {
            old.end();
        }
        Ok(())
    }

    /// Ends the subscription to `subject`; the returned receiver says when
    /// its UNSUB is queued on the connection.
    fn unsubscribe(&self, subject: &str) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.lock_serving().remove(subject).map(Subscription::end)
    }

    /// Stops serving everything.
    pub fn unserve_all(&self) {
        for (_, s) in self.lock_serving().drain() {
            s.end();
        }
    }

    fn lock_serving(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        lock(&self.serving)
    }

    /// Receives on this host's own subjects, once: an invocation of a
    /// subject served goes to its server; one of a subject not (or no
    /// longer) served is answered so, and its sender tries another host.
    async fn listen(&self) -> Result<(), crate::LatticeError> {
        self.own
            .get_or_try_init(|| async {
                let me = self.sealer.origin().to_string();
                let own = self.own_prefix.clone();
                let subject = if self.shards_take_actors.load(Ordering::Relaxed) {
                    format!("{own}provider.>")
                } else {
                    format!("{own}>")
                };
                let mut sub = self.lattice.subscribe(&subject).await?;
                let (serving, outbox) = (self.serving.clone(), self.outbox.clone());
                let prefix = self.lattice_prefix.clone();
                Ok(self.runtime.spawn(async move {
                    while let Some(msg) = sub.next().await {
                        let Some(rest) = msg.subject.strip_prefix(own.as_str()) else {
                            continue;
                        };
                        let subject = format!("{prefix}{rest}");
                        let server = lock(&serving).get(&subject).map(|s| s.server.clone());
                        match (server, msg.reply.clone()) {
                            (Some(server), _) => {
                                tokio::spawn(async move { server.serve_one(msg).await });
                            }
                            (None, Some(reply_to)) => outbox.push(
                                reply_to,
                                Err(Failed {
                                    message: format!("host {me} does not serve {subject}"),
                                    reseal: false,
                                    moved: true,
                                }),
                            ),
                            (None, None) => {}
                        }
                    }
                }))
            })
            .await
            .map(drop)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Rpc {
    fn drop(&mut self) {
        self.replier.abort();
        if let Some(own) = self.own.get() {
            own.abort();
        }
    }
}

/// An invocation a shard received on its own connection and
/// [admitted](Rpc::admit).
pub struct Admitted {
    server: Arc<Server>,
    asked: Seal,
    peer: Option<Arc<PeerKey>>,
    /// The actor to run.
    pub actor: String,
    /// The operation.
    pub operation: String,
    /// The invocation's call depth.
    pub depth: u32,
    /// A provider's message in the current codec shape (see
    /// [`LocalActors::invoke`]).
    pub shape: bool,
    /// The calling actor's key (informational).
    pub caller: String,
}

impl Admitted {
    /// The header of the reply with `payload` and its seal.
    pub fn reply_seal(&self, payload: &[u8]) -> (&'static str, String) {
        let seal = self
            .server
            .seal_reply(&self.asked, self.peer.as_deref(), payload);
        (H_REPLY, seal)
    }
}

/// Why an invocation is answered with an error.
pub struct Refusal(Failed);

impl Refusal {
    /// The error.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The headers of the error reply (`wascc-error`, and `wascc-reseal`
    /// or `wascc-moved` when the sender is to act on it).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        error_headers(&self.0)
    }
}

/// The headers of an error reply.
fn error_headers(e: &Failed) -> Vec<(&'static str, String)> {
    // Header values are single lines.
    let mut h = vec![(H_ERROR, e.message.replace(['\r', '\n'], " "))];
    if e.reseal {
        h.push((H_RESEAL, "1".into()));
    }
    if e.moved {
        h.push((H_MOVED, "1".into()));
    }
    h
}

/// An error reply's headers for `message` (an invocation admitted but not
/// run: the actor failed, or is not on this host).
pub fn error_reply(message: &str) -> Vec<(&'static str, String)> {
    error_headers(&Failed::from(message.to_string()))
}

/// Told when a subscription's UNSUB is queued on the connection.
type Drained = tokio::sync::oneshot::Sender<()>;

/// A subject being served.
struct Subscription {
    /// Ends the queue-group subscription (its buffered messages are still
    /// answered).
    stop: tokio::sync::oneshot::Sender<Drained>,
    /// Serves the subject's invocations.
    server: Arc<Server>,
}

impl Subscription {
    /// Ends it; the receiver says when its UNSUB is queued.
    fn end(self) -> tokio::sync::oneshot::Receiver<()> {
        let (drained, queued) = tokio::sync::oneshot::channel();
        let _ = self.stop.send(drained);
        queued
    }
}

/// A call's parts, owned (for the task that sends it).
struct OwnedCall {
    subject: String,
    caller: String,
    operation: String,
    shape: bool,
    depth: u32,
    deadline: Option<Instant>,
}

impl From<&Call<'_>> for OwnedCall {
    fn from(c: &Call<'_>) -> Self {
        OwnedCall {
            subject: c.subject.clone(),
            caller: c.caller.to_string(),
            operation: c.operation.to_string(),
            shape: c.shape,
            depth: c.depth,
            deadline: c.deadline,
        }
    }
}

/// One outgoing invocation, besides its payload.
struct Call<'a> {
    subject: String,
    caller: &'a str,
    /// Keys checked against the block list.
    parties: &'a [&'a str],
    operation: &'a str,
    shape: bool,
    depth: u32,
    /// The calling invocation's deadline (none: only the reply timeout).
    deadline: Option<Instant>,
}

/// Who a call sent on a shard's own connection is for
/// ([`Rpc::call_over`]).
#[derive(Debug, Clone, Copy)]
pub enum Over<'a> {
    /// An actor, called by `caller` (an actor) at call depth `depth`.
    Actor {
        /// The calling actor.
        caller: &'a str,
        /// The called actor.
        actor: &'a str,
        /// The call's depth.
        depth: u32,
    },
    /// The provider behind a binding (the binding's actor calls it).
    Provider(&'a BindingKey),
    /// An actor, sent a provider's message (an HTTP request, say) in the
    /// current codec shape, reshaped for the actor where it runs.
    Delivery(&'a str),
}

/// The caller named in invocations that carry a provider's message to an
/// actor (it is no actor's key).
pub const PROVIDER_CALLER: &str = "provider";

/// What a call to the provider behind `binding` is called in its errors.
fn provider_call_what(binding: &BindingKey) -> String {
    format!(
        "remote call to {} ({}) for actor {}",
        binding.capability, binding.binding, binding.actor
    )
}

/// The subject of the provider behind one binding of one actor:
/// `wasmbus.v1.<lattice>.provider.<capability>.<binding>.<actor>`.
pub fn binding_subject(lattice: &str, binding: &BindingKey) -> String {
    format!(
        "{}.{}",
        crate::provider_subject(lattice, &binding.capability, &binding.binding),
        binding.actor
    )
}

/// An invocation's headers, as async-nats hands them to the services
/// thread or as a shard read them off its own connection.
trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for Option<&HeaderMap> {
    fn get(&self, name: &str) -> Option<&str> {
        self.and_then(|h| h.get(name)).map(|v| v.as_str())
    }
}

impl Headers for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn header<'a, H: Headers + ?Sized>(h: &'a H, name: &str) -> Result<&'a str, String> {
    h.get(name)
        .ok_or_else(|| format!("the invocation has no {name} header"))
}

fn parse_seal<H: Headers + ?Sized>(h: &H) -> Result<(String, Seal), String> {
    let operation = header(h, H_OPERATION)?.to_string();
    let seal = header(h, H_SEAL)?;
    let bad = |what: &str| format!("header {H_SEAL} has no valid {what}");
    let mut parts = seal.split(' ');
    let mut next = |what: &str| parts.next().ok_or_else(|| bad(what));
    let origin = next("origin")?.to_string();
    let timestamp_ms = next("timestamp")?.parse().map_err(|_| bad("timestamp"))?;
    let seq = next("sequence number")?
        .parse()
        .map_err(|_| bad("sequence number"))?;
    let depth = next("depth")?.parse().map_err(|_| bad("depth"))?;
    let tags = match next("tags")? {
        "-" => Vec::new(),
        list => list
            .split(',')
            .take(crate::limits::MAX_SEAL_TAGS)
            .map(|t| {
                data_encoding::BASE64URL_NOPAD
                    .decode(t.as_bytes())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("tags"))
            })
            .collect::<Result<_, _>>()?,
    };
    let signature = match next("signature")? {
        "-" => String::new(),
        sig => sig.to_string(),
    };
    Ok((
        operation,
        Seal {
            origin,
            timestamp_ms,
            seq,
            depth,
            tags,
            signature,
        },
    ))
}

/// What one subscription serves.
enum Served {
    /// An actor (by key).
    Actor(String),
    /// A binding of a provider on this host.
    Binding(BindingKey),
}

/// What serving one subject needs.
struct Server {
    lattice: String,
    /// The subject served (an invocation's seal is over this subject,
    /// whether it came on it or on the host's own).
    subject: String,
    served: Served,
    local: Arc<dyn LocalActors>,
    providers: Arc<dyn LocalProviders>,
    verifier: Arc<Mutex<Verifier>>,
    directory: Arc<Directory>,
    blocked: Arc<BlockSet>,
    counters: Arc<RpcCounters>,
    outbox: Arc<Outbox>,
    /// Seals replies (signs those to hosts it shares no keys with).
    sealer: Arc<Sealer>,
}

impl Server {
    /// The key whose subject this is, for logs.
    fn target(&self) -> &str {
        match &self.served {
            Served::Actor(key) => key,
            Served::Binding(b) => &b.capability,
        }
    }

    /// Checks an invocation's seal and the block list; the operation and
    /// call depth to run it at, or why it is refused (logged).
    fn check(
        &self,
        payload: &[u8],
        caller: &str,
        operation: String,
        seal: &Seal,
        peer: Option<&PeerKey>,
    ) -> Result<(String, u32), Failed> {
        let target = self.target();
        let origin = seal.origin.as_str();
        let inv = Invocation {
            lattice: &self.lattice,
            subject: &self.subject,
            operation: &operation,
            payload,
            depth: seal.depth,
        };
        let verified = self
            .verifier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .verify(seal, &inv, crate::now_millis(), peer);
        if let Err(e) = verified {
            tracing::warn!(%target, %origin, "invocation refused: {e}");
            return Err(Failed {
                message: format!("invocation refused: {e}"),
                reseal: matches!(e, Refused::NotForThisHost { .. }),
                moved: false,
            });
        }
        let actor = match &self.served {
            Served::Actor(key) => key.as_str(),
            Served::Binding(b) => b.actor.as_str(),
        };
        if let Some(k) = self.blocked.any(&[origin, caller, actor]) {
            tracing::warn!(%target, %origin, %caller, "invocation refused: {k} is blocked");
            return Err(format!("invocation refused: {k} is blocked in the lattice").into());
        }
        Ok((operation, seal.depth))
    }

    async fn serve_one(&self, msg: async_nats::Message) {
        let target = self.target();
        let Some(reply_to) = msg.reply.clone() else {
            tracing::warn!(%target, "invocation without a reply subject dropped");
            return;
        };
        let headers = msg.headers.as_ref();
        let caller = header(&headers, H_CALLER).unwrap_or("");
        // The keys shared with the origin check the invocation and seal
        // its reply: looked up once.
        let (checked, asker) = match parse_seal(&headers) {
            Ok((operation, seal)) => {
                let peer = self.directory.peer(&seal.origin);
                let checked = self.check(&msg.payload, caller, operation, &seal, peer.as_deref());
                (checked, Some((seal, peer)))
            }
            Err(e) => (Err(Failed::from(e)), None),
        };
        RpcCounters::bump(if checked.is_ok() {
            &self.counters.received
        } else {
            &self.counters.refused
        });
        let result = match (checked, &self.served) {
            (Ok((operation, depth)), Served::Actor(actor)) => {
                let shape = header(&headers, H_SHAPE) == Ok(SHAPE_CURRENT);
                self.local
                    .invoke(caller, actor, &operation, &msg.payload, shape, depth)
                    .await
                    .map_err(Failed::from)
            }
            (Ok((operation, _)), Served::Binding(b)) => self
                .providers
                .call(b, &operation, &msg.payload)
                .await
                .map_err(Failed::from),
            (Err(e), _) => Err(e),
        };
        let result = result.map(|payload| {
            let seal = asker.map(|(seal, peer)| self.seal_reply(&seal, peer.as_deref(), &payload));
            (payload, seal)
        });
        self.outbox.push(reply_to, result);
    }

    /// The seal of the reply to the invocation sealed with `asked`: a MAC
    /// tag with `peer`, the keys shared with its origin, or, without such
    /// keys, a signature.
    fn seal_reply(&self, asked: &Seal, peer: Option<&PeerKey>, payload: &[u8]) -> String {
        let responder = self.sealer.origin();
        let answer = Answer {
            lattice: &self.lattice,
            subject: &self.subject,
            origin: &asked.origin,
            seq: asked.seq,
            responder,
        };
        let bytes = reply_bytes(&answer, false, payload);
        match peer {
            Some(p) => format!(
                "{responder} {} -",
                data_encoding::BASE64URL_NOPAD.encode(&p.tag(&bytes))
            ),
            None => format!("{responder} - {}", self.sealer.sign(&bytes)),
        }
    }
}

/// A reply to send: where, and the payload with its seal, or the error.
type Outgoing = (
    async_nats::Subject,
    Result<(Vec<u8>, Option<String>), Failed>,
);

/// Replies of invocations, published by one task in batches: each
/// publication wakes the NATS connection's task, which tokio runs next
/// (its LIFO slot), so replies published one by one as the shards answer
/// cost one socket write each — the largest cost of serving under load
/// (a loopback write also runs the receiver's TCP stack). Gathered here,
/// the replies ready at one moment go out in one write.
#[derive(Default)]
struct Outbox {
    queue: Mutex<Vec<Outgoing>>,
    ready: tokio::sync::Notify,
}

impl Outbox {
    fn push(&self, to: async_nats::Subject, result: Result<(Vec<u8>, Option<String>), Failed>) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((to, result));
        self.ready.notify_one();
    }

    /// Publishes replies until the client is gone.
    async fn publish(self: Arc<Self>, client: async_nats::Client) {
        loop {
            self.ready.notified().await;
            // Replies that become ready meanwhile (other invocations woken
            // by their shards) join this batch.
            tokio::task::yield_now().await;
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
            for (to, result) in batch {
                let sent = match result {
                    Ok((payload, Some(seal))) => {
                        let mut h = HeaderMap::new();
                        h.insert(H_REPLY, seal.as_str());
                        client.publish_with_headers(to, h, payload.into()).await
                    }
                    Ok((payload, None)) => client.publish(to, payload.into()).await,
                    Err(e) => {
                        let mut h = HeaderMap::new();
                        for (name, value) in error_headers(&e) {
                            h.insert(name, value.as_str());
                        }
                        client
                            .publish_with_headers(to, h, bytes::Bytes::new())
                            .await
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!("cannot send the reply of an invocation: {e}");
                }
            }
        }
    }
}
