//! Typed values of StateFun's built-in types.
//!
//! A [`TypedValue`] carries a typename and bytes. For the built-in types
//! (`io.statefun.types/{bool,int,long,float,double,string}`) the bytes are a wrapper message
//! with the value in field 1; a zero value encodes as empty bytes. [`BuiltIn`] converts between
//! Rust values and those encodings, so the runtime (ingress, egress, CLI) and the SDKs agree.

use crate::reqreply::TypedValue;
use crate::types::{
    BooleanWrapper, DoubleWrapper, FloatWrapper, IntWrapper, LongWrapper, StringWrapper,
};
use bytes::Bytes;
use prost::Message;

/// Typename of `io.statefun.types/bool`.
pub const BOOL: &str = "io.statefun.types/bool";
/// Typename of `io.statefun.types/int` (sfixed32).
pub const INT: &str = "io.statefun.types/int";
/// Typename of `io.statefun.types/long` (sfixed64).
pub const LONG: &str = "io.statefun.types/long";
/// Typename of `io.statefun.types/float`.
pub const FLOAT: &str = "io.statefun.types/float";
/// Typename of `io.statefun.types/double`.
pub const DOUBLE: &str = "io.statefun.types/double";
/// Typename of `io.statefun.types/string`.
pub const STRING: &str = "io.statefun.types/string";
/// Typename prefix of protobuf messages.
pub const PROTOBUF_PREFIX: &str = "type.googleapis.com/";
/// Typename of a Kafka egress record.
pub const KAFKA_PRODUCER_RECORD: &str =
    "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord";
/// Typename of a Kinesis egress record.
pub const KINESIS_EGRESS_RECORD: &str =
    "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord";

/// Errors of this crate: a value that does not decode as its typename says.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The typename is not one of the built-in types.
    #[error("typename {0:?} is not a built-in type (expected io.statefun.types/{{bool,int,long,float,double,string}})")]
    NotBuiltIn(String),
    /// The bytes are not a valid encoding of the typename.
    #[error("value of type {typename} does not decode: {source}")]
    Decode {
        typename: String,
        #[source]
        source: prost::DecodeError,
    },
    /// A typed value was expected but the typename differs.
    #[error("expected a value of type {expected}, got {actual}")]
    TypeMismatch { expected: String, actual: String },
}

/// A value of one of StateFun's built-in types.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltIn {
    Bool(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    String(String),
}

impl BuiltIn {
    /// The typename of this value.
    pub fn typename(&self) -> &'static str {
        match self {
            BuiltIn::Bool(_) => BOOL,
            BuiltIn::Int(_) => INT,
            BuiltIn::Long(_) => LONG,
            BuiltIn::Float(_) => FLOAT,
            BuiltIn::Double(_) => DOUBLE,
            BuiltIn::String(_) => STRING,
        }
    }

    /// True if `typename` names a built-in type.
    pub fn is_builtin(typename: &str) -> bool {
        matches!(typename, BOOL | INT | LONG | FLOAT | DOUBLE | STRING)
    }

    /// The wire bytes of this value (empty for a zero value).
    pub fn encode(&self) -> Bytes {
        let bytes = match self {
            BuiltIn::Bool(value) => BooleanWrapper { value: *value }.encode_to_vec(),
            BuiltIn::Int(value) => IntWrapper { value: *value }.encode_to_vec(),
            BuiltIn::Long(value) => LongWrapper { value: *value }.encode_to_vec(),
            BuiltIn::Float(value) => FloatWrapper { value: *value }.encode_to_vec(),
            BuiltIn::Double(value) => DoubleWrapper { value: *value }.encode_to_vec(),
            BuiltIn::String(value) => StringWrapper {
                value: value.clone(),
            }
            .encode_to_vec(),
        };
        Bytes::from(bytes)
    }

    /// Decodes `bytes` as the built-in type named by `typename`.
    pub fn decode(typename: &str, bytes: &[u8]) -> Result<BuiltIn, Error> {
        let wrap = |source| Error::Decode {
            typename: typename.to_string(),
            source,
        };
        Ok(match typename {
            BOOL => BuiltIn::Bool(BooleanWrapper::decode(bytes).map_err(wrap)?.value),
            INT => BuiltIn::Int(IntWrapper::decode(bytes).map_err(wrap)?.value),
            LONG => BuiltIn::Long(LongWrapper::decode(bytes).map_err(wrap)?.value),
            FLOAT => BuiltIn::Float(FloatWrapper::decode(bytes).map_err(wrap)?.value),
            DOUBLE => BuiltIn::Double(DoubleWrapper::decode(bytes).map_err(wrap)?.value),
            STRING => BuiltIn::String(StringWrapper::decode(bytes).map_err(wrap)?.value),
            other => return Err(Error::NotBuiltIn(other.to_string())),
        })
    }

    /// This value as a [`TypedValue`] with `has_value` set.
    pub fn to_typed_value(&self) -> TypedValue {
        TypedValue {
            typename: self.typename().to_string(),
            has_value: true,
            value: self.encode(),
        }
    }

    /// Reads a built-in value from a [`TypedValue`].
    pub fn from_typed_value(value: &TypedValue) -> Result<BuiltIn, Error> {
        BuiltIn::decode(&value.typename, &value.value)
    }
}

impl TypedValue {
    /// A typed value with the given typename and bytes.
    pub fn new(typename: impl Into<String>, value: impl Into<Bytes>) -> TypedValue {
        TypedValue {
            typename: typename.into(),
            has_value: true,
            value: value.into(),
        }
    }
}

impl From<BuiltIn> for TypedValue {
    fn from(value: BuiltIn) -> TypedValue {
        value.to_typed_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_encode_as_empty_bytes() {
        for value in [
            BuiltIn::Bool(false),
            BuiltIn::Int(0),
            BuiltIn::Long(0),
            BuiltIn::Float(0.0),
            BuiltIn::Double(0.0),
            BuiltIn::String(String::new()),
        ] {
            assert!(value.encode().is_empty(), "{value:?}");
            assert_eq!(BuiltIn::decode(value.typename(), &[]).ok(), Some(value));
        }
    }

    #[test]
    fn int_and_long_are_fixed_width() {
        // field 1, wire type 5 (fixed32) then 4 little-endian bytes.
        assert_eq!(
            &BuiltIn::Int(-1).encode()[..],
            &[0x0d, 0xff, 0xff, 0xff, 0xff]
        );
        // field 1, wire type 1 (fixed64) then 8 little-endian bytes.
        assert_eq!(
            &BuiltIn::Long(1).encode()[..],
            &[0x09, 1, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn round_trips() {
        for value in [
            BuiltIn::Bool(true),
            BuiltIn::Int(i32::MIN),
            BuiltIn::Long(i64::MAX),
            BuiltIn::Float(1.5),
            BuiltIn::Double(-2.25),
            BuiltIn::String("héllo".into()),
        ] {
            let typed = value.to_typed_value();
            assert_eq!(BuiltIn::from_typed_value(&typed).ok(), Some(value));
        }
    }

    #[test]
    fn unknown_typename_is_an_error() {
        assert!(matches!(
            BuiltIn::decode("com.example/thing", b""),
            Err(Error::NotBuiltIn(_))
        ));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            BuiltIn::decode(LONG, &[0x09, 1]),
            Err(Error::Decode { .. })
        ));
    }
}
