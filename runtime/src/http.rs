//! The built-in `wascc:http_server`: HTTP/1.1 (hyper) on the shard, each
//! request delivered to the bound actor as `HandleRequest`.

use crate::limits::{MAX_HTTP_BODY, SHUTDOWN_POLL};
use crate::shard::{self, InFlight, InvokeError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use wascc_contracts::http::{OP_HANDLE_REQUEST, Request};
use wascc_contracts::{CodecProfile, encode_compat, http_wire};
use wascc_scheduler::net::{Listener, Stream};

/// The actor an HTTP listener delivers to, looked up at each request (it
/// may stop, or stop and start again, while the listener stays).
pub(crate) struct Target {
    /// Its key.
    pub(crate) key: String,
}

/// Accepts connections until `stopping`, serving each with `serve`.
async fn accept_with<S, F>(listener: Listener, stopping: Rc<Cell<bool>>, serve: S)
where
    S: Fn(Stream) -> F,
    F: Future<Output = ()> + 'static,
{
    loop {
        let stop = async {
            while !stopping.get() {
                wascc_scheduler::sleep(SHUTDOWN_POLL).await;
            }
            None
        };
        let accepted =
            futures_lite::future::or(async { Some(listener.accept().await) }, stop).await;
        match accepted {
            None => return,
            Some(Ok(stream)) => wascc_scheduler::spawn_local(serve(stream)),
            Some(Err(e)) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                wascc_scheduler::sleep(SHUTDOWN_POLL).await;
            }
        }
    }
}

/// Serves HTTP/1.1 (keep-alive, pipelining) on one connection.
async fn serve_http<H, F>(stream: Stream, handler: H)
where
    H: Fn(hyper::Request<Incoming>) -> F + 'static,
    F: Future<Output = hyper::Response<Full<Bytes>>> + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let reply = handler(req);
        async move { Ok::<_, std::convert::Infallible>(reply.await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .pipeline_flush(true)
        .serve_connection(stream, service)
        .await
    {
        tracing::debug!("http connection ended: {e}");
    }
}

/// The `wascc:http_server` listener of one actor on this shard.
pub(crate) async fn accept_loop(listener: Listener, target: Rc<Target>, stopping: Rc<Cell<bool>>) {
    accept_with(listener, stopping, move |stream| {
        let target = target.clone();
        serve_http(stream, move |req| {
            let target = target.clone();
            async move { handle(req, &target).await }
        })
    })
    .await
}

/// The metrics endpoint: `GET /metrics` answers `render()` in the
/// Prometheus text format; anything else is 404.
pub(crate) async fn metrics_loop(
    listener: Listener,
    render: Rc<dyn Fn() -> String>,
    stopping: Rc<Cell<bool>>,
) {
    accept_with(listener, stopping, move |stream| {
        let render = render.clone();
        serve_http(stream, move |req| {
            let reply = if req.uri().path() == "/metrics" {
                let mut r = plain(200, render());
                r.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            } else {
                plain(404, "not found: metrics are at /metrics\n".into())
            };
            async move { reply }
        })
    })
    .await
}

fn plain(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

// PERFORMANCE_CRITICAL_PATH: one HTTP request.
async fn handle(req: hyper::Request<Incoming>, target: &Target) -> hyper::Response<Full<Bytes>> {
    let _in_flight = InFlight::new();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_HTTP_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                plain(413, format!("request body exceeds {MAX_HTTP_BODY} bytes\n"))
            } else {
                plain(400, format!("cannot read request body: {e}\n"))
            };
        }
    };
    let header = wascc_contracts::http::join_headers(
        parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query_string: parts.uri.query().unwrap_or("").to_string(),
        header,
        body: body.to_vec(),
    };
    let key = &target.key;
    let actor = shard::find(key);
    let profile = match &actor {
        Some(a) => a.loaded.profile,
        // Elsewhere in the lattice: sent in the current shape, reshaped
        // by the host that runs it.
        None => CodecProfile::Current,
    };
    let payload = match profile {
        CodecProfile::Current => {
            let mut p = Vec::new();
            http_wire::encode_request(&request, &mut p);
            p
        }
        CodecProfile::Compat => match encode_compat(&request) {
            Ok(p) => p,
            Err(e) => {
                return plain(
                    500,
                    format!("cannot encode the request for actor {key}: {e}\n"),
                );
            }
        },
    };
    let reply = match &actor {
        Some(actor) => shard::invoke(actor, "http", OP_HANDLE_REQUEST, &payload, 0).await,
        None => match shard::call_remote_shaped(key, OP_HANDLE_REQUEST, payload) {
            Some(reply) => reply.await.map_err(InvokeError::Route),
            None => Err(InvokeError::Route(format!(
                "actor {key} does not run on this host"
            ))),
        },
    };
    let reply = match reply {
        Ok(r) => r,
        Err(InvokeError::Instantiate(e) | InvokeError::Route(e)) => {
            tracing::error!(actor = %key, "{e}");
            return plain(503, format!("actor {key} is unavailable: {e}\n"));
        }
        Err(InvokeError::Call(e)) => {
            tracing::error!(actor = %key, "request failed: {e}");
            return plain(500, format!("actor {key} failed: {e}\n"));
        }
    };
    let response = match http_wire::decode_response(&reply) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                500,
                format!("actor {key} returned an invalid HTTP response: {e}\n"),
            );
        }
    };
    let Ok(status) = u16::try_from(response.status_code)
        .map_err(|_| ())
        .and_then(|s| hyper::StatusCode::from_u16(s).map_err(|_| ()))
    else {
        return plain(
            500,
            format!(
                "actor {key} returned invalid status code {}\n",
                response.status_code
            ),
        );
    };
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = status;
    for (k, v) in &response.header {
        match (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            (Ok(k), Ok(v)) => {
                out.headers_mut().append(k, v);
            }
            _ => tracing::warn!(actor = %key, header = %k, "dropping invalid response header"),
        }
    }
    out
}
