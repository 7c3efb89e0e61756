//! The lattice's real-time block list: keys (actor `M…`, provider `V…`,
//! account `A…`, host `N…`) that nothing in the lattice may run, call or
//! be called by.
//!
//! It lives in JetStream KV bucket `wascc_v1_<lattice>_blocklist` (file
//! storage: it survives a NATS restart; no expiry). Every host watches the
//! bucket and acts on a change as it arrives (typically milliseconds after
//! the write), and reads the whole list when it joins, so a host that
//! starts later honours it.

use crate::error::LatticeError;
use crate::limits::STATE_TIMEOUT;
use crate::state::{Lattice, now_secs};
use arc_swap::ArcSwap;
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// What a blocked key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockedKind {
    /// An actor (`M…`).
    Actor,
    /// A capability provider module (`V…`).
    Provider,
    /// An account (`A…`): every actor and provider it issued.
    Account,
    /// A host (`N…`).
    Host,
}

impl BlockedKind {
    /// The kind of `key`, from its prefix; an error names what is wrong
    /// (not a public key, or a kind that cannot be blocked).
    pub fn of(key: &str) -> Result<BlockedKind, LatticeError> {
        let bad = |reason: &str| LatticeError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        };
        nkeys::KeyPair::from_public_key(key).map_err(|e| bad(&format!("not a public key: {e}")))?;
        match key.as_bytes().first() {
            Some(b'M') => Ok(BlockedKind::Actor),
            Some(b'V') => Ok(BlockedKind::Provider),
            Some(b'A') => Ok(BlockedKind::Account),
            Some(b'N') => Ok(BlockedKind::Host),
            _ => Err(bad(
                "only actor (M), provider (V), account (A) and host (N) keys can be blocked",
            )),
        }
    }
}

/// One entry of the block list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// The blocked key.
    pub key: String,
    /// What it is.
    pub kind: BlockedKind,
    /// Why, as the operator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When, seconds since the epoch.
    pub blocked_at: u64,
}

impl BlockEntry {
    /// An entry for `key` blocked now.
    pub fn new(key: &str, reason: Option<String>) -> Result<BlockEntry, LatticeError> {
        Ok(BlockEntry {
            key: key.to_string(),
            kind: BlockedKind::of(key)?,
            reason,
            blocked_at: now_secs(),
        })
    }
}

/// A change of the block list as a host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockChange {
    /// A key was blocked.
    Blocked(BlockEntry),
    /// A key was lifted.
    Lifted(String),
}

/// The blocked keys as a host knows them: read lock-free on every check.
#[derive(Default)]
pub struct BlockSet {
    keys: ArcSwap<HashSet<String>>,
}

impl BlockSet {
    /// Whether `key` is blocked.
    pub fn contains(&self, key: &str) -> bool {
        let keys = self.keys.load();
        !keys.is_empty() && keys.contains(key)
    }

    /// The first of `keys` that is blocked.
    pub fn any<'a>(&self, keys: &[&'a str]) -> Option<&'a str> {
        let set = self.keys.load();
        if set.is_empty() {
            return None;
        }
        keys.iter().copied().find(|k| set.contains(*k))
    }

    fn apply(&self, change: &BlockChange) {
        let mut next = HashSet::clone(&self.keys.load());
        match change {
            BlockChange::Blocked(e) => next.insert(e.key.clone()),
            BlockChange::Lifted(k) => next.remove(k),
        };
        self.keys.store(Arc::new(next));
    }
}

impl Lattice {
    /// Blocks `entry.key` in the whole lattice (persisted).
    pub async fn block(&self, entry: &BlockEntry) -> Result<(), LatticeError> {
        let json = serde_json::to_vec(entry).map_err(|e| self.block_err(e.to_string()))?;
        crate::state::timed(
            |e| self.block_err(e),
            self.blocklist().put(&entry.key, json.into()),
            STATE_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// Lifts the block of `key`; an error if it was not blocked.
    pub async fn unblock(&self, key: &str) -> Result<(), LatticeError> {
        let present = crate::state::timed(
            |e| self.block_err(e),
            self.blocklist().get(key),
            STATE_TIMEOUT,
        )
        .await?;
        if present.is_none() {
            return Err(self.block_err(format!("{key} is not blocked")));
        }
        crate::state::timed(
            |e| self.block_err(e),
            self.blocklist().purge(key),
            STATE_TIMEOUT,
        )
        .await
    }

    /// The whole block list, ordered by key.
    pub async fn blocked(&self) -> Result<Vec<BlockEntry>, LatticeError> {
        let bucket = self.blocklist();
        let list = async {
            let mut keys = bucket.keys().await.map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            while let Some(k) = keys.next().await {
                let k = k.map_err(|e| e.to_string())?;
                if let Some(bytes) = bucket.get(&k).await.map_err(|e| e.to_string())? {
                    match serde_json::from_slice::<BlockEntry>(&bytes) {
                        Ok(e) => out.push(e),
                        Err(e) => tracing::warn!(key = %k, "unreadable block list entry: {e}"),
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok::<_, String>(out)
        };
        crate::state::timed(|e| self.block_err(e), list, STATE_TIMEOUT).await
    }

    /// Watches the block list: fills `set` with the current list (calling
    /// `on_change` with `Blocked` for each entry) before it returns, then
    /// keeps it current and calls `on_change` for every change until the
    /// task is aborted (an entry may be reported again: act idempotently).
    /// A lost watch is re-established (the NATS client reconnects).
    pub async fn watch_blocklist(
        &self,
        set: Arc<BlockSet>,
        on_change: Arc<dyn Fn(&BlockChange) + Send + Sync>,
    ) -> Result<tokio::task::JoinHandle<()>, LatticeError> {
        let bucket = self.blocklist().clone();
        // What is blocked now counts before the caller goes on.
        for entry in self.blocked().await? {
            let change = BlockChange::Blocked(entry);
            set.apply(&change);
            on_change(&change);
        }
        self.follow(bucket, "block list", move |entry| {
            let change = match entry.operation {
                async_nats::jetstream::kv::Operation::Put => {
                    match serde_json::from_slice::<BlockEntry>(&entry.value) {
                        Ok(e) => BlockChange::Blocked(e),
                        Err(e) => {
                            tracing::warn!(key = %entry.key, "unreadable block list entry: {e}");
                            return;
                        }
                    }
                }
                _ => BlockChange::Lifted(entry.key.clone()),
            };
            set.apply(&change);
            on_change(&change);
        })
        .await
    }

    fn block_err(&self, reason: String) -> LatticeError {
        LatticeError::State {
            bucket: self.blocklist_bucket(),
            reason,
        }
    }
}
