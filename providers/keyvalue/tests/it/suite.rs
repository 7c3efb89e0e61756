//! Every operation of `wascc:keyvalue`, the same assertions for both stores.

use crate::{Kv, prefix};
use wascc_contracts::keyvalue::*;

const REDIS: &str = "redis://127.0.0.1:6379/0";

fn contract(kv: &Kv) {
    let p = prefix();
    let k = |s: &str| format!("{p}{s}");

    // Strings: get of a missing key, set, get, exists, delete.
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("s") }).unwrap();
    assert_eq!((r.value.as_str(), r.exists), ("", false));
    let r: SetResponse = kv
        .call(
            OP_SET,
            &SetRequest {
                key: k("s"),
                value: "v1".into(),
                expires_s: 0,
            },
        )
        .unwrap();
    assert_eq!(r.value, "v1");
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("s") }).unwrap();
    assert_eq!((r.value.as_str(), r.exists), ("v1", true));
    let r: GetResponse = kv.call(OP_KEY_EXISTS, &GetRequest { key: k("s") }).unwrap();
    assert!(r.exists);
    let r: DelResponse = kv.call(OP_DEL, &DelRequest { key: k("s") }).unwrap();
    assert_eq!(r.key, k("s"));
    let r: GetResponse = kv.call(OP_KEY_EXISTS, &GetRequest { key: k("s") }).unwrap();
    assert!(!r.exists);

    // Expiry.
    kv.call::<_, SetResponse>(
        OP_SET,
        &SetRequest {
            key: k("t"),
            value: "x".into(),
            expires_s: 1,
        },
    )
    .unwrap();
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("t") }).unwrap();
    assert!(r.exists);
    // A counter set to expire keeps its expiry through Add (as INCRBY).
    kv.call::<_, SetResponse>(
        OP_SET,
        &SetRequest {
            key: k("tn"),
            value: "5".into(),
            expires_s: 1,
        },
    )
    .unwrap();
    let r: AddResponse = kv
        .call(
            OP_ADD,
            &AddRequest {
                key: k("tn"),
                value: 1,
            },
        )
        .unwrap();
    assert_eq!(r.value, 6);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("t") }).unwrap();
    assert!(!r.exists, "a value set to expire after 1 s is still there");
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("tn") }).unwrap();
    assert!(!r.exists, "Add dropped the counter's expiry");

    // Atomic add: from nothing, up and down, not on text, not past i32.
    let r: AddResponse = kv
        .call(
            OP_ADD,
            &AddRequest {
                key: k("n"),
                value: 5,
            },
        )
        .unwrap();
    assert_eq!(r.value, 5);
    let r: AddResponse = kv
        .call(
            OP_ADD,
            &AddRequest {
                key: k("n"),
                value: -7,
            },
        )
        .unwrap();
    assert_eq!(r.value, -2);
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("n") }).unwrap();
    assert_eq!(r.value, "-2");
    kv.call::<_, SetResponse>(
        OP_SET,
        &SetRequest {
            key: k("txt"),
            value: "abc".into(),
            expires_s: 0,
        },
    )
    .unwrap();
    let e = kv
        .call::<_, AddResponse>(
            OP_ADD,
            &AddRequest {
                key: k("txt"),
                value: 1,
            },
        )
        .unwrap_err();
    assert!(e.contains("\"abc\", which is not an integer"), "{e}");
    kv.call::<_, AddResponse>(
        OP_ADD,
        &AddRequest {
            key: k("big"),
            value: i32::MAX,
        },
    )
    .unwrap();
    let e = kv
        .call::<_, AddResponse>(
            OP_ADD,
            &AddRequest {
                key: k("big"),
                value: 1,
            },
        )
        .unwrap_err();
    assert!(e.contains("overflows"), "{e}");
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("big") }).unwrap();
    assert_eq!(
        r.value,
        i32::MAX.to_string(),
        "a refused add changed the value"
    );

    // Lists: push, range (Redis indexes), delete an item, clear.
    for (i, v) in ["a", "b", "c", "b"].iter().enumerate() {
        let r: ListResponse = kv
            .call(
                OP_PUSH,
                &ListPushRequest {
                    key: k("l"),
                    value: v.to_string(),
                },
            )
            .unwrap();
        assert_eq!(r.new_count, i as i32 + 1);
    }
    let range = |start, stop| -> Vec<String> {
        kv.call::<_, ListRangeResponse>(
            OP_RANGE,
            &ListRangeRequest {
                key: k("l"),
                start,
                stop,
            },
        )
        .unwrap()
        .values
    };
    assert_eq!(range(0, -1), ["a", "b", "c", "b"]);
    assert_eq!(range(1, 2), ["b", "c"]);
    assert_eq!(range(-2, -1), ["c", "b"]);
    assert_eq!(range(3, 1), Vec::<String>::new());
    assert_eq!(range(0, 100).len(), 4);
    let r: ListResponse = kv
        .call(
            OP_LIST_DEL,
            &ListDelItemRequest {
                key: k("l"),
                value: "b".into(),
            },
        )
        .unwrap();
    assert_eq!(r.new_count, 3);
    assert_eq!(range(0, -1), ["a", "c", "b"], "only the first b goes");
    let r: ListResponse = kv
        .call(
            OP_LIST_DEL,
            &ListDelItemRequest {
                key: k("none"),
                value: "b".into(),
            },
        )
        .unwrap();
    assert_eq!(r.new_count, 0);
    let r: GetResponse = kv
        .call(OP_KEY_EXISTS, &GetRequest { key: k("none") })
        .unwrap();
    assert!(!r.exists, "deleting from a missing list created it");
    let r: GetResponse = kv.call(OP_KEY_EXISTS, &GetRequest { key: k("l") }).unwrap();
    assert!(r.exists);
    kv.call::<_, DelResponse>(OP_CLEAR, &DelRequest { key: k("l") })
        .unwrap();
    assert_eq!(range(0, -1), Vec::<String>::new());

    // Sets: add, remove, query, union, intersection; emptied sets vanish.
    for v in ["x", "y", "z"] {
        let r: SetOperationResponse = kv
            .call(
                OP_SET_ADD,
                &SetMemberRequest {
                    key: k("s1"),
                    value: v.into(),
                },
            )
            .unwrap();
        assert_eq!(r.new_count, 1);
    }
    let r: SetOperationResponse = kv
        .call(
            OP_SET_ADD,
            &SetMemberRequest {
                key: k("s1"),
                value: "x".into(),
            },
        )
        .unwrap();
    assert_eq!(r.new_count, 0, "adding a member twice counts once");
    for v in ["y", "w"] {
        kv.call::<_, SetOperationResponse>(
            OP_SET_ADD,
            &SetMemberRequest {
                key: k("s2"),
                value: v.into(),
            },
        )
        .unwrap();
    }
    let q: SetQueryResponse = kv
        .call(OP_SET_QUERY, &SetQueryRequest { key: k("s1") })
        .unwrap();
    assert_eq!(q.values, ["x", "y", "z"]);
    let q: SetQueryResponse = kv
        .call(
            OP_SET_UNION,
            &SetCombineRequest {
                keys: vec![k("s1"), k("s2")],
            },
        )
        .unwrap();
    assert_eq!(q.values, ["w", "x", "y", "z"]);
    let q: SetQueryResponse = kv
        .call(
            OP_SET_INTERSECT,
            &SetCombineRequest {
                keys: vec![k("s1"), k("s2")],
            },
        )
        .unwrap();
    assert_eq!(q.values, ["y"]);
    let q: SetQueryResponse = kv
        .call(OP_SET_UNION, &SetCombineRequest { keys: vec![] })
        .unwrap();
    assert!(q.values.is_empty());
    let r: SetOperationResponse = kv
        .call(
            OP_SET_REMOVE,
            &SetMemberRequest {
                key: k("s2"),
                value: "nope".into(),
            },
        )
        .unwrap();
    assert_eq!(r.new_count, 0);
    for v in ["y", "w"] {
        let r: SetOperationResponse = kv
            .call(
                OP_SET_REMOVE,
                &SetMemberRequest {
                    key: k("s2"),
                    value: v.into(),
                },
            )
            .unwrap();
        assert_eq!(r.new_count, 1);
    }
    let r: GetResponse = kv
        .call(OP_KEY_EXISTS, &GetRequest { key: k("s2") })
        .unwrap();
    assert!(!r.exists, "an emptied set is still there");

    // Types: a list is not a set, nor a counter; it exists but has no value.
    kv.call::<_, ListResponse>(
        OP_PUSH,
        &ListPushRequest {
            key: k("l2"),
            value: "a".into(),
        },
    )
    .unwrap();
    let e = kv
        .call::<_, SetOperationResponse>(
            OP_SET_ADD,
            &SetMemberRequest {
                key: k("l2"),
                value: "a".into(),
            },
        )
        .unwrap_err();
    assert!(e.contains("holds a value that is not a set"), "{e}");
    let e = kv
        .call::<_, AddResponse>(
            OP_ADD,
            &AddRequest {
                key: k("l2"),
                value: 1,
            },
        )
        .unwrap_err();
    assert!(e.contains("not a string"), "{e}");
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: k("l2") }).unwrap();
    assert_eq!((r.value.as_str(), r.exists), ("", true));

    // Unknown operations and malformed payloads name the problem.
    let e = kv
        .call::<_, GetResponse>("Frobnicate", &GetRequest { key: k("s") })
        .unwrap_err();
    assert!(e.contains("no operation \"Frobnicate\""), "{e}");
    let e = kv
        .call::<_, AddResponse>(OP_ADD, &GetRequest { key: k("s") })
        .unwrap_err();
    assert!(e.contains("cannot decode"), "{e}");

    for key in ["n", "txt", "big", "s1", "l2"] {
        kv.call::<_, DelResponse>(OP_DEL, &DelRequest { key: k(key) })
            .unwrap();
    }
}

#[test]
fn contract_in_memory() {
    contract(&Kv::new(&[]).unwrap());
}

#[test]
fn contract_on_redis() {
    contract(&Kv::new(&[("URL", REDIS)]).unwrap());
}

#[test]
fn bindings_in_memory_are_stores_of_their_own_and_redis_is_shared() {
    let kv = Kv::new(&[]).unwrap();
    let key = format!("{}k", prefix());
    kv.call::<_, SetResponse>(
        OP_SET,
        &SetRequest {
            key: key.clone(),
            value: "mem".into(),
            expires_s: 0,
        },
    )
    .unwrap();
    // Rebinding the same actor and name to Redis moves it there.
    kv.bind(&[("URL", REDIS)]).unwrap();
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: key.clone() }).unwrap();
    assert!(!r.exists, "a Redis binding saw the in-memory value");
    kv.call::<_, SetResponse>(
        OP_SET,
        &SetRequest {
            key: key.clone(),
            value: "redis".into(),
            expires_s: 0,
        },
    )
    .unwrap();
    // Another provider (another host) on the same Redis sees it.
    let other = Kv::new(&[("URL", REDIS)]).unwrap();
    let r: GetResponse = other
        .call(OP_GET, &GetRequest { key: key.clone() })
        .unwrap();
    assert_eq!(r.value, "redis");
    // Back to memory: the memory value is still there.
    kv.bind(&[]).unwrap();
    let r: GetResponse = kv.call(OP_GET, &GetRequest { key: key.clone() }).unwrap();
    assert_eq!(r.value, "mem");
    other
        .call::<_, DelResponse>(OP_DEL, &DelRequest { key })
        .unwrap();
}

#[test]
fn bad_binding_values_are_refused_at_bind_time() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("URL", "http://127.0.0.1:6379")], "is not a Redis URL"),
        (
            &[("URL", REDIS), ("POOL_SIZE", "0")],
            "POOL_SIZE \"0\" is not a number from 1 to",
        ),
        (
            &[("URL", REDIS), ("TIMEOUT_MS", "soon")],
            "TIMEOUT_MS \"soon\" is not a positive number",
        ),
        (
            &[("POOL_SIZE", "2")],
            "POOL_SIZE applies to Redis bindings only",
        ),
        (
            &[("URL", REDIS), ("PORT", "1")],
            "unknown binding value \"PORT\" for wascc:keyvalue",
        ),
        // Nothing listens on port 1.
        (
            &[("URL", "redis://127.0.0.1:1/0")],
            "cannot connect to redis at redis://127.0.0.1:1/0",
        ),
    ];
    for (values, want) in cases {
        let e = Kv::new(values)
            .err()
            .unwrap_or_else(|| panic!("{values:?} was accepted"));
        assert!(e.contains(want), "{values:?}: {e}");
    }
}
