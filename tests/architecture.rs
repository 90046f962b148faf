//! The layout's rules, checked on the source text so they cannot quietly erode: no import cycle
//! between the top-level modules of src/, `policy` free of tokio, `net` and `cluster`, `protocol`
//! free of policy, `report` free of connections, no file over 400 lines, and no function over 60
//! lines outside tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 60;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under `dir`, with its path.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The top-level module a file belongs to (`src/policy/topics.rs` → `policy`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("component").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// A file's text without its `#[cfg(test)] mod tests { ... }` block, and whether it is a test file.
fn production_text(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    if name == "tests.rs" || path.components().any(|c| c.as_os_str() == "tests") {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    Some(match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => text[..i].to_owned(),
        None => text,
    })
}

/// Top-level modules a file's production code names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files(&src()) {
        let Some(text) = production_text(&path) else { continue };
        let m = module_of(&path);
        if m == "lib" || m == "main" {
            continue;
        }
        let deps = graph.entry(m.clone()).or_default();
        deps.extend(imports(&text).into_iter().filter(|d| *d != m));
    }
    // Depth-first search for a back edge; report the cycle's path.
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, stack: &mut Vec<String>, done: &mut BTreeSet<String>) {
        if done.contains(n) {
            return;
        }
        if let Some(pos) = stack.iter().position(|s| s == n) {
            panic!("import cycle: {} -> {n}", stack[pos..].join(" -> "));
        }
        stack.push(n.to_owned());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, stack, done);
        }
        stack.pop();
        done.insert(n.to_owned());
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.contains_key("policy") && graph.contains_key("session"), "the walk saw the modules: {graph:?}");
}

#[test]
fn policy_is_pure_and_protocol_knows_no_policy() {
    for path in files(&src()) {
        let Some(text) = production_text(&path) else { continue };
        let m = module_of(&path);
        let deps = imports(&text);
        if m == "policy" {
            for banned in ["net", "cluster", "session", "handlers", "server", "state", "audit"] {
                assert!(!deps.contains(banned), "{} imports crate::{banned}: policy must stay pure", path.display());
            }
            assert!(!text.contains("tokio::"), "{} mentions tokio: policy must stay pure", path.display());
        }
        if m == "protocol" {
            assert!(deps.iter().all(|d| d == "protocol"), "{} imports {deps:?}: protocol knows only bytes", path.display());
        }
    }
}

#[test]
fn report_reads_logs_not_connections() {
    let mut seen = false;
    for path in files(&src()) {
        let Some(text) = production_text(&path) else { continue };
        if module_of(&path) != "report" {
            continue;
        }
        seen = true;
        let deps = imports(&text);
        for banned in ["net", "cluster", "session", "handlers", "server", "state"] {
            assert!(!deps.contains(banned), "{} imports crate::{banned}: report only reads audit logs", path.display());
        }
        assert!(!text.contains("tokio::"), "{} mentions tokio: report is a plain synchronous reader", path.display());
    }
    assert!(seen, "src/report/ exists");
}

#[test]
fn files_and_functions_stay_small() {
    let mut problems = Vec::new();
    for path in files(&src()) {
        let Some(text) = production_text(&path) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > MAX_FILE_LINES {
            problems.push(format!("{}: {} lines (at most {MAX_FILE_LINES})", path.display(), lines.len()));
        }
        for (start, len, name) in functions(&lines) {
            if len > MAX_FN_LINES {
                problems.push(format!("{}:{}: fn {name} is {len} lines (at most {MAX_FN_LINES})", path.display(), start + 1));
            }
        }
        let first = lines.first().copied().unwrap_or_default();
        if !first.starts_with("//!") {
            problems.push(format!("{}: the first line must say the module's job (//! ...)", path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// (first line, line count, name) of every fn whose body is a block: from the `fn` line to the
/// closing brace at the same indentation (rustfmt's layout).
fn functions(lines: &[&str]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let is_fn =
            ["fn ", "pub fn ", "pub(crate) fn ", "async fn ", "pub async fn ", "pub(crate) async fn ", "const fn ", "pub const fn "]
                .iter()
                .any(|p| trimmed.starts_with(p));
        if !is_fn || trimmed.ends_with(';') {
            continue;
        }
        let name: String = trimmed.split("fn ").nth(1).unwrap_or("").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines.iter().skip(i + 1).position(|l| *l == close) {
            out.push((i, end + 2, name));
        }
    }
    out
}
