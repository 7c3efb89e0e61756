//! `wascc:logging`: log lines written by actors.

use serde::{Deserialize, Serialize};

/// The capability id of logging.
pub const CAPABILITY_ID: &str = "wascc:logging";
/// Write one log line.
pub const OP_LOG: &str = "WriteLog";

/// Level numbers of `WriteLogRequest::level`.
pub mod level {
    /// Error.
    pub const ERROR: u32 = 1;
    /// Warning.
    pub const WARN: u32 = 2;
    /// Information.
    pub const INFO: u32 = 3;
    /// Debugging detail.
    pub const DEBUG: u32 = 4;
    /// Tracing detail.
    pub const TRACE: u32 = 5;
}

/// `WriteLog` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WriteLogRequest {
    /// One of [`level`].
    pub level: u32,
    /// The line.
    pub body: String,
    /// Structured fields (`order_id` → `42`), in the order the actor gave
    /// them. A waSCC 1.0 extension: 0.x actors send none, and 0.x providers
    /// ignore the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
}
