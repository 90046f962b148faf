//! Command line: `--config FILE` runs the proxy, `--check-config FILE` validates and exits.

use std::path::PathBuf;
use std::process::ExitCode;

use kafka_durability_proxy::{audit, config, server, state};

const USAGE: &str = "usage: kafka-durability-proxy --config FILE | --check-config FILE

  --config FILE        run the proxy with this configuration
  --check-config FILE  validate the configuration, list every problem, and exit
                       (exit 0 when valid, 2 when not)

Operational logs go to stderr (level from RUST_LOG, default info); the audit
stream goes where the config's audit section says.";

enum Mode {
    Run(PathBuf),
    Check(PathBuf),
}

fn parse_args() -> Result<Mode, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--config" => Ok(Mode::Run(path.into())),
        [flag, path] if flag == "--check-config" => Ok(Mode::Check(path.into())),
        [flag] if flag == "--version" => Err(format!("kafka-durability-proxy {}", env!("CARGO_PKG_VERSION"))),
        _ => Err(USAGE.to_owned()),
    }
}

fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(m) => m,
        Err(text) => {
            eprintln!("{text}");
            return ExitCode::from(2);
        }
    };
    let (path, check_only) = match &mode {
        Mode::Run(p) => (p, false),
        Mode::Check(p) => (p, true),
    };
    let cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if check_only {
        if let Err(e) = tls_check(&cfg) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("{}: configuration is valid", path.display());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy cannot start its runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg, path.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
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
    let (log, writer) = audit::start(&cfg.audit, &settings).await.map_err(|e| anyhow::anyhow!("proxy cannot open an audit sink: {e}"))?;
    let proxy = state::Proxy::with_client(cfg, log, settings).map_err(|e| anyhow::anyhow!("proxy cannot start: {e}"))?;
    server::start(proxy.clone()).await.map_err(|e| anyhow::anyhow!("proxy cannot bind the bootstrap listener: {e}"))?;
    let reloading = proxy.clone();
    tokio::spawn(config::reload::watch(path, move |cfg| reloading.reload(cfg)));
    tokio::spawn(watch_tls(proxy.clone()));
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing the requests already forwarded");
    let open = proxy.drain().await;
    if open > 0 {
        tracing::warn!(sessions = open, "drain timeout reached; closing the rest");
    }
    tracing::info!("writing pending audit summaries");
    writer.finish().await;
    Ok(())
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
