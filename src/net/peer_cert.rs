//! A peer certificate's subject in RFC 2253 form (`CN=alice,OU=payments,O=Example`), most
//! specific attribute first, as Kafka's X500Principal shows it: the input of the principal
//! mapping rules and the `tls_subject` of audit events.

use rustls_pki_types::CertificateDer;
use x509_parser::objects::{oid2abbrev, oid_registry};

/// The subject, or None when the certificate cannot be parsed (the handshake verified it, so
/// this would be an unusual encoding).
pub fn subject_of(der: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
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
    Some(rdns.join(","))
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
