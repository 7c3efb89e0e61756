//! Capability contracts of waSCC: capability ids, operation names and the
//! message structs that actors and providers exchange, MessagePack-compatible
//! with every waSCC 0.x codec.
//!
//! This crate builds for `wasm32-unknown-unknown` too: the host, the providers
//! and the guest SDK share it. It is *not* the place for transport, dispatch
//! or anything that knows about the host.
//!
//! # Codec drift
//! waSCC 0.x changed its codec twice: 0.5 wrote structs as positional arrays
//! with snake_case names in its sources and bytes as arrays of integers; 0.6
//! wrote maps with camelCase names and bytes as MessagePack `bin`. [`decode`]
//! accepts every shape (serde derive reads maps and arrays; each renamed field
//! carries an alias; `serde_bytes` reads `bin` and arrays). [`encode_compat`]
//! writes what every version decodes: maps carrying both field names and
//! bytes as arrays of integers. [`encode`] writes the 0.6 shape, for peers
//! known to be current.

pub mod core;
pub mod extras;
pub mod http;
pub mod http_wire;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
mod provider;

pub use provider::{
    ActorDispatcher, BindingRef, BindingTable, CapabilityProvider, ProviderContext, ProviderError,
    ProviderFuture, ProviderReply, ReplyFuture, expect_values, joined, no_values_expected, ready,
};

use serde::{Deserialize, Serialize};

/// The binding name used when an actor names none (or an empty one).
pub const DEFAULT_BINDING: &str = "default";

/// An error of the codec, with the type that failed.
#[derive(Debug)]
pub struct CodecError {
    /// What was being encoded or decoded.
    pub what: &'static str,
    /// The underlying reason.
    pub reason: String,
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for CodecError {}

/// Decodes one MessagePack value of type `T`, ignoring bytes after it
/// (some guest toolchains pad their buffers).
pub fn decode<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(buf).map_err(|e| CodecError {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Encodes `T` as waSCC codec 0.6 does: a map with field names, bytes as `bin`.
pub fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(item).map_err(|e| CodecError {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Encodes `T` so that every waSCC 0.x codec decodes it: each map carries the
/// camelCase key and its snake_case twin, and byte strings travel as arrays
/// of integers (0.5 decoded `Vec<u8>` as a sequence and rejects `bin`).
///
/// A decoder with serde aliases (ours) rejects the twins as duplicate fields,
/// so the host sends this shape only to actors not built with our SDK.
pub fn encode_compat<T: Serialize>(item: &T) -> Result<Vec<u8>, CodecError> {
    to_compat(&encode(item)?).map_err(|e| CodecError {
        what: std::any::type_name::<T>(),
        ..e
    })
}

/// Rewrites one value in the 0.6 shape (as [`encode`] writes it) into the
/// shape every 0.x codec decodes; see [`encode_compat`].
pub fn to_compat(named: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(named.len() + named.len() / 2);
    let mut rd = named;
    compat::transcode(&mut rd, &mut out, 0).map_err(|reason| CodecError {
        what: "message",
        reason,
    })?;
    Ok(out)
}

/// Which shape an actor decodes. Chosen per actor when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecProfile {
    /// Any 0.x codec: send [`encode_compat`]'s shape.
    Compat,
    /// Built with this project's SDK (custom section [`SDK_MARKER_SECTION`]):
    /// send [`encode`]'s shape.
    Current,
}

impl CodecProfile {
    /// Turns a message encoded in the current shape into the shape this
    /// profile's actors decode (a no-op for `Current` and for empty messages).
    pub fn shape(self, message: Vec<u8>) -> Result<Vec<u8>, CodecError> {
        match self {
            CodecProfile::Compat if !message.is_empty() => to_compat(&message),
            _ => Ok(message),
        }
    }
}

/// Name of the custom section our guest SDK embeds in every actor.
pub const SDK_MARKER_SECTION: &str = "wascc_sdk";

mod compat {
    //! A streaming MessagePack rewrite used by [`super::encode_compat`]. It
    //! only reads output of our own encoder, so it handles the marker set
    //! rmp-serde writes.

    use rmp::Marker;

    /// Deepest nesting rewritten; contract messages nest three or four levels.
    const MAX_DEPTH: usize = 64;

    pub(super) fn transcode(rd: &mut &[u8], out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let marker = rmp::decode::read_marker(rd).map_err(|_| "truncated value".to_string())?;
        match marker {
            Marker::FixMap(n) => map(rd, out, n as u32, depth),
            Marker::Map16 => {
                let n = take_u16(rd)? as u32;
                map(rd, out, n, depth)
            }
            Marker::Map32 => {
                let n = take_u32(rd)?;
                map(rd, out, n, depth)
            }
            Marker::FixArray(n) => array(rd, out, n as u32, depth),
            Marker::Array16 => {
                let n = take_u16(rd)? as u32;
                array(rd, out, n, depth)
            }
            Marker::Array32 => {
                let n = take_u32(rd)?;
                array(rd, out, n, depth)
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = match marker {
                    Marker::Bin8 => take(rd, 1)?[0] as usize,
                    Marker::Bin16 => take_u16(rd)? as usize,
                    _ => take_u32(rd)? as usize,
                };
                let bytes = take(rd, n)?;
                rmp::encode::write_array_len(out, n as u32).map_err(|e| e.to_string())?;
                for b in bytes {
                    rmp::encode::write_uint(out, u64::from(*b)).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            other => {
                // Scalars and strings: copy the marker and its payload as is.
                let start_len = out.len();
                out.push(other.to_u8());
                let payload = match other {
                    Marker::FixPos(_)
                    | Marker::FixNeg(_)
                    | Marker::Null
                    | Marker::True
                    | Marker::False => 0,
                    Marker::U8 | Marker::I8 => 1,
                    Marker::U16 | Marker::I16 => 2,
                    Marker::U32 | Marker::I32 | Marker::F32 => 4,
                    Marker::U64 | Marker::I64 | Marker::F64 => 8,
                    Marker::FixStr(n) => n as usize,
                    Marker::Str8 => {
                        let n = take(rd, 1)?[0];
                        out.push(n);
                        n as usize
                    }
                    Marker::Str16 => {
                        let n = take_u16(rd)?;
                        out.extend_from_slice(&n.to_be_bytes());
                        n as usize
                    }
                    Marker::Str32 => {
                        let n = take_u32(rd)?;
                        out.extend_from_slice(&n.to_be_bytes());
                        n as usize
                    }
                    _ => {
                        out.truncate(start_len);
                        return Err(format!("unexpected marker {other:?}"));
                    }
                };
                out.extend_from_slice(take(rd, payload)?);
                Ok(())
            }
        }
    }

    fn map(rd: &mut &[u8], out: &mut Vec<u8>, n: u32, depth: usize) -> Result<(), String> {
        // Entries are written to a scratch buffer first: twins change the count.
        let mut body = Vec::new();
        let mut count = 0u32;
        for _ in 0..n {
            let mut key_bytes = Vec::new();
            transcode(rd, &mut key_bytes, depth + 1)?;
            let mut value = Vec::new();
            transcode(rd, &mut value, depth + 1)?;
            let twin = snake_twin(&key_bytes);
            body.extend_from_slice(&key_bytes);
            body.extend_from_slice(&value);
            count += 1;
            if let Some(twin) = twin {
                rmp::encode::write_str(&mut body, &twin).map_err(|e| e.to_string())?;
                body.extend_from_slice(&value);
                count += 1;
            }
        }
        rmp::encode::write_map_len(out, count).map_err(|e| e.to_string())?;
        out.extend_from_slice(&body);
        Ok(())
    }

    fn array(rd: &mut &[u8], out: &mut Vec<u8>, n: u32, depth: usize) -> Result<(), String> {
        rmp::encode::write_array_len(out, n).map_err(|e| e.to_string())?;
        for _ in 0..n {
            transcode(rd, out, depth + 1)?;
        }
        Ok(())
    }

    /// The snake_case twin of an encoded camelCase string key, if it differs.
    fn snake_twin(encoded_key: &[u8]) -> Option<String> {
        let mut rd = encoded_key;
        let mut buf = [0u8; 128];
        let key = rmp::decode::read_str(&mut rd, &mut buf).ok()?;
        if !key.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut snake = String::with_capacity(key.len() + 4);
        for ch in key.chars() {
            if ch.is_ascii_uppercase() {
                snake.push('_');
                snake.push(ch.to_ascii_lowercase());
            } else {
                snake.push(ch);
            }
        }
        Some(snake)
    }

    fn take<'a>(rd: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if rd.len() < n {
            return Err("truncated value".into());
        }
        let (head, tail) = rd.split_at(n);
        *rd = tail;
        Ok(head)
    }

    fn take_u16(rd: &mut &[u8]) -> Result<u16, String> {
        let b = take(rd, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn take_u32(rd: &mut &[u8]) -> Result<u32, String> {
        let b = take(rd, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
