//! wascap-compatible claims: the signed JWT that waSCC actors carry in their
//! `jwt` custom section. Read it, verify it (signature, module hash, time
//! window, trusted issuers) and write it, byte-compatible with waSCC 0.x.
//!
//! Not for: deciding what an actor may do at run time (the host's
//! authorization chain reads the verified claims) or loading modules.

mod error;
mod jwt;
mod wasm;

pub use error::ClaimsError;
pub use jwt::{ActorMetadata, Claims, Token};
pub use wasm::{Section, module_hash, sections, strip_jwt};

use nkeys::KeyPair;
use std::time::{SystemTime, UNIX_EPOCH};

/// The custom section that holds the token (waSCC 0.x name).
pub const JWT_SECTION: &str = "jwt";

/// Seconds since the Unix epoch, as JWT timestamps are written.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a verification accepts.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Account keys whose actors may run; empty trusts every issuer.
    pub trusted_issuers: Vec<String>,
    /// The clock, in seconds since the epoch; `None` reads the system clock.
    pub now: Option<u64>,
}

/// Reads the token of a module without checking it. `Ok(None)`: no claims.
pub fn extract(module: &[u8]) -> Result<Option<Token>, ClaimsError> {
    let mut found = None;
    for section in sections(module)? {
        if let Section::Custom { name, data, .. } = section
            && name == JWT_SECTION
        {
            found = Some(data);
        }
    }
    match found {
        None => Ok(None),
        Some(data) => {
            let jwt = std::str::from_utf8(data)
                .map_err(|_| ClaimsError::MalformedToken("the jwt section is not utf-8".into()))?;
            Token::decode(jwt).map(Some)
        }
    }
}

/// Reads and verifies a module's claims: a token must be present, signed by
/// its issuer, within its time window, with a hash that matches the module,
/// and (when `opts.trusted_issuers` is not empty) from a trusted issuer.
pub fn verify(module: &[u8], opts: &VerifyOptions) -> Result<Token, ClaimsError> {
    verify_as(module, opts, false)
}

/// Like [`verify`], for a portable (wasm) capability provider: its claims
/// must say `prov: true`.
pub fn verify_provider(module: &[u8], opts: &VerifyOptions) -> Result<Token, ClaimsError> {
    verify_as(module, opts, true)
}

fn verify_as(module: &[u8], opts: &VerifyOptions, provider: bool) -> Result<Token, ClaimsError> {
    let token = extract(module)?.ok_or(ClaimsError::NoClaims)?;
    token.verify_signature()?;
    let meta = token.claims.wascap.as_ref().ok_or(if provider {
        ClaimsError::NotAProvider
    } else {
        ClaimsError::NotAnActor
    })?;
    match (provider, meta.prov) {
        (false, true) => return Err(ClaimsError::NotAnActor),
        (true, false) => return Err(ClaimsError::NotAProvider),
        _ => {}
    }
    let actual = module_hash(&strip_jwt(module)?);
    if !actual.eq_ignore_ascii_case(&meta.hash) {
        return Err(ClaimsError::HashMismatch {
            module: actual,
            claims: meta.hash.clone(),
        });
    }
    let now = opts.now.unwrap_or_else(now_secs);
    if let Some(exp) = token.claims.exp
        && now >= exp
    {
        return Err(ClaimsError::Expired {
            expired_at: exp,
            now,
        });
    }
    if let Some(nbf) = token.claims.nbf
        && now < nbf
    {
        return Err(ClaimsError::NotYetValid {
            not_before: nbf,
            now,
        });
    }
    if !opts.trusted_issuers.is_empty() && !opts.trusted_issuers.contains(&token.claims.iss) {
        return Err(ClaimsError::UntrustedIssuer(token.claims.iss.clone()));
    }
    Ok(token)
}

/// What to put in an actor's claims when signing it.
#[derive(Debug, Clone, Default)]
pub struct SignRequest {
    /// Human-readable name.
    pub name: String,
    /// Capability ids the actor may use.
    pub caps: Vec<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Revision number.
    pub rev: Option<i32>,
    /// Version string.
    pub ver: Option<String>,
    /// Expiry, seconds since the epoch.
    pub expires: Option<u64>,
    /// Start of validity, seconds since the epoch.
    pub not_before: Option<u64>,
    /// Signs a portable capability provider (`prov: true`), not an actor.
    pub provider: bool,
}

/// Signs `module` as actor `subject` (a module public key, `M…`) issued by
/// `issuer` (an account key pair, `A…`). Any earlier `jwt` section is
/// removed; the new token is appended as the last section, as wascap does.
pub fn sign(
    module: &[u8],
    req: &SignRequest,
    issuer: &KeyPair,
    subject: &str,
) -> Result<Vec<u8>, ClaimsError> {
    jwt::check_key(&issuer.public_key(), 'A', "issuer")?;
    jwt::check_key(subject, 'M', "subject")?;
    let mut out = strip_jwt(module)?;
    let claims = Claims {
        jti: jwt::new_jti(),
        iat: now_secs(),
        iss: issuer.public_key(),
        sub: subject.to_string(),
        exp: req.expires,
        nbf: req.not_before,
        wascap: Some(ActorMetadata {
            name: Some(req.name.clone()),
            hash: module_hash(&out),
            tags: Some(req.tags.clone()),
            caps: Some(req.caps.clone()),
            rev: req.rev,
            ver: req.ver.clone(),
            call_alias: None,
            prov: req.provider,
        }),
    };
    let jwt = claims.encode(issuer)?;
    wasm::append_custom_section(&mut out, JWT_SECTION, jwt.as_bytes());
    Ok(out)
}

/// Checks that `key` is a public account key (`A…`), as a trusted issuer must be.
pub fn check_account_key(key: &str) -> Result<(), ClaimsError> {
    jwt::check_key(key, 'A', "trusted issuer")
}
