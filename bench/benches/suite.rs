//! waSCC's criterion suite, each group with a baseline measured in the same
//! run: pooled instantiation and one waPC round trip on the jit and interp
//! engines (baseline: the same work natively), claims verification
//! (baseline: SHA-256 alone), invocation envelopes (baseline: copying the
//! payload), the HTTP codec (serde against the wire codec), and actor →
//! actor calls through a real host on one shard and across shards
//! (baseline: the HTTP request that carries them).
//!
//! Run: `cargo bench -p wascc-bench --bench suite` (or `make bench`).

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{Criterion, criterion_group, criterion_main};

// The host binary's allocator, so that measured calls allocate as they do
// in wascc-host (glibc malloc, the default, gave 10–15 % fewer lattice
// calls per second under load in a profiling driver).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use futures_lite::future::block_on;
use nkeys::KeyPair;
use std::hint::black_box;
use std::sync::Arc;
use wascc_bench::NoHost;
use wascc_engines::{Engine, EngineConfig, EngineKind, HostHandler};

fn engines(c: &mut Criterion) {
    let actor = wascc_bench::signed_actor("kitchen", &[], &KeyPair::new_account());
    let payload = wascc_contracts::encode(&"hello, actor").unwrap();
    let handler: Arc<dyn HostHandler> = Arc::new(NoHost);

    let mut g = c.benchmark_group("wapc_round_trip");
    g.bench_function("native_baseline", |b| {
        b.iter(|| {
            let s: String = wascc_contracts::decode(black_box(&payload)).unwrap();
            black_box(wascc_contracts::encode(&s).unwrap())
        })
    });
    for kind in [EngineKind::Jit, EngineKind::Interp] {
        let engine = Engine::new(EngineConfig::new(kind)).unwrap();
        let module = engine.load(&actor.wasm).unwrap();
        let mut inst = block_on(module.instantiate(&actor.key, handler.clone())).unwrap();
        g.bench_function(kind.as_str(), |b| {
            b.iter(|| black_box(block_on(inst.call("Echo", black_box(&payload))).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pooled_instantiate");
    for kind in [EngineKind::Jit, EngineKind::Interp] {
        let engine = Engine::new(EngineConfig::new(kind)).unwrap();
        let module = engine.load(&actor.wasm).unwrap();
        g.bench_function(kind.as_str(), |b| {
            b.iter(|| black_box(block_on(module.instantiate(&actor.key, handler.clone())).unwrap()))
        });
    }

    // The lean echo actor on a dense engine (exact-size slots, no
    // copy-on-write): what a host packing many actors pays per instance.
    let echo = wascc_bench::actor_wasm("echo");
    let (memory, table) = wascc_bench::density::module_needs(&echo).unwrap();
    let engine = Engine::new(EngineConfig::dense(
        EngineKind::Jit,
        1000,
        memory as usize,
        table.max(1) as usize,
    ))
    .unwrap();
    let module = engine.load(&echo).unwrap();
    g.bench_function("echo_dense_jit", |b| {
        b.iter(|| black_box(block_on(module.instantiate("echo", handler.clone())).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("claims");
    g.bench_function("verify_kitchen", |b| {
        b.iter(|| {
            black_box(wascc_claims::verify(black_box(&actor.wasm), &Default::default()).unwrap())
        })
    });
    g.bench_function("sha256_baseline", |b| {
        b.iter(|| black_box(wascc_claims::module_hash(black_box(&actor.wasm))))
    });
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    use wascc_scheduler::envelope::{Envelope, SealedEnvelope};
    let key = KeyPair::new_module().public_key();
    let payload = wascc_contracts::encode(
        &"a hundred bytes of payload, more or less, as a small actor call would carry them here",
    )
    .unwrap();
    let mut g = c.benchmark_group("envelope");
    g.bench_function("copy_baseline", |b| {
        b.iter(|| black_box(black_box(&payload).to_vec()))
    });
    g.bench_function("seal", |b| {
        b.iter(|| {
            black_box(SealedEnvelope::seal(&Envelope {
                origin: "http",
                target: black_box(&key),
                operation: "Echo",
                payload: black_box(&payload),
                depth: 0,
            }))
        })
    });
    let sealed = SealedEnvelope::seal(&Envelope {
        origin: "http",
        target: &key,
        operation: "Echo",
        payload: &payload,
        depth: 0,
    });
    g.bench_function("open_and_read", |b| {
        b.iter(|| {
            let e = black_box(&sealed).open();
            black_box((
                e.target().len(),
                e.operation().len(),
                e.payload().len(),
                e.depth(),
            ))
        })
    });
    g.bench_function("validate_untrusted", |b| {
        b.iter(|| black_box(SealedEnvelope::from_bytes(black_box(sealed.as_bytes())).unwrap()))
    });
    g.finish();
}

fn http_codec(c: &mut Criterion) {
    use wascc_contracts::http::{Request, Response};
    use wascc_contracts::http_wire;
    let req = Request {
        method: "GET".into(),
        path: "/api/items".into(),
        query_string: "page=2&size=20".into(),
        header: [
            ("host", "127.0.0.1:8080"),
            ("user-agent", "wascc-loadgen"),
            ("accept", "*/*"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        body: Vec::new(),
    };
    let resp = Response::json(br#"{"method":"GET","path":"/api/items"}"#.to_vec());
    let resp_bytes = wascc_contracts::encode(&resp).unwrap();
    let mut g = c.benchmark_group("http_codec");
    g.bench_function("request_encode_serde", |b| {
        b.iter(|| black_box(wascc_contracts::encode(black_box(&req)).unwrap()))
    });
    g.bench_function("request_encode_wire", |b| {
        b.iter(|| {
            let mut v = Vec::new();
            http_wire::encode_request(black_box(&req), &mut v);
            black_box(v)
        })
    });
    g.bench_function("response_decode_serde", |b| {
        b.iter(|| black_box(wascc_contracts::decode::<Response>(black_box(&resp_bytes)).unwrap()))
    });
    g.bench_function("response_decode_wire", |b| {
        b.iter(|| black_box(http_wire::decode_response(black_box(&resp_bytes)).unwrap()))
    });
    g.finish();
}

fn actor_calls(c: &mut Criterion) {
    let host = wascc_bench::calls::CallHost::start();
    let mut g = c.benchmark_group("actor_call");
    // Each sample is one HTTP request to actor A that makes `iters` calls;
    // the HTTP request alone (0 calls) is the baseline.
    g.bench_function("http_request_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| host.repeat(host.same_shard(), 0)).sum())
    });
    g.bench_function("same_shard", |b| {
        b.iter_custom(|iters| host.repeat_local(host.same_shard(), iters))
    });
    g.bench_function("cross_shard", |b| {
        b.iter_custom(|iters| host.repeat_local(host.cross_shard(), iters))
    });
    g.finish();
}

fn provider_calls(c: &mut Criterion) {
    use wascc_bench::calls::CallHost;
    // Redis is optional here: the group runs without it, leaving it out.
    const REDIS: &str = "redis://127.0.0.1:6379/0";
    let redis = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    let builtin = CallHost::key_value(false, redis.then_some(REDIS));
    let portable = CallHost::key_value(true, None);
    let mut g = c.benchmark_group("provider_call");
    // Each sample is one HTTP request to the actor that makes `iters`
    // key-value `Get`s; the HTTP request alone (0 calls) is the baseline.
    g.bench_function("http_request_baseline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| builtin.kv_get("default", 0)).sum())
    });
    // In the host's memory: answered on the shard (`Ready`).
    g.bench_function("builtin_memory", |b| {
        b.iter_custom(|iters| builtin.kv_get("default", iters))
    });
    // The memkv portable provider: its own thread and wasm instance (`Pending`).
    g.bench_function("portable_memkv", |b| {
        b.iter_custom(|iters| portable.kv_get("default", iters))
    });
    // Redis on this machine through the services thread (`Pending` + network).
    if redis {
        g.bench_function("builtin_redis", |b| {
            b.iter_custom(|iters| builtin.kv_get("redis", iters))
        });
    }
    g.finish();
}

fn lattice_calls(c: &mut Criterion) {
    use wascc_bench::calls::CallHost;
    // Needs NATS with JetStream here; without it the group is left out.
    const NATS: &str = "nats://127.0.0.1:4222";
    if std::net::TcpStream::connect("127.0.0.1:4222").is_err() {
        return;
    }
    let raw = wascc_bench::nats::RawNats::start(NATS);
    let hosts = CallHost::across_hosts(NATS);
    let mut g = c.benchmark_group("lattice_call");
    // Baseline: a plain async-nats request and reply, one after another.
    g.bench_function("raw_nats_request_baseline", |b| {
        b.iter_custom(|iters| raw.round_trips(iters))
    });
    // Actor a calls actor b on the other host: a sealed request through
    // NATS, the reply back to a's shard (one HTTP request carries up to
    // 2,000 calls).
    g.bench_function("actor_to_actor_across_hosts", |b| {
        b.iter_custom(|iters| hosts.repeat_chunked(hosts.remote(), iters))
    });
    g.finish();
}

criterion_group!(
    benches,
    engines,
    envelopes,
    http_codec,
    actor_calls,
    provider_calls,
    lattice_calls
);
criterion_main!(benches);
