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
