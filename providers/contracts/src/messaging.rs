//! `wascc:messaging`: publish and subscribe.

use serde::{Deserialize, Serialize};

/// The capability id of messaging.
pub const CAPABILITY_ID: &str = "wascc:messaging";
/// Actor → provider: publish a message.
pub const OP_PUBLISH_MESSAGE: &str = "Publish";
/// Provider → actor: deliver a message on a subscribed subject.
pub const OP_DELIVER_MESSAGE: &str = "DeliverMessage";
/// Actor → provider: request and wait for one reply.
pub const OP_PERFORM_REQUEST: &str = "Request";

/// A message on a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerMessage {
    /// The subject.
    pub subject: String,
    /// Where replies go; empty for none.
    #[serde(alias = "reply_to", default)]
    pub reply_to: String,
    /// The payload.
    #[serde(default, with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A request awaiting one reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RequestMessage {
    /// The subject.
    pub subject: String,
    /// The payload.
    #[serde(default, with = "serde_bytes")]
    pub body: Vec<u8>,
    /// How long to wait, in milliseconds.
    #[serde(alias = "timeout_ms")]
    pub timeout_ms: i64,
}

/// `Publish` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PublishResponse {
    /// Whether the message was handed to the server's connection.
    pub published: bool,
}

/// Why a subject is not one NATS accepts, or `None` when it is fine.
/// `wildcards` allows `*` tokens and a final `>` (subscriptions may use them,
/// publications may not).
pub fn subject_problem(subject: &str, wildcards: bool) -> Option<String> {
    if subject.is_empty() {
        return Some("the subject is empty".into());
    }
    if subject.len() > MAX_SUBJECT_LEN {
        return Some(format!(
            "the subject is longer than {MAX_SUBJECT_LEN} bytes"
        ));
    }
    if let Some(c) = subject
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Some(format!("the subject holds the character {c:?}"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Some("the subject has an empty token (two dots, or a dot at an end)".into());
        }
        let wild = *t == "*" || *t == ">";
        if !wild && (t.contains('*') || t.contains('>')) {
            return Some(format!(
                "token {t:?} mixes a wildcard with other characters"
            ));
        }
        if wild && !wildcards {
            return Some(format!("wildcard {t:?} is only allowed in subscriptions"));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Some("wildcard \">\" must be the last token".into());
        }
    }
    None
}

/// Longest subject accepted: NATS servers refuse control lines past 4 KiB.
pub const MAX_SUBJECT_LEN: usize = 1024;
