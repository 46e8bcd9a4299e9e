"""Misbehaving functions for Eddy's fault tests (integration-tests/tests/faults.rs), served with
aiohttp. The faults are plain HTTP; the healthy answers come from Apache's StateFun SDK.

    python faulty_app.py --port 9001

With --port 0 (the default) it picks a free port; either way it prints
"faulty_app: serving on 127.0.0.1:<port>" on stderr once it listens.

Function types (namespace `faulty`), chosen by the target id:
- `faulty/slow`: ids starting with "slow" never answer within any sane call budget (the
  handler sleeps for --slow-seconds); other ids count like e2e/counter.
- `faulty/fail`: ids starting with "bad" get HTTP 500; ids starting with "flaky" get HTTP 500
  on every other request (so a retry succeeds); other ids count like e2e/counter.
- `faulty/garbage`: always 200 with a body that is not protobuf and a text/plain content type.

Healthy answers egress "<function name>:<id>:<count>" to `e2e/out`.
"""

import argparse
import asyncio
import sys
import traceback

from aiohttp import web
from serving import serve_forever
from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
)
from statefun.request_reply_pb2 import ToFunction

EGRESS = "e2e/out"

functions = StatefulFunctions()


def count_and_emit(context: Context):
    count = (context.storage.count or 0) + 1
    context.storage.count = count
    name = context.address.typename.split("/", 1)[1]
    text = f"{name}:{context.address.id}:{count}"
    context.send_egress(egress_message_builder(target_typename=EGRESS, value=text, value_type=StringType))


@functions.bind(typename="faulty/slow", specs=[ValueSpec(name="count", type=IntType)])
def slow(context: Context, message: Message):
    count_and_emit(context)


@functions.bind(typename="faulty/fail", specs=[ValueSpec(name="count", type=IntType)])
def fail(context: Context, message: Message):
    count_and_emit(context)


handler = RequestReplyHandler(functions)

# A body no protobuf parser accepts: an over-long varint as the first field tag.
GARBAGE = b"\xff" * 11 + b" this is not a FromFunction"


def make_app(slow_seconds: float) -> web.Application:
    requests_by_address = {}

    async def serve(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            to_function = ToFunction()
            to_function.ParseFromString(body)
            target = to_function.invocation.target
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return web.Response(status=400, text="not a ToFunction\n")
        key = (target.namespace, target.type, target.id)
        requests_by_address[key] = requests_by_address.get(key, 0) + 1
        attempt = requests_by_address[key]

        if target.type == "garbage":
            return web.Response(status=200, body=GARBAGE, content_type="text/plain")
        if target.type == "slow" and target.id.startswith("slow"):
            await asyncio.sleep(slow_seconds)
        if target.type == "fail" and target.id.startswith("bad"):
            return web.Response(status=500, text="injected failure\n")
        if target.type == "fail" and target.id.startswith("flaky") and attempt % 2 == 1:
            return web.Response(status=500, text="injected transient failure\n")
        try:
            reply = await handler.handle_async(body)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return web.Response(status=500, text="function failed\n")
        return web.Response(body=reply, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_post("/{tail:.*}", serve)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument("--slow-seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(serve_forever(make_app(args.slow_seconds), args.port, "faulty_app"))


if __name__ == "__main__":
    main()
