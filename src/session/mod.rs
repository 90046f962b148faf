//! One client connection and its broker connection, as two halves that run side by side:
//! `requests` (read, route through the handlers, forward) and `responses` (match, rewrite,
//! swallow, reorder), joined by the in-flight queue of `inflight`.

pub mod conn;
pub mod cut;
pub mod detect;
pub mod inflight;
pub mod requests;
pub mod responses;
pub mod sasl;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, warn};

use crate::cluster::Target;
use crate::error::{SessionError, Side};
use crate::identity::Identity;
use crate::net::listener::Admission;
use crate::net::{transport, Accepted, FrameReader, FrameWriter, Stream};
use crate::state::Proxy;
use conn::{ConnInfo, Seen};
use inflight::Inbox;
use requests::{Ended, Requests};
use responses::Responses;
use sasl::SaslRelay;

/// Serves one accepted client connection until either side closes or fails. The permit holds
/// its place under the connection limits until it ends.
pub async fn run(proxy: Arc<Proxy>, client: Accepted, _admission: Admission, target: Target) {
    let peer = client.peer;
    let (stream, identity) = match &proxy.tls_server {
        None => (Stream::Tcp(client.tcp), Identity::default()),
        Some(tls) => match tls.accept(client.tcp).await {
            Ok((stream, cert)) => {
                let (subject, principal) = cert.map(|c| (Some(c.subject), c.principal)).unwrap_or_default();
                (stream, Identity::from_tls(subject, principal))
            }
            Err(e) => {
                warn!(%peer, side = %Side::Client, error = %e, "closing client connection");
                return;
            }
        },
    };
    let broker = match connect(&proxy, target).await {
        Ok(b) => b,
        Err(e) => {
            warn!(%peer, side = %e.side(), error = %e, "closing client connection");
            return;
        }
    };
    let (cr, cw) = stream.into_split();
    let (br, bw) = broker.into_split();
    match serve_halves(&proxy, peer, &identity, (cr, cw), (br, bw)).await {
        Ok(()) => debug!(%peer, "connection closed"),
        Err(e) => warn!(%peer, side = %e.side(), error = %e, "closing client connection"),
    }
}

/// Serves one client over already-connected stream halves, (read, write) for the client and for
/// the broker: the transport's halves in production, and in-memory pipes where a test measures
/// the forward path itself.
pub async fn serve_halves<CR, CW, BR, BW>(
    proxy: &Arc<Proxy>,
    peer: SocketAddr,
    identity: &Identity,
    (cr, cw): (CR, CW),
    (br, bw): (BR, BW),
) -> Result<(), SessionError>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    BR: AsyncRead + Unpin,
    BW: AsyncWrite + Unpin,
{
    let cfg = proxy.config();
    let limits = &cfg.limits;
    let inbox = Inbox::new(limits.max_in_flight);
    let (tx, rx) = inbox.split();
    let sasl = SaslRelay::new(cfg.listen.sasl.plain_principal);
    let info = ConnInfo::default();
    let inflight = AtomicUsize::new(0);
    let lame = AtomicBool::new(false);
    let reader = FrameReader::new(cr, limits.max_frame_bytes);
    let mut requests = Requests {
        proxy,
        peer,
        identity,
        info: &info,
        seen: Seen::default(),
        sasl: &sasl,
        inflight: &inflight,
        reader,
        writer: FrameWriter::new(bw),
        tx: Some(tx),
        holds: proxy.deliveries.session(),
        hold_warned: false,
        lame: &lame,
    };
    let responses = Responses {
        proxy,
        peer,
        identity,
        info: &info,
        sasl: &sasl,
        inflight: &inflight,
        reader: FrameReader::new(br, limits.max_frame_bytes),
        writer: FrameWriter::new(cw),
        rx,
        queue: VecDeque::new(),
        maybe: Vec::new(),
        draining: false,
    };
    let lame = cfg.policies.produce_acks.redeliver.then_some(&lame);
    // The request side by reference: an async fn keeps a by-value argument twice in its future
    // (as passed, and moved into its body), and this future is every session's task.
    serve(&mut requests, responses, Duration::from_millis(limits.drain_timeout_ms), lame).await
}

/// How long a client connection is still read after its broker connection failed, or after
/// shutdown answered what it had forwarded (see `serve`).
const LAME_DUCK: Duration = Duration::from_secs(5);

async fn serve<CR, BW, BR, CW>(
    requests: &mut Requests<'_, CR, BW>,
    responses: Responses<'_, BR, CW>,
    drain: Duration,
    lame: Option<&AtomicBool>,
) -> Result<(), SessionError>
where
    CR: AsyncRead + Unpin,
    BW: AsyncWrite + Unpin,
    BR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let (result, shut_down) = {
        let req = requests.run();
        let resp = responses.run();
        tokio::pin!(req, resp);
        tokio::select! {
            ended = &mut req => {
                // Whatever ended the request side (client gone, a queued close, a bad frame,
                // shutdown), the requests already forwarded are seen through: an upgraded acks=0
                // producer that disconnects right after sending still gets its records written,
                // and their errors audited. The broker connection stays open until they are
                // answered, within `drain`; then the client gets end-of-stream.
                let shut_down = matches!(ended, Ok(Ended::Shutdown));
                let drained = match tokio::time::timeout(drain, &mut resp).await {
                    Ok(r) => r,
                    Err(_) => Err(SessionError::Broker(format!("in-flight requests not answered within {drain:?} after the client side ended"))),
                };
                let r = match (ended, drained) {
                    (Err(e), Err(d)) => {
                        debug!(error = %d, "draining after the client side failed");
                        Err(e)
                    }
                    (Err(e), Ok(())) => Err(e),
                    (Ok(_), d) => d,
                };
                (r, shut_down)
            }
            r = &mut resp => {
                // The broker side failed and the client has been sent end-of-stream. An acks=0
                // producer may have written more requests before it notices: read them until it
                // closes (or LAME_DUCK), and hand the upgraded ones to the re-sender rather than
                // lose them in a reset socket buffer.
                if let (Err(_), Some(lame)) = (&r, lame) {
                    lame.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = tokio::time::timeout(LAME_DUCK, &mut req).await;
                }
                (r, false)
            }
        }
    };
    if let (true, Some(lame)) = (shut_down, lame) {
        // Shutting down: the client has its answers and end-of-stream. What it wrote meanwhile
        // is read the same way, so a rolling restart loses no fire-and-forget record.
        // (Boxed: inline, this second run would sit beside the first in every session's task.)
        lame.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tokio::time::timeout(LAME_DUCK, Box::pin(requests.run())).await;
    }
    result
}

/// The broker connection for a client: any bootstrap broker, or the one node a node listener
/// stands for (clients rely on reaching the partition leader).
async fn connect(proxy: &Proxy, target: Target) -> Result<Stream, SessionError> {
    let cfg = proxy.config();
    let addrs = match target {
        Target::Bootstrap => cfg.upstream.bootstrap_servers.clone(),
        Target::Node(id) => {
            vec![proxy.cluster.topology.broker(id).ok_or_else(|| SessionError::Proxy(format!("no known address for broker node {id}")))?]
        }
    };
    let timeout = Duration::from_millis(cfg.upstream.connect_timeout_ms);
    let mut last = SessionError::Proxy("no upstream address".into());
    for addr in addrs {
        let started = std::time::Instant::now();
        let connected = transport::connect(&addr, timeout, proxy.tls_client.as_deref()).await;
        proxy.metrics.connect_observed(started.elapsed(), connected.is_ok());
        match connected {
            Ok(s) => return Ok(s),
            Err(e) => last = SessionError::BrokerConnect { addr, reason: e.to_string() },
        }
    }
    Err(last)
}
