//! The channel mesh between shards: every shard has one mailbox that any
//! thread may send to. Sends never block; the receiving shard is woken
//! through glommio's foreign-wake path (an eventfd), which costs nothing
//! while it is still spinning before parking
//! ([`SPIN_BEFORE_PARK`](crate::limits::SPIN_BEFORE_PARK)).

use crate::ShardId;
use crate::limits::{MESH_SPIN, MESH_SPIN_SLICE};
use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;
use std::sync::Arc;
use std::time::Instant;

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

    /// Like [`Mailbox::recv`], but first polls the queue for up to
    /// [`MESH_SPIN`]: a message that arrives within it is taken at once
    /// instead of through the executor's wake-up path.
    // PERFORMANCE_CRITICAL_PATH: how fast a shard picks up a cross-shard call.
    pub async fn recv_spinning(&mut self) -> Option<M> {
        let rx = &mut self.rx;
        let polled = spin_until(|| match rx.try_recv() {
            Ok(m) => Some(Some(m)),
            Err(mpsc::TryRecvError::Closed) => Some(None),
            Err(mpsc::TryRecvError::Empty) => None,
        })
        .await;
        match polled {
            Some(m) => m,
            None => rx.next().await,
        }
    }
}

/// Polls `ready` (a non-blocking check) for up to [`MESH_SPIN`], in slices
/// of [`MESH_SPIN_SLICE`] between which the shard's other ready tasks run;
/// `None` when nothing came. Waking a shard that went back to its event loop
/// costs microseconds of io_uring work per hop on these machines (tens when
/// it parked), a check of a lock-free queue costs nanoseconds.
pub async fn spin_until<T>(mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        let slice = Instant::now();
        loop {
            if let Some(v) = ready() {
                return Some(v);
            }
            if slice.elapsed() >= MESH_SPIN_SLICE {
                break;
            }
            std::hint::spin_loop();
        }
        if started.elapsed() >= MESH_SPIN {
            return None;
        }
        futures_lite::future::yield_now().await;
    }
}

/// Waits for a reply, spinning first (see [`spin_until`]).
pub async fn recv_reply<T>(mut rx: oneshot::Receiver<T>) -> Result<T, oneshot::Canceled> {
    match spin_until(|| rx.try_recv().transpose()).await {
        Some(r) => r,
        None => rx.await,
    }
}
