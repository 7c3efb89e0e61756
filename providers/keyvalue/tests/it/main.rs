//! The key-value contract, run against memory and against the real Redis on
//! this machine through the same provider, and Redis faults against a
//! `redis-server` the test starts itself.

mod faults;
mod suite;

use std::collections::HashMap;
use wascc_contracts::{BindingRef, CapabilityProvider, decode, encode};
use wascc_provider_keyvalue::KeyValueProvider;

/// The provider on a services runtime of its own, and a caller.
pub(crate) struct Kv {
    pub(crate) _rt: tokio::runtime::Runtime,
    pub(crate) provider: KeyValueProvider,
    pub(crate) actor: String,
    pub(crate) binding: String,
}

impl Kv {
    pub(crate) fn new(values: &[(&str, &str)]) -> Result<Kv, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let provider = KeyValueProvider::new(rt.handle().clone());
        let kv = Kv {
            _rt: rt,
            provider,
            actor: "MTESTACTOR".into(),
            binding: "default".into(),
        };
        kv.bind(values)?;
        Ok(kv)
    }

    pub(crate) fn bind(&self, values: &[(&str, &str)]) -> Result<(), String> {
        let values: HashMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = self.provider.bind_actor(self.b(), &values);
        futures_lite::future::block_on(f).map_err(|e| e.0)
    }

    fn b(&self) -> BindingRef<'_> {
        BindingRef {
            actor: &self.actor,
            binding: &self.binding,
        }
    }

    /// One operation, encoded and decoded as an actor would.
    pub(crate) fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        req: &Req,
    ) -> Result<Resp, String> {
        let payload = encode(req).unwrap();
        let reply = self.provider.handle_call(self.b(), op, &payload);
        let bytes = futures_lite::future::block_on(reply.wait()).map_err(|e| e.0)?;
        Ok(decode(&bytes).unwrap())
    }
}

/// A key prefix of this test run: parallel test processes share the Redis.
pub(crate) fn prefix() -> String {
    format!("wascc-test-{}-", rand::random::<u64>())
}
