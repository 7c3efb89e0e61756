//! `wascc-host`: runs the actors and capabilities of a manifest until SIGINT
//! or SIGTERM, on the embedded default (no NATS) or in a lattice over NATS
//! (`--nats URL`).

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use wascc_engines::EngineKind;
use wascc_runtime::{Host, HostOptions, Manifest, RunOptions};

/// The longest `--spin-us`: 100 ms, past which a shard would rather sleep.
const MAX_SPIN_US: u64 = 100_000;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs waSCC actors and capability providers from a manifest.
#[derive(Debug, Parser)]
#[command(name = "wascc-host", version)]
struct Args {
    /// The manifest (YAML): actors, capabilities, bindings.
    #[arg(long, short = 'm')]
    manifest: PathBuf,
    /// An account key (A…) whose actors may run; repeat for several. Without
    /// any, every validly signed actor runs.
    #[arg(long = "trusted-issuer", value_name = "ACCOUNT_KEY")]
    trusted_issuers: Vec<String>,
    /// Engine for actors whose manifest entry names none.
    #[arg(long, default_value = "jit", value_parser = parse_engine)]
    engine: EngineKind,
    /// Where the aot engine keeps precompiled modules.
    #[arg(long, default_value = ".wascc/aot")]
    aot_dir: PathBuf,
    /// Milliseconds one invocation may run before it is interrupted.
    #[arg(long, default_value_t = wascc_engines::limits::DEFAULT_CALL_DEADLINE.as_millis() as u64)]
    call_deadline_ms: u64,
    /// Number of shards (executor threads); default: one per CPU this
    /// process may use.
    #[arg(long)]
    shards: Option<usize>,
    /// Do not pin shard threads to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Pin shards to these CPUs, a list such as `2-3` or `0,4-5` (shard `i`
    /// to the `i`-th, round-robin; `--shards` defaults to their number);
    /// default: every CPU this process may use. Hosts sharing a machine
    /// each take their own.
    #[arg(long, value_name = "LIST", value_parser = parse_cpus, conflicts_with = "no_pin")]
    cpus: Option<CpuList>,
    /// How long a shard with nothing to run polls for new work before it
    /// sleeps, in microseconds (pinned shards only): more takes the wake-up
    /// off the next message's latency (across hosts: about a fifth of a
    /// call, docs/BENCHMARKS.md) and burns that much CPU after each burst
    /// of work. Give each spinning shard a CPU of its own.
    #[arg(long, value_name = "US", default_value_t = wascc_scheduler::limits::SPIN_BEFORE_PARK.as_micros() as u64,
          value_parser = clap::value_parser!(u64).range(0..=MAX_SPIN_US), conflicts_with = "no_pin")]
    spin_us: u64,
    /// Serve Prometheus metrics (actor time, invocations) at
    /// http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// At exit, print every actor's usage (actor time per shard) as JSON on
    /// standard output.
    #[arg(long)]
    json: bool,
    /// Join a lattice over this NATS server (URLs comma-separated; needs
    /// JetStream). Without it the host is its own lattice, in process.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// The lattice to join (default: `default`).
    #[arg(long, value_name = "NAME", requires = "nats")]
    lattice: Option<String>,
    /// A NATS credentials file, for a server that requires one.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_creds: Option<PathBuf>,
    /// A CA certificate (PEM file) to trust for the NATS server's TLS
    /// certificate, besides the system's roots.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_tls_ca: Option<PathBuf>,
    /// A NATS user nkey seed (SU…) or a file holding it, for a server that
    /// authenticates users by nkey.
    #[arg(long, value_name = "SEED|FILE", requires = "nats")]
    nats_nkey: Option<String>,
    /// This host's server key seed (SN…) or a file holding it: a stable
    /// identity in the lattice (default: a fresh key at each start).
    #[arg(long, value_name = "SEED|FILE", requires = "nats")]
    host_seed: Option<String>,
    /// A host key (N…) whose invocations this host accepts (repeatable);
    /// with none, any host of the lattice.
    #[arg(long = "trusted-host", value_name = "HOST_KEY", requires = "nats")]
    trusted_hosts: Vec<String>,
    /// A user, account or operator public key (U…, A…, O…) whose signed
    /// control requests this host accepts (repeatable); with none, control
    /// requests need no signature.
    #[arg(long = "control-key", value_name = "KEY", requires = "nats")]
    control_keys: Vec<String>,
    /// A host label (repeatable); overrides the manifest's label of that key.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not a label: expected KEY=VALUE")),
    }
}

/// A seed given inline (starting with `S`) or as a file holding it.
fn read_seed(arg: &str, flag: &str) -> anyhow::Result<String> {
    if arg.starts_with('S') && !std::path::Path::new(arg).exists() {
        return Ok(arg.to_string());
    }
    let text = std::fs::read_to_string(arg)
        .with_context(|| format!("{flag}: {arg:?} is neither a seed nor a readable file"))?;
    Ok(text.trim().to_string())
}

/// CPUs named by `--cpus`.
#[derive(Debug, Clone)]
struct CpuList(Vec<usize>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let cpus = wascc_scheduler::parse_cpu_list(s)?;
    let allowed = wascc_scheduler::allowed_cpus();
    if let Some(cpu) = cpus
        .iter()
        .find(|c| !allowed.is_empty() && !allowed.contains(c))
    {
        return Err(format!(
            "CPU {cpu} is not one this process may run on ({allowed:?})"
        ));
    }
    Ok(CpuList(cpus))
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse()
        .map_err(|e: wascc_engines::EngineError| e.to_string())
}

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    for key in &args.trusted_issuers {
        wascc_claims::check_account_key(key)?;
    }
    if args.call_deadline_ms == 0 {
        anyhow::bail!("--call-deadline-ms must be greater than 0");
    }
    let cpus = args.cpus.map(|c| c.0).unwrap_or_default();
    let shards = args.shards.unwrap_or_else(|| match cpus.len() {
        0 => wascc_scheduler::available_cores(),
        n => n,
    });
    if shards == 0 || shards > wascc_runtime::limits::MAX_SHARDS {
        anyhow::bail!(
            "--shards {shards}: must be between 1 and {}",
            wascc_runtime::limits::MAX_SHARDS
        );
    }
    let manifest = Manifest::load(&args.manifest)?;
    let opts = HostOptions {
        engine: args.engine,
        trusted_issuers: args.trusted_issuers,
        aot_dir: args.aot_dir,
        call_deadline: Duration::from_millis(args.call_deadline_ms),
    };
    let host = Host::build(&manifest, &opts)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone())
            .context("cannot install signal handler")?;
    }
    let lattice = match args.nats {
        Some(url) => {
            let name = args.lattice.unwrap_or_else(|| "default".to_string());
            wascc_lattice::check_lattice_name(&name)?;
            Some(wascc_lattice::LatticeOptions {
                url,
                lattice: name,
                credentials: args.nats_creds,
                tls_ca: args.nats_tls_ca,
                nkey_seed: args
                    .nats_nkey
                    .as_deref()
                    .map(|s| read_seed(s, "--nats-nkey"))
                    .transpose()?,
                control_seed: None,
            })
        }
        None => None,
    };
    for key in &args.trusted_hosts {
        if !key.starts_with('N') || nkeys::KeyPair::from_public_key(key).is_err() {
            anyhow::bail!("--trusted-host {key:?} is not a host (server) public key (N…)");
        }
    }
    for key in &args.control_keys {
        if !wascc_lattice::control::is_control_key(key) {
            anyhow::bail!(
                "--control-key {key:?} is not a user, account or operator public key (U…, A…, O…)"
            );
        }
    }
    let run = RunOptions {
        shards,
        pin: !args.no_pin,
        cpus,
        spin: Duration::from_micros(args.spin_us),
        metrics: args.metrics,
        lattice,
        labels: args.labels.into_iter().collect(),
        host_seed: args
            .host_seed
            .as_deref()
            .map(|s| read_seed(s, "--host-seed"))
            .transpose()?,
        trusted_hosts: args.trusted_hosts,
        control_keys: args.control_keys,
    };
    let usage = host.run(&run, shutdown)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
    }
    Ok(())
}
