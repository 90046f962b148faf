//! The one table of Kafka error codes the proxy sends, reads or reports. Names and whether a
//! client retries come from kafka-protocol's `ResponseError` (Kafka's own `Errors` table), so a
//! code is never defined twice.

use kafka_protocol::error::ResponseError;

pub const NONE: i16 = 0;
pub const OFFSET_OUT_OF_RANGE: i16 = ResponseError::OffsetOutOfRange.code();
pub const CORRUPT_MESSAGE: i16 = ResponseError::CorruptMessage.code();
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = ResponseError::UnknownTopicOrPartition.code();
pub const LEADER_NOT_AVAILABLE: i16 = ResponseError::LeaderNotAvailable.code();
pub const REPLICA_NOT_AVAILABLE: i16 = ResponseError::ReplicaNotAvailable.code();
pub const NOT_LEADER_OR_FOLLOWER: i16 = ResponseError::NotLeaderOrFollower.code();
pub const REQUEST_TIMED_OUT: i16 = ResponseError::RequestTimedOut.code();
pub const MESSAGE_TOO_LARGE: i16 = ResponseError::MessageTooLarge.code();
pub const RECORD_LIST_TOO_LARGE: i16 = ResponseError::RecordListTooLarge.code();
pub const NOT_ENOUGH_REPLICAS: i16 = ResponseError::NotEnoughReplicas.code();
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = ResponseError::NotEnoughReplicasAfterAppend.code();
/// Permanent in every client, never retried: the proxy's answer to a refused acks value.
pub const INVALID_REQUIRED_ACKS: i16 = ResponseError::InvalidRequiredAcks.code();
pub const TOPIC_AUTHORIZATION_FAILED: i16 = ResponseError::TopicAuthorizationFailed.code();
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = ResponseError::ClusterAuthorizationFailed.code();
pub const UNSUPPORTED_SASL_MECHANISM: i16 = ResponseError::UnsupportedSaslMechanism.code();
pub const ILLEGAL_SASL_STATE: i16 = ResponseError::IllegalSaslState.code();
pub const UNSUPPORTED_VERSION: i16 = ResponseError::UnsupportedVersion.code();
/// What Kafka's own CreateTopicPolicy returns; permanent in every client.
pub const POLICY_VIOLATION: i16 = ResponseError::PolicyViolation.code();
pub const SASL_AUTHENTICATION_FAILED: i16 = ResponseError::SaslAuthenticationFailed.code();
pub const INVALID_RECORD: i16 = ResponseError::InvalidRecord.code();
pub const TOPIC_ALREADY_EXISTS: i16 = ResponseError::TopicAlreadyExists.code();
/// Idempotent producers: what a broker says about a batch's producer id, epoch and sequence.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = ResponseError::OutOfOrderSequenceNumber.code();
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = ResponseError::DuplicateSequenceNumber.code();
pub const INVALID_PRODUCER_EPOCH: i16 = ResponseError::InvalidProducerEpoch.code();
pub const UNKNOWN_PRODUCER_ID: i16 = ResponseError::UnknownProducerId.code();
pub const PRODUCER_FENCED: i16 = ResponseError::ProducerFenced.code();
pub const FENCED_LEADER_EPOCH: i16 = ResponseError::FencedLeaderEpoch.code();

/// Kafka's name for a code, e.g. `NotLeaderOrFollower`; "None" for 0.
pub fn name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "None".to_owned(),
        Some(ResponseError::Unknown(c)) => format!("Unknown({c})"),
        Some(e) => format!("{e:?}"),
    }
}

/// Whether the code says the caller lacks a permission (an ACL), not that something failed.
pub fn is_authorization(code: i16) -> bool {
    matches!(
        ResponseError::try_from_code(code),
        Some(
            ResponseError::TopicAuthorizationFailed
                | ResponseError::GroupAuthorizationFailed
                | ResponseError::ClusterAuthorizationFailed
                | ResponseError::TransactionalIdAuthorizationFailed
                | ResponseError::DelegationTokenAuthorizationFailed
                | ResponseError::SaslAuthenticationFailed
        )
    )
}

/// Whether a client retries a request that failed with this code (Kafka's classification).
pub fn retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_retriability_follow_kafka() {
        let cases: &[(i16, &str, bool)] = &[
            (NONE, "None", false),
            (NOT_LEADER_OR_FOLLOWER, "NotLeaderOrFollower", true),
            (NOT_ENOUGH_REPLICAS, "NotEnoughReplicas", true),
            (NOT_ENOUGH_REPLICAS_AFTER_APPEND, "NotEnoughReplicasAfterAppend", true),
            (POLICY_VIOLATION, "PolicyViolation", false),
            (INVALID_REQUIRED_ACKS, "InvalidRequiredAcks", false),
            (MESSAGE_TOO_LARGE, "MessageTooLarge", false),
            (9999, "Unknown(9999)", false),
        ];
        for (code, want, retry) in cases {
            assert_eq!((name(*code).as_str(), retriable(*code)), (*want, *retry), "code {code}");
        }
        assert_eq!((POLICY_VIOLATION, INVALID_REQUIRED_ACKS, UNSUPPORTED_VERSION), (44, 21, 35));
    }
}
