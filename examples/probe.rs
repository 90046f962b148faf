//! Small-request latency probe for the benchmark: sequential ApiVersions round trips on one
//! connection; prints percentiles in microseconds as one JSON line.
//! Usage: probe HOST:PORT [ROUNDS] [WARMUP]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use kafka_durability_proxy::frames;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::StrBytes;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or_else(|| anyhow::anyhow!("usage: probe HOST:PORT [ROUNDS] [WARMUP]"))?;
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let warmup: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let mut s = TcpStream::connect(&addr)?;
    s.set_nodelay(true)?;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("probe"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..rounds + warmup {
        let frame = frames::request(ApiKey::ApiVersions, 3, i as i32, Some("probe"), &req)?;
        let t = Instant::now();
        s.write_all(&frame)?;
        let mut size = [0u8; 4];
        s.read_exact(&mut size)?;
        let n = i32::from_be_bytes(size) as usize;
        anyhow::ensure!(n <= buf.len(), "response of {n} bytes");
        s.read_exact(&mut buf[..n])?;
        if i >= warmup {
            samples.push(t.elapsed().as_nanos() as u64);
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1000.0;
    println!(
        "{{\"rounds\":{rounds},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1}}}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    Ok(())
}
