//! The server: binds 127.0.0.1, runs every Binance request through one pipeline
//! (faults → weight → key and signature → handler → log), serves the `/sim/` control API,
//! and offers the in-process accessors drills and tests use.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::{check_timestamp, split_signature, well_formed_key};
use super::endpoints::{self, Need, Security};
use super::faults::Faults;
use super::handlers::{Ctx, Limits, Rendered};
use super::log::{Actor, LogEntry, RequestLog};
use super::params::Params;
use super::rate_limit::{retry_after_secs, FamilyLimiter, Verdict};
use super::scenario::Scenario;
use super::state::{DeletedKey, Key, KeyPair, State, StateSummary};
use super::types::{rfc3339_ms, system_now_ms, ApiError, Family};
use super::{attacker, control, SimError};

mod delay;
mod net;
mod pipeline;

use pipeline::handle;

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub scenario: Scenario,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub faults: Faults,
    /// Rate-limit window (Binance: one minute; tests shorten it).
    pub weight_window: Duration,
    /// Also append the request log to this file as JSON lines.
    pub request_log: Option<PathBuf>,
    /// The address outside callers are taken to come from, for IP whitelists (default:
    /// the scenario's `client_ip`, else the real peer address).
    pub client_ip: Option<IpAddr>,
    /// Serve like Binance's testnets: no `/sapi` at all.
    pub testnet: bool,
}

impl SimConfig {
    /// Defaults: free port, no faults, a one-minute window, no log file.
    pub fn new(scenario: Scenario) -> SimConfig {
        SimConfig {
            client_ip: scenario.client_ip,
            scenario,
            port: 0,
            faults: Faults::default(),
            weight_window: Duration::from_secs(60),
            request_log: None,
            testnet: false,
        }
    }

    /// The built-in `leaked-key` scenario with defaults.
    pub fn builtin() -> SimConfig {
        SimConfig::new(Scenario::builtin_leaked_key())
    }
}

/// State shared by every request.
pub(super) struct Shared {
    pub state: Mutex<State>,
    limiters: Mutex<HashMap<Family, FamilyLimiter>>,
    pub faults: Mutex<Faults>,
    pub initial_faults: Faults,
    pub rng: Mutex<fastrand::Rng>,
    pub log: RequestLog,
    /// The `latency` fault's waits.
    pub delays: delay::Delays,
    window: Duration,
    pub shutdown: watch::Receiver<bool>,
    client_ip: Option<IpAddr>,
    testnet: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole exchange down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn rng_for(faults: &Faults) -> fastrand::Rng {
    match faults.seed {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    }
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Replace the faults; a new seed restarts the random sequence.
    pub fn set_faults(&self, faults: Faults) {
        let reseed = faults.seed != lock(&self.faults).seed;
        if reseed {
            *lock(&self.rng) = rng_for(&faults);
        }
        *lock(&self.faults) = faults;
    }

    /// The server clock in ms: the real clock plus the `clock-skew` fault.
    pub fn now_ms(&self) -> i64 {
        system_now_ms() + lock(&self.faults).clock_skew_ms
    }

    fn limit(&self, family: Family, uid: bool) -> u32 {
        let base = lock(&self.faults)
            .weight_limit
            .unwrap_or_else(|| family.default_weight_limit());
        // /sapi UID weight has 15x the room of its IP weight (180,000 vs 12,000).
        if uid {
            base.saturating_mul(15)
        } else {
            base
        }
    }

    /// Record one answered request; `time` is now (when the answer is sent).
    pub fn push_log(
        &self,
        actor: Actor,
        method: &str,
        path: &str,
        query: String,
        outcome: Outcome,
    ) {
        self.log.push(LogEntry {
            time: rfc3339_ms(system_now_ms()),
            actor,
            method: method.to_string(),
            path: path.to_string(),
            query,
            status: outcome.status,
            code: outcome.code,
            weight: outcome.weight,
        });
    }

    pub fn new_seed(&self) -> u64 {
        lock(&self.rng).u64(..)
    }
}

/// How a request ended, for the log.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome {
    pub status: u16,
    pub code: Option<i64>,
    pub weight: u32,
}

/// Stops a running simulator; cheap to clone and hand to a signal handler or a drill.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Ask the server to stop: it closes the listener, lets answers in flight finish,
    /// and stops the attacker.
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// A running simulated exchange.
pub struct SimServer {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: ShutdownHandle,
    task: Option<JoinHandle<()>>,
    /// The simulator's own runtime, when it has one ([`SimServer::start_apart`]).
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").field("url", &self.url).finish()
    }
}

impl SimServer {
    /// [`SimServer::start`] on a runtime of the simulator's own, with two threads: the
    /// way an exchange answers apart from its client. In a drill the client's runtime
    /// may block a thread for a moment (an fsync of its journal, a burst of answers to
    /// read); an exchange keeps accepting and answering meanwhile, and so does this.
    /// Two, because an exchange answers requests side by side: with one, the listings
    /// waited behind triage's answers, and a burst of cancels behind its own accepts.
    pub async fn start_apart(config: SimConfig) -> Result<SimServer, SimError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("respond-sim")
            .enable_all()
            .build()
            .map_err(|e| SimError::Runtime(format!("cannot start the simulator's runtime: {e}")))?;
        let mut server = runtime
            .spawn(SimServer::start(config))
            .await
            .expect("the simulator's start does not panic")?;
        server.runtime = Some(runtime);
        Ok(server)
    }

    /// Bind 127.0.0.1 and start serving (and the scenario's attacker, if any).
    pub async fn start(config: SimConfig) -> Result<SimServer, SimError> {
        let log = RequestLog::new(config.request_log.as_deref())?;
        let start_ms = system_now_ms() + config.faults.clock_skew_ms;
        let state = State::new(&config.scenario, start_ms);
        let listener = net::listen(config.port).map_err(|source| SimError::Bind {
            port: config.port,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: config.port,
            source,
        })?;
        let (tx, rx) = watch::channel(false);
        // One limiter per pool: `/fapi` and `/dapi` share theirs.
        let limiters = Family::ALL
            .iter()
            .filter(|f| f.pool() == **f)
            .map(|f| (*f, FamilyLimiter::new(config.weight_window)))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            limiters: Mutex::new(limiters),
            rng: Mutex::new(rng_for(&config.faults)),
            faults: Mutex::new(config.faults.clone()),
            initial_faults: config.faults.clone(),
            log,
            delays: delay::Delays::default(),
            window: config.weight_window,
            shutdown: rx.clone(),
            client_ip: config.client_ip,
            testnet: config.testnet,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(net::serve(listener, app, rx.clone()));
        if let Some(plan) = config.scenario.attacker.clone() {
            tokio::spawn(attacker::run(shared.clone(), plan, rx));
        }
        Ok(SimServer {
            url: format!("http://{addr}"),
            addr,
            shared,
            stop: ShutdownHandle(Arc::new(tx)),
            task: Some(task),
            runtime: None,
        })
    }

    /// `http://127.0.0.1:PORT`: the base URL for every family.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Stop and wait (at most two seconds) for answers in flight.
    pub async fn shutdown(mut self) {
        self.stop.shutdown();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Every request answered so far (client, attacker and control), oldest first.
    pub fn request_log(&self) -> Vec<LogEntry> {
        self.shared.log.snapshot()
    }

    /// Open orders per market and symbol, and the keys (never secrets).
    pub fn state_summary(&self) -> StateSummary {
        self.shared.state().summary()
    }

    /// Delete exactly the key with this label or api key.
    pub fn delete_key(&self, label_or_api_key: &str) -> Result<DeletedKey, SimError> {
        self.shared.state().delete_key(label_or_api_key, false)
    }

    /// The drill's "delete the key": honours `drill.deletion: wrong-key`, where another
    /// key is deleted and the named one stays alive. The answer says which was deleted.
    pub fn drill_delete_key(&self, label_or_api_key: &str) -> Result<DeletedKey, SimError> {
        self.shared.state().delete_key(label_or_api_key, true)
    }

    /// A new read-only key for pulling evidence after the leaked key is gone.
    pub fn create_responder_key(&self) -> KeyPair {
        let seed = self.shared.new_seed();
        let now = self.shared.now_ms();
        self.shared.state().create_responder(seed, now)
    }

    /// A new responder key of `kind` (a drill on a scenario with sub-accounts gets a
    /// master key that may delete their keys).
    pub fn create_responder_key_of(&self, kind: crate::ResponderKind) -> KeyPair {
        let seed = self.shared.new_seed();
        let now = self.shared.now_ms();
        self.shared.state().create_responder_on(seed, now, kind)
    }

    /// The key the scenario treats as leaked (`attacker.key`, else the first key).
    pub fn leaked_key(&self) -> KeyPair {
        self.shared.state().leaked_key()
    }

    /// The leaked key's private key (PEM), for an Ed25519 or RSA scenario key.
    pub fn leaked_private_key(&self) -> Option<String> {
        self.shared.state().leaked_private_key()
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Change faults while running (e.g. start failing half the requests mid-test).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop.shutdown();
        // Dropping a runtime blocks, which an async caller may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
