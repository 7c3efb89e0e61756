//! Write waSCC actors in Rust: the guest half of the waPC ABI, handler
//! dispatch, and typed clients for the waSCC capabilities.
//!
//! ```ignore
//! use wascc_actor::prelude::*;
//! actor_handlers! { http::OP_HANDLE_REQUEST => hello }
//! fn hello(_req: http::Request) -> HandlerResult<http::Response> {
//!     Ok(http::Response::json(b"{\"hello\":\"world\"}".to_vec()))
//! }
//! ```
//!
//! This crate is the one place outside `engines` and `scheduler` with
//! `unsafe`: a guest has no other way to reach the waPC imports.

pub mod arena;
pub mod extras;
pub mod http_client;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub mod provider;

pub use wascc_contracts as contracts;

/// The result of a handler.
pub type HandlerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What most actors need.
pub mod prelude {
    pub use crate::{HandlerResult, actor_handlers, console_log, host_call, raw_actor_handlers};
    pub use wascc_contracts::{
        extras as extras_contract, http, keyvalue as keyvalue_contract,
        logging as logging_contract, messaging,
    };
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wapc")]
unsafe extern "C" {
    fn __guest_request(op_ptr: *mut u8, msg_ptr: *mut u8);
    fn __guest_response(ptr: *const u8, len: usize);
    fn __guest_error(ptr: *const u8, len: usize);
    fn __host_call(
        bd_ptr: *const u8,
        bd_len: usize,
        ns_ptr: *const u8,
        ns_len: usize,
        op_ptr: *const u8,
        op_len: usize,
        ptr: *const u8,
        len: usize,
    ) -> usize;
    fn __host_response_len() -> usize;
    fn __host_response(ptr: *mut u8);
    fn __host_error_len() -> usize;
    fn __host_error(ptr: *mut u8);
    fn __console_log(ptr: *const u8, len: usize);
}

/// Calls the host: `binding` (`"default"` unless named), `namespace` (a
/// capability id), `operation`, MessagePack `payload`.
#[cfg(target_arch = "wasm32")]
pub fn host_call(
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> HandlerResult<Vec<u8>> {
    // SAFETY: every pointer/length pair describes a live slice for the whole
    // call; the host copies from them and writes only into the buffers we
    // size from `__host_response_len` / `__host_error_len` just before.
    unsafe {
        let ok = __host_call(
            binding.as_ptr(),
            binding.len(),
            namespace.as_ptr(),
            namespace.len(),
            operation.as_ptr(),
            operation.len(),
            payload.as_ptr(),
            payload.len(),
        );
        if ok == 1 {
            let mut buf = vec![0u8; __host_response_len()];
            __host_response(buf.as_mut_ptr());
            Ok(buf)
        } else {
            let mut buf = vec![0u8; __host_error_len()];
            __host_error(buf.as_mut_ptr());
            Err(String::from_utf8_lossy(&buf).into_owned().into())
        }
    }
}

/// Writes a line to the host's log through `__console_log`.
#[cfg(target_arch = "wasm32")]
pub fn console_log(message: &str) {
    // SAFETY: the slice is live for the call; the host only reads it.
    unsafe { __console_log(message.as_ptr(), message.len()) }
}

/// Host stand-ins so the SDK compiles (and its pure parts test) off wasm.
#[cfg(not(target_arch = "wasm32"))]
pub fn host_call(_: &str, namespace: &str, _: &str, _: &[u8]) -> HandlerResult<Vec<u8>> {
    Err(format!("host calls ({namespace}) exist only inside a waSCC host").into())
}

/// Host stand-in: prints to stderr.
#[cfg(not(target_arch = "wasm32"))]
pub fn console_log(message: &str) {
    eprintln!("{message}");
}

/// Runs one `__guest_call`: fetches the operation and message, dispatches,
/// and hands the reply or the error back. Used by [`actor_handlers!`].
#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub fn __guest_call(
    op_len: i32,
    msg_len: i32,
    dispatch: fn(&str, &[u8]) -> HandlerResult<Vec<u8>>,
) -> i32 {
    let mut op = vec![0u8; op_len as usize];
    let mut msg = vec![0u8; msg_len as usize];
    // SAFETY: both buffers have exactly the lengths the host announced.
    unsafe { __guest_request(op.as_mut_ptr(), msg.as_mut_ptr()) };
    let result = match std::str::from_utf8(&op) {
        Ok(op) => dispatch(op, &msg),
        Err(_) => Err("operation name is not utf-8".into()),
    };
    match result {
        Ok(reply) => {
            // SAFETY: the slice is live for the call; the host copies it.
            unsafe { __guest_response(reply.as_ptr(), reply.len()) };
            1
        }
        Err(e) => {
            let e = e.to_string();
            // SAFETY: as above.
            unsafe { __guest_error(e.as_ptr(), e.len()) };
            0
        }
    }
}

/// Decodes a request, runs a typed handler, encodes its reply.
#[doc(hidden)]
pub fn __typed<Req, Resp>(
    handler: fn(Req) -> HandlerResult<Resp>,
    msg: &[u8],
) -> HandlerResult<Vec<u8>>
where
    Req: for<'de> serde::Deserialize<'de>,
    Resp: serde::Serialize,
{
    let req: Req = wascc_contracts::decode(msg)?;
    Ok(wascc_contracts::encode(&handler(req)?)?)
}

/// The module's entry point around a `dispatch(op, msg)` function: marks the
/// module as built with this SDK (custom section `wascc_sdk`, so the host
/// sends it the current codec shape) and exports `__guest_call`. Used by
/// [`actor_handlers!`] and [`raw_actor_handlers!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __actor_entry {
    ($dispatch:item) => {
        #[unsafe(link_section = "wascc_sdk")]
        #[used]
        static __WASCC_SDK_MARKER: [u8; 5] = *b"0.1.0";

        #[cfg(target_arch = "wasm32")]
        #[unsafe(no_mangle)]
        pub extern "C" fn __guest_call(op_len: i32, msg_len: i32) -> i32 {
            $dispatch
            $crate::__guest_call(op_len, msg_len, dispatch)
        }
    };
}

/// Like [`actor_handlers!`], for handlers that take and return the raw
/// MessagePack bytes (`fn(&[u8]) -> HandlerResult<Vec<u8>>`): for actors
/// that decode with [`contracts::http_wire`] instead of serde, to stay small.
#[macro_export]
macro_rules! raw_actor_handlers {
    ($($op:expr => $handler:path),* $(,)?) => {
        $crate::__actor_entry! {
            fn dispatch(op: &str, msg: &[u8]) -> $crate::HandlerResult<Vec<u8>> {
                $(if op == $op {
                    return $handler(msg);
                })*
                Err("actor has no handler for this operation".into())
            }
        }
    };
}

/// Declares the actor's handlers: `OPERATION => handler` pairs, where a
/// handler is `fn(Request) -> HandlerResult<Response>` over contract types.
/// Also marks the module as built with this SDK (custom section
/// `wascc_sdk`), so the host sends it the current codec shape.
#[macro_export]
macro_rules! actor_handlers {
    ($($op:expr => $handler:path),* $(,)?) => {
        $crate::__actor_entry! {
            fn dispatch(op: &str, msg: &[u8]) -> $crate::HandlerResult<Vec<u8>> {
                $(if op == $op {
                    return $crate::__typed($handler, msg);
                })*
                Err(format!("actor has no handler for operation {op:?}").into())
            }
        }
    };
}
