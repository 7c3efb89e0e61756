//! Actor time: how long each invocation ran on a core, measured poll by poll.
//!
//! Every instantiation and invocation future is wrapped in [`Metered`]. Each
//! poll is timed; time spent in invocations nested inside that poll (an
//! actor calling another actor on the same shard runs it within its own
//! poll) is handed to the nested invocation, not to the caller. Time waiting
//! off the core (a yield at an epoch tick, a call answered by another shard
//! or the network) is nobody's actor time. Top-level polls add up in a
//! per-thread counter, so on one shard the actor time of all invocations
//! sums to exactly [`thread_busy_ns`]: nothing is counted twice or lost.
//!
//! Counters are plain thread-locals: no locks, no atomics, no sharing.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

thread_local! {
    /// Inside a metered poll: the time of polls nested within it so far.
    /// Outside any: the sum of all top-level metered polls on this thread.
    static NESTED_NS: Cell<u64> = const { Cell::new(0) };
}

/// Total time this thread has spent in metered polls (instantiations and
/// invocations of any actor), in nanoseconds.
pub fn thread_busy_ns() -> u64 {
    NESTED_NS.with(Cell::get)
}

/// Times the polls of `F`, net of nested metered polls.
pub(crate) struct Metered<F> {
    inner: F,
    own_ns: u64,
}

impl<F> Metered<F> {
    pub(crate) fn new(inner: F) -> Self {
        Metered { inner, own_ns: 0 }
    }
}

impl<F: Future + Unpin> Future for Metered<F> {
    type Output = (F::Output, u64);

    // PERFORMANCE_CRITICAL_PATH: two clock reads per poll.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outer = NESTED_NS.with(|n| n.replace(0));
        let started = Instant::now();
        let polled = Pin::new(&mut self.inner).poll(cx);
        let spent = started.elapsed().as_nanos() as u64;
        let nested = NESTED_NS.with(|n| n.replace(outer + spent));
        self.own_ns += spent.saturating_sub(nested);
        match polled {
            Poll::Ready(out) => Poll::Ready((out, self.own_ns)),
            Poll::Pending => Poll::Pending,
        }
    }
}
