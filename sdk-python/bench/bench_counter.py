"""Benchmark (not a test): messages/s of a Python counter function served over ASGI (uvicorn)
and invoked by the real `eddy` binary, with batching.

    ./scripts/setup-python-sdk.sh && cargo build --release -p eddy-runtime --bin eddy
    .venv-eddy/bin/python sdk-python/bench/bench_counter.py --eddy target/release/eddy \
        --messages 100000 --addresses 100

What it does: starts this file's counter app (`bench/counter`, state `count`, a LongType)
under uvicorn on a free port, and `eddy run` on a module with an HTTP endpoint for it
(`maxNumBatchRequests` as given), an HTTP ingress and a file egress. It POSTs the messages
(round-robin over the addresses, in ingress batches of --ingress-batch lines, from --senders
threads) and stops the clock when every address has egressed "<id>:done" (its count reached
its share). It prints messages/s, the number of function invocations (batches) and the mean
batch size, from eddy's /v1/stats. Everything binds to 127.0.0.1; both processes are stopped
at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parents[2]
FUNCTION = "bench/counter"


# ---------------------------------------------------------------------------------------------
# The function app (run as a child process: bench_counter.py --serve)
# ---------------------------------------------------------------------------------------------


def serve(target: int) -> None:
    import asyncio
    import socket

    import uvicorn

    from eddy import AsgiHandler, Context, LongType, Message, StatefulFunctions, StringType, ValueSpec
    from eddy import egress_message_builder

    functions = StatefulFunctions()

    @functions.bind(FUNCTION, specs=[ValueSpec("count", LongType)])
    def counter(context: Context, message: Message) -> None:
        count = (context.storage.count or 0) + 1
        context.storage.count = count
        if count == target:
            context.send_egress(egress_message_builder("bench/out", f"{context.address.id}:done", StringType))

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(AsgiHandler(functions), log_level="warning", access_log=False, lifespan="off"))

    async def run() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
                return
            await asyncio.sleep(0.01)
        print(f"bench_app: serving on 127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
        await task

    asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


def wait_for_line(log: pathlib.Path, prefix: str, process: subprocess.Popen, timeout: float) -> str:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {process.args!r} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        for line in log.read_text(errors="replace").splitlines():
            if prefix in line:
                return line.split(prefix, 1)[1].split()[0]
        time.sleep(0.02)
    raise SystemExit(f"bench: no line {prefix!r} in {log} after {timeout} s:\n{log.read_text(errors='replace')}")


def request(addr: Tuple[str, int], method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    connection = http.client.HTTPConnection(*addr, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="messages/s of a Python counter over ASGI through eddy")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--eddy", default=str(REPO / "target" / "debug" / "eddy"), help="the eddy binary (default: target/debug/eddy; use a release build for real numbers)")
    parser.add_argument("--messages", type=int, default=20000, help="messages in total (default 20000)")
    parser.add_argument("--addresses", type=int, default=100, help="distinct function ids (default 100)")
    parser.add_argument("--ingress-batch", type=int, default=500, help="messages per POST /v1/messages (default 500)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent ingress clients (default 4)")
    parser.add_argument("--max-batch", type=int, default=1000, help="maxNumBatchRequests of the endpoint (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="eddy partition workers (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (default 600)")
    args = parser.parse_args()
    if args.serve:
        serve(args.target)
        return 0
    if args.messages <= 0 or args.addresses <= 0 or args.messages % args.addresses:
        parser.error("--messages must be a positive multiple of --addresses")
    # Absolute before anything runs elsewhere: eddy is started with cwd= the scratch folder.
    eddy = pathlib.Path(args.eddy).expanduser().absolute()
    if not eddy.is_file():
        build = "cargo build --release -p eddy-runtime --bin eddy" if "release" in eddy.parts else "cargo build -p eddy-runtime --bin eddy"
        raise SystemExit(f"bench_counter: no eddy binary at {eddy} (from --eddy {args.eddy}); build it in {REPO} with: {build}")
    per_address = args.messages // args.addresses

    with tempfile.TemporaryDirectory(prefix="eddy-bench-") as folder:
        work = pathlib.Path(folder)
        app_log, eddy_log = work / "app.log", work / "eddy.log"
        processes: List[subprocess.Popen] = []  # type: ignore[type-arg]
        try:
            with app_log.open("wb") as out:
                app = subprocess.Popen([sys.executable, "-u", __file__, "--serve", "--target", str(per_address)], stdout=out, stderr=subprocess.STDOUT)
            processes.append(app)
            port = wait_for_line(app_log, "bench_app: serving on ", app, 30).rsplit(":", 1)[1]
            (work / "module.yaml").write_text(
                "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: bench/*\n"
                f"  urlPathTemplate: http://127.0.0.1:{port}/{{function.name}}\n  maxNumBatchRequests: {args.max_batch}\n"
                "---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: bench/http\n  bind: 127.0.0.1:0\n"
                "---\nkind: io.eddy.file.v1/egress\nspec:\n  id: bench/out\n  path: out.jsonl\n"
            )
            with eddy_log.open("wb") as out:
                eddy_process = subprocess.Popen(
                    [str(eddy), "run", str(work / "module.yaml"), "--workers", str(args.workers), "--dead-letters", str(work / "dead.jsonl")],
                    cwd=work, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, RUST_LOG="warn"),
                )
            processes.append(eddy_process)
            host, _, ingress_port = wait_for_line(eddy_log, "eddy: listening ingress bench/http on ", eddy_process, 30).rpartition(":")
            ingress = (host, int(ingress_port))

            lines = [
                json.dumps({"target": f"{FUNCTION}/a{n % args.addresses}", "value": "x"}).encode() + b"\n"
                for n in range(args.messages)
            ]
            bodies = [b"".join(lines[i : i + args.ingress_batch]) for i in range(0, len(lines), args.ingress_batch)]
            errors: List[str] = []

            def sender(index: int) -> None:
                for body in bodies[index :: args.senders]:
                    status, reply = request(ingress, "POST", "/v1/messages", body, {"content-type": "application/x-ndjson"})
                    if status != 202:
                        errors.append(f"POST /v1/messages: {status} {reply[:200]!r}")
                        return

            started = time.monotonic()
            threads = [threading.Thread(target=sender, args=(i,)) for i in range(args.senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise SystemExit("bench: " + "; ".join(errors))
            sent = time.monotonic() - started
            out_file = work / "out.jsonl"
            deadline = started + args.timeout
            done = 0
            while done < args.addresses:
                if eddy_process.poll() is not None or app.poll() is not None:
                    raise SystemExit(f"bench: a process exited early; eddy log:\n{eddy_log.read_text(errors='replace')}\napp log:\n{app_log.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: only {done}/{args.addresses} addresses finished within {args.timeout} s")
                done = out_file.read_bytes().count(b"\n") if out_file.exists() else 0
                time.sleep(0.005)
            elapsed = time.monotonic() - started
            status, body = request(ingress, "GET", "/v1/stats")
            stats: Dict[str, Any] = json.loads(body) if status == 200 else {}
            invocations = stats.get("invocations")
            print(f"messages:      {args.messages} to {args.addresses} addresses ({per_address} each)")
            print(f"ingress:       {sent:.2f} s to POST ({args.senders} senders x batches of {args.ingress_batch})")
            print(f"elapsed:       {elapsed:.2f} s until every count was final")
            print(f"throughput:    {args.messages / elapsed:,.0f} messages/s")
            if isinstance(invocations, int) and invocations > 0:
                print(f"invocations:   {invocations} function calls (incl. {args.addresses} state negotiations), "
                      f"mean batch {args.messages / invocations:.1f} messages")
            print(f"eddy:          {eddy} (--workers {args.workers}, maxNumBatchRequests {args.max_batch})")
            dead = work / "dead.jsonl"
            if dead.exists() and dead.stat().st_size:
                print(f"WARNING: dead letters were written:\n{dead.read_text()[:2000]}")
                return 1
            return 0
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in reversed(processes):
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(main())
