//! `wcc`: the waSCC command line. Keys, claims and the lattice's hosts
//! today; archives, Gantry, lattice control and manifests come with their
//! issues.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use nkeys::KeyPair;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The waSCC command line.
#[derive(Debug, Parser)]
#[command(name = "wcc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
enum Command {
    /// Ed25519 keys (nkeys).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Claims embedded in actor modules.
    #[command(subcommand)]
    Claims(ClaimsCmd),
    /// A lattice of hosts over NATS.
    #[command(subcommand)]
    Lattice(LatticeCmd),
}

/// Where the lattice is.
#[derive(Debug, clap::Args)]
struct LatticeArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The lattice's name.
    #[arg(long, default_value = "default")]
    lattice: String,
    /// A NATS credentials file, for a server that requires one.
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum LatticeCmd {
    /// Lists the hosts in the lattice state, with their labels and what they run.
    Hosts {
        #[command(flatten)]
        at: LatticeArgs,
        /// Prints JSON: an array of host records.
        #[arg(long)]
        json: bool,
    },
    /// Sets a label on a host.
    Label {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…), as `wcc lattice hosts` lists it.
        host: String,
        /// The label.
        #[arg(value_name = "KEY=VALUE")]
        label: String,
    },
    /// Removes a label from a host.
    Unlabel {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// The label's key.
        key: String,
    },
    /// Stops a host: it drains, leaves the lattice and exits.
    Stop {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Generates a key pair and prints its public key and seed.
    Gen {
        /// The kind of key.
        kind: KeyKind,
        /// Prints JSON: {"public_key", "seed"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyKind {
    Account,
    Module,
    Service,
    Server,
    Operator,
    Cluster,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
enum ClaimsCmd {
    /// Signs an actor (or portable provider) module, replacing any claims it had.
    Sign {
        /// The module to sign.
        input: PathBuf,
        /// Where to write the signed module.
        #[arg(short, long)]
        output: PathBuf,
        /// The account seed (SA…) that issues the claims, or a file holding it.
        #[arg(long)]
        issuer: String,
        /// The module seed (SM…) whose public key is the actor's identity, or a file holding it.
        #[arg(long)]
        subject: String,
        /// The actor's name.
        #[arg(long)]
        name: String,
        /// A capability id the actor may use (repeatable).
        #[arg(long = "cap")]
        caps: Vec<String>,
        /// A tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Revision number.
        #[arg(long)]
        rev: Option<i32>,
        /// Version string.
        #[arg(long)]
        ver: Option<String>,
        /// Validity from now, e.g. 30d, 12h (default: never expires).
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<Duration>,
        /// Delay before the claims become valid, e.g. 1h.
        #[arg(long, value_parser = parse_duration)]
        not_before: Option<Duration>,
        /// Signs a portable (wasm) capability provider (`prov: true`), not an actor.
        #[arg(long)]
        provider: bool,
    },
    /// Shows the claims of a module and whether they verify.
    Inspect {
        /// The module.
        file: PathBuf,
        /// Prints JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 30d or 12h: {e}"))
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(KeysCmd::Gen { kind, json }) => {
            let kp = match kind {
                KeyKind::Account => KeyPair::new_account(),
                KeyKind::Module => KeyPair::new_module(),
                KeyKind::Service => KeyPair::new_service(),
                KeyKind::Server => KeyPair::new_server(),
                KeyKind::Operator => KeyPair::new_operator(),
                KeyKind::Cluster => KeyPair::new_cluster(),
            };
            let seed = kp.seed().context("cannot encode the seed")?;
            if json {
                println!("{}", json!({ "public_key": kp.public_key(), "seed": seed }));
            } else {
                println!(
                    "Public Key: {}\nSeed: {seed}\n\nRemember that the seed is private: treat it as a secret.",
                    kp.public_key()
                );
            }
            Ok(())
        }
        Command::Claims(ClaimsCmd::Sign {
            input,
            output,
            issuer,
            subject,
            name,
            caps,
            tags,
            rev,
            ver,
            expires_in,
            not_before,
            provider,
        }) => {
            let issuer = load_seed(&issuer, 'A', "--issuer")?;
            let subject = load_seed(&subject, 'M', "--subject")?;
            let module = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let now = wascc_claims::now_secs();
            let req = wascc_claims::SignRequest {
                name,
                caps,
                tags,
                rev,
                ver,
                expires: expires_in.map(|d| now + d.as_secs()),
                not_before: not_before.map(|d| now + d.as_secs()),
                provider,
            };
            let signed = wascc_claims::sign(&module, &req, &issuer, &subject.public_key())
                .with_context(|| format!("cannot sign {}", input.display()))?;
            std::fs::write(&output, signed)
                .with_context(|| format!("cannot write {}", output.display()))?;
            eprintln!(
                "Signed {} as {} {} (issuer {})",
                output.display(),
                if provider { "provider" } else { "actor" },
                subject.public_key(),
                issuer.public_key()
            );
            Ok(())
        }
        Command::Claims(ClaimsCmd::Inspect { file, json }) => inspect(&file, json),
        Command::Lattice(LatticeCmd::Hosts { at, json }) => lattice_hosts(&at, json),
        Command::Lattice(LatticeCmd::Label { at, host, label }) => {
            let (key, value) = label
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| anyhow::anyhow!("{label:?} is not a label: expected KEY=VALUE"))?;
            let req = wascc_lattice::control::LabelRequest {
                key: key.to_string(),
                value: Some(value.to_string()),
            };
            lattice_command(&at, &host, "label.put", &req)
        }
        Command::Lattice(LatticeCmd::Unlabel { at, host, key }) => {
            let req = wascc_lattice::control::LabelRequest { key, value: None };
            lattice_command(&at, &host, "label.del", &req)
        }
        Command::Lattice(LatticeCmd::Stop { at, host }) => {
            lattice_command(&at, &host, "stop", &json!({}))
        }
    }
}

/// Runs `f` on a connection to the lattice `at` names.
fn with_lattice<T>(
    at: &LatticeArgs,
    f: impl AsyncFnOnce(wascc_lattice::Lattice) -> Result<T, wascc_lattice::LatticeError>,
) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opts = wascc_lattice::LatticeOptions {
        url: at.nats.clone(),
        lattice: at.lattice.clone(),
        credentials: at.nats_creds.clone(),
    };
    Ok(rt.block_on(async {
        let lattice = wascc_lattice::Lattice::connect(&opts).await?;
        f(lattice).await
    })?)
}

fn lattice_command(
    at: &LatticeArgs,
    host: &str,
    command: &str,
    body: &impl serde::Serialize,
) -> anyhow::Result<()> {
    let reply = with_lattice(at, async |l| {
        wascc_lattice::control::request(&l, host, command, body).await
    })?;
    match reply.error {
        None if reply.ok => {
            eprintln!("{command}: done on host {host}");
            Ok(())
        }
        e => bail!(
            "host {host} refused {command}: {}",
            e.unwrap_or_else(|| "no reason given".into())
        ),
    }
}

fn lattice_hosts(at: &LatticeArgs, as_json: bool) -> anyhow::Result<()> {
    let hosts = with_lattice(at, async |l| l.hosts().await)?;
    if as_json {
        println!("{}", serde_json::to_string(&hosts)?);
        return Ok(());
    }
    if hosts.is_empty() {
        println!("No hosts in lattice {}.", at.lattice);
    }
    let now = wascc_lattice::now_secs();
    for h in hosts {
        let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{}", h.id);
        println!("  Version:   {}", h.version);
        println!("  Uptime:    {}s", now.saturating_sub(h.started_at));
        println!("  Labels:    {}", labels.join(", "));
        let actors: Vec<String> = h
            .actors
            .iter()
            .map(|a| format!("{} ({})", a.name, a.key))
            .collect();
        let providers: Vec<String> = h
            .providers
            .iter()
            .map(|p| format!("{} ({})", p.capability, p.name))
            .collect();
        println!("  Actors:    {}", actors.join(", "));
        println!("  Providers: {}", providers.join(", "));
    }
    Ok(())
}

/// Reads a seed given inline or as a file, checking it is of the expected kind.
fn load_seed(arg: &str, prefix: char, flag: &str) -> anyhow::Result<KeyPair> {
    let text = if arg.starts_with('S') && !Path::new(arg).exists() {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg)
            .with_context(|| format!("{flag}: {arg:?} is neither a seed nor a readable file"))?
    };
    let seed = text.trim();
    if seed.len() < 2 || !seed.starts_with('S') || !seed[1..].starts_with(prefix) {
        bail!("{flag}: expected a seed starting with S{prefix}");
    }
    KeyPair::from_seed(seed).map_err(|e| anyhow::anyhow!("{flag}: invalid seed: {e}"))
}

fn inspect(file: &Path, as_json: bool) -> anyhow::Result<()> {
    let module = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let token = wascc_claims::extract(&module)
        .with_context(|| format!("cannot read claims of {}", file.display()))?
        .ok_or_else(|| anyhow::anyhow!("{} has no claims (no jwt section)", file.display()))?;
    let is_provider = token.claims.wascap.as_ref().is_some_and(|m| m.prov);
    let opts = wascc_claims::VerifyOptions::default();
    let verdict = if is_provider {
        wascc_claims::verify_provider(&module, &opts)
    } else {
        wascc_claims::verify(&module, &opts)
    };
    let c = &token.claims;
    let meta = c.wascap.clone().unwrap_or_default();
    let mut out = json!({
        "issuer": c.iss,
        "subject": c.sub,
        "name": meta.name,
        "caps": meta.caps.clone().unwrap_or_default(),
        "tags": meta.tags.clone().unwrap_or_default(),
        "hash": meta.hash,
        "issued_at": c.iat,
        "expires": c.exp,
        "not_before": c.nbf,
        "rev": meta.rev,
        "ver": meta.ver,
        "provider": meta.prov,
        "valid": verdict.is_ok(),
    });
    if let Err(e) = &verdict {
        out["error"] = json!(e.to_string());
    }
    if as_json {
        println!("{out}");
    } else {
        let opt = |v: &Option<u64>| v.map_or("never".to_string(), |s| s.to_string());
        println!(
            "{} ({})",
            meta.name.as_deref().unwrap_or("(unnamed)"),
            c.sub
        );
        println!("  Issuer:        {}", c.iss);
        println!(
            "  Capabilities:  {}",
            meta.caps.unwrap_or_default().join(", ")
        );
        println!(
            "  Tags:          {}",
            meta.tags.unwrap_or_default().join(", ")
        );
        println!("  Hash:          {}", meta.hash);
        println!("  Issued at:     {}", c.iat);
        println!("  Expires:       {}", opt(&c.exp));
        println!(
            "  Not before:    {}",
            c.nbf.map_or("immediately".to_string(), |s| s.to_string())
        );
        println!(
            "  Revision:      {}",
            meta.rev.map_or("-".into(), |r| r.to_string())
        );
        println!(
            "  Version:       {}",
            meta.ver.unwrap_or_else(|| "-".into())
        );
        match &verdict {
            Ok(_) => println!("  Valid:         yes"),
            Err(e) => println!("  Valid:         no: {e}"),
        }
    }
    Ok(())
}
