//! TLS on both sides with rustls and its ring provider (chosen explicitly; no OpenSSL): the
//! server config clients see on every listener, the client config for brokers, both rebuilt from
//! their PEM files when the files change or on SIGHUP (new handshakes use the new ones, open
//! connections keep theirs), and the checks that recognise plaintext sent to a TLS port.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::peer_cert;
use super::transport::Stream;
use crate::config::file::{ClientAuth, ListenTls, UpstreamTls};
use crate::identity::MappingRules;

/// Why TLS material could not be loaded; names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what} {}: {reason}", path.display())]
    File { what: &'static str, path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Why an incoming TLS connection was closed before it became a session.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("client sent plaintext to a TLS listener (first bytes {0:02x?} are no TLS handshake): configure the client for SSL or use a plaintext port")]
    Plaintext(Vec<u8>),
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake not completed within {0:?}")]
    Timeout(Duration),
}

/// The client certificate a connection presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject in RFC 2253 form, as Kafka shows it.
    pub subject: String,
    /// `User:<name>` by the mapping rules; None when no rule matched.
    pub principal: Option<String>,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(what: &'static str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File { what, path: path.to_owned(), reason: reason.to_string() }
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(what, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(what, path, e))?;
    if certs.is_empty() {
        return Err(file_err(what, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err("private key", path, e))
}

fn roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs("CA file", path)? {
        store.add(c).map_err(|e| file_err("CA file", path, e))?;
    }
    Ok(Arc::new(store))
}

/// The modification times of the files a config was built from.
fn stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

/// A config built from files, rebuilt when they change.
struct Reloading<C> {
    current: RwLock<Arc<C>>,
    files: Vec<PathBuf>,
    seen: Mutex<Vec<Option<SystemTime>>>,
}

impl<C> Reloading<C> {
    fn new(config: C, files: Vec<PathBuf>) -> Self {
        let seen = Mutex::new(stamps(&files));
        Self { current: RwLock::new(Arc::new(config)), files, seen }
    }

    fn get(&self) -> Arc<C> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds with `build` when a file changed (or `force`); Ok(true) when replaced.
    fn reload(&self, force: bool, build: impl FnOnce() -> Result<C, TlsError>) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !force && *seen == now {
            return Ok(false);
        }
        *seen = now;
        let config = build()?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(true)
    }
}

/// What clients see on every TLS listener.
pub struct TlsServer {
    settings: ListenTls,
    rules: MappingRules,
    config: Reloading<ServerConfig>,
    handshake_timeout: Duration,
}

fn server_config(s: &ListenTls) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (s.client_auth, &s.ca_file) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Config("listen.tls.client_auth needs listen.tls.ca_file".into())),
        (auth, Some(ca)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider());
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| file_err("CA file", ca, e))?)
        }
    };
    builder
        .with_single_cert(certs("certificate", &s.cert_file)?, key(&s.key_file)?)
        .map_err(|e| file_err("certificate/key pair", &s.cert_file, e))
}

impl TlsServer {
    pub fn new(settings: &ListenTls, handshake_timeout: Duration) -> Result<TlsServer, TlsError> {
        let rules = MappingRules::parse(&settings.principal_mapping_rules).map_err(|e| TlsError::Config(e.join("; ")))?;
        let files =
            [Some(&settings.cert_file), Some(&settings.key_file), settings.ca_file.as_ref()].into_iter().flatten().cloned().collect();
        Ok(TlsServer { settings: settings.clone(), rules, config: Reloading::new(server_config(settings)?, files), handshake_timeout })
    }

    /// Loads the certificate, key and CA again when their files changed (or `force`, on SIGHUP).
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        self.config.reload(force, || server_config(&self.settings))
    }

    /// Completes the server handshake, within the handshake timeout; refuses plaintext.
    pub async fn accept(&self, tcp: TcpStream) -> Result<(Stream, Option<ClientCert>), AcceptError> {
        let acceptor = TlsAcceptor::from(self.config.get());
        let handshake = async {
            let mut first = [0u8; 5];
            let n = tcp.peek(&mut first).await.map_err(AcceptError::Handshake)?;
            // A TLS record starts 0x16 0x03: anything else is plaintext (Kafka's first bytes are
            // a frame size, usually 0x00 0x00).
            if n >= 2 && !(first[0] == 0x16 && first[1] == 0x03) {
                return Err(AcceptError::Plaintext(first.get(..n).unwrap_or_default().to_vec()));
            }
            acceptor.accept(tcp).await.map_err(AcceptError::Handshake)
        };
        let tls =
            tokio::time::timeout(self.handshake_timeout, handshake).await.map_err(|_| AcceptError::Timeout(self.handshake_timeout))??;
        let der = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        let cert = der
            .and_then(|der| peer_cert::read(der, self.settings.principal_source))
            .map(|read| ClientCert { principal: read.principal_input.and_then(|i| self.rules.principal(&i)), subject: read.subject });
        Ok((Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls))), cert))
    }
}

/// How the proxy reaches brokers that speak TLS.
pub struct TlsClient {
    settings: UpstreamTls,
    config: Reloading<ClientConfig>,
}

fn client_config(s: &UpstreamTls) -> Result<ClientConfig, TlsError> {
    let roots = match &s.ca_file {
        Some(ca) => roots(ca)?,
        None => {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::Config("no upstream.tls.ca_file and no system CA certificates found".into()));
            }
            Arc::new(store)
        }
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider()).build().map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_webpki_verifier(verifier);
    match (&s.cert_file, &s.key_file) {
        (Some(c), Some(k)) => {
            builder.with_client_auth_cert(certs("certificate", c)?, key(k)?).map_err(|e| file_err("certificate/key pair", c, e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(TlsError::Config("upstream.tls needs both cert_file and key_file, or neither".into())),
    }
}

impl TlsClient {
    pub fn new(settings: &UpstreamTls) -> Result<TlsClient, TlsError> {
        let files = [&settings.ca_file, &settings.cert_file, &settings.key_file].into_iter().flatten().cloned().collect();
        Ok(TlsClient { settings: settings.clone(), config: Reloading::new(client_config(settings)?, files) })
    }

    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        self.config.reload(force, || client_config(&self.settings))
    }

    /// TLS over a connected socket to `host` (or the configured server name).
    pub async fn connect(&self, tcp: TcpStream, host: &str) -> std::io::Result<Stream> {
        let name = self.settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{name}` is no valid TLS server name: {e}")))?;
        let tls = TlsConnector::from(self.config.get()).connect(server_name, tcp).await?;
        Ok(Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls))))
    }
}
