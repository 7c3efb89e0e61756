use crate::ClaimsError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde::{Deserialize, Serialize};

const HEADER_TYPE: &str = "jwt";
const HEADER_ALGORITHM: &str = "Ed25519";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// The `wascap` namespace of an actor's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ActorMetadata {
    /// Human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Upper-case hex SHA-256 of the module without its `jwt` section.
    pub hash: String,
    /// Free-form tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Capability ids the actor may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caps: Option<Vec<String>>,
    /// Revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rev: Option<i32>,
    /// Version string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// Alias callers may use instead of the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_alias: Option<String>,
    /// Whether the module is a capability provider.
    #[serde(default)]
    pub prov: bool,
}

/// The registered and wascap claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Claims {
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Unique token id.
    pub jti: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Issuer: an account public key.
    pub iss: String,
    /// Subject: the module public key.
    pub sub: String,
    /// Start of validity, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Actor metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wascap: Option<ActorMetadata>,
}

/// A token as found in a module, with its decoded claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The compact JWT.
    pub jwt: String,
    /// Its claims.
    pub claims: Claims,
}

fn segment<T: for<'de> Deserialize<'de>>(seg: &str, what: &str) -> Result<T, ClaimsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(seg.trim_end_matches('='))
        .map_err(|e| ClaimsError::MalformedToken(format!("{what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| ClaimsError::MalformedToken(format!("{what}: {e}")))
}

impl Token {
    /// Parses a compact JWT without verifying it.
    pub fn decode(jwt: &str) -> Result<Token, ClaimsError> {
        let parts: Vec<&str> = jwt.trim().split('.').collect();
        if parts.len() != 3 {
            return Err(ClaimsError::MalformedToken(format!(
                "expected 3 dot-separated segments, found {}",
                parts.len()
            )));
        }
        let header: Header = segment(parts[0], "header")?;
        if header.alg != HEADER_ALGORITHM {
            return Err(ClaimsError::UnsupportedAlgorithm(header.alg));
        }
        let claims: Claims = segment(parts[1], "claims")?;
        Ok(Token {
            jwt: jwt.trim().to_string(),
            claims,
        })
    }

    /// Checks the signature under the issuer's public key.
    pub fn verify_signature(&self) -> Result<(), ClaimsError> {
        let issuer = &self.claims.iss;
        check_key(issuer, 'A', "issuer")?;
        check_key(&self.claims.sub, 'M', "subject")?;
        let (signed, sig) = self
            .jwt
            .rsplit_once('.')
            .ok_or_else(|| ClaimsError::MalformedToken("no signature segment".into()))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|e| ClaimsError::MalformedToken(format!("signature is not base64url: {e}")))?;
        let kp = KeyPair::from_public_key(issuer).map_err(|e| invalid("issuer", issuer, e))?;
        kp.verify(signed.as_bytes(), &sig)
            .map_err(|_| ClaimsError::BadSignature {
                issuer: issuer.clone(),
            })
    }
}

impl Claims {
    /// Encodes and signs the claims with the issuer's key pair.
    pub fn encode(&self, issuer: &KeyPair) -> Result<String, ClaimsError> {
        let header = Header {
            typ: HEADER_TYPE.into(),
            alg: HEADER_ALGORITHM.into(),
        };
        let enc = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        let head = serde_json::to_vec(&header).map_err(|e| ClaimsError::Signing(e.to_string()))?;
        let body = serde_json::to_vec(self).map_err(|e| ClaimsError::Signing(e.to_string()))?;
        let signed = format!("{}.{}", enc(&head), enc(&body));
        let sig = issuer
            .sign(signed.as_bytes())
            .map_err(|e| ClaimsError::Signing(e.to_string()))?;
        Ok(format!("{signed}.{}", enc(&sig)))
    }
}

fn invalid(role: &'static str, key: &str, e: impl std::fmt::Display) -> ClaimsError {
    ClaimsError::InvalidKey {
        role,
        key: key.to_string(),
        reason: e.to_string(),
    }
}

/// Checks that `key` is a public nkey with the given prefix.
pub(crate) fn check_key(key: &str, prefix: char, role: &'static str) -> Result<(), ClaimsError> {
    if !key.starts_with(prefix) {
        return Err(invalid(
            role,
            key,
            format!("expected a public key starting with {prefix}"),
        ));
    }
    KeyPair::from_public_key(key)
        .map(|_| ())
        .map_err(|e| invalid(role, key, e))
}

/// A fresh token id (22 base62 characters, like wascap's).
pub(crate) fn new_jti() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}
