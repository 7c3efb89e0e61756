//! The `wascc:extras` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::extras::*;
use wascc_contracts::{decode, encode};

fn call(binding: &str, op: &str, req: GeneratorRequest) -> HandlerResult<GeneratorResult> {
    Ok(decode(&host_call(
        binding,
        CAPABILITY_ID,
        op,
        &encode(&req)?,
    )?)?)
}

/// A fresh v4 GUID.
pub fn guid(binding: &str) -> HandlerResult<String> {
    let r = call(
        binding,
        OP_REQUEST_GUID,
        GeneratorRequest {
            guid: true,
            ..Default::default()
        },
    )?;
    r.guid.ok_or_else(|| "extras returned no guid".into())
}

/// A random number in `min..=max`.
pub fn random(binding: &str, min: u32, max: u32) -> HandlerResult<u32> {
    Ok(call(
        binding,
        OP_REQUEST_RANDOM,
        GeneratorRequest {
            random: true,
            min,
            max,
            ..Default::default()
        },
    )?
    .random_number)
}

/// The next number of this actor's sequence.
pub fn sequence(binding: &str) -> HandlerResult<u64> {
    Ok(call(
        binding,
        OP_REQUEST_SEQUENCE,
        GeneratorRequest {
            sequence: true,
            ..Default::default()
        },
    )?
    .sequence_number)
}
