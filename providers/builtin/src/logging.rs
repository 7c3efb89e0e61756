use wascc_contracts::logging::{CAPABILITY_ID, OP_LOG, WriteLogRequest, level};
use wascc_contracts::{CapabilityProvider, ProviderError, decode};

/// `wascc:logging` into the host's `tracing` log, each line tagged with the
/// actor's key under the target `actor`.
#[derive(Debug, Default)]
pub struct LoggingProvider;

impl CapabilityProvider for LoggingProvider {
    fn capability_id(&self) -> &'static str {
        CAPABILITY_ID
    }

    fn name(&self) -> &'static str {
        "waSCC built-in logging"
    }

    fn handle_call(
        &self,
        actor: &str,
        _binding: &str,
        op: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        if op != OP_LOG {
            return Err(crate::unknown_operation(CAPABILITY_ID, op));
        }
        let req: WriteLogRequest = decode(payload)?;
        let body = req.body.as_str();
        match req.level {
            level::ERROR => tracing::error!(target: "actor", actor, "{body}"),
            level::WARN => tracing::warn!(target: "actor", actor, "{body}"),
            level::INFO => tracing::info!(target: "actor", actor, "{body}"),
            level::DEBUG => tracing::debug!(target: "actor", actor, "{body}"),
            level::TRACE => tracing::trace!(target: "actor", actor, "{body}"),
            other => {
                return Err(ProviderError(format!(
                    "log level {other} is not one of 1 (error) to 5 (trace)"
                )));
            }
        }
        Ok(Vec::new())
    }
}
