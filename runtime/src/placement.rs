//! Placement of actors onto shards.
//!
//! An actor runs on every shard unless it is limited to `k` shards; then it
//! gets the `k` shards with the fewest limited actors so far (lowest index
//! first on a tie), so pinned actors spread evenly, also as actors start
//! and stop while the host runs ([`Placer`]). Instances are made lazily on
//! the shards an actor is placed on, so an actor placed everywhere costs
//! nothing on a shard that never calls it. Invocations stay on the shard
//! they arrive on when the actor is placed there (an HTTP request stays
//! where it was accepted, an actor's call stays with its caller) and
//! otherwise go to the actor's shards in turn.

use wascc_scheduler::ShardId;

/// The shards one actor runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardSet {
    /// Sorted; empty means every shard.
    only: Vec<ShardId>,
}

impl ShardSet {
    /// Every shard.
    pub fn all() -> ShardSet {
        ShardSet::default()
    }

    /// Whether the set holds `shard`.
    // PERFORMANCE_CRITICAL_PATH: every invocation asks.
    pub fn contains(&self, shard: ShardId) -> bool {
        self.only.is_empty() || self.only.binary_search(&shard).is_ok()
    }

    /// The shards, of `shards` in all.
    pub fn list(&self, shards: usize) -> Vec<ShardId> {
        if self.only.is_empty() {
            (0..shards).map(|i| ShardId(i as u16)).collect()
        } else {
            self.only.clone()
        }
    }

    /// The first shard.
    pub fn first(&self) -> ShardId {
        self.only.first().copied().unwrap_or(ShardId(0))
    }

    /// The shard for the `turn`-th invocation sent from elsewhere.
    pub fn pick(&self, turn: usize, shards: usize) -> ShardId {
        if self.only.is_empty() {
            ShardId((turn % shards.max(1)) as u16)
        } else {
            self.only[turn % self.only.len()]
        }
    }
}

/// Places actors one at a time, remembering how many limited actors each
/// shard holds.
#[derive(Debug, Clone)]
pub struct Placer {
    load: Vec<usize>,
}

impl Placer {
    /// A placer over `shards` shards (at least one).
    pub fn new(shards: usize) -> Placer {
        Placer {
            load: vec![0; shards.max(1)],
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.load.len()
    }

    /// Places an actor that asks for `wanted` shards (`None`: all; more
    /// than there are means all).
    pub fn place(&mut self, wanted: Option<u32>) -> ShardSet {
        match wanted {
            Some(k) if (k as usize) < self.load.len() => {
                let mut order: Vec<usize> = (0..self.load.len()).collect();
                order.sort_by_key(|&s| (self.load[s], s));
                let mut only: Vec<ShardId> = order[..k.max(1) as usize]
                    .iter()
                    .map(|&s| {
                        self.load[s] += 1;
                        ShardId(s as u16)
                    })
                    .collect();
                only.sort_unstable();
                ShardSet { only }
            }
            _ => ShardSet::all(),
        }
    }

    /// Gives back the shards of an actor that stopped.
    pub fn release(&mut self, set: &ShardSet) {
        for s in &set.only {
            if let Some(l) = self.load.get_mut(s.index()) {
                *l = l.saturating_sub(1);
            }
        }
    }
}

/// Where each of a list of actors (by index) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    shards: usize,
    of: Vec<ShardSet>,
}

impl Placement {
    /// Places actors that ask for `wanted[i]` shards (`None`: all) onto
    /// `shards` shards, in order.
    pub fn place(wanted: &[Option<u32>], shards: usize) -> Placement {
        let mut placer = Placer::new(shards);
        let of = wanted.iter().map(|w| placer.place(*w)).collect();
        Placement {
            shards: placer.shards(),
            of,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Whether `actor` runs on `shard` (an unknown actor runs nowhere).
    pub fn runs_on(&self, actor: usize, shard: ShardId) -> bool {
        self.of.get(actor).is_some_and(|s| s.contains(shard))
    }

    /// The shards `actor` runs on.
    pub fn shards_of(&self, actor: usize) -> Vec<ShardId> {
        self.of
            .get(actor)
            .map(|s| s.list(self.shards))
            .unwrap_or_default()
    }

    /// The shard to send the `turn`-th invocation of `actor` to from a shard
    /// it does not run on.
    pub fn pick(&self, actor: usize, turn: usize) -> ShardId {
        self.of
            .get(actor)
            .map(|s| s.pick(turn, self.shards))
            .unwrap_or(ShardId(0))
    }
}
