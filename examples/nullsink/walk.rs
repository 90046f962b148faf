//! The few fields the sink needs from each request, read in place with the project's bounds-checked
//! `Cursor`: every array count is checked against the bytes left (kafka-protocol's decoders
//! pre-allocate from wire counts, so a bad five-byte count would ask for gigabytes). None means
//! the request is malformed. Flexible versions are noted per API.

use kafka_durability_proxy::protocol::cursor::Cursor;
use kafka_durability_proxy::protocol::fetch::{self, RequestEntry};

/// Topic name (raw bytes) and, per partition, (index, value).
pub type Topics<'a, T> = Vec<(&'a [u8], Vec<(i32, T)>)>;

fn tags(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    if flex {
        c.skip_tagged_fields()?;
    }
    Some(())
}

/// A nullable array's count: None for null, Some(n) with n no larger than the bytes left.
fn nullable_len(c: &mut Cursor<'_>, flex: bool) -> Option<Option<usize>> {
    let mut probe = *c;
    let null = if flex { probe.compact_len()?.is_none() } else { probe.i32()? == -1 };
    let n = c.bounded_array_len_v(flex)?;
    Some((!null).then_some(n))
}

fn name<'a>(c: &mut Cursor<'a>, flex: bool) -> Option<&'a [u8]> {
    Some(c.string_v(flex)?.unwrap_or_default())
}

/// Fetch v4-12 (flexible from 12): each topic's partitions and fetch offsets, by the proxy's own
/// request walk.
pub fn fetch(body: &[u8], version: i16) -> Option<Topics<'_, i64>> {
    let mut topics: Topics<'_, i64> = Vec::new();
    fetch::walk_request(body, 0, version, |entry| {
        match entry {
            RequestEntry::Topic(name) => topics.push((name, Vec::new())),
            RequestEntry::Partition { partition, offset } => {
                if let Some((_, parts)) = topics.last_mut() {
                    parts.push((partition, offset));
                }
            }
        }
        false
    })?;
    Some(topics)
}

/// Metadata v0-12 (flexible from 9): the topics asked for; None inside for "every topic".
pub fn metadata(body: &[u8], version: i16) -> Option<Option<Vec<String>>> {
    let flex = version >= 9;
    let mut c = Cursor::new(body);
    let Some(n) = nullable_len(&mut c, flex)? else { return Some(None) };
    if n == 0 && version == 0 {
        return Some(None); // v0 asks for every topic with an empty list
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if version >= 10 {
            c.skip(16)?; // topic_id
        }
        if let Some(raw) = c.string_v(flex)? {
            out.push(String::from_utf8_lossy(raw).into_owned());
        }
        tags(&mut c, flex)?;
    }
    Some(Some(out))
}

/// ListOffsets v1-10 (flexible from 6): each topic's partitions and requested timestamps.
pub fn list_offsets(body: &[u8], version: i16) -> Option<Topics<'_, i64>> {
    let flex = version >= 6;
    let mut c = Cursor::new(body);
    c.i32()?; // replica_id
    if version >= 2 {
        c.i8()?; // isolation_level
    }
    let mut topics = Vec::new();
    for _ in 0..c.bounded_array_len_v(flex)? {
        let topic = name(&mut c, flex)?;
        let mut parts = Vec::new();
        for _ in 0..c.bounded_array_len_v(flex)? {
            let partition = c.i32()?;
            if version >= 4 {
                c.i32()?; // current_leader_epoch
            }
            parts.push((partition, c.i64()?));
            tags(&mut c, flex)?;
        }
        tags(&mut c, flex)?;
        topics.push((topic, parts));
    }
    Some(topics)
}

/// One group of an OffsetFetch: its id and the topics and partitions asked (None: all).
pub type GroupAsk<'a> = (&'a [u8], Option<Topics<'a, ()>>);

/// OffsetFetch v1-9 (flexible from 6; groups batched from 8).
pub fn offset_fetch(body: &[u8], version: i16) -> Option<Vec<GroupAsk<'_>>> {
    let flex = version >= 6;
    let mut c = Cursor::new(body);
    if version < 8 {
        let group = name(&mut c, flex)?;
        return Some(vec![(group, offset_fetch_topics(&mut c, flex)?)]);
    }
    let mut groups = Vec::new();
    for _ in 0..c.bounded_array_len_v(flex)? {
        let group = name(&mut c, flex)?;
        if version >= 9 {
            c.string_v(flex)?; // member_id
            c.i32()?; // member_epoch
        }
        groups.push((group, offset_fetch_topics(&mut c, flex)?));
        tags(&mut c, flex)?;
    }
    Some(groups)
}

fn offset_fetch_topics<'a>(c: &mut Cursor<'a>, flex: bool) -> Option<Option<Topics<'a, ()>>> {
    let Some(n) = nullable_len(c, flex)? else { return Some(None) };
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = name(c, flex)?;
        let mut parts = Vec::new();
        for _ in 0..c.bounded_array_len_v(flex)? {
            parts.push((c.i32()?, ()));
        }
        tags(c, flex)?;
        topics.push((topic, parts));
    }
    Some(Some(topics))
}

/// FindCoordinator v4-6 (flexible): the keys asked for.
pub fn coordinator_keys(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut c = Cursor::new(body);
    c.i8()?; // key_type
    let mut keys = Vec::new();
    for _ in 0..c.bounded_array_len_v(true)? {
        keys.push(name(&mut c, true)?);
    }
    Some(keys)
}

/// DescribeConfigs v1-4 (flexible from 4): each resource's type and name.
pub fn config_resources(body: &[u8], version: i16) -> Option<Vec<(i8, &[u8])>> {
    let flex = version >= 4;
    let mut c = Cursor::new(body);
    let mut out = Vec::new();
    for _ in 0..c.bounded_array_len_v(flex)? {
        let kind = c.i8()?;
        let resource = name(&mut c, flex)?;
        for _ in 0..nullable_len(&mut c, flex)?.unwrap_or(0) {
            c.string_v(flex)?; // configuration_keys
        }
        tags(&mut c, flex)?;
        out.push((kind, resource));
    }
    Some(out)
}
