//! Probes a broker's SASL with the proxy's own SCRAM client: ApiVersions, SaslHandshake v1,
//! two SaslAuthenticate rounds, then Metadata; optionally a second handshake + authenticate on
//! the same connection (KIP-368 re-authentication). The relayed-exchange tracker
//! (`protocol::sasl::SaslState`) watches every token and says whom it would audit.
//! Usage: SASL_PROBE_PASSWORD=... sasl_probe HOST:PORT USER [SCRAM-SHA-256|SCRAM-SHA-512] [reauth] [wait=SECS] [nosasl]
//! `wait=SECS` sleeps after authenticating and asks Metadata again (does the session expire?).
//! The password comes from the environment so it is not on the command line; it is never printed.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::Bytes;
use kafka_durability_proxy::cluster::sasl::{random_nonce, ScramClient, ScramMechanism, Secret};
use kafka_durability_proxy::protocol::encode::{decode_response, request};
use kafka_durability_proxy::protocol::sasl::{Mechanism, SaslState};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

struct Conn {
    s: TcpStream,
    correlation: i32,
}

impl Conn {
    fn call<Q: Encodable, P: Decodable>(&mut self, key: ApiKey, version: i16, req: &Q) -> anyhow::Result<P> {
        self.correlation += 1;
        self.s.write_all(&request(key, version, self.correlation, Some("sasl-probe"), req)?)?;
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size)?;
        let n = usize::try_from(i32::from_be_bytes(size))?;
        anyhow::ensure!(n <= 1 << 20, "response of {n} bytes");
        let mut frame = vec![0u8; 4 + n];
        frame[..4].copy_from_slice(&size);
        self.s.read_exact(&mut frame[4..])?;
        let (corr, body) = decode_response::<P>(&Bytes::from(frame), key, version)?;
        anyhow::ensure!(corr == self.correlation, "correlation {corr}, expected {}", self.correlation);
        Ok(body)
    }

    fn authenticate(&mut self, version: i16, token: Vec<u8>) -> anyhow::Result<SaslAuthenticateResponse> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        self.call(ApiKey::SaslAuthenticate, version, &req)
    }
}

/// One handshake and SCRAM exchange; returns whether the broker accepted it.
fn scram(conn: &mut Conn, watch: &mut SaslState, mech: ScramMechanism, user: &str, password: &Secret, auth_v: i16) -> anyhow::Result<bool> {
    let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech.name()));
    watch.on_handshake_request(Mechanism::from_name(mech.name()));
    let resp: SaslHandshakeResponse = conn.call(ApiKey::SaslHandshake, 1, &hs)?;
    let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
    println!("SaslHandshake v1: error {} mechanisms {offered:?}", resp.error_code);
    watch.on_handshake_response(resp.error_code);
    if resp.error_code != 0 {
        return Ok(false);
    }
    let mut client = ScramClient::new(mech, user, password.clone(), &random_nonce()?)?;
    let mut token = client.client_first();
    for round in 1..=2 {
        watch.on_client_token(&token);
        let resp = conn.authenticate(auth_v, std::mem::take(&mut token))?;
        let message = resp.error_message.as_ref().map(|m| m.as_str());
        println!(
            "SaslAuthenticate v{auth_v} round {round}: error {} message {message:?} session_lifetime_ms {} auth_bytes {} bytes",
            resp.error_code,
            resp.session_lifetime_ms,
            resp.auth_bytes.len()
        );
        watch.on_server_token(resp.error_code, &resp.auth_bytes);
        if resp.error_code != 0 {
            return Ok(false);
        }
        let step = if round == 1 {
            client.handle_server_first(&resp.auth_bytes).map(|t| token = t)
        } else {
            client.verify_server_final(&resp.auth_bytes).map(|()| println!("server signature verified"))
        };
        if let Err(e) = step {
            println!("ScramClient: {e}");
            return Ok(false);
        }
    }
    Ok(true)
}

fn report(watch: &SaslState) {
    println!(
        "tracker: authenticated {} done {} principal {:?} problem {:?}",
        watch.authenticated(),
        watch.done(),
        watch.principal(),
        watch.problem()
    );
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: SASL_PROBE_PASSWORD=... sasl_probe HOST:PORT USER [SCRAM-SHA-256|SCRAM-SHA-512] [reauth] [wait=SECS] [nosasl]";
    let addr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let user = args.next().ok_or_else(|| anyhow::anyhow!(usage))?;
    let mech_name = args.next().unwrap_or_else(|| "SCRAM-SHA-256".into());
    let mech = ScramMechanism::from_name(&mech_name).ok_or_else(|| anyhow::anyhow!("not a SCRAM mechanism: {mech_name}"))?;
    let flags: Vec<String> = args.collect();
    let reauth = flags.iter().any(|f| f == "reauth");
    let wait: Option<u64> = flags.iter().find_map(|f| f.strip_prefix("wait=")).map(str::parse).transpose()?;
    let password = Secret::new(std::env::var("SASL_PROBE_PASSWORD").map_err(|_| anyhow::anyhow!(usage))?);

    let mut conn = Conn { s: TcpStream::connect(&addr)?, correlation: 0 };
    let av = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sasl-probe"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let versions: ApiVersionsResponse = conn.call(ApiKey::ApiVersions, 3, &av)?;
    let range = |key: i16| versions.api_keys.iter().find(|k| k.api_key == key).map(|k| (k.min_version, k.max_version));
    println!("ApiVersions v3: error {} SaslHandshake(17) {:?} SaslAuthenticate(36) {:?}", versions.error_code, range(17), range(36));
    let auth_v = range(36).map_or(0, |(_, max)| max.min(2));

    if flags.iter().any(|f| f == "nosasl") {
        metadata(&mut conn, "without any SASL exchange");
        create_topic(&mut conn, "probe-nosasl", "without any SASL exchange");
        return Ok(());
    }
    let mut watch = SaslState::new(false);
    let ok = scram(&mut conn, &mut watch, mech, &user, &password, auth_v)?;
    report(&watch);
    metadata(&mut conn, if ok { "after authenticating" } else { "after a failed exchange" });
    if !ok {
        create_topic(&mut conn, "probe-after-failure", "after a failed exchange");
        return Ok(());
    }
    if let Some(secs) = wait {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        metadata(&mut conn, &format!("{secs} s later"));
    }
    if reauth {
        println!("-- re-authentication on the same connection --");
        let again = scram(&mut conn, &mut watch, mech, &user, &password, auth_v);
        println!("second exchange: {again:?}");
        report(&watch);
        metadata(&mut conn, "after re-authentication");
    }
    Ok(())
}

fn create_topic(conn: &mut Conn, name: &str, when: &str) {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
        .with_num_partitions(1)
        .with_replication_factor(1);
    let req = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(5000);
    match conn.call::<_, CreateTopicsResponse>(ApiKey::CreateTopics, 5, &req) {
        Ok(resp) => {
            let results: Vec<(String, i16)> = resp.topics.iter().map(|t| (t.name.0.to_string(), t.error_code)).collect();
            println!("CreateTopics v5 {when}: {results:?}");
        }
        Err(e) => println!("CreateTopics v5 {when}: failed: {e}"),
    }
}

fn metadata(conn: &mut Conn, when: &str) {
    match conn.call::<_, MetadataResponse>(ApiKey::Metadata, 12, &MetadataRequest::default()) {
        Ok(md) => {
            let brokers: Vec<String> = md.brokers.iter().map(|b| format!("{}@{}:{}", b.node_id.0, b.host.as_str(), b.port)).collect();
            println!("Metadata v12 {when}: brokers {brokers:?} topics {}", md.topics.len());
        }
        Err(e) => println!("Metadata v12 {when}: failed: {e}"),
    }
}
