"""Eddy's Python SDK: stateful functions for the StateFun 3.x request-reply protocol.

Bind functions to typenames in a :class:`StatefulFunctions` registry, then serve them with a
:class:`RequestReplyHandler` (bytes in, bytes out), an ASGI app (:class:`AsgiHandler`) or an
AWS Lambda handler (:class:`LambdaHandler`). See the package README for a complete example.
"""

from eddy.asgi import AsgiHandler, asgi_app
from eddy.aws_lambda import LambdaHandler, lambda_handler
from eddy.context import Context
from eddy.errors import EddyError, InvalidRequestError, UnknownFunctionError
from eddy.functions import StatefulFunction, StatefulFunctions, ValueSpec
from eddy.handler import RequestReplyHandler
from eddy.messages import (
    Address,
    EgressMessage,
    Message,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    message_builder,
)
from eddy.storage import Storage
from eddy.types import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
    Type,
    TypeSerializer,
    make_json_type,
    make_protobuf_type,
    simple_type,
)

#: Apache StateFun's name for :class:`Address`.
SdkAddress = Address

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AsgiHandler",
    "BoolType",
    "Context",
    "DoubleType",
    "EddyError",
    "EgressMessage",
    "FloatType",
    "IntType",
    "InvalidRequestError",
    "LambdaHandler",
    "LongType",
    "Message",
    "RequestReplyHandler",
    "SdkAddress",
    "StatefulFunction",
    "StatefulFunctions",
    "Storage",
    "StringType",
    "Type",
    "TypeSerializer",
    "UnknownFunctionError",
    "ValueSpec",
    "asgi_app",
    "egress_message_builder",
    "kafka_egress_message",
    "kinesis_egress_message",
    "lambda_handler",
    "make_json_type",
    "make_protobuf_type",
    "message_builder",
    "simple_type",
]
