"""Cross-checks Eddy's golden protocol vectors against Apache's own StateFun implementation.

Runs inside the venv with apache-flink-statefun 3.3.0 (./scripts/setup-python.sh), which ships
the protobuf modules generated from Apache's .proto files (statefun.request_reply_pb2,
statefun.types_pb2, statefun.kafka_egress_pb2, statefun.kinesis_egress_pb2) and the SDK.

For every vector of protocol/testdata/vectors.json:
  1. parse the .bin with Apache's generated class named by the manifest: no unknown fields
     anywhere (an unknown field would mean a field number or wire type differs);
  2. re-serialise it: the bytes must be identical;
  3. render the parsed message with the manifest's rules and compare with its `fields`.
Then, with Apache's SDK code:
  - built-in wrappers: the SDK types (BoolType, IntType, ...) deserialize the bytes to the
    expected value and serialize the expected value to the same bytes;
  - every TypedValue inside any vector: built-in ones are rebuilt with statefun.utils
    .to_typed_value and read back with statefun.messages.Message.as_<type>(); Kafka/Kinesis
    records are rebuilt with statefun.egress_io.kafka_egress_message / kinesis_egress_message;
    the rebuilt bytes must be identical;
  - FromFunction vectors are rebuilt the way Apache's request-reply handler builds its reply
    (statefun.request_reply_v3.collect_failure for an IncompleteInvocationContext; a
    UserFacingContext with send / send_after / cancel_delayed_message / send_egress and state
    cells for an InvocationResponse); the rebuilt bytes must be identical.

Usage: golden_check.py [--testdata DIR]   (default: <repo>/protocol/testdata)
Prints one line per problem and exits 1 if any; prints a summary and exits 0 otherwise.
"""

import argparse
import json
import math
import pathlib
import sys
import types
from datetime import timedelta

from google.protobuf.descriptor import FieldDescriptor

from statefun import kafka_egress_pb2, kinesis_egress_pb2, request_reply_pb2, types_pb2
from statefun.core import SdkAddress, ValueSpec, simple_type
from statefun.egress_io import kafka_egress_message, kinesis_egress_message
from statefun.messages import EgressMessage, Message
from statefun.request_reply_pb2 import FromFunction, TypedValue
from statefun.request_reply_v3 import UserFacingContext, collect_failure, collect_success
from statefun.storage import Cell
from statefun.utils import to_typed_value
from statefun.wrapper_types import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
)

KAFKA_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
KINESIS_TYPENAME = "type.googleapis.com/io.statefun.sdk.egress.KinesisEgressRecord"

# Apache's SDK type of each built-in wrapper message, and the Message accessor reading it.
WRAPPER_TYPES = {
    "io.statefun.sdk.types.BooleanWrapper": BoolType,
    "io.statefun.sdk.types.IntWrapper": IntType,
    "io.statefun.sdk.types.LongWrapper": LongType,
    "io.statefun.sdk.types.FloatWrapper": FloatType,
    "io.statefun.sdk.types.DoubleWrapper": DoubleType,
    "io.statefun.sdk.types.StringWrapper": StringType,
}
BUILTIN_TYPES = {tpe.typename: tpe for tpe in WRAPPER_TYPES.values()}
ACCESSORS = {
    BoolType.typename: "bool",
    IntType.typename: "int",
    LongType.typename: "long",
    FloatType.typename: "float",
    DoubleType.typename: "double",
    StringType.typename: "string",
}


def message_classes():
    """Apache's generated classes by full protobuf name."""
    classes = {}
    for module in (request_reply_pb2, types_pb2, kafka_egress_pb2, kinesis_egress_pb2):
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
            classes[descriptor.full_name] = getattr(module, name)
    return classes


# --------------------------------------------------------------------------------------------
# Rendering, with the rules of protocol/tests/golden.rs (see protocol/testdata/README.md)
# --------------------------------------------------------------------------------------------

def render_float(value):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def render_scalar(field, value):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return render(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.hex()
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return render_float(value)
    return value


def render(message):
    """Every field by its .proto name; unset message fields (and oneof members) are None."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = [render_scalar(field, item) for item in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            out[field.name] = render(value) if message.HasField(field.name) else None
        else:
            out[field.name] = render_scalar(field, value)
    return out


def canonical(value):
    """Canonical JSON text: equal texts mean equal values, with True != 1 and 1 != 1.0."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def sub_messages(message):
    """The message and every message nested in it, depth first."""
    yield message
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        items = value if field.label == FieldDescriptor.LABEL_REPEATED else [value]
        for item in items:
            yield from sub_messages(item)


def unknown_field_count(message):
    return sum(len(sub.UnknownFields()) for sub in sub_messages(message))


# --------------------------------------------------------------------------------------------
# Checks with Apache's SDK
# --------------------------------------------------------------------------------------------

def expected_scalar(value):
    if value == "NaN":
        return math.nan
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return value


def same_scalar(left, right):
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right and math.copysign(1.0, left) == math.copysign(1.0, right)
    return type(left) is type(right) and left == right


class Checker:
    def __init__(self, testdata):
        self.testdata = testdata
        self.classes = message_classes()
        self.problems = []
        self.counts = {"vectors": 0, "builtin values": 0, "typed values": 0,
                       "egress records": 0, "replies rebuilt": 0}

    def problem(self, name, text):
        self.problems.append(f"{name}: {text}")

    def check_all(self):
        manifest = json.loads((self.testdata / "vectors.json").read_text(encoding="utf-8"))
        vectors = manifest["vectors"]
        listed = {entry["file"] for entry in vectors}
        on_disk = {path.name for path in self.testdata.glob("*.bin")}
        for file in sorted(on_disk - listed):
            self.problem(file, "not listed in vectors.json")
        for entry in vectors:
            self.check_vector(entry)
        return vectors

    def check_vector(self, entry):
        name = entry["name"]
        cls = self.classes.get(entry["message"])
        if cls is None:
            self.problem(name, f"Apache's SDK has no message {entry['message']}")
            return
        path = self.testdata / entry["file"]
        if not path.is_file():
            self.problem(name, f"missing file {path}")
            return
        data = path.read_bytes()
        message = cls()
        try:
            message.ParseFromString(data)
        except Exception as error:  # noqa: BLE001 - any parse error is a finding
            self.problem(name, f"Apache's {entry['message']} does not parse it: {error!r}")
            return
        self.counts["vectors"] += 1
        unknown = unknown_field_count(message)
        if unknown:
            self.problem(name, f"{unknown} field(s) unknown to Apache's {entry['message']}")
        reserialized = message.SerializeToString()
        if reserialized != data:
            self.problem(name, f"re-serialised bytes differ:\n  file   {data.hex()}\n"
                               f"  Apache {reserialized.hex()}")
        rendered = render(message)
        if canonical(rendered) != canonical(entry["fields"]):
            self.problem(name, f"content differs from `fields`:\n  manifest {canonical(entry['fields'])}\n"
                               f"  Apache   {canonical(rendered)}")
        if entry["message"] in WRAPPER_TYPES:
            self.check_builtin(name, WRAPPER_TYPES[entry["message"]], data, entry["fields"]["value"])
        for index, sub in enumerate(sub_messages(message)):
            if sub.DESCRIPTOR.full_name == TypedValue.DESCRIPTOR.full_name:
                self.check_typed_value(f"{name} (typed value #{index})", sub)
        if entry["message"] == FromFunction.DESCRIPTOR.full_name:
            self.check_reply(name, message, data)

    def check_builtin(self, name, tpe, data, expected):
        """Apache's SDK type reads the bytes as the expected value and writes it back identically."""
        self.counts["builtin values"] += 1
        expected = expected_scalar(expected)
        serializer = tpe.serializer()
        got = serializer.deserialize(data)
        if not same_scalar(got, expected):
            self.problem(name, f"{tpe.typename} deserialize gives {got!r}, expected {expected!r}")
        written = serializer.serialize(expected)
        if written != data:
            self.problem(name, f"{tpe.typename} serialize({expected!r}) gives {written.hex()}, "
                               f"file holds {data.hex()}")

    def check_typed_value(self, name, typed_value):
        data = typed_value.SerializeToString()
        typename = typed_value.typename
        tpe = BUILTIN_TYPES.get(typename)
        if tpe is not None:
            self.counts["typed values"] += 1
            value = tpe.serializer().deserialize(typed_value.value) if typed_value.has_value else None
            rebuilt = to_typed_value(tpe, value).SerializeToString()
            if rebuilt != data:
                self.problem(name, f"to_typed_value({typename}, {value!r}) gives {rebuilt.hex()}, "
                                   f"vector holds {data.hex()}")
            message = Message(target_typename="com.example/golden", target_id="id",
                              typed_value=typed_value)
            accessor = ACCESSORS[typename]
            if not getattr(message, f"is_{accessor}")():
                self.problem(name, f"Message.is_{accessor}() is false for {typename}")
            read = getattr(message, f"as_{accessor}")()
            if value is None:
                if read is not None:
                    self.problem(name, f"Message.as_{accessor}() of an absent value gives {read!r}")
            elif not same_scalar(read, value):
                self.problem(name, f"Message.as_{accessor}() gives {read!r}, expected {value!r}")
        elif typename == KAFKA_TYPENAME:
            self.counts["egress records"] += 1
            record = kafka_egress_pb2.KafkaProducerRecord()
            record.ParseFromString(typed_value.value)
            rebuilt = kafka_egress_message(typename="com.example/kafka", topic=record.topic,
                                           value=record.value_bytes,
                                           key=record.key or None).typed_value.SerializeToString()
            if rebuilt != data:
                self.problem(name, f"kafka_egress_message gives {rebuilt.hex()}, vector holds {data.hex()}")
        elif typename == KINESIS_TYPENAME:
            self.counts["egress records"] += 1
            record = kinesis_egress_pb2.KinesisEgressRecord()
            record.ParseFromString(typed_value.value)
            rebuilt = kinesis_egress_message(
                typename="com.example/kinesis", stream=record.stream, value=record.value_bytes,
                partition_key=record.partition_key,
                explicit_hash_key=record.explicit_hash_key or None).typed_value.SerializeToString()
            if rebuilt != data:
                self.problem(name, f"kinesis_egress_message gives {rebuilt.hex()}, vector holds {data.hex()}")

    def check_reply(self, name, reply, data):
        """Rebuilds the FromFunction the way Apache's handler builds its reply."""
        kind = reply.WhichOneof("response")
        expected = data
        if kind == "incomplete_invocation_context":
            rebuilt = self.rebuild_incomplete(name, reply.incomplete_invocation_context)
        else:
            # No response set reads as an empty result (the default instance).
            result = reply.invocation_result
            rebuilt = self.rebuild_result(name, result)
            if kind == "invocation_result" and result.ByteSize() == 0:
                # Apache's handler never marks invocation_result present when nothing was added
                # to it: a batch without effects is replied as ZERO bytes, not as a2 06 00.
                expected = b""
        if rebuilt is None:
            return
        self.counts["replies rebuilt"] += 1
        if rebuilt != expected:
            self.problem(name, f"Apache's handler would reply differently:\n  expected {expected.hex()}\n"
                               f"  Apache   {rebuilt.hex()}")

    @staticmethod
    def sdk_type(typename):
        return BUILTIN_TYPES.get(typename) or simple_type(
            typename, serialize_fn=bytes, deserialize_fn=bytes)

    def rebuild_incomplete(self, name, context):
        modes = FromFunction.ExpirationSpec.ExpireMode
        specs = []
        for missing in context.missing_values:
            if not missing.HasField("expiration_spec"):
                self.problem(name, f"{missing.state_name}: Apache's SDK always sends an expiration_spec")
                return None
            expiration = missing.expiration_spec
            tpe = self.sdk_type(missing.type_typename)
            after = timedelta(milliseconds=expiration.expire_after_millis)
            if expiration.mode == modes.Value("AFTER_WRITE"):
                specs.append(ValueSpec(missing.state_name, tpe, expire_after_write=after))
            elif expiration.mode == modes.Value("AFTER_INVOKE"):
                specs.append(ValueSpec(missing.state_name, tpe, expire_after_call=after))
            else:
                specs.append(ValueSpec(missing.state_name, tpe))
        return collect_failure(specs).SerializeToString()

    def rebuild_result(self, name, result):
        cells = {}
        for mutation in result.state_mutations:
            state_value = mutation.state_value if mutation.HasField("state_value") else None
            tpe = self.sdk_type(state_value.typename if state_value is not None else "com.example/any")
            cell = Cell(tpe=tpe, typed_value=None)
            if mutation.mutation_type == FromFunction.PersistedValueMutation.MutationType.Value("DELETE"):
                cell.delete()
            elif state_value is None or not state_value.has_value:
                self.problem(name, f"{mutation.state_name}: Apache's SDK cannot MODIFY to no value")
                return None
            else:
                cell.set(tpe.serializer().deserialize(state_value.value))
            cells[mutation.state_name] = cell
        context = UserFacingContext(
            SdkAddress(namespace="com.example", name="golden", id="id", typename="com.example/golden"),
            types.SimpleNamespace(_cells=cells))
        for outgoing in result.outgoing_messages:
            context.send(Message(target_typename=f"{outgoing.target.namespace}/{outgoing.target.type}",
                                 target_id=outgoing.target.id, typed_value=outgoing.argument))
        for delayed in result.delayed_invocations:
            if delayed.is_cancellation_request:
                context.cancel_delayed_message(delayed.cancellation_token)
            else:
                message = Message(target_typename=f"{delayed.target.namespace}/{delayed.target.type}",
                                  target_id=delayed.target.id, typed_value=delayed.argument)
                context.send_after(timedelta(milliseconds=delayed.delay_in_ms), message,
                                   cancellation_token=delayed.cancellation_token)
        for egress in result.outgoing_egresses:
            context.send_egress(EgressMessage(typename=f"{egress.egress_namespace}/{egress.egress_type}",
                                              typed_value=egress.argument))
        return collect_success(context).SerializeToString()


def main():
    default = pathlib.Path(__file__).resolve().parents[2] / "protocol" / "testdata"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", type=pathlib.Path, default=default)
    args = parser.parse_args()
    checker = Checker(args.testdata)
    vectors = checker.check_all()
    for problem in checker.problems:
        print(f"MISMATCH {problem}")
    counts = ", ".join(f"{value} {key}" for key, value in checker.counts.items())
    if checker.problems:
        print(f"golden_check: {len(checker.problems)} problem(s) in {len(vectors)} vectors ({counts})")
        return 1
    print(f"golden_check: {len(vectors)} vectors identical with Apache's implementation ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
