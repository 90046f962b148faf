//! Secure test bed: a throw-away PKI (rcgen), a tansu broker that requires SASL SCRAM, haproxy
//! terminating TLS (optionally mTLS) in front of it, and the client security arguments for
//! tests/clients/kclient.py.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::{tansu_bin, Proc};

/// PEM files of one certificate and its private key (PKCS#8).
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA, a server certificate signed by it, and whatever client certificates a test asks for.
/// Files live in `dir`: `ca.pem`, `server.pem`, `server.key`, `server-combined.pem` (server
/// certificate then key, as haproxy's `crt` wants), and `NAME.pem` / `NAME.key` per client.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate: what clients (and haproxy, for mTLS) trust.
    pub ca: PathBuf,
    pub server: CertFiles,
    /// Server certificate followed by its key, for haproxy `bind ... ssl crt`.
    pub server_combined: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    /// A new CA (subject `CN=kdp test CA,O=Example`) and a server certificate for DNS `localhost`
    /// and IP `127.0.0.1`, both valid from 1975 to 4096 (rcgen's defaults).
    pub fn generate(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name = dn("CN=kdp test CA,O=Example");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign ca");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).expect("write ca");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server params");
        params.distinguished_name = dn("CN=localhost,O=Example");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (server, cert_pem, key_pem) = sign(dir, "server", params, &issuer);
        let server_combined = dir.join("server-combined.pem");
        std::fs::write(&server_combined, format!("{cert_pem}{key_pem}")).expect("write combined");
        Pki { dir: dir.to_owned(), ca, server, server_combined, issuer }
    }

    /// A new server certificate (new key, same names and CA) written over `server.pem` and
    /// `server.key`, as an operator rotating certificates would; returns the new certificate's PEM.
    pub fn reissue_server(&self) -> String {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server params");
        params.distinguished_name = dn("CN=localhost,O=Example,OU=rotated");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let staging = self.dir.join("staging");
        std::fs::create_dir_all(&staging).expect("staging");
        let (files, cert_pem, _) = sign(&staging, "server", params, &self.issuer);
        // Key first, then certificate, each by rename: a reload never sees half a file.
        std::fs::rename(&files.key, &self.server.key).expect("rename key");
        std::fs::rename(&files.cert, &self.server.cert).expect("rename cert");
        cert_pem
    }

    /// A client certificate for `subject` (comma-separated `CN=`, `OU=`, `O=`, `L=`, `ST=`, `C=`
    /// attributes, no escapes, e.g. `CN=alice,OU=payments,O=Example`), signed by this CA, written
    /// to `NAME.pem` and `NAME.key`.
    pub fn client_cert(&self, name: &str, subject: &str) -> CertFiles {
        self.client_cert_with_sans(name, subject, Vec::new())
    }

    /// As [`Pki::client_cert`], with subject alternative names (e.g. a SPIFFE URI).
    pub fn client_cert_with_sans(&self, name: &str, subject: &str, sans: Vec<rcgen::SanType>) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.subject_alt_names = sans;
        params.distinguished_name = dn(subject);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        sign(&self.dir, name, params, &self.issuer).0
    }
}

/// Signs `params` with a fresh key; writes `NAME.pem` and `NAME.key`; returns them and their PEM.
fn sign(dir: &Path, name: &str, mut params: CertificateParams, issuer: &Issuer<'static, KeyPair>) -> (CertFiles, String, String) {
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    let files = CertFiles { cert: dir.join(format!("{name}.pem")), key: dir.join(format!("{name}.key")) };
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    std::fs::write(&files.cert, &cert_pem).expect("write cert");
    std::fs::write(&files.key, &key_pem).expect("write key");
    (files, cert_pem, key_pem)
}

/// `CN=alice,OU=payments,O=Example` as an rcgen distinguished name, attributes in that order.
fn dn(subject: &str) -> rcgen::DistinguishedName {
    let mut name = rcgen::DistinguishedName::new();
    for part in subject.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (ty, value) = part.split_once('=').unwrap_or_else(|| panic!("bad subject attribute {part:?} in {subject:?}"));
        let ty = match ty.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "OU" => DnType::OrganizationalUnitName,
            "O" => DnType::OrganizationName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            "C" => DnType::CountryName,
            other => panic!("unsupported subject attribute {other:?} in {subject:?}"),
        };
        name.push(ty, value.trim());
    }
    name
}

/// The SCRAM mechanisms tansu stores credentials for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    /// The `--mechanism` value of `tansu user create`.
    pub fn tansu_arg(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }

    /// The SASL mechanism name clients use.
    pub fn sasl_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// Waits until `port` accepts connections, failing at once (with the log) if `proc` exits first.
pub fn wait_for_listener(proc: &mut Proc, port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 30s:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

/// SIGTERM, then waits up to 10 s for the exit (SIGKILL after that), so a broker closes its
/// storage before another run opens the same file.
pub fn stop_gracefully(proc: &mut Proc, what: &str) {
    let _ = Command::new("kill").arg("-TERM").arg(proc.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = proc.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{what} ignored SIGTERM for 10 s; killing it");
    let _ = proc.child.kill();
    let _ = proc.child.wait();
}

fn spawn_logged(cmd: &mut Command, log: &Path, what: &str) -> Proc {
    let file = std::fs::File::create(log).expect("log");
    let child: Child = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    Proc { child }
}

fn tansu_broker(dir: &Path, port: u16, advertised_port: u16, db: &str, authentication: bool, log: &Path) -> Proc {
    let mut cmd = Command::new(tansu_bin());
    // tansu resolves sqlite://FILE against its working directory (an absolute path gets the
    // working directory prepended), so it runs in `dir` with a bare file name.
    cmd.current_dir(dir).args([
        "broker",
        "--listener-url",
        &format!("tcp://127.0.0.1:{port}"),
        "--advertised-listener-url",
        &format!("tcp://127.0.0.1:{advertised_port}"),
        "--storage-engine",
        &format!("sqlite://{db}"),
    ]);
    if authentication {
        cmd.arg("--authentication");
    }
    let mut p = spawn_logged(&mut cmd, log, "tansu");
    wait_for_listener(&mut p, port, "tansu", log);
    p
}

/// A tansu broker that requires SASL SCRAM, on sqlite storage `DIR/tansu-sasl-PORT.db`, listening
/// on 127.0.0.1:`port` and advertising 127.0.0.1:`advertised_port` (a relay's or haproxy's port
/// when something sits in front of it). Users are created on a first run without
/// `--authentication` (tansu's `user create` talks to a running broker), which is then stopped;
/// the returned guard is the second run, with `--authentication`, on the same file. Logs:
/// `tansu-sasl-PORT-setup.log` and `tansu-sasl-PORT.log`.
pub fn start_tansu_sasl(dir: &Path, port: u16, advertised_port: u16, users: &[(&str, &str, Scram)]) -> Proc {
    let db = format!("tansu-sasl-{port}.db");
    let setup_log = dir.join(format!("tansu-sasl-{port}-setup.log"));
    let mut setup = tansu_broker(dir, port, advertised_port, &db, false, &setup_log);
    for (user, password, mechanism) in users {
        let out = Command::new(tansu_bin())
            .current_dir(dir)
            .args(["user", "create", user, password, "--mechanism", mechanism.tansu_arg(), "--broker"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .output()
            .expect("run tansu user create");
        assert!(
            out.status.success(),
            "tansu user create {user} ({mechanism:?}) failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop_gracefully(&mut setup, "tansu (user setup run)");
    drop(setup);
    tansu_broker(dir, port, advertised_port, &db, true, &dir.join(format!("tansu-sasl-{port}.log")))
}

/// haproxy in TCP mode terminating TLS on 127.0.0.1:`listen_port` with `combined_pem` (see
/// [`Pki::server_combined`]) and forwarding plaintext to 127.0.0.1:`backend_port`. No client
/// certificate is asked for. The broker behind it must advertise `listen_port`.
pub fn start_haproxy_tls(dir: &Path, listen_port: u16, backend_port: u16, combined_pem: &Path) -> Proc {
    start_haproxy(dir, listen_port, backend_port, combined_pem, None)
}

/// As [`start_haproxy_tls`], but the TLS handshake requires a client certificate signed by
/// `client_ca` (mTLS): clients without one, or with one from another CA, are refused.
pub fn start_haproxy_mtls(dir: &Path, listen_port: u16, backend_port: u16, combined_pem: &Path, client_ca: &Path) -> Proc {
    start_haproxy(dir, listen_port, backend_port, combined_pem, Some(client_ca))
}

fn start_haproxy(dir: &Path, listen_port: u16, backend_port: u16, combined_pem: &Path, client_ca: Option<&Path>) -> Proc {
    let verify = client_ca.map(|ca| format!(" ca-file {} verify required", ca.display())).unwrap_or_default();
    let cfg = format!(
        "global\n  maxconn 1000\n  log stdout format raw local0 info\n\
         defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\
         frontend kafka_tls\n  bind 127.0.0.1:{listen_port} ssl crt {crt}{verify}\n  default_backend broker\n\
         backend broker\n  server broker 127.0.0.1:{backend_port}\n",
        crt = combined_pem.display()
    );
    let cfg_path = dir.join(format!("haproxy-{listen_port}.cfg"));
    std::fs::write(&cfg_path, cfg).expect("write haproxy config");
    let log = dir.join(format!("haproxy-{listen_port}.log"));
    let mut cmd = Command::new(std::env::var_os("HAPROXY_BIN").unwrap_or_else(|| "haproxy".into()));
    cmd.arg("-db").arg("-f").arg(&cfg_path);
    let mut p = spawn_logged(&mut cmd, &log, "haproxy");
    wait_for_listener(&mut p, listen_port, "haproxy", &log);
    p
}

/// Security settings of one kclient.py run, turned into its command-line options by [`args`].
///
/// [`args`]: ClientSecurity::args
#[derive(Clone, Debug, Default)]
pub struct ClientSecurity {
    pub protocol: &'static str,
    pub mechanism: Option<&'static str>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<CertFiles>,
    pub no_hostname_check: bool,
}

impl ClientSecurity {
    /// SASL_PLAINTEXT with SCRAM.
    pub fn sasl_plaintext(user: &str, password: &str, mechanism: Scram) -> ClientSecurity {
        ClientSecurity {
            protocol: "SASL_PLAINTEXT",
            mechanism: Some(mechanism.sasl_name()),
            username: Some(user.to_owned()),
            password: Some(password.to_owned()),
            ..Default::default()
        }
    }

    /// SASL_SSL with SCRAM, verifying the broker's certificate against `ca` (chain and host name).
    pub fn sasl_ssl(user: &str, password: &str, mechanism: Scram, ca: &Path) -> ClientSecurity {
        ClientSecurity { protocol: "SASL_SSL", ca: Some(ca.to_owned()), ..Self::sasl_plaintext(user, password, mechanism) }
    }

    /// SSL without SASL, verifying the broker's certificate against `ca`.
    pub fn ssl(ca: &Path) -> ClientSecurity {
        ClientSecurity { protocol: "SSL", ca: Some(ca.to_owned()), ..Default::default() }
    }

    /// Presents `cert` in the TLS handshake (mTLS).
    pub fn with_client_cert(mut self, cert: &CertFiles) -> ClientSecurity {
        self.client_cert = Some(cert.clone());
        self
    }

    /// kclient.py options: `--security-protocol ... [--sasl-mechanism ... --username ... --password ...]
    /// [--ca ...] [--cert ... --key ...] [--no-hostname-check]`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--security-protocol".to_owned(), self.protocol.to_owned()];
        let mut opt = |flag: &str, v: Option<String>| {
            if let Some(v) = v {
                a.push(flag.to_owned());
                a.push(v);
            }
        };
        opt("--sasl-mechanism", self.mechanism.map(str::to_owned));
        opt("--username", self.username.clone());
        opt("--password", self.password.clone());
        opt("--ca", self.ca.as_ref().map(|p| p.display().to_string()));
        opt("--cert", self.client_cert.as_ref().map(|c| c.cert.display().to_string()));
        opt("--key", self.client_cert.as_ref().map(|c| c.key.display().to_string()));
        if self.no_hostname_check {
            a.push("--no-hostname-check".to_owned());
        }
        a
    }
}

/// Runs kclient.py with `args` followed by the security options of `sec`.
pub fn kclient_secure(args: &[&str], sec: &ClientSecurity) -> serde_json::Value {
    let sec_args = sec.args();
    let all: Vec<&str> = args.iter().copied().chain(sec_args.iter().map(String::as_str)).collect();
    super::kclient(&all)
}
