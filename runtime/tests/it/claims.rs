//! Claims: each refusal has its own clear error, and the host exits before serving.

use crate::support::*;
use nkeys::KeyPair;
use wascc_bench::{actor_wasm, signed_actor};
use wascc_claims::{SignRequest, now_secs};

fn manifest_for(path: &std::path::Path) -> String {
    format!("actors: [{}]\n", path.display())
}

fn refused(wasm: &[u8], args: &[&str]) -> String {
    let work = Workdir::new();
    let path = work.write("actor.wasm", wasm);
    let (code, log) = host_fails(&work, &manifest_for(&path), args);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&path.display().to_string()),
        "the error names the file:\n{log}"
    );
    log
}

fn sign_with(req: SignRequest) -> Vec<u8> {
    let module = KeyPair::new_module();
    wascc_claims::sign(
        &actor_wasm("echo"),
        &req,
        &KeyPair::new_account(),
        &module.public_key(),
    )
    .unwrap()
}

#[test]
fn a_tampered_module_is_refused() {
    let mut wasm = signed_actor("echo", &["wascc:http_server"], &KeyPair::new_account()).wasm;
    // Flip a byte of the `name` custom section: still valid wasm, other hash.
    let pos = wasm.windows(4).position(|w| w == b"name").unwrap() + 8;
    wasm[pos] ^= 0x20;
    let log = refused(&wasm, &[]);
    assert!(log.contains("claims hash mismatch: module sha256"), "{log}");
}

#[test]
fn a_wrong_signature_is_refused() {
    let signed = signed_actor("echo", &["wascc:http_server"], &KeyPair::new_account());
    let token = wascc_claims::extract(&signed.wasm).unwrap().unwrap();
    // The same claims, signed by another account but still naming the first.
    let forged = token.claims.encode(&KeyPair::new_account()).unwrap();
    let mut wasm = wascc_claims::strip_jwt(&signed.wasm).unwrap();
    let mut section = Vec::new();
    section.push(3u8);
    section.extend_from_slice(b"jwt");
    section.extend_from_slice(forged.as_bytes());
    wasm.push(0);
    let mut len = section.len();
    while len >= 0x80 {
        wasm.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    wasm.push(len as u8);
    wasm.extend_from_slice(&section);
    let log = refused(&wasm, &[]);
    assert!(
        log.contains(&format!(
            "claims signature does not verify under issuer {}",
            signed.issuer
        )),
        "{log}"
    );
}

#[test]
fn expired_claims_are_refused() {
    let wasm = sign_with(SignRequest {
        name: "e".into(),
        expires: Some(now_secs() - 60),
        ..Default::default()
    });
    assert!(refused(&wasm, &[]).contains("claims expired at"));
}

#[test]
fn not_yet_valid_claims_are_refused() {
    let wasm = sign_with(SignRequest {
        name: "e".into(),
        not_before: Some(now_secs() + 3600),
        ..Default::default()
    });
    assert!(refused(&wasm, &[]).contains("claims not valid before"));
}

#[test]
fn an_untrusted_issuer_is_refused_and_a_trusted_one_runs() {
    let issuer = KeyPair::new_account();
    let actor = signed_actor("echo", &["wascc:http_server"], &issuer);
    let other = KeyPair::new_account().public_key();
    let log = refused(&actor.wasm, &["--trusted-issuer", &other]);
    assert!(
        log.contains(&format!(
            "issuer {} is not a trusted issuer",
            issuer.public_key()
        )),
        "{log}"
    );

    let work = Workdir::new();
    let path = work.write("actor.wasm", &actor.wasm);
    let host = HostProc::start(
        work,
        &manifest_for(&path),
        &[
            "--trusted-issuer",
            &other,
            "--trusted-issuer",
            &issuer.public_key(),
        ],
    );
    assert!(host.log().contains(&actor.key));
}

#[test]
fn a_module_without_claims_is_refused() {
    let log = refused(&actor_wasm("echo"), &[]);
    assert!(log.contains("module has no claims"), "{log}");
}

#[test]
fn a_malformed_or_truncated_module_is_refused() {
    let log = refused(b"this is not wasm at all", &[]);
    assert!(
        log.contains("not a wasm module: missing the \\0asm magic number"),
        "{log}"
    );

    let fixture = std::fs::read(fixture("echo.wasm")).unwrap();
    let log = refused(&fixture[..fixture.len() / 2], &[]);
    assert!(
        log.contains("not a wasm module") && log.contains("runs past the end of the file"),
        "{log}"
    );
}

#[test]
fn a_signed_module_that_does_not_compile_is_refused() {
    // Valid header and sections, nonsense code: the claims are fine, wasmtime is not.
    let mut junk = b"\0asm\x01\0\0\0".to_vec();
    junk.extend_from_slice(&[10, 3, 1, 0xff, 0xff]);
    let req = SignRequest {
        name: "junk".into(),
        ..Default::default()
    };
    let wasm = wascc_claims::sign(
        &junk,
        &req,
        &KeyPair::new_account(),
        &KeyPair::new_module().public_key(),
    )
    .unwrap();
    let log = refused(&wasm, &[]);
    assert!(log.contains("invalid wasm module"), "{log}");
}

#[test]
fn a_bad_trusted_issuer_argument_is_refused() {
    let work = Workdir::new();
    let (code, log) = host_fails(
        &work,
        "actors: []\n",
        &[
            "--trusted-issuer",
            "MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        log.contains("trusted issuer key") && log.contains("expected a public key starting with A"),
        "{log}"
    );
}

/// The `wcc` binary of this build (built on demand when only this crate's
/// tests were built).
fn wcc_binary() -> std::path::PathBuf {
    let host = std::path::PathBuf::from(env!("CARGO_BIN_EXE_wascc-host"));
    let wcc = host.with_file_name("wcc");
    if !wcc.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "wcc"])
            .status()
            .unwrap();
        assert!(ok.success(), "cannot build wcc");
    }
    wcc
}

#[test]
fn a_module_signed_by_wcc_runs() {
    let wcc = wcc_binary();
    let keys = |kind: &str| -> serde_json::Value {
        let out = std::process::Command::new(&wcc)
            .args(["keys", "gen", kind, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (account, module) = (keys("account"), keys("module"));
    let work = Workdir::new();
    let unsigned = work.write("echo.wasm", &actor_wasm("echo"));
    let signed = work.dir.path().join("echo_signed.wasm");
    let out = std::process::Command::new(&wcc)
        .args(["claims", "sign"])
        .arg(&unsigned)
        .arg("-o")
        .arg(&signed)
        .args([
            "--issuer",
            account["seed"].as_str().unwrap(),
            "--subject",
            module["seed"].as_str().unwrap(),
        ])
        .args(["--name", "Echo", "--cap", "wascc:http_server"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let key = module["public_key"].as_str().unwrap();
    let manifest = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}]\nbindings:\n  - {{actor: {key}, capability: wascc:http_server, values: {{PORT: \"{port}\", ADDR: 127.0.0.1}}}}\n",
        signed.display()
    );
    let _host = HostProc::start(
        work,
        &manifest,
        &["--trusted-issuer", account["public_key"].as_str().unwrap()],
    );
    assert_eq!(get(port, "/signed?by=wcc").json()["query_string"], "by=wcc");
}
