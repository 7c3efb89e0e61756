//! The authorization chain and capability dispatch of an actor's host calls.
//!
//! Order: the actor's claims must list the capability, then the actor must
//! hold a binding of that name to it, then a provider must run it. Each
//! refusal tells the actor exactly which link failed.

use crate::providers::{ProviderSlot, Registry};
use arc_swap::ArcSwap;
use std::collections::HashSet;
use std::sync::Arc;
use wascc_contracts::{BindingRef, CodecProfile, ProviderError, ProviderReply};
use wascc_engines::{HostCall, HostHandler, HostReply};

/// Handles the host calls of one actor.
pub struct ActorHandler {
    actor: String,
    /// Set when the actor is blocked: every host call is refused.
    revoked: std::sync::atomic::AtomicBool,
    caps: HashSet<String>,
    registry: Arc<ArcSwap<Registry>>,
    remote: crate::Remote,
    profile: CodecProfile,
}

/// Where an authorized host call goes.
enum Route {
    /// The provider on this host.
    Here(Arc<ProviderSlot>),
    /// The host of the lattice holding the binding.
    Lattice(Arc<wascc_lattice::rpc::Rpc>),
}

fn shape(profile: CodecProfile, reply: Result<Vec<u8>, ProviderError>) -> Result<Vec<u8>, String> {
    profile
        .shape(reply.map_err(|e| e.0)?)
        .map_err(|e| e.to_string())
}

impl ActorHandler {
    /// A handler for `actor`, whose claims list `caps`, whose bindings and
    /// providers are looked up in `registry` at each call, sending replies
    /// in `profile`'s shape.
    pub(crate) fn new(
        actor: String,
        caps: impl IntoIterator<Item = String>,
        registry: Arc<ArcSwap<Registry>>,
        remote: crate::Remote,
        profile: CodecProfile,
    ) -> Self {
        ActorHandler {
            actor,
            revoked: Default::default(),
            caps: caps.into_iter().collect(),
            registry,
            remote,
            profile,
        }
    }

    /// Refuses every host call of the actor from now on (it is blocked).
    pub(crate) fn revoke(&self) {
        self.revoked
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Authorizes one host call to a capability provider and finds the
    /// provider, or says which link of the chain failed.
    // PERFORMANCE_CRITICAL_PATH: every capability call passes here.
    fn authorize(&self, call: &HostCall) -> Result<Route, String> {
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
        let reg = self.registry.load();
        if !reg.is_bound(&self.actor, ns, &call.binding) {
            // In a lattice, another host may hold the binding.
            if let Some(rpc) = self.remote.get() {
                return Ok(Route::Lattice(rpc.clone()));
            }
            return Err(format!(
                "actor {} has no binding {:?} to capability {ns}",
                self.actor, call.binding
            ));
        }
        reg.provider(ns)
            .cloned()
            .map(Route::Here)
            .ok_or_else(|| format!("no provider for capability {ns} runs on this host"))
    }

    /// Authorizes and performs one host call to a capability provider.
    pub fn dispatch(&self, call: &HostCall) -> HostReply {
        let slot = match self.authorize(call) {
            Ok(Route::Here(s)) => s,
            Ok(Route::Lattice(rpc)) => {
                let binding = wascc_lattice::rpc::BindingKey {
                    actor: self.actor.clone(),
                    capability: call.namespace.clone(),
                    binding: call.binding.clone(),
                };
                // Straight from this shard when it has a lattice
                // connection of its own (as actor calls go), else through
                // the services thread.
                let reply: wascc_lattice::rpc::ReplyFuture =
                    if crate::inbound::Outbound::connected() {
                        let (binding, operation, payload, deadline) = (
                            binding.clone(),
                            call.operation.clone(),
                            call.payload.clone(),
                            call.deadline,
                        );
                        Box::pin(async move {
                            let to = wascc_lattice::rpc::Over::Provider(&binding);
                            crate::inbound::Outbound::call(&rpc, to, &operation, payload, deadline)
                                .await
                        })
                    } else {
                        rpc.call_provider(
                            &binding,
                            &call.operation,
                            call.payload.clone(),
                            Some(call.deadline),
                        )
                    };
                let profile = self.profile;
                return HostReply::Pending(Box::pin(async move {
                    let r = reply.await.map_err(|e| {
                        // Nobody holds it: say so as on one host.
                        if e.contains("no host of the lattice runs it") {
                            format!(
                                "actor {} has no binding {:?} to capability {} on any host of the lattice",
                                binding.actor, binding.binding, binding.capability
                            )
                        } else {
                            e
                        }
                    });
                    shape(profile, r.map_err(ProviderError))
                }));
            }
            Err(e) => return HostReply::Ready(Err(e)),
        };
        let guard = slot.enter();
        let reply = slot.provider.handle_call(
            BindingRef {
                actor: &self.actor,
                binding: &call.binding,
            },
            &call.operation,
            &call.payload,
        );
        let profile = self.profile;
        match reply {
            ProviderReply::Ready(r) => HostReply::Ready(shape(profile, r)),
            ProviderReply::Pending(f) => {
                // The invocation is interrupted only while it runs wasm:
                // a provider slower than its deadline (an HTTP request with
                // a long TIMEOUT_MS, a Redis call) would keep it waiting
                // past it. The call gives up then instead.
                let past_deadline = wascc_scheduler::alarm::alarm(call.deadline);
                HostReply::Pending(Box::pin(async move {
                    let r = futures_lite::future::or(f, async {
                        past_deadline.await;
                        Err(ProviderError(format!(
                            "the calling invocation's deadline passed before capability {} answered",
                            guard.capability()
                        )))
                    })
                    .await;
                    drop(guard);
                    shape(profile, r)
                }))
            }
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
        if self.revoked.load(std::sync::atomic::Ordering::Relaxed) {
            return HostReply::Ready(Err(format!(
                "actor {} is blocked in the lattice",
                self.actor
            )));
        }
        if looks_like_actor_key(&call.namespace) {
            // Another actor: it may run on this shard (called within this
            // poll) or on another (a message through the mesh).
            return HostReply::Pending(Box::pin(crate::shard::call_actor(call)));
        }
        self.dispatch(&call)
    }

    fn console_log(&self, actor: &str, message: &str) {
        tracing::info!(target: "actor", actor, "{message}");
    }
}
