//! The messages that flow through the runtime.
//!
//! A [`Message`] is addressed to a function and carries an [`Argument`]; an [`EgressRecord`]
//! leaves the system through an egress. Payload bytes are shared ([`bytes::Bytes`]), so
//! routing and batching never copy them, and an argument's typename is shared too: a stream of
//! messages of one type holds one typename, not one per message. A small value ([`Payload`])
//! lives inside its message, so the common message allocates nothing for its value.

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

/// A message as its target's mailbox holds it: the caller and the argument, without the target
/// (the mailbox's own address), the caller boxed (messages from an ingress have none).
///
/// One cache line: a busy address's queue is written once and read once per message, so the
/// size of its element is memory traffic (and, when producers run ahead of a function, the
/// memory the queued messages take).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub caller: Option<Box<Address>>,
    pub argument: Argument,
}

impl Invocation {
    /// The invocation that `message` asks of its target.
    pub fn of(message: Message) -> Invocation {
        Invocation {
            caller: message.caller.map(Box::new),
            argument: message.argument,
        }
    }

    /// This invocation as a message for `target`.
    pub fn to_message(&self, target: &Address) -> Message {
        Message {
            target: target.clone(),
            caller: self.caller.as_deref().cloned(),
            argument: self.argument.clone(),
        }
    }
}

/// The typed value a message carries: StateFun's `TypedValue`, with the typename in an
/// `Arc<str>` that readers share between the messages of one type (see
/// [`Argument::with_shared_typename`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Argument {
    pub typename: Arc<str>,
    /// `false` for StateFun's "no value" (a null argument).
    pub has_value: bool,
    pub value: Payload,
}

/// The bytes of a value: inline when they are small, else shared [`Bytes`].
///
/// Counters, ids, timestamps and small records fit in [`Payload::INLINE`] bytes; such a value
/// is copied into the message that carries it instead of being allocated (and later freed,
/// often by another thread), and reading it to encode a request touches only the message.
/// A payload is as large as a `Bytes`. It reads as `&[u8]` (`Deref`).
#[derive(Clone)]
pub struct Payload(PayloadRepr);

#[derive(Clone)]
enum PayloadRepr {
    Inline {
        len: u8,
        bytes: [u8; Payload::INLINE],
    },
    Shared(Bytes),
}

impl Payload {
    /// The longest value kept inline, in bytes.
    pub const INLINE: usize = 23;

    /// A payload with a copy of `bytes` (inline when small, else in one allocation).
    pub fn copy_from_slice(bytes: &[u8]) -> Payload {
        Payload::inline(bytes)
            .unwrap_or_else(|| Payload(PayloadRepr::Shared(Bytes::copy_from_slice(bytes))))
    }

    /// `bytes` inline, or `None` when they are longer than [`Payload::INLINE`].
    fn inline(bytes: &[u8]) -> Option<Payload> {
        let mut inline = [0; Payload::INLINE];
        inline.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Payload(PayloadRepr::Inline {
            len: bytes.len() as u8,
            bytes: inline,
        }))
    }

    /// The value's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            PayloadRepr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            PayloadRepr::Shared(bytes) => bytes,
        }
    }

    /// The bytes as a `Bytes` (a copy for an inline payload, a shared handle otherwise).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            PayloadRepr::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            PayloadRepr::Shared(bytes) => bytes.clone(),
        }
    }
}

impl Default for Payload {
    fn default() -> Payload {
        Payload(PayloadRepr::Inline {
            len: 0,
            bytes: [0; Payload::INLINE],
        })
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Bytes> for Payload {
    /// Small values are copied inline (releasing `bytes`, which may pin a larger buffer);
    /// others keep sharing `bytes`.
    fn from(bytes: Bytes) -> Payload {
        Payload::inline(&bytes).unwrap_or(Payload(PayloadRepr::Shared(bytes)))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::inline(&bytes).unwrap_or_else(|| Payload(PayloadRepr::Shared(Bytes::from(bytes))))
    }
}

impl From<&'static [u8]> for Payload {
    fn from(bytes: &'static [u8]) -> Payload {
        Payload::from(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for Payload {
    fn from(text: &'static str) -> Payload {
        Payload::from(text.as_bytes())
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::from(text.into_bytes())
    }
}

impl From<Payload> for Bytes {
    fn from(payload: Payload) -> Bytes {
        match payload.0 {
            PayloadRepr::Inline { .. } => Bytes::copy_from_slice(payload.as_slice()),
            PayloadRepr::Shared(bytes) => bytes,
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Payload {}

impl PartialEq<Bytes> for Payload {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == &other[..]
    }
}

impl PartialEq<[u8]> for Payload {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for Payload {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Payload {
    /// A byte string, as `Bytes` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("b\"")?;
        for &byte in self.as_slice() {
            match byte {
                b'\n' => f.write_str("\\n")?,
                b'\r' => f.write_str("\\r")?,
                b'\t' => f.write_str("\\t")?,
                b'\0' => f.write_str("\\0")?,
                b'\\' | b'"' => write!(f, "\\{}", char::from(byte))?,
                0x20..=0x7e => write!(f, "{}", char::from(byte))?,
                _ => write!(f, "\\x{byte:02x}")?,
            }
        }
        f.write_str("\"")
    }
}

impl Argument {
    /// An argument with `typename` and `value` (present).
    pub fn new(typename: impl Into<Arc<str>>, value: impl Into<Payload>) -> Argument {
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
        value: impl Into<Payload>,
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
            value: self.value.to_bytes(),
        }
    }
}

impl From<TypedValue> for Argument {
    fn from(value: TypedValue) -> Argument {
        Argument {
            typename: Arc::from(value.typename),
            has_value: value.has_value,
            value: Payload::from(value.value),
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
    fn an_invocation_fills_one_cache_line_and_keeps_its_message() {
        assert!(std::mem::size_of::<Invocation>() <= 64);
        let target = Address::parse("com.example/fn/a").expect("address");
        let message = Message {
            target: target.clone(),
            caller: Some(Address::parse("com.example/other/b").expect("address")),
            argument: Argument::new("com.example/T", vec![1, 2]),
        };
        assert_eq!(Invocation::of(message.clone()).to_message(&target), message);
    }

    #[test]
    fn small_payloads_are_inline_and_large_ones_shared() {
        assert_eq!(std::mem::size_of::<Payload>(), std::mem::size_of::<Bytes>());
        let longest = vec![7u8; Payload::INLINE];
        for small in [
            Payload::copy_from_slice(&longest),
            Payload::from(longest.clone()),
            Payload::from(Bytes::from(longest.clone())),
            Payload::default(),
        ] {
            assert!(matches!(small.0, PayloadRepr::Inline { .. }), "{small:?}");
        }
        let large = Bytes::from(vec![8u8; Payload::INLINE + 1]);
        let shared = Payload::from(large.clone());
        let PayloadRepr::Shared(held) = &shared.0 else {
            panic!("{} bytes are not inline", Payload::INLINE + 1)
        };
        assert_eq!(
            held.as_ptr(),
            large.as_ptr(),
            "a large value is shared, not copied"
        );
        assert_eq!(shared.to_bytes().as_ptr(), large.as_ptr());
        assert_eq!(Bytes::from(shared.clone()), large);
        assert!(matches!(
            Payload::copy_from_slice(&large).0,
            PayloadRepr::Shared(_)
        ));
    }

    proptest::proptest! {
        #[test]
        fn payloads_read_as_their_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let shared = Bytes::from(bytes.clone());
            for payload in [
                Payload::copy_from_slice(&bytes),
                Payload::from(bytes.clone()),
                Payload::from(shared.clone()),
            ] {
                proptest::prop_assert_eq!(&payload[..], &bytes[..]);
                proptest::prop_assert_eq!(payload.len(), bytes.len());
                proptest::prop_assert_eq!(payload.to_bytes(), shared.clone());
                proptest::prop_assert!(payload == shared && payload == bytes);
                proptest::prop_assert_eq!(format!("{payload:?}"), format!("{shared:?}"));
                proptest::prop_assert_eq!(Bytes::from(payload), shared.clone());
            }
        }
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
