//! Moving frames over connections: the transport (plain TCP, TLS to come), framed reading and
//! vectored writing, listeners and the accept loop with shutdown. Knows bytes, not Kafka APIs.

pub mod framed;
pub mod listener;
pub mod transport;

pub use framed::{FrameReader, FrameWriter, ReadError};
pub use transport::{Accepted, ReadHalf, Stream, WriteHalf};
