//! Shards for waSCC: a glommio executor per core, and the shard-local pieces
//! the host builds on (spawning, timers, TCP listeners whose streams speak
//! hyper's I/O traits).
//!
//! This is the only crate that names glommio. It knows nothing of actors,
//! claims or providers: it runs shards ([`run_shards`]), carries messages
//! between them ([`mesh`]) and seals invocations into envelopes
//! ([`envelope`]); the host decides what runs where.

pub mod alarm;
pub mod envelope;
pub mod limits;
pub mod mesh;
pub mod net;

use std::cell::Cell;

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

/// The index of a shard, `0..shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl ShardId {
    /// As an index into per-shard tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The shard the calling thread runs, if it is one started by
    /// [`run_shards`] or [`run_shard`] (shard 0).
    pub fn current() -> Option<ShardId> {
        CURRENT.with(Cell::get)
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

thread_local! {
    static CURRENT: Cell<Option<ShardId>> = const { Cell::new(None) };
}

/// The number of CPUs this process may run on (its affinity mask), the
/// default shard count.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn builder(name: &str, cpu: Option<usize>, spin: Duration) -> glommio::LocalExecutorBuilder {
    let placement = match cpu {
        Some(c) => glommio::Placement::Fixed(c),
        None => glommio::Placement::Unbound,
    };
    let builder = glommio::LocalExecutorBuilder::new(placement)
        .name(name)
        .spin_before_park(spin)
        .io_memory(limits::IO_MEMORY);
    #[cfg(debug_assertions)]
    let builder = builder.detect_stalls(Some(Box::new(glommio::DefaultStallDetectionHandler {})));
    builder
}

/// Runs `shards` shards, each a glommio executor on a thread of its own
/// running `make(id)`'s future, and waits for all of them. Shard `i` is
/// pinned to `cpus[i % cpus.len()]` (see [`allowed_cpus`]) and, with nothing
/// to run, polls for new work for `spin` before it parks (default
/// [`limits::SPIN_BEFORE_PARK`]); with no `cpus`, shards are not pinned and
/// do not spin (glommio spins only on a pinned executor). Results come back
/// in shard order.
pub fn run_shards<T, G, F>(
    shards: usize,
    cpus: &[usize],
    spin: Duration,
    make: G,
) -> Result<Vec<T>, SchedulerError>
where
    G: Fn(ShardId) -> F + Send + Sync + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let make = std::sync::Arc::new(make);
    let mut handles = Vec::with_capacity(shards);
    for i in 0..shards {
        let id = ShardId(i as u16);
        let name = format!("wascc-shard-{i}");
        let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
        let make = make.clone();
        let spawned = builder(&name, cpu, spin).spawn(move || {
            CURRENT.with(|c| c.set(Some(id)));
            make(id)
        });
        match spawned {
            Ok(h) => handles.push((name, h)),
            Err(e) => {
                // Shards already running are told to stop by their caller's
                // shutdown path; we only report which one failed.
                return Err(SchedulerError::Start {
                    shard: name,
                    reason: e.to_string(),
                });
            }
        }
    }
    let mut out = Vec::with_capacity(shards);
    for (name, h) in handles {
        out.push(h.join().map_err(|_| SchedulerError::Panicked(name))?);
    }
    Ok(out)
}

/// The CPUs the calling thread may run on (its affinity mask: a container,
/// `taskset` or the embedding program may hand us fewer than the machine
/// has); empty when the kernel does not say.
pub fn allowed_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/thread-self/status")
        .or_else(|_| std::fs::read_to_string("/proc/self/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|list| parse_cpu_list(list).ok())
        })
        .unwrap_or_default()
}

/// Parses a CPU list in the kernel's notation, such as `0-3,8,10-11`:
/// the CPUs, sorted and without repeats, or the part that is not a CPU or
/// a range of them.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let bad = || format!("{part:?} is not a CPU or a range of CPUs (such as 3 or 0-3)");
        let number = |n: &str| n.trim().parse::<usize>().map_err(|_| bad());
        match part.split_once('-') {
            None => cpus.push(number(part)?),
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if hi < lo {
                    return Err(bad());
                }
                cpus.extend(lo..=hi);
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
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
    let handle = builder(name, None, limits::SPIN_BEFORE_PARK)
        .spawn(move || {
            CURRENT.with(|c| c.set(Some(ShardId(0))));
            make()
        })
        .map_err(start_err)?;
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

#[cfg(test)]
mod tests {
    //! What shards rely on glommio's reactor for: wake-ups from other
    //! threads and timers reach a shard whether it is running, spinning or
    //! parked. A lost wake-up or a timer that does not fire shows as a shard
    //! that never finishes, which the watchdog turns into a failure instead
    //! of a hung test (both tests failed on a patched reactor that lost its
    //! ring link: `docs/BENCHMARKS.md`, "A leaner glommio reactor").

    use super::*;
    use std::sync::mpsc;

    /// Runs `make()` on a shard; fails if it has not finished in a minute.
    fn on_shard_within_a_minute<T, G, F>(what: &str, make: G) -> T
    where
        G: FnOnce() -> F + Send + 'static,
        F: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (done, finished) = mpsc::channel();
        let name = format!("test-{what}");
        std::thread::spawn(move || {
            let _ = done.send(run_shard(&name, make));
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what}: the shard never finished (a lost wake-up?)"))
            .expect("shard")
    }

    #[test]
    fn wakes_from_other_threads_are_never_lost() {
        // A thread completes each of the shard's waits; some at once, some
        // after a short spin, so that the shard is sometimes running,
        // sometimes on its way to sleep and sometimes asleep when the wake
        // comes.
        const HAND_OFFS: u32 = 20_000;
        let (to_helper, waits) = mpsc::channel::<futures_channel::oneshot::Sender<u32>>();
        let helper = std::thread::spawn(move || {
            let mut n = 0u32;
            while let Ok(tx) = waits.recv() {
                let spin = std::time::Instant::now();
                while spin.elapsed() < Duration::from_micros(u64::from(n % 7) * 10) {
                    std::hint::spin_loop();
                }
                let _ = tx.send(n);
                n += 1;
            }
        });
        let got = on_shard_within_a_minute("foreign-wakes", move || async move {
            let mut got = 0u32;
            for _ in 0..HAND_OFFS {
                let (tx, rx) = futures_channel::oneshot::channel();
                to_helper.send(tx).expect("helper");
                got += u32::from(rx.await.is_ok());
            }
            got
        });
        helper.join().expect("helper");
        assert_eq!(got, HAND_OFFS);
    }

    #[test]
    fn short_timers_wake_a_sleeping_shard_before_a_long_one() {
        // A long sleep arms the shard's timer first; the short sleeps that
        // follow need an earlier wake-up than the one already armed.
        let order = on_shard_within_a_minute("timers", || async {
            let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let long = glommio::spawn_local({
                let order = order.clone();
                async move {
                    sleep(Duration::from_secs(3)).await;
                    order.borrow_mut().push("long");
                }
            });
            for _ in 0..20 {
                sleep(Duration::from_millis(1)).await;
            }
            order.borrow_mut().push("short");
            long.await;
            order.take()
        });
        assert_eq!(order, ["short", "long"]);
    }

    #[test]
    fn alarms_go_off_at_the_first_sweep_after_their_time() {
        use futures_lite::FutureExt;
        let fired = on_shard_within_a_minute("alarms", || async {
            let now = std::time::Instant::now();
            let mut due = alarm::alarm(now);
            let mut later = alarm::alarm(now + Duration::from_secs(3600));
            let gone = alarm::alarm(now + Duration::from_secs(3600));
            drop(gone);
            let waker =
                futures_lite::future::poll_fn(|cx| std::task::Poll::Ready(cx.waker().clone()))
                    .await;
            let mut cx = std::task::Context::from_waker(&waker);
            // Nothing goes off before a sweep.
            let before = (due.poll(&mut cx).is_ready(), later.poll(&mut cx).is_ready());
            alarm::sweep(std::time::Instant::now());
            let after = (due.poll(&mut cx).is_ready(), later.poll(&mut cx).is_ready());
            (before, after)
        });
        assert_eq!(fired, ((false, false), (true, false)));
        // Off a shard nothing sweeps: the alarm never goes off.
        let mut off = alarm::alarm(std::time::Instant::now());
        alarm::sweep(std::time::Instant::now() + Duration::from_secs(1));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(futures_lite::FutureExt::poll(&mut off, &mut cx).is_pending());
    }
}
