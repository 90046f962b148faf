//! Proptest strategies for the broker's answers to the admin requests the proxy splits (which
//! `handlers::split::merge` decodes and re-encodes) and to the cluster client's DescribeConfigs.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::alter_partition_reassignments_response::{ReassignablePartitionResponse, ReassignableTopicResponse};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::incremental_alter_configs_response as incremental;
use kafka_protocol::messages::{
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, CreatePartitionsResponse, DeleteRecordsResponse, DescribeConfigsResponse,
    IncrementalAlterConfigsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{error_code, name, s};

fn text() -> impl Strategy<Value = StrBytes> {
    name().prop_map(|n| s(&n))
}

fn message() -> impl Strategy<Value = Option<StrBytes>> {
    option::of(text())
}

pub fn delete_records() -> impl Strategy<Value = DeleteRecordsResponse> {
    let partition = (any::<i32>(), any::<i64>(), error_code())
        .prop_map(|(i, low, e)| DeleteRecordsPartitionResult::default().with_partition_index(i).with_low_watermark(low).with_error_code(e));
    let topic =
        (text(), vec(partition, 0..4)).prop_map(|(n, p)| DeleteRecordsTopicResult::default().with_name(TopicName(n)).with_partitions(p));
    (any::<i32>(), vec(topic, 0..4)).prop_map(|(t, topics)| DeleteRecordsResponse::default().with_throttle_time_ms(t).with_topics(topics))
}

pub fn alter_configs() -> impl Strategy<Value = AlterConfigsResponse> {
    let r = (error_code(), message(), any::<i8>(), text()).prop_map(|(e, m, t, n)| {
        AlterConfigsResourceResponse::default().with_error_code(e).with_error_message(m).with_resource_type(t).with_resource_name(n)
    });
    vec(r, 0..5).prop_map(|r| AlterConfigsResponse::default().with_responses(r))
}

pub fn incremental_alter_configs() -> impl Strategy<Value = IncrementalAlterConfigsResponse> {
    let r = (error_code(), message(), any::<i8>(), text()).prop_map(|(e, m, t, n)| {
        incremental::AlterConfigsResourceResponse::default()
            .with_error_code(e)
            .with_error_message(m)
            .with_resource_type(t)
            .with_resource_name(n)
    });
    vec(r, 0..5).prop_map(|r| IncrementalAlterConfigsResponse::default().with_responses(r))
}

pub fn create_partitions() -> impl Strategy<Value = CreatePartitionsResponse> {
    let r = (text(), error_code(), message())
        .prop_map(|(n, e, m)| CreatePartitionsTopicResult::default().with_name(TopicName(n)).with_error_code(e).with_error_message(m));
    vec(r, 0..5).prop_map(|r| CreatePartitionsResponse::default().with_results(r))
}

pub fn reassignments(v: i16) -> impl Strategy<Value = AlterPartitionReassignmentsResponse> {
    let partition = (any::<i32>(), error_code(), message())
        .prop_map(|(i, e, m)| ReassignablePartitionResponse::default().with_partition_index(i).with_error_code(e).with_error_message(m));
    let topic =
        (text(), vec(partition, 0..4)).prop_map(|(n, p)| ReassignableTopicResponse::default().with_name(TopicName(n)).with_partitions(p));
    (error_code(), message(), any::<bool>(), vec(topic, 0..4)).prop_map(move |(e, m, rf, t)| {
        AlterPartitionReassignmentsResponse::default()
            .with_error_code(e)
            .with_error_message(m)
            .with_allow_replication_factor_change(rf || v < 1)
            .with_responses(t)
    })
}

pub fn describe_configs(v: i16) -> impl Strategy<Value = DescribeConfigsResponse> {
    let synonym = (text(), message(), any::<i8>())
        .prop_map(|(n, val, src)| DescribeConfigsSynonym::default().with_name(n).with_value(val).with_source(src));
    let config = (text(), message(), any::<(bool, i8, bool, i8)>(), vec(synonym, 0..3), message()).prop_map(
        move |(n, val, (ro, src, sens, ty), syn, doc)| {
            let c = DescribeConfigsResourceResult::default()
                .with_name(n)
                .with_value(val)
                .with_read_only(ro)
                .with_config_source(src)
                .with_is_sensitive(sens)
                .with_synonyms(syn);
            if v >= 3 {
                c.with_config_type(ty).with_documentation(doc)
            } else {
                c
            }
        },
    );
    let result = (error_code(), message(), any::<i8>(), text(), vec(config, 0..4)).prop_map(|(e, m, t, n, c)| {
        DescribeConfigsResult::default()
            .with_error_code(e)
            .with_error_message(m)
            .with_resource_type(t)
            .with_resource_name(n)
            .with_configs(c)
    });
    vec(result, 0..4).prop_map(|r| DescribeConfigsResponse::default().with_results(r))
}
