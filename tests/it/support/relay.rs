//! A recording TCP relay between the proxy and the broker: it forwards bytes both ways and keeps
//! the header (and Produce acks) of every request, so tests assert on what the broker received.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use kafka_durability_proxy::protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub struct Seen {
    pub api_key: i16,
    pub client_id: Option<String>,
    pub acks: Option<i16>,
    pub api_version: i16,
    /// Which client connection (numbered from 0 in accept order) carried the request.
    pub conn: u64,
    /// The whole frame, kept for Metadata and admin requests (tests decode what the broker got).
    pub frame: Option<bytes::Bytes>,
}

pub struct Relay {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub port: u16,
}

impl Relay {
    /// Listens on a port of its own choosing and relays to `upstream` (which may start later).
    pub fn start(upstream: u16) -> Relay {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        let listener = super::runtime().block_on(TcpListener::bind(("127.0.0.1", 0))).expect("relay bind");
        let port = listener.local_addr().expect("relay addr").port();
        super::runtime().spawn(async move {
            let mut next_conn = 0u64;
            while let Ok((client, _)) = listener.accept().await {
                let rec = rec.clone();
                let conn = next_conn;
                next_conn += 1;
                tokio::spawn(async move {
                    let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut br, mut bw) = broker.into_split();
                    let up = async move {
                        let mut buf = BytesMut::new();
                        loop {
                            while let Ok(Some(frame)) = protocol::split_frame(&mut buf, 1 << 30) {
                                if let Some(h) = protocol::peek_request_header(&frame) {
                                    let acks = if h.api_key == 0 { protocol::peek_produce(&frame, &h).map(|p| p.acks) } else { None };
                                    let client_id = h.client_id(&frame).map(str::to_owned);
                                    let keep = matches!(h.api_key, 3 | 19 | 20 | 21);
                                    let frame = keep.then(|| bytes::Bytes::copy_from_slice(&frame));
                                    rec.lock().expect("lock").push(Seen {
                                        api_key: h.api_key,
                                        api_version: h.api_version,
                                        client_id,
                                        acks,
                                        conn,
                                        frame,
                                    });
                                }
                                if bw.write_all(&frame).await.is_err() {
                                    return;
                                }
                            }
                            buf.reserve(64 * 1024);
                            match cr.read_buf(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                        }
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut br, &mut cw).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Relay { seen, port }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Produce requests the broker received from a client id.
    pub fn produces(&self, client_id: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.api_key == 0 && s.client_id.as_deref() == Some(client_id)).collect()
    }
}
