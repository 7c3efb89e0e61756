//! The waSCC host: verifies actors' claims, loads them on an engine, binds
//! them to capability providers, authorizes and dispatches their host calls,
//! and serves HTTP to them. The `wascc-host` binary is its front door.
//!
//! Not for: executing wasm (that is `wascc-engines`), shard mechanics (that
//! is `wascc-scheduler`) or talking to other hosts (that is `wascc-lattice`).

mod actors;
mod control;
pub mod dispatch;
mod error;
pub mod host;
pub mod http;
mod http_server;
mod inbound;
pub mod limits;
pub mod manifest;
pub mod metrics;
pub mod placement;
mod portable;
mod providers;
mod shard;

pub use control::ActorSummary;
pub use error::RuntimeError;
pub use host::{Host, HostOptions, RunOptions};
pub use http_server::HttpBinding;
pub use manifest::Manifest;
pub use providers::{BindingInfo, HostControl, ProviderInfo};
pub use shard::InvokeError;

/// The lattice, once the host has joined one (shared by the shards, the
/// actors' handlers and the control API).
pub(crate) type Remote =
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<wascc_lattice::rpc::Rpc>>>;

/// Reads a whole file of at most `max` bytes; the error says why, for the
/// caller to put beside the file's name.
pub(crate) fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
}
