//! Operations every actor and provider understands.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Sent to a provider when an actor is bound to it.
pub const OP_BIND_ACTOR: &str = "BindActor";
/// Sent to a provider when an actor's binding is removed.
pub const OP_REMOVE_ACTOR: &str = "RemoveActor";
/// Asks an actor or provider whether it is healthy.
pub const OP_HEALTH_REQUEST: &str = "HealthRequest";
/// Asks a provider to describe itself.
pub const OP_IDENTIFY_CAPABILITY: &str = "IdentifyCapability";
/// Sent to an actor once after it starts (waSCC 0.x `Initialize`).
pub const OP_INITIALIZE: &str = "Initialize";

/// The configuration of one binding: the actor and its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CapabilityConfiguration {
    /// The actor's public key.
    pub module: String,
    /// The binding's values (for example `PORT`).
    #[serde(default)]
    pub values: HashMap<String, String>,
}

/// A health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HealthRequest {
    /// Unused; present because 0.x sent it.
    pub placeholder: bool,
}
