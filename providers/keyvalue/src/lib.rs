//! `wascc:keyvalue` for waSCC: one provider whose bindings choose their
//! store. A binding with a `URL` value keeps its keys in that Redis (pooled
//! connections on the host's services runtime, reconnecting after the server
//! comes back); a binding without one keeps them in the host's memory, with
//! the same semantics (one test suite runs against both).
//!
//! Not for: other contracts, or anything that knows about the host beyond
//! the provider interface of `wascc-contracts`.

mod limits;
mod memory;
mod redis_store;

pub use memory::MemoryKeyValue;
pub use redis_store::{RedisOptions, RedisStore};

use std::collections::HashMap;
use std::sync::Arc;
use wascc_contracts::keyvalue::CAPABILITY_ID;
use wascc_contracts::{
    BindingRef, BindingTable, CapabilityProvider, ProviderError, ProviderFuture, ProviderReply,
    expect_values,
};

/// Binding values this provider reads.
pub mod values {
    /// The Redis URL (`redis://host:port/db`, `rediss://…`, `redis+unix:///path`).
    pub const URL: &str = "URL";
    /// Connections to open to that Redis (default 4).
    pub const POOL_SIZE: &str = "POOL_SIZE";
    /// Milliseconds one operation may take before the actor gets an error
    /// (default 1000).
    pub const TIMEOUT_MS: &str = "TIMEOUT_MS";
    /// Every value, for error messages.
    pub const ALL: [&str; 3] = [URL, POOL_SIZE, TIMEOUT_MS];
}

pub(crate) fn wrong_type(key: &str, want: &str) -> ProviderError {
    ProviderError(format!("key {key:?} holds a value that is not a {want}"))
}

pub(crate) fn not_an_integer(key: &str, value: &str) -> ProviderError {
    ProviderError(format!(
        "key {key:?} holds {value:?}, which is not an integer"
    ))
}

pub(crate) fn add_overflows(key: &str, current: i32, add: i32) -> ProviderError {
    ProviderError(format!(
        "adding {add} to key {key:?} ({current}) overflows a 32-bit integer"
    ))
}

pub(crate) fn unknown_operation(op: &str) -> ProviderError {
    ProviderError(format!(
        "capability {CAPABILITY_ID} has no operation {op:?}"
    ))
}

/// The `wascc:keyvalue` provider: memory, or Redis per binding.
pub struct KeyValueProvider {
    memory: MemoryKeyValue,
    services: tokio::runtime::Handle,
    /// Bindings on Redis; the others are in memory.
    redis: Arc<BindingTable<Arc<RedisStore>>>,
}

impl KeyValueProvider {
    /// A provider whose Redis work runs on `services`.
    pub fn new(services: tokio::runtime::Handle) -> Self {
        KeyValueProvider {
            memory: MemoryKeyValue::default(),
            services,
            redis: Arc::default(),
        }
    }

    fn route(&self, b: &BindingRef<'_>) -> Option<Arc<RedisStore>> {
        self.redis.get(b)
    }
}

impl CapabilityProvider for KeyValueProvider {
    fn capability_id(&self) -> &str {
        CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "waSCC key-value (memory or Redis)"
    }

    fn bind_actor(
        &self,
        b: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        let (actor, binding) = (b.actor.to_string(), b.binding.to_string());
        let routes = self.redis.clone();
        let parsed = expect_values(CAPABILITY_ID, values, &values::ALL)
            .and_then(|()| RedisOptions::from_values(values));
        let opts = match parsed {
            Err(e) => return wascc_contracts::ready(Err(e)),
            Ok(None) => {
                // In memory: forget any Redis route of an earlier binding.
                routes.remove(&BindingRef {
                    actor: &actor,
                    binding: &binding,
                });
                return wascc_contracts::ready(Ok(()));
            }
            Ok(Some(opts)) => opts,
        };
        wascc_contracts::joined(
            "redis connect",
            self.services.spawn(async move {
                let store = RedisStore::connect(opts).await?;
                tracing::info!(%actor, %binding, url = %store.url(), "key-value binding on redis");
                routes.insert(&actor, &binding, Arc::new(store));
                Ok(())
            }),
        )
    }

    fn remove_actor(&self, b: BindingRef<'_>) {
        self.redis.remove(&b);
    }

    // PERFORMANCE_CRITICAL_PATH: every key-value call of every actor.
    fn handle_call(&self, b: BindingRef<'_>, op: &str, payload: &[u8]) -> ProviderReply {
        match self.route(&b) {
            None => ProviderReply::Ready(self.memory.call(b.binding, op, payload)),
            Some(store) => ProviderReply::Pending(wascc_contracts::joined(
                "redis",
                self.services
                    .spawn(store.call(op.to_string(), payload.to_vec())),
            )),
        }
    }

    fn health(&self) -> ProviderFuture<()> {
        let stores = self.redis.values();
        wascc_contracts::joined(
            "redis health",
            self.services.spawn(async move {
                for s in stores {
                    s.ping().await?;
                }
                Ok(())
            }),
        )
    }

    fn shutdown(&self) {
        self.redis.clear();
    }
}
