//! The waSCC lattice: hosts joined over NATS. Versioned subject names, the
//! lattice state in JetStream key-value buckets ([`Lattice`]: hosts with
//! their labels and inventory, refreshed by heartbeats) and a host's
//! [`Membership`]; the [`control`] interface and remote invocation
//! ([`rpc`]) build on these.
//!
//! This crate knows NATS and the lattice's protocols, not hosting: the host
//! (`wascc-runtime`) uses it, and tells it what it runs through plain
//! records. Not for: anything that runs wasm or owns a shard.

pub mod blocklist;
pub mod control;
pub mod directory;
mod error;
pub mod invocation;
pub mod latency;
pub mod limits;
mod membership;
pub mod pairing;
pub mod pending;
pub mod rpc;
mod state;
pub mod tls;
pub mod wire;

pub use error::LatticeError;
pub use membership::{Membership, Participant, RecordFn};
pub use state::{
    ActorRecord, BindingRecord, HostRecord, Lattice, LatticeOptions, ProviderRecord,
    check_lattice_name, now_millis, now_secs,
};

/// The version segment of every lattice subject.
pub const SUBJECT_VERSION: &str = "v1";

/// The subject on which actor `actor_key` receives invocations.
pub fn actor_subject(lattice: &str, actor_key: &str) -> String {
    format!("wasmbus.{SUBJECT_VERSION}.{lattice}.actor.{actor_key}")
}

/// The subject on which the provider of `capability` under `binding` receives invocations.
pub fn provider_subject(lattice: &str, capability: &str, binding: &str) -> String {
    let capability = capability.replace(':', "_");
    format!("wasmbus.{SUBJECT_VERSION}.{lattice}.provider.{capability}.{binding}")
}

/// The prefix of every subject of a lattice: `wasmbus.v1.<lattice>.`.
pub fn lattice_prefix(lattice: &str) -> String {
    format!("wasmbus.{SUBJECT_VERSION}.{lattice}.")
}

/// The prefix of the subjects on which host `host` alone receives
/// invocations: `wasmbus.v1.<lattice>.host.<host>.`.
pub fn host_prefix(lattice: &str, host: &str) -> String {
    format!("wasmbus.{SUBJECT_VERSION}.{lattice}.host.{host}.")
}

/// The subject on which host `host` alone receives the invocations of
/// `subject` (an actor or provider subject of `lattice`): the host's
/// prefix and the rest of `subject`, e.g.
/// `wasmbus.v1.<lattice>.host.<host>.actor.<key>`.
pub fn host_subject(lattice: &str, host: &str, subject: &str) -> String {
    let rest = subject
        .strip_prefix(&lattice_prefix(lattice))
        .unwrap_or(subject);
    format!("{}{rest}", host_prefix(lattice, host))
}

/// The prefix of the control subjects of a lattice.
pub fn control_prefix(lattice: &str) -> String {
    format!("wasmbus.{SUBJECT_VERSION}.{lattice}.ctl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_versioned_and_keep_the_0x_shape() {
        assert_eq!(
            actor_subject("default", "MABC"),
            "wasmbus.v1.default.actor.MABC"
        );
        assert_eq!(
            provider_subject("default", "wascc:keyvalue", "other"),
            "wasmbus.v1.default.provider.wascc_keyvalue.other"
        );
        assert_eq!(control_prefix("prod"), "wasmbus.v1.prod.ctl");
        assert_eq!(
            host_subject("prod", "NH", &actor_subject("prod", "MABC")),
            "wasmbus.v1.prod.host.NH.actor.MABC"
        );
        assert_eq!(
            host_subject("prod", "NH", &provider_subject("prod", "wascc:kv", "b")),
            "wasmbus.v1.prod.host.NH.provider.wascc_kv.b"
        );
    }
}
