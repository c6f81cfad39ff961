//! `binance.key_audit`: key hygiene before anything goes wrong — the key's permissions
//! against what it is declared for, its IP whitelist, its age against the rotation
//! period, and when Binance will take its trading permission away. Read-only: two GETs.
//! A key with problems finishes the step as failed (a failed check), which is what makes
//! `respond audit` exit 1; every problem is a finding that says how to fix it.
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value as Json};

use super::util::rfc3339;
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    StepContext,
};
use crate::exchange::{ApiRestrictions, ExchangeError, SpotAccount};
use crate::operator::Level;
use crate::report::journal::Severity;
use crate::report::journal::StepStatus;
use crate::secret::Role;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(KeyAudit)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.key_audit",
    description: "Audit a key's hygiene: permissions against its purpose (data or trading; nothing needs withdrawals), IP whitelist, age against the rotation period, trading-permission expiry. Read-only; fails when it finds a problem",
    kind: Kind::Evidence,
    inputs: &[
        InputSpec {
            name: "purpose",
            ty: ArgType::Text,
            required: false,
            default: Some("trading"),
            description: "what the key is for: data (read only) or trading",
        },
        InputSpec {
            name: "rotation",
            ty: ArgType::Text,
            required: false,
            default: Some("90d"),
            description: "how old a key may get before it is replaced (e.g. 90d)",
        },
    ],
    outputs: &[
        OutputSpec { name: "problems", description: "how many problems the audit found (0: clean)" },
        OutputSpec { name: "purpose", description: "the purpose the key was audited for" },
        OutputSpec { name: "ip_restricted", description: "an IP whitelist is set (null: unknown)" },
        OutputSpec { name: "age_days", description: "days since the key was created (null: unknown)" },
        OutputSpec { name: "can_withdraw", description: "withdrawals enabled" },
        OutputSpec { name: "can_trade", description: "any trading permission enabled" },
        OutputSpec { name: "trading_expires", description: "when Binance ends the key's trading permission (UTC), if it reported a time" },
    ],
};

/// Warn this long before the trading permission expires: time to whitelist IPs or
/// replace the key before a bot stops trading.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// What the key is declared to be for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Reads only: balances, history, market data.
    Data,
    /// Places and cancels orders.
    Trading,
}

impl Purpose {
    pub fn parse(text: &str) -> Option<Purpose> {
        match text.trim() {
            "data" => Some(Purpose::Data),
            "trading" => Some(Purpose::Trading),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Data => "data",
            Purpose::Trading => "trading",
        }
    }
}

/// What Binance says about the key. `None`: not known (testnets have no `/sapi`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyFacts {
    pub spot_and_margin_trading: bool,
    pub margin_loans: bool,
    pub futures: bool,
    pub options: bool,
    pub portfolio_margin: bool,
    pub fix_trading: bool,
    pub withdrawals: bool,
    pub internal_transfer: bool,
    pub universal_transfer: bool,
    pub ip_restricted: Option<bool>,
    pub created_ms: Option<i64>,
    pub trading_expires_ms: Option<i64>,
}

impl KeyFacts {
    pub fn from_restrictions(r: &ApiRestrictions) -> KeyFacts {
        KeyFacts {
            spot_and_margin_trading: r.enable_spot_and_margin_trading,
            margin_loans: r.enable_margin,
            futures: r.enable_futures,
            options: r.enable_vanilla_options,
            portfolio_margin: r.enable_portfolio_margin_trading,
            fix_trading: r.enable_fix_api_trade,
            withdrawals: r.enable_withdrawals,
            internal_transfer: r.enable_internal_transfer,
            universal_transfer: r.permits_universal_transfer,
            ip_restricted: Some(r.ip_restrict),
            created_ms: r.create_time,
            trading_expires_ms: r.trading_authority_expiration_time,
        }
    }

    /// Testnets: only what the account endpoint says.
    pub fn from_account(a: &SpotAccount) -> KeyFacts {
        KeyFacts {
            spot_and_margin_trading: a.can_trade,
            withdrawals: a.can_withdraw,
            ..KeyFacts::default()
        }
    }

    /// The trading permissions the key has, in words.
    pub fn trading(&self) -> Vec<&'static str> {
        [
            (self.spot_and_margin_trading, "spot & margin trading"),
            (self.margin_loans, "margin loans"),
            (self.futures, "futures"),
            (self.options, "options"),
            (self.portfolio_margin, "portfolio margin"),
            (self.fix_trading, "FIX API trading"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
        .collect()
    }

    /// Everything the key can do, in words.
    pub fn can(&self) -> Vec<&'static str> {
        let mut can = vec!["read"];
        can.extend(self.trading());
        if self.internal_transfer {
            can.push("internal transfer");
        }
        if self.universal_transfer {
            can.push("universal transfer");
        }
        if self.withdrawals {
            can.push("WITHDRAWALS");
        }
        can
    }
}

/// One line of the audit: a check, whether it passed, and for a problem how to fix it.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub check: &'static str,
    /// `ok`, `problem`, or `unknown`.
    pub result: &'static str,
    /// For problems: critical, high, medium.
    pub severity: Option<Severity>,
    pub detail: String,
    /// For problems: the fix, in one sentence.
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            result: "ok",
            severity: None,
            detail: detail.into(),
            fix: None,
        }
    }

    fn unknown(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            result: "unknown",
            severity: None,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(
        check: &'static str,
        severity: Severity,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            check,
            result: "problem",
            severity: Some(severity),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn is_problem(&self) -> bool {
        self.result == "problem"
    }
}

fn days(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// "90 days" rather than humantime's "2months 29days 2h 52m 48s".
fn period(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        86_400 => "1 day".into(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ => humantime::format_duration(d).to_string(),
    }
}

fn date(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}

/// The audit itself: pure, so every rule is tested without an exchange.
pub fn assess(facts: &KeyFacts, purpose: Purpose, rotation: Duration, now_ms: i64) -> Vec<Check> {
    let trading = facts.trading();
    vec![
        withdrawals(facts),
        least_privilege(purpose, &trading),
        transfers(facts, purpose),
        ip_whitelist(facts, !trading.is_empty() || facts.withdrawals),
        self::rotation(facts, rotation, now_ms),
        trading_expiry(facts, purpose, now_ms),
    ]
}

/// Withdrawals: no purpose needs them.
fn withdrawals(facts: &KeyFacts) -> Check {
    if facts.withdrawals {
        Check::problem(
            "withdrawals",
            Severity::Critical,
            "withdrawals are enabled; no purpose needs them, and they turn a leak into a loss",
            "In API Management, edit this key and untick \"Enable Withdrawals\" (withdraw by hand in the app when you need to).",
        )
    } else {
        Check::ok("withdrawals", "withdrawals are disabled")
    }
}

/// Trading permissions against the declared purpose.
fn least_privilege(purpose: Purpose, trading: &[&str]) -> Check {
    match purpose {
        Purpose::Data if !trading.is_empty() => Check::problem(
            "least-privilege",
            Severity::High,
            format!(
                "declared for data, but it can trade: {}",
                trading.join(", ")
            ),
            format!(
                "Edit the key and untick every trading permission ({}), leaving \"Enable Reading\" only.",
                trading.join(", ")
            ),
        ),
        Purpose::Data => Check::ok("least-privilege", "read only, as a data key should be"),
        Purpose::Trading if trading.is_empty() => Check::ok(
            "least-privilege",
            "declared for trading, but it has no trading permission (it can only read)",
        ),
        Purpose::Trading => Check::ok(
            "least-privilege",
            format!(
                "trading key: {} (untick any of these it does not use)",
                trading.join(", ")
            ),
        ),
    }
}

/// Internal and universal transfer permissions.
fn transfers(facts: &KeyFacts, purpose: Purpose) -> Check {
    if facts.internal_transfer {
        Check::problem(
            "transfers",
            Severity::Medium,
            "internal transfer is enabled: the key can move funds to other accounts",
            "Edit the key and untick \"Permits Internal Transfer\" unless it exists to move funds between your own accounts.",
        )
    } else if facts.universal_transfer && purpose == Purpose::Data {
        Check::problem(
            "transfers",
            Severity::Medium,
            "declared for data, but it can move funds between wallets (universal transfer)",
            "Edit the key and untick \"Permits Universal Transfer\": reading needs no transfers.",
        )
    } else if facts.universal_transfer {
        Check::ok(
            "transfers",
            "universal transfer between your own wallets is permitted",
        )
    } else {
        Check::ok("transfers", "no transfer permission")
    }
}

/// The IP whitelist; its absence is worse on a key that can move money.
fn ip_whitelist(facts: &KeyFacts, can_move_money: bool) -> Check {
    match facts.ip_restricted {
        Some(true) => Check::ok("ip-whitelist", "restricted to whitelisted IP addresses"),
        Some(false) => Check::problem(
            "ip-whitelist",
            if can_move_money { Severity::High } else { Severity::Medium },
            "no IP whitelist: anyone holding the key can use it from anywhere",
            "Edit the key in API Management, choose \"Restrict access to trusted IPs only\" and enter your servers' addresses.",
        ),
        None => Check::unknown(
            "ip-whitelist",
            "not reported here (testnets have no key-restrictions endpoint)",
        ),
    }
}

/// The key's age against the rotation period.
fn rotation(facts: &KeyFacts, rotation: Duration, now_ms: i64) -> Check {
    match facts.created_ms {
        Some(created) => {
            let age = days(now_ms - created);
            let limit_ms = rotation.as_millis() as i64;
            if now_ms - created > limit_ms {
                Check::problem(
                    "rotation",
                    Severity::Medium,
                    format!(
                        "created {} ({age} days ago), past the {} rotation period",
                        date(created),
                        period(rotation)
                    ),
                    "Create a new key with the same restrictions, move your systems to it, then delete this one.",
                )
            } else {
                Check::ok(
                    "rotation",
                    format!(
                        "created {} ({age} days ago); rotation due in {} days",
                        date(created),
                        days(created + limit_ms - now_ms).max(0)
                    ),
                )
            }
        }
        None => Check::unknown(
            "rotation",
            format!(
                "creation time not reported, so the {} rotation cannot be checked",
                period(rotation)
            ),
        ),
    }
}

/// When Binance lets an unrestricted key's trading permission lapse.
fn trading_expiry(facts: &KeyFacts, purpose: Purpose, now_ms: i64) -> Check {
    match facts.trading_expires_ms {
        None => Check::ok(
            "trading-expiry",
            "Binance reports no expiry for the trading permission",
        ),
        Some(at) if purpose == Purpose::Data => Check::ok(
            "trading-expiry",
            format!("trading permission expires {} (a data key does not trade)", rfc3339(at)),
        ),
        Some(at) if at <= now_ms => Check::problem(
            "trading-expiry",
            Severity::High,
            format!("the trading permission expired {}: this key can no longer trade", rfc3339(at)),
            "Restrict the key to your servers' IP addresses (Binance only lets unrestricted keys' trading lapse), or replace it with an IP-restricted key.",
        ),
        Some(at) if at - now_ms <= EXPIRY_WARNING.as_millis() as i64 => Check::problem(
            "trading-expiry",
            Severity::Medium,
            format!(
                "the trading permission expires {} (in {} days)",
                rfc3339(at),
                days(at - now_ms)
            ),
            "Restrict the key to your servers' IP addresses before then (Binance only lets unrestricted keys' trading lapse), or replace it with an IP-restricted key.",
        ),
        Some(at) => Check::ok(
            "trading-expiry",
            format!("trading permission expires {} (in {} days)", rfc3339(at), days(at - now_ms)),
        ),
    }
}

/// The finding's title carries the fix too, so every rendering (terminal, report.md,
/// report.html, --json) says how to fix what it found.
fn finding_title(check: &Check) -> String {
    let mut chars = check.detail.chars();
    let detail = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    match &check.fix {
        Some(fix) => format!("{detail}. Fix: {fix}"),
        None => detail,
    }
}

pub struct KeyAudit;

impl Action for KeyAudit {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let (purpose, rotation) = purpose_and_rotation(ctx)?;
            let client = ctx.client(Role::Leaked)?;
            let (restrictions, account) = tokio::join!(client.api_restrictions(), client.account());
            let account = account?;
            let restrictions = match restrictions {
                Ok(r) => Some(r),
                Err(ExchangeError::NotOnTestnet { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            let facts = match &restrictions {
                Some(r) => KeyFacts::from_restrictions(r),
                None => {
                    ctx.note(
                        Level::Warn,
                        "The testnet has no key-restrictions endpoint: the IP whitelist, age and trading expiry cannot be checked there; permissions come from the account.",
                    )?;
                    KeyFacts::from_account(&account)
                }
            };
            let now_ms = Utc::now().timestamp_millis();
            let checks = assess(&facts, purpose, rotation, now_ms);
            let key = client.key_masked().unwrap_or_default();
            let problems = report(ctx, &facts, &checks, purpose, rotation, &key)?;
            let age_days = facts
                .created_ms
                .map(|ms| Json::from(days(now_ms - ms)))
                .unwrap_or(Json::Null);
            let (status, summary) = if problems.is_empty() {
                (
                    StepStatus::Ok,
                    format!(
                        "clean: nothing to fix for a {} key ({} checks passed)",
                        purpose.as_str(),
                        checks.iter().filter(|c| c.result == "ok").count()
                    ),
                )
            } else {
                let names: Vec<&str> = problems.iter().map(|c| c.check).collect();
                (
                    StepStatus::Failed,
                    format!(
                        "the key fails the audit: {} problem(s) ({}); each finding says how to fix it",
                        problems.len(),
                        names.join(", ")
                    ),
                )
            };
            let mut outcome = Outcome::ok(summary)
                .with("problems", problems.len() as u64)
                .with("purpose", purpose.as_str())
                .with(
                    "ip_restricted",
                    facts.ip_restricted.map(Json::from).unwrap_or(Json::Null),
                )
                .with("age_days", age_days)
                .with("can_withdraw", facts.withdrawals)
                .with("can_trade", !facts.trading().is_empty())
                .with(
                    "trading_expires",
                    facts
                        .trading_expires_ms
                        .map(|ms| Json::from(rfc3339(ms)))
                        .unwrap_or(Json::Null),
                );
            outcome.status = status;
            Ok(outcome)
        })
    }
}

/// The step's `purpose` and `rotation` inputs, checked.
fn purpose_and_rotation(ctx: &StepContext) -> Result<(Purpose, Duration), ActionError> {
    let purpose_text = ctx.args.text("purpose").unwrap_or("trading");
    let purpose = Purpose::parse(purpose_text).ok_or_else(|| {
        ActionError::Invalid(format!(
            "purpose `{purpose_text}` is neither `data` nor `trading`"
        ))
    })?;
    let rotation_text = ctx.args.text("rotation").unwrap_or("90d");
    let rotation = crate::playbook::parse_duration(rotation_text)
        .map_err(|e| ActionError::Invalid(format!("rotation: {e}")))?;
    if rotation.is_zero() {
        return Err(ActionError::Invalid(
            "rotation must be longer than 0 days".into(),
        ));
    }
    Ok((purpose, rotation))
}

/// The checks told to the operator, each problem a finding, all of them evidence;
/// returns the problems.
fn report<'c>(
    ctx: &StepContext,
    facts: &KeyFacts,
    checks: &'c [Check],
    purpose: Purpose,
    rotation: Duration,
    key: &str,
) -> Result<Vec<&'c Check>, ActionError> {
    ctx.note(
        Level::Info,
        format!(
            "Key {key}, declared for {}; rotation every {}",
            purpose.as_str(),
            period(rotation)
        ),
    )?;
    ctx.note(Level::Info, format!("  it can: {}", facts.can().join(", ")))?;
    for check in checks {
        if !check.is_problem() {
            ctx.note(
                Level::Info,
                format!("  {:<15} {}: {}", check.check, check.result, check.detail),
            )?;
        }
    }
    let problems: Vec<&Check> = checks.iter().filter(|c| c.is_problem()).collect();
    for check in &problems {
        let fix = check.fix.clone().unwrap_or_default();
        ctx.finding(
            check.severity.unwrap_or(Severity::Medium),
            finding_title(check),
            json!({"check": check.check, "key": key, "fix": fix}),
        )?;
    }
    ctx.evidence(
        "key-audit",
        checks
            .iter()
            .map(|c| {
                json!({
                    "check": c.check,
                    "result": c.result,
                    "severity": c.severity,
                    "detail": c.detail,
                    "fix": c.fix,
                })
            })
            .collect(),
    )?;
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_795_000_000_000;
    const ROTATION: Duration = Duration::from_secs(90 * 86_400);

    fn read_only() -> KeyFacts {
        KeyFacts {
            ip_restricted: Some(true),
            created_ms: Some(NOW - 30 * DAY),
            ..KeyFacts::default()
        }
    }

    fn problems(facts: &KeyFacts, purpose: Purpose) -> Vec<&'static str> {
        assess(facts, purpose, ROTATION, NOW)
            .into_iter()
            .filter(|c| c.is_problem())
            .map(|c| c.check)
            .collect()
    }

    #[test]
    fn a_whitelisted_young_read_only_key_is_clean_for_either_purpose() {
        assert!(problems(&read_only(), Purpose::Data).is_empty());
        assert!(problems(&read_only(), Purpose::Trading).is_empty());
    }

    #[test]
    fn withdrawals_are_a_critical_problem_for_every_purpose() {
        let facts = KeyFacts {
            withdrawals: true,
            ..read_only()
        };
        for purpose in [Purpose::Data, Purpose::Trading] {
            let checks = assess(&facts, purpose, ROTATION, NOW);
            let w = checks.iter().find(|c| c.check == "withdrawals").unwrap();
            assert!(w.is_problem());
            assert_eq!(w.severity, Some(Severity::Critical));
            assert!(w.fix.as_deref().unwrap().contains("Enable Withdrawals"));
        }
    }

    #[test]
    fn trading_permissions_are_a_problem_only_for_a_data_key() {
        let facts = KeyFacts {
            spot_and_margin_trading: true,
            futures: true,
            ..read_only()
        };
        assert_eq!(problems(&facts, Purpose::Data), ["least-privilege"]);
        assert!(problems(&facts, Purpose::Trading).is_empty());
        let checks = assess(&facts, Purpose::Data, ROTATION, NOW);
        let fix = checks[1].fix.as_deref().unwrap();
        assert!(fix.contains("spot & margin trading, futures"), "{fix}");
    }

    #[test]
    fn transfers_internal_always_universal_for_data_only() {
        let internal = KeyFacts {
            internal_transfer: true,
            ..read_only()
        };
        assert_eq!(problems(&internal, Purpose::Trading), ["transfers"]);
        let universal = KeyFacts {
            universal_transfer: true,
            ..read_only()
        };
        assert_eq!(problems(&universal, Purpose::Data), ["transfers"]);
        assert!(problems(&universal, Purpose::Trading).is_empty());
    }

    #[test]
    fn a_missing_whitelist_is_high_when_the_key_can_move_money() {
        let open = KeyFacts {
            ip_restricted: Some(false),
            ..read_only()
        };
        let c = assess(&open, Purpose::Data, ROTATION, NOW);
        let ip = c.iter().find(|c| c.check == "ip-whitelist").unwrap();
        assert_eq!(ip.severity, Some(Severity::Medium));
        let trading = KeyFacts {
            spot_and_margin_trading: true,
            ..open
        };
        let c = assess(&trading, Purpose::Trading, ROTATION, NOW);
        let ip = c.iter().find(|c| c.check == "ip-whitelist").unwrap();
        assert_eq!(ip.severity, Some(Severity::High));
        // Unknown (testnet) is not a problem.
        let unknown = KeyFacts {
            ip_restricted: None,
            ..read_only()
        };
        assert!(problems(&unknown, Purpose::Data).is_empty());
    }

    #[test]
    fn rotation_counts_from_creation() {
        let old = KeyFacts {
            created_ms: Some(NOW - 91 * DAY),
            ..read_only()
        };
        assert_eq!(problems(&old, Purpose::Data), ["rotation"]);
        assert!(problems(&old, Purpose::Data).len() == 1);
        let checks = assess(&old, Purpose::Data, Duration::from_secs(180 * 86_400), NOW);
        assert!(checks.iter().all(|c| !c.is_problem()));
        let young = assess(&read_only(), Purpose::Data, ROTATION, NOW);
        let r = young.iter().find(|c| c.check == "rotation").unwrap();
        assert!(r.detail.contains("30 days ago"), "{}", r.detail);
        assert!(r.detail.contains("due in 60 days"), "{}", r.detail);
    }

    #[test]
    fn trading_expiry_warns_two_weeks_ahead_and_flags_a_lapsed_permission() {
        let trading = |expires: i64| KeyFacts {
            spot_and_margin_trading: true,
            trading_expires_ms: Some(expires),
            ..read_only()
        };
        assert!(problems(&trading(NOW + 30 * DAY), Purpose::Trading).is_empty());
        assert_eq!(
            problems(&trading(NOW + 10 * DAY), Purpose::Trading),
            ["trading-expiry"]
        );
        let lapsed = assess(&trading(NOW - DAY), Purpose::Trading, ROTATION, NOW);
        let e = lapsed.iter().find(|c| c.check == "trading-expiry").unwrap();
        assert_eq!(e.severity, Some(Severity::High));
        assert!(e.detail.contains("can no longer trade"));
        // A data key is flagged for trading at all, not for the expiry.
        assert_eq!(
            problems(&trading(NOW - DAY), Purpose::Data),
            ["least-privilege"]
        );
    }

    #[test]
    fn every_problem_has_a_one_sentence_fix() {
        let worst = KeyFacts {
            spot_and_margin_trading: true,
            withdrawals: true,
            internal_transfer: true,
            ip_restricted: Some(false),
            created_ms: Some(NOW - 400 * DAY),
            trading_expires_ms: Some(NOW - DAY),
            ..KeyFacts::default()
        };
        let checks = assess(&worst, Purpose::Trading, ROTATION, NOW);
        let found: Vec<_> = checks.iter().filter(|c| c.is_problem()).collect();
        assert_eq!(found.len(), 5, "{found:?}");
        for c in found {
            let fix = c.fix.as_deref().unwrap();
            assert!(fix.ends_with('.'), "{fix}");
            assert_eq!(fix.matches(". ").count(), 0, "one sentence: {fix}");
        }
    }

    #[test]
    fn purposes_parse() {
        assert_eq!(Purpose::parse("data"), Some(Purpose::Data));
        assert_eq!(Purpose::parse("trading"), Some(Purpose::Trading));
        assert_eq!(Purpose::parse("withdrawals"), None);
    }
}
