//! `wascc-loadgen`: open-loop load for capacity planning.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wascc_loadgen::{Plan, Target};

/// Open-loop, fixed-rate load generator.
#[derive(Debug, Parser)]
#[command(name = "wascc-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP/1.1 GET requests over keep-alive connections.
    Http {
        /// The URL (http://host:port/path).
        url: String,
        /// Requests per second over all connections, or `max` (closed loop).
        #[arg(long, default_value = "max")]
        rate: String,
        /// Seconds to send.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Milliseconds to wait for one response.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// Prints the report as JSON.
        #[arg(long)]
        json: bool,
        /// Searches for the highest fixed rate whose p99 meets --slo-p99-ms
        /// without errors (each step runs for --duration).
        #[arg(long, requires = "slo_p99_ms")]
        find_max: bool,
        /// The p99 latency objective of --find-max, in milliseconds.
        #[arg(long)]
        slo_p99_ms: Option<f64>,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Http {
        url,
        rate,
        duration,
        connections,
        timeout_ms,
        json,
        find_max,
        slo_p99_ms,
    } = cli.command;
    let target = Target::parse(&url)?;
    let rate = match rate.as_str() {
        "max" => None,
        r => Some(
            r.parse::<f64>()
                .map_err(|_| anyhow::anyhow!("invalid rate: {r:?} is neither a number nor max"))?,
        ),
    };
    if !(duration.is_finite() && duration > 0.0) {
        anyhow::bail!("invalid duration: {duration} is not a positive number of seconds");
    }
    let plan = Plan {
        rate,
        duration: Duration::from_secs_f64(duration),
        connections,
        timeout: Duration::from_millis(timeout_ms),
    };
    plan.validate()?;
    if find_max {
        let slo = slo_p99_ms.unwrap_or_default();
        if !(slo.is_finite() && slo > 0.0) {
            anyhow::bail!("invalid --slo-p99-ms: {slo} is not a positive number of milliseconds");
        }
        return capacity(target, plan, Duration::from_secs_f64(slo / 1000.0), json);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let progress = Arc::new(AtomicU64::new(0));
    let show = std::io::stderr().is_terminal();
    let report = runtime.block_on(async {
        let counter = progress.clone();
        let ticker = tokio::spawn(async move {
            let mut last = 0;
            let mut secs = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                secs += 1;
                let now = counter.load(Ordering::Relaxed);
                if show {
                    eprint!(
                        "\r{secs:>4}s  {now:>10} requests  {:>8} req/s   ",
                        now - last
                    );
                }
                last = now;
            }
        });
        let report = wascc_loadgen::run(target, plan, progress).await;
        ticker.abort();
        report
    });
    if show {
        eprintln!();
    }
    if report.requests == 0 && report.errors > 0 {
        anyhow::bail!(
            "no request succeeded ({} errors); first error: {}",
            report.errors,
            report.first_error.as_deref().unwrap_or("unknown")
        );
    }
    let j = report.to_json();
    if json {
        println!("{j}");
    } else {
        println!(
            "requests {}  errors {}  achieved {} req/s\nlatency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            j["requests"],
            j["errors"],
            j["achieved_rps"],
            j["p50_us"],
            j["p90_us"],
            j["p99_us"],
            j["p999_us"],
            j["max_us"]
        );
        if let Some(e) = &report.first_error {
            println!("first error: {e}");
        }
    }
    Ok(())
}

/// `--find-max`: a closed-loop run bounds the rate, then a bisection finds
/// the highest fixed rate that meets the p99 objective with no errors and
/// at least 95 % of the rate achieved.
fn capacity(target: Target, plan: Plan, slo: Duration, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let measure = |rate: Option<f64>| {
        let p = Plan {
            rate,
            ..plan.clone()
        };
        runtime.block_on(wascc_loadgen::run(
            target.clone(),
            p,
            Arc::new(AtomicU64::new(0)),
        ))
    };
    let ceiling = measure(None);
    if ceiling.requests == 0 {
        anyhow::bail!(
            "no request succeeded; first error: {}",
            ceiling.first_error.as_deref().unwrap_or("unknown")
        );
    }
    let slo_us = slo.as_micros() as u64;
    let meets = |r: &wascc_loadgen::Report, rate: f64| {
        r.errors == 0
            && r.latency_us.value_at_quantile(0.99) <= slo_us
            && r.achieved_rps() >= 0.95 * rate
    };
    let (mut lo, mut hi) = (0.0f64, ceiling.achieved_rps() * 1.1);
    let mut best: Option<(f64, wascc_loadgen::Report)> = None;
    for _ in 0..wascc_loadgen::limits::CAPACITY_STEPS {
        let rate = ((lo + hi) / 2.0).max(1.0);
        let r = measure(Some(rate));
        let ok = meets(&r, rate);
        eprintln!(
            "rate {rate:>10.0} req/s: p99 {:>8} µs, errors {:>6} -> {}",
            r.latency_us.value_at_quantile(0.99),
            r.errors,
            if ok { "meets the objective" } else { "misses" }
        );
        if ok {
            lo = rate;
            best = Some((rate, r));
        } else {
            hi = rate;
        }
        if hi - lo < hi * 0.02 {
            break;
        }
    }
    let Some((rate, report)) = best else {
        anyhow::bail!(
            "no rate met p99 <= {} ms without errors",
            slo.as_secs_f64() * 1000.0
        );
    };
    let mut j = report.to_json();
    j["max_rate_meeting_slo"] = serde_json::json!(rate.round());
    j["slo_p99_us"] = serde_json::json!(slo_us);
    j["closed_loop_rps"] = serde_json::json!((ceiling.achieved_rps() * 10.0).round() / 10.0);
    if json {
        println!("{j}");
    } else {
        println!(
            "highest rate meeting p99 <= {slo_us} µs: {} req/s (closed loop reached {})",
            j["max_rate_meeting_slo"], j["closed_loop_rps"]
        );
    }
    Ok(())
}
