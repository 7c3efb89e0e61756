//! The `wascc:messaging` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::messaging::*;
use wascc_contracts::{decode, encode};

/// Publishes `body` on `subject` (with `reply_to`, empty for none) through
/// the messaging binding `binding`.
pub fn publish(binding: &str, subject: &str, reply_to: &str, body: &[u8]) -> HandlerResult<()> {
    let reply = host_call(
        binding,
        CAPABILITY_ID,
        OP_PUBLISH_MESSAGE,
        &encode(&BrokerMessage {
            subject: subject.into(),
            reply_to: reply_to.into(),
            body: body.to_vec(),
        })?,
    )?;
    let r: PublishResponse = decode(&reply)?;
    if r.published {
        Ok(())
    } else {
        Err(format!("message on {subject} was not published").into())
    }
}

/// Sends `body` on `subject` and waits up to `timeout_ms` for one reply,
/// returning its payload.
pub fn request(
    binding: &str,
    subject: &str,
    body: &[u8],
    timeout_ms: i64,
) -> HandlerResult<Vec<u8>> {
    host_call(
        binding,
        CAPABILITY_ID,
        OP_PERFORM_REQUEST,
        &encode(&RequestMessage {
            subject: subject.into(),
            body: body.to_vec(),
            timeout_ms,
        })?,
    )
}
