//! `wascc:extras`: GUIDs, random numbers and sequence numbers.

use serde::{Deserialize, Serialize};

/// The capability id of extras.
pub const CAPABILITY_ID: &str = "wascc:extras";
/// A fresh v4 GUID.
pub const OP_REQUEST_GUID: &str = "RequestGuid";
/// The next number of the actor's sequence.
pub const OP_REQUEST_SEQUENCE: &str = "RequestSequence";
/// A random number in `[min, max]`.
pub const OP_REQUEST_RANDOM: &str = "RequestRandom";

/// Request of every extras operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GeneratorRequest {
    /// Asks for a GUID.
    pub guid: bool,
    /// Asks for a sequence number.
    pub sequence: bool,
    /// Asks for a random number.
    pub random: bool,
    /// Lower bound of the random number, inclusive.
    pub min: u32,
    /// Upper bound of the random number, inclusive.
    pub max: u32,
}

/// Response of every extras operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorResult {
    /// The GUID, if asked for.
    pub guid: Option<String>,
    /// The sequence number, if asked for.
    #[serde(alias = "sequence_number")]
    pub sequence_number: u64,
    /// The random number, if asked for.
    #[serde(alias = "random_number")]
    pub random_number: u32,
}
