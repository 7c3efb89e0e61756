//! One shard of the host: the instances of the actors placed on it, its
//! mailbox for invocations from other shards, its meters, and the routing of
//! every invocation (HTTP or actor-to-actor) to the shard that runs it.
//!
//! Instances never leave the shard that made them. The per-shard state lives
//! in a thread-local; futures that must be `Send` (an actor's host call is
//! awaited inside wasmtime) only ever hold `Send` values across an await and
//! look the shard state up again afterwards.

use crate::host::LoadedActor;
use crate::limits::MAX_CALL_DEPTH;
use crate::manifest::InstancePolicy;
use crate::metrics::ShardMeters;
use crate::placement::Placement;
use futures_channel::oneshot;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
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

/// An invocation sent to another shard.
pub(crate) struct CrossCall {
    actor: usize,
    envelope: SealedEnvelope,
    reply: oneshot::Sender<Result<Vec<u8>, InvokeError>>,
}

/// What every shard shares (read-only once serving).
pub(crate) struct Shared {
    pub(crate) actors: Vec<Arc<LoadedActor>>,
    pub(crate) by_key: HashMap<String, usize>,
    pub(crate) placement: Placement,
    pub(crate) mesh: Mesh<CrossCall>,
    pub(crate) meters: Vec<Arc<ShardMeters>>,
    /// Calls to actors this host does not run, when it is in a lattice.
    pub(crate) remote: std::sync::OnceLock<Arc<wascc_lattice::rpc::Rpc>>,
}

impl Shared {
    /// Seals an invocation of actor `actor` (an index) and sends it to shard
    /// `to`; the receiver yields the reply.
    fn send_invocation(
        &self,
        to: ShardId,
        actor: usize,
        origin: &str,
        operation: &str,
        payload: &[u8],
        depth: u32,
    ) -> Result<oneshot::Receiver<Result<Vec<u8>, InvokeError>>, wascc_scheduler::mesh::ShardGone>
    {
        let envelope = SealedEnvelope::seal(&Envelope {
            origin,
            target: &self.actors[actor].key,
            operation,
            payload,
            depth,
        });
        let (reply, rx) = oneshot::channel();
        self.mesh.send(
            to,
            CrossCall {
                actor,
                envelope,
                reply,
            },
        )?;
        Ok(rx)
    }

    pub(crate) fn new(
        actors: Vec<Arc<LoadedActor>>,
        shards: usize,
    ) -> (Shared, Vec<Mailbox<CrossCall>>) {
        let wanted: Vec<Option<u32>> = actors.iter().map(|a| a.shards).collect();
        let placement = Placement::place(&wanted, shards);
        let (mesh, mailboxes) = Mesh::new(placement.shards());
        let by_key = actors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.key.clone(), i))
            .collect();
        let meters = (0..placement.shards())
            .map(|_| Arc::new(ShardMeters::new(actors.len())))
            .collect();
        (
            Shared {
                actors,
                by_key,
                placement,
                mesh,
                meters,
                remote: std::sync::OnceLock::new(),
            },
            mailboxes,
        )
    }
}

/// The state of the shard running on this thread.
struct Local {
    id: ShardId,
    shared: Arc<Shared>,
    meters: Arc<ShardMeters>,
    /// Idle instances by actor index.
    idle: Vec<RefCell<Vec<WapcInstance>>>,
    /// Round-robin counter for invocations sent elsewhere.
    turn: Cell<usize>,
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
    let idle = (0..shared.actors.len())
        .map(|_| RefCell::new(Vec::new()))
        .collect();
    let local = Rc::new(Local {
        id,
        shared,
        meters,
        idle,
        turn: Cell::new(0),
    });
    LOCAL.with(|l| *l.borrow_mut() = Some(local));
}

/// Drops this shard's instances and state.
pub(crate) fn leave() {
    LOCAL.with(|l| l.borrow_mut().take());
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
pub(crate) async fn prewarm(actor: usize) -> Result<(), InvokeError> {
    let inst = instantiate(actor).await?;
    with_local(|l| {
        // A `fresh` actor never takes an idle instance: this one only proved
        // that the module starts.
        if l.shared.actors[actor].instances == InstancePolicy::Reuse {
            l.idle[actor].borrow_mut().push(inst);
        }
    });
    Ok(())
}

async fn instantiate(actor: usize) -> Result<WapcInstance, InvokeError> {
    let (loaded, meters) = with_local(|l| (l.shared.actors[actor].clone(), l.meters.clone()))
        .ok_or_else(not_a_shard)?;
    let handler: Arc<dyn wascc_engines::HostHandler> = loaded.handler.clone();
    let inst = loaded
        .module
        .instantiate(&loaded.key, handler)
        .await
        .map_err(|e| InvokeError::Instantiate(e.to_string()))?;
    meters.instantiated(actor, inst.last_actor_ns());
    Ok(inst)
}

/// Invokes `operation` on actor `actor` (an index), on this shard when the
/// actor runs here and on one of its shards otherwise.
// PERFORMANCE_CRITICAL_PATH: every invocation passes here.
pub(crate) async fn invoke(
    actor: usize,
    origin: &str,
    operation: &str,
    payload: &[u8],
    depth: u32,
) -> Result<Vec<u8>, InvokeError> {
    let routed = with_local(|l| {
        if l.shared.placement.runs_on(actor, l.id) {
            return None;
        }
        let turn = l.turn.get();
        l.turn.set(turn.wrapping_add(1));
        let to = l.shared.placement.pick(actor, turn);
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
    actor: usize,
    operation: &str,
    payload: &[u8],
    depth: u32,
) -> Result<Vec<u8>, InvokeError> {
    let (policy, popped) = with_local(|l| {
        let policy = l.shared.actors[actor].instances;
        let popped = match policy {
            InstancePolicy::Reuse => l.idle[actor].borrow_mut().pop(),
            InstancePolicy::Fresh => None,
        };
        (policy, popped)
    })
    .ok_or_else(not_a_shard)?;
    let mut inst = match popped {
        Some(i) => i,
        None => instantiate(actor).await?,
    };
    let result = inst.call_at(depth, operation, payload).await;
    with_local(|l| {
        l.meters
            .invoked(actor, inst.last_actor_ns(), result.is_err());
        match &result {
            Err(e) if e.poisons_instance() => {
                tracing::warn!(actor = %l.shared.actors[actor].key, "discarding instance: {e}");
            }
            _ if policy == InstancePolicy::Reuse => l.idle[actor].borrow_mut().push(inst),
            _ => {}
        }
    });
    result.map_err(InvokeError::Call)
}

/// Runs invocations that other shards send here until the mesh closes.
pub(crate) async fn serve_mailbox(mut mailbox: Mailbox<CrossCall>) {
    while let Some(call) = mailbox.recv_spinning().await {
        with_local(|l| l.meters.received_cross_shard());
        wascc_scheduler::spawn_local(async move {
            let _in_flight = InFlight::new();
            let e = call.envelope.open();
            let result = invoke_here(call.actor, e.operation(), e.payload(), e.depth()).await;
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
            l.shared.by_key.get(&call.namespace).copied(),
            l.shared.remote.get().cloned(),
        )
    })
    .ok_or_else(|| not_a_shard().to_string())?;
    let target = match (target, remote) {
        (Some(t), _) => t,
        // Not here: whichever host of the lattice runs it.
        (None, Some(rpc)) => {
            return rpc
                .call_actor(&call.actor, &call.namespace, &call.operation, call.payload)
                .await;
        }
        (None, None) => {
            return Err(format!(
                "actor {} is not running on this host",
                call.namespace
            ));
        }
    };
    invoke(target, &call.actor, &call.operation, &call.payload, depth)
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
    ) -> Result<oneshot::Receiver<Result<Vec<u8>, InvokeError>>, String> {
        let shared = self
            .target
            .load_full()
            .ok_or_else(|| "the host is not serving".to_string())?;
        let index = *shared
            .by_key
            .get(actor)
            .ok_or_else(|| format!("actor {actor} does not run on this host"))?;
        let payload = if shape {
            std::borrow::Cow::Owned(
                shared.actors[index]
                    .profile
                    .shape(payload.into_owned())
                    .map_err(|e| e.to_string())?,
            )
        } else {
            payload
        };
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let to = shared.placement.pick(index, turn);
        shared
            .send_invocation(to, index, origin, operation, &payload, 0)
            .map_err(|e| e.to_string())
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
    ) -> wascc_lattice::rpc::ReplyFuture {
        let sent = self.send(origin, actor, operation, payload.into(), false);
        Box::pin(async move {
            sent?
                .await
                .map_err(|_| "the actor's shard stopped".to_string())?
                .map_err(|e| e.to_string())
        })
    }
}

impl wascc_contracts::ActorDispatcher for HostDispatcher {
    fn dispatch(
        &self,
        actor: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> wascc_contracts::ReplyFuture {
        use wascc_contracts::ProviderError;
        let sent = self.send("provider", actor, operation, payload.into(), true);
        Box::pin(async move {
            let rx = sent.map_err(ProviderError)?;
            rx.await
                .map_err(|_| ProviderError("the actor's shard stopped".into()))?
                .map_err(|e| ProviderError(e.to_string()))
        })
    }
}
