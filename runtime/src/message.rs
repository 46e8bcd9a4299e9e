//! The messages that flow through the runtime.
//!
//! A [`Message`] is addressed to a function and carries an [`Argument`]; an [`EgressRecord`]
//! leaves the system through an egress. Payload bytes are shared ([`bytes::Bytes`]), so
//! routing and batching never copy them, and an argument's typename is shared too: a stream of
//! messages of one type holds one typename, not one per message.

use crate::address::Address;
use bytes::Bytes;
use eddy_protocol::{BuiltIn, TypedValue};
use std::sync::Arc;

/// A message for a function instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub target: Address,
    /// The sending function, `None` for messages from an ingress.
    pub caller: Option<Address>,
    pub argument: Argument,
}

/// The typed value a message carries: StateFun's `TypedValue`, with the typename in an
/// `Arc<str>` that readers share between the messages of one type (see
/// [`Argument::with_shared_typename`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Argument {
    pub typename: Arc<str>,
    /// `false` for StateFun's "no value" (a null argument).
    pub has_value: bool,
    pub value: Bytes,
}

impl Argument {
    /// An argument with `typename` and `value` (present).
    pub fn new(typename: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Argument {
        Argument {
            typename: typename.into(),
            has_value: true,
            value: value.into(),
        }
    }

    /// An argument whose typename is `last` when that is the same typename (and becomes
    /// `last` otherwise): readers of many values allocate a typename once per change of type.
    pub fn with_shared_typename(
        typename: &str,
        value: impl Into<Bytes>,
        last: &mut Option<Arc<str>>,
    ) -> Argument {
        let typename = match last {
            Some(shared) if **shared == *typename => Arc::clone(shared),
            _ => {
                let shared: Arc<str> = Arc::from(typename);
                *last = Some(Arc::clone(&shared));
                shared
            }
        };
        Argument {
            typename,
            has_value: true,
            value: value.into(),
        }
    }

    /// This argument in the wire format's struct.
    pub fn to_typed_value(&self) -> TypedValue {
        TypedValue {
            typename: self.typename.to_string(),
            has_value: self.has_value,
            value: self.value.clone(),
        }
    }
}

impl From<TypedValue> for Argument {
    fn from(value: TypedValue) -> Argument {
        Argument {
            typename: Arc::from(value.typename),
            has_value: value.has_value,
            value: value.value,
        }
    }
}

impl From<BuiltIn> for Argument {
    fn from(value: BuiltIn) -> Argument {
        Argument::new(value.typename(), value.encode())
    }
}

impl PartialEq<TypedValue> for Argument {
    fn eq(&self, other: &TypedValue) -> bool {
        *self.typename == *other.typename
            && self.has_value == other.has_value
            && self.value == other.value
    }
}

/// A record for an egress, as a function sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressRecord {
    /// The egress id, `namespace/name`.
    pub egress: String,
    pub value: TypedValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_arguments_of_one_type_share_their_typename() {
        let mut last = None;
        let a = Argument::with_shared_typename("com.example/T", vec![1], &mut last);
        let b = Argument::with_shared_typename("com.example/T", vec![2], &mut last);
        assert!(Arc::ptr_eq(&a.typename, &b.typename));
        let c = Argument::with_shared_typename("com.example/U", vec![3], &mut last);
        assert_eq!(&*c.typename, "com.example/U");
        assert_eq!(last.as_deref(), Some("com.example/U"));
    }

    #[test]
    fn arguments_convert_to_and_from_the_wire_struct() {
        let wire = TypedValue {
            typename: "com.example/T".into(),
            has_value: false,
            value: Bytes::new(),
        };
        let argument = Argument::from(wire.clone());
        assert_eq!(argument, wire);
        assert_eq!(argument.to_typed_value(), wire);
        assert_eq!(
            Argument::from(BuiltIn::Long(7)),
            BuiltIn::Long(7).to_typed_value()
        );
    }
}
