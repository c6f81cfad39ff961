//! `binance.transfers`: money that moved in the review window — withdrawals, deposits,
//! universal transfers, Binance Pay, sub-account transfers — with every withdrawal to an
//! unknown address flagged.
use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{json, Value as Json};

use super::util::{dec, rfc3339, row, Coverage, SIX_MONTHS_MS};
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    StepContext,
};
use crate::exchange::{
    Client, ErrorKind, ExchangeError, Pull, TimeWindow, UNIVERSAL_TRANSFER_TYPES,
};
use crate::operator::Level;
use crate::report::journal::Severity;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Transfers)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.transfers",
    description: "Withdrawals, deposits, universal transfers, Pay and sub-account transfers in the window; flags withdrawals to unknown addresses",
    kind: Kind::Evidence,
    inputs: &[
        InputSpec { name: "since", ty: ArgType::Since, required: true, default: None, description: "start of the review window" },
        InputSpec {
            name: "known_addresses",
            ty: ArgType::Text,
            required: false,
            default: None,
            description: "file of your own withdrawal addresses, one per line (# comments allowed)",
        },
    ],
    outputs: &[
        OutputSpec { name: "withdrawals", description: "withdrawals in the window" },
        OutputSpec { name: "unknown_withdrawals", description: "withdrawals to addresses not in known_addresses" },
        OutputSpec { name: "deposits", description: "deposits in the window" },
        OutputSpec { name: "transfers", description: "universal transfers in the window" },
        OutputSpec { name: "pay", description: "Binance Pay transactions in the window" },
    ],
};

pub struct Transfers;

fn known_addresses(path: Option<&str>) -> Result<BTreeSet<String>, ActionError> {
    let Some(path) = path.filter(|p| !p.trim().is_empty()) else {
        return Ok(BTreeSet::new());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ActionError::Io {
        what: "cannot read the known addresses file",
        path: path.into(),
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Withdrawal status codes, in words.
fn withdrawal_status(code: i64) -> &'static str {
    match code {
        0 => "email sent",
        1 => "cancelled",
        2 => "awaiting approval",
        3 => "rejected",
        4 => "processing",
        5 => "failure",
        6 => "completed",
        _ => "unknown",
    }
}

/// Run every window of a pull concurrently, collecting rows and gaps.
async fn windows<T, F, Fut>(pull: Pull, range: TimeWindow, f: F) -> (Vec<T>, Option<ExchangeError>)
where
    F: Fn(TimeWindow) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, ExchangeError>>,
{
    let results = join_all(pull.windows(range).into_iter().map(f)).await;
    let mut out = Vec::new();
    let mut error = None;
    for r in results {
        match r {
            Ok(v) => out.extend(v),
            Err(e) => error = Some(e),
        }
    }
    (out, error)
}

impl Action for Transfers {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(ctx.with_reader(read))
    }
}

/// Everything the step read, and what it could not.
struct Read {
    withdrawals: Vec<crate::exchange::Withdrawal>,
    deposits: Vec<crate::exchange::Deposit>,
    pay: Vec<crate::exchange::PayTransaction>,
    sub: Vec<crate::exchange::SubAccountTransfer>,
    universal: Vec<crate::exchange::UniversalTransfer>,
    /// "SOURCE: why" for each source not read.
    gaps: Vec<String>,
    /// For each failed source, its credential rejection if any.
    failed: Vec<Option<crate::exchange::Rejection>>,
    /// Sources that apply to this key; "0 withdrawals" is only said when read.
    sources: usize,
    /// Not a master account's key: sub-account transfers do not apply.
    sub_not_applicable: bool,
    withdrawals_unread: bool,
}

/// The step's work, with `client` the key it reads with.
async fn read(ctx: &StepContext, client: Client) -> Result<Outcome, ActionError> {
    let since = super::util::since_input(ctx)?;
    let range = TimeWindow::between(since, client.server_now());
    let known = known_addresses(ctx.args.text("known_addresses"))?;
    if !client.endpoints().has_sapi() {
        return not_on_testnet(ctx);
    }
    let withdrawals_enabled = ctx
        .earlier_output("binance.key_permissions", "can_withdraw")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let read = pull(ctx, &client, range).await?;
    // One liveness probe decides whether a refusal here means the key is gone.
    if let Some(rejection) = read.failed.iter().flatten().find(|r| r.about_the_key()) {
        ctx.leaked_key_rejected(*rejection).await?;
    }
    if read.failed.len() == read.sources {
        // Not one source could be read: "0 withdrawals" would read as "none".
        for g in &read.gaps {
            ctx.note(Level::Warn, format!("not read: {g}"))?;
        }
        return Err(ActionError::Failed(format!(
                "no withdrawal, deposit or transfer history could be read ({} source(s) failed), e.g. {}",
                read.sources,
                read.gaps[0]
            )));
    }
    let older_than_served = range.start_ms < client.server_now().timestamp_millis() - SIX_MONTHS_MS;
    record_coverage(ctx, &read, range, older_than_served)?;
    let unknown = withdrawals(ctx, &read.withdrawals, &known, withdrawals_enabled)?;
    record_evidence(ctx, &read)?;
    for g in &read.gaps {
        ctx.note(Level::Warn, format!("not read: {g}"))?;
    }
    let Read {
        withdrawals,
        deposits,
        pay,
        sub,
        universal,
        gaps,
        withdrawals_unread,
        ..
    } = read;
    let summary = format!(
            "{}{} withdrawal(s) ({unknown} to unknown addresses), {} deposit(s), {} transfer(s), {} Pay transaction(s){}",
            if withdrawals_unread {
                "withdrawal history NOT fully read — check it in the Binance app; "
            } else {
                ""
            },
            withdrawals.len(),
            deposits.len(),
            universal.len() + sub.len(),
            pay.len(),
            if gaps.is_empty() { String::new() } else { format!("; {} source(s) not read", gaps.len()) }
        );
    let mut outcome = Outcome::ok(summary)
        .with("withdrawals", withdrawals.len() as u64)
        .with("unknown_withdrawals", unknown as u64)
        .with("deposits", deposits.len() as u64)
        .with("transfers", (universal.len() + sub.len()) as u64)
        .with("pay", pay.len() as u64);
    if withdrawals_unread {
        // Money leaving is what this step is for: without the withdrawal history,
        // "0 withdrawals" would read as "nothing left the account".
        outcome.status = crate::report::journal::StepStatus::Failed;
    }
    Ok(outcome)
}

/// Every source here is /sapi, which Binance's testnets do not serve: a note, not a
/// failure.
fn not_on_testnet(ctx: &StepContext) -> Result<Outcome, ActionError> {
    let what = "withdrawals, deposits, universal and sub-account transfers, Binance Pay";
    ctx.note(
        Level::Info,
        format!(
            "{what}: not available on testnet (Binance's testnets have no /sapi); nothing to read"
        ),
    )?;
    let mut coverage = Coverage::default();
    coverage.not_examined(what, "not available on testnet (no /sapi)");
    coverage.record(ctx)?;
    Ok(
        Outcome::ok("not available on testnet (no /sapi): nothing to read")
            .with("withdrawals", 0u64)
            .with("unknown_withdrawals", 0u64)
            .with("deposits", 0u64)
            .with("transfers", 0u64)
            .with("pay", 0u64),
    )
}

/// Every source at once, each window concurrently.
async fn pull(ctx: &StepContext, client: &Client, range: TimeWindow) -> Result<Read, ActionError> {
    let bar = ctx
        .run
        .operator
        .progress("withdrawals, deposits, transfers, Pay", None);
    let (withdrawals, deposits, pay, sub, transfers) = tokio::join!(
        windows(Pull::Withdrawals, range, |w| {
            let c = client.clone();
            async move { c.withdrawals_window(w).await }
        }),
        windows(Pull::Deposits, range, |w| {
            let c = client.clone();
            async move { c.deposits_window(w).await }
        }),
        windows(Pull::PayTransactions, range, |w| {
            let c = client.clone();
            async move { c.pay_transactions_window(w).await }
        }),
        async { client.sub_account_transfers(range).await },
        join_all(UNIVERSAL_TRANSFER_TYPES.iter().map(|t| {
            let c = client.clone();
            async move { (*t, c.universal_transfers(t, range).await) }
        })),
    );
    bar.finish_and_clear();

    let mut gaps = Vec::new();
    let mut failed = Vec::new();
    let mut unread = |what: &str, err: Option<ExchangeError>| {
        let Some(e) = err else { return false };
        failed.push(e.rejection());
        gaps.push(format!("{what}: {e}"));
        true
    };
    let (withdrawals, err) = withdrawals;
    let withdrawals_unread = unread("withdrawals", err);
    let (deposits, err) = deposits;
    unread("deposits", err);
    let (pay, err) = pay;
    unread("Binance Pay", err);
    let mut sources = 4 + transfers.len();
    let mut sub_not_applicable = false;
    let sub = match sub {
        Ok(list) => list,
        Err(e) if e.kind() == ErrorKind::NotApplicable => {
            sub_not_applicable = true;
            ctx.note(
                Level::Detail,
                "sub-account transfers: not a master account's key; nothing to read",
            )?;
            sources -= 1;
            Vec::new()
        }
        Err(e) => {
            unread("sub-account transfers", Some(e));
            Vec::new()
        }
    };
    let mut universal = Vec::new();
    for (kind, result) in transfers {
        match result {
            Ok(list) => universal.extend(list),
            Err(e) => {
                unread(&format!("universal transfers {kind}"), Some(e));
            }
        }
    }
    Ok(Read {
        withdrawals,
        deposits,
        pay,
        sub,
        universal,
        gaps,
        failed,
        sources,
        sub_not_applicable,
        withdrawals_unread,
    })
}

fn record_coverage(
    ctx: &StepContext,
    read: &Read,
    range: TimeWindow,
    older_than_served: bool,
) -> Result<(), ActionError> {
    let gaps = &read.gaps;
    let mut coverage = Coverage::default();
    for source in [
        "withdrawals",
        "deposits",
        "Binance Pay",
        "sub-account transfers",
    ] {
        let prefix = format!("{source}:");
        match gaps.iter().find(|g| g.starts_with(&prefix)) {
            Some(why) => coverage.gap(source, "", Some(range), why),
            // Only a master account's key reads it: not read, and not a gap either.
            None if source == "sub-account transfers" && read.sub_not_applicable => coverage
                .not_examined(
                    source,
                    "not a master account's key (with the master key as the responder key, the owning sub-account's transfers are read by subaccount-transfers)",
                ),
            None => coverage.read(source, "", Some(range)),
        }
    }
    for kind in UNIVERSAL_TRANSFER_TYPES {
        let prefix = format!("universal transfers {kind}:");
        match gaps.iter().find(|g| g.starts_with(&prefix)) {
            Some(why) => coverage.gap("universal transfers", kind, Some(range), why),
            None => coverage.read("universal transfers", kind, Some(range)),
        }
        if older_than_served {
            coverage.gap(
                "universal transfers",
                kind,
                Some(range),
                "Binance serves the last six months only",
            );
        }
    }
    coverage.not_examined(
        "internal transfers between sub-accounts' own wallets",
        "not examined by respond",
    );
    coverage.record(ctx)
}

/// The withdrawals' evidence, with a finding for each to an unknown address (and each
/// at all when the leaked key could withdraw); returns how many went to unknown
/// addresses.
fn withdrawals(
    ctx: &StepContext,
    withdrawals: &[crate::exchange::Withdrawal],
    known: &BTreeSet<String>,
    withdrawals_enabled: bool,
) -> Result<usize, ActionError> {
    let mut unknown = 0usize;
    let mut rows = Vec::new();
    for w in withdrawals {
        let is_known = known.contains(&w.address);
        let mut r = row(None, w);
        if let Json::Object(map) = &mut r {
            map.insert("statusText".into(), json!(withdrawal_status(w.status)));
            map.insert("knownAddress".into(), json!(is_known));
        }
        rows.push(r);
        if !is_known {
            unknown += 1;
        }
        if !is_known || withdrawals_enabled {
            let why = match (is_known, known.is_empty()) {
                (false, true) => {
                    "no known-addresses file was given, so every address counts as unknown"
                }
                (false, false) => "the address is not in your known-addresses file",
                (true, _) => "the leaked key had withdrawals enabled",
            };
            ctx.finding(
                if is_known {
                    Severity::High
                } else {
                    Severity::Critical
                },
                format!(
                    "Withdrawal of {} {} to {} ({}) at {} UTC — {why}",
                    dec(w.amount),
                    w.coin,
                    w.address,
                    w.network.clone().unwrap_or_default(),
                    w.apply_time
                ),
                json!({
                    "id": w.id, "coin": w.coin, "amount": dec(w.amount), "address": w.address,
                    "network": w.network, "txId": w.tx_id, "applyTime": w.apply_time,
                    "status": withdrawal_status(w.status), "knownAddress": is_known,
                }),
            )?;
        }
    }
    ctx.evidence("withdrawals", rows)?;
    Ok(unknown)
}

/// An evidence row with its time in words (`timeUtc`) beside the milliseconds.
fn timed_row<T: serde::Serialize>(item: &T, time_ms: i64) -> Json {
    let mut r = row(None, item);
    if let Json::Object(map) = &mut r {
        map.insert("timeUtc".into(), json!(rfc3339(time_ms)));
    }
    r
}

/// Deposits, transfers (universal and sub-account) and Pay, as evidence tables.
fn record_evidence(ctx: &StepContext, read: &Read) -> Result<(), ActionError> {
    ctx.evidence(
        "deposits",
        read.deposits
            .iter()
            .map(|d| timed_row(d, d.insert_time))
            .collect(),
    )?;
    ctx.evidence(
        "transfers",
        read.universal
            .iter()
            .map(|t| timed_row(t, t.timestamp))
            .chain(read.sub.iter().map(|t| row(Some("sub-account"), t)))
            .collect(),
    )?;
    ctx.evidence("pay", read.pay.iter().map(|p| row(None, p)).collect())
}
