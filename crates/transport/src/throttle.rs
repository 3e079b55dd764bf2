//! Logging that a flood cannot turn into a flood of log lines.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A warning logged at most once per interval, with the count of what it stands for, so a
/// flood cannot fill the log.
pub struct RateLimitedLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    /// A log that speaks at most once per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one occurrence; returns how many to report when it is time to log.
    pub fn hit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 += 1;
        let due = state.0.is_none_or(|last| last.elapsed() >= self.interval);
        if due {
            state.0 = Some(Instant::now());
            Some(std::mem::take(&mut state.1))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_once_per_interval_with_its_count() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.hit(), Some(1));
        for _ in 0..1000 {
            assert_eq!(log.hit(), None);
        }
    }
}
