//! Invocation envelopes from outside this process (the lattice will carry
//! them): validation must refuse malformed bytes, never panic, and what it
//! accepts must read back in place.
#![no_main]

use wascc_scheduler::envelope::SealedEnvelope;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = SealedEnvelope::from_bytes(data) {
        let e = sealed.open();
        let _ = (e.origin().len(), e.target().len(), e.operation().len(), e.payload().len(), e.depth());
    }
});
