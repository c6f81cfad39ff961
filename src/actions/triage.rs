//! `binance.key_permissions`: is the leaked key live, what can it do, and how much can
//! it reach — the first screen of an incident.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::util::{dec, rfc3339, Prices};
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    StepContext,
};
use crate::exchange::{ApiRestrictions, ExchangeError, Market};
use crate::operator::Level;
use crate::secret::Role;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(KeyPermissions)]
}

static SPEC: ActionSpec = ActionSpec {
    name: "binance.key_permissions",
    description: "Triage: is the leaked key live, what can it do (trading, futures, withdrawals, IP whitelist, age), and what value can it reach",
    kind: Kind::Evidence,
    inputs: &[InputSpec {
        name: "quote",
        ty: ArgType::Text,
        required: false,
        default: Some("USDT"),
        description: "asset to value balances in",
    }],
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
        OutputSpec { name: "reachable_value", description: "estimated value of every wallet the key can reach (spot, margin, futures), in the quote asset" },
        OutputSpec { name: "withdrawable_value", description: "estimated value the key could withdraw now (spot wallet, when withdrawals are enabled)" },
        OutputSpec { name: "can_margin", description: "margin loans enabled" },
        OutputSpec { name: "rejected_code", description: "Binance's code when the key was already rejected" },
    ],
};

pub struct KeyPermissions;

/// What the key can do, from the permission endpoint (or the account on testnet).
struct Facts {
    restrictions: Option<ApiRestrictions>,
    can_trade: bool,
    can_withdraw: bool,
    can_futures: bool,
    can_margin: bool,
    can_transfer: bool,
    ip_restricted: bool,
    created_ms: Option<i64>,
}

impl Facts {
    fn severity(&self) -> &'static str {
        if self.can_withdraw || (self.can_trade || self.can_futures) && !self.ip_restricted {
            "critical"
        } else if self.can_trade || self.can_futures || self.can_transfer {
            "high"
        } else if !self.ip_restricted {
            "medium"
        } else {
            "low"
        }
    }
}

impl Action for KeyPermissions {
    fn spec(&self) -> &'static ActionSpec {
        &SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let quote = ctx.args.text("quote").unwrap_or("USDT").to_string();
            let client = ctx.client(Role::Leaked)?;
            // One round trip: permissions, every wallet the key can read, prices.
            let (restrictions, account, tickers, margin, usdm, coinm) = tokio::join!(
                client.api_restrictions(),
                client.account(),
                client.ticker_prices(Market::Spot),
                client.margin_account(),
                client.futures_balances(Market::UsdM),
                client.futures_balances(Market::CoinM),
            );
            let restrictions = match restrictions {
                Ok(r) => Some(r),
                // Testnets have no /sapi: fall back to what the account says.
                Err(ExchangeError::NotOnTestnet { .. }) => None,
                Err(e) if e.code() == Some(-1022) => return wrong_secret(ctx, e),
                Err(e) if e.is_credential_rejection() => return dead_key(ctx, &e).await,
                Err(e) => return Err(e.into()),
            };
            let account = match account {
                Ok(a) => a,
                Err(e) if e.code() == Some(-1022) => return wrong_secret(ctx, e),
                Err(e) if e.is_credential_rejection() => return dead_key(ctx, &e).await,
                Err(e) => return Err(e.into()),
            };
            let facts = match &restrictions {
                Some(r) => Facts {
                    restrictions: Some(r.clone()),
                    can_trade: r.enable_spot_and_margin_trading,
                    can_withdraw: r.enable_withdrawals,
                    can_futures: r.enable_futures,
                    can_margin: r.enable_margin,
                    can_transfer: r.enable_internal_transfer || r.permits_universal_transfer,
                    ip_restricted: r.ip_restrict,
                    created_ms: r.create_time,
                },
                None => Facts {
                    restrictions: None,
                    can_trade: account.can_trade,
                    can_withdraw: account.can_withdraw,
                    can_futures: false,
                    can_margin: false,
                    can_transfer: false,
                    ip_restricted: false,
                    created_ms: None,
                },
            };
            let prices = tickers
                .as_ref()
                .map(|t| Prices::new(t, &quote))
                .unwrap_or_default();
            // Blast radius: what the key can reach, per wallet, priced from public prices.
            let mut holdings: Vec<(&str, String, rust_decimal::Decimal)> = account
                .balances
                .iter()
                .map(|b| ("spot", b.asset.clone(), b.free + b.locked))
                .collect();
            if let Ok(m) = &margin {
                holdings.extend(
                    m.user_assets
                        .iter()
                        .map(|a| ("margin", a.asset.clone(), a.net_asset)),
                );
            }
            for (wallet, result) in [("usdm", &usdm), ("coinm", &coinm)] {
                if let Ok(list) = result {
                    holdings.extend(list.iter().map(|b| (wallet, b.asset.clone(), b.balance)));
                }
            }
            let mut value = rust_decimal::Decimal::ZERO;
            let mut by_wallet: std::collections::BTreeMap<&str, rust_decimal::Decimal> =
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
            let severity = facts.severity();
            let now = Utc::now();
            let age_days = facts
                .created_ms
                .map(|ms| (now.timestamp_millis() - ms) / 86_400_000);
            let created = facts
                .created_ms
                .map(rfc3339)
                .unwrap_or_else(|| "unknown".into());

            // One screen: what is happening and how bad it is.
            let mut can = vec!["read"];
            if facts.can_trade {
                can.push("spot & margin trading");
            }
            if facts.can_margin {
                can.push("margin loans");
            }
            if facts.can_futures {
                can.push("futures");
            }
            if facts.can_transfer {
                can.push("internal/universal transfers");
            }
            if facts.can_withdraw {
                can.push("WITHDRAWALS");
            }
            let key = client.key_masked().unwrap_or_default();
            let level = if matches!(severity, "critical" | "high") {
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
                    if facts.ip_restricted {
                        "restricted to whitelisted IPs"
                    } else {
                        "NO IP whitelist: usable from anywhere"
                    }
                ),
            )?;
            ctx.note(Level::Info, format!("  it can: {}", can.join(", ")))?;
            let wallets: Vec<String> = by_wallet
                .iter()
                .map(|(w, v)| format!("{w} {}", dec(v.round_dp(2))))
                .collect();
            ctx.note(
                Level::Info,
                format!(
                    "  reachable value: ≈ {} {quote} ({}){}",
                    dec(value.round_dp(2)),
                    wallets.join(", "),
                    if facts.can_withdraw {
                        format!(
                            "; ≈ {} {quote} can be withdrawn right now",
                            dec(withdrawable.round_dp(2))
                        )
                    } else {
                        String::new()
                    }
                ),
            )?;
            ctx.note(
                Level::Detail,
                format!(
                    "  priced from public prices{}",
                    if unpriced.is_empty() {
                        String::new()
                    } else {
                        format!(" (not priced: {})", unpriced.join(", "))
                    }
                ),
            )?;
            if facts.can_withdraw {
                ctx.finding(
                    "critical",
                    "Withdrawals are enabled on the leaked key",
                    json!({"key": key}),
                )?;
            }
            if (facts.can_trade || facts.can_futures) && !facts.ip_restricted {
                ctx.finding(
                    "high",
                    "The leaked key can trade and has no IP whitelist",
                    json!({"key": key}),
                )?;
            }
            ctx.evidence(
                "key-permissions",
                vec![json!({
                    "key": key,
                    "live": true,
                    "severity": severity,
                    "restrictions": facts.restrictions,
                    "canTrade": account.can_trade,
                    "canWithdraw": account.can_withdraw,
                    "permissions": account.permissions,
                    "reachableValue": dec(value.round_dp(2)),
                    "quote": quote,
                })],
            )?;
            Ok(Outcome::ok(format!(
                "key is live; severity {severity}; can {}",
                can.join(", ")
            ))
            .with("live", true)
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
            .with("reachable_value", dec(value.round_dp(2)))
            .with(
                "withdrawable_value",
                if facts.can_withdraw {
                    dec(withdrawable.round_dp(2))
                } else {
                    "0".into()
                },
            )
            .with("can_margin", facts.can_margin))
        })
    }
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

/// The key is already refused: a finding, not a failure. Later steps read with the
/// responder key where there is one.
async fn dead_key(ctx: &StepContext, e: &ExchangeError) -> Result<Outcome, ActionError> {
    let services = &ctx.run.services;
    services.leaked_dead.store(true, Ordering::SeqCst);
    let code = e.code();
    let what = match code {
        Some(-2008) => "Binance says this key does not exist (-2008): deleted, or never valid here",
        Some(-2015) => {
            "Binance refuses the key (-2015): deleted, IP not whitelisted, or permission removed"
        }
        _ => "Binance refuses the key",
    };
    ctx.note(
        Level::Warn,
        format!("The leaked key is already rejected: {what}."),
    )?;
    ctx.note(
        Level::Info,
        "Steps that need the leaked key itself (cancelling orders, the deletion check) are skipped.",
    )?;
    if services.responder.is_some() {
        ctx.note(Level::Info, "Evidence will be read with the responder key.")?;
        // Orders outlive their key: whatever is still open cannot be cancelled through
        // the API any more, so a person has to do it.
        if let Ok(reader) = ctx.client(crate::secret::Role::Responder) {
            let open = super::orders::open_everywhere(ctx, &reader)
                .await
                .unwrap_or_default();
            if !open.is_empty() {
                ctx.note(
                    Level::Alert,
                    format!(
                        "{} open order(s) remain and the dead key cannot cancel them: cancel them in the Binance app (Orders > Open Orders > Cancel All) on every market",
                        open.len()
                    ),
                )?;
                ctx.finding(
                    "high",
                    format!(
                        "{} open order(s) left by the dead key; cancel them by hand",
                        open.len()
                    ),
                    json!(open
                        .iter()
                        .map(|o| super::util::row(Some(o.market.as_str()), o))
                        .collect::<Vec<_>>()),
                )?;
            }
        }
    } else {
        ctx.note(
            Level::Warn,
            "No responder key is set, so steps that need to read the account will fail; set BINANCE_RESPONDER_API_KEY/SECRET to pull evidence.",
        )?;
    }
    ctx.finding(
        "info",
        format!("The leaked key was already rejected at triage ({what})"),
        json!({"code": code}),
    )?;
    Ok(Outcome::ok(format!("key already rejected: {what}"))
        .with("live", false)
        .with("severity", "unknown")
        .with(
            "rejected_code",
            code.map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        ))
}
