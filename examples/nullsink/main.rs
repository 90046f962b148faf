//! A null-sink Kafka broker for benchmarking a hop (the proxy, haproxy) without a real broker's
//! noise: it speaks enough of the protocol for librdkafka to produce and consume, answers
//! Produce at memory speed after counting records from the batch headers (no decompression, no
//! storage; acks=0 gets no answer, as from Apache Kafka), and serves every Fetch from one record
//! batch built at start-up. Metadata names one broker, itself, at `--advertise` (give a hop's
//! address when something sits in front that clients must keep using, as haproxy; the proxy
//! rewrites addresses itself, so then advertise the sink's own). Optional TLS (rustls, ring).
//! Consumers must use assign(): there is no group membership (JoinGroup/SyncGroup).
//!
//! Build and run: `cargo build --release --example nullsink`, then
//! `target/release/examples/nullsink --listen 127.0.0.1:9092 [--advertise HOST:PORT]
//! [--node-id 1] [--partitions 1] [--fetch-records 1000] [--record-size 1024]
//! [--tls-cert PEM --tls-key PEM] [--stats-every SECS]`.
//! On SIGTERM/SIGINT (and every `--stats-every` seconds) it prints its counters as one JSON line
//! on stdout: records and bytes produced, fetch responses, requests per API and version.
//!
//! Layout: `api` (version table, dispatch), `produce`, `fetch` (the segment and its hand-written
//! response), `control` (Metadata and other cluster answers), `offsets`, `conn` (one
//! connection), `tls`, `state` (shared state and counters), `walk` (the fields read from requests).

mod api;
mod conn;
mod control;
mod fetch;
mod offsets;
mod produce;
mod state;
mod tls;
mod walk;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::{TcpListener, TcpStream};

use state::Sink;

#[derive(Parser, Debug)]
#[command(about = "A Kafka broker that keeps nothing: for benchmarking what sits in front of it")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// HOST:PORT named in Metadata and FindCoordinator; default: the listening address.
    #[arg(long)]
    advertise: Option<String>,
    #[arg(long, default_value_t = 1)]
    node_id: i32,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Records in the batch every Fetch serves.
    #[arg(long, default_value_t = 1000)]
    fetch_records: usize,
    /// Bytes of each record's value in that batch.
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Print the counters every SECS seconds too (0: only at exit).
    #[arg(long, default_value_t = 0)]
    stats_every: u64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    let advertise = args.advertise.clone().unwrap_or_else(|| local.to_string());
    let (host, port) = advertise.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("--advertise {advertise}: want HOST:PORT"))?;
    let segment = fetch::Segment::build(args.fetch_records, args.record_size)?;
    let sink = Arc::new(Sink::new(args.node_id, host.to_owned(), port.parse()?, args.partitions, segment));
    let acceptor = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    eprintln!(
        "nullsink: node {} listening on {local}{}, advertising {advertise}; fetch batch {} records x {} bytes ({} bytes)",
        args.node_id,
        if acceptor.is_some() { " (TLS)" } else { "" },
        args.fetch_records,
        args.record_size,
        sink.segment.len()
    );
    if args.stats_every > 0 {
        tokio::spawn(print_stats_every(sink.clone(), Duration::from_secs(args.stats_every)));
    }
    tokio::select! {
        r = accept_loop(listener, sink.clone(), acceptor) => r?,
        _ = shutdown_signal() => {}
    }
    println!("{}", sink.stats.json());
    Ok(())
}

async fn accept_loop(listener: TcpListener, sink: Arc<Sink>, acceptor: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<()> {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                eprintln!("nullsink: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, peer, sink.clone(), acceptor.clone()));
    }
}

async fn connection(tcp: TcpStream, peer: SocketAddr, sink: Arc<Sink>, acceptor: Option<tokio_rustls::TlsAcceptor>) {
    let result = match acceptor {
        None => conn::serve(tcp, sink).await,
        Some(a) => match tokio::time::timeout(Duration::from_secs(10), a.accept(tcp)).await {
            Ok(Ok(stream)) => conn::serve(stream, sink).await,
            Ok(Err(e)) => Err(conn::ConnError::Io(e)),
            Err(_) => Err(conn::ConnError::Refused("TLS handshake timed out".into())),
        },
    };
    match result {
        Ok(()) => {}
        // Clients that vanish mid-request are normal at the end of a benchmark.
        Err(conn::ConnError::Io(e)) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {}
        Err(e) => eprintln!("nullsink: connection from {peer} closed: {e}"),
    }
}

async fn print_stats_every(sink: Arc<Sink>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        println!("{}", sink.stats.json());
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
