//! Shared by waSCC's benchmarks and tests: builds the example actors in
//! `actors/` from source and signs them with keys made on the spot.
//!
//! Not for: anything a host needs at run time.

pub mod calls;
pub mod density;
pub mod lattice;
pub mod nats;

use nkeys::KeyPair;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A host for benchmarks and harnesses whose actors make no host calls:
/// any that came would be refused, console lines are dropped.
pub struct NoHost;

impl wascc_engines::HostHandler for NoHost {
    fn host_call(&self, call: wascc_engines::HostCall) -> wascc_engines::HostReply {
        wascc_engines::HostReply::Ready(Err(format!(
            "no host calls in benchmarks ({})",
            call.namespace
        )))
    }
    fn console_log(&self, _: &str, _: &str) {}
}

/// The repository root (this crate lives in `bench/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds the actors workspace for `wasm32-unknown-unknown` (release) once
/// per process and returns the folder holding the `.wasm` files. Panics with
/// cargo's output when the build fails: callers are tests and benches.
pub fn build_actors() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_guest("wasm32-unknown-unknown", &[]))
}

/// Builds the example portable providers (`wasm32-wasip1`, release) once per
/// process and returns the folder holding their `.wasm` files.
pub fn build_providers() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_guest("wasm32-wasip1", &["-p", "memkv"]))
}

fn build_guest(target: &str, packages: &[&str]) -> PathBuf {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--target", target])
        .args(packages)
        .arg("--manifest-path")
        .arg(root.join("actors/Cargo.toml"))
        // The host's build flags (coverage, sanitizers) must not leak into the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cannot run cargo to build the actors");
    assert!(
        out.status.success(),
        "building actors/ for {target} failed (is the target installed? rustup target add {target}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join("actors/target").join(target).join("release")
}

/// Builds example portable provider `name` (`memkv`) and signs it as a
/// provider (`prov: true`) with a fresh module key issued by `issuer`.
pub fn signed_provider(name: &str, issuer: &KeyPair) -> SignedActor {
    let path = build_providers().join(format!("{name}.wasm"));
    let wasm =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    sign_as(&wasm, name, &[], issuer, true)
}

/// The unsigned module of example actor `name` (`echo`, `kvcounter`, `kitchen`).
pub fn actor_wasm(name: &str) -> Vec<u8> {
    let path = build_actors().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An actor signed for a test: its module, its key, and the issuer.
pub struct SignedActor {
    /// The signed module.
    pub wasm: Vec<u8>,
    /// The actor's public key (`M…`).
    pub key: String,
    /// The issuing account's public key (`A…`).
    pub issuer: String,
}

/// Builds and signs example actor `name` with a fresh module key, issued by
/// `issuer`, with `caps` in its claims.
pub fn signed_actor(name: &str, caps: &[&str], issuer: &KeyPair) -> SignedActor {
    sign_module(&actor_wasm(name), name, caps, issuer)
}

/// Builds the AssemblyScript echo actor (`actors/as-echo`, with npm) once
/// per process and returns its unsigned module. Panics with npm's output on
/// failure: callers are tests.
pub fn as_echo_wasm() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let dir = repo_root().join("actors/as-echo");
        let npm = |args: &[&str]| {
            let out = Command::new("npm")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("cannot run npm (is Node.js installed?)");
            assert!(
                out.status.success(),
                "npm {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if !dir.join("node_modules/assemblyscript").exists() {
            npm(&["ci", "--no-audit", "--no-fund"]);
        }
        npm(&["run", "build"]);
        std::fs::read(dir.join("build/as_echo.wasm")).expect("npm run build wrote no module")
    })
    .clone()
}

/// Signs `wasm` with a fresh module key issued by `issuer`.
pub fn sign_module(wasm: &[u8], name: &str, caps: &[&str], issuer: &KeyPair) -> SignedActor {
    sign_as(wasm, name, caps, issuer, false)
}

fn sign_as(
    wasm: &[u8],
    name: &str,
    caps: &[&str],
    issuer: &KeyPair,
    provider: bool,
) -> SignedActor {
    let module = KeyPair::new_module();
    let req = wascc_claims::SignRequest {
        name: name.to_string(),
        caps: caps.iter().map(|c| c.to_string()).collect(),
        provider,
        ..Default::default()
    };
    let wasm =
        wascc_claims::sign(wasm, &req, issuer, &module.public_key()).expect("signing failed");
    SignedActor {
        wasm,
        key: module.public_key(),
        issuer: issuer.public_key(),
    }
}
