//! Every limit of the engines, with the reason for its value.

use std::time::Duration;

/// How often the epoch ticks. Deadlines are checked at this grain and a
/// running actor yields to its shard's other tasks once per tick; 1 ms keeps
/// the 20 ms interrupt target far away while costing one wake-up per ms.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Default time one invocation may run before it is interrupted. Long enough
/// for any request handler, short enough that a runaway loop costs little.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(2);

/// Default number of instances the pool holds per engine (the pooling
/// allocator reserves address space for all of them up front).
pub const DEFAULT_MAX_INSTANCES: u32 = 1_000;

/// Default number of invocations running at once per engine: each holds a
/// fiber stack of [`ASYNC_STACK`] bytes (address space reserved up front,
/// touched only while the call runs).
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 1_000;

/// Default largest linear memory of an instance: the 0.x fixtures start at
/// 17 pages and grow on demand; 64 MiB leaves room for real work.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 64 << 20;

/// Memory of an instance on the `constrained` engine.
pub const CONSTRAINED_MAX_MEMORY_BYTES: usize = 16 << 20;

/// Default largest table (funcref elements); Rust actors use a few hundred.
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 20_000;

/// Table elements on the `constrained` engine.
pub const CONSTRAINED_MAX_TABLE_ELEMENTS: usize = 5_000;

/// Fuel (roughly: wasm instructions) one invocation may burn on the
/// `constrained` engine before it is stopped.
pub const CONSTRAINED_FUEL_PER_CALL: u64 = 500_000_000;

/// How much fuel a `constrained` invocation burns between yields to its shard.
pub const CONSTRAINED_FUEL_YIELD_INTERVAL: u64 = 1_000_000;

/// Guard region after each linear memory. With the memory reservation equal
/// to the maximum size, bounds checks are explicit; a small guard still
/// catches a stray access just past the end.
pub const MEMORY_GUARD_BYTES: u64 = 64 << 10;

/// Stack of an executing guest (wasm frames). 512 KiB is what Rust's default
/// wasm32 stack needs with headroom, and stacks are taken only while a call runs.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Host stack of one in-flight async call (wasm stack + host frames).
pub const ASYNC_STACK: usize = 1 << 20;

/// Largest message a guest may hand the host in one buffer (operation
/// names, host-call payloads, responses): bounds a hostile guest's claim on
/// host memory.
pub const MAX_GUEST_BUFFER: usize = 16 << 20;

/// Native stack of wasm frames on a dense engine. wasmtime keeps each
/// instance's last fiber stack for its next call, so the touched part of it
/// stays resident per idle actor; Rust guests keep their own stack in linear
/// memory and need little native stack.
pub const DENSE_MAX_WASM_STACK: usize = 64 << 10;

/// Fiber stack of one call on a dense engine: the wasm frames plus room for
/// the host's frames during host calls.
pub const DENSE_ASYNC_STACK: usize = 192 << 10;

/// Longest line of a portable provider's standard output or error kept
/// before it is logged unfinished: bounds what a provider that never writes
/// a newline holds in host memory.
pub const MAX_WASI_LINE: usize = 16 << 10;
