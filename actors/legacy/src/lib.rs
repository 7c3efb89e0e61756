//! An actor that speaks the way waSCC codec 0.5 actors did: its own structs
//! with snake_case names, written as positional MessagePack arrays, bytes as
//! sequences of integers, and no `wascc_sdk` marker, so the host treats it
//! as any 0.x actor and sends it the compat shape. It counts requests per
//! path through `wascc:keyvalue` and echoes what it decoded.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wascc_actor::{HandlerResult, host_call};

#[derive(Deserialize)]
struct Request {
    method: String,
    path: String,
    query_string: String,
    #[allow(dead_code, reason = "declared as codec 0.5 declared it")]
    header: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Serialize)]
struct Response {
    status_code: u32,
    status: String,
    header: HashMap<String, String>,
    body: Vec<u8>,
}

#[derive(Serialize)]
struct AddRequest {
    key: String,
    value: i32,
}

#[derive(Deserialize)]
struct AddResponse {
    value: i32,
}

/// The waPC entry point, without the SDK's dispatch macro (and its marker).
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
pub extern "C" fn __guest_call(op_len: i32, msg_len: i32) -> i32 {
    wascc_actor::__guest_call(op_len, msg_len, dispatch)
}

#[cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "reached only through __guest_call")
)]
fn dispatch(op: &str, msg: &[u8]) -> HandlerResult<Vec<u8>> {
    if op != "HandleRequest" {
        return Err(format!("bad dispatch: {op}").into());
    }
    let req: Request = rmp_serde::from_slice(msg)?;
    let add = rmp_serde::to_vec(&AddRequest {
        key: format!("legacy:{}", req.path),
        value: 1,
    })?;
    let reply: AddResponse =
        rmp_serde::from_slice(&host_call("default", "wascc:keyvalue", "Add", &add)?)?;
    let body = serde_json::to_vec(&serde_json::json!({
        "count": reply.value,
        "method": req.method,
        "query_string": req.query_string,
        "body": req.body,
    }))?;
    let resp = Response {
        status_code: 200,
        status: "OK".into(),
        header: HashMap::new(),
        body,
    };
    Ok(rmp_serde::to_vec(&resp)?)
}
