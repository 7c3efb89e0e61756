//! Calls sent on a connection and waiting for their replies, by number,
//! each with when it gives up: the reply timeout, or the calling
//! invocation's deadline when that comes first (an actor waiting on a call
//! is not interrupted until it runs again, so the call must let go).

use crate::limits::REMOTE_CALL_TIMEOUT;
use std::collections::HashMap;
use std::time::Instant;

/// Why a call ended when its calling invocation's deadline came first.
pub const CALLER_DEADLINE_PASSED: &str =
    "the calling invocation's deadline passed before the reply came";

/// Calls waiting for replies; `T` is where a call's outcome goes.
#[derive(Debug)]
pub struct Waiting<T> {
    calls: HashMap<u64, (Instant, GivesUp, T)>,
}

/// Why a call stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GivesUp {
    ReplyTimeout,
    CallerDeadline,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Waiting {
            calls: HashMap::new(),
        }
    }
}

impl<T> Waiting<T> {
    /// Call `n`, sent at `now` by an invocation whose deadline is
    /// `caller_deadline`, waits with `tx`.
    pub fn insert(&mut self, n: u64, now: Instant, caller_deadline: Instant, tx: T) {
        let timeout = now + REMOTE_CALL_TIMEOUT;
        let (until, why) = if caller_deadline < timeout {
            (caller_deadline, GivesUp::CallerDeadline)
        } else {
            (timeout, GivesUp::ReplyTimeout)
        };
        self.calls.insert(n, (until, why, tx));
    }

    /// The waiter of call `n`, whose reply came (none: it gave up).
    pub fn take(&mut self, n: u64) -> Option<T> {
        self.calls.remove(&n).map(|(_, _, tx)| tx)
    }

    /// Forgets the calls whose waiter `gone` says is gone.
    pub fn forget(&mut self, gone: impl Fn(&T) -> bool) {
        self.calls.retain(|_, (_, _, tx)| !gone(tx));
    }

    /// Takes the calls past their time at `now`, each with why it ended.
    pub fn expire(&mut self, now: Instant) -> Vec<(T, String)> {
        let late: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, (until, _, _))| *until <= now)
            .map(|(n, _)| *n)
            .collect();
        late.into_iter()
            .filter_map(|n| self.calls.remove(&n))
            .map(|(_, why, tx)| {
                let message = match why {
                    GivesUp::ReplyTimeout => format!("no reply within {REMOTE_CALL_TIMEOUT:?}"),
                    GivesUp::CallerDeadline => CALLER_DEADLINE_PASSED.to_string(),
                };
                (tx, message)
            })
            .collect()
    }

    /// Takes every call (the connection ended).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.calls.drain().map(|(_, (_, _, tx))| tx)
    }

    /// How many calls wait.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call waits.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_call_gives_up_at_its_callers_deadline_or_the_reply_timeout_whichever_is_first() {
        let now = Instant::now();
        let mut w = Waiting::default();
        // An invocation with 300 ms left, one with a minute.
        w.insert(1, now, now + Duration::from_millis(300), "short");
        w.insert(2, now, now + Duration::from_secs(60), "long");
        assert!(w.expire(now + Duration::from_millis(299)).is_empty());
        let ended = w.expire(now + Duration::from_millis(300));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, "short");
        assert!(ended[0].1.contains("deadline passed"), "{}", ended[0].1);
        assert!(
            w.expire(now + REMOTE_CALL_TIMEOUT - Duration::from_millis(1))
                .is_empty()
        );
        let ended = w.expire(now + REMOTE_CALL_TIMEOUT);
        assert_eq!(
            ended,
            vec![("long", format!("no reply within {REMOTE_CALL_TIMEOUT:?}"))]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn replies_take_their_call_and_gone_waiters_are_forgotten() {
        let now = Instant::now();
        let mut w = Waiting::default();
        for n in 0..4 {
            w.insert(n, now, now + Duration::from_secs(1), n);
        }
        assert_eq!(w.take(2), Some(2));
        assert_eq!(w.take(2), None, "answered once");
        w.forget(|n| *n == 3);
        assert_eq!(w.len(), 2);
        let mut rest: Vec<u64> = w.drain().collect();
        rest.sort();
        assert_eq!(rest, vec![0, 1]);
    }
}
