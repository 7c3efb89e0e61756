//! Shards for waSCC: a glommio executor per core, and the shard-local pieces
//! the host builds on (spawning, timers, TCP listeners whose streams speak
//! hyper's I/O traits).
//!
//! This is the only crate that names glommio. It knows nothing of actors,
//! claims or providers. Today the host runs one shard; the shard-per-core
//! placement and the cross-shard channel mesh come next (issue 3).

pub mod limits;
pub mod net;

use std::future::Future;
use std::time::Duration;
use thiserror::Error;

/// Errors of the scheduler.
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// The executor could not be created (io_uring unavailable, memlock too low, …).
    #[error("cannot start shard {shard}: {reason}")]
    Start {
        /// The shard's name.
        shard: String,
        /// glommio's reason.
        reason: String,
    },
    /// The shard's thread panicked.
    #[error("shard {0} panicked")]
    Panicked(String),
}

/// Runs `make()`'s future on a new shard (a glommio executor on a thread of
/// its own) and waits for its result. The stall detector is on in debug
/// builds, so a task that blocks the shard is reported.
pub fn run_shard<T, G, F>(name: &str, make: G) -> Result<T, SchedulerError>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let start_err = |e: glommio::GlommioError<()>| SchedulerError::Start {
        shard: name.to_string(),
        reason: e.to_string(),
    };
    let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .spin_before_park(limits::SPIN_BEFORE_PARK)
        .io_memory(limits::IO_MEMORY);
    #[cfg(debug_assertions)]
    let builder = builder.detect_stalls(Some(Box::new(glommio::DefaultStallDetectionHandler {})));
    let handle = builder.spawn(make).map_err(start_err)?;
    handle
        .join()
        .map_err(|_| SchedulerError::Panicked(name.to_string()))
}

/// Spawns a task on the current shard and lets it run to completion on its own.
pub fn spawn_local<F>(fut: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    glommio::spawn_local(fut).detach();
}

/// Sleeps on the shard's timer.
pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await;
}

/// Yields to the shard's other tasks.
pub async fn yield_now() {
    glommio::yield_if_needed().await;
}
