//! Placement of actors onto shards.
//!
//! An actor runs on every shard unless its manifest entry limits it to `k`
//! shards; then it gets the `k` shards with the fewest limited actors so far
//! (lowest index first on a tie), so pinned actors spread evenly. Instances
//! are made lazily on the shards an actor is placed on, so an actor placed
//! everywhere costs nothing on a shard that never calls it. Invocations stay
//! on the shard they arrive on when the actor is placed there (an HTTP
//! request stays where it was accepted, an actor's call stays with its
//! caller) and otherwise go to the actor's shards in turn.

use wascc_scheduler::ShardId;

/// Where each actor (by index) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    shards: usize,
    /// Per actor: its shards, sorted; empty means every shard.
    of: Vec<Vec<ShardId>>,
}

impl Placement {
    /// Places actors that ask for `wanted[i]` shards (`None`: all) onto
    /// `shards` shards. Asking for more shards than there are means all.
    pub fn place(wanted: &[Option<u32>], shards: usize) -> Placement {
        let shards = shards.max(1);
        let mut load = vec![0usize; shards];
        let of = wanted
            .iter()
            .map(|w| match w {
                Some(k) if (*k as usize) < shards => {
                    let mut order: Vec<usize> = (0..shards).collect();
                    order.sort_by_key(|&s| (load[s], s));
                    let mut chosen: Vec<ShardId> = order[..(*k).max(1) as usize]
                        .iter()
                        .map(|&s| {
                            load[s] += 1;
                            ShardId(s as u16)
                        })
                        .collect();
                    chosen.sort_unstable();
                    chosen
                }
                _ => Vec::new(),
            })
            .collect();
        Placement { shards, of }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Whether `actor` runs on `shard`.
    pub fn runs_on(&self, actor: usize, shard: ShardId) -> bool {
        self.of
            .get(actor)
            .is_some_and(|s| s.is_empty() || s.binary_search(&shard).is_ok())
    }

    /// The shards `actor` runs on.
    pub fn shards_of(&self, actor: usize) -> Vec<ShardId> {
        match self.of.get(actor) {
            Some(s) if !s.is_empty() => s.clone(),
            Some(_) => (0..self.shards).map(|i| ShardId(i as u16)).collect(),
            None => Vec::new(),
        }
    }

    /// The first shard `actor` runs on.
    pub fn first_shard(&self, actor: usize) -> ShardId {
        self.of
            .get(actor)
            .and_then(|s| s.first().copied())
            .unwrap_or(ShardId(0))
    }

    /// The shard to send the `turn`-th invocation of `actor` to from a shard
    /// it does not run on.
    pub fn pick(&self, actor: usize, turn: usize) -> ShardId {
        match self.of.get(actor) {
            Some(s) if !s.is_empty() => s[turn % s.len()],
            _ => ShardId((turn % self.shards) as u16),
        }
    }
}
