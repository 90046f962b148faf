//! The `report` command: reads audit logs (files or stdin) line by line, keeps the lines inside
//! the time window, groups them by (key, rule, action) and sums their counts; `render` prints the
//! rows as a table or JSON. Lines that are not audit lines are reported and skipped.

pub mod args;
pub mod line;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::SystemTime;

pub use args::{Args, By, Format, TimeSpec, GROUPING};
use line::{Kind, Line};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the report: {0}")]
    Write(#[from] std::io::Error),
    #[error("--{flag} reaches before the earliest time this system can represent")]
    TimeOutOfRange { flag: &'static str },
}

/// The half-open time range lines must fall in: at or after `since`, before `until`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

impl Window {
    /// Resolves `--since`/`--until` against the time the report runs.
    pub fn resolve(since: Option<TimeSpec>, until: Option<TimeSpec>, now: SystemTime) -> Result<Window, ReportError> {
        let at = |spec: Option<TimeSpec>, flag| spec.map(|s| s.resolve(now).ok_or(ReportError::TimeOutOfRange { flag })).transpose();
        Ok(Window { since: at(since, "since")?, until: at(until, "until")? })
    }

    pub fn contains(&self, t: SystemTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// One row: every kept line with the same (key, rule, action). `None` is printed `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: Option<String>,
    pub rule: Option<String>,
    pub action: Option<String>,
    /// Events: the sum of the lines' `count`.
    pub count: u64,
    /// Lines that made this row.
    pub lines: u64,
    pub client_ids: BTreeSet<Option<String>>,
    pub principals: BTreeSet<Option<String>>,
    pub sources: BTreeSet<Option<String>>,
    pub topics: BTreeSet<String>,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
}

impl Row {
    fn new(key: GroupKey, at: SystemTime) -> Row {
        Row {
            key: key.key,
            rule: key.rule,
            action: key.action,
            count: 0,
            lines: 0,
            client_ids: BTreeSet::new(),
            principals: BTreeSet::new(),
            sources: BTreeSet::new(),
            topics: BTreeSet::new(),
            first_seen: at,
            last_seen: at,
        }
    }

    fn absorb(&mut self, line: &Line) {
        self.count = self.count.saturating_add(line.count);
        self.lines += 1;
        self.client_ids.insert(line.client_id.clone());
        self.principals.insert(line.principal.clone());
        self.sources.insert(line.source.clone());
        self.topics.extend(line.topics.iter().cloned());
        self.first_seen = self.first_seen.min(line.time);
        self.last_seen = self.last_seen.max(line.time);
    }
}

/// What the footer says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events in the kept lines, each line counted once whatever the grouping.
    pub events: u64,
    pub lines_read: u64,
    /// Audit lines outside `--since`/`--until`.
    pub out_of_range: u64,
    /// Lines that are not audit lines.
    pub skipped: u64,
    /// Events the proxy reported dropping (`audit_dropped` lines in the window).
    pub dropped: u64,
}

/// The rows to print, most frequent first, and the totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub by: By,
    pub rows: Vec<Row>,
    /// Rows before `--top` cut them.
    pub groups: usize,
    pub totals: Totals,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey {
    key: Option<String>,
    rule: Option<String>,
    action: Option<String>,
}

/// Lines counted so far.
pub struct Tally {
    by: By,
    window: Window,
    groups: BTreeMap<GroupKey, Row>,
    totals: Totals,
}

impl Tally {
    pub fn new(by: By, window: Window) -> Tally {
        Tally { by, window, groups: BTreeMap::new(), totals: Totals::default() }
    }

    /// An audit line: counted into its groups, its drop count, or out of the window.
    pub fn add(&mut self, line: &Line) {
        self.totals.lines_read += 1;
        if !self.window.contains(line.time) {
            self.totals.out_of_range += 1;
            return;
        }
        if line.kind == Kind::Dropped {
            self.totals.dropped = self.totals.dropped.saturating_add(line.count);
            return;
        }
        self.totals.events = self.totals.events.saturating_add(line.count);
        for key in keys(self.by, line) {
            let key = GroupKey { key, rule: line.rule.clone(), action: line.action.clone() };
            self.groups.entry(key.clone()).or_insert_with(|| Row::new(key, line.time)).absorb(line);
        }
    }

    /// A line that is not an audit line.
    pub fn skip(&mut self) {
        self.totals.lines_read += 1;
        self.totals.skipped += 1;
    }

    /// Rows sorted by count (highest first), then key, rule and action; the first `top` kept.
    pub fn finish(self, top: Option<u64>) -> Report {
        let mut rows: Vec<Row> = self.groups.into_values().collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.key, &a.rule, &a.action).cmp(&(&b.key, &b.rule, &b.action))));
        let groups = rows.len();
        if let Some(n) = top {
            rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        }
        Report { by: self.by, rows, groups, totals: self.totals }
    }
}

/// The keys a line counts under: one, or one per distinct topic for `--by topic`.
fn keys(by: By, line: &Line) -> Vec<Option<String>> {
    match by {
        By::Client => vec![line.client_id.clone()],
        By::Principal => vec![line.principal.clone()],
        By::Rule => vec![line.rule.clone()],
        By::Topic if line.topics.is_empty() => vec![None],
        By::Topic => line.topics.iter().collect::<BTreeSet<_>>().into_iter().map(|t| Some(t.clone())).collect(),
    }
}

/// Reads one input to its end, one warning on `warn` per skipped line (`name:line: why`).
pub fn read(input: &mut dyn BufRead, name: &str, tally: &mut Tally, warn: &mut dyn Write) -> Result<(), ReportError> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf).map_err(|source| ReportError::Read { path: name.to_owned(), source })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match line::parse(text) {
            Ok(line) => tally.add(&line),
            Err(why) => {
                tally.skip();
                writeln!(warn, "{name}:{number}: skipped: {why}")?;
            }
        }
    }
}

/// The whole command: reads `args.files` (`-` is `stdin`), prints the report on `out`, warnings
/// (and, for JSON, the totals) on `warn`.
pub fn run(args: &Args, now: SystemTime, stdin: &mut dyn BufRead, out: &mut dyn Write, warn: &mut dyn Write) -> Result<(), ReportError> {
    let window = Window::resolve(args.since, args.until, now)?;
    let mut tally = Tally::new(args.by, window);
    for path in &args.files {
        if path == Path::new("-") {
            read(stdin, "<stdin>", &mut tally, warn)?;
            continue;
        }
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| ReportError::Read { path: name.clone(), source })?;
        read(&mut std::io::BufReader::new(file), &name, &mut tally, warn)?;
    }
    let report = tally.finish(args.top);
    match args.format {
        Format::Table => render::table(&report, out)?,
        Format::Json => {
            render::json(&report, out)?;
            out.flush()?;
            writeln!(warn, "{}", render::footer(&report))?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
