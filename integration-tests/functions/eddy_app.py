"""The functions of statefun_app.py (Apache's SDK), written with Eddy's own Python SDK
(package `eddy`, ./sdk-python) and served as an ASGI app by uvicorn. Used by Eddy's end-to-end
tests (integration-tests/tests/sdk_python.rs), which run the same scenarios against both apps.

Every function lives in namespace `e2e` and writes its observations to the generic egress
`e2e/out` as strings, so the tests can read them from Eddy's file egress.

    .venv-eddy/bin/python eddy_app.py --port 9000

With --port 0 (the default) it picks a free port; either way it prints
"eddy_app: serving on 127.0.0.1:<port>" on stderr once it listens.
Endpoints: POST /{function name} (any path works: the target is inside the request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
from datetime import timedelta

from eddy import (
    AsgiHandler,
    BoolType,
    Context,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    Message,
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


def emit(context: Context, text: str) -> None:
    """Writes one string record to the test egress."""
    context.send_egress(egress_message_builder(EGRESS, text, StringType))


# e2e/counter: counts the messages of each address; egresses "<id>:<count>".
@functions.bind("e2e/counter", specs=[ValueSpec("count", IntType)])
def counter(context: Context, message: Message) -> None:
    count = (context.storage.count or 0) + 1
    context.storage.count = count
    emit(context, f"{context.address.id}:{count}")


# e2e/types: one state value of every built-in type plus a JSON type. Each message (a long n)
# updates all of them deterministically; n == 0 deletes them all. Egresses a JSON summary
# (with the exact bits of the float and the double).
@functions.bind(
    "e2e/types",
    specs=[
        ValueSpec("i", IntType),
        ValueSpec("l", LongType),
        ValueSpec("f", FloatType),
        ValueSpec("d", DoubleType),
        ValueSpec("b", BoolType),
        ValueSpec("s", StringType),
        ValueSpec("j", SUMMARY_TYPE),
    ],
)
async def types(context: Context, message: Message) -> None:  # async on purpose: both kinds run
    n = message.as_long()
    assert n is not None
    storage = context.storage
    if n == 0:
        for name in ("i", "l", "f", "d", "b", "s", "j"):
            del storage[name]
        emit(context, json.dumps({"id": context.address.id, "reset": True}))
        return
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
        "f_bits": struct.unpack("<I", struct.pack("<f", storage.f))[0],
        "d_bits": struct.unpack("<Q", struct.pack("<d", storage.d))[0],
    }
    emit(context, json.dumps(summary, ensure_ascii=False))


# e2e/expiring: "write" increments both counters, "read" only reads them. `written` expires
# 1 s after its last write, `called` 1 s after the last call. Egresses "w=<n>,c=<n>".
@functions.bind(
    "e2e/expiring",
    specs=[
        ValueSpec("written", IntType, expire_after_write=timedelta(seconds=1)),
        ValueSpec("called", IntType, expire_after_call=timedelta(seconds=1)),
    ],
)
def expiring(context: Context, message: Message) -> None:
    command = message.as_string()
    storage = context.storage
    if command == "write":
        storage.written = (storage.written or 0) + 1
        storage.called = (storage.called or 0) + 1
    elif command != "read":
        raise ValueError(f"unknown command {command!r}")
    emit(context, f"w={storage.written or 0},c={storage.called or 0}")


# e2e/delayed: "schedule:<token>:<ms>" sends itself "fire:<token>" after <ms> with cancellation
# token <token>; "cancel:<token>" cancels it; "fire:<token>" egresses "fired:<token>".
@functions.bind("e2e/delayed")
def delayed(context: Context, message: Message) -> None:
    command = message.as_string() or ""
    verb, _, rest = command.partition(":")
    if verb == "schedule":
        token, _, millis = rest.partition(":")
        fire = message_builder("e2e/delayed", context.address.id, str_value=f"fire:{token}")
        context.send_after(timedelta(milliseconds=int(millis)), fire, cancellation_token=token)
        emit(context, f"scheduled:{token}")
    elif verb == "cancel":
        context.cancel_delayed_message(rest)
        emit(context, f"cancelled:{rest}")
    elif verb == "fire":
        emit(context, f"fired:{rest}")
    else:
        raise ValueError(f"unknown command {command!r}")


# e2e/ping <-> e2e/pong: a ball {"n": n, "limit": L} goes back and forth with n + 1 each hop
# until ping holds n >= L; ping then egresses "done:<id>:<n>:<hits>". Each catch is logged on
# stderr ("eddy_app: e2e/ping caught the ball n=<n>").
def caught(context: Context, ball: dict) -> None:
    """Logs one line per ball, so the mixed tests can tell which app served which type."""
    print(f"eddy_app: {context.address.typename} caught the ball n={ball['n']}", file=sys.stderr, flush=True)


def check_caller(context: Context, expected_typename: str) -> None:
    caller = context.caller
    if caller is None or caller.typename != expected_typename or caller.id != context.address.id:
        raise ValueError(f"unexpected caller {caller!r}, expected {expected_typename}/{context.address.id}")


@functions.bind("e2e/ping", specs=[ValueSpec("hits", LongType)])
def ping(context: Context, message: Message) -> None:
    ball = message.as_type(BALL_TYPE)
    caught(context, ball)
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
    context.send(message_builder("e2e/pong", context.address.id, value=ball, value_type=BALL_TYPE))


@functions.bind("e2e/pong")
async def pong(context: Context, message: Message) -> None:
    check_caller(context, "e2e/ping")
    ball = message.as_type(BALL_TYPE)
    caught(context, ball)
    ball["n"] += 1
    context.send(message_builder("e2e/ping", context.address.id, value=ball, value_type=BALL_TYPE))


app = AsgiHandler(functions)


async def serve(port: int, name: str) -> None:
    """Serves `app` with uvicorn on 127.0.0.1:port (0 = a free port) and prints
    `<name>: serving on 127.0.0.1:<port>` on stderr once it accepts connections."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped uvicorn
            raise SystemExit(f"{name}: uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    print(f"{name}: serving on 127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args()
    asyncio.run(serve(args.port, "eddy_app"))


if __name__ == "__main__":
    main()
