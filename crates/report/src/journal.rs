//! The journal: append-only JSON lines, each carrying the SHA-256 of the line before it
//! (the first: of the playbook text and the run inputs), written at once and fsynced
//! before the run moves on to anything that depends on it (see
//! [`Event::is_durable_at_once`]). It is the source of truth; every report is rendered
//! from it.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const SCHEMA_VERSION: u32 = 1;

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    /// Local clock, UTC, RFC 3339 with milliseconds.
    pub time: String,
    /// The exchange's clock at the same moment (local time + the measured offset), so
    /// the record lines up with Binance's own timestamps even when this machine's clock
    /// is off. Absent before the offset is measured and in runs without an exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
    /// Server time minus local time, in milliseconds, as measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<i64>,
    #[serde(flatten)]
    pub event: Event,
    /// SHA-256 (hex) of the previous line, or of the playbook and inputs for the first.
    pub prev: String,
}

/// How a step ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done and succeeded.
    Ok,
    /// Failed (after its retries).
    Failed,
    /// Not run: `when:` was false, or the operator skipped it.
    Skipped,
    /// Dry run: the preview was recorded as what would be done.
    WouldDo,
    /// A manual step nobody attested to (no terminal, or skipped): still to do.
    Pending,
    /// The operator aborted the run at this step.
    Aborted,
    /// A confirmation was needed and no terminal was there.
    Stopped,
    /// Ctrl-C or SIGTERM while the step ran.
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "done",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::WouldDo => "would do",
            StepStatus::Pending => "pending",
            StepStatus::Aborted => "aborted",
            StepStatus::Stopped => "stopped",
            StepStatus::Interrupted => "interrupted",
        }
    }
}

/// How a run (or the last session of an incident) ended; in the journal and reports as
/// the lowercase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Completed,
    Aborted,
    Stopped,
    Failed,
    Interrupted,
    /// The journal ends without a `run_finished` (a crash): reports only, never journaled.
    Unfinished,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Completed => "completed",
            RunOutcome::Aborted => "aborted",
            RunOutcome::Stopped => "stopped",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Unfinished => "unfinished",
        }
    }

    /// Interrupted or unfinished: `respond resume` continues it.
    pub fn resumable(self) -> bool {
        matches!(self, RunOutcome::Interrupted | RunOutcome::Unfinished)
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How loud a note is; in the journal as the lowercase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteLevel {
    Info,
    /// Something went wrong or is left to do; shown in the report's timeline.
    Warn,
    /// Something the operator must not miss (orders reappearing, a live key).
    Alert,
}

/// What a question was answered, in the journal as these words: `yes`, `no`, `skip`,
/// `abort`, `done` (a manual step), `pending` (a manual step left for later), `would_do`,
/// `again`, `stopped` (nobody to confirm a destructive step), and `moved to LIST` (an item the operator moved between the support
/// message's lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    Yes,
    No,
    Skip,
    Abort,
    Done,
    Pending,
    WouldDo,
    Again,
    /// A destructive step with nobody to confirm it (no terminal, no `--yes`).
    Stopped,
    MovedTo(String),
}

impl Answered {
    pub fn as_str(&self) -> &str {
        match self {
            Answered::Yes => "yes",
            Answered::No => "no",
            Answered::Skip => "skip",
            Answered::Abort => "abort",
            Answered::Done => "done",
            Answered::Pending => "pending",
            Answered::WouldDo => "would_do",
            Answered::Again => "again",
            Answered::Stopped => "stopped",
            Answered::MovedTo(_) => "moved to",
        }
    }

    fn parse(word: &str) -> Option<Answered> {
        Some(match word {
            "yes" => Answered::Yes,
            "no" => Answered::No,
            "skip" => Answered::Skip,
            "abort" => Answered::Abort,
            "done" => Answered::Done,
            "pending" => Answered::Pending,
            "would_do" => Answered::WouldDo,
            "again" => Answered::Again,
            "stopped" => Answered::Stopped,
            other => Answered::MovedTo(other.strip_prefix("moved to ")?.to_string()),
        })
    }
}

impl std::fmt::Display for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answered::MovedTo(list) => write!(f, "moved to {list}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl Serialize for Answered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Answered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        Answered::parse(&word).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown answer `{word}` in an answer record"))
        })
    }
}

/// How bad a finding is, worst last; in the journal and reports as the lowercase word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// No finding at all (a report's overall severity before the first).
    None,
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// High or critical: the operator must not miss it.
    pub fn is_alert(self) -> bool {
        self >= Severity::High
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened. The schema is public once `--json` exposes it: add fields, never
/// rename.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        playbook: String,
        origin: String,
        playbook_sha256: String,
        inputs: BTreeMap<String, String>,
        dry_run: bool,
        drill: bool,
        yes: bool,
        target: String,
        /// The leaked key, masked.
        key: Option<String>,
        responder_key: Option<String>,
        operator: String,
        respond_version: String,
        /// The operator key that will sign the fingerprint (`ed25519:<hex>`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_key: Option<String>,
        /// Where the requests went, for `resume` (`target` is the words for people).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_spec: Option<RecordedTarget>,
        /// The leaked key as a keyed hash (`hmac-sha256:<salt>:<digest>`), so a resume can
        /// check it is given the same key without the key being stored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_fingerprint: Option<String>,
    },
    RunResumed {
        operator: String,
        dry_run: bool,
        yes: bool,
        respond_version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signing_key: Option<String>,
        /// Where this session's requests go, in words and as data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_spec: Option<RecordedTarget>,
        /// `--new-base-url`: the base URL the incident used until this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved_from: Option<String>,
    },
    StepStarted {
        step: String,
        action: String,
        title: String,
        kind: String,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    Preview {
        step: String,
        summary: String,
        #[serde(default)]
        items: Json,
    },
    Answer {
        step: String,
        answer: Answered,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        who: String,
        /// operator, --yes, autopilot, no-terminal, default
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        question: Option<String>,
    },
    Request {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        method: String,
        path: String,
        query: String,
        #[serde(default)]
        status: Option<u16>,
        #[serde(default)]
        code: Option<i64>,
        #[serde(default)]
        weight: Option<u32>,
        elapsed_ms: u64,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// When the request was sent, for requests answered before the journal existed
        /// (the clock check and the warm-up reads beside it), recorded only afterwards.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_at: Option<String>,
    },
    Note {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        level: NoteLevel,
        message: String,
    },
    Finding {
        step: String,
        severity: Severity,
        title: String,
        #[serde(default)]
        detail: Json,
    },
    Evidence {
        step: String,
        table: String,
        rows: Vec<Json>,
    },
    StepError {
        step: String,
        attempt: u32,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i64>,
    },
    StepFinished {
        step: String,
        status: StepStatus,
        summary: String,
        #[serde(default)]
        outputs: BTreeMap<String, Json>,
        elapsed_ms: u64,
    },
    /// A check of what a person attested (e.g. "the key is deleted").
    Attestation {
        step: String,
        /// confirmed, contradicted, inconclusive
        verdict: String,
        evidence: String,
    },
    /// One round of liveness probes of the leaked key, with each answer's class, so
    /// `report verify` can re-derive the verdict.
    Probe {
        step: String,
        round: u32,
        answers: Vec<ProbeAnswer>,
        verdict: String,
    },
    /// A batch of symbols a long scan has read in full (the trades it found in them as
    /// rows), so a resumed scan skips them instead of reading them again.
    ScanBatch {
        step: String,
        market: String,
        symbols: Vec<String>,
        #[serde(default)]
        trades: Vec<Json>,
        /// The account's first trade ever in those of the symbols with trades, where the
        /// read showed it (so a resumed scan need not look it up).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        first: BTreeMap<String, Json>,
    },
    Interrupted {
        signal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    RunFinished {
        outcome: RunOutcome,
        exit_code: u8,
        #[serde(default)]
        pending: Vec<String>,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::RunResumed { .. } => "run_resumed",
            Event::StepStarted { .. } => "step_started",
            Event::StepSkipped { .. } => "step_skipped",
            Event::Preview { .. } => "preview",
            Event::Answer { .. } => "answer",
            Event::Request { .. } => "request",
            Event::Note { .. } => "note",
            Event::Finding { .. } => "finding",
            Event::Evidence { .. } => "evidence",
            Event::StepError { .. } => "step_error",
            Event::StepFinished { .. } => "step_finished",
            Event::Attestation { .. } => "attestation",
            Event::Probe { .. } => "probe",
            Event::ScanBatch { .. } => "scan_batch",
            Event::Interrupted { .. } => "interrupted",
            Event::RunFinished { .. } => "run_finished",
        }
    }

    /// Whether the record must be on disk before anything else happens: what `resume`
    /// decides on — the run's start and end, the operator's answers, every request that
    /// changes the account, verification results, errors and every step's end. What a
    /// step reads and says along the way (its start, reads, notes, findings, evidence,
    /// the preview) is written at once, so a crash of the process loses none of it, and
    /// reaches the disk with the next such record: a power cut can only lose it together
    /// with the step's end, and `resume` runs an unfinished step again (reads are safe to
    /// repeat). On the way to the cancel that is three fsyncs instead of sixteen, which
    /// matters on a busy disk where one takes milliseconds; and a step's evidence is
    /// flushed by the step itself, not by whichever read answers next. A request's answer
    /// is fsynced beside the thread that read it, not by it ([`Journal::record_or_mark`]).
    pub fn is_durable_at_once(&self) -> bool {
        match self {
            Event::Request { method, .. } => method != "GET",
            Event::StepStarted { .. }
            | Event::Preview { .. }
            | Event::Note { .. }
            | Event::Finding { .. }
            | Event::Evidence { .. } => false,
            _ => true,
        }
    }
}

/// Where an incident's requests go, as its journal records it: `resume` continues there
/// and nowhere else.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordedTarget {
    Production,
    Testnet,
    BaseUrl {
        url: String,
    },
    /// One server that behaves like Binance's testnets (`--testnet --base-url`).
    TestnetAt {
        url: String,
    },
    /// A simulator started in-process; `scenario` is an absolute path (none: built-in).
    Drill {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<String>,
    },
}

/// One probe's answer: which endpoint, Binance's code, and what it means
/// (accepted, not_found, refused, inconclusive).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub path: String,
    #[serde(default)]
    pub code: Option<i64>,
    pub class: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The chain's anchor: the hash of the playbook text and the run's inputs.
pub fn genesis_hash(playbook_text: &str, inputs: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(playbook_text.as_bytes());
    h.update(b"\n");
    h.update(
        serde_json::to_string(inputs)
            .expect("a string map serialises")
            .as_bytes(),
    );
    hex::encode(h.finalize())
}

/// Called with every record written, for `--json` output and live display.
pub type Listener = Box<dyn Fn(&Record) + Send + Sync>;

/// The measured offset of the exchange's clock (server minus local, ms), if known.
pub type ServerClock = Box<dyn Fn() -> Option<i64> + Send + Sync>;

struct Writer {
    file: File,
    path: PathBuf,
    seq: u64,
    last_hash: String,
    /// The file's length after this writer's last line: if the file has another length
    /// before an append, its last line is not the chain head held here (someone else
    /// wrote to it, or cut it), and appending would break the chain.
    len: u64,
    /// A write failed: the run must stop, because what happens next would not be recorded.
    broken: Option<String>,
    listeners: Vec<Listener>,
    clock: Option<ServerClock>,
}

impl Writer {
    /// Defence in depth behind the incident lock: never append after a write failed, nor
    /// after a line this writer did not write.
    fn check_writable(&mut self) -> Result<(), JournalError> {
        if let Some(message) = &self.broken {
            return Err(JournalError {
                path: self.path.clone(),
                message: message.clone(),
            });
        }
        match self.file.metadata().map(|m| m.len()) {
            Ok(len) if len == self.len => Ok(()),
            other => {
                let now = match other {
                    Ok(len) => format!("{len} bytes"),
                    Err(e) => format!("unreadable ({e})"),
                };
                Err(self.mark_broken(format!(
                    "the file changed under this run (it is {now}, not the {} bytes this run left), so its last line is no longer the chain head this run holds: another process wrote to it. Nothing more is appended, so the record is not broken",
                    self.len
                )))
            }
        }
    }

    /// The run must stop: what happens next would not be recorded.
    fn mark_broken(&mut self, message: String) -> JournalError {
        self.broken = Some(message.clone());
        JournalError {
            path: self.path.clone(),
            message,
        }
    }

    /// The events as records chained after the last line, and their lines: (the bytes to
    /// append, the records, the hash of the last of them).
    fn chain(&self, events: Vec<Event>) -> (Vec<u8>, Vec<Record>, String) {
        let now = Utc::now();
        let offset_ms = self.clock.as_ref().and_then(|clock| clock());
        let time = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let server_time = offset_ms.map(|o| {
            (now + chrono::Duration::milliseconds(o)).to_rfc3339_opts(SecondsFormat::Millis, true)
        });
        let mut last_hash = self.last_hash.clone();
        let mut bytes = Vec::new();
        let mut records = Vec::with_capacity(events.len());
        for (seq, event) in (self.seq + 1..).zip(events) {
            let record = Record {
                v: SCHEMA_VERSION,
                seq,
                time: time.clone(),
                server_time: server_time.clone(),
                offset_ms,
                event,
                prev: last_hash,
            };
            let start = bytes.len();
            serde_json::to_writer(&mut bytes, &record).expect("journal records serialise");
            last_hash = sha256_hex(&bytes[start..]);
            bytes.push(b'\n');
            records.push(record);
        }
        (bytes, records, last_hash)
    }
}

/// A shared handle to the journal file. Cheap to clone; appends are serialised.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Writer>>,
    /// Group commit: appends made while another thread's fsync is running share the
    /// next one, instead of queueing one fsync each behind the writer's lock.
    sync: Arc<Syncer>,
}

/// The fsync side of the journal: a second handle on the file, and how many of its
/// bytes are known to be on disk.
struct Syncer {
    file: Option<File>,
    durable: Mutex<u64>,
    /// An fsync for the request observer is on its way and has not started yet.
    scheduled: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the journal {path}: {message}; stopping, because what happens next would not be recorded")]
pub struct JournalError {
    pub path: PathBuf,
    pub message: String,
}

impl Journal {
    /// Create a new journal (the file must not exist), anchored at `genesis`.
    pub fn create(path: &Path, genesis: String) -> Result<Journal, JournalError> {
        let file = crate::files::create_private(path).map_err(|e| JournalError {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Journal::from_parts(file, path, 0, genesis, 0))
    }

    /// Continue an existing journal whose last record is `last` (line text `last_line`).
    pub fn append_to(path: &Path, last_seq: u64, last_line: &str) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| JournalError {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let len = file
            .metadata()
            .map_err(|e| JournalError {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .len();
        Ok(Journal::from_parts(
            file,
            path,
            last_seq,
            sha256_hex(last_line.as_bytes()),
            len,
        ))
    }

    fn from_parts(file: File, path: &Path, seq: u64, last_hash: String, len: u64) -> Journal {
        // Without a second handle every append syncs through the writer's own.
        let sync_file = file.try_clone().ok();
        Journal {
            sync: Arc::new(Syncer {
                file: sync_file,
                durable: Mutex::new(len),
                scheduled: AtomicBool::new(false),
            }),
            inner: Arc::new(Mutex::new(Writer {
                file,
                path: path.to_path_buf(),
                seq,
                last_hash,
                len,
                broken: None,
                listeners: Vec::new(),
                clock: None,
            })),
        }
    }

    pub fn add_listener(&self, listener: Listener) {
        self.lock().listeners.push(listener);
    }

    /// Stamp every record from now on with the exchange's time as well.
    pub fn set_server_clock(&self, clock: ServerClock) {
        self.lock().clock = Some(clock);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves a consistent file (lines are written
        // whole), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append one event, written before returning and fsynced as
    /// [`Event::is_durable_at_once`] says.
    pub fn record(&self, event: Event) -> Result<Record, JournalError> {
        let mut records = self.record_all(vec![event])?;
        Ok(records.pop().expect("one event, one record"))
    }

    /// Append events in order, chained, with one write and one fsync for them all (the
    /// requests answered before the journal existed arrive together). Events that need
    /// not be durable at once (see [`Event::is_durable_at_once`]) are written without an
    /// fsync: the next durable record's covers them.
    pub fn record_all(&self, events: Vec<Event>) -> Result<Vec<Record>, JournalError> {
        let durable = events.iter().any(Event::is_durable_at_once);
        let (records, written) = self.append(events, durable)?;
        // On disk before this returns; lines appended meanwhile by other threads
        // (concurrent answers) are made durable by the same fsync.
        if durable {
            self.sync_to(written)?;
        }
        Ok(records)
    }

    /// Write `events` (one write, chained) and return them with the file's length after
    /// them; `durable`: whether the caller will make them durable.
    fn append(
        &self,
        events: Vec<Event>,
        durable: bool,
    ) -> Result<(Vec<Record>, u64), JournalError> {
        let mut w = self.lock();
        w.check_writable()?;
        let (bytes, records, last_hash) = w.chain(events);
        let result = if self.sync.file.is_some() || !durable {
            w.file.write_all(&bytes)
        } else {
            w.file.write_all(&bytes).and_then(|_| w.file.sync_data())
        };
        if let Err(e) = result {
            return Err(w.mark_broken(e.to_string()));
        }
        w.seq += records.len() as u64;
        w.len += bytes.len() as u64;
        w.last_hash = last_hash;
        // Listeners see records in the order they were chained.
        for record in &records {
            for listener in &w.listeners {
                listener(record);
            }
        }
        Ok((records, w.len))
    }

    /// Make the file durable at least up to byte `end`: one fsync covers every line
    /// written before it started.
    fn sync_to(&self, end: u64) -> Result<(), JournalError> {
        let Some(file) = &self.sync.file else {
            return Ok(());
        };
        let mut durable = self.sync.durable.lock().unwrap_or_else(|p| p.into_inner());
        if *durable >= end {
            return Ok(());
        }
        let covered = self.lock().len;
        if let Err(e) = file.sync_data() {
            let message = e.to_string();
            let mut w = self.lock();
            w.broken = Some(message.clone());
            return Err(JournalError {
                path: w.path.clone(),
                message,
            });
        }
        *durable = covered;
        Ok(())
    }

    /// Record from a place that cannot return an error and must not wait for the disk:
    /// a request observer, on a runtime thread that other answers (the rest of a burst
    /// of cancels) queue behind. The line is written at once, so a crash of the process
    /// loses none of it; a record that must be durable at once is fsynced on the
    /// blocking pool straight after, one fsync for every line written meanwhile, and any
    /// later durable record waits for it. Outside a runtime the fsync happens here. A
    /// failure marks the journal broken, and the engine stops at its next record.
    pub fn record_or_mark(&self, event: Event) {
        let durable = event.is_durable_at_once();
        let Ok((_, written)) = self.append(vec![event], durable) else {
            return;
        };
        if !durable {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.sync.file.is_some() => {
                // One fsync on its way covers this line, unless it already started.
                if self.sync.scheduled.swap(true, Ordering::AcqRel) {
                    return;
                }
                let journal = self.clone();
                runtime.spawn_blocking(move || {
                    // Lines written from here on schedule the next fsync.
                    journal.sync.scheduled.store(false, Ordering::Release);
                    let end = journal.lock().len;
                    let _ = journal.sync_to(end);
                });
            }
            _ => {
                let _ = self.sync_to(written);
            }
        }
    }

    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// The hash of the last line written: the incident's fingerprint so far.
    pub fn head(&self) -> String {
        self.lock().last_hash.clone()
    }
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One line read back from a journal file.
#[derive(Debug)]
pub struct ReadLine {
    pub number: usize,
    pub text: String,
    pub record: Result<Record, String>,
}

/// The journal read back: complete lines, and whether the last line was torn (a crash
/// mid-write leaves a line without its newline).
#[derive(Debug)]
pub struct ReadJournal {
    pub lines: Vec<ReadLine>,
    pub torn_tail: Option<String>,
}

impl ReadJournal {
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.lines.iter().filter_map(|l| l.record.as_ref().ok())
    }
}

/// The journal read for rendering: one line at a time, each parsed as it is read, and
/// only the last complete line's text kept (the chain head). Never holds the file, its
/// text and the parsed records at once, as [`read`] does for `verify`.
pub fn read_records(path: &Path) -> std::io::Result<ReadJournal> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, File::open(path)?);
    let mut lines = Vec::new();
    let mut torn_tail = None;
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        number += 1;
        let complete = buf.last() == Some(&b'\n');
        if complete {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf);
        if !complete {
            torn_tail = Some(text.into_owned());
            break;
        }
        let record = serde_json::from_str(&text).map_err(|e| e.to_string());
        if let Some(previous) = lines.last_mut() {
            let previous: &mut ReadLine = previous;
            previous.text = String::new();
        }
        lines.push(ReadLine {
            number,
            text: text.into_owned(),
            record,
        });
    }
    Ok(ReadJournal { lines, torn_tail })
}

/// The hash of the journal's last complete line (its chain head), read one line at a
/// time; `None` for an empty journal.
pub fn chain_head(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, File::open(path)?);
    let (mut line, mut last) = (Vec::new(), None::<Vec<u8>>);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line.pop() != Some(b'\n') {
            break;
        }
        let previous = last.replace(std::mem::take(&mut line));
        line = previous.unwrap_or_default();
    }
    Ok(last.map(|l| sha256_hex(String::from_utf8_lossy(&l).as_bytes())))
}

/// Rows of an evidence record handed over at once when a journal line is read in parts.
pub const ROWS_AT_ONCE: usize = 256;

/// One journal line parsed for a rendering: `each` is given its record, or for an
/// evidence record, the record in parts of at most [`ROWS_AT_ONCE`] rows (the flag says
/// a part is not the first), so a week of trades on one line is never held as values at
/// once. `None`: the line is not a record.
pub fn parse_in_parts(text: &str, mut each: impl FnMut(&Record, bool)) -> Option<()> {
    #[derive(Deserialize)]
    struct Name<'a> {
        #[serde(borrow)]
        event: std::borrow::Cow<'a, str>,
    }
    let evidence = serde_json::from_str::<Name>(text).is_ok_and(|n| n.event == "evidence");
    if evidence && evidence_in_parts(text, &mut each).is_some() {
        return Some(());
    }
    let record = serde_json::from_str::<Record>(text).ok()?;
    each(&record, false);
    Some(())
}

/// An evidence line with its rows left as text, parsed [`ROWS_AT_ONCE`] at a time.
fn evidence_in_parts(text: &str, each: &mut impl FnMut(&Record, bool)) -> Option<()> {
    use serde_json::value::RawValue;
    #[derive(Deserialize)]
    struct Line<'a> {
        v: u32,
        seq: u64,
        time: String,
        #[serde(default)]
        server_time: Option<String>,
        #[serde(default)]
        offset_ms: Option<i64>,
        step: String,
        table: String,
        #[serde(borrow)]
        rows: Vec<&'a RawValue>,
        prev: String,
    }
    let line: Line = serde_json::from_str(text).ok()?;
    let mut record = Record {
        v: line.v,
        seq: line.seq,
        time: line.time,
        server_time: line.server_time,
        offset_ms: line.offset_ms,
        event: Event::Evidence {
            step: line.step,
            table: line.table,
            rows: Vec::new(),
        },
        prev: line.prev,
    };
    let mut parts = line.rows.chunks(ROWS_AT_ONCE).peekable();
    if parts.peek().is_none() {
        each(&record, false);
    }
    for (i, part) in parts.enumerate() {
        let parsed: Result<Vec<Json>, _> = part
            .iter()
            .map(|raw| serde_json::from_str(raw.get()))
            .collect();
        let Ok(parsed) = parsed else {
            // Rows already handed over stay handed over; none: read the line whole.
            return (i > 0).then_some(());
        };
        if let Event::Evidence { rows, .. } = &mut record.event {
            *rows = parsed;
        }
        each(&record, i > 0);
    }
    Some(())
}

pub fn read(path: &Path) -> std::io::Result<ReadJournal> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = Vec::new();
    let mut torn_tail = None;
    let mut rest: &str = &text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        match rest.find('\n') {
            Some(end) => {
                let line = &rest[..end];
                lines.push(ReadLine {
                    number,
                    text: line.to_string(),
                    record: serde_json::from_str(line).map_err(|e| e.to_string()),
                });
                rest = &rest[end + 1..];
            }
            None => {
                torn_tail = Some(rest.to_string());
                rest = "";
            }
        }
    }
    Ok(ReadJournal { lines, torn_tail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_note_levels_are_written_as_the_words_they_always_were() {
        for word in [
            "yes",
            "no",
            "skip",
            "abort",
            "done",
            "pending",
            "would_do",
            "again",
            "stopped",
            "moved to disowned",
        ] {
            let json = serde_json::to_string(word).unwrap();
            let answer: Answered = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&answer).unwrap(), json, "{word}");
        }
        assert_eq!(
            serde_json::from_str::<Answered>("\"moved to to review\"").unwrap(),
            Answered::MovedTo("to review".into())
        );
        let unknown = serde_json::from_str::<Answered>("\"maybe\"").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown answer `maybe`"),
            "{unknown}"
        );
        for (level, word) in [
            (NoteLevel::Info, "\"info\""),
            (NoteLevel::Warn, "\"warn\""),
            (NoteLevel::Alert, "\"alert\""),
        ] {
            assert_eq!(serde_json::to_string(&level).unwrap(), word);
            assert_eq!(serde_json::from_str::<NoteLevel>(word).unwrap(), level);
        }
    }

    #[test]
    fn chain_links_each_line_to_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let inputs = BTreeMap::from([("since".to_string(), "72h".to_string())]);
        let genesis = genesis_hash("version: 1", &inputs);
        let journal = Journal::create(&path, genesis.clone()).unwrap();
        journal
            .record(Event::Note {
                step: None,
                level: crate::journal::NoteLevel::Info,
                message: "one".into(),
            })
            .unwrap();
        journal
            .record(Event::Note {
                step: Some("a".into()),
                level: crate::journal::NoteLevel::Warn,
                message: "two".into(),
            })
            .unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.lines.len(), 2);
        assert!(read.torn_tail.is_none());
        let first = read.lines[0].record.as_ref().unwrap();
        assert_eq!(first.prev, genesis);
        assert_eq!(first.seq, 1);
        let second = read.lines[1].record.as_ref().unwrap();
        assert_eq!(second.prev, sha256_hex(read.lines[0].text.as_bytes()));
        assert_eq!(journal.head(), sha256_hex(read.lines[1].text.as_bytes()));
        // The serialised form starts with the envelope and ends with the hash.
        assert!(
            read.lines[0].text.starts_with(r#"{"v":1,"seq":1,"time":""#),
            "{}",
            read.lines[0].text
        );
        assert!(read.lines[0].text.contains(r#""event":"note""#));
        assert!(read.lines[0]
            .text
            .ends_with(&format!(r#""prev":"{genesis}"}}"#)));
    }

    #[test]
    fn a_writer_refuses_to_append_after_a_line_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let first = Journal::create(&path, "genesis".into()).unwrap();
        let note = |m: &str| Event::Note {
            step: None,
            level: crate::journal::NoteLevel::Info,
            message: m.into(),
        };
        first.record(note("one")).unwrap();
        // A second writer that ignored the incident lock appends its own line.
        let text = std::fs::read_to_string(&path).unwrap();
        let second = Journal::append_to(&path, 1, text.trim_end()).unwrap();
        second.record(note("two")).unwrap();
        let err = first.record(note("three")).unwrap_err();
        assert!(err.message.contains("another process wrote to it"), "{err}");
        assert!(first.record(note("four")).is_err(), "stays stopped");
        let read = read(&path).unwrap();
        assert_eq!(
            read.lines.len(),
            2,
            "nothing appended after the stranger's line"
        );
        assert!(read.lines.iter().all(|l| l.record.is_ok()));
    }

    #[test]
    fn the_lean_read_parses_every_line_and_keeps_only_the_last_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        for i in 0..3 {
            journal
                .record(Event::Note {
                    step: None,
                    level: crate::journal::NoteLevel::Info,
                    message: format!("note {i}"),
                })
                .unwrap();
        }
        let full = read(&path).unwrap();
        let lean = read_records(&path).unwrap();
        assert_eq!(lean.lines.len(), 3);
        assert_eq!(
            lean.records().collect::<Vec<_>>(),
            full.records().collect::<Vec<_>>()
        );
        assert!(lean.lines[..2].iter().all(|l| l.text.is_empty()));
        assert_eq!(lean.lines[2].text, full.lines[2].text);
        std::fs::write(&path, "{\"v\":1}\n{\"v\":1,\"se").unwrap();
        let torn = read_records(&path).unwrap();
        assert_eq!(torn.lines.len(), 1);
        assert_eq!(torn.torn_tail.as_deref(), Some("{\"v\":1,\"se"));
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let journal = journal.clone();
                std::thread::spawn(move || {
                    for i in 0..40 {
                        let event = if i % 2 == 0 {
                            Event::Note {
                                step: Some(format!("t{t}")),
                                level: crate::journal::NoteLevel::Info,
                                message: format!("note {i}"),
                            }
                        } else {
                            Event::StepFinished {
                                step: format!("t{t}-{i}"),
                                status: StepStatus::Ok,
                                summary: String::new(),
                                outputs: BTreeMap::new(),
                                elapsed_ms: 0,
                            }
                        };
                        journal.record(event).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let read = read(&path).unwrap();
        assert_eq!(read.lines.len(), 320);
        let mut prev = "genesis".to_string();
        for (n, line) in read.lines.iter().enumerate() {
            let record = line.record.as_ref().unwrap();
            assert_eq!(record.seq, n as u64 + 1);
            assert_eq!(record.prev, prev, "line {}", n + 1);
            prev = sha256_hex(line.text.as_bytes());
        }
        // Every durable record returned after an fsync that covered it.
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(*journal.sync.durable.lock().unwrap(), len);
    }

    #[test]
    fn notes_are_written_at_once_and_made_durable_by_the_next_step_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        let note = Event::Note {
            step: Some("a".into()),
            level: crate::journal::NoteLevel::Info,
            message: "said along the way".into(),
        };
        assert!(!note.is_durable_at_once());
        journal.record(note).unwrap();
        // Readable at once (a crash of the process loses nothing)...
        assert_eq!(read(&path).unwrap().lines.len(), 1);
        assert_eq!(*journal.sync.durable.lock().unwrap(), 0);
        // ...and on disk with the step's end.
        journal
            .record(Event::StepFinished {
                step: "a".into(),
                status: StepStatus::Ok,
                summary: String::new(),
                outputs: BTreeMap::new(),
                elapsed_ms: 0,
            })
            .unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(*journal.sync.durable.lock().unwrap(), len);
    }

    fn cancel_answer(i: usize) -> Event {
        Event::Request {
            step: Some("cancel-orders".into()),
            method: "DELETE".into(),
            path: "/api/v3/openOrders".into(),
            query: format!("symbol=S{i}USDT"),
            status: Some(200),
            code: None,
            weight: Some(1),
            elapsed_ms: 50,
            attempt: 1,
            error: None,
            sent_at: None,
        }
    }

    /// The request observer's answers of a burst of cancels: written at once, fsynced on
    /// the blocking pool (not on the runtime thread that read them), in few fsyncs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn observed_answers_are_written_at_once_and_fsynced_off_the_runtime_threads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let journal = Journal::create(&path, "genesis".into()).unwrap();
        assert!(cancel_answer(0).is_durable_at_once());
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    for i in 0..40 {
                        journal.record_or_mark(cancel_answer(t * 40 + i));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // Every line is in the file as soon as it is recorded, chained in order...
        let read = read(&path).unwrap();
        assert_eq!(read.lines.len(), 320);
        assert!(read.lines.iter().all(|l| l.record.is_ok()));
        // ...and the fsyncs on their way cover them all.
        let len = std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while *journal.sync.durable.lock().unwrap() < len {
            assert!(std::time::Instant::now() < deadline, "never made durable");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!journal.sync.scheduled.load(Ordering::Acquire));
    }

    #[test]
    fn an_evidence_line_is_read_in_parts_and_other_lines_whole() {
        let rows: Vec<Json> = (0..ROWS_AT_ONCE * 2 + 7)
            .map(|i| serde_json::json!({ "n": i, "nested": { "a": [i] } }))
            .collect();
        let record = Record {
            v: SCHEMA_VERSION,
            seq: 7,
            time: "2026-11-29T00:00:00.000Z".into(),
            server_time: None,
            offset_ms: Some(-12),
            event: Event::Evidence {
                step: "trades".into(),
                table: "trades".into(),
                rows: rows.clone(),
            },
            prev: "ab".into(),
        };
        let text = serde_json::to_string(&record).unwrap();
        let mut parts = Vec::new();
        let mut seen = Vec::new();
        parse_in_parts(&text, |part, continued| {
            parts.push((continued, part.seq, part.offset_ms));
            if let Event::Evidence { rows, .. } = &part.event {
                seen.extend(rows.iter().cloned());
            }
        })
        .unwrap();
        assert_eq!(
            parts,
            [
                (false, 7, Some(-12)),
                (true, 7, Some(-12)),
                (true, 7, Some(-12))
            ]
        );
        assert_eq!(seen, rows);
        // No rows: one part. Another event: the record whole. Not a record: none.
        let empty = Record {
            event: Event::Evidence {
                step: "s".into(),
                table: "pay".into(),
                rows: vec![],
            },
            ..record.clone()
        };
        let note = Record {
            event: Event::Note {
                step: None,
                level: crate::journal::NoteLevel::Info,
                message: "evidence".into(),
            },
            ..record
        };
        for r in [empty, note] {
            let mut got = Vec::new();
            parse_in_parts(&serde_json::to_string(&r).unwrap(), |part, _| {
                got.push(part.clone())
            })
            .unwrap();
            assert_eq!(got, [r]);
        }
        assert!(parse_in_parts("{\"event\":\"evidence\",\"rows\":[]}", |_, _| {}).is_none());
    }

    #[test]
    fn a_torn_last_line_is_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, "{\"v\":1}\n{\"v\":1,\"se").unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.lines.len(), 1);
        assert_eq!(read.torn_tail.as_deref(), Some("{\"v\":1,\"se"));
    }
}
