//! The messages that flow through the runtime.
//!
//! A [`Message`] is addressed to a function; an [`EgressRecord`] leaves the system through an
//! egress. Both carry a [`TypedValue`] whose bytes are shared ([`bytes::Bytes`]), so routing and
//! batching never copy payloads.

use crate::address::Address;
use eddy_protocol::TypedValue;

/// A message for a function instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub target: Address,
    /// The sending function, `None` for messages from an ingress.
    pub caller: Option<Address>,
    pub argument: TypedValue,
}

/// A record for an egress, as a function sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressRecord {
    /// The egress id, `namespace/name`.
    pub egress: String,
    pub value: TypedValue,
}
