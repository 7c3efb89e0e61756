//! The `wascc:http_client` client.

use crate::{HandlerResult, host_call};
use wascc_contracts::http::client::{CAPABILITY_ID, OP_PERFORM_REQUEST};
use wascc_contracts::http::{Request, Response};
use wascc_contracts::{decode, encode};

/// Performs `method` on the absolute `url` with `body` through the binding
/// `binding`.
pub fn request(binding: &str, method: &str, url: &str, body: &[u8]) -> HandlerResult<Response> {
    let reply = host_call(
        binding,
        CAPABILITY_ID,
        OP_PERFORM_REQUEST,
        &encode(&Request {
            method: method.into(),
            path: url.into(),
            body: body.to_vec(),
            ..Default::default()
        })?,
    )?;
    Ok(decode(&reply)?)
}
