//! Encodes a batch's `ToFunction` request straight from the machine's state, for transports
//! that send bytes (HTTP).
//!
//! Building the prost structs first would copy every name, typename and address into new
//! `String`s only to serialise and drop them; this writes the same bytes into one buffer of
//! the exact size. The output is byte for byte what `ToFunction::encode_to_vec` gives for the
//! struct the machine builds for other transports (a property test holds the two together):
//! proto3 rules, so empty strings and bytes, `false` and absent messages are left out,
//! present messages are written even when empty, and fields go in field-number order.

use crate::address::Address;
use crate::message::{Argument, Invocation};
use bytes::Bytes;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

/// A typed value as the machine holds it: a typename, a presence flag and the bytes.
pub(super) struct Value<'a> {
    pub typename: &'a str,
    pub has_value: bool,
    pub bytes: &'a [u8],
}

impl<'a> From<&'a Argument> for Value<'a> {
    fn from(value: &'a Argument) -> Value<'a> {
        Value {
            typename: &value.typename,
            has_value: value.has_value,
            bytes: &value.value,
        }
    }
}

/// One state value of the request: its name and, when present, its value.
pub(super) struct State<'a> {
    pub name: &'a str,
    pub value: Option<Value<'a>>,
}

/// The encoded `ToFunction { invocation: InvocationBatchRequest { target, state, invocations } }`.
pub(super) fn encode_request(
    target: &Address,
    state: &[State<'_>],
    invocations: &[Invocation],
) -> Bytes {
    let target_len = address_len(target);
    let mut batch_len = field_len(1, target_len);
    for value in state {
        batch_len += field_len(2, persisted_value_len(value));
    }
    for invocation in invocations {
        batch_len += field_len(3, invocation_len(invocation));
    }
    let total = field_len(100, batch_len);
    let mut out = Vec::with_capacity(total);
    message_header(100, batch_len, &mut out);
    message_header(1, target_len, &mut out);
    write_address(target, &mut out);
    for value in state {
        message_header(2, persisted_value_len(value), &mut out);
        string_field(1, value.name, &mut out);
        if let Some(typed) = &value.value {
            message_header(2, value_len(typed), &mut out);
            write_value(typed, &mut out);
        }
    }
    for invocation in invocations {
        message_header(3, invocation_len(invocation), &mut out);
        if let Some(caller) = &invocation.caller {
            message_header(1, address_len(caller), &mut out);
            write_address(caller, &mut out);
        }
        let argument = Value::from(&invocation.argument);
        message_header(2, value_len(&argument), &mut out);
        write_value(&argument, &mut out);
    }
    debug_assert_eq!(out.len(), total);
    Bytes::from(out)
}

/// Bytes of a length-delimited field `tag` whose content is `len` bytes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Bytes of a string or bytes field (nothing when empty).
fn bytes_field_len(tag: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        field_len(tag, len)
    }
}

fn address_len(address: &Address) -> usize {
    bytes_field_len(1, address.function_type.namespace().len())
        + bytes_field_len(2, address.function_type.name().len())
        + bytes_field_len(3, address.id.len())
}

fn value_len(value: &Value<'_>) -> usize {
    let flag = if value.has_value { key_len(2) + 1 } else { 0 };
    bytes_field_len(1, value.typename.len()) + flag + bytes_field_len(3, value.bytes.len())
}

fn persisted_value_len(state: &State<'_>) -> usize {
    bytes_field_len(1, state.name.len())
        + state
            .value
            .as_ref()
            .map_or(0, |value| field_len(2, value_len(value)))
}

fn invocation_len(invocation: &Invocation) -> usize {
    invocation
        .caller
        .as_ref()
        .map_or(0, |caller| field_len(1, address_len(caller)))
        + field_len(2, value_len(&Value::from(&invocation.argument)))
}

fn message_header(tag: u32, len: usize, out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

fn string_field(tag: u32, text: &str, out: &mut Vec<u8>) {
    bytes_field(tag, text.as_bytes(), out);
}

fn bytes_field(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.is_empty() {
        message_header(tag, bytes.len(), out);
        out.extend_from_slice(bytes);
    }
}

fn write_address(address: &Address, out: &mut Vec<u8>) {
    string_field(1, address.function_type.namespace(), out);
    string_field(2, address.function_type.name(), out);
    string_field(3, &address.id, out);
}

fn write_value(value: &Value<'_>, out: &mut Vec<u8>) {
    string_field(1, value.typename, out);
    if value.has_value {
        encode_key(2, WireType::Varint, out);
        encode_varint(1, out);
    }
    bytes_field(3, value.bytes, out);
}
