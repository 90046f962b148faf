//! A scripted fake broker (answers chosen per request by the test, in order, with optional
//! delays) and a raw Kafka client that speaks frames built with kafka-protocol.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_durability_proxy::net::FrameReader;
use kafka_durability_proxy::protocol::{self, RequestHeader};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub enum Reply {
    Frame(Bytes),
    After(Duration, Bytes),
    /// Apache Kafka's behaviour for acks=0: no response at all.
    Nothing,
    /// A broker that dies: the connection is closed without an answer.
    Close,
}

pub type Script = Arc<dyn Fn(u16, &RequestHeader, &[u8]) -> Reply + Send + Sync>;

#[derive(Clone, Debug)]
pub struct Got {
    pub listener_port: u16,
    pub api_key: i16,
    pub api_version: i16,
    pub client_id: Option<String>,
    /// Which accepted connection (counting from 0 across all ports) carried the request.
    pub conn: usize,
    pub acks: Option<i16>,
    /// The request as received.
    pub frame: Bytes,
}

pub struct FakeBroker {
    pub ports: Vec<u16>,
    pub got: Arc<Mutex<Vec<Got>>>,
}

impl FakeBroker {
    /// Listens on `n` ports (one per pretend broker) with the same script.
    pub fn start(n: usize, script: Script) -> FakeBroker {
        let got = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut ports = Vec::new();
        for _ in 0..n {
            let listener = super::runtime().block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
            let port = listener.local_addr().expect("addr").port();
            ports.push(port);
            let (script, got, conns) = (script.clone(), got.clone(), conns.clone());
            super::runtime().spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (script, got) = (script.clone(), got.clone());
                    let conn = conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        let (r, mut w) = stream.into_split();
                        let mut reader = FrameReader::new(r, 1 << 30);
                        while let Ok(Some(frame)) = reader.next().await {
                            let Some(h) = protocol::peek_request_header(&frame) else { return };
                            let acks = if h.api_key == 0 { protocol::peek_produce(&frame, &h).map(|p| p.acks) } else { None };
                            let client_id = h.client_id(&frame).map(str::to_owned);
                            let frame = frame.freeze();
                            let g = Got {
                                listener_port: port,
                                api_key: h.api_key,
                                api_version: h.api_version,
                                client_id,
                                conn,
                                acks,
                                frame: frame.clone(),
                            };
                            got.lock().expect("lock").push(g);
                            let reply = script(port, &h, &frame);
                            let bytes = match reply {
                                Reply::Frame(b) => b,
                                Reply::After(d, b) => {
                                    tokio::time::sleep(d).await;
                                    b
                                }
                                Reply::Nothing => continue,
                                Reply::Close => return,
                            };
                            if w.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        }
        FakeBroker { ports, got }
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
}

/// A blocking raw client: send frames, read whole response frames.
pub struct RawClient {
    s: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        RawClient { s, buf: BytesMut::new() }
    }

    /// Sends, reporting (rather than panicking on) a peer that already closed.
    pub fn try_send(&mut self, frame: &[u8]) -> bool {
        self.s.write_all(frame).is_ok()
    }

    pub fn send(&mut self, frame: &[u8]) {
        self.s.write_all(frame).expect("send");
    }

    /// The next response frame; `None` when the proxy closed the connection or nothing came.
    pub fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Ok(Some(f)) = protocol::split_frame(&mut self.buf, 1 << 30) {
                return Some(f.freeze());
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True when the peer closed the connection (reads end) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1];
        matches!(self.s.read(&mut chunk), Ok(0))
    }
}
