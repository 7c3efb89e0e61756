//! Actor time and invocation counters, kept per shard without locks.
//!
//! Each shard owns one [`ShardMeters`] and is its only writer: an update is a
//! relaxed load and store, not a locked read-modify-write. Readers (the
//! metrics endpoint, the exit report) read the atomics from any thread and
//! see each counter whole. Actor time is measured by the engines (see
//! `wascc_engines::meter`): on one shard, the actor time of every invocation
//! and instantiation adds up exactly to the shard's busy time.

use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one actor on one shard, alone on its cache line: each
/// shard writes its own.
#[derive(Default)]
#[repr(align(64))]
pub struct ActorMeter {
    invocations: AtomicU64,
    errors: AtomicU64,
    instantiations: AtomicU64,
    actor_ns: AtomicU64,
}

/// The counters of one actor, one [`ActorMeter`] per shard.
pub struct ActorMeters {
    per_shard: Box<[ActorMeter]>,
}

impl ActorMeters {
    /// Counters for an actor on a host of `shards` shards.
    pub fn new(shards: usize) -> ActorMeters {
        ActorMeters {
            per_shard: (0..shards.max(1)).map(|_| ActorMeter::default()).collect(),
        }
    }

    /// The counters of shard `shard` (only that shard writes them).
    pub(crate) fn on(&self, shard: usize) -> Option<&ActorMeter> {
        self.per_shard.get(shard)
    }

    /// The actor's rows of a [`Usage`] (only shards with activity).
    pub fn usage(&self, info: &ActorInfo) -> Vec<ActorUsage> {
        self.per_shard
            .iter()
            .enumerate()
            .map(|(s, c)| ActorUsage {
                actor: info.actor.clone(),
                account: info.account.clone(),
                name: info.name.clone(),
                shard: s as u16,
                invocations: c.invocations.load(Relaxed),
                errors: c.errors.load(Relaxed),
                instantiations: c.instantiations.load(Relaxed),
                actor_time_ns: c.actor_ns.load(Relaxed),
            })
            .filter(|u| u.invocations + u.instantiations > 0)
            .collect()
    }
}

/// The counters one shard writes.
pub struct ShardMeters {
    busy_ns: AtomicU64,
    cross_shard_out: AtomicU64,
    cross_shard_in: AtomicU64,
    in_flight: AtomicU64,
}

/// Adds to a counter that only the calling shard writes.
fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

impl Default for ShardMeters {
    fn default() -> Self {
        ShardMeters::new()
    }
}

impl ShardMeters {
    /// Zeroed counters.
    pub fn new() -> ShardMeters {
        ShardMeters {
            busy_ns: AtomicU64::new(0),
            cross_shard_out: AtomicU64::new(0),
            cross_shard_in: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Counts an invocation in (`true`) or out (`false`) of flight.
    pub(crate) fn flight(&self, entering: bool) {
        let n = self.in_flight.load(Relaxed);
        self.in_flight
            .store(if entering { n + 1 } else { n.saturating_sub(1) }, Relaxed);
    }

    /// Invocations running on the shard (HTTP requests and invocations
    /// from other shards).
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// Records an instantiation (counted in `actor`, this shard's counters
    /// of the actor) that took `actor_ns`.
    pub(crate) fn instantiated(&self, actor: Option<&ActorMeter>, actor_ns: u64) {
        if let Some(m) = actor {
            bump(&m.instantiations, 1);
            bump(&m.actor_ns, actor_ns);
        }
        self.sync_busy();
    }

    /// Records one invocation.
    // PERFORMANCE_CRITICAL_PATH: three loads and stores per invocation.
    pub(crate) fn invoked(&self, actor: Option<&ActorMeter>, actor_ns: u64, failed: bool) {
        if let Some(m) = actor {
            bump(&m.invocations, 1);
            bump(&m.actor_ns, actor_ns);
            if failed {
                bump(&m.errors, 1);
            }
        }
        self.sync_busy();
    }

    pub(crate) fn sent_cross_shard(&self) {
        bump(&self.cross_shard_out, 1);
    }

    pub(crate) fn received_cross_shard(&self) {
        bump(&self.cross_shard_in, 1);
    }

    fn sync_busy(&self) {
        self.busy_ns
            .store(wascc_engines::meter::thread_busy_ns(), Relaxed);
    }
}

/// Who an actor is, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ActorInfo {
    /// Public key (`M…`).
    pub actor: String,
    /// Issuing account (`A…`), the party that pays.
    pub account: String,
    /// Name from the claims.
    pub name: String,
}

/// One actor's counters on one shard.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActorUsage {
    /// Public key.
    pub actor: String,
    /// Issuing account.
    pub account: String,
    /// Name from the claims.
    pub name: String,
    /// Shard.
    pub shard: u16,
    /// Invocations run.
    pub invocations: u64,
    /// Invocations that failed (guest error, trap, deadline, fuel).
    pub errors: u64,
    /// Instances made.
    pub instantiations: u64,
    /// Time on the core, nanoseconds (invocations and instantiations).
    pub actor_time_ns: u64,
}

/// One shard's totals.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ShardUsage {
    /// Shard.
    pub shard: u16,
    /// Time the shard spent running actors, as the shard measured it.
    pub busy_ns: u64,
    /// Invocations this shard sent to other shards.
    pub cross_shard_out: u64,
    /// Invocations this shard ran for other shards.
    pub cross_shard_in: u64,
}

/// A snapshot of every counter: what `--json` prints at exit.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Per shard.
    pub shards: Vec<ShardUsage>,
    /// Per actor and shard (only pairs with activity).
    pub actors: Vec<ActorUsage>,
}

/// Reads every shard's counters; `actors` are the per-actor rows (of
/// running actors and of those that stopped), put in order of shard and
/// actor.
pub fn snapshot(shards: &[std::sync::Arc<ShardMeters>], mut actors: Vec<ActorUsage>) -> Usage {
    actors.sort_by(|a, b| (a.shard, &a.actor).cmp(&(b.shard, &b.actor)));
    Usage {
        shards: shards
            .iter()
            .enumerate()
            .map(|(s, m)| ShardUsage {
                shard: s as u16,
                busy_ns: m.busy_ns.load(Relaxed),
                cross_shard_out: m.cross_shard_out.load(Relaxed),
                cross_shard_in: m.cross_shard_in.load(Relaxed),
            })
            .collect(),
        actors,
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders a snapshot in the Prometheus text exposition format (0.0.4).
pub fn prometheus(usage: &Usage) -> String {
    let mut out = String::new();
    type Field = fn(&ActorUsage) -> u64;
    let per_actor: [(&str, &str, Field); 4] = [
        (
            "wascc_actor_time_nanoseconds_total",
            "Time actors ran on a core (invocations and instantiations), exact nanoseconds.",
            |u| u.actor_time_ns,
        ),
        ("wascc_actor_invocations_total", "Invocations run.", |u| {
            u.invocations
        }),
        (
            "wascc_actor_errors_total",
            "Invocations that failed.",
            |u| u.errors,
        ),
        ("wascc_actor_instantiations_total", "Instances made.", |u| {
            u.instantiations
        }),
    ];
    for (name, help, field) in per_actor {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for u in &usage.actors {
            let _ = writeln!(
                out,
                "{name}{{actor=\"{}\",account=\"{}\",name=\"{}\",shard=\"{}\"}} {}",
                label(&u.actor),
                label(&u.account),
                label(&u.name),
                u.shard,
                field(u)
            );
        }
    }
    type ShardField = fn(&ShardUsage) -> u64;
    let per_shard: [(&str, &str, ShardField); 3] = [
        (
            "wascc_shard_busy_nanoseconds_total",
            "Time the shard spent running actors, as the shard measured it.",
            |s| s.busy_ns,
        ),
        (
            "wascc_shard_cross_out_total",
            "Invocations sent to other shards.",
            |s| s.cross_shard_out,
        ),
        (
            "wascc_shard_cross_in_total",
            "Invocations run for other shards.",
            |s| s.cross_shard_in,
        ),
    ];
    for (name, help, field) in per_shard {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for s in &usage.shards {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, field(s));
        }
    }
    out
}
