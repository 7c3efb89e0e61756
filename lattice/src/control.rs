//! The control interface of a lattice: JSON requests to one host on
//! `wasmbus.v1.<lattice>.ctl.<host>.<command>`, and CloudEvents for every
//! change on `wasmbus.v1.<lattice>.evt`. Commands so far: `label.put`,
//! `label.del` and `stop` (the rest of issue 5's commands build on this).

use crate::LatticeError;
use crate::limits::STATE_TIMEOUT;
use crate::membership::RecordFn;
use crate::state::Lattice;
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
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
pub struct LabelRequest {
    /// The label's key.
    pub key: String,
    /// The value to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The answer to every command: `{"ok": true}` or `{"ok": false, "error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the command was carried out.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a host does on command.
pub trait HostCommands: Send + Sync + 'static {
    /// Sets (`Some`) or removes (`None`) a label.
    fn set_label(&self, key: &str, value: Option<&str>) -> Result<(), String>;
    /// Stops the host (drain, leave the lattice, exit).
    fn stop(&self);
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

/// Publishes `event` on the lattice's event subject; a failure is logged,
/// not returned (events never hold up the change they report).
pub async fn publish_event(lattice: &Lattice, event: &Event) {
    let Ok(json) = serde_json::to_vec(event) else {
        return;
    };
    if let Err(e) = lattice
        .client()
        .publish(events_subject(lattice.name()), json.into())
        .await
    {
        tracing::warn!(kind = %event.kind, "cannot publish event: {e}");
    }
}

/// Serves the control subjects of host `id` until the returned task is
/// aborted. After a change the host's record (`record`) is rewritten at
/// once, then the event published.
pub async fn serve(
    lattice: Lattice,
    id: String,
    commands: Arc<dyn HostCommands>,
    record: RecordFn,
) -> Result<tokio::task::JoinHandle<()>, LatticeError> {
    let subject = control_subject(lattice.name(), &id, ">");
    let prefix = control_subject(lattice.name(), &id, "");
    let mut sub = lattice
        .client()
        .subscribe(subject.clone())
        .await
        .map_err(|e| LatticeError::Connect {
            url: "the lattice".into(),
            reason: format!("cannot subscribe to {subject}: {e}"),
        })?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let command = msg
                .subject
                .strip_prefix(prefix.as_str())
                .unwrap_or("")
                .to_string();
            let (reply, change) = handle(&command, &msg.payload, &*commands);
            if let Some((what, data)) = change {
                if let Err(e) = lattice.put_host(&record()).await {
                    tracing::warn!("cannot rewrite the host record after {command}: {e}");
                }
                publish_event(&lattice, &Event::new(&id, what, data)).await;
            }
            if let Some(to) = msg.reply
                && let Ok(json) = serde_json::to_vec(&reply)
            {
                let _ = lattice.client().publish(to, json.into()).await;
            }
            if command == "stop" && reply.ok {
                commands.stop();
            }
        }
    }))
}

type Change = (&'static str, serde_json::Value);

fn handle(
    command: &str,
    body: &[u8],
    commands: &dyn HostCommands,
) -> (ControlReply, Option<Change>) {
    let fail = |e: String| {
        (
            ControlReply {
                ok: false,
                error: Some(e),
            },
            None,
        )
    };
    let ok = |change: Option<Change>| {
        (
            ControlReply {
                ok: true,
                error: None,
            },
            change,
        )
    };
    match command {
        "label.put" | "label.del" => {
            let req: LabelRequest = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return fail(format!("{command}: invalid request: {e}")),
            };
            let value = if command == "label.put" {
                match req.value.as_deref() {
                    Some(v) => Some(v),
                    None => return fail("label.put: needs a value".into()),
                }
            } else {
                None
            };
            match commands.set_label(&req.key, value) {
                Ok(()) => ok(Some(match value {
                    Some(v) => ("label_set", serde_json::json!({"key": req.key, "value": v})),
                    None => ("label_removed", serde_json::json!({"key": req.key})),
                })),
                Err(e) => fail(e),
            }
        }
        "stop" => ok(None),
        other => fail(format!(
            "unknown command {other:?} (this host knows label.put, label.del and stop)"
        )),
    }
}

/// Sends `command` with a JSON `body` to host `host` and returns its reply;
/// an error names the host when it does not answer.
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
    let subject = control_subject(lattice.name(), host, command);
    let msg = tokio::time::timeout(
        STATE_TIMEOUT,
        lattice.client().request(subject, json.into()),
    )
    .await
    .map_err(|_| err(format!("no answer within {STATE_TIMEOUT:?}")))?
    .map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::NoResponders => {
            err("no such host in the lattice".to_string())
        }
        _ => err(e.to_string()),
    })?;
    serde_json::from_slice(&msg.payload).map_err(|e| err(format!("unreadable reply: {e}")))
}
