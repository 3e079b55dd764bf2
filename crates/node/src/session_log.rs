//! The signing sessions this node has started, on disk. A session id runs at most once, even
//! across restarts: a node that ran one session twice would sign two different first-round
//! broadcasts for it, which is what proves equivocation (PROTOCOL.md §8.3), so a relayer
//! replaying a forwarded request to a restarted node could get it slashed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use sigil_primitives::SessionId;

/// Session id → when this node started it (Unix ms).
const STARTED: TableDefinition<&[u8; 32], u64> = TableDefinition::new("started");

/// How long a started session is remembered: far beyond the age at which a forwarded request
/// is refused anyway (twice the envelope age, §7.3).
const KEEP_MS: u64 = 60 * 60 * 1000;

/// Sessions between sweeps of the forgotten ones.
const SWEEP_EVERY: u64 = 256;

/// The on-disk record of started sessions.
pub(crate) struct SessionLog {
    db: Database,
    starts: AtomicU64,
}

impl SessionLog {
    /// Opens (or creates) the log in `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("sessions.redb");
        let db = Database::create(&path)
            .with_context(|| format!("cannot open the session log {}", path.display()))?;
        let setup = db.begin_write()?;
        setup.open_table(STARTED)?;
        setup.commit()?;
        Ok(Self {
            db,
            starts: AtomicU64::new(0),
        })
    }

    /// Records `session` as started at `now_ms`, durably, before any message of it is sent;
    /// `false` if this node started it before.
    pub(crate) fn start(&self, session: &SessionId, now_ms: u64) -> anyhow::Result<bool> {
        let id = session.as_bytes();
        if self
            .db
            .begin_read()?
            .open_table(STARTED)?
            .get(id)?
            .is_some()
        {
            return Ok(false);
        }
        let write = self.db.begin_write()?;
        {
            let mut table = write.open_table(STARTED)?;
            if table.get(id)?.is_some() {
                return Ok(false);
            }
            table.insert(id, now_ms)?;
            if self.starts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                let cutoff = now_ms.saturating_sub(KEEP_MS);
                table.retain(|_, started| started >= cutoff)?;
            }
        }
        write.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_starts_once_even_after_a_restart_and_old_ones_are_swept() {
        let dir = std::env::temp_dir().join(format!("sigil-session-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let session = SessionId::new([7; 32]);
        {
            let log = SessionLog::open(&dir).unwrap();
            assert!(log.start(&session, 1_000).unwrap());
            assert!(!log.start(&session, 1_001).unwrap());
        }
        let log = SessionLog::open(&dir).unwrap();
        assert!(
            !log.start(&session, 2_000).unwrap(),
            "remembered across a reopen"
        );
        // A sweep long after forgets it.
        let later = 1_000 + KEEP_MS + 1;
        for n in 0..SWEEP_EVERY {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_be_bytes());
            log.start(&SessionId::new(id), later).unwrap();
        }
        assert!(log.start(&session, later).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
