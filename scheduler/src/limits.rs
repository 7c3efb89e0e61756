//! Every limit of the scheduler, with the reason for its value.

use std::time::Duration;

/// How long an idle shard spins before parking: waking a parked core costs
/// tens of microseconds on these machines, a short spin catches the next
/// request first.
pub const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

/// Memory glommio registers for io_uring buffers per shard. Small: the host
/// does socket I/O, not bulk file I/O, and registered memory counts against
/// `RLIMIT_MEMLOCK` (8 MiB by default here).
pub const IO_MEMORY: usize = 512 << 10;

/// Backlog of each listening socket (glommio's own value).
pub const LISTEN_BACKLOG: u32 = 1024;
