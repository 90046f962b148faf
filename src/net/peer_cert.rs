//! A peer certificate's subject in RFC 2253 form (`CN=alice,OU=payments,O=Example`), most
//! specific attribute first, as Kafka's X500Principal shows it: the `tls_subject` of audit events
//! and, by default, the input of the principal mapping rules; or one of its subject alternative
//! names when `listen.tls.principal_source` says so.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid2abbrev, oid_registry};

use crate::config::file::PrincipalSource;

/// A client certificate as the proxy reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct PeerCert {
    /// RFC 2253, most specific first.
    pub subject: String,
    /// What the principal mapping rules are applied to: the subject, or the first subject
    /// alternative name of the configured kind (None when the certificate has none).
    pub principal_input: Option<String>,
}

/// Reads a certificate once; None when it cannot be parsed (the handshake verified it, so this
/// would be an unusual encoding).
pub fn read(der: &CertificateDer<'_>, source: PrincipalSource) -> Option<PeerCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = subject(&cert);
    let principal_input = match source {
        PrincipalSource::Subject => Some(subject.clone()),
        _ => first_san(&cert, source),
    };
    Some(PeerCert { subject, principal_input })
}

fn first_san(cert: &X509Certificate<'_>, source: PrincipalSource) -> Option<String> {
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|name| match (source, name) {
        (PrincipalSource::SanDns, GeneralName::DNSName(v))
        | (PrincipalSource::SanUri, GeneralName::URI(v))
        | (PrincipalSource::SanEmail, GeneralName::RFC822Name(v)) => Some((*v).to_owned()),
        _ => None,
    })
}

fn subject(cert: &X509Certificate<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type();
                let key = oid2abbrev(oid, oid_registry()).map(str::to_owned).unwrap_or_else(|_| oid.to_id_string());
                let key = if key == "emailAddress" { "EMAILADDRESS".to_owned() } else { key };
                let value = atv.as_str().map(escape).unwrap_or_else(|_| "#".to_owned() + &hex(atv.attr_value().data));
                format!("{key}={value}")
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

/// RFC 2253 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    use super::*;

    fn cert(sans: Vec<SanType>) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Example");
        dn.push(DnType::CommonName, "app");
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.self_signed(&KeyPair::generate().expect("key")).expect("sign").der().clone()
    }

    #[test]
    fn the_principal_input_is_the_subject_or_the_first_san_of_the_configured_kind() {
        let der = cert(vec![
            SanType::DnsName("app.payments.svc".try_into().expect("dns")),
            SanType::URI("spiffe://example.org/ns/payments/sa/app".try_into().expect("uri")),
            SanType::Rfc822Name("app@example.org".try_into().expect("email")),
            SanType::DnsName("second.example.org".try_into().expect("dns")),
        ]);
        let cases = [
            (PrincipalSource::Subject, Some("CN=app,O=Example")),
            (PrincipalSource::SanDns, Some("app.payments.svc")),
            (PrincipalSource::SanUri, Some("spiffe://example.org/ns/payments/sa/app")),
            (PrincipalSource::SanEmail, Some("app@example.org")),
        ];
        for (source, want) in cases {
            let read = read(&der, source).expect("parses");
            assert_eq!(read.subject, "CN=app,O=Example");
            assert_eq!(read.principal_input.as_deref(), want, "{source:?}");
        }
        let bare = read(&cert(vec![]), PrincipalSource::SanUri).expect("parses");
        assert_eq!(bare.principal_input, None, "no SAN, no principal");
    }
}
