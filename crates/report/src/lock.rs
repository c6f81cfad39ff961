//! One writer per incident. Every process that writes to an incident folder (a run, a
//! resume) holds an exclusive OS lock on `respond.lock` inside it for its whole life, and
//! says who it is in `lock.json` beside it. The lock is advisory (`flock`), so a holder
//! that crashes or is killed releases it by dying; `lock.json` is only the words for the
//! next person, never what decides.
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file the OS lock is taken on.
pub const LOCK_FILE: &str = "respond.lock";
/// Who holds it: PID, host, operator, since when, doing what.
pub const HOLDER_FILE: &str = "lock.json";

/// The process that holds an incident.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub operator: String,
    /// RFC 3339, UTC.
    pub since: String,
    /// What it is doing: `compromised`, `resume`, ...
    pub command: String,
}

impl Holder {
    /// This process.
    pub fn me(operator: &str, command: &str) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        Holder {
            pid: std::process::id(),
            host,
            operator: operator.to_string(),
            since: crate::journal::now_rfc3339(),
            command: command.to_string(),
        }
    }

    /// `PID 4242 on host trade-01 (operator alice@trade-01, respond resume since
    /// 2026-11-29T03:15:02Z)`.
    pub fn describe(&self) -> String {
        format!(
            "PID {} on host {} (operator {}, `respond {}` since {})",
            self.pid, self.host, self.operator, self.command, self.since
        )
    }
}

/// The held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct IncidentLock {
    _file: File,
    holder_path: PathBuf,
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the incident; `None` when it has not said who (yet).
    Held(Option<Holder>),
    Io(std::io::Error),
}

impl IncidentLock {
    /// Take the incident's lock without waiting, and say who holds it.
    pub fn acquire(dir: &Path, me: &Holder) -> Result<IncidentLock, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(LOCK_FILE))
            .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(read_holder(dir))),
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        let holder_path = dir.join(HOLDER_FILE);
        let text = serde_json::to_string_pretty(me).expect("a holder serialises");
        crate::files::write_atomic(&holder_path, format!("{text}\n").as_bytes())
            .map_err(LockError::Io)?;
        Ok(IncidentLock {
            _file: file,
            holder_path,
        })
    }
}

impl Drop for IncidentLock {
    fn drop(&mut self) {
        // The words go first, then the lock with the file handle.
        let _ = std::fs::remove_file(&self.holder_path);
    }
}

/// Who holds the incident in `dir` right now, if anyone: `Some(holder)` while a process
/// holds its lock (the holder `None` if it has not said who), `None` when nobody does.
/// Never creates anything in the folder.
pub fn held_by(dir: &Path) -> Option<Option<Holder>> {
    let file = OpenOptions::new()
        .read(true)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_holder(dir)),
        Err(TryLockError::Error(_)) => None,
    }
}

fn read_holder(dir: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(dir.join(HOLDER_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(held_by(dir.path()), None, "nobody yet, and nothing created");
        assert!(!dir.path().join(LOCK_FILE).exists());
        let me = Holder::me("alice@desk", "compromised");
        let lock = IncidentLock::acquire(dir.path(), &me).unwrap();
        // flock locks belong to the open file description: a second open in this same
        // process is refused exactly as another process would be.
        match IncidentLock::acquire(dir.path(), &Holder::me("bob@desk", "resume")) {
            Err(LockError::Held(Some(holder))) => assert_eq!(holder, me),
            other => panic!("{other:?}"),
        }
        assert_eq!(held_by(dir.path()), Some(Some(me.clone())));
        assert!(me
            .describe()
            .contains(&format!("PID {}", std::process::id())));
        drop(lock);
        assert_eq!(held_by(dir.path()), None, "released with the holder");
        assert!(!dir.path().join(HOLDER_FILE).exists());
        let again = IncidentLock::acquire(dir.path(), &me);
        assert!(again.is_ok(), "free again");
    }
}
