//! The interface of an in-process capability provider.

use std::collections::HashMap;

/// Why a provider refused or failed a call. The message goes back to the
/// actor as its host error, so it names the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError(pub String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProviderError {}

impl From<crate::CodecError> for ProviderError {
    fn from(e: crate::CodecError) -> Self {
        ProviderError(e.to_string())
    }
}

/// A capability provider living in the host process. Calls arrive already
/// authorized (the actor's claims list the capability and a binding exists).
pub trait CapabilityProvider: Send + Sync {
    /// The capability id this provider implements (`wascc:keyvalue`).
    fn capability_id(&self) -> &'static str;

    /// A human-readable name for logs.
    fn name(&self) -> &'static str;

    /// An actor was bound to this provider under `binding` with `values`.
    /// Providers that keep nothing per binding accept every binding.
    fn bind_actor(
        &self,
        _actor: &str,
        _binding: &str,
        _values: &HashMap<String, String>,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The actor's binding was removed; drop what the provider keeps for it.
    fn remove_actor(&self, _actor: &str, _binding: &str) {}

    /// An actor's `__host_call`. Returns the MessagePack reply.
    fn handle_call(
        &self,
        actor: &str,
        binding: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, ProviderError>;
}
