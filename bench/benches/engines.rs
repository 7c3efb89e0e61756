//! Criterion benchmarks of the engines: pooled instantiation and one waPC
//! round trip, on the jit and interp engines, with the same work done
//! natively (encode + decode, no wasm) as the baseline of the same run.
//!
//! Run: `cargo bench -p wascc-bench --bench engines`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use futures_lite::future::block_on;
use nkeys::KeyPair;
use std::hint::black_box;
use std::sync::Arc;
use wascc_engines::{Engine, EngineConfig, EngineKind, HostCall, HostHandler, HostReply};

struct NoHost;

impl HostHandler for NoHost {
    fn host_call(&self, call: HostCall) -> HostReply {
        HostReply::Ready(Err(format!(
            "no host calls in benchmarks ({})",
            call.namespace
        )))
    }
    fn console_log(&self, _: &str, _: &str) {}
}

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

criterion_group!(benches, engines);
criterion_main!(benches);
