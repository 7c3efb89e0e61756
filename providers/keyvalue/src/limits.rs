//! Limits of the key-value provider, each with its reason.

use std::time::Duration;

/// Connections per Redis binding unless `POOL_SIZE` says otherwise: each is
/// multiplexed (many operations in flight), so a few keep a 2-core host busy
/// while one slow reply does not hold up every actor.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Most connections one binding may ask for: more only costs the server.
pub const MAX_POOL_SIZE: usize = 64;

/// Time one operation may take unless `TIMEOUT_MS` says otherwise: the actor
/// waits for it, and its own call deadline is 2 s by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Time to connect when an actor is bound: a server that does not answer by
/// then fails the binding with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest pause between reconnection attempts to a Redis that went away.
pub const MAX_RECONNECT_DELAY_MS: u64 = 500;
