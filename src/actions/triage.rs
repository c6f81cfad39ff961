//! `binance.key_permissions`: is the leaked key live, what can it do, and how much can
//! it reach — the first screen of an incident.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::util::{dec, rfc3339, Coverage, Prices};
use super::{Action, ActionError, ActionSpec, BoxFuture, Kind, Outcome, OutputSpec, StepContext};
use crate::exchange::{ApiRestrictions, ExchangeError, Market, Rejection};
use crate::operator::Level;
use crate::report::journal::Severity;
use crate::secret::Role;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(KeyPermissions)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.key_permissions",
    description: "Triage: is the leaked key live, what can it do (trading, futures, withdrawals, IP whitelist, age), and what value can it reach",
    kind: Kind::Evidence,
    inputs: &[super::util::QUOTE_INPUT],
    outputs: &[
        OutputSpec { name: "live", description: "Binance still accepts the key" },
        OutputSpec { name: "severity", description: "critical, high, medium or low" },
        OutputSpec { name: "can_withdraw", description: "withdrawals enabled" },
        OutputSpec { name: "can_trade", description: "spot/margin trading enabled" },
        OutputSpec { name: "can_futures", description: "futures enabled" },
        OutputSpec { name: "can_transfer", description: "internal or universal transfer permitted" },
        OutputSpec { name: "ip_restricted", description: "an IP whitelist is set" },
        OutputSpec { name: "created", description: "when the key was created (UTC)" },
        OutputSpec { name: "age_days", description: "days since the key was created" },
        OutputSpec { name: "open_positions", description: "open USDⓈ-M and COIN-M positions the key can close or add to (0 when live is false or futures are not enabled)" },
        OutputSpec { name: "reachable_value", description: "estimated value of every wallet the key can reach (spot, margin, futures), in the quote asset" },
        OutputSpec { name: "withdrawable_value", description: "estimated value the key could withdraw now (spot wallet, when withdrawals are enabled)" },
        OutputSpec { name: "can_margin", description: "margin loans enabled" },
        OutputSpec { name: "rejected_code", description: "Binance's code when the key was already rejected" },
        OutputSpec { name: "refused", description: "Binance refuses the key from this machine (-2015/-2014): NOT proven dead; it may be live elsewhere (an IP whitelist)" },
        OutputSpec { name: "permissions_read", description: "the key's permissions were read (apiRestrictions); when not, every permission is assumed" },
        OutputSpec { name: "not_enabled", description: "markets the key may not trade on (spot, margin, usdm, coinm): it cannot have placed orders there" },
        OutputSpec { name: "can_options", description: "options trading enabled" },
        OutputSpec { name: "can_portfolio_margin", description: "portfolio margin trading enabled" },
        OutputSpec { name: "answered", description: "how each liveness endpoint answered the key (accepted, refused, not_found, inconclusive), for the deletion proof" },
    ],
};

pub struct KeyPermissions;

/// The liveness endpoints triage reads, as verify_revoked probes them.
const ACCOUNT_PATH: &str = "/api/v3/account";
const RESTRICTIONS_PATH: &str = "/sapi/v1/account/apiRestrictions";

/// How an endpoint answered the key, in verify_revoked's classes.
fn answer_class<T>(result: &Result<T, ExchangeError>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        // A 2xx that could not be read still accepted the key.
        Err(ExchangeError::Decode { status, .. }) if (200..300).contains(status) => "accepted",
        Err(e) => match e.rejection() {
            Some(Rejection::NotFound) => "not_found",
            Some(Rejection::Refused | Rejection::BadKeyFormat) => "refused",
            _ => "inconclusive",
        },
    }
}

/// What the key can do, from the permission endpoint (or the account on testnet).
struct Facts {
    restrictions: Option<ApiRestrictions>,
    can_trade: bool,
    can_withdraw: bool,
    can_futures: bool,
    can_margin: bool,
    can_transfer: bool,
    can_options: bool,
    can_portfolio_margin: bool,
    ip_restricted: bool,
    created_ms: Option<i64>,
    /// Read from apiRestrictions (not assumed).
    known: bool,
}

impl Facts {
    fn unknown() -> Facts {
        Facts {
            restrictions: None,
            can_trade: false,
            can_withdraw: false,
            can_futures: false,
            can_margin: false,
            can_transfer: false,
            can_options: false,
            can_portfolio_margin: false,
            ip_restricted: false,
            created_ms: None,
            known: false,
        }
    }

    /// What the permission endpoint says; on a testnet, what the account says; when
    /// neither was read, the worst.
    fn read(
        restrictions: Option<&ApiRestrictions>,
        account: Option<&crate::exchange::SpotAccount>,
        on_testnet: bool,
    ) -> Facts {
        match restrictions {
            Some(r) => Facts {
                restrictions: Some(r.clone()),
                can_trade: r.enable_spot_and_margin_trading,
                can_withdraw: r.enable_withdrawals,
                can_futures: r.enable_futures,
                can_margin: r.enable_margin,
                can_transfer: r.enable_internal_transfer || r.permits_universal_transfer,
                can_options: r.enable_vanilla_options,
                can_portfolio_margin: r.enable_portfolio_margin_trading,
                ip_restricted: r.ip_restrict,
                created_ms: r.create_time,
                known: true,
            },
            // Testnet: the account says whether the key trades and withdraws.
            None if on_testnet && account.is_some() => {
                let a = account.expect("checked");
                Facts {
                    can_trade: a.can_trade,
                    can_withdraw: a.can_withdraw,
                    ..Facts::unknown()
                }
            }
            // Unknown: assume the worst.
            None => Facts {
                can_trade: true,
                can_withdraw: true,
                can_futures: true,
                can_margin: true,
                can_transfer: true,
                can_options: true,
                can_portfolio_margin: true,
                ..Facts::unknown()
            },
        }
    }

    /// What the key can do, in words, the worst last.
    fn can(&self) -> Vec<&'static str> {
        let mut can = vec!["read"];
        for (yes, what) in [
            (self.can_trade, "spot & margin trading"),
            (self.can_margin, "margin loans"),
            (self.can_futures, "futures"),
            (self.can_options, "options"),
            (self.can_portfolio_margin, "portfolio margin"),
            (self.can_transfer, "internal/universal transfers"),
            (self.can_withdraw, "WITHDRAWALS"),
        ] {
            if yes {
                can.push(what);
            }
        }
        can
    }

    /// Markets the key may not place or cancel orders on, when its permissions were
    /// read: spot and cross margin share "Enable Spot & Margin Trading"; USDⓈ-M and
    /// COIN-M need "Enable Futures" (for reads too).
    fn not_enabled(&self) -> Vec<&'static str> {
        if !self.known {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !self.can_trade {
            out.extend(["spot", "margin"]);
        }
        if !self.can_futures {
            out.extend(["usdm", "coinm"]);
        }
        out
    }

    fn severity(&self) -> &'static str {
        let trades =
            self.can_trade || self.can_futures || self.can_options || self.can_portfolio_margin;
        if self.can_withdraw || trades && !self.ip_restricted {
            "critical"
        } else if trades || self.can_transfer {
            "high"
        } else if !self.ip_restricted {
            "medium"
        } else {
            "low"
        }
    }
}

/// Everything triage reads, in one round trip: permissions, every wallet the key can
/// read, open futures positions, prices.
type Reads = (
    Result<crate::exchange::ApiRestrictions, ExchangeError>,
    Result<crate::exchange::SpotAccount, ExchangeError>,
    Result<Vec<crate::exchange::TickerPrice>, ExchangeError>,
    Result<crate::exchange::MarginAccount, ExchangeError>,
    Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
    Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
    Result<Vec<crate::exchange::Position>, ExchangeError>,
    Result<Vec<crate::exchange::Position>, ExchangeError>,
);

async fn read_all(client: crate::exchange::Client) -> Reads {
    tokio::join!(
        client.api_restrictions(),
        client.account(),
        client.ticker_prices(Market::Spot),
        client.margin_account(),
        client.futures_balances(Market::UsdM),
        client.futures_balances(Market::CoinM),
        client.position_risk(Market::UsdM),
        client.position_risk(Market::CoinM),
    )
}

impl Action for KeyPermissions {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    /// Triage needs nothing from earlier steps: its reads go out with the run's first
    /// request.
    fn warm_up(
        &self,
        client: &crate::exchange::Client,
        _step: &crate::playbook::Step,
    ) -> Option<super::BoxFuture<'static, super::Warm>> {
        let client = client.clone();
        Some(Box::pin(async move {
            let reads = read_all(client).await;
            Box::new((reads, std::time::Instant::now())) as super::Warm
        }))
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let quote = ctx.args.text("quote").unwrap_or("USDT").to_string();
            let client = ctx.client(Role::Leaked)?;
            // One round trip: permissions, every wallet the key can read, prices.
            // Started with the run, beside the clock check (see `warm_up`); read now only
            // when this step was not among the first.
            let (restrictions, account, tickers, margin, usdm, coinm, usdm_pos, coinm_pos) =
                match ctx.take_warm::<Reads>().await {
                    Some((reads, _)) => reads,
                    None => read_all(client.clone()).await,
                };
            // Open futures positions are part of what the key can reach: it can close
            // them at a loss or add to them. A refused read (futures not enabled) has none.
            let positions: Vec<crate::exchange::Position> = [usdm_pos, coinm_pos]
                .into_iter()
                .filter_map(Result::ok)
                .flatten()
                .filter(|p| p.is_open())
                .collect();
            let on_testnet = matches!(restrictions, Err(ExchangeError::NotOnTestnet { .. }));
            let answered = answered(&restrictions, &account, on_testnet);
            let (restrictions, account) =
                match not_live(ctx, restrictions, account, on_testnet, answered.clone()).await? {
                    Answer::Live(restrictions, account) => (restrictions, account),
                    Answer::Done(outcome) => return Ok(outcome),
                };
            let (restrictions, account, unread) = treat_as_live(ctx, restrictions, account)?;
            let facts = Facts::read(restrictions.as_ref(), account.as_ref(), on_testnet);
            let prices = tickers
                .as_ref()
                .map(|t| Prices::new(t, &quote))
                .unwrap_or_default();
            let reach = Reach::price(&prices, account.as_ref(), &margin, &usdm, &coinm);
            let severity = facts.severity();
            let now = Utc::now();
            let age_days = facts
                .created_ms
                .map(|ms| (now.timestamp_millis() - ms) / 86_400_000);
            let created = facts
                .created_ms
                .map(rfc3339)
                .unwrap_or_else(|| "unknown".into());
            let can = facts.can();
            let key = client.key_masked().unwrap_or_default();
            let screen = Screen {
                key: &key,
                severity,
                created: &created,
                age_days,
                can: &can,
                on_testnet,
                quote: &quote,
                positions: &positions,
            };
            tell(ctx, &facts, &reach, &screen)?;
            findings_and_coverage(ctx, &facts, &key)?;
            record_evidence(ctx, &facts, &reach, &screen, account.as_ref())?;
            Ok(live_outcome(&facts, &reach, &screen, &unread, answered))
        })
    }
}

/// What could not be read is said, and the key is treated as live: containment first,
/// the cancel is attempted whatever triage could not learn. Returns what was read, and
/// what was not, in words.
#[allow(clippy::type_complexity)]
fn treat_as_live(
    ctx: &StepContext,
    restrictions: Result<ApiRestrictions, ExchangeError>,
    account: Result<crate::exchange::SpotAccount, ExchangeError>,
) -> Result<
    (
        Option<ApiRestrictions>,
        Option<crate::exchange::SpotAccount>,
        Vec<String>,
    ),
    ActionError,
> {
    let mut unread: Vec<String> = Vec::new();
    let restrictions = match restrictions {
        Ok(r) => Some(r),
        // Testnets have no /sapi: fall back to what the account says.
        Err(ExchangeError::NotOnTestnet { .. }) => None,
        Err(e) => {
            ctx.note(
                Level::Alert,
                format!("Triage could not read the key's permissions ({e}). The key is treated as LIVE with every permission; going on to the cancel."),
            )?;
            unread.push("the key's permissions".to_string());
            None
        }
    };
    let account = match account {
        Ok(a) => Some(a),
        Err(e) => {
            ctx.note(
                Level::Alert,
                format!("Triage could not read the spot account ({e}): the spot wallet is left out of the value below; going on to the cancel."),
            )?;
            unread.push("the spot account".to_string());
            None
        }
    };
    Ok((restrictions, account, unread))
}

/// The triage's evidence table: one row.
fn record_evidence(
    ctx: &StepContext,
    facts: &Facts,
    reach: &Reach,
    s: &Screen,
    account: Option<&crate::exchange::SpotAccount>,
) -> Result<(), ActionError> {
    let (key, severity, positions, quote) = (s.key, s.severity, s.positions, s.quote);
    ctx.evidence(
        "key-permissions",
        vec![json!({
            "key": key,
            "live": true,
            "severity": severity,
            "restrictions": facts.restrictions,
            "canTrade": account.as_ref().map(|a| a.can_trade),
            "canWithdraw": account.as_ref().map(|a| a.can_withdraw),
            "permissions": account.as_ref().map(|a| a.permissions.clone()),
            "reachableValue": dec(reach.value.round_dp(2)),
            "openPositions": positions.len(),
            "quote": quote,
        })],
    )
}

/// A live key's outcome: what it may do and reach; failed when triage could not read
/// what it may do.
fn live_outcome(
    facts: &Facts,
    reach: &Reach,
    s: &Screen,
    unread: &[String],
    answered: serde_json::Value,
) -> Outcome {
    let (severity, can, on_testnet, created, age_days, positions) = (
        s.severity,
        s.can,
        s.on_testnet,
        s.created,
        s.age_days,
        s.positions,
    );
    let mut outcome = Outcome::ok(format!(
        "key is live; severity {severity}; can {}",
        can.join(", ")
    ));
    if !unread.is_empty() {
        // The run goes on (the cancel comes next), and ends as failed: triage did
        // not learn what the key may do.
        outcome.status = crate::report::journal::StepStatus::Failed;
        outcome.summary = format!(
            "key treated as live: could not read {}; severity {severity}{}",
            unread.join(" and "),
            if facts.known || on_testnet {
                ""
            } else {
                " assumed"
            }
        );
    }
    outcome
        .with("live", true)
        .with("refused", false)
        .with("permissions_read", facts.known)
        .with("not_enabled", facts.not_enabled())
        .with("can_options", facts.can_options)
        .with("can_portfolio_margin", facts.can_portfolio_margin)
        .with("answered", answered)
        .with("severity", severity)
        .with("can_withdraw", facts.can_withdraw)
        .with("can_trade", facts.can_trade)
        .with("can_futures", facts.can_futures)
        .with("can_transfer", facts.can_transfer)
        .with("ip_restricted", facts.ip_restricted)
        .with("created", created)
        .with(
            "age_days",
            age_days
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        )
        .with("reachable_value", dec(reach.value.round_dp(2)))
        .with("open_positions", positions.len() as u64)
        .with(
            "withdrawable_value",
            if facts.can_withdraw {
                dec(reach.withdrawable.round_dp(2))
            } else {
                "0".into()
            },
        )
        .with("can_margin", facts.can_margin)
}

/// How each liveness endpoint answered this key: verify_revoked takes -2008 as proof of
/// deletion only from an endpoint that answered it otherwise before.
fn answered<R, A>(
    restrictions: &Result<R, ExchangeError>,
    account: &Result<A, ExchangeError>,
    on_testnet: bool,
) -> serde_json::Value {
    let mut answered = serde_json::Map::new();
    answered.insert(ACCOUNT_PATH.into(), answer_class(account).into());
    if !on_testnet {
        answered.insert(RESTRICTIONS_PATH.into(), answer_class(restrictions).into());
    }
    serde_json::Value::Object(answered)
}

/// What the two liveness reads say: the key is live (or may be: go on with what was
/// read), or triage is over (a wrong secret, a dead key, a key refused here).
enum Answer {
    Live(
        Result<ApiRestrictions, ExchangeError>,
        Result<crate::exchange::SpotAccount, ExchangeError>,
    ),
    Done(Outcome),
}

async fn not_live(
    ctx: &StepContext,
    restrictions: Result<ApiRestrictions, ExchangeError>,
    account: Result<crate::exchange::SpotAccount, ExchangeError>,
    on_testnet: bool,
    answered: serde_json::Value,
) -> Result<Answer, ActionError> {
    let rejection = |r: Option<&ExchangeError>| r.and_then(|e| e.rejection());
    let r_restrictions = rejection(restrictions.as_ref().err());
    let r_account = rejection(account.as_ref().err());
    if r_restrictions == Some(Rejection::BadSignature) {
        return wrong_secret(ctx, restrictions.expect_err("an error")).map(Answer::Done);
    }
    if r_account == Some(Rejection::BadSignature) {
        return wrong_secret(ctx, account.expect_err("an error")).map(Answer::Done);
    }
    // Accepted by one endpoint: live, whatever the other said.
    if restrictions.is_err() && account.is_err() {
        let pick = |wanted: &dyn Fn(Rejection) -> bool| {
            [restrictions.as_ref().err(), account.as_ref().err()]
                .into_iter()
                .flatten()
                .find(|e| e.rejection().is_some_and(wanted))
        };
        if let Some(e) = pick(&|r| r == Rejection::NotFound) {
            return dead_key(ctx, e, answered).await.map(Answer::Done);
        }
        if let Some(e) = pick(&|_| true) {
            return refused_here(ctx, e, answered).await.map(Answer::Done);
        }
        // Neither said anything about the key. When nothing answered at all the
        // exchange is unusable (exit 3); otherwise go on as if the key were live.
        let got_an_answer = |e: Option<&ExchangeError>| e.is_some_and(|e| e.is_unhelpful_answer());
        if !got_an_answer(account.as_ref().err())
            && (on_testnet || !got_an_answer(restrictions.as_ref().err()))
        {
            return Err(account.expect_err("an error").into());
        }
    }
    Ok(Answer::Live(restrictions, account))
}

/// Blast radius: what the key can reach, per wallet, priced from public prices.
struct Reach {
    value: rust_decimal::Decimal,
    by_wallet: std::collections::BTreeMap<&'static str, rust_decimal::Decimal>,
    /// The spot wallet's value: what a key that may withdraw can take now.
    withdrawable: rust_decimal::Decimal,
    unpriced: Vec<String>,
}

impl Reach {
    fn price(
        prices: &Prices,
        account: Option<&crate::exchange::SpotAccount>,
        margin: &Result<crate::exchange::MarginAccount, ExchangeError>,
        usdm: &Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
        coinm: &Result<Vec<crate::exchange::FuturesBalance>, ExchangeError>,
    ) -> Reach {
        let mut holdings: Vec<(&'static str, String, rust_decimal::Decimal)> = account
            .map(|a| a.balances.clone())
            .unwrap_or_default()
            .iter()
            .map(|b| ("spot", b.asset.clone(), b.free + b.locked))
            .collect();
        if let Ok(m) = margin {
            holdings.extend(
                m.user_assets
                    .iter()
                    .map(|a| ("margin", a.asset.clone(), a.net_asset)),
            );
        }
        for (wallet, result) in [("usdm", usdm), ("coinm", coinm)] {
            if let Ok(list) = result {
                holdings.extend(list.iter().map(|b| (wallet, b.asset.clone(), b.balance)));
            }
        }
        let mut value = rust_decimal::Decimal::ZERO;
        let mut by_wallet: std::collections::BTreeMap<&'static str, rust_decimal::Decimal> =
            Default::default();
        let mut unpriced = Vec::new();
        for (wallet, asset, amount) in &holdings {
            if amount.is_zero() {
                continue;
            }
            match prices.value(asset, *amount) {
                Some(v) => {
                    value += v;
                    *by_wallet.entry(wallet).or_default() += v;
                }
                None => unpriced.push(format!("{wallet} {asset}")),
            }
        }
        let withdrawable = by_wallet.get("spot").copied().unwrap_or_default();
        Reach {
            value,
            by_wallet,
            withdrawable,
            unpriced,
        }
    }
}

/// What the first screen says besides the facts and the reach.
struct Screen<'a> {
    key: &'a str,
    severity: &'static str,
    created: &'a str,
    age_days: Option<i64>,
    can: &'a [&'static str],
    on_testnet: bool,
    quote: &'a str,
    positions: &'a [crate::exchange::Position],
}

/// One screen: what is happening and how bad it is.
fn tell(ctx: &StepContext, facts: &Facts, reach: &Reach, s: &Screen) -> Result<(), ActionError> {
    let Screen {
        key,
        severity,
        created,
        age_days,
        can,
        on_testnet,
        quote,
        positions,
    } = s;
    let level = if matches!(*severity, "critical" | "high") {
        Level::Alert
    } else {
        Level::Warn
    };
    ctx.note(
        level,
        format!("Key {key} is LIVE — severity {}", severity.to_uppercase()),
    )?;
    ctx.note(
        Level::Info,
        format!(
            "  created {created}{}; {}",
            age_days
                .map(|d| format!(" ({d} days ago)"))
                .unwrap_or_default(),
            if !facts.known {
                "IP whitelist unknown (its permissions were not read)"
            } else if facts.ip_restricted {
                "restricted to whitelisted IPs"
            } else {
                "NO IP whitelist: usable from anywhere"
            }
        ),
    )?;
    ctx.note(
        Level::Info,
        format!(
            "  it can: {}{}",
            can.join(", "),
            if facts.known || *on_testnet {
                ""
            } else {
                " (assumed: its permissions could not be read)"
            }
        ),
    )?;
    tell_reach(ctx, facts, reach, quote, positions)
}

/// Where the key may not trade, what it can reach, its open positions.
fn tell_reach(
    ctx: &StepContext,
    facts: &Facts,
    reach: &Reach,
    quote: &str,
    positions: &[crate::exchange::Position],
) -> Result<(), ActionError> {
    let not_enabled = facts.not_enabled();
    if !not_enabled.is_empty() {
        ctx.note(
            Level::Info,
            format!(
                "  not enabled on this key: {} — it cannot have placed orders there",
                not_enabled.join(", ")
            ),
        )?;
    }
    let wallets: Vec<String> = reach
        .by_wallet
        .iter()
        .map(|(w, v)| format!("{w} {}", dec(v.round_dp(2))))
        .collect();
    ctx.note(
        Level::Info,
        format!(
            "  reachable value: ≈ {} {quote} ({}){}",
            dec(reach.value.round_dp(2)),
            wallets.join(", "),
            if facts.can_withdraw {
                format!(
                    "; ≈ {} {quote} can be withdrawn right now",
                    dec(reach.withdrawable.round_dp(2))
                )
            } else {
                String::new()
            }
        ),
    )?;
    if !positions.is_empty() {
        ctx.note(
            Level::Info,
            format!(
                "  open futures positions: {} ({})",
                positions.len(),
                positions
                    .iter()
                    .map(super::balances::describe_position)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )?;
    }
    ctx.note(
        Level::Detail,
        format!(
            "  priced from public prices{}",
            if reach.unpriced.is_empty() {
                String::new()
            } else {
                format!(" (not priced: {})", reach.unpriced.join(", "))
            }
        ),
    )
}

/// Findings on what the key may do, and the markets respond does not cancel: when the
/// key may trade there, a person has to look, and the report's coverage says so.
fn findings_and_coverage(ctx: &StepContext, facts: &Facts, key: &str) -> Result<(), ActionError> {
    if facts.can_withdraw {
        ctx.finding(
            Severity::Critical,
            "Withdrawals are enabled on the leaked key",
            json!({"key": key}),
        )?;
    }
    if (facts.can_trade || facts.can_futures || facts.can_options || facts.can_portfolio_margin)
        && !facts.ip_restricted
        && facts.known
    {
        ctx.finding(
            Severity::High,
            "The leaked key can trade and has no IP whitelist",
            json!({"key": key}),
        )?;
    }
    let mut coverage = Coverage::default();
    for (enabled, what, api) in [
        (facts.can_options, "options", "/eapi"),
        (facts.can_portfolio_margin, "portfolio margin", "/papi"),
    ] {
        if !(enabled && facts.known) {
            continue;
        }
        coverage.not_examined(
            &format!("{what} ({api}) orders and positions"),
            &format!("{what} trading is ENABLED on this key; respond does not list or cancel there: check in the Binance app"),
        );
        ctx.note(
            Level::Alert,
            format!("  {what} trading is enabled on this key: respond does not list or cancel {what} orders ({api}) — check them in the Binance app"),
        )?;
        ctx.finding(
            Severity::High,
            format!("The leaked key may trade {what}, which respond does not cancel: check {what} orders and positions by hand"),
            json!({"key": key}),
        )?;
    }
    coverage.record(ctx)
}

/// -1022: the secret does not match the key. That says nothing about whether the key is
/// live (it may well be), so it is not a dead key: triage fails, nothing is skipped as
/// if the key were gone, and the operator is told to fix the secret.
fn wrong_secret(ctx: &StepContext, e: ExchangeError) -> Result<Outcome, ActionError> {
    ctx.note(
        Level::Alert,
        format!(
            "Binance rejects the signature (-1022): the secret given does not belong to key {}. The key itself may still be LIVE. Check BINANCE_API_SECRET (BINANCE_PRIVATE_KEY_FILE for an Ed25519 or RSA key, or the key file) and run again.",
            ctx.run.key_masked.as_deref().unwrap_or("(no key)")
        ),
    )?;
    Err(e.into())
}

/// -2008 at triage: Binance says the key does not exist. A finding, not a failure (a
/// typo or a testnet key gets it too, so it is not called a proven deletion). Later
/// steps read with the responder key where there is one.
async fn dead_key(
    ctx: &StepContext,
    e: &ExchangeError,
    answered: serde_json::Value,
) -> Result<Outcome, ActionError> {
    let (services, code) = unusable_here(ctx, e);
    let what = "Binance says this key does not exist (-2008): deleted, or never valid here (a typo, or a testnet key)";
    ctx.note(
        Level::Warn,
        format!("The leaked key is already rejected: {what}."),
    )?;
    ctx.note(
        Level::Info,
        "Orders cannot be cancelled with it. Check in API Management that the key is really gone.",
    )?;
    if services.responder.is_some() {
        ctx.note(Level::Info, "Evidence will be read with the responder key.")?;
        // Orders outlive their key: whatever is still open cannot be cancelled through
        // the API any more, so a person has to do it.
        left_open(ctx, "the dead key cannot cancel them").await?;
    } else {
        no_responder(ctx)?;
    }
    ctx.finding(
        Severity::Info,
        format!("The leaked key was already rejected at triage ({what})"),
        json!({"code": code}),
    )?;
    Ok(not_live_outcome(
        format!("key already rejected: {what}"),
        false,
        "unknown",
        answered,
        code,
    ))
}

/// This machine cannot use the leaked key (dead, or refused from here): later steps read
/// with the responder key. The run's services, and Binance's code.
fn unusable_here<'a>(
    ctx: &'a StepContext,
    e: &ExchangeError,
) -> (&'a crate::engine::Services, Option<i64>) {
    let services = &ctx.run.services;
    services.leaked_dead.store(true, Ordering::SeqCst);
    (services, e.code())
}

/// The outcome of a key that is not live here: dead, or `refused` from this machine.
fn not_live_outcome(
    summary: String,
    refused: bool,
    severity: &str,
    answered: serde_json::Value,
    code: Option<i64>,
) -> Outcome {
    Outcome::ok(summary)
        .with("live", false)
        .with("refused", refused)
        .with("severity", severity)
        .with("created", "unknown")
        .with("answered", answered)
        .with(
            "rejected_code",
            code.map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        )
}

/// -2015 (or -2014) at triage: Binance refuses the key from this machine. That is NOT
/// proof it is dead: most often the key has an IP whitelist that leaves this machine
/// out, and a whitelisted key usually leaks with the server it runs on, where the
/// attacker can still use it. The cancel is still attempted, the deletion step runs, and
/// only -2008 later, on an endpoint that answered -2015 now, proves the deletion.
async fn refused_here(
    ctx: &StepContext,
    e: &ExchangeError,
    answered: serde_json::Value,
) -> Result<Outcome, ActionError> {
    let (services, code) = unusable_here(ctx, e);
    let key = ctx.run.key_masked.as_deref().unwrap_or("(no key)");
    ctx.note(
        Level::Alert,
        format!(
            "Binance refuses key {key} from this machine ({}): refused from this machine, NOT proven dead.",
            code.map(|c| c.to_string()).unwrap_or_default()
        ),
    )?;
    ctx.note(
        Level::Info,
        if e.rejection() == Some(Rejection::BadKeyFormat) {
            "-2014 means the API key given is not in Binance's format (a typo, a truncated copy): nothing is known about the leaked key itself. Check BINANCE_API_KEY (or the key file); the cancel is still attempted, and the key must be deleted in API Management."
        } else {
            "-2015 means this key, this address or this action is refused — most often an IP whitelist that leaves this machine out. A whitelisted key usually leaks together with the server it runs on, so whoever holds it may still use it from there. The cancel is still attempted, and the key must be deleted in API Management."
        },
    )?;
    if services.responder.is_some() {
        ctx.note(Level::Info, "Evidence will be read with the responder key.")?;
    } else {
        no_responder(ctx)?;
    }
    ctx.finding(
        Severity::High,
        "The leaked key is refused from this machine (-2015) but NOT proven dead: it may still be live from its whitelisted addresses",
        json!({"code": code, "answered": answered}),
    )?;
    Ok(not_live_outcome(
        format!(
            "refused from this machine ({}): NOT proven dead; it may be live from its whitelisted addresses",
            code.map(|c| c.to_string()).unwrap_or_default()
        ),
        true,
        "high",
        answered,
        code,
    ))
}

fn no_responder(ctx: &StepContext) -> Result<(), ActionError> {
    ctx.note(
        Level::Warn,
        "No responder key is set, so steps that need to read the account will fail; set BINANCE_RESPONDER_API_KEY/SECRET to pull evidence.",
    )
}

/// Orders still open that the leaked key cannot cancel (read with the responder key):
/// an alert and a finding, so a person cancels them in the app.
async fn left_open(ctx: &StepContext, why: &str) -> Result<(), ActionError> {
    let Ok(reader) = ctx.client(crate::secret::Role::Responder) else {
        return Ok(());
    };
    let open = super::orders::open_everywhere(ctx, &reader)
        .await
        .unwrap_or_default();
    if open.is_empty() {
        return Ok(());
    }
    ctx.note(
        Level::Alert,
        format!(
            "{} open order(s) remain and {why}: cancel them in the Binance app (Orders > Open Orders > Cancel All) on every market",
            open.len()
        ),
    )?;
    ctx.finding(
        Severity::High,
        format!(
            "{} open order(s) left by the dead key; cancel them by hand",
            open.len()
        ),
        json!(open
            .iter()
            .map(|o| super::util::row(Some(o.market.as_str()), o))
            .collect::<Vec<_>>()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_portfolio_margin_count_in_severity() {
        let read_only = Facts {
            ip_restricted: true,
            known: true,
            ..Facts::unknown()
        };
        assert_eq!(read_only.severity(), "low");
        let options = Facts {
            can_options: true,
            ..read_only
        };
        assert_eq!(options.severity(), "high");
        let pm = Facts {
            can_portfolio_margin: true,
            ip_restricted: false,
            known: true,
            ..Facts::unknown()
        };
        assert_eq!(pm.severity(), "critical");
        assert_eq!(pm.not_enabled(), ["spot", "margin", "usdm", "coinm"]);
        assert!(
            Facts::unknown().not_enabled().is_empty(),
            "unknown: nothing assumed off"
        );
    }
}
