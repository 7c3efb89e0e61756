//! Manifest errors name the file and the reason, before anything is served.

use crate::support::*;

fn fails_with(manifest: &str, needle: &str) {
    let work = Workdir::new();
    let (code, log) = host_fails(&work, manifest, &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("manifest.yaml"), "names the file:\n{log}");
    assert!(log.contains(needle), "expected {needle:?} in:\n{log}");
}

#[test]
fn yaml_errors_name_the_file() {
    fails_with("actors: [unclosed\n", "invalid manifest");
    fails_with("actorz: []\n", "unknown field `actorz`");
    // A misspelt option of one actor names the entry and the field.
    fails_with(
        "actors:\n  - {path: a.wasm, instance: fresh}\n",
        "actors[0]: unknown field `instance`",
    );
    fails_with(
        "actors:\n  - {path: a.wasm, instances: sometimes}\n",
        "unknown instance policy \"sometimes\": expected reuse or fresh",
    );
    fails_with(
        "actors:\n  - {path: a.wasm, shards: 0}\n",
        "shards must be at least 1",
    );
    fails_with(
        "actors:\n  - 42\n",
        "actors[0]: expected a path or a mapping",
    );
}

#[test]
fn capability_entries_are_checked() {
    fails_with(
        "capabilities:\n  - path: ./libwascc_httpsrv.so\n",
        "capabilities[0]: \"./libwascc_httpsrv.so\" is a native plugin (waSCC 0.x)",
    );
    fails_with(
        "capabilities: [{id: wascc:keyvalue, path: ./kv.wasm}]\n",
        "give either id (wascc:keyvalue, a built-in provider) or path (./kv.wasm, a portable provider), not both",
    );
    fails_with(
        "capabilities: [{id: wascc:keyvalue, binding: cache}]\n",
        "capabilities[0] (wascc:keyvalue): binding applies to a portable provider",
    );
    fails_with(
        "capabilities: [{binding: cache}]\n",
        "capabilities[0]: needs an id (built-in provider) or a path (portable provider)",
    );
    fails_with(
        "capabilities: [{path: ./kv.wasm, env: {A: \"${WASCC_IT_UNSET_VAR}\"}}]\n",
        "capabilities[0] (./kv.wasm) env A: environment variable WASCC_IT_UNSET_VAR is not set",
    );
    fails_with(
        "capabilities: [{path: ./kv.wasm, dirs: [/tmp]}]\n",
        "unknown field `dirs`",
    );
    // A missing module names the file.
    fails_with(
        "capabilities: [{path: ./missing-provider.wasm}]\n",
        "missing-provider.wasm: cannot read",
    );
}

#[test]
fn unknown_capabilities_are_refused() {
    fails_with(
        "capabilities: [{id: wascc:blobstore}]\n",
        "capability wascc:blobstore has no built-in provider",
    );
}

#[test]
fn unknown_engine_kinds_are_refused() {
    fails_with(
        &format!(
            "actors: [{{path: {}, engine: turbo}}]\n",
            fixture("echo.wasm").display()
        ),
        "unknown engine kind \"turbo\"",
    );
}

#[test]
fn bindings_are_checked_against_actors_claims_and_values() {
    let echo = fixture("echo.wasm");
    let head = format!(
        "actors: [{}]\ncapabilities: [{{id: wascc:http_server}}, {{id: wascc:keyvalue}}]\n",
        echo.display()
    );
    fails_with(
        &format!("{head}bindings: [{{actor: MNOTHERE, capability: wascc:http_server}}]\n"),
        "the actor is not among the manifest's actors",
    );
    fails_with(
        &format!("{head}bindings: [{{actor: {ECHO_KEY}, capability: wascc:keyvalue}}]\n"),
        "the actor's claims do not list this capability",
    );
    fails_with(
        &format!("{head}bindings: [{{actor: {ECHO_KEY}, capability: wascc:http_server}}]\n"),
        "value PORT is required",
    );
    fails_with(
        &format!(
            "{head}bindings: [{{actor: {ECHO_KEY}, capability: wascc:http_server, values: {{PORT: \"${{WASCC_TEST_UNSET_VAR}}\"}}}}]\n"
        ),
        "environment variable WASCC_TEST_UNSET_VAR is not set",
    );
}

#[test]
fn a_missing_manifest_is_reported() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wascc-host"))
        .args(["--manifest", "/nonexistent/manifest.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest /nonexistent/manifest.yaml: cannot read"),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wascc-host"))
        .args(["--manifest", "x.yaml", "--engine", "turbo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown engine kind \"turbo\""));
}
