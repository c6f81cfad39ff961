//! What a run is configured to do: the target, dry run, consent, pacing, inputs. Built
//! from the command line by `crate::config`; the engine reads it and knows no CLI.
use std::path::PathBuf;
use std::time::Duration;

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Production,
    Testnet,
    /// Every API family at one server (the simulator, or a proxy).
    BaseUrl(String),
    /// `--testnet --base-url URL`: one server that behaves like Binance's testnets (no
    /// `/sapi`), e.g. `respond sim serve --testnet`.
    TestnetAt(String),
    /// A simulator started in-process for this run.
    Drill {
        scenario: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub dry_run: bool,
    pub yes: bool,
    pub target: Target,
    /// Whether `target` came from `--drill`, `--base-url` or `--testnet` (else it is the
    /// default, production), so `resume` can take the incident's own target instead.
    pub target_explicit: bool,
    /// `resume --new-base-url`: the incident's simulator restarted on another port.
    pub new_base_url: Option<String>,
    /// `--new-incident`: start a separate incident even while another respond process
    /// is handling one of the same key.
    pub new_incident: bool,
    pub report_dir: PathBuf,
    pub key_file: Option<PathBuf>,
    pub responder_key_file: Option<PathBuf>,
    pub operator: Option<String>,
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub recv_window_ms: u64,
    pub concurrency: usize,
    pub weight_window: Duration,
    pub weight_limit: Option<u32>,
    /// Per-request timeout of the exchange client (hidden `--request-timeout`).
    pub request_timeout: Duration,
    /// Longest 429 containment waits out; evidence reads wait longer, with a countdown
    /// (hidden `--max-rate-limit-wait`).
    pub max_rate_limit_wait: Duration,
    /// `NAME=VALUE` inputs from the command line, in order.
    pub inputs: Vec<(String, String)>,
    /// Drill only: faults for the simulator, and where it logs requests.
    pub sim_faults: Vec<String>,
    pub sim_request_log: Option<PathBuf>,
    /// Sign the fingerprint with the operator key when the run stops.
    pub sign: bool,
    /// `--since-incident`: the earlier incident this run is diffed against.
    pub previous: Option<super::previous::PreviousIncident>,
}

impl RunConfig {
    pub fn drill(&self) -> bool {
        matches!(self.target, Target::Drill { .. })
    }
}

impl RunConfig {
    /// Defaults for a run that needs no exchange, writing incidents under `report_dir`.
    pub fn local(report_dir: impl Into<PathBuf>) -> RunConfig {
        RunConfig {
            dry_run: false,
            yes: false,
            target: Target::Production,
            target_explicit: false,
            new_base_url: None,
            new_incident: false,
            report_dir: report_dir.into(),
            key_file: None,
            responder_key_file: None,
            operator: Some("tester".into()),
            json: false,
            quiet: false,
            verbose: 0,
            recv_window_ms: 5000,
            concurrency: 512,
            weight_window: Duration::from_secs(60),
            weight_limit: None,
            request_timeout: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(90),
            inputs: Vec::new(),
            sim_faults: Vec::new(),
            sim_request_log: None,
            sign: false,
            previous: None,
        }
    }
}
