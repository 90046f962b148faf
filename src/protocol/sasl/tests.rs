//! Tables for the SASL principal tracker: every mechanism and gs2 form, escapes, malformed
//! tokens, failures, re-authentication, and random bytes into every method.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;

use super::read::{oauth_subject, plain_user, scram_user};
use super::*;

const SERVER_FIRST: &[u8] = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const CLIENT_FINAL: &[u8] = b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
const SERVER_FINAL: &[u8] = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

fn jwt(claims: &str) -> String {
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims))
}

fn oauth_token(gs2: &str, jwt: &str) -> Vec<u8> {
    format!("{gs2}\x01host=broker\x01auth=Bearer {jwt}\x01\x01").into_bytes()
}

#[test]
fn mechanism_names_are_case_sensitive_kafka_names() {
    let cases = [
        ("PLAIN", Mechanism::Plain, Some(1)),
        ("SCRAM-SHA-256", Mechanism::ScramSha256, Some(2)),
        ("SCRAM-SHA-512", Mechanism::ScramSha512, Some(2)),
        ("OAUTHBEARER", Mechanism::OAuthBearer, Some(1)),
        ("GSSAPI", Mechanism::Other("GSSAPI".into()), None),
        ("plain", Mechanism::Other("plain".into()), None),
        ("", Mechanism::Other(String::new()), None),
    ];
    for (name, mechanism, tokens) in cases {
        let m = Mechanism::from_name(name);
        assert_eq!(m, mechanism, "{name}");
        assert_eq!(m.name(), name);
        assert_eq!(m.client_tokens_expected(), tokens, "{name}");
    }
}

#[test]
fn scram_client_first_forms() {
    let cases: &[(&[u8], Result<&str, ()>)] = &[
        (b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", Ok("user")),
        (b"y,,n=user,r=abc", Ok("user")),
        (b"p=tls-unique,,n=user,r=abc", Ok("user")),
        (b"n,a=user,n=user,r=abc", Ok("user")),
        (b"n,a=other,n=user,r=abc", Err(())),
        (b"n,,n=us=2Cer=3D,r=abc", Ok("us,er=")),
        (b"n,a=us=2Cer,n=us=2Cer,r=abc", Ok("us,er")),
        (b"n,,n=\xc3\xa9l\xc3\xa8ve,r=abc", Ok("\u{e9}l\u{e8}ve")),
        (b"n,,n=user,r=abc,ext=1", Ok("user")),
        (b"n,,n=tokenid,r=abc,tokenauth=true", Err(())),
        (b"n,,n=us=2Xer,r=abc", Err(())),
        (b"n,,n=user=,r=abc", Err(())),
        (b"n,,n=us\0er,r=abc", Err(())),
        (b"n,,n=,r=abc", Err(())),
        (b"n,,r=abc", Err(())),
        (b"n,,n=user", Err(())),
        (b"n,,n=user,r=", Err(())),
        (b"n,,n=user,x=abc", Err(())),
        (b"n,,m=ext,n=user,r=abc", Err(())),
        (b"p=,,n=user,r=abc", Err(())),
        (b"x,,n=user,r=abc", Err(())),
        (b"n,b=user,n=user,r=abc", Err(())),
        (b"n,", Err(())),
        (b"n", Err(())),
        (b"", Err(())),
        (b"n,,n=\xff\xfe,r=abc", Err(())),
    ];
    for (token, want) in cases {
        let got = scram_user(token).map_err(|_| ());
        assert_eq!(got.as_deref(), want.as_deref(), "{}", String::from_utf8_lossy(token));
    }
}

#[test]
fn plain_tokens() {
    let cases: &[(&[u8], Result<&str, ()>)] = &[
        (b"\0alice\0pw", Ok("alice")),
        (b"alice\0alice\0pw", Ok("alice")),
        (b"admin\0alice\0pw", Err(())),
        (b"\0alice\0", Err(())),
        (b"\0alice", Err(())),
        (b"\0\0pw", Err(())),
        (b"\0alice\0pw\0more", Err(())),
        (b"\0\xff\0pw", Err(())),
        (b"", Err(())),
    ];
    for (i, (token, want)) in cases.iter().enumerate() {
        // The case number only: the tokens hold (fake) passwords.
        assert_eq!(plain_user(token).map_err(|_| ()).as_deref(), want.as_deref(), "PLAIN case {i}");
    }
}

#[test]
fn oauthbearer_tokens() {
    let good = jwt(r#"{"sub":"alice","exp":1}"#);
    let cases: Vec<(Vec<u8>, Result<&str, ()>)> = vec![
        (oauth_token("n,,", &good), Ok("alice")),
        (oauth_token("y,,", &good), Ok("alice")),
        (oauth_token("n,a=alice,", &good), Ok("alice")),
        (oauth_token("n,a=bob,", &good), Err(())),
        (format!("n,,\x01auth=Bearer {good}\x01\x01").into_bytes(), Ok("alice")),
        (format!("n,,\x01auth=bearer  {good}\x01\x01").into_bytes(), Ok("alice")),
        (format!("n,,\x01auth=Basic {good}\x01\x01").into_bytes(), Err(())),
        (format!("n,,\x01auth=Bearer {good}\x01").into_bytes(), Err(())),
        (format!("n,,\x01auth=Bearer {good}").into_bytes(), Err(())),
        (b"n,,\x01\x01".to_vec(), Err(())),
        (oauth_token("p=tls,,", &good), Err(())),
        (oauth_token("n,,", &format!("{}.{}.sig", URL_SAFE_NO_PAD.encode("{}"), URL_SAFE.encode(r#"{"sub":"padded"}"#))), Ok("padded")),
        (oauth_token("n,,", &jwt(r#"{"iss":"x"}"#)), Err(())),
        (oauth_token("n,,", &jwt(r#"{"sub":""}"#)), Err(())),
        (oauth_token("n,,", &jwt(r#"{"sub":42}"#)), Err(())),
        (oauth_token("n,,", &jwt("not json")), Err(())),
        (oauth_token("n,,", "a.!!!.c"), Err(())),
        (oauth_token("n,,", "only.two"), Err(())),
        (oauth_token("n,,", "a.b.c.d.e"), Err(())),
        (b"n,,\x01auth=Bearer \xff\x01\x01".to_vec(), Err(())),
        (b"n,,".to_vec(), Err(())),
    ];
    for (i, (token, want)) in cases.iter().enumerate() {
        assert_eq!(oauth_subject(token).map_err(|_| ()).as_deref(), want.as_deref(), "OAUTHBEARER case {i}");
    }
}

/// One step of a scripted exchange.
enum Step<'a> {
    Handshake(&'a str),
    HandshakeError(i16),
    Client(&'a [u8]),
    Server(i16, &'a [u8]),
}

/// What a run ends with: (principal name, verified, authenticated, done).
type Outcome = (Option<String>, Option<bool>, bool, bool);

/// Runs `steps` and returns what they end with.
fn run(read_plain: bool, steps: &[Step]) -> Outcome {
    let mut s = SaslState::new(read_plain);
    for step in steps {
        match step {
            Step::Handshake(m) => s.on_handshake_request(Mechanism::from_name(m)),
            Step::HandshakeError(code) => s.on_handshake_response(*code),
            Step::Client(t) => s.on_client_token(t),
            Step::Server(code, t) => s.on_server_token(*code, t),
        }
    }
    (s.principal().map(|p| p.name.clone()), s.principal().map(|p| p.verified), s.authenticated(), s.done())
}

#[test]
fn exchanges_end_to_end() {
    use Step::*;
    let scram =
        |mech| vec![Handshake(mech), Client(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"), Server(0, SERVER_FIRST), Client(CLIENT_FINAL)];
    let with = |mut v: Vec<Step<'static>>, more: Step<'static>| {
        v.push(more);
        v
    };
    let good_jwt: &'static str = Box::leak(jwt(r#"{"sub":"carol"}"#).into_boxed_str());
    let oauth: &'static [u8] = Box::leak(oauth_token("n,,", good_jwt).into_boxed_slice());
    let user = |n: &str| Some(format!("User:{n}"));
    let cases: Vec<(&str, bool, Vec<Step>, Outcome)> = vec![
        ("scram-256 success", false, with(scram("SCRAM-SHA-256"), Server(0, SERVER_FINAL)), (user("user"), Some(true), true, true)),
        ("scram-512 success", false, with(scram("SCRAM-SHA-512"), Server(0, SERVER_FINAL)), (user("user"), Some(true), true, true)),
        ("scram pending before server-final", false, scram("SCRAM-SHA-256"), (None, None, false, false)),
        ("scram e= server-final", false, with(scram("SCRAM-SHA-256"), Server(0, b"e=invalid-proof")), (None, None, false, true)),
        ("scram error 58", false, with(scram("SCRAM-SHA-256"), Server(58, b"")), (None, None, false, true)),
        (
            "scram e= server-first",
            false,
            vec![Handshake("SCRAM-SHA-256"), Client(b"n,,n=u,r=a"), Server(0, b"e=unknown-user")],
            (None, None, false, true),
        ),
        (
            "scram v= too early",
            false,
            vec![Handshake("SCRAM-SHA-256"), Client(b"n,,n=u,r=a"), Server(0, SERVER_FINAL)],
            (None, None, false, true),
        ),
        (
            "scram unreadable but accepted",
            false,
            vec![Handshake("SCRAM-SHA-256"), Client(b"n,,r=a"), Server(0, SERVER_FIRST), Client(CLIENT_FINAL), Server(0, SERVER_FINAL)],
            (None, None, true, true),
        ),
        ("plain read", true, vec![Handshake("PLAIN"), Client(b"\0alice\0pw"), Server(0, b"")], (user("alice"), Some(true), true, true)),
        ("plain not read", false, vec![Handshake("PLAIN"), Client(b"\0alice\0pw"), Server(0, b"")], (None, None, true, true)),
        ("plain refused", true, vec![Handshake("PLAIN"), Client(b"\0alice\0pw"), Server(58, b"")], (None, None, false, true)),
        ("oauth success", false, vec![Handshake("OAUTHBEARER"), Client(oauth), Server(0, b"")], (user("carol"), Some(false), true, true)),
        (
            "oauth error challenge",
            false,
            vec![Handshake("OAUTHBEARER"), Client(oauth), Server(0, br#"{"status":"invalid_token"}"#)],
            (None, None, false, false),
        ),
        (
            "oauth challenge then fail",
            false,
            vec![Handshake("OAUTHBEARER"), Client(oauth), Server(0, br#"{"status":"invalid_token"}"#), Client(b"\x01"), Server(58, b"")],
            (None, None, false, true),
        ),
        ("oauth refused", false, vec![Handshake("OAUTHBEARER"), Client(oauth), Server(58, b"")], (None, None, false, true)),
        (
            "gssapi never done on success",
            false,
            vec![Handshake("GSSAPI"), Client(b"krb"), Server(0, b"krb"), Client(b"x"), Server(0, b"")],
            (None, None, false, false),
        ),
        ("gssapi failure", false, vec![Handshake("GSSAPI"), Client(b"krb"), Server(58, b"")], (None, None, false, true)),
        ("unsupported mechanism", false, vec![Handshake("SCRAM-SHA-256"), HandshakeError(33)], (None, None, false, true)),
        ("tokens without handshake", true, vec![Client(b"\0alice\0pw"), Server(0, b"")], (None, None, false, false)),
        (
            "tokens after the end ignored",
            true,
            vec![Handshake("PLAIN"), Client(b"\0alice\0pw"), Server(0, b""), Client(b"\0eve\0pw"), Server(58, b"")],
            (user("alice"), Some(true), true, true),
        ),
        ("server speaks first", false, vec![Handshake("PLAIN"), Server(0, b""), Client(b"\0alice\0pw")], (None, None, false, true)),
    ];
    for (name, read_plain, steps, want) in cases {
        assert_eq!(run(read_plain, &steps), want, "{name}");
    }
}

#[test]
fn re_authentication_keeps_then_replaces_or_clears() {
    let mut s = SaslState::new(true);
    let plain = |s: &mut SaslState, user: &str, code: i16| {
        s.on_handshake_request(Mechanism::Plain);
        s.on_client_token(format!("\0{user}\0pw").as_bytes());
        assert!(!s.done());
        s.on_server_token(code, b"");
    };
    plain(&mut s, "alice", 0);
    assert_eq!(s.principal().map(|p| p.name.as_str()), Some("User:alice"));
    s.on_handshake_request(Mechanism::Plain);
    s.on_client_token(b"\0bob\0pw");
    assert_eq!(s.principal().map(|p| p.name.as_str()), Some("User:alice"), "the old principal stands mid-exchange");
    assert!(s.authenticated() && !s.done());
    s.on_server_token(0, b"");
    assert_eq!(s.principal().map(|p| p.name.as_str()), Some("User:bob"), "replaced on success");
    plain(&mut s, "carol", 58);
    assert_eq!((s.principal(), s.authenticated(), s.done()), (None, false, true), "cleared on failure");
}

#[test]
fn principal_carries_mechanism_and_problem_is_reported() {
    let mut s = SaslState::new(false);
    s.on_handshake_request(Mechanism::ScramSha512);
    assert_eq!(s.client_tokens_expected(), Some(2));
    s.on_client_token(b"n,,n=bob,r=x");
    assert_eq!(s.problem(), None);
    s.on_server_token(0, SERVER_FIRST);
    s.on_client_token(CLIENT_FINAL);
    s.on_server_token(0, SERVER_FINAL);
    let want = Principal { name: "User:bob".into(), mechanism: "SCRAM-SHA-512".into(), verified: true };
    assert_eq!(s.principal(), Some(&want));
    assert_eq!(s.mechanism(), Some(&Mechanism::ScramSha512));
    s.on_handshake_request(Mechanism::ScramSha512);
    s.on_client_token(b"n,,n=b=2Xob,r=x");
    assert!(s.problem().is_some_and(|p| p.contains("=2C")), "{:?}", s.problem());
}

#[test]
fn debug_shows_no_token() {
    let mut s = SaslState::new(true);
    s.on_handshake_request(Mechanism::Plain);
    s.on_client_token(b"\0alice\0hunter2-not-a-real-one");
    s.on_server_token(0, b"");
    let shown = format!("{s:?}");
    assert!(shown.contains("User:alice") && !shown.contains("hunter2"), "Debug must hold names only");
}

fn any_mechanism() -> impl Strategy<Value = Mechanism> {
    prop_oneof![
        Just(Mechanism::Plain),
        Just(Mechanism::ScramSha256),
        Just(Mechanism::ScramSha512),
        Just(Mechanism::OAuthBearer),
        ".{0,12}".prop_map(|s| Mechanism::from_name(&s)),
    ]
}

/// Random bytes, and random bytes behind prefixes that reach the deeper parsers.
fn any_token() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<&'static [u8]> =
        vec![b"", b"n,,", b"n,,n=", b"n,a=", b"p=x,,n=u,r=", b"\0", b"n,,\x01auth=Bearer ", b"r=", b"v=", b"e=", b"{\"status\":"];
    (proptest::sample::select(prefixes), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, mut rest)| {
        let mut t = p.to_vec();
        t.append(&mut rest);
        t
    })
}

#[derive(Clone, Debug)]
enum Op {
    Handshake(Mechanism),
    HandshakeResponse(i16),
    Client(Vec<u8>),
    Server(i16, Vec<u8>),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any_mechanism().prop_map(Op::Handshake),
        prop_oneof![Just(0i16), any::<i16>()].prop_map(Op::HandshakeResponse),
        any_token().prop_map(Op::Client),
        (prop_oneof![Just(0i16), any::<i16>()], any_token()).prop_map(|(c, t)| Op::Server(c, t)),
    ]
}

proptest! {
    #[test]
    fn random_input_never_panics_and_never_trusts_without_success(ops in proptest::collection::vec(any_op(), 0..12), read_plain: bool) {
        let mut s = SaslState::new(read_plain);
        for op in ops {
            match op {
                Op::Handshake(m) => s.on_handshake_request(m),
                Op::HandshakeResponse(c) => s.on_handshake_response(c),
                Op::Client(t) => s.on_client_token(&t),
                Op::Server(c, t) => s.on_server_token(c, &t),
            }
            prop_assert!(s.principal().is_none() || s.authenticated());
            let _ = (s.done(), s.client_tokens_expected(), s.problem(), s.mechanism());
        }
    }

    #[test]
    fn readers_never_panic(token in any_token()) {
        let _ = (scram_user(&token), plain_user(&token), oauth_subject(&token));
        let _ = saslname(&String::from_utf8_lossy(&token));
    }
}
