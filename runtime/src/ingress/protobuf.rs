//! The binary body of an HTTP ingress batch: `io.eddy.ingress.v1.MessageBatch`
//! (`protocol/proto/ingress.proto`), read straight into [`Message`]s.
//!
//! `POST /v1/messages` with `Content-Type: application/x-protobuf` carries one encoded
//! `MessageBatch`: the same messages as the JSON-lines form, without text parsing or base64.
//! The body is read without building the generated structs: targets and typenames are read in
//! place (consecutive messages share their function type and typename, as consecutive JSON
//! lines do) and each value is copied once, into the message when small. As protobuf readers
//! do, unknown fields are skipped and the last of a repeated field wins. Errors name the
//! message (counting from 1) and the field.

use crate::address::{Address, FunctionType};
use crate::jsonl::validate_typename;
use crate::message::{Argument, Message, Payload};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use std::sync::Arc;

/// The media type of the binary batch.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Reads batch bodies one after another, sharing what consecutive messages have in common.
#[derive(Debug, Default)]
pub struct BatchReader {
    function_type: Option<FunctionType>,
    /// The last typename (valid), shared by the next message of the same type.
    typename: Option<Arc<str>>,
}

impl BatchReader {
    /// A reader whose first message may share `function_type` (see [`BatchReader::last_function_type`]).
    pub fn continuing(function_type: Option<FunctionType>) -> BatchReader {
        BatchReader {
            function_type,
            typename: None,
        }
    }

    /// The function type of the last target read.
    pub fn last_function_type(&self) -> Option<FunctionType> {
        self.function_type.clone()
    }

    /// The messages of one encoded `MessageBatch`, in order. Errors read "message N: ...".
    pub fn read(&mut self, mut body: &[u8]) -> Result<Vec<Message>, String> {
        let mut messages = Vec::new();
        while !body.is_empty() {
            let (tag, wire_type) = decode_key(&mut body)
                .map_err(|error| format!("the body is not a MessageBatch: {error}"))?;
            if tag != 1 {
                skip(tag, wire_type, &mut body)
                    .map_err(|error| format!("the body is not a MessageBatch: {error}"))?;
                continue;
            }
            let number = messages.len() + 1;
            let encoded = length_delimited(wire_type, &mut body)
                .map_err(|error| format!("message {number}: {error}"))?;
            let message = self
                .message(encoded)
                .map_err(|error| format!("message {number}: {error}"))?;
            messages.push(message);
        }
        Ok(messages)
    }

    fn message(&mut self, mut encoded: &[u8]) -> Result<Message, String> {
        let (mut target, mut typename, mut value) = (None, None, None);
        while !encoded.is_empty() {
            let (tag, wire_type) = decode_key(&mut encoded).map_err(|error| error.to_string())?;
            match tag {
                1 => target = Some(text(wire_type, &mut encoded, "target")?),
                2 => typename = Some(text(wire_type, &mut encoded, "typename")?),
                3 => {
                    value = Some(
                        length_delimited(wire_type, &mut encoded)
                            .map_err(|error| format!("field `value`: {error}"))?,
                    )
                }
                _ => skip(tag, wire_type, &mut encoded).map_err(|error| error.to_string())?,
            }
        }
        let target = target.ok_or("field `target`: missing (expected \"namespace/name/id\")")?;
        let target = Address::parse_reusing(target, &mut self.function_type)
            .map_err(|error| format!("field `target`: {error}"))?;
        let typename = typename.ok_or("field `typename`: missing (expected \"namespace/name\")")?;
        if Some(typename) != self.typename.as_deref() {
            validate_typename(typename).map_err(|error| format!("field `typename`: {error}"))?;
        }
        // An absent value is proto3's empty bytes (the zero value of a built-in type).
        let value = Payload::copy_from_slice(value.unwrap_or_default());
        Ok(Message {
            target,
            caller: None,
            argument: Argument::with_shared_typename(typename, value, &mut self.typename),
        })
    }
}

/// The contents of a length-delimited field, advancing `input` past it.
fn length_delimited<'a>(wire_type: WireType, input: &mut &'a [u8]) -> Result<&'a [u8], String> {
    if wire_type != WireType::LengthDelimited {
        return Err(format!(
            "expected a length-delimited field, got {wire_type:?}"
        ));
    }
    let length = decode_varint(input).map_err(|error| error.to_string())?;
    let length = usize::try_from(length)
        .ok()
        .filter(|length| *length <= input.len())
        .ok_or_else(|| format!("a length of {length} runs past the end of the body"))?;
    let (contents, rest) = input.split_at(length);
    *input = rest;
    Ok(contents)
}

/// A UTF-8 string field.
fn text<'a>(wire_type: WireType, input: &mut &'a [u8], field: &str) -> Result<&'a str, String> {
    let bytes =
        length_delimited(wire_type, input).map_err(|error| format!("field `{field}`: {error}"))?;
    std::str::from_utf8(bytes).map_err(|error| format!("field `{field}`: not UTF-8: {error}"))
}

/// Skips an unknown field.
fn skip(tag: u32, wire_type: WireType, input: &mut &[u8]) -> Result<(), prost::DecodeError> {
    skip_field(wire_type, tag, input, DecodeContext::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use eddy_protocol::ingress::{IngressMessage, MessageBatch};
    use eddy_protocol::{BuiltIn, Message as _};
    use proptest::prelude::*;

    fn encode(messages: Vec<IngressMessage>) -> Vec<u8> {
        MessageBatch { messages }.encode_to_vec()
    }

    fn ingress_message(target: &str, typename: &str, value: &[u8]) -> IngressMessage {
        IngressMessage {
            target: target.into(),
            typename: typename.into(),
            value: Bytes::copy_from_slice(value),
        }
    }

    #[test]
    fn reads_messages_in_order_sharing_types() {
        let body = encode(vec![
            ingress_message("com.example/f/a", "com.example/T", b"one"),
            ingress_message("com.example/f/b", "com.example/T", b""),
            ingress_message(
                "com.example/g/c/d",
                BuiltIn::Long(7).typename(),
                &BuiltIn::Long(7).encode(),
            ),
        ]);
        let messages = BatchReader::default().read(&body).expect("valid");
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].target.to_string(), "com.example/f/a");
        assert_eq!(
            messages[0].argument,
            Argument::new("com.example/T", &b"one"[..])
        );
        assert_eq!(
            messages[1].argument,
            Argument::new("com.example/T", Bytes::new())
        );
        assert!(Arc::ptr_eq(
            &messages[0].argument.typename,
            &messages[1].argument.typename
        ));
        assert_eq!(
            messages[0].target.function_type,
            messages[1].target.function_type
        );
        assert_eq!(messages[2].target.id, "c/d");
        assert_eq!(messages[2].argument, Argument::from(BuiltIn::Long(7)));
        assert!(messages.iter().all(|message| message.caller.is_none()));
        assert_eq!(BatchReader::default().read(&[]).expect("empty"), vec![]);
    }

    #[test]
    fn errors_name_the_message_and_the_field() {
        let error = |messages: Vec<IngressMessage>| {
            BatchReader::default()
                .read(&encode(messages))
                .expect_err("invalid")
        };
        let good = || ingress_message("com.example/f/a", "com.example/T", b"x");
        assert_eq!(
            error(vec![good(), ingress_message("", "com.example/T", b"x")]),
            "message 2: field `target`: missing (expected \"namespace/name/id\")"
        );
        assert!(error(vec![ingress_message(
            "com.example/f",
            "com.example/T",
            b"x"
        )])
        .starts_with("message 1: field `target`: \"com.example/f\" is not an address"));
        assert!(error(vec![
            good(),
            good(),
            ingress_message("com.example/f/a", "bad type", b"x")
        ])
        .starts_with("message 3: field `typename`: typename \"bad type\" contains"));
        assert_eq!(
            error(vec![ingress_message("com.example/f/a", "", b"x")]),
            "message 1: field `typename`: missing (expected \"namespace/name\")"
        );
        let truncated = &encode(vec![good()])[..5];
        assert!(BatchReader::default()
            .read(truncated)
            .expect_err("truncated")
            .starts_with("message 1: a length of"));
        assert!(BatchReader::default().read(b"not protobuf at all").is_err());
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut body = encode(vec![ingress_message(
            "com.example/f/a",
            "com.example/T",
            b"x",
        )]);
        // Field 9, varint 150, after the message; and field 5 (fixed32) inside a second one.
        body.extend_from_slice(&[0x48, 0x96, 0x01]);
        let mut inner = ingress_message("com.example/f/b", "com.example/T", b"y").encode_to_vec();
        inner.extend_from_slice(&[0x2d, 1, 2, 3, 4]);
        body.push(0x0a);
        body.push(inner.len() as u8);
        body.extend_from_slice(&inner);
        let messages = BatchReader::default().read(&body).expect("valid");
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[1].argument,
            Argument::new("com.example/T", &b"y"[..])
        );
    }

    proptest! {
        #[test]
        fn reads_what_prost_writes(
            batch in proptest::collection::vec(
                ("[a-z]{1,3}/[a-z]{1,3}/[a-z0-9/]{1,6}", "[a-z]{1,3}/[A-Za-z]{1,4}", proptest::collection::vec(any::<u8>(), 0..20)),
                0..12,
            )
        ) {
            let body = encode(batch.iter().map(|(t, n, v)| ingress_message(t, n, v)).collect());
            let messages = BatchReader::default().read(&body).expect("valid");
            prop_assert_eq!(messages.len(), batch.len());
            for (message, (target, typename, value)) in messages.iter().zip(&batch) {
                prop_assert_eq!(&message.target.to_string(), target);
                prop_assert_eq!(&*message.argument.typename, typename.as_str());
                prop_assert_eq!(&message.argument.value[..], &value[..]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = BatchReader::default().read(&body);
        }
    }
}
