//! `wascc-bench lattice`: lattice RPC latency (p50, p99) and throughput
//! against the raw NATS request/reply round trip, measured in the same run
//! on the same server.
//!
//! The lattice side: a host (in this process, one shard) runs a kitchen
//! actor; a driver joins the lattice as a host would and invokes the
//! actor's `Echo` with sealed invocations (`Rpc::call_actor`): the seal,
//! NATS, the receiving host's checks, its shard and the actor, and back.
//! The raw side: a plain async-nats responder echoing the payload. Both
//! drivers run on a one-worker tokio runtime, as a host's services do.
//! Latency: one call at a time; throughput: `concurrency` callers for
//! `seconds`; each phase in rounds taken by the two sides in turn.
//!
//! Then actor → actor, the whole path an actor's call takes: kitchen `a`
//! on one host calls kitchen `b` on another (both in this process, one
//! shard each), in HTTP requests to `a` of many calls each (`/repeat`), so
//! the HTTP request's own cost is spread thin. The actor cannot time one
//! call, so this side reports the mean per call (one caller) and
//! throughput (`concurrency` requests to `a` at once), against the raw
//! round trip's mean and throughput, again in alternating rounds.
//!
//! Last, HTTP for an actor another host runs: a third host, with the HTTP
//! server and no actor, is bound to `b` through the control interface;
//! requests to it, one at a time, against the same request to `a` on its
//! own host and the raw round trip (p50s; what crossing hosts adds).

use crate::calls::{kitchens, spawn_host};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What to measure.
#[derive(Debug, Clone)]
pub struct LatticeBenchOptions {
    /// The NATS server (with JetStream).
    pub nats: String,
    /// A CA to trust for its TLS certificate (both sides then use TLS).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Sequential calls for the latency figures.
    pub calls: u64,
    /// Concurrent callers for the throughput figure.
    pub concurrency: usize,
    /// How long the throughput phase runs.
    pub seconds: f64,
    /// Blocks (and lifts) to time.
    pub blocks: u32,
    /// Pin the hosts and let their shards spin this long before parking
    /// ([`crate::calls::pin_hosts`]); none: unpinned, no spinning.
    pub spin_us: Option<u64>,
}

/// One side's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Median latency, one call at a time.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Calls per second with `concurrency` callers.
    pub throughput_rps: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct LatticeReport {
    /// Raw NATS request/reply.
    pub raw_nats: Side,
    /// A sealed invocation of an actor on another host.
    pub lattice: Side,
    /// lattice p50 / raw p50 (target ≤ 1.25).
    pub p50_ratio: f64,
    /// lattice p99 / raw p99 (target ≤ 1.25).
    pub p99_ratio: f64,
    /// lattice throughput / raw throughput (target ≥ 0.8).
    pub throughput_ratio: f64,
    /// Concurrent callers in the throughput phase.
    pub concurrency: usize,
    /// From writing a block of the calling actor's key to the other host
    /// refusing its invocation: median and worst of `blocks` blocks, µs.
    pub block_p50_us: f64,
    /// The slowest block.
    pub block_max_us: f64,
    /// From lifting it to the next invocation passing, median, µs.
    pub unblock_p50_us: f64,
    /// How the measured invocations were sealed.
    pub sealed: Sealed,
    /// Actor → actor across hosts against raw NATS.
    pub actor_to_actor: ActorToActor,
    /// HTTP requests for an actor another host runs.
    pub http_to_remote_actor: HttpAcross,
    /// How long the hosts' shards spun before parking (pinned), if they
    /// did.
    pub spin_us: Option<u64>,
}

/// HTTP requests (one at a time, on a keep-alive connection) to a host
/// that serves HTTP for an actor it does not run, which the lattice
/// delivers to the host that does; against the same requests to a host
/// running the actor, and the raw NATS round trip, in alternating rounds.
#[derive(Debug, Clone, Serialize)]
pub struct HttpAcross {
    /// To the host running the actor: median µs.
    pub local_p50_us: f64,
    /// To the host that only serves HTTP: median µs.
    pub remote_p50_us: f64,
    /// What crossing hosts adds at the median (remote − local), µs.
    pub added_p50_us: f64,
    /// Raw NATS request/reply in the same rounds: median µs.
    pub raw_p50_us: f64,
    /// added_p50_us / raw_p50_us.
    pub added_ratio: f64,
    /// Requests per side.
    pub requests: u64,
}

/// Actor `a` on one host calling actor `b` on another, against raw NATS.
#[derive(Debug, Clone, Serialize)]
pub struct ActorToActor {
    /// Raw NATS request/reply, mean of one at a time, µs.
    pub raw_mean_us: f64,
    /// One call of `a` to `b`, mean of one at a time, µs.
    pub mean_us: f64,
    /// mean_us / raw_mean_us.
    pub mean_ratio: f64,
    /// Raw NATS request/reply, one at a time, median µs.
    pub raw_p50_us: f64,
    /// Raw NATS, 99th percentile µs.
    pub raw_p99_us: f64,
    /// One call of `a` to `b`, median µs, as `a`'s host measures it (from
    /// sealing to the checked reply: `wascc_lattice_call_duration_seconds`,
    /// read within a few percent).
    pub p50_us: f64,
    /// 99th percentile of the same, µs.
    pub p99_us: f64,
    /// p50_us / raw_p50_us.
    pub p50_ratio: f64,
    /// p99_us / raw_p99_us.
    pub p99_ratio: f64,
    /// Raw NATS with `concurrency` requesters, per second.
    pub raw_throughput_rps: f64,
    /// Calls of `a` to `b` with `concurrency` invocations of `a` calling.
    pub throughput_rps: f64,
    /// throughput_rps / raw_throughput_rps.
    pub throughput_ratio: f64,
}

/// Calls one HTTP request to `a` carries in the throughput phase: enough
/// that the request's own cost is a few percent of them.
const CALLS_PER_CONCURRENT_REQUEST: u64 = 20;

/// How many of the measured invocations (latency and throughput phases)
/// were sent with MAC tags or signed.
#[derive(Debug, Clone, Serialize)]
pub struct Sealed {
    /// With MAC tags.
    pub mac: u64,
    /// Signed (no MAC key for the host yet).
    pub signature: u64,
    /// Tagged, then sent again signed.
    pub resealed: u64,
}

type CallFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CallFn = Arc<dyn Fn() -> CallFuture + Send + Sync>;

/// Serves nothing: the driver only calls.
struct Nothing;

impl wascc_lattice::rpc::LocalActors for Nothing {
    fn invoke(
        &self,
        _: &str,
        actor: &str,
        _: &str,
        _: &[u8],
        _: bool,
        _: u32,
    ) -> wascc_lattice::rpc::ReplyFuture {
        let e = format!("the benchmark driver runs no actor ({actor})");
        Box::pin(async move { Err(e) })
    }
}

impl wascc_lattice::rpc::LocalProviders for Nothing {
    fn call(
        &self,
        _: &wascc_lattice::rpc::BindingKey,
        _: &str,
        _: &[u8],
    ) -> wascc_lattice::rpc::ReplyFuture {
        Box::pin(async { Err("the benchmark driver holds no binding".to_string()) })
    }
}

/// Rounds each phase is cut into, taken by the two sides in turn (raw,
/// lattice, raw, …): on a shared machine whose speed drifts over seconds,
/// both sides then see the same drift instead of one side getting the calm
/// and the other the noise.
const ROUNDS: u64 = 10;

/// Measures both sides, interleaved by rounds: latency one call at a time
/// (`opts.calls` per side), then throughput with `opts.concurrency`
/// callers (`opts.seconds` per side).
fn measure_both(
    rt: &tokio::runtime::Runtime,
    sides: [&CallFn; 2],
    opts: &LatticeBenchOptions,
) -> Result<[Side; 2], String> {
    rt.block_on(async {
        // Warm up: connections, caches, the actor's instance.
        for call in sides {
            for _ in 0..200 {
                call().await?;
            }
        }
        let mut hist = [
            Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
            Histogram::<u64>::new(3).map_err(|e| e.to_string())?,
        ];
        let per_round = opts.calls.div_ceil(ROUNDS);
        for _ in 0..ROUNDS {
            for (call, h) in sides.iter().zip(hist.iter_mut()) {
                for _ in 0..per_round {
                    let started = Instant::now();
                    call().await?;
                    let _ = h.record(started.elapsed().as_nanos() as u64);
                }
            }
        }
        let mut totals = [(0u64, Duration::ZERO); 2];
        let slice = Duration::from_secs_f64(opts.seconds / ROUNDS as f64);
        for _ in 0..ROUNDS {
            for (call, total) in sides.iter().zip(totals.iter_mut()) {
                let (calls, elapsed) = throughput(call, opts.concurrency, slice).await?;
                total.0 += calls;
                total.1 += elapsed;
            }
        }
        let side = |h: &Histogram<u64>, (calls, elapsed): (u64, Duration)| {
            let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            Side {
                p50_us: us(0.5),
                p99_us: us(0.99),
                p999_us: us(0.999),
                throughput_rps: calls as f64 / elapsed.as_secs_f64(),
            }
        };
        Ok([side(&hist[0], totals[0]), side(&hist[1], totals[1])])
    })
}

/// Calls completed by `concurrency` callers in about `slice`, and the time
/// they were counted over.
async fn throughput(
    call: &CallFn,
    concurrency: usize,
    slice: Duration,
) -> Result<(u64, Duration), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (call, stop, done) = ((*call).clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        }));
    }
    // Counted once the callers run steadily, as on the lattice side.
    tokio::time::sleep(crate::calls::STEADY_AFTER).await;
    let (before, started) = (done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(slice).await;
    let calls = done.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok((calls, elapsed))
}

/// Runs both sides; an error names what failed (NATS unreachable, say).
pub fn run(opts: &LatticeBenchOptions) -> Result<LatticeReport, String> {
    if let Some(us) = opts.spin_us {
        crate::calls::pin_hosts(Duration::from_micros(us));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let payload = bytes::Bytes::from_static(&[0xa1, b'x']);

    // Raw NATS.
    let raw = crate::nats::RawNats::start_tls(&opts.nats, opts.tls_ca.as_deref());
    // A client of this runtime (the responder's lives on its own).
    let client = rt
        .block_on(crate::nats::connect(&opts.nats, opts.tls_ca.as_deref()))
        .map_err(|e| format!("cannot connect to {}: {e}", opts.nats))?;
    let subject = raw.subject().to_string();
    let raw_payload = payload.clone();
    let raw_call: CallFn = Arc::new(move || {
        let (client, subject, payload) = (client.clone(), subject.clone(), raw_payload.clone());
        Box::pin(async move {
            client
                .request(subject, payload)
                .await
                .map(drop)
                .map_err(|e| format!("raw NATS request: {e}"))
        })
    });

    // The lattice: a host running the kitchen, and a driver.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let [(key, path)] = kitchens(&dir, ["b"]);
    let options = wascc_lattice::LatticeOptions {
        url: opts.nats.clone(),
        lattice: format!("benchrpc{}", std::process::id()),
        tls_ca: opts.tls_ca.clone(),
        ..Default::default()
    };
    let (stop, host) = spawn_host(
        &dir,
        &format!("actors: [{}]\n", path.display()),
        (1, 1),
        Some(options.clone()),
        None,
    );
    let result = (|| {
        let lattice = rt
            .block_on(wascc_lattice::Lattice::connect(&options))
            .map_err(|e| e.to_string())?;
        // The driver joins as a host does: its record publishes its
        // exchange key, and its view gives it the MAC keys it shares with
        // the host (the host learns the driver's from the record).
        let driver = rt
            .block_on(wascc_lattice::Participant::join(
                &lattice,
                nkeys::KeyPair::new_server(),
            ))
            .map_err(|e| e.to_string())?;
        let rpc = wascc_lattice::rpc::Rpc::new(
            lattice.clone(),
            driver.sealer.clone(),
            driver.directory.clone(),
            rt.handle().clone(),
            Arc::new(Nothing),
            Arc::new(Nothing),
            wascc_lattice::invocation::Verifier::new(Vec::new(), wascc_lattice::now_millis()),
            Arc::default(),
        );
        let block_state = lattice.clone();
        let counts = rpc.clone();
        let caller = nkeys::KeyPair::new_module().public_key();
        let caller_key = caller.clone();
        let lattice_call: CallFn = Arc::new(move || {
            let reply = rpc.call_actor(&caller, &key, "Echo", payload.to_vec(), (false, 1), None);
            Box::pin(async move { reply.await.map(drop) })
        });
        // The host serves once its subscription is in place.
        let deadline = Instant::now() + Duration::from_secs(30);
        while rt.block_on(lattice_call()).is_err() {
            if Instant::now() > deadline {
                return Err("the host never answered".to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let before = counts.counts();
        let [raw_side, side] = measure_both(&rt, [&raw_call, &lattice_call], opts)?;
        let after = counts.counts();
        let blocks = time_blocks(&rt, &block_state, &caller_key, &lattice_call, opts.blocks)?;
        let sealed = Sealed {
            mac: after.sent_tagged - before.sent_tagged,
            signature: after.sent_signed - before.sent_signed,
            resealed: after.resealed - before.resealed,
        };
        Ok((raw_side, side, blocks, sealed))
    })();
    stop.store(true, Ordering::Relaxed);
    let _ = host.join();
    let (raw_side, lattice_side, (block_p50_us, block_max_us, unblock_p50_us), sealed) = result?;
    let (actor_to_actor, http_to_remote_actor) = actor_to_actor(&rt, &raw, &raw_call, opts)?;
    Ok(LatticeReport {
        spin_us: opts.spin_us,
        actor_to_actor,
        http_to_remote_actor,
        sealed,
        block_p50_us,
        block_max_us,
        unblock_p50_us,
        p50_ratio: lattice_side.p50_us / raw_side.p50_us,
        p99_ratio: lattice_side.p99_us / raw_side.p99_us,
        throughput_ratio: lattice_side.throughput_rps / raw_side.throughput_rps,
        raw_nats: raw_side,
        lattice: lattice_side,
        concurrency: opts.concurrency,
    })
}

/// Actor → actor across hosts against raw NATS (see the module's note):
/// `opts.calls` calls a side for the means, `opts.seconds` a side for
/// throughput, in [`ROUNDS`] alternating rounds each.
fn actor_to_actor(
    rt: &tokio::runtime::Runtime,
    raw: &crate::nats::RawNats,
    raw_call: &CallFn,
    opts: &LatticeBenchOptions,
) -> Result<(ActorToActor, HttpAcross), String> {
    let hosts = crate::calls::CallHost::across(crate::calls::across_lattice(
        &opts.nats,
        opts.tls_ca.clone(),
    ));
    let across = http_across(rt, raw, &hosts, opts)?;
    let b = hosts.remote().to_string();
    // Warm up: connections, instances, the MAC keys of the two hosts.
    raw.round_trips(200);
    hosts.repeat_chunked(&b, 2_000);
    let per_round = opts.calls.div_ceil(ROUNDS);
    let (mut raw_time, mut a2a_time) = (Duration::ZERO, Duration::ZERO);
    let mut raw_each = Histogram::<u64>::new(3).expect("histogram");
    let before = hosts.call_durations();
    for _ in 0..ROUNDS {
        raw_time += raw.round_trips_each(per_round, |d| {
            let _ = raw_each.record(d.as_nanos() as u64);
        });
        a2a_time += hosts.repeat_chunked(&b, per_round);
    }
    let a2a_each = hosts.call_durations().since(&before);
    let a2a_us = |q: f64| {
        a2a_each
            .quantile(q)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    };
    let raw_us = |q: f64| raw_each.value_at_quantile(q) as f64 / 1e3;
    let calls = (per_round * ROUNDS) as f64;
    let slice = Duration::from_secs_f64(opts.seconds / ROUNDS as f64);
    let (mut raw_done, mut a2a_done) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    for _ in 0..ROUNDS {
        let (n, t) = rt
            .block_on(throughput(raw_call, opts.concurrency, slice))
            .unwrap_or_else(|e| panic!("{e}"));
        raw_done = (raw_done.0 + n, raw_done.1 + t);
        let (n, t) =
            hosts.repeat_concurrently(&b, opts.concurrency, CALLS_PER_CONCURRENT_REQUEST, slice);
        a2a_done = (a2a_done.0 + n, a2a_done.1 + t);
    }
    let us = |t: Duration| t.as_secs_f64() * 1e6 / calls;
    let rps = |(n, t): (u64, Duration)| n as f64 / t.as_secs_f64();
    let a2a = ActorToActor {
        raw_mean_us: us(raw_time),
        mean_us: us(a2a_time),
        mean_ratio: a2a_time.as_secs_f64() / raw_time.as_secs_f64(),
        raw_p50_us: raw_us(0.5),
        raw_p99_us: raw_us(0.99),
        p50_us: a2a_us(0.5),
        p99_us: a2a_us(0.99),
        p50_ratio: a2a_us(0.5) / raw_us(0.5),
        p99_ratio: a2a_us(0.99) / raw_us(0.99),
        raw_throughput_rps: rps(raw_done),
        throughput_rps: rps(a2a_done),
        throughput_ratio: rps(a2a_done) / rps(raw_done),
    };
    Ok((a2a, across))
}

/// HTTP requests to a third host of `hosts`' lattice, which serves HTTP
/// for kitchen `b` (bound through the control interface) but runs no
/// actor, against the same request to `a` on its own host (`/repeat?b&0`:
/// the kitchen answers without calling), and raw NATS; `opts.calls / 4`
/// requests a side in alternating rounds.
fn http_across(
    rt: &tokio::runtime::Runtime,
    raw: &crate::nats::RawNats,
    hosts: &crate::calls::CallHost,
    opts: &LatticeBenchOptions,
) -> Result<HttpAcross, String> {
    let options = crate::calls::across_lattice(&opts.nats, opts.tls_ca.clone());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let front = "labels: {bench: http-front}\ncapabilities: [{id: wascc:http_server}]\n";
    // On the CPU of the calling actor's host (idle meanwhile), not on that
    // of the host it delivers to.
    let (stop, host) = spawn_host(&dir, front, (1, 0), Some(options.clone()), None);
    let result = (|| {
        let state = rt
            .block_on(wascc_lattice::Lattice::connect(&options))
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let id = loop {
            let listed = rt.block_on(state.hosts()).map_err(|e| e.to_string())?;
            let front = listed
                .into_iter()
                .find(|h| h.labels.get("bench").map(String::as_str) == Some("http-front"));
            match front {
                Some(h) => break h.id,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => return Err("the HTTP host never joined".to_string()),
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let body = serde_json::json!({"actor": hosts.remote(), "capability": "wascc:http_server",
            "values": {"PORT": port.to_string(), "ADDR": "127.0.0.1"}});
        let bound = rt
            .block_on(wascc_lattice::control::request(
                &state,
                &id,
                "binding.put",
                &body,
            ))
            .map_err(|e| e.to_string())?;
        if !bound.ok {
            return Err(format!("binding the HTTP host: {:?}", bound.error));
        }
        let path = format!("/repeat?{}&0", hosts.remote());
        // Its shards open the listener at their next look at the table.
        let mut conn = loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_nodelay(true);
                let mut c = std::io::BufReader::new(s);
                if crate::calls::request_on(&mut c, &path).is_ok() {
                    break c;
                }
            }
            if Instant::now() > deadline {
                return Err("the HTTP host never served the actor".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let per_round = (opts.calls / 4).div_ceil(ROUNDS).max(1);
        let hist = || Histogram::<u64>::new(3).expect("histogram");
        let (mut raw_each, mut local, mut remote) = (hist(), hist(), hist());
        let ns = |d: Duration| d.as_nanos() as u64;
        for _ in 0..ROUNDS {
            raw.round_trips_each(per_round, |d| {
                let _ = raw_each.record(ns(d));
            });
            for _ in 0..per_round {
                let _ = local.record(ns(hosts.repeat(hosts.remote(), 0)));
            }
            for _ in 0..per_round {
                let d = crate::calls::request_on(&mut conn, &path)?;
                let _ = remote.record(ns(d));
            }
        }
        let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1e3;
        let added = p50(&remote) - p50(&local);
        Ok(HttpAcross {
            local_p50_us: p50(&local),
            remote_p50_us: p50(&remote),
            added_p50_us: added,
            raw_p50_us: p50(&raw_each),
            added_ratio: added / p50(&raw_each),
            requests: per_round * ROUNDS,
        })
    })();
    stop.store(true, Ordering::Relaxed);
    let _ = host.join();
    result
}

/// Blocks the driver's calling actor `blocks` times: each time, how long
/// from the write until the host refuses the invocation, and from lifting
/// it until one passes (polling as fast as calls go). Median and worst
/// block, median lift, in µs.
fn time_blocks(
    rt: &tokio::runtime::Runtime,
    lattice: &wascc_lattice::Lattice,
    caller: &str,
    call: &CallFn,
    blocks: u32,
) -> Result<(f64, f64, f64), String> {
    let limit = Duration::from_secs(10);
    let mut blocked = Vec::new();
    let mut lifted = Vec::new();
    rt.block_on(async {
        for _ in 0..blocks.max(1) {
            let entry = wascc_lattice::blocklist::BlockEntry::new(caller, None)
                .map_err(|e| e.to_string())?;
            let started = Instant::now();
            lattice.block(&entry).await.map_err(|e| e.to_string())?;
            loop {
                match call().await {
                    Err(e) if e.contains("is blocked") => break,
                    Err(e) => return Err(e),
                    Ok(()) if started.elapsed() > limit => {
                        return Err("the block never reached the host".to_string());
                    }
                    Ok(()) => {}
                }
            }
            blocked.push(started.elapsed().as_secs_f64() * 1e6);
            let started = Instant::now();
            lattice.unblock(caller).await.map_err(|e| e.to_string())?;
            while call().await.is_err() {
                if started.elapsed() > limit {
                    return Err("lifting the block never reached the host".to_string());
                }
            }
            lifted.push(started.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    })?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let max = blocked.iter().copied().fold(0.0, f64::max);
    Ok((median(&mut blocked), max, median(&mut lifted)))
}
