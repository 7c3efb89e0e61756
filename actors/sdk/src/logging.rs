//! The `wascc:logging` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::encode;
use wascc_contracts::logging::{CAPABILITY_ID, OP_LOG, WriteLogRequest};

pub use wascc_contracts::logging::level;

/// Writes `body` at `level` through the logging binding `binding`.
pub fn write(binding: &str, level: u32, body: &str) -> HandlerResult<()> {
    host_call(
        binding,
        CAPABILITY_ID,
        OP_LOG,
        &encode(&WriteLogRequest {
            level,
            body: body.into(),
        })?,
    )?;
    Ok(())
}

/// Writes at info level through the `default` binding.
pub fn info(body: &str) -> HandlerResult<()> {
    write("default", level::INFO, body)
}
