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

async fn run(cfg: config::Config, path: PathBuf) -> anyhow::Result<()> {
    let (log, writer) = audit::start(&cfg.audit).await.map_err(|e| anyhow::anyhow!("proxy cannot open the audit sink: {e}"))?;
    let proxy = state::Proxy::new(cfg, log);
    server::start(proxy.clone()).await.map_err(|e| anyhow::anyhow!("proxy cannot bind the bootstrap listener: {e}"))?;
    let reloading = proxy.clone();
    tokio::spawn(config::reload::watch(path, move |cfg| reloading.reload(cfg)));
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
