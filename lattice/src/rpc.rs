//! Remote invocation of actors over NATS: a host serves its actors on
//! `wasmbus.v1.<lattice>.actor.<key>` (queue group: the key, so that one
//! host of several running the actor takes each invocation), and calls an
//! actor it does not run by a request on that subject. Every invocation is
//! sealed ([`crate::invocation`]); the seal and the operation travel as
//! NATS headers beside the unchanged payload. A reply carries the actor's
//! payload, or the header `wascc-error`.

use crate::actor_subject;
use crate::blocklist::BlockSet;
use crate::invocation::{Invocation, Refused, Seal, Sealer, Verifier};
use crate::limits::{MAX_REMOTE_CALL, REMOTE_CALL_TIMEOUT};
use crate::state::Lattice;
use async_nats::HeaderMap;
use futures_lite::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

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

const H_OPERATION: &str = "wascc-op";
const H_CALLER: &str = "wascc-caller";
const H_ORIGIN: &str = "wascc-origin";
const H_TIME: &str = "wascc-ts";
const H_SEQ: &str = "wascc-seq";
const H_SIGNATURE: &str = "wascc-sig";
const H_DEPTH: &str = "wascc-depth";
const H_ERROR: &str = "wascc-error";
const H_SHAPE: &str = "wascc-shape";
/// The value of `wascc-shape` for a provider's message in the current shape.
const SHAPE_CURRENT: &str = "current";

/// Sends one sealed invocation and waits for its reply (or an error that
/// names what failed). Public so that tests can send seals of their own.
pub async fn request_sealed(
    client: &async_nats::Client,
    subject: &str,
    caller: &str,
    operation: &str,
    payload: Vec<u8>,
    seal: &Seal,
) -> Result<Vec<u8>, String> {
    request_with(client, subject, caller, operation, payload, seal, false).await
}

async fn request_with(
    client: &async_nats::Client,
    subject: &str,
    caller: &str,
    operation: &str,
    payload: Vec<u8>,
    seal: &Seal,
    shape: bool,
) -> Result<Vec<u8>, String> {
    let mut h = HeaderMap::new();
    h.insert(H_OPERATION, operation);
    h.insert(H_CALLER, caller);
    if shape {
        h.insert(H_SHAPE, SHAPE_CURRENT);
    }
    h.insert(H_ORIGIN, seal.origin.as_str());
    h.insert(H_TIME, seal.timestamp_ms.to_string().as_str());
    h.insert(H_SEQ, seal.seq.to_string().as_str());
    h.insert(H_DEPTH, seal.depth.to_string().as_str());
    h.insert(H_SIGNATURE, seal.signature.as_str());
    let request = async_nats::Request::new()
        .headers(h)
        .payload(payload.into())
        .timeout(Some(REMOTE_CALL_TIMEOUT));
    let reply = client
        .send_request(subject.to_string(), request)
        .await
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => {
                "no host of the lattice runs it".to_string()
            }
            async_nats::RequestErrorKind::TimedOut => {
                format!("no reply within {REMOTE_CALL_TIMEOUT:?}")
            }
            _ => e.to_string(),
        })?;
    if let Some(err) = reply.headers.as_ref().and_then(|h| h.get(H_ERROR)) {
        return Err(err.as_str().to_string());
    }
    Ok(reply.payload.to_vec())
}

/// A host's side of remote invocation: calling actors and providers
/// elsewhere, and serving its own actors and bindings (added and removed as
/// they start, stop, bind and unbind).
pub struct Rpc {
    lattice: Lattice,
    sealer: Arc<Sealer>,
    runtime: tokio::runtime::Handle,
    local: Arc<dyn LocalActors>,
    providers: Arc<dyn LocalProviders>,
    verifier: Arc<Mutex<Verifier>>,
    blocked: Arc<BlockSet>,
    /// Each subject served: the signal that ends its subscription.
    serving: Mutex<HashMap<String, Subscription>>,
}

impl Rpc {
    /// Remote invocation in `lattice` for the host whose key `sealer`
    /// holds, serving `local` actors and `providers` with seals checked by
    /// `verifier`; invocations from or to a key in `blocked` are refused.
    /// NATS work runs on `runtime`.
    pub fn new(
        lattice: Lattice,
        sealer: Arc<Sealer>,
        runtime: tokio::runtime::Handle,
        local: Arc<dyn LocalActors>,
        providers: Arc<dyn LocalProviders>,
        verifier: Verifier,
        blocked: Arc<BlockSet>,
    ) -> Arc<Rpc> {
        Arc::new(Rpc {
            lattice,
            sealer,
            runtime,
            local,
            providers,
            verifier: Arc::new(Mutex::new(verifier)),
            blocked,
            serving: Mutex::default(),
        })
    }

    /// The lattice.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    /// Invokes `operation` on `actor` on whichever host runs it, at call
    /// depth `depth` (`shape`: see [`LocalActors::invoke`]). The future may
    /// be awaited on any executor (the work runs on the runtime).
    pub fn call_actor(
        &self,
        caller: &str,
        actor: &str,
        operation: &str,
        payload: Vec<u8>,
        shape: bool,
        depth: u32,
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
            },
            payload,
            format!("remote call to actor {actor}"),
        )
    }

    /// Calls `operation` of the provider behind `binding` on whichever host
    /// holds that binding for the actor; the reply is in the current codec
    /// shape.
    pub fn call_provider(
        &self,
        binding: &BindingKey,
        operation: &str,
        payload: Vec<u8>,
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
            },
            payload,
            format!(
                "remote call to {} ({}) for actor {}",
                binding.capability, binding.binding, binding.actor
            ),
        )
    }

    fn call(&self, call: Call<'_>, payload: Vec<u8>, what: String) -> ReplyFuture {
        let Call {
            subject,
            caller,
            parties,
            operation,
            shape,
            depth,
        } = call;
        if let Some(k) = self.blocked.any(parties) {
            let e = format!("{what}: {k} is blocked in the lattice");
            return Box::pin(async move { Err(e) });
        }
        if payload.len() > MAX_REMOTE_CALL {
            let n = payload.len();
            return Box::pin(async move {
                Err(format!(
                    "{what}: payload of {n} bytes exceeds the lattice limit of {MAX_REMOTE_CALL}"
                ))
            });
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
        let client = self.lattice.client().clone();
        let (sealer, lattice) = (self.sealer.clone(), self.lattice.name().to_string());
        let (caller, operation) = (caller.to_string(), operation.to_string());
        // Sealed on the services runtime, not on the caller's thread (a
        // shard): a signature costs tens of microseconds.
        let task = self.runtime.spawn(async move {
            let seal = sealer.seal(
                &Invocation {
                    lattice: &lattice,
                    subject: &subject,
                    operation: &operation,
                    payload: &payload,
                    depth,
                },
                crate::now_millis(),
            );
            request_with(
                &client, &subject, &caller, &operation, payload, &seal, shape,
            )
            .await
            .map_err(|e| format!("{what}: {e}"))
        });
        Box::pin(async move {
            task.await
                .unwrap_or_else(|e| Err(format!("remote call task failed: {e}")))
        })
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
    pub fn unserve(&self, key: &str) {
        self.unsubscribe(&actor_subject(self.lattice.name(), key));
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
            client: self.lattice.client().clone(),
            lattice: self.lattice.name().to_string(),
            served,
            local: self.local.clone(),
            providers: self.providers.clone(),
            verifier: self.verifier.clone(),
            blocked: self.blocked.clone(),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        self.runtime.spawn(async move {
            loop {
                tokio::select! {
                    msg = sub.next() => match msg {
                        Some(msg) => {
                            let server = server.clone();
                            tokio::spawn(async move { server.serve_one(msg).await });
                        }
                        None => return,
                    },
                    _ = &mut stopped => break,
                }
            }
            // Drained, not dropped: the server stops sending, and what it
            // sent before (also what it sent between our UNSUB and its
            // processing of it) is still answered, with an error if what
            // it names is gone, never left for its caller to time out on.
            let _ = sub.drain().await;
            while let Some(msg) = sub.next().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve_one(msg).await });
            }
        });
        if let Some(old) = self.lock_serving().insert(subject, Subscription { stop }) {
            let _ = old.stop.send(());
        }
        Ok(())
    }

    fn unsubscribe(&self, subject: &str) {
        if let Some(s) = self.lock_serving().remove(subject) {
            let _ = s.stop.send(());
        }
    }

    /// Stops serving everything.
    pub fn unserve_all(&self) {
        for (_, s) in self.lock_serving().drain() {
            let _ = s.stop.send(());
        }
    }

    fn lock_serving(&self) -> std::sync::MutexGuard<'_, HashMap<String, Subscription>> {
        self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A subject being served.
struct Subscription {
    /// Ends the subscription (its buffered messages are still answered).
    stop: tokio::sync::oneshot::Sender<()>,
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

fn header<'a>(h: Option<&'a HeaderMap>, name: &str) -> Result<&'a str, String> {
    h.and_then(|h| h.get(name))
        .map(|v| v.as_str())
        .ok_or_else(|| format!("the invocation has no {name} header"))
}

fn parse_seal(h: Option<&HeaderMap>) -> Result<(String, Seal), String> {
    let operation = header(h, H_OPERATION)?.to_string();
    let number = |name: &str| -> Result<u64, String> {
        header(h, name)?
            .parse()
            .map_err(|_| format!("header {name} is not a number"))
    };
    Ok((
        operation,
        Seal {
            origin: header(h, H_ORIGIN)?.to_string(),
            timestamp_ms: number(H_TIME)?,
            seq: number(H_SEQ)?,
            depth: u32::try_from(number(H_DEPTH)?)
                .map_err(|_| format!("header {H_DEPTH} is out of range"))?,
            signature: header(h, H_SIGNATURE)?.to_string(),
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
    client: async_nats::Client,
    lattice: String,
    served: Served,
    local: Arc<dyn LocalActors>,
    providers: Arc<dyn LocalProviders>,
    verifier: Arc<Mutex<Verifier>>,
    blocked: Arc<BlockSet>,
}

impl Server {
    /// The key whose subject this is, for logs.
    fn target(&self) -> &str {
        match &self.served {
            Served::Actor(key) => key,
            Served::Binding(b) => &b.capability,
        }
    }

    async fn serve_one(&self, msg: async_nats::Message) {
        let target = self.target();
        let Some(reply_to) = msg.reply.clone() else {
            tracing::warn!(%target, "invocation without a reply subject dropped");
            return;
        };
        let checked = parse_seal(msg.headers.as_ref()).and_then(|(operation, seal)| {
            let inv = Invocation {
                lattice: &self.lattice,
                subject: msg.subject.as_str(),
                operation: &operation,
                payload: &msg.payload,
                depth: seal.depth,
            };
            let mut v = self.verifier.lock().unwrap_or_else(|p| p.into_inner());
            v.verify(&seal, &inv, crate::now_millis())
                .map_err(|e: Refused| {
                    tracing::warn!(%target, origin = %seal.origin, "invocation refused: {e}");
                    format!("invocation refused: {e}")
                })?;
            Ok((operation, seal.depth))
        });
        let caller = header(msg.headers.as_ref(), H_CALLER).unwrap_or("");
        let origin = header(msg.headers.as_ref(), H_ORIGIN).unwrap_or("");
        let checked = checked.and_then(|operation| {
            let actor = match &self.served {
                Served::Actor(key) => key.as_str(),
                Served::Binding(b) => b.actor.as_str(),
            };
            match self.blocked.any(&[origin, caller, actor]) {
                Some(k) => {
                    tracing::warn!(%target, %origin, %caller, "invocation refused: {k} is blocked");
                    Err(format!("invocation refused: {k} is blocked in the lattice"))
                }
                None => Ok(operation),
            }
        });
        let result = match (checked, &self.served) {
            (Ok((operation, depth)), Served::Actor(actor)) => {
                let shape = header(msg.headers.as_ref(), H_SHAPE) == Ok(SHAPE_CURRENT);
                self.local
                    .invoke(caller, actor, &operation, &msg.payload, shape, depth)
                    .await
            }
            (Ok((operation, _)), Served::Binding(b)) => {
                self.providers.call(b, &operation, &msg.payload).await
            }
            (Err(e), _) => Err(e),
        };
        let sent = match result {
            Ok(payload) => self.client.publish(reply_to, payload.into()).await,
            Err(e) => {
                let mut h = HeaderMap::new();
                // Header values are single lines.
                h.insert(H_ERROR, e.replace(['\r', '\n'], " ").as_str());
                self.client
                    .publish_with_headers(reply_to, h, Vec::<u8>::new().into())
                    .await
            }
        };
        if let Err(e) = sent {
            tracing::warn!(%target, "cannot send the reply of an invocation: {e}");
        }
    }
}
