//! The `report` command line: its options, their help (the grouping's definition), and the times
//! `--since`/`--until` accept (RFC 3339, or a duration before now).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How rows are grouped and ordered; shown by `report --help`.
pub const GROUPING: &str = "\
Grouping: each row is one (KEY, rule, action); KEY depends on --by:
  client     the client id (`-` when the client sent none)
  principal  the authenticated principal (`-` when unauthenticated)
  topic      each topic the line names: a line with several topics counts once for each,
             a line with none counts under `-`
  rule       the rule itself, so a row is (rule, action)
COUNT sums the lines' `count`: a `first` line is one event, a `summary` line stands for the
`count` repeats it summarises. A column with several values in one group says how many
(`3 sources`, `2 clients`); SOURCE is the client IP without its port. FIRST SEEN and LAST SEEN
are the earliest and latest line times (a summary line's time is its last event's). Rows are
sorted by COUNT, highest first, then by KEY (`-` first), rule and action. The footer counts
each line's events once, whatever the grouping.

Time filters apply to each line's `time`: --since keeps lines at or after it, --until lines
before it. TIME is an RFC 3339 time (2026-11-21T08:00:00Z, 2026-11-21T09:00:00+01:00,
2026-11-21 for midnight UTC) or a duration meaning that long before now (90s, 30m, 2h, 7d).

Every line read counts; a line that is not an audit line (not a JSON object, no valid `time`,
an unknown `kind`) is reported on stderr as FILE:LINE and skipped. Unknown fields are ignored.
`audit_dropped` lines (events the proxy could not log) are totalled in the footer.
Exit status: 0 when the report is printed, even with no rows; 1 when an input cannot be read;
2 for a usage error.";

/// `report FILE... [--since T] [--until T] [--by KEY] [--format F] [--top N]`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
#[command(after_help = GROUPING)]
pub struct Args {
    /// Audit log files (JSON lines, as the proxy writes them); `-` reads stdin
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Only lines at or after TIME (RFC 3339, or a duration before now: 2h, 30m)
    #[arg(long, value_name = "TIME", value_parser = TimeSpec::parse)]
    pub since: Option<TimeSpec>,
    /// Only lines before TIME (RFC 3339, or a duration before now: 2h, 30m)
    #[arg(long, value_name = "TIME", value_parser = TimeSpec::parse)]
    pub until: Option<TimeSpec>,
    /// What a row groups by, besides rule and action
    #[arg(long, value_enum, default_value_t = By::Client)]
    pub by: By,
    /// Output: an aligned table, or a JSON array of the same rows
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Show only the N rows with the highest counts (all by default)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
}

/// The key a row groups by, besides rule and action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// The client id
    Client,
    /// The authenticated principal
    Principal,
    /// Each topic a line names
    Topic,
    /// The rule
    Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, a header line and a footer with totals
    Table,
    /// A JSON array of rows, for tools (the totals go to stderr)
    Json,
}

/// A `--since`/`--until` value: a fixed time, or a duration before now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSpec {
    At(SystemTime),
    Ago(Duration),
}

impl TimeSpec {
    /// Parses `2026-11-21T08:00:00Z` (any RFC 3339 offset, or a bare date) or `2h`.
    pub fn parse(s: &str) -> Result<TimeSpec, String> {
        if let Some(t) = parse_time(s) {
            return Ok(TimeSpec::At(t));
        }
        match humantime::parse_duration(s.trim()) {
            Ok(d) => Ok(TimeSpec::Ago(d)),
            Err(_) => Err("expected an RFC 3339 time (2026-11-21T08:00:00Z) or a duration before now (2h, 30m)".to_owned()),
        }
    }

    /// The time this stands for, `now` being the time the report runs.
    pub fn resolve(self, now: SystemTime) -> Option<SystemTime> {
        match self {
            TimeSpec::At(t) => Some(t),
            TimeSpec::Ago(d) => now.checked_sub(d),
        }
    }
}

/// An RFC 3339 time with any offset (`Z`, `+01:00`, `-05:30`), fractional seconds or none, `T`
/// or a space; or a bare date for midnight UTC. Used for arguments and for audit lines alike.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim().to_ascii_uppercase();
    if s.len() == "2026-11-21".len() {
        return humantime::parse_rfc3339_weak(&format!("{s}T00:00:00Z")).ok();
    }
    let (local, offset) = split_offset(&s)?;
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    if offset >= 0 {
        t.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    } else {
        t.checked_add(Duration::from_secs(offset.unsigned_abs()))
    }
}

/// `2026-11-21T09:00:00+01:00` → (`2026-11-21T09:00:00`, 3600); `...Z` and no offset → 0.
fn split_offset(s: &str) -> Option<(&str, i64)> {
    if let Some(local) = s.strip_suffix('Z') {
        return Some((local, 0));
    }
    let cut = s.len().checked_sub(6)?;
    let (local, tail) = (s.get(..cut)?, s.get(cut..)?);
    let sign = match tail.get(..1) {
        Some("+") => 1,
        Some("-") => -1,
        _ => return Some((s, 0)),
    };
    if tail.get(3..4) != Some(":") {
        return Some((s, 0));
    }
    let hours: i64 = tail.get(1..3)?.parse().ok()?;
    let minutes: i64 = tail.get(4..6)?.parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    /// 2026-11-21T08:00:00Z
    const BASE: u64 = 1_795_248_000;

    #[test]
    fn times_in_every_accepted_form() {
        let cases: &[(&str, Option<SystemTime>)] = &[
            ("2026-11-21T08:00:00Z", Some(at(BASE, 0))),
            ("2026-11-21T08:00:00.532Z", Some(at(BASE, 532))),
            ("2026-11-21t08:00:00z", Some(at(BASE, 0))),
            ("2026-11-21 08:00:00", Some(at(BASE, 0))),
            ("2026-11-21T08:00:00+00:00", Some(at(BASE, 0))),
            ("2026-11-21T09:00:00+01:00", Some(at(BASE, 0))),
            ("2026-11-21T09:00:00.250+01:00", Some(at(BASE, 250))),
            ("2026-11-21T02:30:00-05:30", Some(at(BASE, 0))),
            ("2026-11-21", Some(at(BASE - 8 * 3600, 0))),
            ("2026-11-21T08:00:00+25:00", None),
            ("2026-13-21T08:00:00Z", None),
            ("2026-11-21T08:00", None),
            ("yesterday", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_time(text), *want, "{text}");
        }
    }

    #[test]
    fn time_specs_are_times_or_durations_before_now() {
        let now = at(BASE, 0);
        let cases: &[(&str, Option<SystemTime>)] = &[
            ("2h", Some(at(BASE - 7200, 0))),
            ("30m", Some(at(BASE - 1800, 0))),
            ("1h 30m", Some(at(BASE - 5400, 0))),
            ("7d", Some(at(BASE - 7 * 86_400, 0))),
            ("2026-11-21T07:00:00Z", Some(at(BASE - 3600, 0))),
        ];
        for (text, want) in cases {
            let spec = TimeSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.resolve(now), *want, "{text}");
        }
        for bad in ["soon", "2x", "-2h", "2026-11-21T25:00:00Z"] {
            assert!(TimeSpec::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
