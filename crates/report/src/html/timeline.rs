//! The timeline in `report.html`: what happened when, drawn as inline SVG. Marks come
//! from the journal alone — evidence rows carry the exchange's times (trades, withdrawals,
//! deposits, transfers, Pay), a cancellation happened when its DELETE was answered, and
//! an operator action is an `answer` record.
use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value as Json;

use super::esc;
use crate::journal::{Event, Record};
use crate::Report;

/// What a mark stands for; also its CSS class, which the CI check looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    Trade,
    Withdrawal,
    Deposit,
    Transfer,
    Pay,
    Cancel,
    Operator,
}

impl MarkKind {
    pub fn class(self) -> &'static str {
        match self {
            MarkKind::Trade => "trade",
            MarkKind::Withdrawal => "withdrawal",
            MarkKind::Deposit => "deposit",
            MarkKind::Transfer => "transfer",
            MarkKind::Pay => "pay",
            MarkKind::Cancel => "cancel",
            MarkKind::Operator => "operator",
        }
    }

    fn lane(self) -> &'static str {
        match self {
            MarkKind::Trade => "Trades",
            MarkKind::Withdrawal => "Withdrawals",
            MarkKind::Deposit => "Deposits",
            MarkKind::Transfer => "Transfers",
            MarkKind::Pay => "Binance Pay",
            MarkKind::Cancel => "Cancellations",
            MarkKind::Operator => "Operator",
        }
    }

    /// Money moving on the exchange, as opposed to what the response did.
    fn is_activity(self) -> bool {
        !matches!(self, MarkKind::Cancel | MarkKind::Operator)
    }
}

/// One point on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub kind: MarkKind,
    pub at: DateTime<Utc>,
    pub text: String,
    /// Suspicious: an off-market trade, a withdrawal to an unknown address.
    pub flagged: bool,
}

/// A step from start to finish.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub id: String,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
}

fn from_ms(value: Option<&Json>) -> Option<DateTime<Utc>> {
    let ms = match value? {
        Json::Number(n) => n.as_i64()?,
        Json::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(ms).single()
}

/// Binance's `"YYYY-MM-DD HH:MM:SS"` (UTC), as in withdrawal `applyTime`.
fn from_binance_datetime(value: Option<&Json>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

fn text(row: &Json, field: &str) -> String {
    match row.get(field) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The market a cancel-all request went to, from its path.
fn market_of_path(path: &str) -> &'static str {
    if path.starts_with("/sapi/v1/margin") {
        "margin"
    } else if path.starts_with("/fapi/") {
        "usdm"
    } else if path.starts_with("/dapi/") {
        "coinm"
    } else {
        "spot"
    }
}

fn symbol_of_query(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "symbol")
        .map(|(_, v)| v.into_owned())
}

/// Every mark the journal supports, in journal order.
#[cfg(test)]
pub fn marks(records: &[&Record]) -> Vec<Mark> {
    let mut marks = Marks::default();
    for record in records {
        marks.add(record);
    }
    marks.finish()
}

/// The marks, gathered one journal record at a time.
#[derive(Debug, Default)]
pub struct Marks {
    marks: Vec<Mark>,
    /// (market, symbol) → when the latest cancel-all on it was answered.
    cancelled_at: BTreeMap<(String, String), DateTime<Utc>>,
}

impl Marks {
    pub fn add(&mut self, record: &Record) {
        let Some(when) = parse_time(&record.time) else {
            return;
        };
        match &record.event {
            Event::Request {
                method,
                path,
                query,
                ..
            } if method == "DELETE" => {
                if let Some(symbol) = symbol_of_query(query) {
                    self.cancelled_at
                        .insert((market_of_path(path).to_string(), symbol), when);
                }
            }
            Event::Answer {
                step,
                answer,
                reason,
                who,
                by,
                question,
            } => self.marks.push(Mark {
                kind: MarkKind::Operator,
                at: when,
                text: answer_text(
                    step,
                    answer,
                    reason.as_deref(),
                    who,
                    by,
                    question.as_deref(),
                ),
                flagged: false,
            }),
            Event::Evidence { table, rows, .. } => {
                for row in rows {
                    if let Some(mark) = evidence_mark(table, row, when, &self.cancelled_at) {
                        self.marks.push(mark);
                    }
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> Vec<Mark> {
        self.marks
    }
}

/// An operator's answer, as its mark says it.
fn answer_text(
    step: &str,
    answer: &crate::journal::Answered,
    reason: Option<&str>,
    who: &str,
    by: &str,
    question: Option<&str>,
) -> String {
    let mut text = format!("{step}: {answer} — {who}");
    if by != "operator" {
        let _ = write!(text, " ({by})");
    }
    if let Some(q) = question {
        let _ = write!(text, " — asked: {q}");
    }
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        let _ = write!(text, " — {r}");
    }
    text
}

/// The mark of one evidence row, for the tables drawn on the timeline.
fn evidence_mark(
    table: &str,
    row: &Json,
    recorded: DateTime<Utc>,
    cancelled_at: &BTreeMap<(String, String), DateTime<Utc>>,
) -> Option<Mark> {
    match table {
        "trades" => trade_mark(row),
        "withdrawals" => Some(Mark {
            kind: MarkKind::Withdrawal,
            at: from_binance_datetime(row.get("applyTime"))?,
            text: format!(
                "{} {} to {} ({}) — {}",
                text(row, "amount"),
                text(row, "coin"),
                text(row, "address"),
                text(row, "network"),
                text(row, "statusText")
            ),
            flagged: row.get("knownAddress") == Some(&Json::Bool(false)),
        }),
        "deposits" => Some(Mark {
            kind: MarkKind::Deposit,
            at: from_ms(row.get("insertTime"))?,
            text: format!(
                "{} {} from {} ({})",
                text(row, "amount"),
                text(row, "coin"),
                text(row, "address"),
                text(row, "network")
            ),
            flagged: false,
        }),
        "transfers" => Some(Mark {
            kind: MarkKind::Transfer,
            at: from_ms(row.get("timestamp"))?,
            text: format!(
                "{} {} {}",
                text(row, "type"),
                text(row, "amount"),
                text(row, "asset")
            ),
            flagged: false,
        }),
        "pay" => Some(Mark {
            kind: MarkKind::Pay,
            at: from_ms(row.get("transactionTime"))?,
            text: format!(
                "{} {} ({})",
                text(row, "amount"),
                text(row, "currency"),
                text(row, "orderType")
            ),
            flagged: false,
        }),
        "cancelled-orders" => Some(cancel_mark(row, recorded, cancelled_at)),
        _ => None,
    }
}

/// A trade, flagged when the trade scan flagged it.
fn trade_mark(row: &Json) -> Option<Mark> {
    let side = match (row.get("isBuyer"), row.get("side")) {
        (Some(Json::Bool(true)), _) => "BUY".to_string(),
        (Some(Json::Bool(false)), _) => "SELL".to_string(),
        (_, Some(Json::String(s))) => s.clone(),
        _ => String::new(),
    };
    let flags = text(row, "flags");
    let mut t = format!(
        "{side} {} {} @ {} ({})",
        text(row, "qty"),
        text(row, "symbol"),
        text(row, "price"),
        text(row, "market")
    );
    if !flags.is_empty() {
        let _ = write!(t, " — {flags}");
    }
    Some(Mark {
        kind: MarkKind::Trade,
        at: from_ms(row.get("time"))?,
        text: t,
        flagged: !flags.is_empty(),
    })
}

/// A cancelled order. Its own times are when it was placed or last changed; it was
/// cancelled when the cancel-all on its symbol was answered.
fn cancel_mark(
    row: &Json,
    recorded: DateTime<Utc>,
    cancelled_at: &BTreeMap<(String, String), DateTime<Utc>>,
) -> Mark {
    let market = text(row, "market");
    let symbol = text(row, "symbol");
    let at = cancelled_at
        .get(&(market.clone(), symbol.clone()))
        .copied()
        .unwrap_or(recorded);
    Mark {
        kind: MarkKind::Cancel,
        at,
        text: format!(
            "cancelled {} {} {} {} ({market}) order {}",
            text(row, "side"),
            text(row, "type"),
            text(row, "origQty"),
            symbol,
            text(row, "orderId")
        ),
        flagged: false,
    }
}

/// Each step that started, from start to finish (or to the last event if it never did).
pub fn spans(r: &Report) -> Vec<Span> {
    let last = parse_time(&r.last_event);
    r.steps
        .iter()
        .filter_map(|s| {
            let start = parse_time(s.started.as_deref()?)?;
            let end = s
                .finished
                .as_deref()
                .and_then(parse_time)
                .or(last)
                .unwrap_or(start);
            Some(Span {
                id: s.id.clone(),
                title: s.title.clone(),
                start,
                end: end.max(start),
                status: s
                    .status
                    .map(|st| st.as_str())
                    .unwrap_or("unfinished")
                    .to_string(),
            })
        })
        .collect()
}

const WIDTH: f64 = 1000.0;
const PLOT_LEFT: f64 = 150.0;
const PLOT_RIGHT: f64 = 980.0;
const LANE: f64 = 34.0;
const TOP: f64 = 10.0;
const AXIS: f64 = 34.0;
/// Marks closer than this (in SVG units) are drawn as one, with a count.
const CLUSTER: f64 = 10.0;
const MAX_TITLE_LINES: usize = 12;

/// A time range mapped onto the plot's width.
#[derive(Clone, Copy, Debug)]
struct Scale {
    start: i64,
    end: i64,
}

impl Scale {
    fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Scale {
        let (mut start, mut end) = (start.timestamp_millis(), end.timestamp_millis());
        if end - start < 1000 {
            // A run of a few milliseconds still gets a readable axis.
            let middle = (start + end) / 2;
            start = middle - 500;
            end = middle + 500;
        }
        Scale { start, end }
    }

    fn contains(&self, at: DateTime<Utc>) -> bool {
        (self.start..=self.end).contains(&at.timestamp_millis())
    }

    fn x(&self, at: DateTime<Utc>) -> f64 {
        let f = (at.timestamp_millis() - self.start) as f64 / (self.end - self.start) as f64;
        PLOT_LEFT + f.clamp(0.0, 1.0) * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// Tick times and their labels: about eight, at round UTC times.
    fn ticks(&self) -> Vec<(DateTime<Utc>, String)> {
        const STEPS_MS: &[i64] = &[
            1,
            2,
            5,
            10,
            20,
            50,
            100,
            200,
            500,
            1_000,
            2_000,
            5_000,
            10_000,
            15_000,
            30_000,
            60_000,
            120_000,
            300_000,
            600_000,
            900_000,
            1_800_000,
            3_600_000,
            7_200_000,
            10_800_000,
            21_600_000,
            43_200_000,
            86_400_000,
            172_800_000,
            604_800_000,
            2_592_000_000,
        ];
        let span = self.end - self.start;
        let step = STEPS_MS
            .iter()
            .copied()
            .find(|s| span / s <= 8)
            .unwrap_or(31_536_000_000);
        let format = if step >= 86_400_000 {
            "%m-%d"
        } else if span >= 86_400_000 {
            "%m-%d %H:%M"
        } else if step >= 60_000 {
            "%H:%M"
        } else if step >= 1_000 {
            "%H:%M:%S"
        } else {
            "%H:%M:%S%.3f"
        };
        let mut out = Vec::new();
        let mut t = (self.start + step - 1).div_euclid(step) * step;
        while t <= self.end {
            if let Some(at) = Utc.timestamp_millis_opt(t).single() {
                out.push((at, at.format(format).to_string()));
            }
            t += step;
        }
        out
    }
}

fn fmt_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One lane of point marks, clustered where they would overlap.
fn lane_marks(out: &mut String, scale: &Scale, y: f64, marks: &[&Mark]) {
    let mut placed: Vec<(f64, &Mark)> = marks
        .iter()
        .filter(|m| scale.contains(m.at))
        .map(|m| (scale.x(m.at), *m))
        .collect();
    placed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut clusters: Vec<Vec<(f64, &Mark)>> = Vec::new();
    for p in placed {
        match clusters.last_mut() {
            Some(c) if p.0 - c[0].0 <= CLUSTER => c.push(p),
            _ => clusters.push(vec![p]),
        }
    }
    for cluster in clusters {
        let x = cluster.iter().map(|(x, _)| x).sum::<f64>() / cluster.len() as f64;
        let kind = cluster[0].1.kind;
        let flagged = cluster.iter().any(|(_, m)| m.flagged);
        let class = format!(
            "mark {}{}",
            kind.class(),
            if flagged { " flagged" } else { "" }
        );
        let mut title = String::new();
        for (_, m) in cluster.iter().take(MAX_TITLE_LINES) {
            let _ = writeln!(title, "{} {}", fmt_time(m.at), m.text);
        }
        if cluster.len() > MAX_TITLE_LINES {
            let _ = write!(title, "… and {} more", cluster.len() - MAX_TITLE_LINES);
        }
        let _ = write!(
            out,
            "<g class=\"{class}\" transform=\"translate({x:.1},{y:.1})\"><title>{}</title>{}",
            esc(title.trim_end()),
            shape(kind)
        );
        if cluster.len() > 1 {
            let _ = write!(
                out,
                "<text class=\"count\" x=\"9\" y=\"-7\">{}</text>",
                cluster.len()
            );
        }
        out.push_str("</g>\n");
    }
}

fn shape(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Trade => "<circle class=\"shape\" r=\"6\"/>",
        MarkKind::Withdrawal => "<polygon class=\"shape\" points=\"0,-8 8,0 0,8 -8,0\"/>",
        MarkKind::Deposit => "<polygon class=\"shape\" points=\"0,-7 7,6 -7,6\"/>",
        MarkKind::Transfer | MarkKind::Pay => {
            "<rect class=\"shape\" x=\"-6\" y=\"-6\" width=\"12\" height=\"12\"/>"
        }
        MarkKind::Cancel => {
            "<path class=\"shape\" d=\"M-6,-6 L6,6 M6,-6 L-6,6\"/><circle class=\"ring\" r=\"8\"/>"
        }
        MarkKind::Operator => "<circle class=\"shape\" r=\"6\"/><circle class=\"ring\" r=\"9\"/>",
    }
}

fn axis(out: &mut String, scale: &Scale, top: f64, bottom: f64) {
    for (at, label) in scale.ticks() {
        let x = scale.x(at);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
            bottom + 16.0,
            esc(&label)
        );
    }
}

fn lane_label(out: &mut String, y: f64, label: &str, count: usize) {
    let _ = writeln!(
        out,
        "<line class=\"lane\" x1=\"{PLOT_LEFT}\" y1=\"{y:.1}\" x2=\"{PLOT_RIGHT}\" y2=\"{y:.1}\"/><text class=\"lane-label\" x=\"{:.1}\" y=\"{:.1}\">{} ({count})</text>",
        PLOT_LEFT - 10.0,
        y + 4.0,
        esc(label)
    );
}

fn svg_open(out: &mut String, class: &str, height: f64, label: &str) {
    let _ = writeln!(
        out,
        "<svg class=\"timeline {class}\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

/// The incident window: the exchange's activity since the review window began, with
/// the response (cancellations, operator actions) where it happened. `None` when the
/// journal holds no exchange activity and no review window (an audit, for example).
pub fn window_svg(r: &Report, marks: &[Mark]) -> Option<String> {
    let since = r.inputs.get("since").and_then(|s| parse_time(s));
    let activity = marks.iter().any(|m| m.kind.is_activity());
    if since.is_none() && !activity {
        return None;
    }
    let run_start = parse_time(&r.started)?;
    let run_end = parse_time(&r.last_event).unwrap_or(run_start);
    let start = marks
        .iter()
        .map(|m| m.at)
        .chain(since)
        .chain([run_start])
        .min()?;
    let end = marks.iter().map(|m| m.at).chain([run_end]).max()?;
    let scale = Scale::new(start, end);
    let mut kinds = vec![
        MarkKind::Trade,
        MarkKind::Withdrawal,
        MarkKind::Deposit,
        MarkKind::Transfer,
    ];
    if marks.iter().any(|m| m.kind == MarkKind::Pay) {
        kinds.push(MarkKind::Pay);
    }
    kinds.extend([MarkKind::Cancel, MarkKind::Operator]);
    let height = TOP + LANE * kinds.len() as f64 + AXIS;
    let mut out = String::new();
    svg_open(
        &mut out,
        "window",
        height,
        &format!(
            "Timeline of the incident window, {} to {} UTC",
            fmt_time(start),
            fmt_time(end)
        ),
    );
    // Where the response ran, so the reader sees it against the history.
    let (x0, x1) = (scale.x(run_start), scale.x(run_end));
    let _ = writeln!(
        out,
        "<rect class=\"response-band\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>the response: {} to {}</title></rect>",
        (x1 - x0).max(2.0),
        LANE * kinds.len() as f64,
        fmt_time(run_start),
        fmt_time(run_end)
    );
    axis(&mut out, &scale, TOP, TOP + LANE * kinds.len() as f64);
    for (i, kind) in kinds.iter().enumerate() {
        let y = TOP + LANE * (i as f64 + 0.5);
        let of_kind: Vec<&Mark> = marks.iter().filter(|m| m.kind == *kind).collect();
        lane_label(&mut out, y, kind.lane(), of_kind.len());
        lane_marks(&mut out, &scale, y, &of_kind);
    }
    out.push_str("</svg>\n");
    Some(out)
}

/// The response itself: each step as a bar, with cancellations and operator actions.
pub fn response_svg(r: &Report, marks: &[Mark], spans: &[Span]) -> Option<String> {
    let start = parse_time(&r.started)?;
    let end = parse_time(&r.last_event).unwrap_or(start);
    let scale = Scale::new(start, end);
    let lanes = [MarkKind::Cancel, MarkKind::Operator];
    let steps_height = LANE * spans.len().max(1) as f64;
    let height = TOP + steps_height + LANE * lanes.len() as f64 + AXIS;
    let bottom = TOP + steps_height + LANE * lanes.len() as f64;
    let mut out = String::new();
    svg_open(
        &mut out,
        "response",
        height,
        &format!(
            "Timeline of the response, {} to {} UTC",
            fmt_time(start),
            fmt_time(end)
        ),
    );
    axis(&mut out, &scale, TOP, bottom);
    for (i, span) in spans.iter().enumerate() {
        let y = TOP + LANE * (i as f64 + 0.5);
        let x0 = scale.x(span.start);
        let width = (scale.x(span.end) - x0).max(3.0);
        let status = span.status.replace(' ', "-");
        let _ = writeln!(
            out,
            "<text class=\"lane-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text><g class=\"step {}\"><title>{} ({}): {} — {} to {}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"14\" rx=\"3\"/></g>",
            PLOT_LEFT - 10.0,
            y + 4.0,
            esc(&span.id),
            esc(&status),
            esc(&span.title),
            esc(&span.id),
            esc(&span.status),
            fmt_time(span.start),
            fmt_time(span.end),
            y - 7.0
        );
    }
    for (i, kind) in lanes.iter().enumerate() {
        let y = TOP + steps_height + LANE * (i as f64 + 0.5);
        let of_kind: Vec<&Mark> = marks.iter().filter(|m| m.kind == *kind).collect();
        lane_label(&mut out, y, kind.lane(), of_kind.len());
        lane_marks(&mut out, &scale, y, &of_kind);
    }
    out.push_str("</svg>\n");
    Some(out)
}

/// The marks as a table, for reading without hovering (and on paper).
pub fn marks_table(marks: &[Mark]) -> String {
    let mut sorted: Vec<&Mark> = marks.iter().collect();
    sorted.sort_by_key(|m| m.at);
    let mut out = String::from(
        "<div class=\"scroll\"><table class=\"marks\"><thead><tr><th>Time (UTC)</th><th>What</th><th>Detail</th></tr></thead><tbody>\n",
    );
    for m in sorted {
        let _ = writeln!(
            out,
            "<tr class=\"{}{}\"><td class=\"time\">{}</td><td>{}</td><td>{}</td></tr>",
            m.kind.class(),
            if m.flagged { " flagged" } else { "" },
            fmt_time(m.at),
            esc(m.kind.lane()),
            esc(&m.text)
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(seq: u64, time: &str, event: Event) -> Record {
        Record {
            v: 1,
            seq,
            time: time.into(),
            server_time: None,
            offset_ms: None,
            event,
            prev: String::new(),
        }
    }

    #[test]
    fn a_cancel_is_placed_at_its_delete_not_at_the_order_time() {
        let records = [
            record(
                1,
                "2026-11-24T05:09:33.912Z",
                Event::Request {
                    step: Some("cancel".into()),
                    method: "DELETE".into(),
                    path: "/fapi/v1/allOpenOrders".into(),
                    query: "symbol=BTCUSDT&recvWindow=5000&timestamp=1".into(),
                    status: Some(200),
                    code: None,
                    weight: None,
                    elapsed_ms: 1,
                    attempt: 1,
                    error: None,
                    sent_at: None,
                },
            ),
            record(
                2,
                "2026-11-24T05:09:35.000Z",
                Event::Evidence {
                    step: "cancel".into(),
                    table: "cancelled-orders".into(),
                    rows: vec![
                        json!({"market": "usdm", "symbol": "BTCUSDT", "time": 1, "orderId": 7}),
                        json!({"market": "spot", "symbol": "ETHUSDT", "time": 1, "orderId": 8}),
                    ],
                },
            ),
        ];
        let refs: Vec<&Record> = records.iter().collect();
        let marks = marks(&refs);
        assert_eq!(marks.len(), 2);
        assert_eq!(fmt_time(marks[0].at), "2026-11-24T05:09:33.912Z");
        // No DELETE seen for it: the time the evidence was recorded.
        assert_eq!(fmt_time(marks[1].at), "2026-11-24T05:09:35.000Z");
    }

    #[test]
    fn exchange_times_are_read_in_their_own_formats() {
        let records = [record(
            1,
            "2026-11-24T05:00:00.000Z",
            Event::Evidence {
                step: "transfers".into(),
                table: "withdrawals".into(),
                rows: vec![
                    json!({"applyTime": "2026-11-24 01:09:33", "amount": "4800", "coin": "USDT", "knownAddress": false}),
                    json!({"applyTime": "garbage"}),
                ],
            },
        )];
        let refs: Vec<&Record> = records.iter().collect();
        let marks = marks(&refs);
        assert_eq!(marks.len(), 1, "a row without a readable time is left out");
        assert_eq!(fmt_time(marks[0].at), "2026-11-24T01:09:33.000Z");
        assert!(marks[0].flagged);
    }

    #[test]
    fn ticks_are_round_and_about_eight() {
        let start = parse_time("2026-11-21T05:09:33Z").unwrap();
        let end = parse_time("2026-11-24T05:09:39Z").unwrap();
        let ticks = Scale::new(start, end).ticks();
        assert!((3..=9).contains(&ticks.len()), "{ticks:?}");
        assert_eq!(ticks[0].1, "11-21 12:00");
        let short = Scale::new(start, start).ticks();
        assert!(!short.is_empty(), "a run of no time still has an axis");
    }
}
