//! A serde-free MessagePack codec for the HTTP contract's two messages, the
//! hottest ones: the host encodes a [`Request`] and decodes a [`Response`]
//! for every HTTP request, and a guest does the opposite.
//!
//! It writes exactly what [`crate::encode`] writes (a map with the codec
//! 0.6 field names, bytes as `bin`) and reads every shape [`crate::decode`]
//! reads (maps with either field spelling, positional arrays, bytes as
//! `bin` or as arrays of integers, trailing bytes ignored). It exists for
//! speed on the host and for size in guests: no serde machinery, no float
//! formatting, errors are static strings.

use crate::http::{Request, Response};
use rmp::Marker;
use std::collections::HashMap;

/// Why bytes are not the expected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

/// Nesting depth up to which unknown values are skipped.
const MAX_SKIP_DEPTH: u32 = 32;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_str(out, s);
}

fn put_map(out: &mut Vec<u8>, map: &HashMap<String, String>) {
    let _ = rmp::encode::write_map_len(out, map.len() as u32);
    for (k, v) in map {
        put_str(out, k);
        put_str(out, v);
    }
}

fn put_bin(out: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_bin(out, b);
}

/// Appends `req` to `out` as a codec 0.6 map.
// PERFORMANCE_CRITICAL_PATH: every HTTP request.
pub fn encode_request(req: &Request, out: &mut Vec<u8>) {
    out.reserve(64 + req.path.len() + req.query_string.len() + req.body.len());
    let _ = rmp::encode::write_map_len(out, 5);
    put_str(out, "method");
    put_str(out, &req.method);
    put_str(out, "path");
    put_str(out, &req.path);
    put_str(out, "queryString");
    put_str(out, &req.query_string);
    put_str(out, "header");
    put_map(out, &req.header);
    put_str(out, "body");
    put_bin(out, &req.body);
}

/// Appends `resp` to `out` as a codec 0.6 map.
pub fn encode_response(resp: &Response, out: &mut Vec<u8>) {
    out.reserve(48 + resp.body.len());
    let _ = rmp::encode::write_map_len(out, 4);
    put_str(out, "statusCode");
    let _ = rmp::encode::write_uint(out, u64::from(resp.status_code));
    put_str(out, "status");
    put_str(out, &resp.status);
    put_str(out, "header");
    put_map(out, &resp.header);
    put_str(out, "body");
    put_bin(out, &resp.body);
}

/// A cursor over MessagePack bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

const TRUNCATED: WireError = WireError("message is truncated");

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn be(&mut self, n: usize) -> Result<u64, WireError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    fn marker(&mut self) -> Result<Marker, WireError> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    /// A container's length after its marker: `Some((len, is_map))`.
    fn container(&mut self, m: Marker) -> Result<Option<(usize, bool)>, WireError> {
        Ok(Some(match m {
            Marker::FixMap(n) => (n as usize, true),
            Marker::Map16 => (self.be(2)? as usize, true),
            Marker::Map32 => (self.be(4)? as usize, true),
            Marker::FixArray(n) => (n as usize, false),
            Marker::Array16 => (self.be(2)? as usize, false),
            Marker::Array32 => (self.be(4)? as usize, false),
            _ => return Ok(None),
        }))
    }

    fn str_after(&mut self, m: Marker) -> Result<&'a str, WireError> {
        let n = match m {
            Marker::FixStr(n) => n as usize,
            Marker::Str8 => self.be(1)? as usize,
            Marker::Str16 => self.be(2)? as usize,
            Marker::Str32 => self.be(4)? as usize,
            // Some encoders send strings as bin.
            Marker::Bin8 => self.be(1)? as usize,
            Marker::Bin16 => self.be(2)? as usize,
            Marker::Bin32 => self.be(4)? as usize,
            _ => return Err(WireError("expected a string")),
        };
        std::str::from_utf8(self.take(n)?).map_err(|_| WireError("string is not utf-8"))
    }

    fn string(&mut self) -> Result<String, WireError> {
        let m = self.marker()?;
        if m == Marker::Null {
            return Ok(String::new());
        }
        self.str_after(m).map(str::to_owned)
    }

    fn uint(&mut self) -> Result<u64, WireError> {
        match self.marker()? {
            Marker::FixPos(n) => Ok(u64::from(n)),
            Marker::U8 => self.be(1),
            Marker::U16 => self.be(2),
            Marker::U32 => self.be(4),
            Marker::U64 => self.be(8),
            Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64 | Marker::FixNeg(_) => {
                Err(WireError("expected an unsigned integer, got a signed one"))
            }
            _ => Err(WireError("expected an unsigned integer")),
        }
    }

    fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let m = self.marker()?;
        let n = match m {
            Marker::Null => return Ok(Vec::new()),
            Marker::Bin8 | Marker::Str8 => self.be(1)? as usize,
            Marker::Bin16 | Marker::Str16 => self.be(2)? as usize,
            Marker::Bin32 | Marker::Str32 => self.be(4)? as usize,
            Marker::FixStr(n) => n as usize,
            _ => match self.container(m)? {
                Some((n, false)) => {
                    let mut v = Vec::with_capacity(n.min(self.buf.len()));
                    for _ in 0..n {
                        let b = self.uint()?;
                        v.push(u8::try_from(b).map_err(|_| WireError("byte out of range"))?);
                    }
                    return Ok(v);
                }
                _ => return Err(WireError("expected bytes")),
            },
        };
        Ok(self.take(n)?.to_vec())
    }

    fn string_map(&mut self) -> Result<HashMap<String, String>, WireError> {
        let m = self.marker()?;
        if m == Marker::Null {
            return Ok(HashMap::new());
        }
        let Some((n, true)) = self.container(m)? else {
            return Err(WireError("expected a map of strings"));
        };
        let mut map = HashMap::with_capacity(n.min(self.buf.len()));
        for _ in 0..n {
            let k = self.string()?;
            let v = self.string()?;
            map.insert(k, v);
        }
        Ok(map)
    }

    /// Skips one value of any type.
    fn skip(&mut self, depth: u32) -> Result<(), WireError> {
        if depth > MAX_SKIP_DEPTH {
            return Err(WireError("message nests too deeply"));
        }
        let m = self.marker()?;
        let n = match m {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                0
            }
            Marker::U8 | Marker::I8 => 1,
            Marker::U16 | Marker::I16 => 2,
            Marker::U32 | Marker::I32 | Marker::F32 => 4,
            Marker::U64 | Marker::I64 | Marker::F64 => 8,
            Marker::FixStr(n) => n as usize,
            Marker::Str8 | Marker::Bin8 => self.be(1)? as usize,
            Marker::Str16 | Marker::Bin16 => self.be(2)? as usize,
            Marker::Str32 | Marker::Bin32 => self.be(4)? as usize,
            Marker::FixExt1 => 2,
            Marker::FixExt2 => 3,
            Marker::FixExt4 => 5,
            Marker::FixExt8 => 9,
            Marker::FixExt16 => 17,
            Marker::Ext8 => self.be(1)? as usize + 1,
            Marker::Ext16 => self.be(2)? as usize + 1,
            Marker::Ext32 => self.be(4)? as usize + 1,
            Marker::Reserved => return Err(WireError("invalid messagepack marker")),
            _ => {
                let Some((len, is_map)) = self.container(m)? else {
                    return Err(WireError("invalid messagepack marker"));
                };
                for _ in 0..len * if is_map { 2 } else { 1 } {
                    self.skip(depth + 1)?;
                }
                return Ok(());
            }
        };
        self.take(n).map(|_| ())
    }
}

/// Reads a struct as a map (by field name, through `field`) or a positional
/// array (through `field` with the names in `order`).
fn read_struct<'a>(
    buf: &'a [u8],
    order: &[&str],
    mut field: impl FnMut(&str, &mut Reader<'a>) -> Result<bool, WireError>,
) -> Result<(), WireError> {
    let mut r = Reader { buf };
    let m = r.marker()?;
    match r.container(m)? {
        Some((n, true)) => {
            for _ in 0..n {
                let km = r.marker()?;
                let key = r.str_after(km)?;
                if !field(key, &mut r)? {
                    r.skip(0)?;
                }
            }
        }
        Some((n, false)) => {
            for i in 0..n {
                match order.get(i) {
                    Some(name) => {
                        field(name, &mut r)?;
                    }
                    None => r.skip(0)?,
                }
            }
        }
        None => return Err(WireError("expected a map or an array")),
    }
    Ok(())
}

/// Reads a [`Request`] in any shape a 0.x host or ours sends.
pub fn decode_request(buf: &[u8]) -> Result<Request, WireError> {
    let mut req = Request::default();
    read_struct(
        buf,
        &["method", "path", "queryString", "header", "body"],
        |key, r| {
            match key {
                "method" => req.method = r.string()?,
                "path" => req.path = r.string()?,
                "queryString" | "query_string" => req.query_string = r.string()?,
                "header" => req.header = r.string_map()?,
                "body" => req.body = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(req)
}

/// Reads a [`Response`] in any shape a 0.x actor or ours sends.
// PERFORMANCE_CRITICAL_PATH: every HTTP response.
pub fn decode_response(buf: &[u8]) -> Result<Response, WireError> {
    let mut resp = Response::default();
    let mut has_status = false;
    read_struct(
        buf,
        &["statusCode", "status", "header", "body"],
        |key, r| {
            match key {
                "statusCode" | "status_code" => {
                    resp.status_code = u32::try_from(r.uint()?)
                        .map_err(|_| WireError("status code out of range"))?;
                    has_status = true;
                }
                "status" => resp.status = r.string()?,
                "header" => resp.header = r.string_map()?,
                "body" => resp.body = r.bytes()?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    if !has_status {
        return Err(WireError("response has no status code"));
    }
    Ok(resp)
}
