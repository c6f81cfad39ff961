//! One run of a playbook, end to end: resolve inputs, create the incident folder and
//! journal, set up the operator and services, walk the steps, render the report.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::engine::config::{RunConfig, Target};
use crate::engine::policy::{Policy, Question};
use crate::engine::step::{Registry, RunShared};
use crate::engine::{Engine, Interrupt, Resumed, RunResult, Services};
use crate::error::{exit, Error};
use crate::exchange::{
    Client, ClientConfig, Endpoints, RequestObserver, RequestSummary, WaitReason,
};
use crate::operator::{self, Level, NonInteractive, Operator, Terminal};
use crate::playbook::{InputType, Playbook};
use crate::report::journal::{
    self, Answered, Event, Journal, Record, RecordedTarget, RunOutcome, StepStatus,
};
use crate::report::lock::{self, Holder, IncidentLock, LockError};
use crate::report::sign::OperatorKey;
use crate::report::verify::{self, Verdict};
use crate::report::{self, files};
use crate::secret::{self, ApiKey, Credentials, Role};

mod drill;
mod observer;
mod target;

pub use observer::JournalObserver;
use target::{incident_target, recorded_target, resume_target, target_name, target_of};

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
    let (endpoints, leaked, responder, drill) = credentials(playbook, cfg, person).await?;
    // From the first request until containment is over, freed memory is reused rather
    // than handed back and faulted in again (a drill's scenario, built above, is not kept).
    let held = crate::memory::keep_freed_pages();
    // The caller's last word on the credentials (the key a resumed incident is about;
    // no other process handling this key), before anything is sent.
    before_sending(leaked.as_ref())?;
    let fingerprint = leaked.as_ref().map(|c| c.key.fingerprint());
    let client = Client::new(client_config(cfg, endpoints, leaked, observer))?;
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
        held_for_containment: std::sync::Mutex::new(Some(Box::new(held))),
    };
    Ok((services, keys))
}

/// The endpoints, the leaked and responder keys, and the drill's simulator if any.
type Reached = (
    Endpoints,
    Option<Credentials>,
    Option<Credentials>,
    Option<Arc<drill::Drill>>,
);

/// Where the run's requests go and with which keys: a drill's simulator and its keys,
/// or the target's endpoints and the credentials `secret::load` finds.
async fn credentials(playbook: &Playbook, cfg: &RunConfig, person: bool) -> Result<Reached, Error> {
    Ok(match &cfg.target {
        Target::Drill { scenario } => {
            // The responder key reads evidence once the leaked key is deleted, which only
            // a manual step (or a step acting as the responder) leads to.
            let with_responder = playbook
                .steps
                .iter()
                .any(|s| s.uses == "manual" || s.role == Role::Responder);
            let drill = drill::start(scenario.as_deref(), cfg, with_responder).await?;
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
    })
}

/// The client's settings from the command line.
fn client_config(
    cfg: &RunConfig,
    endpoints: Endpoints,
    leaked: Option<Credentials>,
    observer: Arc<JournalObserver>,
) -> ClientConfig {
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
    // The drill's simulator is known to speak HTTP/2 (cleartext): a burst of cancels
    // then shares one connection, as it does with an exchange that offers HTTP/2 over TLS.
    config.http2_prior_knowledge = cfg.drill();
    config
}

/// Start the warm-up reads of the run's first steps (up to the first manual step, the
/// leaked key's only): triage's reads and the open-order listing go out at once, beside
/// the clock check, on a read-only handle. Whatever a step then does not take is
/// dropped with the run.
fn start_warm_ups(
    playbook: &Playbook,
    registry: &Registry,
    client: &Client,
) -> HashMap<String, tokio::task::JoinHandle<crate::engine::step::Warm>> {
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
    let (services, keys, found) =
        connect_new(playbook, registry, cfg, operator.as_ref(), observer.clone()).await?;
    let target_spec = recorded_target(&cfg.target);

    // An unfinished incident of the same key and playbook that nobody is handling: offer
    // to continue it rather than start over (without a terminal, start a new one and say
    // so). Only one on this same exchange: an incident stays on its own target.
    if let Some(Unfinished::Free {
        dir: previous,
        target: its_target,
    }) = found
    {
        if resume_instead(cfg, operator.as_ref(), &previous, its_target, &target_spec) {
            drop(services);
            return resume(&previous, registry, cfg, operator, interrupt).await;
        }
    }

    let opened = open_incident(
        playbook,
        cfg,
        started_at,
        &inputs,
        &services,
        &keys,
        signer.as_ref(),
        target_spec,
    )?;
    let new = NewIncident {
        started_at,
        inputs,
        signer,
        observer,
        services,
        key_masked: keys.leaked,
    };
    walk_new(playbook, registry, cfg, operator, interrupt, opened, new).await
}

/// Connect for a new incident. Another respond process handling an incident of this key
/// right now is refused before anything is sent (unless a separate incident was asked
/// for); an unfinished one nobody holds comes back as the third value.
async fn connect_new(
    playbook: &Playbook,
    registry: &Registry,
    cfg: &RunConfig,
    operator: &dyn Operator,
    observer: Arc<JournalObserver>,
) -> Result<(Services, Keys, Option<Unfinished>), Error> {
    let mut found = None;
    let (services, keys) = connect(
        playbook,
        cfg,
        observer,
        |leaked| look_for_previous(cfg, &playbook.name, leaked, &mut found),
        Some(registry),
        policy(cfg, operator).asks(Question::Secret),
    )
    .await?;
    Ok((services, keys, found))
}

/// What a new incident carries from its start to its walk through the steps.
struct NewIncident {
    started_at: DateTime<Utc>,
    inputs: BTreeMap<String, String>,
    signer: Option<OperatorKey>,
    observer: Arc<JournalObserver>,
    services: Services,
    key_masked: Option<String>,
}

/// Walk the steps of a new incident whose folder and journal are open, and keep its lock
/// in the result.
async fn walk_new(
    playbook: &Playbook,
    registry: &Registry,
    cfg: &RunConfig,
    operator: Arc<dyn Operator>,
    interrupt: Interrupt,
    (dir, lock, journal, who): (PathBuf, IncidentLock, Journal, String),
    new: NewIncident,
) -> Result<SessionResult, Error> {
    // Requests answered before the journal existed follow its opening record.
    new.observer.attach(journal.clone(), operator.clone());
    let shared = shared(
        cfg,
        journal,
        operator,
        dir,
        new.started_at,
        new.key_masked,
        &who,
        new.services,
        Default::default(),
        new.observer.sequence.clone(),
    );
    let mut session = walk(
        playbook,
        registry,
        cfg,
        shared,
        new.inputs,
        who,
        interrupt,
        HashMap::new(),
        "started",
        new.signer,
    )
    .await?;
    session.lock = Some(lock);
    Ok(session)
}

/// An earlier incident of the leaked key and this playbook: one another process holds is
/// refused (exit 4), an unfinished one nobody holds goes to `found`. Not looked for in a
/// drill, nor when a separate incident was asked for.
fn look_for_previous(
    cfg: &RunConfig,
    playbook: &str,
    leaked: Option<&Credentials>,
    found: &mut Option<Unfinished>,
) -> Result<(), Error> {
    let Some(leaked) = leaked.filter(|_| !cfg.drill() && !cfg.new_incident) else {
        return Ok(());
    };
    match unfinished_incident(&cfg.report_dir, playbook, &leaked.key, cfg.dry_run) {
        Some(Unfinished::Held { dir, holder }) => Err(Error::Busy {
            dir,
            holder: holder.map(Box::new),
            new_incident_hint: true,
        }),
        other => {
            *found = other;
            Ok(())
        }
    }
}

/// Whether to continue the unfinished incident in `previous` rather than start a new
/// one: asked when the policy lets a person answer, else a new one is started and the
/// operator told. An incident of another exchange is never continued here.
fn resume_instead(
    cfg: &RunConfig,
    operator: &dyn Operator,
    previous: &Path,
    its_target: Option<RecordedTarget>,
    target_spec: &RecordedTarget,
) -> bool {
    if its_target.as_ref() != Some(target_spec) {
        let elsewhere = its_target
            .map(|t| target_name(&target_of(&t)))
            .unwrap_or_else(|| "an exchange it does not name".into());
        operator.say(Level::Warn, &format!(
                "an unfinished incident of this key is in {}, against {elsewhere}, not {}: starting a new one here (continue the old one with `respond resume {}`, which goes back to {elsewhere})",
                previous.display(), target_name(&cfg.target), previous.display()
            ));
        false
    } else {
        let question = format!(
            "An unfinished incident of this key is in {}. Resume it instead of starting a new one?",
            previous.display()
        );
        if policy(cfg, operator).asks(Question::Resume) {
            let prompt = crate::operator::Prompt {
                kind: crate::operator::PromptKind::Question,
                step: "resume",
                title: "Unfinished incident",
                body: "",
                question: &question,
                default_yes: false,
            };
            tokio::task::block_in_place(|| operator.ask(&prompt)) == crate::operator::Answer::Yes
        } else {
            operator.say(Level::Warn, &format!("an unfinished incident of this key is in {}; starting a new one (continue the old one with `respond resume {}`)", previous.display(), previous.display()));
            false
        }
    }
}

/// A new incident: its folder, its lock, the playbook's copy, and a journal opened with
/// `run_started`. Returns the folder, the lock, the journal and who runs it.
#[allow(clippy::too_many_arguments)]
fn open_incident(
    playbook: &Playbook,
    cfg: &RunConfig,
    started_at: DateTime<Utc>,
    inputs: &BTreeMap<String, String>,
    services: &Services,
    keys: &Keys,
    signer: Option<&OperatorKey>,
    target_spec: RecordedTarget,
) -> Result<(PathBuf, IncidentLock, Journal, String), Error> {
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
    let journal = Journal::create(&journal_path, journal::genesis_hash(&playbook.text, inputs))?;
    wire_journal(&journal, cfg, services);
    journal.record(Event::RunStarted {
        playbook: playbook.name.clone(),
        origin: playbook.origin.clone(),
        playbook_sha256: journal::sha256_hex(playbook.text.as_bytes()),
        inputs: inputs.clone(),
        dry_run: cfg.dry_run,
        drill: cfg.drill(),
        yes: cfg.yes,
        target: target_name(&cfg.target),
        key: keys.leaked.clone(),
        responder_key: keys.responder.clone(),
        signing_key: signer.map(|k| k.public()),
        target_spec: Some(target_spec),
        key_fingerprint: keys.fingerprint.clone(),
        operator: who.clone(),
        respond_version: env!("CARGO_PKG_VERSION").to_string(),
    })?;
    Ok((dir, lock, journal, who))
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
    let (lock, read) = open_for_resume(dir, &journal_path, &who)?;
    let records: Vec<&Record> = read.records().collect();
    let Started {
        inputs,
        expected,
        target,
        moved_from,
    } = started(dir, &records, cfg)?;
    let cfg = &RunConfig {
        target,
        ..cfg.clone()
    };
    let playbook = playbook_copy(dir, registry)?;
    let signer = signer(cfg)?;
    let finished = finished_steps(&records);
    let state = crate::engine::step::RunState::from_records(&records);
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
    if known_dead(&state) {
        services
            .leaked_dead
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    let last = read.lines.last().expect("verified: at least one line");
    let journal = Journal::append_to(&journal_path, records.len() as u64, &last.text)?;
    wire_journal(&journal, cfg, &services);
    record_unclean_end(&journal, &records)?;
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
    say_moved(operator.as_ref(), moved_from.as_deref(), cfg);
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

/// The playbook as the incident folder keeps it.
fn playbook_copy(dir: &Path, registry: &Registry) -> Result<Playbook, Error> {
    let path = dir.join(report::PLAYBOOK_COPY);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    Playbook::parse(&text, &path.display().to_string(), registry).map_err(Error::Invalid)
}

/// An incident moved with `--new-base-url`: said once the journal records it.
fn say_moved(operator: &dyn Operator, moved_from: Option<&str>, cfg: &RunConfig) {
    if let Some(from) = moved_from {
        operator.say(
            Level::Warn,
            &format!(
                "this incident ran against {from}; it goes on against {} (--new-base-url), as the journal now records",
                target_name(&cfg.target)
            ),
        );
    }
}

/// How a resumed incident started, as its journal recorded it.
struct Started {
    inputs: BTreeMap<String, String>,
    /// The key it is about, when it names one.
    expected: Option<ExpectedKey>,
    /// The exchange it goes on against.
    target: Target,
    /// The exchange it ran against before `--new-base-url`, when moved.
    moved_from: Option<String>,
}

/// The incident's `run_started`: the same dry-run-ness as this command, and the exchange
/// it goes on against (its own, whatever the defaults, unless moved).
fn started(dir: &Path, records: &[&Record], cfg: &RunConfig) -> Result<Started, Error> {
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
    let Some(recorded) = incident_target(records) else {
        return Err(Error::Internal(format!(
            "{} does not record which exchange it ran against",
            dir.join(journal::JOURNAL_FILE).display()
        )));
    };
    let (target, moved_from) = resume_target(dir, &recorded, cfg)?;
    Ok(Started {
        inputs: inputs.clone(),
        expected: key.as_ref().map(|masked| ExpectedKey {
            masked: masked.clone(),
            fingerprint: key_fingerprint.clone(),
        }),
        target,
        moved_from,
    })
}

/// The incident folder taken for a resume: its lock held, its chain verified, a torn
/// last line cut. Returns the lock and the journal as read.
fn open_for_resume(
    dir: &Path,
    journal_path: &Path,
    who: &str,
) -> Result<(IncidentLock, journal::ReadJournal), Error> {
    if !journal_path.is_file() {
        // A run that has just taken its folder holds the lock a moment before its
        // journal exists: that is a busy incident, not a wrong folder.
        if dir.join(lock::LOCK_FILE).is_file() {
            drop(take_lock(dir, who, "resume")?);
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
    let lock = take_lock(dir, who, "resume")?;
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
        journal::read(journal_path).map_err(|e| Error::io("cannot read", journal_path, e))?;
    if read.torn_tail.is_some() {
        // The torn bytes were never part of the record; cut them so appends stay whole lines.
        let keep: usize = read.lines.iter().map(|l| l.text.len() + 1).sum();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(journal_path)
            .map_err(|e| Error::io("cannot open", journal_path, e))?;
        file.set_len(keep as u64)
            .map_err(|e| Error::io("cannot repair", journal_path, e))?;
    }
    Ok((lock, read))
}

/// Dead at triage, or proven dead after the deletion: reads after the resume use the
/// responder key from the start (a deep scan would otherwise spend a request per symbol
/// learning it again).
fn known_dead(state: &crate::engine::step::RunState) -> bool {
    let proven_dead = state
        .outputs_by_action
        .get("binance.verify_revoked")
        .and_then(|o| o.get("verdict"))
        .and_then(|v| v.as_str())
        .is_some_and(|v| v == "dead");
    proven_dead
        || state
            .outputs_by_action
            .get("binance.key_permissions")
            .and_then(|o| o.get("live"))
            == Some(&serde_json::Value::Bool(false))
}

/// A session that ended without recording how (killed, crashed, power lost) is recorded
/// as interrupted now, so the report tells the whole story.
fn record_unclean_end(journal: &Journal, records: &[&Record]) -> Result<(), Error> {
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
    Ok(())
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
            Event::Answer {
                step,
                answer: Answered::Done | Answered::Yes,
                ..
            } => {
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
    state: crate::engine::step::RunState,
    sequence: Arc<crate::engine::sequence::Sequencer>,
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
