//! Manifest text from a user: parsing and validation must return errors,
//! never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |k: &str| (k == "PORT").then(|| "8080".to_string());
        let _ = wascc_runtime::Manifest::parse(text, std::path::Path::new("/tmp"), &env);
        let _ = wascc_runtime::manifest::expand_env(text, &env);
    }
});
