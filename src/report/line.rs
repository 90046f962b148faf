//! One audit line as the report reads it: the fields it groups and counts by, taken leniently
//! (unknown fields ignored, absent ones empty), or why the line is not an audit line.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use serde::Deserialize;

use super::args::parse_time;

/// What a line is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `first` or `summary`: `count` events.
    Event,
    /// `audit_dropped`: `count` events the proxy could not log.
    Dropped,
}

/// The fields of one line the report uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub time: SystemTime,
    pub kind: Kind,
    pub rule: Option<String>,
    pub action: Option<String>,
    pub client_id: Option<String>,
    pub principal: Option<String>,
    /// The client IP, without the port.
    pub source: Option<String>,
    pub topics: Vec<String>,
    pub count: u64,
}

/// Why a line was skipped.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("not a JSON object")]
    NotObject,
    #[error("not an audit line ({0})")]
    NotAuditLine(serde_json::Error),
    #[error("`time` is not an RFC 3339 time: {0:?}")]
    BadTime(String),
    #[error("unknown `kind` {0:?} (expected first, summary or audit_dropped)")]
    UnknownKind(String),
}

/// The line as written; fields the report does not use (`detail`, `schema`, ...) are ignored.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct Raw {
    time: String,
    kind: String,
    rule: Option<String>,
    action: Option<String>,
    client_addr: Option<String>,
    client_id: Option<String>,
    principal: Option<String>,
    topics: Option<Vec<String>>,
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

/// Parses one line (without its newline).
pub fn parse(bytes: &[u8]) -> Result<Line, LineError> {
    let text = std::str::from_utf8(bytes).map_err(|_| LineError::NotUtf8)?;
    if !text.trim_start().starts_with('{') {
        // serde would also read a struct out of an array of the right length.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => LineError::NotObject,
            Err(e) => LineError::NotJson(e),
        });
    }
    let raw: Raw = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => LineError::NotAuditLine(e),
        _ => LineError::NotJson(e),
    })?;
    let time = parse_time(&raw.time).ok_or(LineError::BadTime(raw.time))?;
    let kind = match raw.kind.as_str() {
        "first" | "summary" => Kind::Event,
        "audit_dropped" => Kind::Dropped,
        _ => return Err(LineError::UnknownKind(raw.kind)),
    };
    Ok(Line {
        time,
        kind,
        rule: raw.rule,
        action: raw.action,
        client_id: raw.client_id,
        principal: raw.principal,
        source: raw.client_addr.map(|a| source_of(&a)),
        topics: raw.topics.unwrap_or_default(),
        count: raw.count,
    })
}

/// `10.1.4.17:53122` → `10.1.4.17`, `[::1]:9` → `::1`; anything else as written.
fn source_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().to_string();
    }
    match addr.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => addr.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const FIRST: &str = r#"{"time":"2026-11-21T08:02:11.532Z","kind":"first","event":"weak_acks","rule":"produce_acks","action":"upgrade","client_addr":"127.0.0.1:53122","client_id":"legacy","principal":"User:alice","tls_subject":"CN=alice","api":"Produce","api_version":9,"topics":["demo-orders"],"detail":{"acks_from":0,"acks_to":-1},"count":1}"#;

    fn t(s: &str) -> SystemTime {
        parse_time(s).expect("time")
    }

    #[test]
    fn a_first_line_with_every_field() {
        let line = parse(FIRST.as_bytes()).expect("parses");
        assert_eq!(
            line,
            Line {
                time: UNIX_EPOCH + Duration::from_millis(1_795_248_131_532),
                kind: Kind::Event,
                rule: Some("produce_acks".into()),
                action: Some("upgrade".into()),
                client_id: Some("legacy".into()),
                principal: Some("User:alice".into()),
                source: Some("127.0.0.1".into()),
                topics: vec!["demo-orders".into()],
                count: 1,
            }
        );
    }

    #[test]
    fn lines_the_report_accepts() {
        // (line, kind, count, client_id, principal, source, topics)
        type Want = (Kind, u64, Option<&'static str>, Option<&'static str>, Option<&'static str>, usize);
        let cases: &[(&str, Want)] = &[
            (
                r#"{"time":"2026-11-21T08:03:11Z","kind":"summary","rule":"r","action":"a","client_addr":"[::1]:9","client_id":null,"topics":["a","b"],"count":24,"window_secs":60}"#,
                (Kind::Event, 24, None, None, Some("::1"), 2),
            ),
            (
                r#"{"time":"2026-11-21T08:03:11Z","kind":"audit_dropped","event":"audit_dropped","count":37}"#,
                (Kind::Dropped, 37, None, None, None, 0),
            ),
            (
                r#"{"schema":1,"time":"2026-11-21T08:03:11Z","kind":"first","future":{"x":[1]},"topics":null}"#,
                (Kind::Event, 1, None, None, None, 0),
            ),
            (
                r#"{"time":"2026-11-21T08:03:11Z","kind":"first","client_addr":"proxy-host","principal":"User:bob"}"#,
                (Kind::Event, 1, None, Some("User:bob"), Some("proxy-host"), 0),
            ),
            (
                r#"  {"time":"2026-11-21T08:03:11Z","kind":"first","client_id":"c","client_addr":"10.0.0.1"}  "#,
                (Kind::Event, 1, Some("c"), None, Some("10.0.0.1"), 0),
            ),
        ];
        for (text, (kind, count, client_id, principal, source, topics)) in cases {
            let line = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(line.time, t("2026-11-21T08:03:11Z"), "{text}");
            assert_eq!(&line.kind, kind, "{text}");
            assert_eq!(line.count, *count, "{text}");
            assert_eq!(line.client_id.as_deref(), *client_id, "{text}");
            assert_eq!(line.principal.as_deref(), *principal, "{text}");
            assert_eq!(line.source.as_deref(), *source, "{text}");
            assert_eq!(line.topics.len(), *topics, "{text}");
        }
    }

    #[test]
    fn lines_the_report_skips_and_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "not JSON (EOF while parsing a value at line 1 column 0)"),
            (br#"{"time":"2026-11-21T08:04:41.3"#, "not JSON (EOF while parsing a string at line 1 column 30)"),
            (b"garbage", "not JSON (expected value at line 1 column 1)"),
            (b"[1,2]", "not a JSON object"),
            (br#"["2026-11-21T08:03:11Z","first",null,null,null,null,null,null,1]"#, "not a JSON object"),
            (b" 42", "not a JSON object"),
            (b"null", "not a JSON object"),
            (br#"{"kind":"first"}"#, "not an audit line (missing field `time` at line 1 column 16)"),
            (
                br#"{"time":"2026-11-21T08:03:11Z","kind":"first","count":"x"}"#,
                "not an audit line (invalid type: string \"x\", expected u64 at line 1 column 57)",
            ),
            (br#"{"time":"yesterday","kind":"first"}"#, "`time` is not an RFC 3339 time: \"yesterday\""),
            (
                br#"{"time":"2026-11-21T08:03:11Z","kind":"heartbeat"}"#,
                "unknown `kind` \"heartbeat\" (expected first, summary or audit_dropped)",
            ),
            (b"\xff\xfe{}", "not UTF-8 text"),
        ];
        for (bytes, want) in cases {
            match parse(bytes) {
                Ok(line) => panic!("{:?} parsed as {line:?}", String::from_utf8_lossy(bytes)),
                Err(e) => assert_eq!(e.to_string(), *want, "{:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }
}
