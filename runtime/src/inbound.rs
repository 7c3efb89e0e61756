//! Invocations from the lattice, read by each shard on a NATS connection
//! of its own ([`wascc_lattice::wire`]): the shard subscribes to its host's
//! actor subjects (`wasmbus.v1.<lattice>.host.<host>.actor.>`, one queue
//! group per host, so each invocation reaches one shard), checks each one
//! as the services thread would ([`Rpc::admit`]), runs it and publishes the
//! reply on the same socket. The services thread is not on the path: two
//! hand-offs between parked threads fewer per invocation
//! (`docs/BENCHMARKS.md`).
//!
//! While a shard is not connected (starting, the server restarting, a
//! server it cannot reach on its own), callers get no responders on the
//! host's subject and go on to another host or the actor's queue group,
//! which the services thread still serves.

use crate::limits::MAX_CALL_DEPTH;
use futures_channel::mpsc;
use futures_lite::{AsyncWriteExt, StreamExt};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
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

type Conn = futures_lite::io::BufReader<wascc_scheduler::net::Connection>;

async fn connect(inbound: &Inbound) -> Result<(Conn, wire::ServerLimits), String> {
    let addr = *inbound.target.addrs.first().ok_or("no address")?;
    let conn = wascc_scheduler::net::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let mut conn = futures_lite::io::BufReader::new(conn);
    let (subject, queue) = inbound.rpc.actor_subjects();
    let name = format!("wascc-shard-{}", inbound.shard.index());
    let limits = wire::handshake(
        &mut conn,
        &inbound.target,
        &name,
        &wire::sub(&subject, &queue, 1),
    )
    .await?;
    Ok((conn, limits))
}

/// Serves one connection until it breaks, or the host stops (then the
/// subscription is ended and what the server sent before it saw that is
/// still served).
async fn session(inbound: &Inbound, (conn, limits): (Conn, wire::ServerLimits)) -> String {
    let (read, mut write) = futures_lite::io::split(conn);
    let mut read = futures_lite::io::BufReader::new(read);
    let (frames, mut queued) = mpsc::unbounded::<Vec<u8>>();
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
                    let _ = frames.unbounded_send(b"UNSUB 1\r\nPING\r\n".to_vec());
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
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        wire::hpub(frame, &reply, &h, &[]);
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
            let (name, seal) = admitted.reply_seal(&out);
            if out.len() + seal.len() + 64 > max_payload {
                failed(
                    &mut frame,
                    wascc_lattice::rpc::error_reply(&format!(
                        "the reply of {} bytes exceeds the NATS server's max payload of {max_payload}",
                        out.len()
                    )),
                );
            } else {
                wire::hpub(&mut frame, &reply, &[(name, seal.as_str())], &out);
            }
        }
        Err(e) => failed(&mut frame, wascc_lattice::rpc::error_reply(&e)),
    }
    Some(frame)
}
