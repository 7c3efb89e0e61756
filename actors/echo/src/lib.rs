//! Echo: answers every HTTP request with a JSON description of it.

use wascc_actor::prelude::*;

actor_handlers! { http::OP_HANDLE_REQUEST => echo }

fn echo(req: http::Request) -> HandlerResult<http::Response> {
    let body = serde_json::json!({
        "method": req.method,
        "path": req.path,
        "query_string": req.query_string,
        "headers": req.header,
        "body": String::from_utf8_lossy(&req.body),
    });
    Ok(http::Response::json(serde_json::to_vec(&body)?))
}
