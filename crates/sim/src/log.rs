//! The request log: one entry per answered request, in memory and optionally as JSON
//! lines in a file, flushed as each answer is sent. Never holds a secret or a signature.
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::SimError;

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// Any request from outside (respond, a test, a third-party client).
    Client,
    /// The scenario's attacker placing orders with the leaked key.
    Attacker,
    /// Calls to the `/sim/` control API.
    Control,
}

/// One line of the request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the answer was sent (RFC 3339 UTC, milliseconds). For a request the
    /// `timeout-rate` fault swallows, when it was swallowed.
    pub time: String,
    pub actor: Actor,
    pub method: String,
    pub path: String,
    /// The query string and form body as received, without the signature.
    pub query: String,
    /// HTTP status; 0 for a request that was never answered (`timeout-rate`).
    pub status: u16,
    /// Binance error code of the answer, if it was an error.
    pub code: Option<i64>,
    /// Request weight charged.
    pub weight: u32,
}

/// Entries kept in memory; the oldest go first past this (the file keeps everything), so
/// a long benchmark against `sim serve` does not grow without bound.
pub const MEMORY_CAP: usize = 500_000;

/// The in-memory log plus the optional file.
#[derive(Debug)]
pub struct RequestLog {
    entries: Mutex<VecDeque<LogEntry>>,
    file: Option<Mutex<File>>,
}

impl RequestLog {
    pub fn new(path: Option<&Path>) -> Result<RequestLog, SimError> {
        let file = match path {
            None => None,
            Some(p) => Some(Mutex::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| SimError::RequestLog {
                        path: p.display().to_string(),
                        source,
                    })?,
            )),
        };
        Ok(RequestLog {
            entries: Mutex::new(VecDeque::new()),
            file,
        })
    }

    pub fn push(&self, entry: LogEntry) {
        if let Some(file) = &self.file {
            let mut line = serde_json::to_string(&entry).expect("log entries serialise");
            line.push('\n');
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            // A full disk must not take the exchange down; the in-memory log still has it.
            let _ = f.write_all(line.as_bytes()).and_then(|()| f.flush());
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == MEMORY_CAP {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub fn snapshot(&self) -> Vec<LogEntry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
