//! The waSCC lattice: hosts joined over NATS. Today only the subject names
//! live here, versioned so that hosts of different versions can tell each
//! other apart; the NATS transport, control interface and lattice state are
//! issue 5.
//!
//! Not for: anything that runs wasm or owns a shard.

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
    }
}
