//! The actors a serving host runs, as they start and stop: an immutable
//! [`ActorTable`] snapshot read lock-free by every invocation, replaced by
//! the (rare, serialized) writers.
//!
//! Each running actor has a *slot*: the index of its idle instances on
//! every shard. Slots are reused after an actor stops; a shard tells a
//! reused slot from the old one by the actor's `uid` (never reused) and
//! drops the old instances, also when it sweeps after a table change.

use crate::host::LoadedActor;
use crate::metrics::{ActorInfo, ActorMeters, ActorUsage};
use crate::placement::{Placer, ShardSet};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Usage of actors that stopped, by (actor, shard), kept for the report.
type Retired = Arc<Mutex<BTreeMap<(String, u16), ActorUsage>>>;

/// One actor running on the host.
pub(crate) struct RunningActor {
    pub(crate) loaded: Arc<LoadedActor>,
    /// Index of its idle instances on each shard.
    pub(crate) slot: usize,
    /// Unique for the host's lifetime (slots are reused, uids are not).
    pub(crate) uid: u64,
    /// The shards it runs on.
    pub(crate) shards: ShardSet,
    /// Its counters, per shard.
    pub(crate) meters: ActorMeters,
    stopped: AtomicBool,
    retired: Retired,
}

impl RunningActor {
    /// Whether it was stopped (its instances are dropped, not reused).
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    pub(crate) fn info(&self) -> ActorInfo {
        ActorInfo {
            actor: self.loaded.key.clone(),
            account: self.loaded.account.clone(),
            name: self.loaded.name.clone(),
        }
    }
}

impl Drop for RunningActor {
    /// The last reference goes when the actor stopped and its last call
    /// ended: its counters are final and kept for the host's report.
    fn drop(&mut self) {
        let rows = self.meters.usage(&self.info());
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            merge(&mut retired, row);
        }
    }
}

/// Adds `row` to the row of the same actor and shard in `rows`.
fn merge(rows: &mut BTreeMap<(String, u16), ActorUsage>, row: ActorUsage) {
    match rows.entry((row.actor.clone(), row.shard)) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(row);
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            let u = o.get_mut();
            u.invocations += row.invocations;
            u.errors += row.errors;
            u.instantiations += row.instantiations;
            u.actor_time_ns += row.actor_time_ns;
        }
    }
}

/// A snapshot of the running actors.
#[derive(Default, Clone)]
pub(crate) struct ActorTable {
    by_key: HashMap<String, Arc<RunningActor>>,
    /// Per slot, the uid of the actor holding it (0: free).
    slots: Vec<u64>,
    /// Bumped by every change.
    pub(crate) version: u64,
}

impl ActorTable {
    /// The running actor `key`.
    // PERFORMANCE_CRITICAL_PATH: every actor-to-actor call looks up here.
    pub(crate) fn get(&self, key: &str) -> Option<&Arc<RunningActor>> {
        self.by_key.get(key)
    }

    /// Whether `slot` is held by the actor with `uid`.
    pub(crate) fn holds(&self, slot: usize, uid: u64) -> bool {
        self.slots.get(slot) == Some(&uid)
    }

    /// Every running actor, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<RunningActor>> {
        self.by_key.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

struct Writer {
    placer: Placer,
    free: Vec<usize>,
    next_uid: u64,
}

/// The running actors of a host of `shards` shards.
pub(crate) struct Actors {
    table: ArcSwap<ActorTable>,
    writer: Mutex<Writer>,
    retired: Retired,
    shards: usize,
}

impl Actors {
    pub(crate) fn new(shards: usize) -> Actors {
        Actors {
            table: ArcSwap::default(),
            writer: Mutex::new(Writer {
                placer: Placer::new(shards),
                free: Vec::new(),
                next_uid: 1,
            }),
            retired: Arc::default(),
            shards: shards.max(1),
        }
    }

    /// The current snapshot.
    // PERFORMANCE_CRITICAL_PATH: one atomic load per lookup.
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<ActorTable>> {
        self.table.load()
    }

    /// The current snapshot, to keep across awaits.
    pub(crate) fn load_full(&self) -> Arc<ActorTable> {
        self.table.load_full()
    }

    /// The running actor `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<RunningActor>> {
        self.table.load().get(key).cloned()
    }

    /// Number of shards.
    pub(crate) fn shards(&self) -> usize {
        self.shards
    }

    /// Adds `loaded`, placed on its shards; refused when an actor of that
    /// key already runs.
    pub(crate) fn insert(&self, loaded: Arc<LoadedActor>) -> Result<Arc<RunningActor>, String> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.table.load_full();
        if current.get(&loaded.key).is_some() {
            return Err(format!("actor {} already runs on this host", loaded.key));
        }
        let mut next = ActorTable::clone(&current);
        let slot = w.free.pop().unwrap_or(next.slots.len());
        let uid = w.next_uid;
        w.next_uid += 1;
        let running = Arc::new(RunningActor {
            shards: w.placer.place(loaded.shards),
            loaded,
            slot,
            uid,
            meters: ActorMeters::new(self.shards),
            stopped: AtomicBool::new(false),
            retired: self.retired.clone(),
        });
        if slot == next.slots.len() {
            next.slots.push(uid);
        } else {
            next.slots[slot] = uid;
        }
        next.by_key
            .insert(running.loaded.key.clone(), running.clone());
        next.version += 1;
        self.table.store(Arc::new(next));
        Ok(running)
    }

    /// Removes actor `key`: new invocations no longer find it, calls in
    /// flight finish, its instances are dropped instead of reused.
    pub(crate) fn remove(&self, key: &str) -> Option<Arc<RunningActor>> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.table.load_full();
        let running = current.get(key)?.clone();
        let mut next = ActorTable::clone(&current);
        next.by_key.remove(key);
        next.slots[running.slot] = 0;
        next.version += 1;
        running.stopped.store(true, Ordering::Relaxed);
        w.placer.release(&running.shards);
        w.free.push(running.slot);
        self.table.store(Arc::new(next));
        Some(running)
    }

    /// The per-actor rows of the host's usage: running actors' and those of
    /// actors that stopped.
    pub(crate) fn usage(&self) -> Vec<ActorUsage> {
        let mut rows = self
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for a in self.table.load().iter() {
            for row in a.meters.usage(&a.info()) {
                merge(&mut rows, row);
            }
        }
        rows.into_values().collect()
    }
}

/// Verifies and compiles actors, at build and while the host runs.
pub(crate) struct Loader {
    opts: crate::host::HostOptions,
    verify: wascc_claims::VerifyOptions,
    engines: Mutex<HashMap<wascc_engines::EngineKind, wascc_engines::Engine>>,
    registry: Arc<ArcSwap<crate::providers::Registry>>,
    remote: crate::Remote,
}

impl Loader {
    pub(crate) fn new(
        opts: &crate::host::HostOptions,
        registry: Arc<ArcSwap<crate::providers::Registry>>,
        remote: crate::Remote,
    ) -> Loader {
        Loader {
            opts: opts.clone(),
            verify: wascc_claims::VerifyOptions {
                trusted_issuers: opts.trusted_issuers.clone(),
                now: None,
            },
            engines: Mutex::default(),
            registry,
            remote,
        }
    }

    /// The claims check (trusted issuers), for providers too.
    pub(crate) fn verify_options(&self) -> &wascc_claims::VerifyOptions {
        &self.verify
    }

    /// Checks the claims embedded in `bytes`.
    pub(crate) fn verify(&self, bytes: &[u8]) -> Result<wascc_claims::Token, String> {
        wascc_claims::verify(bytes, &self.verify).map_err(|e| e.to_string())
    }

    fn engine(
        &self,
        kind: wascc_engines::EngineKind,
    ) -> Result<wascc_engines::Engine, crate::RuntimeError> {
        let mut engines = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = engines.get(&kind) {
            return Ok(e.clone());
        }
        let mut cfg = wascc_engines::EngineConfig::new(kind);
        cfg.call_deadline = self.opts.call_deadline;
        if kind == wascc_engines::EngineKind::Aot {
            cfg.aot_dir = Some(self.opts.aot_dir.clone());
        }
        let e = wascc_engines::Engine::new(cfg)?;
        engines.insert(kind, e.clone());
        Ok(e)
    }

    /// Compiles the verified actor `token` (module `bytes`, as `spec` says).
    /// Blocks for as long as compiling takes: not on a shard.
    pub(crate) fn load(
        &self,
        token: &wascc_claims::Token,
        spec: &crate::manifest::ActorSpec,
        bytes: &[u8],
    ) -> Result<LoadedActor, crate::RuntimeError> {
        use wascc_contracts::{CodecProfile, SDK_MARKER_SECTION};
        let actor_err = |reason: String| crate::RuntimeError::Actor {
            path: spec.path.display().to_string(),
            reason,
        };
        let kind = spec.engine.unwrap_or(self.opts.engine);
        let engine = self.engine(kind)?;
        let profile = if wascc_claims::sections(bytes)
            .map_err(|e| actor_err(e.to_string()))?
            .iter()
            .any(|s| matches!(s, wascc_claims::Section::Custom { name, .. } if *name == SDK_MARKER_SECTION))
        {
            CodecProfile::Current
        } else {
            CodecProfile::Compat
        };
        let module = engine.load(bytes).map_err(|e| actor_err(e.to_string()))?;
        let key = token.claims.sub.clone();
        let meta = token.claims.wascap.clone().unwrap_or_default();
        let handler = Arc::new(crate::dispatch::ActorHandler::new(
            key.clone(),
            meta.caps.clone().unwrap_or_default(),
            self.registry.clone(),
            self.remote.clone(),
            profile,
        ));
        tracing::info!(actor = %key, name = meta.name.as_deref().unwrap_or(""), engine = %kind, ?profile, instances = ?spec.instances, "actor loaded");
        Ok(LoadedActor {
            key,
            name: meta.name.unwrap_or_default(),
            path: spec.path.clone(),
            account: token.claims.iss.clone(),
            caps: meta.caps.unwrap_or_default(),
            profile,
            instances: spec.instances,
            shards: spec.shards,
            module,
            handler,
        })
    }
}
