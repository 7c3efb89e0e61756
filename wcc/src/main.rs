//! `wcc`: the waSCC command line. Keys, claims and the lattice (hosts,
//! their control commands, the block list); archives, Gantry and
//! manifests come with their issues.

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
    /// A CA certificate (PEM file) to trust for the NATS server's TLS
    /// certificate, besides the system's roots.
    #[arg(long, value_name = "FILE")]
    nats_tls_ca: Option<PathBuf>,
    /// A NATS user nkey seed (SU…) or a file holding it.
    #[arg(long, value_name = "SEED|FILE")]
    nats_nkey: Option<String>,
    /// Signs control requests with this user, account or operator seed
    /// (SU…, SA…, SO…) or file holding it, for hosts started with
    /// `--control-key`.
    #[arg(long, value_name = "SEED|FILE", env = "WASCC_CONTROL_SEED")]
    signer: Option<String>,
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
    /// Blocks a key (actor M…, provider V…, account A…, host N…) in the
    /// whole lattice: running instances stop, starts and calls from or to
    /// it are refused, on every host within a second; it persists.
    Block {
        #[command(flatten)]
        at: LatticeArgs,
        /// The key.
        key: String,
        /// Why (kept with the entry).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lifts the block of a key.
    Unblock {
        #[command(flatten)]
        at: LatticeArgs,
        /// The key.
        key: String,
    },
    /// Lists the lattice's block list.
    Blocked {
        #[command(flatten)]
        at: LatticeArgs,
        /// Prints JSON: an array of entries.
        #[arg(long)]
        json: bool,
    },
    /// Follows the lattice's events (CloudEvents), each checked: signed by
    /// the host it names; others are reported on stderr and skipped.
    Events {
        #[command(flatten)]
        at: LatticeArgs,
        /// Ends after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Prints each event as a line of JSON.
        #[arg(long)]
        json: bool,
    },
    /// Asks a host what it runs now: labels, actors, providers, bindings.
    Inventory {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// Prints JSON: the host's record.
        #[arg(long)]
        json: bool,
    },
    /// Starts an actor on a host (the module is sent in the request).
    StartActor {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// The signed actor module.
        module: PathBuf,
        /// MODULE is a path on the host, not sent.
        #[arg(long)]
        remote_path: bool,
        /// Engine kind (jit, interp, aot, constrained); default: the host's.
        #[arg(long)]
        engine: Option<String>,
        /// reuse (default) or fresh.
        #[arg(long)]
        instances: Option<String>,
        /// On how many shards it runs (default: all).
        #[arg(long)]
        shards: Option<u32>,
        /// Prints JSON: the started actor.
        #[arg(long)]
        json: bool,
    },
    /// Stops an actor on a host.
    StopActor {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// The actor's key (M…).
        actor: String,
    },
    /// Starts a provider on a host: built in (--capability) or a signed
    /// portable provider module.
    StartProvider {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// A portable provider module.
        #[arg(required_unless_present = "capability", conflicts_with = "capability")]
        module: Option<PathBuf>,
        /// The capability id of a built-in provider.
        #[arg(long)]
        capability: Option<String>,
        /// MODULE is a path on the host, not sent.
        #[arg(long)]
        remote_path: bool,
        /// The binding name a portable provider serves (default: default).
        #[arg(long)]
        binding: Option<String>,
        /// An environment variable of a portable provider; repeatable.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// An argument of a portable provider; repeatable.
        #[arg(long = "arg", value_name = "ARG")]
        args: Vec<String>,
    },
    /// Stops a host's provider of a capability.
    StopProvider {
        #[command(flatten)]
        at: LatticeArgs,
        /// The host's key (N…).
        host: String,
        /// The capability id.
        capability: String,
    },
    /// Binds an actor on a host to a capability.
    Bind {
        #[command(flatten)]
        at: LatticeArgs,
        #[command(flatten)]
        which: BindingArgs,
        /// A value of the binding; repeatable.
        #[arg(long = "value", value_name = "KEY=VALUE")]
        values: Vec<String>,
    },
    /// Removes a binding of an actor on a host.
    Unbind {
        #[command(flatten)]
        at: LatticeArgs,
        #[command(flatten)]
        which: BindingArgs,
    },
}

/// One binding on one host.
#[derive(Debug, clap::Args)]
struct BindingArgs {
    /// The host's key (N…).
    host: String,
    /// The actor's key (M…).
    actor: String,
    /// The capability id.
    capability: String,
    /// The binding name.
    #[arg(long, default_value = "default")]
    binding: String,
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
        Command::Lattice(cmd) => lattice(cmd),
    }
}

/// Splits `KEY=VALUE` (the key not empty); `what` names the argument.
fn key_value(arg: &str, what: &str) -> anyhow::Result<(String, String)> {
    arg.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow::anyhow!("{arg:?} is not a {what}: expected KEY=VALUE"))
}

/// A module to send: its bytes in base64, or its path on the host.
fn module_source(
    path: &Path,
    remote: bool,
) -> anyhow::Result<wascc_lattice::control::ModuleSource> {
    if remote {
        return Ok(wascc_lattice::control::ModuleSource {
            module: None,
            path: Some(path.display().to_string()),
        });
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(wascc_lattice::control::ModuleSource {
        module: Some(data_encoding::BASE64.encode(&bytes)),
        path: None,
    })
}

fn lattice(cmd: LatticeCmd) -> anyhow::Result<()> {
    use wascc_lattice::control::{
        LabelRequest, StartActor, StartProvider, StopActor, StopProvider,
    };
    match cmd {
        LatticeCmd::Hosts { at, json } => lattice_hosts(&at, json),
        LatticeCmd::Block { at, key, reason } => {
            let entry = wascc_lattice::blocklist::BlockEntry::new(&key, reason)?;
            with_lattice(&at, async |l| l.block(&entry).await)?;
            eprintln!(
                "{key} ({:?}) is blocked in lattice {}",
                entry.kind, at.lattice
            );
            Ok(())
        }
        LatticeCmd::Unblock { at, key } => {
            with_lattice(&at, async |l| l.unblock(&key).await)?;
            eprintln!("{key} is no longer blocked in lattice {}", at.lattice);
            Ok(())
        }
        LatticeCmd::Blocked { at, json } => {
            let list = with_lattice(&at, async |l| l.blocked().await)?;
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else if list.is_empty() {
                println!("Nothing is blocked in lattice {}.", at.lattice);
            } else {
                for e in list {
                    println!(
                        "{} {:?} since {} {}",
                        e.key,
                        e.kind,
                        e.blocked_at,
                        e.reason.unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        LatticeCmd::Events { at, count, json } => {
            let mut seen = 0u64;
            let name = at.lattice.clone();
            with_lattice(&at, async |l| {
                let ready = || eprintln!("Following the events of lattice {name}.");
                wascc_lattice::control::follow_events(&l, ready, |event| {
                    match event {
                        Ok(e) if json => match serde_json::to_string(&e) {
                            Ok(line) => println!("{line}"),
                            Err(err) => eprintln!("cannot print an event: {err}"),
                        },
                        Ok(e) => println!("{} {} {}", e.kind, e.source, e.data),
                        Err(why) => {
                            eprintln!("event refused: {why}");
                            return true;
                        }
                    }
                    seen += 1;
                    count.is_none_or(|n| seen < n)
                })
                .await
            })?;
            Ok(())
        }
        LatticeCmd::Label { at, host, label } => {
            let (key, value) = key_value(&label, "label")?;
            let req = LabelRequest {
                key,
                value: Some(value),
            };
            lattice_command(&at, &host, "label.put", &req, false)
        }
        LatticeCmd::Unlabel { at, host, key } => {
            let req = LabelRequest { key, value: None };
            lattice_command(&at, &host, "label.del", &req, false)
        }
        LatticeCmd::Stop { at, host } => lattice_command(&at, &host, "stop", &json!({}), false),
        LatticeCmd::Inventory { at, host, json } => {
            lattice_command(&at, &host, "inventory", &json!({}), json)
        }
        LatticeCmd::StartActor {
            at,
            host,
            module,
            remote_path,
            engine,
            instances,
            shards,
            json,
        } => {
            let req = StartActor {
                source: module_source(&module, remote_path)?,
                engine,
                instances,
                shards,
            };
            lattice_command(&at, &host, "actor.start", &req, json)
        }
        LatticeCmd::StopActor { at, host, actor } => {
            lattice_command(&at, &host, "actor.stop", &StopActor { key: actor }, false)
        }
        LatticeCmd::StartProvider {
            at,
            host,
            module,
            capability,
            remote_path,
            binding,
            env,
            args,
        } => {
            let source = match &module {
                Some(m) => module_source(m, remote_path)?,
                None => wascc_lattice::control::ModuleSource {
                    module: None,
                    path: None,
                },
            };
            let req = StartProvider {
                capability,
                source,
                binding,
                env: env
                    .iter()
                    .map(|e| key_value(e, "--env"))
                    .collect::<anyhow::Result<_>>()?,
                args,
            };
            lattice_command(&at, &host, "provider.start", &req, false)
        }
        LatticeCmd::StopProvider {
            at,
            host,
            capability,
        } => lattice_command(
            &at,
            &host,
            "provider.stop",
            &StopProvider { capability },
            false,
        ),
        LatticeCmd::Bind { at, which, values } => {
            let values = values
                .iter()
                .map(|v| key_value(v, "--value"))
                .collect::<anyhow::Result<_>>()?;
            binding_command(&at, which, "binding.put", values)
        }
        LatticeCmd::Unbind { at, which } => {
            binding_command(&at, which, "binding.del", Default::default())
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
    let nkey_seed = match &at.nats_nkey {
        Some(arg) => Some(load_seed(arg, 'U', "--nats-nkey")?.seed()?),
        None => None,
    };
    let control_seed = match &at.signer {
        Some(arg) => Some(load_seed_of(arg, &['U', 'A', 'O'], "--signer")?.seed()?),
        None => None,
    };
    let opts = wascc_lattice::LatticeOptions {
        url: at.nats.clone(),
        lattice: at.lattice.clone(),
        credentials: at.nats_creds.clone(),
        tls_ca: at.nats_tls_ca.clone(),
        nkey_seed,
        control_seed,
    };
    Ok(rt.block_on(async {
        let lattice = wascc_lattice::Lattice::connect(&opts).await?;
        f(lattice).await
    })?)
}

fn binding_command(
    at: &LatticeArgs,
    which: BindingArgs,
    command: &str,
    values: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let req = wascc_lattice::control::BindingRequest {
        actor: which.actor,
        capability: which.capability,
        binding: which.binding,
        values,
    };
    lattice_command(at, &which.host, command, &req, false)
}

/// Sends `command` to `host`; prints its reply's data (JSON with
/// `as_json`, else a summary).
fn lattice_command(
    at: &LatticeArgs,
    host: &str,
    command: &str,
    body: &impl serde::Serialize,
    as_json: bool,
) -> anyhow::Result<()> {
    let reply = with_lattice(at, async |l| {
        wascc_lattice::control::request(&l, host, command, body).await
    })
    .map_err(|e| {
        let text = e.to_string();
        if text.contains("max payload") && command.ends_with(".start") {
            anyhow::anyhow!(
                "{text}: copy the module to the host and give its path there with --remote-path"
            )
        } else {
            e
        }
    })?;
    match reply.error {
        None if reply.ok => {
            match (&reply.data, as_json) {
                (Some(data), true) => println!("{}", serde_json::to_string(data)?),
                (Some(data), false) if command == "inventory" => {
                    let record: wascc_lattice::HostRecord = serde_json::from_value(data.clone())
                        .context("the host's inventory is unreadable")?;
                    print_host(&record, wascc_lattice::now_secs());
                }
                (Some(serde_json::Value::Object(o)), false) if o.contains_key("key") => {
                    println!("{}", o["key"].as_str().unwrap_or_default());
                }
                _ => {}
            }
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
        print_host(&h, now);
    }
    Ok(())
}

/// Prints one host's record for people.
fn print_host(h: &wascc_lattice::HostRecord, now: u64) {
    {
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
        let bindings: Vec<String> = h
            .bindings
            .iter()
            .map(|b| format!("{} → {} ({})", b.actor, b.capability, b.binding))
            .collect();
        println!("  Actors:    {}", actors.join(", "));
        println!("  Providers: {}", providers.join(", "));
        println!("  Bindings:  {}", bindings.join(", "));
    }
}

/// Reads a seed given inline or as a file, checking it is of the expected kind.
fn load_seed(arg: &str, prefix: char, flag: &str) -> anyhow::Result<KeyPair> {
    load_seed_of(arg, &[prefix], flag)
}

/// A seed given inline or in a file, of one of the key kinds `prefixes`.
fn load_seed_of(arg: &str, prefixes: &[char], flag: &str) -> anyhow::Result<KeyPair> {
    let text = if arg.starts_with('S') && !Path::new(arg).exists() {
        arg.to_string()
    } else {
        std::fs::read_to_string(arg)
            .with_context(|| format!("{flag}: {arg:?} is neither a seed nor a readable file"))?
    };
    let seed = text.trim();
    if seed.len() < 2
        || !seed.starts_with('S')
        || !prefixes.iter().any(|p| seed[1..].starts_with(*p))
    {
        let expected: Vec<String> = prefixes.iter().map(|p| format!("S{p}")).collect();
        bail!(
            "{flag}: expected a seed starting with {}",
            expected.join(", ")
        );
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
