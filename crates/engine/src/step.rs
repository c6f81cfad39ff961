//! The interface between the engine and the actions it runs: the `Action` trait, the
//! registry, and the context an action runs in. The actions themselves live in
//! `crate::actions`. Actions never decide about safety: the engine previews, confirms and
//! applies dry-run; the HTTP client they are handed refuses mutations in a dry run.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::policy::{Decision, Question};
use crate::exchange::Rejection;
use crate::operator::{Level, Operator};
pub use crate::playbook::spec::{self, ActionSpec, ArgType, InputSpec, Kind, OutputSpec};
use crate::playbook::Role;
use crate::report::journal::{
    Answered, Event, Journal, JournalError, NoteLevel, Record, Severity, StepStatus,
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Exchange(#[from] crate::exchange::ExchangeError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

impl ActionError {
    /// The exchange's error code, when the exchange gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ActionError::Exchange(e) => e.code(),
            _ => None,
        }
    }

    /// The exchange could not be reached, or refused the credentials: exit code 3 when
    /// nothing was done yet.
    pub fn is_exchange_unusable(&self) -> bool {
        match self {
            ActionError::Exchange(e) => matches!(
                e.kind(),
                crate::exchange::ErrorKind::Unreachable
                    | crate::exchange::ErrorKind::CredentialsRejected
                    | crate::exchange::ErrorKind::NoCredentials
                    | crate::exchange::ErrorKind::IpBanned
            ),
            _ => false,
        }
    }
}

/// A resolved `with:` value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    Int(i64),
    Duration(Duration),
}

/// The step's resolved arguments, with the action's defaults filled in.
#[derive(Clone, Debug, Default)]
pub struct Args(pub BTreeMap<String, ArgValue>);

impl Args {
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(ArgValue::Text(t)) => Some(t),
            _ => None,
        }
    }
    pub fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(ArgValue::List(l)) => l.clone(),
            Some(ArgValue::Text(t)) => t
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.0.get(name) {
            Some(ArgValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name) {
            Some(ArgValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.0.get(name) {
            Some(ArgValue::Duration(d)) => Some(*d),
            _ => None,
        }
    }
    /// A `since` argument resolved against the run's start.
    pub fn since(
        &self,
        name: &str,
        start: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ActionError> {
        match self.text(name) {
            None => Ok(None),
            Some(t) => crate::playbook::parse_since(t, start)
                .map(Some)
                .map_err(|e| ActionError::Invalid(format!("input `{name}`: {e}"))),
        }
    }
}

/// Everything shared by the steps of one run.
pub struct RunShared {
    pub dry_run: bool,
    pub drill: bool,
    /// A drill with --yes: manual steps are confirmed and carried out by the simulator.
    /// Who decides each question (`--yes`, the terminal, the drill autopilot).
    pub policy: super::policy::Policy,
    pub journal: Journal,
    pub operator: Arc<dyn Operator>,
    pub incident_dir: PathBuf,
    pub started_at: DateTime<Utc>,
    /// The leaked key, masked.
    pub key_masked: Option<String>,
    /// Who answers prompts (for the journal).
    pub who: String,
    pub services: super::Services,
    /// What earlier steps produced, for actions that build on them.
    pub state: std::sync::Mutex<RunState>,
    /// Work that goes on beside later steps (watching for reappearing orders); stopped
    /// when the run ends.
    pub background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set when the run ends: background work finishes what it is doing and stops.
    pub ending: tokio::sync::watch::Sender<bool>,
    /// `--since-incident`: the earlier incident this run is diffed against.
    pub previous: Option<super::previous::PreviousIncident>,
    /// Keeps the journal in playbook order while steps run at once.
    pub sequence: Arc<super::sequence::Sequencer>,
}

impl RunShared {
    /// Journal `event` (held back while steps before its own still run: `None`; its
    /// evidence and findings reach the run's state when it is written).
    pub fn record(&self, event: Event) -> Result<Option<Record>, JournalError> {
        self.sequence.record(&self.journal, event)
    }

    /// `step` has journaled its last event: write out the steps after it that were
    /// waiting for it.
    pub fn step_done(&self, step: &str) -> Result<(), JournalError> {
        self.sequence
            .finish(&self.journal, step, &|record| self.absorb(record))
    }

    /// Write out whatever a phase cut short still holds.
    pub fn end_phase(&self) -> Result<(), JournalError> {
        self.sequence
            .end(&self.journal, &|record| self.absorb(record))
    }

    /// What later steps see of a journaled record: its evidence rows (kept, not copied)
    /// and its findings.
    fn absorb(&self, record: Record) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match record.event {
            Event::Evidence { table, rows, .. } => state.evidence.extend(&table, &rows),
            Event::Finding {
                severity,
                title,
                detail,
                ..
            } => state.findings.push(FindingRecord {
                severity,
                title,
                detail,
            }),
            _ => {}
        }
    }
}

pub use crate::report::state::{FindingRecord, RunState, ScannedBatch};

/// What a step's action gets to work with.
#[derive(Clone)]
pub struct StepContext {
    pub step: String,
    pub title: String,
    pub args: Args,
    pub role: Role,
    pub run: Arc<RunShared>,
}

impl StepContext {
    /// Tell the operator and record it in the journal.
    pub fn note(&self, level: Level, message: impl Into<String>) -> Result<(), ActionError> {
        let message = message.into();
        self.run.operator.say(level, &message);
        let level = match level {
            Level::Warn => NoteLevel::Warn,
            Level::Alert => NoteLevel::Alert,
            _ => NoteLevel::Info,
        };
        self.run.record(Event::Note {
            step: Some(self.step.clone()),
            level,
            message,
        })?;
        Ok(())
    }

    pub fn finding(
        &self,
        severity: Severity,
        title: impl Into<String>,
        detail: Json,
    ) -> Result<(), ActionError> {
        let title = title.into();
        let level = if severity.is_alert() {
            Level::Alert
        } else {
            Level::Warn
        };
        self.run
            .operator
            .say(level, &format!("finding ({severity}): {title}"));
        if let Some(record) = self.run.record(Event::Finding {
            step: self.step.clone(),
            severity,
            title,
            detail,
        })? {
            self.run.absorb(record);
        }
        Ok(())
    }

    /// Record evidence rows (one table per kind: trades, withdrawals, ...).
    pub fn evidence(&self, table: &str, rows: Vec<Json>) -> Result<(), ActionError> {
        // The run's state keeps the rows as text (a week of trades is megabytes of JSON
        // values). Held back while an earlier step of its phase runs: the rows reach the state
        // when they are written.
        if let Some(record) = self.run.record(Event::Evidence {
            step: self.step.clone(),
            table: table.into(),
            rows,
        })? {
            self.run.absorb(record);
        }
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.run.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read what the journal says so far without copying it. `f` must not record
    /// anything (the state is locked while it runs).
    pub fn with_state<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        f(&self.state())
    }

    /// Resolves when the run is ending; background work should stop at that point.
    pub fn run_ending(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.run.ending.subscribe();
        async move {
            let _ = rx.wait_for(|ending| *ending).await;
        }
    }

    /// Keep `work` running beside the next steps; it is stopped when the run ends.
    pub fn spawn_background(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(work);
        self.run
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// An output of the latest step that used `action`.
    pub fn earlier_output(&self, action: &str, name: &str) -> Option<Json> {
        self.state()
            .outputs_by_action
            .get(action)
            .and_then(|o| o.get(name))
            .cloned()
    }

    /// Evidence rows recorded so far in `table`.
    pub fn earlier_evidence(&self, table: &str) -> Vec<Json> {
        self.state().evidence.rows(table)
    }

    pub fn findings(&self) -> Vec<FindingRecord> {
        self.state().findings.clone()
    }

    /// What this step's scan read in full in earlier sessions of the incident (resume).
    pub fn scanned_before(&self) -> Vec<ScannedBatch> {
        self.state()
            .scanned
            .get(&self.step)
            .cloned()
            .unwrap_or_default()
    }

    /// Journal a batch of symbols read in full, before the scan moves on.
    pub fn scanned(&self, batch: ScannedBatch) -> Result<(), ActionError> {
        self.run.record(Event::ScanBatch {
            step: self.step.clone(),
            market: batch.market,
            symbols: batch.symbols,
            trades: batch.trades,
            first: batch.first,
        })?;
        Ok(())
    }

    /// The client acting as `role`, reporting its requests under this step.
    pub fn client(&self, role: Role) -> Result<crate::exchange::Client, ActionError> {
        let services = &self.run.services;
        let client = match role {
            Role::Leaked => services.leaked.as_ref(),
            Role::Responder => services.responder.as_ref(),
        };
        client.map(|c| c.tagged(&self.step)).ok_or_else(|| {
            let (vars, flag) = match role {
                Role::Leaked => ("BINANCE_API_KEY/BINANCE_API_SECRET", "--key-file"),
                Role::Responder => ("BINANCE_RESPONDER_API_KEY/BINANCE_RESPONDER_API_SECRET", "--responder-key-file"),
            };
            ActionError::Invalid(format!("this step acts as the {role} key, and no {role} key was given (set {vars}, or use {flag})"))
        })
    }

    /// Which key [`StepContext::reader`] reads with.
    pub fn reads_as(&self) -> Role {
        let services = &self.run.services;
        if self.role == Role::Leaked
            && services
                .leaked_dead
                .load(std::sync::atomic::Ordering::SeqCst)
            && services.responder.is_some()
        {
            Role::Responder
        } else {
            self.role
        }
    }

    /// The client for reads: the step's key, except that once the leaked key is dead a
    /// responder key (when there is one) reads instead.
    pub fn reader(&self) -> Result<crate::exchange::Client, ActionError> {
        self.client(self.reads_as())
    }

    /// A read was refused (`rejection`). A -2015 (or -2014, -2008) from one evidence endpoint
    /// says that endpoint refuses the key — a permission it lacks, an IP — not that the
    /// key is gone: it is a gap in that source. Only a liveness probe decides: when the
    /// probe finds the key rejected too (deleted mid-run), remember it, so later steps
    /// read with the responder key, and say so once.
    pub async fn leaked_key_rejected(&self, rejection: Rejection) -> Result<(), ActionError> {
        if self.role != Role::Leaked || !rejection.about_the_key() {
            return Ok(());
        }
        let services = &self.run.services;
        if services
            .leaked_dead
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let Ok(leaked) = self.client(Role::Leaked) else {
            return Ok(());
        };
        let answers = super::liveness::probe_round(&leaked).await;
        let verdict =
            crate::report::verdict::verdict_of(&answers, &super::liveness::seen_at_triage(self));
        if !matches!(
            verdict,
            crate::report::verdict::Verdict::Dead | crate::report::verdict::Verdict::Rejected
        ) {
            return Ok(());
        }
        if services
            .leaked_dead
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let next = if services.responder.is_some() {
            "Reads from here on use the responder key."
        } else {
            "There is no responder key, so evidence not read yet cannot be read with it; next time give a read-only responder key (BINANCE_RESPONDER_API_KEY / BINANCE_RESPONDER_API_SECRET)."
        };
        let seen: Vec<String> = answers
            .iter()
            .map(|(path, p)| match p.code() {
                Some(c) => format!("{path} {c}"),
                None => format!("{path} {}", p.class()),
            })
            .collect();
        self.note(
            Level::Alert,
            format!(
                "Binance now rejects the leaked key (code {}; liveness probe: {}): it was deleted or restricted during the run. {next}",
                rejection.code(),
                seen.join(", ")
            ),
        )
    }

    /// Run an evidence read with [`StepContext::reader`]; when the leaked key dies during
    /// it (deleted mid-run) and a responder key exists, read once more with that key
    /// rather than fail the step.
    pub async fn with_reader<'a, F, Fut>(&'a self, read: F) -> Result<Outcome, ActionError>
    where
        F: Fn(&'a StepContext, crate::exchange::Client) -> Fut,
        Fut: std::future::Future<Output = Result<Outcome, ActionError>> + 'a,
    {
        let dead = || {
            self.run
                .services
                .leaked_dead
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        let with_leaked = self.role == Role::Leaked && !dead();
        match read(self, self.reader()?).await {
            Err(e) if with_leaked && dead() && self.run.services.responder.is_some() => {
                self.note(Level::Info, format!("the leaked key died during this step ({e}); reading again with the responder key"))?;
                read(self, self.reader()?).await
            }
            other => other,
        }
    }

    /// Ask a yes/no question that is not a step (cancel again?). Without a terminal the
    /// default — the answer that does the least harm — is taken. Journaled either way.
    pub fn ask(&self, question: &str, default_yes: bool) -> Result<bool, ActionError> {
        let operator = self.run.operator.clone();
        let (yes, by) = if self.run.policy.asks(Question::Inside { default_yes }) {
            let prompt = crate::operator::Prompt {
                kind: crate::operator::PromptKind::Question,
                step: &self.step,
                title: &self.title,
                body: "",
                question,
                default_yes,
            };
            let answer = tokio::task::block_in_place(|| operator.ask(&prompt));
            (answer == crate::operator::Answer::Yes, "operator")
        } else {
            (default_yes, "default")
        };
        self.run.record(Event::Answer {
            step: self.step.clone(),
            answer: if yes { Answered::Yes } else { Answered::No },
            reason: None,
            who: self.run.who.clone(),
            by: by.into(),
            question: Some(question.to_string()),
        })?;
        Ok(yes)
    }

    /// One item of a destructive step the engine has already confirmed as a whole (one
    /// key of several to delete): a person at a terminal is asked about it, default no;
    /// otherwise the step's confirmation (`--yes`, the drill's autopilot) covers it.
    pub fn confirm_item(&self, question: &str) -> Result<bool, ActionError> {
        match self.run.policy.decide(Question::Item) {
            Decision::Ask => self.ask(question, false),
            _ => Ok(true),
        }
    }
}

impl StepContext {
    /// The reads this step's warm-up started at the beginning of the run, if it had one:
    /// awaited here (usually long done), taken once.
    pub async fn take_warm<T: 'static>(&self) -> Option<(T, std::time::Instant)> {
        let handle = self
            .run
            .services
            .warm
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.step)?;
        let warm = handle.await.ok()?;
        warm.downcast::<(T, std::time::Instant)>().ok().map(|b| *b)
    }

    /// Let the operator tick items of a list, starting from `ticked`: in a terminal, and
    /// not on the drill's autopilot; otherwise the defaults stand. Returns the ticks and
    /// whether a person gave them.
    pub fn pick(
        &self,
        question: &str,
        body: &str,
        items: &[String],
        ticked: &[bool],
    ) -> (Vec<bool>, bool) {
        let operator = self.run.operator.clone();
        if self.run.policy.asks(Question::Pick) && !items.is_empty() {
            let prompt = crate::operator::Prompt {
                kind: crate::operator::PromptKind::Question,
                step: &self.step,
                title: &self.title,
                body,
                question,
                default_yes: false,
            };
            let picked = tokio::task::block_in_place(|| operator.pick(&prompt, items, ticked));
            if let Some(picked) = picked.filter(|p| p.len() == items.len()) {
                return (picked, true);
            }
        }
        (ticked.to_vec(), false)
    }
}

/// What a destructive action would do, shown before the operator decides.
#[derive(Clone, Debug, Default)]
pub struct Preview {
    /// One line: "12 open orders on 5 symbols in 3 markets".
    pub summary: String,
    /// What the terminal shows (a table), already rendered.
    pub body: String,
    /// The same, for the journal.
    pub items: Json,
    /// Nothing to do: the engine records that and does not ask.
    pub nothing_to_do: bool,
    /// Evidence the preview read that nothing before the answer needs (the listing's
    /// rows, which on a big account take milliseconds to build): the engine records it
    /// once the answer is journaled — after a yes, when the step has run, so that
    /// building it never takes a core from a cancel.
    pub later: Option<LaterEvidence>,
}

/// An evidence table recorded after the step's answer (see [`Preview::later`]).
#[derive(Clone)]
pub struct LaterEvidence {
    pub table: String,
    pub rows: Arc<dyn Fn() -> Vec<Json> + Send + Sync>,
}

impl LaterEvidence {
    pub fn new(table: &str, rows: impl Fn() -> Vec<Json> + Send + Sync + 'static) -> Self {
        LaterEvidence {
            table: table.to_string(),
            rows: Arc::new(rows),
        }
    }

    /// Record it as the step's evidence now. A journal that cannot be written is marked
    /// broken, and the engine stops at its next record.
    pub fn record(&self, ctx: &StepContext) {
        let _ = ctx.evidence(&self.table, (self.rows)());
    }
}

impl std::fmt::Debug for LaterEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaterEvidence")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// How an action ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: StepStatus,
    pub summary: String,
    pub outputs: BTreeMap<String, Json>,
}

impl Outcome {
    pub fn ok(summary: impl Into<String>) -> Self {
        Outcome {
            status: StepStatus::Ok,
            summary: summary.into(),
            outputs: BTreeMap::new(),
        }
    }
    pub fn with(mut self, name: &str, value: impl Into<Json>) -> Self {
        self.outputs.insert(name.to_string(), value.into());
        self
    }
}

/// What a check of a person's "done" found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attestation {
    /// This step makes no claim the exchange can check.
    NotChecked,
    /// The exchange agrees; the evidence in words.
    Confirmed(String),
    /// The exchange says otherwise; the evidence in words.
    Contradicted(String),
    /// The check itself could not tell (timeouts, rate limits).
    Inconclusive(String),
}

pub trait Action: Send + Sync {
    fn spec(&self) -> &'static ActionSpec;

    /// For manual steps: check what the person attested, where the exchange can tell.
    fn attest<'a>(
        &'a self,
        _ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Attestation, ActionError>> {
        Box::pin(async { Ok(Attestation::NotChecked) })
    }

    /// For destructive actions: read what would be done. Must not mutate anything.
    fn preview<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async { Ok(Preview::default()) })
    }

    /// Do the step. For destructive actions the engine calls this only after a yes.
    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>>;

    /// Reads this step will need that depend on nothing earlier in the run, started the
    /// moment the run starts (beside the clock check and triage) so that containment
    /// waits on as few round trips as possible. `client` is read-only: it refuses every
    /// request that is not a GET. The step takes the result with
    /// [`StepContext::take_warm`]; a step that is skipped never looks at it.
    fn warm_up(
        &self,
        _client: &crate::exchange::Client,
        _step: &crate::playbook::Step,
    ) -> Option<BoxFuture<'static, Warm>> {
        None
    }

    /// Actions whose evidence or outputs this one reads when they ran before it
    /// ([`StepContext::earlier_evidence`], [`StepContext::earlier_output`]): the engine
    /// never runs it at the same time as an earlier step of one of them.
    fn builds_on(&self) -> &'static [&'static str] {
        &[]
    }
}

/// What a warm-up read, handed to its step as is.
pub type Warm = Box<dyn std::any::Any + Send>;

/// The actions a playbook may use.
#[derive(Clone)]
pub struct Registry {
    actions: Vec<Arc<dyn Action>>,
}

impl crate::playbook::Catalog for Registry {
    fn spec(&self, name: &str) -> Option<&'static ActionSpec> {
        Registry::spec(self, name)
    }

    fn names(&self) -> Vec<&'static str> {
        Registry::names(self)
    }
}

impl Registry {
    /// A registry of `actions` (the binary's built-in set is `actions::builtin()`).
    pub fn new(actions: Vec<Arc<dyn Action>>) -> Registry {
        Registry { actions }
    }

    /// Add (or replace) an action; tests use this for actions of their own.
    pub fn with(mut self, action: Arc<dyn Action>) -> Registry {
        self.actions.retain(|a| a.spec().name != action.spec().name);
        self.actions.push(action);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.actions.iter().find(|a| a.spec().name == name)
    }

    pub fn spec(&self, name: &str) -> Option<&'static ActionSpec> {
        self.get(name).map(|a| a.spec())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.actions.iter().map(|a| a.spec().name).collect()
    }

    pub fn specs(&self) -> Vec<&'static ActionSpec> {
        let mut specs: Vec<_> = self.actions.iter().map(|a| a.spec()).collect();
        specs.sort_by_key(|s| s.name);
        specs
    }
}
