//! The SDK against the golden vectors of `protocol/testdata/` (see the README there): every
//! vector decodes through the SDK's types and re-encodes byte for byte through the SDK's
//! builders, and golden requests fed to registered functions yield the golden replies.

use eddy_protocol::{Message as _, ToFunction, TypedValue};
use eddy_sdk::{
    Address, BoolType, BoxError, Context, DoubleType, EgressMessage, Error, FloatType, Functions,
    IntType, JsonType, KafkaRecord, KinesisRecord, LongType, Message, OutgoingMessage, StringType,
    Type, ValueSpec,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("protocol")
        .join("testdata")
}

struct Vector {
    name: String,
    message: String,
    fields: Value,
    bytes: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let manifest = std::fs::read_to_string(testdata().join("vectors.json")).expect("vectors.json");
    let manifest: Value = serde_json::from_str(&manifest).expect("vectors.json is JSON");
    manifest["vectors"]
        .as_array()
        .expect("a vectors array")
        .iter()
        .map(|v| {
            let file = v["file"].as_str().expect("a file");
            Vector {
                name: v["name"].as_str().expect("a name").to_string(),
                message: v["message"].as_str().expect("a message").to_string(),
                fields: v["fields"].clone(),
                bytes: std::fs::read(testdata().join(file)).expect("the vector's file"),
            }
        })
        .collect()
}

fn vector(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn float_of(value: &Value) -> f64 {
    match value {
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => other.as_f64().expect("a number"),
    }
}

/// Decodes with `ty`, checks the value, re-encodes with `ty`.
fn check_builtin<T: Type>(vector: &Vector, ty: &T, same: impl Fn(&T::Value) -> bool) {
    let value = ty
        .deserialize(&vector.bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    assert!(same(&value), "{}: decoded a different value", vector.name);
    let bytes = ty.serialize(&value).expect("serialize");
    assert_eq!(
        &bytes[..],
        &vector.bytes[..],
        "{}: re-encoding",
        vector.name
    );
}

fn check_builtin_vector(vector: &Vector) {
    let expected = &vector.fields["value"];
    match vector.message.rsplit('.').next() {
        Some("BooleanWrapper") => {
            check_builtin(vector, &BoolType, |v| Some(*v) == expected.as_bool())
        }
        Some("IntWrapper") => check_builtin(vector, &IntType, |v| {
            Some(i64::from(*v)) == expected.as_i64()
        }),
        Some("LongWrapper") => check_builtin(vector, &LongType, |v| Some(*v) == expected.as_i64()),
        Some("FloatWrapper") => check_builtin(vector, &FloatType, |v| {
            let e = float_of(expected) as f32;
            v.to_bits() == e.to_bits() || (v.is_nan() && e.is_nan())
        }),
        Some("DoubleWrapper") => check_builtin(vector, &DoubleType, |v| {
            let e = float_of(expected);
            v.to_bits() == e.to_bits() || (v.is_nan() && e.is_nan())
        }),
        Some("StringWrapper") => check_builtin(vector, &StringType, |v| {
            Some(v.as_str()) == expected.as_str()
        }),
        other => panic!("{}: unexpected message {other:?}", vector.name),
    }
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct User {
    name: String,
    visits: u32,
}

const USER: JsonType<User> = JsonType::new("com.example/user");

fn check_typed_value_vector(vector: &Vector) {
    let typed = TypedValue::decode(&vector.bytes[..]).expect("a TypedValue");
    let message = Message::new(typed.clone());
    let rebuilt: TypedValue = match vector.name.as_str() {
        "typed_value_int" => {
            let value = message.as_int().expect("an int");
            assert_eq!(value, 7);
            eddy_sdk::types::to_typed_value(&IntType, &value).expect("int")
        }
        "typed_value_string_unicode" => {
            let value = message.as_string().expect("a string");
            OutgoingMessage::string(Address::new("a/b", "c").expect("address"), value)
                .typed_value()
                .clone()
        }
        "typed_value_long_zero" => {
            assert_eq!(message.as_long().expect("a present zero"), 0);
            eddy_sdk::types::to_typed_value(&LongType, &0).expect("long")
        }
        "typed_value_absent" => {
            assert!(matches!(message.as_int(), Err(Error::MissingValue { .. })));
            assert_eq!(
                eddy_sdk::types::from_typed_value(&IntType, &typed, "x").expect("absent"),
                None
            );
            typed.clone()
        }
        "typed_value_custom_json" => {
            let user = message.as_type(&USER).expect("a user");
            assert_eq!(
                user,
                User {
                    name: "alice".into(),
                    visits: 3
                }
            );
            eddy_sdk::types::to_typed_value(&USER, &user).expect("json")
        }
        "typed_value_kafka_producer_record" => {
            let record = EgressMessage::from_typed_value("a/b", typed.clone())
                .and_then(|egress| egress.kafka_record())
                .expect("a Kafka record");
            KafkaRecord::new("a/b", record.topic)
                .key(record.key)
                .value_bytes(record.value_bytes)
                .build()
                .expect("kafka")
                .typed_value()
                .clone()
        }
        "typed_value_kinesis_egress_record" => {
            let record = EgressMessage::from_typed_value("a/b", typed.clone())
                .and_then(|egress| egress.kinesis_record())
                .expect("a Kinesis record");
            KinesisRecord::new("a/b", record.stream, record.partition_key)
                .explicit_hash_key(record.explicit_hash_key)
                .value_bytes(record.value_bytes)
                .build()
                .expect("kinesis")
                .typed_value()
                .clone()
        }
        other => panic!("typed value vector {other} is not covered by this test"),
    };
    assert_eq!(
        rebuilt.encode_to_vec(),
        vector.bytes,
        "{}: re-encoding",
        vector.name
    );
}

fn check_egress_record_vector(vector: &Vector) {
    let f = &vector.fields;
    let s = |key: &str| f[key].as_str().expect("a string").to_string();
    let built = if vector.message.ends_with("KafkaProducerRecord") {
        let mut record = KafkaRecord::new("a/b", s("topic")).value_bytes(hex(&s("value_bytes")));
        if !s("key").is_empty() {
            record = record.key(s("key"));
        }
        record.build()
    } else {
        let mut record = KinesisRecord::new("a/b", s("stream"), s("partition_key"))
            .value_bytes(hex(&s("value_bytes")));
        if !s("explicit_hash_key").is_empty() {
            record = record.explicit_hash_key(s("explicit_hash_key"));
        }
        record.build()
    };
    let built = built.unwrap_or_else(|e| panic!("{}: {e}", vector.name));
    assert_eq!(
        &built.typed_value().value[..],
        &vector.bytes[..],
        "{}",
        vector.name
    );
}

fn check_address_vector(vector: &Vector) {
    let f = &vector.fields;
    let typename = format!(
        "{}/{}",
        f["namespace"].as_str().expect("namespace"),
        f["type"].as_str().expect("type")
    );
    let address = Address::new(&typename, f["id"].as_str().expect("id")).expect("an address");
    assert_eq!(
        address.to_protocol().encode_to_vec(),
        vector.bytes,
        "{}",
        vector.name
    );
}

#[test]
fn every_value_vector_decodes_and_re_encodes_through_the_sdk() {
    let mut covered = BTreeSet::new();
    for vector in vectors() {
        let kind = vector
            .message
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "BooleanWrapper" | "IntWrapper" | "LongWrapper" | "FloatWrapper" | "DoubleWrapper"
            | "StringWrapper" => check_builtin_vector(&vector),
            "TypedValue" => check_typed_value_vector(&vector),
            "KafkaProducerRecord" | "KinesisEgressRecord" => check_egress_record_vector(&vector),
            "Address" => check_address_vector(&vector),
            // Requests and replies: the handler tests below.
            "ToFunction" | "FromFunction" => continue,
            other => panic!("vector {} of message {other} is not covered", vector.name),
        }
        covered.insert(vector.name);
    }
    assert!(covered.len() >= 40, "too few vectors checked: {covered:?}");
}

// ---------------------------------------------------------------------------------------------
// Requests and replies through the handler path.
// ---------------------------------------------------------------------------------------------

const COUNT: ValueSpec<IntType> = ValueSpec::new("count", IntType);
const LAST_SEEN: ValueSpec<LongType> = ValueSpec::new("last_seen", LongType);
const NICKNAME: ValueSpec<StringType> = ValueSpec::new("nickname", StringType);
const PROFILE: ValueSpec<JsonType<User>> = ValueSpec::new("profile", USER);

/// The function the golden batch is written for: each kind of message does one part of what
/// `from_function_invocation_response` describes.
async fn counter(context: Context, message: Message) -> Result<(), BoxError> {
    let id = context.address().id().to_string();
    let storage = context.storage();
    if message.is_string() {
        // From an ingress: count, greet on every egress, set a reminder.
        assert!(context.caller().is_none());
        let count = storage.get(&COUNT)?.unwrap_or(0) + 1;
        storage.set(&COUNT, &count)?;
        let greeting = format!("Hello {id}");
        context.send_egress(EgressMessage::string("com.example/out", &greeting)?);
        context.send_egress(
            KafkaRecord::new("com.example/kafka", "greetings")
                .key(&id)
                .value_bytes(greeting.clone())
                .build()?,
        );
        context.send_egress(
            KinesisRecord::new("com.example/kinesis", "greetings", &id)
                .explicit_hash_key("170141183460469231731687303715884105728")
                .value_bytes(greeting)
                .build()?,
        );
        context.send_after_with_token(
            Duration::from_millis(1500),
            format!("reminder-{id}"),
            OutgoingMessage::string(Address::new("com.example/reminder", &id)?, "wake up"),
        )?;
    } else if message.is_long() {
        // From another function: greet it back, and come back to ourselves in a minute.
        let n = message.as_long()?;
        let caller = context
            .caller()
            .cloned()
            .ok_or("a long comes from a function")?;
        context.send(OutgoingMessage::string(
            caller.clone(),
            format!("hello {}", caller.id()),
        ));
        context.send_after(
            Duration::from_secs(60),
            OutgoingMessage::long(context.address().clone(), n - 2),
        )?;
    } else if message.is(&USER) {
        // A profile update: forget when we last saw the user, clear the nickname, pass the
        // turn to carol and drop the old reminder.
        let user = message.as_type(&USER)?;
        assert_eq!(user.name, id);
        assert_eq!(storage.get(&PROFILE)?, None, "profile is typed but absent");
        assert_eq!(
            storage.get(&NICKNAME)?.as_deref(),
            Some(""),
            "present empty string"
        );
        assert_eq!(storage.get(&LAST_SEEN)?, None);
        storage.remove(&LAST_SEEN)?;
        storage.set(&NICKNAME, &String::new())?;
        context.send(OutgoingMessage::bool(
            Address::new("com.example/counter", "carol")?,
            true,
        ));
        context.cancel_delayed_message("reminder-old")?;
    } else {
        // A present zero int: no effect, but it must read as 0.
        assert_eq!(message.as_int()?, 0);
        assert_eq!(
            storage.get(&COUNT)?,
            Some(4),
            "the first invocation's write is visible"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_golden_batch_yields_the_golden_invocation_response() {
    let functions = Functions::new()
        .register(
            "com.example/counter",
            &[&COUNT, &LAST_SEEN, &NICKNAME, &PROFILE],
            counter,
        )
        .expect("registration");
    let request = vector("to_function_batch");
    let reply = functions
        .handle(&request.bytes)
        .await
        .expect("the batch succeeds");
    assert_eq!(reply, vector("from_function_invocation_response").bytes);
    // The struct-level entry point gives the same reply.
    let reply = functions
        .invoke(ToFunction::decode(&request.bytes[..]).expect("decode"))
        .await
        .expect("the batch succeeds");
    assert_eq!(
        reply.encode_to_vec(),
        vector("from_function_invocation_response").bytes
    );
}

#[tokio::test]
async fn first_contact_yields_the_golden_incomplete_invocation_context() {
    let session =
        ValueSpec::new("session", StringType).expire_after_write(Duration::from_secs(3600));
    let last_seen =
        ValueSpec::new("last_seen", LongType).expire_after_call(Duration::from_secs(86_400));
    let profile = ValueSpec::new("profile", USER).expire_after_write(Duration::from_millis(1500));
    let flag = ValueSpec::new("flag", BoolType);
    let functions = Functions::new()
        .register(
            "com.example/counter",
            &[&COUNT, &session, &last_seen, &profile, &flag],
            |_: Context, _: Message| async {
                Err::<(), BoxError>("must not run without state".into())
            },
        )
        .expect("registration");
    let reply = functions
        .handle(&vector("to_function_single_invocation").bytes)
        .await
        .expect("missing state is an answer, not an error");
    assert_eq!(
        reply,
        vector("from_function_incomplete_invocation_context").bytes
    );
}

#[tokio::test]
async fn a_batch_without_effects_yields_the_golden_empty_invocation_response() {
    let functions = Functions::new()
        .register(
            "com.example/counter",
            &[],
            |_: Context, message: Message| async move { message.as_string().map(|_| ()) },
        )
        .expect("registration");
    let reply = functions
        .handle(&vector("to_function_single_invocation").bytes)
        .await
        .expect("the batch succeeds");
    assert_eq!(
        reply,
        vector("from_function_empty_invocation_response").bytes
    );
    assert_eq!(reply, [0xa2, 0x06, 0x00]);
}
