//! Every limit of the host, with the reason for its value.

use std::time::Duration;

/// Largest HTTP request body delivered to an actor; larger gets 413. The
/// whole body is buffered and copied into guest memory, whose default
/// maximum is 64 MiB.
pub const MAX_HTTP_BODY: usize = 8 << 20;

/// How long the host waits for in-flight requests after SIGINT/SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the shard looks at the shutdown flag set by the signal handler.
pub const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

/// Largest manifest file read: a manifest is a short list of paths and values.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Largest actor module read from disk.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// How deep actor-to-actor calls may nest. Each level holds an instance and
/// a fiber stack while it waits; a cycle (A calls B calls A …) is stopped
/// here with a clear error instead of exhausting the instance pool.
pub const MAX_CALL_DEPTH: u32 = 16;

/// Most shards a host runs: one per core on the largest machines we expect;
/// shard ids are 16-bit and every shard costs a thread and an io_uring.
pub const MAX_SHARDS: usize = 1024;

/// How long the host waits for a port that is in use before refusing to
/// start: a host that just exited releases its listeners asynchronously
/// (io_uring closes sockets with operations pending after the process is
/// gone, usually within milliseconds), so a quick restart must not fail.
pub const PORT_RELEASE_WAIT: Duration = Duration::from_secs(1);

/// How long stopping a provider waits for the calls in flight to it before
/// shutting it down anyway: as long as the host's own drain.
pub const PROVIDER_DRAIN_TIMEOUT: Duration = DRAIN_TIMEOUT;

/// Worker threads of the services runtime (NATS, Redis, HTTP client I/O):
/// one, so that the shards keep the other cores; provider work there is
/// waiting on sockets, not computing.
pub const SERVICES_THREADS: usize = 1;

/// Calls queued for one portable provider: it serves them one at a time on
/// its own thread, so past this many a caller gets an "overloaded" error at
/// once rather than an ever longer wait.
pub const PORTABLE_QUEUE: usize = 1024;

/// Instances in the pool of the portable providers' engine: one per running
/// portable provider, plus one while a lost instance is replaced. The pool
/// reserves address space for each, so it is kept small.
pub const PORTABLE_MAX_INSTANCES: u32 = 32;

/// How long a portable provider's thread polls for its next call before it
/// sleeps: long enough to catch a caller's next call in a burst, short
/// enough that an idle provider costs no CPU.
pub const PORTABLE_SPIN: Duration = Duration::from_micros(50);

/// How long binding an actor to the HTTP server waits for every shard to
/// listen: shards look at the listener table every `SHUTDOWN_POLL`, so this
/// is only reached when a shard cannot bind (logged by the shard).
pub const HTTP_BIND_WAIT: Duration = Duration::from_secs(2);

/// Invocations a shard runs at once from its own lattice connection: past
/// it, the shard stops reading until one ends, so a flood backs up in the
/// socket (and the NATS server, which drops a slow consumer's messages)
/// instead of in the shard's memory. 64 callers in the benchmark; well
/// past what one core runs concurrently.
pub const LATTICE_IN_FLIGHT: usize = 4096;

/// Bytes a shard's lattice connection reads at once: room for a batch of
/// ~100 small invocations or replies, which the server sends together
/// under load (8 KiB, the default, took 2.5 times the reads).
pub const LATTICE_READ_BUFFER: usize = 64 << 10;
