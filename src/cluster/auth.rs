//! The proxy's own SASL login on each of its cluster connections (`upstream.sasl`): SaslHandshake
//! then SaslAuthenticate rounds, SCRAM (with the server signature verified) or PLAIN. A refusal
//! is a `ClusterError::Auth` that says why, so a judged admin request is refused with that reason
//! rather than allowed blind.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::client::{versions, ClusterClient, Conn};
use super::error::ClusterError;
use super::sasl::{plain_token, random_nonce, ScramClient, ScramMechanism, Secret};
use crate::config::file::SaslMechanism;
use crate::protocol::errors;

/// Who the proxy is on a SASL cluster.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    fn name(&self) -> &'static str {
        match self.mechanism {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

impl ClusterClient {
    /// Logs `conn` in with `creds`; the connection is usable for anything afterwards.
    pub(super) async fn login(&self, conn: &mut Conn, creds: &Credentials) -> Result<(), ClusterError> {
        let addr = conn.addr.clone();
        let refused = |reason: String| ClusterError::Auth { addr: addr.clone(), user: creds.username.clone(), reason };
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(creds.name()));
        let resp = self.exchange(conn, &handshake, versions(1, 1)).await?;
        if resp.error_code != errors::NONE {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!("the broker does not accept {} (it offers {offered:?})", creds.name())));
        }
        let scram = match creds.mechanism {
            SaslMechanism::ScramSha256 => ScramMechanism::Sha256,
            SaslMechanism::ScramSha512 => ScramMechanism::Sha512,
            SaslMechanism::Plain => {
                self.round(conn, plain_token(&creds.username, &creds.password), creds).await?;
                return Ok(());
            }
        };
        let nonce = random_nonce().map_err(|e| refused(e.to_string()))?;
        let mut client = ScramClient::new(scram, &creds.username, creds.password.clone(), &nonce).map_err(|e| refused(e.to_string()))?;
        let server_first = self.round(conn, client.client_first(), creds).await?;
        let client_final = client.handle_server_first(&server_first).map_err(|e| refused(e.to_string()))?;
        let server_final = self.round(conn, client_final, creds).await?;
        client.verify_server_final(&server_final).map_err(|e| refused(e.to_string()))
    }

    /// One SaslAuthenticate round; the server's bytes, or the broker's refusal.
    async fn round(&self, conn: &mut Conn, token: Vec<u8>, creds: &Credentials) -> Result<Bytes, ClusterError> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let resp = self.exchange(conn, &req, versions(0, 2)).await?;
        if resp.error_code != errors::NONE {
            let why = resp.error_message.map(|m| m.to_string()).unwrap_or_else(|| errors::name(resp.error_code));
            return Err(ClusterError::Auth {
                addr: conn.addr.clone(),
                user: creds.username.clone(),
                reason: format!("the broker refused the login: {why}"),
            });
        }
        Ok(resp.auth_bytes)
    }
}
