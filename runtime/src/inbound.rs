//! Invocations from the lattice, read by each shard on a NATS connection
//! of its own ([`wascc_lattice::wire`]): the shard subscribes to its host's
//! actor subjects (`wasmbus.v1.<lattice>.host.<host>.actor.>`, one queue
//! group per host, so each invocation reaches one shard), checks each one
//! as the services thread would ([`Rpc::admit`]), runs it and publishes the
//! reply on the same socket. The services thread is not on the path: two
//! hand-offs between parked threads fewer per invocation
//! (`docs/BENCHMARKS.md`).
//!
//! The same connection carries the shard's own calls to actors on other
//! hosts ([`Outbound`]): an actor's call is sealed, sent and its reply
//! checked on the shard, and the reply comes back to the shard's inbox
//! (`_INBOX.<host>.<shard>.<n>`), so neither side of an actor-to-actor
//! call across hosts passes through a services thread.
//!
//! While a shard is not connected (starting, the server restarting, a
//! server it cannot reach on its own), callers get no responders on the
//! host's subject and go on to another host or the actor's queue group,
//! which the services thread still serves; the shard's own calls go
//! through the services thread meanwhile.

use crate::limits::MAX_CALL_DEPTH;
use futures_channel::mpsc;
use futures_lite::{AsyncWriteExt, StreamExt};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wascc_lattice::rpc::Rpc;
use wascc_lattice::wire::{self, Msg, Op, Target};
use wascc_scheduler::ShardId;

/// How long a shard waits between connection attempts.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What a session needs.
#[derive(Clone)]
pub(crate) struct Inbound {
    pub(crate) shared: Arc<crate::shard::Shared>,
    pub(crate) rpc: Arc<Rpc>,
    pub(crate) target: Arc<Target>,
    pub(crate) shard: ShardId,
    /// Set when the host stops: the subscription ends (drained).
    pub(crate) stopping: Rc<Cell<bool>>,
}

/// Connects once (so that the shard takes invocations when the host says
/// it is ready), then keeps a connection until the host stops.
pub(crate) async fn start(inbound: Inbound) {
    let first = connect(&inbound).await;
    wascc_scheduler::spawn_local(async move {
        let mut conn = first;
        while !inbound.stopping.get() {
            match conn {
                Ok(c) => {
                    let why = session(&inbound, c).await;
                    if inbound.stopping.get() {
                        return;
                    }
                    tracing::warn!(
                        shard = inbound.shard.index(),
                        "lattice connection ended ({why}); making it again"
                    );
                }
                Err(e) => tracing::warn!(
                    shard = inbound.shard.index(),
                    "no lattice connection of its own ({e}); invocations reach this host through the services thread"
                ),
            }
            wascc_scheduler::sleep(RECONNECT_AFTER).await;
            conn = connect(&inbound).await;
        }
    });
}

type Conn =
    futures_lite::io::BufReader<wascc_lattice::tls::Stream<wascc_scheduler::net::Connection>>;

/// How often a shard looks for its calls past their deadline.
const EXPIRE_EVERY: Duration = Duration::from_millis(250);

/// The subscription of the host's actor subjects.
const SID_INVOCATIONS: u64 = 1;
/// The subscription of the shard's inbox (replies to its own calls).
const SID_REPLIES: u64 = 2;

/// Where replies to this shard's calls come: `_INBOX.<host>.<shard>.`
/// and a number.
fn inbox(inbound: &Inbound) -> String {
    let (_, host) = inbound.rpc.actor_subjects();
    format!("_INBOX.{host}.{}.", inbound.shard.index())
}

thread_local! {
    /// This shard's connection for its own calls, while it has one.
    static OUTBOUND: RefCell<Option<Rc<Outbound>>> = const { RefCell::new(None) };
    /// The number of this shard's next call: never reused, so that a late
    /// reply to a call made on an earlier connection matches nothing.
    static NEXT_CALL: Cell<u64> = const { Cell::new(0) };
}

/// A shard's calls to other hosts on its own connection: each is sent
/// with a reply subject in the shard's inbox and waits for the reply the
/// connection's reader hands over.
pub(crate) struct Outbound {
    /// The connection's writer (none once the session ends).
    frames: RefCell<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    inbox: String,
    /// The largest message the server takes (it closes the connection on
    /// a larger one).
    max_payload: usize,
    /// Calls waiting for their replies, by number, with when they give up.
    waiting: RefCell<wascc_lattice::pending::Waiting<Waiter>>,
}

/// What a call waiting when its connection ends is told.
const ENDED_BEFORE_REPLY: &str = "the shard's lattice connection ended before the reply came";

/// Where a call's reply (or why none came) goes.
type Waiter = futures_channel::oneshot::Sender<Result<Msg, String>>;

/// A call's reply, or why none came.
type Replied = futures_channel::oneshot::Receiver<Result<Msg, String>>;

impl Outbound {
    /// Whether this shard has a connection of its own now.
    pub(crate) fn connected() -> bool {
        OUTBOUND.with(|o| o.borrow().is_some())
    }

    /// Sends one request on this shard's connection and resolves to its
    /// reply, or why none came (no reply within
    /// [`REMOTE_CALL_TIMEOUT`](wascc_lattice::limits::REMOTE_CALL_TIMEOUT)
    /// or by the calling invocation's `deadline`, the connection ended,
    /// too large for the server). Sent at once, synchronously, so that the
    /// future holds nothing tied to this thread (an actor's host call must
    /// be `Send`).
    fn request(
        subject: &str,
        headers: &[(&'static str, String)],
        payload: &[u8],
        deadline: Instant,
    ) -> impl std::future::Future<Output = Result<Msg, String>> + Send + use<> {
        let replied = Self::send(subject, headers, payload, deadline);
        async move {
            replied?
                .await
                .unwrap_or_else(|_| Err(ENDED_BEFORE_REPLY.into()))
        }
    }

    /// Calls `to` on this shard's own connection ([`Rpc::call_over`]),
    /// giving up by the calling invocation's `deadline`.
    pub(crate) async fn call(
        rpc: &Rpc,
        to: wascc_lattice::rpc::Over<'_>,
        operation: &str,
        payload: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, String> {
        let send = |to: String, headers: Vec<(&'static str, String)>, payload: bytes::Bytes| {
            Self::request(&to, &headers, &payload, deadline)
        };
        rpc.call_over(to, operation, payload, send).await
    }

    fn send(
        subject: &str,
        headers: &[(&'static str, String)],
        payload: &[u8],
        deadline: Instant,
    ) -> Result<Replied, String> {
        let ended = || "the shard's lattice connection ended".to_string();
        let out = OUTBOUND.with(|o| o.borrow().clone()).ok_or_else(ended)?;
        if wire::header_block_len(headers) + payload.len() > out.max_payload {
            return Err(format!(
                "the call of {} bytes exceeds the NATS server's max payload of {}",
                payload.len(),
                out.max_payload
            ));
        }
        let n = NEXT_CALL.with(|c| {
            let n = c.get();
            c.set(n + 1);
            n
        });
        let mut frame = Vec::with_capacity(256 + payload.len());
        let reply = format!("{}{n}", out.inbox);
        wire::hpub_request(&mut frame, subject, Some(&reply), headers, payload);
        let sent = match &*out.frames.borrow() {
            Some(frames) => frames.unbounded_send(frame).is_ok(),
            None => false,
        };
        if !sent {
            return Err(ended());
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        out.waiting
            .borrow_mut()
            .insert(n, Instant::now(), deadline, tx);
        Ok(rx)
    }

    /// Tells the calls past their time that no reply came (forgets those
    /// whose caller has gone).
    fn expire(&self, now: Instant) {
        let mut waiting = self.waiting.borrow_mut();
        waiting.forget(Waiter::is_canceled);
        for (tx, why) in waiting.expire(now) {
            let _ = tx.send(Err(why));
        }
    }

    /// The session ended: no more calls on it, and those waiting are told.
    fn close(&self) {
        self.frames.borrow_mut().take();
        for tx in self.waiting.borrow_mut().drain() {
            let _ = tx.send(Err(ENDED_BEFORE_REPLY.to_string()));
        }
    }

    /// Hands a reply to the call waiting for it (none: it timed out).
    fn answer(&self, msg: Msg) {
        let n = msg
            .subject
            .strip_prefix(self.inbox.as_str())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(tx) = n.and_then(|n| self.waiting.borrow_mut().take(n)) {
            let _ = tx.send(Ok(msg));
        }
    }
}

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}

async fn connect(inbound: &Inbound) -> Result<(Conn, wire::ServerLimits), String> {
    let addr = *inbound.target.addrs.first().ok_or("no address")?;
    let conn = wascc_scheduler::net::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (subject, queue) = inbound.rpc.actor_subjects();
    let name = format!("wascc-shard-{}", inbound.shard.index());
    let subscribe = format!(
        "{}{}",
        wire::sub(&subject, Some(&queue), SID_INVOCATIONS),
        wire::sub(&format!("{}*", inbox(inbound)), None, SID_REPLIES)
    );
    wire::handshake(conn, &inbound.target, &name, &subscribe).await
}

/// Serves one connection until it breaks, or the host stops (then the
/// subscription is ended and what the server sent before it saw that is
/// still served).
async fn session(inbound: &Inbound, (conn, limits): (Conn, wire::ServerLimits)) -> String {
    let (read, mut write) = futures_lite::io::split(conn);
    // Under load the server sends many messages at once: a large buffer
    // reads them in fewer syscalls (B's reads per call fell by 60 % at 64
    // concurrent callers in `wascc-bench lattice`).
    let mut read =
        futures_lite::io::BufReader::with_capacity(crate::limits::LATTICE_READ_BUFFER, read);
    let (frames, mut queued) = mpsc::unbounded::<Vec<u8>>();
    let outbound = Rc::new(Outbound {
        frames: RefCell::new(Some(frames.clone())),
        inbox: inbox(inbound),
        max_payload: limits.max_payload,
        waiting: RefCell::default(),
    });
    OUTBOUND.with(|o| *o.borrow_mut() = Some(outbound.clone()));
    // Calls past their deadline are told, a few times a second.
    wascc_scheduler::spawn_local({
        let outbound = Rc::downgrade(&outbound);
        async move {
            while let Some(out) = outbound.upgrade() {
                if out.frames.borrow().is_none() {
                    return;
                }
                out.expire(Instant::now());
                drop(out);
                wascc_scheduler::sleep(EXPIRE_EVERY).await;
            }
        }
    });
    // However the session ends, the calls waiting on it are told and new
    // ones take the services thread.
    let _current = scopeguard({
        let outbound = outbound.clone();
        move || {
            OUTBOUND.with(|o| o.borrow_mut().take());
            outbound.close();
        }
    });
    let writer = async move {
        while let Some(mut batch) = queued.next().await {
            // What the shard's invocations answered meanwhile goes in the
            // same write.
            while let Ok(more) = queued.try_recv() {
                batch.extend_from_slice(&more);
            }
            if let Err(e) = write.write_all(&batch).await {
                return format!("cannot write: {e}");
            }
            if let Err(e) = write.flush().await {
                return format!("cannot write: {e}");
            }
        }
        "closed".to_string()
    };
    // The host stopping ends the subscription (UNSUB), then the server's
    // PONG says it sent nothing after: what came before is still served.
    let draining = Rc::new(Cell::new(false));
    wascc_scheduler::spawn_local({
        let (frames, draining, stopping) =
            (frames.clone(), draining.clone(), inbound.stopping.clone());
        async move {
            while !frames.is_closed() {
                if stopping.get() {
                    draining.set(true);
                    let _ = frames.unbounded_send(
                        format!("UNSUB {SID_INVOCATIONS}\r\nPING\r\n").into_bytes(),
                    );
                    return;
                }
                wascc_scheduler::sleep(crate::limits::SHUTDOWN_POLL).await;
            }
        }
    });
    let running = Rc::new(Cell::new(0usize));
    let reader = async move {
        let mut line = String::new();
        let why = loop {
            // At the limit: stop reading until an invocation ends.
            while running.get() >= crate::limits::LATTICE_IN_FLIGHT {
                wascc_scheduler::sleep(Duration::from_micros(100)).await;
            }
            match wire::read_op(&mut read, &mut line).await {
                Err(e) => break e,
                Ok(Op::Msg(msg)) if msg.subject.starts_with(outbound.inbox.as_str()) => {
                    outbound.answer(msg);
                }
                Ok(Op::Msg(msg)) => {
                    let (frames, inbound, running) =
                        (frames.clone(), inbound.clone(), running.clone());
                    running.set(running.get() + 1);
                    wascc_scheduler::spawn_local(async move {
                        if let Some(frame) = serve(&inbound, msg, limits.max_payload).await {
                            let _ = frames.unbounded_send(frame);
                        }
                        running.set(running.get() - 1);
                    });
                }
                Ok(Op::Ping) => {
                    let _ = frames.unbounded_send(wire::PONG.to_vec());
                }
                Ok(Op::Err(e)) => tracing::warn!("NATS server: {e}"),
                Ok(Op::Other) if draining.get() && line == "PONG" => {
                    break "the host stopped".to_string();
                }
                Ok(Op::Other) => {}
            }
        };
        if !draining.get() {
            return why;
        }
        // Drained: the writer ends once the invocations still running have
        // queued their replies and it has written them.
        OUTBOUND.with(|o| o.borrow_mut().take());
        outbound.close();
        drop(frames);
        futures_lite::future::pending::<String>().await
    };
    futures_lite::future::or(writer, reader).await
}

/// Runs one invocation; the reply frame (none without a reply subject).
async fn serve(inbound: &Inbound, msg: Msg, max_payload: usize) -> Option<Vec<u8>> {
    let reply = msg.reply?;
    let _in_flight = crate::shard::InFlight::new();
    let mut frame = Vec::new();
    let failed = |frame: &mut Vec<u8>, headers: Vec<(&'static str, String)>| {
        wire::hpub(frame, &reply, &headers, &[]);
    };
    let admitted = match inbound.rpc.admit(&msg.subject, &msg.headers, &msg.payload) {
        Ok(a) => a,
        Err(refusal) => {
            failed(&mut frame, refusal.headers());
            return Some(frame);
        }
    };
    let run = async {
        if admitted.depth > MAX_CALL_DEPTH {
            return Err(format!(
                "call from actor {} to actor {} exceeds the call depth limit of {MAX_CALL_DEPTH}",
                admitted.caller, admitted.actor
            ));
        }
        let actor = inbound
            .shared
            .actors
            .get(&admitted.actor)
            .ok_or_else(|| format!("actor {} does not run on this host", admitted.actor))?;
        let payload = if admitted.shape {
            actor
                .loaded
                .profile
                .shape(msg.payload)
                .map_err(|e| e.to_string())?
        } else {
            msg.payload
        };
        crate::shard::invoke(
            &actor,
            &admitted.caller,
            &admitted.operation,
            &payload,
            admitted.depth,
        )
        .await
        .map_err(|e| e.to_string())
    };
    match run.await {
        Ok(out) => {
            let sealed = [admitted.reply_seal(&out)];
            if wire::header_block_len(&sealed) + out.len() > max_payload {
                failed(
                    &mut frame,
                    wascc_lattice::rpc::error_reply(&format!(
                        "the reply of {} bytes exceeds the NATS server's max payload of {max_payload}",
                        out.len()
                    )),
                );
            } else {
                wire::hpub(&mut frame, &reply, &sealed, &out);
            }
        }
        Err(e) => failed(&mut frame, wascc_lattice::rpc::error_reply(&e)),
    }
    Some(frame)
}
