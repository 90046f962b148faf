//! Small-request latency probe for the benchmark: sequential round trips on one connection,
//! percentiles in microseconds as one JSON line. With a baseline address, round trips alternate
//! between the path and the baseline (the same broker reached directly), so the hop's added
//! latency is measured against the same broker at the same moment.
//! Usage: probe [--ca CA.pem] HOST:PORT [ROUNDS] [WARMUP] [api-versions|list-groups] [BASELINE_HOST:PORT]
//! ApiVersions is rewritten by the proxy (decode + re-encode); ListGroups passes through opaque.
//! With `--ca`, both connections speak TLS (rustls, ring) and verify the server with that CA.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use kafka_durability_proxy::protocol::encode as frames;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ListGroupsRequest};
use kafka_protocol::protocol::StrBytes;

/// A plaintext or TLS byte stream.
trait Io: Read + Write {}
impl<T: Read + Write> Io for T {}

struct Conn {
    s: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_nodelay(true)?;
        let s: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_owned();
                let name = rustls_pki_types::ServerName::try_from(host)?;
                Box::new(rustls::StreamOwned::new(rustls::ClientConnection::new(config.clone(), name)?, tcp))
            }
        };
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

/// A TLS client trusting only the CA in `ca` (PEM).
fn tls_config(ca: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let usage = "usage: probe [--ca CA.pem] HOST:PORT [ROUNDS] [WARMUP] [api-versions|list-groups] [BASELINE_HOST:PORT]";
    let tls = if args.peek().map(String::as_str) == Some("--ca") {
        args.next();
        Some(tls_config(&args.next().ok_or_else(|| anyhow::anyhow!(usage))?)?)
    } else {
        None
    };
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
    let mut path = Conn::open(&addr, tls.as_ref())?;
    let mut base = baseline.as_deref().map(|b| Conn::open(b, tls.as_ref())).transpose()?;
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
