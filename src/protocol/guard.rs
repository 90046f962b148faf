//! Structural checks of admin requests from clients before kafka-protocol decodes them: the
//! crate pre-allocates every array from its wire count, so a five-byte count could ask for
//! gigabytes. Each walk checks every count against the bytes left and that nothing trails.

use super::cursor::Cursor;

/// CreateTopics v0-7 (v1 adds validate_only; flexible from v5).
pub fn create_topics(body: &[u8], version: i16) -> bool {
    let flex = version >= 5;
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        for _ in 0..c.bounded_array_len_v(flex)? {
            c.string_v(flex)?;
            c.i32()?;
            c.i16()?;
            for _ in 0..c.bounded_array_len_v(flex)? {
                c.i32()?;
                for _ in 0..c.bounded_array_len_v(flex)? {
                    c.i32()?;
                }
                tags(&mut c, flex)?;
            }
            for _ in 0..c.bounded_array_len_v(flex)? {
                c.string_v(flex)?;
                c.string_v(flex)?;
                tags(&mut c, flex)?;
            }
            tags(&mut c, flex)?;
        }
        c.i32()?;
        if version >= 1 {
            c.i8()?;
        }
        tags(&mut c, flex)?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

/// DeleteTopics v0-6 (v0 is v1; flexible from v4; v6 names topics by name and/or id).
pub fn delete_topics(body: &[u8], version: i16) -> bool {
    let flex = version >= 4;
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        for _ in 0..c.bounded_array_len_v(flex)? {
            if version >= 6 {
                c.compact_string()?;
                c.skip(16)?;
                tags(&mut c, flex)?;
            } else {
                c.string_v(flex)?;
            }
        }
        c.i32()?;
        tags(&mut c, flex)?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

/// DeleteRecords v0-2 (flexible from v2).
pub fn delete_records(body: &[u8], version: i16) -> bool {
    let flex = version >= 2;
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        for _ in 0..c.bounded_array_len_v(flex)? {
            c.string_v(flex)?;
            for _ in 0..c.bounded_array_len_v(flex)? {
                c.i32()?;
                c.i64()?;
                tags(&mut c, flex)?;
            }
            tags(&mut c, flex)?;
        }
        c.i32()?;
        tags(&mut c, flex)?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

/// AlterConfigs v0-2 (flexible from v2) and IncrementalAlterConfigs v0-1 (flexible from v1,
/// with an operation byte per config).
pub fn alter_configs(body: &[u8], version: i16, incremental: bool) -> bool {
    let flex = if incremental { version >= 1 } else { version >= 2 };
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        for _ in 0..c.bounded_array_len_v(flex)? {
            c.i8()?;
            c.string_v(flex)?;
            for _ in 0..c.bounded_array_len_v(flex)? {
                c.string_v(flex)?;
                if incremental {
                    c.i8()?;
                }
                c.string_v(flex)?;
                tags(&mut c, flex)?;
            }
            tags(&mut c, flex)?;
        }
        c.i8()?;
        tags(&mut c, flex)?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

/// CreatePartitions v0-3 (flexible from v2).
pub fn create_partitions(body: &[u8], version: i16) -> bool {
    let flex = version >= 2;
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        for _ in 0..c.bounded_array_len_v(flex)? {
            c.string_v(flex)?;
            c.i32()?;
            // assignments: nullable array of broker id arrays
            for _ in 0..c.bounded_array_len_v(flex)? {
                for _ in 0..c.bounded_array_len_v(flex)? {
                    c.i32()?;
                }
                tags(&mut c, flex)?;
            }
            tags(&mut c, flex)?;
        }
        c.i32()?;
        c.i8()?;
        tags(&mut c, flex)?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

/// AlterPartitionReassignments v0-1 (always flexible; v1 adds allow_replication_factor_change).
pub fn alter_partition_reassignments(body: &[u8], version: i16) -> bool {
    let walk = || -> Option<()> {
        let mut c = Cursor::new(body);
        c.i32()?;
        if version >= 1 {
            c.i8()?;
        }
        for _ in 0..c.bounded_array_len_v(true)? {
            c.compact_string()?;
            for _ in 0..c.bounded_array_len_v(true)? {
                c.i32()?;
                for _ in 0..c.bounded_array_len_v(true)? {
                    c.i32()?;
                }
                c.skip_tagged_fields()?;
            }
            c.skip_tagged_fields()?;
        }
        c.skip_tagged_fields()?;
        (c.remaining() == 0).then_some(())
    };
    walk().is_some()
}

fn tags(c: &mut Cursor<'_>, flex: bool) -> Option<()> {
    if flex {
        c.skip_tagged_fields()?;
    }
    Some(())
}

/// Offset (within `body`) of Metadata's allow_auto_topic_creation flag, v4 and later.
pub fn metadata_auto_create_offset(body: &[u8], version: i16) -> Option<usize> {
    if version < 4 {
        return None;
    }
    let flex = version >= 9;
    let mut c = Cursor::new(body);
    // topics: nullable array (null = all topics)
    for _ in 0..c.bounded_array_len_v(flex)? {
        if version >= 10 {
            c.skip(16)?;
        }
        c.string_v(flex)?;
        tags(&mut c, flex)?;
    }
    let at = c.pos();
    c.i8()?;
    Some(at)
}
