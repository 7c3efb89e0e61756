//! The waPC host ABI: the nine `wapc` imports, the `__guest_call` export and
//! the state one instance carries between them.

use crate::error::CallError;
use crate::limits::MAX_GUEST_BUFFER;
use crate::meter::Metered;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker, Memory, Store, TypedFunc};

/// One `__host_call` from a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCall {
    /// The calling actor's key.
    pub actor: Arc<str>,
    /// The binding name; an empty one is reported as `default`.
    pub binding: String,
    /// The namespace: a capability id, or another actor's key.
    pub namespace: String,
    /// The operation.
    pub operation: String,
    /// The MessagePack payload.
    pub payload: Vec<u8>,
    /// How deep the calling invocation is (0: called from outside any actor).
    pub depth: u32,
    /// When the calling invocation's deadline passes: it is interrupted
    /// only while it runs wasm, so a call that waits should give up by
    /// then rather than keep the invocation waiting past it.
    pub deadline: Instant,
}

/// The answer to a host call: ready at once (in-process providers, refusals)
/// or later (anything that waits on I/O or another actor).
pub enum HostReply {
    /// Answered without waiting.
    Ready(Result<Vec<u8>, String>),
    /// Answered when the future completes.
    Pending(Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>),
}

/// What the embedder does with a guest's calls out.
pub trait HostHandler: Send + Sync + 'static {
    /// Handles a `__host_call`. `Err` reaches the guest as its host error.
    fn host_call(&self, call: HostCall) -> HostReply;

    /// Handles `__console_log`.
    fn console_log(&self, actor: &str, message: &str);
}

/// The per-instance state behind the waPC imports.
pub(crate) struct WapcState {
    pub(crate) actor: Arc<str>,
    pub(crate) handler: Arc<dyn HostHandler>,
    pub(crate) memory: Option<Memory>,
    op: Vec<u8>,
    msg: Vec<u8>,
    guest_response: Option<Vec<u8>>,
    guest_error: Option<String>,
    host_response: Option<Vec<u8>>,
    host_error: Option<String>,
    /// When the running invocation started, for its deadline.
    pub(crate) call_started: Instant,
    pub(crate) deadline: Duration,
    pub(crate) deadline_hit: bool,
    pub(crate) limits: wasmtime::StoreLimits,
    /// Depth of the running invocation, passed on to its host calls.
    depth: u32,
    /// WASI state of a portable provider (`None` for actors: boxed, so an
    /// actor's store pays one pointer for it).
    pub(crate) wasi: Option<Box<crate::wasi::WasiCtx>>,
}

impl WapcState {
    pub(crate) fn new(
        actor: Arc<str>,
        handler: Arc<dyn HostHandler>,
        deadline: Duration,
        limits: wasmtime::StoreLimits,
    ) -> Self {
        WapcState {
            actor,
            handler,
            memory: None,
            op: Vec::new(),
            msg: Vec::new(),
            guest_response: None,
            guest_error: None,
            host_response: None,
            host_error: None,
            call_started: Instant::now(),
            deadline,
            deadline_hit: false,
            limits,
            depth: 0,
            wasi: None,
        }
    }
}

fn memory(caller: &Caller<'_, WapcState>) -> wasmtime::Result<Memory> {
    caller
        .data()
        .memory
        .ok_or_else(|| wasmtime::Error::msg("actor exports no memory named `memory`"))
}

pub(crate) fn read_guest(
    caller: &Caller<'_, WapcState>,
    ptr: i32,
    len: i32,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > MAX_GUEST_BUFFER {
        return Err(wasmtime::Error::msg(format!(
            "{what} of {len} bytes exceeds the {MAX_GUEST_BUFFER}-byte limit"
        )));
    }
    mem.data(caller)
        .get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            wasmtime::Error::msg(format!("{what} at {ptr}+{len} is outside guest memory"))
        })
}

pub(crate) fn write_guest(
    caller: &mut Caller<'_, WapcState>,
    ptr: i32,
    bytes: &[u8],
    what: &str,
) -> wasmtime::Result<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|_| {
            wasmtime::Error::msg(format!(
                "{what} at {ptr}+{} is outside guest memory",
                bytes.len()
            ))
        })
}

fn utf8(bytes: Vec<u8>, what: &str) -> wasmtime::Result<String> {
    String::from_utf8(bytes).map_err(|_| wasmtime::Error::msg(format!("{what} is not utf-8")))
}

/// Copies the pending host response (or error) selected by `slot` into the
/// guest at `ptr`, keeping it for a repeated read.
fn write_host_reply<B: AsRef<[u8]>>(
    caller: &mut Caller<'_, WapcState>,
    ptr: i32,
    slot: fn(&mut WapcState) -> &mut Option<B>,
    what: &str,
) -> wasmtime::Result<()> {
    let Some(reply) = slot(caller.data_mut()).take() else {
        return Ok(());
    };
    let res = write_guest(caller, ptr, reply.as_ref(), what);
    *slot(caller.data_mut()) = Some(reply);
    res
}

/// Adds the `wapc` imports to a linker.
pub(crate) fn add_to_linker(linker: &mut Linker<WapcState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "wapc",
        "__guest_request",
        |mut caller: Caller<'_, WapcState>, op_ptr: i32, msg_ptr: i32| -> wasmtime::Result<()> {
            let op = std::mem::take(&mut caller.data_mut().op);
            let msg = std::mem::take(&mut caller.data_mut().msg);
            let res = write_guest(&mut caller, op_ptr, &op, "operation buffer")
                .and_then(|_| write_guest(&mut caller, msg_ptr, &msg, "message buffer"));
            let st = caller.data_mut();
            st.op = op;
            st.msg = msg;
            res
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_response",
        |mut caller: Caller<'_, WapcState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&caller, ptr, len, "guest response")?;
            caller.data_mut().guest_response = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__guest_error",
        |mut caller: Caller<'_, WapcState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&caller, ptr, len, "guest error")?;
            caller.data_mut().guest_error = Some(String::from_utf8_lossy(&bytes).into_owned());
            Ok(())
        },
    )?;
    linker.func_wrap_async(
        "wapc",
        "__host_call",
        |mut caller: Caller<'_, WapcState>,
         (bd_ptr, bd_len, ns_ptr, ns_len, op_ptr, op_len, msg_ptr, msg_len): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
            i32,
        )| {
            Box::new(async move {
                let read = |caller: &Caller<'_, WapcState>| -> wasmtime::Result<HostCall> {
                    let binding = utf8(
                        read_guest(caller, bd_ptr, bd_len, "binding name")?,
                        "binding name",
                    )?;
                    Ok(HostCall {
                        actor: caller.data().actor.clone(),
                        binding: if binding.is_empty() {
                            "default".to_string()
                        } else {
                            binding
                        },
                        namespace: utf8(
                            read_guest(caller, ns_ptr, ns_len, "namespace")?,
                            "namespace",
                        )?,
                        operation: utf8(
                            read_guest(caller, op_ptr, op_len, "operation")?,
                            "operation",
                        )?,
                        payload: read_guest(caller, msg_ptr, msg_len, "host call payload")?,
                        depth: caller.data().depth,
                        deadline: caller.data().call_started + caller.data().deadline,
                    })
                };
                let call = read(&caller)?;
                {
                    let st = caller.data_mut();
                    st.host_response = None;
                    st.host_error = None;
                }
                let handler = caller.data().handler.clone();
                let result = match handler.host_call(call) {
                    HostReply::Ready(r) => r,
                    HostReply::Pending(fut) => fut.await,
                };
                let st = caller.data_mut();
                Ok(match result {
                    Ok(bytes) => {
                        st.host_response = Some(bytes);
                        1
                    }
                    Err(e) => {
                        st.host_error = Some(e);
                        0
                    }
                })
            })
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response_len",
        |caller: Caller<'_, WapcState>| -> i32 {
            caller
                .data()
                .host_response
                .as_ref()
                .map_or(0, |r| r.len() as i32)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_response",
        |mut caller: Caller<'_, WapcState>, ptr: i32| -> wasmtime::Result<()> {
            write_host_reply(
                &mut caller,
                ptr,
                |st| &mut st.host_response,
                "host response buffer",
            )
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error_len",
        |caller: Caller<'_, WapcState>| -> i32 {
            caller
                .data()
                .host_error
                .as_ref()
                .map_or(0, |e| e.len() as i32)
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__host_error",
        |mut caller: Caller<'_, WapcState>, ptr: i32| -> wasmtime::Result<()> {
            write_host_reply(
                &mut caller,
                ptr,
                |st| &mut st.host_error,
                "host error buffer",
            )
        },
    )?;
    linker.func_wrap(
        "wapc",
        "__console_log",
        |caller: Caller<'_, WapcState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let bytes = read_guest(&caller, ptr, len, "console log line")?;
            let st = caller.data();
            st.handler
                .console_log(&st.actor, &String::from_utf8_lossy(&bytes));
            Ok(())
        },
    )?;
    Ok(())
}

/// One live, initialized instance of an actor. Calls run one at a time
/// (`&mut self`); after a [`CallError`] that
/// [poisons](CallError::poisons_instance) it, drop the instance.
pub struct WapcInstance {
    pub(crate) store: Store<WapcState>,
    pub(crate) guest_call: TypedFunc<(i32, i32), i32>,
    pub(crate) fuel_per_call: Option<u64>,
    /// Actor time of the last instantiation or call (see [`crate::meter`]).
    pub(crate) last_actor_ns: u64,
}

impl WapcInstance {
    /// The actor's key.
    pub fn actor(&self) -> &str {
        &self.store.data().actor
    }

    /// Actor time (nanoseconds on a core, net of nested invocations) of the
    /// instantiation that made this instance, until the first call; after
    /// that, of the last call.
    pub fn last_actor_ns(&self) -> u64 {
        self.last_actor_ns
    }

    /// Invokes `operation` with `payload` through `__guest_call`, as an
    /// invocation from outside any actor.
    pub async fn call(&mut self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_at(0, operation, payload).await
    }

    /// Invokes `operation` with `payload` through `__guest_call`, `depth`
    /// invocations deep (its host calls report `depth`).
    // PERFORMANCE_CRITICAL_PATH: every invocation passes here. The op and
    // message buffers are reused across calls; the response is moved out.
    pub async fn call_at(
        &mut self,
        depth: u32,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let st = self.store.data_mut();
        st.depth = depth;
        st.op.clear();
        st.op.extend_from_slice(operation.as_bytes());
        st.msg.clear();
        st.msg.extend_from_slice(payload);
        st.guest_response = None;
        st.guest_error = None;
        st.host_response = None;
        st.host_error = None;
        st.call_started = Instant::now();
        st.deadline_hit = false;
        if let Some(fuel) = self.fuel_per_call {
            self.store
                .set_fuel(fuel)
                .map_err(|e| CallError::Trap(e.to_string()))?;
        }
        self.store.set_epoch_deadline(1);
        // Pinned on the stack: no allocation per call.
        let (result, actor_ns) = {
            let call = std::pin::pin!(self.guest_call.call_async(
                &mut self.store,
                (operation.len() as i32, payload.len() as i32),
            ));
            Metered::new(call).await
        };
        self.last_actor_ns = actor_ns;
        let st = self.store.data_mut();
        crate::wasi::flush_output(st, true);
        match result {
            Ok(1) => Ok(st.guest_response.take().unwrap_or_default()),
            Ok(_) => Err(CallError::Guest(st.guest_error.take().unwrap_or_else(
                || "guest call failed without an error message".into(),
            ))),
            Err(e) => Err(classify_trap(e, st, self.fuel_per_call)),
        }
    }
}

fn classify_trap(e: wasmtime::Error, st: &WapcState, fuel: Option<u64>) -> CallError {
    if st.deadline_hit {
        return CallError::Deadline(st.deadline);
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>()
        && *trap == wasmtime::Trap::OutOfFuel
    {
        return CallError::OutOfFuel(fuel.unwrap_or(0));
    }
    CallError::Trap(format!("{e:#}"))
}
