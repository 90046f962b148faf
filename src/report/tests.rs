//! Tests of reading, time windows, grouping and sorting, as tables of cases.

use std::io::Cursor;
use std::path::PathBuf;

use super::args::parse_time;
use super::*;

fn t(s: &str) -> SystemTime {
    parse_time(s).expect("time")
}

/// An event line at 08:MM:SS on 2026-11-21 from 10.0.0.1, principal `User:<client>`.
fn ev(at: &str, client: Option<&str>, rule: &str, action: &str, topics: &[&str], count: u64) -> Line {
    Line {
        time: t(&format!("2026-11-21T08:{at}Z")),
        kind: Kind::Event,
        rule: Some(rule.into()),
        action: Some(action.into()),
        client_id: client.map(str::to_owned),
        principal: client.map(|c| format!("User:{c}")),
        source: Some("10.0.0.1".into()),
        topics: topics.iter().map(|s| s.to_string()).collect(),
        count,
    }
}

fn dropped(at: &str, count: u64) -> Line {
    Line {
        kind: Kind::Dropped,
        rule: None,
        action: None,
        client_id: None,
        principal: None,
        source: None,
        ..ev(at, None, "", "", &[], count)
    }
}

fn tally(by: By, window: Window, lines: &[Line]) -> Report {
    let mut tally = Tally::new(by, window);
    for l in lines {
        tally.add(l);
    }
    tally.finish(None)
}

/// (key, rule, action, count) of a row.
type Brief<'a> = (Option<&'a str>, &'a str, &'a str, u64);

/// Each row, in order.
fn rows(r: &Report) -> Vec<Brief<'_>> {
    r.rows.iter().map(|r| (r.key.as_deref(), r.rule.as_deref().unwrap_or("-"), r.action.as_deref().unwrap_or("-"), r.count)).collect()
}

#[test]
fn windows_are_half_open() {
    let w = Window { since: Some(t("2026-11-21T08:05:00Z")), until: Some(t("2026-11-21T08:08:00Z")) };
    let cases = [
        (w, "2026-11-21T08:04:59.999Z", false),
        (w, "2026-11-21T08:05:00Z", true),
        (w, "2026-11-21T08:07:59.999Z", true),
        (w, "2026-11-21T08:08:00Z", false),
        (Window { since: None, ..w }, "2020-01-01T00:00:00Z", true),
        (Window { until: None, ..w }, "2030-01-01T00:00:00Z", true),
        (Window::default(), "1970-01-01T00:00:00Z", true),
    ];
    for (window, at, want) in cases {
        assert_eq!(window.contains(t(at)), want, "{window:?} {at}");
    }
}

#[test]
fn since_and_until_resolve_against_now() {
    let now = t("2026-11-21T10:00:00Z");
    let cases = [
        ("2h", None, Some("2026-11-21T08:00:00Z"), None),
        ("2026-11-21T09:00:00+01:00", Some("30m"), Some("2026-11-21T08:00:00Z"), Some("2026-11-21T09:30:00Z")),
    ];
    for (since, until, want_since, want_until) in cases {
        let since = TimeSpec::parse(since).ok();
        let until = until.and_then(|u| TimeSpec::parse(u).ok());
        let w = Window::resolve(since, until, now).expect("resolves");
        assert_eq!(w, Window { since: want_since.map(t), until: want_until.map(t) });
    }
    let far = Some(TimeSpec::Ago(std::time::Duration::from_secs(u64::MAX)));
    assert!(matches!(Window::resolve(None, far, now), Err(ReportError::TimeOutOfRange { flag: "until" })));
}

#[test]
fn each_grouping_counts_summaries_by_their_count() {
    let lines = [
        ev("00:00", Some("app"), "produce_acks", "upgrade", &["a"], 1),
        ev("01:00", Some("app"), "produce_acks", "upgrade", &["a", "b"], 40),
        ev("01:30", Some("app"), "produce_acks", "reject", &["b"], 2),
        ev("02:00", Some("tool"), "produce_acks", "upgrade", &["a"], 5),
        ev("03:00", None, "metadata.block_auto_topic_creation", "upgrade", &[], 7),
        ev("04:00", Some("tool"), "create_topics", "reject", &["b", "b"], 1),
        dropped("05:00", 9),
    ];
    let cases: [(By, Vec<Brief<'_>>); 4] = [
        (
            By::Client,
            vec![
                (Some("app"), "produce_acks", "upgrade", 41),
                (None, "metadata.block_auto_topic_creation", "upgrade", 7),
                (Some("tool"), "produce_acks", "upgrade", 5),
                (Some("app"), "produce_acks", "reject", 2),
                (Some("tool"), "create_topics", "reject", 1),
            ],
        ),
        (
            By::Principal,
            vec![
                (Some("User:app"), "produce_acks", "upgrade", 41),
                (None, "metadata.block_auto_topic_creation", "upgrade", 7),
                (Some("User:tool"), "produce_acks", "upgrade", 5),
                (Some("User:app"), "produce_acks", "reject", 2),
                (Some("User:tool"), "create_topics", "reject", 1),
            ],
        ),
        (
            By::Topic,
            vec![
                (Some("a"), "produce_acks", "upgrade", 46),
                (Some("b"), "produce_acks", "upgrade", 40),
                (None, "metadata.block_auto_topic_creation", "upgrade", 7),
                (Some("b"), "produce_acks", "reject", 2),
                (Some("b"), "create_topics", "reject", 1),
            ],
        ),
        (
            By::Rule,
            vec![
                (Some("produce_acks"), "produce_acks", "upgrade", 46),
                (Some("metadata.block_auto_topic_creation"), "metadata.block_auto_topic_creation", "upgrade", 7),
                (Some("produce_acks"), "produce_acks", "reject", 2),
                (Some("create_topics"), "create_topics", "reject", 1),
            ],
        ),
    ];
    for (by, want) in cases {
        let report = tally(by, Window::default(), &lines);
        assert_eq!(rows(&report), want, "{by:?}");
        assert_eq!(report.totals, Totals { events: 56, lines_read: 7, out_of_range: 0, skipped: 0, dropped: 9 }, "{by:?}");
    }
}

#[test]
fn a_row_gathers_its_lines_values_and_time_span() {
    let mut a = ev("03:00", Some("app"), "produce_acks", "upgrade", &["x"], 3);
    a.source = Some("10.0.0.2".into());
    let mut b = ev("01:00", Some("app"), "produce_acks", "upgrade", &["y"], 1);
    b.principal = None;
    let c = ev("02:00", Some("app"), "produce_acks", "upgrade", &["x"], 10);
    let report = tally(By::Client, Window::default(), &[a, b, c]);
    let [row] = report.rows.as_slice() else { panic!("one row: {report:?}") };
    assert_eq!((row.count, row.lines), (14, 3));
    assert_eq!(row.client_ids, [Some("app".to_owned())].into());
    assert_eq!(row.principals, [None, Some("User:app".to_owned())].into());
    assert_eq!(row.sources, [Some("10.0.0.1".to_owned()), Some("10.0.0.2".to_owned())].into());
    assert_eq!(row.topics, ["x".to_owned(), "y".to_owned()].into());
    assert_eq!((row.first_seen, row.last_seen), (t("2026-11-21T08:01:00Z"), t("2026-11-21T08:03:00Z")));
}

#[test]
fn ties_sort_by_key_then_rule_then_action_and_top_cuts() {
    let lines = [
        ev("00:00", Some("b"), "r", "x", &[], 1),
        ev("00:00", Some("a"), "s", "x", &[], 1),
        ev("00:00", Some("a"), "r", "y", &[], 1),
        ev("00:00", Some("a"), "r", "x", &[], 1),
        ev("00:00", None, "r", "x", &[], 1),
        ev("00:00", Some("c"), "r", "x", &[], 2),
    ];
    let cases: [(Option<u64>, Vec<Brief<'_>>); 3] = [
        (
            None,
            vec![
                (Some("c"), "r", "x", 2),
                (None, "r", "x", 1),
                (Some("a"), "r", "x", 1),
                (Some("a"), "r", "y", 1),
                (Some("a"), "s", "x", 1),
                (Some("b"), "r", "x", 1),
            ],
        ),
        (Some(2), vec![(Some("c"), "r", "x", 2), (None, "r", "x", 1)]),
        (
            Some(100),
            vec![
                (Some("c"), "r", "x", 2),
                (None, "r", "x", 1),
                (Some("a"), "r", "x", 1),
                (Some("a"), "r", "y", 1),
                (Some("a"), "s", "x", 1),
                (Some("b"), "r", "x", 1),
            ],
        ),
    ];
    for (top, want) in cases {
        let mut tally = Tally::new(By::Client, Window::default());
        for l in &lines {
            tally.add(l);
        }
        let report = tally.finish(top);
        assert_eq!(rows(&report), want, "--top {top:?}");
        assert_eq!(report.groups, 6);
    }
}

#[test]
fn lines_outside_the_window_count_as_read_only() {
    let window = Window { since: Some(t("2026-11-21T08:01:00Z")), until: Some(t("2026-11-21T08:03:00Z")) };
    let lines = [
        ev("00:59", Some("app"), "r", "a", &[], 5),
        ev("01:00", Some("app"), "r", "a", &[], 6),
        dropped("02:00", 3),
        dropped("03:00", 4),
        ev("03:00", Some("app"), "r", "a", &[], 7),
    ];
    let report = tally(By::Client, window, &lines);
    assert_eq!(rows(&report), vec![(Some("app"), "r", "a", 6)]);
    assert_eq!(report.totals, Totals { events: 6, lines_read: 5, out_of_range: 3, skipped: 0, dropped: 3 });
}

#[test]
fn reading_warns_once_per_skipped_line_with_its_number() {
    let input = concat!(
        r#"{"time":"2026-11-21T08:00:00Z","kind":"first","rule":"r","action":"a","client_id":"app","count":1}"#,
        "\n",
        "not json\r\n",
        r#"{"time":"2026-11-21T08:00:01Z","kind":"summary","rule":"r","action":"a","client_id":"app","count":4}"#,
        "\r\n",
        "\n",
        r#"{"time":"2026-11-21T08:00:02Z","kind":"audit_dropped","count":2}"#,
        "\n",
        r#"["an","array"]"#,
        "\n",
        r#"{"time":"2026-11-21T08:00:03Z","kind":"first","rule":"r","action":"a","client_id":"app"}"#,
    );
    let mut tally = Tally::new(By::Client, Window::default());
    let mut warn = Vec::new();
    read(&mut Cursor::new(input), "audit.jsonl", &mut tally, &mut warn).expect("reads");
    assert_eq!(
        String::from_utf8(warn).expect("utf-8"),
        "audit.jsonl:2: skipped: not JSON (expected ident at line 1 column 2)\n\
         audit.jsonl:4: skipped: not JSON (EOF while parsing a value at line 1 column 0)\n\
         audit.jsonl:6: skipped: not a JSON object\n"
    );
    let report = tally.finish(None);
    assert_eq!(rows(&report), vec![(Some("app"), "r", "a", 6)]);
    assert_eq!(report.totals, Totals { events: 6, lines_read: 7, out_of_range: 0, skipped: 3, dropped: 2 });
}

fn args(files: &[&str], format: Format) -> Args {
    Args { files: files.iter().map(PathBuf::from).collect(), since: None, until: None, by: By::Client, format, top: None }
}

#[test]
fn run_reads_files_and_stdin_and_prints_each_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("audit.jsonl");
    std::fs::write(&file, "{\"time\":\"2026-11-21T08:00:00Z\",\"kind\":\"first\",\"rule\":\"r\",\"action\":\"a\",\"client_id\":\"app\"}\n")
        .expect("write");
    let stdin =
        "{\"time\":\"2026-11-21T08:00:05Z\",\"kind\":\"summary\",\"rule\":\"r\",\"action\":\"a\",\"client_id\":\"app\",\"count\":9}\n";
    let path = file.to_str().expect("utf-8 path");
    let cases = [
        (Format::Table, "RULE  ACTION  CLIENT ID  PRINCIPAL  SOURCE  COUNT  FIRST SEEN            LAST SEEN\n\
                         r     a       app        -          -          10  2026-11-21T08:00:00Z  2026-11-21T08:00:05Z\n\
                         1 group, 10 events; 2 lines read, 0 outside the time range, 0 skipped; 0 events dropped by the proxy (audit_dropped)\n", ""),
        (Format::Json, "", "1 group, 10 events; 2 lines read, 0 outside the time range, 0 skipped; 0 events dropped by the proxy (audit_dropped)\n"),
    ];
    for (format, want_out, want_warn) in cases {
        let (mut out, mut warn) = (Vec::new(), Vec::new());
        run(&args(&[path, "-"], format), SystemTime::now(), &mut Cursor::new(stdin), &mut out, &mut warn).expect("runs");
        let out = String::from_utf8(out).expect("utf-8");
        if format == Format::Json {
            let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
            assert_eq!(rows[0]["count"], 10);
            assert_eq!(rows[0]["lines"], 2);
        } else {
            assert_eq!(out, want_out);
        }
        assert_eq!(String::from_utf8(warn).expect("utf-8"), want_warn);
    }
}

#[test]
fn run_names_the_input_it_cannot_read() {
    let (mut out, mut warn) = (Vec::new(), Vec::new());
    let err = run(&args(&["/nonexistent/audit.jsonl"], Format::Table), SystemTime::now(), &mut Cursor::new(""), &mut out, &mut warn)
        .expect_err("missing file");
    assert!(err.to_string().starts_with("cannot read /nonexistent/audit.jsonl: "), "{err}");
    assert!(out.is_empty());
}
