use thiserror::Error;

/// Why a module's claims were refused. Each names the value at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// The bytes are not a WebAssembly module.
    #[error("not a wasm module: {0}")]
    MalformedModule(String),
    /// The module has no `jwt` section.
    #[error("module has no claims (no jwt custom section); sign it with `wcc claims sign`")]
    NoClaims,
    /// The token cannot be parsed.
    #[error("malformed claims token: {0}")]
    MalformedToken(String),
    /// The header names another algorithm.
    #[error("claims token algorithm {0:?} is not Ed25519")]
    UnsupportedAlgorithm(String),
    /// The signature does not verify under the issuer's key.
    #[error("claims signature does not verify under issuer {issuer}")]
    BadSignature {
        /// The issuer named in the token.
        issuer: String,
    },
    /// The module was changed after it was signed.
    #[error("claims hash mismatch: module sha256 {module}, claims say {claims}")]
    HashMismatch {
        /// The hash of the module as it is.
        module: String,
        /// The hash recorded in the claims.
        claims: String,
    },
    /// The token has expired.
    #[error("claims expired at {expired_at} (now {now}, seconds since the epoch)")]
    Expired {
        /// `exp`.
        expired_at: u64,
        /// The clock used.
        now: u64,
    },
    /// The token is not valid yet.
    #[error("claims not valid before {not_before} (now {now}, seconds since the epoch)")]
    NotYetValid {
        /// `nbf`.
        not_before: u64,
        /// The clock used.
        now: u64,
    },
    /// The issuer is not in the trusted list.
    #[error("issuer {0} is not a trusted issuer")]
    UntrustedIssuer(String),
    /// A key has the wrong kind or is not a key.
    #[error("{role} key {key:?} is invalid: {reason}")]
    InvalidKey {
        /// Which key (issuer, subject).
        role: &'static str,
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token carries no actor metadata, or says it is a provider.
    #[error(
        "claims do not describe an actor (no wascap metadata, or prov is true: a capability provider)"
    )]
    NotAnActor,
    /// A module offered as a portable provider is not signed as one.
    #[error(
        "claims do not describe a capability provider (no wascap metadata, or prov is not true): \
         a portable provider must be signed as one (wcc sign --provider)"
    )]
    NotAProvider,
    /// Signing failed.
    #[error("cannot sign claims: {0}")]
    Signing(String),
}
