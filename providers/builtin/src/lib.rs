//! In-process capability providers that every waSCC host carries:
//! `wascc:logging` into the host's log, and `wascc:extras` (GUIDs, random
//! numbers, sequences).
//!
//! Not for: anything that talks to an external service (those are provider
//! crates of their own) or the HTTP server (it lives on the host's shards).

mod extras;
mod logging;

pub use extras::ExtrasProvider;
pub use logging::LoggingProvider;

use wascc_contracts::ProviderError;

fn unknown_operation(capability: &str, operation: &str) -> ProviderError {
    ProviderError(format!(
        "capability {capability} has no operation {operation:?}"
    ))
}
