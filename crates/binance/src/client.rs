//! The client and its one request function. Everything that touches the wire happens
//! in [`Client::execute`]: dry-run refusal, the concurrency gate, the weight budget,
//! signing, sending, error mapping, the observer, and the retry decision.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::budget::{BudgetConfig, Budgets, Reserve, UsedWeight};
use super::clock::Clock;
use super::error::{self, Answer, Redactor};
use super::gate::{Gate, Slot};
use super::signing::{self, Params};
use super::weights::{self, Spec};
use super::{
    Endpoints, ExchangeError, Family, HttpMethod, RequestObserver, RequestSummary, Wait, WaitReason,
};
use crate::credentials::Credentials;

/// Idle connections kept per host (in a drill, every family is one host).
const IDLE_CONNECTIONS: usize = 8;

/// Evidence pulls in flight at once, by default, however high `concurrency` is: enough
/// to fill the weight budget, few enough that their answers do not pile up in memory.
/// The rest of `concurrency` is for cancels, which go out all at once, one per symbol
/// and book (hundreds on a big account).
pub const NORMAL_CONCURRENCY_MAX: usize = 32;

/// How failed attempts are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (the -1021 resync retry comes on top).
    pub max_attempts: u32,
    /// First backoff delay after a 5xx, timeout or connection failure; doubles each time,
    /// with jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Containment (urgent requests, mutations) fails on a 429 asking to wait longer
    /// than this; an evidence read waits it out, with a countdown (see `hold`).
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_secs(90),
        }
    }
}

/// Everything a client is built from. `ClientConfig::new(endpoints)` gives the defaults.
#[derive(Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// Needed for signed endpoints; public market data works without.
    pub credentials: Option<Credentials>,
    /// Binance's `recvWindow` (at most 60,000). Default 5,000.
    pub recv_window_ms: u64,
    /// Refuse every non-GET request, in the one request function.
    pub dry_run: bool,
    /// Requests in flight at once, shared by clones. 1 is the serial baseline.
    pub concurrency: usize,
    /// Of those, normal-priority ones (evidence pulls) at most; the rest are kept for
    /// urgent ones (cancels, liveness probes). Default: a quarter of `concurrency`, at
    /// most [`NORMAL_CONCURRENCY_MAX`].
    pub normal_concurrency: Option<usize>,
    /// Length of the rate-limit window (Binance: one minute; tests use seconds).
    pub weight_window: Duration,
    /// Overrides the IP weight limit of every family (default: Binance's published ones).
    pub weight_limit: Option<u32>,
    /// Percent of each limit reserved for urgent requests. Default 20.
    pub urgent_headroom_percent: u32,
    /// Per-attempt timeout. Default 10 s.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Told about every attempt (the journal).
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// Containment's requests speak HTTP/2 from the first byte, for a server known to
    /// (the built-in simulator in a drill): a burst of cancels shares one connection
    /// instead of opening one each. Over TLS, HTTP/2 is offered for them anyway and used
    /// where the exchange accepts it; over plain `http://`, an unknown server is spoken
    /// to in HTTP/1.1. Evidence reads always use HTTP/1.1. Default false.
    pub http2_prior_knowledge: bool,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints) -> ClientConfig {
        ClientConfig {
            endpoints,
            credentials: None,
            recv_window_ms: 5_000,
            dry_run: false,
            concurrency: 8,
            normal_concurrency: None,
            weight_window: Duration::from_secs(60),
            weight_limit: None,
            urgent_headroom_percent: 20,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            observer: None,
            http2_prior_knowledge: false,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoints", &self.endpoints)
            .field("credentials", &self.credentials)
            .field("recv_window_ms", &self.recv_window_ms)
            .field("dry_run", &self.dry_run)
            .field("concurrency", &self.concurrency)
            .field("normal_concurrency", &self.normal_concurrency)
            .field("weight_window", &self.weight_window)
            .field("weight_limit", &self.weight_limit)
            .field("urgent_headroom_percent", &self.urgent_headroom_percent)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("observer", &self.observer.as_ref().map(|_| "set"))
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .finish()
    }
}

/// Waits at least this long are reported to the observer (see `RequestObserver::on_wait`).
const NOTICEABLE_WAIT: Duration = Duration::from_secs(2);

/// A Binance client. Cheap to clone; clones share the connection pool, the concurrency
/// limit, the weight budgets and the clock offset.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    credentials: Option<Arc<Credentials>>,
    /// A handle for reads started before the run has decided anything (warm-ups): it
    /// refuses every non-GET request, like a dry-run client.
    read_only: bool,
    /// Passed to the observer with every request (the journal uses the step id).
    tag: Option<Arc<str>>,
}

struct Shared {
    /// The HTTP client of each [`Lane`].
    containment_http: reqwest::Client,
    evidence_http: reqwest::Client,
    endpoints: Endpoints,
    recv_window_ms: u64,
    dry_run: bool,
    timeout: Duration,
    weight_window: Duration,
    retry: RetryPolicy,
    gate: Gate,
    budgets: Budgets,
    clock: Clock,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.shared.endpoints)
            .field("key", &self.key_masked())
            .field("dry_run", &self.shared.dry_run)
            .finish()
    }
}

/// One call as settled before its first attempt (see `Client::prepare`).
struct Call<'a> {
    spec: &'static Spec,
    base: &'a str,
    encoded: String,
    credentials: Option<&'a Credentials>,
    weight: u32,
}

/// A successful answer, decoded, with the local times it was sent and received.
struct Timed<T> {
    value: T,
    sent_ms: i64,
    received_ms: i64,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ExchangeError> {
        let bad = |m: String| Err(ExchangeError::Config(m));
        if config.concurrency == 0 {
            return bad("concurrency must be at least 1".into());
        }
        if !(1..=60_000).contains(&config.recv_window_ms) {
            return bad(format!(
                "recvWindow {} ms is outside 1..=60000",
                config.recv_window_ms
            ));
        }
        if config.timeout.is_zero() || config.weight_window.is_zero() {
            return bad("timeout and weight window must be longer than zero".into());
        }
        let mut loopback_only = true;
        for base in config.endpoints.all() {
            let url = reqwest::Url::parse(base)
                .map_err(|e| ExchangeError::Config(format!("base URL `{base}`: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return bad(format!("base URL `{base}` is not http(s)"));
            }
            let host = url.host_str().unwrap_or_default();
            loopback_only &= matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1");
        }
        let containment_http = http_client(&config, loopback_only, Lane::Containment)?;
        let evidence_http = http_client(&config, loopback_only, Lane::Evidence)?;
        let budgets = Budgets::new(BudgetConfig {
            window: config.weight_window,
            limit_override: config.weight_limit,
            headroom_percent: config.urgent_headroom_percent,
        });
        Ok(Client {
            shared: Arc::new(Shared {
                containment_http,
                evidence_http,
                endpoints: config.endpoints,
                recv_window_ms: config.recv_window_ms,
                dry_run: config.dry_run,
                timeout: config.timeout,
                weight_window: config.weight_window,
                retry: config.retry,
                gate: Gate::new(
                    config.concurrency,
                    config
                        .normal_concurrency
                        .unwrap_or(config.concurrency.div_ceil(4).min(NORMAL_CONCURRENCY_MAX)),
                ),
                budgets,
                clock: Clock::new(),
                observer: config.observer,
            }),
            credentials: config.credentials.map(Arc::new),
            tag: None,
            read_only: false,
        })
    }

    /// The same client acting as another key (the responder key): shares the budgets,
    /// since both spend the same IP's weight, and the clock offset.
    pub fn with_credentials(&self, credentials: Option<Credentials>) -> Client {
        Client {
            shared: self.shared.clone(),
            credentials: credentials.map(Arc::new),
            tag: self.tag.clone(),
            read_only: self.read_only,
        }
    }

    /// The same client, refusing every request that is not a GET (in the one request
    /// function, like a dry run): for reads started before triage has answered.
    pub fn read_only(&self) -> Client {
        Client {
            read_only: true,
            ..self.clone()
        }
    }

    /// The same client, with every request it makes reported to the observer under
    /// `tag` (the journal uses the step id, so concurrent steps are told apart).
    pub fn tagged(&self, tag: &str) -> Client {
        Client {
            shared: self.shared.clone(),
            credentials: self.credentials.clone(),
            tag: Some(Arc::from(tag)),
            read_only: self.read_only,
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.shared.dry_run
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.shared.endpoints
    }

    /// The key this client signs with, masked (`AbCd…wXyZ`).
    pub fn key_masked(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| c.key.masked())
    }

    /// The IP weight limit per window of the pool `family` spends from (`/fapi` and
    /// `/dapi` share one): the published figure, a lowered `--weight-limit`, or the live
    /// one once an `exchangeInfo` answer listed it.
    pub fn weight_limit(&self, family: super::Family) -> u32 {
        self.shared.budgets.limit(family)
    }

    /// Stop keeping each limit's urgent headroom (for this client and every client that
    /// shares its budgets): the engine calls it once nothing is left to contain, so the
    /// reads that remain may use every pool in full.
    pub fn release_urgent_headroom(&self) {
        self.shared.budgets.release_headroom();
    }

    /// IP weight evidence reads of `family`'s pool may spend right now, and what they
    /// may spend per window: how long a long pull has to wait for its budget.
    pub fn weight_room(&self, family: super::Family) -> (u32, u32) {
        self.shared.budgets.room(family, Instant::now())
    }

    /// The rate-limit window the budgets count over.
    pub fn weight_window(&self) -> Duration {
        self.shared.weight_window
    }

    /// Adopt the live limits an `exchangeInfo` answer of `family` lists.
    pub(crate) fn learn_limits(&self, family: super::Family, limits: &[super::RateLimit]) {
        self.shared.budgets.learn(family, limits);
    }

    /// The full API key this client signs with: only to name the key to Binance itself
    /// (deleting a sub-account's key); never for output.
    pub(crate) fn api_key_exposed(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.key.expose())
    }

    /// The full API key, to name it in a request that deletes it (Binance listed it
    /// masked). The journal masks it in request lines.
    pub fn api_key_for_deletion(&self) -> Option<String> {
        self.api_key_exposed().map(str::to_string)
    }

    /// Server time minus local time in ms, once measured.
    pub fn time_offset_ms(&self) -> Option<i64> {
        self.shared.clock.offset_ms()
    }

    /// The server's clock now, as far as the measured offset says.
    pub fn server_now(&self) -> DateTime<Utc> {
        self.shared.clock.server_now()
    }

    /// Measure the server-time offset now (signed requests do it once by themselves).
    /// Let signed requests go out with this machine's clock until the first
    /// [`Client::sync_time`] has measured the exchange's, instead of each waiting for it:
    /// the run's first reads then share the clock check's round trip.
    pub fn sign_with_local_clock_until_synced(&self) {
        self.shared
            .clock
            .local_until_measured
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub async fn sync_time(&self) -> Result<i64, ExchangeError> {
        let _measuring = self.shared.clock.measuring.lock().await;
        self.measure_clock().await
    }

    async fn measure_clock(&self) -> Result<i64, ExchangeError> {
        #[derive(serde::Deserialize)]
        struct ServerTime {
            #[serde(rename = "serverTime")]
            server_time: i64,
        }
        self.shared
            .clock
            .started
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let timed: Timed<ServerTime> =
            Box::pin(self.execute_timed(&weights::SPOT_TIME, Params::new(), None)).await?;
        Ok(self
            .shared
            .clock
            .record(timed.value.server_time, timed.sent_ms, timed.received_ms))
    }

    async fn ensure_clock(&self) -> Result<(), ExchangeError> {
        if self.shared.clock.offset_ms().is_some()
            || self
                .shared
                .clock
                .local_until_measured
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return Ok(());
        }
        let _measuring = self.shared.clock.measuring.lock().await;
        if self.shared.clock.offset_ms().is_none() {
            self.measure_clock().await?;
        }
        Ok(())
    }

    /// Re-measure after -1021, unless a measurement started since `seen` (the count of
    /// measurements started when the -1021 arrived): one started before may be the
    /// stale one the request was signed with.
    async fn resync_clock(&self, seen: u64) -> Result<(), ExchangeError> {
        let _measuring = self.shared.clock.measuring.lock().await;
        if self
            .shared
            .clock
            .started
            .load(std::sync::atomic::Ordering::Acquire)
            == seen
        {
            self.measure_clock().await?;
        }
        Ok(())
    }

    pub(crate) async fn execute<T: DeserializeOwned>(
        &self,
        spec: &'static Spec,
        params: Params,
    ) -> Result<T, ExchangeError> {
        Ok(self.execute_timed(spec, params, None).await?.value)
    }

    /// `execute` for an endpoint whose weight depends on a parameter other than the
    /// symbol (futures klines weigh by `limit`): `weight` is the request's IP weight.
    pub(crate) async fn execute_weighted<T: DeserializeOwned>(
        &self,
        spec: &'static Spec,
        params: Params,
        weight: u32,
    ) -> Result<T, ExchangeError> {
        Ok(self.execute_timed(spec, params, Some(weight)).await?.value)
    }

    /// The one request function.
    async fn execute_timed<T: DeserializeOwned>(
        &self,
        spec: &'static Spec,
        params: Params,
        weight: Option<u32>,
    ) -> Result<Timed<T>, ExchangeError> {
        let call = self.prepare(spec, params, weight).await?;
        // `attempt` counts what the retry policy allows; `sent` numbers every attempt
        // for the observer, the -1021 resend included.
        let mut attempt = 0;
        let mut sent = 0;
        let mut resynced = false;
        loop {
            attempt += 1;
            sent += 1;
            let err = match self.attempt(&call, sent).await {
                Ok(timed) => return Ok(timed),
                Err(err) => err,
            };
            // -1021: the timestamp was outside recvWindow; Binance rejected the request
            // without acting on it. Re-measure and retry once, whatever the method.
            if err.code() == Some(-1021) && call.credentials.is_some() && !resynced {
                resynced = true;
                attempt -= 1;
                // The measurement this request was signed with (or this machine's clock,
                // before the first one) is stale as of this answer: re-measure, unless a
                // request that failed alongside started one while this one waited.
                let seen = self
                    .shared
                    .clock
                    .started
                    .load(std::sync::atomic::Ordering::Acquire);
                self.resync_clock(seen).await?;
                continue;
            }
            if attempt >= self.shared.retry.max_attempts {
                return Err(err);
            }
            match self.retry_delay(spec, &err, attempt) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(err),
            }
        }
    }

    /// What is settled once before a call's first attempt: a dry run (or a read-only
    /// handle) refuses anything but a GET before anything else can happen, then the
    /// family's base URL, the credentials a signed endpoint needs (and a measured
    /// clock), the request's weight and its encoded parameters.
    async fn prepare(
        &self,
        spec: &'static Spec,
        params: Params,
        weight: Option<u32>,
    ) -> Result<Call<'_>, ExchangeError> {
        let endpoint = spec.endpoint();
        // Checked first, before anything else can happen: a dry run sends nothing that
        // could change the account, whatever the caller does.
        if (self.shared.dry_run || self.read_only) && spec.method != HttpMethod::Get {
            return Err(ExchangeError::DryRunRefused { endpoint });
        }
        let Some(base) = self.shared.endpoints.base(spec.family()) else {
            return Err(ExchangeError::NotOnTestnet { endpoint });
        };
        let credentials = match (spec.signed, self.credentials.as_deref()) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => return Err(ExchangeError::NoCredentials { endpoint }),
        };
        if credentials.is_some() {
            self.ensure_clock().await?;
        }
        let weight = weight.unwrap_or(if params.has("symbol") || params.has("pair") {
            spec.weight
        } else {
            spec.weight_all
        });
        Ok(Call {
            spec,
            base,
            encoded: params.encode(),
            credentials,
            weight,
        })
    }

    /// How long to wait before the next attempt after `err`, or `None` when the call
    /// fails with it.
    fn retry_delay(&self, spec: &Spec, err: &ExchangeError, attempt: u32) -> Option<Duration> {
        let policy = &self.shared.retry;
        match err {
            // Rejected before execution, and the family is paused until Retry-After
            // (the budget holds every request back until then): the next attempt
            // waits in `attempt`, unless this call may not wait that long (`hold`).
            ExchangeError::RateLimited { retry_after, .. } => {
                let wait = retry_after.unwrap_or(self.shared.weight_window);
                let reason = WaitReason::RateLimited;
                (hold(spec.method, spec.priority, reason, wait, policy) != Hold::Fail)
                    .then_some(Duration::ZERO)
            }
            // Banned until then (418): the budget refuses the pool until it ends.
            ExchangeError::IpBanned { until, .. } => {
                let left = self.ban_left(*until);
                let reason = WaitReason::Banned;
                (hold(spec.method, spec.priority, reason, left, policy) != Hold::Fail)
                    .then_some(Duration::ZERO)
            }
            // The outcome is unknown: only requests that are safe to repeat go again.
            e if e.is_server_error() && spec.repeatable => Some(backoff(policy, attempt)),
            // Repeatable, or a connection that never opened (nothing was sent).
            ExchangeError::Unreachable {
                outcome_unknown: false,
                ..
            } => Some(backoff(policy, attempt)),
            _ => None,
        }
    }

    /// What is left of a ban that lasts until `until` on the exchange's clock.
    fn ban_left(&self, until: DateTime<Utc>) -> Duration {
        (until - self.shared.clock.server_now())
            .to_std()
            .unwrap_or_default()
    }

    /// One attempt: wait for a slot and for weight, sign with a fresh timestamp, send,
    /// read, map, tell the observer.
    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        attempt: u32,
    ) -> Result<Timed<T>, ExchangeError> {
        let shared = &*self.shared;
        let spec = call.spec;
        let slot = self.take_slot(spec, call.weight).await?;

        // The timestamp is taken after any wait, so pacing never makes it stale.
        let (query, signature) = self.signed_query(&call.encoded, call.credentials);
        let redact = Redactor {
            key: call.credentials.map(|c| c.key.expose()),
            secret: call.credentials.map(|c| c.secret.expose()),
            signature: signature.as_deref(),
        };
        let request = self.request(spec, call.base, &query, call.credentials)?;

        let sent_ms = Utc::now().timestamp_millis();
        let started = Instant::now();
        let response = request.send().await;
        let mut summary = self.summary(spec, &query, attempt);
        let result = match response {
            Err(e) => Err(error::from_transport(
                spec.endpoint(),
                &e,
                shared.timeout,
                spec.repeatable,
                &redact,
            )),
            Ok(response) => {
                self.read(spec, response, started, &mut summary, &redact)
                    .await
            }
        };
        drop(slot);
        let received_ms = Utc::now().timestamp_millis();
        summary.elapsed_ms = started.elapsed().as_millis() as u64;

        self.remember_refusal(spec.family(), &result);
        if let Err(e) = &result {
            summary.code = e.code();
            summary.error = Some(e.to_string());
        }
        if let Some(observer) = &shared.observer {
            observer.on_request(&summary);
        }
        result.map(|value| Timed {
            value,
            sent_ms,
            received_ms,
        })
    }

    /// A slot first, then weight; a request that must wait for weight gives its slot
    /// back meanwhile, so it never blocks an urgent request that could go. A pause (429)
    /// or ban (418) this call may not wait out fails it unsent.
    async fn take_slot(&self, spec: &'static Spec, weight: u32) -> Result<Slot<'_>, ExchangeError> {
        let shared = &*self.shared;
        let endpoint = spec.endpoint();
        let family = spec.family();
        loop {
            let slot = shared.gate.acquire(spec.priority).await;
            match shared.budgets.try_reserve(
                family,
                weight,
                spec.uid_weight,
                spec.priority,
                Instant::now(),
            ) {
                Reserve::Granted => return Ok(slot),
                Reserve::WaitUntil(at) => {
                    drop(slot);
                    self.hold_back(spec, WaitReason::Budget, at, None, false)
                        .await;
                }
                Reserve::Paused(at) => {
                    let reason = WaitReason::RateLimited;
                    let left = at.saturating_duration_since(Instant::now());
                    match hold(spec.method, spec.priority, reason, left, &shared.retry) {
                        Hold::Fail => {
                            return Err(ExchangeError::RateLimited {
                                endpoint,
                                status: 429,
                                code: None,
                                message: "paused by a 429 earlier in this run; not sent".into(),
                                retry_after: Some(left),
                            })
                        }
                        Hold::Wait { long } => {
                            drop(slot);
                            self.hold_back(spec, reason, at, None, long).await;
                        }
                    }
                }
                Reserve::Banned(until) => {
                    let reason = WaitReason::Banned;
                    let left = self.ban_left(until);
                    match hold(spec.method, spec.priority, reason, left, &shared.retry) {
                        Hold::Fail => {
                            return Err(ExchangeError::IpBanned {
                                endpoint,
                                family,
                                code: None,
                                message: "banned earlier in this run; not sent".into(),
                                until,
                            })
                        }
                        Hold::Wait { long } => {
                            drop(slot);
                            // The budget's own end of the ban may lag the exchange's
                            // clock by a hair: never spin.
                            let at = Instant::now() + left.max(Duration::from_millis(50));
                            self.hold_back(spec, reason, at, Some(until), long).await;
                        }
                    }
                }
            }
        }
    }

    /// The query to send, with a timestamp taken now and its signature when the call is
    /// signed; the signature is returned too, for redaction.
    fn signed_query(
        &self,
        encoded: &str,
        credentials: Option<&Credentials>,
    ) -> (String, Option<String>) {
        match credentials {
            Some(c) => {
                let ts = self.shared.clock.server_now().timestamp_millis();
                let query = signing::with_time(encoded, self.shared.recv_window_ms, ts);
                let sig = c
                    .sign_asymmetric(&query)
                    .unwrap_or_else(|| signing::signature(c.secret.expose(), &query, ""));
                (signing::append_signature(&query, &sig), Some(sig))
            }
            None => (encoded.to_string(), None),
        }
    }

    /// The HTTP request for `query`, with the API key header (marked sensitive) when the
    /// call is signed.
    fn request(
        &self,
        spec: &'static Spec,
        base: &str,
        query: &str,
        credentials: Option<&Credentials>,
    ) -> Result<reqwest::RequestBuilder, ExchangeError> {
        let shared = &*self.shared;
        let url = if query.is_empty() {
            format!("{base}{}", spec.path)
        } else {
            format!("{base}{}?{query}", spec.path)
        };
        let method = match spec.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Delete => reqwest::Method::DELETE,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let http = match Lane::of(spec.priority) {
            Lane::Containment => &shared.containment_http,
            Lane::Evidence => &shared.evidence_http,
        };
        let mut request = http.request(method, url).timeout(shared.timeout);
        if let Some(c) = credentials {
            let mut value =
                reqwest::header::HeaderValue::from_str(c.key.expose()).map_err(|_| {
                    ExchangeError::Config(
                        "the API key has characters an HTTP header cannot carry".into(),
                    )
                })?;
            value.set_sensitive(true);
            request = request.header("X-MBX-APIKEY", value);
        }
        Ok(request)
    }

    /// What the observer is told of one attempt, before its answer fills it in.
    fn summary(&self, spec: &'static Spec, query: &str, attempt: u32) -> RequestSummary {
        RequestSummary {
            method: spec.method,
            path: spec.path,
            query_without_signature: signing::strip_signature(query),
            family: spec.family(),
            status: None,
            code: None,
            used_weight: None,
            used_weight_headers: Vec::new(),
            elapsed_ms: 0,
            attempt,
            priority: spec.priority,
            server_date: None,
            error: None,
            tag: self.tag.as_deref().map(String::from),
        }
    }

    /// Read an answer: its used-weight headers go to the budget and, with its status and
    /// date, to `summary`; its body is checked for a refusal and decoded.
    async fn read<T: DeserializeOwned>(
        &self,
        spec: &'static Spec,
        response: reqwest::Response,
        started: Instant,
        summary: &mut RequestSummary,
        redact: &Redactor<'_>,
    ) -> Result<T, ExchangeError> {
        let shared = &*self.shared;
        let endpoint = spec.endpoint();
        let family = spec.family();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let used = UsedWeight::parse(&headers);
        shared.budgets.observe(family, started, &used);
        summary.status = Some(status);
        summary.used_weight = used.max();
        summary.used_weight_headers = used.headers;
        summary.server_date = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let retry_after = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match response.bytes().await {
            Err(e) => Err(error::from_transport(
                endpoint,
                &e,
                shared.timeout,
                spec.repeatable,
                redact,
            )),
            Ok(body) => {
                let answer = Answer {
                    endpoint,
                    family,
                    status,
                    retry_after,
                    body: &body,
                    server_now: shared.clock.server_now(),
                };
                error::check_answer(&answer, redact)
                    .and_then(|()| error::decode(endpoint, status, &body, redact))
            }
        }
    }

    /// A 429 pauses the family's budget until Retry-After (or a weight window); a 418
    /// bans it until the ban's end.
    fn remember_refusal<T>(&self, family: Family, result: &Result<T, ExchangeError>) {
        let shared = &*self.shared;
        match result {
            Err(ExchangeError::RateLimited { retry_after, .. }) => {
                let wait = retry_after.unwrap_or(shared.weight_window);
                shared.budgets.pause(family, Instant::now() + wait);
            }
            Err(ExchangeError::IpBanned { until, .. }) => {
                let left = self.ban_left(*until);
                shared.budgets.ban(family, Instant::now() + left, *until);
            }
            _ => {}
        }
    }
}

impl Client {
    /// Wait until `at` before trying the pool again, telling the observer: a notice for
    /// a wait long enough to notice, a countdown for as long as a long one lasts.
    async fn hold_back(
        &self,
        spec: &'static Spec,
        reason: WaitReason,
        at: Instant,
        until: Option<DateTime<Utc>>,
        long: bool,
    ) {
        let duration = at.saturating_duration_since(Instant::now());
        let until = until.unwrap_or_else(|| {
            self.shared.clock.server_now()
                + chrono::Duration::from_std(duration).unwrap_or_default()
        });
        let wait = Wait {
            family: spec.family(),
            path: spec.path,
            duration,
            priority: spec.priority,
            reason,
            until,
        };
        // Dropped when the wait ends or the request is given up (the future dropped).
        let _countdown = match &self.shared.observer {
            Some(observer) if long => Some(observer.on_long_wait(&wait)),
            Some(observer) if duration >= NOTICEABLE_WAIT => {
                observer.on_wait(&wait);
                None
            }
            _ => None,
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What a call does about a 429 pause or a 418 ban on its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Wait it out; `long`: longer than `RetryPolicy::max_rate_limit_wait`, so the
    /// operator is shown a countdown.
    Wait { long: bool },
    /// Give the error to the caller now.
    Fail,
}

/// Which requests an HTTP client carries: urgent ones (cancels, the listings and
/// triage reads before them, liveness probes) or normal ones (evidence).
#[derive(Clone, Copy)]
enum Lane {
    /// Cancels and everything before them: small answers, many at once. Over TLS it
    /// offers HTTP/2, so a burst of cancels shares the one warm connection instead of
    /// a handshake each; [`ClientConfig::http2_prior_knowledge`] speaks it from the start.
    Containment,
    /// Evidence: large answers (a page of klines is ~150 KB). Each on an HTTP/1.1
    /// connection of its own, so they are read side by side, not framed one after
    /// another through a single connection (in a drill, evidence over one HTTP/2
    /// connection took 3.3 s instead of 2.9).
    Evidence,
}

impl Lane {
    fn of(priority: crate::Priority) -> Lane {
        match priority {
            crate::Priority::Urgent => Lane::Containment,
            crate::Priority::Normal => Lane::Evidence,
        }
    }
}

fn http_client(
    config: &ClientConfig,
    loopback_only: bool,
    lane: Lane,
) -> Result<reqwest::Client, ExchangeError> {
    let mut http = reqwest::Client::builder()
        .user_agent(concat!("respond/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        // A redirect would carry the API key header to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        // An idle connection keeps the read buffer its largest answer grew (a page
        // of klines: ~150 KB). After a burst of evidence pulls, dozens of them would
        // sit idle holding some 10 MB; keep a few for the next requests.
        .pool_max_idle_per_host(IDLE_CONNECTIONS);
    if loopback_only {
        // A proxy from the environment must not intercept drills and tests.
        http = http.no_proxy();
    }
    match lane {
        Lane::Evidence => http = http.http1_only(),
        Lane::Containment if config.http2_prior_knowledge => http = http.http2_prior_knowledge(),
        Lane::Containment => {}
    }
    http.build()
        .map_err(|e| ExchangeError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The one decision about waiting out Binance's limits. Evidence reads (GETs at normal
/// priority) sit out any 429 or 418, however long: the record is worth the wait, and
/// the operator sees a countdown. Containment (cancels, the listing before them,
/// liveness probes) waits out a short 429 only; a long one, or a ban, fails at once
/// with its end time, so containment is never stalled without the operator knowing.
pub(crate) fn hold(
    method: HttpMethod,
    priority: crate::Priority,
    reason: WaitReason,
    wait: Duration,
    policy: &RetryPolicy,
) -> Hold {
    let long = wait > policy.max_rate_limit_wait;
    let evidence = method == HttpMethod::Get && priority == crate::Priority::Normal;
    match reason {
        WaitReason::Budget => Hold::Wait { long: false },
        _ if evidence => Hold::Wait { long },
        WaitReason::Banned => Hold::Fail,
        WaitReason::RateLimited if long => Hold::Fail,
        WaitReason::RateLimited => Hold::Wait { long: false },
    }
}

/// Exponential backoff with jitter: half the delay fixed, half random, so many clients
/// (or tasks) that failed together do not come back together.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
        .min(policy.max_delay);
    let half = exp / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoints, Priority};
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};

    /// No endpoint in the table is a non-idempotent mutation, so the rule is tested with
    /// one made up for the purpose.
    static PLACE_ORDER: Spec = Spec {
        method: HttpMethod::Post,
        path: "/api/v3/order",
        weight: 1,
        weight_all: 1,
        uid_weight: 0,
        signed: false,
        priority: Priority::Urgent,
        repeatable: false,
        max_span_ms: None,
    };

    /// Made up, like `PLACE_ORDER`: an evidence read and a containment read.
    static EVIDENCE_READ: Spec = Spec {
        method: HttpMethod::Get,
        path: "/api/v3/myTrades",
        weight: 1,
        weight_all: 1,
        uid_weight: 0,
        signed: false,
        priority: Priority::Normal,
        repeatable: true,
        max_span_ms: None,
    };
    static CONTAINMENT_READ: Spec = Spec {
        priority: Priority::Urgent,
        path: "/api/v3/openOrders",
        ..EVIDENCE_READ
    };

    #[test]
    fn evidence_reads_wait_out_any_limit_and_containment_fails_on_long_ones() {
        use HttpMethod::{Delete, Get};
        use Priority::{Normal, Urgent};
        use WaitReason::{Banned, Budget, RateLimited};
        let policy = RetryPolicy {
            max_rate_limit_wait: Duration::from_secs(90),
            ..RetryPolicy::default()
        };
        let short = Duration::from_secs(90);
        let long = Duration::from_secs(91);
        let day = Duration::from_secs(86_400);
        let cases = [
            // An evidence read waits, and a long wait is shown as one.
            (Get, Normal, RateLimited, short, Hold::Wait { long: false }),
            (Get, Normal, RateLimited, long, Hold::Wait { long: true }),
            (Get, Normal, Banned, short, Hold::Wait { long: false }),
            (Get, Normal, Banned, day, Hold::Wait { long: true }),
            // Containment: a short 429 is waited out; a long one, or any ban, is told.
            (Get, Urgent, RateLimited, short, Hold::Wait { long: false }),
            (Get, Urgent, RateLimited, long, Hold::Fail),
            (Delete, Urgent, RateLimited, long, Hold::Fail),
            (Get, Urgent, Banned, Duration::from_secs(1), Hold::Fail),
            (Delete, Urgent, Banned, Duration::from_secs(1), Hold::Fail),
            // Only a read at normal priority is evidence.
            (Delete, Normal, Banned, short, Hold::Fail),
            // respond's own pacing is never a failure.
            (Delete, Urgent, Budget, day, Hold::Wait { long: false }),
        ];
        for (method, priority, reason, wait, expected) in cases {
            assert_eq!(
                hold(method, priority, reason, wait, &policy),
                expected,
                "{method:?} {priority:?} {reason:?} {wait:?}"
            );
        }
    }

    #[derive(Default)]
    struct Waits(std::sync::Mutex<Vec<(Wait, bool)>>);

    impl RequestObserver for Waits {
        fn on_request(&self, _: &RequestSummary) {}
        fn on_wait(&self, wait: &Wait) {
            self.0.lock().unwrap().push((wait.clone(), false));
        }
        fn on_long_wait(&self, wait: &Wait) -> Box<dyn Send> {
            self.0.lock().unwrap().push((wait.clone(), true));
            Box::new(())
        }
    }

    /// One 429 with `Retry-After: 1`, then answers; the client's limit for a wait is 0 s,
    /// so that second is a long wait.
    async fn throttled_once(
        spec: &'static Spec,
    ) -> (
        Result<serde_json::Value, ExchangeError>,
        usize,
        Vec<(Wait, bool)>,
    ) {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&server)
            .await;
        let waits = Arc::new(Waits::default());
        let mut config = ClientConfig::new(Endpoints::single(server.uri()));
        config.retry.max_rate_limit_wait = Duration::ZERO;
        config.observer = Some(waits.clone());
        let result = Client::new(config)
            .unwrap()
            .execute::<serde_json::Value>(spec, Params::new())
            .await;
        let sent = server.received_requests().await.unwrap().len();
        let seen = waits.0.lock().unwrap().clone();
        (result, sent, seen)
    }

    #[tokio::test]
    async fn a_long_429_is_waited_out_by_an_evidence_read_only() {
        let started = std::time::Instant::now();
        let (result, sent, waits) = throttled_once(&EVIDENCE_READ).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(sent, 2, "sent again once the Retry-After passed");
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert_eq!(waits.len(), 1, "{waits:?}");
        let (wait, long) = &waits[0];
        assert!(long, "announced as a long wait");
        assert_eq!(wait.reason, WaitReason::RateLimited);
        assert_eq!(wait.path, "/api/v3/myTrades");

        let (result, sent, waits) = throttled_once(&CONTAINMENT_READ).await;
        let err = result.unwrap_err();
        assert!(matches!(err, ExchangeError::RateLimited { .. }), "{err:?}");
        assert!(err.to_string().contains("429"), "{err}");
        assert_eq!(sent, 1, "not sent again");
        assert!(waits.is_empty(), "{waits:?}");
    }

    /// Containment's requests speak HTTP/2 to a server known to; evidence reads stay on
    /// HTTP/1.1 whatever the setting, and nothing speaks HTTP/2 unasked over `http://`.
    #[tokio::test]
    async fn containment_speaks_http2_to_a_server_known_to_and_evidence_http1() {
        let (url, seen) = version_recorder().await;
        let window = crate::TimeWindow {
            start_ms: 0,
            end_ms: 60_000,
        };
        for prior_knowledge in [true, false] {
            let mut config = ClientConfig::new(Endpoints::single(url.clone()));
            config.http2_prior_knowledge = prior_knowledge;
            let client = Client::new(config).unwrap();
            client.server_time(crate::Market::Spot).await.unwrap();
            let klines = client.klines_minutes(crate::Market::Spot, "BTCUSDT", window);
            assert!(klines.await.unwrap().is_empty());
        }
        use reqwest::Version;
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("/api/v3/time".to_string(), Version::HTTP_2),
                ("/api/v3/klines".to_string(), Version::HTTP_11),
                ("/api/v3/time".to_string(), Version::HTTP_11),
                ("/api/v3/klines".to_string(), Version::HTTP_11),
            ]
        );
    }

    type Seen = Arc<std::sync::Mutex<Vec<(String, reqwest::Version)>>>;

    /// A server that speaks HTTP/1.1 and HTTP/2 on one port and notes which each request
    /// came in: the server time for `/api/v3/time`, an empty list for anything else.
    async fn version_recorder() -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let noted = seen.clone();
        tokio::spawn(async move {
            loop {
                let (io, _) = listener.accept().await.unwrap();
                let noted = noted.clone();
                let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                    let path = request.uri().path().to_string();
                    noted
                        .lock()
                        .unwrap()
                        .push((path.clone(), request.version()));
                    let body = match path.as_str() {
                        "/api/v3/time" => r#"{"serverTime":1700000000000}"#,
                        _ => "[]",
                    };
                    let answer = hyper::Response::new(body.to_string());
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let http = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(io);
                    let _ = http.serve_connection(io, service).await;
                });
            }
        });
        (url, seen)
    }

    async fn client(server: &MockServer, timeout: Duration) -> Client {
        let mut config = ClientConfig::new(Endpoints::single(server.uri()));
        config.timeout = timeout;
        config.retry.base_delay = Duration::from_millis(10);
        Client::new(config).unwrap()
    }

    #[tokio::test]
    async fn a_non_idempotent_mutation_is_never_repeated() {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(503))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_secs(2))
            .await
            .execute::<serde_json::Value>(&PLACE_ORDER, Params::new())
            .await
            .unwrap_err();
        assert!(err.is_server_error(), "{err}");
        server.verify().await;

        server.reset().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(1)))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, Duration::from_millis(200))
            .await
            .execute::<serde_json::Value>(&PLACE_ORDER, Params::new())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ExchangeError::Unreachable {
                    timed_out: true,
                    outcome_unknown: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("may or may not have been applied"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn config_is_validated() {
        let mut config = ClientConfig::new(Endpoints::single("ftp://127.0.0.1:1"));
        assert!(Client::new(config.clone()).is_err());
        config.endpoints = Endpoints::single("http://127.0.0.1:1/");
        config.recv_window_ms = 70_000;
        assert_eq!(
            Client::new(config.clone()).unwrap_err().kind(),
            crate::ErrorKind::Config
        );
        config.recv_window_ms = 5_000;
        config.concurrency = 0;
        assert!(Client::new(config.clone()).is_err());
        config.concurrency = 1;
        let client = Client::new(config).unwrap();
        assert_eq!(client.endpoints().api, "http://127.0.0.1:1");
    }
}
