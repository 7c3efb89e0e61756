//! The waSCC host: verifies actors' claims, loads them on an engine, binds
//! them to capability providers, authorizes and dispatches their host calls,
//! and serves HTTP to them. The `wascc-host` binary is its front door.
//!
//! Not for: executing wasm (that is `wascc-engines`), shard mechanics (that
//! is `wascc-scheduler`) or talking to other hosts (that is `wascc-lattice`).

pub mod dispatch;
mod error;
pub mod host;
pub mod http;
pub mod limits;
pub mod manifest;

pub use error::RuntimeError;
pub use host::{Host, HostOptions};
pub use manifest::Manifest;
