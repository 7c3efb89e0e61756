//! Actors at run time (start, stop, list) and the host's answers to the
//! lattice's control commands (`wascc_lattice::control`).

use crate::RuntimeError;
use crate::limits::MAX_MODULE_BYTES;
use crate::manifest::{ActorSpec, InstancePolicy, PortableSpec};
use crate::providers::HostControl;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wascc_lattice::control::{Command, CommandFuture, Done, HostCommands};

/// A running actor, as the inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActorSummary {
    /// Its public key.
    pub key: String,
    /// The name in its claims.
    pub name: String,
    /// The account that issued it.
    pub account: String,
    /// The capabilities its claims list.
    pub caps: Vec<String>,
    /// Where its module came from.
    pub source: String,
    /// The shards it runs on.
    pub shards: Vec<u16>,
}

fn summary(a: &crate::actors::RunningActor, shards: usize) -> ActorSummary {
    ActorSummary {
        key: a.loaded.key.clone(),
        name: a.loaded.name.clone(),
        account: a.loaded.account.clone(),
        caps: a.loaded.caps.clone(),
        source: a.loaded.path.display().to_string(),
        shards: a.shards.list(shards).iter().map(|s| s.0).collect(),
    }
}

impl HostControl {
    /// Starts the actor in `bytes` while the host serves: its claims are
    /// verified (trusted issuers), it is compiled, placed, and one instance
    /// is made on its first shard (a module that traps in its initializer
    /// is refused); then it is served to the lattice, if the host is in
    /// one. `spec.path` names the module in messages. Refused when an actor
    /// of the same key runs here.
    pub async fn start_actor(
        &self,
        spec: ActorSpec,
        bytes: Vec<u8>,
    ) -> Result<ActorSummary, RuntimeError> {
        let err = |reason: String| RuntimeError::Actor {
            path: spec.path.display().to_string(),
            reason,
        };
        let shared = self.host().shared().ok_or_else(|| {
            err("the host is not serving yet (list actors in the manifest)".into())
        })?;
        if bytes.len() as u64 > MAX_MODULE_BYTES {
            return Err(err(format!("larger than {MAX_MODULE_BYTES} bytes")));
        }
        let loader = self.loader();
        let token = loader.verify(&bytes).map_err(err)?;
        let key = token.claims.sub.clone();
        if let Some(blocked) = self.blocked_reason(&[&key, &token.claims.iss]) {
            return Err(err(blocked));
        }
        if shared.actors.get(&key).is_some() {
            return Err(err(format!("actor {key} already runs on this host")));
        }
        let compile_spec = spec.clone();
        let loaded = self
            .services()
            .spawn_blocking(move || loader.load(&token, &compile_spec, &bytes))
            .await
            .map_err(|e| err(format!("compiling failed: {e}")))??;
        let caps = loaded.caps.clone();
        let running = shared.actors.insert(Arc::new(loaded)).map_err(err)?;
        let warmed = match self.host().prewarm(&running) {
            Ok(reply) => match reply.await {
                Ok(r) => r.map(drop).map_err(|e| e.to_string()),
                Err(_) => Err("its shard stopped".to_string()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = warmed {
            shared.actors.remove(&key);
            return Err(err(format!("does not start: {e}")));
        }
        self.add_actor_caps(&key, caps);
        if let Some(rpc) = shared.remote.get()
            && let Err(e) = rpc.serve(&key).await
        {
            let _ = self.stop_actor(&key).await;
            return Err(err(format!("cannot serve it to the lattice: {e}")));
        }
        tracing::info!(actor = %key, source = %spec.path.display(), "actor started");
        Ok(summary(&running, shared.actors.shards()))
    }

    /// Stops actor `key`: the lattice's invocations go to other hosts at
    /// once, new local invocations are refused, calls in flight finish, its
    /// idle instances are dropped, its bindings removed.
    pub async fn stop_actor(&self, key: &str) -> Result<(), RuntimeError> {
        let shared = self
            .host()
            .shared()
            .ok_or_else(|| RuntimeError::Control("the host is not serving".into()))?;
        if let Some(rpc) = shared.remote.get() {
            rpc.unserve(key).await;
        }
        shared.actors.remove(key).ok_or_else(|| {
            RuntimeError::Control(format!("actor {key} does not run on this host"))
        })?;
        for b in self.bindings().into_iter().filter(|b| b.actor == key) {
            if let Err(e) = self.unbind(&b.actor, &b.capability, &b.binding).await {
                tracing::warn!(actor = %key, capability = %b.capability, "unbinding a stopped actor: {e}");
            }
        }
        self.remove_actor_caps(key);
        tracing::info!(actor = %key, "actor stopped");
        Ok(())
    }

    /// Acts on a change of the lattice's block list (the set itself is
    /// already updated): a blocked actor, or every actor of a blocked
    /// account, loses its capabilities at once (calls its running
    /// instances make are refused) and is stopped; a blocked provider
    /// module, or one a blocked account signed, is stopped. Runs from the block list's watch; the stops
    /// run on the services runtime.
    ///
    /// Returns what was stopped, as the events that say so (once the stops
    /// are done), when the change stopped anything.
    pub(crate) fn enforce_block(
        &self,
        change: &wascc_lattice::blocklist::BlockChange,
    ) -> Option<tokio::task::JoinHandle<Vec<Change>>> {
        use wascc_lattice::blocklist::{BlockChange, BlockedKind};
        let BlockChange::Blocked(entry) = change else {
            return None;
        };
        let shared = self.host().shared()?;
        let actors: Vec<String> = shared
            .actors
            .load()
            .iter()
            .filter(|a| match entry.kind {
                BlockedKind::Actor => a.loaded.key == entry.key,
                BlockedKind::Account => a.loaded.account == entry.key,
                _ => false,
            })
            .map(|a| {
                a.loaded.handler.revoke();
                a.loaded.key.clone()
            })
            .collect();
        let providers: Vec<String> = self
            .providers()
            .into_iter()
            .filter(|p| match entry.kind {
                BlockedKind::Provider => p.key.as_deref() == Some(&entry.key),
                BlockedKind::Account => p.account.as_deref() == Some(&entry.key),
                _ => false,
            })
            .map(|p| p.capability)
            .collect();
        if actors.is_empty() && providers.is_empty() {
            return None;
        }
        tracing::warn!(key = %entry.key, kind = ?entry.kind, ?actors, ?providers, "blocked in the lattice: stopping");
        let control = self.clone();
        let blocked = entry.key.clone();
        Some(self.services().spawn(async move {
            let mut changes = Vec::new();
            for key in actors {
                if control.stop_actor(&key).await.is_ok() {
                    changes.push((
                        "actor_stopped",
                        serde_json::json!({ "key": key, "blocked": blocked }),
                    ));
                }
            }
            for capability in providers {
                if control.stop_provider(&capability).await.is_ok() {
                    changes.push((
                        "provider_stopped",
                        serde_json::json!({ "capability": capability, "blocked": blocked }),
                    ));
                }
            }
            changes
        }))
    }

    /// The actors running now, in order of key (none before the host
    /// serves).
    pub fn actors(&self) -> Vec<ActorSummary> {
        let Some(shared) = self.host().shared() else {
            return Vec::new();
        };
        let mut v: Vec<ActorSummary> = shared
            .actors
            .load()
            .iter()
            .map(|a| summary(a, shared.actors.shards()))
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }
}

/// The host's record in the lattice state, as of now.
pub(crate) fn host_record(
    control: &HostControl,
    id: &str,
    lattice: &str,
    labels: &Mutex<BTreeMap<String, String>>,
    started_at: u64,
    exchange: &wascc_lattice::pairing::Exchange,
) -> wascc_lattice::HostRecord {
    wascc_lattice::HostRecord {
        id: id.to_string(),
        lattice: lattice.to_string(),
        labels: labels.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at,
        heartbeat_at: wascc_lattice::now_secs(),
        actors: control
            .actors()
            .into_iter()
            .map(|a| wascc_lattice::ActorRecord {
                key: a.key,
                name: a.name,
                account: a.account,
                caps: a.caps,
            })
            .collect(),
        providers: control
            .providers()
            .into_iter()
            .map(|p| wascc_lattice::ProviderRecord {
                capability: p.capability,
                name: p.name,
                key: p.key,
            })
            .collect(),
        bindings: control
            .bindings()
            .into_iter()
            .map(|b| wascc_lattice::BindingRecord {
                actor: b.actor,
                capability: b.capability,
                binding: b.binding,
                values: b.values.into_keys().collect(),
            })
            .collect(),
        exchange: Some(exchange.clone()),
    }
}

/// A change to publish as an event: its kind and data.
pub(crate) type Change = (&'static str, serde_json::Value);

/// What a host does on the lattice's commands. Cheap to clone.
#[derive(Clone)]
pub(crate) struct LatticeCommands {
    pub(crate) control: HostControl,
    pub(crate) labels: Arc<Mutex<BTreeMap<String, String>>>,
    pub(crate) shutdown: Arc<AtomicBool>,
    /// Builds the host's record (the inventory).
    pub(crate) record: wascc_lattice::RecordFn,
}

fn check_label_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.contains(|c: char| c == '=' || c.is_whitespace()) {
        return Err(format!(
            "label key {key:?} is empty or holds '=' or white space"
        ));
    }
    Ok(())
}

/// A module a command names: its bytes and a name for messages.
fn read_module(source: &wascc_lattice::control::ModuleSource) -> Result<(Vec<u8>, String), String> {
    use wascc_lattice::control::Module;
    match source.resolve()? {
        Module::Inline(bytes) => Ok((bytes, "module sent in the request".to_string())),
        Module::Path(path) => crate::read_bounded(std::path::Path::new(&path), MAX_MODULE_BYTES)
            .map(|bytes| (bytes, path.clone()))
            .map_err(|e| format!("{path} on this host: {e}")),
    }
}

fn json(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn changed(what: &'static str, data: serde_json::Value) -> Done {
    Done {
        data: Some(data.clone()),
        event: Some((what, data)),
    }
}

/// A binding's event: which actor, capability and name (not the values).
fn binding_changed(what: &'static str, req: &wascc_lattice::control::BindingRequest) -> Done {
    changed(
        what,
        serde_json::json!({"actor": req.actor, "capability": req.capability, "binding": req.binding}),
    )
}

impl LatticeCommands {
    async fn carry_out(&self, command: Command) -> Result<Done, String> {
        let c = &self.control;
        let text = |e: RuntimeError| e.to_string();
        match command {
            Command::Inventory => Ok(Done {
                data: Some(json((self.record)())),
                event: None,
            }),
            Command::StartActor(req) => {
                let (bytes, source) = read_module(&req.source)?;
                let spec = ActorSpec {
                    path: PathBuf::from(source),
                    engine: req
                        .engine
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .map_err(|e| format!("actor.start: {e}"))?,
                    instances: req
                        .instances
                        .as_deref()
                        .map(str::parse::<InstancePolicy>)
                        .transpose()
                        .map_err(|e| format!("actor.start: {e}"))?
                        .unwrap_or_default(),
                    shards: req.shards,
                };
                let a = c.start_actor(spec, bytes).await.map_err(text)?;
                Ok(changed("actor_started", json(a)))
            }
            Command::StopActor(req) => {
                c.stop_actor(&req.key).await.map_err(text)?;
                Ok(changed(
                    "actor_stopped",
                    serde_json::json!({ "key": req.key }),
                ))
            }
            Command::StartProvider(req) => {
                let capability = match &req.capability {
                    Some(id) => {
                        c.start_builtin(id).await.map_err(text)?;
                        id.clone()
                    }
                    None => {
                        let (bytes, source) = read_module(&req.source)?;
                        let spec = PortableSpec {
                            path: PathBuf::from(source),
                            binding: req.binding.unwrap_or_else(|| "default".into()),
                            env: req.env,
                            args: req.args,
                        };
                        c.start_portable_module(&spec, &bytes).await.map_err(text)?
                    }
                };
                let p = c
                    .providers()
                    .into_iter()
                    .find(|p| p.capability == capability);
                Ok(changed("provider_started", json(p)))
            }
            Command::StopProvider(req) => {
                c.stop_provider(&req.capability).await.map_err(text)?;
                Ok(changed(
                    "provider_stopped",
                    serde_json::json!({ "capability": req.capability }),
                ))
            }
            Command::Bind(mut req) => {
                let values = std::mem::take(&mut req.values);
                c.bind(&req.actor, &req.capability, &req.binding, values)
                    .await
                    .map_err(text)?;
                Ok(binding_changed("binding_set", &req))
            }
            Command::Unbind(req) => {
                c.unbind(&req.actor, &req.capability, &req.binding)
                    .await
                    .map_err(text)?;
                Ok(binding_changed("binding_removed", &req))
            }
            Command::Label { key, value } => {
                check_label_key(&key)?;
                let mut labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
                match value {
                    Some(v) => {
                        labels.insert(key.clone(), v.clone());
                        Ok(changed(
                            "label_set",
                            serde_json::json!({"key": key, "value": v}),
                        ))
                    }
                    None => {
                        if labels.remove(&key).is_none() {
                            return Err(format!("this host has no label {key:?}"));
                        }
                        Ok(changed("label_removed", serde_json::json!({ "key": key })))
                    }
                }
            }
            Command::Stop => {
                tracing::info!("stop requested through the lattice");
                self.shutdown.store(true, Ordering::Relaxed);
                Ok(Done::default())
            }
        }
    }
}

impl HostCommands for LatticeCommands {
    fn run(&self, command: Command) -> CommandFuture {
        let this = self.clone();
        Box::pin(async move { this.carry_out(command).await })
    }
}

/// Calls from other hosts through the bindings this host holds (their
/// actors run elsewhere, or run here too without the binding there).
impl wascc_lattice::rpc::LocalProviders for HostControl {
    fn call(
        &self,
        binding: &wascc_lattice::rpc::BindingKey,
        operation: &str,
        payload: &[u8],
    ) -> wascc_lattice::rpc::ReplyFuture {
        let reply = self.call_bound(
            &binding.actor,
            &binding.capability,
            &binding.binding,
            operation,
            payload,
        );
        Box::pin(async move { reply.await.map_err(|e| e.0) })
    }
}
