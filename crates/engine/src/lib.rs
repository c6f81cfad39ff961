//! The engine walks a playbook's steps in order and owns every safety decision:
//! preview → confirm before destructive steps, a person for manual steps, dry-run,
//! the no-terminal rules, retry / timeout / on_failure, and Ctrl-C. Every event is
//! journaled (fsynced) before the next action. It never touches the terminal directly:
//! the [`Operator`] does.
pub mod config;
pub mod interrupt;
pub mod liveness;
pub mod operator;
pub mod overlap;
pub mod policy;
pub mod previous;
pub mod sequence;
pub mod step;

// The crates the engine builds on, under the names the binary knows them by.
use respond_binance as exchange;
use respond_playbook as playbook;
use respond_report as report;

/// The exit codes of a run, as the command line documents them (README, `respond --help`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const EXCHANGE: u8 = 3;
    pub const ABORTED: u8 = 4;
    pub const PENDING: u8 = 5;
    pub const NEW_ACTIVITY: u8 = 6;
    pub const SIGINT: u8 = 130;
    pub const SIGTERM: u8 = 143;
}

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value as Json;

use self::policy::Question;
use self::step::{
    Action, ActionError, ActionSpec, Args, Kind, LaterEvidence, Outcome, RunShared, StepContext,
};
use crate::operator::{Answer, Level, Prompt, PromptKind};
use crate::playbook::expr::{Reference, Val};
use crate::playbook::{ArgValue, OnFailure, Playbook, Step};
use crate::report::journal::{Answered, Event, JournalError, StepStatus};
pub use interrupt::{Interrupt, Signal};

/// What the run's actions can reach: exchange clients and, in a drill, the simulator.
#[derive(Default)]
pub struct Services {
    /// The leaked key's client (dry-run clients refuse every mutating request).
    pub leaked: Option<crate::exchange::Client>,
    /// A separate read-only key, for evidence after the leaked key is deleted.
    pub responder: Option<crate::exchange::Client>,
    /// The simulator, in a drill: carries out what a person would do.
    pub drill: Option<Arc<dyn DrillControl>>,
    /// Set once Binance refuses the leaked key: deleted, or refused from this machine
    /// (-2015 for a whitelisted key, which may still work from the attacker's). Reads
    /// then go to the responder key; it is never, on its own, a proof of deletion.
    pub leaked_dead: std::sync::atomic::AtomicBool,
    /// Reads started at the very beginning of the run for the step with this id (see
    /// [`step::Action::warm_up`]), waiting to be taken by it.
    pub warm:
        std::sync::Mutex<std::collections::HashMap<String, tokio::task::JoinHandle<step::Warm>>>,
    /// Whatever the session keeps only while the run contains (see
    /// [`Services::end_containment`]): dropped once the walk is past the playbook's first
    /// destructive step, or when the run ends.
    pub held_for_containment: std::sync::Mutex<Option<Box<dyn Send>>>,
}

impl Services {
    /// Whether what the session keeps for containment is still held.
    pub fn holding_for_containment(&self) -> bool {
        self.held_for_containment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Containment is over (or there is none): let go of what was held for it.
    fn end_containment(&self) {
        let held = self
            .held_for_containment
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(held);
    }
}

/// What a drill's simulator does for manual steps.
pub trait DrillControl: Send + Sync {
    /// Carry out `effect` (e.g. `delete-leaked-key`); returns what was done, in words.
    fn carry_out<'a>(&'a self, effect: &'a str) -> step::BoxFuture<'a, Result<String, String>>;

    /// The simulator's state now (open orders per market, keys deleted; no secrets),
    /// recorded when the drill ends to score it.
    fn final_state(&self) -> Json;
}

/// Carry out a manual step's drill effect in the simulator.
pub async fn drill_effect(ctx: &StepContext, effect: &str) -> Result<String, ActionError> {
    match &ctx.run.services.drill {
        Some(drill) => drill.carry_out(effect).await.map_err(ActionError::Failed),
        None => Err(ActionError::Failed(format!(
            "drill effect `{effect}` needs the simulator, and this run has none"
        ))),
    }
}

/// How the walk ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every step was visited.
    Completed,
    /// The operator chose abort at this step.
    Aborted { step: String },
    /// A confirmation was needed at this step and no terminal was there.
    Stopped { step: String },
    /// This step failed and its `on_failure` is abort.
    Failed { step: String },
    Interrupted {
        signal: Signal,
        step: Option<String>,
    },
}

/// The result of a run, for the exit code and the closing summary.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub end: End,
    pub exit_code: u8,
    pub statuses: Vec<(String, StepStatus)>,
    pub pending: Vec<String>,
}

/// What an earlier session of the same incident did with a step (resume).
#[derive(Clone, Debug, Default)]
pub struct Resumed {
    pub started: bool,
    /// How it finished, if it did. `None`: started and not finished, or to be redone.
    pub status: Option<StepStatus>,
    pub outputs: BTreeMap<String, Json>,
    /// The operator said yes/done (or --yes/autopilot did).
    pub confirmed: bool,
    /// Mutating requests sent for this step, and how many the exchange acknowledged.
    pub mutations_sent: usize,
    pub mutations_acknowledged: usize,
}

impl Resumed {
    /// Finished for good: not run again.
    fn is_final(&self) -> bool {
        matches!(
            self.status,
            Some(StepStatus::Ok | StepStatus::Skipped | StepStatus::WouldDo | StepStatus::Failed)
        )
    }
}

pub struct Engine<'a> {
    playbook: &'a Playbook,
    registry: &'a step::Registry,
    shared: Arc<RunShared>,
    inputs: BTreeMap<String, String>,
    who: String,
    interrupt: Interrupt,
    outputs: HashMap<String, BTreeMap<String, Json>>,
    confirmed: HashSet<String>,
    statuses: Vec<(String, StepStatus)>,
    earlier: HashMap<String, Resumed>,
    /// A destructive step has changed something on the exchange.
    changed: bool,
    /// The confirmed destructive step's deferred evidence ([`Preview::later`]).
    later_evidence: Option<LaterEvidence>,
    /// The failure that stopped the run was the exchange being unusable.
    exchange_unusable: bool,
    /// `--since-incident` found activity after the earlier incident.
    new_activity: bool,
    /// Nothing is left to contain: the clients no longer keep urgent headroom.
    headroom_released: bool,
}

/// How a step of a phase went.
enum Visit {
    /// Finished for good in an earlier session.
    Earlier(StepStatus),
    /// Its `when:` was false.
    Skipped,
    Ran(StepEnd),
}

enum Decision {
    Proceed,
    Finish(StepStatus, String),
    Stop(StepEnd),
}

impl<'a> Engine<'a> {
    pub fn new(
        playbook: &'a Playbook,
        registry: &'a step::Registry,
        shared: Arc<RunShared>,
        inputs: BTreeMap<String, String>,
        who: String,
        interrupt: Interrupt,
    ) -> Self {
        Engine {
            playbook,
            registry,
            shared,
            inputs,
            who,
            interrupt,
            outputs: HashMap::new(),
            confirmed: HashSet::new(),
            statuses: Vec::new(),
            earlier: HashMap::new(),
            changed: false,
            later_evidence: None,
            exchange_unusable: false,
            new_activity: false,
            headroom_released: false,
        }
    }

    /// What earlier sessions did: finished steps are not run again, confirmed manual
    /// steps are not asked again.
    pub fn with_earlier(mut self, earlier: HashMap<String, Resumed>) -> Self {
        for (id, e) in &earlier {
            if e.is_final() {
                self.outputs.insert(id.clone(), e.outputs.clone());
                if e.confirmed || e.status == Some(StepStatus::Ok) {
                    self.confirmed.insert(id.clone());
                }
            }
        }
        self.earlier = earlier;
        self
    }

    fn say(&self, level: Level, text: &str) {
        self.shared.operator.say(level, text);
    }

    /// Journal `event` (held while steps before its own in a phase still run).
    fn record(&self, event: Event) -> Result<(), JournalError> {
        self.shared.record(event).map(|_| ())
    }

    fn lookup(&self) -> impl Fn(&Reference) -> Val + '_ {
        move |r: &Reference| match r {
            Reference::Input(name) => self
                .inputs
                .get(name)
                .map(|v| Val::Str(v.clone()))
                .unwrap_or(Val::Null),
            Reference::KeyMasked => Val::Str(
                self.shared
                    .key_masked
                    .clone()
                    .unwrap_or_else(|| "(no key)".into()),
            ),
            Reference::StepOutput { step, name } => self
                .outputs
                .get(step)
                .and_then(|o| o.get(name))
                .map(Val::from_json)
                .unwrap_or(Val::Null),
            Reference::StepConfirmed(step) => Val::Bool(self.confirmed.contains(step)),
        }
    }

    fn resolve_args(&self, step: &Step, spec: &ActionSpec) -> Args {
        let lookup = self.lookup();
        let mut out = BTreeMap::new();
        for input in spec.inputs {
            if let Some(default) = input.default {
                let value = match input.ty {
                    step::ArgType::Bool => step::ArgValue::Bool(default == "true"),
                    step::ArgType::Int { .. } => step::ArgValue::Int(default.parse().unwrap_or(0)),
                    step::ArgType::Duration { .. } => step::ArgValue::Duration(
                        crate::playbook::parse_duration(default).unwrap_or_default(),
                    ),
                    step::ArgType::List | step::ArgType::Choices(_) => step::ArgValue::List(
                        default
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    ),
                    _ => step::ArgValue::Text(default.to_string()),
                };
                out.insert(input.name.to_string(), value);
            }
        }
        for arg in &step.args {
            let value = match &arg.value {
                ArgValue::Text(t) => step::ArgValue::Text(t.render(&lookup)),
                ArgValue::List(items) => step::ArgValue::List(
                    items
                        .iter()
                        .flat_map(|t| {
                            // A template may expand to a comma-separated list input.
                            t.render(&lookup)
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                ),
                ArgValue::Bool(b) => step::ArgValue::Bool(*b),
                ArgValue::Int(i) => step::ArgValue::Int(*i),
                ArgValue::Duration(d) => step::ArgValue::Duration(*d),
            };
            out.insert(arg.name.clone(), value);
        }
        Args(out)
    }

    /// Walk every step. Journal failures stop the run (`Err`): what happens next could not
    /// be recorded.
    pub async fn run(mut self) -> Result<RunResult, JournalError> {
        let end = self.walk().await?;
        self.shared.services.end_containment();
        self.stop_background().await;
        self.since_incident()?;
        self.close(end)
    }

    /// Visit the steps in playbook order, a phase at a time (steps that run at once: see
    /// [`overlap`]); how the walk ended.
    async fn walk(&mut self) -> Result<End, JournalError> {
        let playbook = self.playbook;
        let mut start = 0;
        while start < playbook.steps.len() {
            if let Some(signal) = self.interrupt.received() {
                return Ok(End::Interrupted { signal, step: None });
            }
            self.release_headroom_when_contained(start);
            if !self.contains_from(start) {
                self.shared.services.end_containment();
            }
            let phase = overlap::phase(playbook, self.registry, start);
            start = phase.end;
            let stop = if phase.len() > 1 {
                self.run_phase(phase).await?
            } else {
                self.visit(phase.start).await?
            };
            if let Some(end) = stop {
                return Ok(end);
            }
        }
        Ok(End::Completed)
    }

    /// Whether the run still contains when it reaches step `next`: the playbook's first
    /// destructive step (the cancel, in the built-in one) is `next` or after it.
    fn contains_from(&self, next: usize) -> bool {
        self.playbook
            .steps
            .iter()
            .position(|step| self.action(step).spec().kind == Kind::Destructive)
            .is_some_and(|first| first >= next)
    }

    /// The weight kept for urgent requests (cancels, liveness probes) is needed while
    /// something may still have to be contained. Once Binance refuses the leaked key
    /// (`leaked_dead`: deleted, or a whitelisted key refused from this machine — not a
    /// proof of death, but either way nothing urgent can be sent with it from here) and
    /// no destructive or verification step is left in the playbook from step `next` on,
    /// the remaining reads may use every pool in full.
    fn release_headroom_when_contained(&mut self, next: usize) {
        if self.headroom_released
            || !self
                .shared
                .services
                .leaked_dead
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let contains = self.playbook.steps[next..].iter().any(|step| {
            matches!(
                self.action(step).spec().kind,
                Kind::Destructive | Kind::Verify
            )
        });
        if contains {
            return;
        }
        let services = &self.shared.services;
        for client in [&services.leaked, &services.responder]
            .into_iter()
            .flatten()
        {
            client.release_urgent_headroom();
        }
        self.headroom_released = true;
    }

    /// One step on its own, under every rule of the walk: the no-terminal stop, the
    /// confirmation of destructive and manual steps, dry run, attestation.
    async fn visit(&mut self, index: usize) -> Result<Option<End>, JournalError> {
        let step = &self.playbook.steps[index];
        let earlier = self.earlier.get(&step.id).cloned().unwrap_or_default();
        if let Some(status) = self.finished_earlier(index, &earlier) {
            self.statuses.push((step.id.clone(), status));
            return Ok(None);
        }
        if self.skipped_by_condition(index)? {
            self.statuses.push((step.id.clone(), StepStatus::Skipped));
            return Ok(None);
        }
        let action = self.action(step);
        let spec = action.spec();
        if let Some(end) = self.stop_without_terminal(step, spec)? {
            return Ok(Some(end));
        }
        let (ctx, started) = self.start(index, spec)?;
        let decision = self.decide(step, &ctx, &earlier, action.as_ref()).await?;
        let (status, summary, outputs, stop) = self
            .carry_out(step, &ctx, decision, action.as_ref())
            .await?;
        self.journal_end(step, status, summary, &outputs, started)?;
        self.remember(step, spec, status, outputs);
        Ok(stop)
    }

    /// Steps that run at once ([`overlap`]): evidence reads that depend on nothing the
    /// others do. Each is started, run and journaled by itself, its events held until
    /// the steps before it are journaled; the run takes their outputs in playbook order
    /// once all have ended.
    async fn run_phase(&mut self, phase: Range<usize>) -> Result<Option<End>, JournalError> {
        let playbook = self.playbook;
        let ids: Vec<String> = playbook.steps[phase.clone()]
            .iter()
            .map(|s| s.id.clone())
            .collect();
        self.shared.sequence.begin(&ids);
        let ended = {
            let this = &*self;
            futures_util::future::try_join_all(phase.clone().map(|i| this.overlapping(i))).await
        };
        // A journal failure cuts the phase short: write out what is held, then stop.
        let written = self.shared.end_phase();
        let ended = ended?;
        written?;
        let mut stop = None;
        for (step, visit) in playbook.steps[phase].iter().zip(ended) {
            match visit {
                Visit::Earlier(status) => self.statuses.push((step.id.clone(), status)),
                Visit::Skipped => self.statuses.push((step.id.clone(), StepStatus::Skipped)),
                Visit::Ran((status, _, outputs, end)) => {
                    let spec = self.action(step).spec();
                    self.remember(step, spec, status, outputs);
                    stop = stop.or(end);
                }
            }
        }
        Ok(stop)
    }

    /// One step of a phase: run and journaled like any evidence step, and the steps
    /// after it told it is done, however it ended.
    async fn overlapping(&self, index: usize) -> Result<Visit, JournalError> {
        let visit = self.read_evidence(index).await;
        let done = self.shared.step_done(&self.playbook.steps[index].id);
        let visit = visit?;
        done?;
        Ok(visit)
    }

    /// An evidence step of a phase: nothing to confirm, and a failure never stops the run
    /// (steps whose failure would are never in a phase).
    async fn read_evidence(&self, index: usize) -> Result<Visit, JournalError> {
        let step = &self.playbook.steps[index];
        let earlier = self.earlier.get(&step.id).cloned().unwrap_or_default();
        if let Some(status) = self.finished_earlier(index, &earlier) {
            return Ok(Visit::Earlier(status));
        }
        if self.skipped_by_condition(index)? {
            return Ok(Visit::Skipped);
        }
        let action = self.action(step);
        let spec = action.spec();
        let (ctx, started) = self.start(index, spec)?;
        let end = match self
            .run_with_retry(step, spec, &ctx, action.as_ref())
            .await?
        {
            Ok(outcome) => (outcome.status, outcome.summary, outcome.outputs, None),
            Err(StepStop::Interrupted(signal)) => interrupted(step, signal, ""),
            Err(StepStop::Failed(message, _)) => {
                (StepStatus::Failed, message, BTreeMap::new(), None)
            }
        };
        self.journal_end(step, end.0, end.1.clone(), &end.2, started)?;
        Ok(Visit::Ran(end))
    }

    fn action(&self, step: &Step) -> Arc<dyn Action> {
        self.registry
            .get(&step.uses)
            .expect("validated at load")
            .clone()
    }

    /// A step an earlier session of the incident finished for good is not run again:
    /// its status, said once.
    fn finished_earlier(&self, index: usize, earlier: &Resumed) -> Option<StepStatus> {
        if !earlier.is_final() {
            return None;
        }
        let step = &self.playbook.steps[index];
        let status = earlier.status.expect("final means finished");
        self.say(
            Level::Detail,
            &format!(
                "[{}/{}] {}: {} in an earlier session",
                index + 1,
                self.playbook.steps.len(),
                step.display_title(),
                status.as_str()
            ),
        );
        Some(status)
    }

    /// The step's `when:` is false: journaled as skipped.
    fn skipped_by_condition(&self, index: usize) -> Result<bool, JournalError> {
        let step = &self.playbook.steps[index];
        let (Some(cond), Some(text)) = (&step.when, &step.when_text) else {
            return Ok(false);
        };
        if cond.eval(&self.lookup()).truthy() {
            return Ok(false);
        }
        let reason = format!("condition `{}` is false", text.trim());
        self.say(
            Level::Info,
            &format!(
                "[{}/{}] {}: skipped ({reason})",
                index + 1,
                self.playbook.steps.len(),
                step.display_title()
            ),
        );
        self.record(Event::StepSkipped {
            step: step.id.clone(),
            reason,
        })?;
        Ok(true)
    }

    /// Rule: without a terminal and without --yes, stop before the first destructive
    /// step, having started nothing.
    fn stop_without_terminal(
        &mut self,
        step: &Step,
        spec: &ActionSpec,
    ) -> Result<Option<End>, JournalError> {
        if spec.kind != Kind::Destructive
            || self.shared.policy.decide(Question::Destructive) != policy::Decision::Nobody
        {
            return Ok(None);
        }
        let message = format!(
            "stopped before `{}` ({}): it is destructive and there is no terminal to confirm it. Nothing destructive was done. Run it in a terminal to be asked, or add --yes to let respond do it without asking.",
            step.id,
            step.display_title()
        );
        self.say(Level::Warn, &message);
        self.answer(
            step,
            Answered::Stopped,
            Some("no terminal to confirm and no --yes".into()),
            "no-terminal",
        )?;
        self.record(Event::StepFinished {
            step: step.id.clone(),
            status: StepStatus::Stopped,
            summary: message,
            outputs: BTreeMap::new(),
            elapsed_ms: 0,
        })?;
        self.statuses.push((step.id.clone(), StepStatus::Stopped));
        Ok(Some(End::Stopped {
            step: step.id.clone(),
        }))
    }

    /// Announce and journal the step's start; the context its action runs in.
    fn start(
        &self,
        index: usize,
        spec: &ActionSpec,
    ) -> Result<(StepContext, Instant), JournalError> {
        let step = &self.playbook.steps[index];
        let tag = match spec.kind {
            Kind::Destructive => "  [destructive]",
            Kind::Manual => "  [manual]",
            _ => "",
        };
        self.say(
            Level::Heading,
            &format!(
                "\n── [{}/{}] {} ({}){tag}",
                index + 1,
                self.playbook.steps.len(),
                step.display_title(),
                step.id
            ),
        );
        self.record(Event::StepStarted {
            step: step.id.clone(),
            action: spec.name.to_string(),
            title: step.display_title().to_string(),
            kind: kind_name(spec.kind).to_string(),
        })?;
        let ctx = StepContext {
            step: step.id.clone(),
            title: step.display_title().to_string(),
            args: self.resolve_args(step, spec),
            role: step.role,
            run: self.shared.clone(),
        };
        Ok((ctx, Instant::now()))
    }

    /// Whether the step's action may run now: destructive steps are previewed and
    /// confirmed, manual ones need a person (or an earlier session's "done").
    async fn decide(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        earlier: &Resumed,
        action: &dyn Action,
    ) -> Result<Decision, JournalError> {
        let kind = action.spec().kind;
        if earlier.started && kind == Kind::Destructive {
            let message = format!(
                "`{}` started in an earlier session and did not finish: {} change request(s) were sent, {} acknowledged. It is previewed again now; doing it again only touches what is still there.",
                step.id, earlier.mutations_sent, earlier.mutations_acknowledged
            );
            self.say(Level::Warn, &message);
            self.record(Event::Note {
                step: Some(step.id.clone()),
                level: crate::report::journal::NoteLevel::Warn,
                message,
            })?;
        }
        let decision = match kind {
            Kind::Destructive => self.confirm_destructive(step, ctx, action).await?,
            Kind::Manual if earlier.confirmed => self.confirmed_earlier(step)?,
            Kind::Manual => self.confirm_manual(step, ctx)?,
            _ => Decision::Proceed,
        };
        if matches!(decision, Decision::Proceed) && kind == Kind::Destructive {
            // Once a destructive action runs, something may have changed, however it
            // ends (a partial cancel, a failure after some cancels): exit 3 ("before
            // anything was done") is no longer true.
            self.changed = true;
        }
        Ok(decision)
    }

    /// A manual step a person confirmed done in an earlier session: not asked again.
    fn confirmed_earlier(&mut self, step: &Step) -> Result<Decision, JournalError> {
        let message = format!(
            "`{}` was confirmed done in an earlier session; not asking again",
            step.id
        );
        self.say(Level::Info, &message);
        self.record(Event::Note {
            step: Some(step.id.clone()),
            level: crate::report::journal::NoteLevel::Info,
            message,
        })?;
        self.confirmed.insert(step.id.clone());
        Ok(if self.shared.dry_run {
            Decision::Finish(
                StepStatus::Ok,
                "done (attested in an earlier session)".into(),
            )
        } else {
            Decision::Proceed
        })
    }

    /// Act on the decision: run the action (with its retries, then the check of a
    /// manual step's "done"), or end the step as decided.
    async fn carry_out(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        decision: Decision,
        action: &dyn Action,
    ) -> Result<StepEnd, JournalError> {
        let spec = action.spec();
        Ok(match decision {
            Decision::Finish(status, summary) => (status, summary, BTreeMap::new(), None),
            Decision::Stop(end) => end,
            Decision::Proceed => match self.run_and_record_later(step, spec, ctx, action).await? {
                Ok(outcome) if spec.kind == Kind::Manual => {
                    self.attested(step, ctx, action, outcome).await?
                }
                Ok(outcome) => (outcome.status, outcome.summary, outcome.outputs, None),
                Err(StepStop::Interrupted(signal)) => interrupted(step, signal, ""),
                Err(StepStop::Failed(message, unusable)) => {
                    self.failed(step, spec, message, unusable)
                }
            },
        })
    }

    /// Say how the step ended and journal it.
    fn journal_end(
        &self,
        step: &Step,
        status: StepStatus,
        summary: String,
        outputs: &BTreeMap<String, Json>,
        started: Instant,
    ) -> Result<(), JournalError> {
        let level = match status {
            StepStatus::Ok => Level::Success,
            StepStatus::WouldDo | StepStatus::Skipped => Level::Info,
            _ => Level::Warn,
        };
        self.say(
            level,
            &format!("{}: {} — {}", step.id, status.as_str(), summary),
        );
        self.record(Event::StepFinished {
            step: step.id.clone(),
            status,
            summary,
            outputs: outputs.clone(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// What later steps and the run's result take from a step that ended.
    fn remember(
        &mut self,
        step: &Step,
        spec: &ActionSpec,
        status: StepStatus,
        outputs: BTreeMap<String, Json>,
    ) {
        if let Ok(mut state) = self.shared.state.lock() {
            state
                .outputs_by_action
                .insert(spec.name.to_string(), outputs.clone());
        }
        if status == StepStatus::Ok && spec.kind != Kind::Manual && spec.kind != Kind::Destructive {
            // Steps without a prompt count as confirmed when they succeed.
            self.confirmed.insert(step.id.clone());
        }
        self.outputs.insert(step.id.clone(), outputs);
        self.statuses.push((step.id.clone(), status));
    }

    /// `--since-incident`: findings for what happened after the earlier incident.
    fn since_incident(&mut self) -> Result<(), JournalError> {
        let Some(previous) = &self.shared.previous else {
            return Ok(());
        };
        let state = self
            .shared
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let found = previous.new_activity(&state);
        let since = previous.dir.display().to_string();
        if found.is_empty() {
            self.say(
                Level::Success,
                &format!("nothing new since the previous incident ({since})"),
            );
        }
        for (what, rows) in found {
            let title = format!("New activity after the previous incident ({since}): {what} — another key, or the account itself, is still compromised");
            self.say(Level::Alert, &title);
            self.record(Event::Finding {
                step: "since-incident".into(),
                severity: crate::report::journal::Severity::Critical,
                title,
                detail: rows,
            })?;
            self.new_activity = true;
        }
        Ok(())
    }

    /// The run's last records: the drill's final state, the interruption, how it ended.
    fn close(&self, end: End) -> Result<RunResult, JournalError> {
        if let Some(drill) = &self.shared.services.drill {
            self.record(Event::Evidence {
                step: "drill".into(),
                table: "drill-final-state".into(),
                rows: vec![drill.final_state()],
            })?;
        }
        if let End::Interrupted { signal, step } = &end {
            self.record(Event::Interrupted {
                signal: signal.name().to_string(),
                step: step.clone(),
            })?;
        }
        let result = self.result(end);
        self.record(Event::RunFinished {
            outcome: outcome_of(&result.end),
            exit_code: result.exit_code,
            pending: result.pending.clone(),
        })?;
        Ok(result)
    }

    /// Stop what actions left running beside the steps (watchers), so nothing is
    /// appended to the journal after the run's last record.
    async fn stop_background(&self) {
        let _ = self.shared.ending.send(true);
        let handles: Vec<_> = std::mem::take(
            &mut *self
                .shared
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for mut handle in handles {
            // A request in flight gets to finish and be journaled; then it must stop.
            if tokio::time::timeout(std::time::Duration::from_secs(15), &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                let _ = handle.await;
            }
        }
    }

    fn result(&self, end: End) -> RunResult {
        let pending: Vec<String> = self
            .statuses
            .iter()
            .filter(|(_, s)| *s == StepStatus::Pending)
            .map(|(id, _)| id.clone())
            .collect();
        let any_failed = self.statuses.iter().any(|(_, s)| *s == StepStatus::Failed);
        let exit_code = match &end {
            End::Interrupted { signal, .. } => signal.exit_code(),
            End::Aborted { .. } | End::Stopped { .. } => exit::ABORTED,
            // Unreachable, or the credentials refused, before anything changed.
            End::Failed { .. } if self.exchange_unusable && !self.changed => exit::EXCHANGE,
            End::Failed { .. } => exit::FAILED,
            End::Completed if any_failed => exit::FAILED,
            End::Completed if self.new_activity => exit::NEW_ACTIVITY,
            End::Completed if !pending.is_empty() => exit::PENDING,
            End::Completed => exit::OK,
        };
        RunResult {
            end,
            exit_code,
            statuses: self.statuses.clone(),
            pending,
        }
    }

    /// A step failed: it stops the run unless its `on_failure` (or its action's
    /// default: continue for evidence and local steps) says to go on.
    fn failed(
        &mut self,
        step: &Step,
        spec: &ActionSpec,
        message: String,
        unusable: bool,
    ) -> StepEnd {
        let continues = match step.on_failure {
            Some(OnFailure::Continue) => true,
            Some(OnFailure::Abort) => false,
            None => spec.default_continue_on_failure(),
        };
        if !continues {
            self.exchange_unusable = unusable;
        }
        (
            StepStatus::Failed,
            message,
            BTreeMap::new(),
            (!continues).then(|| End::Failed {
                step: step.id.clone(),
            }),
        )
    }

    /// Ask the operator (blocking on the terminal without stalling other tasks).
    fn ask(&self, prompt: &Prompt) -> Answer {
        let operator = self.shared.operator.clone();
        tokio::task::block_in_place(|| operator.ask(prompt))
    }

    fn answer(
        &self,
        step: &Step,
        answer: Answered,
        reason: Option<String>,
        by: &str,
    ) -> Result<(), JournalError> {
        self.record(Event::Answer {
            step: step.id.clone(),
            answer,
            reason,
            who: self.who.clone(),
            by: by.to_string(),
            question: None,
        })
    }

    /// Preview a destructive step and have it confirmed (the operator, `--yes` or the
    /// drill's autopilot); in a dry run a yes records "would do".
    async fn confirm_destructive(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        action: &dyn Action,
    ) -> Result<Decision, JournalError> {
        let preview = match self.preview(step, ctx, action).await? {
            Ok(preview) => preview,
            Err(decision) => return Ok(decision),
        };
        let decision = self.decide_on(step, &preview);
        // Deferred evidence follows the answer: at once, unless the step then runs.
        if let Some(later) = preview.later {
            match decision {
                Ok(Decision::Proceed) => self.later_evidence = Some(later),
                _ => later.record(ctx),
            }
        }
        decision
    }

    /// Run a step, then record its deferred evidence (a destructive step's listing),
    /// whatever the run's end: building and writing those rows (a 1,200-order listing
    /// is some 10 ms of CPU) beside a burst of 260 cancels took a core from the cancels
    /// and from the exchange's answers in a drill, and held the last answer back by
    /// about 10 ms. The rows keep the listing's request times.
    async fn run_and_record_later(
        &mut self,
        step: &Step,
        spec: &ActionSpec,
        ctx: &StepContext,
        action: &dyn Action,
    ) -> Result<Result<Outcome, StepStop>, JournalError> {
        let later = self.later_evidence.take();
        let ran = self.run_with_retry(step, spec, ctx, action).await;
        if let Some(later) = later {
            later.record(ctx);
        }
        ran
    }

    /// What the answer to a previewed destructive step means for it.
    fn decide_on(
        &mut self,
        step: &Step,
        preview: &step::Preview,
    ) -> Result<Decision, JournalError> {
        let answer = match self.destructive_answer(step, preview)? {
            Ok(answer) => answer,
            Err(decision) => return Ok(decision),
        };
        Ok(match answer {
            Answer::Yes if self.shared.dry_run => {
                self.confirmed.insert(step.id.clone());
                Decision::Finish(
                    StepStatus::WouldDo,
                    format!("dry run, nothing sent; would do: {}", preview.summary),
                )
            }
            Answer::Yes => {
                self.confirmed.insert(step.id.clone());
                Decision::Proceed
            }
            Answer::Skip(reason) => Decision::Finish(StepStatus::Skipped, skipped_summary(&reason)),
            Answer::Abort | Answer::No => {
                Decision::Stop(aborted(step, "aborted by the operator; nothing was done"))
            }
        })
    }

    /// Read and journal what a destructive step would do; or how the step ends when it
    /// cannot be previewed or there is nothing to do.
    async fn preview(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        action: &dyn Action,
    ) -> Result<Result<step::Preview, Decision>, JournalError> {
        let preview = match self.retrying(step, ctx, || action.preview(ctx)).await? {
            Ok(p) => p,
            Err(StepStop::Interrupted(signal)) => {
                return Ok(Err(Decision::Stop(interrupted(
                    step,
                    signal,
                    "during the preview",
                ))))
            }
            Err(StepStop::Failed(message, unusable)) => {
                // A destructive step that cannot be previewed stops the run unless told
                // to continue: nothing was done.
                let summary = format!("could not preview, so nothing was done: {message}");
                return Ok(Err(
                    match self.failed(step, action.spec(), summary, unusable) {
                        (status, summary, _, None) => Decision::Finish(status, summary),
                        end => Decision::Stop(end),
                    },
                ));
            }
        };
        self.record(Event::Preview {
            step: step.id.clone(),
            summary: preview.summary.clone(),
            items: preview.items.clone(),
        })?;
        if preview.nothing_to_do {
            if let Some(later) = &preview.later {
                later.record(ctx);
            }
            self.say(Level::Info, &preview.summary);
            return Ok(Err(Decision::Finish(
                StepStatus::Ok,
                format!("nothing to do: {}", preview.summary),
            )));
        }
        Ok(Ok(preview))
    }

    /// The answer to a previewed destructive step, journaled: `--yes` or the autopilot
    /// says yes, a person at the terminal is asked (Ctrl-C at the prompt stops the run).
    fn destructive_answer(
        &self,
        step: &Step,
        preview: &step::Preview,
    ) -> Result<Result<Answer, Decision>, JournalError> {
        let decided = self.shared.policy.decide(Question::Destructive);
        if let policy::Decision::Yes { by } = decided {
            self.say(Level::Info, &preview.body);
            self.answer(step, Answered::Yes, None, by)?;
            return Ok(Ok(Answer::Yes));
        }
        assert!(
            decided == policy::Decision::Ask,
            "the no-terminal rule is applied before the step starts"
        );
        let question = if self.shared.dry_run {
            format!("{} (dry run: nothing will be sent)", step.display_title())
        } else {
            format!("{}?", step.display_title())
        };
        let answer = self.ask(&Prompt {
            kind: PromptKind::Destructive,
            step: &step.id,
            title: step.display_title(),
            body: &format!("{}\n{}", preview.summary, preview.body),
            question: &question,
            default_yes: false,
        });
        if let Some(signal) = self.interrupt.received() {
            return Ok(Err(Decision::Stop(interrupted(
                step,
                signal,
                "at the prompt; nothing was done",
            ))));
        }
        match &answer {
            Answer::Yes => self.answer(step, Answered::Yes, None, "operator")?,
            Answer::Skip(reason) => {
                self.answer(step, Answered::Skip, Some(reason.clone()), "operator")?
            }
            Answer::Abort | Answer::No => self.answer(step, Answered::Abort, None, "operator")?,
        }
        Ok(Ok(answer))
    }

    fn confirm_manual(&mut self, step: &Step, ctx: &StepContext) -> Result<Decision, JournalError> {
        let instructions = ctx
            .args
            .text("instructions")
            .unwrap_or_default()
            .to_string();
        let decided = self.shared.policy.decide(Question::Manual);
        if let policy::Decision::Yes { by } = decided {
            self.say(Level::Info, &instructions);
            self.answer(step, Answered::Done, Some("drill autopilot".into()), by)?;
            self.confirmed.insert(step.id.clone());
            return Ok(Decision::Proceed);
        }
        if decided == policy::Decision::Nobody {
            self.say(Level::Info, &instructions);
            self.answer(
                step,
                Answered::Pending,
                Some("no terminal: a person must do this".into()),
                "no-terminal",
            )?;
            self.say(
                Level::Warn,
                &format!(
                    "`{}` needs a person: recorded as pending in the report",
                    step.id
                ),
            );
            return Ok(Decision::Finish(StepStatus::Pending, instructions));
        }
        let answer = match self.ask_done(step, &instructions, "is it done?") {
            Ok(answer) => answer,
            Err(signal) => return Ok(Decision::Stop(interrupted(step, signal, "at the prompt"))),
        };
        Ok(match answer {
            Answer::Yes => {
                self.answer(step, Answered::Done, None, "operator")?;
                self.confirmed.insert(step.id.clone());
                if self.shared.dry_run {
                    Decision::Finish(StepStatus::Ok, "done (attested by the operator)".into())
                } else {
                    Decision::Proceed
                }
            }
            Answer::Skip(reason) => {
                self.answer(step, Answered::Skip, Some(reason.clone()), "operator")?;
                // A skipped manual step is still to be done.
                Decision::Finish(StepStatus::Pending, skipped_summary(&reason))
            }
            Answer::Abort | Answer::No => {
                self.answer(step, Answered::Abort, None, "operator")?;
                Decision::Stop(aborted(step, "aborted by the operator"))
            }
        })
    }

    /// A person said a manual step is done: where the exchange can tell (the key is
    /// deleted), check at once. A contradicted attestation is journaled with the
    /// evidence, the step is not confirmed, and the operator is asked again with the
    /// evidence on screen; without a terminal the step fails.
    async fn attested(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        action: &dyn Action,
        mut outcome: Outcome,
    ) -> Result<StepEnd, JournalError> {
        const MAX_ASKS: usize = 5;
        for ask in 1..=MAX_ASKS {
            let Some(evidence) = self.contradicted(step, ctx, action).await? else {
                return Ok((outcome.status, outcome.summary, outcome.outputs, None));
            };
            // Contradicted: not done, whatever was said.
            self.confirmed.remove(&step.id);
            let message = format!("`{}` was reported done, but {evidence}", step.id);
            self.say(Level::Alert, &message);
            if !self.shared.policy.asks(Question::AskAgain) || ask == MAX_ASKS {
                let summary = format!("reported done, but the check contradicts it: {evidence}");
                return Ok(self.failed(step, action.spec(), summary, false));
            }
            outcome = match self.ask_again(step, ctx, action, &evidence).await? {
                Ok(outcome) => outcome,
                Err(end) => return Ok(end),
            };
        }
        unreachable!("the last ask returns")
    }

    /// Check what a person attested and journal the check; the evidence when the
    /// exchange contradicts it, `None` when it agrees or cannot tell.
    async fn contradicted(
        &self,
        step: &Step,
        ctx: &StepContext,
        action: &dyn Action,
    ) -> Result<Option<String>, JournalError> {
        let attestation = match action.attest(ctx).await {
            Ok(a) => a,
            Err(ActionError::Journal(e)) => return Err(e),
            Err(e) => step::Attestation::Inconclusive(e.to_string()),
        };
        let (verdict, evidence) = match &attestation {
            step::Attestation::NotChecked => return Ok(None),
            step::Attestation::Confirmed(e) => ("confirmed", e.clone()),
            step::Attestation::Contradicted(e) => ("contradicted", e.clone()),
            step::Attestation::Inconclusive(e) => ("inconclusive", e.clone()),
        };
        self.record(Event::Attestation {
            step: step.id.clone(),
            verdict: verdict.into(),
            evidence: evidence.clone(),
        })?;
        match attestation {
            step::Attestation::Contradicted(_) => return Ok(Some(evidence)),
            step::Attestation::Inconclusive(_) => self.say(
                Level::Warn,
                &format!("could not check that `{}` is done: {evidence}", step.id),
            ),
            _ => self.say(Level::Success, &format!("checked: {evidence}")),
        }
        Ok(None)
    }

    /// Ask the person at a manual step whether it is done (`question` follows the step's
    /// title); a signal that arrived meanwhile wins over the answer.
    fn ask_done(&self, step: &Step, body: &str, question: &str) -> Result<Answer, Signal> {
        let answer = self.ask(&Prompt {
            kind: PromptKind::Manual,
            step: &step.id,
            title: step.display_title(),
            body,
            question: &format!("{} — {question}", step.display_title()),
            default_yes: false,
        });
        match self.interrupt.received() {
            Some(signal) => Err(signal),
            None => Ok(answer),
        }
    }

    /// Ask the operator again with the contradicting evidence on screen; on "done", run
    /// the manual step's action again (its outcome is checked again by the caller).
    async fn ask_again(
        &mut self,
        step: &Step,
        ctx: &StepContext,
        action: &dyn Action,
        evidence: &str,
    ) -> Result<Result<Outcome, StepEnd>, JournalError> {
        let instructions = ctx.args.text("instructions").unwrap_or_default();
        let body = format!("THE CHECK SAYS IT IS NOT DONE: {evidence}\n\n{instructions}");
        let answer = match self.ask_done(step, &body, "is it done now?") {
            Ok(answer) => answer,
            Err(signal) => return Ok(Err(interrupted(step, signal, "at the prompt"))),
        };
        match answer {
            Answer::Yes => {
                self.answer(
                    step,
                    Answered::Done,
                    Some("asked again after a contradicted check".into()),
                    "operator",
                )?;
                self.confirmed.insert(step.id.clone());
                Ok(
                    match self
                        .run_with_retry(step, action.spec(), ctx, action)
                        .await?
                    {
                        Ok(o) => Ok(o),
                        Err(StepStop::Interrupted(signal)) => Err(interrupted(step, signal, "")),
                        Err(StepStop::Failed(message, unusable)) => {
                            Err(self.failed(step, action.spec(), message, unusable))
                        }
                    },
                )
            }
            Answer::Skip(reason) => {
                self.answer(step, Answered::Skip, Some(reason.clone()), "operator")?;
                Ok(Err((
                    StepStatus::Pending,
                    skipped_summary(&reason),
                    BTreeMap::new(),
                    None,
                )))
            }
            Answer::Abort | Answer::No => {
                self.answer(step, Answered::Abort, None, "operator")?;
                Ok(Err(aborted(step, "aborted by the operator")))
            }
        }
    }

    async fn run_with_retry(
        &self,
        step: &Step,
        _spec: &ActionSpec,
        ctx: &StepContext,
        action: &dyn Action,
    ) -> Result<Result<Outcome, StepStop>, JournalError> {
        self.retrying(step, ctx, || action.run(ctx)).await
    }

    /// Run `make()` up to the step's `retry.attempts` times, each bounded by its
    /// `timeout`, racing Ctrl-C. Journal failures are never retried.
    async fn retrying<T, F>(
        &self,
        step: &Step,
        _ctx: &StepContext,
        make: impl Fn() -> F,
    ) -> Result<Result<T, StepStop>, JournalError>
    where
        F: std::future::Future<Output = Result<T, ActionError>>,
    {
        let attempts = step.retry.attempts.max(1);
        for attempt in 1..=attempts {
            let work = async {
                match step.timeout {
                    Some(limit) => match tokio::time::timeout(limit, make()).await {
                        Ok(result) => result,
                        Err(_) => Err(ActionError::Timeout(limit)),
                    },
                    None => make().await,
                }
            };
            let result = tokio::select! {
                result = work => result,
                signal = self.interrupt.wait() => return Ok(Err(StepStop::Interrupted(signal))),
            };
            match result {
                Ok(value) => return Ok(Ok(value)),
                Err(ActionError::Journal(e)) => return Err(e),
                Err(e) => {
                    let message = e.to_string();
                    self.record(Event::StepError {
                        step: step.id.clone(),
                        attempt,
                        message: message.clone(),
                        code: e.code(),
                    })?;
                    if attempt < attempts {
                        self.say(
                            Level::Warn,
                            &format!(
                                "{}: attempt {attempt}/{attempts} failed: {message}; retrying in {}",
                                step.id,
                                humantime::format_duration(step.retry.delay)
                            ),
                        );
                        tokio::select! {
                            _ = tokio::time::sleep(step.retry.delay) => {}
                            signal = self.interrupt.wait() => return Ok(Err(StepStop::Interrupted(signal))),
                        }
                    } else {
                        let message = if attempts > 1 {
                            format!("{message} (after {attempts} attempts)")
                        } else {
                            message
                        };
                        return Ok(Err(StepStop::Failed(message, e.is_exchange_unusable())));
                    }
                }
            }
        }
        unreachable!("attempts is at least 1")
    }
}

/// How a step ended: status, summary, outputs, and whether the run stops here.
type StepEnd = (StepStatus, String, BTreeMap<String, Json>, Option<End>);

/// The operator chose abort: the run stops here.
fn aborted(step: &Step, summary: &str) -> StepEnd {
    (
        StepStatus::Aborted,
        summary.to_string(),
        BTreeMap::new(),
        Some(End::Aborted {
            step: step.id.clone(),
        }),
    )
}

/// A step cut short by Ctrl-C or SIGTERM: the run stops here.
fn interrupted(step: &Step, signal: Signal, when: &str) -> StepEnd {
    let summary = match when {
        "" => format!("interrupted by {}", signal.name()),
        when => format!("interrupted by {} {when}", signal.name()),
    };
    (
        StepStatus::Interrupted,
        summary,
        BTreeMap::new(),
        Some(End::Interrupted {
            signal,
            step: Some(step.id.clone()),
        }),
    )
}

enum StepStop {
    /// The message, and whether the exchange was unreachable or refused the credentials.
    Failed(String, bool),
    Interrupted(Signal),
}

fn skipped_summary(reason: &str) -> String {
    if reason.trim().is_empty() {
        "skipped by the operator (no reason given)".into()
    } else {
        format!("skipped by the operator: {}", reason.trim())
    }
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Destructive => "destructive",
        Kind::Manual => "manual",
        Kind::Verify => "verify",
        Kind::Evidence => "evidence",
        Kind::Local => "local",
    }
}

pub fn outcome_of(end: &End) -> crate::report::journal::RunOutcome {
    use crate::report::journal::RunOutcome;
    match end {
        End::Completed => RunOutcome::Completed,
        End::Aborted { .. } => RunOutcome::Aborted,
        End::Stopped { .. } => RunOutcome::Stopped,
        End::Failed { .. } => RunOutcome::Failed,
        End::Interrupted { .. } => RunOutcome::Interrupted,
    }
}
