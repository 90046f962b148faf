//! Count walks of the responses to the proxy's own producer (InitProducerId, Produce), in the
//! manner of `response_guard`, which dispatches to them: every count checked against the bytes
//! left, every tagged field kafka-protocol decodes read the way it will.

use super::cursor::Cursor;
use super::response_guard::{known_tags, n, tags, text};

pub(super) fn init_producer_id(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    c.skip(4 + 2 + 8 + 2)?;
    if v >= 6 {
        c.skip(8 + 2)?;
    }
    tags(c, v >= 2)
}

pub(super) fn produce(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 9;
    for _ in 0..n(c, flex)? {
        if v >= 13 {
            c.skip(16)?;
        } else {
            text(c, flex)?;
        }
        for _ in 0..n(c, flex)? {
            produce_partition(c, v)?;
        }
        tags(c, flex)?;
    }
    c.i32()?;
    if !flex {
        return Some(());
    }
    // Tag 0 (v10+): node endpoints of new leaders (KIP-951).
    known_tags(c, |tag, c| match tag {
        0 if v >= 10 => {
            for _ in 0..n(c, true)? {
                c.i32()?;
                text(c, true)?;
                c.i32()?;
                text(c, true)?;
                tags(c, true)?;
            }
            Some(true)
        }
        0 => None,
        _ => Some(false),
    })
}

fn produce_partition(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 9;
    c.skip(4 + 2 + 8 + 8)?;
    if v >= 5 {
        c.i64()?;
    }
    if v >= 8 {
        for _ in 0..n(c, flex)? {
            c.i32()?;
            text(c, flex)?;
            tags(c, flex)?;
        }
        text(c, flex)?;
    }
    if !flex {
        return Some(());
    }
    // Tag 0 (v10+): the current leader's id and epoch.
    known_tags(c, |tag, c| match tag {
        0 if v >= 10 => {
            c.skip(4 + 4)?;
            tags(c, true)?;
            Some(true)
        }
        0 => None,
        _ => Some(false),
    })
}

#[cfg(test)]
mod tests {
    use super::super::response_guard::response;
    use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::messages::{ApiKey, BrokerId, InitProducerIdResponse, ProduceResponse, ProducerId, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encoded<M: Encodable>(m: &M, v: i16) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        m.encode(&mut b, v).expect("encode");
        b.to_vec()
    }

    #[test]
    fn init_producer_id_walks_every_version() {
        let m = InitProducerIdResponse::default().with_producer_id(ProducerId(7)).with_producer_epoch(1);
        for v in 0..=5 {
            let body = encoded(&m, v);
            assert!(response(ApiKey::InitProducerId, v, &body).is_ok(), "v{v}");
            assert!(response(ApiKey::InitProducerId, v, &body[..body.len() - 1]).is_err(), "v{v} short");
        }
    }

    #[test]
    fn produce_walks_every_version_with_leader_tags_and_refuses_a_huge_count() {
        for v in 3..=12 {
            let mut part = PartitionProduceResponse::default().with_index(0).with_error_code(6);
            if v >= 10 {
                part = part.with_current_leader(LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(5));
            }
            let topic = TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("audit")))
                .with_partition_responses(vec![part]);
            let mut m = ProduceResponse::default().with_responses(vec![topic]);
            if v >= 10 {
                m = m.with_node_endpoints(vec![NodeEndpoint::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("b2"))
                    .with_port(9092)]);
            }
            let body = encoded(&m, v);
            assert!(response(ApiKey::Produce, v, &body).is_ok(), "v{v}");
            assert!(response(ApiKey::Produce, v, &body[..body.len() - 1]).is_err(), "v{v} short");
            let mut huge = body.clone();
            if v < 9 {
                huge[..4].copy_from_slice(&i32::MAX.to_be_bytes());
                assert!(response(ApiKey::Produce, v, &huge).is_err(), "v{v} count");
            }
        }
    }
}
