//! The codec against every waSCC 0.x shape.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wascc_contracts::http::{Request, Response};
use wascc_contracts::messaging::BrokerMessage;
use wascc_contracts::{decode, encode, encode_compat};

/// The HTTP request exactly as wascc-codec 0.5 declared it (positional
/// arrays on the wire, snake_case names, bytes as a sequence).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Request05 {
    method: String,
    path: String,
    query_string: String,
    header: HashMap<String, String>,
    body: Vec<u8>,
}

/// The HTTP request exactly as wascc-codec 0.6 declared it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request06 {
    method: String,
    path: String,
    query_string: String,
    #[serde(default)]
    header: HashMap<String, String>,
    #[serde(with = "serde_bytes", default)]
    body: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Response05 {
    status_code: u32,
    status: String,
    header: HashMap<String, String>,
    body: Vec<u8>,
}

fn sample() -> Request {
    let mut header = HashMap::new();
    header.insert("accept".into(), "application/json".into());
    Request {
        method: "GET".into(),
        path: "/foo".into(),
        query_string: "a=1&b=2".into(),
        header,
        body: b"hi".to_vec(),
    }
}

#[test]
fn compat_shape_decodes_with_the_0_5_and_0_6_codecs() {
    let bytes = encode_compat(&sample()).unwrap();
    let old: Request05 = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(old.query_string, "a=1&b=2");
    assert_eq!(old.body, b"hi");
    let new: Request06 = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(new.query_string, "a=1&b=2");
    assert_eq!(new.body, b"hi");
}

#[test]
fn current_shape_is_what_codec_0_6_writes() {
    let r = sample();
    let ours = encode(&r).unwrap();
    let theirs = rmp_serde::to_vec_named(&Request06 {
        method: r.method.clone(),
        path: r.path.clone(),
        query_string: r.query_string.clone(),
        header: r.header.clone(),
        body: r.body.clone(),
    })
    .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn responses_of_every_codec_decode() {
    // 0.5: a positional array with bytes as integers.
    let old = Response05 {
        status_code: 201,
        status: "Created".into(),
        header: HashMap::new(),
        body: b"ok".to_vec(),
    };
    let r: Response = decode(&rmp_serde::to_vec(&old).unwrap()).unwrap();
    assert_eq!((r.status_code, r.body.as_slice()), (201, &b"ok"[..]));
    // 0.5 with names (snake_case map).
    let r: Response = decode(&rmp_serde::to_vec_named(&old).unwrap()).unwrap();
    assert_eq!(r.status_code, 201);
    // 0.6: camelCase map with bin.
    let r: Response =
        decode(&encode(&Response::with_status(404, "Not Found", "x")).unwrap()).unwrap();
    assert_eq!(r.status_code, 404);
}

#[test]
fn trailing_padding_after_the_value_is_ignored() {
    let mut bytes = encode(&sample()).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(decode::<Request>(&bytes).unwrap(), sample());
}

#[test]
fn broker_messages_accept_reply_to_in_both_spellings() {
    #[derive(Serialize)]
    struct Old {
        subject: String,
        reply_to: String,
        body: Vec<u8>,
    }
    let m: BrokerMessage = decode(
        &rmp_serde::to_vec_named(&Old {
            subject: "s".into(),
            reply_to: "r".into(),
            body: vec![1],
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!((m.reply_to.as_str(), m.body.as_slice()), ("r", &[1u8][..]));
}

#[test]
fn garbage_is_an_error_naming_the_type() {
    let e = decode::<Request>(&[0xc1]).unwrap_err();
    assert!(e.to_string().contains("Request"), "{e}");
}

proptest! {
    #[test]
    fn requests_round_trip_in_both_shapes(
        method in "[A-Z]{1,7}", path in "/[a-z/]{0,20}", q in "[a-z=&]{0,20}",
        body in proptest::collection::vec(any::<u8>(), 0..300),
        header in proptest::collection::hash_map("[a-z-]{1,10}", "[ -~]{0,20}", 0..5),
    ) {
        let r = Request { method, path, query_string: q, header, body };
        prop_assert_eq!(decode::<Request>(&encode(&r).unwrap()).unwrap(), r.clone());
        let old: Request05 = rmp_serde::from_slice(&encode_compat(&r).unwrap()).unwrap();
        prop_assert_eq!(old.body, r.body.clone());
        prop_assert_eq!(old.query_string, r.query_string.clone());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode::<Request>(&bytes);
        let _ = decode::<Response>(&bytes);
        let _ = wascc_contracts::to_compat(&bytes);
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let deep = vec![0x91u8; 100_000];
    assert!(wascc_contracts::to_compat(&deep).is_err());
    assert!(decode::<Request>(&deep).is_err());
}

mod wire {
    //! The serde-free HTTP codec against the serde one.

    use super::*;
    use wascc_contracts::http_wire::{
        decode_request, decode_response, encode_request, encode_response,
    };

    fn req() -> impl Strategy<Value = Request> {
        (
            "[A-Z]{1,7}",
            "/[a-z/é]{0,40}",
            "[a-z=&]{0,300}",
            proptest::collection::vec(any::<u8>(), 0..70_000),
            proptest::collection::hash_map("[a-z-]{1,10}", "[ -~]{0,40}", 0..20),
        )
            .prop_map(|(method, path, query_string, body, header)| Request {
                method,
                path,
                query_string,
                header,
                body,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn request_bytes_equal_serdes_and_every_shape_decodes(r in req()) {
            let mut fast = Vec::new();
            encode_request(&r, &mut fast);
            prop_assert_eq!(&fast, &encode(&r).unwrap());
            prop_assert_eq!(decode_request(&fast).unwrap(), r.clone());
            prop_assert_eq!(decode_request(&encode_compat(&r).unwrap()).unwrap(), r.clone());
            let positional = rmp_serde::to_vec(&Request05 {
                method: r.method.clone(),
                path: r.path.clone(),
                query_string: r.query_string.clone(),
                header: r.header.clone(),
                body: r.body.clone(),
            }).unwrap();
            prop_assert_eq!(decode_request(&positional).unwrap(), r.clone());
            let mut padded = fast.clone();
            padded.extend_from_slice(&[0, 0, 0]);
            prop_assert_eq!(decode_request(&padded).unwrap(), r);
        }

        #[test]
        fn response_bytes_equal_serdes_and_every_shape_decodes(
            status_code in 100u32..600, status in "[A-Za-z ]{0,20}",
            body in proptest::collection::vec(any::<u8>(), 0..5000),
            header in proptest::collection::hash_map("[a-z-]{1,10}", "[ -~]{0,20}", 0..5),
        ) {
            let r = Response { status_code, status, header, body };
            let mut fast = Vec::new();
            encode_response(&r, &mut fast);
            prop_assert_eq!(&fast, &encode(&r).unwrap());
            prop_assert_eq!(decode_response(&fast).unwrap(), r.clone());
            prop_assert_eq!(decode_response(&encode_compat(&r).unwrap()).unwrap(), r.clone());
            let old = rmp_serde::to_vec(&Response05 {
                status_code: r.status_code,
                status: r.status.clone(),
                header: r.header.clone(),
                body: r.body.clone(),
            }).unwrap();
            prop_assert_eq!(decode_response(&old).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_agree_with_serde_on_success(
            bytes in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            if let Ok(r) = decode_request(&bytes) {
                // Whatever the fast decoder accepts, it reads as serde would
                // where serde accepts it too.
                if let Ok(s) = decode::<Request>(&bytes) {
                    prop_assert_eq!(r, s);
                }
            }
            let _ = decode_response(&bytes);
        }
    }

    #[test]
    fn unknown_fields_are_skipped_and_missing_status_is_an_error() {
        let with_extra = rmp_serde::to_vec_named(&serde_json::json!({
            "statusCode": 201, "extra": {"nested": [1, 2.5, null, "x"]}, "status": "Created"
        }))
        .unwrap();
        let r = decode_response(&with_extra).unwrap();
        assert_eq!((r.status_code, r.status.as_str()), (201, "Created"));
        let e = decode_response(
            &rmp_serde::to_vec_named(&serde_json::json!({"status": "OK"})).unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "response has no status code");
        assert!(
            decode_request(&vec![0x91u8; 100_000]).is_err(),
            "deep nesting is refused"
        );
    }
}
