//! Echo: answers every HTTP request with a JSON description of it.
//!
//! Written for density as much as for demonstration: the request is decoded
//! and the reply encoded without serde ([`http_wire`]), the JSON is written
//! by hand, the heap is an arena and the stack 16 KiB (see `build.rs`), so
//! the module carries little code and data and an idle instance touches few
//! pages of memory.

use wascc_actor::contracts::http_wire;
use wascc_actor::prelude::*;

raw_actor_handlers! { http::OP_HANDLE_REQUEST => handle }

fn handle(msg: &[u8]) -> HandlerResult<Vec<u8>> {
    let req = http_wire::decode_request(msg)?;
    let mut out = Vec::new();
    http_wire::encode_response(&echo(req), &mut out);
    Ok(out)
}

// Echo keeps nothing on the heap between requests.
wascc_actor::use_arena_allocator!();

fn echo(req: http::Request) -> http::Response {
    let mut out = String::with_capacity(96 + req.path.len() + req.body.len());
    out.push_str("{\"method\":");
    quote(&mut out, &req.method);
    out.push_str(",\"path\":");
    quote(&mut out, &req.path);
    out.push_str(",\"query_string\":");
    quote(&mut out, &req.query_string);
    out.push_str(",\"headers\":{");
    let mut headers: Vec<_> = req.header.iter().collect();
    headers.sort_unstable();
    for (i, (k, v)) in headers.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(&mut out, k);
        out.push(':');
        quote(&mut out, v);
    }
    out.push_str("},\"body\":");
    quote(&mut out, &String::from_utf8_lossy(&req.body));
    out.push('}');
    http::Response::json(out.into_bytes())
}

/// Writes `s` as a JSON string.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
