//! Every limit of the scheduler, with the reason for its value.

use std::time::Duration;

/// How long an idle shard spins before parking: waking a parked core costs
/// tens of microseconds on these machines, a short spin catches the next
/// request first. glommio spins only on a pinned executor (it drops the
/// setting for an unpinned one), so shards run with `--no-pin`, and the
/// benchmarks' hosts, park at once.
pub const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

/// Memory glommio registers for io_uring buffers per shard. Small: the host
/// does socket I/O, not bulk file I/O, and registered memory counts against
/// `RLIMIT_MEMLOCK` (8 MiB by default here).
pub const IO_MEMORY: usize = 512 << 10;

/// Backlog of each listening socket (glommio's own value).
pub const LISTEN_BACKLOG: u32 = 1024;

/// How long a shard polls for a cross-shard message (a call arriving, a reply
/// coming back) before it waits through the executor. The same budget as
/// [`SPIN_BEFORE_PARK`]: a hop through glommio's event loop costs several
/// microseconds of io_uring work on these machines, a parked core tens.
pub const MESH_SPIN: Duration = Duration::from_micros(50);

/// How long one slice of that polling runs before the shard's other ready
/// tasks get a turn: short enough not to delay them noticeably.
pub const MESH_SPIN_SLICE: Duration = Duration::from_micros(2);

/// Bytes one read of a connection takes at most (its scratch buffer): a
/// whole typical HTTP request, and the size of hyper's first read buffer.
pub const READ_SCRATCH: usize = 8 << 10;
