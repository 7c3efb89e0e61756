//! The engines against the waSCC 0.14 fixtures and hand-written modules.

use futures_lite::future::block_on;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wascc_engines::*;

#[derive(Default)]
struct Recorder {
    logs: Mutex<Vec<String>>,
    calls: Mutex<Vec<HostCall>>,
}

impl HostHandler for Recorder {
    fn host_call(&self, call: HostCall) -> HostReply {
        let reply = if call.namespace == "test:fail" {
            Err("refused by test".to_string())
        } else {
            Ok(call.payload.clone())
        };
        self.calls.lock().unwrap().push(call);
        HostReply::Ready(reply)
    }
    fn console_log(&self, actor: &str, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push(format!("{actor}: {message}"));
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/wascc-0.14")
            .join(name),
    )
    .unwrap()
}

fn engine(kind: EngineKind) -> Engine {
    let mut cfg = EngineConfig::new(kind);
    cfg.call_deadline = Duration::from_millis(200);
    cfg.max_instances = 16;
    if kind == EngineKind::Aot {
        cfg.aot_dir = Some(tempfile::tempdir().unwrap().keep());
    }
    Engine::new(cfg).unwrap()
}

/// A minimal waPC guest in WAT: `__guest_call` passes its message to the host
/// under the operation's namespace and answers with the host's reply, or
/// loops forever when the operation is "spin".
const GUEST: &str = r#"
(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wapc" "__guest_error" (func $err (param i32 i32)))
  (import "wapc" "__host_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $rlen (result i32)))
  (import "wapc" "__host_response" (func $rbuf (param i32)))
  (import "wapc" "__host_error_len" (func $elen (result i32)))
  (import "wapc" "__host_error" (func $ebuf (param i32)))
  (import "wapc" "__console_log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "spin")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    ;; op at 100, message at 200
    (call $req (i32.const 100) (i32.const 200))
    (call $log (i32.const 100) (local.get $op_len))
    (if (i32.eq (i32.load (i32.const 100)) (i32.load (i32.const 0)))
      (then (loop $l (br $l))))
    (if (i32.eqz (call $call (i32.const 0) (i32.const 0) (i32.const 100) (local.get $op_len)
                             (i32.const 100) (local.get $op_len) (i32.const 200) (local.get $msg_len)))
      (then
        (call $ebuf (i32.const 1000))
        (call $err (i32.const 1000) (call $elen))
        (return (i32.const 0))))
    (call $rbuf (i32.const 1000))
    (call $resp (i32.const 1000) (call $rlen))
    (i32.const 1)))
"#;

#[test]
fn the_wapc_abi_round_trips_on_every_engine() {
    for kind in EngineKind::ALL {
        let rec = Arc::new(Recorder::default());
        let module = engine(kind).load(&wat::parse_str(GUEST).unwrap()).unwrap();
        let mut inst = block_on(module.instantiate("MTEST", rec.clone())).unwrap();
        assert_eq!(
            block_on(inst.call("test:echo", b"payload")).unwrap(),
            b"payload",
            "{kind}"
        );
        let call = rec.calls.lock().unwrap()[0].clone();
        assert_eq!(
            (
                call.binding.as_str(),
                call.namespace.as_str(),
                call.operation.as_str()
            ),
            ("default", "test:echo", "test:echo")
        );
        assert_eq!(&*call.actor, "MTEST");
        assert_eq!(
            block_on(inst.call("test:fail", b"x")),
            Err(CallError::Guest("refused by test".into())),
            "{kind}"
        );
        assert_eq!(rec.logs.lock().unwrap()[0], "MTEST: test:echo");
        // Still usable after a guest error.
        assert_eq!(block_on(inst.call("test:again", b"y")).unwrap(), b"y");
    }
}

#[test]
fn an_endless_loop_is_interrupted_on_every_engine() {
    for kind in EngineKind::ALL {
        let module = engine(kind).load(&wat::parse_str(GUEST).unwrap()).unwrap();
        let mut inst =
            block_on(module.instantiate("MTEST", Arc::new(Recorder::default()))).unwrap();
        let e = block_on(inst.call("spin", b"")).unwrap_err();
        assert!(
            matches!(e, CallError::Deadline(d) if d == Duration::from_millis(200))
                || matches!(e, CallError::OutOfFuel(_)),
            "{kind}: {e}"
        );
        assert!(e.poisons_instance());
        // A fresh instance of the same module still works.
        let mut fresh =
            block_on(module.instantiate("MTEST", Arc::new(Recorder::default()))).unwrap();
        assert_eq!(
            block_on(fresh.call("test:ok", b"z")).unwrap(),
            b"z",
            "{kind}"
        );
    }
}

#[test]
fn the_constrained_engine_stops_a_call_that_burns_its_fuel() {
    let mut cfg = EngineConfig::new(EngineKind::Constrained);
    cfg.fuel_per_call = Some(100_000);
    cfg.call_deadline = Duration::from_secs(60);
    cfg.max_instances = 4;
    let module = Engine::new(cfg)
        .unwrap()
        .load(&wat::parse_str(GUEST).unwrap())
        .unwrap();
    let mut inst = block_on(module.instantiate("MTEST", Arc::new(Recorder::default()))).unwrap();
    assert_eq!(
        block_on(inst.call("spin", b"")).unwrap_err(),
        CallError::OutOfFuel(100_000)
    );
}

#[test]
fn the_subscriber_fixture_receives_a_message() {
    for kind in EngineKind::ALL {
        let rec = Arc::new(Recorder::default());
        let module = engine(kind).load(&fixture("subscriber.wasm")).unwrap();
        let mut inst = block_on(module.instantiate("MSUB", rec.clone())).unwrap();
        let msg = wascc_contracts::messaging::BrokerMessage {
            subject: "test.subject".into(),
            reply_to: String::new(),
            body: b"hello subscriber".to_vec(),
        };
        let payload = wascc_contracts::encode_compat(&msg).unwrap();
        block_on(inst.call(wascc_contracts::messaging::OP_DELIVER_MESSAGE, &payload)).unwrap();
        let logs = rec.logs.lock().unwrap().join("\n");
        assert!(logs.contains("test.subject"), "{kind}: {logs}");
    }
}

#[test]
fn modules_that_are_not_wapc_actors_are_refused_clearly() {
    let e = engine(EngineKind::Jit)
        .load(b"\0asm\x01\0\0\0\x0a\x03\x01\xff\xff")
        .unwrap_err();
    assert!(matches!(e, EngineError::InvalidModule(_)), "{e}");
    let e = engine(EngineKind::Jit)
        .load(&wat::parse_str("(module (memory (export \"memory\") 1))").unwrap())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "module is not a waPC actor: it does not export `__guest_call`"
    );
    let wasi = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1) (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"#;
    let e = engine(EngineKind::Interp)
        .load(&wat::parse_str(wasi).unwrap())
        .unwrap_err();
    assert!(
        e.to_string().contains("wasi_snapshot_preview1::fd_write"),
        "{e}"
    );
}

#[test]
fn a_corrupt_precompiled_module_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(EngineKind::Aot);
    cfg.aot_dir = Some(dir.path().to_path_buf());
    cfg.max_instances = 4;
    let wasm = wat::parse_str(GUEST).unwrap();
    Engine::new(cfg.clone()).unwrap().load(&wasm).unwrap();
    let cwasm = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    std::fs::write(&cwasm, b"garbage").unwrap();
    let module = Engine::new(cfg).unwrap().load(&wasm).unwrap();
    let mut inst = block_on(module.instantiate("MTEST", Arc::new(Recorder::default()))).unwrap();
    assert_eq!(block_on(inst.call("test:x", b"ok")).unwrap(), b"ok");
    assert_ne!(std::fs::read(&cwasm).unwrap(), b"garbage");
}

#[test]
fn unknown_engine_kinds_are_named() {
    assert_eq!(
        "turbo".parse::<EngineKind>().unwrap_err().to_string(),
        "unknown engine kind \"turbo\": expected jit, interp, aot or constrained"
    );
}

/// A portable provider's view of WASI in WAT: operation `info` answers with
/// what the WASI calls returned (layout in the test), `env` with the
/// environment block, `x…` exits through `proc_exit`.
const WASI_GUEST: &str = r#"
(module
  (import "wapc" "__guest_request" (func $req (param i32 i32)))
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $esz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $eget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $rand (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 700) "hello from wasi\n")
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $req (i32.const 100) (i32.const 200))
    (if (i32.eq (i32.load8_u (i32.const 100)) (i32.const 120))
      (then (call $exit (i32.const 3))))
    (if (i32.eq (i32.load8_u (i32.const 100)) (i32.const 101))
      (then
        (drop (call $esz (i32.const 300) (i32.const 304)))
        (drop (call $eget (i32.const 400) (i32.const 500)))
        (call $resp (i32.const 500) (i32.load (i32.const 304)))
        (return (i32.const 1))))
    (drop (call $esz (i32.const 300) (i32.const 304)))
    (drop (call $asz (i32.const 308) (i32.const 312)))
    (i32.store (i32.const 316)
      (call $open (i32.const 3) (i32.const 0) (i32.const 700) (i32.const 5) (i32.const 0)
                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 900)))
    (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 320)))
    (drop (call $rand (i32.const 328) (i32.const 16)))
    (i32.store (i32.const 344) (call $poll (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 900)))
    (i32.store (i32.const 348) (call $prestat (i32.const 3) (i32.const 900)))
    (i32.store (i32.const 352) (call $clock (i32.const 2) (i64.const 0) (i32.const 900)))
    (i32.store (i32.const 600) (i32.const 700))
    (i32.store (i32.const 604) (i32.const 16))
    (i32.store (i32.const 356) (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 360)))
    (call $resp (i32.const 300) (i32.const 64))
    (i32.const 1)))
"#;

#[test]
fn portable_providers_get_a_wasi_that_maps_nothing_unless_configured() {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let wasm = wat::parse_str(WASI_GUEST).unwrap();
    for kind in [EngineKind::Jit, EngineKind::Interp] {
        let module = engine(kind).load_wasi(&wasm).unwrap();
        let rec = Arc::new(Recorder::default());
        let cfg = WasiConfig {
            args: vec!["prov".into(), "x".into()],
            env: vec![
                ("A".into(), "1".into()),
                ("GREETING".into(), "hi there".into()),
            ],
        };
        let mut inst = block_on(module.instantiate_with("MPROV", rec.clone(), Some(&cfg))).unwrap();
        let info = block_on(inst.call("info", b"")).unwrap();
        assert_eq!(u32_at(&info, 0), 2, "{kind}: environment variables");
        assert_eq!(u32_at(&info, 4), 22, "{kind}: A=1\\0GREETING=hi there\\0");
        assert_eq!(
            (u32_at(&info, 8), u32_at(&info, 12)),
            (2, 7),
            "{kind}: args"
        );
        assert_eq!(u32_at(&info, 16), 76, "{kind}: path_open is ENOTCAPABLE");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let clock = u64::from_le_bytes(info[20..28].try_into().unwrap()) / 1_000_000_000;
        assert!(
            clock.abs_diff(now) < 60,
            "{kind}: realtime {clock} vs {now}"
        );
        assert_ne!(&info[28..44], &[0u8; 16], "{kind}: random bytes");
        assert_eq!(u32_at(&info, 44), 52, "{kind}: poll_oneoff is ENOSYS");
        assert_eq!(u32_at(&info, 48), 8, "{kind}: no preopened directory");
        assert_eq!(u32_at(&info, 52), 28, "{kind}: no CPU-time clock");
        assert_eq!(
            (u32_at(&info, 56), u32_at(&info, 60)),
            (0, 16),
            "{kind}: stdout"
        );
        assert_eq!(
            rec.logs.lock().unwrap().as_slice(),
            ["MPROV: hello from wasi"],
            "{kind}"
        );
        let env = block_on(inst.call("env", b"")).unwrap();
        assert_eq!(env, b"A=1\0GREETING=hi there\0", "{kind}");
        let e = block_on(inst.call("xit", b"")).unwrap_err();
        assert!(
            matches!(&e, CallError::Trap(m) if m.contains("exited (proc_exit) with code 3")),
            "{kind}: {e}"
        );

        // Unconfigured: an empty environment and no arguments.
        let mut bare = block_on(module.instantiate("MPROV", rec.clone())).unwrap();
        let info = block_on(bare.call("info", b"")).unwrap();
        assert_eq!(
            (u32_at(&info, 0), u32_at(&info, 8)),
            (0, 0),
            "{kind}: nothing configured"
        );
    }
}
