//! One run of a playbook, end to end: resolve inputs, create the incident folder and
//! journal, set up the operator and services, walk the steps, render the report.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::policy::{Policy, Question};
use super::step::{Registry, RunShared};
use super::{Engine, Interrupt, Resumed, RunResult, Services};
use crate::engine::config::{RunConfig, Target};
use crate::error::{exit, Error};
use crate::exchange::{
    Client, ClientConfig, Endpoints, RequestObserver, RequestSummary, WaitReason,
};
use crate::operator::{self, Level, NonInteractive, Operator, Terminal};
use crate::playbook::{InputType, Playbook};
use crate::report::journal::{
    self, Event, Journal, Record, RecordedTarget, RunOutcome, StepStatus,
};
use crate::report::lock::{self, Holder, IncidentLock, LockError};
use crate::report::sign::OperatorKey;
use crate::report::verify::{self, Verdict};
use crate::report::{self, files};
use crate::secret::{self, ApiKey, Credentials, Role};

/// Inputs as recorded: every declared input with its value (given, else default).
/// `since` inputs are fixed to an RFC 3339 instant so a resumed run uses the same window.
pub fn resolve_inputs(
    playbook: &Playbook,
    given: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (name, _) in given {
        if playbook.input(name).is_none() {
            let declared: Vec<&str> = playbook.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::usage_hint(
                format!("playbook `{}` has no input `{name}`", playbook.name),
                if declared.is_empty() {
                    "this playbook takes no inputs".to_string()
                } else {
                    format!("its inputs are: {}", declared.join(", "))
                },
            ));
        }
    }
    for def in &playbook.inputs {
        let value = given
            .iter()
            .rev()
            .find(|(n, _)| *n == def.name)
            .map(|(_, v)| v.clone());
        let Some(value) = value.or_else(|| def.default.clone()) else {
            if def.required {
                return Err(Error::usage_hint(
                    format!("playbook `{}` needs input `{}`", playbook.name, def.name),
                    format!("add --input {}=VALUE ({})", def.name, def.ty.as_str()),
                ));
            }
            continue;
        };
        let bad = |e: String| Error::usage(format!("input `{}`: {e}", def.name));
        let value = match def.ty {
            InputType::Since => crate::playbook::parse_since(&value, now)
                .map_err(bad)?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            InputType::File => {
                if !value.is_empty() {
                    std::fs::metadata(&value)
                        .map_err(|e| bad(format!("cannot read file `{value}`: {e}")))?;
                }
                value
            }
            ty => {
                crate::playbook::load_check_input(ty, &value).map_err(bad)?;
                value
            }
        };
        out.insert(def.name.clone(), value);
    }
    Ok(out)
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Production => "Binance production".into(),
        Target::Testnet => "Binance testnet".into(),
        Target::BaseUrl(url) => url.clone(),
        Target::TestnetAt(url) => format!("{url} (testnet: no /sapi)"),
        Target::Drill { scenario } => match scenario {
            Some(path) => format!("simulator (scenario {})", path.display()),
            None => "simulator (built-in scenario leaked-key)".into(),
        },
    }
}

/// The target as the journal records it: what `resume` goes back to.
fn recorded_target(target: &Target) -> RecordedTarget {
    match target {
        Target::Production => RecordedTarget::Production,
        Target::Testnet => RecordedTarget::Testnet,
        Target::BaseUrl(url) => RecordedTarget::BaseUrl { url: url.clone() },
        Target::TestnetAt(url) => RecordedTarget::TestnetAt { url: url.clone() },
        Target::Drill { scenario } => RecordedTarget::Drill {
            // Absolute, so a resume from another folder finds the same scenario.
            scenario: scenario.as_ref().map(|path| {
                std::fs::canonicalize(path)
                    .or_else(|_| std::path::absolute(path))
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string()
            }),
        },
    }
}

fn target_of(recorded: &RecordedTarget) -> Target {
    match recorded {
        RecordedTarget::Production => Target::Production,
        RecordedTarget::Testnet => Target::Testnet,
        RecordedTarget::BaseUrl { url } => Target::BaseUrl(url.clone()),
        RecordedTarget::TestnetAt { url } => Target::TestnetAt(url.clone()),
        RecordedTarget::Drill { scenario } => Target::Drill {
            scenario: scenario.as_ref().map(PathBuf::from),
        },
    }
}

/// Where an incident's requests go now: the target of its latest session that recorded
/// one (a `--new-base-url` resume moves it), else the words of `run_started`, which is all
/// that journals from before `target_spec` have.
fn incident_target(records: &[&Record]) -> Option<RecordedTarget> {
    let latest = records.iter().rev().find_map(|r| match &r.event {
        Event::RunResumed {
            target_spec: Some(spec),
            ..
        } => Some(spec.clone()),
        _ => None,
    });
    latest.or_else(|| match records.first().map(|r| &r.event) {
        Some(Event::RunStarted {
            target_spec: Some(spec),
            ..
        }) => Some(spec.clone()),
        Some(Event::RunStarted { target, .. }) => target_from_words(target),
        _ => None,
    })
}

/// The inverse of `target_name`, for journals that recorded only the words.
fn target_from_words(words: &str) -> Option<RecordedTarget> {
    match words {
        "Binance production" => Some(RecordedTarget::Production),
        "Binance testnet" => Some(RecordedTarget::Testnet),
        "simulator (built-in scenario leaked-key)" => {
            Some(RecordedTarget::Drill { scenario: None })
        }
        _ => {
            if let Some(path) = words
                .strip_prefix("simulator (scenario ")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                Some(RecordedTarget::Drill {
                    scenario: Some(path.to_string()),
                })
            } else if let Some(url) = words.strip_suffix(" (testnet: no /sapi)") {
                Some(RecordedTarget::TestnetAt {
                    url: url.to_string(),
                })
            } else if words.starts_with("http://") || words.starts_with("https://") {
                Some(RecordedTarget::BaseUrl {
                    url: words.to_string(),
                })
            } else {
                None
            }
        }
    }
}

/// The target a resumed incident continues on, and the base URL it moved from when
/// `--new-base-url` moved it. The journal decides: without target flags the incident goes
/// on where it started; flags that name another target are a usage error naming both.
fn resume_target(
    dir: &Path,
    recorded: &RecordedTarget,
    cfg: &RunConfig,
) -> Result<(Target, Option<String>), Error> {
    let was = target_name(&target_of(recorded));
    if let Some(new) = &cfg.new_base_url {
        let (RecordedTarget::BaseUrl { url } | RecordedTarget::TestnetAt { url }) = recorded else {
            return Err(Error::usage_hint(
                format!(
                    "--new-base-url moves an incident that ran against a base URL; {} ran against {was}",
                    dir.display()
                ),
                format!("resume it without --new-base-url to continue on {was}"),
            ));
        };
        if !same_host(url, new) {
            return Err(Error::usage_hint(
                format!(
                    "--new-base-url {new} is not the same server as {url}, which {} ran against",
                    dir.display()
                ),
                "only the port may differ (a simulator restarted on another port); an incident stays on the exchange it started on",
            ));
        }
        let moved = (new != url).then(|| url.clone());
        let target = match recorded {
            RecordedTarget::TestnetAt { .. } => Target::TestnetAt(new.clone()),
            _ => Target::BaseUrl(new.clone()),
        };
        return Ok((target, moved));
    }
    if !cfg.target_explicit {
        return Ok((target_of(recorded), None));
    }
    let given = recorded_target(&cfg.target);
    let same = match (&given, recorded) {
        // `--drill` alone continues the recorded scenario.
        (RecordedTarget::Drill { scenario: None }, RecordedTarget::Drill { .. }) => true,
        (given, recorded) => given == recorded,
    };
    if same {
        return Ok((target_of(recorded), None));
    }
    Err(Error::usage_hint(
        format!(
            "{} ran against {was}; this command would continue it against {}",
            dir.display(),
            target_name(&target_of(&given))
        ),
        format!(
            "an incident stays on the exchange it started on: run `respond resume {}` without --base-url, --testnet or --drill to continue on {was}; if its simulator restarted on another port, add --new-base-url URL",
            dir.display()
        ),
    ))
}

/// Same scheme, host and path: only the port may differ.
fn same_host(recorded: &str, new: &str) -> bool {
    match (reqwest::Url::parse(recorded), reqwest::Url::parse(new)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
        }
        _ => false,
    }
}

/// The leaked key an incident was started with: a resume must be given the same one.
pub struct ExpectedKey {
    pub masked: String,
    pub fingerprint: Option<String>,
}

impl ExpectedKey {
    fn is(&self, key: &ApiKey) -> bool {
        match self
            .fingerprint
            .as_deref()
            .and_then(|fp| key.matches_fingerprint(fp))
        {
            Some(same) => same,
            None => key.masked() == self.masked,
        }
    }
}

fn check_key(
    dir: Option<&Path>,
    leaked: &Credentials,
    expected: &ExpectedKey,
) -> Result<(), Error> {
    if expected.is(&leaked.key) {
        return Ok(());
    }
    let given = leaked.key.masked();
    let which = if given == expected.masked {
        format!("another key that also masks as {given}")
    } else {
        given
    };
    let incident = dir
        .map(|d| format!(" ({})", d.display()))
        .unwrap_or_default();
    Err(Error::usage_hint(
        format!(
            "the key given is {which}, but this incident{incident} is about {}",
            expected.masked
        ),
        "give the leaked key the incident started with (BINANCE_API_KEY and BINANCE_API_SECRET, or --key-file); another key is another incident: start it with `respond compromised`",
    ))
}

/// The masked keys a run uses, for the journal and templates.
#[derive(Default)]
pub struct Keys {
    pub leaked: Option<String>,
    pub responder: Option<String>,
    /// The leaked key's keyed fingerprint, for `run_started`.
    pub fingerprint: Option<String>,
}

/// Journals every request the exchange client makes, tagged with its step, as the
/// answer arrives. Attached to the journal once it exists (the clock is synced first).
#[derive(Default)]
pub struct JournalObserver {
    journal: std::sync::OnceLock<Journal>,
    operator: std::sync::OnceLock<Arc<dyn Operator>>,
    /// Whether the journal is attached, and the requests answered before it was (the
    /// clock check and the warm-up reads beside it), recorded when it is.
    pending: std::sync::Mutex<(bool, Vec<Event>)>,
    /// Per API family, until when the operator was last told the run is waiting, so
    /// many held-back requests make one notice, not one each.
    told_until: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Per API family, until when a countdown for a long wait is on screen, so the
    /// requests sitting out the same 429 or ban make one countdown.
    counting_until: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
    /// Holds a request of a step that waits for the steps before it to be journaled.
    pub sequence: Arc<super::sequence::Sequencer>,
}

impl JournalObserver {
    /// Record from now on, starting with what was answered before (call it once the
    /// session's opening record is written, so that record stays the first).
    fn attach(&self, journal: Journal, operator: Arc<dyn Operator>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let _ = journal.record_all(std::mem::take(&mut pending.1));
        pending.0 = true;
        let _ = self.journal.set(journal);
        let _ = self.operator.set(operator);
    }
}

impl RequestObserver for JournalObserver {
    fn on_request(&self, s: &RequestSummary) {
        let mut event = Event::Request {
            step: s.tag.clone(),
            method: s.method.to_string(),
            path: s.path.to_string(),
            query: s.query_without_signature.clone(),
            status: s.status,
            code: s.code,
            weight: s.used_weight,
            elapsed_ms: s.elapsed_ms,
            attempt: s.attempt,
            error: s.error.clone(),
            sent_at: None,
        };
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if !pending.0 {
                if let Event::Request { sent_at, .. } = &mut event {
                    let sent = Utc::now() - chrono::Duration::milliseconds(s.elapsed_ms as i64);
                    *sent_at = Some(sent.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                }
                pending.1.push(event);
                return;
            }
        }
        if let Some(journal) = self.journal.get() {
            self.sequence.record_or_mark(journal, event);
        }
    }

    /// Say what the run waits for (nothing a network call does may leave the operator
    /// without feedback), once per wait and family.
    fn on_wait(&self, wait: &crate::exchange::Wait) {
        let family = format!("{:?}", wait.family).to_lowercase();
        let until = std::time::Instant::now() + wait.duration;
        {
            let mut told = self.told_until.lock().unwrap_or_else(|p| p.into_inner());
            if told
                .get(&family)
                .is_some_and(|t| *t + std::time::Duration::from_secs(1) >= until)
            {
                return;
            }
            told.insert(family.clone(), until);
        }
        let why = match wait.reason {
            WaitReason::Budget => "the request-weight budget for this window is spent (respond paces itself rather than be refused)".to_string(),
            reason => format!("{} until {}", limit_words(reason, wait.family), utc(wait.until)),
        };
        let message = format!(
            "waiting {}s before more /{family} requests ({}): {why}; the run goes on by itself",
            wait.duration.as_secs_f32().ceil(),
            wait.path
        );
        if let Some(operator) = self.operator.get() {
            operator.say(Level::Info, &message);
        }
        if let Some(journal) = self.journal.get() {
            journal.record_or_mark(Event::Note {
                step: None,
                level: "info".into(),
                message,
            });
        }
    }

    /// An evidence read sits out a 429 or a ban longer than the client's limit: say so
    /// (what, which pool, until when, in UTC), journal it, and keep a countdown on
    /// screen until the wait ends or the run is interrupted (the guard is dropped).
    fn on_long_wait(&self, wait: &crate::exchange::Wait) -> Box<dyn Send> {
        let family = format!("{:?}", wait.family).to_lowercase();
        let pool = pool_words(wait.family);
        {
            let mut counting = self
                .counting_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if counting
                .get(pool)
                .is_some_and(|t| *t + chrono::Duration::seconds(1) >= wait.until)
            {
                return Box::new(());
            }
            counting.insert(pool.to_string(), wait.until);
        }
        let what = limit_words(wait.reason, wait.family);
        let until = utc(wait.until);
        let message = format!(
            "waiting {} until {until} for evidence from /{family} ({}): {what}; evidence reads wait for it to end, the run goes on by itself (Ctrl-C stops it; `respond resume` finishes the incident later)",
            duration_words(wait.duration),
            wait.path
        );
        let journal = self.journal.get().cloned();
        if let Some(journal) = &journal {
            journal.record_or_mark(Event::Note {
                step: None,
                level: "warn".into(),
                message: message.clone(),
            });
        }
        let end = WaitEnd {
            journal,
            what: format!("the {} on {pool}", wait_reason_short(wait.reason)),
            started: std::time::Instant::now(),
            length: wait.duration,
        };
        let Some(operator) = self.operator.get() else {
            return Box::new(Countdown {
                ticker: None,
                progress: None,
                end,
            });
        };
        operator.say(Level::Warn, &message);
        let short = wait_reason_short(wait.reason);
        let label = move |left: std::time::Duration| {
            format!(
                "waiting for the {short} on {pool} to end at {until}: {} left",
                duration_words(left)
            )
        };
        let progress = operator.progress(&label(wait.duration), None);
        let deadline = std::time::Instant::now() + wait.duration;
        let ticker = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let progress = progress.clone();
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    progress.set_message(label(left));
                    if left.is_zero() {
                        break;
                    }
                }
            })
        });
        Box::new(Countdown {
            ticker,
            progress: Some(progress),
            end,
        })
    }
}

/// A long wait's countdown on screen; gone when dropped, and its end journaled.
struct Countdown {
    ticker: Option<tokio::task::JoinHandle<()>>,
    progress: Option<operator::Progress>,
    end: WaitEnd,
}

impl Drop for Countdown {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        if let Some(progress) = &self.progress {
            progress.finish_and_clear();
        }
        self.end.record();
    }
}

/// What the journal says when a long wait is over: that it ended, after how long, or
/// that it was cut short (Ctrl-C, the step's timeout).
struct WaitEnd {
    journal: Option<Journal>,
    what: String,
    started: std::time::Instant,
    length: std::time::Duration,
}

impl WaitEnd {
    fn record(&self) {
        let Some(journal) = &self.journal else {
            return;
        };
        let waited = self.started.elapsed();
        // The client wakes a hair after the end it was given.
        let message = if waited + std::time::Duration::from_millis(500) >= self.length {
            format!(
                "the wait for {} is over after {}; evidence reads go on",
                self.what,
                duration_words(waited)
            )
        } else {
            format!(
                "the wait for {} was cut short after {} of {}",
                self.what,
                duration_words(waited),
                duration_words(self.length)
            )
        };
        journal.record_or_mark(Event::Note {
            step: None,
            level: "info".into(),
            message,
        });
    }
}

/// What holds a pool back, in words.
fn limit_words(reason: WaitReason, family: crate::exchange::Family) -> String {
    let pool = pool_words(family);
    match reason {
        WaitReason::Budget => "the request-weight budget for this window is spent".into(),
        WaitReason::RateLimited => {
            format!("Binance answered 429 (too many requests) on {pool} and asked to wait")
        }
        WaitReason::Banned => format!("Binance has banned this IP on {pool} (HTTP 418)"),
    }
}

/// The weight pool a family counts against, as the operator reads it: `/fapi` and
/// `/dapi` are one pool, and a ban on one is a ban on both.
fn pool_words(family: crate::exchange::Family) -> &'static str {
    use crate::exchange::Family;
    match family.pool() {
        Family::Api => "/api",
        Family::Sapi => "/sapi",
        Family::Fapi | Family::Dapi => "/fapi + /dapi",
    }
}

fn wait_reason_short(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::Budget => "weight budget",
        WaitReason::RateLimited => "429 rate limit",
        WaitReason::Banned => "418 IP ban",
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `1h 02m 03s`, `2m 05s`, `7s`.
fn duration_words(d: std::time::Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() > 0);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// Build the exchange clients a playbook needs: credentials, endpoints, dry-run, and
/// the server clock — measured before any folder is created, so an unreachable
/// exchange is exit 3 with nothing left behind.
pub async fn connect(
    playbook: &Playbook,
    cfg: &RunConfig,
    observer: Arc<JournalObserver>,
    before_sending: impl FnOnce(Option<&Credentials>) -> Result<(), Error>,
    warm_up: Option<&Registry>,
    person: bool,
) -> Result<(Services, Keys), Error> {
    let needs_exchange = playbook
        .steps
        .iter()
        .any(|s| s.uses.starts_with("binance."));
    if !needs_exchange {
        before_sending(None)?;
        return Ok((Services::default(), Keys::default()));
    }
    let (endpoints, leaked, responder, drill) = match &cfg.target {
        Target::Drill { scenario } => {
            // The responder key reads evidence once the leaked key is deleted, which only
            // a manual step (or a step acting as the responder) leads to.
            let with_responder = playbook
                .steps
                .iter()
                .any(|s| s.uses == "manual" || s.role == Role::Responder);
            let drill =
                crate::engine::drill::start(scenario.as_deref(), cfg, with_responder).await?;
            let endpoints = Endpoints::single(&drill.url);
            (
                endpoints,
                Some(drill.leaked.clone()),
                drill.responder.clone(),
                Some(drill),
            )
        }
        target => {
            let endpoints = match target {
                Target::Production => Endpoints::production(),
                Target::Testnet => Endpoints::testnet(),
                Target::BaseUrl(url) => Endpoints::single(url),
                Target::TestnetAt(url) => Endpoints {
                    sapi: None,
                    ..Endpoints::single(url)
                },
                Target::Drill { .. } => unreachable!("handled above"),
            };
            let Some(leaked) = secret::load(Role::Leaked, cfg.key_file.as_deref(), true, person)?
            else {
                return Err(Error::usage_hint(
                    "no credentials for the leaked key",
                    "set BINANCE_API_KEY and BINANCE_API_SECRET, give --key-file FILE, or run in a terminal to be asked; to rehearse without a key, use --drill",
                ));
            };
            let responder = secret::load(
                Role::Responder,
                cfg.responder_key_file.as_deref(),
                false,
                person,
            )?;
            (endpoints, Some(leaked), responder, None)
        }
    };
    // The caller's last word on the credentials (the key a resumed incident is about;
    // no other process handling this key), before anything is sent.
    before_sending(leaked.as_ref())?;
    let fingerprint = leaked.as_ref().map(|c| c.key.fingerprint());
    let mut config = ClientConfig::new(endpoints);
    config.credentials = leaked;
    config.recv_window_ms = cfg.recv_window_ms;
    config.dry_run = cfg.dry_run;
    config.concurrency = cfg.concurrency;
    config.weight_window = cfg.weight_window;
    config.weight_limit = cfg.weight_limit;
    config.timeout = cfg.request_timeout;
    config.retry.max_rate_limit_wait = cfg.max_rate_limit_wait;
    config.observer = Some(observer);
    let client = Client::new(config)?;
    // The first reads go out with the clock check, not after it: they are signed with
    // this machine's clock (a -1021 resyncs and retries once).
    let warm = warm_up
        .map(|registry| {
            client.sign_with_local_clock_until_synced();
            start_warm_ups(playbook, registry, &client)
        })
        .unwrap_or_default();
    if let Err(e) = client.sync_time().await {
        for handle in warm.values() {
            handle.abort();
        }
        return Err(e.into());
    }
    let responder_client = responder.map(|r| client.with_credentials(Some(r)));
    let keys = Keys {
        leaked: client.key_masked(),
        responder: responder_client.as_ref().and_then(|c| c.key_masked()),
        fingerprint,
    };
    let services = Services {
        leaked: Some(client),
        responder: responder_client,
        drill: drill.map(|d| d as Arc<dyn crate::engine::DrillControl>),
        leaked_dead: Default::default(),
        warm: std::sync::Mutex::new(warm),
    };
    Ok((services, keys))
}

/// Start the warm-up reads of the run's first steps (up to the first manual step, the
/// leaked key's only): triage's reads and the open-order listing go out at once, beside
/// the clock check, on a read-only handle. Whatever a step then does not take is
/// dropped with the run.
fn start_warm_ups(
    playbook: &Playbook,
    registry: &Registry,
    client: &Client,
) -> HashMap<String, tokio::task::JoinHandle<super::step::Warm>> {
    let mut warm = HashMap::new();
    for step in playbook.steps.iter().take_while(|s| s.uses != "manual") {
        if step.role != Role::Leaked {
            continue;
        }
        let Some(action) = registry.get(&step.uses) else {
            continue;
        };
        if let Some(reads) = action.warm_up(&client.tagged(&step.id).read_only(), step) {
            warm.insert(step.id.clone(), tokio::spawn(reads));
        }
    }
    warm
}

/// What a finished session leaves behind.
#[derive(Debug)]
pub struct SessionResult {
    pub dir: PathBuf,
    pub result: RunResult,
    /// The incident's lock, held until the caller has rendered the report for the last
    /// time and drops this.
    pub lock: Option<IncidentLock>,
}

/// The operator to use: the terminal when one is attached, else the non-interactive one.
pub fn default_operator(cfg: &RunConfig) -> Arc<dyn Operator> {
    if operator::terminal_attached() {
        Arc::new(Terminal::new(cfg.verbose, cfg.quiet))
    } else {
        Arc::new(NonInteractive::new(cfg.verbose, cfg.quiet))
    }
}

/// Run a playbook from start to end and render its report.
pub async fn run(
    playbook: &Playbook,
    registry: &Registry,
    cfg: &RunConfig,
    operator: Arc<dyn Operator>,
    interrupt: Interrupt,
) -> Result<SessionResult, Error> {
    let started_at = Utc::now();
    let inputs = resolve_inputs(playbook, &cfg.inputs, started_at)?;
    let signer = signer(cfg)?;
    let observer = Arc::new(JournalObserver::default());
    // Another respond process handling an incident of this key right now: say who and
    // start nothing (before anything is sent), unless a separate incident was asked for.
    let mut found = None;
    let look_for_previous = !cfg.drill() && !cfg.new_incident;
    let (services, keys) = connect(
        playbook,
        cfg,
        observer.clone(),
        |leaked| {
            let Some(leaked) = leaked.filter(|_| look_for_previous) else {
                return Ok(());
            };
            match unfinished_incident(&cfg.report_dir, &playbook.name, &leaked.key, cfg.dry_run) {
                Some(Unfinished::Held { dir, holder }) => Err(Error::Busy {
                    dir,
                    holder: holder.map(Box::new),
                    new_incident_hint: true,
                }),
                other => {
                    found = other;
                    Ok(())
                }
            }
        },
        Some(registry),
        policy(cfg, operator.as_ref()).asks(Question::Secret),
    )
    .await?;
    let key_masked = keys.leaked.clone();
    let target_spec = recorded_target(&cfg.target);

    // An unfinished incident of the same key and playbook that nobody is handling: offer
    // to continue it rather than start over (without a terminal, start a new one and say
    // so). Only one on this same exchange: an incident stays on its own target.
    if let Some(Unfinished::Free {
        dir: previous,
        target: its_target,
    }) = found
    {
        if its_target.as_ref() != Some(&target_spec) {
            let elsewhere = its_target
                .map(|t| target_name(&target_of(&t)))
                .unwrap_or_else(|| "an exchange it does not name".into());
            operator.say(Level::Warn, &format!(
                "an unfinished incident of this key is in {}, against {elsewhere}, not {}: starting a new one here (continue the old one with `respond resume {}`, which goes back to {elsewhere})",
                previous.display(), target_name(&cfg.target), previous.display()
            ));
        } else {
            let question = format!(
                "An unfinished incident of this key is in {}. Resume it instead of starting a new one?",
                previous.display()
            );
            let resume_it = if policy(cfg, operator.as_ref()).asks(Question::Resume) {
                let prompt = crate::operator::Prompt {
                    kind: crate::operator::PromptKind::Question,
                    step: "resume",
                    title: "Unfinished incident",
                    body: "",
                    question: &question,
                    default_yes: false,
                };
                let op = operator.clone();
                tokio::task::block_in_place(|| op.ask(&prompt)) == crate::operator::Answer::Yes
            } else {
                operator.say(Level::Warn, &format!("an unfinished incident of this key is in {}; starting a new one (continue the old one with `respond resume {}`)", previous.display(), previous.display()));
                false
            };
            if resume_it {
                drop(services);
                return resume(&previous, registry, cfg, operator, interrupt).await;
            }
        }
    }

    let mut name = format!("{}-{}", started_at.format("%Y%m%dT%H%M%SZ"), playbook.name);
    if cfg.drill() {
        name.push_str("-drill");
    }
    if cfg.dry_run {
        name.push_str("-dry-run");
    }
    let dir = files::create_incident_dir(&cfg.report_dir, &name)
        .map_err(|e| Error::io("cannot create the incident folder in", &cfg.report_dir, e))?;
    // This process is the incident's one writer for as long as it lives.
    let who = operator::who(cfg.operator.as_deref());
    let lock = take_lock(&dir, &who, &playbook.name)?;
    let copy = dir.join(report::PLAYBOOK_COPY);
    files::write_atomic(&copy, playbook.text.as_bytes())
        .map_err(|e| Error::io("cannot write", &copy, e))?;
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let journal = Journal::create(
        &journal_path,
        journal::genesis_hash(&playbook.text, &inputs),
    )?;
    wire_journal(&journal, cfg, &services);
    journal.record(Event::RunStarted {
        playbook: playbook.name.clone(),
        origin: playbook.origin.clone(),
        playbook_sha256: journal::sha256_hex(playbook.text.as_bytes()),
        inputs: inputs.clone(),
        dry_run: cfg.dry_run,
        drill: cfg.drill(),
        yes: cfg.yes,
        target: target_name(&cfg.target),
        key: key_masked.clone(),
        responder_key: keys.responder.clone(),
        signing_key: signer.as_ref().map(|k| k.public()),
        target_spec: Some(target_spec),
        key_fingerprint: keys.fingerprint.clone(),
        operator: who.clone(),
        respond_version: env!("CARGO_PKG_VERSION").to_string(),
    })?;
    // Requests answered before the journal existed follow its opening record.
    observer.attach(journal.clone(), operator.clone());

    let shared = shared(
        cfg,
        journal,
        operator,
        dir,
        started_at,
        key_masked,
        &who,
        services,
        Default::default(),
        observer.sequence.clone(),
    );
    let mut session = walk(
        playbook,
        registry,
        cfg,
        shared,
        inputs,
        who,
        interrupt,
        HashMap::new(),
        "started",
        signer,
    )
    .await?;
    session.lock = Some(lock);
    Ok(session)
}

/// Take the incident's lock for this process, or say who holds it (exit 4).
fn take_lock(dir: &Path, who: &str, command: &str) -> Result<IncidentLock, Error> {
    IncidentLock::acquire(dir, &Holder::me(who, command)).map_err(|e| match e {
        LockError::Held(holder) => Error::Busy {
            dir: dir.to_path_buf(),
            holder: holder.map(Box::new),
            new_incident_hint: false,
        },
        LockError::Io(e) => Error::io("cannot lock the incident folder", dir, e),
    })
}

/// Continue an interrupted incident in its own folder: the chain is checked first, the
/// playbook comes from the folder, finished steps are not run again, and new events
/// are appended to the same journal.
pub async fn resume(
    dir: &Path,
    registry: &Registry,
    cfg: &RunConfig,
    operator: Arc<dyn Operator>,
    interrupt: Interrupt,
) -> Result<SessionResult, Error> {
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let who = operator::who(cfg.operator.as_deref());
    if !journal_path.is_file() {
        // A run that has just taken its folder holds the lock a moment before its
        // journal exists: that is a busy incident, not a wrong folder.
        if dir.join(lock::LOCK_FILE).is_file() {
            drop(take_lock(dir, &who, "resume")?);
        }
        return Err(Error::usage_hint(
            format!(
                "{} is not an incident folder: it has no {}",
                dir.display(),
                journal::JOURNAL_FILE
            ),
            "give the folder a run printed, e.g. incidents/20261124T031502Z-compromised",
        ));
    }
    // One writer per incident: nothing is read, repaired, appended or sent while
    // another process holds it.
    let lock = take_lock(dir, &who, "resume")?;
    match verify::verify_dir(dir).map_err(Error::Internal)? {
        Verdict::Altered { line, reason } => {
            return Err(Error::Tampered {
                dir: dir.to_path_buf(),
                line,
                reason,
            });
        }
        Verdict::Intact { .. } => {}
    }
    let read =
        journal::read(&journal_path).map_err(|e| Error::io("cannot read", &journal_path, e))?;
    if read.torn_tail.is_some() {
        // The torn bytes were never part of the record; cut them so appends stay whole lines.
        let keep: usize = read.lines.iter().map(|l| l.text.len() + 1).sum();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&journal_path)
            .map_err(|e| Error::io("cannot open", &journal_path, e))?;
        file.set_len(keep as u64)
            .map_err(|e| Error::io("cannot repair", &journal_path, e))?;
    }
    let records: Vec<&Record> = read.records().collect();
    let Some(Event::RunStarted {
        inputs,
        dry_run,
        key,
        key_fingerprint,
        ..
    }) = records.first().map(|r| &r.event)
    else {
        return Err(Error::Internal("journal has no run_started record".into()));
    };
    if *dry_run != cfg.dry_run {
        let (was, flag) = if *dry_run {
            ("a dry run", "with --dry-run")
        } else {
            ("a live run", "without --dry-run")
        };
        return Err(Error::usage_hint(
            format!("{} was {was}", dir.display()),
            format!("resume it {flag}, the way it started"),
        ));
    }
    // The incident goes on against the exchange it started on, whatever the defaults.
    let Some(recorded) = incident_target(&records) else {
        return Err(Error::Internal(format!(
            "{} does not record which exchange it ran against",
            journal_path.display()
        )));
    };
    let (target, moved_from) = resume_target(dir, &recorded, cfg)?;
    let cfg = &RunConfig {
        target,
        ..cfg.clone()
    };
    let expected = key.as_ref().map(|masked| ExpectedKey {
        masked: masked.clone(),
        fingerprint: key_fingerprint.clone(),
    });
    let text = std::fs::read_to_string(dir.join(report::PLAYBOOK_COPY))
        .map_err(|e| Error::io("cannot read", dir.join(report::PLAYBOOK_COPY), e))?;
    let playbook = Playbook::parse(
        &text,
        &dir.join(report::PLAYBOOK_COPY).display().to_string(),
        registry,
    )
    .map_err(Error::Invalid)?;
    let signer = signer(cfg)?;
    let finished = finished_steps(&records);
    let state = super::step::RunState::from_records(&records);
    let inputs = inputs.clone();
    let observer = Arc::new(JournalObserver::default());
    let (services, keys) = connect(
        &playbook,
        cfg,
        observer.clone(),
        |leaked| match (&expected, leaked) {
            (Some(expected), Some(leaked)) => check_key(Some(dir), leaked, expected),
            _ => Ok(()),
        },
        None,
        policy(cfg, operator.as_ref()).asks(Question::Secret),
    )
    .await?;
    // Dead at triage, or proven dead after the deletion: reads after the resume use the
    // responder key from the start (a deep scan would otherwise spend a request per
    // symbol learning it again).
    let proven_dead = state
        .outputs_by_action
        .get("binance.verify_revoked")
        .and_then(|o| o.get("verdict"))
        .and_then(|v| v.as_str())
        .is_some_and(|v| v == "dead");
    if proven_dead
        || state
            .outputs_by_action
            .get("binance.key_permissions")
            .and_then(|o| o.get("live"))
            == Some(&serde_json::Value::Bool(false))
    {
        services
            .leaked_dead
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    let last = read.lines.last().expect("verified: at least one line");
    let journal = Journal::append_to(&journal_path, records.len() as u64, &last.text)?;
    wire_journal(&journal, cfg, &services);
    // A session that ended without recording how (killed, crashed, power lost) is
    // recorded as interrupted now, so the report tells the whole story.
    let unclean = records
        .iter()
        .rev()
        .find(|r| {
            matches!(
                r.event,
                Event::RunStarted { .. } | Event::RunResumed { .. } | Event::RunFinished { .. }
            )
        })
        .is_some_and(|r| !matches!(r.event, Event::RunFinished { .. }));
    if unclean {
        let step = records.iter().rev().find_map(|r| match &r.event {
            Event::StepStarted { step, .. } => Some(step.clone()),
            _ => None,
        });
        journal
            .record(Event::Interrupted { signal: "unrecorded (the process ended without recording why: killed, crashed or lost power)".into(), step })
            ?;
    }
    journal.record(Event::RunResumed {
        operator: who.clone(),
        dry_run: cfg.dry_run,
        yes: cfg.yes,
        respond_version: env!("CARGO_PKG_VERSION").to_string(),
        signing_key: signer.as_ref().map(|k| k.public()),
        target: Some(target_name(&cfg.target)),
        target_spec: Some(recorded_target(&cfg.target)),
        moved_from: moved_from.clone(),
    })?;
    observer.attach(journal.clone(), operator.clone());
    if let Some(from) = &moved_from {
        operator.say(
            Level::Warn,
            &format!(
                "this incident ran against {from}; it goes on against {} (--new-base-url), as the journal now records",
                target_name(&cfg.target)
            ),
        );
    }
    let shared = shared(
        cfg,
        journal,
        operator,
        dir.to_path_buf(),
        Utc::now(),
        keys.leaked,
        &who,
        services,
        state,
        observer.sequence.clone(),
    );
    let mut session = walk(
        &playbook, registry, cfg, shared, inputs, who, interrupt, finished, "resumed", signer,
    )
    .await?;
    session.lock = Some(lock);
    Ok(session)
}

/// What `respond compromised` finds of an earlier incident of the same key.
enum Unfinished {
    /// Another process is handling it right now.
    Held {
        dir: PathBuf,
        holder: Option<Holder>,
    },
    /// Nobody is, and its last session did not finish: it can be resumed.
    Free {
        dir: PathBuf,
        target: Option<RecordedTarget>,
    },
}

/// Incidents under `base` of this playbook and key (newest first): one that another
/// process holds, else the newest whose journal does not end with a finished run.
fn unfinished_incident(
    base: &Path,
    playbook: &str,
    key: &ApiKey,
    dry_run: bool,
) -> Option<Unfinished> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut free = None;
    for dir in dirs.into_iter().rev() {
        let Ok(read) = journal::read(&dir.join(journal::JOURNAL_FILE)) else {
            continue;
        };
        let records: Vec<&Record> = read.records().collect();
        let same = matches!(
            records.first().map(|r| &r.event),
            Some(Event::RunStarted { playbook: p, key: Some(k), key_fingerprint: fp, dry_run: d, drill: false, .. })
                if p == playbook && *d == dry_run
                    && ExpectedKey { masked: k.clone(), fingerprint: fp.clone() }.is(key)
        );
        if !same {
            continue;
        }
        if let Some(holder) = lock::held_by(&dir) {
            return Some(Unfinished::Held { dir, holder });
        }
        let finished = records
            .iter()
            .rev()
            .find(|r| {
                matches!(
                    r.event,
                    Event::RunStarted { .. } | Event::RunResumed { .. } | Event::RunFinished { .. }
                )
            })
            .is_some_and(|r| match &r.event {
                Event::RunFinished { outcome, .. } => *outcome != RunOutcome::Interrupted,
                _ => false,
            });
        if !finished && free.is_none() {
            free = Some(Unfinished::Free {
                target: incident_target(&records),
                dir,
            });
        }
    }
    free
}

/// The operator key, when the run is to be signed: loaded (or created) before anything
/// else, so a key problem stops the run before it starts.
fn signer(cfg: &RunConfig) -> Result<Option<OperatorKey>, Error> {
    if !cfg.sign {
        return Ok(None);
    }
    OperatorKey::load_or_create()
        .map(Some)
        .map_err(|e| Error::usage(e.to_string()))
}

/// What an earlier session finished, read from its journal.
pub fn finished_steps(records: &[&Record]) -> HashMap<String, Resumed> {
    let mut out: HashMap<String, Resumed> = HashMap::new();
    let mut ended_failed: Option<String> = None;
    for r in records {
        match &r.event {
            Event::StepStarted { step, .. } => {
                let entry = out.entry(step.clone()).or_default();
                entry.started = true;
                entry.status = None;
            }
            Event::Answer { step, answer, .. } if answer == "done" || answer == "yes" => {
                out.entry(step.clone()).or_default().confirmed = true;
            }
            Event::Request {
                step: Some(step),
                method,
                status,
                ..
            } if method != "GET" => {
                let entry = out.entry(step.clone()).or_default();
                entry.mutations_sent += 1;
                if status.is_some_and(|s| s < 300) {
                    entry.mutations_acknowledged += 1;
                }
            }
            Event::StepSkipped { step, .. } => {
                let entry = out.entry(step.clone()).or_default();
                entry.status = Some(StepStatus::Skipped);
            }
            Event::StepFinished {
                step,
                status,
                outputs,
                ..
            } => {
                let entry = out.entry(step.clone()).or_default();
                entry.status = Some(*status);
                entry.outputs = outputs.clone();
                ended_failed = (*status == StepStatus::Failed).then(|| step.clone());
            }
            Event::RunFinished { outcome, .. } if *outcome != RunOutcome::Failed => {
                ended_failed = None
            }
            _ => {}
        }
    }
    // The step a run stopped on is done again; a failure the run went past is final.
    if let Some(step) = ended_failed {
        if let Some(entry) = out.get_mut(&step) {
            entry.status = None;
        }
    }
    out
}

/// Connect the journal to `--json` output, the request observer and the exchange's
/// clock.
fn wire_journal(journal: &Journal, cfg: &RunConfig, services: &Services) {
    if cfg.json {
        journal.add_listener(json_lines());
    }
    if let Some(client) = services.leaked.clone() {
        journal.set_server_clock(Box::new(move || client.time_offset_ms()));
    }
}

/// Who decides what in this run: the one place `--yes`, the terminal and the drill's
/// autopilot are read.
pub fn policy(cfg: &RunConfig, operator: &dyn Operator) -> Policy {
    Policy {
        yes: cfg.yes,
        terminal: operator.interactive(),
        autopilot: cfg.drill() && cfg.yes,
    }
}

/// What every step of this session shares.
#[allow(clippy::too_many_arguments)]
fn shared(
    cfg: &RunConfig,
    journal: Journal,
    operator: Arc<dyn Operator>,
    incident_dir: PathBuf,
    started_at: DateTime<Utc>,
    key_masked: Option<String>,
    who: &str,
    services: Services,
    state: super::step::RunState,
    sequence: Arc<super::sequence::Sequencer>,
) -> Arc<RunShared> {
    Arc::new(RunShared {
        dry_run: cfg.dry_run,
        drill: cfg.drill(),
        policy: policy(cfg, operator.as_ref()),
        journal,
        operator,
        incident_dir,
        started_at,
        key_masked,
        who: who.to_string(),
        services,
        state: std::sync::Mutex::new(state),
        background: Default::default(),
        ending: tokio::sync::watch::channel(false).0,
        previous: cfg.previous.clone(),
        sequence,
    })
}

/// Turn each journal record into a JSON line on stdout (`--json`).
fn json_lines() -> journal::Listener {
    Box::new(|record| {
        use std::io::Write;
        let line = serde_json::to_string(record).expect("records serialise");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
}

#[allow(clippy::too_many_arguments)]
async fn walk(
    playbook: &Playbook,
    registry: &Registry,
    cfg: &RunConfig,
    shared: Arc<RunShared>,
    inputs: BTreeMap<String, String>,
    who: String,
    interrupt: Interrupt,
    earlier: HashMap<String, Resumed>,
    verb: &str,
    signer: Option<OperatorKey>,
) -> Result<SessionResult, Error> {
    let dir = shared.incident_dir.clone();
    let operator = shared.operator.clone();
    let mut banner = format!(
        "respond: {} — incident {verb} in {}",
        playbook.title.as_deref().unwrap_or(&playbook.name),
        dir.display()
    );
    if cfg.drill() {
        banner.push_str("  [DRILL]");
    }
    if cfg.dry_run {
        banner.push_str("  [DRY RUN: nothing that changes state will be sent]");
    }
    operator.say(Level::Heading, &banner);

    let engine =
        Engine::new(playbook, registry, shared, inputs, who, interrupt).with_earlier(earlier);
    let outcome = engine.run().await;
    // Whatever happened, the report is rendered from what the journal holds.
    let rendered = report::render_dir(&dir);
    let result = outcome?;
    let report = rendered?;
    closing_summary(operator.as_ref(), &dir, &result, &report);
    if let Some(key) = signer {
        match key.sign(&dir, &report.chain_head, report.events) {
            Ok(file) => operator.say(
                Level::Info,
                &format!("signed by {} ({})", file.public_key, key.path.display()),
            ),
            Err(e) => operator.say(Level::Warn, &format!("not signed: {e}")),
        }
    }
    Ok(SessionResult {
        dir,
        result,
        lock: None,
    })
}

fn closing_summary(
    operator: &dyn Operator,
    dir: &std::path::Path,
    result: &RunResult,
    report: &report::Report,
) {
    let level = match result.exit_code {
        exit::OK => Level::Success,
        _ => Level::Warn,
    };
    operator.say(Level::Heading, "\n── Summary");
    operator.say(
        level,
        &format!(
            "outcome: {} (exit code {})",
            report.outcome, result.exit_code
        ),
    );
    if !report.findings.is_empty() {
        operator.say(
            Level::Info,
            &format!(
                "severity: {}; {} finding(s)",
                report.severity,
                report.findings.len()
            ),
        );
    }
    for step in &report.pending {
        operator.say(
            Level::Warn,
            &format!("still to do: {} ({})", step.title, step.id),
        );
    }
    if report.outcome == RunOutcome::Interrupted {
        operator.say(
            Level::Warn,
            &format!(
                "resume with: {}",
                report.resume_command_in(&dir.display().to_string())
            ),
        );
    }
    operator.say(
        Level::Info,
        &format!(
            "report: {} (for a browser: {})",
            dir.join(report::REPORT_MD).display(),
            dir.join(report::REPORT_HTML).display()
        ),
    );
    operator.say(
        Level::Info,
        &format!(
            "fingerprint: {}",
            &report.chain_head[..report.chain_head.len().min(16)]
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Family;

    #[test]
    fn long_waits_read_as_a_pool_and_a_countdown() {
        let d = std::time::Duration::from_millis;
        assert_eq!(duration_words(d(2_100)), "3s");
        assert_eq!(duration_words(d(125_000)), "2m 05s");
        assert_eq!(duration_words(d(3_723_000)), "1h 02m 03s");
        assert_eq!(pool_words(Family::Dapi), pool_words(Family::Fapi));
        assert_eq!(
            limit_words(WaitReason::Banned, Family::Dapi),
            "Binance has banned this IP on /fapi + /dapi (HTTP 418)"
        );
    }
}
