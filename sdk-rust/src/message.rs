//! Messages: the one a handler receives ([`Message`]) and the ones it sends
//! ([`OutgoingMessage`]).
//!
//! A message carries a typed value. Typed accessors check the typename first and fail with an
//! error naming both typenames on a mismatch, so a function never misreads bytes of another
//! type.

use crate::address::Address;
use crate::types::{
    encode_string, BoolType, DoubleType, FloatType, IntType, LongType, StringType, Type,
};
use crate::Error;
use bytes::Bytes;
use eddy_protocol::{typed, TypedValue};

/// Reads `value` as `ty`, requiring a value and the same typename; `what` names it in errors.
pub(crate) fn read_value<T: Type + ?Sized>(
    ty: &T,
    value: &TypedValue,
    what: &str,
) -> Result<T::Value, Error> {
    if value.typename != ty.typename() {
        return Err(Error::TypeMismatch {
            what: what.to_string(),
            expected: ty.typename().to_string(),
            actual: value.typename.clone(),
        });
    }
    if !value.has_value {
        return Err(Error::MissingValue {
            what: what.to_string(),
            typename: value.typename.clone(),
        });
    }
    ty.deserialize(&value.value)
}

/// A built-in typed value (infallible: the built-in encodings cannot fail).
pub(crate) fn builtin_value<T: Type>(ty: &T, value: &T::Value) -> TypedValue {
    TypedValue {
        typename: ty.typename().to_string(),
        has_value: true,
        value: ty.serialize(value).unwrap_or_default(),
    }
}

/// The message a handler is invoked with.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    argument: TypedValue,
}

macro_rules! builtin_accessors {
    ($($(#[$doc:meta])* $is:ident, $as:ident, $ty:ident, $value:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $as(&self) -> Result<$value, Error> {
                self.as_type(&$ty)
            }

            /// True if the message's typename is this built-in type's.
            pub fn $is(&self) -> bool {
                self.is(&$ty)
            }
        )*
    };
}

impl Message {
    /// A message carrying `argument`.
    pub fn new(argument: TypedValue) -> Message {
        Message { argument }
    }

    /// The typename of the value, e.g. `io.statefun.types/string`.
    pub fn typename(&self) -> &str {
        &self.argument.typename
    }

    /// True if the value is of type `ty`.
    pub fn is<T: Type + ?Sized>(&self, ty: &T) -> bool {
        self.argument.typename == ty.typename()
    }

    /// The value as type `ty`; an error if the typename differs, the message carries no value
    /// or the bytes do not decode.
    pub fn as_type<T: Type + ?Sized>(&self, ty: &T) -> Result<T::Value, Error> {
        read_value(ty, &self.argument, "message")
    }

    builtin_accessors! {
        /// The value as an `io.statefun.types/string`.
        is_string, as_string, StringType, String;
        /// The value as an `io.statefun.types/long`.
        is_long, as_long, LongType, i64;
        /// The value as an `io.statefun.types/int`.
        is_int, as_int, IntType, i32;
        /// The value as an `io.statefun.types/bool`.
        is_bool, as_bool, BoolType, bool;
        /// The value as an `io.statefun.types/float`.
        is_float, as_float, FloatType, f32;
        /// The value as an `io.statefun.types/double`.
        is_double, as_double, DoubleType, f64;
    }

    /// The raw bytes, `None` if the message carries no value.
    pub fn raw_value(&self) -> Option<&Bytes> {
        self.argument.has_value.then_some(&self.argument.value)
    }

    /// The typed value as received.
    pub fn typed_value(&self) -> &TypedValue {
        &self.argument
    }

    /// The typed value, moved out.
    pub fn into_typed_value(self) -> TypedValue {
        self.argument
    }
}

/// A message to another function (or to this one), to give to
/// [`Context::send`](crate::Context::send) or [`Context::send_after`](crate::Context::send_after).
///
/// ```
/// use eddy_sdk::{Address, OutgoingMessage};
/// # fn main() -> Result<(), eddy_sdk::Error> {
/// let to_bob = Address::new("com.example/greeter", "bob")?;
/// let hello = OutgoingMessage::string(to_bob, "hello");
/// assert_eq!(hello.typename(), "io.statefun.types/string");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    target: Address,
    argument: TypedValue,
}

impl OutgoingMessage {
    /// A message to `target` carrying `value` of type `ty`.
    pub fn new<T: Type + ?Sized>(
        target: Address,
        ty: &T,
        value: &T::Value,
    ) -> Result<OutgoingMessage, Error> {
        Ok(OutgoingMessage {
            target,
            argument: crate::types::to_typed_value(ty, value)?,
        })
    }

    /// A message to `target` carrying an already typed value.
    pub fn from_typed_value(target: Address, argument: TypedValue) -> OutgoingMessage {
        OutgoingMessage { target, argument }
    }

    /// A message carrying an `io.statefun.types/string`.
    pub fn string(target: Address, value: impl AsRef<str>) -> OutgoingMessage {
        OutgoingMessage {
            target,
            argument: TypedValue {
                typename: typed::STRING.to_string(),
                has_value: true,
                value: encode_string(value.as_ref()),
            },
        }
    }

    /// A message carrying an `io.statefun.types/long`.
    pub fn long(target: Address, value: i64) -> OutgoingMessage {
        OutgoingMessage::builtin(target, &LongType, &value)
    }

    /// A message carrying an `io.statefun.types/int`.
    pub fn int(target: Address, value: i32) -> OutgoingMessage {
        OutgoingMessage::builtin(target, &IntType, &value)
    }

    /// A message carrying an `io.statefun.types/bool`.
    pub fn bool(target: Address, value: bool) -> OutgoingMessage {
        OutgoingMessage::builtin(target, &BoolType, &value)
    }

    /// A message carrying an `io.statefun.types/float`.
    pub fn float(target: Address, value: f32) -> OutgoingMessage {
        OutgoingMessage::builtin(target, &FloatType, &value)
    }

    /// A message carrying an `io.statefun.types/double`.
    pub fn double(target: Address, value: f64) -> OutgoingMessage {
        OutgoingMessage::builtin(target, &DoubleType, &value)
    }

    fn builtin<T: Type>(target: Address, ty: &T, value: &T::Value) -> OutgoingMessage {
        OutgoingMessage {
            target,
            argument: builtin_value(ty, value),
        }
    }

    /// The target address.
    pub fn target(&self) -> &Address {
        &self.target
    }

    /// The typename of the value.
    pub fn typename(&self) -> &str {
        &self.argument.typename
    }

    /// The value as type `ty` (for tests: see [`testkit`](crate::testkit)).
    pub fn value<T: Type + ?Sized>(&self, ty: &T) -> Result<T::Value, Error> {
        read_value(ty, &self.argument, "outgoing message")
    }

    /// The typed value.
    pub fn typed_value(&self) -> &TypedValue {
        &self.argument
    }

    pub(crate) fn into_parts(self) -> (Address, TypedValue) {
        (self.target, self.argument)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JsonType;

    #[test]
    fn typed_accessors_read_their_type() {
        let message = Message::new(builtin_value(&LongType, &-5));
        assert!(message.is_long());
        assert!(!message.is_string());
        assert_eq!(message.as_long().unwrap(), -5);
        assert_eq!(message.typename(), "io.statefun.types/long");
    }

    #[test]
    fn a_typename_mismatch_names_both_types() {
        let message = Message::new(builtin_value(&LongType, &1));
        let error = message.as_string().unwrap_err();
        assert_eq!(
            error.to_string(),
            "message: expected a value of type io.statefun.types/string, got io.statefun.types/long"
        );
        let json: JsonType<serde_json::Value> = JsonType::new("com.example/user");
        assert!(matches!(
            message.as_type(&json),
            Err(Error::TypeMismatch { .. })
        ));
    }

    #[test]
    fn a_message_without_value_is_an_error_not_a_zero() {
        let message = Message::new(TypedValue {
            typename: typed::INT.into(),
            has_value: false,
            value: Bytes::new(),
        });
        assert!(matches!(message.as_int(), Err(Error::MissingValue { .. })));
        assert_eq!(message.raw_value(), None);
    }

    #[test]
    fn present_zero_values_read_as_zero() {
        let message = Message::new(TypedValue::new(typed::INT, Bytes::new()));
        assert_eq!(message.as_int().unwrap(), 0);
    }

    #[test]
    fn outgoing_builtins_match_the_typed_builders() {
        let to = Address::new("a/b", "c").unwrap();
        assert_eq!(
            OutgoingMessage::string(to.clone(), "hi"),
            OutgoingMessage::new(to.clone(), &StringType, &"hi".to_string()).unwrap()
        );
        assert_eq!(
            OutgoingMessage::long(to.clone(), 3)
                .value(&LongType)
                .unwrap(),
            3
        );
        assert_eq!(OutgoingMessage::bool(to, true).typename(), typed::BOOL);
    }
}
