//! The `wascc:logging` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::encode;
use wascc_contracts::logging::{CAPABILITY_ID, OP_LOG, WriteLogRequest};

pub use wascc_contracts::logging::level;

/// Writes `body` at `level` through the logging binding `binding`.
pub fn write(binding: &str, level: u32, body: &str) -> HandlerResult<()> {
    write_fields(binding, level, body, &[])
}

/// Writes `body` at `level` with structured `fields` (`("order", "42")`),
/// which the host renders as `key=value` beside the line.
pub fn write_fields(
    binding: &str,
    level: u32,
    body: &str,
    fields: &[(&str, &str)],
) -> HandlerResult<()> {
    host_call(
        binding,
        CAPABILITY_ID,
        OP_LOG,
        &encode(&WriteLogRequest {
            level,
            body: body.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })?,
    )?;
    Ok(())
}

/// Writes at info level through the `default` binding.
pub fn info(body: &str) -> HandlerResult<()> {
    write("default", level::INFO, body)
}
