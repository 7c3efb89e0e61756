//! The interface of a capability provider that runs inside the host, and of
//! the host's side that providers call back into. `docs/PROVIDERS.md` tells
//! the lifecycle in prose.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why a provider refused or failed a call. The message goes back to the
/// actor as its host error, so it names the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError(pub String);

impl ProviderError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError(message.into())
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

impl From<crate::CodecError> for ProviderError {
    fn from(e: crate::CodecError) -> Self {
        ProviderError(e.to_string())
    }
}

/// A reply that is not ready yet. It must not borrow from the call: the host
/// awaits it on a shard while the provider's I/O runs elsewhere.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, ProviderError>> + Send>>;

/// A provider's answer to a call: at once, for providers that compute it in
/// place (in-memory key-value, logging), or later, for providers whose work
/// runs on the host's services thread (NATS, Redis, HTTP).
pub enum ProviderReply {
    /// The MessagePack reply, or why the call failed.
    Ready(Result<Vec<u8>, ProviderError>),
    /// A reply that arrives later.
    Pending(ReplyFuture),
}

impl From<Result<Vec<u8>, ProviderError>> for ProviderReply {
    fn from(r: Result<Vec<u8>, ProviderError>) -> Self {
        ProviderReply::Ready(r)
    }
}

impl ProviderReply {
    /// Waits for the reply, whichever kind it is.
    pub async fn wait(self) -> Result<Vec<u8>, ProviderError> {
        match self {
            ProviderReply::Ready(r) => r,
            ProviderReply::Pending(f) => f.await,
        }
    }
}

/// Work the host runs for a provider: binding an actor (which may connect to
/// a server), a health check.
pub type ProviderFuture<T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send>>;

/// A ready [`ProviderFuture`].
pub fn ready<T: Send + 'static>(r: Result<T, ProviderError>) -> ProviderFuture<T> {
    Box::pin(std::future::ready(r))
}

/// A provider's work spawned on the host's services runtime, as the future
/// the host awaits: `task` is the runtime's join handle (any future that
/// yields the work's result or why the task did not finish), `what` names
/// the work in the error when the task itself failed.
pub fn joined<T, E>(
    what: &'static str,
    task: impl Future<Output = Result<Result<T, ProviderError>, E>> + Send + 'static,
) -> ProviderFuture<T>
where
    T: Send + 'static,
    E: std::fmt::Display,
{
    Box::pin(async move {
        task.await
            .map_err(|e| ProviderError(format!("{what} task failed: {e}")))?
    })
}

/// The host's side: how a provider delivers an operation to an actor (a
/// message on a subscribed subject, an HTTP request). Callable from any
/// thread; the reply arrives through the future.
pub trait ActorDispatcher: Send + Sync {
    /// Invokes `operation` on the actor with public key `actor`.
    fn dispatch(&self, actor: &str, operation: &str, payload: Vec<u8>) -> ReplyFuture;
}

/// The host services a provider is started with.
#[derive(Clone)]
pub struct ProviderContext {
    /// Delivers operations to actors.
    pub dispatcher: Arc<dyn ActorDispatcher>,
}

/// A binding of an actor to a provider, as the provider receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRef<'a> {
    /// The actor's public key.
    pub actor: &'a str,
    /// The binding name (`default` unless the manifest names one).
    pub binding: &'a str,
}

/// A capability provider living in the host process.
///
/// Lifecycle, in the order the host calls it: [`start`](Self::start) once,
/// then any number of [`bind_actor`](Self::bind_actor) /
/// [`remove_actor`](Self::remove_actor) and [`handle_call`](Self::handle_call)
/// (calls arrive already authorized: the actor's claims list the capability
/// and it holds the binding), [`health`](Self::health) whenever asked, and
/// [`shutdown`](Self::shutdown) once, after the host has stopped routing calls
/// to it and the calls in flight have finished (or the drain timed out).
///
/// A provider must never block the calling thread on I/O: `handle_call` runs
/// on a shard. Work that waits on the network returns
/// [`ProviderReply::Pending`] and runs on the host's services runtime.
pub trait CapabilityProvider: Send + Sync {
    /// The capability id this provider implements (`wascc:keyvalue`).
    fn capability_id(&self) -> &str;

    /// A human-readable name for logs.
    fn name(&self) -> &str;

    /// The provider's public key (`V…`), when it is a signed module; built
    /// into the host: none. The lattice's block list names providers by it.
    fn key(&self) -> Option<&str> {
        None
    }

    /// The account (`A…`) that signed the module, when it is one.
    fn account(&self) -> Option<&str> {
        None
    }

    /// Called once before anything else, with the host services.
    fn start(&self, _ctx: ProviderContext) -> Result<(), ProviderError> {
        Ok(())
    }

    /// An actor was bound under `binding.binding` with `values`. Checks the
    /// values (a missing or malformed one is an error naming it) and makes
    /// whatever the binding needs (a connection, subscriptions). Binding
    /// the same actor and name again replaces the earlier binding.
    fn bind_actor(
        &self,
        _binding: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        ready(no_values_expected(self.capability_id(), values))
    }

    /// The actor's binding was removed; drop what the provider keeps for it
    /// (subscriptions stop delivering before this returns).
    fn remove_actor(&self, _binding: BindingRef<'_>) {}

    /// An actor's `__host_call`.
    fn handle_call(
        &self,
        binding: BindingRef<'_>,
        operation: &str,
        payload: &[u8],
    ) -> ProviderReply;

    /// Whether the provider can serve (its servers reachable). The error
    /// names what is wrong.
    fn health(&self) -> ProviderFuture<()> {
        ready(Ok(()))
    }

    /// The host stopped routing calls to the provider: close connections
    /// and subscriptions. Called once.
    fn shutdown(&self) {}
}

/// For providers that take no binding values: any value is refused with
/// its name, so a misspelt option is not silently ignored.
pub fn no_values_expected(
    capability: &str,
    values: &HashMap<String, String>,
) -> Result<(), ProviderError> {
    expect_values(capability, values, &[])
}

/// Refuses values whose names are not in `known`, naming the first unknown
/// one and the known ones.
pub fn expect_values(
    capability: &str,
    values: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), ProviderError> {
    let mut unknown: Vec<&String> = values
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(k) if known.is_empty() => Err(ProviderError(format!(
            "{capability} takes no binding values, got {k:?}"
        ))),
        Some(k) => Err(ProviderError(format!(
            "unknown binding value {k:?} for {capability} (known: {})",
            known.join(", ")
        ))),
    }
}

/// What a provider keeps per binding (a connection, settings), by actor and
/// binding name. Looked up by `&str` (no allocation per call) under a read
/// lock; a binding bound again replaces the earlier value.
pub struct BindingTable<T> {
    by_actor: std::sync::RwLock<HashMap<String, HashMap<String, T>>>,
}

impl<T> Default for BindingTable<T> {
    fn default() -> Self {
        BindingTable {
            by_actor: std::sync::RwLock::default(),
        }
    }
}

impl<T: Clone> BindingTable<T> {
    /// The value of a binding.
    pub fn get(&self, b: &BindingRef<'_>) -> Option<T> {
        let all = self.by_actor.read().unwrap_or_else(|p| p.into_inner());
        all.get(b.actor)?.get(b.binding).cloned()
    }

    /// Records a binding's value, returning the one it replaces.
    pub fn insert(&self, actor: &str, binding: &str, value: T) -> Option<T> {
        let mut all = self.by_actor.write().unwrap_or_else(|p| p.into_inner());
        all.entry(actor.to_string())
            .or_default()
            .insert(binding.to_string(), value)
    }

    /// Forgets a binding, returning its value.
    pub fn remove(&self, b: &BindingRef<'_>) -> Option<T> {
        let mut all = self.by_actor.write().unwrap_or_else(|p| p.into_inner());
        let bindings = all.get_mut(b.actor)?;
        let removed = bindings.remove(b.binding);
        if bindings.is_empty() {
            all.remove(b.actor);
        }
        removed
    }

    /// Every binding's value.
    pub fn values(&self) -> Vec<T> {
        let all = self.by_actor.read().unwrap_or_else(|p| p.into_inner());
        all.values().flat_map(|m| m.values().cloned()).collect()
    }

    /// Forgets every binding.
    pub fn clear(&self) {
        self.by_actor
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
