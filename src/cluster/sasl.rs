//! The proxy's own SASL client for its connections to the cluster: a SCRAM-SHA-256/512 state
//! machine (RFC 5802, RFC 7677) and the PLAIN token, with no I/O.
//!
//! The password lives in a `Secret` (Debug prints `***`) only until the server-first message
//! gives the salt; from then on only the derived keys needed to check the server are kept.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::error::Side;

/// RFC 7677 §4: a SCRAM-SHA-256 iteration count below this is refused.
pub const MIN_ITERATIONS: u32 = 4096;
/// Above this the broker would make the proxy spin for seconds per connection (Kafka's own
/// maximum is 16384).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// A password or token: its Debug and Display never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The two SCRAM mechanisms Kafka offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// What went wrong authenticating the proxy to the cluster, in an operator's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the broker's SCRAM {message} message is not UTF-8")]
    NotUtf8 { message: &'static str },
    #[error("the broker's SCRAM {message} message has no {field}")]
    Missing { message: &'static str, field: &'static str },
    #[error("the broker's SCRAM server-first message demands an extension (m=) the proxy does not support")]
    MandatoryExtension,
    #[error("the broker's SCRAM nonce does not extend the proxy's: the answer belongs to another exchange or was tampered with")]
    NonceMismatch,
    #[error("the broker's SCRAM salt is not valid base64")]
    BadSalt,
    #[error("the broker's SCRAM iteration count {0:?} is not a number")]
    BadIterations(String),
    #[error("iteration count {0} is below {MIN_ITERATIONS}: the broker stores this user's SCRAM credential too weakly (RFC 7677 minimum); recreate it with more iterations")]
    TooFewIterations(u32),
    #[error("iteration count {0} is above {MAX_ITERATIONS}: refused so that a broker cannot stall the proxy")]
    TooManyIterations(u32),
    #[error("the broker refused SCRAM authentication: {0}")]
    Refused(String),
    #[error("the broker's SCRAM server-final signature is not valid base64")]
    BadSignature,
    #[error("server signature did not verify: the broker does not know this password or is not who it claims")]
    ServerSignature,
    #[error("SCRAM step {0} came out of order: a proxy bug")]
    OutOfOrder(&'static str),
    #[error("the configured SASL {0} is not usable: {1}")]
    Config(&'static str, &'static str),
    #[error("cannot draw a random SCRAM nonce: {0}")]
    Random(String),
    #[error("the proxy's HMAC refused a key: {0}")]
    Hmac(String),
}

impl SaslError {
    /// Who is at fault: the broker's messages, or the proxy's configuration and code.
    pub fn side(&self) -> Side {
        match self {
            SaslError::OutOfOrder(_) | SaslError::Config(..) | SaslError::Random(_) | SaslError::Hmac(_) => Side::Proxy,
            _ => Side::Broker,
        }
    }
}

/// The PLAIN token `\0user\0password` (no authorization id). It holds the password: send it and
/// drop it.
pub fn plain_token(user: &str, password: &Secret) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + password.expose().len() + 2);
    out.push(0);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(password.expose().as_bytes());
    out
}

/// A fresh client nonce: 24 random bytes in base64 (printable, no ',').
pub fn random_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| SaslError::Random(e.to_string()))?;
    Ok(STANDARD.encode(bytes))
}

/// Where a SCRAM exchange stands; each step keeps only what the next one needs.
enum Step {
    Start { password: Secret },
    AwaitFinal { server_key: Vec<u8>, auth_message: String },
    Done,
}

/// One SCRAM exchange from the client side: `client_first`, then `handle_server_first` (returns
/// the client-final message), then `verify_server_final`.
pub struct ScramClient {
    mechanism: ScramMechanism,
    /// `n=<escaped user>,r=<nonce>`.
    first_bare: String,
    nonce: String,
    step: Step,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let step = match self.step {
            Step::Start { .. } => "start",
            Step::AwaitFinal { .. } => "awaiting server-final",
            Step::Done => "done",
        };
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("first_bare", &self.first_bare)
            .field("step", &step)
            .finish()
    }
}

impl ScramClient {
    /// `nonce` must be printable ASCII without ',' (use `random_nonce`).
    pub fn new(mechanism: ScramMechanism, user: &str, password: Secret, nonce: &str) -> Result<Self, SaslError> {
        if user.is_empty() {
            return Err(SaslError::Config("username", "it is empty"));
        }
        if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
            return Err(SaslError::Config("nonce", "it must be printable ASCII without ','"));
        }
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Ok(Self { mechanism, first_bare: format!("n={user},r={nonce}"), nonce: nonce.to_owned(), step: Step::Start { password } })
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The client-first message: no channel binding, no authorization id.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Checks the server-first message and answers with the client-final message (the proof).
    /// The password is forgotten here, whatever the outcome.
    pub fn handle_server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, SaslError> {
        let Step::Start { password } = std::mem::replace(&mut self.step, Step::Done) else {
            return Err(SaslError::OutOfOrder("server-first"));
        };
        let first = ServerFirst::parse(message, &self.nonce)?;
        let without_proof = format!("c=biws,r={}", first.nonce);
        let server_first = std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8 { message: "server-first" })?;
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let keys = match self.mechanism {
            ScramMechanism::Sha256 => Keys::derive::<Sha256>(password.expose().as_bytes(), &first.salt, first.iterations, &auth_message),
            ScramMechanism::Sha512 => Keys::derive::<Sha512>(password.expose().as_bytes(), &first.salt, first.iterations, &auth_message),
        }?;
        drop(password);
        self.step = Step::AwaitFinal { server_key: keys.server_key, auth_message };
        Ok(format!("{without_proof},p={}", STANDARD.encode(keys.proof)).into_bytes())
    }

    /// Checks the server-final message: `v=<signature>` must be the one this password yields
    /// (compared in constant time); `e=<error>` is the broker's refusal.
    pub fn verify_server_final(&mut self, message: &[u8]) -> Result<(), SaslError> {
        let Step::AwaitFinal { server_key, auth_message } = std::mem::replace(&mut self.step, Step::Done) else {
            return Err(SaslError::OutOfOrder("server-final"));
        };
        let text = std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8 { message: "server-final" })?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(SaslError::Refused(error.to_owned()));
        }
        let signature = first.strip_prefix("v=").ok_or(SaslError::Missing { message: "server-final", field: "verifier (v=)" })?;
        let signature = STANDARD.decode(signature).map_err(|_| SaslError::BadSignature)?;
        let ok = match self.mechanism {
            ScramMechanism::Sha256 => verify::<Sha256>(&server_key, &auth_message, &signature),
            ScramMechanism::Sha512 => verify::<Sha512>(&server_key, &auth_message, &signature),
        }?;
        if ok {
            Ok(())
        } else {
            Err(SaslError::ServerSignature)
        }
    }
}

/// The fields of a server-first message `[m=..,]r=NONCE,s=SALT,i=COUNT[,ext]`.
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(message: &'a [u8], ours: &str) -> Result<Self, SaslError> {
        const MSG: &str = "server-first";
        let text = std::str::from_utf8(message).map_err(|_| SaslError::NotUtf8 { message: MSG })?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(SaslError::Refused(error.split(',').next().unwrap_or_default().to_owned()));
        }
        if text.starts_with("m=") {
            return Err(SaslError::MandatoryExtension);
        }
        let mut fields = text.split(',');
        let mut field = |prefix: &str, name: &'static str| {
            fields.next().and_then(|f| f.strip_prefix(prefix)).ok_or(SaslError::Missing { message: MSG, field: name })
        };
        let nonce = field("r=", "nonce (r=)")?;
        let salt = field("s=", "salt")?;
        let iterations = field("i=", "iteration count (i=)")?;
        if nonce.len() <= ours.len() || !nonce.starts_with(ours) || nonce.contains(|c: char| !c.is_ascii_graphic()) {
            return Err(SaslError::NonceMismatch);
        }
        let salt = STANDARD.decode(salt).map_err(|_| SaslError::BadSalt)?;
        if salt.is_empty() {
            return Err(SaslError::Missing { message: MSG, field: "salt" });
        }
        let iterations: u32 = iterations.parse().map_err(|_| SaslError::BadIterations(iterations.chars().take(16).collect()))?;
        if iterations < MIN_ITERATIONS {
            return Err(SaslError::TooFewIterations(iterations));
        }
        if iterations > MAX_ITERATIONS {
            return Err(SaslError::TooManyIterations(iterations));
        }
        Ok(Self { nonce, salt, iterations })
    }
}

/// What the client-final message and the later server check need.
struct Keys {
    proof: Vec<u8>,
    server_key: Vec<u8>,
}

impl Keys {
    /// RFC 5802 §3: SaltedPassword = Hi(password, salt, i); ClientKey = HMAC(SaltedPassword,
    /// "Client Key"); ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage);
    /// ServerKey = HMAC(SaltedPassword, "Server Key").
    fn derive<D: EagerHash>(password: &[u8], salt: &[u8], iterations: u32, auth_message: &str) -> Result<Keys, SaslError> {
        let mut salted = vec![0u8; <D as Digest>::output_size()];
        pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut salted);
        let client_key = hmac::<D>(&salted, b"Client Key")?;
        let stored_key = D::digest(&client_key);
        let signature = hmac::<D>(&stored_key, auth_message.as_bytes())?;
        let proof = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        Ok(Keys { proof, server_key: hmac::<D>(&salted, b"Server Key")? })
    }
}

fn mac<D: EagerHash>(key: &[u8], data: &[u8]) -> Result<Hmac<D>, SaslError> {
    // HMAC takes keys of any length, so this error is not expected.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).map_err(|e| SaslError::Hmac(e.to_string()))?;
    mac.update(data);
    Ok(mac)
}

fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, SaslError> {
    Ok(mac::<D>(key, data)?.finalize().into_bytes().to_vec())
}

/// Whether `signature` is HMAC(ServerKey, AuthMessage), compared in constant time.
fn verify<D: EagerHash>(server_key: &[u8], auth_message: &str, signature: &[u8]) -> Result<bool, SaslError> {
    Ok(mac::<D>(server_key, auth_message.as_bytes())?.verify_slice(signature).is_ok())
}

#[cfg(test)]
mod tests;
