//! Who authenticated on a connection, learnt by watching the SASL exchange the proxy relays
//! (SaslHandshake + SaslAuthenticate, or legacy v0 raw tokens) without changing a byte of it.
//!
//! The session feeds a `SaslState` every handshake, every client token and every server answer;
//! the state reads the user name out of the client's first token and trusts it only once the
//! broker has said yes (SCRAM: the server-final `v=`; PLAIN and OAUTHBEARER: error code 0). No
//! password or bearer token is kept: PLAIN is read in place, and only names leave this module.
//! Re-authentication (KIP-368) starts a new exchange; the previous principal stands until the
//! new exchange ends, and is then replaced (success) or cleared (failure).

mod read;

pub use read::{saslname, Unreadable};

/// A SASL mechanism, by its case-sensitive Kafka name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
    /// GSSAPI and anything else: relayed, never read.
    Other(String),
}

impl Mechanism {
    pub fn from_name(name: &str) -> Self {
        match name {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::ScramSha256,
            "SCRAM-SHA-512" => Mechanism::ScramSha512,
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            other => Mechanism::Other(other.to_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::Other(name) => name,
        }
    }

    /// How many tokens the client sends in a successful exchange (what a v0 raw-token relay must
    /// let through before Kafka requests resume); `None` when the mechanism does not say. A
    /// failing OAUTHBEARER exchange has one more (the client's `\x01` after the broker's error
    /// challenge): `SaslState::done` is the authority on when an exchange is over.
    pub fn client_tokens_expected(&self) -> Option<u32> {
        match self {
            Mechanism::Plain | Mechanism::OAuthBearer => Some(1),
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => Some(2),
            Mechanism::Other(_) => None,
        }
    }

    fn is_scram(&self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha512)
    }
}

/// Who a connection authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// As Kafka's authorizer names it: `User:alice`.
    pub name: String,
    /// The mechanism's Kafka name, e.g. `SCRAM-SHA-256`.
    pub mechanism: String,
    /// False when the name was read from a token the proxy cannot check and the broker may map
    /// differently (OAUTHBEARER's `sub` claim); true when the broker's success vouches for it.
    pub verified: bool,
}

/// Where the current exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// OAUTHBEARER: the broker sent an error challenge; the client acknowledges, then it fails.
    Failing,
    Succeeded,
    Failed,
}

/// What one server token means for the exchange.
enum Verdict {
    Continue,
    Success,
    Failure,
    ErrorChallenge,
}

#[derive(Clone, Debug)]
struct Exchange {
    mechanism: Mechanism,
    client_tokens: u32,
    server_tokens: u32,
    /// Read from the client's first token; trusted only when the broker says yes.
    candidate: Option<Principal>,
    phase: Phase,
}

/// The SASL tracker of one client connection. Holds names only, never a secret.
#[derive(Clone, Debug)]
pub struct SaslState {
    read_plain: bool,
    principal: Option<Principal>,
    authenticated: bool,
    exchange: Option<Exchange>,
    problem: Option<Unreadable>,
}

impl SaslState {
    /// `read_plain`: whether PLAIN tokens may be read at all (they carry the password in clear;
    /// with it off, a PLAIN exchange authenticates with no principal known to the proxy).
    pub fn new(read_plain: bool) -> Self {
        Self { read_plain, principal: None, authenticated: false, exchange: None, problem: None }
    }

    /// A SaslHandshake request: a new exchange begins (the previous principal stands until it ends).
    pub fn on_handshake_request(&mut self, mechanism: Mechanism) {
        self.problem = None;
        self.exchange = Some(Exchange { mechanism, client_tokens: 0, server_tokens: 0, candidate: None, phase: Phase::Running });
    }

    /// The SaslHandshake response: a non-zero error (unsupported mechanism, illegal state) ends
    /// the exchange as a failure.
    pub fn on_handshake_response(&mut self, error_code: i16) {
        if error_code != 0 && self.running() {
            self.finish(false);
        }
    }

    /// The auth_bytes of a SaslAuthenticate request, or a raw v0 token from the client.
    pub fn on_client_token(&mut self, token: &[u8]) {
        if !self.running() {
            return;
        }
        let read_plain = self.read_plain;
        let Some(ex) = self.exchange.as_mut() else { return };
        ex.client_tokens = ex.client_tokens.saturating_add(1);
        if ex.client_tokens != 1 {
            return;
        }
        let read = match &ex.mechanism {
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => read::scram_user(token).map(Some),
            Mechanism::Plain if read_plain => read::plain_user(token).map(Some),
            Mechanism::OAuthBearer => read::oauth_subject(token).map(Some),
            Mechanism::Plain | Mechanism::Other(_) => Ok(None),
        };
        match read {
            Ok(user) => {
                let verified = ex.mechanism != Mechanism::OAuthBearer;
                let mechanism = ex.mechanism.name().to_owned();
                ex.candidate = user.map(|u| Principal { name: format!("User:{u}"), mechanism, verified });
            }
            Err(why) => self.problem = Some(why),
        }
    }

    /// A SaslAuthenticate response (error code and auth_bytes), or a raw v0 token from the
    /// broker (error code 0).
    pub fn on_server_token(&mut self, error_code: i16, token: &[u8]) {
        if !self.running() {
            return;
        }
        let Some(ex) = self.exchange.as_mut() else { return };
        ex.server_tokens = ex.server_tokens.saturating_add(1);
        let verdict = if error_code != 0 { Verdict::Failure } else { ex.judge(token) };
        match verdict {
            Verdict::Continue => {}
            Verdict::ErrorChallenge => {
                ex.phase = Phase::Failing;
                ex.candidate = None;
            }
            Verdict::Success => self.finish(true),
            Verdict::Failure => self.finish(false),
        }
    }

    /// The principal of the last exchange that succeeded, if the proxy could read it.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// Whether the broker accepted the last exchange that ended (with or without a principal the
    /// proxy could read).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// The mechanism of the current (or last) exchange.
    pub fn mechanism(&self) -> Option<&Mechanism> {
        self.exchange.as_ref().map(|ex| &ex.mechanism)
    }

    /// Client tokens the current exchange's mechanism has in all (see `Mechanism`).
    pub fn client_tokens_expected(&self) -> Option<u32> {
        self.exchange.as_ref().and_then(|ex| ex.mechanism.client_tokens_expected())
    }

    /// Whether the current exchange has ended, in success or failure. False before any handshake,
    /// and for mechanisms whose success the proxy cannot see (GSSAPI) until one fails.
    pub fn done(&self) -> bool {
        self.exchange.as_ref().is_some_and(|ex| matches!(ex.phase, Phase::Succeeded | Phase::Failed))
    }

    /// Why the current exchange's client token yielded no principal, for a log line.
    pub fn problem(&self) -> Option<Unreadable> {
        self.problem
    }

    fn running(&self) -> bool {
        self.exchange.as_ref().is_some_and(|ex| matches!(ex.phase, Phase::Running | Phase::Failing))
    }

    fn finish(&mut self, success: bool) {
        let Some(ex) = self.exchange.as_mut() else { return };
        ex.phase = if success { Phase::Succeeded } else { Phase::Failed };
        self.authenticated = success;
        self.principal = if success { ex.candidate.take() } else { None };
    }
}

impl Exchange {
    /// What a server token sent with error code 0 means, given how far the exchange has come.
    fn judge(&self, token: &[u8]) -> Verdict {
        let (client, server) = (self.client_tokens, self.server_tokens);
        if self.phase == Phase::Failing {
            return Verdict::Failure;
        }
        match &self.mechanism {
            m if m.is_scram() => match (client, server) {
                (1, 1) if token.starts_with(b"r=") => Verdict::Continue,
                (2, 2) if token.starts_with(b"v=") => Verdict::Success,
                _ => Verdict::Failure,
            },
            Mechanism::Plain => match (client, server) {
                (1, 1) => Verdict::Success,
                _ => Verdict::Failure,
            },
            Mechanism::OAuthBearer => match (client, server) {
                (1, 1) if oauth_error(token) => Verdict::ErrorChallenge,
                (1, 1) => Verdict::Success,
                _ => Verdict::Failure,
            },
            _ => Verdict::Continue,
        }
    }
}

/// An OAUTHBEARER server error challenge is a JSON object with a `status` (RFC 7628 §3.2.2).
fn oauth_error(token: &[u8]) -> bool {
    !token.is_empty()
        && serde_json::from_slice::<serde_json::Value>(token).is_ok_and(|v| v.as_object().is_some_and(|o| o.contains_key("status")))
}

#[cfg(test)]
mod tests;
