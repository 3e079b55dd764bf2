//! Throttles shared by the servers: caps on what one address may hold, and logs a flood cannot
//! flood.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts of something held per IP address under a total cap; a slot is given back when its
/// [`Slot`] drops.
#[derive(Debug)]
pub struct AddressCaps {
    total: usize,
    per_address: usize,
    held: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One held slot of an [`AddressCaps`].
pub struct Slot {
    caps: Arc<AddressCaps>,
    address: IpAddr,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The total cap is reached.
    Total,
    /// This address holds its share.
    Address,
}

impl AddressCaps {
    /// Caps of `total` slots, at most `per_address` of them for one address.
    pub fn new(total: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_address,
            held: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for `address`, if both caps allow.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Full> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.0 >= self.total {
            return Err(Full::Total);
        }
        let mine = held.1.entry(address).or_default();
        if *mine >= self.per_address {
            return Err(Full::Address);
        }
        *mine += 1;
        held.0 += 1;
        Ok(Slot {
            caps: self.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.caps.held.lock().unwrap_or_else(|e| e.into_inner());
        held.0 = held.0.saturating_sub(1);
        if let Some(count) = held.1.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                held.1.remove(&self.address);
            }
        }
    }
}

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
    fn caps_hold_per_address_and_in_total_and_free_on_drop() {
        let caps = AddressCaps::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = caps.take(a).unwrap();
        let _second = caps.take(a).unwrap();
        assert_eq!(caps.take(a).err(), Some(Full::Address));
        let _third = caps.take(b).unwrap();
        assert_eq!(caps.take(b).err(), Some(Full::Total));
        drop(first);
        assert!(caps.take(b).is_ok(), "a dropped slot is free again");
    }

    #[test]
    fn a_flood_logs_once_per_interval_with_its_count() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.hit(), Some(1));
        for _ in 0..1000 {
            assert_eq!(log.hit(), None);
        }
    }
}
