//! `wascc:http_server`: HTTP requests delivered to actors.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The capability id of the HTTP server.
pub const CAPABILITY_ID: &str = "wascc:http_server";
/// Delivered to an actor for each HTTP request.
pub const OP_HANDLE_REQUEST: &str = "HandleRequest";

/// An HTTP request as an actor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The method, upper case (`GET`).
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string without the leading `?`.
    #[serde(alias = "query_string")]
    pub query_string: String,
    /// Header names (lower case) to values; repeated headers joined by `,`.
    #[serde(default)]
    pub header: HashMap<String, String>,
    /// The body.
    #[serde(default, with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// An HTTP response returned by an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The status code.
    #[serde(alias = "status_code")]
    pub status_code: u32,
    /// The reason phrase.
    #[serde(default)]
    pub status: String,
    /// Headers to send.
    #[serde(default)]
    pub header: HashMap<String, String>,
    /// The body.
    #[serde(default, with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Response {
    /// A 200 response with a JSON body.
    pub fn json(body: Vec<u8>) -> Self {
        let mut header = HashMap::new();
        header.insert("content-type".to_string(), "application/json".to_string());
        Response {
            status_code: 200,
            status: "OK".into(),
            header,
            body,
        }
    }

    /// A response with a status, a reason and a plain-text body.
    pub fn with_status(status_code: u32, status: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status_code,
            status: status.into(),
            header: HashMap::new(),
            body: body.into(),
        }
    }
}

/// Header names to values as a [`Request`] or [`Response`] carries them:
/// repeated headers joined by `,`, values that are not UTF-8 made lossy.
pub fn join_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> HashMap<String, String> {
    let mut joined = HashMap::with_capacity(headers.size_hint().0);
    for (name, value) in headers {
        let v = String::from_utf8_lossy(value).into_owned();
        joined
            .entry(name.to_string())
            .and_modify(|e: &mut String| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    joined
}

/// `wascc:http_client`: outbound HTTP requests made by actors.
pub mod client {
    /// The capability id of the HTTP client.
    pub const CAPABILITY_ID: &str = "wascc:http_client";
    /// Perform a [`Request`](super::Request) whose `path` is the absolute URL
    /// (`http://host:port/path`); the reply is a [`Response`](super::Response).
    pub const OP_PERFORM_REQUEST: &str = "PerformRequest";
}
