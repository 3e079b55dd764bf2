//! Loopback ports for processes a local network starts later.
//!
//! A port that the kernel hands out for `127.0.0.1:0` is in its ephemeral range, so between
//! choosing it and the process that listens on it starting, any outgoing connection on the
//! machine may take it as its local port. These ports are chosen outside that range instead, and
//! each is reserved by a lock on a file in the temporary directory, so that two networks started
//! together (tests run in parallel) never choose the same one. A lock ends with the process that
//! holds it, however it ends.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher as _, RandomState};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::ops::Range;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// Fewest ports outside the ephemeral range worth choosing from; with fewer, the kernel's are used.
const MIN_RANGE: u16 = 1000;

/// A port no other reservation holds and nothing listened on when it was chosen; the
/// reservation lasts until this is dropped or the process ends.
#[derive(Debug)]
pub struct ReservedPort {
    port: u16,
    _lock: Option<File>,
}

impl ReservedPort {
    /// The port number.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Reserves `count` distinct free ports on 127.0.0.1, none of them in `skip`.
pub fn reserve(count: usize, skip: &[u16]) -> anyhow::Result<Vec<ReservedPort>> {
    let Some(range) = outside_ephemeral() else {
        return kernel_ports(count, skip);
    };
    let span = u32::from(range.end - range.start);
    let start = RandomState::new().hash_one(std::process::id()) as u32 % span;
    let dir = lock_dir()?;
    let mut chosen = Vec::with_capacity(count);
    for offset in 0..span {
        if chosen.len() == count {
            break;
        }
        let port = range.start + ((start + offset) % span) as u16;
        if skip.contains(&port) {
            continue;
        }
        if let Some(reserved) = try_reserve(&dir, port)? {
            chosen.push(reserved);
        }
    }
    if chosen.len() < count {
        bail!("cannot find {count} free ports on 127.0.0.1 in {range:?}");
    }
    Ok(chosen)
}

/// Reserves `port` again (one recorded by an earlier run), if no other reservation holds it; a
/// port that something else holds is still returned, unreserved, since the caller must use it.
pub fn reserve_recorded(port: u16) -> anyhow::Result<ReservedPort> {
    let lock = match outside_ephemeral() {
        Some(range) if range.contains(&port) => lock_file(&lock_dir()?, port)?,
        _ => None,
    };
    Ok(ReservedPort { port, _lock: lock })
}

fn try_reserve(dir: &std::path::Path, port: u16) -> anyhow::Result<Option<ReservedPort>> {
    let Some(lock) = lock_file(dir, port)? else {
        return Ok(None);
    };
    if TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_err() {
        return Ok(None);
    }
    Ok(Some(ReservedPort {
        port,
        _lock: Some(lock),
    }))
}

/// The lock file of `port`, locked by this process, or `None` when another holds it.
fn lock_file(dir: &std::path::Path, port: u16) -> anyhow::Result<Option<File>> {
    let path = dir.join(port.to_string());
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

fn lock_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("sigil-ports");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// The larger of the ranges below and above the kernel's ephemeral ports (Linux), if it is big
/// enough.
fn outside_ephemeral() -> Option<Range<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut bounds = text.split_whitespace().map(|b| b.parse::<u16>().ok());
    let (low, high) = (bounds.next()??, bounds.next()??);
    let below = 10_000.min(low)..low;
    let above = high.saturating_add(1)..u16::MAX;
    let range = if below.len() >= above.len() {
        below
    } else {
        above
    };
    (range.len() >= usize::from(MIN_RANGE)).then_some(range)
}

/// Ports from the kernel, where its ephemeral range cannot be avoided.
fn kernel_ports(count: usize, skip: &[u16]) -> anyhow::Result<Vec<ReservedPort>> {
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    while chosen.len() < count {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .context("cannot find a free port on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        if !skip.contains(&port) {
            chosen.push(ReservedPort { port, _lock: None });
        }
        held.push(listener);
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_share_a_port_and_end_when_dropped() {
        let first = reserve(8, &[]).expect("ports");
        let ports: Vec<u16> = first.iter().map(ReservedPort::port).collect();
        let second = reserve(8, &[]).expect("ports");
        assert!(second.iter().all(|p| !ports.contains(&p.port())));
        if let Some(range) = outside_ephemeral() {
            assert!(ports.iter().all(|p| range.contains(p)), "{ports:?}");
            let dir = lock_dir().expect("dir");
            assert!(lock_file(&dir, ports[0]).expect("lock").is_none());
            drop(first);
            assert!(lock_file(&dir, ports[0]).expect("lock").is_some());
        }
    }

    #[test]
    fn a_port_in_use_is_not_chosen() {
        let taken = reserve(1, &[]).expect("port");
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, taken[0].port()))
            .expect("listens");
        drop(taken);
        let port = listener.local_addr().expect("bound").port();
        let dir = lock_dir().expect("dir");
        if outside_ephemeral().is_some() {
            assert!(try_reserve(&dir, port).expect("checked").is_none());
        }
    }
}
