//! One shard of the host: the instances of the actors placed on it, its
//! mailbox for invocations from other shards, its meters, and the routing of
//! every invocation (HTTP or actor-to-actor) to the shard that runs it.
//!
//! Instances never leave the shard that made them. The per-shard state lives
//! in a thread-local; futures that must be `Send` (an actor's host call is
//! awaited inside wasmtime) only ever hold `Send` values across an await and
//! look the shard state up again afterwards.

use crate::actors::{Actors, RunningActor};
use crate::limits::MAX_CALL_DEPTH;
use crate::manifest::InstancePolicy;
use crate::metrics::ShardMeters;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use wascc_engines::{CallError, HostCall, WapcInstance};
use wascc_scheduler::ShardId;
use wascc_scheduler::envelope::{Envelope, SealedEnvelope};
use wascc_scheduler::mesh::{Mailbox, Mesh};

/// Why an invocation failed.
#[derive(Debug)]
pub enum InvokeError {
    /// No instance could be had.
    Instantiate(String),
    /// The call failed.
    Call(CallError),
    /// The invocation could not be delivered (unknown actor, stopped shard,
    /// call depth).
    Route(String),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Instantiate(e) | InvokeError::Route(e) => f.write_str(e),
            InvokeError::Call(e) => e.fmt(f),
        }
    }
}

/// What a shard is asked to do for another thread.
pub(crate) enum CrossKind {
    /// Run an invocation.
    Invoke(SealedEnvelope),
    /// Make one instance and keep it idle (an actor starting).
    Prewarm,
}

/// A request sent to another shard, with where its reply goes.
pub(crate) struct CrossCall {
    actor: Arc<RunningActor>,
    kind: CrossKind,
    reply: oneshot::Sender<Result<Vec<u8>, InvokeError>>,
}

/// The receiving end of a reply from another shard.
pub(crate) type Reply = oneshot::Receiver<Result<Vec<u8>, InvokeError>>;

/// What every shard shares.
pub(crate) struct Shared {
    /// The running actors (changing while the host serves).
    pub(crate) actors: Actors,
    pub(crate) mesh: Mesh<CrossCall>,
    pub(crate) meters: Vec<Arc<ShardMeters>>,
    /// Calls to actors this host does not run, when it is in a lattice.
    pub(crate) remote: crate::Remote,
    /// Where shards read the lattice's invocations of this host's actors
    /// ([`crate::inbound`]), when the server allows a plain connection.
    pub(crate) wire: std::sync::OnceLock<Arc<wascc_lattice::wire::Target>>,
}

impl Shared {
    /// Sends `kind` for `actor` to shard `to`; the receiver yields the reply.
    fn send(
        &self,
        to: ShardId,
        actor: &Arc<RunningActor>,
        kind: CrossKind,
    ) -> Result<Reply, wascc_scheduler::mesh::ShardGone> {
        let (reply, rx) = oneshot::channel();
        self.mesh.send(
            to,
            CrossCall {
                actor: actor.clone(),
                kind,
                reply,
            },
        )?;
        Ok(rx)
    }

    /// Seals an invocation of `actor` and sends it to shard `to`.
    fn send_invocation(
        &self,
        to: ShardId,
        actor: &Arc<RunningActor>,
        origin: &str,
        operation: &str,
        payload: &[u8],
        depth: u32,
    ) -> Result<Reply, wascc_scheduler::mesh::ShardGone> {
        let envelope = SealedEnvelope::seal(&Envelope {
            origin,
            target: &actor.loaded.key,
            operation,
            payload,
            depth,
        });
        self.send(to, actor, CrossKind::Invoke(envelope))
    }

    /// Shared state of a host of `shards` shards, with no actor yet,
    /// reaching the lattice through `remote` once the host joins one.
    pub(crate) fn new(shards: usize, remote: crate::Remote) -> (Shared, Vec<Mailbox<CrossCall>>) {
        let actors = Actors::new(shards);
        let (mesh, mailboxes) = Mesh::new(actors.shards());
        let meters = (0..actors.shards())
            .map(|_| Arc::new(ShardMeters::new()))
            .collect();
        (
            Shared {
                actors,
                mesh,
                meters,
                remote,
                wire: std::sync::OnceLock::new(),
            },
            mailboxes,
        )
    }
}

/// The idle instances of the actor holding one slot, on one shard.
#[derive(Default)]
struct Idle {
    uid: u64,
    instances: Vec<WapcInstance>,
}

/// The state of the shard running on this thread.
struct Local {
    id: ShardId,
    shared: Arc<Shared>,
    meters: Arc<ShardMeters>,
    /// Idle instances by actor slot.
    idle: RefCell<Vec<Idle>>,
    /// The actor table version last swept.
    swept: Cell<u64>,
    /// Round-robin counter for invocations sent elsewhere.
    turn: Cell<usize>,
}

impl Local {
    /// Takes an idle instance of `actor`, dropping those a stopped actor
    /// left in its slot.
    fn pop_idle(&self, actor: &RunningActor) -> Option<WapcInstance> {
        let mut idle = self.idle.borrow_mut();
        let slot = idle.get_mut(actor.slot)?;
        if slot.uid != actor.uid {
            *slot = Idle::default();
            return None;
        }
        slot.instances.pop()
    }

    fn push_idle(&self, actor: &RunningActor, inst: WapcInstance) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() <= actor.slot {
            idle.resize_with(actor.slot + 1, Idle::default);
        }
        let slot = &mut idle[actor.slot];
        if slot.uid != actor.uid {
            *slot = Idle {
                uid: actor.uid,
                instances: Vec::new(),
            };
        }
        slot.instances.push(inst);
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
}

fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.with(|l| l.borrow().as_ref().map(|l| f(l)))
}

fn not_a_shard() -> InvokeError {
    InvokeError::Route("invocation outside a host shard".into())
}

/// Makes this thread shard `id` of the host.
pub(crate) fn enter(id: ShardId, shared: Arc<Shared>) {
    let meters = shared.meters[id.index()].clone();
    let local = Rc::new(Local {
        id,
        shared,
        meters,
        idle: RefCell::new(Vec::new()),
        swept: Cell::new(0),
        turn: Cell::new(0),
    });
    LOCAL.with(|l| *l.borrow_mut() = Some(local));
}

/// Drops this shard's instances and state.
pub(crate) fn leave() {
    LOCAL.with(|l| l.borrow_mut().take());
}

/// Drops this shard's idle instances of actors that stopped (their slots
/// free or held by another actor). Cheap when the table did not change.
pub(crate) fn sweep() {
    with_local(|l| {
        let table = l.shared.actors.load();
        if table.version == l.swept.get() {
            return;
        }
        l.swept.set(table.version);
        for (slot, idle) in l.idle.borrow_mut().iter_mut().enumerate() {
            if !idle.instances.is_empty() && !table.holds(slot, idle.uid) {
                *idle = Idle::default();
            }
        }
    });
}

/// The running actor `key`, if this host runs it.
pub(crate) fn find(key: &str) -> Option<Arc<RunningActor>> {
    with_local(|l| l.shared.actors.get(key)).flatten()
}

/// Counts an invocation as in flight on this shard while alive.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn new() -> InFlight {
        with_local(|l| l.meters.flight(true));
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        with_local(|l| l.meters.flight(false));
    }
}

/// Makes one instance of `actor` on this shard and keeps it idle: a module
/// that traps in its initializer fails the start, not the first request.
pub(crate) async fn prewarm(actor: &Arc<RunningActor>) -> Result<(), InvokeError> {
    let inst = instantiate(actor).await?;
    with_local(|l| {
        // A `fresh` actor never takes an idle instance: this one only proved
        // that the module starts.
        if actor.loaded.instances == InstancePolicy::Reuse && !actor.stopped() {
            l.push_idle(actor, inst);
        }
    });
    Ok(())
}

async fn instantiate(actor: &RunningActor) -> Result<WapcInstance, InvokeError> {
    let handler: Arc<dyn wascc_engines::HostHandler> = actor.loaded.handler.clone();
    let inst = actor
        .loaded
        .module
        .instantiate(&actor.loaded.key, handler)
        .await
        .map_err(|e| InvokeError::Instantiate(e.to_string()))?;
    with_local(|l| {
        l.meters
            .instantiated(actor.meters.on(l.id.index()), inst.last_actor_ns())
    });
    Ok(inst)
}

/// Invokes `operation` on `actor`, on this shard when the actor runs here
/// and on one of its shards otherwise.
// PERFORMANCE_CRITICAL_PATH: every invocation passes here.
pub(crate) async fn invoke(
    actor: &Arc<RunningActor>,
    origin: &str,
    operation: &str,
    payload: &[u8],
    depth: u32,
) -> Result<Vec<u8>, InvokeError> {
    let routed = with_local(|l| {
        if actor.shards.contains(l.id) {
            return None;
        }
        let turn = l.turn.get();
        l.turn.set(turn.wrapping_add(1));
        let to = actor.shards.pick(turn, l.shared.actors.shards());
        l.meters.sent_cross_shard();
        Some(
            l.shared
                .send_invocation(to, actor, origin, operation, payload, depth)
                .map_err(|e| InvokeError::Route(e.to_string())),
        )
    })
    .ok_or_else(not_a_shard)?;
    match routed {
        None => invoke_here(actor, operation, payload, depth).await,
        Some(rx) => wascc_scheduler::mesh::recv_reply(rx?)
            .await
            .unwrap_or_else(|_| Err(InvokeError::Route("the actor's shard stopped".into()))),
    }
}

/// Runs an invocation on this shard.
// PERFORMANCE_CRITICAL_PATH: one pop and one push per call when warm.
async fn invoke_here(
    actor: &Arc<RunningActor>,
    operation: &str,
    payload: &[u8],
    depth: u32,
) -> Result<Vec<u8>, InvokeError> {
    let policy = actor.loaded.instances;
    let popped = match policy {
        InstancePolicy::Reuse => with_local(|l| l.pop_idle(actor)).ok_or_else(not_a_shard)?,
        InstancePolicy::Fresh => None,
    };
    let mut inst = match popped {
        Some(i) => i,
        None => instantiate(actor).await?,
    };
    let result = inst.call_at(depth, operation, payload).await;
    with_local(|l| {
        l.meters.invoked(
            actor.meters.on(l.id.index()),
            inst.last_actor_ns(),
            result.is_err(),
        );
        match &result {
            Err(e) if e.poisons_instance() => {
                tracing::warn!(actor = %actor.loaded.key, "discarding instance: {e}");
            }
            // A stopped actor's instances are dropped, not kept.
            _ if policy == InstancePolicy::Reuse && !actor.stopped() => l.push_idle(actor, inst),
            _ => {}
        }
    });
    result.map_err(InvokeError::Call)
}

/// Runs what other threads send here until the mesh closes.
pub(crate) async fn serve_mailbox(mut mailbox: Mailbox<CrossCall>) {
    while let Some(call) = mailbox.recv_spinning().await {
        with_local(|l| l.meters.received_cross_shard());
        wascc_scheduler::spawn_local(async move {
            let _in_flight = InFlight::new();
            let result = match &call.kind {
                CrossKind::Invoke(envelope) => {
                    let e = envelope.open();
                    invoke_here(&call.actor, e.operation(), e.payload(), e.depth()).await
                }
                CrossKind::Prewarm => prewarm(&call.actor).await.map(|()| Vec::new()),
            };
            // The caller may have gone (its connection closed): nothing to do.
            let _ = call.reply.send(result);
        });
    }
}

/// An actor's `__host_call` to another actor (namespace = the target's key).
pub(crate) async fn call_actor(call: HostCall) -> Result<Vec<u8>, String> {
    let depth = call.depth + 1;
    if depth > MAX_CALL_DEPTH {
        return Err(format!(
            "call from actor {} to actor {} exceeds the call depth limit of {MAX_CALL_DEPTH}",
            call.actor, call.namespace
        ));
    }
    let (target, remote) = with_local(|l| {
        (
            l.shared.actors.get(&call.namespace),
            l.shared.remote.get().cloned(),
        )
    })
    .ok_or_else(|| not_a_shard().to_string())?;
    let target = match (target, remote) {
        (Some(t), _) => t,
        // Not here: whichever host of the lattice runs it, straight from
        // this shard when it has a lattice connection of its own.
        (None, Some(rpc)) => {
            if crate::inbound::Outbound::connected() {
                let to = wascc_lattice::rpc::Over::Actor {
                    caller: &call.actor,
                    actor: &call.namespace,
                    depth,
                };
                return crate::inbound::Outbound::call(
                    &rpc,
                    to,
                    &call.operation,
                    call.payload,
                    call.deadline,
                )
                .await;
            }
            return rpc
                .call_actor(
                    &call.actor,
                    &call.namespace,
                    &call.operation,
                    call.payload,
                    (false, depth),
                    Some(call.deadline),
                )
                .await;
        }
        (None, None) => {
            return Err(format!(
                "actor {} is not running on this host",
                call.namespace
            ));
        }
    };
    invoke(&target, &call.actor, &call.operation, &call.payload, depth)
        .await
        .map_err(|e| format!("call to actor {} failed: {e}", call.namespace))
}

/// Delivers invocations from providers (a message on a subscription) to
/// actors, from any thread: through the mesh to one of the actor's shards.
#[derive(Default)]
pub(crate) struct HostDispatcher {
    /// The serving host's shards; empty before `run` and after it ends.
    target: arc_swap::ArcSwapOption<Shared>,
    turn: std::sync::atomic::AtomicUsize,
}

impl HostDispatcher {
    pub(crate) fn serve(&self, shared: Option<Arc<Shared>>) {
        self.target.store(shared);
    }
}

impl HostDispatcher {
    /// The serving host's shared state, or why there is none.
    fn serving(&self) -> Result<Arc<Shared>, String> {
        self.target
            .load_full()
            .ok_or_else(|| "the host is not serving".to_string())
    }

    /// Sends an invocation of local actor `actor` to one of its shards;
    /// with `shape`, the payload is first reshaped for the actor's codec
    /// (messages from providers), otherwise sent as it is (from actors).
    fn send(
        &self,
        origin: &str,
        actor: &str,
        operation: &str,
        payload: std::borrow::Cow<'_, [u8]>,
        shape: bool,
        depth: u32,
    ) -> Result<Reply, String> {
        let shared = self.serving()?;
        let running = shared
            .actors
            .get(actor)
            .ok_or_else(|| format!("actor {actor} does not run on this host"))?;
        self.send_to(&shared, &running, origin, operation, payload, shape, depth)
    }

    /// [`send`](Self::send) to an actor already looked up.
    #[allow(clippy::too_many_arguments)]
    fn send_to(
        &self,
        shared: &Shared,
        running: &Arc<RunningActor>,
        origin: &str,
        operation: &str,
        payload: std::borrow::Cow<'_, [u8]>,
        shape: bool,
        depth: u32,
    ) -> Result<Reply, String> {
        let payload = if shape {
            std::borrow::Cow::Owned(
                running
                    .loaded
                    .profile
                    .shape(payload.into_owned())
                    .map_err(|e| e.to_string())?,
            )
        } else {
            payload
        };
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let to = running.shards.pick(turn, shared.actors.shards());
        shared
            .send_invocation(to, running, origin, operation, &payload, depth)
            .map_err(|e| e.to_string())
    }

    /// Makes one instance of `actor` on its first shard (it starts, or the
    /// reply says why not).
    pub(crate) fn prewarm(&self, actor: &Arc<RunningActor>) -> Result<Reply, String> {
        let shared = self.serving()?;
        shared
            .send(actor.shards.first(), actor, CrossKind::Prewarm)
            .map_err(|e| e.to_string())
    }

    /// The serving host's shared state.
    pub(crate) fn shared(&self) -> Option<Arc<Shared>> {
        self.target.load_full()
    }
}

/// Invocations from other hosts of the lattice: actor → actor payloads
/// travel as the calling actor wrote them, as on one host.
impl wascc_lattice::rpc::LocalActors for HostDispatcher {
    fn invoke(
        &self,
        origin: &str,
        actor: &str,
        operation: &str,
        payload: &[u8],
        shape: bool,
        depth: u32,
    ) -> wascc_lattice::rpc::ReplyFuture {
        if depth > MAX_CALL_DEPTH {
            let e = format!(
                "call from actor {origin} to actor {actor} exceeds the call depth limit of {MAX_CALL_DEPTH}"
            );
            return Box::pin(async move { Err(e) });
        }
        let sent = self.send(origin, actor, operation, payload.into(), shape, depth);
        Box::pin(async move {
            sent?
                .await
                .map_err(|_| "the actor's shard stopped".to_string())?
                .map_err(|e| e.to_string())
        })
    }
}

/// Where a provider's message to an actor went.
enum Routed {
    /// To one of this host's shards.
    Here(Reply),
    /// To a host of the lattice that runs the actor.
    Lattice(wascc_lattice::rpc::ReplyFuture),
}

/// Messages from providers (a subscription's message, an HTTP request on
/// another host) to actors: to one of its shards here, or, when this host
/// does not run it and is in a lattice, to a host that does.
impl wascc_contracts::ActorDispatcher for HostDispatcher {
    fn dispatch(
        &self,
        actor: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> wascc_contracts::ReplyFuture {
        use wascc_contracts::ProviderError;
        // One lookup: here, or (in a lattice) on a host that runs it.
        let sent = self.serving().and_then(|shared| {
            match (shared.actors.get(actor), shared.remote.get()) {
                (Some(running), _) => self
                    .send_to(
                        &shared,
                        &running,
                        wascc_lattice::rpc::PROVIDER_CALLER,
                        operation,
                        payload.into(),
                        true,
                        0,
                    )
                    .map(Routed::Here),
                (None, Some(rpc)) => Ok(Routed::Lattice(rpc.call_actor(
                    wascc_lattice::rpc::PROVIDER_CALLER,
                    actor,
                    operation,
                    payload,
                    (true, 0),
                    None,
                ))),
                (None, None) => Err(format!("actor {actor} does not run on this host")),
            }
        });
        Box::pin(async move {
            match sent.map_err(ProviderError)? {
                Routed::Here(rx) => rx
                    .await
                    .map_err(|_| ProviderError("the actor's shard stopped".into()))?
                    .map_err(|e| ProviderError(e.to_string())),
                Routed::Lattice(reply) => reply.await.map_err(ProviderError),
            }
        })
    }
}

/// Invokes actor `key` on a host of the lattice with a provider's message
/// in the current shape (it is reshaped there), if this host is in one:
/// straight from this shard when it has a lattice connection of its own,
/// else through the services thread.
pub(crate) fn call_remote_shaped(
    key: &str,
    operation: &str,
    payload: Vec<u8>,
) -> Option<wascc_lattice::rpc::ReplyFuture> {
    let rpc = with_local(|l| l.shared.remote.get().cloned()).flatten()?;
    if crate::inbound::Outbound::connected() {
        let (key, operation) = (key.to_string(), operation.to_string());
        let deadline = std::time::Instant::now() + wascc_lattice::limits::REMOTE_CALL_TIMEOUT;
        return Some(Box::pin(async move {
            let to = wascc_lattice::rpc::Over::Delivery(&key);
            crate::inbound::Outbound::call(&rpc, to, &operation, payload, deadline).await
        }));
    }
    let caller = wascc_lattice::rpc::PROVIDER_CALLER;
    Some(rpc.call_actor(caller, key, operation, payload, (true, 0), None))
}
