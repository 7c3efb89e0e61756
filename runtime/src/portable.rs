//! Portable capability providers: waPC modules built for WASI, signed with
//! `prov: true` claims, serving a capability to actors (waSCC 0.x's
//! "portable providers").
//!
//! Each runs on a thread of its own with one instance, so a slow or
//! spinning provider never holds a shard or the services runtime; calls to
//! it queue (up to [`PORTABLE_QUEUE`]) and run one at a time, as its
//! single-threaded guest expects. A call that traps or overruns its
//! deadline costs the instance: the next call gets a fresh one, to which
//! the host re-sends every binding (what the provider kept in its memory is
//! lost, and said so in the log).
//!
//! Its host calls go to actors bound to it (namespace: the actor's key), or
//! to the host ([`HOST_NAMESPACE`]: who is calling).

use crate::RuntimeError;
use crate::limits::{PORTABLE_QUEUE, PORTABLE_SPIN};
use crate::manifest::PortableSpec;
use futures_channel::oneshot;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use wascc_claims::VerifyOptions;
use wascc_contracts::core::{
    CallerInfo, CapabilityConfiguration, CapabilityDescriptor, HOST_NAMESPACE, HealthRequest,
    OP_BIND_ACTOR, OP_CURRENT_CALLER, OP_GET_CAPABILITY_DESCRIPTOR, OP_HEALTH_REQUEST,
    OP_REMOVE_ACTOR,
};
use wascc_contracts::{
    ActorDispatcher, BindingRef, CapabilityProvider, ProviderContext, ProviderError,
    ProviderFuture, ProviderReply,
};
use wascc_engines::{
    ActorModule, Engine, HostCall, HostHandler, HostReply, WapcInstance, WasiConfig,
};

type Reply = Result<Vec<u8>, String>;

/// What a job does besides calling the guest.
enum Track {
    /// Nothing.
    Call,
    /// Records the binding once the guest accepted it.
    Bind(HashMap<String, String>),
    /// Forgets the binding.
    Remove,
}

/// One call for the provider's thread.
struct Job {
    caller: CallerInfo,
    /// The host's own operations are static; an actor's is copied.
    operation: Cow<'static, str>,
    payload: Vec<u8>,
    track: Track,
    reply: Option<oneshot::Sender<Reply>>,
}

/// The host side of a provider instance's host calls.
struct ProviderHost {
    name: String,
    /// Whose call the instance is serving.
    caller: Mutex<CallerInfo>,
    /// Actors bound to the provider: the only ones it may call.
    bound: Mutex<HashSet<String>>,
    dispatcher: OnceLock<Arc<dyn ActorDispatcher>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostHandler for ProviderHost {
    fn host_call(&self, call: HostCall) -> HostReply {
        if call.namespace == HOST_NAMESPACE {
            return HostReply::Ready(match call.operation.as_str() {
                OP_CURRENT_CALLER => {
                    wascc_contracts::encode(&*lock(&self.caller)).map_err(|e| e.to_string())
                }
                other => Err(format!(
                    "the host has no operation {other:?} for providers (it has {OP_CURRENT_CALLER})"
                )),
            });
        }
        if !lock(&self.bound).contains(&call.namespace) {
            return HostReply::Ready(Err(format!(
                "portable provider {} may call only actors bound to it (by key) or {HOST_NAMESPACE}; \
                 {:?} is neither",
                self.name, call.namespace
            )));
        }
        let Some(dispatcher) = self.dispatcher.get() else {
            return HostReply::Ready(Err("the provider is not started".into()));
        };
        let fut = dispatcher.dispatch(&call.namespace, &call.operation, call.payload);
        HostReply::Pending(Box::pin(async move { fut.await.map_err(|e| e.0) }))
    }

    fn console_log(&self, _key: &str, message: &str) {
        tracing::info!(target: "wascc::provider", provider = %self.name, "{message}");
    }
}

/// The provider's thread: its instance and what it must re-send to a fresh one.
struct Worker {
    module: ActorModule,
    key: String,
    wasi: WasiConfig,
    host: Arc<ProviderHost>,
    instance: Option<WapcInstance>,
    /// (actor, binding) → values, re-sent to a fresh instance.
    bindings: BTreeMap<(String, String), HashMap<String, String>>,
}

fn configuration(actor: &str, values: HashMap<String, String>) -> Vec<u8> {
    wascc_contracts::encode(&CapabilityConfiguration {
        module: actor.to_string(),
        values,
    })
    .unwrap_or_default()
}

impl Worker {
    /// Calls the guest as `caller`, instantiating (and re-binding) first if
    /// the last instance was lost.
    async fn call(&mut self, caller: CallerInfo, operation: &str, payload: &[u8]) -> Reply {
        let mut instance = match self.instance.take() {
            Some(i) => i,
            None => self.fresh().await?,
        };
        *lock(&self.host.caller) = caller;
        let result = instance.call(operation, payload).await;
        *lock(&self.host.caller) = CallerInfo::default();
        match result {
            Ok(reply) => {
                self.instance = Some(instance);
                Ok(reply)
            }
            Err(e) if e.poisons_instance() => {
                tracing::warn!(provider = %self.host.name, %operation,
                    "provider instance lost ({e}); the next call gets a fresh one");
                Err(format!("portable provider {}: {e}", self.host.name))
            }
            Err(e) => {
                self.instance = Some(instance);
                Err(match e {
                    wascc_engines::CallError::Guest(m) => m,
                    other => format!("portable provider {}: {other}", self.host.name),
                })
            }
        }
    }

    async fn fresh(&mut self) -> Result<WapcInstance, String> {
        let mut instance = self
            .module
            .instantiate_with(&self.key, self.host.clone(), Some(&self.wasi))
            .await
            .map_err(|e| format!("portable provider {}: {e}", self.host.name))?;
        if !self.bindings.is_empty() {
            tracing::warn!(provider = %self.host.name, bindings = self.bindings.len(),
                "fresh provider instance: re-binding (what the last one kept in memory is gone)");
        }
        for ((actor, binding), values) in &self.bindings {
            *lock(&self.host.caller) = CallerInfo {
                actor: actor.clone(),
                binding: binding.clone(),
            };
            if let Err(e) = instance
                .call(OP_BIND_ACTOR, &configuration(actor, values.clone()))
                .await
            {
                tracing::warn!(provider = %self.host.name, %actor, %binding, "re-binding failed: {e}");
            }
        }
        *lock(&self.host.caller) = CallerInfo::default();
        Ok(instance)
    }

    async fn serve(&mut self, job: Job) -> Reply {
        let Job {
            caller,
            operation,
            payload,
            track,
            ..
        } = job;
        // Only bindings are tracked: a plain call copies nothing.
        let key = match track {
            Track::Call => None,
            _ => Some((caller.actor.clone(), caller.binding.clone())),
        };
        let result = self.call(caller, &operation, &payload).await;
        match (track, key) {
            (Track::Bind(values), Some(key)) if result.is_ok() => {
                lock(&self.host.bound).insert(key.0.clone());
                self.bindings.insert(key, values);
            }
            (Track::Remove, Some(key)) => {
                self.bindings.remove(&key);
                if !self.bindings.keys().any(|(a, _)| *a == key.0) {
                    lock(&self.host.bound).remove(&key.0);
                }
            }
            _ => {}
        }
        result
    }

    fn run(mut self, jobs: Receiver<Job>) {
        while let Some(mut job) = next_job(&jobs) {
            let reply = job.reply.take();
            let result = futures_lite::future::block_on(self.serve(job));
            if let Some(tx) = reply {
                let _ = tx.send(result);
            }
        }
        tracing::debug!(provider = %self.host.name, "provider thread ends");
    }
}

/// The next job: polled for [`PORTABLE_SPIN`] first (a caller waiting on
/// a reply usually sends its next call within microseconds, and a parked
/// thread takes tens of them to wake), then waited for.
fn next_job(jobs: &Receiver<Job>) -> Option<Job> {
    let started = std::time::Instant::now();
    while started.elapsed() < PORTABLE_SPIN {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    jobs.recv().ok()
}

/// A portable provider, as the host's registry holds it.
pub(crate) struct PortableProvider {
    id: String,
    name: String,
    key: String,
    account: String,
    binding: String,
    host: Arc<ProviderHost>,
    jobs: Mutex<Option<SyncSender<Job>>>,
}

impl PortableProvider {
    /// Verifies and compiles `bytes` (the module `spec` names), starts its
    /// thread and asks it which capability it provides. Blocks the caller
    /// while compiling (not a shard: the host's build or a control thread).
    pub(crate) async fn load(
        spec: &PortableSpec,
        bytes: &[u8],
        engine: &Engine,
        verify: &VerifyOptions,
    ) -> Result<PortableProvider, RuntimeError> {
        let path = spec.path.display().to_string();
        let err = |reason: String| RuntimeError::Provider {
            path: path.clone(),
            reason,
        };
        let token = wascc_claims::verify_provider(bytes, verify).map_err(|e| err(e.to_string()))?;
        let key = token.claims.sub.clone();
        let claimed = token
            .claims
            .wascap
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| key.clone());
        let module = engine.load_wasi(bytes).map_err(|e| err(e.to_string()))?;
        let host = Arc::new(ProviderHost {
            name: claimed.clone(),
            caller: Mutex::default(),
            bound: Mutex::default(),
            dispatcher: OnceLock::new(),
        });
        let worker = Worker {
            module,
            key: key.clone(),
            wasi: WasiConfig {
                args: spec.args.clone(),
                env: spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            host: host.clone(),
            instance: None,
            bindings: BTreeMap::new(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(PORTABLE_QUEUE);
        std::thread::Builder::new()
            .name("wascc-provider".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| err(format!("cannot start its thread: {e}")))?;
        let provider = PortableProvider {
            id: String::new(),
            name: claimed,
            key: key.clone(),
            account: token.claims.iss.clone(),
            binding: spec.binding.clone(),
            host,
            jobs: Mutex::new(Some(tx)),
        };
        let health = wascc_contracts::encode(&HealthRequest { placeholder: false })
            .map_err(|e| err(e.to_string()))?;
        let reply = provider
            .submit(
                CallerInfo::default(),
                OP_GET_CAPABILITY_DESCRIPTOR,
                health,
                Track::Call,
            )
            .await
            .map_err(|e| err(format!("{OP_GET_CAPABILITY_DESCRIPTOR} failed: {}", e.0)))?;
        let descriptor: CapabilityDescriptor = wascc_contracts::decode(&reply)
            .map_err(|e| err(format!("{OP_GET_CAPABILITY_DESCRIPTOR} answered {e}")))?;
        if descriptor.id.is_empty() || descriptor.id.contains(char::is_whitespace) {
            return Err(err(format!(
                "its capability descriptor names capability id {:?}, not an id like wascc:keyvalue",
                descriptor.id
            )));
        }
        tracing::info!(provider = %provider.name, key = %key, capability = %descriptor.id,
            version = %descriptor.version, binding = %spec.binding, "portable provider loaded");
        Ok(PortableProvider {
            id: descriptor.id,
            ..provider
        })
    }

    /// Queues a call; the future is its reply.
    fn submit(
        &self,
        caller: CallerInfo,
        operation: impl Into<Cow<'static, str>>,
        payload: Vec<u8>,
        track: Track,
    ) -> ProviderFuture<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            caller,
            operation: operation.into(),
            payload,
            track,
            reply: Some(tx),
        };
        let sent = match lock(&self.jobs).as_ref() {
            None => Err(format!("portable provider {} is shut down", self.name)),
            Some(jobs) => jobs.try_send(job).map_err(|e| match e {
                TrySendError::Full(_) => format!(
                    "portable provider {} is overloaded ({PORTABLE_QUEUE} calls queued)",
                    self.name
                ),
                TrySendError::Disconnected(_) => {
                    format!("portable provider {}'s thread has ended", self.name)
                }
            }),
        };
        let name = self.name.clone();
        Box::pin(async move {
            sent.map_err(ProviderError)?;
            match rx.await {
                Ok(r) => r.map_err(ProviderError),
                Err(_) => Err(ProviderError(format!(
                    "portable provider {name} dropped the call"
                ))),
            }
        })
    }

    fn caller(b: &BindingRef<'_>) -> CallerInfo {
        CallerInfo {
            actor: b.actor.to_string(),
            binding: b.binding.to_string(),
        }
    }
}

impl CapabilityProvider for PortableProvider {
    fn capability_id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn key(&self) -> Option<&str> {
        Some(&self.key)
    }

    fn account(&self) -> Option<&str> {
        Some(&self.account)
    }

    fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        let _ = self.host.dispatcher.set(ctx.dispatcher);
        Ok(())
    }

    fn bind_actor(
        &self,
        b: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        if b.binding != self.binding {
            return wascc_contracts::ready(Err(ProviderError(format!(
                "portable provider {} serves binding {:?} of {}, not {:?}",
                self.name, self.binding, self.id, b.binding
            ))));
        }
        let reply = self.submit(
            Self::caller(&b),
            OP_BIND_ACTOR,
            configuration(b.actor, values.clone()),
            Track::Bind(values.clone()),
        );
        let name = self.name.clone();
        Box::pin(async move {
            reply.await.map(drop).map_err(|e| {
                ProviderError(format!(
                    "portable provider {name} refused the binding: {}",
                    e.0
                ))
            })
        })
    }

    fn remove_actor(&self, b: BindingRef<'_>) {
        // The reply is not awaited: the host has already stopped routing the
        // actor's calls here, and the thread handles the job in order.
        drop(self.submit(
            Self::caller(&b),
            OP_REMOVE_ACTOR,
            configuration(b.actor, HashMap::new()),
            Track::Remove,
        ));
    }

    fn handle_call(&self, b: BindingRef<'_>, operation: &str, payload: &[u8]) -> ProviderReply {
        ProviderReply::Pending(self.submit(
            Self::caller(&b),
            operation.to_string(),
            payload.to_vec(),
            Track::Call,
        ))
    }

    fn health(&self) -> ProviderFuture<()> {
        let payload =
            wascc_contracts::encode(&HealthRequest { placeholder: false }).unwrap_or_default();
        let reply = self.submit(
            CallerInfo::default(),
            OP_HEALTH_REQUEST,
            payload,
            Track::Call,
        );
        Box::pin(async move { reply.await.map(drop) })
    }

    fn shutdown(&self) {
        // The thread serves what is queued, then ends with the channel.
        lock(&self.jobs).take();
    }
}
