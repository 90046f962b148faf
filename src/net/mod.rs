//! Moving frames over connections: the transport (plain TCP or TLS), TLS material and its
//! reload, framed reading and vectored writing, listeners and the accept loop with shutdown and
//! connection limits. Knows bytes, not Kafka APIs.

pub mod framed;
pub mod limits;
pub mod listener;
pub mod peer_cert;
pub mod tls;
pub mod transport;

pub use framed::{FrameReader, FrameWriter, ReadError};
pub use transport::{Accepted, ReadHalf, Stream, WriteHalf};
