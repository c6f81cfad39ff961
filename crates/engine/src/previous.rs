//! `--since-incident DIR`: what an earlier incident of this account recorded, and the
//! diff of this run's evidence against it. Any order, trade, withdrawal, transfer or
//! Pay transaction after the earlier incident ended means another key, or the account
//! itself, is still compromised.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value as Json;

use super::step::RunState;
use crate::report::journal::{self, Event};
use crate::report::verify::{self, Verdict};

/// Why `--since-incident DIR` cannot be used.
#[derive(Debug)]
pub enum PreviousError {
    /// No journal in the folder.
    NotAnIncident {
        dir: PathBuf,
    },
    /// Its journal does not verify: it was changed after it was written.
    Tampered {
        dir: PathBuf,
        line: usize,
        reason: String,
    },
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    Empty {
        dir: PathBuf,
    },
    /// A journal that verifies but cannot be read as one (a bug, not the operator's).
    Broken(String),
}

#[derive(Clone, Debug)]
pub struct PreviousIncident {
    pub dir: PathBuf,
    /// When it ended, on the exchange's clock where it was measured.
    pub ended: DateTime<Utc>,
    /// (market, orderId) of every order it saw open or cancelled.
    pub orders: BTreeSet<(String, i64)>,
}

impl PreviousIncident {
    pub fn load(dir: &Path) -> Result<PreviousIncident, PreviousError> {
        let path = dir.join(journal::JOURNAL_FILE);
        if !path.is_file() {
            return Err(PreviousError::NotAnIncident {
                dir: dir.to_path_buf(),
            });
        }
        if let Verdict::Altered { line, reason } =
            verify::verify_dir(dir).map_err(PreviousError::Broken)?
        {
            return Err(PreviousError::Tampered {
                dir: dir.to_path_buf(),
                line,
                reason,
            });
        }
        let read = journal::read(&path).map_err(|source| PreviousError::Unreadable {
            path: path.clone(),
            source,
        })?;
        let last = read.records().last().ok_or_else(|| PreviousError::Empty {
            dir: dir.to_path_buf(),
        })?;
        let stamp = last.server_time.as_deref().unwrap_or(&last.time);
        let ended = DateTime::parse_from_rfc3339(stamp)
            .map_err(|e| {
                PreviousError::Broken(format!("{}: bad time `{stamp}`: {e}", path.display()))
            })?
            .with_timezone(&Utc);
        let mut orders = BTreeSet::new();
        for r in read.records() {
            if let Event::Evidence { table, rows, .. } = &r.event {
                if table == "open-orders" || table == "cancelled-orders" {
                    orders.extend(rows.iter().filter_map(order_key));
                }
            }
        }
        Ok(PreviousIncident {
            dir: dir.to_path_buf(),
            ended,
            orders,
        })
    }

    /// What this run found that happened after the earlier incident ended.
    pub fn new_activity(&self, state: &RunState) -> Vec<(String, Json)> {
        let after = self.ended.timestamp_millis();
        let mut out = Vec::new();
        let rows = |table: &str| state.evidence.rows(table);
        let open: Vec<Json> = rows("open-orders")
            .into_iter()
            .filter(|r| order_key(r).is_some_and(|k| !self.orders.contains(&k)))
            .collect();
        if !open.is_empty() {
            out.push((
                format!(
                    "{} open order(s) placed after the previous incident",
                    open.len()
                ),
                Json::Array(open),
            ));
        }
        let trades: Vec<Json> = rows("trades")
            .into_iter()
            .filter(|r| ms(r, "time").is_some_and(|t| t >= after))
            .collect();
        if !trades.is_empty() {
            out.push((
                format!("{} trade(s) after the previous incident", trades.len()),
                Json::Array(trades),
            ));
        }
        let withdrawals: Vec<Json> = rows("withdrawals")
            .into_iter()
            .filter(|r| {
                r.get("applyTime")
                    .and_then(Json::as_str)
                    .and_then(apply_time)
                    .is_some_and(|t| t >= after)
            })
            .collect();
        if !withdrawals.is_empty() {
            out.push((
                format!(
                    "{} withdrawal(s) after the previous incident",
                    withdrawals.len()
                ),
                Json::Array(withdrawals),
            ));
        }
        let moved: Vec<Json> = rows("transfers")
            .into_iter()
            .filter(|r| {
                ms(r, "timestamp")
                    .or_else(|| ms(r, "time"))
                    .is_some_and(|t| t >= after)
            })
            .chain(
                rows("pay")
                    .into_iter()
                    .filter(|r| ms(r, "transactionTime").is_some_and(|t| t >= after)),
            )
            .collect();
        if !moved.is_empty() {
            out.push((
                format!(
                    "{} transfer(s) or Pay transaction(s) after the previous incident",
                    moved.len()
                ),
                Json::Array(moved),
            ));
        }
        out
    }
}

fn order_key(row: &Json) -> Option<(String, i64)> {
    Some((
        row.get("market")?.as_str()?.to_string(),
        row.get("orderId")?.as_i64()?,
    ))
}

fn ms(row: &Json, field: &str) -> Option<i64> {
    row.get(field)?.as_i64()
}

/// Withdrawal `applyTime` is "YYYY-MM-DD HH:MM:SS" in UTC.
fn apply_time(text: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}
