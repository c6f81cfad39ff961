//! The evidence tables as the renderings need them, built one journal record at a time:
//! each table's CSV text, its row count and columns, and its first rows as values. A
//! week of trades is never held as JSON values: only what `report.md` and `report.html`
//! show inline is, and the CSV is kept as the text it will be written as.
use std::collections::BTreeMap;

use serde_json::Value as Json;

/// Rows of each table kept as values: the most any rendering shows inline (report.html
/// shows 200, report.md 20). The CSV has them all.
pub const KEPT_ROWS: usize = 200;

/// Tables rendered in full, so every row is kept: the coverage list (one row per source).
const KEPT_WHOLE: &[&str] = &["coverage"];

/// Evidence rows per table, in journal order.
pub type Tables = BTreeMap<String, Table>;

/// One evidence table: how many rows, the first of them, and the CSV of them all.
#[derive(Debug, Default)]
pub struct Table {
    rows: usize,
    head: Vec<Json>,
    keep_all: bool,
    csv: Csv,
}

impl Table {
    fn new(name: &str) -> Table {
        Table {
            keep_all: KEPT_WHOLE.contains(&name),
            ..Table::default()
        }
    }

    /// Add rows as the journal recorded them.
    pub fn extend<'a>(&mut self, rows: impl IntoIterator<Item = &'a Json>) {
        for row in rows {
            self.rows += 1;
            if self.keep_all || self.head.len() < KEPT_ROWS {
                self.head.push(row.clone());
            }
            self.csv.push(row);
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The first [`KEPT_ROWS`] rows (every row of the coverage table).
    pub fn head(&self) -> &[Json] {
        &self.head
    }

    /// Columns in order of first appearance, as in the CSV.
    pub fn columns(&self) -> &[String] {
        &self.csv.columns
    }

    /// The whole table as CSV.
    pub fn csv(&self) -> String {
        self.csv.render()
    }
}

/// Add an evidence record's rows to `tables` (a table with no rows still exists).
pub fn add(tables: &mut Tables, table: &str, rows: &[Json]) {
    if !tables.contains_key(table) {
        tables.insert(table.to_string(), Table::new(table));
    }
    if let Some(t) = tables.get_mut(table) {
        t.extend(rows);
    }
}

/// CSV built row by row. Columns are in order of first appearance, so a row cannot know
/// the columns that appear after it; those are empty in it by definition (it has no such
/// field), and are added as empty cells when the text is rendered.
#[derive(Debug, Default)]
pub struct Csv {
    columns: Vec<String>,
    /// Each row's cells for the columns known when it was added, back to back.
    body: String,
    /// Per row: where its cells end in `body`, and how many columns were known then.
    rows: Vec<(usize, usize)>,
}

impl Csv {
    pub fn push(&mut self, row: &Json) {
        if let Json::Object(map) = row {
            for k in map.keys() {
                if !self.columns.contains(k) {
                    self.columns.push(k.clone());
                }
            }
        }
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                self.body.push(',');
            }
            match row.get(c) {
                None | Some(Json::Null) => {}
                Some(Json::String(s)) => self.body.push_str(&field(s)),
                Some(other) => self.body.push_str(&field(&other.to_string())),
            }
        }
        self.rows.push((self.body.len(), self.columns.len()));
    }

    pub fn render(&self) -> String {
        let total = self.columns.len();
        let mut out = String::with_capacity(self.body.len() + self.rows.len() * 2 + 64);
        let header: Vec<String> = self.columns.iter().map(|c| field(c)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        let mut start = 0;
        for &(end, known) in &self.rows {
            out.push_str(&self.body[start..end]);
            // The columns that first appeared after this row: empty cells.
            let missing = if known == 0 {
                total.saturating_sub(1)
            } else {
                total - known
            };
            out.extend(std::iter::repeat_n(',', missing));
            out.push('\n');
            start = end;
        }
        out
    }
}

/// One CSV field, quoted when it must be.
pub fn field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet: neutralise it.
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<f64>().is_err()) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csv_of(rows: &[Json]) -> String {
        let mut csv = Csv::default();
        for row in rows {
            csv.push(row);
        }
        csv.render()
    }

    #[test]
    fn columns_that_appear_later_are_empty_cells_in_earlier_rows() {
        let rows = vec![
            json!("not an object"),
            json!({"a": "x,y", "b": 1}),
            json!({"b": "=SUM(A1)", "c": "-5"}),
            json!({"d": "two\nlines"}),
            json!(null),
        ];
        assert_eq!(
            csv_of(&rows),
            "a,b,c,d\n,,,\n\"x,y\",1,,\n,'=SUM(A1),-5,\n,,,\"two\nlines\"\n,,,\n"
        );
        assert_eq!(csv_of(&[]), "\n");
        assert_eq!(csv_of(&[json!(1)]), "\n\n");
    }

    #[test]
    fn a_table_keeps_its_first_rows_and_counts_the_rest() {
        let mut tables = Tables::new();
        let rows: Vec<Json> = (0..KEPT_ROWS + 50).map(|i| json!({ "n": i })).collect();
        add(&mut tables, "trades", &rows[..10]);
        add(&mut tables, "trades", &rows[10..]);
        add(&mut tables, "coverage", &rows);
        add(&mut tables, "pay", &[]);
        let trades = &tables["trades"];
        assert_eq!(trades.len(), KEPT_ROWS + 50);
        assert_eq!(trades.head(), &rows[..KEPT_ROWS]);
        assert_eq!(trades.csv().lines().count(), KEPT_ROWS + 51);
        assert_eq!(tables["coverage"].head().len(), KEPT_ROWS + 50);
        assert!(tables["pay"].is_empty());
        assert_eq!(tables["pay"].csv(), "\n");
    }
}
