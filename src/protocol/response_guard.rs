//! Count walks of broker responses before kafka-protocol decodes them, as `guard` does for client
//! requests: the crate pre-allocates every array from its wire count, so one five-byte count in a
//! response could ask for tens of gigabytes and abort the whole proxy. Each walk reads the body
//! the way the decoder will (known tagged fields included) and checks every count against the
//! bytes left.

use kafka_protocol::messages::ApiKey;

use super::cursor::Cursor;

/// Whether a response body (header skipped) of one of the APIs whose responses the proxy decodes
/// has only counts its bytes can back. APIs without a walk are refused, never decoded blind.
pub fn response(api: ApiKey, version: i16, body: &[u8]) -> Result<(), &'static str> {
    let c = &mut Cursor::new(body);
    let walked = match api {
        ApiKey::Metadata => metadata(c, version),
        ApiKey::FindCoordinator => find_coordinator(c, version),
        ApiKey::DescribeCluster => describe_cluster(c, version),
        ApiKey::ApiVersions => api_versions(c, version),
        ApiKey::DescribeConfigs => describe_configs(c, version),
        ApiKey::CreateTopics => create_topics(c, version),
        ApiKey::DeleteTopics => delete_topics(c, version),
        ApiKey::DeleteRecords => delete_records(c, version),
        ApiKey::AlterConfigs => resource_errors(c, version >= 2),
        ApiKey::IncrementalAlterConfigs => resource_errors(c, version >= 1),
        ApiKey::CreatePartitions => create_partitions(c, version),
        ApiKey::AlterPartitionReassignments => reassignments(c, version),
        ApiKey::SaslHandshake => sasl_handshake(c),
        ApiKey::SaslAuthenticate => sasl_authenticate(c, version),
        ApiKey::InitProducerId => super::own_walks::init_producer_id(c, version),
        ApiKey::Produce => super::own_walks::produce(c, version),
        _ => return Err("the proxy has no count walk for this response"),
    };
    walked.ok_or("a count exceeds the bytes that follow it, or the body is short")
}

/// An array count backed by the bytes left (every element takes at least one byte).
pub(super) fn n(c: &mut Cursor<'_>, flex: bool) -> Option<usize> {
    c.bounded_array_len_v(flex)
}

pub(super) fn text(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    c.string_v(flex).map(drop)
}

pub(super) fn tags(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    if flex {
        c.skip_tagged_fields()?;
    }
    Some(())
}

/// An array of i32 (node ids).
fn ints(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    let count = n(c, flex)?;
    c.skip(count.checked_mul(4)?)
}

/// A tagged section whose known tags kafka-protocol decodes from the stream, ignoring their
/// declared size: `known` reads them the same way, and a size that disagrees is refused, so the
/// walk and the decoder never part ways.
pub(super) fn known_tags(c: &mut Cursor<'_>, known: impl Fn(u32, &mut Cursor<'_>) -> Option<bool>) -> Option<()> {
    for _ in 0..c.uvarint()? {
        let tag = c.uvarint()?;
        let size = c.uvarint()? as usize;
        let start = c.pos();
        if !known(tag, c)? {
            c.skip(size)?;
        }
        (c.pos() - start == size).then_some(())?;
    }
    Some(())
}

fn metadata(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 9;
    if v >= 3 {
        c.i32()?;
    }
    for _ in 0..n(c, flex)? {
        c.i32()?;
        text(c, flex)?;
        c.i32()?;
        if v >= 1 {
            text(c, flex)?;
        }
        tags(c, flex)?;
    }
    if v >= 2 {
        text(c, flex)?;
    }
    if v >= 1 {
        c.i32()?;
    }
    for _ in 0..n(c, flex)? {
        c.i16()?;
        text(c, flex)?;
        if v >= 10 {
            c.skip(16)?;
        }
        if v >= 1 {
            c.i8()?;
        }
        for _ in 0..n(c, flex)? {
            c.skip(2 + 4 + 4 + if v >= 7 { 4 } else { 0 })?;
            ints(c, flex)?;
            ints(c, flex)?;
            if v >= 5 {
                ints(c, flex)?;
            }
            tags(c, flex)?;
        }
        if v >= 8 {
            c.i32()?;
        }
        tags(c, flex)?;
    }
    if (8..=10).contains(&v) {
        c.i32()?; // cluster_authorized_operations
    }
    if v >= 13 {
        c.i16()?; // error_code
    }
    tags(c, flex)
}

fn find_coordinator(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 3;
    if v >= 1 {
        c.i32()?;
    }
    if v <= 3 {
        c.i16()?;
        if v >= 1 {
            text(c, flex)?;
        }
        c.i32()?;
        text(c, flex)?;
        c.i32()?;
    } else {
        for _ in 0..n(c, true)? {
            text(c, true)?;
            c.i32()?;
            text(c, true)?;
            c.skip(4 + 2)?;
            text(c, true)?;
            tags(c, true)?;
        }
    }
    tags(c, flex)
}

fn describe_cluster(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    c.skip(4 + 2)?;
    text(c, true)?;
    if v >= 1 {
        c.i8()?;
    }
    text(c, true)?;
    c.i32()?;
    for _ in 0..n(c, true)? {
        c.i32()?;
        text(c, true)?;
        c.i32()?;
        text(c, true)?;
        if v >= 2 {
            c.i8()?;
        }
        tags(c, true)?;
    }
    c.i32()?;
    tags(c, true)
}

fn api_versions(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 3;
    c.i16()?;
    for _ in 0..n(c, flex)? {
        c.skip(6)?;
        tags(c, flex)?;
    }
    if v >= 1 {
        c.i32()?;
    }
    if !flex {
        return Some(());
    }
    // Tags 0 and 2 are the supported and finalized feature arrays, 1 an epoch, 3 a flag.
    let features = |c: &mut Cursor<'_>| -> Option<bool> {
        for _ in 0..n(c, true)? {
            text(c, true)?;
            c.skip(4)?;
            tags(c, true)?;
        }
        Some(true)
    };
    known_tags(c, |tag, c| match tag {
        0 | 2 => features(c),
        1 => c.i64().map(|_| true),
        3 => c.i8().map(|_| true),
        _ => Some(false),
    })
}

fn describe_configs(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 4;
    c.i32()?;
    for _ in 0..n(c, flex)? {
        c.i16()?;
        text(c, flex)?;
        c.i8()?;
        text(c, flex)?;
        for _ in 0..n(c, flex)? {
            text(c, flex)?;
            text(c, flex)?;
            c.skip(3)?;
            for _ in 0..n(c, flex)? {
                text(c, flex)?;
                text(c, flex)?;
                c.i8()?;
                tags(c, flex)?;
            }
            if v >= 3 {
                c.i8()?;
                text(c, flex)?;
            }
            tags(c, flex)?;
        }
        tags(c, flex)?;
    }
    tags(c, flex)
}

fn create_topics(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 5;
    c.i32()?;
    for _ in 0..n(c, flex)? {
        text(c, flex)?;
        if v >= 7 {
            c.skip(16)?;
        }
        c.i16()?;
        text(c, flex)?;
        if flex {
            c.skip(4 + 2)?;
            for _ in 0..n(c, true)? {
                text(c, true)?;
                text(c, true)?;
                c.skip(3)?;
                tags(c, true)?;
            }
            // Tag 0 is topic_config_error_code.
            known_tags(c, |tag, c| if tag == 0 { c.i16().map(|_| true) } else { Some(false) })?;
        }
    }
    tags(c, flex)
}

fn delete_topics(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 4;
    c.i32()?;
    for _ in 0..n(c, flex)? {
        text(c, flex)?;
        if v >= 6 {
            c.skip(16)?;
        }
        c.i16()?;
        if v >= 5 {
            text(c, flex)?;
        }
        tags(c, flex)?;
    }
    tags(c, flex)
}

fn delete_records(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 2;
    c.i32()?;
    for _ in 0..n(c, flex)? {
        text(c, flex)?;
        for _ in 0..n(c, flex)? {
            c.skip(4 + 8 + 2)?;
            tags(c, flex)?;
        }
        tags(c, flex)?;
    }
    tags(c, flex)
}

/// AlterConfigs and IncrementalAlterConfigs: `[error_code error_message resource_type resource_name]`.
fn resource_errors(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    c.i32()?;
    for _ in 0..n(c, flex)? {
        c.i16()?;
        text(c, flex)?;
        c.i8()?;
        text(c, flex)?;
        tags(c, flex)?;
    }
    tags(c, flex)
}

fn create_partitions(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 2;
    c.i32()?;
    for _ in 0..n(c, flex)? {
        text(c, flex)?;
        c.i16()?;
        text(c, flex)?;
        tags(c, flex)?;
    }
    tags(c, flex)
}

fn reassignments(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    c.i32()?;
    if v >= 1 {
        c.i8()?;
    }
    c.i16()?;
    text(c, true)?;
    for _ in 0..n(c, true)? {
        text(c, true)?;
        for _ in 0..n(c, true)? {
            c.skip(4 + 2)?;
            text(c, true)?;
            tags(c, true)?;
        }
        tags(c, true)?;
    }
    tags(c, true)
}

/// SaslHandshake v0-1: error code, the broker's mechanisms.
fn sasl_handshake(c: &mut Cursor<'_>) -> Option<()> {
    c.i16()?;
    for _ in 0..n(c, false)? {
        text(c, false)?;
    }
    Some(())
}

/// SaslAuthenticate v0-2 (flexible from v2): error, message, the server's bytes, and (v1+) the
/// session lifetime.
fn sasl_authenticate(c: &mut Cursor<'_>, v: i16) -> Option<()> {
    let flex = v >= 2;
    c.i16()?;
    text(c, flex)?;
    c.skip_bytes_v(flex)?;
    if v >= 1 {
        c.i64()?;
    }
    tags(c, flex)
}
