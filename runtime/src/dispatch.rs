//! The authorization chain and capability dispatch of an actor's host calls.
//!
//! Order: the actor's claims must list the capability, then the actor must
//! hold a binding of that name to it, then a provider must run it. Each
//! refusal tells the actor exactly which link failed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use wascc_contracts::{CapabilityProvider, CodecProfile, to_compat};
use wascc_engines::{HostCall, HostHandler, HostReply};

/// Capability providers running in this host, by capability id.
pub type ProviderMap = HashMap<String, Arc<dyn CapabilityProvider>>;

/// Handles the host calls of one actor.
pub struct ActorHandler {
    actor: String,
    caps: HashSet<String>,
    /// Capability id → the binding names the actor holds for it.
    bindings: HashMap<String, Vec<String>>,
    providers: Arc<ProviderMap>,
    profile: CodecProfile,
}

impl ActorHandler {
    /// A handler for `actor`, whose claims list `caps`, bound to
    /// `(capability, binding)` pairs, sending replies in `profile`'s shape.
    pub fn new(
        actor: String,
        caps: impl IntoIterator<Item = String>,
        bindings: impl IntoIterator<Item = (String, String)>,
        providers: Arc<ProviderMap>,
        profile: CodecProfile,
    ) -> Self {
        ActorHandler {
            actor,
            caps: caps.into_iter().collect(),
            bindings: bindings.into_iter().fold(
                HashMap::new(),
                |mut m: HashMap<String, Vec<String>>, (cap, b)| {
                    m.entry(cap).or_default().push(b);
                    m
                },
            ),
            providers,
            profile,
        }
    }

    /// Authorizes and performs one host call to a capability provider.
    // PERFORMANCE_CRITICAL_PATH: every capability call passes here.
    pub fn dispatch(&self, call: &HostCall) -> Result<Vec<u8>, String> {
        let ns = call.namespace.as_str();
        if !self.caps.contains(ns) {
            let mut listed: Vec<&str> = self.caps.iter().map(String::as_str).collect();
            listed.sort_unstable();
            return Err(format!(
                "actor {} is not authorized for capability {ns}: its claims list [{}]",
                self.actor,
                listed.join(", ")
            ));
        }
        let bound = self
            .bindings
            .get(ns)
            .is_some_and(|names| names.contains(&call.binding));
        if !bound {
            return Err(format!(
                "actor {} has no binding {:?} to capability {ns}",
                self.actor, call.binding
            ));
        }
        let provider = self
            .providers
            .get(ns)
            .ok_or_else(|| format!("no provider for capability {ns} runs on this host"))?;
        let reply = provider
            .handle_call(&self.actor, &call.binding, &call.operation, &call.payload)
            .map_err(|e| e.to_string())?;
        match self.profile {
            CodecProfile::Compat if !reply.is_empty() => {
                to_compat(&reply).map_err(|e| e.to_string())
            }
            _ => Ok(reply),
        }
    }
}

fn looks_like_actor_key(ns: &str) -> bool {
    ns.len() == 56
        && ns.starts_with('M')
        && ns
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl HostHandler for ActorHandler {
    fn host_call(&self, call: HostCall) -> HostReply {
        if looks_like_actor_key(&call.namespace) {
            // Another actor: it may run on this shard (called within this
            // poll) or on another (a message through the mesh).
            return HostReply::Pending(Box::pin(crate::shard::call_actor(call)));
        }
        HostReply::Ready(self.dispatch(&call))
    }

    fn console_log(&self, actor: &str, message: &str) {
        tracing::info!(target: "actor", actor, "{message}");
    }
}
