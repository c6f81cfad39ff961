//! `respond sim serve` and `respond sim validate`: the command line around the
//! simulator crate (`respond-sim`), which knows nothing of it.
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::SimServeArgs;
use crate::diagnostic::Diagnostics;
use crate::error::{exit, Error};
use crate::sim::{Faults, Scenario, SimConfig, SimError, SimServer};

/// The top-level error for a simulator problem. Scenario problems become
/// `Error::Invalid`, so they print like playbook problems (one `FILE:LINE:COLUMN` per
/// line); `--drill` uses this too.
pub fn into_error(err: SimError) -> Error {
    match err {
        SimError::Invalid(diags) => Error::Invalid(diags),
        SimError::Usage(message) => Error::usage_hint(
            message,
            "faults are latency=MS, error-rate=P, timeout-rate=P, clock-skew=MS, \
             malformed=PATH, failing=PATH, weight-limit=N, throttle=MS, ban=MS, seed=N",
        ),
        other => Error::Sim(other),
    }
}

/// Turn the `sim serve` command line into a [`SimConfig`] (no side effects).
pub fn config_from_args(args: &SimServeArgs) -> Result<SimConfig, SimError> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::builtin_leaked_key(),
    };
    let mut faults = Faults::default();
    for spec in &args.faults {
        faults.apply(spec).map_err(SimError::Usage)?;
    }
    if let Some(ms) = args.latency_ms {
        faults.latency = Duration::from_millis(ms);
    }
    if let Some(n) = args.weight_limit {
        faults.set_weight_limit(n).map_err(SimError::Usage)?;
    }
    let weight_window = humantime::parse_duration(&args.weight_window).map_err(|e| {
        SimError::Usage(format!(
            "--weight-window {:?}: {e} (expected e.g. 60s, 2s, 500ms)",
            args.weight_window
        ))
    })?;
    if weight_window < Duration::from_millis(100) {
        return Err(SimError::Usage(format!(
            "--weight-window {:?} is too short: at least 100ms",
            args.weight_window
        )));
    }
    Ok(SimConfig {
        client_ip: args.client_ip.or(scenario.client_ip),
        scenario,
        port: args.port,
        faults,
        weight_window,
        request_log: args.request_log.clone(),
        testnet: args.testnet,
    })
}

/// `respond sim serve`: bind, print `listening on URL` as the first stdout line, serve
/// until Ctrl-C or SIGTERM (a stop either way is the normal end: exit 0).
pub fn serve_command(args: &SimServeArgs) -> Result<u8, Error> {
    let config = config_from_args(args).map_err(into_error)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let scenario_name = config.scenario.name.clone();
        let server = SimServer::start(config).await.map_err(into_error)?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {}", server.url());
            let _ = out.flush();
        }
        let leaked = server.leaked_key();
        eprintln!(
            "scenario {scenario_name}: leaked key {:?} ({}); control API at {}/sim/state; \
             Ctrl-C stops",
            leaked.label,
            leaked.masked(),
            server.url()
        );
        wait_for_stop_signal().await;
        server.shutdown().await;
        Ok(exit::OK)
    })
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `respond sim validate FILE...`: every problem in every file, then exit 2 if any.
pub fn validate_command(paths: &[PathBuf]) -> Result<u8, Error> {
    let mut all = Diagnostics::default();
    for path in paths {
        match Scenario::load(path) {
            Ok(scenario) => eprintln!("{}: ok (scenario {})", path.display(), scenario.name),
            Err(SimError::Invalid(diags)) => all.extend(diags),
            Err(SimError::ReadScenario { path, source }) => all.push(
                crate::diagnostic::Diagnostic::new(&path, 0, 0, format!("cannot read: {source}")),
            ),
            Err(other) => return Err(into_error(other)),
        }
    }
    if all.is_empty() {
        Ok(exit::OK)
    } else {
        Err(Error::Invalid(all))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, SimCommand};

    fn serve_config(args: &[&str]) -> super::SimConfig {
        let cli = Cli::try_parse_from(["respond", "sim", "serve"].iter().chain(args)).unwrap();
        let Command::Sim(SimCommand::Serve(args)) = cli.command else {
            panic!("not sim serve");
        };
        super::config_from_args(&args).unwrap()
    }

    #[test]
    fn client_ip_and_testnet_from_the_command_line() {
        let config = serve_config(&["--client-ip", "192.0.2.50", "--testnet"]);
        assert_eq!(config.client_ip, Some("192.0.2.50".parse().unwrap()));
        assert!(config.testnet);
        let config = serve_config(&[]);
        assert_eq!((config.client_ip, config.testnet), (None, false));
    }
}
