//! SASL on one client connection, relayed as the client and broker speak it: SaslHandshake and
//! SaslAuthenticate pass through untouched while `protocol::sasl` learns the principal; the
//! legacy v0 handshake's raw tokens (no Kafka header) are carried to the broker inside
//! SaslAuthenticate v0 requests and back as raw tokens, so any broker that speaks
//! SaslAuthenticate serves v0 clients. Until the connection has authenticated, on a cluster that
//! requires SASL, client frames are capped at the broker's own pre-authentication limit.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::error::SessionError;
use crate::handlers::{Disposition, HandlerError, Route};
use crate::identity::Identity;
use crate::protocol::encode::{self, decode_response};
use crate::protocol::errors::{self, UNSUPPORTED_SASL_MECHANISM};
use crate::protocol::sasl::{Mechanism, SaslState};
use crate::protocol::{RequestHeader, SIZE_LEN};

/// Mechanisms whose v0 raw exchange the proxy can follow to its end.
const RAW_MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

pub struct SaslRelay {
    state: Mutex<SaslState>,
    /// Raw v0 tokens the client still sends before Kafka requests resume.
    raw_tokens: AtomicU32,
    /// The broker accepted this connection's credentials (or answered a request that needs them).
    authenticated: AtomicBool,
    /// Correlation ids of the SaslAuthenticate requests the proxy sends for raw tokens: negative,
    /// so they never meet a client's.
    next_corr: AtomicI32,
    client_id: Mutex<Option<String>>,
}

impl SaslRelay {
    pub fn new(read_plain: bool) -> SaslRelay {
        SaslRelay {
            state: Mutex::new(SaslState::new(read_plain)),
            raw_tokens: AtomicU32::new(0),
            authenticated: AtomicBool::new(false),
            next_corr: AtomicI32::new(-1),
            client_id: Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SaslState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Relaxed)
    }

    /// A response to a request that needs authentication came back: the broker accepted the
    /// connection, whatever the mechanism (the proxy cannot see GSSAPI succeed).
    pub fn mark_authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    /// Whether the next client frame is a raw v0 token rather than a Kafka request.
    pub fn expecting_raw_token(&self) -> bool {
        self.raw_tokens.load(Ordering::Relaxed) > 0
    }

    /// Request side, raw mode: the SaslAuthenticate v0 request that carries `frame`'s token.
    pub fn wrap_raw_token(&self, frame: &[u8]) -> Result<(Bytes, i32), HandlerError> {
        let token = frame.get(SIZE_LEN..).unwrap_or_default();
        self.state().on_client_token(token);
        self.raw_tokens.fetch_sub(1, Ordering::Relaxed);
        let corr = self.next_corr.fetch_sub(1, Ordering::Relaxed);
        let client_id = self.client_id.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
        let bytes = encode::request(ApiKey::SaslAuthenticate, 0, corr, client_id.as_deref(), &req)
            .map_err(|e| HandlerError::Encode("SaslAuthenticate", e.to_string()))?;
        Ok((bytes, corr))
    }

    /// Request side: a SaslHandshake. v0 (raw tokens follow) is sent to the broker as v1, whose
    /// request and response bodies are the same; a v0 mechanism the proxy cannot follow to its
    /// end is refused as a broker that lacks it would.
    pub fn handshake(&self, mut frame: BytesMut, h: &RequestHeader) -> Result<Route, HandlerError> {
        let body = h.body_offset.and_then(|o| frame.get(o..)).ok_or(HandlerError::Malformed("SaslHandshake"))?;
        let req =
            SaslHandshakeRequest::decode(&mut Bytes::copy_from_slice(body), 1).map_err(|_| HandlerError::Malformed("SaslHandshake"))?;
        let mechanism = Mechanism::from_name(req.mechanism.as_str());
        *self.client_id.lock().unwrap_or_else(|p| p.into_inner()) = h.client_id(&frame).map(str::to_owned);
        let legacy = h.api_version == 0;
        if legacy && mechanism.client_tokens_expected().is_none() {
            let mechanisms = RAW_MECHANISMS.iter().map(|m| StrBytes::from_static_str(m)).collect();
            let resp = SaslHandshakeResponse::default().with_error_code(UNSUPPORTED_SASL_MECHANISM).with_mechanisms(mechanisms);
            let answer = encode::response(ApiKey::SaslHandshake, 0, h.correlation_id, &resp)
                .map_err(|e| HandlerError::Encode("SaslHandshake", e.to_string()))?;
            return Ok(Route::Answer(answer));
        }
        self.state().on_handshake_request(mechanism);
        if legacy {
            if let Some(v) = frame.get_mut(SIZE_LEN + 2..SIZE_LEN + 4) {
                v.copy_from_slice(&1i16.to_be_bytes());
            }
        }
        Ok(Route::Forward(frame.freeze(), Disposition::SaslHandshake { legacy }))
    }

    /// Request side: a SaslAuthenticate, forwarded as sent.
    pub fn authenticate(&self, frame: BytesMut, h: &RequestHeader) -> Result<Route, HandlerError> {
        let body = h.body_offset.and_then(|o| frame.get(o..)).ok_or(HandlerError::Malformed("SaslAuthenticate"))?;
        let req = SaslAuthenticateRequest::decode(&mut Bytes::copy_from_slice(body), h.api_version)
            .map_err(|_| HandlerError::Malformed("SaslAuthenticate"))?;
        self.state().on_client_token(&req.auth_bytes);
        Ok(Route::Forward(frame.freeze(), Disposition::SaslAuthenticate))
    }

    /// Response side: the SaslHandshake answer. After a successful v0 handshake the client's next
    /// frames are raw tokens: the request side must know before the client can send them.
    pub fn handshake_answered(&self, frame: &Bytes, legacy: bool) -> Result<(), SessionError> {
        let (_, resp): (i32, SaslHandshakeResponse) =
            decode_response(frame, ApiKey::SaslHandshake, 1).map_err(|e| SessionError::Broker(e.to_string()))?;
        let mut state = self.state();
        state.on_handshake_response(resp.error_code);
        if legacy && resp.error_code == errors::NONE {
            self.raw_tokens.store(state.client_tokens_expected().unwrap_or(0), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Response side: a SaslAuthenticate answer, forwarded as is; the principal is learnt.
    pub fn authenticate_answered(&self, frame: &Bytes, version: i16, identity: &Identity) -> Result<(), SessionError> {
        let (_, resp): (i32, SaslAuthenticateResponse) =
            decode_response(frame, ApiKey::SaslAuthenticate, version).map_err(|e| SessionError::Broker(e.to_string()))?;
        self.server_token(resp.error_code, &resp.auth_bytes, identity);
        Ok(())
    }

    /// Response side, raw mode: the broker's answer to a wrapped token becomes a raw token for
    /// the client; a refusal closes the connection, as a broker does in v0.
    pub fn raw_answer(&self, frame: &Bytes, identity: &Identity) -> Result<Bytes, SessionError> {
        let (_, resp): (i32, SaslAuthenticateResponse) =
            decode_response(frame, ApiKey::SaslAuthenticate, 0).map_err(|e| SessionError::Broker(e.to_string()))?;
        self.server_token(resp.error_code, &resp.auth_bytes, identity);
        if resp.error_code != errors::NONE {
            self.raw_tokens.store(0, Ordering::Relaxed);
            let why = resp.error_message.map(|m| m.to_string()).unwrap_or_else(|| errors::name(resp.error_code));
            return Err(SessionError::Client(format!("SASL authentication failed (the broker said: {why}); closed as a v0 broker does")));
        }
        let mut out = BytesMut::with_capacity(SIZE_LEN + resp.auth_bytes.len());
        out.put_i32(i32::try_from(resp.auth_bytes.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(&resp.auth_bytes);
        Ok(out.freeze())
    }

    /// The last exchange ended in failure.
    pub fn failed(&self) -> bool {
        let state = self.state();
        state.done() && !state.authenticated()
    }

    fn server_token(&self, error_code: i16, token: &[u8], identity: &Identity) {
        let mut state = self.state();
        state.on_server_token(error_code, token);
        if state.done() {
            identity.set_sasl_principal(state.principal().map(|p| (p.name.clone(), p.verified)));
            self.authenticated.store(state.authenticated(), Ordering::Relaxed);
            if let Some(problem) = state.problem() {
                tracing::info!(?problem, "client authenticated, but its SASL token named no principal the proxy could read");
            }
        }
    }
}
