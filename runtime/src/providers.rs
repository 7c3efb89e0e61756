//! Capability providers at run time: which provider serves each capability,
//! which actor holds which binding, and the host API that starts and stops
//! providers and binds and unbinds actors while the host serves (the
//! lattice's control interface calls it).
//!
//! Reads are lock-free: every shard's host call loads one immutable
//! [`Registry`] snapshot. Writers (control commands, rare) are serialized,
//! build a new snapshot and swap it in; a call in flight keeps the snapshot
//! and the provider it started with, so it finishes even if the provider is
//! stopped meanwhile.

use crate::RuntimeError;
use crate::limits::{
    PORTABLE_MAX_INSTANCES, PROVIDER_DRAIN_TIMEOUT, SERVICES_THREADS, SHUTDOWN_POLL,
};
use crate::manifest::PortableSpec;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wascc_contracts::{ActorDispatcher, BindingRef, CapabilityProvider, ProviderContext};

/// A running provider and the calls in flight to it.
pub(crate) struct ProviderSlot {
    pub(crate) provider: Arc<dyn CapabilityProvider>,
    in_flight: AtomicUsize,
}

/// Counts one call in flight to a provider while alive.
pub(crate) struct CallGuard(Arc<ProviderSlot>);

impl ProviderSlot {
    pub(crate) fn enter(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        CallGuard(self.clone())
    }
}

impl CallGuard {
    /// The capability of the provider called.
    pub(crate) fn capability(&self) -> &str {
        self.0.provider.capability_id()
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One binding of an actor, with the values it was made with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BindingInfo {
    /// The actor's key.
    pub actor: String,
    /// The capability id.
    pub capability: String,
    /// The binding name.
    pub binding: String,
    /// The values.
    pub values: BTreeMap<String, String>,
}

/// A running provider.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderInfo {
    /// The capability id it provides.
    pub capability: String,
    /// Its name.
    pub name: String,
    /// Its public key, when it is a signed (portable) module.
    pub key: Option<String>,
    /// The account that signed it, when it is a signed module.
    pub account: Option<String>,
}

/// A snapshot of providers and bindings.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    providers: HashMap<String, Arc<ProviderSlot>>,
    /// Actor → capability → binding names (the hot-path lookup).
    bound: HashMap<String, HashMap<String, Vec<String>>>,
    /// (actor, capability, binding) → values, for re-binding a restarted
    /// provider and for the inventory.
    values: BTreeMap<(String, String, String), BTreeMap<String, String>>,
}

impl Registry {
    /// Whether `actor` holds `binding` to `capability`.
    // PERFORMANCE_CRITICAL_PATH: every capability call.
    pub(crate) fn is_bound(&self, actor: &str, capability: &str, binding: &str) -> bool {
        self.bound
            .get(actor)
            .and_then(|caps| caps.get(capability))
            .is_some_and(|names| names.iter().any(|n| n == binding))
    }

    pub(crate) fn provider(&self, capability: &str) -> Option<&Arc<ProviderSlot>> {
        self.providers.get(capability)
    }
}

/// The services runtime: a tokio runtime on its own thread for provider I/O.
pub(crate) fn start_services() -> Result<tokio::runtime::Runtime, RuntimeError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVICES_THREADS)
        .thread_name("wascc-services")
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::Services(e.to_string()))
}

/// What an actor may be bound to: its claims' capabilities.
#[derive(Debug, Clone)]
pub(crate) struct ActorCaps {
    pub(crate) caps: Vec<String>,
}

struct Inner {
    registry: Arc<ArcSwap<Registry>>,
    /// Serializes writers.
    write: Mutex<()>,
    /// Actors this host runs, by key.
    actors: ArcSwap<HashMap<String, ActorCaps>>,
    /// The host's shards, once it serves.
    host: Arc<crate::shard::HostDispatcher>,
    dispatcher: Arc<dyn ActorDispatcher>,
    /// Verifies and compiles actors started at run time.
    loader: Arc<crate::actors::Loader>,
    /// The HTTP server's listeners.
    http: Arc<crate::http_server::HttpListeners>,
    /// The lattice, once joined.
    remote: crate::Remote,
    /// The lattice's block list (empty outside a lattice).
    blocked: Arc<wascc_lattice::blocklist::BlockSet>,
    services: tokio::runtime::Handle,
    /// Whose portable providers may run, and their calls' deadline.
    portable: PortableOptions,
    /// The engine of portable providers, built with the first one.
    portable_engine: OnceLock<wascc_engines::Engine>,
}

/// How portable providers are checked and run.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortableOptions {
    /// The claims check (trusted issuers).
    pub(crate) verify: wascc_claims::VerifyOptions,
    /// Time one call to a portable provider may run.
    pub(crate) call_deadline: Duration,
}

/// The host API for providers and bindings. Cheap to clone; callable from
/// any thread but a shard's (binding may wait on a network connection).
#[derive(Clone)]
pub struct HostControl {
    inner: Arc<Inner>,
}

fn refuse(msg: String) -> RuntimeError {
    RuntimeError::Control(msg)
}

impl HostControl {
    pub(crate) fn new(
        host: Arc<crate::shard::HostDispatcher>,
        services: tokio::runtime::Handle,
        opts: &crate::host::HostOptions,
    ) -> Self {
        let registry: Arc<ArcSwap<Registry>> = Arc::default();
        let remote = crate::Remote::default();
        let loader = Arc::new(crate::actors::Loader::new(
            opts,
            registry.clone(),
            remote.clone(),
        ));
        HostControl {
            inner: Arc::new(Inner {
                registry,
                write: Mutex::new(()),
                actors: ArcSwap::default(),
                dispatcher: host.clone(),
                host,
                portable: PortableOptions {
                    verify: loader.verify_options().clone(),
                    call_deadline: opts.call_deadline,
                },
                loader,
                blocked: Arc::default(),
                http: Arc::default(),
                remote,
                services,
                portable_engine: OnceLock::new(),
            }),
        }
    }

    /// The host's shards (serving or not).
    pub(crate) fn host(&self) -> &Arc<crate::shard::HostDispatcher> {
        &self.inner.host
    }

    /// The services runtime.
    pub(crate) fn services(&self) -> &tokio::runtime::Handle {
        &self.inner.services
    }

    /// The lattice, once joined.
    pub(crate) fn remote(&self) -> &crate::Remote {
        &self.inner.remote
    }

    /// The HTTP server's listeners.
    pub(crate) fn http(&self) -> &Arc<crate::http_server::HttpListeners> {
        &self.inner.http
    }

    /// The keys blocked in the lattice.
    pub(crate) fn blocked(&self) -> &Arc<wascc_lattice::blocklist::BlockSet> {
        &self.inner.blocked
    }

    /// Why a thing with `keys` (its own, its issuer's) may not run, if one
    /// of them is blocked.
    pub(crate) fn blocked_reason(&self, keys: &[&str]) -> Option<String> {
        self.inner
            .blocked
            .any(keys)
            .map(|k| format!("{k} is blocked in the lattice"))
    }

    pub(crate) fn loader(&self) -> Arc<crate::actors::Loader> {
        self.inner.loader.clone()
    }

    /// Records that actor `key`, whose claims list `caps`, runs here (it
    /// may be bound).
    pub(crate) fn add_actor_caps(&self, key: &str, caps: Vec<String>) {
        let mut next = HashMap::clone(&self.inner.actors.load());
        next.insert(key.to_string(), ActorCaps { caps });
        self.inner.actors.store(Arc::new(next));
    }

    pub(crate) fn remove_actor_caps(&self, key: &str) {
        let mut next = HashMap::clone(&self.inner.actors.load());
        next.remove(key);
        self.inner.actors.store(Arc::new(next));
    }

    fn update(&self, f: impl FnOnce(&mut Registry)) {
        let mut next = Registry::clone(&self.inner.registry.load());
        f(&mut next);
        self.inner.registry.store(Arc::new(next));
    }

    /// Starts `provider` for its capability id and re-applies the bindings
    /// recorded for that capability (a restarted provider serves the same
    /// actors). Refused when a provider of that capability already runs.
    pub async fn start_provider(
        &self,
        provider: Arc<dyn CapabilityProvider>,
    ) -> Result<(), RuntimeError> {
        let id = provider.capability_id().to_string();
        let rebind: Vec<BindingInfo> = {
            let _w = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
            let reg = self.inner.registry.load();
            if let Some(running) = reg.provider(&id) {
                return Err(refuse(format!(
                    "a provider of capability {id} already runs on this host ({})",
                    running.provider.name()
                )));
            }
            provider
                .start(ProviderContext {
                    dispatcher: self.inner.dispatcher.clone(),
                })
                .map_err(|e| refuse(format!("provider {} did not start: {e}", provider.name())))?;
            reg.values
                .iter()
                .filter(|((_, cap, _), _)| *cap == id)
                .map(|((actor, cap, binding), values)| BindingInfo {
                    actor: actor.clone(),
                    capability: cap.clone(),
                    binding: binding.clone(),
                    values: values.clone(),
                })
                .collect()
        };
        for b in &rebind {
            let values = b
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Err(e) = provider
                .bind_actor(
                    BindingRef {
                        actor: &b.actor,
                        binding: &b.binding,
                    },
                    &values,
                )
                .await
            {
                // The binding stays recorded; calls get the provider's error.
                tracing::warn!(actor = %b.actor, capability = %id, binding = %b.binding, "re-binding failed: {e}");
            }
        }
        let name = provider.name().to_string();
        let slot = Arc::new(ProviderSlot {
            provider,
            in_flight: AtomicUsize::new(0),
        });
        let _w = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
        if self.inner.registry.load().provider(&id).is_some() {
            slot.provider.shutdown();
            return Err(refuse(format!(
                "a provider of capability {id} was started meanwhile"
            )));
        }
        self.update(|r| {
            r.providers.insert(id.clone(), slot);
        });
        tracing::info!(capability = %id, provider = %name, rebound = rebind.len(), "provider started");
        Ok(())
    }

    /// The provider of `capability`, or the error that none runs.
    fn running(&self, capability: &str) -> Result<Arc<ProviderSlot>, RuntimeError> {
        self.inner
            .registry
            .load()
            .provider(capability)
            .cloned()
            .ok_or_else(|| {
                refuse(format!(
                    "no provider of capability {capability} runs on this host"
                ))
            })
    }

    /// Starts a fresh built-in provider of capability `id` (see
    /// [`BUILTIN_CAPABILITIES`](crate::host::BUILTIN_CAPABILITIES)).
    pub async fn start_builtin(&self, id: &str) -> Result<(), RuntimeError> {
        if id == wascc_contracts::http::CAPABILITY_ID {
            let server = crate::http_server::HttpServer::new(
                self.inner.http.clone(),
                self.inner.services.clone(),
            );
            return self.start_provider(Arc::new(server)).await;
        }
        let p = crate::host::builtin_provider(id, &self.inner.services).ok_or_else(|| {
            refuse(format!(
                "capability {id} has no built-in provider in this host (built in: {})",
                crate::host::BUILTIN_CAPABILITIES.join(", ")
            ))
        })?;
        self.start_provider(p).await
    }

    /// Loads the portable (wasm) provider `spec` names (its claims must say
    /// it is a provider, from a trusted issuer) and starts it for the
    /// capability id it reports, which is returned. Compiling blocks the
    /// caller for a while: call it from a control thread, not a shard.
    pub async fn start_portable(&self, spec: &PortableSpec) -> Result<String, RuntimeError> {
        let bytes =
            crate::read_bounded(&spec.path, crate::limits::MAX_MODULE_BYTES).map_err(|reason| {
                RuntimeError::Provider {
                    path: spec.path.display().to_string(),
                    reason,
                }
            })?;
        self.start_portable_module(spec, &bytes).await
    }

    /// [`start_portable`](Self::start_portable) with the module's bytes at
    /// hand (`spec.path` only names it in messages).
    pub async fn start_portable_module(
        &self,
        spec: &PortableSpec,
        bytes: &[u8],
    ) -> Result<String, RuntimeError> {
        let engine = match self.inner.portable_engine.get() {
            Some(e) => e.clone(),
            None => {
                let mut cfg = wascc_engines::EngineConfig::new(wascc_engines::EngineKind::Jit);
                cfg.max_instances = PORTABLE_MAX_INSTANCES;
                cfg.max_concurrent_calls = PORTABLE_MAX_INSTANCES;
                cfg.call_deadline = self.inner.portable.call_deadline;
                let e = wascc_engines::Engine::new(cfg)?;
                self.inner.portable_engine.get_or_init(|| e).clone()
            }
        };
        let provider = crate::portable::PortableProvider::load(
            spec,
            bytes,
            &engine,
            &self.inner.portable.verify,
        )
        .await?;
        let id = provider.capability_id().to_string();
        if let Some(blocked) = self.blocked_reason(&[
            provider.key().unwrap_or_default(),
            provider.account().unwrap_or_default(),
        ]) {
            provider.shutdown();
            return Err(RuntimeError::Provider {
                path: spec.path.display().to_string(),
                reason: blocked,
            });
        }
        self.start_provider(Arc::new(provider))
            .await
            .map_err(|e| RuntimeError::Provider {
                path: spec.path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(id)
    }

    /// Stops the provider of `capability`: new calls to it are refused at
    /// once, calls in flight finish (up to [`PROVIDER_DRAIN_TIMEOUT`]), then
    /// it shuts down. Its bindings stay recorded for a later start.
    pub async fn stop_provider(&self, capability: &str) -> Result<(), RuntimeError> {
        let slot = {
            let _w = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
            let slot = self.running(capability)?;
            self.update(|r| {
                r.providers.remove(capability);
            });
            slot
        };
        let started = Instant::now();
        while slot.in_flight.load(Ordering::Acquire) > 0
            && started.elapsed() < PROVIDER_DRAIN_TIMEOUT
        {
            // The timer runs on the services runtime; the wait works on any
            // executor. The sleep is made inside the task: tokio's timer
            // must be created in its runtime's context.
            let _ = self
                .inner
                .services
                .spawn(async { tokio::time::sleep(SHUTDOWN_POLL).await })
                .await;
        }
        let abandoned = slot.in_flight.load(Ordering::Acquire);
        if abandoned > 0 {
            tracing::warn!(%capability, abandoned, "provider drain timed out");
        }
        slot.provider.shutdown();
        tracing::info!(%capability, "provider stopped");
        Ok(())
    }

    /// Binds `actor` to `capability` under `binding` with `values`: the
    /// actor must run here (or, in a lattice, on a host the lattice state
    /// lists: its calls then come here through the lattice) and its claims
    /// list the capability, a provider of it must run, and the provider
    /// must accept the values. Binding again replaces the earlier values.
    pub async fn bind(
        &self,
        actor: &str,
        capability: &str,
        binding: &str,
        values: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let local = self.inner.actors.load().get(actor).cloned();
        let caps = match local {
            Some(c) => c,
            None => self.lattice_actor_caps(actor).await?,
        };
        if !caps.caps.iter().any(|c| c == capability) {
            return Err(refuse(format!(
                "actor {actor}'s claims do not list capability {capability} (they list [{}])",
                caps.caps.join(", ")
            )));
        }
        let slot = self.running(capability)?;
        let hv: HashMap<String, String> =
            values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        slot.provider
            .bind_actor(BindingRef { actor, binding }, &hv)
            .await
            .map_err(|e| refuse(e.0))?;
        {
            let _w = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
            self.update(|r| {
                let names = r
                    .bound
                    .entry(actor.to_string())
                    .or_default()
                    .entry(capability.to_string())
                    .or_default();
                if !names.iter().any(|n| n == binding) {
                    names.push(binding.to_string());
                }
                r.values.insert(
                    (
                        actor.to_string(),
                        capability.to_string(),
                        binding.to_string(),
                    ),
                    values,
                );
            });
        }
        tracing::info!(%actor, %capability, %binding, "actor bound");
        if let Some(rpc) = self.inner.remote.get() {
            let key = wascc_lattice::rpc::BindingKey {
                actor: actor.to_string(),
                capability: capability.to_string(),
                binding: binding.to_string(),
            };
            if let Err(e) = rpc.serve_binding(&key).await {
                tracing::warn!(%actor, %capability, %binding, "binding not served to the lattice: {e}");
            }
        }
        Ok(())
    }

    /// The claims of `actor` as the lattice state lists them, when this
    /// host does not run it (a binding here for an actor running elsewhere).
    async fn lattice_actor_caps(&self, actor: &str) -> Result<ActorCaps, RuntimeError> {
        let Some(rpc) = self.inner.remote.get() else {
            return Err(refuse(format!("actor {actor} does not run on this host")));
        };
        let hosts = rpc.lattice().hosts().await?;
        hosts
            .iter()
            .flat_map(|h| h.actors.iter())
            .find(|a| a.key == actor)
            .map(|a| ActorCaps {
                caps: a.caps.clone(),
            })
            .ok_or_else(|| refuse(format!("actor {actor} runs on no host of the lattice")))
    }

    /// Removes a binding: the actor's new calls through it are refused at
    /// once, then the provider drops what it kept for it.
    pub async fn unbind(
        &self,
        actor: &str,
        capability: &str,
        binding: &str,
    ) -> Result<(), RuntimeError> {
        let slot = {
            let _w = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
            let reg = self.inner.registry.load();
            if !reg.is_bound(actor, capability, binding) {
                return Err(refuse(format!(
                    "actor {actor} has no binding {binding:?} to capability {capability}"
                )));
            }
            let slot = reg.provider(capability).cloned();
            self.update(|r| {
                if let Some(caps) = r.bound.get_mut(actor) {
                    if let Some(names) = caps.get_mut(capability) {
                        names.retain(|n| n != binding);
                        if names.is_empty() {
                            caps.remove(capability);
                        }
                    }
                    if caps.is_empty() {
                        r.bound.remove(actor);
                    }
                }
                r.values.remove(&(
                    actor.to_string(),
                    capability.to_string(),
                    binding.to_string(),
                ));
            });
            slot
        };
        if let Some(rpc) = self.inner.remote.get() {
            rpc.unserve_binding(&wascc_lattice::rpc::BindingKey {
                actor: actor.to_string(),
                capability: capability.to_string(),
                binding: binding.to_string(),
            });
        }
        if let Some(slot) = slot {
            slot.provider.remove_actor(BindingRef { actor, binding });
        }
        tracing::info!(%actor, %capability, %binding, "actor unbound");
        Ok(())
    }

    /// The running providers, in order of capability id.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        let mut v: Vec<ProviderInfo> = self
            .inner
            .registry
            .load()
            .providers
            .iter()
            .map(|(id, s)| ProviderInfo {
                capability: id.clone(),
                name: s.provider.name().to_string(),
                key: s.provider.key().map(str::to_string),
                account: s.provider.account().map(str::to_string),
            })
            .collect();
        v.sort_by(|a, b| a.capability.cmp(&b.capability));
        v
    }

    /// Every binding, in order of actor, capability and name.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner
            .registry
            .load()
            .values
            .iter()
            .map(|((actor, capability, binding), values)| BindingInfo {
                actor: actor.clone(),
                capability: capability.clone(),
                binding: binding.clone(),
                values: values.clone(),
            })
            .collect()
    }

    /// Calls `operation` of the provider of `capability` for `actor`
    /// through its binding `binding` on this host (a call from another
    /// host of the lattice: the reply stays in the current shape).
    pub(crate) fn call_bound(
        &self,
        actor: &str,
        capability: &str,
        binding: &str,
        operation: &str,
        payload: &[u8],
    ) -> wascc_contracts::ProviderFuture<Vec<u8>> {
        use wascc_contracts::{ProviderError, ProviderReply};
        let reg = self.inner.registry.load();
        if !reg.is_bound(actor, capability, binding) {
            let e = format!(
                "actor {actor} has no binding {binding:?} to capability {capability} on this host"
            );
            return Box::pin(async move { Err(ProviderError(e)) });
        }
        let Some(slot) = reg.provider(capability).cloned() else {
            let e = format!("no provider for capability {capability} runs on this host");
            return Box::pin(async move { Err(ProviderError(e)) });
        };
        let guard = slot.enter();
        match slot
            .provider
            .handle_call(BindingRef { actor, binding }, operation, payload)
        {
            ProviderReply::Ready(r) => Box::pin(async move { r }),
            ProviderReply::Pending(f) => Box::pin(async move {
                let r = f.await;
                drop(guard);
                r
            }),
        }
    }

    /// Asks the provider of `capability` whether it can serve.
    pub async fn health(&self, capability: &str) -> Result<(), RuntimeError> {
        let slot = self.running(capability)?;
        slot.provider
            .health()
            .await
            .map_err(|e| refuse(format!("provider of {capability} is unhealthy: {e}")))
    }

    /// Stops every provider (the host is stopping).
    pub(crate) async fn stop_all(&self) {
        for p in self.providers() {
            let _ = self.stop_provider(&p.capability).await;
        }
    }
}
