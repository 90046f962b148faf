//! Command line (clap): `run --config FILE` (or `--config FILE`) runs the proxy, `check-config
//! FILE` (or `--check-config FILE`) validates and exits, `report FILE...` summarises audit logs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use kafka_durability_proxy::{audit, config, report, server, state};

#[derive(Parser)]
#[command(
    name = "kafka-durability-proxy",
    version,
    about,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true,
    after_help = "Operational logs go to stderr (level from RUST_LOG, default info); the audit stream goes where the\n\
                  config's audit section says. `--config FILE` and `--check-config FILE` are the same as `run --config\n\
                  FILE` and `check-config FILE`. Usage errors exit with 2."
)]
struct Cli {
    /// Run the proxy with this configuration (same as `run --config FILE`)
    #[arg(long, value_name = "FILE", conflicts_with = "check_config")]
    config: Option<PathBuf>,
    /// Validate the configuration, list every problem, and exit: 0 when valid, 2 when not
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy
    Run {
        /// The configuration file (config/proxy.example.yaml documents every key)
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file, list every problem, and exit: 0 when valid, 2 when not
    CheckConfig {
        /// The configuration file
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Summarise audit logs: who sent weak requests, under which rule, what the proxy did
    Report(report::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config, cli.check_config) {
        (Some(Command::Run { config }), _, _) | (None, Some(config), _) => run_proxy(&config),
        (Some(Command::CheckConfig { file }), _, _) | (None, None, Some(file)) => check_config(&file),
        (Some(Command::Report(args)), _, _) => run_report(&args),
        (None, None, None) => Cli::command().error(clap::error::ErrorKind::MissingSubcommand, "nothing to do").exit(),
    }
}

/// Loads and validates a configuration, printing every problem.
fn load(path: &Path) -> Option<config::Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(e) => {
            eprint!("{}: {e}", path.display());
            None
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    let Some(cfg) = load(path) else { return ExitCode::from(2) };
    if let Err(e) = tls_check(&cfg) {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(2);
    }
    for w in config::validate::warnings(&cfg) {
        eprintln!("{}: warning: {w}", path.display());
    }
    println!("{}: configuration is valid", path.display());
    ExitCode::SUCCESS
}

fn run_proxy(path: &Path) -> ExitCode {
    let Some(cfg) = load(path) else { return ExitCode::from(2) };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    for w in config::validate::warnings(&cfg) {
        tracing::warn!("{}: {w}", path.display());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy cannot start its runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg, path.to_owned())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The report on stdout, skipped lines on stderr; 1 when an input cannot be read.
fn run_report(args: &report::Args) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let res = report::run(args, std::time::SystemTime::now(), &mut std::io::stdin().lock(), &mut out, &mut std::io::stderr().lock());
    match res {
        Ok(()) => ExitCode::SUCCESS,
        // `report ... | head`: the reader has what it wanted.
        Err(report::ReportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the TLS material a configuration names, as the proxy will at start.
fn tls_check(cfg: &config::Config) -> Result<(), String> {
    let timeout = std::time::Duration::from_millis(cfg.limits.tls_handshake_timeout_ms);
    let mut problems = Vec::new();
    if let Some(t) = &cfg.listen.tls {
        if let Err(e) = kafka_durability_proxy::net::tls::TlsServer::new(t, timeout) {
            problems.push(format!("listen.tls: {e}"));
        }
    }
    if let Some(t) = &cfg.upstream.tls {
        if let Err(e) = kafka_durability_proxy::net::tls::TlsClient::new(t) {
            problems.push(format!("upstream.tls: {e}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "invalid TLS material ({} problem{}):\n  - {}\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n  - ")
    ))
}

async fn run(cfg: config::Config, path: PathBuf) -> anyhow::Result<()> {
    let settings = state::client_settings(&cfg).map_err(|e| anyhow::anyhow!("proxy cannot start: {e}"))?;
    let metrics = std::sync::Arc::new(kafka_durability_proxy::metrics::Metrics::new());
    let (log, writer) =
        audit::start(&cfg.audit, &settings, &metrics).await.map_err(|e| anyhow::anyhow!("proxy cannot open an audit sink: {e}"))?;
    let proxy = state::Proxy::with_client(cfg, log, settings, metrics).map_err(|e| anyhow::anyhow!("proxy cannot start: {e}"))?;
    let admin_stop = tokio_util::sync::CancellationToken::new();
    let audit_stats = proxy.audit.log().clone();
    let collect = std::sync::Arc::new(move |e: &mut kafka_durability_proxy::metrics::Encoder| audit_metrics(&audit_stats, e));
    server::start_admin(&proxy, collect, admin_stop.clone())
        .map_err(|e| anyhow::anyhow!("proxy cannot bind the admin endpoint (admin.listen): {e}"))?;
    server::start(proxy.clone()).await.map_err(|e| anyhow::anyhow!("proxy cannot bind the bootstrap listener: {e}"))?;
    let reloading = proxy.clone();
    tokio::spawn(config::reload::watch(path, move |cfg| reloading.reload(cfg)));
    tokio::spawn(watch_tls(proxy.clone()));
    shutdown_signal().await;
    proxy.begin_drain();
    let delay = std::time::Duration::from_millis(proxy.config().limits.shutdown_delay_ms);
    if !delay.is_zero() {
        tracing::info!(?delay, "shutting down: /readyz answers 503; listeners close after limits.shutdown_delay_ms");
        tokio::time::sleep(delay).await;
    }
    tracing::info!("shutting down: no new connections; finishing the requests already forwarded");
    let open = proxy.drain().await;
    if open > 0 {
        tracing::warn!(sessions = open, "drain timeout reached; closing the rest");
    }
    tracing::info!("writing pending audit summaries");
    writer.finish().await;
    admin_stop.cancel();
    Ok(())
}

/// The audit writer's own counters, for /metrics.
fn audit_metrics(log: &audit::AuditLog, e: &mut kafka_durability_proxy::metrics::Encoder) {
    use std::sync::atomic::Ordering::Relaxed;
    let sinks: Vec<_> = log
        .sink_stats()
        .into_iter()
        .map(|(name, s)| kafka_durability_proxy::metrics::SinkSample {
            name,
            written: s.written.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            queued: s.queued.load(Relaxed),
            retries: s.retries.load(Relaxed),
        })
        .collect();
    kafka_durability_proxy::metrics::encode_audit(e, log.dropped(), &sinks);
}

/// Reloads certificates and keys when their files change (checked every 2 s) or on SIGHUP.
async fn watch_tls(proxy: std::sync::Arc<state::Proxy>) {
    if proxy.tls_server.is_none() && proxy.tls_client.is_none() {
        return;
    }
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let force = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => false,
        };
        proxy.reload_tls(force);
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
