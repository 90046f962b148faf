//! Address rewrites for the responses that name brokers: Metadata, FindCoordinator (v0-3 single,
//! v4+ batched) and DescribeCluster, by decode-modify-encode with kafka-protocol. (Produce and
//! Fetch node endpoints live in `tail`, which never re-encodes records.)

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse};

use super::{Endpoints, RewriteError};
use crate::protocol::encode::reencode;

pub fn metadata(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    metadata_and_missing(frame, version, eps).map(|(b, _)| b)
}

/// The rewritten Metadata response, and the topics it answers UNKNOWN_TOPIC_OR_PARTITION: those a
/// request asked for that the cluster does not have (what auto-creation would have created).
pub fn metadata_and_missing(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<(Bytes, Vec<String>), RewriteError> {
    let mut missing = Vec::new();
    let bytes = reencode(frame, ApiKey::Metadata, version, |m: &mut MetadataResponse| {
        for b in &mut m.brokers {
            (b.host, b.port) = eps.proxy_address(b.node_id.0, &b.host, b.port)?;
        }
        missing = m
            .topics
            .iter()
            .filter(|t| t.error_code == crate::protocol::errors::UNKNOWN_TOPIC_OR_PARTITION)
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        Ok::<_, RewriteError>(())
    })?;
    Ok((bytes, missing))
}

pub fn describe_cluster(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    reencode(frame, ApiKey::DescribeCluster, version, |m: &mut DescribeClusterResponse| {
        for b in &mut m.brokers {
            (b.host, b.port) = eps.proxy_address(b.broker_id.0, &b.host, b.port)?;
        }
        Ok(())
    })
}

pub fn find_coordinator(frame: &Bytes, version: i16, eps: &dyn Endpoints) -> Result<Bytes, RewriteError> {
    reencode(frame, ApiKey::FindCoordinator, version, |m: &mut FindCoordinatorResponse| {
        // A coordinator with an error carries node id -1 and an empty host: nothing to rewrite.
        let live = |node: BrokerId, code: i16| code == 0 && node.0 >= 0;
        if version < 4 {
            if live(m.node_id, m.error_code) {
                (m.host, m.port) = eps.proxy_address(m.node_id.0, &m.host, m.port)?;
            }
        } else {
            for c in &mut m.coordinators {
                if live(c.node_id, c.error_code) {
                    (c.host, c.port) = eps.proxy_address(c.node_id.0, &c.host, c.port)?;
                }
            }
        }
        Ok(())
    })
}
