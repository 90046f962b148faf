//! Small-request latency probe for the benchmark: sequential round trips on one connection,
//! percentiles in microseconds as one JSON line. With a baseline address, round trips alternate
//! between the path and the baseline (the same broker reached directly), so the hop's added
//! latency is measured against the same broker at the same moment.
//! Usage: probe HOST:PORT [ROUNDS] [WARMUP] [api-versions|list-groups] [BASELINE_HOST:PORT]
//! ApiVersions is rewritten by the proxy (decode + re-encode); ListGroups passes through opaque.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use kafka_durability_proxy::protocol::encode as frames;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Conn { s, buf: vec![0u8; 64 * 1024] })
    }

    /// One request/response round trip, in nanoseconds.
    fn round_trip(&mut self, frame: &[u8]) -> anyhow::Result<u64> {
        let t = Instant::now();
        self.s.write_all(frame)?;
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size)?;
        let n = i32::from_be_bytes(size) as usize;
        anyhow::ensure!(n <= self.buf.len(), "response of {n} bytes");
        self.s.read_exact(&mut self.buf[..n])?;
        Ok(t.elapsed().as_nanos() as u64)
    }
}

fn percentiles(mut v: Vec<u64>) -> [f64; 4] {
    v.sort_unstable();
    let at = |p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1000.0;
    [at(0.50), at(0.99), at(0.999), at(1.0)]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: probe HOST:PORT [ROUNDS] [WARMUP] [api-versions|list-groups] [BASELINE_HOST:PORT]";
    let addr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let warmup: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let opaque = match args.next().as_deref() {
        None | Some("api-versions") => false,
        Some("list-groups") => true,
        Some(other) => anyhow::bail!("unknown probe api {other}"),
    };
    let baseline = args.next();
    let av = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("probe"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let frame = |i: usize| {
        if opaque {
            frames::request(ApiKey::ListGroups, 4, i as i32, Some("probe"), &ListGroupsRequest::default())
        } else {
            frames::request(ApiKey::ApiVersions, 3, i as i32, Some("probe"), &av)
        }
    };
    let mut path = Conn::open(&addr)?;
    let mut base = baseline.as_deref().map(Conn::open).transpose()?;
    let (mut on_path, mut on_base) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds + warmup {
        let f = frame(i)?;
        let p = path.round_trip(&f)?;
        let b = base.as_mut().map(|c| c.round_trip(&f)).transpose()?;
        if i >= warmup {
            on_path.push(p);
            on_base.extend(b);
        }
    }
    let [p50, p99, p999, max] = percentiles(on_path);
    let mut out = format!("{{\"rounds\":{rounds},\"p50_us\":{p50:.1},\"p99_us\":{p99:.1},\"p999_us\":{p999:.1},\"max_us\":{max:.1}");
    if !on_base.is_empty() {
        let [b50, b99, b999, _] = percentiles(on_base);
        out += &format!(
            ",\"base_p50_us\":{b50:.1},\"base_p99_us\":{b99:.1},\"base_p999_us\":{b999:.1},\"added_p50_us\":{:.1},\"added_p99_us\":{:.1},\"added_p999_us\":{:.1}",
            p50 - b50,
            p99 - b99,
            p999 - b999
        );
    }
    println!("{out}}}");
    Ok(())
}
