//! Invocation envelopes: one invocation (caller, target, operation, payload)
//! archived with rkyv into a single aligned buffer, read in place on the
//! receiving shard. Nothing is deserialized on the hot path: the receiver
//! borrows the operation and payload straight out of the buffer.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::with::InlineAsBox;

/// One invocation, borrowed from the caller while it is sealed.
#[derive(rkyv::Archive, rkyv::Serialize, Debug)]
pub struct Envelope<'a> {
    /// Who calls: an actor key, or a host component such as `http`.
    #[rkyv(with = InlineAsBox)]
    pub origin: &'a str,
    /// The actor called.
    #[rkyv(with = InlineAsBox)]
    pub target: &'a str,
    /// The waPC operation.
    #[rkyv(with = InlineAsBox)]
    pub operation: &'a str,
    /// The MessagePack payload.
    #[rkyv(with = InlineAsBox)]
    pub payload: &'a [u8],
    /// How many invocations deep this call is (0 for one from outside).
    pub depth: u32,
}

/// Why bytes are not an envelope.
#[derive(Debug, thiserror::Error)]
#[error("invalid envelope: {0}")]
pub struct EnvelopeError(String);

/// An archived envelope: one buffer that owns every field.
pub struct SealedEnvelope {
    bytes: AlignedVec,
}

impl std::fmt::Debug for SealedEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = self.open();
        f.debug_struct("SealedEnvelope")
            .field("origin", &e.origin())
            .field("target", &e.target())
            .field("operation", &e.operation())
            .field("payload_len", &e.payload().len())
            .field("depth", &e.depth())
            .finish()
    }
}

impl SealedEnvelope {
    /// Archives `envelope` (one allocation, one copy of each field).
    // PERFORMANCE_CRITICAL_PATH: every cross-shard invocation is sealed here.
    pub fn seal(envelope: &Envelope<'_>) -> SealedEnvelope {
        let mut bytes = AlignedVec::with_capacity(
            64 + envelope.origin.len()
                + envelope.target.len()
                + envelope.operation.len()
                + envelope.payload.len(),
        );
        // Writing into a growable in-memory buffer cannot fail short of an
        // allocation failure, which aborts anyway.
        match rkyv::api::high::to_bytes_in::<_, rancor::Error>(envelope, bytes) {
            Ok(b) => bytes = b,
            Err(e) => unreachable!("archiving into memory failed: {e}"),
        }
        SealedEnvelope { bytes }
    }

    /// Checks that `bytes` hold a well-formed envelope (for bytes that did not
    /// come from [`SealedEnvelope::seal`] in this process: the network, files).
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedEnvelope, EnvelopeError> {
        let mut aligned = AlignedVec::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        // bytecheck validates every field, UTF-8 of the strings included.
        rkyv::access::<ArchivedEnvelope<'_>, rancor::Error>(&aligned)
            .map_err(|e| EnvelopeError(e.to_string()))?;
        Ok(SealedEnvelope { bytes: aligned })
    }

    /// The archived bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Reads the envelope in place.
    // PERFORMANCE_CRITICAL_PATH: no validation, no copy.
    pub fn open(&self) -> &ArchivedEnvelope<'static> {
        // SAFETY: `bytes` is only ever built by `seal` (rkyv's own serializer
        // writing this very type into an aligned buffer) or by `from_bytes`,
        // which validated it with bytecheck first; it is never mutated
        // afterwards. The archived form holds no borrows (every `&'a` field is
        // archived as an owned relative box), so the lifetime is nominal.
        unsafe { rkyv::access_unchecked::<ArchivedEnvelope<'static>>(&self.bytes) }
    }
}

impl ArchivedEnvelope<'_> {
    /// The caller.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The actor called.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The operation.
    pub fn operation(&self) -> &str {
        &self.operation
    }
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The call depth.
    pub fn depth(&self) -> u32 {
        self.depth.to_native()
    }
}
