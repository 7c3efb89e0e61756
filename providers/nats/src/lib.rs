//! `wascc:messaging` over NATS (async-nats, on the host's services runtime).
//!
//! Each binding has its own connection (so its credentials are its own),
//! reconnecting for as long as the binding lives. Its `SUBSCRIPTION` subjects
//! (comma-separated, wildcards allowed, optionally in the `QUEUEGROUP_NAME`
//! queue group) are delivered to the actor as `DeliverMessage`, one at a
//! time per subject, in order. Actors publish, and request with a timeout.
//!
//! Not for: the lattice's own NATS traffic (that is `wascc-lattice`).

mod limits;

use async_nats::{Client, ConnectOptions};
use futures_lite::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use wascc_contracts::messaging::*;
use wascc_contracts::{
    ActorDispatcher, BindingRef, BindingTable, CapabilityProvider, ProviderContext, ProviderError,
    ProviderFuture, ProviderReply, decode, encode, expect_values,
};

/// Binding values this provider reads.
pub mod values {
    /// The server (`nats://host:4222`; several, comma-separated, for a cluster).
    pub const URL: &str = "URL";
    /// Subjects to deliver to the actor, comma-separated.
    pub const SUBSCRIPTION: &str = "SUBSCRIPTION";
    /// Queue group of the subscriptions: each message goes to one member.
    pub const QUEUEGROUP_NAME: &str = "QUEUEGROUP_NAME";
    /// A user JWT (with `CLIENT_SEED`).
    pub const CLIENT_JWT: &str = "CLIENT_JWT";
    /// The nkey seed that signs the server's nonce for `CLIENT_JWT`.
    pub const CLIENT_SEED: &str = "CLIENT_SEED";
    /// A `.creds` file (JWT and seed together).
    pub const CREDSFILE: &str = "CREDSFILE";
    /// Every value, for error messages.
    pub const ALL: [&str; 6] = [
        URL,
        SUBSCRIPTION,
        QUEUEGROUP_NAME,
        CLIENT_JWT,
        CLIENT_SEED,
        CREDSFILE,
    ];
}

/// What a binding keeps: its connection and its subscription tasks.
struct Binding {
    client: Client,
    url: String,
    deliveries: Vec<JoinHandle<()>>,
}

impl Drop for Binding {
    fn drop(&mut self) {
        for d in &self.deliveries {
            d.abort();
        }
    }
}

/// The `wascc:messaging` provider.
pub struct NatsMessaging {
    services: tokio::runtime::Handle,
    dispatcher: Arc<OnceLock<Arc<dyn ActorDispatcher>>>,
    bindings: Arc<BindingTable<Arc<Binding>>>,
}

/// A binding's values, checked.
struct Config {
    url: String,
    subjects: Vec<String>,
    queue: Option<String>,
    auth: Auth,
}

enum Auth {
    None,
    Jwt { jwt: String, seed: String },
    CredsFile(String),
}

fn bad(msg: String) -> ProviderError {
    ProviderError(msg)
}

impl Config {
    fn read(v: &HashMap<String, String>) -> Result<Config, ProviderError> {
        expect_values(CAPABILITY_ID, v, &values::ALL)?;
        let url = v
            .get(values::URL)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                bad(format!(
                    "binding value {} is required for {CAPABILITY_ID} (for example nats://127.0.0.1:4222)",
                    values::URL
                ))
            })?
            .clone();
        for u in url.split(',') {
            let u = u.trim();
            let ok = u.starts_with("nats://")
                || u.starts_with("tls://")
                || u.starts_with("ws://")
                || u.starts_with("wss://")
                || !u.contains("://");
            if !ok || u.is_empty() {
                return Err(bad(format!(
                    "URL {u:?} is not a NATS server address (nats://host:port)"
                )));
            }
        }
        let mut subjects = Vec::new();
        if let Some(subs) = v.get(values::SUBSCRIPTION) {
            for s in subs.split(',').map(str::trim) {
                if let Some(p) = subject_problem(s, true) {
                    return Err(bad(format!("SUBSCRIPTION subject {s:?} is not valid: {p}")));
                }
                subjects.push(s.to_string());
            }
        }
        let queue = match v.get(values::QUEUEGROUP_NAME) {
            None => None,
            Some(q) if q.is_empty() || q.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(bad(format!(
                    "QUEUEGROUP_NAME {q:?} is not valid: it must be non-empty, without spaces"
                )));
            }
            Some(_) if subjects.is_empty() => {
                return Err(bad(
                    "QUEUEGROUP_NAME is set but SUBSCRIPTION names no subject".into(),
                ));
            }
            Some(q) => Some(q.clone()),
        };
        let auth = match (
            v.get(values::CLIENT_JWT),
            v.get(values::CLIENT_SEED),
            v.get(values::CREDSFILE),
        ) {
            (None, None, None) => Auth::None,
            (Some(jwt), Some(seed), None) => {
                nkeys::KeyPair::from_seed(seed)
                    .map_err(|e| bad(format!("CLIENT_SEED is not an nkey seed: {e}")))?;
                Auth::Jwt {
                    jwt: jwt.clone(),
                    seed: seed.clone(),
                }
            }
            (None, None, Some(path)) => Auth::CredsFile(path.clone()),
            _ => {
                return Err(bad(
                    "give CLIENT_JWT with CLIENT_SEED, or CREDSFILE, not a mix".into(),
                ));
            }
        };
        Ok(Config {
            url,
            subjects,
            queue,
            auth,
        })
    }
}

async fn connect(cfg: &Config) -> Result<Client, ProviderError> {
    let mut opts = match &cfg.auth {
        Auth::None => ConnectOptions::new(),
        Auth::Jwt { jwt, seed } => {
            let kp = Arc::new(
                nkeys::KeyPair::from_seed(seed).map_err(|e| bad(format!("CLIENT_SEED: {e}")))?,
            );
            ConnectOptions::with_jwt(jwt.clone(), move |nonce| {
                let kp = kp.clone();
                async move { kp.sign(&nonce).map_err(async_nats::AuthError::new) }
            })
        }
        Auth::CredsFile(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| bad(format!("CREDSFILE {path:?}: {e}")))?,
    };
    opts = opts
        .name("wascc messaging")
        .connection_timeout(limits::CONNECT_TIMEOUT)
        .max_reconnects(None)
        .reconnect_delay_callback(|attempt| {
            limits::MAX_RECONNECT_DELAY.min(Duration::from_millis(50 * attempt as u64))
        });
    let addrs: Vec<&str> = cfg.url.split(',').map(str::trim).collect();
    // A user and password (or a token: a user without one) in the URL:
    // async-nats (0.51) parses them but does not send them.
    if matches!(cfg.auth, Auth::None) {
        let mut parsed = addrs
            .iter()
            .filter_map(|a| a.parse::<async_nats::ServerAddr>().ok());
        if let Some(a) = parsed.find(|a| a.has_user_pass()) {
            let user = a.username().unwrap_or_default().to_string();
            opts = match a.password() {
                Some(pass) => opts.user_and_password(user, pass.to_string()),
                None => opts.token(user),
            };
        }
    }
    let client = tokio::time::timeout(limits::CONNECT_TIMEOUT * 2, opts.connect(addrs))
        .await
        .map_err(|_| bad(format!("cannot connect to NATS at {}: no answer", cfg.url)))?
        .map_err(|e| bad(format!("cannot connect to NATS at {}: {e}", cfg.url)))?;
    Ok(client)
}

/// Delivers every message of `sub` to the actor, one at a time.
async fn deliver(
    mut sub: async_nats::Subscriber,
    dispatcher: Arc<OnceLock<Arc<dyn ActorDispatcher>>>,
    actor: String,
    subject: String,
) {
    while let Some(msg) = sub.next().await {
        let Some(d) = dispatcher.get() else {
            tracing::warn!(%actor, %subject, "message dropped: the provider is not started");
            continue;
        };
        let m = BrokerMessage {
            subject: msg.subject.to_string(),
            reply_to: msg.reply.map(|r| r.to_string()).unwrap_or_default(),
            body: msg.payload.to_vec(),
        };
        let payload = match encode(&m) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%actor, %subject, "cannot encode a message: {e}");
                continue;
            }
        };
        if let Err(e) = d.dispatch(&actor, OP_DELIVER_MESSAGE, payload).await {
            tracing::warn!(%actor, subject = %m.subject, "delivery failed: {e}");
        }
    }
}

impl NatsMessaging {
    /// A provider whose connections run on `services`.
    pub fn new(services: tokio::runtime::Handle) -> Self {
        NatsMessaging {
            services,
            dispatcher: Arc::default(),
            bindings: Arc::default(),
        }
    }

    fn binding(&self, b: &BindingRef<'_>) -> Result<Arc<Binding>, ProviderError> {
        self.bindings.get(b).ok_or_else(|| {
            bad(format!(
                "actor {} has no {CAPABILITY_ID} binding {:?} on this provider",
                b.actor, b.binding
            ))
        })
    }
}

fn publish(
    services: &tokio::runtime::Handle,
    binding: Arc<Binding>,
    payload: &[u8],
) -> ProviderReply {
    let msg: BrokerMessage = match decode(payload) {
        Ok(m) => m,
        Err(e) => return ProviderReply::Ready(Err(e.into())),
    };
    if let Some(p) = subject_problem(&msg.subject, false) {
        return ProviderReply::Ready(Err(bad(format!(
            "cannot publish to {:?}: {p}",
            msg.subject
        ))));
    }
    if let Some(p) = (!msg.reply_to.is_empty())
        .then(|| subject_problem(&msg.reply_to, false))
        .flatten()
    {
        return ProviderReply::Ready(Err(bad(format!(
            "reply subject {:?} is not valid: {p}",
            msg.reply_to
        ))));
    }
    // async-nats needs tokio's timers and I/O: the work runs on the services
    // runtime, the caller (a shard) only awaits the outcome.
    on_services(services, async move {
        let c = &binding.client;
        let body = bytes::Bytes::from(msg.body);
        let sent = if msg.reply_to.is_empty() {
            c.publish(msg.subject.clone(), body).await
        } else {
            c.publish_with_reply(msg.subject.clone(), msg.reply_to, body)
                .await
        };
        sent.map_err(|e| {
            bad(format!(
                "cannot publish to {:?} on {}: {e}",
                msg.subject, binding.url
            ))
        })?;
        Ok(encode(&PublishResponse { published: true })?)
    })
}

fn request(
    services: &tokio::runtime::Handle,
    binding: Arc<Binding>,
    payload: &[u8],
) -> ProviderReply {
    let msg: RequestMessage = match decode(payload) {
        Ok(m) => m,
        Err(e) => return ProviderReply::Ready(Err(e.into())),
    };
    if let Some(p) = subject_problem(&msg.subject, false) {
        return ProviderReply::Ready(Err(bad(format!(
            "cannot request on {:?}: {p}",
            msg.subject
        ))));
    }
    let timeout = if msg.timeout_ms <= 0 {
        limits::DEFAULT_REQUEST_TIMEOUT
    } else {
        Duration::from_millis(msg.timeout_ms as u64).min(limits::MAX_REQUEST_TIMEOUT)
    };
    on_services(services, async move {
        let req = async_nats::Request::new()
            .payload(bytes::Bytes::from(msg.body))
            .timeout(Some(timeout));
        let reply = binding
            .client
            .send_request(msg.subject.clone(), req)
            .await
            .map_err(|e| {
                bad(format!(
                    "request on {:?} via {} failed: {e}",
                    msg.subject, binding.url
                ))
            })?;
        // As waSCC 0.x: the reply's payload, as it came.
        Ok(reply.payload.to_vec())
    })
}

fn on_services(
    services: &tokio::runtime::Handle,
    work: impl Future<Output = Result<Vec<u8>, ProviderError>> + Send + 'static,
) -> ProviderReply {
    ProviderReply::Pending(wascc_contracts::joined("messaging", services.spawn(work)))
}

impl CapabilityProvider for NatsMessaging {
    fn capability_id(&self) -> &str {
        CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "waSCC messaging (NATS)"
    }

    fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        self.dispatcher
            .set(ctx.dispatcher)
            .map_err(|_| bad("the NATS provider was started twice".into()))
    }

    fn bind_actor(
        &self,
        b: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        let cfg = match Config::read(values) {
            Ok(c) => c,
            Err(e) => return wascc_contracts::ready(Err(e)),
        };
        let (actor, name) = (b.actor.to_string(), b.binding.to_string());
        let bindings = self.bindings.clone();
        let dispatcher = self.dispatcher.clone();
        let task = self.services.spawn(async move {
            let client = connect(&cfg).await?;
            let mut deliveries = Vec::new();
            for s in &cfg.subjects {
                let sub = match &cfg.queue {
                    None => client.subscribe(s.clone()).await,
                    Some(q) => client.queue_subscribe(s.clone(), q.clone()).await,
                }
                .map_err(|e| bad(format!("cannot subscribe to {s:?} on {}: {e}", cfg.url)))?;
                deliveries.push(tokio::spawn(deliver(
                    sub,
                    dispatcher.clone(),
                    actor.clone(),
                    s.clone(),
                )));
            }
            // The server has the subscriptions before the binding counts:
            // a round trip after them (a request no one answers; async-nats's
            // flush only writes the buffer, it does not wait for the server).
            match client
                .request("_WASCC_SYNC.binding", bytes::Bytes::new())
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {}
                Err(e) => return Err(bad(format!("NATS at {} did not confirm: {e}", cfg.url))),
            }
            tracing::info!(%actor, binding = %name, url = %cfg.url, subjects = ?cfg.subjects, queue = ?cfg.queue, "messaging binding on NATS");
            let binding = Arc::new(Binding {
                client,
                url: cfg.url,
                deliveries,
            });
            // A binding bound again replaces the old one (whose drop, here,
            // outside the table's lock, stops its subscriptions).
            drop(bindings.insert(&actor, &name, binding));
            Ok(())
        });
        wascc_contracts::joined("NATS bind", task)
    }

    fn remove_actor(&self, b: BindingRef<'_>) {
        let removed = self.bindings.remove(&b);
        // Dropping the binding aborts its delivery tasks at once; in-flight
        // publishes hold their own reference and finish.
        drop(removed);
    }

    fn handle_call(&self, b: BindingRef<'_>, op: &str, payload: &[u8]) -> ProviderReply {
        let binding = match self.binding(&b) {
            Ok(x) => x,
            Err(e) => return ProviderReply::Ready(Err(e)),
        };
        match op {
            OP_PUBLISH_MESSAGE => publish(&self.services, binding, payload),
            OP_PERFORM_REQUEST => request(&self.services, binding, payload),
            other => ProviderReply::Ready(Err(bad(format!(
                "capability {CAPABILITY_ID} has no operation {other:?}"
            )))),
        }
    }

    fn health(&self) -> ProviderFuture<()> {
        for b in self.bindings.values() {
            let state = b.client.connection_state();
            if state != async_nats::connection::State::Connected {
                return wascc_contracts::ready(Err(bad(format!("NATS at {} is {state}", b.url))));
            }
        }
        wascc_contracts::ready(Ok(()))
    }

    fn shutdown(&self) {
        self.bindings.clear();
    }
}
