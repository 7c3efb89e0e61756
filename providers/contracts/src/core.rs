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

/// Asks a portable (wasm) provider which capability it provides (waSCC 0.x
/// `GetCapabilityDescriptor`; the payload is a [`HealthRequest`], the reply
/// a [`CapabilityDescriptor`]).
pub const OP_GET_CAPABILITY_DESCRIPTOR: &str = "GetCapabilityDescriptor";

/// What a provider says of itself (waSCC 0.x shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CapabilityDescriptor {
    /// The capability id it provides (`wascc:keyvalue`).
    pub id: String,
    /// A human-readable name.
    pub name: String,
    /// A version string.
    #[serde(default)]
    pub version: String,
    /// A revision number.
    #[serde(default)]
    pub revision: u32,
    /// A longer description.
    #[serde(default)]
    pub long_description: String,
    /// The operations it supports.
    #[serde(default)]
    pub supported_operations: Vec<OperationDescriptor>,
}

/// One operation of a [`CapabilityDescriptor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationDescriptor {
    /// The operation name.
    pub name: String,
    /// Who calls it.
    pub direction: OperationDirection,
    /// What it does.
    #[serde(default)]
    pub doctext: String,
}

/// Who calls an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationDirection {
    /// The provider calls actors.
    ToActor,
    /// Actors call the provider.
    ToProvider,
    /// Either way.
    Both,
}

/// The namespace of a portable provider's calls to its host (as opposed to
/// calls to an actor, whose namespace is the actor's key).
pub const HOST_NAMESPACE: &str = "wascc:host";

/// Asks the host who made the call the portable provider is serving; the
/// reply is a [`CallerInfo`].
pub const OP_CURRENT_CALLER: &str = "CurrentCaller";

/// The actor (and binding) whose call a portable provider is serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CallerInfo {
    /// The actor's public key; empty while serving the host itself
    /// (descriptor, health).
    pub actor: String,
    /// The binding name the actor called through.
    pub binding: String,
}
