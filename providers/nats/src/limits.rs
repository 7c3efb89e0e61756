//! Limits of the NATS messaging provider, each with its reason.

use std::time::Duration;

/// Time to reach the server when an actor is bound: an address that does not
/// answer by then fails the binding with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest pause between reconnection attempts (they start at 50 ms and
/// grow): a restarted server is found again within about a second.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(1000);

/// A request whose message gives no timeout waits this long for its reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest a request may wait, whatever the actor asks: the actor's call is
/// held for as long, and its own deadline is 2 s by default.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
