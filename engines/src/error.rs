use std::time::Duration;
use thiserror::Error;

/// Errors of loading modules and building engines.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The engine configuration was refused by wasmtime.
    #[error("cannot build the {kind} engine: {reason}")]
    Config {
        /// The engine kind.
        kind: &'static str,
        /// wasmtime's reason.
        reason: String,
    },
    /// The bytes are not a valid wasm module (or cannot be compiled).
    #[error("invalid wasm module: {0}")]
    InvalidModule(String),
    /// The module imports something the waPC host does not provide, or lacks
    /// a required export.
    #[error("module is not a waPC actor: {0}")]
    NotWapc(String),
    /// Instantiation failed (pool exhausted, start function trapped, …).
    #[error("cannot instantiate actor {actor}: {reason}")]
    Instantiate {
        /// The actor's key.
        actor: String,
        /// The reason.
        reason: String,
    },
    /// The precompiled-module cache could not be used.
    #[error("aot cache {path}: {reason}")]
    AotCache {
        /// The file or directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An unknown engine kind was named.
    #[error("unknown engine kind {0:?}: expected jit, interp, aot or constrained")]
    UnknownKind(String),
}

/// Errors of one waPC invocation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The guest reported an error through `__guest_error` (or returned 0).
    /// The instance is still usable.
    #[error("actor returned an error: {0}")]
    Guest(String),
    /// The guest trapped; the instance must be discarded.
    #[error("actor trapped: {0}")]
    Trap(String),
    /// The invocation ran past its deadline and was interrupted; the
    /// instance must be discarded.
    #[error("actor exceeded its deadline of {0:?} and was interrupted")]
    Deadline(Duration),
    /// The invocation burnt all its fuel; the instance must be discarded.
    #[error("actor exhausted its fuel ({0} units) and was stopped")]
    OutOfFuel(u64),
}

impl CallError {
    /// Whether the instance that produced this error may be used again.
    pub fn poisons_instance(&self) -> bool {
        !matches!(self, CallError::Guest(_))
    }
}
