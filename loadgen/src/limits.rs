//! Every limit of the load generator, with the reason for its value.

use std::time::Duration;

/// More connections than this is a mistake on a 2-core machine, not a plan.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Longest run: capacity steps are minutes, not hours.
pub const MAX_DURATION: Duration = Duration::from_secs(3_600);

/// Largest latency recorded (60 s, in µs): beyond it a request is an error anyway.
pub const MAX_RECORDED_US: u64 = 60_000_000;

/// Response headers parsed per response.
pub const MAX_HEADERS: usize = 32;

/// Initial response buffer per connection.
pub const READ_BUFFER: usize = 16 << 10;

/// Spare room made in the response buffer before each read.
pub const READ_CHUNK: usize = 16 << 10;

/// Pause after an error in closed-loop mode, so a dead server is not spun on.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Bisection steps of `--find-max`: each halves the interval, so 8 steps
/// resolve the rate to within 0.5 % of the closed-loop ceiling.
pub const CAPACITY_STEPS: usize = 8;
