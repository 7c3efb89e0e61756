//! Messages from guests: decoding every contract shape and the compat
//! rewrite must return errors, never panic.
#![no_main]

use wascc_contracts::{decode, http, keyvalue, messaging, to_compat};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = decode::<http::Request>(data);
    let _ = decode::<http::Response>(data);
    let _ = decode::<keyvalue::SetRequest>(data);
    let _ = decode::<messaging::BrokerMessage>(data);
    let _ = to_compat(data);
    // The serde-free HTTP codec: never panics, and reads what serde reads.
    if let (Ok(fast), Ok(serde)) = (
        wascc_contracts::http_wire::decode_response(data),
        decode::<http::Response>(data),
    ) {
        assert_eq!(fast, serde);
    }
    let _ = wascc_contracts::http_wire::decode_request(data);
});
