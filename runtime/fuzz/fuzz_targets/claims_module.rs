//! Module bytes from anywhere: the section walk, token parsing and
//! verification must return errors, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wascc_claims::sections(data);
    let _ = wascc_claims::strip_jwt(data);
    let _ = wascc_claims::extract(data);
    let _ = wascc_claims::verify(data, &wascc_claims::VerifyOptions::default());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wascc_claims::Token::decode(text);
    }
});
