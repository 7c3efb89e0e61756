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
