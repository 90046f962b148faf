//! What the response side must do for each request, in request order. Kafka answers requests on
//! a connection in the order they were sent, and so must the proxy, including for the responses
//! it makes itself.

use bytes::Bytes;

use crate::audit::Event;

/// How to treat the broker's response to one forwarded request.
#[derive(Debug)]
pub enum Disposition {
    /// Send it on untouched.
    Forward,
    Metadata,
    FindCoordinator,
    DescribeCluster,
    ApiVersions,
    /// Produce v10+: node endpoints may sit in the tail.
    ProduceTail,
    /// Fetch v16+: node endpoints may sit in the tail, after the records.
    FetchTail,
    /// Merge the proxy's own per-topic results into the broker's admin response.
    Merge(Box<crate::admin::Merge>),
    /// The client sent acks=0 and the proxy upgraded it: the client expects no answer. Drop the
    /// response; if it reports errors, audit them (the client can never see them) and close the
    /// connection as a broker does on acks=0 failures. The event is the template to fill in.
    Swallow(Box<Event>),
}

#[derive(Debug)]
pub enum Pending {
    /// A request sent to the broker that will be answered.
    Expect { correlation_id: i32, api_version: i16, disposition: Disposition },
    /// An acks=0 Produce forwarded unchanged: Apache Kafka sends no response, tansu does. If one
    /// comes, it is dropped.
    MaybeAnswered { correlation_id: i32 },
    /// A response the proxy made; sent when its turn comes.
    Local(Bytes),
    /// Close the client connection once everything before this has been sent.
    Close,
}
