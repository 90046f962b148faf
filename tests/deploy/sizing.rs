//! docs/sizing.md against docs/benchmarks.md and the Kubernetes base: its measured inputs are
//! benchmarks.md's current figures, every result is recomputed from its inputs, and the pod's
//! requests are at least what the results say a pod needs. A benchmark refresh fails here until
//! the sizing is redone.

use std::collections::BTreeMap;

use crate::repo;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn cells(line: &str) -> Vec<String> {
    line.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
}

fn number(s: &str) -> f64 {
    s.replace(',', "").parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// The proxy's row in the table under `heading` in docs/benchmarks.md.
fn proxy_row(bench: &str, heading: &str) -> Vec<String> {
    let section = bench.split(heading).nth(1).unwrap_or_else(|| panic!("benchmarks.md has no {heading:?}"));
    let line = section.lines().find(|l| l.starts_with("| **kafka-durability-proxy** |")).expect("the proxy's row");
    cells(line)
}

/// `| id | ... | value | ... |` rows of a sizing table: id → value (the third cell).
fn ids(doc: &str) -> BTreeMap<String, f64> {
    doc.lines()
        .filter(|l| l.starts_with("| B") || l.starts_with("| A") || l.starts_with("| R"))
        .map(cells)
        .filter(|c| c[0].len() == 2 && c[0][1..].chars().all(|d| d.is_ascii_digit()))
        .map(|c| (c[0].clone(), number(&c[2])))
        .collect()
}

fn close(stated: f64, computed: f64, what: &str) {
    let tolerance = 0.006 * computed.abs().max(1.0);
    assert!((stated - computed).abs() <= tolerance, "docs/sizing.md: {what} says {stated}, the inputs give {computed:.3}");
}

#[test]
fn the_inputs_are_the_current_benchmark_figures_and_the_results_follow() {
    let bench = read("docs/benchmarks.md");
    let doc = read("docs/sizing.md");
    let v = ids(&doc);
    let cost = proxy_row(&bench, "## Cost of the hop");
    let idle = proxy_row(&bench, "## Idle connections");
    for (id, measured, source) in [
        ("B1", number(&cost[1]), "hop CPU s per GB"),
        ("B2", number(&cost[2]), "hop peak RSS MiB"),
        ("B3", number(&idle[4]), "KiB per connection pair"),
        ("B4", number(&idle[2]), "RSS before MiB"),
    ] {
        assert_eq!(v[id], measured, "docs/sizing.md {id} ({source}) is not benchmarks.md's current {measured}: redo the sizing");
    }
    let r1 = 0.1 * v["B1"];
    close(v["R1"], r1, "R1");
    close(v["R2"], r1 * v["A1"], "R2");
    close(v["R3"], 1000.0 * v["B3"] / 1024.0, "R3");
    close(v["R4"], v["B2"] + v["A3"] * v["B3"] / 1024.0, "R4");
    close(v["R5"], v["A2"] / 100.0 * v["R2"], "R5");
    close(v["R6"], v["R4"] + v["A7"] + 3.0 * v["A8"], "R6");
    // The replica table: max(A6, ceil(conns / A3) + A5, ceil(throughput / A2) + A5).
    let rows: Vec<Vec<String>> =
        doc.lines().skip_while(|l| !l.starts_with("| clients |")).skip(2).take_while(|l| l.starts_with('|')).map(cells).collect();
    assert!(rows.len() >= 3, "the replica table has rows");
    for r in rows {
        let [clients, conns, by_conns, tput, by_tput, replicas] = [0, 1, 2, 3, 4, 5].map(|i| number(&r[i]));
        assert_eq!(conns, clients * v["A4"], "{r:?}");
        assert_eq!(by_conns, (conns / v["A3"]).ceil() + v["A5"], "{r:?}");
        assert_eq!(by_tput, (tput / v["A2"]).ceil() + v["A5"], "{r:?}");
        assert_eq!(replicas, v["A6"].max(by_conns).max(by_tput), "{r:?}");
    }
}

#[test]
fn the_pod_asks_for_what_the_sizing_says() {
    let v = ids(&read("docs/sizing.md"));
    let deployment: serde_yaml::Value = serde_yaml::from_str(&read("deploy/kubernetes/deployment.yaml")).expect("yaml");
    let proxy: serde_yaml::Value = serde_yaml::from_str(&read("deploy/kubernetes/proxy.yaml")).expect("yaml");
    assert_eq!(proxy["limits"]["max_connections"].as_f64(), Some(v["A3"]), "A3 is proxy.yaml's limits.max_connections");
    assert_eq!(deployment["spec"]["replicas"].as_f64(), Some(v["A6"]), "A6 is the Deployment's replicas");
    let requests = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"];
    let cpu = requests["cpu"].as_str().expect("cpu");
    let cores = cpu.strip_suffix('m').map(|m| number(m) / 1000.0).unwrap_or_else(|| number(cpu));
    assert!(cores >= v["R5"], "cpu request {cpu} is below R5 = {} cores", v["R5"]);
    let memory = requests["memory"].as_str().expect("memory");
    let mib = number(memory.strip_suffix("Mi").expect("memory in Mi"));
    assert!(mib >= v["R4"], "memory request {memory} is below R4 = {} MiB", v["R4"]);
    let total = proxy["limits"]["redelivery_bytes_total"].as_f64().expect("proxy.yaml sets limits.redelivery_bytes_total");
    assert_eq!(total / 1048576.0, v["A7"], "A7 is proxy.yaml's limits.redelivery_bytes_total in MiB");
    let limit = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"].as_str().expect("memory limit");
    let limit_mib = number(limit.strip_suffix("Mi").expect("memory limit in Mi"));
    assert!(
        limit_mib >= v["R6"],
        "memory limit {limit} is below R6 = {} MiB: a pod killed for memory loses the acks=0 requests it holds",
        v["R6"]
    );
}
