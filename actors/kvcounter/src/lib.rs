//! Key-value counter: increments a counter keyed by the request path and
//! returns it as JSON.

use wascc_actor::keyvalue;
use wascc_actor::prelude::*;

actor_handlers! { http::OP_HANDLE_REQUEST => count }

fn count(req: http::Request) -> HandlerResult<http::Response> {
    let key = format!("counter:{}", req.path.replace('/', ":"));
    let value = keyvalue::default().atomic_add(&key, 1)?;
    Ok(http::Response::json(serde_json::to_vec(
        &serde_json::json!({ "counter": value }),
    )?))
}
