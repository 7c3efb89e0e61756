//! wasm execution for waSCC: wasmtime engines with pooled instance memory,
//! the waPC host ABI, compiled-module and precompiled (`.cwasm`) caches, and
//! epoch-based deadlines.
//!
//! This is the only crate that names wasmtime. It knows nothing of claims,
//! bindings, providers or the network: a host call leaves through the
//! [`HostHandler`] trait and the embedder decides what it means.
//!
//! Engine kinds ([`EngineKind`]): `jit` compiles with Cranelift; `interp`
//! runs wasmtime's Pulley interpreter (portable, no native code generation);
//! `aot` is `jit` plus a precompiled-module cache on disk reused across
//! restarts; `constrained` is `jit` with fuel metering and tight memory and
//! table limits.
//!
//! Portable capability providers are waPC modules too, built for WASI
//! preview 1: [`Engine::load_wasi`] links them with a WASI that maps nothing
//! of the machine ([`WasiConfig`]).

mod engine;
mod error;
pub mod limits;
pub mod meter;
mod wapc;
mod wasi;

pub use engine::{ActorModule, Engine, EngineConfig, EngineKind};
pub use error::{CallError, EngineError};
pub use wapc::{HostCall, HostHandler, HostReply, WapcInstance};
pub use wasi::WasiConfig;
