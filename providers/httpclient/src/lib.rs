//! `wascc:http_client` for waSCC: actors make outbound HTTP/1.1 requests
//! (pooled keep-alive connections on the host's services runtime), each
//! bounded by the binding's timeout and response size limit.
//!
//! Not for: HTTPS (no TLS stack is linked yet: such a URL is refused with a
//! clear error), or serving HTTP (the host's shards do that).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::time::Duration;
use wascc_contracts::http::client::{CAPABILITY_ID, OP_PERFORM_REQUEST};
use wascc_contracts::http::{Request, Response};
use wascc_contracts::{
    BindingRef, BindingTable, CapabilityProvider, ProviderError, ProviderFuture, ProviderReply,
    decode, encode, expect_values,
};

/// Binding values this provider reads.
pub mod values {
    /// Milliseconds a request may take, connect to last byte (default 5000).
    pub const TIMEOUT_MS: &str = "TIMEOUT_MS";
    /// Largest response body accepted, in bytes (default 1 MiB).
    pub const MAX_RESPONSE_BYTES: &str = "MAX_RESPONSE_BYTES";
    /// Every value, for error messages.
    pub const ALL: [&str; 2] = [TIMEOUT_MS, MAX_RESPONSE_BYTES];
}

/// Limits, each with its reason.
pub mod limits {
    use std::time::Duration;
    /// A request's time unless the binding says otherwise: long enough for a
    /// slow API, short enough that a dead one frees the actor.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Longest timeout a binding may set: the actor is held for as long.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
    /// A response body's size unless the binding says otherwise: it is
    /// copied into the actor's memory.
    pub const DEFAULT_MAX_RESPONSE: usize = 1 << 20;
    /// Largest limit a binding may set: an actor's memory is 4 GiB at most
    /// and the reply is held twice (host and guest) while delivered.
    pub const MAX_RESPONSE: usize = 64 << 20;
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    timeout: Duration,
    max_response: usize,
}

impl Settings {
    fn read(v: &HashMap<String, String>) -> Result<Settings, ProviderError> {
        expect_values(CAPABILITY_ID, v, &values::ALL)?;
        let timeout = match v.get(values::TIMEOUT_MS) {
            None => limits::DEFAULT_TIMEOUT,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .map(Duration::from_millis)
                .filter(|d| !d.is_zero() && *d <= limits::MAX_TIMEOUT)
                .ok_or_else(|| {
                    ProviderError(format!(
                        "TIMEOUT_MS {s:?} is not a number of milliseconds from 1 to {}",
                        limits::MAX_TIMEOUT.as_millis()
                    ))
                })?,
        };
        let max_response = match v.get(values::MAX_RESPONSE_BYTES) {
            None => limits::DEFAULT_MAX_RESPONSE,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=limits::MAX_RESPONSE).contains(n))
                .ok_or_else(|| {
                    ProviderError(format!(
                        "MAX_RESPONSE_BYTES {s:?} is not a number from 1 to {}",
                        limits::MAX_RESPONSE
                    ))
                })?,
        };
        Ok(Settings {
            timeout,
            max_response,
        })
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The `wascc:http_client` provider.
pub struct HttpClientProvider {
    services: tokio::runtime::Handle,
    client: HttpClient,
    settings: BindingTable<Settings>,
}

impl HttpClientProvider {
    /// A provider whose connections run on `services`.
    pub fn new(services: tokio::runtime::Handle) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(limits::DEFAULT_TIMEOUT));
        connector.set_nodelay(true);
        // The pool's idle timer needs a runtime: build inside the services one.
        let client = {
            let _guard = services.enter();
            Client::builder(TokioExecutor::new()).build(connector)
        };
        HttpClientProvider {
            services,
            client,
            settings: BindingTable::default(),
        }
    }
}

fn bad(msg: String) -> ProviderError {
    ProviderError(msg)
}

fn build_request(req: &Request) -> Result<http::Request<Full<Bytes>>, ProviderError> {
    let mut url = req.path.clone();
    if !req.query_string.is_empty() {
        url.push('?');
        url.push_str(&req.query_string);
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(format!(
                "{url:?}: https is not supported by this host's HTTP client yet"
            )));
        }
        _ => {
            return Err(bad(format!("{url:?} is not an absolute http:// URL")));
        }
    }
    let method = if req.method.is_empty() {
        "GET"
    } else {
        &req.method
    };
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| bad(format!("{:?} is not an HTTP method", req.method)))?;
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in &req.header {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| bad(format!("{k:?} is not a header name")))?;
        let value = http::HeaderValue::from_str(v)
            .map_err(|_| bad(format!("the value of header {k} is not valid")))?;
        b = b.header(name, value);
    }
    b.body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| bad(format!("cannot build the request: {e}")))
}

async fn perform(
    client: HttpClient,
    req: http::Request<Full<Bytes>>,
    s: Settings,
) -> Result<Vec<u8>, ProviderError> {
    let uri = req.uri().clone();
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| bad(format!("request to {uri} failed: {e}")))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, s.max_response)
            .collect()
            .await
            .map_err(|e| {
                bad(format!(
                    "response from {uri}: {e} (the binding's limit is {} bytes)",
                    s.max_response
                ))
            })?
            .to_bytes();
        let header = wascc_contracts::http::join_headers(
            parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes())),
        );
        let r = Response {
            status_code: parts.status.as_u16() as u32,
            status: parts.status.canonical_reason().unwrap_or("").to_string(),
            header,
            body: body.to_vec(),
        };
        Ok(encode(&r)?)
    };
    tokio::time::timeout(s.timeout, work)
        .await
        .map_err(|_| bad(format!("request to {uri} took longer than {:?}", s.timeout)))?
}

impl CapabilityProvider for HttpClientProvider {
    fn capability_id(&self) -> &str {
        CAPABILITY_ID
    }

    fn name(&self) -> &str {
        "waSCC HTTP client"
    }

    fn bind_actor(
        &self,
        b: BindingRef<'_>,
        values: &HashMap<String, String>,
    ) -> ProviderFuture<()> {
        let r = Settings::read(values).map(|s| {
            self.settings.insert(b.actor, b.binding, s);
        });
        wascc_contracts::ready(r)
    }

    fn remove_actor(&self, b: BindingRef<'_>) {
        self.settings.remove(&b);
    }

    fn handle_call(&self, b: BindingRef<'_>, op: &str, payload: &[u8]) -> ProviderReply {
        if op != OP_PERFORM_REQUEST {
            return ProviderReply::Ready(Err(bad(format!(
                "capability {CAPABILITY_ID} has no operation {op:?}"
            ))));
        }
        let Some(s) = self.settings.get(&b) else {
            return ProviderReply::Ready(Err(bad(format!(
                "actor {} has no {CAPABILITY_ID} binding {:?} on this provider",
                b.actor, b.binding
            ))));
        };
        let req = match decode::<Request>(payload)
            .map_err(ProviderError::from)
            .and_then(|r| build_request(&r))
        {
            Ok(r) => r,
            Err(e) => return ProviderReply::Ready(Err(e)),
        };
        ProviderReply::Pending(wascc_contracts::joined(
            "http client",
            self.services.spawn(perform(self.client.clone(), req, s)),
        ))
    }
}
