//! What the response side must do for each request, in request order. Kafka answers requests on
//! a connection in the order they were sent, and so must the proxy, including for the responses
//! it makes itself.

use std::time::Instant;

use bytes::Bytes;

use crate::handlers::{Disposition, Route};

/// Which API a request was and when it arrived, for the per-API latency and byte metrics.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub api_key: i16,
    pub started: Instant,
}

#[derive(Debug)]
pub enum Pending {
    /// A request sent to the broker that will be answered.
    Expect { correlation_id: i32, api_version: i16, disposition: Disposition, meta: Meta },
    /// An acks=0 Produce forwarded unchanged: Apache Kafka sends no response, tansu does. If one
    /// comes, it is dropped.
    MaybeAnswered { correlation_id: i32 },
    /// A response the proxy made; sent when its turn comes.
    Local(Bytes, Meta),
    /// Close the client connection once everything before this has been sent.
    Close,
    /// The client has sent nothing for `requests::QUIET`: once everything before this is
    /// answered, the response side gives back the buffers it holds between frames.
    Quiet,
}

impl Pending {
    /// Splits a handler's route into the bytes to forward (if any) and what the response side
    /// must expect.
    pub fn of(route: Route, correlation_id: i32, api_version: i16, meta: Meta) -> (Option<Bytes>, Pending) {
        let expect = |disposition| Pending::Expect { correlation_id, api_version, disposition, meta };
        match route {
            Route::Forward(bytes, d) => (Some(bytes), expect(d)),
            Route::ForwardUnanswered(bytes) => (Some(bytes), Pending::MaybeAnswered { correlation_id }),
            Route::Answer(bytes) => (None, Pending::Local(bytes, meta)),
            // The session holds these before this point; one that reaches here is forwarded
            // upgraded and not held.
            Route::Hold(frame, template) => {
                let swallowed = crate::handlers::Swallowed { template: *template, held: None };
                (Some(frame.freeze()), expect(Disposition::Swallow(Box::new(swallowed))))
            }
            Route::Close => (None, Pending::Close),
        }
    }
}
