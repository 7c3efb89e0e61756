//! `wascc-bench`: the density harness (`wascc-bench density --actors N`)
//! and lattice RPC against raw NATS (`wascc-bench lattice`).
//! The criterion suites run with `cargo bench -p wascc-bench`.

use clap::{Parser, Subcommand};
use wascc_engines::EngineKind;

#[global_allocator]
static GLOBAL: wascc_bench::density::Counting = wascc_bench::density::Counting;

#[derive(Debug, Parser)]
#[command(name = "wascc-bench", version, about = "waSCC benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts N idle, initialized instances of the example echo actor (each
    /// called once) and reports memory per actor and instantiation times.
    Density {
        /// How many instances.
        #[arg(long, default_value_t = 10_000)]
        actors: u32,
        /// Engine kind.
        #[arg(long, default_value = "jit")]
        engine: String,
        /// Wasm pages (64 KiB) each slot holds beyond the module's initial
        /// memory, for its heap to grow into. 0 (exact slots) lets every
        /// slot share one mapping.
        #[arg(long, default_value_t = 0)]
        grow_pages: u64,
        /// Do not call the instances (measures never-called actors).
        #[arg(long)]
        no_call: bool,
        /// Print resident memory by mapping size (what the cost is made of).
        #[arg(long)]
        mappings: bool,
        /// Measure this waPC module (.wasm or .wat) instead of the example
        /// echo actor.
        #[arg(long, value_name = "FILE")]
        module: Option<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Lattice RPC (a sealed invocation of an actor on another host)
    /// against raw NATS request/reply, same run: p50/p99 one call at a
    /// time, throughput with concurrent callers.
    Lattice {
        /// NATS server with JetStream.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        /// A CA certificate (PEM) for a NATS server with TLS (`tls://`
        /// URL): both sides, raw and lattice, then speak TLS.
        #[arg(long, value_name = "FILE")]
        tls_ca: Option<std::path::PathBuf>,
        /// Sequential calls for the latency figures.
        #[arg(long, default_value_t = 20_000)]
        calls: u64,
        /// Concurrent callers for the throughput figure.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds of the throughput phase.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Blocks of the calling actor's key to time (propagation).
        #[arg(long, default_value_t = 20)]
        blocks: u32,
        /// Pin the hosts, a caller and the host it calls on different CPUs,
        /// and let their shards spin this many µs before parking (as
        /// `wascc-host --cpus … --spin-us US`); default: unpinned, no
        /// spinning.
        #[arg(long, value_name = "US")]
        spin_us: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let args = Args::parse();
    match args.command {
        Command::Lattice {
            nats,
            tls_ca,
            calls,
            concurrency,
            seconds,
            blocks,
            spin_us,
            json,
        } => {
            if calls == 0 || concurrency == 0 || seconds <= 0.0 {
                eprintln!("error: --calls, --concurrency and --seconds must be positive");
                std::process::exit(2);
            }
            let opts = wascc_bench::lattice::LatticeBenchOptions {
                nats,
                tls_ca,
                calls,
                concurrency,
                seconds,
                blocks,
                spin_us,
            };
            match wascc_bench::lattice::run(&opts) {
                Ok(r) if json => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                }
                Ok(r) => println!(
                    "raw NATS: p50 {:.0} µs, p99 {:.0} µs, {:.0} req/s ({} callers)\n\
                     lattice:  p50 {:.0} µs, p99 {:.0} µs, {:.0} req/s\n\
                     ratios:   p50 {:.2}×, p99 {:.2}×, throughput {:.2}×\n\
                     block list: blocked after {:.0} µs (p50, worst {:.0} µs), lifted after {:.0} µs\n\
                     sealed:   {} with MAC tags, {} signed, {} resealed\n\
                     actor → actor across hosts: mean {:.0} µs vs raw {:.0} µs ({:.2}×), \
                     p50 {:.0} vs {:.0} µs ({:.2}×), p99 {:.0} vs {:.0} µs ({:.2}×), \
                     {:.0} vs {:.0} calls/s ({:.2}×)\n\
                     HTTP for an actor on another host: p50 {:.0} µs vs {:.0} µs to its own host \
                     (adds {:.0} µs, {:.2}× a raw NATS round trip of {:.0} µs)",
                    r.raw_nats.p50_us,
                    r.raw_nats.p99_us,
                    r.raw_nats.throughput_rps,
                    r.concurrency,
                    r.lattice.p50_us,
                    r.lattice.p99_us,
                    r.lattice.throughput_rps,
                    r.p50_ratio,
                    r.p99_ratio,
                    r.throughput_ratio,
                    r.block_p50_us,
                    r.block_max_us,
                    r.unblock_p50_us,
                    r.sealed.mac,
                    r.sealed.signature,
                    r.sealed.resealed,
                    r.actor_to_actor.mean_us,
                    r.actor_to_actor.raw_mean_us,
                    r.actor_to_actor.mean_ratio,
                    r.actor_to_actor.p50_us,
                    r.actor_to_actor.raw_p50_us,
                    r.actor_to_actor.p50_ratio,
                    r.actor_to_actor.p99_us,
                    r.actor_to_actor.raw_p99_us,
                    r.actor_to_actor.p99_ratio,
                    r.actor_to_actor.throughput_rps,
                    r.actor_to_actor.raw_throughput_rps,
                    r.actor_to_actor.throughput_ratio,
                    r.http_to_remote_actor.remote_p50_us,
                    r.http_to_remote_actor.local_p50_us,
                    r.http_to_remote_actor.added_p50_us,
                    r.http_to_remote_actor.added_ratio,
                    r.http_to_remote_actor.raw_p50_us
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Density {
            actors,
            engine,
            grow_pages,
            no_call,
            mappings,
            module,
            json,
        } => {
            let kind: EngineKind = match engine.parse() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: --engine: {e}");
                    std::process::exit(2);
                }
            };
            if actors == 0 {
                eprintln!("error: --actors must be at least 1");
                std::process::exit(2);
            }
            let wasm = match module {
                None => wascc_bench::actor_wasm("echo"),
                Some(p) => match wat::parse_file(&p) {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("error: --module {}: {e}", p.display());
                        std::process::exit(2);
                    }
                },
            };
            match wascc_bench::density::run(
                &wasm,
                &wascc_bench::density::DensityOptions {
                    actors,
                    kind,
                    grow_pages,
                    call: !no_call,
                    mappings,
                },
            ) {
                Ok(r) if json => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                }
                Ok(r) => println!(
                    "{} actors ({} engine, {} KiB slots): {:.1} KiB RSS + {:.2} KiB page tables = {:.1} KiB each; \
                     instantiate p50 {:.2} µs, p99 {:.2} µs; started in {:.2} s",
                    r.actors,
                    r.engine,
                    r.memory_bytes_per_slot / 1024,
                    r.rss_bytes_per_actor as f64 / 1024.0,
                    r.pte_bytes_per_actor as f64 / 1024.0,
                    r.total_bytes_per_actor as f64 / 1024.0,
                    r.instantiate_p50_ns as f64 / 1000.0,
                    r.instantiate_p99_ns as f64 / 1000.0,
                    r.seconds_to_start
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}
