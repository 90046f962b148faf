//! Printing a report: an aligned table with a header line and a one-line footer of totals, or a
//! JSON array of the same rows with stable field names.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::SystemTime;

use serde::Serialize;

use super::{By, Report, Row};

/// Longest cell, in characters; longer values end in `…` (JSON has them whole).
const MAX_CELL: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Rule,
    Action,
    Topic,
    ClientId,
    Principal,
    Source,
    Count,
    FirstSeen,
    LastSeen,
}

/// The grouping key comes third, after rule and action; a column that would repeat it is left out.
fn columns(by: By) -> &'static [Col] {
    use Col::*;
    match by {
        By::Client => &[Rule, Action, ClientId, Principal, Source, Count, FirstSeen, LastSeen],
        By::Principal => &[Rule, Action, Principal, ClientId, Source, Count, FirstSeen, LastSeen],
        By::Topic => &[Rule, Action, Topic, ClientId, Principal, Source, Count, FirstSeen, LastSeen],
        By::Rule => &[Rule, Action, ClientId, Principal, Source, Count, FirstSeen, LastSeen],
    }
}

fn header(c: Col) -> &'static str {
    match c {
        Col::Rule => "RULE",
        Col::Action => "ACTION",
        Col::Topic => "TOPIC",
        Col::ClientId => "CLIENT ID",
        Col::Principal => "PRINCIPAL",
        Col::Source => "SOURCE",
        Col::Count => "COUNT",
        Col::FirstSeen => "FIRST SEEN",
        Col::LastSeen => "LAST SEEN",
    }
}

fn cell(c: Col, row: &Row) -> String {
    match c {
        Col::Rule => value(row.rule.as_deref()),
        Col::Action => value(row.action.as_deref()),
        Col::Topic => value(row.key.as_deref()),
        Col::ClientId => several(&row.client_ids, "clients"),
        Col::Principal => several(&row.principals, "principals"),
        Col::Source => several(&row.sources, "sources"),
        Col::Count => row.count.to_string(),
        Col::FirstSeen => humantime::format_rfc3339_seconds(row.first_seen).to_string(),
        Col::LastSeen => humantime::format_rfc3339_seconds(row.last_seen).to_string(),
    }
}

/// The value, `-` when absent; control characters escaped (ids come from clients), cut to
/// `MAX_CELL` characters.
fn value(v: Option<&str>) -> String {
    let Some(v) = v else { return "-".to_owned() };
    let clean: String = v.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect();
    if clean.chars().count() <= MAX_CELL {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_CELL - 1).collect();
    cut.push('…');
    cut
}

/// The one value of a group, or how many there are (`3 sources`).
fn several(values: &BTreeSet<Option<String>>, plural: &str) -> String {
    match values.len() {
        0 => "-".to_owned(),
        1 => value(values.first().and_then(|v| v.as_deref())),
        n => format!("{n} {plural}"),
    }
}

/// Header, one line per row, footer; columns two spaces apart, COUNT right-aligned.
pub fn table(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let cols = columns(report.by);
    let cells: Vec<Vec<String>> = report.rows.iter().map(|r| cols.iter().map(|c| cell(*c, r)).collect()).collect();
    let widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().filter_map(|r| r.get(i)).map(|s| s.chars().count()).fold(header(*c).len(), usize::max))
        .collect();
    let headers: Vec<String> = cols.iter().map(|c| header(*c).to_owned()).collect();
    for line in std::iter::once(&headers).chain(cells.iter()) {
        let mut text = String::new();
        for ((c, s), w) in cols.iter().zip(line).zip(&widths) {
            if !text.is_empty() {
                text.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(s.chars().count()));
            if *c == Col::Count {
                text.push_str(&pad);
                text.push_str(s);
            } else {
                text.push_str(s);
                text.push_str(&pad);
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    writeln!(out, "{}", footer(report))
}

/// `5 groups, 2506 events; 20 lines read, 0 outside the time range, 1 skipped; 37 events dropped by the proxy`
pub fn footer(report: &Report) -> String {
    let t = &report.totals;
    let groups = match report.rows.len() {
        shown if shown < report.groups => format!("top {shown} of {}", plural(report.groups as u64, "group", "groups")),
        _ => plural(report.groups as u64, "group", "groups"),
    };
    format!(
        "{groups}, {}; {} read, {} outside the time range, {} skipped; {} dropped by the proxy (audit_dropped)",
        plural(t.events, "event", "events"),
        plural(t.lines_read, "line", "lines"),
        t.out_of_range,
        t.skipped,
        plural(t.dropped, "event", "events"),
    )
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One row for tools; absent values are `null`, times RFC 3339 UTC with milliseconds.
#[derive(Serialize)]
struct JsonRow<'a> {
    key: &'a Option<String>,
    rule: &'a Option<String>,
    action: &'a Option<String>,
    count: u64,
    lines: u64,
    client_ids: &'a BTreeSet<Option<String>>,
    principals: &'a BTreeSet<Option<String>>,
    sources: &'a BTreeSet<Option<String>>,
    topics: &'a BTreeSet<String>,
    first_seen: String,
    last_seen: String,
}

fn millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The rows as a JSON array, in the table's order.
pub fn json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<JsonRow<'_>> = report
        .rows
        .iter()
        .map(|r| JsonRow {
            key: &r.key,
            rule: &r.rule,
            action: &r.action,
            count: r.count,
            lines: r.lines,
            client_ids: &r.client_ids,
            principals: &r.principals,
            sources: &r.sources,
            topics: &r.topics,
            first_seen: millis(r.first_seen),
            last_seen: millis(r.last_seen),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &rows).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::args::parse_time;
    use crate::report::Totals;

    fn set(values: &[Option<&str>]) -> BTreeSet<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn row(key: Option<&str>, action: &str, count: u64, clients: &[Option<&str>], sources: &[Option<&str>]) -> Row {
        Row {
            key: key.map(str::to_owned),
            rule: Some("produce_acks".into()),
            action: Some(action.into()),
            count,
            lines: 1,
            client_ids: set(clients),
            principals: set(&[None]),
            sources: set(sources),
            topics: ["orders".to_owned()].into(),
            first_seen: parse_time("2026-11-21T08:02:11.532Z").expect("time"),
            last_seen: parse_time("2026-11-21T08:03:11.601Z").expect("time"),
        }
    }

    fn report(by: By, rows: Vec<Row>, groups: usize) -> Report {
        let totals = Totals { events: 1234, lines_read: 20, out_of_range: 3, skipped: 1, dropped: 1 };
        Report { by, rows, groups, totals }
    }

    fn table_text(r: &Report) -> String {
        let mut out = Vec::new();
        table(r, &mut out).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn cells_escape_cut_and_summarise() {
        let long = "x".repeat(60);
        let cases: &[(String, String)] = &[
            (value(None), "-".into()),
            (value(Some("app")), "app".into()),
            (value(Some("evil\u{1b}[31m\nid")), "evil\\u{1b}[31m\\nid".into()),
            (value(Some(&long)), format!("{}…", "x".repeat(39))),
            (several(&set(&[Some("10.0.0.1")]), "sources"), "10.0.0.1".into()),
            (several(&set(&[None]), "principals"), "-".into()),
            (several(&set(&[None, Some("a"), Some("b")]), "clients"), "3 clients".into()),
            (several(&BTreeSet::new(), "sources"), "-".into()),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn tables_align_columns_and_right_align_counts() {
        let rows = vec![
            row(
                Some("legacy-fire-and-forget"),
                "upgrade",
                1180,
                &[Some("legacy-fire-and-forget")],
                &[Some("10.1.4.17"), Some("10.1.4.18")],
            ),
            row(None, "reject", 7, &[None], &[Some("::1")]),
        ];
        let cases: [(By, usize, &[&str]); 3] = [
            (
                By::Client,
                2,
                &[
                    "RULE          ACTION   CLIENT ID               PRINCIPAL  SOURCE     COUNT  FIRST SEEN            LAST SEEN",
                    "produce_acks  upgrade  legacy-fire-and-forget  -          2 sources   1180  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "produce_acks  reject   -                       -          ::1            7  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "2 groups, 1234 events; 20 lines read, 3 outside the time range, 1 skipped; 1 event dropped by the proxy (audit_dropped)",
                ],
            ),
            (
                By::Topic,
                5,
                &[
                    "RULE          ACTION   TOPIC                   CLIENT ID               PRINCIPAL  SOURCE     COUNT  FIRST SEEN            LAST SEEN",
                    "produce_acks  upgrade  legacy-fire-and-forget  legacy-fire-and-forget  -          2 sources   1180  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "produce_acks  reject   -                       -                       -          ::1            7  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "top 2 of 5 groups, 1234 events; 20 lines read, 3 outside the time range, 1 skipped; 1 event dropped by the proxy (audit_dropped)",
                ],
            ),
            (
                By::Principal,
                2,
                &[
                    "RULE          ACTION   PRINCIPAL  CLIENT ID               SOURCE     COUNT  FIRST SEEN            LAST SEEN",
                    "produce_acks  upgrade  -          legacy-fire-and-forget  2 sources   1180  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "produce_acks  reject   -          -                       ::1            7  2026-11-21T08:02:11Z  2026-11-21T08:03:11Z",
                    "2 groups, 1234 events; 20 lines read, 3 outside the time range, 1 skipped; 1 event dropped by the proxy (audit_dropped)",
                ],
            ),
        ];
        for (by, groups, want) in cases {
            let text = table_text(&report(by, rows.clone(), groups));
            assert_eq!(text.lines().collect::<Vec<_>>(), want, "{by:?}:\n{text}");
        }
    }

    #[test]
    fn an_empty_table_keeps_its_header_and_footer() {
        let mut r = report(By::Rule, Vec::new(), 0);
        r.totals = Totals { events: 0, lines_read: 1, out_of_range: 1, skipped: 0, dropped: 0 };
        assert_eq!(
            table_text(&r),
            "RULE  ACTION  CLIENT ID  PRINCIPAL  SOURCE  COUNT  FIRST SEEN  LAST SEEN\n\
             0 groups, 0 events; 1 line read, 1 outside the time range, 0 skipped; 0 events dropped by the proxy (audit_dropped)\n"
        );
    }

    #[test]
    fn json_rows_have_stable_field_names() {
        let r = report(By::Client, vec![row(None, "reject", 7, &[None], &[Some("::1")])], 1);
        let mut out = Vec::new();
        json(&r, &mut out).expect("write");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(
            value,
            serde_json::json!([{
                "key": null, "rule": "produce_acks", "action": "reject", "count": 7, "lines": 1,
                "client_ids": [null], "principals": [null], "sources": ["::1"], "topics": ["orders"],
                "first_seen": "2026-11-21T08:02:11.532Z", "last_seen": "2026-11-21T08:03:11.601Z",
            }])
        );
        let mut empty = Vec::new();
        json(&report(By::Client, Vec::new(), 0), &mut empty).expect("write");
        assert_eq!(empty, b"[]\n");
    }
}
