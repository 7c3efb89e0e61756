//! For portable capability providers (wasm modules built for
//! `wasm32-wasip1` and signed with `prov: true`): who made the call being
//! served, and calls to the actors bound to the provider.
//!
//! A provider declares its handlers with [`actor_handlers!`](crate::actor_handlers)
//! like an actor does: `GetCapabilityDescriptor`, `BindActor`,
//! `RemoveActor`, `HealthRequest` and its capability's operations.

use crate::{HandlerResult, host_call};
use wascc_contracts::core::{CallerInfo, HOST_NAMESPACE, OP_CURRENT_CALLER};

/// The actor (and binding) whose call the provider is serving; an empty
/// actor while it serves the host (descriptor, health).
pub fn current_caller() -> HandlerResult<CallerInfo> {
    let reply = host_call("", HOST_NAMESPACE, OP_CURRENT_CALLER, &[])?;
    Ok(wascc_contracts::decode(&reply)?)
}

/// Invokes `operation` on `actor` (a key bound to this provider) with a
/// MessagePack `payload`; returns the actor's reply.
pub fn call_actor(actor: &str, operation: &str, payload: &[u8]) -> HandlerResult<Vec<u8>> {
    host_call(wascc_contracts::DEFAULT_BINDING, actor, operation, payload)
}
