//! Sub-account keys, with the master account's key kept as the responder key:
//! `binance.key_owner` finds which sub-account the leaked key belongs to and lists every
//! other key there (`evidence/api-keys.csv`, flagging keys created in the review
//! window); `binance.delete_subaccount_key` deletes the leaked key (then proves it dead
//! like `verify_revoked`) or the flagged keys, by API.
//!
//! Safety stays where it always is: the engine previews and confirms the destructive
//! step (yes / skip / abort, `--yes`, the no-terminal rule) and the dry-run client
//! refuses the DELETE. Deleting flagged keys is one step; at a terminal the operator is
//! also asked about each key (default no), so no key is deleted without its own yes.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::revoke::{probe_round, record_round, seen_at_triage, verdict_of, Verdict};
use super::util::{rfc3339, table};
use super::{
    Action, ActionError, ActionSpec, ArgType, BoxFuture, InputSpec, Kind, Outcome, OutputSpec,
    Preview, StepContext,
};
use crate::exchange::{Client, ExchangeError, SubAccountApiKey};
use crate::operator::Level;
use crate::report::journal::Severity;
use crate::secret::Role;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![
        Arc::new(KeyOwner),
        Arc::new(SubaccountTransfers),
        Arc::new(DeleteSubaccountKey {
            previewed: Mutex::new(HashMap::new()),
        }),
    ]
}

static OWNER_SPEC: ActionSpec = ActionSpec {
    name: "binance.key_owner",
    description: "With a master account's key as the responder key: find the sub-account the leaked key belongs to, and list every other key on it (evidence/api-keys.csv), flagging keys created in the review window",
    kind: Kind::Evidence,
    inputs: &[InputSpec {
        name: "since",
        ty: ArgType::Since,
        required: false,
        default: Some("72h"),
        description: "start of the review window: keys created since then are flagged",
    }],
    outputs: &[
        OutputSpec { name: "on_sub_account", description: "true when the leaked key was found on a sub-account (it can be deleted by API)" },
        OutputSpec { name: "owner", description: "the sub-account's email, masked" },
        OutputSpec { name: "reason", description: "why the key cannot be deleted by API (when it cannot)" },
        OutputSpec { name: "why_manual", description: "the same as a sentence for the manual step's instructions (empty when the key is on a sub-account)" },
        OutputSpec { name: "created", description: "the leaked key's creation time" },
        OutputSpec { name: "ip_restriction", description: "the leaked key's IP restriction" },
        OutputSpec { name: "permissions", description: "the leaked key's permissions" },
        OutputSpec { name: "flagged", description: "other keys on the sub-account created in the review window" },
        OutputSpec { name: "checked", description: "sub-accounts whose keys were checked, masked, comma-separated" },
    ],
};

static DELETE_SPEC: ActionSpec = ActionSpec {
    name: "binance.delete_subaccount_key",
    description: "Delete a sub-account's key with the master (responder) key: the leaked key (then probe it until Binance says it does not exist), or each key flagged by binance.key_owner",
    kind: Kind::Destructive,
    inputs: &[
        InputSpec { name: "which", ty: ArgType::Choice(&["leaked", "flagged"]), required: false, default: Some("leaked"), description: "the leaked key, or the keys created in the review window" },
        InputSpec { name: "since", ty: ArgType::Since, required: false, default: Some("72h"), description: "start of the review window (which: flagged)" },
        InputSpec { name: "probes", ty: ArgType::Int { min: 1, max: 20 }, required: false, default: Some("3"), description: "consecutive probe rounds that must agree the key is dead" },
        InputSpec { name: "interval", ty: ArgType::Duration { max: Some(Duration::from_secs(60)) }, required: false, default: Some("1s"), description: "pause between probe rounds" },
        InputSpec { name: "wait", ty: ArgType::Duration { max: Some(Duration::from_secs(1800)) }, required: false, default: Some("60s"), description: "how long to keep probing" },
    ],
    outputs: &[
        OutputSpec { name: "deleted", description: "keys Binance acknowledged deleting" },
        OutputSpec { name: "dead", description: "true when the leaked key was deleted here and the probes prove it dead" },
        OutputSpec { name: "verdict", description: "the probes' verdict on the leaked key (which: leaked)" },
        OutputSpec { name: "kept", description: "flagged keys the operator chose to keep" },
    ],
};

/// `b***@desk.example`: enough to recognise, not to copy.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Where the leaked key lives, as the master key sees it.
struct Owner {
    email: String,
    /// None once the leaked key is gone (found again by the earlier step's owner).
    key: Option<SubAccountApiKey>,
    matched_by: &'static str,
    /// Every other live key on that sub-account.
    others: Vec<SubAccountApiKey>,
}

/// What the search found.
struct Search {
    owner: Result<Owner, String>,
    /// Sub-accounts whose keys were read.
    checked: Vec<String>,
}

/// Find the leaked key among the master's sub-accounts' keys. Once it is deleted, the
/// sub-account `binance.key_owner` found (by its masked email) stands in.
async fn search(ctx: &StepContext) -> Result<Search, ActionError> {
    let hint = ctx
        .earlier_output("binance.key_owner", "owner")
        .and_then(|v| v.as_str().map(str::to_string));
    let not = |reason: String| {
        Ok(Search {
            owner: Err(reason),
            checked: Vec::new(),
        })
    };
    let Some(master) = ctx.run.services.responder.as_ref() else {
        return not("there is no responder key; a master account's key kept as the responder key (BINANCE_RESPONDER_API_KEY / BINANCE_RESPONDER_API_SECRET) can find and delete a sub-account's key".into());
    };
    let master = master.tagged(&ctx.step);
    let leaked = ctx.client(Role::Leaked)?;
    if !master.endpoints().has_sapi() {
        return not("not available on testnet (no /sapi)".into());
    }
    let mut subs = match master.sub_accounts().await {
        Ok(s) => s,
        Err(e) => return not(not_master(&e)),
    };
    // The sub-account found earlier first: one listing (UID weight 3,000) instead of all.
    subs.sort_by_key(|s| hint.as_deref() != Some(mask_email(&s.email).as_str()));
    if subs.is_empty() {
        return not(
            "the responder key's account has no sub-accounts: the leaked key is the account's own"
                .into(),
        );
    }
    let leaked_mask = leaked.key_masked().unwrap_or_default();
    let created = ctx
        .earlier_output("binance.key_permissions", "created")
        .and_then(|v| v.as_str().map(str::to_string));
    let mut checked = Vec::new();
    let mut unreadable = Vec::new();
    let mut hinted: Option<(String, Vec<SubAccountApiKey>)> = None;
    for sub in &subs {
        let keys = match keys_of(&master, sub).await {
            Ok(k) => k,
            Err(why) => {
                unreadable.push(why);
                continue;
            }
        };
        checked.push(sub.email.clone());
        if let (Some(i), matched_by) = leaked_among(&keys, &leaked, &leaked_mask, &created) {
            let mut keys = keys;
            let key = keys.remove(i);
            return Ok(Search {
                owner: Ok(Owner {
                    email: sub.email.clone(),
                    key: Some(key),
                    matched_by,
                    others: keys,
                }),
                checked,
            });
        }
        if hint.as_deref() == Some(mask_email(&sub.email).as_str()) && hinted.is_none() {
            hinted = Some((sub.email.clone(), keys));
        }
    }
    if let Some((email, others)) = hinted {
        return Ok(Search {
            owner: Ok(Owner {
                email,
                key: None,
                matched_by: "the sub-account found earlier (the leaked key is gone)",
                others,
            }),
            checked,
        });
    }
    Ok(Search {
        owner: Err(on_none(checked.len(), &unreadable)),
        checked,
    })
}

/// A sub-account's API keys, or why they cannot be read.
async fn keys_of(
    master: &crate::exchange::Client,
    sub: &crate::exchange::SubAccount,
) -> Result<Vec<SubAccountApiKey>, String> {
    if sub.is_asset_management_sub_account {
        return Err(format!(
            "{} (an asset-management sub-account: Binance does not manage its keys by API)",
            mask_email(&sub.email)
        ));
    }
    master
        .sub_account_api_keys(&sub.email)
        .await
        .map_err(|e| format!("{}: {e}", mask_email(&sub.email)))
}

/// Which of a sub-account's keys is the leaked one: the full key where the listing
/// shows it, else the one key with the same mask (and creation time, when triage read
/// it). Returns its index and how it was matched.
fn leaked_among(
    keys: &[SubAccountApiKey],
    leaked: &crate::exchange::Client,
    leaked_mask: &str,
    created: &Option<String>,
) -> (Option<usize>, &'static str) {
    let by_full = keys
        .iter()
        .position(|k| k.is_full() && leaked.signs_with(&k.api_key));
    let by_mask = || {
        let same: Vec<usize> = (0..keys.len())
            .filter(|i| !keys[*i].is_full() && keys[*i].masked() == leaked_mask)
            .filter(|i| match (created, keys[*i].create_time) {
                (Some(c), Some(t)) if c != "unknown" => rfc3339(t) == *c,
                _ => true,
            })
            .collect();
        (same.len() == 1).then(|| same[0])
    };
    match by_full {
        Some(i) => (Some(i), "the full key"),
        None => (by_mask(), "its mask and creation time"),
    }
}

/// Why the leaked key was on no sub-account.
fn on_none(checked: usize, unreadable: &[String]) -> String {
    let mut reason = format!(
        "the leaked key is on none of the {} sub-account(s) whose keys were checked: it is the master account's own key{}",
        checked,
        if unreadable.is_empty() { " (or already gone)" } else { ", or on a sub-account whose keys could not be read" }
    );
    if !unreadable.is_empty() {
        reason.push_str(&format!("; not checked: {}", unreadable.join("; ")));
    }
    reason
}

fn not_master(e: &ExchangeError) -> String {
    match e {
        ExchangeError::NotApplicable { reason, .. } => {
            let why = reason
                .strip_prefix("not a master account's key: ")
                .unwrap_or(reason);
            format!("the responder key is not a master account's key ({why})")
        }
        other => format!("the sub-account list could not be read with the responder key ({other})"),
    }
}

/// Keys on the owning sub-account created at or after `since`.
fn flagged(owner: &Owner, since_ms: i64) -> Vec<&SubAccountApiKey> {
    owner
        .others
        .iter()
        .filter(|k| k.create_time.is_none_or(|t| t >= since_ms))
        .collect()
}

fn key_row(k: &SubAccountApiKey, email: &str, leaked: bool, flagged: bool) -> serde_json::Value {
    json!({
        "subAccount": mask_email(email),
        "apiName": k.api_name,
        "apiKey": k.masked(),
        "createTime": k.create_time.map(rfc3339).unwrap_or_else(|| "unknown".into()),
        "ipRestriction": k.ip_restriction(),
        "permissions": k.permissions().join(" "),
        "leaked": leaked,
        "flagged": flagged,
    })
}

fn since_ms(ctx: &StepContext) -> Result<i64, ActionError> {
    Ok(ctx
        .args
        .since("since", ctx.run.started_at)?
        .map_or(ctx.run.started_at.timestamp_millis(), |t| {
            t.timestamp_millis()
        }))
}

pub struct KeyOwner;

impl Action for KeyOwner {
    fn spec(&self) -> &'static ActionSpec {
        &OWNER_SPEC
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let since = since_ms(ctx)?;
            let found = search(ctx).await?;
            let checked: Vec<String> = found.checked.iter().map(|e| mask_email(e)).collect();
            let owner = match found.owner {
                Err(reason) => {
                    ctx.note(Level::Info, format!("Deleting the key by API is not possible: {reason}. The key is deleted by hand (the manual step)."))?;
                    if !checked.is_empty() {
                        ctx.note(Level::Info, format!("Keys checked on sub-account(s): {}. The master account's own keys cannot be listed by API: check them in API Management.", checked.join(", ")))?;
                    }
                    return Ok(Outcome::ok(format!("not on a sub-account: {reason}"))
                        .with("on_sub_account", false)
                        .with(
                            "why_manual",
                            format!("(respond cannot delete it by API: {reason}.)"),
                        )
                        .with("reason", reason)
                        .with("flagged", 0u64)
                        .with("checked", checked.join(", ")));
                }
                Ok(o) => o,
            };
            let Some(key) = owner.key.clone() else {
                return Err(ActionError::Failed(
                    "the leaked key is no longer listed on its sub-account".into(),
                ));
            };
            let created = key
                .create_time
                .map(rfc3339)
                .unwrap_or_else(|| "unknown".into());
            let who = mask_email(&owner.email);
            let ip = key.ip_restriction();
            let perms = key.permissions().join(", ");
            ctx.note(
                Level::Info,
                format!(
                    "The leaked key {} (\"{}\") belongs to sub-account {who} (matched by {}): created {created}, IP restriction {ip}, permissions {perms}. The master key can delete it by API.",
                    key.masked(),
                    key.api_name,
                    owner.matched_by
                ),
            )?;
            let flagged_keys = flagged(&owner, since);
            let mut rows = vec![key_row(&key, &owner.email, true, false)];
            for k in &owner.others {
                let f = flagged_keys.iter().any(|x| x.api_key == k.api_key);
                rows.push(key_row(k, &owner.email, false, f));
            }
            ctx.evidence("api-keys", rows)?;
            for k in &flagged_keys {
                ctx.finding(
                    Severity::High,
                    format!(
                        "Key {} (\"{}\") on sub-account {who} was created {} — inside the review window: did you create it?",
                        k.masked(),
                        k.api_name,
                        k.create_time.map(rfc3339).unwrap_or_else(|| "at an unknown time".into())
                    ),
                    key_row(k, &owner.email, false, true),
                )?;
            }
            Ok(Outcome::ok(format!(
                "on sub-account {who}; {} other key(s), {} created in the review window",
                owner.others.len(),
                flagged_keys.len()
            ))
            .with("on_sub_account", true)
            .with("why_manual", "")
            .with("owner", who)
            .with("created", created)
            .with("ip_restriction", ip)
            .with("permissions", perms)
            .with("flagged", flagged_keys.len() as u64)
            .with("checked", checked.join(", ")))
        })
    }
}

pub struct DeleteSubaccountKey {
    /// Per step: the keys the last preview showed. Only those are deleted.
    previewed: Mutex<HashMap<String, Vec<String>>>,
}

impl DeleteSubaccountKey {
    fn remember(&self, step: &str, keys: Vec<String>) {
        self.previewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(step.to_string(), keys);
    }

    fn shown(&self, step: &str) -> Vec<String> {
        self.previewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(step)
            .cloned()
            .unwrap_or_default()
    }
}

/// The keys a step would delete, with the owner.
async fn targets(
    ctx: &StepContext,
) -> Result<Result<(Owner, Vec<SubAccountApiKey>), String>, ActionError> {
    let found = search(ctx).await?;
    let owner = match found.owner {
        Ok(o) => o,
        Err(reason) => return Ok(Err(reason)),
    };
    let keys = if ctx.args.text("which") == Some("flagged") {
        let since = since_ms(ctx)?;
        flagged(&owner, since).into_iter().cloned().collect()
    } else {
        owner.key.clone().into_iter().collect()
    };
    Ok(Ok((owner, keys)))
}

impl Action for DeleteSubaccountKey {
    fn spec(&self) -> &'static ActionSpec {
        &DELETE_SPEC
    }

    fn preview<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Preview, ActionError>> {
        Box::pin(async move {
            let flagged_step = ctx.args.text("which") == Some("flagged");
            let (owner, keys) = match targets(ctx).await? {
                Err(reason) => {
                    self.remember(&ctx.step, Vec::new());
                    return Ok(Preview {
                        summary: format!("deletion by API not available: {reason}"),
                        nothing_to_do: true,
                        items: json!([]),
                        ..Preview::default()
                    });
                }
                Ok(t) => t,
            };
            let who = mask_email(&owner.email);
            if keys.is_empty() {
                self.remember(&ctx.step, Vec::new());
                let summary = if flagged_step {
                    format!("no other key on sub-account {who} was created in the review window")
                } else {
                    format!("the leaked key is no longer listed on sub-account {who}")
                };
                return Ok(Preview {
                    summary,
                    nothing_to_do: true,
                    items: json!([]),
                    ..Preview::default()
                });
            }
            self.remember(&ctx.step, keys.iter().map(|k| k.api_key.clone()).collect());
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.masked(),
                        k.api_name.clone(),
                        k.create_time
                            .map(rfc3339)
                            .unwrap_or_else(|| "unknown".into()),
                        k.ip_restriction(),
                        k.permissions().join(", "),
                    ]
                })
                .collect();
            let summary = if flagged_step {
                format!("delete {} key(s) created in the review window on sub-account {who}, with the master key (each asked separately at a terminal)", keys.len())
            } else {
                format!(
                    "delete the leaked key {} (\"{}\") on sub-account {who} with the master key, then probe it until Binance says it does not exist",
                    keys[0].masked(),
                    keys[0].api_name
                )
            };
            Ok(Preview {
                summary,
                body: table(
                    &["key", "name", "created", "IP restriction", "permissions"],
                    &rows,
                ),
                items: json!(keys
                    .iter()
                    .map(|k| key_row(k, &owner.email, !flagged_step, flagged_step))
                    .collect::<Vec<_>>()),
                ..Preview::default()
            })
        })
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let master = ctx.client(Role::Responder)?;
            let flagged_step = ctx.args.text("which") == Some("flagged");
            let shown = self.shown(&ctx.step);
            let (owner, keys) = match targets(ctx).await? {
                Err(reason) => {
                    return Err(ActionError::Failed(format!(
                        "the key can no longer be found for deletion by API: {reason}"
                    )))
                }
                Ok(t) => t,
            };
            let who = mask_email(&owner.email);
            let mut deleted = Vec::new();
            let mut kept = Vec::new();
            for k in keys.iter().filter(|k| shown.contains(&k.api_key)) {
                // Each flagged key gets its own question at a terminal (default no).
                if flagged_step {
                    let q = format!(
                        "Delete key {} (\"{}\", created {}) on sub-account {who}?",
                        k.masked(),
                        k.api_name,
                        k.create_time
                            .map(rfc3339)
                            .unwrap_or_else(|| "unknown".into())
                    );
                    if !ctx.confirm_item(&q)? {
                        kept.push(k.masked());
                        continue;
                    }
                }
                let api_key = if k.is_full() {
                    k.api_key.clone()
                } else if !flagged_step {
                    // A masked list: the leaked key is ours, so name it in full.
                    ctx.client(Role::Leaked)?
                        .api_key_for_deletion()
                        .unwrap_or_default()
                } else {
                    kept.push(k.masked());
                    ctx.note(Level::Warn, format!("{}: Binance listed it masked, so it cannot be named for deletion; delete it in API Management", k.masked()))?;
                    continue;
                };
                master
                    .delete_sub_account_api_key(&owner.email, &api_key)
                    .await?;
                ctx.note(
                    Level::Success,
                    format!(
                        "Binance deleted key {} (\"{}\") on sub-account {who}",
                        k.masked(),
                        k.api_name
                    ),
                )?;
                deleted.push(k.masked());
            }
            if flagged_step {
                let mut outcome = Outcome::ok(format!(
                    "deleted {} key(s) on sub-account {who}{}",
                    deleted.len(),
                    if kept.is_empty() {
                        String::new()
                    } else {
                        format!("; kept {}", kept.join(", "))
                    }
                ))
                .with("deleted", deleted.join(", "))
                .with("kept", kept.join(", "))
                .with("dead", false);
                outcome.outputs.insert("verdict".into(), json!(null));
                return Ok(outcome);
            }
            if deleted.is_empty() {
                return Err(ActionError::Failed("the leaked key was not deleted".into()));
            }
            prove_dead(ctx, deleted.join(", ")).await
        })
    }
}

/// After the DELETE: probe the leaked key like `verify_revoked` until `probes` rounds in
/// a row say it does not exist (-2008), for at most `wait`.
async fn prove_dead(ctx: &StepContext, deleted: String) -> Result<Outcome, ActionError> {
    let leaked: Client = ctx.client(Role::Leaked)?;
    let needed = ctx.args.int("probes").unwrap_or(3).max(1) as usize;
    let interval = ctx
        .args
        .duration("interval")
        .unwrap_or(Duration::from_secs(1));
    let wait = ctx.args.duration("wait").unwrap_or(Duration::from_secs(60));
    let mut seen = seen_at_triage(ctx);
    let started = Instant::now();
    let mut streak = 0usize;
    let mut rounds = 0u32;
    let verdict = loop {
        rounds += 1;
        let answers = probe_round(&leaked).await;
        let verdict = verdict_of(&answers, &seen);
        for (path, p) in &answers {
            seen.note(path, p);
        }
        record_round(ctx, rounds, &answers, verdict)?;
        streak = if verdict == Verdict::Dead {
            streak + 1
        } else {
            0
        };
        if streak >= needed || started.elapsed() >= wait {
            break verdict;
        }
        tokio::time::sleep(interval.min(wait.saturating_sub(started.elapsed()))).await;
    };
    let dead = verdict == Verdict::Dead && streak >= needed;
    let outcome = Outcome::ok(if dead {
        format!("deleted {deleted} by API; proven dead: key not found (-2008) on {needed} consecutive round(s)")
    } else {
        format!("deleted {deleted} by API, but the probes do not prove it dead ({})", verdict.as_str())
    })
    .with("deleted", deleted)
    .with("dead", dead)
    .with("verdict", verdict.as_str())
    .with("kept", "");
    if dead {
        ctx.run
            .services
            .leaked_dead
            .store(true, std::sync::atomic::Ordering::SeqCst);
        ctx.note(Level::Success, "The leaked key is dead: deleted by API and proven by the probes. No manual deletion needed.")?;
    } else {
        ctx.note(Level::Warn, format!("Binance acknowledged the deletion but the probes say {}: the manual deletion step follows.", verdict.as_str()))?;
    }
    Ok(outcome)
}

static TRANSFERS_SPEC: ActionSpec = ActionSpec {
    name: "binance.subaccount_transfers",
    description: "With the master (responder) key: money moved to and from the sub-account that owns the leaked key — master/sub transfers, sub-account universal transfers, futures internal transfers",
    kind: Kind::Evidence,
    inputs: &[InputSpec {
        name: "since",
        ty: ArgType::Since,
        required: true,
        default: None,
        description: "start of the window",
    }],
    outputs: &[OutputSpec {
        name: "transfers",
        description: "transfers read that involve the sub-account",
    }],
};

pub struct SubaccountTransfers;

/// Whether a transfer row names `email` on either side (field names differ per endpoint).
fn involves(row: &serde_json::Value, email: &str) -> bool {
    ["from", "to", "fromEmail", "toEmail", "email"]
        .iter()
        .any(|f| row.get(*f).and_then(|v| v.as_str()) == Some(email))
}

/// A row with every email in it masked.
fn masked_row(source: &str, row: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("source".into(), json!(source));
    if let Some(map) = row.as_object() {
        for (k, v) in map {
            let v = match v.as_str() {
                Some(t) if t.contains('@') => json!(mask_email(t)),
                _ => v.clone(),
            };
            out.insert(k.clone(), v);
        }
    }
    serde_json::Value::Object(out)
}

impl Action for SubaccountTransfers {
    fn spec(&self) -> &'static ActionSpec {
        &TRANSFERS_SPEC
    }

    /// The owning sub-account is key-owner's finding.
    fn builds_on(&self) -> &'static [&'static str] {
        &["binance.key_owner"]
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let Some(hint) = ctx
                .earlier_output("binance.key_owner", "owner")
                .and_then(|v| v.as_str().map(str::to_string))
            else {
                ctx.note(Level::Detail, "sub-account transfers with the master key: the leaked key is not a sub-account's (see key-owner); nothing to read")?;
                return Ok(
                    Outcome::ok("not a sub-account's key: nothing to read").with("transfers", 0u64)
                );
            };
            let master = ctx.client(Role::Responder)?;
            let email = sub_account_email(&master, &hint).await?;
            let since = super::util::since_input(ctx)?;
            let range = crate::exchange::TimeWindow::between(since, master.server_now());
            let (history, universal, usdm, coinm) = tokio::join!(
                master.sub_account_transfers(range),
                master.sub_account_universal_transfers(range),
                master.sub_account_futures_internal_transfers(&email, 1, range),
                master.sub_account_futures_internal_transfers(&email, 2, range),
            );
            let mut coverage = super::util::Coverage::default();
            let mut rows = Vec::new();
            let mut gaps = 0;
            let history = history.map(|list| {
                list.iter()
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .collect::<Vec<_>>()
            });
            for (source, result) in [
                ("master/sub-account transfers", history),
                ("sub-account universal transfers", universal),
                ("sub-account USDⓈ-M internal transfers", usdm),
                ("sub-account COIN-M internal transfers", coinm),
            ] {
                match result {
                    Ok(list) => {
                        coverage.read(source, &hint, Some(range));
                        rows.extend(
                            list.iter()
                                .filter(|r| source.contains("internal") || involves(r, &email))
                                .map(|r| masked_row(source, r)),
                        );
                    }
                    Err(e) => {
                        gaps += 1;
                        coverage.gap(source, &hint, Some(range), &e.to_string());
                        ctx.note(Level::Warn, format!("not read: {source}: {e}"))?;
                    }
                }
            }
            coverage.record(ctx)?;
            money_out(ctx, &rows, &hint)?;
            let n = rows.len();
            if !rows.is_empty() {
                ctx.evidence("subaccount-transfers", rows)?;
            }
            if gaps == 4 {
                return Err(ActionError::Failed(format!(
                    "no sub-account transfer history of {hint} could be read with the master key"
                )));
            }
            Ok(Outcome::ok(format!(
                "{n} transfer(s) involving sub-account {hint}{}",
                if gaps > 0 {
                    format!("; {gaps} source(s) not read")
                } else {
                    String::new()
                }
            ))
            .with("transfers", n as u64))
        })
    }
}

/// The full email of the sub-account `binance.key_owner` named by its mask.
async fn sub_account_email(
    master: &crate::exchange::Client,
    hint: &str,
) -> Result<String, ActionError> {
    let subs = master.sub_accounts().await.map_err(ActionError::from)?;
    subs.iter()
        .map(|s| s.email.clone())
        .find(|e| mask_email(e) == hint)
        .ok_or_else(|| {
            ActionError::Failed(format!(
                "sub-account {hint} is no longer listed by the master key"
            ))
        })
}

/// Money that left the sub-account in the window (the attacker's way out): a finding.
fn money_out(ctx: &StepContext, rows: &[serde_json::Value], hint: &str) -> Result<(), ActionError> {
    let outgoing: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| {
            ["from", "fromEmail"]
                .iter()
                .any(|f| r.get(*f).and_then(|v| v.as_str()) == Some(hint))
        })
        .collect();
    if !outgoing.is_empty() {
        ctx.finding(
            Severity::High,
            format!(
                "{} transfer(s) moved money out of sub-account {hint} in the review window: did your desk make them?",
                outgoing.len()
            ),
            json!(outgoing),
        )?;
    }
    Ok(())
}
