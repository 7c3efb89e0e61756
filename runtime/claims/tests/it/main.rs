//! Claims against the waSCC 0.14 fixtures and our own signing.

use nkeys::KeyPair;
use proptest::prelude::*;
use std::path::Path;
use wascc_claims::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/wascc-0.14")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_fixture_verifies_with_its_recorded_hash() {
    for (name, sub) in [
        (
            "echo.wasm",
            "MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2",
        ),
        (
            "kvcounter.wasm",
            "MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ",
        ),
        (
            "logger.wasm",
            "MDW7BWQDVYBRC6WKSJRRZL27R73EVBWQINYLPFDRCWDZDFQO4JMO4U6J",
        ),
        (
            "subscriber.wasm",
            "MBHRSJORBXAPRCALK6EKOBBCNAPMRTM6ODLXNLOV5TKPDMPXMTCMR4DW",
        ),
    ] {
        let t = verify(&fixture(name), &VerifyOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.claims.sub, sub);
    }
}

#[test]
fn resigning_a_fixture_replaces_its_token_and_keeps_its_code() {
    let orig = fixture("echo.wasm");
    let issuer = KeyPair::new_account();
    let module = KeyPair::new_module();
    let req = SignRequest {
        name: "again".into(),
        caps: vec!["wascc:http_server".into()],
        rev: Some(3),
        ver: Some("1.2".into()),
        ..Default::default()
    };
    let signed = sign(&orig, &req, &issuer, &module.public_key()).unwrap();
    let jwt_sections = sections(&signed)
        .unwrap()
        .iter()
        .filter(|s| matches!(s, Section::Custom { name: "jwt", .. }))
        .count();
    assert_eq!(jwt_sections, 1);
    assert_eq!(strip_jwt(&signed).unwrap(), strip_jwt(&orig).unwrap());
    let t = verify(
        &signed,
        &VerifyOptions {
            trusted_issuers: vec![issuer.public_key()],
            now: None,
        },
    )
    .unwrap();
    let meta = t.claims.wascap.unwrap();
    assert_eq!(
        (meta.name.as_deref(), meta.rev, meta.ver.as_deref()),
        (Some("again"), Some(3), Some("1.2"))
    );
    // The original token's hash equals ours: both hash the same stripped bytes.
    let old = extract(&orig).unwrap().unwrap().claims.wascap.unwrap().hash;
    assert_eq!(meta.hash, old);
}

#[test]
fn time_window_is_checked_against_the_clock_given() {
    let issuer = KeyPair::new_account();
    let req = SignRequest {
        name: "t".into(),
        expires: Some(2_000),
        not_before: Some(1_000),
        ..Default::default()
    };
    let signed = sign(
        &fixture("echo.wasm"),
        &req,
        &issuer,
        &KeyPair::new_module().public_key(),
    )
    .unwrap();
    let at = |now| {
        verify(
            &signed,
            &VerifyOptions {
                trusted_issuers: vec![],
                now: Some(now),
            },
        )
    };
    assert!(matches!(
        at(999),
        Err(ClaimsError::NotYetValid {
            not_before: 1_000,
            now: 999
        })
    ));
    assert!(at(1_500).is_ok());
    assert!(matches!(
        at(2_000),
        Err(ClaimsError::Expired {
            expired_at: 2_000,
            now: 2_000
        })
    ));
}

#[test]
fn keys_of_the_wrong_kind_are_refused_when_signing() {
    let e = sign(
        &fixture("echo.wasm"),
        &SignRequest::default(),
        &KeyPair::new_module(),
        &KeyPair::new_module().public_key(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ClaimsError::InvalidKey { role: "issuer", .. }),
        "{e}"
    );
    let e = sign(
        &fixture("echo.wasm"),
        &SignRequest::default(),
        &KeyPair::new_account(),
        "MNOTAKEY",
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ClaimsError::InvalidKey {
                role: "subject",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn malformed_tokens_are_refused() {
    assert!(matches!(
        Token::decode("a.b"),
        Err(ClaimsError::MalformedToken(_))
    ));
    assert!(matches!(
        Token::decode("!!.!!.!!"),
        Err(ClaimsError::MalformedToken(_))
    ));
    // {"typ":"jwt","alg":"HS256"}
    let e = Token::decode("eyJ0eXAiOiJqd3QiLCJhbGciOiJIUzI1NiJ9.e30.AA").unwrap_err();
    assert_eq!(e, ClaimsError::UnsupportedAlgorithm("HS256".into()));
}

proptest! {
    #[test]
    fn the_section_walker_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend_from_slice(&bytes);
        let _ = sections(&module);
        let _ = extract(&module);
        let _ = strip_jwt(&module);
    }

    #[test]
    fn any_truncation_of_a_fixture_is_an_error_not_a_panic(cut in 0usize..2_000_000) {
        let f = fixture("subscriber.wasm");
        let cut = cut.min(f.len() - 1);
        prop_assert!(verify(&f[..cut], &VerifyOptions::default()).is_err());
    }
}

#[test]
fn providers_and_actors_verify_only_as_what_they_were_signed() {
    let issuer = KeyPair::new_account();
    let module = KeyPair::new_module();
    let as_provider = SignRequest {
        name: "prov".into(),
        provider: true,
        ..Default::default()
    };
    let prov = sign(
        &fixture("echo.wasm"),
        &as_provider,
        &issuer,
        &module.public_key(),
    )
    .unwrap();
    let t = verify_provider(&prov, &VerifyOptions::default()).unwrap();
    assert!(t.claims.wascap.unwrap().prov);
    assert!(matches!(
        verify(&prov, &VerifyOptions::default()),
        Err(ClaimsError::NotAnActor)
    ));
    let e = verify_provider(&fixture("echo.wasm"), &VerifyOptions::default()).unwrap_err();
    assert!(matches!(e, ClaimsError::NotAProvider), "{e}");
    assert!(
        e.to_string()
            .contains("claims do not describe a capability provider"),
        "{e}"
    );
    // The provider check does not skip the others.
    let untrusted = VerifyOptions {
        trusted_issuers: vec![KeyPair::new_account().public_key()],
        now: None,
    };
    assert!(matches!(
        verify_provider(&prov, &untrusted),
        Err(ClaimsError::UntrustedIssuer(_))
    ));
}
