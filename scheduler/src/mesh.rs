//! The channel mesh between shards: every shard has one mailbox that any
//! thread may send to. Sends never block; the receiving shard is woken
//! through glommio's foreign-wake path (an eventfd), which costs nothing
//! while it is still spinning before parking
//! ([`SPIN_BEFORE_PARK`](crate::limits::SPIN_BEFORE_PARK)).

use crate::ShardId;
use futures_channel::mpsc;
use futures_lite::StreamExt;
use std::sync::Arc;

/// Senders to every shard's mailbox. Cheap to clone, usable from any thread.
pub struct Mesh<M> {
    senders: Arc<[mpsc::UnboundedSender<M>]>,
}

impl<M> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Mesh {
            senders: self.senders.clone(),
        }
    }
}

/// One shard's end of the mesh.
pub struct Mailbox<M> {
    rx: mpsc::UnboundedReceiver<M>,
}

/// The mailbox of the target shard is gone (the shard stopped).
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not running")]
pub struct ShardGone(pub ShardId);

impl<M> Mesh<M> {
    /// A mesh of `shards` mailboxes; mailbox `i` belongs to shard `i`.
    pub fn new(shards: usize) -> (Mesh<M>, Vec<Mailbox<M>>) {
        let (senders, mailboxes): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded();
                (tx, Mailbox { rx })
            })
            .unzip();
        (
            Mesh {
                senders: senders.into(),
            },
            mailboxes,
        )
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Sends `msg` to `to`'s mailbox.
    // PERFORMANCE_CRITICAL_PATH: one lock-free push and at most one wake-up.
    pub fn send(&self, to: ShardId, msg: M) -> Result<(), ShardGone> {
        self.senders
            .get(to.index())
            .ok_or(ShardGone(to))?
            .unbounded_send(msg)
            .map_err(|_| ShardGone(to))
    }

    /// Closes every mailbox: receivers see the end once they are drained.
    pub fn close(&self) {
        for s in self.senders.iter() {
            s.close_channel();
        }
    }
}

impl<M> Mailbox<M> {
    /// The next message, or `None` once the mesh is closed and drained.
    pub async fn recv(&mut self) -> Option<M> {
        self.rx.next().await
    }
}
