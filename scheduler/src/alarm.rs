//! Alarms a `Send` future can wait on: an actor's host call must be `Send`
//! (wasmtime's async host functions), and glommio's timers are not. Each
//! shard keeps its alarms in a table that its owner sweeps ([`sweep`]; the
//! host does at each tick of the shard's main loop, every 20 ms): an alarm
//! goes off at the first sweep after its time, and one whose waiter has gone
//! is forgotten there. Setting one costs a oneshot channel and a push on the
//! shard's own table: nothing crosses threads, and no timer is armed per
//! alarm (a tokio timer per provider call, armed from the shard, and a
//! glommio timer of the alarms' own each measured slower on Redis calls in
//! one pair: `docs/BENCHMARKS.md`).

use futures_channel::oneshot;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

thread_local! {
    /// This shard's alarms.
    static ALARMS: RefCell<Vec<(Instant, oneshot::Sender<()>)>> =
        const { RefCell::new(Vec::new()) };
}

/// Resolves at the first [`sweep`] after its time; never, off a shard
/// (wait on something else too).
pub struct Alarm(Option<oneshot::Receiver<()>>);

/// An alarm for `at`, kept by the current shard.
pub fn alarm(at: Instant) -> Alarm {
    if crate::ShardId::current().is_none() {
        return Alarm(None);
    }
    let (tx, rx) = oneshot::channel();
    ALARMS.with(|a| a.borrow_mut().push((at, tx)));
    Alarm(Some(rx))
}

impl Future for Alarm {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.as_mut() {
            // Fired, or the shard's table is gone (the shard stopped): done.
            Some(rx) => Pin::new(rx).poll(cx).map(|_| ()),
            None => Poll::Pending,
        }
    }
}

/// Sets off this shard's alarms whose time is `now` or past, and forgets
/// those nobody waits for.
pub fn sweep(now: Instant) {
    ALARMS.with(|a| {
        // Dropping an alarm's sender resolves its receiver.
        a.borrow_mut()
            .retain(|(at, tx)| *at > now && !tx.is_canceled());
    });
}
