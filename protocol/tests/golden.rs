//! Golden test vectors of the wire protocol: the binary messages `protocol/testdata/*.bin`
//! and their manifest `protocol/testdata/vectors.json` (see `protocol/testdata/README.md`).
//!
//! Every vector is built here from `eddy_protocol` types. The tests check that
//! - each message encodes byte for byte to its committed `.bin`, and the committed manifest is
//!   exactly the one this file renders;
//! - each `.bin` listed in the manifest decodes as the message the manifest names, re-encodes to
//!   the same bytes, and its decoded content equals the manifest's readable `fields`;
//! - the manifest lists every `.bin` of the folder and every listed file exists;
//! - a few vectors equal bytes written out by hand from the protobuf encoding rules, so that a
//!   change of encoder cannot silently re-bless the files.
//!
//! Regenerate after adding or changing a vector on purpose (then review `git diff`):
//! `EDDY_REGENERATE_GOLDEN=1 cargo test -p eddy-protocol --test golden`.
//! Apache's own implementation checks the same files: `integration-tests/tests/golden_python.rs`.

use bytes::Bytes;
use eddy_protocol::egress::{KafkaProducerRecord, KinesisEgressRecord};
use eddy_protocol::from_function::expiration_spec::ExpireMode;
use eddy_protocol::from_function::persisted_value_mutation::MutationType;
use eddy_protocol::from_function::{
    DelayedInvocation, EgressMessage, ExpirationSpec, IncompleteInvocationContext,
    InvocationResponse, PersistedValueMutation, PersistedValueSpec,
};
use eddy_protocol::to_function::{InvocationBatchRequest, PersistedValue};
use eddy_protocol::typed::{BOOL, INT, KAFKA_PRODUCER_RECORD, KINESIS_EGRESS_RECORD, LONG, STRING};
use eddy_protocol::types::{
    BooleanWrapper, DoubleWrapper, FloatWrapper, IntWrapper, LongWrapper, StringWrapper,
};
use eddy_protocol::{
    from_function, to_function, Address, BuiltIn, FromFunction, Message, ToFunction, TypedValue,
};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that makes the tests write the files instead of comparing.
const REGENERATE_ENV: &str = "EDDY_REGENERATE_GOLDEN";

/// The manifest's file name inside `testdata/`.
const MANIFEST: &str = "vectors.json";

// ---------------------------------------------------------------------------------------------
// A readable, ordered JSON rendering (serde_json's map is sorted; the manifest keeps proto order)
// ---------------------------------------------------------------------------------------------

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn str(value: &str) -> J {
        J::Str(value.to_string())
    }

    /// A float: finite values as numbers, the others as "NaN", "Infinity" or "-Infinity".
    fn float(value: f64) -> J {
        if value.is_nan() {
            J::str("NaN")
        } else if value.is_infinite() {
            J::str(if value > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            J::Num(value)
        }
    }

    /// Bytes as lowercase hex.
    fn hex(bytes: &[u8]) -> J {
        J::Str(hex(bytes))
    }

    fn opt<T>(value: &Option<T>, render: impl Fn(&T) -> J) -> J {
        value.as_ref().map_or(J::Null, render)
    }

    fn list<T>(values: &[T], render: impl Fn(&T) -> J) -> J {
        J::Arr(values.iter().map(render).collect())
    }

    /// The same value as a `serde_json::Value`, to compare with the parsed manifest. It goes
    /// through the JSON text on purpose: serde_json's float parser (without its
    /// `float_roundtrip` feature) may be one ulp off, but it parses equal texts equally, and
    /// the rendering of a float is its shortest round-trip text.
    fn to_value(&self) -> serde_json::Value {
        let mut text = String::new();
        self.write(&mut text, 0);
        serde_json::from_str(&text).expect("the rendering is valid JSON")
    }

    /// Pretty JSON, two spaces per level, keys in insertion order, non-ASCII kept as is.
    fn write(&self, out: &mut String, indent: usize) {
        let pad = |out: &mut String, level: usize| out.push_str(&" ".repeat(level));
        match self {
            J::Null => out.push_str("null"),
            J::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            J::Int(value) => out.push_str(&value.to_string()),
            J::Num(value) => {
                out.push_str(&serde_json::to_string(value).expect("a finite float renders"))
            }
            J::Str(value) => out.push_str(&serde_json::to_string(value).expect("a string renders")),
            J::Arr(values) if values.is_empty() => out.push_str("[]"),
            J::Obj(entries) if entries.is_empty() => out.push_str("{}"),
            J::Arr(values) => {
                out.push_str("[\n");
                for (index, value) in values.iter().enumerate() {
                    pad(out, indent + 2);
                    value.write(out, indent + 2);
                    out.push_str(if index + 1 < values.len() {
                        ",\n"
                    } else {
                        "\n"
                    });
                }
                pad(out, indent);
                out.push(']');
            }
            J::Obj(entries) => {
                out.push_str("{\n");
                for (index, (key, value)) in entries.iter().enumerate() {
                    pad(out, indent + 2);
                    out.push_str(&serde_json::to_string(key).expect("a key renders"));
                    out.push_str(": ");
                    value.write(out, indent + 2);
                    out.push_str(if index + 1 < entries.len() {
                        ",\n"
                    } else {
                        "\n"
                    });
                }
                pad(out, indent);
                out.push('}');
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    assert!(text.len() % 2 == 0, "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rendering of each message: field names (as in the .proto) -> values
// ---------------------------------------------------------------------------------------------

/// A top-level message that can be a golden vector.
trait Golden: Message + Default + Sized {
    /// The full protobuf name, e.g. `io.statefun.sdk.reqreply.ToFunction`.
    const NAME: &'static str;
    /// The readable rendering of the content.
    fn render(&self) -> J;
}

fn render_address(address: &Address) -> J {
    J::Obj(vec![
        ("namespace", J::str(&address.namespace)),
        ("type", J::str(&address.r#type)),
        ("id", J::str(&address.id)),
    ])
}

fn render_typed_value(value: &TypedValue) -> J {
    J::Obj(vec![
        ("typename", J::str(&value.typename)),
        ("has_value", J::Bool(value.has_value)),
        ("value", J::hex(&value.value)),
    ])
}

fn render_enum(value: i32, name: Option<&'static str>) -> J {
    name.map_or(J::Int(i64::from(value)), J::str)
}

fn render_batch(batch: &InvocationBatchRequest) -> J {
    J::Obj(vec![
        ("target", J::opt(&batch.target, render_address)),
        (
            "state",
            J::list(&batch.state, |state| {
                J::Obj(vec![
                    ("state_name", J::str(&state.state_name)),
                    (
                        "state_value",
                        J::opt(&state.state_value, render_typed_value),
                    ),
                ])
            }),
        ),
        (
            "invocations",
            J::list(&batch.invocations, |invocation| {
                J::Obj(vec![
                    ("caller", J::opt(&invocation.caller, render_address)),
                    ("argument", J::opt(&invocation.argument, render_typed_value)),
                ])
            }),
        ),
    ])
}

fn render_invocation_response(response: &InvocationResponse) -> J {
    J::Obj(vec![
        (
            "state_mutations",
            J::list(&response.state_mutations, |mutation| {
                let kind = MutationType::try_from(mutation.mutation_type)
                    .ok()
                    .map(|kind| kind.as_str_name());
                J::Obj(vec![
                    ("mutation_type", render_enum(mutation.mutation_type, kind)),
                    ("state_name", J::str(&mutation.state_name)),
                    (
                        "state_value",
                        J::opt(&mutation.state_value, render_typed_value),
                    ),
                ])
            }),
        ),
        (
            "outgoing_messages",
            J::list(&response.outgoing_messages, |message| {
                J::Obj(vec![
                    ("target", J::opt(&message.target, render_address)),
                    ("argument", J::opt(&message.argument, render_typed_value)),
                ])
            }),
        ),
        (
            "delayed_invocations",
            J::list(&response.delayed_invocations, |delayed| {
                J::Obj(vec![
                    ("delay_in_ms", J::Int(delayed.delay_in_ms)),
                    ("target", J::opt(&delayed.target, render_address)),
                    ("argument", J::opt(&delayed.argument, render_typed_value)),
                    (
                        "is_cancellation_request",
                        J::Bool(delayed.is_cancellation_request),
                    ),
                    ("cancellation_token", J::str(&delayed.cancellation_token)),
                ])
            }),
        ),
        (
            "outgoing_egresses",
            J::list(&response.outgoing_egresses, |egress| {
                J::Obj(vec![
                    ("egress_namespace", J::str(&egress.egress_namespace)),
                    ("egress_type", J::str(&egress.egress_type)),
                    ("argument", J::opt(&egress.argument, render_typed_value)),
                ])
            }),
        ),
    ])
}

fn render_incomplete_context(context: &IncompleteInvocationContext) -> J {
    J::Obj(vec![(
        "missing_values",
        J::list(&context.missing_values, |spec| {
            J::Obj(vec![
                ("state_name", J::str(&spec.state_name)),
                (
                    "expiration_spec",
                    J::opt(&spec.expiration_spec, |expiration| {
                        let mode = ExpireMode::try_from(expiration.mode)
                            .ok()
                            .map(|mode| mode.as_str_name());
                        J::Obj(vec![
                            ("mode", render_enum(expiration.mode, mode)),
                            (
                                "expire_after_millis",
                                J::Int(expiration.expire_after_millis),
                            ),
                        ])
                    }),
                ),
                ("type_typename", J::str(&spec.type_typename)),
            ])
        }),
    )])
}

impl Golden for Address {
    const NAME: &'static str = "io.statefun.sdk.reqreply.Address";
    fn render(&self) -> J {
        render_address(self)
    }
}

impl Golden for TypedValue {
    const NAME: &'static str = "io.statefun.sdk.reqreply.TypedValue";
    fn render(&self) -> J {
        render_typed_value(self)
    }
}

impl Golden for ToFunction {
    const NAME: &'static str = "io.statefun.sdk.reqreply.ToFunction";
    fn render(&self) -> J {
        let invocation = match &self.request {
            Some(to_function::Request::Invocation(batch)) => render_batch(batch),
            None => J::Null,
        };
        J::Obj(vec![("invocation", invocation)])
    }
}

impl Golden for FromFunction {
    const NAME: &'static str = "io.statefun.sdk.reqreply.FromFunction";
    fn render(&self) -> J {
        let (result, incomplete) = match &self.response {
            Some(from_function::Response::InvocationResult(response)) => {
                (render_invocation_response(response), J::Null)
            }
            Some(from_function::Response::IncompleteInvocationContext(context)) => {
                (J::Null, render_incomplete_context(context))
            }
            None => (J::Null, J::Null),
        };
        J::Obj(vec![
            ("invocation_result", result),
            ("incomplete_invocation_context", incomplete),
        ])
    }
}

impl Golden for BooleanWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.BooleanWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::Bool(self.value))])
    }
}

impl Golden for IntWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.IntWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::Int(i64::from(self.value)))])
    }
}

impl Golden for LongWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.LongWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::Int(self.value))])
    }
}

impl Golden for FloatWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.FloatWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::float(f64::from(self.value)))])
    }
}

impl Golden for DoubleWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.DoubleWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::float(self.value))])
    }
}

impl Golden for StringWrapper {
    const NAME: &'static str = "io.statefun.sdk.types.StringWrapper";
    fn render(&self) -> J {
        J::Obj(vec![("value", J::str(&self.value))])
    }
}

impl Golden for KafkaProducerRecord {
    const NAME: &'static str = "io.statefun.sdk.egress.KafkaProducerRecord";
    fn render(&self) -> J {
        J::Obj(vec![
            ("key", J::str(&self.key)),
            ("value_bytes", J::hex(&self.value_bytes)),
            ("topic", J::str(&self.topic)),
        ])
    }
}

impl Golden for KinesisEgressRecord {
    const NAME: &'static str = "io.statefun.sdk.egress.KinesisEgressRecord";
    fn render(&self) -> J {
        J::Obj(vec![
            ("partition_key", J::str(&self.partition_key)),
            ("value_bytes", J::hex(&self.value_bytes)),
            ("stream", J::str(&self.stream)),
            ("explicit_hash_key", J::str(&self.explicit_hash_key)),
        ])
    }
}

/// Decodes `bytes` as `T`, then returns its re-encoding and its rendering.
type Decoder = fn(&[u8]) -> Result<(Vec<u8>, J), prost::DecodeError>;

fn decode_as<T: Golden>(bytes: &[u8]) -> Result<(Vec<u8>, J), prost::DecodeError> {
    let message = T::decode(bytes)?;
    Ok((message.encode_to_vec(), message.render()))
}

/// The decoder of the message named `name` in the manifest.
fn decoder(name: &str) -> Option<Decoder> {
    let decoders: [(&str, Decoder); 12] = [
        (Address::NAME, decode_as::<Address>),
        (TypedValue::NAME, decode_as::<TypedValue>),
        (ToFunction::NAME, decode_as::<ToFunction>),
        (FromFunction::NAME, decode_as::<FromFunction>),
        (BooleanWrapper::NAME, decode_as::<BooleanWrapper>),
        (IntWrapper::NAME, decode_as::<IntWrapper>),
        (LongWrapper::NAME, decode_as::<LongWrapper>),
        (FloatWrapper::NAME, decode_as::<FloatWrapper>),
        (DoubleWrapper::NAME, decode_as::<DoubleWrapper>),
        (StringWrapper::NAME, decode_as::<StringWrapper>),
        (KafkaProducerRecord::NAME, decode_as::<KafkaProducerRecord>),
        (KinesisEgressRecord::NAME, decode_as::<KinesisEgressRecord>),
    ];
    decoders
        .into_iter()
        .find(|(message, _)| *message == name)
        .map(|(_, decode)| decode)
}

// ---------------------------------------------------------------------------------------------
// The vectors
// ---------------------------------------------------------------------------------------------

/// One golden vector: a message, its bytes and its manifest entry.
struct Vector {
    name: &'static str,
    message: &'static str,
    description: String,
    bytes: Vec<u8>,
    fields: J,
}

impl Vector {
    fn file(&self) -> String {
        format!("{}.bin", self.name)
    }

    fn manifest_entry(&self) -> J {
        J::Obj(vec![
            ("name", J::str(self.name)),
            ("file", J::Str(self.file())),
            ("message", J::str(self.message)),
            ("description", J::Str(self.description.clone())),
            ("fields", self.fields.clone()),
        ])
    }
}

fn vector<T: Golden>(name: &'static str, description: impl Into<String>, message: T) -> Vector {
    Vector {
        name,
        message: T::NAME,
        description: description.into(),
        bytes: message.encode_to_vec(),
        fields: message.render(),
    }
}

fn address(namespace: &str, r#type: &str, id: &str) -> Address {
    Address {
        namespace: namespace.into(),
        r#type: r#type.into(),
        id: id.into(),
    }
}

fn typed(value: BuiltIn) -> TypedValue {
    value.to_typed_value()
}

/// A typed value without a value (`has_value` false, no bytes).
fn absent(typename: &str) -> TypedValue {
    TypedValue {
        typename: typename.into(),
        has_value: false,
        value: Default::default(),
    }
}

const USER_TYPENAME: &str = "com.example/user";
const USER_JSON: &[u8] = br#"{"name":"alice","visits":3}"#;

fn user_json() -> TypedValue {
    TypedValue::new(USER_TYPENAME, USER_JSON)
}

fn kafka_record() -> KafkaProducerRecord {
    KafkaProducerRecord {
        key: "alice".into(),
        value_bytes: Bytes::from_static(b"Hello alice"),
        topic: "greetings".into(),
    }
}

fn kinesis_record() -> KinesisEgressRecord {
    KinesisEgressRecord {
        partition_key: "alice".into(),
        value_bytes: Bytes::from_static(b"Hello alice"),
        stream: "greetings".into(),
        explicit_hash_key: "170141183460469231731687303715884105728".into(),
    }
}

fn kafka_typed() -> TypedValue {
    TypedValue::new(KAFKA_PRODUCER_RECORD, kafka_record().encode_to_vec())
}

fn kinesis_typed() -> TypedValue {
    TypedValue::new(KINESIS_EGRESS_RECORD, kinesis_record().encode_to_vec())
}

fn builtin_vectors() -> Vec<Vector> {
    fn b(value: bool) -> BooleanWrapper {
        BooleanWrapper { value }
    }
    fn i(value: i32) -> IntWrapper {
        IntWrapper { value }
    }
    fn l(value: i64) -> LongWrapper {
        LongWrapper { value }
    }
    fn f(value: f32) -> FloatWrapper {
        FloatWrapper { value }
    }
    fn d(value: f64) -> DoubleWrapper {
        DoubleWrapper { value }
    }
    fn s(value: &str) -> StringWrapper {
        StringWrapper {
            value: value.into(),
        }
    }
    let zero = "the zero value: proto3 omits default scalars, so it encodes as ZERO bytes \
                (an empty value, not a missing one)";
    vec![
        vector(
            "builtin_bool_false",
            format!("io.statefun.types/bool false, {zero}"),
            b(false),
        ),
        vector(
            "builtin_bool_true",
            "io.statefun.types/bool true: field 1 varint 1",
            b(true),
        ),
        vector(
            "builtin_int_zero",
            format!("io.statefun.types/int 0, {zero}"),
            i(0),
        ),
        vector(
            "builtin_int_positive",
            "io.statefun.types/int 42: field 1 sfixed32, 4 little-endian bytes (not a varint)",
            i(42),
        ),
        vector(
            "builtin_int_negative",
            "io.statefun.types/int -1: sfixed32, two's complement ff ff ff ff",
            i(-1),
        ),
        vector(
            "builtin_int_min",
            "io.statefun.types/int i32::MIN (-2147483648)",
            i(i32::MIN),
        ),
        vector(
            "builtin_int_max",
            "io.statefun.types/int i32::MAX (2147483647)",
            i(i32::MAX),
        ),
        vector(
            "builtin_long_zero",
            format!("io.statefun.types/long 0, {zero}"),
            l(0),
        ),
        vector(
            "builtin_long_positive",
            "io.statefun.types/long 1700000000000: field 1 sfixed64, 8 little-endian bytes",
            l(1_700_000_000_000),
        ),
        vector(
            "builtin_long_negative",
            "io.statefun.types/long -42: sfixed64, two's complement",
            l(-42),
        ),
        vector(
            "builtin_long_min",
            "io.statefun.types/long i64::MIN (-9223372036854775808)",
            l(i64::MIN),
        ),
        vector(
            "builtin_long_max",
            "io.statefun.types/long i64::MAX (9223372036854775807)",
            l(i64::MAX),
        ),
        vector(
            "builtin_float_zero",
            format!("io.statefun.types/float 0.0, {zero}"),
            f(0.0),
        ),
        vector(
            "builtin_float_positive",
            "io.statefun.types/float 1.5: field 1 fixed32, IEEE 754 single, little-endian",
            f(1.5),
        ),
        vector(
            "builtin_float_negative",
            "io.statefun.types/float -2.5",
            f(-2.5),
        ),
        vector(
            "builtin_float_inexact",
            "io.statefun.types/float 0.1 rounded to single precision; `fields` shows the exact \
             single value widened to double (0.10000000149011612)",
            f(0.1),
        ),
        vector(
            "builtin_float_max",
            "io.statefun.types/float f32::MAX (3.4028234663852886e38)",
            f(f32::MAX),
        ),
        vector(
            "builtin_float_negative_infinity",
            "io.statefun.types/float -infinity (rendered \"-Infinity\" in `fields`)",
            f(f32::NEG_INFINITY),
        ),
        vector(
            "builtin_double_zero",
            format!("io.statefun.types/double 0.0, {zero}"),
            d(0.0),
        ),
        vector(
            "builtin_double_positive",
            "io.statefun.types/double pi: field 1 fixed64, IEEE 754 double, little-endian",
            d(std::f64::consts::PI),
        ),
        vector(
            "builtin_double_negative",
            "io.statefun.types/double -0.5",
            d(-0.5),
        ),
        vector(
            "builtin_double_max",
            "io.statefun.types/double f64::MAX",
            d(f64::MAX),
        ),
        vector(
            "builtin_double_min_subnormal",
            "io.statefun.types/double 5e-324, the smallest positive subnormal",
            d(5e-324),
        ),
        vector(
            "builtin_double_nan",
            "io.statefun.types/double NaN, the canonical quiet NaN 0x7ff8000000000000 \
             (rendered \"NaN\" in `fields`)",
            d(f64::NAN),
        ),
        vector(
            "builtin_string_empty",
            format!("io.statefun.types/string \"\", {zero}"),
            s(""),
        ),
        vector(
            "builtin_string_ascii",
            "io.statefun.types/string \"hello\": field 1, length, UTF-8 bytes",
            s("hello"),
        ),
        vector(
            "builtin_string_unicode",
            "io.statefun.types/string with 2-, 3- and 4-byte UTF-8 sequences (é, ✓, 你好, 🦀); \
             the length prefix counts bytes, not characters",
            s("héllo wörld ✓ 你好 🦀"),
        ),
        vector(
            "builtin_string_long",
            "io.statefun.types/string of 200 bytes: the length prefix is a 2-byte varint (c8 01)",
            s(&"0123456789".repeat(20)),
        ),
    ]
}

fn address_vectors() -> Vec<Vector> {
    vec![
        vector(
            "address",
            "Address com.example/counter/alice (namespace, type, id)",
            address("com.example", "counter", "alice"),
        ),
        vector(
            "address_unicode_id",
            "Address whose id holds non-ASCII, a slash and spaces: ids are opaque UTF-8 strings",
            address("com.example", "greeter", "zoë / 🦀 x"),
        ),
    ]
}

fn typed_value_vectors() -> Vec<Vector> {
    vec![
        vector(
            "typed_value_int",
            "TypedValue io.statefun.types/int 7 (has_value true, value = IntWrapper bytes)",
            typed(BuiltIn::Int(7)),
        ),
        vector(
            "typed_value_string_unicode",
            "TypedValue io.statefun.types/string \"grüße 🦀\"",
            typed(BuiltIn::String("grüße 🦀".into())),
        ),
        vector(
            "typed_value_long_zero",
            "TypedValue io.statefun.types/long 0: a PRESENT zero value, has_value true and empty \
             value bytes (field 3 omitted)",
            typed(BuiltIn::Long(0)),
        ),
        vector(
            "typed_value_absent",
            "TypedValue io.statefun.types/int without a value: has_value false, no value bytes; \
             only the typename is on the wire",
            absent(INT),
        ),
        vector(
            "typed_value_custom_json",
            "TypedValue of a user type com.example/user whose bytes are compact JSON text",
            user_json(),
        ),
        vector(
            "typed_value_kafka_producer_record",
            "TypedValue wrapping the KafkaProducerRecord of vector kafka_producer_record, typename \
             type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord",
            kafka_typed(),
        ),
        vector(
            "typed_value_kinesis_egress_record",
            "TypedValue wrapping the KinesisEgressRecord of vector kinesis_egress_record, typename \
             type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord",
            kinesis_typed(),
        ),
    ]
}

fn egress_record_vectors() -> Vec<Vector> {
    vec![
        vector(
            "kafka_producer_record",
            "KafkaProducerRecord: key alice, value \"Hello alice\" (raw UTF-8), topic greetings",
            kafka_record(),
        ),
        vector(
            "kafka_producer_record_without_key",
            "KafkaProducerRecord without a key (empty key omitted); value_bytes hold an \
             io.statefun.types/long 42 encoding, topic numbers",
            KafkaProducerRecord {
                key: String::new(),
                value_bytes: BuiltIn::Long(42).encode(),
                topic: "numbers".into(),
            },
        ),
        vector(
            "kinesis_egress_record",
            "KinesisEgressRecord: partition key alice, value \"Hello alice\", stream greetings, \
             explicit hash key 2^127",
            kinesis_record(),
        ),
        vector(
            "kinesis_egress_record_without_hash_key",
            "KinesisEgressRecord without an explicit hash key (empty, omitted)",
            KinesisEgressRecord {
                partition_key: "bob".into(),
                value_bytes: Bytes::from_static(b"Hello bob"),
                stream: "greetings".into(),
                explicit_hash_key: String::new(),
            },
        ),
    ]
}

fn to_function_vectors() -> Vec<Vector> {
    use eddy_protocol::to_function::Invocation;
    let batch = InvocationBatchRequest {
        target: Some(address("com.example", "counter", "alice")),
        state: vec![
            PersistedValue {
                state_name: "count".into(),
                state_value: Some(typed(BuiltIn::Int(3))),
            },
            PersistedValue {
                state_name: "last_seen".into(),
                state_value: None,
            },
            PersistedValue {
                state_name: "nickname".into(),
                state_value: Some(typed(BuiltIn::String(String::new()))),
            },
            PersistedValue {
                state_name: "profile".into(),
                state_value: Some(absent(USER_TYPENAME)),
            },
        ],
        invocations: vec![
            Invocation {
                caller: None,
                argument: Some(typed(BuiltIn::String("hello".into()))),
            },
            Invocation {
                caller: Some(address("com.example", "greeter", "bob")),
                argument: Some(typed(BuiltIn::Long(-5))),
            },
            Invocation {
                caller: Some(address("com.example", "router", "r1")),
                argument: Some(user_json()),
            },
            Invocation {
                caller: None,
                argument: Some(typed(BuiltIn::Int(0))),
            },
        ],
    };
    let single = InvocationBatchRequest {
        target: Some(address("com.example", "counter", "bob")),
        state: Vec::new(),
        invocations: vec![Invocation {
            caller: None,
            argument: Some(typed(BuiltIn::String("hi".into()))),
        }],
    };
    vec![
        vector(
            "to_function_batch",
            "ToFunction batch for com.example/counter/alice. State: count = int 3; last_seen \
             ABSENT (PersistedValue without state_value); nickname = present empty string \
             (has_value true, no bytes); profile = absent but typed (state_value with has_value \
             false). Invocations: from an ingress (no caller) string \"hello\"; from \
             com.example/greeter/bob long -5; from com.example/router/r1 a com.example/user JSON \
             value; from an ingress int 0 (present zero value)",
            ToFunction {
                request: Some(to_function::Request::Invocation(batch)),
            },
        ),
        vector(
            "to_function_single_invocation",
            "ToFunction with one invocation from an ingress (no caller) and no state values: \
             the first contact, before the function has declared its state",
            ToFunction {
                request: Some(to_function::Request::Invocation(single)),
            },
        ),
    ]
}

fn from_function_vectors() -> Vec<Vector> {
    let response = InvocationResponse {
        state_mutations: vec![
            PersistedValueMutation {
                mutation_type: MutationType::Modify as i32,
                state_name: "count".into(),
                state_value: Some(typed(BuiltIn::Int(4))),
            },
            PersistedValueMutation {
                mutation_type: MutationType::Delete as i32,
                state_name: "last_seen".into(),
                state_value: None,
            },
            PersistedValueMutation {
                mutation_type: MutationType::Modify as i32,
                state_name: "nickname".into(),
                state_value: Some(typed(BuiltIn::String(String::new()))),
            },
        ],
        outgoing_messages: vec![
            from_function::Invocation {
                target: Some(address("com.example", "greeter", "bob")),
                argument: Some(typed(BuiltIn::String("hello bob".into()))),
            },
            from_function::Invocation {
                target: Some(address("com.example", "counter", "carol")),
                argument: Some(typed(BuiltIn::Bool(true))),
            },
        ],
        delayed_invocations: vec![
            DelayedInvocation {
                delay_in_ms: 1500,
                target: Some(address("com.example", "reminder", "alice")),
                argument: Some(typed(BuiltIn::String("wake up".into()))),
                is_cancellation_request: false,
                cancellation_token: "reminder-alice".into(),
            },
            DelayedInvocation {
                delay_in_ms: 60_000,
                target: Some(address("com.example", "counter", "alice")),
                argument: Some(typed(BuiltIn::Long(-7))),
                is_cancellation_request: false,
                cancellation_token: String::new(),
            },
            DelayedInvocation {
                delay_in_ms: 0,
                target: None,
                argument: None,
                is_cancellation_request: true,
                cancellation_token: "reminder-old".into(),
            },
        ],
        outgoing_egresses: vec![
            EgressMessage {
                egress_namespace: "com.example".into(),
                egress_type: "out".into(),
                argument: Some(typed(BuiltIn::String("Hello alice".into()))),
            },
            EgressMessage {
                egress_namespace: "com.example".into(),
                egress_type: "kafka".into(),
                argument: Some(kafka_typed()),
            },
            EgressMessage {
                egress_namespace: "com.example".into(),
                egress_type: "kinesis".into(),
                argument: Some(kinesis_typed()),
            },
        ],
    };
    let expiration = |mode: ExpireMode, millis: i64| {
        Some(ExpirationSpec {
            mode: mode as i32,
            expire_after_millis: millis,
        })
    };
    let incomplete = IncompleteInvocationContext {
        missing_values: vec![
            PersistedValueSpec {
                state_name: "count".into(),
                expiration_spec: expiration(ExpireMode::None, 0),
                type_typename: INT.into(),
            },
            PersistedValueSpec {
                state_name: "session".into(),
                expiration_spec: expiration(ExpireMode::AfterWrite, 3_600_000),
                type_typename: STRING.into(),
            },
            PersistedValueSpec {
                state_name: "last_seen".into(),
                expiration_spec: expiration(ExpireMode::AfterInvoke, 86_400_000),
                type_typename: LONG.into(),
            },
            PersistedValueSpec {
                state_name: "profile".into(),
                expiration_spec: expiration(ExpireMode::AfterWrite, 1500),
                type_typename: USER_TYPENAME.into(),
            },
            PersistedValueSpec {
                state_name: "flag".into(),
                expiration_spec: expiration(ExpireMode::None, 0),
                type_typename: BOOL.into(),
            },
        ],
    };
    vec![
        vector(
            "from_function_invocation_response",
            "FromFunction InvocationResponse with every kind of effect. Mutations: MODIFY count = \
             int 4; DELETE last_seen (no state_value); MODIFY nickname = present empty string. \
             Outgoing: string to com.example/greeter/bob, bool true to com.example/counter/carol. \
             Delayed: 1500 ms with cancellation token reminder-alice; 60000 ms without token; a \
             cancellation request for token reminder-old (no target, no argument, delay 0). \
             Egresses: string to com.example/out, a Kafka record to com.example/kafka, a Kinesis \
             record to com.example/kinesis",
            FromFunction {
                response: Some(from_function::Response::InvocationResult(response)),
            },
        ),
        vector(
            "from_function_empty_invocation_response",
            "FromFunction with an explicitly set, empty InvocationResponse: a successful batch \
             without side effects, encoded as a2 06 00 (field 100, length 0). Apache's Python SDK \
             3.3.0 sends the zero-byte form of vector from_function_no_response instead",
            FromFunction {
                response: Some(from_function::Response::InvocationResult(
                    InvocationResponse::default(),
                )),
            },
        ),
        vector(
            "from_function_no_response",
            "FromFunction with neither response set: ZERO bytes. This is exactly what Apache's \
             Python SDK 3.3.0 replies for a batch without side effects (it never marks \
             invocation_result present when nothing was added to it), so a state tier must read \
             it as a successful batch without effects",
            FromFunction { response: None },
        ),
        vector(
            "from_function_incomplete_invocation_context",
            "FromFunction IncompleteInvocationContext declaring 5 missing values, each with an \
             expiration_spec, as Apache's Python SDK sends them: count int NONE (empty ExpirationSpec, \
             encoded as 12 00); session string AFTER_WRITE 3600000 ms; last_seen long \
             AFTER_INVOKE 86400000 ms; profile com.example/user AFTER_WRITE 1500 ms; flag bool NONE",
            FromFunction {
                response: Some(from_function::Response::IncompleteInvocationContext(
                    incomplete,
                )),
            },
        ),
    ]
}

/// Every vector, in manifest order.
fn all_vectors() -> Vec<Vector> {
    let mut vectors = builtin_vectors();
    vectors.extend(address_vectors());
    vectors.extend(typed_value_vectors());
    vectors.extend(egress_record_vectors());
    vectors.extend(to_function_vectors());
    vectors.extend(from_function_vectors());
    vectors
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn manifest_text(vectors: &[Vector]) -> String {
    let manifest = J::Obj(vec![
        (
            "about",
            J::str(
                "Golden vectors of the StateFun 3.x request-reply protocol as Eddy encodes it. \
                 Each entry: name, file (binary protobuf message), message (full protobuf \
                 name), description, fields (readable content: field names as in the .proto, \
                 every field present, unset messages null, bytes as lowercase hex, enums by \
                 name, non-finite floats as \"NaN\"/\"Infinity\"/\"-Infinity\"). Generated by \
                 protocol/tests/golden.rs: do not edit by hand, see README.md.",
            ),
        ),
        (
            "regenerate",
            J::str(&format!(
                "{REGENERATE_ENV}=1 cargo test -p eddy-protocol --test golden"
            )),
        ),
        (
            "vectors",
            J::Arr(vectors.iter().map(Vector::manifest_entry).collect()),
        ),
    ]);
    let mut text = String::new();
    manifest.write(&mut text, 0);
    text.push('\n');
    text
}

/// Writes every `.bin` and the manifest, removing `.bin` files that are no longer vectors.
fn regenerate(vectors: &[Vector]) {
    let dir = testdata();
    std::fs::create_dir_all(&dir).expect("create testdata/");
    let wanted: BTreeSet<String> = vectors.iter().map(Vector::file).collect();
    for file in bin_files() {
        if !wanted.contains(&file) {
            std::fs::remove_file(dir.join(&file)).expect("remove a stale .bin");
        }
    }
    for vector in vectors {
        std::fs::write(dir.join(vector.file()), &vector.bytes).expect("write a .bin");
    }
    std::fs::write(dir.join(MANIFEST), manifest_text(vectors)).expect("write the manifest");
    eprintln!(
        "golden: regenerated {} vectors in {}",
        vectors.len(),
        dir.display()
    );
}

/// The vectors, after writing the files once when regeneration is asked for (every test of
/// this binary goes through here, so no test reads a half-written folder).
fn vectors() -> &'static [Vector] {
    static VECTORS: OnceLock<Vec<Vector>> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let vectors = all_vectors();
        if std::env::var(REGENERATE_ENV).is_ok_and(|value| value == "1") {
            regenerate(&vectors);
        }
        vectors
    })
}

/// The names of the `.bin` files in `testdata/`.
fn bin_files() -> BTreeSet<String> {
    std::fs::read_dir(testdata())
        .expect("read testdata/")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 file name")
        })
        .filter(|name| name.ends_with(".bin"))
        .collect()
}

fn read_bin(file: &str) -> Vec<u8> {
    let path = testdata().join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (regenerate with {REGENERATE_ENV}=1 cargo test -p eddy-protocol \
             --test golden)",
            path.display()
        )
    })
}

fn read_manifest() -> serde_json::Value {
    let path = testdata().join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The manifest's entries, each checked to hold the five keys with the right JSON types.
fn manifest_entries(manifest: &serde_json::Value) -> Vec<&serde_json::Value> {
    let entries = manifest["vectors"]
        .as_array()
        .expect("the manifest has a `vectors` array");
    for entry in entries {
        for key in ["name", "file", "message", "description"] {
            assert!(
                entry[key].is_string(),
                "entry without string `{key}`: {entry}"
            );
        }
        assert!(
            entry["fields"].is_object(),
            "entry without `fields` object: {entry}"
        );
    }
    entries.iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn every_vector_encodes_to_its_committed_bytes() {
    let mut mismatches = Vec::new();
    for vector in vectors() {
        let committed = read_bin(&vector.file());
        if committed != vector.bytes {
            mismatches.push(format!(
                "{}:\n  committed {}\n  encoded   {}",
                vector.file(),
                hex(&committed),
                hex(&vector.bytes)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "encoding differs from the golden files (if the change is intended, regenerate with \
         {REGENERATE_ENV}=1 and review the diff):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn the_committed_manifest_is_the_rendered_one() {
    let rendered = manifest_text(vectors());
    let path = testdata().join(MANIFEST);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == rendered,
        "{} is out of date: regenerate with {REGENERATE_ENV}=1 cargo test -p eddy-protocol \
         --test golden",
        path.display()
    );
}

#[test]
fn every_bin_decodes_reencodes_identically_and_matches_its_fields() {
    let _ = vectors();
    let manifest = read_manifest();
    let entries = manifest_entries(&manifest);
    assert!(!entries.is_empty(), "the manifest lists no vector");
    for entry in entries {
        let file = entry["file"].as_str().expect("checked string");
        let message = entry["message"].as_str().expect("checked string");
        let decode =
            decoder(message).unwrap_or_else(|| panic!("{file}: unknown message {message}"));
        let bytes = read_bin(file);
        let (reencoded, fields) =
            decode(&bytes).unwrap_or_else(|e| panic!("{file} does not decode as {message}: {e}"));
        assert_eq!(
            hex(&reencoded),
            hex(&bytes),
            "{file}: decode + encode is not the identity"
        );
        assert_eq!(
            fields.to_value(),
            entry["fields"],
            "{file}: the decoded content differs from the manifest's `fields`"
        );
    }
}

#[test]
fn the_manifest_lists_every_bin_and_vice_versa() {
    let built = vectors();
    let manifest = read_manifest();
    let entries = manifest_entries(&manifest);
    let mut names = BTreeSet::new();
    let mut listed = BTreeSet::new();
    for entry in &entries {
        let name = entry["name"].as_str().expect("checked string");
        let file = entry["file"].as_str().expect("checked string");
        assert!(
            names.insert(name.to_string()),
            "vector {name} is listed twice"
        );
        assert_eq!(file, format!("{name}.bin"), "vector {name}: file name");
        assert!(
            listed.insert(file.to_string()),
            "file {file} is listed twice"
        );
    }
    let on_disk = bin_files();
    let unlisted: Vec<_> = on_disk.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        unlisted.is_empty(),
        ".bin files not in {MANIFEST}: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "{MANIFEST} lists missing files: {missing:?}"
    );
    let built_names: BTreeSet<String> = built.iter().map(|v| v.name.to_string()).collect();
    assert_eq!(built.len(), built_names.len(), "two vectors share a name");
    assert_eq!(
        names, built_names,
        "the manifest and golden.rs list different vectors"
    );
}

#[test]
fn key_vectors_match_bytes_written_by_hand() {
    let _ = vectors();
    let typename_int = format!("0a15{}", hex(INT.as_bytes()));
    let expected: [(&str, String); 12] = [
        ("builtin_bool_false", String::new()),
        ("builtin_bool_true", "0801".into()),
        // field 1, wire type 5 (fixed32): tag 0x0d, little-endian two's complement.
        ("builtin_int_negative", "0d ffffffff".into()),
        ("builtin_int_positive", "0d 2a000000".into()),
        // field 1, wire type 1 (fixed64): tag 0x09.
        ("builtin_long_min", "09 0000000000000080".into()),
        ("builtin_float_positive", "0d 0000c03f".into()),
        ("builtin_double_nan", "09 000000000000f87f".into()),
        (
            "builtin_string_long",
            format!("0a c801 {}", hex("0123456789".repeat(20).as_bytes())),
        ),
        // has_value false is omitted: the typename alone.
        ("typed_value_absent", typename_int),
        // has_value true (field 2 varint 1), empty value omitted.
        (
            "typed_value_long_zero",
            format!("0a16{}1001", hex(LONG.as_bytes())),
        ),
        // field 100, wire type 2: tag varint 0x322 = a2 06, then length 0.
        ("from_function_empty_invocation_response", "a20600".into()),
        ("from_function_no_response", String::new()),
    ];
    for (name, hex_text) in expected {
        assert_eq!(
            hex(&read_bin(&format!("{name}.bin"))),
            hex(&unhex(&hex_text)),
            "{name}"
        );
    }
    // Address com.example/counter/alice: three length-delimited strings, fields 1, 2, 3.
    assert_eq!(
        hex(&read_bin("address.bin")),
        format!(
            "0a0b{}1207{}1a05{}",
            hex(b"com.example"),
            hex(b"counter"),
            hex(b"alice")
        )
    );
}

#[test]
fn json_rendering_is_stable() {
    let value = J::Obj(vec![
        (
            "a",
            J::Arr(vec![J::Int(-1), J::float(1.5), J::float(f64::NAN)]),
        ),
        ("b", J::Obj(Vec::new())),
        ("c", J::str("é\"")),
        ("d", J::Null),
    ]);
    let mut text = String::new();
    value.write(&mut text, 0);
    assert_eq!(
        text,
        "{\n  \"a\": [\n    -1,\n    1.5,\n    \"NaN\"\n  ],\n  \"b\": {},\n  \"c\": \"é\\\"\",\n  \"d\": null\n}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(parsed, value.to_value());
}
