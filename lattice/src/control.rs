//! The control interface of a lattice: JSON requests to one host on
//! `wasmbus.v1.<lattice>.ctl.<host>.<command>`, and CloudEvents for every
//! change on `wasmbus.v1.<lattice>.evt`. `docs/LATTICE.md` documents each
//! command, its body, reply and event.

use crate::LatticeError;
use crate::invocation::{Sealer, signed_by};
use crate::limits::{CONTROL_TIMEOUT, MAX_CLOCK_SKEW};
use crate::membership::RecordFn;
use crate::state::Lattice;
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The subject of `command` for `host`.
pub fn control_subject(lattice: &str, host: &str, command: &str) -> String {
    format!("{}.{host}.{command}", crate::control_prefix(lattice))
}

/// The subject of a lattice's events.
pub fn events_subject(lattice: &str) -> String {
    format!("wasmbus.{}.{lattice}.evt", crate::SUBJECT_VERSION)
}

/// `label.put` (with a value) and `label.del` (without).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRequest {
    /// The label's key.
    pub key: String,
    /// The value to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Where a module to start comes from: its bytes in the request (base64),
/// or a file on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSource {
    /// The module, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// A path on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A module source, checked: the bytes sent, or a path for the host to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Module {
    /// Sent in the request.
    Inline(Vec<u8>),
    /// A file on the host.
    Path(String),
}

impl ModuleSource {
    /// Which one it is, its base64 decoded; an error when it is both,
    /// neither, or not base64.
    pub fn resolve(&self) -> Result<Module, String> {
        match (&self.module, &self.path) {
            (Some(b64), None) => data_encoding::BASE64
                .decode(b64.as_bytes())
                .map(Module::Inline)
                .map_err(|e| format!("module is not base64: {e}")),
            (None, Some(path)) => Ok(Module::Path(path.clone())),
            _ => Err("give exactly one of module (base64) and path".to_string()),
        }
    }
}

/// `actor.start`: an actor module and how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartActor {
    /// The module.
    #[serde(flatten)]
    pub source: ModuleSource,
    /// Engine kind (`jit`, `interp`, `aot`, `constrained`); default: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// `reuse` (default) or `fresh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<String>,
    /// On how many shards it runs (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// `actor.stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopActor {
    /// The actor's key.
    pub key: String,
}

/// `provider.start`: a built-in provider by capability id, or a portable
/// (wasm) provider module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartProvider {
    /// A built-in provider's capability id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// A portable provider's module.
    #[serde(flatten)]
    pub source: ModuleSource,
    /// The binding name a portable provider serves (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// A portable provider's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A portable provider's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// `provider.stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopProvider {
    /// The capability id of the provider.
    pub capability: String,
}

/// `binding.put` (with values) and `binding.del`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRequest {
    /// The actor's key.
    pub actor: String,
    /// The capability id.
    pub capability: String,
    /// The binding name (default `default`).
    #[serde(default = "default_binding")]
    pub binding: String,
    /// The binding's values (`binding.put` only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
}

fn default_binding() -> String {
    "default".to_string()
}

/// A command to a host, parsed from its subject and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `inventory`: what the host runs now.
    Inventory,
    /// `actor.start`.
    StartActor(StartActor),
    /// `actor.stop`.
    StopActor(StopActor),
    /// `provider.start`.
    StartProvider(StartProvider),
    /// `provider.stop`.
    StopProvider(StopProvider),
    /// `binding.put`.
    Bind(BindingRequest),
    /// `binding.del`.
    Unbind(BindingRequest),
    /// `label.put` (`Some` value) or `label.del`.
    Label {
        /// The key.
        key: String,
        /// The value to set, or `None` to remove.
        value: Option<String>,
    },
    /// `stop`: drain, leave, exit.
    Stop,
}

/// The commands a host answers, as subject suffixes.
pub const COMMANDS: [&str; 10] = [
    "inventory",
    "actor.start",
    "actor.stop",
    "provider.start",
    "provider.stop",
    "binding.put",
    "binding.del",
    "label.put",
    "label.del",
    "stop",
];

fn body<T: serde::de::DeserializeOwned>(command: &str, body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("{command}: invalid request: {e}"))
}

impl Command {
    /// Parses command `name` with JSON `body`; the error names the command
    /// and what is wrong.
    pub fn parse(name: &str, json: &[u8]) -> Result<Command, String> {
        // Commands without a body accept an empty one.
        let json_or_empty = if json.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            json
        };
        Ok(match name {
            "inventory" => {
                body::<serde_json::Map<String, serde_json::Value>>(name, json_or_empty)?;
                Command::Inventory
            }
            "stop" => {
                body::<serde_json::Map<String, serde_json::Value>>(name, json_or_empty)?;
                Command::Stop
            }
            "actor.start" => Command::StartActor(body(name, json)?),
            "actor.stop" => Command::StopActor(body(name, json)?),
            "provider.start" => {
                let req: StartProvider = body(name, json)?;
                let module = req.source.module.is_some() || req.source.path.is_some();
                if req.capability.is_some() == module {
                    return Err(format!(
                        "{name}: give either capability (a built-in provider) or module/path (a portable one)"
                    ));
                }
                Command::StartProvider(req)
            }
            "provider.stop" => Command::StopProvider(body(name, json)?),
            "binding.put" => Command::Bind(body(name, json)?),
            "binding.del" => {
                let req: BindingRequest = body(name, json)?;
                if !req.values.is_empty() {
                    return Err(format!("{name}: takes no values"));
                }
                Command::Unbind(req)
            }
            "label.put" | "label.del" => {
                let req: LabelRequest = body(name, json)?;
                match (name, req.value) {
                    ("label.put", None) => return Err(format!("{name}: needs a value")),
                    ("label.del", Some(_)) => return Err(format!("{name}: takes no value")),
                    (_, value) => Command::Label {
                        key: req.key,
                        value,
                    },
                }
            }
            other => {
                return Err(format!(
                    "unknown command {other:?} (this host knows {})",
                    COMMANDS.join(", ")
                ));
            }
        })
    }
}

/// The answer to every command: `{"ok": true, "data": …}` or
/// `{"ok": false, "error": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the command was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the command returns (the inventory, a started actor's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// What a carried-out command did: its reply data and the event that says
/// so (kind, data), if it changed something.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// The reply's data.
    pub data: Option<serde_json::Value>,
    /// The event to publish.
    pub event: Option<(&'static str, serde_json::Value)>,
}

/// A boxed outcome of a command.
pub type CommandFuture = Pin<Box<dyn Future<Output = Result<Done, String>> + Send>>;

/// What a host does on command. `Stop` is answered before the host stops.
pub trait HostCommands: Send + Sync + 'static {
    /// Carries out `command`.
    fn run(&self, command: Command) -> CommandFuture;
}

/// A CloudEvents 1.0 event (JSON format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique per event.
    pub id: String,
    /// `wascc/host/<host key>`.
    pub source: String,
    /// `com.wascc.lattice.<what>` (host_started, host_stopped, label_set,
    /// label_removed).
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// What happened.
    pub data: serde_json::Value,
}

impl Event {
    /// An event of kind `what` from `host`.
    pub fn new(host: &str, what: &str, data: serde_json::Value) -> Event {
        let mut id = [0u8; 12];
        let _ = getrandom::fill(&mut id);
        Event {
            specversion: "1.0".into(),
            id: data_encoding::BASE64URL_NOPAD.encode(&id),
            source: format!("wascc/host/{host}"),
            kind: format!("com.wascc.lattice.{what}"),
            datacontenttype: "application/json".into(),
            data,
        }
    }
}

/// Publishes `event` on the lattice's event subject, signed by the host
/// (`signer`, whose key the event's `source` names); a failure is logged,
/// not returned (events never hold up the change they report).
pub async fn publish_event(lattice: &Lattice, signer: &Sealer, event: &Event) {
    let Ok(json) = serde_json::to_vec(event) else {
        return;
    };
    let mut headers = async_nats::HeaderMap::new();
    let sig = signer.sign(&event_bytes(lattice.name(), &json));
    headers.insert(H_EVENT_SEAL, format!("{} {sig}", signer.origin()).as_str());
    if let Err(e) = lattice
        .client()
        .publish_with_headers(events_subject(lattice.name()), headers, json.into())
        .await
    {
        tracing::warn!(kind = %event.kind, "cannot publish event: {e}");
    }
}

/// The header carrying an event's signature: `<host key> <signature>`.
const H_EVENT_SEAL: &str = "wascc-event-seal";

fn event_bytes(lattice: &str, body: &[u8]) -> Vec<u8> {
    format!("wascc-event-v1\n{lattice}\n{}", sha256_hex(body)).into_bytes()
}

fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXUPPER.encode(&sha2::Sha256::digest(body))
}

/// An event received on the event subject of `lattice`, checked: signed by
/// the host its `source` names. An error says what does not hold (an event
/// published by something that is not that host).
pub fn verify_event(
    lattice: &str,
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
) -> Result<Event, String> {
    let seal = headers
        .and_then(|h| h.get(H_EVENT_SEAL))
        .map(|v| v.as_str())
        .ok_or_else(|| "the event is not signed".to_string())?;
    let (host, sig) = seal
        .split_once(' ')
        .ok_or_else(|| format!("malformed {H_EVENT_SEAL} header"))?;
    if !signed_by(host, &event_bytes(lattice, body), sig) {
        return Err(format!(
            "the event's signature (host {host}) does not match it (forged or altered)"
        ));
    }
    let event: Event =
        serde_json::from_slice(body).map_err(|e| format!("unreadable event: {e}"))?;
    if event.source.strip_prefix("wascc/host/") != Some(host) {
        return Err(format!(
            "the event from {} is signed by host {host}",
            event.source
        ));
    }
    Ok(event)
}

/// Follows the events of `lattice`: each is checked ([`verify_event`])
/// and handed to `each` (the event, or why it was refused) until `each`
/// returns false or the connection ends. `ready` is called once the
/// subscription is in place (events published after it are seen).
pub async fn follow_events(
    lattice: &Lattice,
    ready: impl FnOnce(),
    mut each: impl FnMut(Result<Event, String>) -> bool,
) -> Result<(), LatticeError> {
    let subject = events_subject(lattice.name());
    let mut sub = lattice.subscribe(&subject).await?;
    lattice.sync().await?;
    ready();
    while let Some(msg) = sub.next().await {
        if !each(verify_event(
            lattice.name(),
            msg.headers.as_ref(),
            &msg.payload,
        )) {
            break;
        }
    }
    Ok(())
}

/// The header of a control request carrying the requester's nonce, which
/// the host's signature of its reply covers.
const H_CONTROL_NONCE: &str = "wascc-control-nonce";
/// The header carrying the signature of a control reply: `<host key>
/// <signature>`.
const H_CONTROL_REPLY: &str = "wascc-control-reply";

fn reply_bytes(lattice: &str, subject: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    format!(
        "wascc-control-reply-v1\n{lattice}\n{subject}\n{nonce}\n{}",
        sha256_hex(body)
    )
    .into_bytes()
}

/// Checks the reply of host `host` to the request on `subject` with
/// `nonce`: signed by that host, over this request's nonce.
fn verify_reply(
    lattice: &str,
    subject: &str,
    host: &str,
    nonce: &str,
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
) -> Result<(), String> {
    let seal = headers
        .and_then(|h| h.get(H_CONTROL_REPLY))
        .map(|v| v.as_str())
        .unwrap_or("");
    let signed = seal.split_once(' ').is_some_and(|(signer, sig)| {
        signer == host && signed_by(host, &reply_bytes(lattice, subject, nonce, body), sig)
    });
    if signed {
        Ok(())
    } else {
        Err(format!(
            "the reply is not signed by host {host} (forged, altered, or meant for another request)"
        ))
    }
}

fn random_nonce() -> String {
    let mut raw = [0u8; 16];
    // A failed read leaves zeros: a reply could then be replayed for
    // another request of this requester, never accepted for a change.
    let _ = getrandom::fill(&mut raw);
    data_encoding::BASE64URL_NOPAD.encode(&raw)
}

/// The header carrying a control request's signature:
/// `<signer key> <timestamp ms> <nonce> <signature>`.
const H_CONTROL_SEAL: &str = "wascc-control-seal";

/// Whether `key` can sign control requests: a user, account or operator
/// public key.
pub fn is_control_key(key: &str) -> bool {
    matches!(key.chars().next(), Some('U' | 'A' | 'O'))
        && nkeys::KeyPair::from_public_key(key).is_ok()
}

fn control_bytes(lattice: &str, subject: &str, ts: u64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let hash = sha256_hex(body);
    format!("wascc-control-v1\n{lattice}\n{subject}\n{ts}\n{nonce}\n{hash}").into_bytes()
}

/// The `wascc-control-seal` value of a request on `subject` with `body`,
/// signed by `key` at `now_ms`.
pub fn sign_control(
    key: &nkeys::KeyPair,
    lattice: &str,
    subject: &str,
    body: &[u8],
    now_ms: u64,
) -> String {
    // A failed read of randomness leaves zeros: the request is then
    // refused as a replay if sent twice within the skew, never accepted
    // wrongly.
    let nonce = random_nonce();
    let sig = key
        .sign(&control_bytes(lattice, subject, now_ms, &nonce, body))
        .map(|s| data_encoding::BASE64URL_NOPAD.encode(&s))
        .unwrap_or_default();
    format!("{} {now_ms} {nonce} {sig}", key.public_key())
}

/// Who may send a host control requests: with no keys, anyone who can
/// publish on its control subjects (NATS permissions decide); with keys,
/// only requests signed by one of them, each accepted once.
#[derive(Debug, Default)]
pub struct ControlAuth {
    keys: Vec<String>,
    /// Nonces accepted within the last [`MAX_CLOCK_SKEW`] (twice: a request
    /// is accepted up to that far on either side of this host's clock).
    seen: std::sync::Mutex<std::collections::HashMap<(String, String), u64>>,
}

impl ControlAuth {
    /// Accepts requests signed by one of `keys` (user, account or
    /// operator public keys); none: any request.
    pub fn new(keys: Vec<String>) -> Result<ControlAuth, String> {
        if let Some(k) = keys.iter().find(|k| !is_control_key(k)) {
            return Err(format!(
                "{k:?} is not a user, account or operator public key (U…, A…, O…)"
            ));
        }
        Ok(ControlAuth {
            keys,
            seen: Default::default(),
        })
    }

    /// Whether requests must be signed.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks a request on `subject` with `body` and its `seal` header.
    pub fn check(
        &self,
        lattice: &str,
        subject: &str,
        seal: Option<&str>,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), String> {
        if !self.required() {
            return Ok(());
        }
        let refused = |why: &str| format!("control request refused: {why}");
        let seal = seal.ok_or_else(|| {
            refused("this host accepts only signed control requests (wcc: --signer)")
        })?;
        let mut parts = seal.split(' ');
        let (Some(key), Some(ts), Some(nonce), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(refused(&format!("malformed {H_CONTROL_SEAL} header")));
        };
        if !self.keys.iter().any(|k| k == key) {
            return Err(refused(&format!("{key} may not control this host")));
        }
        let ts: u64 = ts
            .parse()
            .map_err(|_| refused("the signature's timestamp is not a number"))?;
        let signed = data_encoding::BASE64URL_NOPAD
            .decode(sig.as_bytes())
            .ok()
            .zip(nkeys::KeyPair::from_public_key(key).ok())
            .is_some_and(|(sig, k)| {
                k.verify(&control_bytes(lattice, subject, ts, nonce, body), &sig)
                    .is_ok()
            });
        if !signed {
            return Err(refused(&format!(
                "the signature of {key} does not match (forged or altered)"
            )));
        }
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        if ts.abs_diff(now_ms) > skew {
            return Err(refused(&format!(
                "signed at {ts} ms, {} ms from this host's clock; at most {skew} ms allowed",
                ts.abs_diff(now_ms)
            )));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, at| at.abs_diff(now_ms) <= 2 * skew);
        if seen
            .insert((key.to_string(), nonce.to_string()), ts)
            .is_some()
        {
            return Err(refused("already received (replay)"));
        }
        Ok(())
    }
}

/// Serves the control subjects of the host whose key `signer` holds until
/// the returned task is aborted; requests are checked by `auth`, replies
/// and events signed by `signer`. After a change the host's record
/// (`record`) is rewritten at once, then the event published.
pub async fn serve(
    lattice: Lattice,
    signer: Arc<Sealer>,
    commands: Arc<dyn HostCommands>,
    record: RecordFn,
    auth: ControlAuth,
) -> Result<tokio::task::JoinHandle<()>, LatticeError> {
    let id = signer.origin().to_string();
    let subject = control_subject(lattice.name(), &id, ">");
    let prefix = control_subject(lattice.name(), &id, "");
    let mut sub = lattice.subscribe(&subject).await?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let name = msg.subject.strip_prefix(prefix.as_str()).unwrap_or("");
            let seal = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(H_CONTROL_SEAL))
                .map(|v| v.as_str());
            let command = auth
                .check(
                    lattice.name(),
                    msg.subject.as_str(),
                    seal,
                    &msg.payload,
                    crate::now_millis(),
                )
                .inspect_err(|e| tracing::warn!(command = %name, "{e}"))
                .and_then(|()| Command::parse(name, &msg.payload));
            // `stop` is answered first: the host is gone after it.
            let stop = command == Ok(Command::Stop);
            let outcome = match command {
                Err(e) => Err(e),
                Ok(Command::Stop) => Ok(Done::default()),
                Ok(command) => commands.run(command).await,
            };
            let reply = match outcome {
                Err(e) => ControlReply::failed(e),
                Ok(done) => {
                    if let Some((what, data)) = done.event {
                        if let Err(e) = lattice.put_host(&record()).await {
                            tracing::warn!("cannot rewrite the host record after {name}: {e}");
                        }
                        publish_event(&lattice, &signer, &Event::new(&id, what, data)).await;
                    }
                    ControlReply {
                        ok: true,
                        error: None,
                        data: done.data,
                    }
                }
            };
            if let Some(to) = msg.reply
                && let Ok(json) = serde_json::to_vec(&reply)
            {
                let nonce = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(H_CONTROL_NONCE))
                    .map_or("-", |v| v.as_str());
                let bytes = reply_bytes(lattice.name(), msg.subject.as_str(), nonce, &json);
                let mut headers = async_nats::HeaderMap::new();
                let seal = format!("{id} {}", signer.sign(&bytes));
                headers.insert(H_CONTROL_REPLY, seal.as_str());
                let _ = lattice
                    .client()
                    .publish_with_headers(to, headers, json.into())
                    .await;
                let _ = lattice.client().flush().await;
            }
            if stop {
                let _ = commands.run(Command::Stop).await;
                break;
            }
        }
    }))
}

impl ControlReply {
    /// A refusal saying why.
    pub fn failed(error: String) -> ControlReply {
        ControlReply {
            ok: false,
            error: Some(error),
            data: None,
        }
    }
}

/// Sends `command` with a JSON `body` to host `host` and returns its reply,
/// checked: signed by that host for this request. An error names the host
/// when it does not answer, or answers with a reply it did not sign.
pub async fn request(
    lattice: &Lattice,
    host: &str,
    command: &str,
    body: &impl Serialize,
) -> Result<ControlReply, LatticeError> {
    let err = |reason: String| LatticeError::Control {
        host: host.to_string(),
        reason,
    };
    let json = serde_json::to_vec(body).map_err(|e| err(e.to_string()))?;
    let max = lattice.client().server_info().max_payload;
    if max > 0 && json.len() > max {
        return Err(err(format!(
            "the {command} request is {} bytes, more than the NATS server's max payload of {max} bytes",
            json.len()
        )));
    }
    let subject = control_subject(lattice.name(), host, command);
    let mut headers = async_nats::HeaderMap::new();
    let nonce = random_nonce();
    headers.insert(H_CONTROL_NONCE, nonce.as_str());
    if let Some(key) = lattice.control_signer() {
        let seal = sign_control(key, lattice.name(), &subject, &json, crate::now_millis());
        headers.insert(H_CONTROL_SEAL, seal.as_str());
    }
    let msg = tokio::time::timeout(
        CONTROL_TIMEOUT,
        lattice
            .client()
            .request_with_headers(subject.clone(), headers, json.into()),
    )
    .await
    .map_err(|_| err(format!("no answer within {CONTROL_TIMEOUT:?}")))?
    .map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::NoResponders => {
            err("no such host in the lattice".to_string())
        }
        _ => err(e.to_string()),
    })?;
    verify_reply(
        lattice.name(),
        &subject,
        host,
        &nonce,
        msg.headers.as_ref(),
        &msg.payload,
    )
    .map_err(err)?;
    serde_json::from_slice(&msg.payload).map_err(|e| err(format!("unreadable reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_control_requests_pass_once_and_others_are_refused() {
        let op = nkeys::KeyPair::new_user();
        let auth = ControlAuth::new(vec![op.public_key()]).unwrap();
        let (subject, body, now) = ("wasmbus.v1.l.ctl.NH.stop", b"{}", 10_000_000);
        let seal = sign_control(&op, "l", subject, body, now);
        let check = |seal: Option<&str>, subject: &str, body: &[u8], at: u64| {
            auth.check("l", subject, seal, body, at)
        };
        let e = check(None, subject, body, now).unwrap_err();
        assert!(e.contains("accepts only signed control requests"), "{e}");
        let e = check(Some(&seal), "wasmbus.v1.l.ctl.NOTHER.stop", body, now).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = check(Some(&seal), subject, b"{ }", now).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = check(Some(&seal), subject, body, now + 31_000).unwrap_err();
        assert!(e.contains("from this host's clock"), "{e}");
        let other = nkeys::KeyPair::new_user();
        let forged = sign_control(&other, "l", subject, body, now);
        let e = check(Some(&forged), subject, body, now).unwrap_err();
        assert!(e.contains("may not control this host"), "{e}");
        let e = check(Some("garbage"), subject, body, now).unwrap_err();
        assert!(e.contains("malformed"), "{e}");
        assert_eq!(check(Some(&seal), subject, body, now + 5), Ok(()));
        let e = check(Some(&seal), subject, body, now + 6).unwrap_err();
        assert!(e.contains("replay"), "{e}");
        // Without keys, anything passes; a host key cannot be a signer.
        let open = ControlAuth::new(Vec::new()).unwrap();
        assert_eq!(open.check("l", subject, None, body, now), Ok(()));
        let e = ControlAuth::new(vec![nkeys::KeyPair::new_server().public_key()]).unwrap_err();
        assert!(
            e.contains("not a user, account or operator public key"),
            "{e}"
        );
    }

    #[test]
    fn control_replies_and_events_are_checked_against_the_host_that_signs_them() {
        let host = Sealer::new(nkeys::KeyPair::new_server());
        let id = host.origin().to_string();
        let subject = control_subject("l", &id, "inventory");
        let body = br#"{"ok":true}"#;
        let seal = |signer: &Sealer, subject: &str, nonce: &str, body: &[u8]| {
            let mut h = async_nats::HeaderMap::new();
            let sig = signer.sign(&reply_bytes("l", subject, nonce, body));
            h.insert(
                H_CONTROL_REPLY,
                format!("{} {sig}", signer.origin()).as_str(),
            );
            h
        };
        let good = seal(&host, &subject, "n1", body);
        assert_eq!(
            verify_reply("l", &subject, &id, "n1", Some(&good), body),
            Ok(())
        );
        // Another request's reply, another body, another subject, another
        // host, no seal: refused.
        let refused = |r: Result<(), String>| {
            assert!(r.unwrap_err().contains(&format!("not signed by host {id}")));
        };
        refused(verify_reply("l", &subject, &id, "n2", Some(&good), body));
        refused(verify_reply("l", &subject, &id, "n1", Some(&good), b"{}"));
        let other = control_subject("l", &id, "stop");
        refused(verify_reply("l", &other, &id, "n1", Some(&good), body));
        let stranger = Sealer::new(nkeys::KeyPair::new_server());
        let forged = seal(&stranger, &subject, "n1", body);
        refused(verify_reply("l", &subject, &id, "n1", Some(&forged), body));
        refused(verify_reply("l", &subject, &id, "n1", None, body));

        let event =
            serde_json::to_vec(&Event::new(&id, "label_set", serde_json::json!({}))).unwrap();
        let signed = |signer: &Sealer, body: &[u8]| {
            let mut h = async_nats::HeaderMap::new();
            let sig = signer.sign(&event_bytes("l", body));
            h.insert(H_EVENT_SEAL, format!("{} {sig}", signer.origin()).as_str());
            h
        };
        let h = signed(&host, &event);
        assert_eq!(
            verify_event("l", Some(&h), &event).unwrap().kind,
            "com.wascc.lattice.label_set"
        );
        let e = verify_event("other", Some(&h), &event).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let e = verify_event("l", None, &event).unwrap_err();
        assert!(e.contains("not signed"), "{e}");
        // A host signing an event in another host's name.
        let e = verify_event("l", Some(&signed(&stranger, &event)), &event).unwrap_err();
        assert!(
            e.contains(&format!("from wascc/host/{id} is signed by host")),
            "{e}"
        );
    }

    #[test]
    fn commands_parse_from_subject_and_body_and_errors_name_them() {
        assert_eq!(Command::parse("inventory", b""), Ok(Command::Inventory));
        assert_eq!(Command::parse("stop", b"{}"), Ok(Command::Stop));
        assert_eq!(
            Command::parse("label.put", br#"{"key":"zone","value":"a"}"#),
            Ok(Command::Label {
                key: "zone".into(),
                value: Some("a".into())
            })
        );
        let e = Command::parse("label.del", br#"{"key":"zone","value":"a"}"#).unwrap_err();
        assert_eq!(e, "label.del: takes no value");
        let e = Command::parse("label.put", br#"{"key":"zone"}"#).unwrap_err();
        assert_eq!(e, "label.put: needs a value");
        match Command::parse("binding.put", br#"{"actor":"M","capability":"c"}"#) {
            Ok(Command::Bind(b)) => assert_eq!(b.binding, "default"),
            other => panic!("{other:?}"),
        }
        let e = Command::parse(
            "binding.del",
            br#"{"actor":"M","capability":"c","values":{"a":"b"}}"#,
        )
        .unwrap_err();
        assert_eq!(e, "binding.del: takes no values");
        let e = Command::parse("provider.start", br#"{"capability":"x","path":"/p.wasm"}"#)
            .unwrap_err();
        assert!(e.contains("give either capability"), "{e}");
        let e = Command::parse("actor.start", b"[").unwrap_err();
        assert!(e.starts_with("actor.start: invalid request"), "{e}");
        let e = Command::parse("actor.stop", br#"{"key":"M","x":1}"#).unwrap_err();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = Command::parse("teleport", b"{}").unwrap_err();
        assert!(
            e.contains("unknown command \"teleport\"") && e.contains("actor.start"),
            "{e}"
        );
    }

    #[test]
    fn a_module_source_is_one_of_inline_or_path() {
        let inline = ModuleSource {
            module: Some(data_encoding::BASE64.encode(b"\0asm")),
            path: None,
        };
        assert_eq!(inline.resolve(), Ok(Module::Inline(b"\0asm".to_vec())));
        let path = ModuleSource {
            module: None,
            path: Some("/a.wasm".into()),
        };
        assert_eq!(path.resolve(), Ok(Module::Path("/a.wasm".into())));
        let both = ModuleSource {
            module: Some(String::new()),
            path: Some("/x".into()),
        };
        assert!(both.resolve().unwrap_err().contains("exactly one"));
        let bad = ModuleSource {
            module: Some("!!".into()),
            path: None,
        };
        assert!(bad.resolve().unwrap_err().contains("not base64"));
    }
}
