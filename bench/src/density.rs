//! The density harness: how many idle, initialized actors one host process
//! holds, and what each costs in resident memory and page tables.
//!
//! It loads our example echo actor (built from `actors/`) on an engine
//! configured for density ([`EngineConfig::dense`]: slots sized exactly to
//! the module's memory, no copy-on-write, no guard region), starts `N`
//! instances, calls each once with a small HTTP request (as a host would
//! have), keeps them all alive, and reads `VmRSS` and `VmPTE` from
//! `/proc/self/status` before and after.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use wascc_engines::{Engine, EngineConfig, EngineKind, HostHandler};

/// The host's allocator (mimalloc), counting live heap bytes and blocks
/// while the density harness measures, so it can say how much of an
/// actor's cost is host-side heap. Off otherwise: two shared counters
/// bumped on every allocation from every thread would slow the other
/// benchmarks of this binary (the lattice ones, 8 % in throughput here)
/// below what the host, which uses plain mimalloc, does.
pub struct Counting;

static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static LIVE_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static LIVE_BLOCKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc; the counters are
// only statistics.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_add(layout.size(), Relaxed);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        use std::sync::atomic::Ordering::Relaxed;
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
            LIVE_BLOCKS.fetch_sub(1, Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_add(new, Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new) }
    }
}

/// Counts heap while alive (see [`Counting`]).
struct CountingHeap;

impl CountingHeap {
    fn start() -> CountingHeap {
        COUNTING.store(true, std::sync::atomic::Ordering::Relaxed);
        CountingHeap
    }

    /// Live bytes and blocks counted so far: the difference of two
    /// readings is what was allocated and not freed between them (blocks
    /// from before counting started that are freed meanwhile count
    /// against it, as they would have with counting always on).
    fn live(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (LIVE_BYTES.load(Relaxed), LIVE_BLOCKS.load(Relaxed))
    }
}

impl Drop for CountingHeap {
    fn drop(&mut self) {
        COUNTING.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `after − before` of two [`CountingHeap::live`] readings, 0 if negative.
fn grown(before: usize, after: usize) -> u64 {
    (after.wrapping_sub(before) as isize).max(0) as u64
}

/// What the harness measured.
#[derive(Debug, Clone, Serialize)]
pub struct DensityReport {
    /// Instances started and kept.
    pub actors: u64,
    /// Growth of resident memory per instance (bytes).
    pub rss_bytes_per_actor: u64,
    /// Growth of page tables per instance (bytes): memory outside RSS.
    pub pte_bytes_per_actor: u64,
    /// The two together, the figure the target is about.
    pub total_bytes_per_actor: u64,
    /// Host heap bytes live per instance (part of the RSS above; counted
    /// when the harness runs with its counting allocator).
    pub host_heap_bytes_per_actor: u64,
    /// Host heap blocks live per instance.
    pub host_heap_blocks_per_actor: u64,
    /// Instantiation (pooled slot, `_start`/`wapc_init`), median.
    pub instantiate_p50_ns: u64,
    /// Instantiation, 99th percentile.
    pub instantiate_p99_ns: u64,
    /// Wall time to start and call all of them.
    pub seconds_to_start: f64,
    /// The module's linear memory, which sizes every slot.
    pub memory_bytes_per_slot: u64,
    /// Engine kind.
    pub engine: String,
}

/// Reads a `kB` field of `/proc/self/status` as bytes.
pub fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// The initial size of the module's memory (bytes) and table (elements).
pub fn module_needs(wasm: &[u8]) -> Result<(u64, u64), String> {
    let mut memory = None;
    let mut table = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::MemorySection(r) => {
                for m in r {
                    memory = Some(m.map_err(|e| e.to_string())?.initial * 65536);
                }
            }
            wasmparser::Payload::TableSection(r) => {
                for t in r {
                    table = table.max(t.map_err(|e| e.to_string())?.ty.initial);
                }
            }
            _ => {}
        }
    }
    Ok((memory.ok_or("the module defines no memory")?, table))
}

/// How to run the harness.
#[derive(Debug, Clone)]
pub struct DensityOptions {
    /// Instances to start.
    pub actors: u32,
    /// Engine kind.
    pub kind: EngineKind,
    /// Wasm pages (64 KiB) each slot holds beyond the module's initial
    /// memory, for its heap to grow into.
    pub grow_pages: u64,
    /// Call each instance once (as a host would have) before counting it.
    pub call: bool,
    /// Print resident memory by mapping size to stderr (what the cost is
    /// made of).
    pub mappings: bool,
}

/// Starts `opts.actors` instances of `wasm` and measures them.
pub fn run(wasm: &[u8], opts: &DensityOptions) -> Result<DensityReport, String> {
    let (actors, kind, grow_pages) = (opts.actors, opts.kind, opts.grow_pages);
    let (memory, table) = module_needs(wasm)?;
    let memory = memory + grow_pages * 65536;
    let cfg = EngineConfig::dense(kind, actors, memory as usize, table.max(1) as usize);
    let engine = Engine::new(cfg).map_err(|e| e.to_string())?;
    let module = engine.load(wasm).map_err(|e| e.to_string())?;
    let request = wascc_contracts::encode(&wascc_contracts::http::Request {
        method: "GET".into(),
        path: "/".into(),
        query_string: String::new(),
        header: [("host".to_string(), "localhost".to_string())].into(),
        body: Vec::new(),
    })
    .map_err(|e| e.to_string())?;
    let handler: Arc<dyn HostHandler> = Arc::new(crate::NoHost);
    let mut kept = Vec::with_capacity(actors as usize);
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let (rss0, pte0) = (proc_status_bytes("VmRSS"), proc_status_bytes("VmPTE"));
    let counting = CountingHeap::start();
    let heap0 = counting.live();
    let started = Instant::now();
    for _ in 0..actors {
        let t = Instant::now();
        let mut inst = futures_lite::future::block_on(module.instantiate("echo", handler.clone()))
            .map_err(|e| e.to_string())?;
        let _ = hist.record(t.elapsed().as_nanos() as u64);
        if opts.call {
            futures_lite::future::block_on(
                inst.call(wascc_contracts::http::OP_HANDLE_REQUEST, &request),
            )
            .map_err(|e| format!("echo failed: {e}"))?;
        }
        kept.push(inst);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (rss1, pte1) = (proc_status_bytes("VmRSS"), proc_status_bytes("VmPTE"));
    let heap1 = counting.live();
    drop(counting);
    if opts.mappings {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let mut cur = String::new();
        let mut rows = Vec::new();
        for l in smaps.lines() {
            if l.contains('-') && !l.starts_with(|c: char| c.is_ascii_uppercase()) {
                cur = l.to_string();
            } else if let Some(v) = l.strip_prefix("Rss:") {
                let kb: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                rows.push((kb, cur.clone()));
            }
        }
        rows.sort();
        let mut by_size: std::collections::BTreeMap<u64, (u64, u64)> = Default::default();
        for (kb, m) in &rows {
            let range = m.split_whitespace().next().unwrap_or("");
            let (a, b) = range.split_once('-').unwrap_or(("0", "0"));
            let size =
                u64::from_str_radix(b, 16).unwrap_or(0) - u64::from_str_radix(a, 16).unwrap_or(0);
            let e = by_size.entry(size / 1024).or_default();
            e.0 += 1;
            e.1 += kb;
        }
        let mut v: Vec<_> = by_size.into_iter().collect();
        v.sort_by_key(|(_, (_, kb))| std::cmp::Reverse(*kb));
        for (size, (count, kb)) in v.iter().take(10) {
            eprintln!("mappings of {size:>10} kB: {count:>7}, rss {kb:>8} kB");
        }
    }
    let n = u64::from(actors.max(1));
    let rss = rss1.saturating_sub(rss0) / n;
    let pte = pte1.saturating_sub(pte0) / n;
    drop(kept);
    Ok(DensityReport {
        actors: u64::from(actors),
        rss_bytes_per_actor: rss,
        pte_bytes_per_actor: pte,
        total_bytes_per_actor: rss + pte,
        host_heap_bytes_per_actor: grown(heap0.0, heap1.0) / n,
        host_heap_blocks_per_actor: grown(heap0.1, heap1.1) / n,
        instantiate_p50_ns: hist.value_at_quantile(0.5),
        instantiate_p99_ns: hist.value_at_quantile(0.99),
        seconds_to_start: seconds,
        memory_bytes_per_slot: memory,
        engine: kind.to_string(),
    })
}
