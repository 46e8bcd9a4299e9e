//! Value types: how a Rust value becomes a typed value on the wire and back.
//!
//! Every value that crosses the protocol (a message, a state value, an egress record) is a
//! typename plus bytes. A [`Type`] knows its typename and how to turn its Rust value into those
//! bytes and back. The SDK ships:
//!
//! - StateFun's built-in types [`BoolType`], [`IntType`] (`i32`), [`LongType`] (`i64`),
//!   [`FloatType`], [`DoubleType`] and [`StringType`], with StateFun's exact encodings (a
//!   wrapper message with the value in field 1; zero values encode as empty bytes);
//! - [`JsonType`]: any serde type as UTF-8 JSON under a typename of your choice;
//! - [`ProtobufType`]: any prost message under `type.googleapis.com/<full name>`.
//!
//! A user-defined type is any other implementation of [`Type`]:
//!
//! ```
//! use eddy_sdk::{Error, Type};
//!
//! /// A point as "x,y" text.
//! struct PointType;
//!
//! impl Type for PointType {
//!     type Value = (i32, i32);
//!     fn typename(&self) -> &str {
//!         "com.example/point"
//!     }
//!     fn serialize(&self, (x, y): &(i32, i32)) -> Result<bytes::Bytes, Error> {
//!         Ok(format!("{x},{y}").into())
//!     }
//!     fn deserialize(&self, bytes: &[u8]) -> Result<(i32, i32), Error> {
//!         let bad = |reason: &str| Error::Deserialize {
//!             typename: self.typename().into(),
//!             reason: reason.into(),
//!         };
//!         let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
//!         let (x, y) = text.split_once(',').ok_or_else(|| bad("expected x,y"))?;
//!         Ok((x.parse().map_err(|_| bad("bad x"))?, y.parse().map_err(|_| bad("bad y"))?))
//!     }
//! }
//! ```

use crate::Error;
use bytes::{Bytes, BytesMut};
use eddy_protocol::typed;
use eddy_protocol::types::{
    BooleanWrapper, DoubleWrapper, FloatWrapper, IntWrapper, LongWrapper, StringWrapper,
};
use eddy_protocol::TypedValue;
use prost::Message as _;
use std::borrow::Cow;
use std::marker::PhantomData;

/// A value type: a typename and the encoding of its values.
pub trait Type: Send + Sync {
    /// The Rust value of this type.
    type Value;

    /// The typename, e.g. `io.statefun.types/long` or `com.example/user`.
    fn typename(&self) -> &str;

    /// The wire bytes of `value`.
    fn serialize(&self, value: &Self::Value) -> Result<Bytes, Error>;

    /// Reads a value from its wire bytes.
    fn deserialize(&self, bytes: &[u8]) -> Result<Self::Value, Error>;
}

/// `value` as a [`TypedValue`] of type `ty` (with `has_value` set).
pub fn to_typed_value<T: Type + ?Sized>(ty: &T, value: &T::Value) -> Result<TypedValue, Error> {
    Ok(TypedValue {
        typename: ty.typename().to_string(),
        has_value: true,
        value: ty.serialize(value)?,
    })
}

/// Reads a [`TypedValue`] as type `ty`: `None` when it carries no value, an error naming
/// `what` when its typename is not `ty`'s.
pub fn from_typed_value<T: Type + ?Sized>(
    ty: &T,
    value: &TypedValue,
    what: &str,
) -> Result<Option<T::Value>, Error> {
    if !value.has_value {
        return Ok(None);
    }
    if value.typename != ty.typename() {
        return Err(Error::TypeMismatch {
            what: what.to_string(),
            expected: ty.typename().to_string(),
            actual: value.typename.clone(),
        });
    }
    ty.deserialize(&value.value).map(Some)
}

fn decode_error(typename: &str, error: prost::DecodeError) -> Error {
    Error::Deserialize {
        typename: typename.to_string(),
        reason: error.to_string(),
    }
}

macro_rules! builtin {
    ($(#[$doc:meta])* $name:ident, $value:ty, $typename:expr, $wrapper:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Type for $name {
            type Value = $value;

            fn typename(&self) -> &str {
                $typename
            }

            fn serialize(&self, value: &$value) -> Result<Bytes, Error> {
                Ok(Bytes::from($wrapper { value: *value }.encode_to_vec()))
            }

            fn deserialize(&self, bytes: &[u8]) -> Result<$value, Error> {
                $wrapper::decode(bytes)
                    .map(|wrapper| wrapper.value)
                    .map_err(|e| decode_error($typename, e))
            }
        }
    };
}

builtin!(
    /// `io.statefun.types/bool`: `false` encodes as empty bytes.
    BoolType, bool, typed::BOOL, BooleanWrapper
);
builtin!(
    /// `io.statefun.types/int`: an `i32` (sfixed32); `0` encodes as empty bytes.
    IntType, i32, typed::INT, IntWrapper
);
builtin!(
    /// `io.statefun.types/long`: an `i64` (sfixed64); `0` encodes as empty bytes.
    LongType, i64, typed::LONG, LongWrapper
);
builtin!(
    /// `io.statefun.types/float`: an `f32`; `0.0` encodes as empty bytes.
    FloatType, f32, typed::FLOAT, FloatWrapper
);
builtin!(
    /// `io.statefun.types/double`: an `f64`; `0.0` encodes as empty bytes.
    DoubleType, f64, typed::DOUBLE, DoubleWrapper
);

/// `io.statefun.types/string`: a UTF-8 string; `""` encodes as empty bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StringType;

impl Type for StringType {
    type Value = String;

    fn typename(&self) -> &str {
        typed::STRING
    }

    fn serialize(&self, value: &String) -> Result<Bytes, Error> {
        Ok(encode_string(value))
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<String, Error> {
        StringWrapper::decode(bytes)
            .map(|wrapper| wrapper.value)
            .map_err(|e| decode_error(typed::STRING, e))
    }
}

/// The `io.statefun.types/string` bytes of `value`, without copying it into a wrapper first.
pub(crate) fn encode_string(value: &str) -> Bytes {
    if value.is_empty() {
        return Bytes::new();
    }
    // Field 1, wire type 2 (length-delimited): the same bytes as StringWrapper's encoding.
    let len = value.len() as u64;
    let mut buf =
        BytesMut::with_capacity(1 + prost::encoding::encoded_len_varint(len) + value.len());
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut buf);
    prost::encoding::encode_varint(len, &mut buf);
    buf.extend_from_slice(value.as_bytes());
    buf.freeze()
}

/// Any serde type as UTF-8 JSON under the typename of your choice (StateFun's
/// `make_json_type`).
///
/// ```
/// use eddy_sdk::{JsonType, Type};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String }
///
/// const USER: JsonType<User> = JsonType::new("com.example/user");
/// let bytes = USER.serialize(&User { name: "alice".into() }).unwrap();
/// assert_eq!(&bytes[..], br#"{"name":"alice"}"#);
/// ```
pub struct JsonType<T> {
    typename: Cow<'static, str>,
    value: PhantomData<fn() -> T>,
}

impl<T> JsonType<T> {
    /// A JSON type named `typename` (`namespace/name`), usable in a `const`.
    pub const fn new(typename: &'static str) -> JsonType<T> {
        JsonType {
            typename: Cow::Borrowed(typename),
            value: PhantomData,
        }
    }

    /// A JSON type with a typename built at run time.
    pub fn named(typename: impl Into<String>) -> JsonType<T> {
        JsonType {
            typename: Cow::Owned(typename.into()),
            value: PhantomData,
        }
    }
}

impl<T> Clone for JsonType<T> {
    fn clone(&self) -> Self {
        JsonType {
            typename: self.typename.clone(),
            value: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for JsonType<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JsonType").field(&self.typename).finish()
    }
}

impl<T> Type for JsonType<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    type Value = T;

    fn typename(&self) -> &str {
        &self.typename
    }

    fn serialize(&self, value: &T) -> Result<Bytes, Error> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| Error::Serialize {
                typename: self.typename.to_string(),
                reason: e.to_string(),
            })
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Deserialize {
            typename: self.typename.to_string(),
            reason: e.to_string(),
        })
    }
}

/// A prost message under the typename `type.googleapis.com/<full name>` (StateFun's
/// `make_protobuf_type`).
pub struct ProtobufType<M> {
    typename: String,
    value: PhantomData<fn() -> M>,
}

impl<M: prost::Name> ProtobufType<M> {
    /// The type of message `M`, named after its protobuf full name.
    pub fn new() -> ProtobufType<M> {
        ProtobufType::with_full_name(&M::full_name())
    }
}

impl<M: prost::Name> Default for ProtobufType<M> {
    fn default() -> Self {
        ProtobufType::new()
    }
}

impl<M> ProtobufType<M> {
    /// The type of a message whose prost type does not implement [`prost::Name`]: give its
    /// full name, e.g. `com.example.User`.
    pub fn with_full_name(full_name: &str) -> ProtobufType<M> {
        ProtobufType {
            typename: format!("{}{full_name}", typed::PROTOBUF_PREFIX),
            value: PhantomData,
        }
    }
}

impl<M> Clone for ProtobufType<M> {
    fn clone(&self) -> Self {
        ProtobufType {
            typename: self.typename.clone(),
            value: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for ProtobufType<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProtobufType").field(&self.typename).finish()
    }
}

impl<M> Type for ProtobufType<M>
where
    M: prost::Message + Default,
{
    type Value = M;

    fn typename(&self) -> &str {
        &self.typename
    }

    fn serialize(&self, value: &M) -> Result<Bytes, Error> {
        Ok(Bytes::from(value.encode_to_vec()))
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<M, Error> {
        M::decode(bytes).map_err(|e| decode_error(&self.typename, e))
    }
}

/// Raw bytes under any typename: for values the function passes on without reading.
#[derive(Debug, Clone)]
pub struct RawType {
    typename: Cow<'static, str>,
}

impl RawType {
    /// Raw bytes named `typename`, usable in a `const`.
    pub const fn new(typename: &'static str) -> RawType {
        RawType {
            typename: Cow::Borrowed(typename),
        }
    }

    /// Raw bytes with a typename built at run time.
    pub fn named(typename: impl Into<String>) -> RawType {
        RawType {
            typename: Cow::Owned(typename.into()),
        }
    }
}

impl Type for RawType {
    type Value = Bytes;

    fn typename(&self) -> &str {
        &self.typename
    }

    fn serialize(&self, value: &Bytes) -> Result<Bytes, Error> {
        Ok(value.clone())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Bytes, Error> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_protocol::BuiltIn;
    use proptest::prelude::*;

    #[test]
    fn zero_values_encode_as_empty_bytes() {
        assert!(BoolType.serialize(&false).unwrap().is_empty());
        assert!(IntType.serialize(&0).unwrap().is_empty());
        assert!(LongType.serialize(&0).unwrap().is_empty());
        assert!(FloatType.serialize(&0.0).unwrap().is_empty());
        assert!(DoubleType.serialize(&0.0).unwrap().is_empty());
        assert!(StringType.serialize(&String::new()).unwrap().is_empty());
        assert_eq!(LongType.deserialize(&[]).unwrap(), 0);
        assert_eq!(StringType.deserialize(&[]).unwrap(), "");
    }

    #[test]
    fn typenames_are_statefuns() {
        assert_eq!(BoolType.typename(), "io.statefun.types/bool");
        assert_eq!(IntType.typename(), "io.statefun.types/int");
        assert_eq!(LongType.typename(), "io.statefun.types/long");
        assert_eq!(FloatType.typename(), "io.statefun.types/float");
        assert_eq!(DoubleType.typename(), "io.statefun.types/double");
        assert_eq!(StringType.typename(), "io.statefun.types/string");
    }

    #[test]
    fn garbage_is_a_deserialize_error_naming_the_type() {
        let error = LongType.deserialize(&[0x09, 1]).unwrap_err();
        assert!(
            error.to_string().contains("io.statefun.types/long"),
            "{error}"
        );
        let json: JsonType<Vec<u32>> = JsonType::new("com.example/list");
        let error = json.deserialize(b"{").unwrap_err();
        assert!(error.to_string().contains("com.example/list"), "{error}");
    }

    #[test]
    fn typed_values_check_the_typename() {
        let value = to_typed_value(&LongType, &7).unwrap();
        assert_eq!(from_typed_value(&LongType, &value, "x").unwrap(), Some(7));
        let error = from_typed_value(&IntType, &value, "state value \"n\"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "state value \"n\": expected a value of type io.statefun.types/int, got io.statefun.types/long"
        );
        let absent = TypedValue {
            typename: "io.statefun.types/int".into(),
            has_value: false,
            value: Bytes::new(),
        };
        assert_eq!(from_typed_value(&IntType, &absent, "x").unwrap(), None);
    }

    #[test]
    fn protobuf_types_are_named_after_the_message() {
        let ty: ProtobufType<eddy_protocol::egress::KafkaProducerRecord> =
            ProtobufType::with_full_name("io.statefun.sdk.egress.KafkaProducerRecord");
        assert_eq!(ty.typename(), typed::KAFKA_PRODUCER_RECORD);
        let record = eddy_protocol::egress::KafkaProducerRecord {
            key: "k".into(),
            value_bytes: Bytes::from_static(b"v"),
            topic: "t".into(),
        };
        assert_eq!(
            ty.deserialize(&ty.serialize(&record).unwrap()).unwrap(),
            record
        );
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Point {
        #[prost(int32, tag = "1")]
        x: i32,
        #[prost(string, tag = "2")]
        label: String,
    }

    impl prost::Name for Point {
        const NAME: &'static str = "Point";
        const PACKAGE: &'static str = "com.example.geo";
    }

    #[test]
    fn protobuf_types_take_the_full_name_from_prost() {
        let ty: ProtobufType<Point> = ProtobufType::new();
        assert_eq!(ty.typename(), "type.googleapis.com/com.example.geo.Point");
        let point = Point {
            x: -3,
            label: "p".into(),
        };
        let bytes = ty.serialize(&point).unwrap();
        assert_eq!(&bytes[..], &point.encode_to_vec()[..]);
        assert_eq!(ty.deserialize(&bytes).unwrap(), point);
        assert!(ty.deserialize(&[0xff]).is_err());
    }

    proptest! {
        #[test]
        fn builtins_encode_as_the_protocol_crate_does(
            b in any::<bool>(), i in any::<i32>(), l in any::<i64>(),
            f in any::<f32>(), d in any::<f64>(), s in ".*",
        ) {
            prop_assert_eq!(BoolType.serialize(&b).unwrap(), BuiltIn::Bool(b).encode());
            prop_assert_eq!(IntType.serialize(&i).unwrap(), BuiltIn::Int(i).encode());
            prop_assert_eq!(LongType.serialize(&l).unwrap(), BuiltIn::Long(l).encode());
            prop_assert_eq!(FloatType.serialize(&f).unwrap(), BuiltIn::Float(f).encode());
            prop_assert_eq!(DoubleType.serialize(&d).unwrap(), BuiltIn::Double(d).encode());
            prop_assert_eq!(StringType.serialize(&s).unwrap(), BuiltIn::String(s.clone()).encode());
        }

        #[test]
        fn builtins_round_trip(
            b in any::<bool>(), i in any::<i32>(), l in any::<i64>(),
            f in any::<f32>(), d in any::<f64>(), s in ".*",
        ) {
            prop_assert_eq!(BoolType.deserialize(&BoolType.serialize(&b).unwrap()).unwrap(), b);
            prop_assert_eq!(IntType.deserialize(&IntType.serialize(&i).unwrap()).unwrap(), i);
            prop_assert_eq!(LongType.deserialize(&LongType.serialize(&l).unwrap()).unwrap(), l);
            let f2 = FloatType.deserialize(&FloatType.serialize(&f).unwrap()).unwrap();
            prop_assert!(f2.to_bits() == f.to_bits() || (f == 0.0 && f2 == 0.0));
            let d2 = DoubleType.deserialize(&DoubleType.serialize(&d).unwrap()).unwrap();
            prop_assert!(d2.to_bits() == d.to_bits() || (d == 0.0 && d2 == 0.0));
            prop_assert_eq!(StringType.deserialize(&StringType.serialize(&s).unwrap()).unwrap(), s);
        }

        #[test]
        fn json_values_round_trip(values in proptest::collection::vec(any::<i64>(), 0..8), name in ".*") {
            let ty: JsonType<(Vec<i64>, String)> = JsonType::new("com.example/pair");
            let value = (values, name);
            prop_assert_eq!(ty.deserialize(&ty.serialize(&value).unwrap()).unwrap(), value);
        }
    }
}
