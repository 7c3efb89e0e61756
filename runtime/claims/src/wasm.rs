//! A minimal walk over the top-level sections of a wasm module: enough to
//! find, strip and append custom sections without re-encoding the module
//! (re-encoding would change the bytes that the hash covers).

use crate::ClaimsError;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"\0asm";
const MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
const CUSTOM_SECTION_ID: u8 = 0;

/// One top-level section of a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section<'a> {
    /// A custom section.
    Custom {
        /// Its name.
        name: &'a str,
        /// Its payload after the name.
        data: &'a [u8],
        /// The byte range of the whole section (id, size and contents).
        range: (usize, usize),
    },
    /// Any other section.
    Standard {
        /// The section id.
        id: u8,
        /// The byte range of the whole section.
        range: (usize, usize),
    },
}

impl Section<'_> {
    fn range(&self) -> (usize, usize) {
        match self {
            Section::Custom { range, .. } | Section::Standard { range, .. } => *range,
        }
    }
}

fn malformed(offset: usize, what: &str) -> ClaimsError {
    ClaimsError::MalformedModule(format!("{what} at byte {offset}"))
}

fn read_leb_u32(buf: &[u8], pos: &mut usize) -> Result<u32, ClaimsError> {
    let start = *pos;
    let mut result: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| malformed(start, "truncated length"))?;
        *pos += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(result).map_err(|_| malformed(start, "length out of range"));
        }
    }
    Err(malformed(start, "length encoding too long"))
}

/// Lists the top-level sections, checking the header and every boundary.
pub fn sections(module: &[u8]) -> Result<Vec<Section<'_>>, ClaimsError> {
    if module.len() < 8 || &module[0..4] != MAGIC {
        return Err(ClaimsError::MalformedModule(
            "missing the \\0asm magic number".into(),
        ));
    }
    if module[4..8] != MODULE_VERSION {
        return Err(ClaimsError::MalformedModule(format!(
            "unsupported binary version {:?} (components are not actors)",
            &module[4..8]
        )));
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < module.len() {
        let start = pos;
        let id = module[pos];
        pos += 1;
        let size = read_leb_u32(module, &mut pos)? as usize;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= module.len())
            .ok_or_else(|| {
                malformed(
                    start,
                    &format!("section {id} runs past the end of the file"),
                )
            })?;
        if id == CUSTOM_SECTION_ID {
            let mut p = pos;
            let name_len = read_leb_u32(&module[..end], &mut p)? as usize;
            let name_end = p
                .checked_add(name_len)
                .filter(|e| *e <= end)
                .ok_or_else(|| malformed(start, "custom section name runs past its section"))?;
            let name = std::str::from_utf8(&module[p..name_end])
                .map_err(|_| malformed(start, "custom section name is not utf-8"))?;
            out.push(Section::Custom {
                name,
                data: &module[name_end..end],
                range: (start, end),
            });
        } else {
            out.push(Section::Standard {
                id,
                range: (start, end),
            });
        }
        pos = end;
    }
    Ok(out)
}

/// The module without its `jwt` sections, every other byte as it was.
pub fn strip_jwt(module: &[u8]) -> Result<Vec<u8>, ClaimsError> {
    let secs = sections(module)?;
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(&module[..8]);
    for s in secs {
        if matches!(s, Section::Custom { name, .. } if name == crate::JWT_SECTION) {
            continue;
        }
        let (a, b) = s.range();
        out.extend_from_slice(&module[a..b]);
    }
    Ok(out)
}

/// Upper-case hex SHA-256, as wascap writes `hash`.
pub fn module_hash(bytes: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&Sha256::digest(bytes))
}

fn write_leb_u32(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn append_custom_section(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut body = Vec::with_capacity(name.len() + data.len() + 5);
    write_leb_u32(&mut body, name.len() as u32);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    out.push(CUSTOM_SECTION_ID);
    write_leb_u32(out, body.len() as u32);
    out.extend_from_slice(&body);
}
