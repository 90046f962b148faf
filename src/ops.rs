//! The operator's HTTP endpoint (`admin.listen`): `GET /metrics` (Prometheus text), `GET /healthz`
//! (the process serves), `GET /readyz` (200 once discovery reached a broker and while not
//! draining; 503 otherwise, so a load balancer stops sending before connections close).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Encoder, Metrics};

/// What the endpoint reads: the metrics, whether the proxy is ready, and collectors owned by
/// other parts (audit sinks).
#[derive(Clone)]
pub struct OpsState {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<dyn Fn() -> bool + Send + Sync>,
    pub collect: Arc<dyn Fn(&mut Encoder) + Send + Sync>,
}

/// Serves until `stop` (which the process cancels only at the very end, so /readyz can say 503
/// throughout a drain).
pub async fn serve(listener: TcpListener, state: OpsState, stop: CancellationToken) {
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin endpoint failed to accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(state.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await {
                tracing::debug!(%peer, error = %e, "admin endpoint connection ended with an error");
            }
        });
    }
}

async fn answer(state: OpsState, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: String, content_type: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), PLAIN));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            let body = state.metrics.encode(&*state.collect);
            text(StatusCode::OK, body, "text/plain; version=0.0.4; charset=utf-8")
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/readyz" if (state.ready)() => text(StatusCode::OK, "ready\n".into(), PLAIN),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready: no broker reached yet, or draining\n".into(), PLAIN),
        _ => text(StatusCode::NOT_FOUND, "try /metrics, /healthz or /readyz\n".into(), PLAIN),
    })
}
