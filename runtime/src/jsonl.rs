//! The JSON-lines form of messages and typed values.
//!
//! One JSON object per line, shared by the file ingress, the HTTP batch ingress, `eddy send`,
//! egress lines and dead letters:
//!
//! ```text
//! {"target": "com.example/counter/alice", "typename": "io.statefun.types/string", "value": "hello"}
//! ```
//!
//! - `target` (required): `namespace/name/id`.
//! - `caller` (optional): `namespace/name/id` or `null`; written by dead letters.
//! - `typename` (optional for scalars): inferred from a scalar `value` — string →
//!   `io.statefun.types/string`, bool → `bool`, integer → `long`, other number → `double`.
//! - exactly one of `value` / `value_base64`. For a built-in typename `value` is the JSON
//!   scalar, converted to the built-in wire encoding; for any other typename the bytes are the
//!   compact JSON text of `value`. `value_base64` always gives the raw bytes.
//!
//! Rendering ([`render_typed_value`]) is lossless: a value is written as `value` only when
//! reading it back yields the very same bytes, otherwise as `value_base64`. So every egress
//! record and dead letter can be replayed byte for byte.

use crate::address::{Address, FunctionType};
use crate::message::{Argument, Message, Payload};
use base64::Engine as _;
use bytes::Bytes;
use eddy_protocol::typed::{BOOL, DOUBLE, FLOAT, INT, LONG, STRING};
use eddy_protocol::{BuiltIn, TypedValue};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The fields a message line may have, in the order they are written.
pub const MESSAGE_FIELDS: [&str; 5] = ["target", "caller", "typename", "value", "value_base64"];

/// Deepest nesting of a JSON `value` that is rendered as JSON (deeper values are written as
/// `value_base64`, so the enclosing line stays within serde_json's recursion limit).
const MAX_RENDERED_DEPTH: usize = 64;

/// Parses one JSON line into a message from outside (its `caller` is `None` unless the line
/// names one). Errors name the field, e.g. "field `target`: ..."; callers prefix "line N: ".
pub fn parse_message_line(line: &str) -> Result<Message, String> {
    LineParser::default().parse(line)
}

/// Parses message lines one after another, sharing what consecutive lines have in common
/// (the target's function type), so a reader of many lines allocates less per message.
/// Accepts and rejects exactly what [`parse_message_line`] does.
#[derive(Debug, Default)]
pub struct LineParser {
    reuse: Reuse,
}

/// What consecutive lines usually have in common.
#[derive(Debug, Default)]
struct Reuse {
    /// The last target's function type (shared by the next target of the same type).
    function_type: Option<FunctionType>,
    /// The last typename (valid: the same one is not checked again), shared by the next
    /// argument of the same type.
    typename: Option<Arc<str>>,
}

impl LineParser {
    /// A parser whose first line may share `function_type` (the last one of an earlier
    /// parser, see [`LineParser::last_function_type`]).
    pub fn continuing(function_type: Option<FunctionType>) -> LineParser {
        LineParser {
            reuse: Reuse {
                function_type,
                typename: None,
            },
        }
    }

    /// The function type of the last target parsed.
    pub fn last_function_type(&self) -> Option<FunctionType> {
        self.reuse.function_type.clone()
    }

    /// Parses one line (see [`parse_message_line`]).
    pub fn parse(&mut self, line: &str) -> Result<Message, String> {
        // Three ways in, all ending in `build_message`, so they accept the same lines:
        // - the common shape (string fields without escapes) is scanned without serde;
        // - any other well-formed line deserialises straight into borrowed fields;
        // - anything those reject is parsed again slowly, to name the field at fault.
        if let Some(fields) = scan_plain_line(line) {
            return build_message(
                &mut self.reuse,
                fields.target,
                fields.caller,
                fields.typename,
                None,
                fields.value_base64,
            );
        }
        match serde_json::from_str::<LineFields<'_>>(line) {
            Ok(fields) => build_message(
                &mut self.reuse,
                fields.target.as_deref(),
                fields.caller.as_deref(),
                fields.typename.as_deref(),
                fields.value.as_ref(),
                fields.value_base64.as_deref(),
            ),
            Err(_) => parse_message_line_slowly(line),
        }
    }
}

/// The string fields of a line in the common shape.
#[derive(Debug, Default, PartialEq)]
struct PlainFields<'a> {
    target: Option<&'a str>,
    caller: Option<&'a str>,
    typename: Option<&'a str>,
    value_base64: Option<&'a str>,
}

/// Reads a line of the most common shape without a general JSON parser: one flat object
/// whose fields are `target`, `caller`, `typename` and `value_base64`, each at most once,
/// each a string with no escape and no control character. `None` for anything else (a
/// `value` field, `null`, escapes, unknown or repeated fields, malformed JSON): the serde
/// path then decides. For every line it reads, it yields what serde would (a property test
/// checks this).
fn scan_plain_line(line: &str) -> Option<PlainFields<'_>> {
    let bytes = line.as_bytes();
    let mut at = skip_json_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut fields = PlainFields::default();
    loop {
        at = skip_json_space(bytes, at + 1);
        let (slot, end) = match field_name(&bytes[at.min(bytes.len())..]) {
            Some((FieldName::Target, length)) => (&mut fields.target, at + length),
            Some((FieldName::Caller, length)) => (&mut fields.caller, at + length),
            Some((FieldName::Typename, length)) => (&mut fields.typename, at + length),
            Some((FieldName::ValueBase64, length)) => (&mut fields.value_base64, at + length),
            None => return None,
        };
        at = skip_json_space(bytes, end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_json_space(bytes, at + 1);
        let (value, end) = plain_string(line, at)?;
        if slot.replace(value).is_some() {
            return None;
        }
        at = skip_json_space(bytes, end);
        match bytes.get(at) {
            Some(b',') => continue,
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_json_space(bytes, at + 1) == bytes.len()).then_some(fields)
}

/// The fields the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldName {
    Target,
    Caller,
    Typename,
    ValueBase64,
}

/// The field named by the quoted key at the start of `bytes`, and the key's length with its
/// quotes; `None` for any other key (or an escaped one).
fn field_name(bytes: &[u8]) -> Option<(FieldName, usize)> {
    const KEYS: [(&[u8], FieldName); 4] = [
        (b"\"target\"", FieldName::Target),
        (b"\"typename\"", FieldName::Typename),
        (b"\"value_base64\"", FieldName::ValueBase64),
        (b"\"caller\"", FieldName::Caller),
    ];
    KEYS.iter()
        .find(|(key, _)| bytes.starts_with(key))
        .map(|(key, name)| (*name, key.len()))
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
fn skip_json_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The contents of the string starting at `at` (a `"`) and the index after its closing
/// quote — if it has no escape and no control character.
fn plain_string(line: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = line.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let end = start + string_stop(bytes.get(start..)?)?;
    // Only the closing quote may end it: a backslash or control character means serde.
    (bytes[end] == b'"').then(|| (&line[start..end], end + 1))
}

/// The index of the first `"`, `\\` or control character (below 0x20) in `bytes`. Strings
/// here are short, so eight bytes at a time by word arithmetic beats a SIMD search's set-up.
fn string_stop(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Non-zero if some byte of `word` is below `limit` (at most 0x80) or is zero.
    let below = |word: u64, limit: u64| word.wrapping_sub(ONES * limit) & !word & HIGHS;
    let is_stop = |byte: u8| byte == b'"' || byte == b'\\' || byte < 0x20;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        let flagged = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if flagged != 0 {
            // The word test may flag a byte after a real stop, never miss one: look closely.
            return chunk
                .iter()
                .position(|&byte| is_stop(byte))
                .map(|i| offset + i);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| is_stop(byte))
        .map(|i| offset + i)
}

/// The fields of a message line, borrowed from the line where no unescaping is needed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LineFields<'a> {
    #[serde(borrow, default)]
    target: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    caller: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    typename: Option<std::borrow::Cow<'a, str>>,
    /// `Some(Value::Null)` for an explicit `null`, as in the slow path.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(borrow, default)]
    value_base64: Option<std::borrow::Cow<'a, str>>,
}

/// A field that is present is `Some`, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Parses a line through a generic JSON value, to report precisely what is wrong with it.
fn parse_message_line_slowly(line: &str) -> Result<Message, String> {
    let object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err(format!(
                "expected a JSON object, got {}",
                json_kind_name(&other)
            ))
        }
        Err(error) => return Err(format!("invalid JSON: {error}")),
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !MESSAGE_FIELDS.contains(&key.as_str()))
    {
        return Err(format!(
            "field `{unknown}`: unknown field (expected target, typename, value, value_base64, caller)"
        ));
    }
    let target = match object.get("target") {
        None => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(other) => {
            return Err(format!(
                "field `target`: expected a string \"namespace/name/id\", got {}",
                json_kind_name(other)
            ))
        }
    };
    let caller = match object.get("caller") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(other) => {
            return Err(format!(
                "field `caller`: expected a string \"namespace/name/id\" or null, got {}",
                json_kind_name(other)
            ))
        }
    };
    let typename = match object.get("typename") {
        None => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(other) => {
            return Err(format!(
                "field `typename`: expected a string, got {}",
                json_kind_name(other)
            ))
        }
    };
    let value_base64 = match object.get("value_base64") {
        None => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(other) => {
            return Err(format!(
                "field `value_base64`: expected a base64 string, got {}",
                json_kind_name(other)
            ))
        }
    };
    build_message(
        &mut Reuse::default(),
        target,
        caller,
        typename,
        object.get("value"),
        value_base64,
    )
}

/// A message from the fields of a line, each already of the right JSON kind.
fn build_message(
    reuse: &mut Reuse,
    target: Option<&str>,
    caller: Option<&str>,
    typename: Option<&str>,
    value: Option<&Value>,
    value_base64: Option<&str>,
) -> Result<Message, String> {
    let target = match target {
        Some(text) => Address::parse_reusing(text, &mut reuse.function_type)
            .map_err(|error| format!("field `target`: {error}"))?,
        None => return Err("field `target`: missing (expected \"namespace/name/id\")".into()),
    };
    let caller = caller
        .map(Address::parse)
        .transpose()
        .map_err(|error| format!("field `caller`: {error}"))?;
    if let Some(typename) = typename.filter(|typename| Some(*typename) != reuse.typename.as_deref())
    {
        validate_typename(typename).map_err(|error| format!("field `typename`: {error}"))?;
    }
    let (typename, bytes) = typed_value_of_fields(typename, value, value_base64)?;
    let argument = Argument::with_shared_typename(typename, bytes, &mut reuse.typename);
    Ok(Message {
        target,
        caller,
        argument,
    })
}

/// Builds a typed value from the `typename`, `value` and `value_base64` fields of a line
/// (exactly one of `value` / `value_base64`). Errors name the field.
pub fn typed_value_from_json(
    typename: Option<&str>,
    value: Option<&Value>,
    value_base64: Option<&str>,
) -> Result<TypedValue, String> {
    if let Some(typename) = typename {
        validate_typename(typename).map_err(|error| format!("field `typename`: {error}"))?;
    }
    let (typename, bytes) = typed_value_of_fields(typename, value, value_base64)?;
    Ok(TypedValue::new(typename, Bytes::from(bytes)))
}

/// The typename and bytes of [`typed_value_from_json`], for a typename that has been
/// validated already.
fn typed_value_of_fields<'a>(
    typename: Option<&'a str>,
    value: Option<&Value>,
    value_base64: Option<&str>,
) -> Result<(&'a str, Payload), String> {
    match (value, value_base64) {
        (Some(_), Some(_)) => {
            Err("field `value_base64`: give either `value` or `value_base64`, not both".into())
        }
        (None, None) => Err("field `value`: missing (give `value` or `value_base64`)".into()),
        (None, Some(encoded)) => {
            let Some(typename) = typename else {
                return Err("field `typename`: required with `value_base64`".into());
            };
            let bytes = decode_base64(encoded)
                .map_err(|error| format!("field `value_base64`: invalid base64: {error}"))?;
            // Raw bytes are taken as they are, even for a built-in typename: dead letters of
            // values that do not decode must replay unchanged.
            Ok((typename, bytes))
        }
        (Some(value), None) => {
            let typename = match typename {
                Some(typename) => typename,
                None => infer_typename(value)?,
            };
            if BuiltIn::is_builtin(typename) {
                Ok((
                    typename,
                    builtin_from_json(typename, value)?.encode().into(),
                ))
            } else {
                let bytes = serde_json::to_vec(value)
                    .map_err(|error| format!("field `value`: cannot encode: {error}"))?;
                Ok((typename, bytes.into()))
            }
        }
    }
}

/// Decodes standard padded base64: a small value straight into an inline [`Payload`], a
/// larger one into a buffer of exactly the decoded size (so turning it into `Bytes` neither
/// reallocates nor allocates a shared header).
fn decode_base64(encoded: &str) -> Result<Payload, base64::DecodeError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let padding = encoded.bytes().rev().take(2).filter(|&b| b == b'=').count();
    let exact = (encoded.len() / 4 * 3).saturating_sub(padding);
    let decoded = if exact <= Payload::INLINE {
        let mut small = [0u8; Payload::INLINE];
        engine
            .decode_slice(encoded, &mut small)
            .map(|written| Payload::copy_from_slice(&small[..written]))
    } else {
        let mut bytes = vec![0u8; exact];
        engine.decode_slice(encoded, &mut bytes).map(|written| {
            bytes.truncate(written);
            Payload::from(bytes)
        })
    };
    match decoded {
        Ok(payload) => Ok(payload),
        // A length the estimate above did not foresee: let the engine size the buffer.
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            engine.decode(encoded).map(Payload::from)
        }
        Err(base64::DecodeSliceError::DecodeError(error)) => Err(error),
    }
}

/// Checks a typename: `namespace/name` (split at the last `/`, both parts non-empty), no
/// whitespace or control characters. The message names no field; callers add it.
pub fn validate_typename(typename: &str) -> Result<(), String> {
    if typename.is_empty() {
        return Err("the typename is empty (expected \"namespace/name\", e.g. \"io.statefun.types/string\")".into());
    }
    if let Some(bad) = typename
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "typename {typename:?} contains the character {bad:?}; whitespace and control characters are not allowed"
        ));
    }
    match typename.rsplit_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(format!(
            "typename {typename:?} is not \"namespace/name\" (e.g. \"io.statefun.types/string\" or \"com.example/Greeting\")"
        )),
    }
}

/// Writes `value` into `out` as `typename` plus either `value` (when reading it back gives the
/// same bytes) or `value_base64`. A value without `has_value` is rendered as empty bytes.
pub fn render_typed_value(value: &TypedValue, out: &mut Map<String, Value>) {
    out.insert("typename".into(), Value::String(value.typename.clone()));
    match json_rendering(&value.typename, &value.value) {
        Some(json) => {
            out.insert("value".into(), json);
        }
        None => {
            out.insert(
                "value_base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(&value.value)),
            );
        }
    }
}

/// A message as a JSON object: `target`, `caller` (string or null), `typename` and `value` or
/// `value_base64`. [`parse_message_line`] reads it back unchanged.
pub fn message_to_json(message: &Message) -> Value {
    let mut object = Map::new();
    object.insert("target".into(), Value::String(message.target.to_string()));
    object.insert(
        "caller".into(),
        message
            .caller
            .as_ref()
            .map_or(Value::Null, |caller| Value::String(caller.to_string())),
    );
    render_typed_value(&message.argument.to_typed_value(), &mut object);
    Value::Object(object)
}

/// Writes `object` as compact JSON with the keys of `order` first, in that order, then any
/// other keys (sorted). Used to write lines whose field order matches the documentation.
pub fn write_object_ordered(object: &Map<String, Value>, order: &[&str], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut write_field = |key: &str, value: &Value, out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
        // Serialising into a Vec cannot fail for a Value (its keys are strings).
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    };
    for key in order {
        if let Some(value) = object.get(*key) {
            write_field(key, value, out);
        }
    }
    for (key, value) in object {
        if !order.contains(&key.as_str()) {
            write_field(key, value, out);
        }
    }
    out.push(b'}');
}

/// Writes `message` as one compact JSON object in the documented field order.
pub fn write_message(message: &Message, out: &mut Vec<u8>) {
    if let Value::Object(object) = message_to_json(message) {
        write_object_ordered(&object, &MESSAGE_FIELDS, out);
    }
}

/// The JSON form of `bytes` of type `typename`, if reading it back gives the same bytes.
fn json_rendering(typename: &str, bytes: &Bytes) -> Option<Value> {
    if BuiltIn::is_builtin(typename) {
        let builtin = BuiltIn::decode(typename, bytes).ok()?;
        if builtin.encode() != *bytes {
            return None; // a non-canonical encoding: keep the exact bytes
        }
        let json = match builtin {
            BuiltIn::Bool(value) => Value::Bool(value),
            BuiltIn::Int(value) => Value::from(value),
            BuiltIn::Long(value) => Value::from(value),
            BuiltIn::String(value) => Value::String(value),
            BuiltIn::Double(value) => Value::Number(serde_json::Number::from_f64(value)?),
            BuiltIn::Float(value) => float_to_json(value)?,
        };
        // serde_json's default float parser may be off by one ulp on some 17-digit numbers:
        // keep the exact bytes unless the text reads back as the very same value.
        let text = serde_json::to_string(&json).ok()?;
        let reread: Value = serde_json::from_str(&text).ok()?;
        let same = builtin_from_json(typename, &reread).ok()?.encode() == *bytes;
        return same.then_some(json);
    }
    let parsed: Value = serde_json::from_slice(bytes).ok()?;
    if json_depth(&parsed) > MAX_RENDERED_DEPTH {
        return None;
    }
    let rewritten = serde_json::to_vec(&parsed).ok()?;
    (rewritten == *bytes).then_some(parsed)
}

/// A float as the shortest decimal that reads back as the same `f32` (not the long `f64`
/// expansion), or `None` if it is not finite.
fn float_to_json(value: f32) -> Option<Value> {
    let short = format!("{value}").parse::<f64>().ok();
    let candidate = short
        .filter(|wide| (*wide as f32).to_bits() == value.to_bits())
        .unwrap_or(f64::from(value));
    serde_json::Number::from_f64(candidate).map(Value::Number)
}

/// Nesting depth of a JSON value (a scalar is 0).
fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The built-in typename a scalar `value` implies when no typename is given.
fn infer_typename(value: &Value) -> Result<&'static str, String> {
    match value {
        Value::String(_) => Ok(STRING),
        Value::Bool(_) => Ok(BOOL),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(LONG),
        Value::Number(_) => Ok(DOUBLE),
        other => Err(format!(
            "field `typename`: required when `value` is {} (only strings, bools and numbers imply a type)",
            json_kind_name(other)
        )),
    }
}

/// Converts a JSON scalar to the built-in type `typename`; a type or range mismatch is an error.
fn builtin_from_json(typename: &str, value: &Value) -> Result<BuiltIn, String> {
    let mismatch = |expected: &str| {
        format!(
            "field `value`: {typename} expects {expected}, got {}",
            json_kind_name(value)
        )
    };
    match typename {
        BOOL => value
            .as_bool()
            .map(BuiltIn::Bool)
            .ok_or_else(|| mismatch("a bool")),
        STRING => value
            .as_str()
            .map(|text| BuiltIn::String(text.to_string()))
            .ok_or_else(|| mismatch("a string")),
        INT | LONG => {
            let Value::Number(number) = value else {
                return Err(mismatch("an integer"));
            };
            let wide = number.as_i64().ok_or_else(|| {
                if number.is_u64() {
                    format!("field `value`: {number} is out of range for {typename}")
                } else {
                    format!("field `value`: {typename} expects an integer, got {number}")
                }
            })?;
            if typename == LONG {
                return Ok(BuiltIn::Long(wide));
            }
            i32::try_from(wide)
                .map(BuiltIn::Int)
                .map_err(|_| format!("field `value`: {wide} is out of range for {typename}"))
        }
        DOUBLE => value
            .as_f64()
            .map(BuiltIn::Double)
            .ok_or_else(|| mismatch("a number")),
        FLOAT => {
            let wide = value.as_f64().ok_or_else(|| mismatch("a number"))?;
            if wide.abs() > f64::from(f32::MAX) {
                return Err(format!(
                    "field `value`: {wide} is out of range for {typename}"
                ));
            }
            Ok(BuiltIn::Float(wide as f32))
        }
        other => Err(format!(
            "field `typename`: {other:?} is not a built-in type"
        )),
    }
}

/// "a string", "an object", ... for error messages.
fn json_kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(number) if number.is_f64() => "a non-integer number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_slow_paths_agree() {
        // Escapes (owned strings in the fast path), an explicit null value, duplicate fields
        // (rejected by the fast path, last-wins in the slow one) and a null caller.
        let escaped = parse_message_line(r#"{"target":"a\/b\/c","value":"\u00e9"}"#)
            .expect("escaped line parses");
        assert_eq!(escaped.target.to_string(), "a/b/c");
        assert_eq!(
            BuiltIn::from_typed_value(&escaped.argument.to_typed_value()).ok(),
            Some(BuiltIn::String("é".into()))
        );
        for line in [
            r#"{"target":"a/b/c","value":null,"value_base64":"AA=="}"#,
            r#"{"target":"a/b/c","value":1,"value":2}"#,
            r#"{"target":"a/b/c","caller":null,"value":1}"#,
            r#"{"target":"a/b/c","typename":"x/y","value_base64":"AA=="}"#,
            r#"{"target":5,"value":1}"#,
        ] {
            assert_eq!(
                parse_message_line(line),
                parse_message_line_slowly(line),
                "{line}"
            );
        }
    }
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(line: &str) -> Message {
        parse_message_line(line).expect("valid line")
    }

    fn line_of(message: &Message) -> String {
        let mut out = Vec::new();
        write_message(message, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn infers_builtin_types_from_scalars() {
        let cases = [
            (json!("hi"), BuiltIn::String("hi".into())),
            (json!(true), BuiltIn::Bool(true)),
            (json!(42), BuiltIn::Long(42)),
            (json!(-7), BuiltIn::Long(-7)),
            (json!(1.5), BuiltIn::Double(1.5)),
        ];
        for (value, expected) in cases {
            let line = json!({"target": "com.example/f/a", "value": value}).to_string();
            let message = parse(&line);
            assert_eq!(message.argument, expected.to_typed_value(), "{line}");
            assert_eq!(message.target.to_string(), "com.example/f/a");
            assert_eq!(message.caller, None);
        }
    }

    #[test]
    fn explicit_builtin_types_convert_and_check_ranges() {
        let int = parse(r#"{"target":"a/b/c","typename":"io.statefun.types/int","value":-5}"#);
        assert_eq!(int.argument, BuiltIn::Int(-5).to_typed_value());
        let float = parse(r#"{"target":"a/b/c","typename":"io.statefun.types/float","value":0.1}"#);
        assert_eq!(float.argument, BuiltIn::Float(0.1).to_typed_value());
        let double = parse(r#"{"target":"a/b/c","typename":"io.statefun.types/double","value":3}"#);
        assert_eq!(double.argument, BuiltIn::Double(3.0).to_typed_value());

        for (line, needle) in [
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/int","value":3000000000}"#,
                "out of range",
            ),
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/long","value":18446744073709551615}"#,
                "out of range",
            ),
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/int","value":1.5}"#,
                "expects an integer",
            ),
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/float","value":1e300}"#,
                "out of range",
            ),
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/bool","value":"yes"}"#,
                "expects a bool",
            ),
            (
                r#"{"target":"a/b/c","typename":"io.statefun.types/string","value":1}"#,
                "expects a string",
            ),
        ] {
            let error = parse_message_line(line).expect_err(line);
            assert!(error.starts_with("field `value`"), "{error}");
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn custom_types_carry_json_text_or_raw_bytes() {
        let json_line = r#"{"target":"a/b/c","typename":"com.example/Greeting","value":{"name":"alice","n":[1,2]}}"#;
        let message = parse(json_line);
        assert_eq!(&*message.argument.typename, "com.example/Greeting");
        assert_eq!(
            &message.argument.value[..],
            br#"{"n":[1,2],"name":"alice"}"#
        );

        let raw =
            parse(r#"{"target":"a/b/c","typename":"com.example/Blob","value_base64":"AAEC/w=="}"#);
        assert_eq!(&raw.argument.value[..], &[0, 1, 2, 255]);
        assert!(raw.argument.has_value);
    }

    #[test]
    fn errors_name_the_field() {
        for (line, field) in [
            (r#"{"value":1}"#, "field `target`"),
            (r#"{"target":7,"value":1}"#, "field `target`"),
            (r#"{"target":"a/b","value":1}"#, "field `target`"),
            (r#"{"target":"a/b/c"}"#, "field `value`"),
            (r#"{"target":"a/b/c","value":{"x":1}}"#, "field `typename`"),
            (r#"{"target":"a/b/c","value":null}"#, "field `typename`"),
            (
                r#"{"target":"a/b/c","value_base64":"AA=="}"#,
                "field `typename`",
            ),
            (
                r#"{"target":"a/b/c","typename":"x/y","value":1,"value_base64":"AA=="}"#,
                "field `value_base64`",
            ),
            (
                r#"{"target":"a/b/c","typename":"x/y","value_base64":"%%"}"#,
                "field `value_base64`",
            ),
            (
                r#"{"target":"a/b/c","typename":"nope","value":1}"#,
                "field `typename`",
            ),
            (
                r#"{"target":"a/b/c","typename":"a/ b","value":1}"#,
                "field `typename`",
            ),
            (
                r#"{"target":"a/b/c","typename":5,"value":1}"#,
                "field `typename`",
            ),
            (
                r#"{"target":"a/b/c","caller":"x","value":1}"#,
                "field `caller`",
            ),
            (r#"{"target":"a/b/c","valu":1}"#, "field `valu`"),
        ] {
            let error = parse_message_line(line).expect_err(line);
            assert!(error.starts_with(field), "{line}: {error}");
        }
        assert!(parse_message_line("[1]").is_err());
        assert!(parse_message_line("{")
            .expect_err("bad")
            .contains("invalid JSON"));
    }

    #[test]
    fn renders_builtins_as_scalars_and_the_rest_losslessly() {
        let render = |value: TypedValue| {
            let mut out = Map::new();
            render_typed_value(&value, &mut out);
            Value::Object(out)
        };
        assert_eq!(
            render(BuiltIn::String("hi".into()).into()),
            json!({"typename": STRING, "value": "hi"})
        );
        assert_eq!(
            render(BuiltIn::Float(0.1).into()),
            json!({"typename": FLOAT, "value": 0.1})
        );
        assert_eq!(
            render(BuiltIn::Double(f64::NAN).into())["value_base64"],
            json!(base64::engine::general_purpose::STANDARD
                .encode(BuiltIn::Double(f64::NAN).encode()))
        );
        assert_eq!(
            render(TypedValue::new("x/y", &br#"{"a":1}"#[..])),
            json!({"typename": "x/y", "value": {"a": 1}})
        );
        // Valid JSON, but not in compact canonical form: kept as bytes.
        assert_eq!(
            render(TypedValue::new("x/y", &br#"{"a": 1}"#[..])),
            json!({"typename": "x/y", "value_base64": "eyJhIjogMX0="})
        );
        // A non-canonical built-in encoding (explicit zero) is kept as bytes too.
        assert!(render(TypedValue::new(BOOL, vec![0x08, 0x00]))
            .get("value_base64")
            .is_some());
    }

    #[test]
    fn message_lines_keep_the_documented_field_order() {
        let message = Message {
            target: Address::parse("com.example/f/a").expect("address"),
            caller: None,
            argument: BuiltIn::Long(3).into(),
        };
        assert_eq!(
            line_of(&message),
            r#"{"target":"com.example/f/a","caller":null,"typename":"io.statefun.types/long","value":3}"#
        );
        assert_eq!(message_to_json(&message)["caller"], Value::Null);
    }

    #[test]
    fn deeply_nested_json_is_written_as_base64() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let message = Message {
            target: Address::parse("a/b/c").expect("address"),
            caller: None,
            argument: Argument::new("x/y", deep.clone().into_bytes()),
        };
        let line = line_of(&message);
        assert!(line.contains("value_base64"));
        assert_eq!(parse(&line).argument.value, deep.into_bytes());
    }

    fn arb_typename() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9.]{0,12}/[A-Za-z0-9_.]{1,16}",
            "type\\.googleapis\\.com/[a-z]{1,8}\\.[A-Z][a-z]{0,8}",
            Just(BOOL.to_string()),
            Just(INT.to_string()),
            Just(LONG.to_string()),
            Just(FLOAT.to_string()),
            Just(DOUBLE.to_string()),
            Just(STRING.to_string()),
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn arb_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            arb_json().prop_map(|value| serde_json::to_vec(&value).expect("json")),
            ".{0,24}".prop_map(String::into_bytes),
        ]
    }

    fn arb_builtin() -> impl Strategy<Value = BuiltIn> {
        prop_oneof![
            any::<bool>().prop_map(BuiltIn::Bool),
            any::<i32>().prop_map(BuiltIn::Int),
            any::<i64>().prop_map(BuiltIn::Long),
            any::<f32>().prop_map(BuiltIn::Float),
            any::<f64>().prop_map(BuiltIn::Double),
            ".{0,24}".prop_map(BuiltIn::String),
        ]
    }

    fn arb_value() -> impl Strategy<Value = TypedValue> {
        prop_oneof![
            (arb_typename(), arb_bytes())
                .prop_map(|(typename, bytes)| TypedValue::new(typename, bytes)),
            arb_builtin().prop_map(TypedValue::from),
        ]
    }

    /// JSON-ish text of one field: a key and a value from small alphabets that include
    /// everything that matters to the scanner (quotes, backslashes, control characters,
    /// non-ASCII, non-string values, whitespace).
    fn arb_field() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            3 => Just("target".to_string()),
            3 => Just("caller".to_string()),
            3 => Just("typename".to_string()),
            3 => Just("value_base64".to_string()),
            1 => Just("value".to_string()),
            1 => "[a-z\\\\\"é\\x01]{0,4}",
        ];
        let plain = "[a-zA-Z0-9/+=. é\\x7f]{0,8}";
        let nasty = "[a-z/é\\\\\"\\x00\\x1f]{0,8}";
        let value = prop_oneof![
            12 => plain.prop_map(|text| format!("\"{text}\"")),
            2 => nasty.prop_map(|text| format!("\"{text}\"")),
            1 => Just("null".to_string()),
            1 => Just("1".to_string()),
            1 => Just("{}".to_string()),
            1 => plain.prop_map(|text| text.to_string()),
        ];
        let space = prop_oneof![6 => Just(String::new()), 1 => "[ \t\r\n\x0b]{1,2}"];
        let colon = prop_oneof![12 => Just(":"), 1 => Just(""), 1 => Just(";")];
        (
            space.clone(),
            key,
            space.clone(),
            colon,
            space.clone(),
            value,
            space,
        )
            .prop_map(|(a, key, b, colon, c, value, d)| {
                format!("{a}\"{key}\"{b}{colon}{c}{value}{d}")
            })
    }

    fn arb_plainish_line() -> impl Strategy<Value = String> {
        (
            "[ \t]{0,1}",
            prop_oneof![12 => Just("{"), 1 => Just("["), 1 => Just("")],
            proptest::collection::vec(arb_field(), 0..4),
            prop_oneof![12 => Just(","), 1 => Just(", "), 1 => Just(";")],
            prop_oneof![12 => Just("}"), 1 => Just("]"), 1 => Just("},"), 1 => Just("")],
            "[ \t\r]{0,2}",
        )
            .prop_map(|(lead, open, fields, separator, close, trail)| {
                format!("{lead}{open}{}{close}{trail}", fields.join(separator))
            })
    }

    #[test]
    fn the_scanner_reads_the_common_shape_and_leaves_the_rest_to_serde() {
        let line = r#" {"target":"a/b/c", "typename" : "x/y","value_base64":"AA=="} "#;
        assert_eq!(
            scan_plain_line(line),
            Some(PlainFields {
                target: Some("a/b/c"),
                caller: None,
                typename: Some("x/y"),
                value_base64: Some("AA=="),
            })
        );
        for other in [
            r#"{"target":"a/b/c","value":1}"#,
            r#"{"target":"a\/b/c","typename":"x/y","value_base64":"AA=="}"#,
            r#"{"target":"a/b/c","caller":null,"typename":"x/y","value_base64":"AA=="}"#,
            r#"{"target":"a/b/c","target":"a/b/d"}"#,
            r#"{"target":"a/b/c"} x"#,
            r#"{"target":"a/b/c","#,
            r#"{}"#,
        ] {
            assert_eq!(scan_plain_line(other), None, "{other}");
        }
    }

    #[test]
    fn the_line_generator_exercises_both_outcomes_of_the_scanner() {
        use proptest::strategy::ValueTree as _;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = arb_plainish_line();
        let read = (0..2000)
            .filter(|_| {
                let line = strategy.new_tree(&mut runner).expect("a line").current();
                scan_plain_line(&line).is_some()
            })
            .count();
        assert!((100..1900).contains(&read), "{read} of 2000 lines read");
    }

    proptest! {
        // About one generated line in eight is of the scanner's shape.
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn what_the_scanner_reads_serde_reads_the_same(line in arb_plainish_line()) {
            if let Some(fields) = scan_plain_line(&line) {
                let parsed = serde_json::from_str::<LineFields<'_>>(&line);
                prop_assert!(parsed.is_ok(), "serde rejects {line:?}: {:?}", parsed.err());
                let Ok(parsed) = parsed else { unreachable!() };
                prop_assert!(parsed.value.is_none());
                prop_assert_eq!(fields.target, parsed.target.as_deref());
                prop_assert_eq!(fields.caller, parsed.caller.as_deref());
                prop_assert_eq!(fields.typename, parsed.typename.as_deref());
                prop_assert_eq!(fields.value_base64, parsed.value_base64.as_deref());
            }
        }

    }

    proptest! {
        #[test]
        fn string_stop_finds_the_first_quote_backslash_or_control(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_stop(&bytes), expected);
        }

        #[test]
        fn string_stop_on_text_with_rare_stops(text in "[a-z0-9/+=. é\u{7f}]{0,30}[\"\\\\\u{1}]?[a-z\"]{0,12}") {
            let bytes = text.as_bytes();
            let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            prop_assert_eq!(string_stop(bytes), expected);
        }
    }

    proptest! {
        #[test]
        fn base64_decodes_to_its_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let decoded = decode_base64(&encoded).expect("valid base64");
            prop_assert_eq!(decoded, bytes);
        }

        #[test]
        fn render_then_parse_round_trips_byte_for_byte(
            value in arb_value(),
            id in "[^\\n]{1,12}",
            with_caller in any::<bool>(),
        ) {
            let message = Message {
                target: Address::parse(&format!("com.example/f/{id}")).expect("address"),
                caller: with_caller.then(|| Address::parse("com.example/g/x").expect("address")),
                argument: value.into(),
            };
            let line = line_of(&message);
            prop_assert!(!line.contains('\n'));
            let back = parse_message_line(&line).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&back.argument.typename, &message.argument.typename);
            prop_assert_eq!(&back.argument.value, &message.argument.value);
            prop_assert_eq!(&back.target, &message.target);
            prop_assert_eq!(&back.caller, &message.caller);
            // message_to_json agrees with the line writer.
            let via_value = message_to_json(&message).to_string();
            let again = parse_message_line(&via_value).map_err(TestCaseError::fail)?;
            prop_assert_eq!(again.argument, back.argument);
        }
    }
}
