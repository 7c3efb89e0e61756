//! Building a host from a manifest (everything checked before serving) and
//! running it on a shard until it is told to stop.

use crate::RuntimeError;
use crate::dispatch::{ActorHandler, ProviderMap};
use crate::http::{self, ServeState};
use crate::limits::{DRAIN_TIMEOUT, MAX_MODULE_BYTES, SHUTDOWN_POLL};
use crate::manifest::Manifest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wascc_claims::{Section, VerifyOptions};
use wascc_contracts::{CodecProfile, SDK_MARKER_SECTION};
use wascc_engines::{ActorModule, CallError, Engine, EngineConfig, EngineKind, WapcInstance};

/// Host-wide options (from the command line).
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Engine kind for actors whose manifest entry names none.
    pub engine: EngineKind,
    /// Account keys whose actors may run; empty trusts every issuer.
    pub trusted_issuers: Vec<String>,
    /// Where the `aot` engine keeps precompiled modules.
    pub aot_dir: PathBuf,
    /// Time one invocation may run before it is interrupted.
    pub call_deadline: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            engine: EngineKind::Jit,
            trusted_issuers: Vec::new(),
            aot_dir: PathBuf::from(".wascc/aot"),
            call_deadline: wascc_engines::limits::DEFAULT_CALL_DEADLINE,
        }
    }
}

/// An actor whose claims are verified and whose module is compiled.
pub struct LoadedActor {
    /// The actor's public key (`M…`).
    pub key: String,
    /// The name in its claims.
    pub name: String,
    /// The module file.
    pub path: PathBuf,
    /// The shape of messages the actor decodes.
    pub profile: CodecProfile,
    module: ActorModule,
    handler: Arc<ActorHandler>,
}

/// An HTTP listener bound to an actor.
#[derive(Debug, Clone)]
pub struct HttpBinding {
    /// The actor's key.
    pub actor: String,
    /// Where to listen.
    pub addr: SocketAddr,
}

/// A host ready to serve: every actor verified and compiled, every binding
/// checked.
pub struct Host {
    actors: Vec<Arc<LoadedActor>>,
    http: Vec<HttpBinding>,
    labels: std::collections::BTreeMap<String, String>,
}

/// The capability ids of the providers built into this host.
pub const BUILTIN_CAPABILITIES: [&str; 4] = [
    wascc_contracts::http::CAPABILITY_ID,
    wascc_contracts::keyvalue::CAPABILITY_ID,
    wascc_contracts::logging::CAPABILITY_ID,
    wascc_contracts::extras::CAPABILITY_ID,
];

fn builtin_provider(id: &str) -> Option<Arc<dyn wascc_contracts::CapabilityProvider>> {
    use wascc_providers_builtin::*;
    Some(match id {
        wascc_contracts::keyvalue::CAPABILITY_ID => Arc::new(MemoryKeyValue::default()),
        wascc_contracts::logging::CAPABILITY_ID => Arc::new(LoggingProvider),
        wascc_contracts::extras::CAPABILITY_ID => Arc::new(ExtrasProvider::default()),
        _ => return None,
    })
}

fn read_module(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    crate::read_bounded(path, MAX_MODULE_BYTES).map_err(|reason| RuntimeError::Actor {
        path: path.display().to_string(),
        reason,
    })
}

fn binding_error(
    manifest: &Manifest,
    b: &crate::manifest::BindingSpec,
    reason: String,
) -> RuntimeError {
    RuntimeError::Binding {
        manifest: manifest.path.display().to_string(),
        actor: b.actor.clone(),
        capability: b.capability.clone(),
        binding: b.binding.clone(),
        reason,
    }
}

impl Host {
    /// Verifies, compiles and binds everything the manifest names. Nothing
    /// is served until all of it has passed.
    pub fn build(manifest: &Manifest, opts: &HostOptions) -> Result<Host, RuntimeError> {
        let manifest_err = |reason: String| RuntimeError::Manifest {
            path: manifest.path.display().to_string(),
            reason,
        };
        let mut providers = ProviderMap::new();
        for id in &manifest.capabilities {
            if id == wascc_contracts::http::CAPABILITY_ID {
                continue;
            }
            let p = builtin_provider(id).ok_or_else(|| {
                manifest_err(format!(
                    "capability {id} has no built-in provider in this host (built in: {})",
                    BUILTIN_CAPABILITIES.join(", ")
                ))
            })?;
            providers.insert(id.clone(), p);
        }
        let providers = Arc::new(providers);

        // Claims first: nothing is compiled for an actor that may not run.
        let verify = VerifyOptions {
            trusted_issuers: opts.trusted_issuers.clone(),
            now: None,
        };
        let mut verified: Vec<(wascc_claims::Token, crate::manifest::ActorSpec, Vec<u8>)> =
            Vec::new();
        for spec in &manifest.actors {
            let bytes = read_module(&spec.path)?;
            let actor_err = |reason: String| RuntimeError::Actor {
                path: spec.path.display().to_string(),
                reason,
            };
            let token =
                wascc_claims::verify(&bytes, &verify).map_err(|e| actor_err(e.to_string()))?;
            if let Some((_, prev, _)) = verified
                .iter()
                .find(|(t, _, _)| t.claims.sub == token.claims.sub)
            {
                return Err(actor_err(format!(
                    "actor {} is already listed as {}",
                    token.claims.sub,
                    prev.path.display()
                )));
            }
            verified.push((token, spec.clone(), bytes));
        }

        for b in &manifest.bindings {
            let bind_err = |reason: String| binding_error(manifest, b, reason);
            let (token, _, _) = verified
                .iter()
                .find(|(t, _, _)| t.claims.sub == b.actor)
                .ok_or_else(|| bind_err("the actor is not among the manifest's actors".into()))?;
            if !manifest.capabilities.contains(&b.capability) {
                return Err(bind_err(
                    "the capability is not listed under capabilities".into(),
                ));
            }
            let caps = token
                .claims
                .wascap
                .as_ref()
                .and_then(|w| w.caps.clone())
                .unwrap_or_default();
            if !caps.contains(&b.capability) {
                return Err(bind_err(format!(
                    "the actor's claims do not list this capability (they list [{}])",
                    caps.join(", ")
                )));
            }
            if let Some(p) = providers.get(&b.capability) {
                let values = b
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                p.bind_actor(&b.actor, &b.binding, &values)
                    .map_err(|e| bind_err(e.to_string()))?;
            }
        }

        let mut http = Vec::new();
        for b in manifest
            .bindings
            .iter()
            .filter(|b| b.capability == wascc_contracts::http::CAPABILITY_ID)
        {
            let bind_err = |reason: String| binding_error(manifest, b, reason);
            let port = b
                .values
                .get("PORT")
                .ok_or_else(|| bind_err("value PORT is required".into()))?;
            let port: u16 = port
                .parse()
                .map_err(|_| bind_err(format!("PORT {port:?} is not a port number")))?;
            let ip = b
                .values
                .get("ADDR")
                .map(String::as_str)
                .unwrap_or("0.0.0.0");
            let addr: SocketAddr = format!("{ip}:{port}")
                .parse()
                .or_else(|_| format!("[{ip}]:{port}").parse())
                .map_err(|_| bind_err(format!("ADDR {ip:?} is not an IP address")))?;
            if let Some(other) = http.iter().find(|h: &&HttpBinding| h.addr == addr) {
                return Err(bind_err(format!(
                    "{addr} is already bound to actor {}",
                    other.actor
                )));
            }
            http.push(HttpBinding {
                actor: b.actor.clone(),
                addr,
            });
        }

        let mut engines: HashMap<EngineKind, Engine> = HashMap::new();
        let mut actors = Vec::new();
        for (token, spec, bytes) in verified {
            let actor_err = |reason: String| RuntimeError::Actor {
                path: spec.path.display().to_string(),
                reason,
            };
            let kind = spec.engine.unwrap_or(opts.engine);
            let engine = match engines.get(&kind) {
                Some(e) => e.clone(),
                None => {
                    let mut cfg = EngineConfig::new(kind);
                    cfg.call_deadline = opts.call_deadline;
                    if kind == EngineKind::Aot {
                        cfg.aot_dir = Some(opts.aot_dir.clone());
                    }
                    let e = Engine::new(cfg)?;
                    engines.insert(kind, e.clone());
                    e
                }
            };
            let profile = if wascc_claims::sections(&bytes)
                .map_err(|e| actor_err(e.to_string()))?
                .iter()
                .any(|s| matches!(s, Section::Custom { name, .. } if *name == SDK_MARKER_SECTION))
            {
                CodecProfile::Current
            } else {
                CodecProfile::Compat
            };
            let module = engine.load(&bytes).map_err(|e| actor_err(e.to_string()))?;
            let key = token.claims.sub.clone();
            let meta = token.claims.wascap.clone().unwrap_or_default();
            let bindings = manifest
                .bindings
                .iter()
                .filter(|b| b.actor == key)
                .map(|b| (b.capability.clone(), b.binding.clone()));
            let handler = Arc::new(ActorHandler::new(
                key.clone(),
                meta.caps.clone().unwrap_or_default(),
                bindings,
                providers.clone(),
                profile,
            ));
            tracing::info!(actor = %key, name = meta.name.as_deref().unwrap_or(""), engine = %kind, ?profile, "actor loaded");
            actors.push(Arc::new(LoadedActor {
                key,
                name: meta.name.unwrap_or_default(),
                path: spec.path.clone(),
                profile,
                module,
                handler,
            }));
        }
        Ok(Host {
            actors,
            http,
            labels: manifest.labels.clone(),
        })
    }

    /// The HTTP listeners this host will open.
    pub fn http_bindings(&self) -> &[HttpBinding] {
        &self.http
    }

    /// Serves until `shutdown` is set, then stops accepting, waits for
    /// in-flight requests (at most [`DRAIN_TIMEOUT`]) and returns. Runs on
    /// the current shard.
    pub async fn serve(self, shutdown: Arc<AtomicBool>) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let mut pools = HashMap::new();
        for actor in &self.actors {
            let pool = Rc::new(ActorPool {
                actor: actor.clone(),
                idle: RefCell::new(Vec::new()),
            });
            // One instance up front: a module that traps in its initializer
            // fails the start, not the first request.
            let inst = pool.instantiate().await?;
            pool.idle.borrow_mut().push(inst);
            pools.insert(actor.key.clone(), pool);
        }
        let state = Rc::new(ServeState::default());
        for b in &self.http {
            let pool = pools
                .get(&b.actor)
                .cloned()
                .ok_or_else(|| RuntimeError::Binding {
                    manifest: String::new(),
                    actor: b.actor.clone(),
                    capability: wascc_contracts::http::CAPABILITY_ID.into(),
                    binding: "default".into(),
                    reason: "the actor is not loaded".into(),
                })?;
            let listener =
                wascc_scheduler::net::Listener::bind(b.addr).map_err(|e| RuntimeError::Listen {
                    addr: b.addr.to_string(),
                    reason: e.to_string(),
                })?;
            let local = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            tracing::info!(actor = %b.actor, addr = %local, "http server listening");
            wascc_scheduler::spawn_local(http::accept_loop(listener, pool, state.clone()));
        }
        tracing::info!(
            actors = self.actors.len(),
            labels = ?self.labels,
            ms = started.elapsed().as_millis() as u64,
            "host ready"
        );
        while !shutdown.load(Ordering::Relaxed) {
            wascc_scheduler::sleep(SHUTDOWN_POLL).await;
        }
        state.stopping.set(true);
        let drain_started = Instant::now();
        tracing::info!(
            in_flight = state.in_flight.get(),
            "shutting down: draining in-flight requests"
        );
        while state.in_flight.get() > 0 && drain_started.elapsed() < DRAIN_TIMEOUT {
            wascc_scheduler::sleep(SHUTDOWN_POLL).await;
        }
        if state.in_flight.get() > 0 {
            tracing::warn!(
                in_flight = state.in_flight.get(),
                "drain timeout: abandoning requests"
            );
        }
        tracing::info!("host stopped");
        Ok(())
    }
}

/// The instances of one actor on this shard. Idle instances are reused; a
/// call with none idle takes a fresh one from the engine's pool.
pub(crate) struct ActorPool {
    pub(crate) actor: Arc<LoadedActor>,
    idle: RefCell<Vec<WapcInstance>>,
}

/// Why an invocation failed.
#[derive(Debug)]
pub(crate) enum InvokeError {
    /// No instance could be had.
    Instantiate(String),
    /// The call failed.
    Call(CallError),
}

impl ActorPool {
    async fn instantiate(&self) -> Result<WapcInstance, RuntimeError> {
        let handler: Arc<dyn wascc_engines::HostHandler> = self.actor.handler.clone();
        self.actor
            .module
            .instantiate(&self.actor.key, handler)
            .await
            .map_err(|e| RuntimeError::Actor {
                path: self.actor.path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Invokes `operation` on an instance of the actor.
    // PERFORMANCE_CRITICAL_PATH: one pop and one push per call when warm.
    pub(crate) async fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, InvokeError> {
        let popped = self.idle.borrow_mut().pop();
        let mut inst = match popped {
            Some(i) => i,
            None => self
                .instantiate()
                .await
                .map_err(|e| InvokeError::Instantiate(e.to_string()))?,
        };
        let result = inst.call(operation, payload).await;
        match &result {
            Err(e) if e.poisons_instance() => {
                tracing::warn!(actor = %self.actor.key, "discarding instance: {e}");
            }
            _ => self.idle.borrow_mut().push(inst),
        }
        result.map_err(InvokeError::Call)
    }
}
