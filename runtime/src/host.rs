//! Building a host from a manifest (everything checked before serving) and
//! running it on a shard until it is told to stop.

use crate::RuntimeError;
use crate::dispatch::ActorHandler;
use crate::http;
use crate::http_server::HttpBinding;
use crate::limits::{DRAIN_TIMEOUT, MAX_MODULE_BYTES, SHUTDOWN_POLL};
use crate::manifest::{CapabilitySpec, InstancePolicy, Manifest};
use crate::metrics::{self, Usage};
use crate::providers::HostControl;
use crate::shard::HostDispatcher;
use crate::shard::{self, Shared};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wascc_contracts::CodecProfile;
use wascc_engines::{ActorModule, EngineKind};
use wascc_scheduler::ShardId;

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
    /// The account that issued (signed) it: who pays for its actor time.
    pub account: String,
    /// The capabilities its claims list.
    pub caps: Vec<String>,
    /// The shape of messages the actor decodes.
    pub profile: CodecProfile,
    /// Which instance serves an invocation.
    pub instances: InstancePolicy,
    /// On how many shards it runs (`None`: all).
    pub shards: Option<u32>,
    pub(crate) module: ActorModule,
    pub(crate) handler: Arc<ActorHandler>,
}

/// How the host runs (from the command line).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Number of shards (one executor thread each).
    pub shards: usize,
    /// Pin shard `i` to a CPU: the `i`-th of `cpus`, round-robin.
    pub pin: bool,
    /// The CPUs shards are pinned to; empty: those the calling thread may
    /// run on ([`wascc_scheduler::allowed_cpus`]).
    pub cpus: Vec<usize>,
    /// How long a pinned shard with nothing to run polls for new work
    /// before it parks (sleeps in the kernel until woken): more trades
    /// idle CPU for the latency of the next message; unpinned shards do
    /// not spin.
    pub spin: std::time::Duration,
    /// Where to serve Prometheus metrics (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The lattice to join over NATS (`None`: the embedded default, this
    /// host alone).
    pub lattice: Option<wascc_lattice::LatticeOptions>,
    /// Labels added to (or replacing) the manifest's.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The host's server key seed (`SN…`) in a lattice; `None`: a fresh
    /// key at each start.
    pub host_seed: Option<String>,
    /// Host keys whose invocations this host accepts; empty: any host of
    /// the lattice.
    pub trusted_hosts: Vec<String>,
    /// Keys (user, account, operator) whose signed control requests this
    /// host accepts; none: control requests need no signature.
    pub control_keys: Vec<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shards: 1,
            pin: false,
            cpus: Vec::new(),
            spin: wascc_scheduler::limits::SPIN_BEFORE_PARK,
            metrics: None,
            lattice: None,
            labels: Default::default(),
            host_seed: None,
            trusted_hosts: Vec::new(),
            control_keys: Vec::new(),
        }
    }
}

/// A host ready to serve: every actor verified and compiled, every binding
/// checked.
pub struct Host {
    actors: Vec<Arc<LoadedActor>>,
    labels: std::collections::BTreeMap<String, String>,
    control: HostControl,
    dispatcher: Arc<HostDispatcher>,
    /// Provider I/O (NATS, Redis, HTTP client); shut down with the host.
    services: Option<tokio::runtime::Runtime>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(rt) = self.services.take() {
            rt.shutdown_background();
        }
    }
}

/// The capability ids of the providers built into this host.
pub const BUILTIN_CAPABILITIES: [&str; 6] = [
    wascc_contracts::http::CAPABILITY_ID,
    wascc_contracts::http::client::CAPABILITY_ID,
    wascc_contracts::keyvalue::CAPABILITY_ID,
    wascc_contracts::messaging::CAPABILITY_ID,
    wascc_contracts::logging::CAPABILITY_ID,
    wascc_contracts::extras::CAPABILITY_ID,
];

/// A fresh built-in provider of capability `id` (not the HTTP server, which
/// lives on the shards), its I/O on `services`.
pub fn builtin_provider(
    id: &str,
    services: &tokio::runtime::Handle,
) -> Option<Arc<dyn wascc_contracts::CapabilityProvider>> {
    use wascc_contracts::{extras, http, keyvalue, logging, messaging};
    use wascc_providers_builtin::*;
    Some(match id {
        keyvalue::CAPABILITY_ID => Arc::new(wascc_provider_keyvalue::KeyValueProvider::new(
            services.clone(),
        )),
        messaging::CAPABILITY_ID => {
            Arc::new(wascc_provider_nats::NatsMessaging::new(services.clone()))
        }
        http::client::CAPABILITY_ID => Arc::new(
            wascc_provider_httpclient::HttpClientProvider::new(services.clone()),
        ),
        logging::CAPABILITY_ID => Arc::new(LoggingProvider),
        extras::CAPABILITY_ID => Arc::new(ExtrasProvider::default()),
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
        let services = crate::providers::start_services()?;
        let dispatcher = Arc::new(HostDispatcher::default());
        let control = HostControl::new(dispatcher.clone(), services.handle().clone(), opts);
        let loader = control.loader();
        // The capability ids the manifest's providers provide.
        let mut provided: Vec<String> = Vec::new();
        for c in &manifest.capabilities {
            let id = match c {
                CapabilitySpec::Builtin(id) => {
                    futures_lite::future::block_on(control.start_builtin(id))
                        .map_err(|e| manifest_err(e.to_string()))?;
                    id.clone()
                }
                CapabilitySpec::Portable(spec) => {
                    futures_lite::future::block_on(control.start_portable(spec))
                        .map_err(|e| manifest_err(e.to_string()))?
                }
            };
            provided.push(id);
        }
        // Claims first: nothing is compiled for an actor that may not run.
        let mut verified: Vec<(wascc_claims::Token, crate::manifest::ActorSpec, Vec<u8>)> =
            Vec::new();
        for spec in &manifest.actors {
            let bytes = read_module(&spec.path)?;
            let actor_err = |reason: String| RuntimeError::Actor {
                path: spec.path.display().to_string(),
                reason,
            };
            let token = loader.verify(&bytes).map_err(actor_err)?;
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
            if !provided.contains(&b.capability) {
                return Err(bind_err(format!(
                    "no provider listed under capabilities provides it (they provide [{}])",
                    provided.join(", ")
                )));
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
        }
        for (t, _, _) in &verified {
            let caps = t
                .claims
                .wascap
                .as_ref()
                .and_then(|w| w.caps.clone())
                .unwrap_or_default();
            control.add_actor_caps(&t.claims.sub, caps);
        }
        for b in &manifest.bindings {
            futures_lite::future::block_on(control.bind(
                &b.actor,
                &b.capability,
                &b.binding,
                b.values.clone(),
            ))
            .map_err(|e| binding_error(manifest, b, e.to_string()))?;
        }

        let mut actors = Vec::new();
        for (token, spec, bytes) in verified {
            actors.push(Arc::new(loader.load(&token, &spec, &bytes)?));
        }
        Ok(Host {
            actors,
            labels: manifest.labels.clone(),
            control,
            dispatcher,
            services: Some(services),
        })
    }

    /// The host API for providers and bindings, usable while the host runs.
    pub fn control(&self) -> HostControl {
        self.control.clone()
    }

    /// Joins a lattice: connects to NATS on the services runtime, writes
    /// this host's record (a fresh server key, its labels and what it runs),
    /// refreshed by heartbeats until the host stops, serves its actors to
    /// the lattice and sends calls to actors it does not run there.
    fn join_lattice(
        &self,
        opts: &wascc_lattice::LatticeOptions,
        run: &RunOptions,
        shared: &Shared,
        shutdown: &Arc<AtomicBool>,
    ) -> Result<LatticeSession, RuntimeError> {
        let extra_labels = &run.labels;
        let rt = self
            .services
            .as_ref()
            .ok_or_else(|| RuntimeError::Services("the services runtime is gone".into()))?;
        let lattice = rt.block_on(wascc_lattice::Lattice::connect(opts))?;
        let key = match &run.host_seed {
            Some(seed) => nkeys::KeyPair::from_seed(seed.trim())
                .ok()
                .filter(|k| k.public_key().starts_with('N'))
                .ok_or_else(|| {
                    RuntimeError::Control("the host seed is not a server seed (SN…)".into())
                })?,
            None => nkeys::KeyPair::new_server(),
        };
        let id = key.public_key();
        // The view of the lattice, with the MAC keys shared with each host.
        let directory = wascc_lattice::directory::Directory::new(
            &opts.lattice,
            &id,
            wascc_lattice::pairing::ExchangeKey::generate(&key, &opts.lattice),
        );
        let sealer = Arc::new(wascc_lattice::invocation::Sealer::new(key));
        let verifier = wascc_lattice::invocation::Verifier::new(
            run.trusted_hosts.clone(),
            wascc_lattice::now_millis(),
        );
        let rpc = wascc_lattice::rpc::Rpc::new(
            lattice.clone(),
            sealer.clone(),
            directory.clone(),
            rt.handle().clone(),
            self.dispatcher.clone(),
            Arc::new(self.control.clone()),
            verifier,
            self.control.blocked().clone(),
        );
        // Shards read the invocations of this host's actors on connections
        // of their own (in the clear or over TLS, as the services thread).
        match wascc_lattice::wire::Target::from_options(opts) {
            Ok(target) => {
                rpc.leave_actors_to_shards();
                let _ = shared.wire.set(Arc::new(target));
            }
            Err(e) => tracing::info!(
                "the services thread takes the lattice's invocations of this host's actors: {e}"
            ),
        }
        let mut labels = self.labels.clone();
        labels.extend(extra_labels.clone());
        let labels = Arc::new(std::sync::Mutex::new(labels));
        let started_at = wascc_lattice::now_secs();
        let record: wascc_lattice::RecordFn = {
            let (control, id, name, labels) = (
                self.control.clone(),
                id.clone(),
                opts.lattice.clone(),
                labels.clone(),
            );
            let exchange = directory.exchange().clone();
            Arc::new(move || {
                crate::control::host_record(&control, &id, &name, &labels, started_at, &exchange)
            })
        };
        // The block list before anything is served: what it names stops
        // first (a host joining later honours it). What a block stops is
        // written to the record and announced, as a command's change is.
        let blocklist = {
            let control = self.control.clone();
            let (own, stop) = (id.clone(), shutdown.clone());
            let (events_lattice, events_record, events_signer) =
                (lattice.clone(), record.clone(), sealer.clone());
            let services = rt.handle().clone();
            let on_change = Arc::new(move |change: &wascc_lattice::blocklist::BlockChange| {
                if let wascc_lattice::blocklist::BlockChange::Blocked(e) = change
                    && e.key == own
                {
                    tracing::error!(host = %own, "this host is blocked in the lattice: stopping");
                    stop.store(true, Ordering::Relaxed);
                }
                let Some(stopping) = control.enforce_block(change) else {
                    return;
                };
                let (lattice, record, own, signer) = (
                    events_lattice.clone(),
                    events_record.clone(),
                    own.clone(),
                    events_signer.clone(),
                );
                services.spawn(async move {
                    let Ok(changes) = stopping.await else { return };
                    if let Err(e) = lattice.put_host(&record()).await {
                        tracing::warn!("cannot rewrite the host record after a block: {e}");
                    }
                    for (what, data) in changes {
                        wascc_lattice::control::publish_event(
                            &lattice,
                            &signer,
                            &wascc_lattice::control::Event::new(&own, what, data),
                        )
                        .await;
                    }
                });
            });
            rt.block_on(lattice.watch_blocklist(self.control.blocked().clone(), on_change))?
        };
        let view = rt.block_on(directory.follow(&lattice))?;
        rt.block_on(async {
            for a in shared.actors.load().iter() {
                // A blocked actor is being stopped: not served.
                let keys = [a.loaded.key.as_str(), a.loaded.account.as_str()];
                if self.control.blocked_reason(&keys).is_none() {
                    rpc.serve(&a.loaded.key).await?;
                }
            }
            for b in self.control.bindings() {
                let key = wascc_lattice::rpc::BindingKey {
                    actor: b.actor,
                    capability: b.capability,
                    binding: b.binding,
                };
                if let Err(e) = rpc.serve_binding(&key).await {
                    tracing::warn!(actor = %key.actor, capability = %key.capability, "binding not served to the lattice: {e}");
                }
            }
            Ok::<_, wascc_lattice::LatticeError>(())
        })?;
        let _ = shared.remote.set(rpc.clone());
        let commands = crate::control::LatticeCommands {
            control: self.control.clone(),
            labels,
            shutdown: shutdown.clone(),
            record: record.clone(),
        };
        let membership = rt.block_on(wascc_lattice::Membership::join(
            lattice.clone(),
            record.clone(),
        ))?;
        let auth = wascc_lattice::control::ControlAuth::new(run.control_keys.clone())
            .map_err(|e| RuntimeError::Control(format!("--control-key: {e}")))?;
        if !auth.required() {
            tracing::warn!(
                "control requests are not signed (no --control-key): any NATS user of the lattice may control this host"
            );
        }
        let control = rt.block_on(async {
            let task = wascc_lattice::control::serve(
                lattice.clone(),
                sealer.clone(),
                Arc::new(commands),
                record,
                auth,
            )
            .await?;
            wascc_lattice::control::publish_event(
                &lattice,
                &sealer,
                &wascc_lattice::control::Event::new(
                    &id,
                    "host_started",
                    serde_json::json!({ "lattice": lattice.name() }),
                ),
            )
            .await;
            Ok::<_, wascc_lattice::LatticeError>(task)
        })?;
        Ok(LatticeSession {
            membership,
            rpc,
            control,
            blocklist,
            view,
            lattice,
            id,
            signer: sealer,
        })
    }

    /// The HTTP listeners this host opens (the ports concrete).
    pub fn http_bindings(&self) -> Vec<HttpBinding> {
        self.control.http().bindings()
    }

    /// Serves on `opts.shards` shards until `shutdown` is set, then stops
    /// accepting, waits for in-flight invocations (at most
    /// [`DRAIN_TIMEOUT`]) and returns what every actor used.
    pub fn run(self, opts: &RunOptions, shutdown: Arc<AtomicBool>) -> Result<Usage, RuntimeError> {
        let started = Instant::now();
        let metrics_addr = opts
            .metrics
            .map(|addr| {
                crate::http_server::claim_port(addr).map_err(|reason| RuntimeError::Listen {
                    addr: addr.to_string(),
                    reason,
                })
            })
            .transpose()?;
        let (shared, mailboxes) = Shared::new(opts.shards.max(1), self.control.remote().clone());
        let shared = Arc::new(shared);
        for a in &self.actors {
            let running =
                shared
                    .actors
                    .insert(a.clone())
                    .map_err(|reason| RuntimeError::Actor {
                        path: a.path.display().to_string(),
                        reason,
                    })?;
            let on: Vec<String> = running
                .shards
                .list(shared.actors.shards())
                .iter()
                .map(ToString::to_string)
                .collect();
            tracing::info!(actor = %a.key, shards = %on.join(","), "actor placed");
        }
        let mailboxes: Vec<_> = mailboxes
            .into_iter()
            .map(|m| std::sync::Mutex::new(Some(m)))
            .collect();
        let ready = Arc::new(AtomicUsize::new(shared.actors.shards()));
        self.control.http().serve(shared.actors.shards());
        let ctx = Arc::new(ShardContext {
            shared: shared.clone(),
            http: self.control.http().clone(),
            metrics: metrics_addr,
            labels: self.labels.clone(),
            shutdown: shutdown.clone(),
            ready,
            started,
            mailboxes,
        });
        self.dispatcher.serve(Some(shared.clone()));
        let membership = match &opts.lattice {
            Some(l) => Some(self.join_lattice(l, opts, &shared, &shutdown)?),
            None => None,
        };
        let cpus = match (opts.pin, opts.cpus.is_empty()) {
            (false, _) => Vec::new(),
            (true, true) => wascc_scheduler::allowed_cpus(),
            (true, false) => opts.cpus.clone(),
        };
        let results =
            wascc_scheduler::run_shards(shared.actors.shards(), &cpus, opts.spin, move |id| {
                run_shard(ctx.clone(), id)
            });
        self.dispatcher.serve(None);
        if let (Some(session), Some(rt)) = (membership, self.services.as_ref()) {
            rt.block_on(session.leave());
        }
        futures_lite::future::block_on(self.control.stop_all());
        let results = results?;
        let usage = metrics::snapshot(&shared.meters, shared.actors.usage());
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        tracing::info!("host stopped");
        Ok(usage)
    }
}

/// A host's part in a lattice while it runs.
struct LatticeSession {
    membership: wascc_lattice::Membership,
    rpc: Arc<wascc_lattice::rpc::Rpc>,
    control: tokio::task::JoinHandle<()>,
    blocklist: tokio::task::JoinHandle<()>,
    /// Keeps the view of the lattice (and MAC keys) current.
    view: tokio::task::JoinHandle<()>,
    lattice: wascc_lattice::Lattice,
    id: String,
    /// Signs its events.
    signer: Arc<wascc_lattice::invocation::Sealer>,
}

impl LatticeSession {
    /// Stops serving actors and commands, removes the host's record and
    /// says so (`host_stopped`).
    async fn leave(self) {
        self.control.abort();
        self.blocklist.abort();
        self.view.abort();
        self.rpc.unserve_all();
        if let Err(e) = self.membership.leave().await {
            tracing::warn!("leaving the lattice: {e}");
        }
        wascc_lattice::control::publish_event(
            &self.lattice,
            &self.signer,
            &wascc_lattice::control::Event::new(&self.id, "host_stopped", serde_json::json!({})),
        )
        .await;
        let _ = self.lattice.client().flush().await;
    }
}

/// What every shard starts from.
struct ShardContext {
    shared: Arc<Shared>,
    http: Arc<crate::http_server::HttpListeners>,
    metrics: Option<SocketAddr>,
    labels: std::collections::BTreeMap<String, String>,
    shutdown: Arc<AtomicBool>,
    /// Shards still starting; the last one to finish reports the host ready.
    ready: Arc<AtomicUsize>,
    started: Instant,
    mailboxes: Vec<std::sync::Mutex<Option<wascc_scheduler::mesh::Mailbox<shard::CrossCall>>>>,
}

async fn run_shard(ctx: Arc<ShardContext>, id: ShardId) -> Result<(), RuntimeError> {
    shard::enter(id, ctx.shared.clone());
    let result = serve_shard(&ctx, id).await;
    if result.is_err() {
        // One shard failing stops the host: tell the others.
        ctx.shutdown.store(true, Ordering::Relaxed);
    }
    shard::leave();
    result
}

async fn serve_shard(ctx: &ShardContext, id: ShardId) -> Result<(), RuntimeError> {
    let mailbox = ctx.mailboxes[id.index()]
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(mb) = mailbox {
        wascc_scheduler::spawn_local(shard::serve_mailbox(mb));
    }
    // Each actor gets one instance on the first shard it runs on: a module
    // that traps in its initializer fails the start, not the first request.
    let table = ctx.shared.actors.load_full();
    for a in table.iter() {
        if a.shards.first() == id {
            shard::prewarm(a).await.map_err(|e| RuntimeError::Actor {
                path: a.loaded.path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    let stopping = Rc::new(Cell::new(false));
    let listeners = crate::http_server::ShardListeners::default();
    listeners.reconcile(&ctx.http, id, false);
    if let (Some(addr), 0) = (ctx.metrics, id.index()) {
        let listener =
            wascc_scheduler::net::Listener::bind(addr).map_err(|e| RuntimeError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        tracing::info!(addr = %addr, "metrics listening");
        let shared = ctx.shared.clone();
        wascc_scheduler::spawn_local(http::metrics_loop(
            listener,
            Rc::new(move || {
                let mut out =
                    metrics::prometheus(&metrics::snapshot(&shared.meters, shared.actors.usage()));
                if let Some(rpc) = shared.remote.get() {
                    out.push_str(&rpc.counts().prometheus());
                    out.push_str(&rpc.call_durations_prometheus());
                }
                out
            }),
            stopping.clone(),
        ));
    }
    if let (Some(rpc), Some(target)) = (ctx.shared.remote.get(), ctx.shared.wire.get()) {
        crate::inbound::start(crate::inbound::Inbound {
            shared: ctx.shared.clone(),
            rpc: rpc.clone(),
            target: target.clone(),
            shard: id,
            stopping: stopping.clone(),
        })
        .await;
    }
    if ctx.ready.fetch_sub(1, Ordering::AcqRel) == 1 {
        tracing::info!(
            actors = ctx.shared.actors.load().len(),
            shards = ctx.shared.actors.shards(),
            labels = ?ctx.labels,
            ms = ctx.started.elapsed().as_millis() as u64,
            "host ready"
        );
    }
    while !ctx.shutdown.load(Ordering::Relaxed) {
        wascc_scheduler::sleep(SHUTDOWN_POLL).await;
        shard::sweep();
        wascc_scheduler::alarm::sweep(Instant::now());
        listeners.reconcile(&ctx.http, id, false);
    }
    stopping.set(true);
    listeners.reconcile(&ctx.http, id, true);
    // Every shard waits until no shard has work in flight: a request on one
    // shard may still need an actor on another.
    let in_flight = || ctx.shared.meters.iter().map(|m| m.in_flight()).sum::<u64>();
    let drain_started = Instant::now();
    if id.index() == 0 {
        tracing::info!(
            in_flight = in_flight(),
            "shutting down: draining in-flight requests"
        );
    }
    while in_flight() > 0 && drain_started.elapsed() < DRAIN_TIMEOUT {
        wascc_scheduler::sleep(SHUTDOWN_POLL).await;
    }
    if id.index() == 0 && in_flight() > 0 {
        tracing::warn!(
            in_flight = in_flight(),
            "drain timeout: abandoning requests"
        );
    }
    Ok(())
}
