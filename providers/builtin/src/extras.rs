use rand::Rng;
use std::collections::HashMap;
use std::sync::Mutex;
use wascc_contracts::extras::*;
use wascc_contracts::{
    BindingRef, CapabilityProvider, ProviderError, ProviderReply, decode, encode,
};

/// `wascc:extras`: v4 GUIDs, random numbers in a range, and one monotonic
/// sequence per actor and binding (starting at 0).
#[derive(Debug, Default)]
pub struct ExtrasProvider {
    sequences: Mutex<HashMap<(String, String), u64>>,
}

impl CapabilityProvider for ExtrasProvider {
    fn capability_id(&self) -> &str {
        CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "waSCC built-in extras"
    }

    fn remove_actor(&self, b: BindingRef<'_>) {
        let mut seqs = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        seqs.remove(&(b.actor.to_string(), b.binding.to_string()));
    }

    fn handle_call(&self, b: BindingRef<'_>, op: &str, payload: &[u8]) -> ProviderReply {
        ProviderReply::Ready(self.generate(b, op, payload))
    }
}

impl ExtrasProvider {
    fn generate(
        &self,
        b: BindingRef<'_>,
        op: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let req: GeneratorRequest = decode(payload)?;
        let mut result = GeneratorResult::default();
        match op {
            OP_REQUEST_GUID => result.guid = Some(uuid::Uuid::new_v4().to_string()),
            OP_REQUEST_RANDOM => {
                if req.min > req.max {
                    return Err(ProviderError(format!(
                        "random range is empty: min {} is greater than max {}",
                        req.min, req.max
                    )));
                }
                result.random_number = rand::rng().random_range(req.min..=req.max);
            }
            OP_REQUEST_SEQUENCE => {
                let mut seqs = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
                let next = seqs
                    .entry((b.actor.to_string(), b.binding.to_string()))
                    .or_insert(0);
                result.sequence_number = *next;
                *next += 1;
            }
            other => return Err(crate::unknown_operation(CAPABILITY_ID, other)),
        }
        Ok(encode(&result)?)
    }
}
