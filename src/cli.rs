//! Command-line definitions only (clap derive). `config.rs` turns these into the
//! validated, clap-free configuration the rest of the program sees.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    done, nothing pending
  1    a step failed, `report verify` found the record altered, or `audit` found a problem
  2    usage error, invalid playbook or scenario, command not available yet
  3    exchange unreachable, or credentials rejected before anything was done
  4    aborted by the operator, a confirmation was needed and no terminal was there, or
       another respond process is handling this incident (nothing done)
  5    finished with manual actions still pending
  6    --since-incident: new activity after the previous incident
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM) — the journal records it

Credentials are read from BINANCE_API_KEY / BINANCE_API_SECRET (responder key:
BINANCE_RESPONDER_API_KEY / BINANCE_RESPONDER_API_SECRET), from --key-file, or asked
for with hidden input. They are never accepted as command-line values.";

/// Walk an operator through the response to a leaked exchange API key.
#[derive(Debug, Parser)]
#[command(name = "respond", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings, findings, errors and prompts on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in `compromised` playbook (suspected key leak).
    Compromised(CompromisedArgs),
    /// Run any playbook file.
    Run(RunArgs),
    /// Check playbooks; every problem is reported as FILE:LINE:COLUMN.
    Validate {
        /// Playbook files to check.
        #[arg(required = true)]
        playbooks: Vec<PathBuf>,
    },
    /// List a playbook's steps, marking destructive and manual ones, without running anything.
    Plan {
        /// A playbook file, or the name of a built-in playbook (`compromised`, `example`).
        playbook: String,
    },
    /// List the actions a playbook step may use.
    Actions,
    /// Continue an interrupted run from its journal; no step is done twice.
    Resume(ResumeArgs),
    /// Work with incident records.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The simulated Binance exchange (for drills, tests and other clients).
    #[command(subcommand)]
    Sim(SimCommand),
    /// Key hygiene check (read-only): least privilege, IP whitelist, age, trading expiry;
    /// exit 1 when it finds a problem.
    Audit(AuditArgs),
    /// Compare the scorecards of past drills (newest last).
    DrillHistory {
        /// Where incident folders are.
        #[arg(long, value_name = "DIR", default_value = "incidents")]
        report_dir: PathBuf,
        /// One JSON object per drill instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) generated from these definitions.
    Man,
}

/// Options shared by every command that runs a playbook.
#[derive(Debug, Args, Clone, Default)]
pub struct RunOptions {
    /// Read everything, show what destructive steps would do, send nothing that mutates.
    #[arg(long)]
    pub dry_run: bool,

    /// Rehearse against the built-in simulated exchange (no real account is touched).
    #[arg(long, conflicts_with_all = ["base_url", "testnet"])]
    pub drill: bool,

    /// Scenario file for --drill (default: the built-in `leaked-key` scenario).
    #[arg(long, value_name = "FILE", requires = "drill")]
    pub scenario: Option<PathBuf>,

    /// Answer yes to destructive steps. Manual steps still need a person (in a drill,
    /// --yes is the autopilot and confirms them too).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Where incident folders are created.
    #[arg(long, value_name = "DIR", default_value = "incidents")]
    pub report_dir: PathBuf,

    /// Use Binance's testnets (spot and futures; they have no /sapi endpoints). With
    /// --base-url: that server, treated as a testnet (e.g. `respond sim serve --testnet`).
    #[arg(long)]
    pub testnet: bool,

    /// Send every API family to this server (e.g. a `respond sim serve` URL).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Key file of the leaked key (`api_key: ...` and `secret: ...`, or for an Ed25519/RSA
    /// key `private_key_file: PEM` or `private_key:` + PEM; mode 0600).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Key file of a separate read-only responder key.
    #[arg(long, value_name = "FILE")]
    pub responder_key_file: Option<PathBuf>,

    /// Name recorded as who answered the prompts (default: OS user@host).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,

    /// Emit events as JSON lines on stdout (the human UI goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// recvWindow for signed requests, in milliseconds (Binance allows at most 60000).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub recv_window: u64,

    /// Most requests in flight at once; evidence pulls use at most a quarter of them
    /// (and no more than 32), cancels and liveness probes all: a cancel round sends one
    /// request per symbol and book at once (1 forces the serial baseline).
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub concurrency: usize,

    /// Rate-limit window length (Binance's is 1m; tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "1m", hide = true)]
    pub weight_window: String,

    /// Request-weight budget per pool per window (spot, /sapi, and futures: /fapi and
    /// /dapi share one). Default: Binance's published limits, or the live ones.
    #[arg(long, value_name = "N")]
    pub weight_limit: Option<u32>,

    /// Sign the incident's fingerprint with your operator key (Ed25519, kept 0600 in
    /// ~/.config/respond) into signature.json when the run stops.
    #[arg(long)]
    pub sign: bool,

    /// How long one HTTP request may take before it counts as unanswered (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "10s", hide = true)]
    pub request_timeout: String,

    /// Containment fails on a 429 asking to wait longer than this; an evidence read
    /// waits it out (or a 418 ban, whatever its length) with a countdown beyond it
    /// (tests shorten it).
    #[arg(long, value_name = "DURATION", default_value = "90s", hide = true)]
    pub max_rate_limit_wait: String,

    /// Drill only: a fault for the simulator (latency=MS, weight-limit=N, ...; repeatable).
    #[arg(
        long = "sim-fault",
        value_name = "NAME=VALUE",
        requires = "drill",
        hide = true
    )]
    pub sim_faults: Vec<String>,

    /// Drill only: the simulator's request log as JSON lines.
    #[arg(long, value_name = "FILE", requires = "drill", hide = true)]
    pub sim_request_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompromisedArgs {
    #[command(flatten)]
    pub run: RunOptions,

    /// Start of the review window: a duration back from now (72h) or an RFC 3339 instant.
    #[arg(long, value_name = "72h|RFC3339")]
    pub since: Option<String>,

    /// Watch mode: look only at activity after this earlier incident ended, and diff
    /// against it; anything new exits 6 (another key, or the account, is compromised).
    #[arg(long, value_name = "DIR", conflicts_with = "since")]
    pub since_incident: Option<PathBuf>,

    /// Extra spot symbols to pull trades for (comma-separated).
    #[arg(long, value_name = "BTCUSDT,...", value_delimiter = ',')]
    pub symbols: Vec<String>,

    /// File of withdrawal addresses you own, one per line.
    #[arg(long, value_name = "FILE")]
    pub known_addresses: Option<PathBuf>,

    /// Use a playbook file instead of the built-in `compromised` playbook.
    #[arg(long, value_name = "FILE")]
    pub playbook: Option<PathBuf>,

    /// Start a separate incident even though another respond process is handling an
    /// incident of this key right now (it gets its own folder and journal).
    #[arg(long)]
    pub new_incident: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook file (or the name of a built-in playbook).
    pub playbook: String,

    #[command(flatten)]
    pub run: RunOptions,

    /// Set a playbook input (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,

    /// Start a separate incident even though another respond process is handling an
    /// incident of this key right now (it gets its own folder and journal).
    #[arg(long)]
    pub new_incident: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The incident folder to continue. It goes on against the exchange it started on
    /// (production, testnet, the base URL, or the drill's scenario); another target is
    /// refused.
    pub dir: PathBuf,

    #[command(flatten)]
    pub run: RunOptions,

    /// The incident's simulator restarted on another port: continue at this URL (same
    /// scheme and host as recorded, only the port may differ). Recorded in the journal.
    #[arg(long, value_name = "URL", conflicts_with_all = ["base_url", "testnet", "drill"])]
    pub new_base_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check the journal's hash chain and that the report matches it.
    Verify {
        /// The incident folder.
        dir: PathBuf,
        /// A fingerprint taken earlier (printed at the end of a run, or in the support
        /// message): the folder must still contain that record.
        #[arg(long, value_name = "HEX")]
        fingerprint: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Run the simulated exchange on 127.0.0.1 until Ctrl-C.
    Serve(SimServeArgs),
    /// Check scenario files; every problem is reported as FILE:LINE:COLUMN.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

#[derive(Debug, Args, Clone)]
pub struct SimServeArgs {
    /// Scenario file (default: the built-in `leaked-key` scenario).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// Round-trip latency per request, in milliseconds: the exchange acts half-way
    /// (same as --fault latency=MS).
    #[arg(long, value_name = "MS")]
    pub latency_ms: Option<u64>,

    /// Request-weight limit per pool per window, /fapi and /dapi sharing one (same as
    /// --fault weight-limit=N).
    #[arg(long, value_name = "N")]
    pub weight_limit: Option<u32>,

    /// Rate-limit window length.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub weight_window: String,

    /// Append one JSON line per request to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,

    /// Inject a fault: latency=MS, error-rate=P, timeout-rate=P, clock-skew=MS,
    /// malformed=PATH, failing=PATH, weight-limit=N, throttle=MS, ban=MS, seed=N
    /// (repeatable).
    #[arg(long = "fault", value_name = "NAME=VALUE")]
    pub faults: Vec<String>,

    /// Take every caller to come from this address when checking keys' IP whitelists
    /// (default: the scenario's `client_ip`, else the real address, 127.0.0.1).
    #[arg(long, value_name = "IP")]
    pub client_ip: Option<std::net::IpAddr>,

    /// Serve like Binance's testnets: no /sapi endpoints.
    #[arg(long)]
    pub testnet: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub run: RunOptions,

    /// What the key is for: `data` (read only: any trading permission is a finding) or
    /// `trading`. Withdrawals are a finding for every purpose.
    #[arg(
        long,
        value_name = "data|trading",
        default_value = "trading",
        value_parser = ["data", "trading"]
    )]
    pub purpose: String,

    /// Rotation period: a key older than this is due for replacement (e.g. 90d, 180d).
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub rotation: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
