//! A host's membership of a lattice: its record in the lattice state,
//! refreshed every [`HEARTBEAT_INTERVAL`] until it leaves.

use crate::error::LatticeError;
use crate::limits::HEARTBEAT_INTERVAL;
use crate::state::{HostRecord, Lattice, now_secs};
use std::sync::Arc;

/// Builds the host's current record (labels, inventory) at each heartbeat.
pub type RecordFn = Arc<dyn Fn() -> HostRecord + Send + Sync>;

/// A host in a lattice. Dropping it stops the heartbeats (the record then
/// expires); [`leave`](Self::leave) also removes the record at once.
pub struct Membership {
    lattice: Lattice,
    id: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Membership {
    /// Writes the host's record (an error if the state cannot be written:
    /// the host must not serve believing it joined) and starts the
    /// heartbeats on the current tokio runtime. A failed heartbeat is
    /// logged and retried at the next beat (the client reconnects on its own).
    pub async fn join(lattice: Lattice, record: RecordFn) -> Result<Membership, LatticeError> {
        let first = record();
        let id = first.id.clone();
        lattice.put_host(&first).await?;
        let beat_lattice = lattice.clone();
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut failing = false;
            loop {
                tick.tick().await;
                let mut r = record();
                r.heartbeat_at = now_secs();
                let mut written = beat_lattice.put_host(&r).await;
                if written.is_err() {
                    // A restarted NATS server has lost the (in-memory)
                    // hosts bucket: make it again and write once more.
                    if beat_lattice.restore_state().await.is_ok() {
                        written = beat_lattice.put_host(&r).await;
                        if written.is_ok() {
                            tracing::info!(lattice = %beat_lattice.name(), "host record written again (the lattice state was restored)");
                        }
                    }
                }
                match written {
                    Ok(()) if failing => {
                        tracing::info!(lattice = %beat_lattice.name(), "heartbeats written again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        tracing::warn!(lattice = %beat_lattice.name(), "heartbeat failed: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
        tracing::info!(lattice = %lattice.name(), host = %id, "joined the lattice");
        Ok(Membership {
            lattice,
            id,
            heartbeat,
        })
    }

    /// The lattice joined.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    /// Stops the heartbeats and removes the host's record.
    pub async fn leave(self) -> Result<(), LatticeError> {
        self.heartbeat.abort();
        let r = self.lattice.remove_host(&self.id).await;
        tracing::info!(lattice = %self.lattice.name(), host = %self.id, "left the lattice");
        r
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// A process that invokes actors in a lattice without running any (a
/// benchmark driver, a test, a gateway): it joins with a record that lists
/// nothing but its exchange key, so that hosts can check its MAC tags, and
/// follows the lattice view for the keys it shares with them.
pub struct Participant {
    /// Seals its invocations.
    pub sealer: Arc<crate::invocation::Sealer>,
    /// Its view of the lattice.
    pub directory: Arc<crate::directory::Directory>,
    membership: Membership,
    view: tokio::task::JoinHandle<()>,
}

impl Participant {
    /// Joins `lattice` as host `key` (a server key pair with its seed).
    pub async fn join(lattice: &Lattice, key: nkeys::KeyPair) -> Result<Participant, LatticeError> {
        let id = key.public_key();
        let directory = crate::directory::Directory::new(
            lattice.name(),
            &id,
            crate::pairing::ExchangeKey::generate(&key, lattice.name()),
        );
        let exchange = directory.exchange().clone();
        let (name, started_at) = (lattice.name().to_string(), now_secs());
        let record: RecordFn = Arc::new(move || HostRecord {
            id: id.clone(),
            lattice: name.clone(),
            labels: Default::default(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            heartbeat_at: now_secs(),
            actors: Vec::new(),
            providers: Vec::new(),
            bindings: Vec::new(),
            exchange: Some(exchange.clone()),
        });
        let membership = Membership::join(lattice.clone(), record).await?;
        let view = directory.follow(lattice).await?;
        Ok(Participant {
            sealer: Arc::new(crate::invocation::Sealer::new(key)),
            directory,
            membership,
            view,
        })
    }

    /// Leaves the lattice (its record is removed).
    pub async fn leave(self) -> Result<(), LatticeError> {
        self.view.abort();
        self.membership.leave().await
    }
}
