"""Functions written with Apache's StateFun Python SDK (apache-flink-statefun 3.3.0), served
over HTTP with aiohttp, used by Eddy's end-to-end tests (integration-tests/tests/statefun_python.rs).

Every function lives in namespace `e2e` and writes its observations to the generic egress
`e2e/out` as strings, so the tests can read them from Eddy's file egress.

    python statefun_app.py --port 9000

With --port 0 (the default) it picks a free port; either way it prints
"statefun_app: serving on 127.0.0.1:<port>" on stderr once it listens.
Endpoints: POST /{function name} (any path works: the target is inside the request).
"""

import argparse
import asyncio
import json
import struct
import sys
import traceback
from datetime import timedelta

from aiohttp import web
from serving import serve_forever
from statefun import (
    BoolType,
    Context,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)

EGRESS = "e2e/out"

functions = StatefulFunctions()

# A custom type backed by JSON: state of e2e/types and the ball of e2e/ping <-> e2e/pong.
SUMMARY_TYPE = make_json_type("e2e/summary")
BALL_TYPE = make_json_type("e2e/ball")


def emit(context: Context, text: str):
    """Writes one string record to the test egress."""
    context.send_egress(egress_message_builder(target_typename=EGRESS, value=text, value_type=StringType))


# ---------------------------------------------------------------------------------------------
# e2e/counter: counts the messages of each address; egresses "<id>:<count>".
# ---------------------------------------------------------------------------------------------
@functions.bind(typename="e2e/counter", specs=[ValueSpec(name="count", type=IntType)])
def counter(context: Context, message: Message):
    count = (context.storage.count or 0) + 1
    context.storage.count = count
    emit(context, f"{context.address.id}:{count}")


# ---------------------------------------------------------------------------------------------
# e2e/types: one state value of every built-in type plus a JSON type. Each message (a long n)
# updates all of them deterministically; n == 0 deletes them all. Egresses a JSON summary
# (with the exact bits of the float and the double).
# ---------------------------------------------------------------------------------------------
@functions.bind(
    typename="e2e/types",
    specs=[
        ValueSpec(name="i", type=IntType),
        ValueSpec(name="l", type=LongType),
        ValueSpec(name="f", type=FloatType),
        ValueSpec(name="d", type=DoubleType),
        ValueSpec(name="b", type=BoolType),
        ValueSpec(name="s", type=StringType),
        ValueSpec(name="j", type=SUMMARY_TYPE),
    ],
)
def types(context: Context, message: Message):
    n = message.as_long()
    storage = context.storage
    if n == 0:
        del storage.i
        del storage.l
        del storage.f
        del storage.d
        del storage.b
        del storage.s
        del storage.j
        emit(context, json.dumps({"id": context.address.id, "reset": True}))
        return
    # int: stays in 32 bits; long: needs 64 bits; float: exact in 32 bits; double: 0.1 steps
    # (checked bit for bit); bool: toggles (False is the empty encoding); string: non-ASCII.
    storage.i = (storage.i or 0) + n
    storage.l = (storage.l or 0) + n * 10_000_000_000
    storage.f = (storage.f or 0.0) + 0.5
    storage.d = (storage.d or 0.0) + 0.1
    storage.b = not (storage.b or False)
    storage.s = (storage.s or "") + f"{n}\u00e9;"
    j = storage.j or {"count": 0, "history": []}
    j["count"] += 1
    j["history"].append(n)
    storage.j = j
    summary = {
        "id": context.address.id,
        "i": storage.i,
        "l": storage.l,
        "f": storage.f,
        "d": storage.d,
        "b": storage.b,
        "s": storage.s,
        "j": storage.j,
        # the exact bits, so the test compares floats without any decimal rounding
        "f_bits": struct.unpack("<I", struct.pack("<f", storage.f))[0],
        "d_bits": struct.unpack("<Q", struct.pack("<d", storage.d))[0],
    }
    emit(context, json.dumps(summary, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# e2e/expiring: "write" increments both counters, "read" only reads them. `written` expires
# 1 s after its last write, `called` 1 s after the last call. Egresses "w=<n>,c=<n>"
# (0 = absent).
# ---------------------------------------------------------------------------------------------
@functions.bind(
    typename="e2e/expiring",
    specs=[
        ValueSpec(name="written", type=IntType, expire_after_write=timedelta(seconds=1)),
        ValueSpec(name="called", type=IntType, expire_after_call=timedelta(seconds=1)),
    ],
)
def expiring(context: Context, message: Message):
    command = message.as_string()
    storage = context.storage
    if command == "write":
        storage.written = (storage.written or 0) + 1
        storage.called = (storage.called or 0) + 1
    elif command != "read":
        raise ValueError(f"unknown command {command!r}")
    emit(context, f"w={storage.written or 0},c={storage.called or 0}")


# ---------------------------------------------------------------------------------------------
# e2e/delayed: "schedule:<token>:<ms>" sends itself "fire:<token>" after <ms> with cancellation
# token <token>; "cancel:<token>" cancels it; "fire:<token>" egresses "fired:<token>".
# Schedules and cancels are acknowledged with "scheduled:<token>" / "cancelled:<token>".
# ---------------------------------------------------------------------------------------------
@functions.bind(typename="e2e/delayed")
def delayed(context: Context, message: Message):
    command = message.as_string()
    verb, _, rest = command.partition(":")
    if verb == "schedule":
        token, _, millis = rest.partition(":")
        fire = message_builder(target_typename="e2e/delayed", target_id=context.address.id, str_value=f"fire:{token}")
        context.send_after(timedelta(milliseconds=int(millis)), fire, cancellation_token=token)
        emit(context, f"scheduled:{token}")
    elif verb == "cancel":
        context.cancel_delayed_message(rest)
        emit(context, f"cancelled:{rest}")
    elif verb == "fire":
        emit(context, f"fired:{rest}")
    else:
        raise ValueError(f"unknown command {command!r}")


# ---------------------------------------------------------------------------------------------
# e2e/ping <-> e2e/pong: a ball {"n": n, "limit": L} goes back and forth with n + 1 each hop
# until ping holds n >= L; ping then egresses "done:<id>:<n>:<hits>" where hits counts the
# ping's own invocations. Each side checks that the caller is the other side, same id.
# ---------------------------------------------------------------------------------------------
def check_caller(context: Context, expected_typename: str):
    caller = context.caller
    if caller is None or caller.typename != expected_typename or caller.id != context.address.id:
        raise ValueError(f"unexpected caller {caller!r}, expected {expected_typename}/{context.address.id}")


@functions.bind(typename="e2e/ping", specs=[ValueSpec(name="hits", type=LongType)])
def ping(context: Context, message: Message):
    ball = message.as_type(BALL_TYPE)
    if ball["n"] > 0:
        check_caller(context, "e2e/pong")
    elif context.caller is not None:
        raise ValueError(f"the first ball comes from an ingress, not from {context.caller!r}")
    hits = (context.storage.hits or 0) + 1
    context.storage.hits = hits
    if ball["n"] >= ball["limit"]:
        emit(context, f"done:{context.address.id}:{ball['n']}:{hits}")
        return
    ball["n"] += 1
    context.send(message_builder(target_typename="e2e/pong", target_id=context.address.id, value=ball, value_type=BALL_TYPE))


@functions.bind(typename="e2e/pong")
def pong(context: Context, message: Message):
    check_caller(context, "e2e/ping")
    ball = message.as_type(BALL_TYPE)
    ball["n"] += 1
    context.send(message_builder(target_typename="e2e/ping", target_id=context.address.id, value=ball, value_type=BALL_TYPE))


# ---------------------------------------------------------------------------------------------
# HTTP serving
# ---------------------------------------------------------------------------------------------
handler = RequestReplyHandler(functions)


async def serve(request: web.Request) -> web.Response:
    try:
        reply = await handler.handle_async(await request.read())
    except Exception:  # the runtime sees a 500 and retries / dead-letters the batch
        traceback.print_exc(file=sys.stderr)
        return web.Response(status=500, text="function failed\n")
    return web.Response(body=reply, content_type="application/octet-stream")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/{tail:.*}", serve)
    asyncio.run(serve_forever(app, args.port, "statefun_app"))


if __name__ == "__main__":
    main()
