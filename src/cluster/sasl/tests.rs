//! The proxy's SCRAM client against RFC 7677's example, against a server computed here from the
//! RFC's formulas, and against broken, tampered and hostile server messages.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

use super::*;

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &[u8] = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_client() -> ScramClient {
    ScramClient::new(ScramMechanism::Sha256, "user", Secret::new("pencil".into()), RFC_NONCE).unwrap()
}

#[test]
fn rfc7677_example_exchange() {
    let mut c = rfc_client();
    assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let client_final = c.handle_server_first(RFC_SERVER_FIRST).unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    assert_eq!(c.verify_server_final(RFC_SERVER_FINAL), Ok(()));
    assert_eq!(c.verify_server_final(RFC_SERVER_FINAL), Err(SaslError::OutOfOrder("server-final")), "one exchange, one check");
}

#[test]
fn tampered_server_final_is_rejected() {
    let mut sig = STANDARD.decode(&RFC_SERVER_FINAL[2..]).unwrap();
    sig[0] ^= 1;
    let flipped = format!("v={}", STANDARD.encode(&sig));
    let short = format!("v={}", STANDARD.encode(&sig[..16]));
    let cases: &[(&[u8], SaslError)] = &[
        (flipped.as_bytes(), SaslError::ServerSignature),
        (short.as_bytes(), SaslError::ServerSignature),
        (b"v=", SaslError::ServerSignature),
        (b"v=***", SaslError::BadSignature),
        (b"e=invalid-proof", SaslError::Refused("invalid-proof".into())),
        (b"x=1", SaslError::Missing { message: "server-final", field: "verifier (v=)" }),
        (b"", SaslError::Missing { message: "server-final", field: "verifier (v=)" }),
        (b"v=\xff", SaslError::NotUtf8 { message: "server-final" }),
    ];
    for (message, want) in cases {
        let mut c = rfc_client();
        c.handle_server_first(RFC_SERVER_FIRST).unwrap();
        assert_eq!(c.verify_server_final(message).as_ref(), Err(want), "{}", String::from_utf8_lossy(message));
    }
    assert_eq!(
        SaslError::ServerSignature.to_string(),
        "server signature did not verify: the broker does not know this password or is not who it claims"
    );
}

#[test]
fn hostile_or_broken_server_first_is_refused() {
    let too_few = SaslError::TooFewIterations(1000);
    let cases: &[(&[u8], SaslError)] = &[
        (b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SaslError::NonceMismatch),
        (b"r=someoneElse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SaslError::NonceMismatch),
        (b"r=rOprNGfwEbeRWgbNEkqOx y,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SaslError::NonceMismatch),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", SaslError::Missing { message: "server-first", field: "salt" }),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096", SaslError::Missing { message: "server-first", field: "salt" }),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=%%%,i=4096", SaslError::BadSalt),
        (
            b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            SaslError::Missing { message: "server-first", field: "iteration count (i=)" },
        ),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000", too_few.clone()),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", SaslError::BadIterations("-1".into())),
        (b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000", SaslError::TooManyIterations(4_000_000_000)),
        (b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SaslError::Missing { message: "server-first", field: "nonce (r=)" }),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SaslError::MandatoryExtension),
        (b"e=unknown-user", SaslError::Refused("unknown-user".into())),
        (b"\xff", SaslError::NotUtf8 { message: "server-first" }),
        (b"", SaslError::Missing { message: "server-first", field: "nonce (r=)" }),
    ];
    for (message, want) in cases {
        let mut c = rfc_client();
        assert_eq!(c.handle_server_first(message).as_ref(), Err(want), "{}", String::from_utf8_lossy(message));
        assert_eq!(c.handle_server_first(RFC_SERVER_FIRST), Err(SaslError::OutOfOrder("server-first")), "no second try");
    }
    assert_eq!(too_few.to_string().split(':').next(), Some("iteration count 1000 is below 4096"));
    assert_eq!(too_few.side(), Side::Broker);
}

#[test]
fn missing_salt_wording() {
    let e = SaslError::Missing { message: "server-first", field: "salt" };
    assert_eq!(e.to_string(), "the broker's SCRAM server-first message has no salt");
}

/// A SCRAM server as RFC 5802 §3 describes it, independent of the client's code: it stores
/// StoredKey and ServerKey, checks the proof by recovering ClientKey, and signs.
fn server_512(password: &str, salt: &[u8], iterations: u32, auth_message: &str, proof: &[u8]) -> Option<String> {
    let hmac = |key: &[u8], data: &[u8]| {
        let mut m = Hmac::<Sha512>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, iterations);
    let stored_key = Sha512::digest(hmac(&salted, b"Client Key"));
    let client_signature = hmac(&stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
    (Sha512::digest(&client_key) == stored_key)
        .then(|| format!("v={}", STANDARD.encode(hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes()))))
}

#[test]
fn sha512_round_trip_with_escaped_user() {
    let nonce = random_nonce().unwrap();
    let mut c = ScramClient::new(ScramMechanism::Sha512, "a,b=c", Secret::new("correct horse".into()), &nonce).unwrap();
    let first = String::from_utf8(c.client_first()).unwrap();
    assert_eq!(first, format!("n,,n=a=2Cb=3Dc,r={nonce}"));
    let salt = b"0123456789abcdef";
    let server_first = format!("r={nonce}SERVERPART,s={},i=4096", STANDARD.encode(salt));
    let client_final = String::from_utf8(c.handle_server_first(server_first.as_bytes()).unwrap()).unwrap();
    let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
    assert_eq!(without_proof, format!("c=biws,r={nonce}SERVERPART"));
    let auth_message = format!("{},{server_first},{without_proof}", &first[3..]);
    let proof = STANDARD.decode(proof).unwrap();
    assert_eq!(proof.len(), 64);
    assert_eq!(server_512("wrong horse", salt, 4096, &auth_message, &proof), None, "a wrong password does not verify");
    let server_final = server_512("correct horse", salt, 4096, &auth_message, &proof).expect("the server accepts the proof");
    assert_eq!(c.verify_server_final(server_final.as_bytes()), Ok(()));
}

#[test]
fn construction_and_helpers() {
    let pw = || Secret::new("pw".into());
    assert!(matches!(ScramClient::new(ScramMechanism::Sha256, "", pw(), "n"), Err(SaslError::Config("username", _))));
    for bad in ["", "a,b", "a b", "é"] {
        assert!(matches!(ScramClient::new(ScramMechanism::Sha256, "u", pw(), bad), Err(SaslError::Config("nonce", _))), "{bad:?}");
    }
    let n = random_nonce().unwrap();
    assert_eq!(n.len(), 32);
    assert!(n.bytes().all(|b| b.is_ascii_graphic() && b != b','));
    assert_ne!(n, random_nonce().unwrap());
    assert_eq!(plain_token("alice", &Secret::new("s3".into())), b"\0alice\0s3");
    assert_eq!(ScramMechanism::from_name("SCRAM-SHA-512"), Some(ScramMechanism::Sha512));
    assert_eq!(ScramMechanism::from_name("scram-sha-512"), None);
    assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
    assert_eq!(SaslError::OutOfOrder("x").side(), Side::Proxy);
}

#[test]
fn debug_never_shows_the_password() {
    let secret = Secret::new("pencil".into());
    assert_eq!(format!("{secret:?}"), "***");
    let mut c = rfc_client();
    for _ in 0..2 {
        let shown = format!("{c:?}");
        assert!(!shown.contains("pencil") && shown.contains("n=user"), "Debug shows the state, not the password");
        let _ = c.handle_server_first(RFC_SERVER_FIRST);
    }
}
