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
