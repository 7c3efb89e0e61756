use thiserror::Error;

/// Errors of the lattice. Each names the server, bucket or value at fault.
#[derive(Debug, Error)]
pub enum LatticeError {
    /// A lattice name that cannot be part of a subject or bucket name.
    #[error("lattice name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key that cannot be used where it was given.
    #[error("key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The NATS server cannot be reached or refused the connection.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL.
        url: String,
        /// The reason.
        reason: String,
    },
    /// The lattice state (a JetStream key-value bucket) failed.
    #[error("lattice state {bucket}: {reason}")]
    State {
        /// The bucket.
        bucket: String,
        /// The reason.
        reason: String,
    },
    /// A control command to a host failed.
    #[error("host {host}: {reason}")]
    Control {
        /// The host's key.
        host: String,
        /// What went wrong.
        reason: String,
    },
}
