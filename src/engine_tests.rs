//! Every engine rule, driven through the scripted operator.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::config::{RunConfig, Target};
use crate::engine::step::{
    Action, ActionError, ActionSpec, BoxFuture, Kind, LaterEvidence, Outcome, Preview, Registry,
    StepContext,
};
use crate::engine::{Interrupt, Signal};
use crate::error::exit;
use crate::operator::{Answer, Operator, Scripted};
use crate::playbook::Playbook;
use crate::report::journal::{self, Answered, Event, StepStatus};
use crate::session::{self, SessionResult};

static DESTROY: ActionSpec = ActionSpec {
    name: "test.destroy",
    description: "a destructive test action",
    kind: Kind::Destructive,
    inputs: &[],
    outputs: &[],
};
static READ: ActionSpec = ActionSpec {
    name: "test.read",
    description: "an evidence test action",
    kind: Kind::Evidence,
    inputs: &[],
    outputs: &[crate::engine::step::OutputSpec {
        name: "count",
        description: "calls so far",
    }],
};

/// A test action that counts its calls, can fail its first N runs and can be slow.
struct Probe {
    spec: &'static ActionSpec,
    runs: Arc<AtomicUsize>,
    /// Runs that have come to their end.
    ended: Arc<AtomicUsize>,
    previews: AtomicUsize,
    fail_first: usize,
    sleep: Duration,
}

impl Probe {
    fn with(spec: &'static ActionSpec, fail_first: usize, sleep: Duration) -> Arc<Probe> {
        Arc::new(Probe {
            spec,
            runs: Arc::new(AtomicUsize::new(0)),
            ended: Arc::new(AtomicUsize::new(0)),
            previews: AtomicUsize::new(0),
            fail_first,
            sleep,
        })
    }
    fn new(spec: &'static ActionSpec) -> Arc<Probe> {
        Probe::with(spec, 0, Duration::ZERO)
    }
    fn failing(spec: &'static ActionSpec, n: usize) -> Arc<Probe> {
        Probe::with(spec, n, Duration::ZERO)
    }
    fn slow(spec: &'static ActionSpec, sleep: Duration) -> Arc<Probe> {
        Probe::with(spec, 0, sleep)
    }
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Action for Probe {
    fn spec(&self) -> &'static ActionSpec {
        self.spec
    }
    fn preview<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async move {
            self.previews.fetch_add(1, Ordering::SeqCst);
            // What the preview read, recorded after the answer: its row says whether
            // the step had started, and ended, when it was built.
            let (runs, ended) = (self.runs.clone(), self.ended.clone());
            Ok(Preview {
                summary: "2 things would change".into(),
                body: "thing-1\nthing-2".into(),
                items: serde_json::json!(["thing-1", "thing-2"]),
                nothing_to_do: false,
                later: Some(LaterEvidence::new("listed", move || {
                    vec![serde_json::json!({
                        "step_started": runs.load(Ordering::SeqCst) > 0,
                        "step_ended": ended.load(Ordering::SeqCst) > 0,
                    })]
                })),
            })
        })
    }
    fn run<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if !self.sleep.is_zero() {
                tokio::time::sleep(self.sleep).await;
            }
            self.ended.fetch_add(1, Ordering::SeqCst);
            if n <= self.fail_first {
                return Err(ActionError::Failed(format!("planned failure {n}")));
            }
            Ok(Outcome::ok(format!("ran {n} time(s)")).with("count", n as u64))
        })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    registry: Registry,
    destroy: Arc<Probe>,
    read: Arc<Probe>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Probe::new(&DESTROY), Probe::new(&READ))
    }
    fn with(destroy: Arc<Probe>, read: Arc<Probe>) -> Harness {
        let registry = crate::actions::builtin()
            .with(destroy.clone())
            .with(read.clone());
        Harness {
            dir: tempfile::tempdir().unwrap(),
            registry,
            destroy,
            read,
        }
    }
    fn cfg(&self) -> RunConfig {
        RunConfig::local(self.dir.path())
    }
    fn playbook(&self, steps: &str) -> Playbook {
        let text = format!("version: 1\nname: t\ninputs:\n  since: {{ type: since, default: 24h }}\nsteps:\n{steps}");
        Playbook::parse(&text, "t.yaml", &self.registry).unwrap_or_else(|d| panic!("{d}"))
    }
    /// A run without a terminal that receives `signal` after `after`.
    async fn run_signalled(
        &self,
        playbook: &Playbook,
        cfg: &RunConfig,
        after: Duration,
        signal: Signal,
    ) -> SessionResult {
        let interrupt = Interrupt::manual();
        let trigger = interrupt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            trigger.trigger(signal);
        });
        let operator: Arc<dyn Operator> = Arc::new(Scripted::without_terminal());
        session::run(playbook, &self.registry, cfg, operator, interrupt)
            .await
            .unwrap()
    }

    /// The config of a run with `--yes`.
    fn with_yes(&self) -> RunConfig {
        RunConfig {
            yes: true,
            ..self.cfg()
        }
    }

    /// Run `steps` with `cfg` and no terminal attached.
    async fn unattended(&self, steps: &str, cfg: &RunConfig) -> SessionResult {
        let op = Arc::new(Scripted::without_terminal());
        self.run(&self.playbook(steps), cfg, op).await
    }

    /// Resume `first`'s incident with this harness's actions, once its process has ended
    /// (its lock released).
    async fn resume(
        &self,
        first: &mut SessionResult,
        cfg: &RunConfig,
        operator: Arc<dyn Operator>,
    ) -> SessionResult {
        drop(first.lock.take());
        session::resume(
            &first.dir,
            &self.registry,
            cfg,
            operator,
            Interrupt::manual(),
        )
        .await
        .unwrap()
    }

    async fn run(&self, playbook: &Playbook, cfg: &RunConfig, op: Arc<Scripted>) -> SessionResult {
        let operator: Arc<dyn Operator> = op;
        session::run(playbook, &self.registry, cfg, operator, Interrupt::manual())
            .await
            .unwrap()
    }
}

fn events(dir: &std::path::Path) -> Vec<Event> {
    journal::read(&dir.join(journal::JOURNAL_FILE))
        .unwrap()
        .records()
        .map(|r| r.event.clone())
        .collect()
}

/// Where the destroy step's deferred evidence is in the journal, and whether the step
/// had started when it was built.
fn listed(ev: &[Event]) -> (usize, bool) {
    ev.iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            Event::Evidence { table, rows, .. } if table == "listed" => {
                Some((i, rows[0]["step_started"] == serde_json::json!(true)))
            }
            _ => None,
        })
        .expect("the preview's evidence is recorded")
}

fn position(ev: &[Event], what: impl Fn(&Event) -> bool) -> usize {
    ev.iter().position(what).unwrap()
}

fn status_of(result: &SessionResult, step: &str) -> StepStatus {
    result
        .result
        .statuses
        .iter()
        .find(|(s, _)| s == step)
        .map(|(_, st)| *st)
        .unwrap()
}

const DESTROY_THEN_READ: &str =
    "  - id: destroy\n    uses: test.destroy\n  - id: read\n    uses: test.read\n";

#[tokio::test(flavor = "multi_thread")]
async fn yes_runs_the_destructive_step_after_its_preview() {
    // The step waits on its requests for a moment, as a cancel does.
    let h = Harness::with(
        Probe::slow(&DESTROY, Duration::from_millis(20)),
        Probe::new(&READ),
    );
    let op = Arc::new(Scripted::new([("destroy", Answer::Yes)]));
    let r = h
        .run(&h.playbook(DESTROY_THEN_READ), &h.cfg(), op.clone())
        .await;
    op.assert_exhausted();
    assert_eq!(h.destroy.runs(), 1);
    assert_eq!(r.result.exit_code, exit::OK);
    let ev = events(&r.dir);
    let preview = ev
        .iter()
        .position(|e| matches!(e, Event::Preview { .. }))
        .unwrap();
    let answer = ev
        .iter()
        .position(|e| matches!(e, Event::Answer { answer, .. } if *answer == Answered::Yes))
        .unwrap();
    assert!(
        preview < answer,
        "the preview is recorded before the answer"
    );
    assert!(op.asked()[0].contains("destroy"));
    // What the preview read is recorded after the yes, once the step has run and
    // before its end: building it never takes a core from the step's requests.
    let (evidence, started) = listed(&ev);
    let finished = position(
        &ev,
        |e| matches!(e, Event::StepFinished { step, .. } if step == "destroy"),
    );
    assert!(answer < evidence && evidence < finished, "{ev:#?}");
    assert!(started, "built once the step had started");
    let Event::Evidence { rows, .. } = &ev[evidence] else {
        unreachable!()
    };
    assert_eq!(rows[0]["step_ended"], true, "built once the step had run");
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_records_the_reason_and_does_nothing() {
    let h = Harness::new();
    let op = Arc::new(Scripted::new([(
        "destroy",
        Answer::Skip("already handled".into()),
    )]));
    let r = h
        .run(&h.playbook(DESTROY_THEN_READ), &h.cfg(), op.clone())
        .await;
    assert_eq!(h.destroy.runs(), 0);
    assert_eq!(h.read.runs(), 1, "the run continues after a skip");
    assert_eq!(status_of(&r, "destroy"), StepStatus::Skipped);
    assert!(events(&r.dir).iter().any(
        |e| matches!(e, Event::Answer { answer, reason: Some(reason), .. } if *answer == Answered::Skip && reason == "already handled")
    ));
    let md = std::fs::read_to_string(r.dir.join("report.md")).unwrap();
    assert!(md.contains("already handled"), "{md}");
    // What the preview read is evidence whatever the answer.
    let ev = events(&r.dir);
    let (evidence, started) = listed(&ev);
    let answer = position(
        &ev,
        |e| matches!(e, Event::Answer { answer, .. } if *answer == Answered::Skip),
    );
    let finished = position(
        &ev,
        |e| matches!(e, Event::StepFinished { step, .. } if step == "destroy"),
    );
    assert!(
        answer < evidence && evidence < finished && !started,
        "{ev:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_stops_the_run_with_exit_4() {
    let h = Harness::new();
    let op = Arc::new(Scripted::new([("destroy", Answer::Abort)]));
    let r = h.run(&h.playbook(DESTROY_THEN_READ), &h.cfg(), op).await;
    assert_eq!(h.destroy.runs(), 0);
    assert_eq!(h.read.runs(), 0, "nothing after an abort");
    assert_eq!(r.result.exit_code, exit::ABORTED);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "aborted");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_terminal_and_no_yes_stops_before_the_destructive_step() {
    let h = Harness::new();
    let steps = "  - id: read\n    uses: test.read\n  - id: destroy\n    uses: test.destroy\n";
    let op = Arc::new(Scripted::without_terminal());
    let r = h.run(&h.playbook(steps), &h.cfg(), op.clone()).await;
    assert_eq!(r.result.exit_code, exit::ABORTED);
    assert_eq!(h.read.runs(), 1, "steps before it ran");
    assert_eq!(h.destroy.runs(), 0);
    assert_eq!(h.destroy.previews.load(Ordering::SeqCst), 0);
    let ev = events(&r.dir);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::StepStarted { step, .. } if step == "destroy")),
        "the journal shows the destructive step never started"
    );
    assert!(
        op.said_text().contains("--yes"),
        "the message says what to do"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yes_without_a_terminal_runs_destructive_but_leaves_manual_pending() {
    let h = Harness::new();
    let steps = "  - id: destroy\n    uses: test.destroy\n  - id: delete-key\n    uses: manual\n    with: { instructions: Delete it }\n  - id: after\n    uses: test.read\n    when: ${{ steps.delete-key.confirmed }}\n";
    let cfg = h.with_yes();
    let r = h.unattended(steps, &cfg).await;
    assert_eq!(h.destroy.runs(), 1);
    assert_eq!(status_of(&r, "delete-key"), StepStatus::Pending);
    assert_eq!(
        status_of(&r, "after"),
        StepStatus::Skipped,
        "an unconfirmed manual step is not confirmed"
    );
    assert_eq!(r.result.exit_code, exit::PENDING);
    let md = std::fs::read_to_string(r.dir.join("report.md")).unwrap();
    assert!(
        md.contains("Still to do") && md.contains("Delete it"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn yes_never_confirms_a_manual_step_in_a_terminal_either() {
    let h = Harness::new();
    let steps = "  - id: delete-key\n    uses: manual\n    with: { instructions: 'Delete ${{ key.masked }}' }\n";
    let cfg = h.with_yes();
    let op = Arc::new(Scripted::new([(
        "delete-key",
        Answer::Skip("later".into()),
    )]));
    let r = h.run(&h.playbook(steps), &cfg, op.clone()).await;
    op.assert_exhausted();
    assert_eq!(
        status_of(&r, "delete-key"),
        StepStatus::Pending,
        "a skipped manual step stays pending"
    );
    assert_eq!(r.result.exit_code, exit::PENDING);
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_done_confirms_the_step() {
    let h = Harness::new();
    let steps = "  - id: delete-key\n    uses: manual\n    with: { instructions: Delete it }\n  - id: after\n    uses: test.read\n    when: ${{ steps.delete-key.confirmed }}\n";
    let op = Arc::new(Scripted::new([("delete-key", Answer::Yes)]));
    let r = h.run(&h.playbook(steps), &h.cfg(), op).await;
    assert_eq!(status_of(&r, "delete-key"), StepStatus::Ok);
    assert_eq!(h.read.runs(), 1);
    assert_eq!(r.result.exit_code, exit::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_autopilot_confirms_manual_steps() {
    let h = Harness::new();
    let steps = "  - id: delete-key\n    uses: manual\n    with: { instructions: Delete it }\n";
    let mut cfg = h.with_yes();
    cfg.target = Target::Drill { scenario: None };
    let r = h.unattended(steps, &cfg).await;
    assert_eq!(status_of(&r, "delete-key"), StepStatus::Ok);
    assert!(events(&r.dir)
        .iter()
        .any(|e| matches!(e, Event::Answer { by, .. } if by == "autopilot")));
    let md = std::fs::read_to_string(r.dir.join("report.md")).unwrap();
    assert!(md.contains("DRILL (autopilot)"), "{md}");
    assert!(r.dir.to_string_lossy().ends_with("-t-drill"));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_records_would_do_and_never_runs_the_action() {
    let h = Harness::new();
    let mut cfg = h.cfg();
    cfg.dry_run = true;
    cfg.yes = true;
    let r = h.unattended(DESTROY_THEN_READ, &cfg).await;
    assert_eq!(h.destroy.runs(), 0);
    assert_eq!(h.destroy.previews.load(Ordering::SeqCst), 1);
    assert_eq!(status_of(&r, "destroy"), StepStatus::WouldDo);
    assert_eq!(h.read.runs(), 1, "reads still happen in a dry run");
    let (_, started) = listed(&events(&r.dir));
    assert!(!started, "the preview's evidence is kept in a dry run");
    assert!(r.dir.to_string_lossy().ends_with("-dry-run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_runs_again_until_it_succeeds() {
    let h = Harness::with(Probe::new(&DESTROY), Probe::failing(&READ, 2));
    let steps = "  - id: read\n    uses: test.read\n    retry: { attempts: 3, delay: 10ms }\n";
    let r = h.unattended(steps, &h.cfg()).await;
    assert_eq!(h.read.runs(), 3);
    assert_eq!(status_of(&r, "read"), StepStatus::Ok);
    let errors = events(&r.dir)
        .iter()
        .filter(|e| matches!(e, Event::StepError { .. }))
        .count();
    assert_eq!(errors, 2, "each failed attempt is journaled");
    assert_eq!(r.result.exit_code, exit::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_gives_up_after_its_attempts() {
    let h = Harness::with(Probe::new(&DESTROY), Probe::failing(&READ, 10));
    let steps = "  - id: read\n    uses: test.read\n    retry: { attempts: 2, delay: 1ms }\n    on_failure: abort\n  - id: next\n    uses: test.destroy\n";
    let r = h.unattended(steps, &h.cfg()).await;
    assert_eq!(h.read.runs(), 2);
    assert_eq!(status_of(&r, "read"), StepStatus::Failed);
    assert_eq!(r.result.exit_code, exit::FAILED);
    assert!(
        !r.result.statuses.iter().any(|(s, _)| s == "next"),
        "on_failure: abort stops the run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_failures_continue_by_default_but_fail_the_run() {
    let h = Harness::with(Probe::new(&DESTROY), Probe::failing(&READ, 10));
    let steps = "  - id: read\n    uses: test.read\n  - id: note\n    uses: manual\n    with: { instructions: x }\n";
    let r = h.unattended(steps, &h.cfg()).await;
    assert_eq!(status_of(&r, "read"), StepStatus::Failed);
    assert_eq!(
        status_of(&r, "note"),
        StepStatus::Pending,
        "the run went on"
    );
    assert_eq!(
        r.result.exit_code,
        exit::FAILED,
        "a failed step under on_failure: continue still fails the run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn destructive_failures_abort_by_default() {
    let h = Harness::with(Probe::failing(&DESTROY, 10), Probe::new(&READ));
    let cfg = h.with_yes();
    let r = h.unattended(DESTROY_THEN_READ, &cfg).await;
    assert_eq!(status_of(&r, "destroy"), StepStatus::Failed);
    assert_eq!(h.read.runs(), 0);
    assert_eq!(r.result.exit_code, exit::FAILED);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_continue_overrides_the_default() {
    let h = Harness::with(Probe::failing(&DESTROY, 10), Probe::new(&READ));
    let steps = "  - id: destroy\n    uses: test.destroy\n    on_failure: continue\n  - id: read\n    uses: test.read\n";
    let cfg = h.with_yes();
    let r = h.unattended(steps, &cfg).await;
    assert_eq!(h.read.runs(), 1);
    assert_eq!(r.result.exit_code, exit::FAILED);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_each_attempt() {
    let h = Harness::with(
        Probe::new(&DESTROY),
        Probe::slow(&READ, Duration::from_secs(30)),
    );
    let steps = "  - id: read\n    uses: test.read\n    timeout: 100ms\n    retry: { attempts: 2, delay: 1ms }\n";
    let started = std::time::Instant::now();
    let r = h.unattended(steps, &h.cfg()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(h.read.runs(), 2);
    assert_eq!(status_of(&r, "read"), StepStatus::Failed);
    assert!(events(&r.dir)
        .iter()
        .any(|e| matches!(e, Event::StepError { message, .. } if message.contains("timed out"))));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_step_records_the_interruption_and_exits_130() {
    let h = Harness::with(
        Probe::new(&DESTROY),
        Probe::slow(&READ, Duration::from_secs(30)),
    );
    let steps = "  - id: read\n    uses: test.read\n  - id: after\n    uses: test.destroy\n";
    let r = h
        .run_signalled(
            &h.playbook(steps),
            &h.cfg(),
            Duration::from_millis(200),
            Signal::Interrupt,
        )
        .await;
    assert_eq!(r.result.exit_code, exit::SIGINT);
    assert_eq!(status_of(&r, "read"), StepStatus::Interrupted);
    let ev = events(&r.dir);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Interrupted { signal, .. } if signal == "SIGINT")));
    assert!(matches!(
        ev.last(),
        Some(Event::RunFinished { exit_code: 130, .. })
    ));
    let md = std::fs::read_to_string(r.dir.join("report.md")).unwrap();
    assert!(md.contains("resume with: `respond resume"), "{md}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_is_rendered_from_the_journal_alone() {
    let h = Harness::new();
    let op = Arc::new(Scripted::new([("destroy", Answer::Yes)]));
    let r = h.run(&h.playbook(DESTROY_THEN_READ), &h.cfg(), op).await;
    let before = std::fs::read_to_string(r.dir.join("report.json")).unwrap();
    std::fs::remove_file(r.dir.join("report.json")).unwrap();
    std::fs::remove_file(r.dir.join("report.md")).unwrap();
    crate::report::render_dir(&r.dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(r.dir.join("report.json")).unwrap(),
        before
    );
    let report: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(report["steps"][0]["status"], "ok");
    assert_eq!(report["steps"][1]["outputs"]["count"], 1);
    assert_eq!(report["decisions"][0]["who"], "tester");
    assert_eq!(
        std::fs::read_to_string(r.dir.join("playbook.yaml")).unwrap(),
        h.playbook(DESTROY_THEN_READ).text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_feed_later_templates_and_conditions() {
    let h = Harness::new();
    let steps = "  - id: read\n    uses: test.read\n  - id: tell\n    uses: manual\n    when: ${{ steps.read.outputs.count > 0 }}\n    with: { instructions: 'count is ${{ steps.read.outputs.count }} since ${{ inputs.since }}' }\n";
    let r = h.unattended(steps, &h.cfg()).await;
    let ev = events(&r.dir);
    let summary = ev
        .iter()
        .find_map(|e| match e {
            Event::StepFinished { step, summary, .. } if step == "tell" => Some(summary.clone()),
            _ => None,
        })
        .unwrap();
    assert!(summary.starts_with("count is 1 since 20"), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_redoes_an_unfinished_destructive_step_and_nothing_finished() {
    // First session: the destructive step hangs and Ctrl-C arrives mid-step.
    let first = Harness::with(
        Probe::slow(&DESTROY, Duration::from_secs(30)),
        Probe::new(&READ),
    );
    let steps = "  - id: read\n    uses: test.read\n  - id: destroy\n    uses: test.destroy\n  - id: after\n    uses: test.read\n";
    let playbook = first.playbook(steps);
    let cfg = first.with_yes();
    let mut r1 = first
        .run_signalled(
            &playbook,
            &cfg,
            Duration::from_millis(300),
            Signal::Terminate,
        )
        .await;
    assert_eq!(r1.result.exit_code, exit::SIGTERM);
    assert_eq!(first.read.runs(), 1);

    // Second session: same folder, working actions.
    let second = Harness::new();
    let r2 = second
        .resume(&mut r1, &cfg, Arc::new(Scripted::without_terminal()))
        .await;
    assert_eq!(r2.dir, r1.dir);
    assert_eq!(r2.result.exit_code, exit::OK);
    assert_eq!(
        second.destroy.previews.load(Ordering::SeqCst),
        1,
        "re-previewed"
    );
    assert_eq!(second.destroy.runs(), 1);
    assert_eq!(
        second.read.runs(),
        1,
        "only `after`: `read` finished in the first session"
    );
    let ev = events(&r2.dir);
    assert!(ev.iter().any(|e| matches!(e, Event::Note { message, .. } if message.contains("started in an earlier session"))));
    assert!(matches!(
        crate::report::verify::verify_dir(&r2.dir).unwrap(),
        crate::report::verify::Verdict::Intact { .. }
    ));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r2.dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["sessions"], 2);
    assert_eq!(report["outcome"], "completed");
    let md = std::fs::read_to_string(r2.dir.join("report.md")).unwrap();
    assert!(
        md.contains("interrupted by SIGTERM"),
        "the report keeps the interruption: {md}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_never_asks_a_confirmed_manual_step_again() {
    let first = Harness::with(
        Probe::new(&DESTROY),
        Probe::slow(&READ, Duration::from_secs(30)),
    );
    let steps = "  - id: delete-key\n    uses: manual\n    with: { instructions: Delete it }\n  - id: read\n    uses: test.read\n    when: ${{ steps.delete-key.confirmed }}\n";
    let playbook = first.playbook(steps);
    let interrupt = Interrupt::manual();
    let trigger = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.trigger(Signal::Interrupt);
    });
    let op: Arc<dyn Operator> = Arc::new(Scripted::new([("delete-key", Answer::Yes)]));
    let mut r1 = session::run(&playbook, &first.registry, &first.cfg(), op, interrupt)
        .await
        .unwrap();
    assert_eq!(r1.result.exit_code, exit::SIGINT);

    let second = Harness::new();
    // No scripted answers: any question fails the test.
    let op = Arc::new(Scripted::new(Vec::<(String, Answer)>::new()));
    let r2 = second.resume(&mut r1, &first.cfg(), op.clone()).await;
    assert!(op.asked().is_empty(), "{:?}", op.asked());
    assert_eq!(
        second.read.runs(),
        1,
        "the condition still sees the earlier confirmation"
    );
    assert_eq!(r2.result.exit_code, exit::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_refuses_an_altered_record_and_a_different_mode() {
    let h = Harness::new();
    let op = Arc::new(Scripted::new([("destroy", Answer::Abort)]));
    let r = h.run(&h.playbook(DESTROY_THEN_READ), &h.cfg(), op).await;
    let mut dry = h.cfg();
    dry.dry_run = true;
    let operator: Arc<dyn Operator> = Arc::new(Scripted::without_terminal());
    drop(r.lock); // the first session's process would have ended
    let err = session::resume(
        &r.dir,
        &h.registry,
        &dry,
        operator.clone(),
        Interrupt::manual(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), exit::USAGE);
    assert!(err.to_string().contains("was a live run"), "{err}");

    let path = r.dir.join(journal::JOURNAL_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"answer\":\"abort\"", "\"answer\":\"yes\"");
    std::fs::write(&path, text).unwrap();
    let err = session::resume(&r.dir, &h.registry, &h.cfg(), operator, Interrupt::manual())
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), exit::FAILED);
    assert!(err.to_string().contains("refusing to resume"), "{err}");
}

static BUGGY: ActionSpec = ActionSpec {
    name: "binance.buggy_reader",
    description: "an evidence action with a bug: it cancels orders",
    kind: Kind::Evidence,
    inputs: &[],
    outputs: &[],
};

/// Claims to read, but sends a cancel: the dry-run client must refuse it.
struct Buggy;

impl Action for Buggy {
    fn spec(&self) -> &'static ActionSpec {
        &BUGGY
    }
    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let client = ctx.client(crate::secret::Role::Leaked)?;
            client
                .cancel_all_open_orders(crate::exchange::Market::Spot, "BTCUSDT")
                .await?;
            Ok(Outcome::ok("cancelled behind everyone's back"))
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_refuses_a_mutating_request_even_from_a_buggy_action() {
    let registry = crate::actions::builtin().with(Arc::new(Buggy));
    let dir = tempfile::tempdir().unwrap();
    let playbook = Playbook::parse(
        "version: 1\nname: t\nsteps:\n  - id: read\n    uses: binance.buggy_reader\n",
        "t.yaml",
        &registry,
    )
    .unwrap();
    let mut cfg = RunConfig::local(dir.path());
    cfg.dry_run = true;
    cfg.target = Target::Drill { scenario: None };
    cfg.sim_request_log = Some(dir.path().join("sim.jsonl"));
    let operator: Arc<dyn Operator> = Arc::new(Scripted::without_terminal());
    let r = session::run(&playbook, &registry, &cfg, operator, Interrupt::manual())
        .await
        .unwrap();
    assert_eq!(status_of(&r, "read"), StepStatus::Failed);
    let ev = events(&r.dir);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::StepError { message, .. } if message.contains("dry run"))),
        "{ev:?}"
    );
    let log = std::fs::read_to_string(dir.path().join("sim.jsonl")).unwrap();
    assert!(
        !log.contains("\"DELETE\""),
        "nothing mutating reached the exchange:\n{log}"
    );
}

/// Triage, then the cancel, as in the built-in playbook.
const TRIAGE_THEN_CANCEL: &str = "version: 1\nname: t\nsteps:\n  - id: triage\n    uses: binance.key_permissions\n    on_failure: abort\n  - id: cancel-orders\n    uses: binance.cancel_open_orders\n    when: ${{ steps.triage.outputs.live || steps.triage.outputs.refused }}\n    with:\n      markets: [spot, margin, usdm, coinm]\n";

/// A drill on a generated account (open orders on every market, nobody placing more),
/// with every request the simulator answers logged to `sim.jsonl`, in answer order.
fn drill_cfg(dir: &std::path::Path, latency_ms: u64) -> RunConfig {
    use crate::sim::scenario::generate::{generate, Size};
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, generate(&Size::small())).unwrap();
    let mut cfg = RunConfig::local(dir);
    cfg.target = Target::Drill {
        scenario: Some(scenario),
    };
    cfg.sim_request_log = Some(dir.join("sim.jsonl"));
    cfg.sim_faults = vec![format!("latency={latency_ms}")];
    cfg
}

/// The simulator's request log, the client's requests only, in the order answered.
fn sim_log(dir: &std::path::Path) -> Vec<crate::sim::LogEntry> {
    std::fs::read_to_string(dir.join("sim.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<crate::sim::LogEntry>(l).unwrap())
        .filter(|e| e.actor == crate::sim::Actor::Client)
        .collect()
}

const TRIAGE_PATHS: [&str; 2] = ["/sapi/v1/account/apiRestrictions", "/api/v3/account"];

/// An operator at a terminal who, when asked to confirm the cancel, first notes what
/// the simulator had answered by then, and gives `answer`.
struct Watching {
    dir: std::path::PathBuf,
    answer: Answer,
    at_prompt: std::sync::Mutex<Option<Vec<crate::sim::LogEntry>>>,
}

impl Operator for Watching {
    fn interactive(&self) -> bool {
        true
    }
    fn ask(&self, prompt: &crate::operator::Prompt) -> Answer {
        assert_eq!(prompt.step, "cancel-orders", "unexpected question");
        assert_eq!(prompt.kind, crate::operator::PromptKind::Destructive);
        *self.at_prompt.lock().unwrap() = Some(sim_log(&self.dir));
        self.answer.clone()
    }
    fn say(&self, _level: crate::operator::Level, _text: &str) {}
    fn progress(&self, _label: &str, _total: Option<u64>) -> crate::operator::Progress {
        crate::operator::Progress::hidden()
    }
}

async fn run_watched(
    answer: Answer,
) -> (
    tempfile::TempDir,
    Vec<crate::sim::LogEntry>,
    Vec<crate::sim::LogEntry>,
    SessionResult,
) {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::actions::builtin();
    let playbook = Playbook::parse(TRIAGE_THEN_CANCEL, "t.yaml", &registry).unwrap();
    let cfg = drill_cfg(dir.path(), 0);
    let op = Arc::new(Watching {
        dir: dir.path().to_path_buf(),
        answer,
        at_prompt: Default::default(),
    });
    let operator: Arc<dyn Operator> = op.clone();
    let r = session::run(&playbook, &registry, &cfg, operator, Interrupt::manual())
        .await
        .unwrap();
    let at_prompt = op
        .at_prompt
        .lock()
        .unwrap()
        .take()
        .expect("asked about the cancel");
    let after = sim_log(dir.path());
    (dir, at_prompt, after, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_terminal_nothing_destructive_is_sent_before_the_operator_says_yes() {
    let (_dir, at_prompt, after, r) = run_watched(Answer::Yes).await;
    // When the question was asked, triage had its answers and the listing was in, and
    // not one cancel had reached the exchange.
    for path in TRIAGE_PATHS.iter().chain(&["/api/v3/openOrders"]) {
        assert!(
            at_prompt
                .iter()
                .any(|e| e.path == *path && e.method == "GET"),
            "{path} answered before the question: {at_prompt:?}"
        );
    }
    assert!(
        at_prompt.iter().all(|e| e.method == "GET"),
        "a mutation before the operator answered: {at_prompt:?}"
    );
    // The log only grows: what was answered then is its beginning, and every cancel
    // comes after it.
    assert_eq!(
        after[..at_prompt.len()]
            .iter()
            .map(|e| (&e.method, &e.path, &e.query))
            .collect::<Vec<_>>(),
        at_prompt
            .iter()
            .map(|e| (&e.method, &e.path, &e.query))
            .collect::<Vec<_>>()
    );
    let first_delete = after
        .iter()
        .position(|e| e.method == "DELETE")
        .expect("the cancels went out once the operator said yes");
    assert!(first_delete >= at_prompt.len());
    assert_eq!(status_of(&r, "cancel-orders"), StepStatus::Ok);
    // The journal says the same: the answer is recorded before the first cancel.
    let ev = events(&r.dir);
    let answered = ev
        .iter()
        .position(|e| matches!(e, Event::Answer { step, answer, .. } if step == "cancel-orders" && *answer == Answered::Yes))
        .expect("the answer is journaled");
    let first_cancel = ev
        .iter()
        .position(|e| matches!(e, Event::Request { method, .. } if method == "DELETE"))
        .expect("the cancels are journaled");
    assert!(answered < first_cancel, "{ev:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_terminal_an_operator_who_says_no_gets_no_mutation_at_all() {
    let (_dir, at_prompt, after, r) = run_watched(Answer::Abort).await;
    assert!(at_prompt.iter().all(|e| e.method == "GET"));
    assert!(
        after.iter().all(|e| e.method == "GET"),
        "nothing destructive after an abort: {after:?}"
    );
    assert_eq!(r.result.exit_code, exit::ABORTED);
}

/// With --yes, the cancel goes out as soon as triage has answered, never before: every
/// cancel is answered after triage's reads (the log's order), and at least one latency
/// after the later of them, so each was sent after that answer had arrived.
#[tokio::test(flavor = "multi_thread")]
async fn with_yes_no_cancel_is_sent_before_triage_has_answered() {
    let latency = 150;
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::actions::builtin();
    let playbook = Playbook::parse(TRIAGE_THEN_CANCEL, "t.yaml", &registry).unwrap();
    let mut cfg = drill_cfg(dir.path(), latency);
    cfg.yes = true;
    let operator: Arc<dyn Operator> = Arc::new(Scripted::without_terminal());
    let r = session::run(&playbook, &registry, &cfg, operator, Interrupt::manual())
        .await
        .unwrap();
    assert_eq!(status_of(&r, "cancel-orders"), StepStatus::Ok);
    let log = sim_log(dir.path());
    let at = |e: &crate::sim::LogEntry| {
        chrono::DateTime::parse_from_rfc3339(&e.time)
            .unwrap()
            .timestamp_millis()
    };
    let triage: Vec<usize> = TRIAGE_PATHS
        .iter()
        .map(|p| log.iter().position(|e| e.path == *p).expect(p))
        .collect();
    let triage_last = *triage.iter().max().unwrap();
    let deletes: Vec<usize> = (0..log.len())
        .filter(|&i| log[i].method == "DELETE")
        .collect();
    assert!(!deletes.is_empty(), "the cancels went out");
    assert!(
        deletes.iter().all(|&i| i > triage_last),
        "a cancel answered before triage's reads: {log:?}"
    );
    let triage_answered = triage.iter().map(|&i| at(&log[i])).max().unwrap();
    for &i in &deletes {
        assert!(
            at(&log[i]) - triage_answered >= latency as i64,
            "a cancel sent before triage had answered: {:?} (triage answered at {triage_answered})",
            log[i]
        );
    }
}

// ── Evidence steps that run at once ────────────────────────────────────────────────

static PACED: ActionSpec = ActionSpec {
    name: "test.paced_read",
    description: "an evidence test action that takes its time and journals as it goes",
    kind: Kind::Evidence,
    inputs: &[],
    outputs: &[crate::engine::step::OutputSpec {
        name: "count",
        description: "1",
    }],
};

/// An evidence action that notes its start, waits, records evidence, and keeps when
/// each step ran.
struct Paced {
    sleep: Duration,
    spans: std::sync::Mutex<Vec<(String, std::time::Instant, std::time::Instant)>>,
}

impl Paced {
    fn new(sleep: Duration) -> Arc<Paced> {
        Arc::new(Paced {
            sleep,
            spans: Default::default(),
        })
    }
    fn span(&self, step: &str) -> (std::time::Instant, std::time::Instant) {
        let spans = self.spans.lock().unwrap();
        let (_, from, to) = spans.iter().find(|(s, _, _)| s == step).unwrap();
        (*from, *to)
    }
    fn runs(&self) -> usize {
        self.spans.lock().unwrap().len()
    }
}

impl Action for Paced {
    fn spec(&self) -> &'static ActionSpec {
        &PACED
    }
    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let from = std::time::Instant::now();
            ctx.note(crate::operator::Level::Info, format!("{} begins", ctx.step))?;
            tokio::time::sleep(self.sleep).await;
            ctx.evidence("paced", vec![serde_json::json!({ "step": ctx.step })])?;
            self.spans
                .lock()
                .unwrap()
                .push((ctx.step.clone(), from, std::time::Instant::now()));
            Ok(Outcome::ok("read").with("count", 1u64))
        })
    }
}

fn paced_harness(paced: &Arc<Paced>) -> Harness {
    let mut h = Harness::new();
    h.registry = h.registry.clone().with(paced.clone());
    h
}

/// The step each step-scoped event belongs to, in journal order, runs collapsed: a
/// step's events together give one entry.
fn step_blocks(ev: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in ev {
        let step = match e {
            Event::StepStarted { step, .. }
            | Event::StepFinished { step, .. }
            | Event::Evidence { step, .. }
            | Event::StepSkipped { step, .. } => Some(step.clone()),
            Event::Note { step, .. } => step.clone(),
            _ => None,
        };
        if let Some(step) = step {
            if out.last() != Some(&step) {
                out.push(step);
            }
        }
    }
    out
}

const THREE_READS: &str = "  - id: a\n    uses: test.paced_read\n  - id: b\n    uses: test.paced_read\n  - id: c\n    uses: test.paced_read\n";

#[tokio::test(flavor = "multi_thread")]
async fn independent_evidence_steps_run_at_once_and_journal_in_playbook_order() {
    let paced = Paced::new(Duration::from_millis(400));
    let h = paced_harness(&paced);
    let playbook = h.playbook(THREE_READS);
    let phases = crate::engine::overlap::phases(&playbook, &h.registry);
    assert_eq!(phases, vec![std::ops::Range { start: 0, end: 3 }]);
    let started = std::time::Instant::now();
    let r = h
        .run(&playbook, &h.cfg(), Arc::new(Scripted::without_terminal()))
        .await;
    assert_eq!(r.result.exit_code, exit::OK);
    assert!(
        started.elapsed() < Duration::from_millis(1100),
        "three 400 ms reads at once: {:?}",
        started.elapsed()
    );
    let (a, b, c) = (paced.span("a"), paced.span("b"), paced.span("c"));
    assert!(b.0 < a.1 && c.0 < a.1, "b and c start before a ends");
    // Each step's events stay together, in playbook order.
    let ev = events(&r.dir);
    assert_eq!(step_blocks(&ev), ["a", "b", "c"]);
    let evidence: Vec<&str> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Evidence { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(evidence, ["a", "b", "c"]);
    assert!(matches!(
        crate::report::verify::verify_dir(&r.dir).unwrap(),
        crate::report::verify::Verdict::Intact { .. }
    ));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.dir.join("report.json")).unwrap()).unwrap();
    let ids: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn steps_that_depend_on_each_other_or_change_things_do_not_overlap() {
    let paced = Paced::new(Duration::from_millis(200));
    let h = paced_harness(&paced);
    // b's condition names a: it waits for a, and c joins b. c2 (manual, and naming c),
    // d (destructive) and f (it may stop the run) stand alone; g and h run at once.
    let steps = "  - id: a\n    uses: test.paced_read\n  - id: b\n    uses: test.paced_read\n    when: ${{ steps.a.outputs.count > 0 }}\n  - id: c\n    uses: test.read\n  - id: c2\n    uses: manual\n    with: { instructions: 'b said ${{ steps.c.outputs.count }}' }\n  - id: d\n    uses: test.destroy\n  - id: f\n    uses: test.paced_read\n    on_failure: abort\n  - id: g\n    uses: test.paced_read\n  - id: h\n    uses: test.read\n";
    let playbook = h.playbook(steps);
    let phases = crate::engine::overlap::phases(&playbook, &h.registry);
    assert_eq!(phases, [0..1, 1..3, 3..4, 4..5, 5..6, 6..8]);
    let cfg = h.with_yes();
    let r = h
        .run(&playbook, &cfg, Arc::new(Scripted::without_terminal()))
        .await;
    assert_eq!(status_of(&r, "b"), StepStatus::Ok);
    let (a, b) = (paced.span("a"), paced.span("b"));
    assert!(b.0 >= a.1, "b starts after a ended");
    let (f, g) = (paced.span("f"), paced.span("g"));
    assert!(g.0 >= f.1, "g starts after f, which may stop the run");
    assert_eq!(
        step_blocks(&events(&r.dir)),
        ["a", "b", "c", "c2", "d", "f", "g", "h"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_after_an_interrupted_phase_runs_its_unfinished_steps_again() {
    // First session: a is quick, b, c and after are still reading when Ctrl-C comes.
    let slow = Paced::new(Duration::from_secs(30));
    let first = paced_harness(&slow);
    let steps = "  - id: a\n    uses: test.read\n  - id: b\n    uses: test.paced_read\n  - id: c\n    uses: test.paced_read\n  - id: after\n    uses: test.paced_read\n";
    let playbook = first.playbook(steps);
    let phases = crate::engine::overlap::phases(&playbook, &first.registry);
    assert_eq!(phases, vec![std::ops::Range { start: 0, end: 4 }]);
    let cfg = first.cfg();
    let mut r1 = first
        .run_signalled(
            &playbook,
            &cfg,
            Duration::from_millis(300),
            Signal::Interrupt,
        )
        .await;
    assert_eq!(r1.result.exit_code, exit::SIGINT);
    assert_eq!(status_of(&r1, "a"), StepStatus::Ok);
    assert_eq!(status_of(&r1, "b"), StepStatus::Interrupted);
    assert_eq!(status_of(&r1, "c"), StepStatus::Interrupted);
    let ev = events(&r1.dir);
    assert_eq!(step_blocks(&ev), ["a", "b", "c", "after"]);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Interrupted { step: Some(step), .. } if step == "b"
    )));

    // Second session: a is not read again; b and c are, and the run completes.
    let quick = Paced::new(Duration::from_millis(50));
    let second = paced_harness(&quick);
    let r2 = second
        .resume(&mut r1, &cfg, Arc::new(Scripted::without_terminal()))
        .await;
    assert_eq!(r2.result.exit_code, exit::OK);
    assert_eq!(quick.runs(), 3, "b, c and after again");
    assert_eq!(second.read.runs(), 0, "`a` finished before");
    assert!(matches!(
        crate::report::verify::verify_dir(&r2.dir).unwrap(),
        crate::report::verify::Verdict::Intact { .. }
    ));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r2.dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "completed");
    for step in report["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step}");
    }
    // Each step's evidence once, in playbook order.
    let evidence: Vec<String> = events(&r2.dir)
        .iter()
        .filter_map(|e| match e {
            Event::Evidence { step, table, .. } if table == "paced" => Some(step.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(evidence, ["b", "c", "after"]);
}

/// Which steps of the built-in playbook read at once (respond-engine `overlap.rs`); here, not
/// beside it, because it needs the built-in actions (the engine may not import them).
fn phase_ids(playbook: &Playbook, registry: &Registry) -> Vec<Vec<String>> {
    crate::engine::overlap::phases(playbook, registry)
        .into_iter()
        .map(|r| playbook.steps[r].iter().map(|s| s.id.clone()).collect())
        .collect()
}

#[test]
fn the_builtin_playbook_reads_its_independent_evidence_at_once() {
    let registry = crate::actions::builtin();
    let playbook = Playbook::builtin("compromised", &registry).unwrap();
    let phases = phase_ids(&playbook, &registry);
    let together: Vec<&Vec<String>> = phases.iter().filter(|p| p.len() > 1).collect();
    assert_eq!(
        together,
        [
            &vec!["key-owner".to_string(), "balances".into()],
            &vec![
                "trades".to_string(),
                "transfers".into(),
                "subaccount-transfers".into()
            ],
        ],
        "{phases:?}"
    );
    // Containment, the deletion and its proof, the deep scan (after the key is
    // dead), the manual steps and the report stand alone.
    for alone in [
        "triage",
        "cancel-orders",
        "delete-subaccount-key",
        "delete-key",
        "verify-revoked",
        "deep-scan",
        "report",
    ] {
        assert!(
            phases.contains(&vec![alone.to_string()]),
            "{alone}: {phases:?}"
        );
    }
}

/// In place of the probes' actions (same specs): notes, for each step it runs, whether
/// the session still held what it keeps for containment.
struct SeesHold {
    spec: &'static ActionSpec,
    seen: Arc<std::sync::Mutex<Vec<(String, bool)>>>,
}

impl Action for SeesHold {
    fn spec(&self) -> &'static ActionSpec {
        self.spec
    }
    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let held = ctx.run.services.holding_for_containment();
            self.seen.lock().unwrap().push((ctx.step.clone(), held));
            Ok(Outcome::ok("noted").with("count", 1u64))
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn freed_memory_is_kept_through_containment_and_given_back_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<std::sync::Mutex<Vec<(String, bool)>>> = Default::default();
    let registry = crate::actions::builtin()
        .with(Arc::new(SeesHold {
            spec: &READ,
            seen: seen.clone(),
        }))
        .with(Arc::new(SeesHold {
            spec: &DESTROY,
            seen: seen.clone(),
        }));
    let text = "version: 1\nname: t\nsteps:\n  - id: triage\n    uses: binance.key_permissions\n  - id: before\n    uses: test.read\n  - id: contain\n    uses: test.destroy\n  - id: after\n    uses: test.read\n";
    let playbook = Playbook::parse(text, "t.yaml", &registry).unwrap();
    let mut cfg = drill_cfg(dir.path(), 0);
    cfg.yes = true;
    let operator: Arc<dyn Operator> = Arc::new(Scripted::without_terminal());
    let r = session::run(&playbook, &registry, &cfg, operator, Interrupt::manual())
        .await
        .unwrap();
    assert_eq!(status_of(&r, "after"), StepStatus::Ok);
    // Held from the first request through the first destructive step, and given back
    // before the step after it starts.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("before".to_string(), true),
            ("contain".to_string(), true),
            ("after".to_string(), false),
        ]
    );
}
