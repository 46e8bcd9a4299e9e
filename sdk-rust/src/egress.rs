//! Egress records: what a function writes to the outside world through
//! [`Context::send_egress`](crate::Context::send_egress).
//!
//! An [`EgressMessage`] names an egress declared in `module.yaml` (`namespace/name`) and carries
//! a typed value. Generic egresses take any typed value; Kafka and Kinesis egresses take the
//! records built by [`KafkaRecord`] and [`KinesisRecord`] (typenames
//! `type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord` /
//! `...KinesisEgressRecord`, as with Apache's SDKs).
//!
//! ```
//! use eddy_sdk::{EgressMessage, KafkaRecord, KinesisRecord, StringType};
//! # fn main() -> Result<(), eddy_sdk::Error> {
//! let generic = EgressMessage::string("com.example/out", "hello")?;
//! let kafka = KafkaRecord::new("com.example/kafka", "greetings")
//!     .key("alice")
//!     .value_bytes("hello")
//!     .build()?;
//! let kinesis = KinesisRecord::new("com.example/kinesis", "greetings", "alice")
//!     .value(&StringType, &"hello".to_string())?
//!     .build()?;
//! # let _ = (generic, kafka, kinesis);
//! # Ok(()) }
//! ```

use crate::address::split_typename;
use crate::message::read_value;
use crate::types::{encode_string, Type};
use crate::Error;
use bytes::Bytes;
use eddy_protocol::egress::{KafkaProducerRecord, KinesisEgressRecord};
use eddy_protocol::{typed, TypedValue};
use prost::Message as _;

/// A record for an egress.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressMessage {
    namespace: String,
    name: String,
    argument: TypedValue,
}

impl EgressMessage {
    /// A record for egress `egress` (`namespace/name`) carrying `value` of type `ty`.
    pub fn new<T: Type + ?Sized>(
        egress: &str,
        ty: &T,
        value: &T::Value,
    ) -> Result<EgressMessage, Error> {
        EgressMessage::from_typed_value(egress, crate::types::to_typed_value(ty, value)?)
    }

    /// A record carrying an `io.statefun.types/string`.
    pub fn string(egress: &str, value: impl AsRef<str>) -> Result<EgressMessage, Error> {
        EgressMessage::from_typed_value(
            egress,
            TypedValue {
                typename: typed::STRING.to_string(),
                has_value: true,
                value: encode_string(value.as_ref()),
            },
        )
    }

    /// A record carrying an already typed value.
    pub fn from_typed_value(egress: &str, argument: TypedValue) -> Result<EgressMessage, Error> {
        let (namespace, name) = split_typename("egress", egress)?;
        Ok(EgressMessage {
            namespace: namespace.to_string(),
            name: name.to_string(),
            argument,
        })
    }

    /// The egress, `namespace/name`.
    pub fn egress(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The typename of the record.
    pub fn typename(&self) -> &str {
        &self.argument.typename
    }

    /// The record as type `ty` (for tests: see [`testkit`](crate::testkit)).
    pub fn value<T: Type + ?Sized>(&self, ty: &T) -> Result<T::Value, Error> {
        read_value(ty, &self.argument, "egress record")
    }

    /// The record as a Kafka record (an error if it is not one).
    pub fn kafka_record(&self) -> Result<KafkaProducerRecord, Error> {
        let bytes = read_value(
            &crate::types::RawType::new(typed::KAFKA_PRODUCER_RECORD),
            &self.argument,
            "egress record",
        )?;
        KafkaProducerRecord::decode(bytes).map_err(|e| Error::Deserialize {
            typename: typed::KAFKA_PRODUCER_RECORD.to_string(),
            reason: e.to_string(),
        })
    }

    /// The record as a Kinesis record (an error if it is not one).
    pub fn kinesis_record(&self) -> Result<KinesisEgressRecord, Error> {
        let bytes = read_value(
            &crate::types::RawType::new(typed::KINESIS_EGRESS_RECORD),
            &self.argument,
            "egress record",
        )?;
        KinesisEgressRecord::decode(bytes).map_err(|e| Error::Deserialize {
            typename: typed::KINESIS_EGRESS_RECORD.to_string(),
            reason: e.to_string(),
        })
    }

    /// The typed value.
    pub fn typed_value(&self) -> &TypedValue {
        &self.argument
    }

    pub(crate) fn into_protocol(self) -> eddy_protocol::reqreply::from_function::EgressMessage {
        eddy_protocol::reqreply::from_function::EgressMessage {
            egress_namespace: self.namespace,
            egress_type: self.name,
            argument: Some(self.argument),
        }
    }
}

/// Builds a record for a Kafka egress: topic, optional key, value bytes.
#[derive(Debug, Clone)]
#[must_use = "call build() and give the record to Context::send_egress"]
pub struct KafkaRecord {
    egress: String,
    record: KafkaProducerRecord,
}

impl KafkaRecord {
    /// A record for Kafka egress `egress` (`namespace/name`) to `topic`, with an empty value.
    pub fn new(egress: impl Into<String>, topic: impl Into<String>) -> KafkaRecord {
        KafkaRecord {
            egress: egress.into(),
            record: KafkaProducerRecord {
                key: String::new(),
                value_bytes: Bytes::new(),
                topic: topic.into(),
            },
        }
    }

    /// The record's key (UTF-8).
    pub fn key(mut self, key: impl Into<String>) -> KafkaRecord {
        self.record.key = key.into();
        self
    }

    /// The record's value as raw bytes.
    pub fn value_bytes(mut self, value: impl Into<Bytes>) -> KafkaRecord {
        self.record.value_bytes = value.into();
        self
    }

    /// The record's value: `value` serialised as `ty`.
    pub fn value<T: Type + ?Sized>(
        mut self,
        ty: &T,
        value: &T::Value,
    ) -> Result<KafkaRecord, Error> {
        self.record.value_bytes = ty.serialize(value)?;
        Ok(self)
    }

    /// The egress record; fails if the egress is not `namespace/name` or the topic is empty.
    pub fn build(self) -> Result<EgressMessage, Error> {
        if self.record.topic.is_empty() {
            return Err(Error::InvalidRecord(format!(
                "the Kafka record for egress {} has an empty topic; give KafkaRecord::new a topic",
                self.egress
            )));
        }
        EgressMessage::from_typed_value(
            &self.egress,
            TypedValue::new(typed::KAFKA_PRODUCER_RECORD, self.record.encode_to_vec()),
        )
    }
}

/// Builds a record for a Kinesis egress: stream, partition key, optional explicit hash key,
/// value bytes.
#[derive(Debug, Clone)]
#[must_use = "call build() and give the record to Context::send_egress"]
pub struct KinesisRecord {
    egress: String,
    record: KinesisEgressRecord,
}

impl KinesisRecord {
    /// A record for Kinesis egress `egress` (`namespace/name`) to `stream` with
    /// `partition_key`, with an empty value.
    pub fn new(
        egress: impl Into<String>,
        stream: impl Into<String>,
        partition_key: impl Into<String>,
    ) -> KinesisRecord {
        KinesisRecord {
            egress: egress.into(),
            record: KinesisEgressRecord {
                partition_key: partition_key.into(),
                value_bytes: Bytes::new(),
                stream: stream.into(),
                explicit_hash_key: String::new(),
            },
        }
    }

    /// The explicit hash key (a decimal 128-bit number, as Kinesis expects).
    pub fn explicit_hash_key(mut self, key: impl Into<String>) -> KinesisRecord {
        self.record.explicit_hash_key = key.into();
        self
    }

    /// The record's value as raw bytes.
    pub fn value_bytes(mut self, value: impl Into<Bytes>) -> KinesisRecord {
        self.record.value_bytes = value.into();
        self
    }

    /// The record's value: `value` serialised as `ty`.
    pub fn value<T: Type + ?Sized>(
        mut self,
        ty: &T,
        value: &T::Value,
    ) -> Result<KinesisRecord, Error> {
        self.record.value_bytes = ty.serialize(value)?;
        Ok(self)
    }

    /// The egress record; fails if the egress is not `namespace/name`, or the stream or the
    /// partition key is empty.
    pub fn build(self) -> Result<EgressMessage, Error> {
        if self.record.stream.is_empty() || self.record.partition_key.is_empty() {
            return Err(Error::InvalidRecord(format!(
                "the Kinesis record for egress {} needs a non-empty stream and partition key \
                 (got stream {:?}, partition key {:?})",
                self.egress, self.record.stream, self.record.partition_key
            )));
        }
        EgressMessage::from_typed_value(
            &self.egress,
            TypedValue::new(typed::KINESIS_EGRESS_RECORD, self.record.encode_to_vec()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StringType;

    #[test]
    fn generic_records_name_their_egress() {
        let record = EgressMessage::string("com.example/out", "hi").unwrap();
        assert_eq!(record.egress(), "com.example/out");
        assert_eq!(record.value(&StringType).unwrap(), "hi");
        let error = EgressMessage::string("out", "hi").unwrap_err();
        assert!(error.to_string().contains("egress \"out\""), "{error}");
    }

    #[test]
    fn kafka_records_round_trip() {
        let record = KafkaRecord::new("com.example/kafka", "greetings")
            .key("alice")
            .value_bytes("Hello alice")
            .build()
            .unwrap();
        assert_eq!(record.typename(), typed::KAFKA_PRODUCER_RECORD);
        let kafka = record.kafka_record().unwrap();
        assert_eq!(kafka.key, "alice");
        assert_eq!(kafka.topic, "greetings");
        assert_eq!(&kafka.value_bytes[..], b"Hello alice");
        assert!(record.kinesis_record().is_err());
    }

    #[test]
    fn incomplete_records_are_rejected() {
        assert!(KafkaRecord::new("a/b", "").build().is_err());
        assert!(KinesisRecord::new("a/b", "s", "").build().is_err());
        assert!(KinesisRecord::new("a/b", "", "k").build().is_err());
        assert!(KinesisRecord::new("ab", "s", "k").build().is_err());
    }
}
